//! Sharing images with other projects.

use http::Method;
use serde_json::json;

api_test!(async fn share_accept_and_revoke(c) {
    let a = c.tenant("member").await;
    let b = c.tenant("member").await;
    let v = c.create(&a.token, json!({"name": "shared-img"})).await;
    let id = v["id"].as_str().unwrap();
    let members = format!("/image/v2/images/{id}/members");
    assert_eq!(c.show(&b.token, id).await.0, 404);
    let (s, m) = c.json(Method::POST, &members, &a.token, Some(json!({"member": b.project_id}))).await;
    assert_eq!(s, 200);
    assert_eq!(m["status"], "pending");
    assert_eq!(c.json(Method::POST, &members, &a.token, Some(json!({"member": b.project_id}))).await.0, 409);
    // Visible to the member by id, but not in its default list until accepted.
    assert_eq!(c.show(&b.token, id).await.0, 200);
    let listed = |v: &serde_json::Value| v["images"].as_array().unwrap().iter().any(|i| i["id"] == id);
    assert!(!listed(&c.json(Method::GET, "/image/v2/images", &b.token, None).await.1));
    assert!(listed(&c.json(Method::GET, "/image/v2/images?member_status=pending&visibility=shared", &b.token, None).await.1));
    // Only the member changes its status.
    let me = format!("{members}/{}", b.project_id);
    assert_eq!(c.json(Method::PUT, &me, &a.token, Some(json!({"status": "accepted"}))).await.0, 403);
    assert_eq!(c.json(Method::PUT, &me, &b.token, Some(json!({"status": "maybe"}))).await.0, 400);
    let (s, m) = c.json(Method::PUT, &me, &b.token, Some(json!({"status": "accepted"}))).await;
    assert_eq!((s.as_u16(), m["status"].as_str()), (200, Some("accepted")));
    assert!(listed(&c.json(Method::GET, "/image/v2/images", &b.token, None).await.1));
    let (_, l) = c.json(Method::GET, &members, &a.token, None).await;
    assert_eq!(l["members"].as_array().unwrap().len(), 1);
    // The member cannot share further or delete the image.
    let other = c.tenant("member").await;
    assert_eq!(c.json(Method::POST, &members, &b.token, Some(json!({"member": other.project_id}))).await.0, 403);
    assert_eq!(c.json(Method::DELETE, &format!("/image/v2/images/{id}"), &b.token, None).await.0, 403);
    // Removing the member hides the image again.
    assert_eq!(c.json(Method::DELETE, &me, &a.token, None).await.0, 204);
    assert_eq!(c.show(&b.token, id).await.0, 404);
});

api_test!(async fn only_shared_images_have_members(c) {
    let a = c.tenant("member").await;
    let v = c.create(&a.token, json!({"name": "priv", "visibility": "private"})).await;
    let id = v["id"].as_str().unwrap();
    let (s, _) = c.json(Method::POST, &format!("/image/v2/images/{id}/members"), &a.token, Some(json!({"member": "x"}))).await;
    assert_eq!(s, 403);
});
