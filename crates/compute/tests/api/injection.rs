//! Personality files and the admin password (Nova's injected files, before 2.57): checked
//! against the `injected_file*` quotas, given to the host with the guest's spec while the
//! create or rebuild is under way, sealed at rest, and gone once the guest is built.

use std::sync::Arc;
use std::time::Duration;

use ferrostack_store::sqlx;
use ferrostack_virt::fake::FakeDriver;
use http::{Method, StatusCode};
use serde_json::json;

use crate::common::HOST_CAPACITY;

fn fake(host: &str) -> Arc<FakeDriver> {
    let (v, m, d) = HOST_CAPACITY;
    Arc::new(FakeDriver::new(host, v, m, d, Duration::ZERO))
}

/// What `instance_injections` holds for `id` (its sealed text), if anything.
async fn sealed(c: &crate::common::TestCloud, id: &str) -> Option<String> {
    let mut conn = c.db.pool.acquire().await.unwrap();
    sqlx::query_scalar("SELECT sealed FROM instance_injections WHERE instance_uuid = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .unwrap()
}

api_test!(async fn personality_and_admin_pass_reach_the_host_sealed_and_are_not_kept(c) {
    c.start_scheduler();
    let first = c.spawn_agent("pj-1", fake("pj-1"));
    c.wait_host("pj-1").await;
    // The host's agent is gone for now (its service still up): the guest is not built, so
    // what it is to be given waits in the database.
    first.abort();
    let m = c.tenant("member").await;
    let motd = "aGVsbG8gZnJvbSBwZXJzb25hbGl0eQ=="; // "hello from personality"
    let (s, v) = c
        .create_server_with(
            &m.token,
            "2.56",
            json!({"adminPass": "Given-pass-1", "config_drive": true,
                   "personality": [{"path": "/etc/motd", "contents": motd}]}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["server"]["adminPass"], "Given-pass-1", "the caller's password is the one shown");
    let id = v["server"]["id"].as_str().unwrap().to_string();
    let mut at_rest = None;
    for _ in 0..500 {
        at_rest = sealed(c, &id).await;
        if at_rest.is_some() && c.server(&id).await["OS-EXT-SRV-ATTR:host"] == "pj-1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let at_rest = at_rest.expect("the injection is recorded");
    assert!(!at_rest.contains("Given-pass-1") && !at_rest.contains(motd) && !at_rest.contains("/etc/motd"));
    // The host is given it with the spec.
    let desired = c.compute.desired_for("pj-1").await.unwrap();
    let injected = desired.guests[0].spec.injected.clone().expect("injected in the spec");
    assert_eq!(injected.admin_pass.as_deref(), Some("Given-pass-1"));
    assert_eq!(injected.files[0].path, "/etc/motd");
    assert_eq!(injected.files[0].contents, motd);
    assert!(!format!("{:?}", desired.guests[0].spec).contains("Given-pass-1"));

    // Built: nothing of it is kept, and the host no longer gets it.
    c.spawn_agent("pj-1", fake("pj-1"));
    c.wait_status(&id, "ACTIVE").await;
    assert_eq!(sealed(c, &id).await, None);
    let desired = c.compute.desired_for("pj-1").await.unwrap();
    assert!(desired.guests[0].spec.injected.is_none());

    // Without adminPass, a generated one is shown. Without a config drive nothing is kept
    // (the drive is the one way it would reach the guest).
    let (s, v) = c.create_server_with(&m.token, "2.56", json!({"personality": [{"path": "/x", "contents": motd}]}), None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert!(v["server"]["adminPass"].as_str().unwrap().len() >= 12, "{v}");
    assert_eq!(sealed(c, v["server"]["id"].as_str().unwrap()).await, None);

    // A rebuild injects again, before 2.57 with files.
    let (s, v) = c
        .nova(Method::POST, &format!("/servers/{id}/action"), &m.token, "2.56",
            Some(json!({"rebuild": {"imageRef": c.image_id().await, "adminPass": "Rebuilt-2",
                "personality": [{"path": "/etc/issue", "contents": motd}]}})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["server"]["adminPass"], "Rebuilt-2");
    c.wait_status(&id, "ACTIVE").await;
    assert_eq!(sealed(c, &id).await, None);
    let (s, v) = c
        .nova(Method::POST, &format!("/servers/{id}/action"), &m.token, "2.57",
            Some(json!({"rebuild": {"imageRef": c.image_id().await,
                "personality": [{"path": "/etc/issue", "contents": motd}]}})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no personality from 2.57: {v}");
});

api_test!(async fn personality_is_checked_against_its_quotas(c) {
    c.start_scheduler();
    c.spawn_agent("pq-1", fake("pq-1"));
    c.wait_host("pq-1").await;
    let m = c.tenant("member").await;
    let file = |path: &str, contents: &str| json!({"path": path, "contents": contents});
    let create = |personality: serde_json::Value, mv: &'static str| {
        let token = m.token.clone();
        async move {
            c.create_server_with(&token, mv, json!({"personality": personality}), None)
                .await
        }
    };
    // Nova's default quotas: 5 files, 255-byte paths, 10240 bytes of contents each (403).
    let six: Vec<_> = (0..6).map(|i| file(&format!("/f{i}"), "aGk=")).collect();
    let (s, v) = create(json!(six), "2.56").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v.to_string().contains("Personality file limit exceeded"), "{v}");
    let (s, v) = create(json!([file(&format!("/{}", "p".repeat(255)), "aGk=")]), "2.56").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v.to_string().contains("Personality file path exceeds maximum 255"), "{v}");
    use base64::Engine;
    let big = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 10241]);
    let (s, v) = create(json!([file("/big", &big)]), "2.56").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v.to_string().contains("Personality file content exceeds maximum 10240"), "{v}");
    let fits = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 10240]);
    let (s, v) = create(json!([file("/fits", &fits)]), "2.56").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    // Base64 as the `base64` tool writes it, with line breaks, is taken as Nova takes it.
    let (s, v) = create(json!([file("/wrapped", "aGVsbG8g\nd29ybGQ=\n")]), "2.56").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    // Malformed: 400.
    for bad in [
        json!([file("/x", "not base64!")]),
        json!([{"path": "/x"}]),
        json!([{"path": "/x", "contents": "aGk=", "mode": "0644"}]),
        json!("/x"),
    ] {
        let (s, v) = create(bad.clone(), "2.56").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    // Gone from the API at 2.57.
    let (s, v) = create(json!([file("/x", "aGk=")]), "2.57").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
});

api_test!(async fn an_evacuated_guest_gets_the_admin_password_of_the_evacuation(c) {
    c.start_scheduler();
    c.spawn_agent("pe-1", fake("pe-1"));
    let second = c.spawn_agent("pe-2", fake("pe-2"));
    c.wait_host("pe-1").await;
    c.wait_host("pe-2").await;
    let admin = c.admin().await;
    let (s, v) = c
        .create_server_with(
            &admin,
            "2.56",
            json!({"config_drive": true, "availability_zone": "nova:pe-1"}),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["server"]["id"].as_str().unwrap().to_string();
    c.wait_status(&id, "ACTIVE").await;
    // The first host goes down; the second's agent waits a moment (its service still up), so
    // what the rebuilt guest is to be given can be looked at.
    let (_, svcs) = c.nova(Method::GET, "/os-services?host=pe-1", &admin, "2.53", None).await;
    let svc = svcs["services"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = c
        .nova(Method::PUT, &format!("/os-services/{svc}"), &admin, "2.53",
            Some(json!({"forced_down": true})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    second.abort();
    let (s, v) = c
        .nova(Method::POST, &format!("/servers/{id}/action"), &admin, "2.13",
            Some(json!({"evacuate": {"adminPass": "Evac-pass-1", "onSharedStorage": false}})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["adminPass"], "Evac-pass-1");
    let desired = c.compute.desired_for("pe-2").await.unwrap();
    let g = desired.guests.iter().find(|g| g.spec.uuid == id).expect("the guest on pe-2");
    assert_eq!(
        g.spec.injected.as_ref().and_then(|i| i.admin_pass.as_deref()),
        Some("Evac-pass-1")
    );
    c.spawn_agent("pe-2", fake("pe-2"));
    let s = c.wait_status(&id, "ACTIVE").await;
    assert_eq!(s["OS-EXT-SRV-ATTR:host"], "pe-2");
    assert_eq!(sealed(c, &id).await, None);
});
