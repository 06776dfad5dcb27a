//! The compute image proxy: `/images` (before 2.36) and image metadata (before 2.39), over
//! the image service's own rules.

use http::Method;
use serde_json::{json, Value};

use crate::common::TestCloud;

fn ids(v: &Value) -> Vec<String> {
    v["images"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

api_test!(async fn image_proxy_lists_shows_and_deletes(c) {
    c.start_hosts(1).await;
    let public = c.image_id().await;
    let m = c.tenant("member").await;
    let t = m.token.as_str();
    let server = c.boot(t, "vm").await;
    // A snapshot of the member's server: private to the member, linked to the server.
    let (s, b) = c.action(t, &server, "2.45", json!({"createImage": {"name": "snap"}})).await;
    assert_eq!(s, 202, "{b}");
    let snap = b["image_id"].as_str().unwrap().to_string();
    c.wait_status(&server, "ACTIVE").await;

    let (s, v) = c.nova(Method::GET, "/images", t, "2.1", None).await;
    assert_eq!(s, 200, "{v}");
    let all = ids(&v);
    assert!(all.contains(&public) && all.contains(&snap), "{v}");
    let first = &v["images"][0];
    assert_eq!(first["links"].as_array().unwrap().len(), 3, "{first}");
    assert!(first.get("status").is_none(), "the plain list is id, name and links");

    let (_, v) = c.nova(Method::GET, &format!("/images/{snap}"), t, "2.1", None).await;
    let i = &v["image"];
    assert_eq!((i["name"].as_str(), i["status"].as_str(), i["progress"].as_i64()), (Some("snap"), Some("ACTIVE"), Some(100)), "{v}");
    assert_eq!(i["server"]["id"], server.as_str());
    assert_eq!(i["metadata"]["image_type"], "snapshot");
    assert!(i["OS-EXT-IMG-SIZE:size"].is_i64() && i["minDisk"].is_i64() && i["created"].is_string());

    // Nova's filters, as Glance's.
    let q = |s: &str| format!("/images/detail?{s}");
    let (_, v) = c.nova(Method::GET, &q(&format!("server={server}")), t, "2.1", None).await;
    assert_eq!(ids(&v), std::slice::from_ref(&snap));
    let (_, v) = c.nova(Method::GET, &q(&format!("server=http://x/servers/{server}")), t, "2.1", None).await;
    assert_eq!(ids(&v), std::slice::from_ref(&snap));
    let (_, v) = c.nova(Method::GET, &q("type=snapshot"), t, "2.1", None).await;
    assert_eq!(ids(&v), std::slice::from_ref(&snap));
    let (_, v) = c.nova(Method::GET, &q("name=snap&status=ACTIVE"), t, "2.1", None).await;
    assert_eq!(ids(&v), std::slice::from_ref(&snap));
    let (_, v) = c.nova(Method::GET, &q("status=SAVING"), t, "2.1", None).await;
    assert_eq!(ids(&v), Vec::<String>::new());
    let (_, v) = c.nova(Method::GET, &q("changes-since=2000-01-01T00:00:00Z"), t, "2.1", None).await;
    assert_eq!(ids(&v).len(), all.len());
    let (_, v) = c.nova(Method::GET, "/images?limit=1", t, "2.1", None).await;
    assert_eq!(ids(&v).len(), 1);
    let next = v["images_links"][0]["href"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(next.contains(&format!("marker={}", ids(&v)[0])), "{next}");

    // Gone at 2.36; unknown ids are 404; another project does not see the snapshot.
    assert_eq!(c.nova(Method::GET, "/images", t, "2.36", None).await.0, 404);
    let (s, e) = c.nova(Method::GET, "/images/nope", t, "2.1", None).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (404, "Image not found.".to_string()));
    let other = c.tenant("member").await;
    assert_eq!(c.nova(Method::GET, &format!("/images/{snap}"), &other.token, "2.1", None).await.0, 404);
    let (_, v) = c.nova(Method::GET, "/images", &other.token, "2.1", None).await;
    assert!(!ids(&v).contains(&snap));

    // Delete: not someone else's image; the owner's own goes.
    assert_eq!(c.nova(Method::DELETE, &format!("/images/{public}"), t, "2.1", None).await.0, 403);
    assert_eq!(c.nova(Method::DELETE, &format!("/images/{snap}"), t, "2.1", None).await.0, 204);
    assert_eq!(c.nova(Method::GET, &format!("/images/{snap}"), t, "2.1", None).await.0, 404);
    assert_eq!(c.nova(Method::DELETE, &format!("/images/{snap}"), t, "2.1", None).await.0, 404);
});

api_test!(async fn image_metadata(c) {
    c.start_hosts(1).await;
    let public = c.image_id().await;
    let m = c.tenant("member").await;
    let t = m.token.as_str();
    let server = c.boot(t, "vm").await;
    let (_, b) = c.action(t, &server, "2.45", json!({"createImage": {"name": "snap"}})).await;
    let img = b["image_id"].as_str().unwrap().to_string();
    c.wait_status(&server, "ACTIVE").await;
    let path = format!("/images/{img}/metadata");

    let (s, v) = c.nova(Method::POST, &path, t, "2.1", Some(json!({"metadata": {"a": "1", "b": "2"}}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["metadata"]["a"].as_str(), v["metadata"]["image_type"].as_str()), (Some("1"), Some("snapshot")));
    let (_, v) = c.nova(Method::GET, &format!("{path}/a"), t, "2.1", None).await;
    assert_eq!(v, json!({"meta": {"a": "1"}}));
    let (s, v) = c.nova(Method::PUT, &format!("{path}/a"), t, "2.1", Some(json!({"meta": {"a": "9"}}))).await;
    assert_eq!((s.as_u16(), v), (200, json!({"meta": {"a": "9"}})));
    let (s, e) = c.nova(Method::PUT, &format!("{path}/a"), t, "2.1", Some(json!({"meta": {"z": "9"}}))).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (400, "Request body and URI mismatch".to_string()));
    let (s, _) = c.nova(Method::PUT, &format!("{path}/a"), t, "2.1", Some(json!({"meta": {"a": "1", "b": "2"}}))).await;
    assert_eq!(s, 400);
    assert_eq!(c.nova(Method::DELETE, &format!("{path}/b"), t, "2.1", None).await.0, 204);
    let (s, e) = c.nova(Method::DELETE, &format!("{path}/b"), t, "2.1", None).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (404, "Invalid metadata key".to_string()));
    assert_eq!(c.nova(Method::GET, &format!("{path}/b"), t, "2.1", None).await.0, 404);
    // PUT replaces every property.
    let (s, v) = c.nova(Method::PUT, &path, t, "2.1", Some(json!({"metadata": {"only": "this"}}))).await;
    assert_eq!((s.as_u16(), v.clone()), (200, json!({"metadata": {"only": "this"}})), "{v}");
    let (_, v) = c.nova(Method::GET, &path, t, "2.1", None).await;
    assert_eq!(v, json!({"metadata": {"only": "this"}}));
    // The image service's view agrees.
    let (_, _, raw) = c.raw(Method::GET, &format!("/image/v2/images/{img}"), Some(t), None, &[]).await;
    let g: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!((g["only"].as_str(), g.get("a")), (Some("this"), None), "{g}");

    // Bad bodies, limits, someone else's image, versions.
    for bad in [json!({"metadata": {"k": 1}}), json!({"meta": {"k": "v"}}), json!({"metadata": []})] {
        assert_eq!(c.nova(Method::POST, &path, t, "2.1", Some(bad)).await.0, 400);
    }
    let many: serde_json::Map<String, Value> = (0..200).map(|n| (format!("k{n}"), json!("v"))).collect();
    let (s, e) = c.nova(Method::POST, &path, t, "2.1", Some(json!({"metadata": many}))).await;
    assert_eq!(s, 403, "{e}");
    let (s, _) = c.nova(Method::POST, &format!("/images/{public}/metadata"), t, "2.1", Some(json!({"metadata": {"x": "y"}}))).await;
    assert_eq!(s, 403);
    assert_eq!(c.nova(Method::GET, "/images/nope/metadata", t, "2.1", None).await.0, 404);
    assert_eq!(c.nova(Method::GET, &path, t, "2.39", None).await.0, 404);
});
