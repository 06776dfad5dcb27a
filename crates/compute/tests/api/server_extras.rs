//! Server sub-resources: metadata, tags, ips, os-server-password, remote consoles,
//! diagnostics, os-migrations and server migrations; the versions root and access IPs.

use ferrostack_store::sqlx;
use http::Method;
use serde_json::{json, Value};

use crate::common::{InstanceRow, Tenant, TestCloud};

/// An ACTIVE server of `t` running on host "h1" (as the agent would leave it).
async fn server(c: &TestCloud, t: &Tenant) -> String {
    let id = c
        .add_instance(&InstanceRow {
            name: "vm1",
            project_id: &t.project_id,
            user_id: &t.user_id,
            flavor_name: "m1.small",
            vcpus: 2,
            ram: 2048,
            disk: 20,
            launched_at: Some(ferrostack_store::now_micros() - 5_000_000),
            terminated_at: None,
        })
        .await;
    sql(
        c,
        "UPDATE instances SET host = 'h1', node = 'h1', power_state = 1 WHERE uuid = $1",
        &id,
    )
    .await;
    id
}

async fn sql(c: &TestCloud, q: &str, id: &str) {
    sqlx::query(q).bind(id).execute(&c.db.writer).await.unwrap();
}

fn msg(v: &Value) -> String {
    TestCloud::message(v)
}

api_test!(async fn metadata_crud_validation_quota_and_state(c) {
    let m = c.tenant("member").await;
    let id = server(c, &m).await;
    let base = format!("/servers/{id}/metadata");
    let (s, v) = c.call(Method::GET, &base, &m.token, None).await;
    assert_eq!((s.as_u16(), v), (200, json!({"metadata": {}})));

    // POST merges, PUT replaces; changes mark the server updated.
    sql(c, "UPDATE instances SET updated_at = 1 WHERE uuid = $1", &id).await;
    let (s, v) = c.call(Method::POST, &base, &m.token, Some(json!({"metadata": {"a": "1", "b": "2"}}))).await;
    assert_eq!((s.as_u16(), v), (200, json!({"metadata": {"a": "1", "b": "2"}})));
    let (s, v) = c.call(Method::POST, &base, &m.token, Some(json!({"metadata": {"b": "3", "c": ""}}))).await;
    assert_eq!((s.as_u16(), v), (200, json!({"metadata": {"a": "1", "b": "3", "c": ""}})));
    let (s, v) = c.call(Method::PUT, &base, &m.token, Some(json!({"metadata": {"x": "y"}}))).await;
    assert_eq!((s.as_u16(), v), (200, json!({"metadata": {"x": "y"}})));
    let (_, v) = c.call(Method::GET, &format!("/servers/{id}"), &m.token, None).await;
    assert_eq!(v["server"]["metadata"], json!({"x": "y"}));
    assert_ne!(v["server"]["updated"], "1970-01-01T00:00:00Z");

    // Items.
    let (s, v) = c.call(Method::PUT, &format!("{base}/k1"), &m.token, Some(json!({"meta": {"k1": "v1"}}))).await;
    assert_eq!((s.as_u16(), v), (200, json!({"meta": {"k1": "v1"}})));
    let (s, v) = c.call(Method::GET, &format!("{base}/k1"), &m.token, None).await;
    assert_eq!((s.as_u16(), v), (200, json!({"meta": {"k1": "v1"}})));
    let (s, e) = c.call(Method::GET, &format!("{base}/nope"), &m.token, None).await;
    assert_eq!((s.as_u16(), msg(&e)), (404, "Metadata item was not found".to_string()));
    assert_eq!(c.call(Method::DELETE, &format!("{base}/k1"), &m.token, None).await.0, 204);
    let (s, e) = c.call(Method::DELETE, &format!("{base}/k1"), &m.token, None).await;
    assert_eq!((s.as_u16(), msg(&e)), (404, "Metadata item was not found".to_string()));
    let (_, v) = c.call(Method::GET, &base, &m.token, None).await;
    assert_eq!(v, json!({"metadata": {"x": "y"}}));

    // Bad bodies.
    let long = "k".repeat(256);
    let cases = [
        (Method::PUT, format!("{base}/k1"), json!({"meta": {"k2": "v"}}), "Request body and URI mismatch".to_string()),
        (Method::PUT, format!("{base}/k1"), json!({"meta": {"k1": "v", "k2": "v"}}), "has too many properties".to_string()),
        (Method::PUT, format!("{base}/k1"), json!({"meta": {}}), "does not have enough properties".to_string()),
        (Method::PUT, format!("{base}/k1"), json!({"metadata": {"k1": "v"}}), "'meta' is a required property".to_string()),
        (Method::POST, base.clone(), json!({"metadata": {long.clone(): "v"}}), "Additional properties are not allowed".to_string()),
        (Method::POST, base.clone(), json!({"metadata": {"": "v"}}), "Additional properties are not allowed".to_string()),
        (Method::POST, base.clone(), json!({"metadata": {"k": "v".repeat(256)}}), "is too long".to_string()),
        (Method::POST, base.clone(), json!({"metadata": {"k": 1}}), "is not of type 'string'".to_string()),
        (Method::PUT, base.clone(), json!({"metadata": "x"}), "is not of type 'object'".to_string()),
        (Method::PUT, base.clone(), json!({"meta": {}}), "'metadata' is a required property".to_string()),
        (Method::PUT, base.clone(), json!({"metadata": {}, "x": 1}), "('x' was unexpected)".to_string()),
    ];
    for (method, path, body, want) in cases {
        let (s, e) = c.call(method, &path, &m.token, Some(body.clone())).await;
        assert_eq!(s, 400, "{body}");
        assert!(msg(&e).contains(&want), "{body}: {}", msg(&e));
    }
    // A 255-character key is fine.
    let key = "k".repeat(255);
    assert_eq!(c.call(Method::PUT, &format!("{base}/{key}"), &m.token, Some(json!({"meta": {key.clone(): "v"}}))).await.0, 200);

    // Quota: metadata_items counts the resulting set.
    let admin = c.admin().await;
    assert_eq!(c.call(Method::PUT, &format!("/os-quota-sets/{}", m.project_id), &admin,
        Some(json!({"quota_set": {"metadata_items": 3}}))).await.0, 200);
    assert_eq!(c.call(Method::POST, &base, &m.token, Some(json!({"metadata": {"z": "1"}}))).await.0, 200);
    let (s, e) = c.call(Method::POST, &base, &m.token, Some(json!({"metadata": {"w": "1"}}))).await;
    assert_eq!((s.as_u16(), msg(&e)), (403, "Maximum number of metadata items exceeds 3".to_string()));
    let (s, _) = c.call(Method::PUT, &format!("{base}/w"), &m.token, Some(json!({"meta": {"w": "1"}}))).await;
    assert_eq!(s, 403);
    let (s, _) = c.call(Method::PUT, &base, &m.token, Some(json!({"metadata": {"1": "", "2": "", "3": "", "4": ""}}))).await;
    assert_eq!(s, 403);
    // Replacing an existing key stays within the quota.
    assert_eq!(c.call(Method::PUT, &format!("{base}/z"), &m.token, Some(json!({"meta": {"z": "2"}}))).await.0, 200);

    // Locked: 409 for the owner, the admin may still change it.
    assert_eq!(c.call(Method::POST, &format!("/servers/{id}/action"), &m.token, Some(json!({"lock": null}))).await.0, 202);
    let (s, e) = c.call(Method::PUT, &format!("{base}/z"), &m.token, Some(json!({"meta": {"z": "3"}}))).await;
    assert_eq!((s.as_u16(), msg(&e)), (409, format!("Instance {id} is locked")));
    assert_eq!(c.call(Method::DELETE, &format!("{base}/z"), &m.token, None).await.0, 409);
    assert_eq!(c.call(Method::GET, &base, &m.token, None).await.0, 200);
    assert_eq!(c.call(Method::PUT, &format!("{base}/z"), &admin, Some(json!({"meta": {"z": "4"}}))).await.0, 200);
    assert_eq!(c.call(Method::POST, &format!("/servers/{id}/action"), &m.token, Some(json!({"unlock": null}))).await.0, 202);

    // A state Nova refuses (building, or a task in progress): 409.
    sql(c, "UPDATE instances SET vm_state = 'building' WHERE uuid = $1", &id).await;
    let (s, e) = c.call(Method::POST, &base, &m.token, Some(json!({"metadata": {"z": "5"}}))).await;
    assert_eq!((s.as_u16(), msg(&e)), (409, format!("Cannot 'update metadata' instance {id} while it is in vm_state building")));
    sql(c, "UPDATE instances SET vm_state = 'active', task_state = 'rebooting' WHERE uuid = $1", &id).await;
    let (s, e) = c.call(Method::DELETE, &format!("{base}/z"), &m.token, None).await;
    assert_eq!((s.as_u16(), msg(&e)), (409, format!("Cannot 'delete metadata' instance {id} while it is in task_state rebooting")));

    // Another project's server does not exist for the caller; readers read only.
    let other = c.tenant("member").await;
    let (s, e) = c.call(Method::GET, &base, &other.token, None).await;
    assert_eq!((s.as_u16(), msg(&e)), (404, format!("Instance {id} could not be found.")));
    assert_eq!(c.call(Method::PUT, &format!("{base}/z"), &other.token, Some(json!({"meta": {"z": "1"}}))).await.0, 404);
    let reader = c.user_on(&m.project_id, "reader").await;
    assert_eq!(c.call(Method::GET, &format!("{base}/z"), &reader.token, None).await.0, 200);
    assert_eq!(c.call(Method::POST, &base, &reader.token, Some(json!({"metadata": {}}))).await.0, 403);
});

api_test!(async fn tags(c) {
    let m = c.tenant("member").await;
    let id = server(c, &m).await;
    let base = format!("/servers/{id}/tags");
    let mv = "2.26";
    // Not there before 2.26.
    assert_eq!(c.nova(Method::GET, &base, &m.token, "2.25", None).await.0, 404);
    assert_eq!(c.nova(Method::PUT, &format!("{base}/a"), &m.token, "2.25", None).await.0, 404);

    let (s, v) = c.nova(Method::GET, &base, &m.token, mv, None).await;
    assert_eq!((s.as_u16(), v), (200, json!({"tags": []})));
    let (s, h, _) = c.raw(Method::PUT, &format!("/compute/v2.1{base}/t1"), Some(&m.token), None,
        &[("openstack-api-version", "compute 2.26")]).await;
    assert_eq!(s, 201);
    assert_eq!(h["location"], format!("http://cloud.test/compute/v2.1/servers/{id}/tags/t1").as_str());
    assert_eq!(c.nova(Method::PUT, &format!("{base}/t1"), &m.token, mv, None).await.0, 204);
    assert_eq!(c.nova(Method::GET, &format!("{base}/t1"), &m.token, mv, None).await.0, 204);
    let (s, e) = c.nova(Method::GET, &format!("{base}/t2"), &m.token, mv, None).await;
    assert_eq!((s.as_u16(), msg(&e)), (404, format!("Server {id} has no tag 't2'")));
    let (_, v) = c.nova(Method::GET, &format!("/servers/{id}"), &m.token, mv, None).await;
    assert_eq!(v["server"]["tags"], json!(["t1"]));

    // Invalid tags.
    let (s, e) = c.nova(Method::PUT, &format!("{base}/a,b"), &m.token, mv, None).await;
    assert_eq!(s, 400);
    assert!(msg(&e).starts_with("Tag 'a,b' is invalid. It must be a non empty string without characters '/' and ','."), "{}", msg(&e));
    let (s, e) = c.nova(Method::PUT, &format!("{base}/{}", "x".repeat(61)), &m.token, mv, None).await;
    assert_eq!(s, 400);
    assert!(msg(&e).contains("is too long"), "{}", msg(&e));
    assert_eq!(c.nova(Method::PUT, &format!("{base}/{}", "x".repeat(60)), &m.token, mv, None).await.0, 201);

    // The whole set.
    let (s, v) = c.nova(Method::PUT, &base, &m.token, mv, Some(json!({"tags": ["b", "a", "b"]}))).await;
    assert_eq!((s.as_u16(), v), (200, json!({"tags": ["a", "b"]})));
    for (body, want) in [
        (json!({"tags": ["ok", "a/b"]}), "does not match '^[^,/]*$'"),
        (json!({"tags": [""]}), "is too short"),
        (json!({"tags": [1]}), "is not of type 'string'"),
        (json!({"tags": "a"}), "is not of type 'array'"),
        (json!({"tag": []}), "'tags' is a required property"),
        (json!({"tags": (0..51).map(|i| format!("t{i}")).collect::<Vec<_>>()}), "is too long"),
    ] {
        let (s, e) = c.nova(Method::PUT, &base, &m.token, mv, Some(body.clone())).await;
        assert_eq!(s, 400, "{body}");
        assert!(msg(&e).contains(want), "{body}: {}", msg(&e));
    }
    // 50 tags at most.
    let fifty: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
    assert_eq!(c.nova(Method::PUT, &base, &m.token, mv, Some(json!({"tags": fifty}))).await.0, 200);
    let (s, e) = c.nova(Method::PUT, &format!("{base}/one-more"), &m.token, mv, None).await;
    assert_eq!((s.as_u16(), msg(&e)), (400, "The number of tags exceeded the per-server limit 50".to_string()));
    assert_eq!(c.nova(Method::PUT, &format!("{base}/t7"), &m.token, mv, None).await.0, 204);

    assert_eq!(c.nova(Method::DELETE, &format!("{base}/t7"), &m.token, mv, None).await.0, 204);
    let (s, e) = c.nova(Method::DELETE, &format!("{base}/t7"), &m.token, mv, None).await;
    assert_eq!((s.as_u16(), msg(&e)), (404, format!("Instance {id} has no tag 't7'")));
    assert_eq!(c.nova(Method::DELETE, &base, &m.token, mv, None).await.0, 204);
    assert_eq!(c.nova(Method::GET, &base, &m.token, mv, None).await.1, json!({"tags": []}));

    // State, other projects, readers.
    sql(c, "UPDATE instances SET vm_state = 'building' WHERE uuid = $1", &id).await;
    let (s, e) = c.nova(Method::PUT, &format!("{base}/t1"), &m.token, mv, None).await;
    assert_eq!((s.as_u16(), msg(&e)), (409, format!("Cannot 'update tag' instance {id} while it is in vm_state building")));
    assert_eq!(c.nova(Method::DELETE, &base, &m.token, mv, None).await.0, 409);
    assert_eq!(c.nova(Method::GET, &base, &m.token, mv, None).await.0, 200);
    sql(c, "UPDATE instances SET vm_state = 'active' WHERE uuid = $1", &id).await;
    let other = c.tenant("member").await;
    assert_eq!(c.nova(Method::GET, &base, &other.token, mv, None).await.0, 404);
    assert_eq!(c.nova(Method::PUT, &format!("{base}/x"), &other.token, mv, None).await.0, 404);
    let reader = c.user_on(&m.project_id, "reader").await;
    assert_eq!(c.nova(Method::GET, &base, &reader.token, mv, None).await.0, 200);
    assert_eq!(c.nova(Method::PUT, &format!("{base}/x"), &reader.token, mv, None).await.0, 403);
});

api_test!(async fn ips_and_password(c) {
    let m = c.tenant("member").await;
    let id = server(c, &m).await;
    let (s, v) = c.call(Method::GET, &format!("/servers/{id}/ips"), &m.token, None).await;
    assert_eq!((s.as_u16(), v), (200, json!({"addresses": {}})));
    let (s, e) = c.call(Method::GET, &format!("/servers/{id}/ips/private"), &m.token, None).await;
    assert_eq!((s.as_u16(), msg(&e)), (404, "Instance is not a member of specified network".to_string()));
    // Addresses come from the instance's addresses (filled by the network side).
    sql(c, r#"UPDATE instances SET addresses = '{"private": [{"version": 4, "addr": "10.0.0.5", "OS-EXT-IPS:type": "fixed"}]}' WHERE uuid = $1"#, &id).await;
    let (_, v) = c.call(Method::GET, &format!("/servers/{id}/ips/private"), &m.token, None).await;
    assert_eq!(v, json!({"private": [{"version": 4, "addr": "10.0.0.5"}]}));
    let other = c.tenant("member").await;
    assert_eq!(c.call(Method::GET, &format!("/servers/{id}/ips"), &other.token, None).await.0, 404);

    let path = format!("/servers/{id}/os-server-password");
    let (s, v) = c.call(Method::GET, &path, &m.token, None).await;
    assert_eq!((s.as_u16(), v), (200, json!({"password": ""})));
    let mut conn = c.db.pool.acquire().await.unwrap();
    let inst = ferrostack_compute::db::instances::get(&mut conn, &id, false).await.unwrap().unwrap();
    drop(conn);
    c.compute.set_server_password(&inst, Some("c2VjcmV0")).await.unwrap();
    assert_eq!(c.call(Method::GET, &path, &m.token, None).await.1, json!({"password": "c2VjcmV0"}));
    let reader = c.user_on(&m.project_id, "reader").await;
    assert_eq!(c.call(Method::GET, &path, &reader.token, None).await.0, 200);
    assert_eq!(c.call(Method::DELETE, &path, &reader.token, None).await.0, 403);
    assert_eq!(c.call(Method::DELETE, &path, &other.token, None).await.0, 404);
    assert_eq!(c.call(Method::DELETE, &path, &m.token, None).await.0, 204);
    assert_eq!(c.call(Method::GET, &path, &m.token, None).await.1, json!({"password": ""}));
});

api_test!(async fn remote_consoles_and_tokens(c) {
    let m = c.tenant("member").await;
    let admin = c.admin().await;
    let id = server(c, &m).await;
    let rc = format!("/servers/{id}/remote-consoles");
    let body = |p: &str, t: &str| Some(json!({"remote_console": {"protocol": p, "type": t}}));
    assert_eq!(c.nova(Method::POST, &rc, &m.token, "2.5", body("vnc", "novnc")).await.0, 404);
    let (s, v) = c.nova(Method::POST, &rc, &m.token, "2.6", body("vnc", "novnc")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["remote_console"]["protocol"].as_str(), v["remote_console"]["type"].as_str()), (Some("vnc"), Some("novnc")));
    let url = v["remote_console"]["url"].as_str().unwrap().to_string();
    let token = url.strip_prefix("http://cloud.test/compute/console/?token=").expect(&url).to_string();

    // The console page needs no Keystone token: the console token is the authorization.
    let (s, h, page) = c.raw(Method::GET, &format!("/compute/console/?token={token}"), None, None, &[]).await;
    assert_eq!(s, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("simulated novnc console of server vm1") && page.contains(&id), "{page}");
    assert_eq!(c.raw(Method::GET, "/compute/console/?token=bogus", None, None, &[]).await.0, 404);

    // os-console-auth-tokens: admin, 2.31+.
    let tpath = format!("/os-console-auth-tokens/{token}");
    let (s, v) = c.nova(Method::GET, &tpath, &admin, "2.31", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["console"]["instance_uuid"], id.as_str());
    assert_eq!(v["console"]["host"], "h1");
    assert!(v["console"]["port"].is_i64() && v["console"].get("internal_access_path").is_some());
    assert_eq!(c.nova(Method::GET, &tpath, &admin, "2.30", None).await.0, 400);
    assert_eq!(c.nova(Method::GET, &tpath, &m.token, "2.31", None).await.0, 403);
    let (s, e) = c.nova(Method::GET, "/os-console-auth-tokens/nope", &admin, "2.31", None).await;
    assert_eq!((s.as_u16(), msg(&e)), (404, "Token not found".to_string()));
    // Expired tokens are gone.
    sqlx::query("UPDATE console_auth_tokens SET expires = 1").execute(&c.db.writer).await.unwrap();
    assert_eq!(c.nova(Method::GET, &tpath, &admin, "2.31", None).await.0, 404);
    assert_eq!(c.raw(Method::GET, &format!("/compute/console/?token={token}"), None, None, &[]).await.0, 404);

    // Other protocols, and what Nova refuses.
    for (p, t) in [("spice", "spice-html5"), ("serial", "serial")] {
        let (s, v) = c.nova(Method::POST, &rc, &m.token, "2.6", body(p, t)).await;
        assert_eq!((s.as_u16(), v["remote_console"]["type"].as_str()), (200, Some(t)));
    }
    for (mv, p, t, want) in [
        ("2.6", "vnc", "serial", "Invalid console type serial"),
        ("2.6", "vnc", "xvpvnc", "Invalid console type xvpvnc"),
        ("2.6", "spice", "novnc", "Invalid console type novnc"),
        ("2.6", "rdp", "rdp-html5", "Unavailable console type rdp."),
        ("2.6", "mks", "webmks", "Invalid input for field/attribute protocol. Value: mks. 'mks' is not one of ['vnc', 'spice', 'serial', 'rdp']"),
        ("2.8", "mks", "webmks", "Unavailable console type webmks."),
        ("2.6", "vnc", "bogus", "Invalid input for field/attribute type. Value: bogus. 'bogus' is not one of ['novnc', 'xvpvnc', 'spice-html5', 'serial', 'rdp-html5']"),
    ] {
        let (s, e) = c.nova(Method::POST, &rc, &m.token, mv, body(p, t)).await;
        assert_eq!((s.as_u16(), msg(&e)), (400, want.to_string()), "{p}/{t}");
    }
    let (s, e) = c.nova(Method::POST, &rc, &m.token, "2.6", Some(json!({"remote_console": {"protocol": "vnc"}}))).await;
    assert_eq!(s, 400);
    assert!(msg(&e).contains("'type' is a required property"), "{}", msg(&e));

    // Legacy actions (2.1-2.5).
    let act = format!("/servers/{id}/action");
    let (s, v) = c.call(Method::POST, &act, &m.token, Some(json!({"os-getVNCConsole": {"type": "novnc"}}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["console"]["type"], "novnc");
    assert!(v["console"]["url"].as_str().unwrap().contains("/compute/console/?token="));
    let (s, v) = c.call(Method::POST, &act, &m.token, Some(json!({"os-getSPICEConsole": {"type": "spice-html5"}}))).await;
    assert_eq!((s.as_u16(), v["console"]["type"].as_str()), (200, Some("spice-html5")));
    let (s, v) = c.call(Method::POST, &act, &m.token, Some(json!({"os-getSerialConsole": {"type": "serial"}}))).await;
    assert_eq!((s.as_u16(), v["console"]["type"].as_str()), (200, Some("serial")));
    assert_eq!(c.call(Method::POST, &act, &m.token, Some(json!({"os-getRDPConsole": {"type": "rdp-html5"}}))).await.0, 400);
    let (s, e) = c.call(Method::POST, &act, &m.token, Some(json!({"os-getVNCConsole": {"type": "spice-html5"}}))).await;
    assert_eq!((s.as_u16(), msg(&e)), (400, "Invalid input for field/attribute type. Value: spice-html5. 'spice-html5' is not one of ['novnc', 'xvpvnc']".to_string()));
    let (s, e) = c.call(Method::POST, &act, &m.token, Some(json!({"os-getVNCConsole": {}}))).await;
    assert_eq!(s, 400);
    assert!(msg(&e).contains("'type' is a required property"));
    assert_eq!(c.nova(Method::POST, &act, &m.token, "2.6", Some(json!({"os-getVNCConsole": {"type": "novnc"}}))).await.0, 404);

    // Locked servers still give consoles (Nova does not guard consoles with the lock).
    assert_eq!(c.call(Method::POST, &act, &m.token, Some(json!({"lock": null}))).await.0, 202);
    assert_eq!(c.nova(Method::POST, &rc, &m.token, "2.6", body("vnc", "novnc")).await.0, 200);

    // Not running: 409; other projects: 404; readers: 403.
    sql(c, "UPDATE instances SET vm_state = 'stopped', power_state = 4 WHERE uuid = $1", &id).await;
    let (s, e) = c.nova(Method::POST, &rc, &m.token, "2.6", body("vnc", "novnc")).await;
    assert_eq!((s.as_u16(), msg(&e)), (409, format!("Instance {id} is not ready")));
    assert_eq!(c.call(Method::POST, &act, &m.token, Some(json!({"os-getVNCConsole": {"type": "novnc"}}))).await.0, 409);
    let other = c.tenant("member").await;
    assert_eq!(c.nova(Method::POST, &rc, &other.token, "2.6", body("vnc", "novnc")).await.0, 404);
    let reader = c.user_on(&m.project_id, "reader").await;
    assert_eq!(c.nova(Method::POST, &rc, &reader.token, "2.6", body("vnc", "novnc")).await.0, 403);
});

api_test!(async fn diagnostics(c) {
    let m = c.tenant("member").await;
    let admin = c.admin().await;
    let id = server(c, &m).await;
    let path = format!("/servers/{id}/diagnostics");
    let (s, v) = c.nova(Method::GET, &path, &admin, "2.48", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["state"].as_str(), v["driver"].as_str(), v["num_cpus"].as_i64(), v["num_nics"].as_i64(), v["num_disks"].as_i64()),
        (Some("running"), Some("libvirt"), Some(2), Some(0), Some(1)));
    assert_eq!(v["memory_details"], json!({"maximum": 2048, "used": 0}));
    assert_eq!(v["cpu_details"].as_array().unwrap().len(), 2);
    assert_eq!(v["disk_details"].as_array().unwrap().len(), 1);
    assert_eq!(v["nic_details"], json!([]));
    assert_eq!(v["config_drive"], false);
    assert!(v["uptime"].as_i64().unwrap() >= 5);
    for k in ["hypervisor", "hypervisor_os"] {
        assert!(v[k].is_string(), "{k}");
    }
    // Before 2.48: the driver's own dict.
    let (s, v) = c.nova(Method::GET, &path, &admin, "2.47", None).await;
    assert_eq!(s, 200);
    assert!(v.get("driver").is_none());
    assert_eq!((v["memory"].as_i64(), v["cpu1_time"].is_i64(), v["vda_read"].is_i64()), (Some(2048 * 1024), true, true));

    assert_eq!(c.nova(Method::GET, &path, &m.token, "2.48", None).await.0, 403);
    sql(c, "UPDATE instances SET vm_state = 'stopped', power_state = 4 WHERE uuid = $1", &id).await;
    let (s, e) = c.nova(Method::GET, &path, &admin, "2.48", None).await;
    assert_eq!((s.as_u16(), msg(&e)), (409, format!("Cannot 'get_diagnostics' instance {id} while it is in vm_state stopped")));
    sql(c, "UPDATE instances SET vm_state = 'building', host = NULL WHERE uuid = $1", &id).await;
    assert_eq!(c.nova(Method::GET, &path, &admin, "2.48", None).await.0, 409);
});

/// Inserts a migration row as the move actions write it; returns its id.
#[allow(clippy::too_many_arguments)]
async fn migration(
    c: &TestCloud,
    id: i64,
    inst: &str,
    kind: &str,
    status: &str,
    src: &str,
    dst: &str,
    project: &str,
    user: &str,
    created: i64,
) {
    sqlx::query("INSERT INTO migrations (id, uuid, instance_uuid, source_compute, dest_compute, source_node, dest_node, \
                 old_flavor_id, new_flavor_id, migration_type, status, project_id, user_id, created_at, updated_at, memory_total) \
                 VALUES ($1, $2, $3, $4, $5, $4, $5, '1', '2', $6, $7, $8, $9, $10, $10, 1024)")
        .bind(id).bind(format!("00000000-0000-0000-0000-00000000000{id}")).bind(inst).bind(src).bind(dst)
        .bind(kind).bind(status).bind(project).bind(user).bind(created)
        .execute(&c.db.writer).await.unwrap();
}

api_test!(async fn os_migrations_and_server_migrations(c) {
    let m = c.tenant("member").await;
    let admin = c.admin().await;
    let a = server(c, &m).await;
    let b = server(c, &m).await;
    let (p, u) = (m.project_id.as_str(), m.user_id.as_str());
    let t0 = 1_700_000_000_000_000;
    migration(c, 1, &a, "resize", "finished", "h1", "h2", p, u, t0).await;
    migration(c, 2, &a, "live-migration", "running", "h2", "h3", p, u, t0 + 1_000_000).await;
    migration(c, 3, &b, "migration", "error", "h3", "h1", p, "someone", t0 + 2_000_000).await;
    migration(c, 4, &b, "live-migration", "completed", "h1", "h2", "other", u, t0 + 3_000_000).await;

    let (s, v) = c.call(Method::GET, "/os-migrations", &admin, None).await;
    assert_eq!(s, 200);
    let list = v["migrations"].as_array().unwrap();
    assert_eq!(list.iter().map(|x| x["id"].as_i64().unwrap()).collect::<Vec<_>>(), vec![4, 3, 2, 1]);
    let first = &list[3];
    assert_eq!(first["instance_uuid"], a.as_str());
    assert_eq!((first["old_instance_type_id"].as_i64(), first["new_instance_type_id"].as_i64()), (Some(1), Some(2)));
    assert_eq!(first["created_at"], "2023-11-14T22:13:20.000000");
    assert!(first.get("migration_type").is_none() && first.get("uuid").is_none() && first.get("links").is_none());
    for k in ["dest_compute", "dest_host", "dest_node", "source_compute", "source_node", "status", "updated_at"] {
        assert!(first.get(k).is_some(), "{k}");
    }
    assert_eq!(c.call(Method::GET, "/os-migrations", &m.token, None).await.0, 403);

    // Filters.
    let ids = |v: &Value| v["migrations"].as_array().unwrap().iter().map(|x| x["id"].as_i64().unwrap()).collect::<Vec<_>>();
    for (q, want) in [
        ("host=h1", vec![4, 3, 1]),
        ("source_compute=h1", vec![4, 1]),
        ("status=running", vec![2]),
        (&format!("instance_uuid={b}") as &str, vec![4, 3]),
        ("migration_type=live-migration", vec![4, 2]),
        ("host=h3&status=error", vec![3]),
    ] {
        let (_, v) = c.call(Method::GET, &format!("/os-migrations?{q}"), &admin, None).await;
        assert_eq!(ids(&v), want, "{q}");
    }

    // 2.23: migration_type, links for in-progress live migrations.
    let (_, v) = c.nova(Method::GET, "/os-migrations", &admin, "2.23", None).await;
    let l = v["migrations"].as_array().unwrap();
    assert_eq!(l[2]["migration_type"], "live-migration");
    assert_eq!(l[2]["links"][0]["href"], format!("http://cloud.test/compute/v2.1/servers/{a}/migrations/2").as_str());
    assert!(l[0].get("links").is_none() && l[3].get("links").is_none());
    assert!(l[0].get("uuid").is_none());

    // 2.59: uuid, paging, changes-since; unknown parameters refused.
    let (_, v) = c.nova(Method::GET, "/os-migrations?limit=2", &admin, "2.59", None).await;
    assert_eq!(ids(&v), vec![4, 3]);
    assert_eq!(v["migrations"][0]["uuid"], "00000000-0000-0000-0000-000000000004");
    let next = v["migrations_links"][0]["href"].as_str().unwrap();
    assert!(next.starts_with("http://cloud.test/compute/v2.1/os-migrations?") && next.contains("limit=2")
        && next.contains("marker=00000000-0000-0000-0000-000000000003"), "{next}");
    let (_, v) = c.nova(Method::GET, "/os-migrations?limit=2&marker=00000000-0000-0000-0000-000000000003", &admin, "2.59", None).await;
    assert_eq!(ids(&v), vec![2, 1]);
    let (s, e) = c.nova(Method::GET, "/os-migrations?marker=nope", &admin, "2.59", None).await;
    assert_eq!((s.as_u16(), msg(&e)), (400, "Marker nope could not be found.".to_string()));
    assert_eq!(c.nova(Method::GET, "/os-migrations?foo=1", &admin, "2.59", None).await.0, 400);
    assert_eq!(c.nova(Method::GET, "/os-migrations?foo=1", &admin, "2.58", None).await.0, 200);
    assert_eq!(c.nova(Method::GET, "/os-migrations?user_id=x", &admin, "2.79", None).await.0, 400);
    let (_, v) = c.nova(Method::GET, "/os-migrations?changes-since=2023-11-14T22:13:22Z", &admin, "2.59", None).await;
    assert_eq!(ids(&v), vec![4, 3]);
    let (s, _) = c.nova(Method::GET, "/os-migrations?changes-since=yesterday", &admin, "2.59", None).await;
    assert_eq!(s, 400);
    let (_, v) = c.nova(Method::GET, "/os-migrations?changes-before=2023-11-14T22:13:21Z", &admin, "2.66", None).await;
    assert_eq!(ids(&v), vec![2, 1]);
    let (s, e) = c.nova(Method::GET, "/os-migrations?changes-since=2023-11-14T22:13:22Z&changes-before=2023-11-14T22:13:21Z", &admin, "2.66", None).await;
    assert_eq!((s.as_u16(), msg(&e)), (400, "The value of changes-since must be less than or equal to changes-before.".to_string()));

    // 2.80: user_id / project_id shown and filtered.
    let (_, v) = c.nova(Method::GET, &format!("/os-migrations?user_id={u}"), &admin, "2.80", None).await;
    assert_eq!(ids(&v), vec![4, 2, 1]);
    assert_eq!(v["migrations"][0]["project_id"], "other");
    let (_, v) = c.nova(Method::GET, &format!("/os-migrations?project_id={p}&user_id={u}"), &admin, "2.80", None).await;
    assert_eq!(ids(&v), vec![2, 1]);
    let (_, v) = c.nova(Method::GET, "/os-migrations", &admin, "2.79", None).await;
    assert!(v["migrations"][0].get("user_id").is_none());

    // A server's in-progress live migrations.
    assert_eq!(c.nova(Method::GET, &format!("/servers/{a}/migrations"), &admin, "2.22", None).await.0, 404);
    let (s, v) = c.nova(Method::GET, &format!("/servers/{a}/migrations"), &admin, "2.23", None).await;
    assert_eq!(s, 200);
    let l = v["migrations"].as_array().unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!((l[0]["id"].as_i64(), l[0]["server_uuid"].as_str(), l[0]["memory_total_bytes"].as_i64()), (Some(2), Some(a.as_str()), Some(1024)));
    assert_eq!(l[0]["source_compute"], "h2");
    assert!(l[0].get("uuid").is_none());
    let (_, v) = c.nova(Method::GET, &format!("/servers/{b}/migrations"), &admin, "2.80", None).await;
    assert_eq!(v, json!({"migrations": []}));
    let (s, v) = c.nova(Method::GET, &format!("/servers/{a}/migrations/2"), &admin, "2.80", None).await;
    assert_eq!(s, 200);
    assert_eq!((v["migration"]["uuid"].as_str(), v["migration"]["user_id"].as_str()), (Some("00000000-0000-0000-0000-000000000002"), Some(u)));
    for (path, want) in [
        (format!("/servers/{a}/migrations/1"), "Migration 1 for server {a} is not live-migration."),
        (format!("/servers/{b}/migrations/4"), "Live migration 4 for server {b} is not in progress."),
        (format!("/servers/{a}/migrations/4"), "In-progress live migration 4 is not found for server {a}."),
        (format!("/servers/{a}/migrations/x"), "In-progress live migration x is not found for server {a}."),
    ] {
        let (s, e) = c.nova(Method::GET, &path, &admin, "2.23", None).await;
        let want = want.replace("{a}", &a).replace("{b}", &b);
        assert_eq!((s.as_u16(), msg(&e)), (404, want), "{path}");
    }
    assert_eq!(c.nova(Method::GET, &format!("/servers/{a}/migrations"), &m.token, "2.23", None).await.0, 403);
    assert_eq!(c.nova(Method::GET, &format!("/servers/{a}/migrations/2"), &m.token, "2.23", None).await.0, 403);
});

api_test!(async fn versions_root_and_access_ips(c) {
    // With and without the trailing slash (clients strip "v2.1" from the catalog URL).
    assert_eq!(c.raw(Method::GET, "/compute", None, None, &[]).await.0, 200);
    let (s, _, body) = c.raw(Method::GET, "/compute/", None, None, &[]).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    let vs = v["versions"].as_array().unwrap();
    assert_eq!((vs[0]["id"].as_str(), vs[0]["status"].as_str(), vs[0]["version"].as_str(), vs[0]["min_version"].as_str()),
        (Some("v2.0"), Some("SUPPORTED"), Some(""), Some("")));
    assert_eq!((vs[1]["id"].as_str(), vs[1]["status"].as_str()), (Some("v2.1"), Some("CURRENT")));

    let m = c.tenant("member").await;
    let id = server(c, &m).await;
    let path = format!("/servers/{id}");
    let (s, v) = c.call(Method::PUT, &path, &m.token, Some(json!({"server": {
        "accessIPv4": "192.168.0.7", "accessIPv6": "0000:0000:0000:0000:0000:babe:220.12.22.2"}}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["server"]["accessIPv4"].as_str(), v["server"]["accessIPv6"].as_str()), (Some("192.168.0.7"), Some("::babe:dc0c:1602")));
    let (_, v) = c.call(Method::GET, &path, &m.token, None).await;
    assert_eq!(v["server"]["accessIPv6"], "::babe:dc0c:1602");
    for body in [json!({"accessIPv4": "1.2.3"}), json!({"accessIPv4": "::1"}), json!({"accessIPv6": "1.2.3.4"}), json!({"accessIPv6": 6})] {
        let (s, e) = c.call(Method::PUT, &path, &m.token, Some(json!({"server": body.clone()}))).await;
        assert_eq!(s, 400, "{body}: {e}");
    }
    let (_, e) = c.call(Method::PUT, &path, &m.token, Some(json!({"server": {"accessIPv4": "1.2.3"}}))).await;
    assert_eq!(msg(&e), "Invalid input for field/attribute accessIPv4. Value: 1.2.3. '1.2.3' is not a 'ipv4'");
    // Nothing was changed by a refused update.
    let (_, v) = c.call(Method::GET, &path, &m.token, None).await;
    assert_eq!(v["server"]["accessIPv4"], "192.168.0.7");
});
