//! Image records: create, list, show, JSON-patch, delete, tags, visibility and policy.

use http::Method;
use serde_json::json;

use crate::common::PATCH_CT;

api_test!(async fn create_show_and_defaults(c) {
    let t = c.tenant("member").await;
    let v = c.create(&t.token, json!({"name": "a", "disk_format": "raw", "container_format": "bare", "os_distro": "x"})).await;
    assert_eq!(v["status"], "queued");
    assert_eq!(v["visibility"], "shared", "Glance's default visibility");
    assert_eq!(v["owner"], t.project_id);
    assert_eq!(v["os_distro"], "x");
    assert_eq!(v["self"], format!("/v2/images/{}", v["id"].as_str().unwrap()));
    assert!(v["size"].is_null() && v["checksum"].is_null());
    let (s, shown) = c.show(&t.token, v["id"].as_str().unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(shown["name"], "a");
});

api_test!(async fn bad_input_is_refused_and_leaves_nothing(c) {
    let t = c.tenant("member").await;
    for (body, status) in [
        (json!({"disk_format": "nope"}), 400),
        (json!({"container_format": 5}), 400),
        (json!({"min_ram": -1}), 400),
        (json!({"name": "x".repeat(256)}), 400),
        (json!({"status": "active"}), 403),
        (json!({"checksum": "abc"}), 403),
        (json!({"id": "not-a-uuid"}), 400),
        (json!({"os_distro": 7}), 400),
        (json!({"protected": "yes"}), 400),
        (json!({"os_glance_import_task": "x"}), 403),
    ] {
        let (s, v) = c.json(Method::POST, "/image/v2/images", &t.token, Some(body.clone())).await;
        assert_eq!(s, status, "{body} -> {v}");
    }
    let (s, _, _) = c.raw(Method::POST, "/image/v2/images", Some(&t.token), Some("application/json"), b"{nope".to_vec(), &[]).await;
    assert_eq!(s, 400);
    let (_, list) = c.json(Method::GET, "/image/v2/images", &t.token, None).await;
    assert_eq!(list["images"].as_array().unwrap().len(), 0, "nothing half-created");
});

api_test!(async fn duplicate_id_conflicts(c) {
    let t = c.tenant("member").await;
    let id = uuid::Uuid::new_v4().to_string();
    c.create(&t.token, json!({"id": id})).await;
    let (s, _) = c.json(Method::POST, "/image/v2/images", &t.token, Some(json!({"id": id}))).await;
    assert_eq!(s, 409);
});

api_test!(async fn only_admins_publicize_and_readers_cannot_create(c) {
    let t = c.tenant("member").await;
    let (s, _) = c.json(Method::POST, "/image/v2/images", &t.token, Some(json!({"visibility": "public"}))).await;
    assert_eq!(s, 403);
    let admin = c.admin().await;
    let v = c.create(&admin, json!({"name": "pub", "visibility": "public"})).await;
    assert_eq!(v["visibility"], "public");
    let r = c.tenant("reader").await;
    let (s, _) = c.json(Method::POST, "/image/v2/images", &r.token, Some(json!({"name": "no"}))).await;
    assert_eq!(s, 403);
    // Public images are visible to everyone.
    let (s, _) = c.show(&r.token, v["id"].as_str().unwrap()).await;
    assert_eq!(s, 200);
});

api_test!(async fn private_images_are_invisible_to_others(c) {
    let a = c.tenant("member").await;
    let b = c.tenant("member").await;
    let v = c.create(&a.token, json!({"name": "mine", "visibility": "private"})).await;
    let id = v["id"].as_str().unwrap();
    assert_eq!(c.show(&b.token, id).await.0, 404);
    let (s, _) = c.json(Method::DELETE, &format!("/image/v2/images/{id}"), &b.token, None).await;
    assert_eq!(s, 404);
    let (_, list) = c.json(Method::GET, "/image/v2/images", &b.token, None).await;
    assert!(list["images"].as_array().unwrap().iter().all(|i| i["id"] != id));
    // Its tasks (2.12) likewise: the owner sees none pending, others get 404.
    let (s, v) = c.json(Method::GET, &format!("/image/v2/images/{id}/tasks"), &a.token, None).await;
    assert_eq!((s.as_u16(), v), (200, json!({"tasks": []})));
    let (s, _) = c.json(Method::GET, &format!("/image/v2/images/{id}/tasks"), &b.token, None).await;
    assert_eq!(s, 404);
});

api_test!(async fn json_patch_add_replace_remove(c) {
    let t = c.tenant("member").await;
    let v = c.create(&t.token, json!({"name": "p"})).await;
    let id = v["id"].as_str().unwrap();
    let (s, v) = c
        .patch(id, &t.token, json!([
            {"op": "replace", "path": "/name", "value": "q"},
            {"op": "add", "path": "/os_distro", "value": "ubuntu"},
            {"op": "add", "path": "/tags", "value": ["lts", "lts", "x"]},
            {"op": "replace", "path": "/min_ram", "value": 512},
        ]))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["name"].as_str(), v["os_distro"].as_str(), v["min_ram"].as_i64()), (Some("q"), Some("ubuntu"), Some(512)));
    assert_eq!(v["tags"], json!(["lts", "x"]));
    let (s, v) = c.patch(id, &t.token, json!([{"op": "remove", "path": "/os_distro"}])).await;
    assert_eq!(s, 200);
    assert!(v.get("os_distro").is_none());
    // Read-only attributes, unknown ops, missing properties, bad pointers, wrong content type.
    assert_eq!(c.patch(id, &t.token, json!([{"op": "replace", "path": "/status", "value": "active"}])).await.0, 403);
    assert_eq!(c.patch(id, &t.token, json!([{"op": "remove", "path": "/name"}])).await.0, 403);
    assert_eq!(c.patch(id, &t.token, json!([{"op": "move", "path": "/name", "value": "z"}])).await.0, 400);
    assert_eq!(c.patch(id, &t.token, json!([{"op": "remove", "path": "/nothere"}])).await.0, 409);
    assert_eq!(c.patch(id, &t.token, json!([{"op": "add", "path": "a/b", "value": "z"}])).await.0, 400);
    assert_eq!(c.patch(id, &t.token, json!({"op": "add"})).await.0, 400);
    let (s, _, _) = c
        .raw(Method::PATCH, &format!("/image/v2/images/{id}"), Some(&t.token), Some("application/json"), b"[]".to_vec(), &[])
        .await;
    assert_eq!(s, 415);
    assert_eq!(c.patch(id, &t.token, json!([{"op": "replace", "path": "/visibility", "value": "public"}])).await.0, 403);
    let (_, v) = c.show(&t.token, id).await;
    assert_eq!(v["visibility"], "shared", "a refused patch changes nothing");
});

api_test!(async fn tags_and_protection(c) {
    let t = c.tenant("member").await;
    let v = c.create(&t.token, json!({"name": "t"})).await;
    let id = v["id"].as_str().unwrap();
    let (s, _) = c.json(Method::PUT, &format!("/image/v2/images/{id}/tags/blue"), &t.token, None).await;
    assert_eq!(s, 204);
    assert_eq!(c.show(&t.token, id).await.1["tags"], json!(["blue"]));
    let (s, _) = c.json(Method::DELETE, &format!("/image/v2/images/{id}/tags/red"), &t.token, None).await;
    assert_eq!(s, 404);
    let (s, _) = c.json(Method::DELETE, &format!("/image/v2/images/{id}/tags/blue"), &t.token, None).await;
    assert_eq!(s, 204);
    c.patch(id, &t.token, json!([{"op": "replace", "path": "/protected", "value": true}])).await;
    let (s, _) = c.json(Method::DELETE, &format!("/image/v2/images/{id}"), &t.token, None).await;
    assert_eq!(s, 403);
    c.patch(id, &t.token, json!([{"op": "replace", "path": "/protected", "value": false}])).await;
    let (s, _) = c.json(Method::DELETE, &format!("/image/v2/images/{id}"), &t.token, None).await;
    assert_eq!(s, 204);
    assert_eq!(c.show(&t.token, id).await.0, 404);
});

api_test!(async fn list_filters_sorting_and_pages(c) {
    let t = c.tenant("member").await;
    for (name, size) in [("b", 10usize), ("a", 30), ("c", 20)] {
        let v = c.create(&t.token, json!({"name": name, "disk_format": "raw", "container_format": "bare", "os_distro": name})).await;
        assert_eq!(c.upload(v["id"].as_str().unwrap(), &t.token, &vec![7u8; size]).await, 204);
    }
    c.create(&t.token, json!({"name": "queued-one"})).await;
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap_or("").to_string()).collect()
    };
    let (_, v) = c.json(Method::GET, "/image/v2/images?status=active&sort=name:asc", &t.token, None).await;
    assert_eq!(names(&v), ["a", "b", "c"]);
    let (_, v) = c.json(Method::GET, "/image/v2/images?sort_key=size&sort_dir=desc&status=active", &t.token, None).await;
    assert_eq!(names(&v), ["a", "c", "b"]);
    let (_, v) = c.json(Method::GET, "/image/v2/images?size_min=15&size_max=25", &t.token, None).await;
    assert_eq!(names(&v), ["c"]);
    let (_, v) = c.json(Method::GET, "/image/v2/images?os_distro=b", &t.token, None).await;
    assert_eq!(names(&v), ["b"]);
    let (_, v) = c.json(Method::GET, "/image/v2/images?name=queued-one", &t.token, None).await;
    assert_eq!(v["images"][0]["status"], "queued");
    // Pages of two follow `next`.
    let (_, p1) = c.json(Method::GET, "/image/v2/images?limit=2&sort=name:asc", &t.token, None).await;
    assert_eq!(names(&p1), ["a", "b"]);
    let next = p1["next"].as_str().expect("next link").to_string();
    let (_, p2) = c.json(Method::GET, &format!("/image{next}"), &t.token, None).await;
    assert_eq!(names(&p2), ["c", "queued-one"]);
    assert!(p2.get("next").is_none());
    assert_eq!(c.json(Method::GET, "/image/v2/images?sort_key=bogus", &t.token, None).await.0, 400);
    assert_eq!(c.json(Method::GET, "/image/v2/images?limit=x", &t.token, None).await.0, 400);
    assert_eq!(c.json(Method::GET, "/image/v2/images?visibility=nope", &t.token, None).await.0, 400);
    assert_eq!(c.json(Method::GET, "/image/v2/images?marker=nope", &t.token, None).await.0, 400);
});

api_test!(async fn count_quota_answers_413(c) {
    let admin = c.admin().await;
    let t = c.tenant("member").await;
    // Limit this project to 1 image through unified limits.
    let (_, svcs) = c.json(Method::GET, "/identity/v3/services?type=image", &admin, None).await;
    let sid = svcs["services"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = c
        .json(Method::POST, "/identity/v3/limits", &admin, Some(json!({"limits": [{"project_id": t.project_id,
            "service_id": sid, "region_id": "RegionOne", "resource_name": "image_count_total", "resource_limit": 1}]})))
        .await;
    assert_eq!(s, 201, "{v}");
    c.create(&t.token, json!({"name": "one"})).await;
    let (s, v) = c.json(Method::POST, "/image/v2/images", &t.token, Some(json!({"name": "two"}))).await;
    assert_eq!(s, 413, "{v}");
    assert!(v["message"].as_str().unwrap().contains("image_count_total"));
});

api_test!(async fn versions_schemas_and_info(c) {
    let t = c.tenant("reader").await;
    let (s, _, body) = c.raw(Method::GET, "/image", None, None, vec![], &[]).await;
    assert_eq!(s, 300);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["versions"][0]["status"], "CURRENT");
    for schema in ["image", "images", "member", "members"] {
        let (s, v) = c.json(Method::GET, &format!("/image/v2/schemas/{schema}"), &t.token, None).await;
        assert_eq!((s.as_u16(), v["name"].as_str()), (200, Some(schema)));
    }
    let (_, v) = c.json(Method::GET, "/image/v2/info/import", &t.token, None).await;
    assert_eq!(v["import-methods"]["value"], json!(["glance-direct"]));
    let (_, v) = c.json(Method::GET, "/image/v2/info/stores", &t.token, None).await;
    assert_eq!(v["stores"][0]["id"], "file");
    let (s, _) = c.json(Method::GET, "/image/v2/nothing", &t.token, None).await;
    assert_eq!(s, 404);
    let _ = PATCH_CT;
});

api_test!(async fn admin_changes_the_owner(c) {
    let admin = c.admin().await;
    let t = c.tenant("member").await;
    let v = c.create(&admin, json!({"name": "gift"})).await;
    let id = v["id"].as_str().unwrap();
    let (s, v) = c.patch(id, &admin, json!([{"op": "replace", "path": "/owner", "value": t.project_id}])).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(c.show(&admin, id).await.1["owner"], t.project_id.as_str());
    // The new owner now manages it; a member cannot give it away.
    let (s, _) = c.patch(id, &t.token, json!([{"op": "replace", "path": "/owner", "value": "someone"}])).await;
    assert_eq!(s, 403);
});

api_test!(async fn more_properties_than_the_quota_are_refused(c) {
    let t = c.tenant("member").await;
    let props = |n: usize| {
        let mut o = serde_json::Map::new();
        for i in 0..n {
            o.insert(format!("p{i:03}"), json!("v"));
        }
        o
    };
    let mut too_many = props(129);
    too_many.insert("name".into(), json!("many"));
    let (s, v) = c.json(Method::POST, "/image/v2/images", &t.token, Some(json!(too_many))).await;
    assert_eq!(s, 413, "{v}");
    assert!(v["message"].as_str().unwrap().contains("Attempted: 129, Maximum: 128"), "{v}");
    // 128 are fine; one more by PATCH is not; replacing or removing stays possible.
    let v = c.create(&t.token, json!(props(128))).await;
    let id = v["id"].as_str().unwrap();
    let (s, _) = c.patch(id, &t.token, json!([{"op": "add", "path": "/extra", "value": "x"}])).await;
    assert_eq!(s, 413);
    let (s, _) = c.patch(id, &t.token, json!([{"op": "replace", "path": "/p000", "value": "y"}])).await;
    assert_eq!(s, 200);
    let (s, _) = c.patch(id, &t.token, json!([{"op": "remove", "path": "/p001"},
        {"op": "add", "path": "/extra", "value": "x"}])).await;
    assert_eq!(s, 200);
});

api_test!(async fn image_data_must_be_an_octet_stream(c) {
    let t = c.tenant("member").await;
    let v = c.create(&t.token, json!({"name": "d", "disk_format": "raw", "container_format": "bare"})).await;
    let id = v["id"].as_str().unwrap();
    for ct in [Some("application/json"), Some("text/plain"), None] {
        let (s, _, _) = c.raw(Method::PUT, &format!("/image/v2/images/{id}/file"), Some(&t.token),
            ct, b"data".to_vec(), &[]).await;
        assert_eq!(s, 415, "{ct:?}");
    }
    let (s, _) = c.show(&t.token, id).await;
    assert_eq!(s, 200);
    assert_eq!(c.show(&t.token, id).await.1["status"], "queued", "nothing was stored");
    let (s, _, _) = c.raw(Method::PUT, &format!("/image/v2/images/{id}/file"), Some(&t.token),
        Some("application/octet-stream; charset=binary"), vec![1u8; 512], &[]).await;
    assert_eq!(s, 204);
});

// The image list is cached; the application layer's writes (not an HTTP middleware) mark it
// stale, so a listing right after any write shows that write.
api_test!(async fn listings_show_every_write_at_once(c) {
    let admin = c.admin().await;
    let v = c.create(&admin, json!({"name": "fresh", "disk_format": "raw", "container_format": "bare"})).await;
    let id = v["id"].as_str().unwrap().to_string();
    let find = |list: &serde_json::Value| list["images"].as_array().unwrap().iter().find(|i| i["id"] == id.as_str()).cloned();
    let listed = c.json(Method::GET, "/image/v2/images", &admin, None).await.1;
    assert_eq!(find(&listed).unwrap()["status"], "queued");
    assert_eq!(c.upload(&id, &admin, &[7u8; 16]).await, 204);
    let listed = c.json(Method::GET, "/image/v2/images", &admin, None).await.1;
    assert_eq!(find(&listed).unwrap()["status"], "active");
    let (s, _) = c.json(Method::PUT, &format!("/image/v2/images/{id}/tags/blue"), &admin, None).await;
    assert_eq!(s, 204);
    let listed = c.json(Method::GET, "/image/v2/images", &admin, None).await.1;
    assert_eq!(find(&listed).unwrap()["tags"], json!(["blue"]));
    let (s, _) = c.json(Method::POST, &format!("/image/v2/images/{id}/actions/deactivate"), &admin, None).await;
    assert_eq!(s, 204);
    let listed = c.json(Method::GET, "/image/v2/images", &admin, None).await.1;
    assert_eq!(find(&listed).unwrap()["status"], "deactivated");
    let (s, _) = c.json(Method::DELETE, &format!("/image/v2/images/{id}"), &admin, None).await;
    assert_eq!(s, 204);
    let listed = c.json(Method::GET, "/image/v2/images", &admin, None).await.1;
    assert!(find(&listed).is_none());
});
