//! `os-server-external-events`: per-server answers (200, 404, 422), 207 and 404 overall.

use http::Method;

api_test!(async fn server_external_events_answer_per_server(c) {
    c.start_hosts(1).await;
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let server = c.boot(&m.token, "evented").await;
    let unknown = "6e4a8f8e-8e40-4a43-9d3c-5a4c1d5e0b11";
    let ev = |name: &str, id: &str| serde_json::json!({"name": name, "server_uuid": id, "tag": "port-1"});

    let (s, v) = c.nova(Method::POST, "/os-server-external-events", &admin, "2.1",
        Some(serde_json::json!({"events": [ev("network-vif-plugged", &server)]}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["events"][0]["code"], 200);
    assert_eq!(v["events"][0]["status"], "completed");
    assert_eq!(v["events"][0]["tag"], "port-1");
    // Some unknown: 207 with a 404 for that one; all unknown: 404.
    let (s, v) = c.nova(Method::POST, "/os-server-external-events", &admin, "2.1",
        Some(serde_json::json!({"events": [ev("network-changed", &server), ev("network-changed", unknown)]}))).await;
    assert_eq!(s, 207, "{v}");
    assert_eq!(v["events"][1]["code"], 404);
    assert_eq!(v["events"][1]["status"], "failed");
    let (s, _) = c.nova(Method::POST, "/os-server-external-events", &admin, "2.1",
        Some(serde_json::json!({"events": [ev("network-changed", unknown)]}))).await;
    assert_eq!(s, 404);
    // Names by microversion, bad bodies, and admin or service only.
    for (version, body) in [
        ("2.1", serde_json::json!({"events": [ev("power-update", &server)]})),
        ("2.1", serde_json::json!({"events": []})),
        ("2.1", serde_json::json!({"events": [{"name": "network-changed", "server_uuid": "nope"}]})),
        ("2.1", serde_json::json!({"events": [{"name": "network-changed", "server_uuid": server, "status": "odd"}]})),
        ("2.1", serde_json::json!({"events": [{"name": "network-changed", "server_uuid": server, "extra": 1}]})),
    ] {
        let (s, v) = c.nova(Method::POST, "/os-server-external-events", &admin, version, Some(body.clone())).await;
        assert_eq!(s, 400, "{body}: {v}");
    }
    let (s, _) = c.nova(Method::POST, "/os-server-external-events", &admin, "2.76",
        Some(serde_json::json!({"events": [ev("power-update", &server)]}))).await;
    assert_eq!(s, 200);
    let (s, _) = c.nova(Method::POST, "/os-server-external-events", &m.token, "2.1",
        Some(serde_json::json!({"events": [ev("network-changed", &server)]}))).await;
    assert_eq!(s, 403);
});
