//! Quotas: limits enforced in the creating transaction, usage shown in `details`.

use ferrostack_testkit::network::NetworkCloud as C;
use http::Method;
use serde_json::json;

api_test!(async fn quotas_limit_creates_and_show_usage(c) {
    let a = c.tenant("member").await;
    let admin = c.admin_token().await;
    let (s, v) = c.call(Method::GET, &format!("/quotas/{}", a.project_id), &a.token, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["quota"]["network"], 100);
    // Only an admin sets them.
    let body = json!({"quota": {"network": 1, "port": 2}});
    assert_eq!(c.call(Method::PUT, &format!("/quotas/{}", a.project_id), &a.token, Some(body.clone())).await.0, 403);
    let (s, v) = c.call(Method::PUT, &format!("/quotas/{}", a.project_id), &admin, Some(body)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["quota"]["network"], 1);
    let n = c.network(&a.token, "one").await;
    let (s, v) = c.call(Method::POST, "/networks", &a.token, Some(json!({"network": {"name": "two"}}))).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (409, "OverQuota"));
    // A bulk create beyond the limit makes nothing.
    let (s, _) = c.call(Method::POST, "/ports", &a.token, Some(json!({"ports": [
        {"network_id": n["id"]}, {"network_id": n["id"]}, {"network_id": n["id"]}]}))).await;
    assert_eq!(s, 409);
    let (_, d) = c.call(Method::GET, &format!("/quotas/{}/details", a.project_id), &a.token, None).await;
    assert_eq!(d["quota"]["network"], json!({"limit": 1, "used": 1, "reserved": 0}));
    assert_eq!(d["quota"]["port"]["used"], 0);
    assert_eq!(c.call(Method::PUT, &format!("/quotas/{}", a.project_id), &admin, Some(json!({"quota": {"bogus": 1}}))).await.0, 400);
    let (_, l) = c.call(Method::GET, "/quotas", &admin, None).await;
    assert!(l["quotas"].as_array().unwrap().iter().any(|q| q["project_id"] == a.project_id.as_str()));
    assert_eq!(c.call(Method::DELETE, &format!("/quotas/{}", a.project_id), &admin, None).await.0, 204);
    let (_, v) = c.call(Method::GET, &format!("/quotas/{}", a.project_id), &a.token, None).await;
    assert_eq!(v["quota"]["network"], 100);
    // Every resource is counted and limited: routers, floating IPs, subnet pools, RBAC.
    let body = json!({"quota": {"router": 1, "floatingip": 1, "subnetpool": 1, "rbac_policy": 1}});
    assert_eq!(c.call(Method::PUT, &format!("/quotas/{}", a.project_id), &admin, Some(body)).await.0, 200);
    let (_, pubs) = c.call(Method::GET, "/networks?router%3Aexternal=True", &a.token, None).await;
    let public = pubs["networks"][0]["id"].clone();
    for (coll, key, body) in [
        ("routers", "router", json!({"name": "r"})),
        ("floatingips", "floatingip", json!({"floating_network_id": public})),
        ("subnetpools", "subnetpool", json!({"prefixes": ["10.0.0.0/16"]})),
    ] {
        c.create(&a.token, coll, key, body.clone()).await;
        let (s, v) = c.call(Method::POST, &format!("/{coll}"), &a.token, Some(json!({ key: body }))).await;
        assert_eq!((s.as_u16(), C::kind(&v)), (409, "OverQuota"), "{coll}");
    }
    let (_, d) = c.call(Method::GET, &format!("/quotas/{}/details", a.project_id), &a.token, None).await;
    for r in ["router", "floatingip", "subnetpool"] {
        assert_eq!(d["quota"][r]["used"], 1, "{r}: {d}");
    }
    // Another project's quota is not a member's to read.
    let b = c.tenant("member").await;
    assert_eq!(c.call(Method::GET, &format!("/quotas/{}", a.project_id), &b.token, None).await.0, 403);
});
