//! Servers: create/list/show/update/delete, the actions and their state rules, bad input,
//! quota, and where the scheduler puts servers, with fake hosts behind in-process agents.

use std::collections::HashSet;

use http::Method;
use serde_json::{json, Value};

use crate::common::TestCloud;

fn ids(v: &Value) -> Vec<String> {
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn names(v: &Value) -> Vec<String> {
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

api_test!(async fn create_active_and_views_per_microversion(c) {
    let hosts = c.start_hosts(2).await;
    let m = c.tenant("member").await;
    let image = c.image_id().await;
    let (s, v) = c.create_server_with(&m.token, "2.37",
        json!({"name": "web 1", "metadata": {"role": "web"}}), None).await;
    assert_eq!(s, 202, "{v}");
    let created = &v["server"];
    let id = created["id"].as_str().unwrap().to_string();
    assert!(created["adminPass"].is_string(), "{v}");
    assert_eq!(created["security_groups"], json!([{"name": "default"}]));
    assert_eq!(created["OS-DCF:diskConfig"], "MANUAL");
    assert!(created["links"][0]["href"].as_str().unwrap().ends_with(&format!("/v2.1/servers/{id}")));

    let admin_view = c.wait_status(&id, "ACTIVE").await;
    assert!(hosts.iter().any(|h| admin_view["OS-EXT-SRV-ATTR:host"] == h.as_str()), "{admin_view}");
    assert_eq!(admin_view["OS-EXT-SRV-ATTR:hostname"], "web-1");
    assert_eq!(admin_view["OS-EXT-STS:power_state"], 1);
    assert!(admin_view["OS-SRV-USG:launched_at"].is_string(), "{admin_view}");

    // 2.1: flavor by id and link, no host attributes for the owner, no 2.x fields.
    let (s, v) = c.call(Method::GET, &format!("/servers/{id}"), &m.token, None).await;
    assert_eq!(s, 200);
    let sv = &v["server"];
    assert_eq!(sv["status"], "ACTIVE");
    assert_eq!(sv["name"], "web 1");
    assert_eq!(sv["tenant_id"], m.project_id.as_str());
    assert_eq!(sv["user_id"], m.user_id.as_str());
    assert_eq!(sv["metadata"], json!({"role": "web"}));
    assert_eq!(sv["flavor"]["id"], "1");
    assert!(sv["flavor"]["links"][0]["href"].as_str().unwrap().ends_with("/flavors/1"));
    assert_eq!(sv["image"]["id"], image.as_str());
    assert_eq!(sv["OS-EXT-AZ:availability_zone"], "nova");
    assert_eq!(sv["hostId"].as_str().unwrap().len(), 56);
    for absent in ["OS-EXT-SRV-ATTR:host", "locked", "description", "tags", "locked_reason"] {
        assert!(sv.get(absent).is_none(), "{absent} at 2.1: {sv}");
    }
    // 2.47: the flavor is embedded.
    let (_, v) = c.nova(Method::GET, &format!("/servers/{id}"), &m.token, "2.47", None).await;
    let f = &v["server"]["flavor"];
    assert_eq!((f["original_name"].as_str(), f["vcpus"].as_i64(), f["ram"].as_i64(), f["disk"].as_i64()),
        (Some("m1.tiny"), Some(1), Some(512), Some(1)), "{f}");
    assert!(f.get("id").is_none());
    // 2.64+ (and the newest): locked, description, tags, trusted certs, locked_reason.
    let (_, v) = c.nova(Method::GET, &format!("/servers/{id}"), &m.token, "2.73", None).await;
    let sv = &v["server"];
    assert_eq!(sv["locked"], false);
    assert!(sv["locked_reason"].is_null() && sv["description"].is_null());
    assert_eq!(sv["tags"], json!([]));
    assert!(sv.get("trusted_image_certificates").is_some());
    assert!(sv.get("OS-EXT-SRV-ATTR:host").is_none());
    // The host's agent reported the server running: the admin sees the host up.
    let (_, v) = c.nova(Method::GET, &format!("/servers/{id}"), &c.admin().await, "2.16", None).await;
    assert_eq!(v["server"]["host_status"], "UP");
    // The create is recorded as an instance action.
    let (_, v) = c.call(Method::GET, &format!("/servers/{id}/os-instance-actions"), &m.token, None).await;
    assert_eq!(v["instanceActions"][0]["action"], "create", "{v}");
});

api_test!(async fn list_filters_sorting_and_pagination(c) {
    c.start_hosts(2).await;
    let m = c.tenant("member").await;
    let other = c.tenant("member").await;
    let admin = c.admin().await;
    let mut mine = Vec::new();
    for n in ["alpha-1", "alpha-2", "beta-1"] {
        mine.push(c.boot(&m.token, n).await);
    }
    let theirs = c.boot(&other.token, "alpha-other").await;
    let (s, v) = c.call(Method::GET, "/servers", &m.token, None).await;
    assert_eq!(s, 200);
    let mut listed = ids(&v);
    listed.sort();
    let mut want = mine.clone();
    want.sort();
    assert_eq!(listed, want, "a project sees its own servers only");
    // The short list has id, name and links only.
    let first = v["servers"][0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["id", "links", "name"]);
    // Newest first by default.
    assert_eq!(names(&v), ["beta-1", "alpha-2", "alpha-1"]);

    let get = |q: &'static str| {
        let token = m.token.clone();
        async move { c.call(Method::GET, &format!("/servers/detail?{q}"), &token, None).await }
    };
    assert_eq!(names(&get("name=^alpha").await.1).len(), 2);
    assert_eq!(names(&get("name=beta").await.1), ["beta-1"]);
    assert_eq!(get("name=(").await.0, 400);
    assert_eq!(names(&get("status=ACTIVE").await.1).len(), 3);
    assert_eq!(c.action(&m.token, &mine[2], "2.1", json!({"os-stop": null})).await.0, 202);
    c.wait_status(&mine[2], "SHUTOFF").await;
    assert_eq!(names(&get("status=SHUTOFF").await.1), ["beta-1"]);
    assert_eq!(names(&get("status=shutoff").await.1), ["beta-1"]);
    assert_eq!(names(&get("flavor=1").await.1).len(), 3);
    assert_eq!(names(&get("flavor=2").await.1).len(), 0);
    let image = c.image_id().await;
    let (_, v) = c.call(Method::GET, &format!("/servers?image={image}"), &m.token, None).await;
    assert_eq!(ids(&v).len(), 3);

    // Sorting.
    let (_, v) = get("sort_key=display_name&sort_dir=asc").await;
    assert_eq!(names(&v), ["alpha-1", "alpha-2", "beta-1"]);
    let (_, v) = get("sort_key=display_name&sort_dir=desc").await;
    assert_eq!(names(&v), ["beta-1", "alpha-2", "alpha-1"]);

    // Pagination: limit, marker and the next link.
    let (_, v) = get("sort_key=display_name&sort_dir=asc&limit=2").await;
    assert_eq!(names(&v), ["alpha-1", "alpha-2"]);
    let next = v["servers_links"][0]["href"].as_str().expect("a next link").to_string();
    assert_eq!(v["servers_links"][0]["rel"], "next");
    let marker = next.split("marker=").nth(1).unwrap().split('&').next().unwrap().to_string();
    assert_eq!(marker, ids(&v)[1]);
    assert!(next.contains("/v2.1/servers/detail?"), "{next}");
    // The link keeps the sort (and any filter), so following it continues the same listing.
    assert!(next.contains("sort_key=display_name&sort_dir=asc&limit=2&marker="), "{next}");
    let (_, v) = c.call(Method::GET, &format!("/servers/detail?sort_key=display_name&sort_dir=asc&limit=2&marker={marker}"), &m.token, None).await;
    assert_eq!(names(&v), ["beta-1"]);
    assert!(v.get("servers_links").is_none(), "no next link on the last page: {v}");
    let (_, v) = get("limit=3").await;
    assert!(v.get("servers_links").is_none(), "a full last page has no next link: {v}");
    for bad in ["limit=-1", "limit=abc", "marker=nope", "changes-since=yesterday"] {
        let (s, e) = get(bad).await;
        assert_eq!(s, 400, "{bad}: {e}");
    }

    // host: an admin filter.
    let host = c.server(&theirs).await["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_string();
    let (_, v) = c.call(Method::GET, &format!("/servers?all_tenants=1&host={host}"), &admin, None).await;
    let on_host = ids(&v);
    assert!(on_host.contains(&theirs));
    for id in &on_host {
        assert_eq!(c.server(id).await["OS-EXT-SRV-ATTR:host"], host.as_str());
    }
    let (_, v) = c.call(Method::GET, "/servers?all_tenants=1&host=nowhere", &admin, None).await;
    assert_eq!(ids(&v).len(), 0);
    // For others `host` is ignored, as Nova drops admin-only filters.
    let (_, v) = c.call(Method::GET, "/servers?host=nowhere", &m.token, None).await;
    assert_eq!(ids(&v).len(), 3);
    // all_tenants: admins see every project; others are refused.
    let (_, v) = c.call(Method::GET, "/servers?all_tenants=True", &admin, None).await;
    assert_eq!(ids(&v).len(), 4);
    let (_, v) = c.call(Method::GET, &format!("/servers?all_tenants=1&project_id={}", other.project_id), &admin, None).await;
    assert_eq!(ids(&v), std::slice::from_ref(&theirs));
    assert_eq!(c.call(Method::GET, "/servers?all_tenants=1", &m.token, None).await.0, 403);
    assert_eq!(c.call(Method::GET, "/servers/detail?all_tenants=1", &m.token, None).await.0, 403);

    // changes-since: what changed at or after the time, deleted servers included.
    let since = c.server(&mine[0]).await["updated"].as_str().unwrap().to_string();
    assert_eq!(c.call(Method::DELETE, &format!("/servers/{}", mine[0]), &m.token, None).await.0, 204);
    c.wait_gone(&mine[0]).await;
    let (_, v) = c.call(Method::GET, "/servers/detail", &m.token, None).await;
    assert!(!ids(&v).contains(&mine[0]));
    let (_, v) = c.call(Method::GET, &format!("/servers/detail?changes-since={since}"), &m.token, None).await;
    let deleted = v["servers"].as_array().unwrap().iter().find(|s| s["id"] == mine[0].as_str())
        .unwrap_or_else(|| panic!("deleted server listed with changes-since: {v}"));
    assert_eq!(deleted["status"], "DELETED");
    let (_, v) = get("changes-since=2999-01-01T00:00:00Z").await;
    assert_eq!(ids(&v).len(), 0);
});

api_test!(async fn update_show_and_delete(c) {
    c.start_hosts(1).await;
    let m = c.tenant("member").await;
    let id = c.boot(&m.token, "old").await;
    let path = format!("/servers/{id}");
    let (s, v) = c.call(Method::PUT, &path, &m.token, Some(json!({"server": {"name": "new"}}))).await;
    assert_eq!((s.as_u16(), v["server"]["name"].as_str()), (200, Some("new")), "{v}");
    // description needs 2.19.
    let body = Some(json!({"server": {"description": "the web server"}}));
    let (s, e) = c.call(Method::PUT, &path, &m.token, body.clone()).await;
    assert_eq!(s, 400, "{e}");
    let (s, v) = c.nova(Method::PUT, &path, &m.token, "2.19", body).await;
    assert_eq!((s.as_u16(), v["server"]["description"].as_str()), (200, Some("the web server")));
    let (_, v) = c.nova(Method::GET, &path, &m.token, "2.19", None).await;
    assert_eq!((v["server"]["name"].as_str(), v["server"]["description"].as_str()),
        (Some("new"), Some("the web server")));
    for bad in [json!({"server": {"name": ""}}), json!({"server": {"name": "x".repeat(256)}}),
        json!({"server": {"flavorRef": "2"}}), json!({"nope": {}})] {
        let (s, e) = c.nova(Method::PUT, &path, &m.token, "2.19", Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}: {e}");
    }
    // Description at create (2.19).
    let (s, v) = c.create_server_with(&m.token, "2.19", json!({"name": "d", "description": "desc",
        "networks": null}), None).await;
    assert_eq!(s, 202, "{v}");
    let d = v["server"]["id"].as_str().unwrap().to_string();
    let (_, v) = c.nova(Method::GET, &format!("/servers/{d}"), &m.token, "2.19", None).await;
    assert_eq!(v["server"]["description"], "desc");
    c.wait_status(&d, "ACTIVE").await;

    assert_eq!(c.call(Method::DELETE, &path, &m.token, None).await.0, 204);
    c.wait_gone(&id).await;
    let (s, e) = c.call(Method::GET, &path, &m.token, None).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (404, format!("Instance {id} could not be found.")));
    assert_eq!(c.call(Method::DELETE, &path, &m.token, None).await.0, 404);
    let deleted: i64 = ferrostack_store::sqlx::query_scalar("SELECT deleted FROM instances WHERE uuid = $1")
        .bind(&id).fetch_one(&c.db.pool).await.unwrap();
    assert_ne!(deleted, 0);
    // Its resources went back: only the other server counts on the host.
    let (_, v) = c.call(Method::GET, "/os-hypervisors/statistics", &c.admin().await, None).await;
    assert_eq!(v["hypervisor_statistics"]["memory_mb_used"], 512, "{v}");
});

api_test!(async fn other_projects_servers_are_not_found(c) {
    c.start_hosts(1).await;
    let m = c.tenant("member").await;
    let other = c.tenant("member").await;
    let id = c.boot(&m.token, "mine").await;
    let path = format!("/servers/{id}");
    let msg = format!("Instance {id} could not be found.");
    for (method, p, body) in [
        (Method::GET, path.clone(), None),
        (Method::PUT, path.clone(), Some(json!({"server": {"name": "x"}}))),
        (Method::DELETE, path.clone(), None),
        (Method::POST, format!("{path}/action"), Some(json!({"os-stop": null}))),
        (Method::GET, format!("{path}/os-instance-actions"), None),
    ] {
        let (s, e) = c.call(method.clone(), &p, &other.token, body).await;
        assert_eq!((s.as_u16(), TestCloud::message(&e)), (404, msg.clone()), "{method} {p}");
    }
    // A reader of the owning project may look but not act.
    let reader = c.user_on(&m.project_id, "reader").await;
    assert_eq!(c.call(Method::GET, &path, &reader.token, None).await.0, 200);
    assert_eq!(c.action(&reader.token, &id, "2.1", json!({"os-stop": null})).await.0, 403);
    assert_eq!(c.call(Method::DELETE, &path, &reader.token, None).await.0, 403);
    assert_eq!(c.server(&id).await["status"], "ACTIVE");
});

api_test!(async fn multi_create_spreads_over_hosts(c) {
    let hosts = c.start_hosts(3).await;
    let m = c.tenant("member").await;
    let admin = c.admin().await;
    let (s, v) = c.create_server_with(&m.token, "2.37",
        json!({"name": "many", "min_count": 3, "max_count": 3, "return_reservation_id": true}), None).await;
    assert_eq!(s, 202, "{v}");
    let rid = v["reservation_id"].as_str().expect("reservation_id").to_string();
    assert!(v.get("server").is_none());
    let (_, v) = c.call(Method::GET, &format!("/servers?reservation_id={rid}"), &m.token, None).await;
    let mut got = names(&v);
    got.sort();
    assert_eq!(got, ["many-1", "many-2", "many-3"]);
    let list = ids(&v);
    for id in &list {
        let s = c.wait_status(id, "ACTIVE").await;
        assert_eq!(s["OS-EXT-SRV-ATTR:reservation_id"], rid.as_str());
    }
    let placed: HashSet<String> = c.hosts_of(&list).await.into_iter().collect();
    assert_eq!(placed, hosts.iter().cloned().collect::<HashSet<_>>(), "spread over every host");
    let (_, v) = c.nova(Method::GET, &format!("/servers/detail?all_tenants=1&reservation_id={rid}"), &admin, "2.3", None).await;
    let mut idx: Vec<i64> = v["servers"].as_array().unwrap().iter()
        .map(|s| s["OS-EXT-SRV-ATTR:launch_index"].as_i64().unwrap()).collect();
    idx.sort();
    assert_eq!(idx, [0, 1, 2]);

    // max_count beyond quota creates as many as fit (at least min_count).
    c.call(Method::PUT, &format!("/os-quota-sets/{}", m.project_id), &admin,
        Some(json!({"quota_set": {"instances": 5}}))).await;
    let (s, v) = c.create_server_with(&m.token, "2.37",
        json!({"name": "more", "min_count": 1, "max_count": 10, "return_reservation_id": true}), None).await;
    assert_eq!(s, 202, "{v}");
    let (_, v) = c.call(Method::GET, &format!("/servers?reservation_id={}", v["reservation_id"].as_str().unwrap()),
        &m.token, None).await;
    assert_eq!(ids(&v).len(), 2);
    let (s, e) = c.create_server_with(&m.token, "2.37", json!({"name": "x", "min_count": 2, "max_count": 2}), None).await;
    assert_eq!(s, 403, "{e}");
    assert!(TestCloud::message(&e).contains("instances"), "{e}");
    for bad in [json!({"min_count": 0}), json!({"min_count": 3, "max_count": 2}), json!({"max_count": "x"})] {
        let (s, e) = c.create_server_with(&m.token, "2.37", bad.clone(), None).await;
        assert_eq!(s, 400, "{bad}: {e}");
    }
});

/// Posts `body` and waits for `status` (202 expected).
async fn act(c: &TestCloud, token: &str, id: &str, mv: &str, body: Value, status: &str) {
    let (s, v) = c.action(token, id, mv, body.clone()).await;
    assert_eq!(s, 202, "{body}: {v}");
    let sv = c.wait_status(id, status).await;
    let last = {
        let (_, v) = c
            .call(
                Method::GET,
                &format!("/servers/{id}/os-instance-actions"),
                token,
                None,
            )
            .await;
        v["instanceActions"][0].clone()
    };
    assert!(
        last["message"].is_null(),
        "{body}: action failed: {last}; server {sv}"
    );
}

/// Asserts that `body` is refused with 409 and a message that names the action's state.
async fn conflict(c: &TestCloud, token: &str, id: &str, body: Value) {
    let (s, e) = c.action(token, id, "2.96", body.clone()).await;
    assert_eq!(s, 409, "{body}: {e}");
    let msg = TestCloud::message(&e);
    assert!(
        msg.contains(&format!("instance {id} while it is in")),
        "{body}: {msg}"
    );
}

api_test!(async fn power_actions_follow_state_rules(c) {
    c.start_hosts(1).await;
    let m = c.tenant("member").await;
    let t = m.token.as_str();
    let id = c.boot(t, "vm").await;

    act(c, t, &id, "2.1", json!({"reboot": {"type": "SOFT"}}), "ACTIVE").await;
    act(c, t, &id, "2.1", json!({"reboot": {"type": "HARD"}}), "ACTIVE").await;
    let (s, _) = c.action(t, &id, "2.1", json!({"reboot": {"type": "gentle"}})).await;
    assert_eq!(s, 400);
    conflict(c, t, &id, json!({"os-start": null})).await;
    conflict(c, t, &id, json!({"unpause": null})).await;
    conflict(c, t, &id, json!({"resume": null})).await;
    conflict(c, t, &id, json!({"unshelve": null})).await;

    act(c, t, &id, "2.1", json!({"os-stop": null}), "SHUTOFF").await;
    assert_eq!(c.server(&id).await["OS-EXT-STS:power_state"], 4);
    conflict(c, t, &id, json!({"os-stop": null})).await;
    conflict(c, t, &id, json!({"pause": null})).await;
    conflict(c, t, &id, json!({"suspend": null})).await;
    conflict(c, t, &id, json!({"reboot": {"type": "SOFT"}})).await;
    act(c, t, &id, "2.1", json!({"os-start": null}), "ACTIVE").await;
    assert_eq!(c.server(&id).await["OS-EXT-STS:power_state"], 1);

    act(c, t, &id, "2.1", json!({"pause": null}), "PAUSED").await;
    assert_eq!(c.server(&id).await["OS-EXT-STS:power_state"], 3);
    conflict(c, t, &id, json!({"pause": null})).await;
    conflict(c, t, &id, json!({"suspend": null})).await;
    act(c, t, &id, "2.1", json!({"unpause": null}), "ACTIVE").await;

    act(c, t, &id, "2.1", json!({"suspend": null}), "SUSPENDED").await;
    assert_eq!(c.server(&id).await["OS-EXT-STS:power_state"], 7);
    conflict(c, t, &id, json!({"pause": null})).await;
    act(c, t, &id, "2.1", json!({"resume": null}), "ACTIVE").await;

    // A hard reboot brings a stopped server back.
    act(c, t, &id, "2.1", json!({"os-stop": null}), "SHUTOFF").await;
    act(c, t, &id, "2.1", json!({"reboot": {"type": "HARD"}}), "ACTIVE").await;
    assert_eq!(c.server(&id).await["OS-EXT-STS:power_state"], 1);

    // A server busy with an action refuses the next one (task_state set).
    {
        let (s, _) = c.action(t, &id, "2.1", json!({"os-stop": null})).await;
        assert_eq!(s, 202);
        let (s, e) = c.action(t, &id, "2.1", json!({"os-stop": null})).await;
        // Either the stop is still running (task_state) or already done (vm_state stopped).
        assert_eq!(s, 409, "{e}");
        c.wait_status(&id, "SHUTOFF").await;
        act(c, t, &id, "2.1", json!({"os-start": null}), "ACTIVE").await;
    }

    // trigger_crash_dump exists from 2.17 on.
    let (s, _) = c.action(t, &id, "2.16", json!({"trigger_crash_dump": null})).await;
    assert_eq!(s, 404);
    // It shows no task (as Nova), and the guest keeps running.
    let (s, _) = c.action(t, &id, "2.17", json!({"trigger_crash_dump": null})).await;
    assert_eq!(s, 202);
    assert!(c.server(&id).await["OS-EXT-STS:task_state"].is_null());
    c.wait_status(&id, "ACTIVE").await;

    let (s, e) = c.action(t, &id, "2.1", json!({"fly": null})).await;
    assert_eq!(s, 400, "{e}");
    let (s, _) = c.action(t, &id, "2.1", json!({"pause": null, "unpause": null})).await;
    assert_eq!(s, 400);
});

api_test!(async fn shelve_and_unshelve(c) {
    let hosts = c.start_hosts(2).await;
    let m = c.tenant("member").await;
    let t = m.token.as_str();
    let id = c.boot(t, "vm").await;
    act(c, t, &id, "2.1", json!({"shelve": null}), "SHELVED_OFFLOADED").await;
    let s = c.server(&id).await;
    assert!(s["OS-EXT-SRV-ATTR:host"].is_null(), "offloaded: off every host: {s}");
    conflict(c, t, &id, json!({"shelve": null})).await;
    conflict(c, t, &id, json!({"os-start": null})).await;
    // shelveOffload is an admin action, and needs SHELVED.
    conflict(c, &c.admin().await, &id, json!({"shelveOffload": null})).await;
    assert_eq!(c.action(t, &id, "2.1", json!({"shelveOffload": null})).await.0, 403);
    // Its resources were given back: usage shows nothing on the hosts.
    let (_, v) = c.call(Method::GET, "/os-hypervisors/statistics", &c.admin().await, None).await;
    assert_eq!(v["hypervisor_statistics"]["running_vms"], 0, "{v}");
    act(c, t, &id, "2.1", json!({"unshelve": null}), "ACTIVE").await;
    let s = c.server(&id).await;
    assert!(hosts.iter().any(|h| s["OS-EXT-SRV-ATTR:host"] == h.as_str()), "{s}");
    conflict(c, t, &id, json!({"unshelve": null})).await;
    // Shelving a stopped server works too.
    act(c, t, &id, "2.1", json!({"os-stop": null}), "SHUTOFF").await;
    act(c, t, &id, "2.1", json!({"shelve": null}), "SHELVED_OFFLOADED").await;
    act(c, t, &id, "2.1", json!({"unshelve": null}), "ACTIVE").await;
    // A shelved server can be deleted.
    act(c, t, &id, "2.1", json!({"shelve": null}), "SHELVED_OFFLOADED").await;
    assert_eq!(c.call(Method::DELETE, &format!("/servers/{id}"), t, None).await.0, 204);
    c.wait_gone(&id).await;
});

api_test!(async fn unshelve_to_a_zone_or_host(c) {
    let hosts = c.start_hosts(2).await;
    let m = c.tenant("member").await;
    let t = m.token.as_str();
    let admin = c.admin().await;
    let id = c.boot(t, "vm").await;
    let (first, other) = {
        let h = c.server(&id).await["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_string();
        let o = hosts.iter().find(|x| **x != h).unwrap().clone();
        (h, o)
    };
    // Only an offloaded server may be sent somewhere: 409 while it runs.
    let (s, e) = c.action(&admin, &id, "2.91", json!({"unshelve": {"host": other}})).await;
    assert_eq!(s, 409, "{e}");
    act(c, t, &id, "2.1", json!({"shelve": null}), "SHELVED_OFFLOADED").await;
    // Keys are allowed by microversion.
    let (s, e) = c.action(&admin, &id, "2.77", json!({"unshelve": {"host": other}})).await;
    assert_eq!(s, 400, "{e}");
    assert!(TestCloud::message(&e).contains("'host' was unexpected"), "{e}");
    // A host is for admins; it must exist; a zone must exist.
    let (s, _) = c.action(t, &id, "2.91", json!({"unshelve": {"host": other}})).await;
    assert_eq!(s, 403);
    let (s, e) = c.action(&admin, &id, "2.91", json!({"unshelve": {"host": "ghost"}})).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (400, "Compute host ghost could not be found.".to_string()));
    let (s, _) = c.action(t, &id, "2.77", json!({"unshelve": {"availability_zone": "nowhere"}})).await;
    assert_eq!(s, 400);
    // A host outside the zone asked for: 409.
    let (_, v) = c.call(Method::POST, "/os-aggregates", &admin,
        Some(json!({"aggregate": {"name": "z", "availability_zone": "zone1"}}))).await;
    let agg = v["aggregate"]["id"].as_i64().unwrap();
    let (s, _) = c.call(Method::POST, &format!("/os-aggregates/{agg}/action"), &admin,
        Some(json!({"add_host": {"host": first}}))).await;
    assert_eq!(s, 200);
    let body = json!({"unshelve": {"host": other, "availability_zone": "zone1"}});
    assert_eq!(c.action(&admin, &id, "2.91", body).await.0, 409);
    // Nothing refused changed the server.
    let s = c.server(&id).await;
    assert_eq!((s["status"].as_str(), s["OS-EXT-AZ:availability_zone"].as_str()), (Some("SHELVED_OFFLOADED"), Some("nova")), "{s}");

    // The admin sends it to the other host: it lands there.
    act(c, &admin, &id, "2.91", json!({"unshelve": {"host": other}}), "ACTIVE").await;
    assert_eq!(c.server(&id).await["OS-EXT-SRV-ATTR:host"], other.as_str());
    // The owner moves it into zone1 (2.77): it lands on zone1's only host and stays pinned.
    act(c, t, &id, "2.1", json!({"shelve": null}), "SHELVED_OFFLOADED").await;
    act(c, t, &id, "2.77", json!({"unshelve": {"availability_zone": "zone1"}}), "ACTIVE").await;
    let s = c.server(&id).await;
    assert_eq!((s["OS-EXT-SRV-ATTR:host"].as_str(), s["OS-EXT-AZ:availability_zone"].as_str()), (Some(first.as_str()), Some("zone1")), "{s}");
    // null unpins (2.91): the server may go anywhere again.
    act(c, t, &id, "2.1", json!({"shelve": null}), "SHELVED_OFFLOADED").await;
    act(c, &admin, &id, "2.91", json!({"unshelve": {"availability_zone": null, "host": other}}), "ACTIVE").await;
    assert_eq!(c.server(&id).await["OS-EXT-SRV-ATTR:host"], other.as_str());
});

api_test!(async fn lock_reset_state_and_console(c) {
    c.start_hosts(1).await;
    let m = c.tenant("member").await;
    let t = m.token.as_str();
    let admin = c.admin().await;
    let id = c.boot(t, "vm").await;
    let path = format!("/servers/{id}");

    // The owner locks with a reason (2.73); then even the owner is refused actions.
    let (s, _) = c.action(t, &id, "2.73", json!({"lock": {"locked_reason": "audit"}})).await;
    assert_eq!(s, 202);
    let (_, v) = c.nova(Method::GET, &path, t, "2.73", None).await;
    assert_eq!((v["server"]["locked"].as_bool(), v["server"]["locked_reason"].as_str()), (Some(true), Some("audit")));
    let (_, v) = c.nova(Method::GET, "/servers/detail?locked=true", t, "2.73", None).await;
    assert_eq!(ids(&v), std::slice::from_ref(&id));
    for body in [json!({"os-stop": null}), json!({"reboot": {"type": "HARD"}}), json!({"shelve": null})] {
        let (s, e) = c.action(t, &id, "2.1", body.clone()).await;
        assert_eq!((s.as_u16(), TestCloud::message(&e)), (409, format!("Instance {id} is locked")), "{body}");
    }
    assert_eq!(c.call(Method::DELETE, &path, t, None).await.0, 409);
    let (s, _) = c.action(t, &id, "2.1", json!({"lock": {"locked_reason": "x".repeat(256)}})).await;
    assert_eq!(s, 400);
    // The admin may act on a locked server.
    act(c, &admin, &id, "2.1", json!({"os-stop": null}), "SHUTOFF").await;
    act(c, &admin, &id, "2.1", json!({"os-start": null}), "ACTIVE").await;
    assert_eq!(c.action(t, &id, "2.1", json!({"unlock": null})).await.0, 202);
    let (_, v) = c.nova(Method::GET, &path, t, "2.73", None).await;
    assert_eq!((v["server"]["locked"].as_bool(), v["server"]["locked_reason"].clone()), (Some(false), Value::Null));
    // Locked by an admin of another project: the owner cannot unlock.
    assert_eq!(c.action(&admin, &id, "2.1", json!({"lock": null})).await.0, 202);
    assert_eq!(c.action(t, &id, "2.1", json!({"unlock": null})).await.0, 403);
    assert_eq!(c.action(&admin, &id, "2.1", json!({"unlock": null})).await.0, 202);
    act(c, t, &id, "2.1", json!({"os-stop": null}), "SHUTOFF").await;
    act(c, t, &id, "2.1", json!({"os-start": null}), "ACTIVE").await;

    // os-resetState: admins only.
    assert_eq!(c.action(t, &id, "2.1", json!({"os-resetState": {"state": "error"}})).await.0, 403);
    assert_eq!(c.action(&admin, &id, "2.1", json!({"os-resetState": {"state": "bogus"}})).await.0, 400);
    assert_eq!(c.action(&admin, &id, "2.1", json!({"os-resetState": {"state": "error"}})).await.0, 202);
    assert_eq!(c.server(&id).await["status"], "ERROR");
    conflict(c, t, &id, json!({"pause": null})).await;
    assert_eq!(c.action(&admin, &id, "2.1", json!({"os-resetState": {"state": "active"}})).await.0, 202);
    assert_eq!(c.server(&id).await["status"], "ACTIVE");
    act(c, t, &id, "2.1", json!({"pause": null}), "PAUSED").await;
    act(c, t, &id, "2.1", json!({"unpause": null}), "ACTIVE").await;

    // Console output, whole or the last lines.
    let (s, v) = c.action(t, &id, "2.1", json!({"os-getConsoleOutput": {}})).await;
    assert_eq!(s, 200, "{v}");
    let out = v["output"].as_str().unwrap();
    assert!(out.contains(&id), "{out}");
    // Nova's tail counts the empty piece after the log's final newline, as Tempest expects.
    let (_, v) = c.action(t, &id, "2.1", json!({"os-getConsoleOutput": {"length": 3}})).await;
    assert_eq!(v["output"].as_str().unwrap().split('\n').count(), 3, "{v}");
    let (_, v) = c.action(t, &id, "2.1", json!({"os-getConsoleOutput": {"length": 2}})).await;
    assert_eq!(v["output"].as_str().unwrap().lines().count(), 1, "{v}");
    let (_, v) = c.action(t, &id, "2.1", json!({"os-getConsoleOutput": {"length": "-1"}})).await;
    assert!(v["output"].as_str().unwrap().lines().count() >= 1);
    assert_eq!(c.action(t, &id, "2.1", json!({"os-getConsoleOutput": {"length": "many"}})).await.0, 400);
});

api_test!(async fn instance_actions_and_events(c) {
    c.start_hosts(1).await;
    let m = c.tenant("member").await;
    let t = m.token.as_str();
    let admin = c.admin().await;
    let id = c.boot(t, "vm").await;
    act(c, t, &id, "2.1", json!({"os-stop": null}), "SHUTOFF").await;
    act(c, t, &id, "2.1", json!({"os-start": null}), "ACTIVE").await;
    let (s, v) = c.call(Method::GET, &format!("/servers/{id}/os-instance-actions"), t, None).await;
    assert_eq!(s, 200);
    let list = v["instanceActions"].as_array().unwrap();
    let acts: Vec<&str> = list.iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(acts, ["start", "stop", "create"], "newest first");
    for a in list {
        assert_eq!(a["instance_uuid"], id.as_str());
        assert_eq!(a["project_id"], m.project_id.as_str());
        assert_eq!(a["user_id"], m.user_id.as_str());
        assert!(a["request_id"].as_str().unwrap().starts_with("req-"), "{a}");
    }
    let create_req = list[2]["request_id"].as_str().unwrap();
    let path = format!("/servers/{id}/os-instance-actions/{create_req}");
    let (s, v) = c.nova(Method::GET, &path, &admin, "2.51", None).await;
    assert_eq!(s, 200, "{v}");
    let a = &v["instanceAction"];
    assert_eq!(a["action"], "create");
    let events = a["events"].as_array().expect("admins see events");
    assert!(!events.is_empty(), "{a}");
    assert!(events.iter().all(|e| e["finish_time"].is_string() && e["result"] == "Success"), "{a}");
    let (s, v) = c.call(Method::GET, &path, t, None).await;
    assert_eq!((s.as_u16(), v["instanceAction"]["action"].as_str()), (200, Some("create")));
    assert!(v["instanceAction"].get("events").is_none(), "events are admin details before 2.51: {v}");
    let (_, v) = c.nova(Method::GET, &path, t, "2.51", None).await;
    let events = v["instanceAction"]["events"].as_array().expect("everyone sees events since 2.51");
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e.get("traceback").is_none()), "{v}");
    assert!(events.iter().all(|e| e.get("host").is_none()), "{v}");
    let (_, v) = c.nova(Method::GET, &path, &admin, "2.62", None).await;
    assert_eq!(v["instanceAction"]["events"][0]["host"], "host", "{v}");
    let (s, e) = c.call(Method::GET, &format!("/servers/{id}/os-instance-actions/req-nope"), t, None).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (404, "Action req-nope not found".to_string()));
});

api_test!(async fn bad_create_input_leaves_nothing_behind(c) {
    c.start_hosts(1).await;
    let m = c.tenant("member").await;
    let big_disk = c.make_image(100, 0).await;
    let big_ram = c.make_image(0, 4096).await;
    let ghost = uuid::Uuid::new_v4().to_string();
    let many: serde_json::Map<String, Value> = (0..129).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases: Vec<(Value, Option<Value>, u16, String)> = vec![
        (json!({"imageRef": null}), None, 400, "Block Device Mapping is Invalid".into()),
        (json!({"imageRef": "not-a-uuid"}), None, 400, "Invalid imageRef provided.".into()),
        (json!({"imageRef": ghost}), None, 400, format!("Image {ghost} could not be found.")),
        (json!({"flavorRef": null}), None, 400, "'flavorRef' is a required property".into()),
        (json!({"flavorRef": "999"}), None, 400, "Flavor 999 could not be found.".into()),
        (json!({"name": null}), None, 400, "'name' is a required property".into()),
        (json!({"name": "n".repeat(256)}), None, 400, "name".into()),
        (json!({"name": "   "}), None, 400, "name".into()),
        (json!({"metadata": {"k": "v".repeat(256)}}), None, 400, "metadata".into()),
        (json!({"metadata": {"k": 1}}), None, 400, "metadata".into()),
        (json!({"metadata": many}), None, 403, "Maximum number of metadata items exceeds 128".into()),
        (json!({"imageRef": big_disk}), None, 400, "Flavor's disk is too small for requested image.".into()),
        (json!({"imageRef": big_ram}), None, 400, "Flavor's memory is too small for requested image.".into()),
        (json!({"availability_zone": "atlantis"}), None, 400, "The requested availability zone is not available".into()),
        (json!({}), Some(json!({"group": ghost})), 400, ghost.clone()),
        (json!({"networks": [{"uuid": ghost}]}), None, 400, format!("Network {ghost} could not be found.")),
        (json!({"networks": "everywhere"}), None, 400, "networks".into()),
        (json!({"networks": null}), None, 400, "'networks' is a required property".into()),
        (json!({"key_name": "nokey"}), None, 400, "Invalid key_name provided.".into()),
        (json!({"user_data": "not base64!"}), None, 400, "user_data".into()),
    ];
    for (server, hints, status, msg) in cases {
        let (s, e) = c.create_server_with(&m.token, "2.37", server.clone(), hints.clone()).await;
        let text = TestCloud::message(&e);
        assert_eq!(s.as_u16(), status, "{server} {hints:?}: {e}");
        assert!(text.contains(&msg), "{server} {hints:?}: {text:?} lacks {msg:?}");
    }
    // A member cannot pin a host.
    let (s, _) = c.create_server_with(&m.token, "2.37", json!({"availability_zone": "nova:host"}), None).await;
    assert_eq!(s, 403);
    assert_eq!(c.instance_rows().await, 0, "a refused create leaves no instance record");
    let (_, v) = c.call(Method::GET, "/servers?all_tenants=1", &c.admin().await, None).await;
    assert_eq!(ids(&v).len(), 0);
});

api_test!(async fn concurrent_creates_respect_instance_quota(c) {
    c.start_hosts(1).await;
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let (s, _) = c.call(Method::PUT, &format!("/os-quota-sets/{}", m.project_id), &admin,
        Some(json!({"quota_set": {"instances": 1}}))).await;
    assert_eq!(s, 200);
    c.image_id().await;
    let (a, b) = tokio::join!(
        c.create_server_with(&m.token, "2.37", json!({"name": "a"}), None),
        c.create_server_with(&m.token, "2.37", json!({"name": "b"}), None),
    );
    let mut statuses = [a.0.as_u16(), b.0.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [202, 403], "{a:?} {b:?}");
    let refused = if a.0 == 403 { &a.1 } else { &b.1 };
    let msg = TestCloud::message(refused);
    assert!(msg.contains("Quota exceeded for instances"), "{msg}");
    assert_eq!(c.instance_rows().await, 1);
    let (_, v) = c.call(Method::GET, "/limits", &m.token, None).await;
    assert_eq!(v["limits"]["absolute"]["totalInstancesUsed"], 1, "{v}");
    // Cores and RAM are counted too.
    c.call(Method::PUT, &format!("/os-quota-sets/{}", m.project_id), &admin,
        Some(json!({"quota_set": {"instances": 10, "cores": 1}}))).await;
    let (s, e) = c.create_server_with(&m.token, "2.37", json!({"name": "c"}), None).await;
    assert_eq!(s, 403);
    assert!(TestCloud::message(&e).contains("cores"), "{e}");
});

api_test!(async fn no_valid_host_sets_error_with_a_fault(c) {
    c.start_hosts(3).await;
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let (s, v) = c.call(Method::POST, "/flavors", &admin, Some(json!({"flavor": {"name": "huge",
        "ram": 40000, "vcpus": 1, "disk": 1, "id": "huge", "os-flavor-access:is_public": true}}))).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = c.create_server_with(&m.token, "2.37", json!({"flavorRef": "huge"}), None).await;
    assert_eq!(s, 202, "{v}");
    let id = v["server"]["id"].as_str().unwrap().to_string();
    c.wait_status(&id, "ERROR").await;
    let (_, v) = c.call(Method::GET, &format!("/servers/{id}"), &m.token, None).await;
    let fault = &v["server"]["fault"];
    let msg = fault["message"].as_str().unwrap_or_default();
    assert!(msg.starts_with("No valid host was found."), "{fault}");
    assert!(msg.contains("RAM: 3 hosts lack"), "{fault}");
    assert_eq!(fault["code"], 500);
    assert!(fault["created"].is_string());
    assert!(v["server"]["OS-EXT-SRV-ATTR:host"].is_null());
    let (_, v) = c.call(Method::GET, "/servers/detail?status=ERROR", &m.token, None).await;
    assert_eq!(v["servers"][0]["fault"]["message"], msg);
    // The create action failed with the message; the server can still be deleted.
    let (_, v) = c.call(Method::GET, &format!("/servers/{id}/os-instance-actions"), &m.token, None).await;
    assert_eq!(v["instanceActions"][0]["action"], "create");
    assert_eq!(c.call(Method::DELETE, &format!("/servers/{id}"), &m.token, None).await.0, 204);
    c.wait_gone(&id).await;
});

/// Enables or disables the nova-compute service of `host` through the API (2.53).
async fn set_service(c: &TestCloud, host: &str, disable: bool) {
    let admin = c.admin().await;
    let (_, v) = c
        .nova(
            Method::GET,
            &format!("/os-services?host={host}&binary=nova-compute"),
            &admin,
            "2.53",
            None,
        )
        .await;
    let sid = v["services"][0]["id"].as_str().unwrap().to_string();
    let body = if disable {
        json!({"status": "disabled", "disabled_reason": "maintenance"})
    } else {
        json!({"status": "enabled"})
    };
    let (s, v) = c
        .nova(
            Method::PUT,
            &format!("/os-services/{sid}"),
            &admin,
            "2.53",
            Some(body),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

api_test!(async fn disabled_hosts_get_no_new_servers(c) {
    let hosts = c.start_hosts(3).await;
    let m = c.tenant("member").await;
    let admin = c.admin().await;
    set_service(c, &hosts[0], true).await;
    let (_, v) = c.nova(Method::GET, "/os-services?binary=nova-compute", &admin, "2.53", None).await;
    let row = v["services"].as_array().unwrap().iter().find(|s| s["host"] == hosts[0].as_str()).unwrap().clone();
    assert_eq!((row["status"].as_str(), row["disabled_reason"].as_str()), (Some("disabled"), Some("maintenance")));
    let (s, v) = c.create_server_with(&m.token, "2.37", json!({"name": "n", "min_count": 4, "max_count": 4,
        "return_reservation_id": true}), None).await;
    assert_eq!(s, 202, "{v}");
    let (_, v) = c.call(Method::GET, &format!("/servers?reservation_id={}", v["reservation_id"].as_str().unwrap()), &m.token, None).await;
    let list = ids(&v);
    for id in &list {
        c.wait_status(id, "ACTIVE").await;
    }
    let placed = c.hosts_of(&list).await;
    assert!(!placed.contains(&hosts[0]), "{placed:?}");
    // An admin pins a server to a host with `zone:host`.
    let (s, v) = c.create_server_with(&admin, "2.37", json!({"name": "pinned",
        "availability_zone": format!("nova:{}", hosts[2])}), None).await;
    assert_eq!(s, 202, "{v}");
    let pinned = v["server"]["id"].as_str().unwrap().to_string();
    let sv = c.wait_status(&pinned, "ACTIVE").await;
    assert_eq!(sv["OS-EXT-SRV-ATTR:host"], hosts[2].as_str());
    assert_eq!(sv["OS-EXT-AZ:availability_zone"], "nova");
    // Enabled again, it takes servers again.
    set_service(c, &hosts[0], false).await;
    let (s, v) = c.create_server_with(&admin, "2.37", json!({"name": "back",
        "availability_zone": format!(":{}", hosts[0])}), None).await;
    assert_eq!(s, 202, "{v}");
    let back = v["server"]["id"].as_str().unwrap().to_string();
    assert_eq!(c.wait_status(&back, "ACTIVE").await["OS-EXT-SRV-ATTR:host"], hosts[0].as_str());
});

api_test!(async fn server_groups_spread_and_pack(c) {
    c.start_hosts(3).await;
    let m = c.tenant("member").await;
    let group = |policy: &'static str| {
        let token = m.token.clone();
        async move {
            let (s, v) = c.call(Method::POST, "/os-server-groups", &token,
                Some(json!({"server_group": {"name": policy, "policies": [policy]}}))).await;
            assert_eq!(s, 200, "{v}");
            v["server_group"]["id"].as_str().unwrap().to_string()
        }
    };
    let anti = group("anti-affinity").await;
    let aff = group("affinity").await;
    let mut spread = Vec::new();
    for i in 0..3 {
        let (s, v) = c.create_server_with(&m.token, "2.37", json!({"name": format!("a{i}")}),
            Some(json!({"group": anti}))).await;
        assert_eq!(s, 202, "{v}");
        let id = v["server"]["id"].as_str().unwrap().to_string();
        c.wait_status(&id, "ACTIVE").await;
        spread.push(id);
    }
    let hosts: HashSet<String> = c.hosts_of(&spread).await.into_iter().collect();
    assert_eq!(hosts.len(), 3, "anti-affinity puts each member on its own host");
    // A fourth member has no host left.
    let (_, v) = c.create_server_with(&m.token, "2.37", json!({"name": "a4"}), Some(json!({"group": anti}))).await;
    let fourth = v["server"]["id"].as_str().unwrap().to_string();
    let sv = c.wait_status(&fourth, "ERROR").await;
    assert!(sv["fault"]["message"].as_str().unwrap().contains("No valid host"), "{sv}");
    let (_, v) = c.call(Method::GET, &format!("/os-server-groups/{anti}"), &m.token, None).await;
    assert!(v["server_group"]["members"].as_array().unwrap().len() >= 3, "{v}");

    let mut packed = Vec::new();
    for i in 0..3 {
        let (s, v) = c.create_server_with(&m.token, "2.37", json!({"name": format!("b{i}")}),
            Some(json!({"group": aff}))).await;
        assert_eq!(s, 202, "{v}");
        let id = v["server"]["id"].as_str().unwrap().to_string();
        c.wait_status(&id, "ACTIVE").await;
        packed.push(id);
    }
    let hosts: HashSet<String> = c.hosts_of(&packed).await.into_iter().collect();
    assert_eq!(hosts.len(), 1, "affinity keeps members together: {hosts:?}");
    // Members created in one request follow the policy too.
    let (s, v) = c.create_server_with(&m.token, "2.37", json!({"name": "c", "min_count": 2, "max_count": 2,
        "return_reservation_id": true}), Some(json!({"group": group("anti-affinity").await}))).await;
    assert_eq!(s, 202, "{v}");
    let (_, v) = c.call(Method::GET, &format!("/servers?reservation_id={}", v["reservation_id"].as_str().unwrap()), &m.token, None).await;
    let both = ids(&v);
    for id in &both {
        c.wait_status(id, "ACTIVE").await;
    }
    let hosts: HashSet<String> = c.hosts_of(&both).await.into_iter().collect();
    assert_eq!(hosts.len(), 2);
});

#[tokio::test]
async fn silent_host_shows_down() {
    for engine in crate::common::engines() {
        let c = TestCloud::start_with(engine, |cfg| {
            cfg.service_down_time = std::time::Duration::from_secs(2)
        })
        .await;
        let c = &c;
        c.start_scheduler();
        let driver = std::sync::Arc::new(ferrostack_virt::fake::FakeDriver::new(
            "lonely",
            4,
            8192,
            100,
            std::time::Duration::ZERO,
        ));
        let agent = c.spawn_agent("lonely", driver);
        c.wait_host("lonely").await;
        let admin = c.admin().await;
        let state = || async {
            let (_, v) = c
                .call(Method::GET, "/os-services?host=lonely", &admin, None)
                .await;
            v["services"][0]["state"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        // A live agent heartbeats (at registration, then every few seconds): the host is up.
        let until = tokio::time::Instant::now() + crate::common::DEADLINE;
        while state().await != "up" {
            assert!(
                tokio::time::Instant::now() < until,
                "the live host never showed up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        agent.abort();
        let until = tokio::time::Instant::now() + crate::common::DEADLINE;
        while state().await != "down" {
            assert!(
                tokio::time::Instant::now() < until,
                "the silent host never went down"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let (_, v) = c
            .call(Method::GET, "/os-hypervisors/detail", &admin, None)
            .await;
        assert_eq!(v["hypervisors"][0]["state"], "down", "{v}");
        // A down host gets no new servers.
        let m = c.tenant("member").await;
        let (s, v) = c
            .create_server_with(&m.token, "2.37", json!({}), None)
            .await;
        assert_eq!(s, 202, "{v}");
        let id = v["server"]["id"].as_str().unwrap().to_string();
        let sv = c.wait_status(&id, "ERROR").await;
        assert!(
            sv["fault"]["message"]
                .as_str()
                .unwrap()
                .contains("No valid host"),
            "{sv}"
        );
    }
}

api_test!(async fn tags_at_create_and_tag_filters(c) {
    c.start_hosts(1).await;
    let m = c.tenant("member").await;
    let mut made = Vec::new();
    for (name, tags) in [("ab", json!(["a", "b"])), ("a", json!(["a"])), ("none", json!([]))] {
        let (s, v) = c.create_server_with(&m.token, "2.52", json!({"name": name, "tags": tags}), None).await;
        assert_eq!(s, 202, "{v}");
        made.push(v["server"]["id"].as_str().unwrap().to_string());
    }
    let (_, v) = c.nova(Method::GET, &format!("/servers/{}", made[0]), &m.token, "2.26", None).await;
    let mut tags: Vec<&str> = v["server"]["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    tags.sort();
    assert_eq!(tags, ["a", "b"]);
    let q = |f: &'static str| {
        let token = m.token.clone();
        async move {
            let (_, v) = c.nova(Method::GET, &format!("/servers?{f}&sort_key=display_name&sort_dir=asc"), &token, "2.26", None).await;
            names(&v)
        }
    };
    assert_eq!(q("tags=a,b").await, ["ab"]);
    assert_eq!(q("tags=a").await, ["a", "ab"]);
    assert_eq!(q("tags-any=b,zzz").await, ["ab"]);
    assert_eq!(q("not-tags=a,b").await, ["a", "none"]);
    assert_eq!(q("not-tags-any=b").await, ["a", "none"]);
});

api_test!(async fn hostnames_by_microversion(c) {
    c.start_hosts(1).await;
    let m = c.tenant("member").await;
    let t = m.token.as_str();
    let fqdn = format!("{}-guest-test.domaintest.com", "x".repeat(52));
    // Before 2.90 there is no hostname; 2.90-2.93 take a short host name only.
    let (s, _) = c.create_server_with(t, "2.89", json!({"name": "a", "hostname": "web"}), None).await;
    assert_eq!(s, 400);
    let (s, e) = c.create_server_with(t, "2.90", json!({"name": "a", "hostname": fqdn}), None).await;
    assert_eq!(s, 400, "{e}");
    // From 2.94 an FQDN of more than 63 characters.
    let (s, v) = c.create_server_with(t, "2.94", json!({"name": "a", "hostname": fqdn}), None).await;
    assert_eq!(s, 202, "{v}");
    let id = v["server"]["id"].as_str().unwrap().to_string();
    assert_eq!(c.wait_status(&id, "ACTIVE").await["OS-EXT-SRV-ATTR:hostname"], fqdn.as_str());
    let path = format!("/servers/{id}");
    let (s, _) = c.nova(Method::PUT, &path, t, "2.90", Some(json!({"server": {"hostname": "a.b"}}))).await;
    assert_eq!(s, 400);
    let (s, v) = c.nova(Method::PUT, &path, t, "2.94", Some(json!({"server": {"hostname": "a.b"}}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(c.server(&id).await["OS-EXT-SRV-ATTR:hostname"], "a.b");
});
