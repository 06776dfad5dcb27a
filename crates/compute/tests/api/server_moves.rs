//! Moves (resize with confirm/revert, migrate, live migrate, evacuate) and the actions that
//! change what a server runs (rebuild, rescue, createImage), on simulated hosts.

use std::time::Duration;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::common::TestCloud;

/// Starts the scheduler and `n` fake hosts `mv-1..n`, uploads a small public raw image and
/// returns its id.
async fn with_hosts(c: &TestCloud, n: usize) -> String {
    c.compute.spawn_scheduler();
    c.spawn_fake_hosts("mv", n, (8, 16384, 200));
    let admin = c.admin().await;
    let (s, _, _) = c
        .raw(
            Method::POST,
            "/image/v2/images",
            Some(&admin),
            Some(
                json!({"name": "base", "disk_format": "raw", "container_format": "bare",
                        "visibility": "public", "hw_test": "yes"}),
            ),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let img: Value = serde_json::from_slice(
        &c.raw(
            Method::GET,
            "/image/v2/images?name=base",
            Some(&admin),
            None,
            &[],
        )
        .await
        .2,
    )
    .unwrap();
    let id = img["images"][0]["id"].as_str().unwrap().to_string();
    let req = Request::builder()
        .method(Method::PUT)
        .uri(format!("/image/v2/images/{id}/file"))
        .header("x-auth-token", &admin)
        .header("content-type", "application/octet-stream")
        .body(Body::from(vec![7u8; 4096]))
        .unwrap();
    let resp = c.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // Every host registered, with capacity, before the test goes on.
    let names = crate::common::local_host_names("mv", n);
    for h in &names {
        c.wait_host(h).await;
    }
    id
}

/// Polls a server until its status is `want` (panics with the last body after a generous
/// deadline: the assertion is about the state reached, not the time taken).
async fn wait_status(c: &TestCloud, token: &str, id: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..3000 {
        let (s, b) = c
            .nova(Method::GET, &format!("/servers/{id}"), token, "2.47", None)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        if b["server"]["status"] == want && b["server"]["OS-EXT-STS:task_state"].is_null() {
            return b["server"].clone();
        }
        if b["server"]["status"] == "ERROR" && want != "ERROR" {
            panic!("server went to ERROR: {b}");
        }
        last = b;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("server never reached {want}: {last}");
}

async fn boot(c: &TestCloud, token: &str, image: &str, flavor: &str) -> String {
    let (s, b) = c
        .nova(
            Method::POST,
            "/servers",
            token,
            "2.47",
            Some(
                json!({"server": {"name": "mover", "imageRef": image, "flavorRef": flavor,
                                   "networks": "none"}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let id = b["server"]["id"].as_str().unwrap().to_string();
    wait_status(c, token, &id, "ACTIVE").await;
    id
}

async fn act(c: &TestCloud, token: &str, id: &str, mv: &str, body: Value) -> (StatusCode, Value) {
    c.nova(
        Method::POST,
        &format!("/servers/{id}/action"),
        token,
        mv,
        Some(body),
    )
    .await
}

/// Marks the compute service of `host` forced down (2.53), as an operator fencing a host.
async fn force_down(c: &TestCloud, admin: &str, host: &str) {
    let (_, svcs) = c
        .nova(
            Method::GET,
            &format!("/os-services?host={host}"),
            admin,
            "2.53",
            None,
        )
        .await;
    let svc_id = svcs["services"][0]["id"].as_str().unwrap().to_string();
    let (s, b) = c
        .nova(
            Method::PUT,
            &format!("/os-services/{svc_id}"),
            admin,
            "2.53",
            Some(json!({"forced_down": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// Status of the newest migration of an instance, read from the database.
async fn migration_status(c: &TestCloud, id: &str) -> (String, bool) {
    let mut conn = c.db.pool.acquire().await.unwrap();
    let m = ferrostack_compute::db::migrations::latest_of(
        &mut conn,
        id,
        &[
            "migrating",
            "post-migrating",
            "finished",
            "confirming",
            "confirmed",
            "reverting",
            "reverted",
            "running",
            "completed",
            "accepted",
            "done",
            "error",
            "cancelled",
        ],
    )
    .await
    .unwrap()
    .expect("a migration");
    (m.status, m.source_cleaned)
}

async fn wait_migration(c: &TestCloud, id: &str, want: &str) {
    for _ in 0..3000 {
        if migration_status(c, id).await.0 == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "migration of {id} never reached {want}: {:?}",
        migration_status(c, id).await
    );
}

/// Waits until `consumer` holds allocations on exactly `n` providers (allocations are given
/// back just after the state change that makes them free is committed).
async fn wait_providers(c: &TestCloud, consumer: &str, n: usize) {
    for _ in 0..3000 {
        if providers_of(c, consumer).await.len() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{consumer} never held allocations on {n} providers");
}

/// Placement providers holding allocations of `consumer`.
async fn providers_of(c: &TestCloud, consumer: &str) -> Vec<String> {
    c.placement
        .allocations_of(consumer)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.provider_uuid)
        .collect()
}

api_test!(
    async fn resize_then_revert_then_resize_and_confirm(c) {
        let image = with_hosts(c, 3).await;
        let admin = c.admin().await;
        let id = boot(c, &admin, &image, "1").await;
        let first = wait_status(c, &admin, &id, "ACTIVE").await;
        let source = first["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_string();

        // Bad resizes change nothing.
        let (s, b) = act(c, &admin, &id, "2.47", json!({"resize": {"flavorRef": "1"}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(TestCloud::message(&b).contains("must change flavor"), "{b}");
        let (s, _) = act(c, &admin, &id, "2.47", json!({"resize": {"flavorRef": "nope"}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = act(c, &admin, &id, "2.47", json!({"resize": {}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = act(c, &admin, &id, "2.47", json!({"confirmResize": null})).await;
        assert_eq!(s, StatusCode::CONFLICT);

        // Resize: another host, the new flavor, VERIFY_RESIZE; the source's resources stay
        // held (by the migration) so a revert always fits.
        let (s, b) = act(c, &admin, &id, "2.47", json!({"resize": {"flavorRef": "2"}})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        let resized = wait_status(c, &admin, &id, "VERIFY_RESIZE").await;
        let dest = resized["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_string();
        assert_ne!(dest, source);
        assert_eq!(resized["flavor"]["original_name"], "m1.small");
        assert_eq!(migration_status(c, &id).await.0, "finished");
        let (s, _) = act(c, &admin, &id, "2.47", json!({"os-stop": null})).await;
        assert_eq!(s, StatusCode::CONFLICT, "no power actions while resized");

        // Revert: back on the source with the old flavor; the destination drops its copy.
        let (s, b) = act(c, &admin, &id, "2.47", json!({"revertResize": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        let back = wait_status(c, &admin, &id, "ACTIVE").await;
        assert_eq!(back["OS-EXT-SRV-ATTR:host"], source.as_str());
        assert_eq!(back["flavor"]["original_name"], "m1.tiny");
        wait_migration(c, &id, "reverted").await;
        assert_eq!(providers_of(c, &id).await.len(), 1);

        // Resize again and confirm: the source removes its copy and its allocation goes.
        let (s, _) = act(c, &admin, &id, "2.47", json!({"resize": {"flavorRef": "2"}})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        wait_status(c, &admin, &id, "VERIFY_RESIZE").await;
        let (s, b) = act(c, &admin, &id, "2.47", json!({"confirmResize": null})).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        let done = wait_status(c, &admin, &id, "ACTIVE").await;
        assert_eq!(done["flavor"]["original_name"], "m1.small");
        wait_migration(c, &id, "confirmed").await;
        assert!(migration_status(c, &id).await.1, "source cleaned");
        let mut conn = c.db.pool.acquire().await.unwrap();
        let m = ferrostack_compute::db::migrations::latest_of(&mut conn, &id, &["confirmed"])
            .await
            .unwrap()
            .unwrap();
        drop(conn);
        wait_providers(c, &m.uuid, 0).await;
        assert_eq!(providers_of(c, &id).await.len(), 1);

        // Actions recorded.
        let (_, acts) = c
            .call(Method::GET, &format!("/servers/{id}/os-instance-actions"), &admin, None)
            .await;
        let names: Vec<&str> = acts["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["action"].as_str())
            .collect();
        for want in ["create", "resize", "revertResize", "confirmResize"] {
            assert!(names.contains(&want), "{names:?}");
        }
    }
);

/// The vCPUs the (fake) guest of a server has on `host`, asked of the host's agent.
async fn guest_cpus(c: &TestCloud, host: &str, id: &str) -> i64 {
    let text = c
        .compute
        .ask_host(host, id, ferrostack_agent_api::Ask::Diagnostics)
        .await
        .unwrap()
        .expect("the host answers");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["num_cpus"].as_i64().unwrap()
}

/// The newest migration of a server that finished, reverted or was confirmed.
async fn last_migration(c: &TestCloud, id: &str) -> ferrostack_compute::db::migrations::Migration {
    let mut conn = c.db.pool.acquire().await.unwrap();
    ferrostack_compute::db::migrations::latest_of(
        &mut conn,
        id,
        &["finished", "reverted", "confirmed"],
    )
    .await
    .unwrap()
    .unwrap()
}

api_test!(
    async fn resize_on_a_single_host_stays_there(c) {
        let image = with_hosts(c, 1).await;
        let admin = c.admin().await;
        let id = boot(c, &admin, &image, "2").await;
        let (s, b) = act(c, &admin, &id, "2.47", json!({"resize": {"flavorRef": "1"}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(TestCloud::message(&b).contains("smaller disk"), "{b}");
        // The host cannot hold the old flavor and m1.xlarge at once: no valid host, the
        // answer says why, and the server is untouched.
        let (s, b) = act(c, &admin, &id, "2.47", json!({"resize": {"flavorRef": "5"}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(TestCloud::message(&b).contains("No valid host"), "{b}");
        let after = wait_status(c, &admin, &id, "ACTIVE").await;
        assert_eq!(after["flavor"]["original_name"], "m1.small");
        assert_eq!(providers_of(c, &id).await.len(), 1);

        // Resize in place: same host, the guest has the new sizes, both flavors held.
        let (s, b) = act(c, &admin, &id, "2.47", json!({"resize": {"flavorRef": "3"}})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        let v = wait_status(c, &admin, &id, "VERIFY_RESIZE").await;
        assert_eq!(v["OS-EXT-SRV-ATTR:host"], "mv");
        assert_eq!(v["flavor"]["original_name"], "m1.medium");
        assert_eq!(v["OS-EXT-STS:power_state"], 1, "running again after the resize");
        assert_eq!(guest_cpus(c, "mv", &id).await, 2);
        assert_eq!(migration_status(c, &id).await.0, "finished");
        let m = last_migration(c, &id).await;
        assert_eq!((m.source_compute.as_str(), m.dest_compute.as_str()), ("mv", "mv"));
        assert_eq!(providers_of(c, &m.uuid).await.len(), 1, "the old flavor stays held");

        // Revert in place: the old sizes again, the held allocation is the instance's again.
        let (s, b) = act(c, &admin, &id, "2.47", json!({"revertResize": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        let v = wait_status(c, &admin, &id, "ACTIVE").await;
        assert_eq!(v["flavor"]["original_name"], "m1.small");
        wait_migration(c, &id, "reverted").await;
        assert_eq!(guest_cpus(c, "mv", &id).await, 1);
        assert_eq!(providers_of(c, &m.uuid).await.len(), 0);
        assert_eq!(providers_of(c, &id).await.len(), 1);

        // A stopped server resized in place stays stopped; confirming frees the old flavor.
        let (s, _) = act(c, &admin, &id, "2.47", json!({"os-stop": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        wait_status(c, &admin, &id, "SHUTOFF").await;
        let (s, _) = act(c, &admin, &id, "2.47", json!({"resize": {"flavorRef": "3"}})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let v = wait_status(c, &admin, &id, "VERIFY_RESIZE").await;
        assert_eq!(v["OS-EXT-STS:power_state"], 4, "{v}");
        let (s, b) = act(c, &admin, &id, "2.47", json!({"confirmResize": null})).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        let v = wait_status(c, &admin, &id, "SHUTOFF").await;
        assert_eq!(v["flavor"]["original_name"], "m1.medium");
        let m = last_migration(c, &id).await;
        assert_eq!(m.status, "confirmed");
        wait_providers(c, &m.uuid, 0).await;

        // Deleting a server waiting for confirmation frees both flavors' resources.
        let (s, _) = act(c, &admin, &id, "2.47", json!({"resize": {"flavorRef": "4"}})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        wait_status(c, &admin, &id, "VERIFY_RESIZE").await;
        let m = last_migration(c, &id).await;
        assert_eq!(m.status, "finished");
        let (s, _) = c.call(Method::DELETE, &format!("/servers/{id}"), &admin, None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        c.wait_gone(&id).await;
        wait_providers(c, &id, 0).await;
        wait_providers(c, &m.uuid, 0).await;
    }
);

#[tokio::test]
async fn without_same_host_resizes_one_host_has_no_valid_host() {
    for engine in crate::common::engines() {
        let c = TestCloud::start_with(engine, |cfg| cfg.allow_resize_to_same_host = false).await;
        let c = &c;
        let image = with_hosts(c, 1).await;
        let admin = c.admin().await;
        let id = boot(c, &admin, &image, "2").await;
        let (s, b) = act(
            c,
            &admin,
            &id,
            "2.47",
            json!({"resize": {"flavorRef": "3"}}),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(TestCloud::message(&b).contains("No valid host"), "{b}");
        let v = wait_status(c, &admin, &id, "ACTIVE").await;
        assert_eq!(v["flavor"]["original_name"], "m1.small");
    }
}

api_test!(
    async fn admin_migrates_live_migrates_and_evacuates(c) {
        let image = with_hosts(c, 3).await;
        let admin = c.admin().await;
        let user = c.tenant("member").await;
        let id = boot(c, &user.token, &image, "1").await;
        let host_of = |v: &Value| v["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_string();
        let start = host_of(&wait_status(c, &admin, &id, "ACTIVE").await);

        // Only admins move servers.
        let (s, _) = act(c, &user.token, &id, "2.56", json!({"migrate": null})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        // Cold migration to a named host (2.56), then confirm.
        let target = if start == "mv-1" { "mv-2" } else { "mv-1" };
        let (s, _) = act(c, &admin, &id, "2.56", json!({"migrate": {"host": start}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "not to its own host");
        let (s, _) = act(c, &admin, &id, "2.56", json!({"migrate": {"host": "nowhere"}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, b) = act(c, &admin, &id, "2.56", json!({"migrate": {"host": target}})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        let v = wait_status(c, &admin, &id, "VERIFY_RESIZE").await;
        assert_eq!(host_of(&v), target);
        let (s, _) = act(c, &admin, &id, "2.56", json!({"confirmResize": null})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        wait_status(c, &admin, &id, "ACTIVE").await;
        wait_migration(c, &id, "confirmed").await;

        // Live migration keeps the server ACTIVE and moves it; the source drops its copy.
        let (s, b) = act(
            c,
            &admin,
            &id,
            "2.68",
            json!({"os-migrateLive": {"host": null, "block_migration": "auto"}}),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        let v = wait_status(c, &admin, &id, "ACTIVE").await;
        let live_dest = host_of(&v);
        assert_ne!(live_dest, target);
        wait_migration(c, &id, "completed").await;
        for _ in 0..3000 {
            if migration_status(c, &id).await.1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(migration_status(c, &id).await.1, "live migration source cleaned");
        let (s, _) = act(c, &admin, &id, "2.68", json!({"os-migrateLive": {"host": null}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "block_migration is required");

        // Evacuate needs the host down; then the server is rebuilt elsewhere.
        let (s, b) = act(c, &admin, &id, "2.29", json!({"evacuate": {}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(TestCloud::message(&b).contains("still in use"), "{b}");
        force_down(c, &admin, &live_dest).await;
        // A host that is down cannot hand its guest over or send it: no migration from it.
        for (mv, body) in [
            ("2.56", json!({"migrate": null})),
            ("2.68", json!({"os-migrateLive": {"host": null, "block_migration": "auto"}})),
            ("2.47", json!({"resize": {"flavorRef": "2"}})),
        ] {
            let (s, b) = act(c, &admin, &id, mv, body).await;
            assert_eq!(s, StatusCode::CONFLICT, "{b}");
            assert!(TestCloud::message(&b).contains("Service is unavailable"), "{b}");
        }
        let (s, b) = act(c, &admin, &id, "2.14", json!({"evacuate": {}})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let v = wait_status(c, &admin, &id, "ACTIVE").await;
        assert_ne!(host_of(&v), live_dest);
        // `done`, or already `completed` when the (forced down but still running) source
        // agent removed its copy.
        let (status, _) = migration_status(c, &id).await;
        assert!(status == "done" || status == "completed", "{status}");
        let (s, b) = act(c, &admin, &id, "2.1", json!({"evacuate": {"onSharedStorage": false}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");

        // Nova's answers: an unknown host 404, force without a host 400, no targetState.
        let (s, b) = act(c, &admin, &id, "2.95", json!({"evacuate": {"host": "nowhere"}})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
        let (s, b) = act(c, &admin, &id, "2.29", json!({"evacuate": {"force": true}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        let (s, b) =
            act(c, &admin, &id, "2.95", json!({"evacuate": {"targetState": "stopped"}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");

        // From 2.95 an evacuated server ends stopped on its new host.
        let second = host_of(&c.server(&id).await);
        force_down(c, &admin, &second).await;
        let (s, b) = act(c, &admin, &id, "2.95", json!({"evacuate": {}})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert!(b.is_null() || b == json!({}), "no adminPass from 2.14: {b}");
        let v = wait_status(c, &admin, &id, "SHUTOFF").await;
        assert!(![second.as_str(), live_dest.as_str()].contains(&host_of(&v).as_str()), "{v}");
        assert_eq!(v["OS-EXT-STS:power_state"], 4, "{v}");
    }
);

api_test!(
    async fn rebuild_rescue_and_snapshot(c) {
        let image = with_hosts(c, 2).await;
        let user = c.tenant("member").await;
        let id = boot(c, &user.token, &image, "1").await;

        // Rebuild: new name and metadata, normalized access IP, the answer has adminPass.
        let (s, b) = act(
            c,
            &user.token,
            &id,
            "2.47",
            json!({"rebuild": {"imageRef": image, "name": "rebuilt", "metadata": {"a": "b"},
                               "accessIPv6": "0000:0000:0000:0000:0000:babe:220.12.22.2"}}),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        assert_eq!(b["server"]["name"], "rebuilt");
        assert!(b["server"]["adminPass"].is_string());
        assert_eq!(b["server"]["accessIPv6"], "::babe:dc0c:1602");
        let v = wait_status(c, &user.token, &id, "ACTIVE").await;
        assert_eq!(v["metadata"]["a"], "b");
        // From 2.57 the answer has user_data, also with the full body of 2.75.
        // (The admin sees extended attributes, which then must not include user_data.)
        let admin = c.admin().await;
        for mv in ["2.57", "2.75", "2.96"] {
            let body = json!({"rebuild": {"imageRef": image, "user_data": "aGk="}});
            let (s, b) = act(c, &admin, &id, mv, body).await;
            assert_eq!((s, b["server"]["user_data"].as_str()), (StatusCode::ACCEPTED, Some("aGk=")), "{mv}: {b}");
            assert!(b["server"].get("OS-EXT-SRV-ATTR:user_data").is_none(), "{mv}: {b}");
            wait_status(c, &user.token, &id, "ACTIVE").await;
        }
        let (s, _) = act(c, &user.token, &id, "2.47", json!({"rebuild": {"imageRef": "x"}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let missing = uuid::Uuid::new_v4().to_string();
        let (s, _) = act(c, &user.token, &id, "2.47", json!({"rebuild": {"imageRef": missing}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        // A stopped server rebuilt stays stopped.
        let (s, _) = act(c, &user.token, &id, "2.47", json!({"os-stop": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        wait_status(c, &user.token, &id, "SHUTOFF").await;
        let (s, _) = act(c, &user.token, &id, "2.47", json!({"rebuild": {"imageRef": image}})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        wait_status(c, &user.token, &id, "SHUTOFF").await;
        let (s, _) = act(c, &user.token, &id, "2.47", json!({"os-start": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        wait_status(c, &user.token, &id, "ACTIVE").await;

        // Rescue / unrescue.
        let (s, _) = act(c, &user.token, &id, "2.47", json!({"unrescue": null})).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, b) = act(c, &user.token, &id, "2.47", json!({"rescue": {"adminPass": "pw"}})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["adminPass"], "pw");
        wait_status(c, &user.token, &id, "RESCUE").await;
        let (s, _) = act(c, &user.token, &id, "2.47", json!({"rescue": null})).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _) = act(c, &user.token, &id, "2.47", json!({"unrescue": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        wait_status(c, &user.token, &id, "ACTIVE").await;

        // createImage: the image id at 2.45+, a snapshot image that becomes active.
        let (s, b) = act(
            c,
            &user.token,
            &id,
            "2.45",
            json!({"createImage": {"name": "snap", "metadata": {"purpose": "test"}}}),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        let image_id = b["image_id"].as_str().unwrap().to_string();
        wait_status(c, &user.token, &id, "ACTIVE").await;
        let (s, _, bytes) = c
            .raw(Method::GET, &format!("/image/v2/images/{image_id}"), Some(&user.token), None, &[])
            .await;
        assert_eq!(s, StatusCode::OK);
        let img: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(img["status"], "active", "{img}");
        assert_eq!(img["instance_uuid"], id.as_str());
        assert_eq!(img["image_type"], "snapshot");
        assert_eq!(img["purpose"], "test");
        assert_eq!(img["hw_test"], "yes", "inherits the base image's hw_ properties");
        assert_eq!(img["visibility"], "private");
        // Before 2.45 the answer is a Location header and no body.
        let (s, h, _) = c
            .raw(
                Method::POST,
                &format!("/compute/v2.1/servers/{id}/action"),
                Some(&user.token),
                Some(json!({"createImage": {"name": "snap2"}})),
                &[("openstack-api-version", "compute 2.1")],
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        assert!(h.get("location").is_some());
        wait_status(c, &user.token, &id, "ACTIVE").await;
        let (s, _) = act(c, &user.token, &id, "2.45", json!({"createImage": {}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        // createBackup keeps the newest `rotation` backups of a type.
        let mut ids = Vec::new();
        for n in 0..2 {
            let (s, b) = act(
                c,
                &user.token,
                &id,
                "2.45",
                json!({"createBackup": {"name": format!("bk{n}"), "backup_type": "daily",
                                        "rotation": 1}}),
            )
            .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{b}");
            ids.push(b["image_id"].as_str().unwrap().to_string());
            wait_status(c, &user.token, &id, "ACTIVE").await;
        }
        let (s, _, _) = c
            .raw(Method::GET, &format!("/image/v2/images/{}", ids[0]), Some(&user.token), None, &[])
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "the older backup is rotated out");
        let (s, _, bytes) = c
            .raw(Method::GET, &format!("/image/v2/images/{}", ids[1]), Some(&user.token), None, &[])
            .await;
        assert_eq!(s, StatusCode::OK);
        let img: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(img["image_type"], "backup");
        assert_eq!(img["backup_type"], "daily");
        let (s, _) = act(c, &user.token, &id, "2.45", json!({"createBackup": {"name": "x"}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        // No soft delete: forceDelete and restore meet the state check.
        let (s, _) = act(c, &user.token, &id, "2.47", json!({"forceDelete": null})).await;
        assert_eq!(s, StatusCode::CONFLICT);
    }
);

api_test!(
    async fn shelve_keeps_the_disk_as_an_image_until_unshelved(c) {
        let image = with_hosts(c, 2).await;
        let user = c.tenant("member").await;
        let id = boot(c, &user.token, &image, "1").await;
        let (s, _) = act(c, &user.token, &id, "2.47", json!({"shelve": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let v = wait_status(c, &user.token, &id, "SHELVED_OFFLOADED").await;
        assert!(v["OS-EXT-SRV-ATTR:host"].is_null());
        wait_providers(c, &id, 0).await;
        let images = shelve_images(c, &user.token).await;
        assert_eq!(images.len(), 1, "{images:?}");
        assert_eq!(images[0]["status"], "active");
        assert_eq!(images[0]["instance_uuid"], id.as_str());

        let (s, _) = act(c, &user.token, &id, "2.47", json!({"unshelve": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        wait_status(c, &user.token, &id, "ACTIVE").await;
        let mut gone = false;
        for _ in 0..500 {
            if shelve_images(c, &user.token).await.is_empty() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(gone, "the shelve image is deleted after unshelve");

        // The console log comes from the host's driver, tailed as Nova does.
        let (s, b) = act(c, &user.token, &id, "2.47", json!({"os-getConsoleOutput": {"length": 3}})).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b["output"].as_str().unwrap().split('\n').count(), 3, "{b}");
    }
);

/// The images named like the shelve snapshot of server "mover".
async fn shelve_images(c: &TestCloud, token: &str) -> Vec<Value> {
    let (_, _, b) = c
        .raw(
            Method::GET,
            "/image/v2/images?name=mover-shelved",
            Some(token),
            None,
            &[],
        )
        .await;
    serde_json::from_slice::<Value>(&b).unwrap()["images"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

api_test!(
    async fn a_server_pinned_at_creation_may_move(c) {
        let image = with_hosts(c, 2).await;
        let admin = c.admin().await;
        let (s, b) = c
            .nova(
                Method::POST,
                "/servers",
                &admin,
                "2.47",
                Some(json!({"server": {"name": "pinned", "imageRef": image, "flavorRef": "1",
                                       "networks": "none", "availability_zone": "nova:mv-2"}})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        let id = b["server"]["id"].as_str().unwrap().to_string();
        let v = wait_status(c, &admin, &id, "ACTIVE").await;
        assert_eq!(v["OS-EXT-SRV-ATTR:host"], "mv-2");
        // `zone:host` forced the first placement only, as Nova resets forced hosts for moves.
        let (s, b) = act(c, &admin, &id, "2.56", json!({"migrate": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        let v = wait_status(c, &admin, &id, "VERIFY_RESIZE").await;
        assert_eq!(v["OS-EXT-SRV-ATTR:host"], "mv-1");
    }
);

/// Fake hosts `names` whose drivers the test keeps (to look at their guests, or change how
/// they behave), each registered before this returns.
async fn fake_hosts<const N: usize>(
    c: &TestCloud,
    names: [&'static str; N],
) -> Vec<(
    &'static str,
    std::sync::Arc<ferrostack_virt::fake::FakeDriver>,
)> {
    let mut drivers = Vec::with_capacity(N);
    for h in names {
        let d = std::sync::Arc::new(ferrostack_virt::fake::FakeDriver::new(
            h,
            8,
            16384,
            200,
            Duration::ZERO,
        ));
        c.spawn_agent(h, d.clone());
        c.wait_host(h).await;
        drivers.push((h, d));
    }
    drivers
}

api_test!(
    async fn a_live_migration_is_forced_to_complete_or_aborted(c) {
        let image = with_hosts(c, 0).await;
        // Hosts whose live migrations never finish on their own (a guest writing memory
        // faster than the link carries it): only force-complete ends them.
        let drivers = fake_hosts(c, ["lm-1", "lm-2"]).await;
        for (_, d) in &drivers {
            d.set_migration_steps(u32::MAX);
        }
        let admin = c.admin().await;
        let user = c.tenant("member").await;
        let id = boot(c, &user.token, &image, "1").await;
        let host_of = |v: &Value| v["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_string();
        let source = host_of(&wait_status(c, &admin, &id, "ACTIVE").await);
        let dest = if source == "lm-1" { "lm-2" } else { "lm-1" };
        let guests_on = |h: &str| {
            let d = drivers.iter().find(|(n, _)| *n == h).unwrap().1.clone();
            async move {
                use ferrostack_virt::Driver;
                d.list().await.unwrap().len()
            }
        };
        let live_migrate = || async {
            let (s, b) = act(
                c,
                &admin,
                &id,
                "2.30",
                json!({"os-migrateLive": {"host": dest, "block_migration": "auto"}}),
            )
            .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{b}");
            // The source reports how far it is: the figures appear on the migration.
            for _ in 0..3000 {
                let (s, b) = c
                    .nova(Method::GET, &format!("/servers/{id}/migrations"), &admin, "2.80", None)
                    .await;
                assert_eq!(s, StatusCode::OK, "{b}");
                let m = &b["migrations"][0];
                if m["memory_total_bytes"].is_i64() {
                    assert_eq!(m["status"], "running", "{b}");
                    assert_eq!(m["memory_total_bytes"], 512 << 20, "{b}");
                    assert!(m["memory_remaining_bytes"].as_i64().unwrap() > 0, "{b}");
                    return m["id"].as_i64().unwrap();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("no progress on the live migration");
        };
        let path = |mid: &str| format!("/servers/{id}/migrations/{mid}");
        let force = |mid: String, mv: &'static str, token: String, body: Value| async move {
            c.nova(Method::POST, &format!("{}/action", path(&mid)), &token, mv, Some(body))
                .await
        };

        // Abort: the server stays on its source, ACTIVE; the destination drops its copy.
        let mid = live_migrate().await.to_string();
        let (s, _) = c.nova(Method::DELETE, &path(&mid), &admin, "2.23", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "abort is 2.24");
        let (s, _) = c.nova(Method::DELETE, &path(&mid), &user.token, "2.24", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, b) = c.nova(Method::DELETE, &path("999999"), &admin, "2.24", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
        let (s, b) = c.nova(Method::DELETE, &path(&mid), &admin, "2.24", None).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        let v = wait_status(c, &admin, &id, "ACTIVE").await;
        assert_eq!(host_of(&v), source);
        let (status, _) = {
            let mut conn = c.db.pool.acquire().await.unwrap();
            let m = ferrostack_compute::db::migrations::latest_of(&mut conn, &id, &["cancelled"])
                .await
                .unwrap()
                .expect("a cancelled migration");
            (m.status, m.source_cleaned)
        };
        assert_eq!(status, "cancelled");
        for _ in 0..3000 {
            if guests_on(dest).await == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(guests_on(dest).await, 0, "the destination removed its copy");
        assert_eq!(guests_on(&source).await, 1);
        wait_providers(c, &id, 1).await;
        let (_, b) = c
            .nova(Method::GET, &format!("/servers/{id}/migrations"), &admin, "2.80", None)
            .await;
        assert_eq!(b["migrations"], json!([]), "none in progress");
        let (s, b) = c.nova(Method::DELETE, &path(&mid), &admin, "2.24", None).await;
        assert_eq!(s, StatusCode::CONFLICT, "not migrating any more: {b}");
        let (s, b) = force(mid.clone(), "2.22", admin.clone(), json!({"force_complete": null})).await;
        assert_eq!(s, StatusCode::CONFLICT, "{b}");
        let (_, b) = c
            .call(Method::GET, &format!("/servers/{id}/os-instance-actions"), &admin, None)
            .await;
        assert!(
            b["instanceActions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["action"] == "live_migration_cancel"),
            "{b}"
        );

        // Force-complete: the migration ends, the server runs on its destination.
        let mid = live_migrate().await.to_string();
        let (s, _) = force(mid.clone(), "2.21", admin.clone(), json!({"force_complete": null})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "force-complete is 2.22");
        let (s, _) = force(mid.clone(), "2.22", user.token.clone(), json!({"force_complete": null})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, b) = force(mid.clone(), "2.22", admin.clone(), json!({"force_complete": {}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        let (s, b) = force(mid.clone(), "2.22", admin.clone(), json!({"other": null})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        let (s, b) = force("999999".into(), "2.22", admin.clone(), json!({"force_complete": null})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        // Still running: nothing ends it but force-complete.
        assert_eq!(migration_status(c, &id).await.0, "running");
        let (s, b) = force(mid.clone(), "2.22", admin.clone(), json!({"force_complete": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        wait_migration(c, &id, "completed").await;
        let v = wait_status(c, &admin, &id, "ACTIVE").await;
        assert_eq!(host_of(&v), dest);
        for _ in 0..3000 {
            if guests_on(&source).await == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(guests_on(&source).await, 0, "the source removed its copy");
        wait_providers(c, &id, 1).await;
        let (s, b) = force(mid, "2.22", admin.clone(), json!({"force_complete": null})).await;
        assert_eq!(s, StatusCode::CONFLICT, "{b}");
    }
);

api_test!(
    async fn a_server_moved_back_at_once_gets_the_guest_it_took_not_the_copy_it_left(c) {
        let image = with_hosts(c, 0).await;
        let drivers = fake_hosts(c, ["mb-1", "mb-2"]).await;
        let driver = |h: &str| drivers.iter().find(|(n, _)| *n == h).unwrap().1.clone();
        let admin = c.admin().await;
        let id = boot(c, &admin, &image, "1").await;
        let host_of = |v: &Value| v["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_string();
        let first = host_of(&wait_status(c, &admin, &id, "ACTIVE").await);
        let second = if first == "mb-1" { "mb-2" } else { "mb-1" };
        let (admin_ref, id_ref) = (&admin, &id);
        let migrate_to = |host: String| async move {
            let (s, b) = act(
                c,
                admin_ref,
                id_ref,
                "2.30",
                json!({"os-migrateLive": {"host": host, "block_migration": "auto"}}),
            )
            .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        };

        // The first host cannot remove the copy it sent for now: the migration completes and
        // the server runs on the second host, while the sent copy stays behind.
        driver(&first).set_destroys_failing(true);
        migrate_to(second.to_string()).await;
        wait_migration(c, &id, "completed").await;
        let v = wait_status(c, &admin, &id, "ACTIVE").await;
        assert_eq!(host_of(&v), second);
        use ferrostack_virt::Driver;
        assert_eq!(driver(&first).list().await.unwrap().len(), 1, "the sent copy stays");
        let m1 = last_live(c, &id).await;
        assert!(!m1.source_cleaned);

        // Straight back: the copy left there goes first, then the guest is received as in
        // any live migration (never the stale copy resumed in its place).
        driver(&first).set_destroys_failing(false);
        migrate_to(first.clone()).await;
        for _ in 0..3000 {
            let m = last_live(c, &id).await;
            if m.id != m1.id && m.status == "completed" && m.source_cleaned {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let m2 = last_live(c, &id).await;
        assert_ne!(m2.id, m1.id);
        assert_eq!((m2.status.as_str(), m2.source_cleaned), ("completed", true), "{m2:?}");
        let v = wait_status(c, &admin, &id, "ACTIVE").await;
        assert_eq!(host_of(&v), first);
        let m1 = {
            let mut conn = c.db.pool.acquire().await.unwrap();
            ferrostack_compute::db::migrations::of_instance(&mut conn, &id, m1.id)
                .await
                .unwrap()
                .unwrap()
        };
        assert!(m1.source_cleaned, "the first migration's copy was removed");
        let console = driver(&first).console_output(&id, None).await.unwrap();
        assert!(console.contains("arriving on"), "{console}");
        assert!(!console.contains("sent by live migration"), "{console}");
        assert_eq!(driver(&first).list().await.unwrap().len(), 1);
        for _ in 0..3000 {
            if driver(second).list().await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(driver(second).list().await.unwrap().is_empty());
        wait_providers(c, &id, 1).await;
    }
);

/// The newest live migration of a server, whatever its status.
async fn last_live(c: &TestCloud, id: &str) -> ferrostack_compute::db::migrations::Migration {
    let mut conn = c.db.pool.acquire().await.unwrap();
    ferrostack_compute::db::migrations::latest_of(
        &mut conn,
        id,
        &[
            "running",
            "post-migrating",
            "completed",
            "error",
            "cancelled",
        ],
    )
    .await
    .unwrap()
    .expect("a live migration")
}
