//! Ports: address allocation (never one address twice, even when creates race), explicit
//! addresses and MACs, bulk creates all or nothing, filters.

use std::collections::HashSet;

use ferrostack_testkit::network::NetworkCloud as C;
use http::Method;
use serde_json::{json, Value};

api_test!(async fn ports_get_the_lowest_free_address_and_the_default_group(c) {
    let a = c.tenant("member").await;
    let n = c.network(&a.token, "n").await;
    let id = n["id"].as_str().unwrap();
    // A network without subnets still takes ports, without addresses.
    let bare = c.port(&a.token, id).await;
    assert_eq!(bare["fixed_ips"], json!([]));
    assert_eq!(bare["status"], "DOWN");
    assert_eq!(bare["admin_state_up"], true);
    assert!(bare["mac_address"].as_str().unwrap().starts_with("fa:16:3e:"));
    let (_, sgs) = c.call(Method::GET, "/security-groups?name=default", &a.token, None).await;
    assert_eq!(bare["security_groups"], json!([sgs["security_groups"][0]["id"]]));
    let s = c.subnet(&a.token, id, "10.0.0.0/29").await;
    let p1 = c.port(&a.token, id).await;
    assert_eq!(p1["fixed_ips"], json!([{"subnet_id": s["id"], "ip_address": "10.0.0.2"}]));
    // The show answer is the create answer.
    let (_, shown) = c.call(Method::GET, &format!("/ports/{}", p1["id"].as_str().unwrap()), &a.token, None).await;
    assert_eq!(shown["port"], p1);
    let (_, f) = c.call(Method::GET, &format!("/ports/{}?fields=id&fields=mac_address", p1["id"].as_str().unwrap()), &a.token, None).await;
    assert_eq!(f["port"].as_object().unwrap().len(), 2);
    // An address asked for is given once; then 409.
    let want = json!({"port": {"network_id": id, "fixed_ips": [{"ip_address": "10.0.0.5"}]}});
    let (st, v) = c.call(Method::POST, "/ports", &a.token, Some(want.clone())).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["port"]["fixed_ips"][0]["ip_address"], "10.0.0.5");
    let (st, v) = c.call(Method::POST, "/ports", &a.token, Some(want)).await;
    assert_eq!((st.as_u16(), C::kind(&v)), (409, "IpAddressAlreadyAllocated"));
    for bad in ["10.0.0.0", "10.0.0.7", "10.0.1.3", "10.0.0.1"] {
        let (st, v) = c.call(Method::POST, "/ports", &a.token,
            Some(json!({"port": {"network_id": id, "fixed_ips": [{"subnet_id": s["id"], "ip_address": bad}]}}))).await;
        assert!(st == 400 || st == 409, "{bad}: {st} {v}");
    }
    // The pool of a /29 is .2-.6: .3, .4 and .6 are left; then it is exhausted.
    for want in ["10.0.0.3", "10.0.0.4", "10.0.0.6"] {
        assert_eq!(c.port(&a.token, id).await["fixed_ips"][0]["ip_address"], want);
    }
    let (st, v) = c.call(Method::POST, "/ports", &a.token, Some(json!({"port": {"network_id": id}}))).await;
    assert_eq!((st.as_u16(), C::kind(&v)), (409, "IpAddressGenerationFailure"));
    // Filters: by address, by network, and the total is what was made.
    let (_, l) = c.call(Method::GET, "/ports?fixed_ips=ip_address%3D10.0.0.5", &a.token, None).await;
    assert_eq!(l["ports"].as_array().unwrap().len(), 1);
    let (_, l) = c.call(Method::GET, &format!("/ports?network_id={id}"), &a.token, None).await;
    assert_eq!(l["ports"].as_array().unwrap().len(), 6);
});

api_test!(async fn a_bulk_create_is_all_or_nothing(c) {
    let a = c.tenant("member").await;
    let n1 = c.network(&a.token, "n1").await;
    let n2 = c.network(&a.token, "n2").await;
    let (s, v) = c.call(Method::POST, "/ports", &a.token, Some(json!({"ports": [
        {"network_id": n1["id"]}, {"network_id": n2["id"]}]}))).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["ports"][0]["network_id"], n1["id"]);
    assert_eq!(v["ports"][1]["network_id"], n2["id"]);
    let (s, _) = c.call(Method::POST, "/ports", &a.token, Some(json!({"ports": [
        {"network_id": n1["id"], "name": "first"}, {"network_id": n2["id"], "mac_address": "01:00:00:00:00:01"}]}))).await;
    assert_eq!(s, 400);
    let (s, _) = c.call(Method::POST, "/ports", &a.token, Some(json!({"ports": [
        {"network_id": n1["id"], "name": "first"}, {"network_id": "no-such-network"}]}))).await;
    assert_eq!(s, 404);
    let (_, l) = c.call(Method::GET, "/ports?name=first", &a.token, None).await;
    assert_eq!(l["ports"], json!([]), "the first port of a failed bulk create is not kept");
});

api_test!(async fn macs_and_address_pairs_follow_neutrons_rules(c) {
    let a = c.tenant("member").await;
    let n = c.network(&a.token, "n").await;
    let id = n["id"].as_str().unwrap();
    let p = c.create(&a.token, "ports", "port", json!({"network_id": id, "mac_address": "FA:16:3E:00:00:01",
        "allowed_address_pairs": [{"ip_address": "10.9.0.0/24"}]})).await;
    assert_eq!(p["mac_address"], "fa:16:3e:00:00:01");
    assert_eq!(p["allowed_address_pairs"], json!([{"ip_address": "10.9.0.0/24", "mac_address": "fa:16:3e:00:00:01"}]));
    let (s, v) = c.call(Method::POST, "/ports", &a.token, Some(json!({"port": {"network_id": id, "mac_address": "fa:16:3e:00:00:01"}}))).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (409, "MacAddressInUse"));
    let (s, v) = c.call(Method::POST, "/ports", &a.token, Some(json!({"port": {"network_id": id,
        "port_security_enabled": false, "allowed_address_pairs": [{"ip_address": "10.0.0.9"}]}}))).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (409, "AddressPairAndPortSecurityRequired"));
    // Without port security a port has no groups; giving groups then is refused.
    let open = c.create(&a.token, "ports", "port", json!({"network_id": id, "port_security_enabled": false})).await;
    assert_eq!(open["security_groups"], json!([]));
    let (_, sgs) = c.call(Method::GET, "/security-groups", &a.token, None).await;
    let (s, _) = c.call(Method::PUT, &format!("/ports/{}", open["id"].as_str().unwrap()), &a.token,
        Some(json!({"port": {"security_groups": [sgs["security_groups"][0]["id"]]}}))).await;
    assert_eq!(s, 400);
    // Binding attributes are an admin's to read and write.
    assert!(p.get("binding:host_id").is_none(), "{p}");
    let (s, _) = c.call(Method::PUT, &format!("/ports/{}", p["id"].as_str().unwrap()), &a.token,
        Some(json!({"port": {"binding:host_id": "h1"}}))).await;
    assert_eq!(s, 403);
    let admin = c.admin_token().await;
    let (s, v) = c.call(Method::PUT, &format!("/ports/{}", p["id"].as_str().unwrap()), &admin,
        Some(json!({"port": {"binding:host_id": "h1", "device_owner": "compute:nova"}}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["port"]["binding:vif_type"], "bridge");
});

api_test!(async fn racing_creates_never_share_an_address(c) {
    let a = c.tenant("member").await;
    let n = c.network(&a.token, "n").await;
    let id = n["id"].as_str().unwrap().to_string();
    c.subnet(&a.token, &id, "10.0.0.0/26").await;
    let calls = (0..24).map(|_| {
        let body = json!({"port": {"network_id": id}});
        c.call(Method::POST, "/ports", &a.token, Some(body))
    });
    let results: Vec<(http::StatusCode, Value)> = futures::future::join_all(calls).await;
    let mut seen = HashSet::new();
    for (s, v) in &results {
        assert_eq!(*s, 201, "{v}");
        assert!(seen.insert(v["port"]["fixed_ips"][0]["ip_address"].as_str().unwrap().to_string()));
    }
    assert_eq!(seen.len(), 24);
});

api_test!(async fn crossing_bulk_creates_both_succeed(c) {
    // Bulk creates that lock two networks' subnets in opposite orders (on PostgreSQL a
    // deadlock, which is broken and retried) all succeed.
    let a = c.tenant("member").await;
    let n1 = c.network(&a.token, "n1").await;
    let n2 = c.network(&a.token, "n2").await;
    c.subnet(&a.token, n1["id"].as_str().unwrap(), "10.1.0.0/24").await;
    c.subnet(&a.token, n2["id"].as_str().unwrap(), "10.2.0.0/24").await;
    let calls = (0..12).map(|i| {
        let (x, y) = if i % 2 == 0 { (&n1, &n2) } else { (&n2, &n1) };
        let body = json!({"ports": [{"network_id": x["id"]}, {"network_id": y["id"]}]});
        c.call(Method::POST, "/ports", &a.token, Some(body))
    });
    for (s, v) in futures::future::join_all(calls).await {
        assert_eq!(s, 201, "{v}");
    }
    let (_, l) = c.call(Method::GET, "/ports", &a.token, None).await;
    assert_eq!(l["ports"].as_array().unwrap().len(), 24);
});
