//! Networks: create, visibility between projects, admin-only attributes, delete.

use ferrostack_testkit::network::NetworkCloud as C;
use http::Method;
use serde_json::json;

api_test!(async fn a_network_is_created_listed_updated_and_deleted(c) {
    let a = c.tenant("member").await;
    let n = c.network(&a.token, "app").await;
    assert_eq!(n["status"], "ACTIVE");
    assert_eq!(n["mtu"], 1450, "vxlan networks leave room for the overlay header");
    assert_eq!(n["project_id"], a.project_id.as_str());
    assert_eq!(n["tenant_id"], a.project_id.as_str());
    assert_eq!(n["revision_number"], 1);
    assert!(n.get("provider:network_type").is_none(), "provider attributes are an admin's: {n}");
    let id = n["id"].as_str().unwrap();
    let (s, v) = c.call(Method::PUT, &format!("/networks/{id}"), &a.token, Some(json!({"network": {"name": "renamed"}}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["network"]["name"], "renamed");
    assert_eq!(v["network"]["revision_number"], 2);
    // An outdated If-Match revision is refused; the current one passes.
    let (s, v) = c.call_with(Method::PUT, &format!("/networks/{id}"), &a.token,
        Some(json!({"network": {"name": "x"}})), &[("if-match", "revision_number=1")]).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (412, "RevisionNumberConstraintFailed"));
    let (s, _) = c.call_with(Method::PUT, &format!("/networks/{id}"), &a.token,
        Some(json!({"network": {"name": "x"}})), &[("if-match", "revision_number=2")]).await;
    assert_eq!(s, 200);
    let (_, l) = c.call(Method::GET, "/networks?fields=id&fields=name&fields=mtu", &a.token, None).await;
    let mine: Vec<_> = l["networks"].as_array().unwrap().iter().filter(|x| x["id"] == id).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].as_object().unwrap().len(), 3, "only the asked fields: {}", mine[0]);
    // The external network is listed to everyone, with its mtu.
    let (_, l) = c.call(Method::GET, "/networks?router%3Aexternal=True", &a.token, None).await;
    let ext = l["networks"].as_array().unwrap();
    assert_eq!(ext.len(), 1);
    assert_eq!(ext[0]["name"], "public");
    assert_eq!(c.call(Method::DELETE, &format!("/networks/{id}"), &a.token, None).await.0, 204);
    let (s, v) = c.call(Method::GET, &format!("/networks/{id}"), &a.token, None).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (404, "NetworkNotFound"));
});

api_test!(async fn projects_see_only_their_shared_and_external_networks(c) {
    let a = c.tenant("member").await;
    let b = c.tenant("member").await;
    let admin = c.admin_token().await;
    let private = c.network(&a.token, "private").await;
    let pid = private["id"].as_str().unwrap();
    assert_eq!(c.call(Method::GET, &format!("/networks/{pid}"), &b.token, None).await.0, 404);
    let (_, l) = c.call(Method::GET, "/networks", &b.token, None).await;
    assert!(!C::ids(&l, "networks").contains(&pid.to_string()));
    // Another project may neither change nor use it.
    assert_eq!(c.call(Method::PUT, &format!("/networks/{pid}"), &b.token, Some(json!({"network": {"name": "x"}}))).await.0, 404);
    let (s, v) = c.call(Method::POST, "/ports", &b.token, Some(json!({"port": {"network_id": pid}}))).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (404, "NetworkNotFound"));
    // Sharing is an admin's; a shared network is seen by all, and still only changed by its owner.
    let (s, v) = c.call(Method::POST, "/networks", &a.token, Some(json!({"network": {"name": "s", "shared": true}}))).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (403, "PolicyNotAuthorized"));
    let shared = c.create(&admin, "networks", "network", json!({"name": "shared", "shared": true})).await;
    let sid = shared["id"].as_str().unwrap();
    assert_eq!(shared["provider:network_type"], "vxlan", "an admin sees the segment: {shared}");
    assert_eq!(c.call(Method::GET, &format!("/networks/{sid}"), &b.token, None).await.0, 200);
    assert_eq!(c.call(Method::DELETE, &format!("/networks/{sid}"), &b.token, None).await.0, 403);
    // Provider attributes are an admin's, and a taken VNI is refused.
    let (s, _) = c.call(Method::POST, "/networks", &a.token,
        Some(json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 4000}}))).await;
    assert_eq!(s, 403);
    let vni = shared["provider:segmentation_id"].as_i64().unwrap();
    let (s, v) = c.call(Method::POST, "/networks", &admin,
        Some(json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": vni}}))).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (409, "TunnelIdInUse"));
    let (s, v) = c.call(Method::POST, "/networks", &admin,
        Some(json!({"network": {"provider:network_type": "flat", "provider:physical_network": "nowhere"}}))).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (400, "InvalidInput"));
    // Unknown attributes and bad values are 400s.
    assert_eq!(c.call(Method::POST, "/networks", &a.token, Some(json!({"network": {"colour": "red"}}))).await.0, 400);
    assert_eq!(c.call(Method::POST, "/networks", &a.token, Some(json!({"network": {"admin_state_up": "maybe"}}))).await.0, 400);
    assert_eq!(c.call(Method::POST, "/networks", &a.token, Some(json!({"network": {"mtu": 9000}}))).await.0, 400);
});

api_test!(async fn deleting_a_network_takes_its_subnets_but_not_while_ports_use_it(c) {
    let a = c.tenant("member").await;
    let n = c.network(&a.token, "n").await;
    let id = n["id"].as_str().unwrap();
    let s = c.subnet(&a.token, id, "10.1.0.0/24").await;
    let p = c.port(&a.token, id).await;
    let (st, v) = c.call(Method::DELETE, &format!("/networks/{id}"), &a.token, None).await;
    assert_eq!((st.as_u16(), C::kind(&v)), (409, "NetworkInUse"));
    assert_eq!(c.call(Method::DELETE, &format!("/ports/{}", p["id"].as_str().unwrap()), &a.token, None).await.0, 204);
    assert_eq!(c.call(Method::DELETE, &format!("/networks/{id}"), &a.token, None).await.0, 204);
    assert_eq!(c.call(Method::GET, &format!("/subnets/{}", s["id"].as_str().unwrap()), &a.token, None).await.0, 404);
});

api_test!(async fn versions_and_extensions_are_discoverable(c) {
    let a = c.tenant("member").await;
    let (s, _, body) = c.send_raw(http::Request::get("/networking/").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["versions"].as_array().unwrap().len(), 1);
    assert_eq!(v["versions"][0]["id"], "v2.0");
    let (s, v) = c.call(Method::GET, "/extensions", &a.token, None).await;
    assert_eq!(s, 200);
    let aliases: Vec<&str> = v["extensions"].as_array().unwrap().iter().map(|e| e["alias"].as_str().unwrap()).collect();
    assert!(aliases.contains(&"security-group") && aliases.contains(&"quotas"), "{aliases:?}");
    assert_eq!(c.call(Method::GET, "/extensions/quotas", &a.token, None).await.0, 200);
    assert_eq!(c.call(Method::GET, "/extensions/nope", &a.token, None).await.0, 404);
    assert_eq!(c.call(Method::GET, "/", &a.token, None).await.0, 200);
});

api_test!(async fn tags_are_set_checked_replaced_and_removed(c) {
    let a = c.tenant("member").await;
    let n = c.network(&a.token, "n").await;
    let id = n["id"].as_str().unwrap();
    let base = format!("/networks/{id}/tags");
    assert_eq!(c.call(Method::PUT, &format!("{base}/red"), &a.token, None).await.0, 201);
    assert_eq!(c.call(Method::GET, &format!("{base}/red"), &a.token, None).await.0, 204);
    assert_eq!(c.call(Method::GET, &format!("{base}/blue"), &a.token, None).await.0, 404);
    let (s, v) = c.call(Method::PUT, &base, &a.token, Some(json!({"tags": ["b", "a", "c"]}))).await;
    assert_eq!((s.as_u16(), v["tags"].clone()), (200, json!(["a", "b", "c"])));
    let (_, l) = c.call(Method::GET, "/networks?tags=a,b", &a.token, None).await;
    assert_eq!(C::ids(&l, "networks"), vec![id.to_string()]);
    let (_, v) = c.call(Method::GET, &format!("/networks/{id}"), &a.token, None).await;
    assert_eq!(v["network"]["tags"], json!(["a", "b", "c"]));
    assert_eq!(c.call(Method::DELETE, &format!("{base}/a"), &a.token, None).await.0, 204);
    assert_eq!(c.call(Method::DELETE, &format!("{base}/a"), &a.token, None).await.0, 404);
    assert_eq!(c.call(Method::DELETE, &base, &a.token, None).await.0, 204);
    let (_, v) = c.call(Method::GET, &base, &a.token, None).await;
    assert_eq!(v["tags"], json!([]));
    // Another project neither reads nor writes them.
    let b = c.tenant("member").await;
    assert_eq!(c.call(Method::PUT, &format!("{base}/x"), &b.token, None).await.0, 404);
    assert_eq!(c.call(Method::GET, "/nothing/x/tags", &a.token, None).await.0, 404);
});
