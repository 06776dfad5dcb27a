//! The old admin APIs Nova still serves: `os-hosts` (before 2.43), `/extensions` and
//! `os-instance_usage_audit_log`, and `os-services` updates by host and binary (before 2.53).

use http::Method;
use serde_json::{json, Value};

use crate::common::TestCloud;

fn host_names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|h| h["host_name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

api_test!(async fn os_hosts(c) {
    c.start_hosts(2).await;
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let server = c.boot(&m.token, "vm").await;
    let host = c.hosts_of(std::slice::from_ref(&server)).await.remove(0);

    // List: every enabled service with its zone; ?zone= filters, an empty zone does not.
    let (s, v) = c.nova(Method::GET, "/os-hosts", &admin, "2.1", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(host_names(&v), ["host-1", "host-2"]);
    assert_eq!(v["hosts"][0]["service"], "compute");
    assert_eq!(v["hosts"][0]["zone"], "nova");
    let (_, v) = c.nova(Method::GET, "/os-hosts?zone=", &admin, "2.1", None).await;
    assert_eq!(host_names(&v).len(), 2);
    let (_, v) = c.nova(Method::GET, "/os-hosts?zone=xxx", &admin, "2.1", None).await;
    assert_eq!(v["hosts"], json!([]));
    // A host in a zoned aggregate shows that zone, in os-services too.
    let (_, a) = c.call(Method::POST, "/os-aggregates", &admin,
        Some(json!({"aggregate": {"name": "a", "availability_zone": "az1"}}))).await;
    let agg = a["aggregate"]["id"].as_i64().unwrap();
    c.call(Method::POST, &format!("/os-aggregates/{agg}/action"), &admin,
        Some(json!({"add_host": {"host": "host-2"}}))).await;
    let (_, v) = c.nova(Method::GET, "/os-hosts?zone=az1", &admin, "2.1", None).await;
    assert_eq!(host_names(&v), ["host-2"]);
    let (_, v) = c.nova(Method::GET, "/os-services?host=host-2", &admin, "2.1", None).await;
    assert_eq!(v["services"][0]["zone"], "az1", "{v}");
    // Admins only; gone at 2.43.
    assert_eq!(c.nova(Method::GET, "/os-hosts", &m.token, "2.1", None).await.0, 403);
    assert_eq!(c.nova(Method::GET, "/os-hosts", &admin, "2.43", None).await.0, 404);

    // Show: totals, used now, the sum of instances, then each project.
    let (s, v) = c.nova(Method::GET, &format!("/os-hosts/{host}"), &admin, "2.1", None).await;
    assert_eq!(s, 200, "{v}");
    let rows = v["host"].as_array().unwrap();
    let projects: Vec<&str> = rows.iter().map(|r| r["resource"]["project"].as_str().unwrap()).collect();
    assert_eq!(projects, ["(total)", "(used_now)", "(used_max)", m.project_id.as_str()]);
    assert!(rows.iter().all(|r| r["resource"]["host"] == host.as_str()));
    assert_eq!(rows[0]["resource"]["cpu"], 8, "{v}");
    assert!(rows[3]["resource"]["memory_mb"].as_i64().unwrap() > 0, "{v}");
    assert_eq!(rows[2]["resource"]["memory_mb"], rows[3]["resource"]["memory_mb"]);
    let (s, e) = c.nova(Method::GET, "/os-hosts/nowhere", &admin, "2.1", None).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (404, "Compute host nowhere could not be found.".to_string()));
    assert_eq!(c.nova(Method::GET, &format!("/os-hosts/{host}"), &m.token, "2.1", None).await.0, 403);

    // Update: status disables the compute service; maintenance mode is not supported.
    let path = format!("/os-hosts/{host}");
    let (s, v) = c.nova(Method::PUT, &path, &admin, "2.1", Some(json!({"status": "Disable"}))).await;
    assert_eq!((s.as_u16(), v), (200, json!({"host": host, "status": "disabled"})));
    let (_, v) = c.nova(Method::GET, &format!("/os-services?host={host}"), &admin, "2.1", None).await;
    assert_eq!(v["services"][0]["status"], "disabled");
    let (_, v) = c.nova(Method::GET, "/os-hosts", &admin, "2.1", None).await;
    assert_eq!(host_names(&v).len(), 1, "a disabled host is not listed: {v}");
    let (s, _) = c.nova(Method::PUT, &path, &admin, "2.1", Some(json!({"status": "enable"}))).await;
    assert_eq!(s, 200);
    for bad in [json!({}), json!({"status": "bad"}), json!({"maintenance_mode": "on"}), json!({"x": 1})] {
        let (s, e) = c.nova(Method::PUT, &path, &admin, "2.1", Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}: {e}");
    }
    let (s, _) = c.nova(Method::PUT, &path, &admin, "2.1", Some(json!({"maintenance_mode": "enable"}))).await;
    assert_eq!(s, 501);
    let (s, _) = c.nova(Method::PUT, "/os-hosts/nowhere", &admin, "2.1", Some(json!({"status": "enable"}))).await;
    assert_eq!(s, 404);
    assert_eq!(c.nova(Method::PUT, &path, &m.token, "2.1", Some(json!({"status": "enable"}))).await.0, 403);

    // Power actions: 404 for an unknown host, 403 for members, else not supported.
    for action in ["startup", "shutdown", "reboot"] {
        assert_eq!(c.nova(Method::GET, &format!("/os-hosts/nowhere/{action}"), &admin, "2.1", None).await.0, 404);
        assert_eq!(c.nova(Method::GET, &format!("{path}/{action}"), &m.token, "2.1", None).await.0, 403);
        let (s, e) = c.nova(Method::GET, &format!("{path}/{action}"), &admin, "2.1", None).await;
        assert_eq!(s, 501, "{e}");
        assert!(e["notImplemented"]["message"].is_string(), "{e}");
    }
});

api_test!(async fn extensions(c) {
    let m = c.tenant("member").await;
    let (s, v) = c.call(Method::GET, "/extensions", &m.token, None).await;
    assert_eq!(s, 200, "{v}");
    let list = v["extensions"].as_array().unwrap();
    assert!(list.iter().any(|e| e["name"] == "Hosts" && e["alias"] == "os-hosts"));
    for e in list {
        for k in ["name", "alias", "description", "namespace", "updated"] {
            assert!(e[k].is_string(), "{k}: {e}");
        }
    }
    let (s, v) = c.call(Method::GET, "/extensions/os-consoles", &m.token, None).await;
    assert_eq!((s.as_u16(), v["extension"]["alias"].as_str()), (200, Some("os-consoles")));
    assert_eq!(c.call(Method::GET, "/extensions/os-nothing", &m.token, None).await.0, 404);
});

api_test!(async fn instance_usage_audit_log(c) {
    c.start_hosts(2).await;
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let (s, v) = c.call(Method::GET, "/os-instance_usage_audit_log", &admin, None).await;
    assert_eq!(s, 200, "{v}");
    let log = &v["instance_usage_audit_logs"];
    assert_eq!(log["num_hosts"], 2, "{v}");
    assert_eq!(log["num_hosts_not_run"], 2);
    assert_eq!(log["overall_status"], "0 of 2 hosts done. 0 errors.");
    let (s, v) = c
        .call(Method::GET, "/os-instance_usage_audit_log/2026-03-15%2010:00:00", &admin, None)
        .await;
    assert_eq!(s, 200, "{v}");
    let log = &v["instance_usage_audit_log"];
    assert_eq!(
        (log["period_beginning"].as_str(), log["period_ending"].as_str()),
        (Some("2026-02-01 00:00:00"), Some("2026-03-01 00:00:00"))
    );
    let (s, e) = c.call(Method::GET, "/os-instance_usage_audit_log/invalid_time", &admin, None).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (400, "Invalid timestamp for date invalid_time".to_string()));
    assert_eq!(c.call(Method::GET, "/os-instance_usage_audit_log", &m.token, None).await.0, 403);
});

api_test!(async fn services_by_host_and_binary_before_2_53(c) {
    c.start_hosts(2).await;
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let body = |extra: Value| {
        let mut b = json!({"host": "host-1", "binary": "nova-compute"});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        Some(b)
    };
    let put = |path: &'static str, mv: &'static str, b: Option<Value>| {
        let admin = admin.clone();
        async move { c.nova(Method::PUT, &format!("/os-services/{path}"), &admin, mv, b).await }
    };
    let state = || async {
        let (_, v) = c.nova(Method::GET, "/os-services?host=host-1", &admin, "2.11", None).await;
        v["services"][0].clone()
    };

    let (s, v) = put("disable-log-reason", "2.1", body(json!({"disabled_reason": "maint"}))).await;
    assert_eq!((s.as_u16(), v.clone()), (200, json!({"service": {"host": "host-1", "binary": "nova-compute",
        "status": "disabled", "disabled_reason": "maint"}})), "{v}");
    let now = state().await;
    assert_eq!((now["status"].as_str(), now["disabled_reason"].as_str()), (Some("disabled"), Some("maint")));
    let (s, v) = put("enable", "2.1", body(json!({}))).await;
    assert_eq!((s.as_u16(), v["service"]["status"].as_str()), (200, Some("enabled")));
    assert!(state().await["disabled_reason"].is_null());
    let (s, _) = put("disable", "2.1", body(json!({}))).await;
    assert_eq!(s, 200);
    assert_eq!(state().await["status"], "disabled");
    put("enable", "2.1", body(json!({}))).await;

    // force-down from 2.11.
    assert_eq!(put("force-down", "2.10", body(json!({"forced_down": true}))).await.0, 404);
    let (s, v) = put("force-down", "2.11", body(json!({"forced_down": true}))).await;
    assert_eq!((s.as_u16(), v["service"]["forced_down"].as_bool()), (200, Some(true)), "{v}");
    let now = state().await;
    assert_eq!((now["forced_down"].as_bool(), now["state"].as_str()), (Some(true), Some("down")));
    put("force-down", "2.11", body(json!({"forced_down": false}))).await;

    // Bad input, unknown services and actions, members.
    assert_eq!(put("disable-log-reason", "2.1", body(json!({}))).await.0, 400);
    assert_eq!(put("enable", "2.1", Some(json!({"host": "host-1"}))).await.0, 400);
    assert_eq!(put("enable", "2.1", body(json!({"x": 1}))).await.0, 400);
    let (s, e) = put("enable", "2.1", Some(json!({"host": "nowhere", "binary": "nova-compute"}))).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (404, "Could not find binary nova-compute on host nowhere.".to_string()));
    assert_eq!(put("fly", "2.1", body(json!({}))).await.0, 404);
    let (s, _) = c.nova(Method::PUT, "/os-services/enable", &m.token, "2.1", body(json!({}))).await;
    assert_eq!(s, 403);
});
