//! Server groups.

use http::Method;
use serde_json::json;

use crate::common::{InstanceRow, TestCloud};

api_test!(async fn create_show_list_delete(c) {
    let m = c.tenant("member").await;
    let (s, v) = c.call(Method::POST, "/os-server-groups", &m.token,
        Some(json!({"server_group": {"name": "g1", "policies": ["anti-affinity"]}}))).await;
    assert_eq!(s, 200, "{v}");
    let g = &v["server_group"];
    assert_eq!(g["policies"], json!(["anti-affinity"]));
    assert_eq!(g["metadata"], json!({}));
    assert_eq!(g["members"], json!([]));
    assert!(g.get("project_id").is_none());
    let id = g["id"].as_str().unwrap().to_string();

    let (s, v) = c.nova(Method::POST, "/os-server-groups", &m.token, "2.64",
        Some(json!({"server_group": {"name": "g2", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["server_group"]["rules"], json!({"max_server_per_host": 2}));
    assert_eq!(v["server_group"]["policy"], "anti-affinity");
    assert_eq!(v["server_group"]["project_id"], m.project_id.as_str());
    assert_eq!(v["server_group"]["user_id"], m.user_id.as_str());
    let id2 = v["server_group"]["id"].as_str().unwrap().to_string();

    // Members: only live instances are shown; the scheduler's lookup sees them all.
    let live = c.add_instance(&InstanceRow { name: "a", project_id: &m.project_id, user_id: &m.user_id,
        flavor_name: "m1.tiny", vcpus: 1, ram: 512, disk: 1, launched_at: None, terminated_at: None }).await;
    let dead = c.add_instance(&InstanceRow { name: "b", project_id: &m.project_id, user_id: &m.user_id,
        flavor_name: "m1.tiny", vcpus: 1, ram: 512, disk: 1, launched_at: Some(1), terminated_at: Some(2) }).await;
    let mut conn = c.db.writer.acquire().await.unwrap();
    ferrostack_compute::db::server_groups::add_member(&mut conn, &id2, &live).await.unwrap();
    ferrostack_compute::db::server_groups::add_member(&mut conn, &id2, &dead).await.unwrap();
    let sg = ferrostack_compute::db::server_groups::get(&mut conn, &id2).await.unwrap().unwrap();
    assert_eq!((sg.members.len(), sg.max_server_per_host), (2, Some(2)));
    drop(conn);
    let (s, v) = c.nova(Method::GET, &format!("/os-server-groups/{id2}"), &m.token, "2.64", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["server_group"]["members"], json!([live]));

    let (_, v) = c.call(Method::GET, "/os-server-groups", &m.token, None).await;
    assert_eq!(v["server_groups"].as_array().unwrap().len(), 2);
    let (_, v) = c.call(Method::GET, "/os-server-groups?limit=1&offset=1", &m.token, None).await;
    assert_eq!(v["server_groups"][0]["id"], id2.as_str());

    // Other projects see nothing; admins see all with all_projects.
    let other = c.tenant("member").await;
    assert_eq!(c.call(Method::GET, &format!("/os-server-groups/{id}"), &other.token, None).await.0, 403);
    assert_eq!(c.call(Method::DELETE, &format!("/os-server-groups/{id}"), &other.token, None).await.0, 403);
    assert_eq!(c.call(Method::GET, "/os-server-groups", &other.token, None).await.1["server_groups"], json!([]));
    assert_eq!(c.call(Method::GET, "/os-server-groups?all_projects=1", &other.token, None).await.1["server_groups"], json!([]));
    let admin = c.admin().await;
    let (_, v) = c.call(Method::GET, "/os-server-groups?all_projects=True", &admin, None).await;
    assert_eq!(v["server_groups"].as_array().unwrap().len(), 2);
    // Readers may look, not create.
    let reader = c.user_on(&m.project_id, "reader").await;
    assert_eq!(c.call(Method::GET, &format!("/os-server-groups/{id}"), &reader.token, None).await.0, 200);
    assert_eq!(c.call(Method::POST, "/os-server-groups", &reader.token,
        Some(json!({"server_group": {"name": "r", "policies": ["affinity"]}}))).await.0, 403);

    assert_eq!(c.call(Method::DELETE, &format!("/os-server-groups/{id}"), &m.token, None).await.0, 204);
    let (s, e) = c.call(Method::GET, &format!("/os-server-groups/{id}"), &m.token, None).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (404, format!("Instance group {id} could not be found.")));
});

api_test!(async fn validation_and_quota(c) {
    let m = c.tenant("member").await;
    let cases = [
        ("2.1", json!({"server_group": {"name": "x"}}), "'policies' is a required property"),
        ("2.1", json!({"server_group": {"name": "x", "policies": []}}), "non-empty"),
        ("2.1", json!({"server_group": {"name": "x", "policies": ["affinity", "anti-affinity"]}}), "is too long"),
        ("2.1", json!({"server_group": {"name": "x", "policies": ["soft-affinity"]}}), "is not one of"),
        ("2.64", json!({"server_group": {"name": "x", "policies": ["affinity"]}}), "'policy' is a required property"),
        ("2.64", json!({"server_group": {"name": "x", "policy": "affinity", "rules": {"max_server_per_host": 2}}}),
         "Only anti-affinity policy supports rules."),
        ("2.64", json!({"server_group": {"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}}}),
         "less than the minimum of 1"),
        ("2.64", json!({"server_group": {"name": "x", "policy": "anti-affinity", "rules": {"other": 1}}}),
         "('other' was unexpected)"),
        ("2.1", json!({"server_group": {"name": "", "policies": ["affinity"]}}), "is too short"),
    ];
    for (mv, body, msg) in cases {
        let (s, e) = c.nova(Method::POST, "/os-server-groups", &m.token, mv, Some(body.clone())).await;
        assert_eq!(s, 400, "{mv} {body}");
        assert!(TestCloud::message(&e).contains(msg), "{mv} {body}: {e}");
    }
    assert_eq!(c.nova(Method::POST, "/os-server-groups", &m.token, "2.15",
        Some(json!({"server_group": {"name": "soft", "policies": ["soft-affinity"]}}))).await.0, 200);

    let admin = c.admin().await;
    c.call(Method::PUT, &format!("/os-quota-sets/{}", m.project_id), &admin,
        Some(json!({"quota_set": {"server_groups": 1}}))).await;
    let (s, e) = c.call(Method::POST, "/os-server-groups", &m.token,
        Some(json!({"server_group": {"name": "over", "policies": ["affinity"]}}))).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (403, "Quota exceeded, too many server groups.".to_string()));
    let (_, v) = c.call(Method::GET, "/limits", &m.token, None).await;
    assert_eq!(v["limits"]["absolute"]["totalServerGroupsUsed"], 1);
});
