//! RBAC policies: sharing a network with one project, and taking it back.

use ferrostack_testkit::network::NetworkCloud as C;
use http::Method;
use serde_json::json;

api_test!(async fn a_network_is_shared_with_one_project_and_not_others(c) {
    let a = c.tenant("member").await;
    let b = c.tenant("member").await;
    let other = c.tenant("member").await;
    let n = c.network(&a.token, "n").await;
    let nid = n["id"].as_str().unwrap();
    c.subnet(&a.token, nid, "10.0.0.0/24").await;
    assert_eq!(c.call(Method::GET, &format!("/networks/{nid}"), &b.token, None).await.0, 404);
    let body = |target: &str| json!({"rbac_policy": {"object_type": "network", "object_id": nid,
        "action": "access_as_shared", "target_tenant": target}});
    // Sharing with everyone is an admin's; with one project, the owner's.
    assert_eq!(c.call(Method::POST, "/rbac-policies", &a.token, Some(body("*"))).await.0, 403);
    let (s, p) = c.call(Method::POST, "/rbac-policies", &a.token, Some(body(&b.project_id))).await;
    assert_eq!(s, 201, "{p}");
    let pid = p["rbac_policy"]["id"].as_str().unwrap();
    assert_eq!(c.call(Method::POST, "/rbac-policies", &a.token, Some(body(&b.project_id))).await.0, 409);
    // b sees it (shared, to b) and makes a port on it; other does not.
    let (s, v) = c.call(Method::GET, &format!("/networks/{nid}"), &b.token, None).await;
    assert_eq!((s.as_u16(), v["network"]["shared"].as_bool()), (200, Some(true)));
    let port = c.port(&b.token, nid).await;
    assert_eq!(port["project_id"], b.project_id.as_str());
    assert_eq!(c.call(Method::GET, &format!("/networks/{nid}"), &other.token, None).await.0, 404);
    let (s, _) = c.call(Method::POST, "/ports", &other.token, Some(json!({"port": {"network_id": nid}}))).await;
    assert_eq!(s, 404);
    // b cannot see or remove a's policy; a cannot take it back while b's port is there.
    assert_eq!(c.call(Method::DELETE, &format!("/rbac-policies/{pid}"), &b.token, None).await.0, 404);
    let (s, v) = c.call(Method::DELETE, &format!("/rbac-policies/{pid}"), &a.token, None).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (409, "RbacPolicyInUse"));
    c.call(Method::DELETE, &format!("/ports/{}", port["id"].as_str().unwrap()), &b.token, None).await;
    assert_eq!(c.call(Method::DELETE, &format!("/rbac-policies/{pid}"), &a.token, None).await.0, 204);
    assert_eq!(c.call(Method::GET, &format!("/networks/{nid}"), &b.token, None).await.0, 404);
    // An admin's '*' entry is the shared flag.
    let admin = c.admin_token().await;
    let (s, _) = c.call(Method::POST, "/rbac-policies", &admin, Some(body("*"))).await;
    assert_eq!(s, 201);
    let (_, v) = c.call(Method::GET, &format!("/networks/{nid}"), &other.token, None).await;
    assert_eq!(v["network"]["shared"], true);
    let (_, l) = c.call(Method::GET, &format!("/rbac-policies?object_id={nid}"), &admin, None).await;
    assert_eq!(l["rbac_policies"].as_array().unwrap().len(), 1);
    let (s, v) = c.call(Method::PUT, &format!("/networks/{nid}"), &admin, Some(json!({"network": {"shared": false}}))).await;
    assert_eq!(s, 200, "{v}");
    let (_, l) = c.call(Method::GET, &format!("/rbac-policies?object_id={nid}"), &admin, None).await;
    assert_eq!(l["rbac_policies"], json!([]));
    assert_eq!(c.call(Method::GET, &format!("/networks/{nid}"), &other.token, None).await.0, 404);
});

api_test!(async fn retargeting_the_everyone_entry_changes_the_shared_flag(c) {
    let admin = c.admin_token().await;
    let b = c.tenant("member").await;
    let other = c.tenant("member").await;
    let n = c.create(&admin, "networks", "network", json!({"name": "s", "shared": true})).await;
    let nid = n["id"].as_str().unwrap();
    let (_, l) = c.call(Method::GET, &format!("/rbac-policies?object_id={nid}"), &admin, None).await;
    let pid = l["rbac_policies"][0]["id"].as_str().unwrap().to_string();
    let (st, _) = c.call(Method::PUT, &format!("/rbac-policies/{pid}"), &admin, Some(json!({"rbac_policy": {"target_tenant": b.project_id}}))).await;
    assert_eq!(st, 200);
    let (_, v) = c.call(Method::GET, &format!("/networks/{nid}"), &admin, None).await;
    assert_eq!(v["network"]["shared"], false, "no longer shared with everyone");
    assert_eq!(c.call(Method::GET, &format!("/networks/{nid}"), &b.token, None).await.0, 200);
    assert_eq!(c.call(Method::GET, &format!("/networks/{nid}"), &other.token, None).await.0, 404);
    let (_, l) = c.call(Method::GET, "/networks", &other.token, None).await;
    assert!(!C::ids(&l, "networks").contains(&nid.to_string()));
    let (st, _) = c.call(Method::PUT, &format!("/rbac-policies/{pid}"), &admin, Some(json!({"rbac_policy": {"target_tenant": "*"}}))).await;
    assert_eq!(st, 200);
    let (_, l) = c.call(Method::GET, "/networks", &other.token, None).await;
    assert!(C::ids(&l, "networks").contains(&nid.to_string()), "listed to everyone again");
});
