//! Server listing: pages (limit, marker, next link) read in SQL for the plain listing, and
//! the same pages through the in-memory filters; metadata and tags of the page's servers.

use http::Method;
use serde_json::Value;

use crate::common::InstanceRow;

fn ids(v: &Value) -> Vec<String> {
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

api_test!(async fn list_pages_with_marker_and_children(c) {
    let m = c.tenant("member").await;
    let other = c.tenant("member").await;
    // Five servers, created one second apart (s0 oldest); one of another project.
    let mut made = Vec::new();
    for i in 0..5i64 {
        let id = c.add_instance(&InstanceRow { name: &format!("s{i}"), project_id: &m.project_id,
            user_id: &m.user_id, flavor_name: "m1.tiny", vcpus: 1, ram: 512, disk: 1,
            launched_at: Some(1_700_000_000_000_000 + i * 1_000_000), terminated_at: None }).await;
        made.push(id);
    }
    c.add_instance(&InstanceRow { name: "elsewhere", project_id: &other.project_id,
        user_id: &other.user_id, flavor_name: "m1.tiny", vcpus: 1, ram: 512, disk: 1,
        launched_at: Some(1_700_000_000_000_000), terminated_at: None }).await;
    for (i, id) in made.iter().enumerate() {
        ferrostack_store::sqlx::query(
            "INSERT INTO instance_metadata (instance_uuid, key, value) VALUES ($1, 'n', $2)")
            .bind(id).bind(i.to_string()).execute(&c.db.writer).await.unwrap();
        if i % 2 == 0 {
            ferrostack_store::sqlx::query(
                "INSERT INTO instance_tags (instance_uuid, tag) VALUES ($1, 'even')")
                .bind(id).execute(&c.db.writer).await.unwrap();
        }
    }
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();

    // Plain listing: newest first, pages of 2 with a next link until the last page.
    let mut seen = Vec::new();
    let mut path = "/servers/detail?limit=2".to_string();
    loop {
        let (s, v) = c.nova(Method::GET, &path, &m.token, "2.26", None).await;
        assert_eq!(s, 200, "{v}");
        for srv in v["servers"].as_array().unwrap() {
            let id = srv["id"].as_str().unwrap();
            let i = made.iter().position(|x| x == id).unwrap();
            assert_eq!(srv["metadata"]["n"], i.to_string(), "{srv}");
            let tags: Vec<&str> = srv["tags"].as_array().unwrap().iter()
                .map(|t| t.as_str().unwrap()).collect();
            assert_eq!(tags, if i % 2 == 0 { vec!["even"] } else { vec![] }, "{srv}");
        }
        seen.extend(ids(&v));
        match v["servers_links"][0]["href"].as_str() {
            Some(next) => {
                assert!(next.contains("limit=2&marker="), "{next}");
                path = format!("/servers/detail?{}", next.split_once('?').unwrap().1);
            }
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
    // A full last page has no next link when nothing follows.
    let (_, v) = c.call(Method::GET, "/servers?limit=5", &m.token, None).await;
    assert_eq!(ids(&v), newest_first);
    assert!(v.get("servers_links").is_none(), "{v}");
    // No limit: everything of the project.
    let (_, v) = c.call(Method::GET, "/servers", &m.token, None).await;
    assert_eq!(ids(&v), newest_first);

    // Markers: unknown, and another project's server, are both 400.
    let (s, _) = c.call(Method::GET, "/servers?marker=nope", &m.token, None).await;
    assert_eq!(s, 400);
    let (_, v) = c.call(Method::GET, "/servers", &other.token, None).await;
    let foreign = ids(&v)[0].clone();
    let (s, _) = c.call(Method::GET, &format!("/servers?marker={foreign}"), &m.token, None).await;
    assert_eq!(s, 400);

    // Through the filters: the same pages, and tag filters see the tags.
    let (_, v) = c.call(Method::GET, &format!("/servers/detail?name=s&limit=2&marker={}",
        newest_first[1]), &m.token, None).await;
    assert_eq!(ids(&v), newest_first[2..4]);
    assert_eq!(v["servers"][0]["metadata"]["n"], "2");
    assert!(v["servers_links"][0]["href"].is_string(), "{v}");
    let (_, v) = c.nova(Method::GET, "/servers/detail?tags=even", &m.token, "2.26", None).await;
    assert_eq!(ids(&v), vec![made[4].clone(), made[2].clone(), made[0].clone()]);
    assert_eq!(v["servers"][0]["tags"], serde_json::json!(["even"]));
    let (_, v) = c.nova(Method::GET, "/servers?not-tags=even", &m.token, "2.26", None).await;
    assert_eq!(ids(&v), vec![made[3].clone(), made[1].clone()]);
});

api_test!(async fn pages_hold_at_most_a_thousand_servers(c) {
    // Nova's max_limit: without a limit, or with a larger one, a page holds 1,000 servers and
    // links to the rest.
    let m = c.tenant("member").await;
    for i in 0..1001i64 {
        c.add_instance(&InstanceRow { name: &format!("s{i}"), project_id: &m.project_id,
            user_id: &m.user_id, flavor_name: "m1.tiny", vcpus: 1, ram: 512, disk: 1,
            launched_at: None, terminated_at: None }).await;
    }
    for path in ["/servers", "/servers?limit=5000", "/servers/detail", "/servers?name=s"] {
        let (s, v) = c.call(Method::GET, path, &m.token, None).await;
        assert_eq!(s, 200, "{path}: {v}");
        assert_eq!(ids(&v).len(), 1000, "{path}");
        let next = v["servers_links"][0]["href"].as_str().unwrap_or_else(|| panic!("{path}: no next link"));
        assert!(next.contains("limit=1000&marker="), "{next}");
        let (_, rest) = c.call(Method::GET, &format!("/servers?{}", next.split_once('?').unwrap().1), &m.token, None).await;
        assert_eq!(ids(&rest).len(), 1, "{path}");
    }
});

api_test!(async fn locked_filter_from_2_73(c) {
    let m = c.tenant("member").await;
    let mut made = Vec::new();
    for name in ["open", "shut"] {
        made.push(c.add_instance(&InstanceRow { name, project_id: &m.project_id,
            user_id: &m.user_id, flavor_name: "m1.tiny", vcpus: 1, ram: 512, disk: 1,
            launched_at: Some(1_700_000_000_000_000), terminated_at: None }).await);
    }
    ferrostack_store::sqlx::query("UPDATE instances SET locked = 1 WHERE uuid = $1")
        .bind(&made[1]).execute(&c.db.writer).await.unwrap();
    let (s, v) = c.nova(Method::GET, "/servers?locked=true", &m.token, "2.73", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(ids(&v), vec![made[1].clone()]);
    let (_, v) = c.nova(Method::GET, "/servers?locked=false", &m.token, "2.73", None).await;
    assert_eq!(ids(&v), vec![made[0].clone()]);
    // Before 2.73 `locked` is no filter: Nova ignores it.
    let (s, v) = c.nova(Method::GET, "/servers?locked=true", &m.token, "2.72", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(ids(&v).len(), 2, "{v}");
});
