//! Subnets: CIDR, gateway and pool validation; overlap within a network only; updates.

use ferrostack_testkit::network::NetworkCloud as C;
use http::Method;
use serde_json::json;

api_test!(async fn a_subnet_gets_neutrons_defaults(c) {
    let a = c.tenant("member").await;
    let n = c.network(&a.token, "n").await;
    let id = n["id"].as_str().unwrap();
    let s = c.subnet(&a.token, id, "10.100.0.0/28").await;
    assert_eq!(s["gateway_ip"], "10.100.0.1");
    assert_eq!(s["allocation_pools"], json!([{"start": "10.100.0.2", "end": "10.100.0.14"}]));
    assert_eq!(s["enable_dhcp"], true);
    assert_eq!(s["ip_version"], 4);
    assert_eq!(s["dns_nameservers"], json!([]));
    assert_eq!(s["router:external"], false, "subnet-external-network: {s}");
    let (_, v) = c.call(Method::GET, &format!("/networks/{id}"), &a.token, None).await;
    assert_eq!(v["network"]["subnets"], json!([s["id"]]));
    // The same CIDR on another network is fine (projects' networks overlap freely) ...
    let other = c.network(&a.token, "other").await;
    c.subnet(&a.token, other["id"].as_str().unwrap(), "10.100.0.0/28").await;
    // ... but not on the same network.
    let (st, v) = c.call(Method::POST, "/subnets", &a.token,
        Some(json!({"subnet": {"network_id": id, "cidr": "10.100.0.0/24", "ip_version": 4}}))).await;
    assert_eq!(st, 400);
    assert!(v["NeutronError"]["message"].as_str().unwrap().contains("overlaps with another subnet"), "{v}");
});

api_test!(async fn bad_subnets_are_refused_and_nothing_is_made(c) {
    let a = c.tenant("member").await;
    let n = c.network(&a.token, "n").await;
    let id = n["id"].as_str().unwrap();
    let bad = [
        json!({"cidr": "10.0.0.1/24"}),
        json!({"cidr": "10.0.0.0/33"}),
        json!({"cidr": "bogus"}),
        json!({"cidr": "10.0.0.0/24", "ip_version": 6}),
        json!({"cidr": "10.0.0.0/24", "gateway_ip": "10.0.1.1"}),
        json!({"cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.255"}),
        json!({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.1.5"}]}),
        json!({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.5"}]}),
        json!({"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.9"}, {"start": "10.0.0.5", "end": "10.0.0.20"}]}),
        json!({"cidr": "10.0.0.0/24", "dns_nameservers": ["1.1.1.1", "1.1.1.1"]}),
        json!({"cidr": "10.0.0.0/24", "dns_nameservers": ["not-an-ip"]}),
    ];
    for b in bad {
        let mut body = b.clone();
        body["network_id"] = json!(id);
        let (s, v) = c.call(Method::POST, "/subnets", &a.token, Some(json!({"subnet": body}))).await;
        assert_eq!(s, 400, "{b}: {v}");
    }
    // A gateway inside a pool given with it is a conflict.
    let (s, v) = c.call(Method::POST, "/subnets", &a.token, Some(json!({"subnet": {"network_id": id,
        "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.5",
        "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.9"}]}}))).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (409, "GatewayConflictWithAllocationPools"));
    let (_, l) = c.call(Method::GET, &format!("/subnets?network_id={id}"), &a.token, None).await;
    assert_eq!(l["subnets"], json!([]), "nothing half-made");
    // Another project cannot add subnets to the network.
    let b = c.tenant("member").await;
    let (s, _) = c.call(Method::POST, "/subnets", &b.token, Some(json!({"subnet": {"network_id": id, "cidr": "10.9.0.0/24", "ip_version": 4}}))).await;
    assert_eq!(s, 404);
});

api_test!(async fn a_subnet_is_updated_and_deleted_only_when_no_port_uses_it(c) {
    let a = c.tenant("member").await;
    let n = c.network(&a.token, "n").await;
    let id = n["id"].as_str().unwrap();
    let s = c.create(&a.token, "subnets", "subnet", json!({"network_id": id, "cidr": "10.100.0.0/28",
        "ip_version": 4, "gateway_ip": null, "allocation_pools": [{"start": "10.100.0.3", "end": "10.100.0.7"}],
        "host_routes": [{"destination": "10.20.0.0/32", "nexthop": "10.100.1.1"}],
        "dns_nameservers": ["8.8.4.4", "8.8.8.8"]})).await;
    assert_eq!(s["gateway_ip"], serde_json::Value::Null);
    assert_eq!(s["host_routes"], json!([{"destination": "10.20.0.0/32", "nexthop": "10.100.1.1"}]));
    let sid = s["id"].as_str().unwrap();
    let (st, v) = c.call(Method::PUT, &format!("/subnets/{sid}"), &a.token, Some(json!({"subnet": {
        "name": "New_subnet", "gateway_ip": "10.100.0.2", "dns_nameservers": ["7.8.8.8", "7.8.4.4"],
        "host_routes": [{"destination": "10.20.0.0/32", "nexthop": "10.100.1.2"}], "enable_dhcp": true}}))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["subnet"]["gateway_ip"], "10.100.0.2");
    assert_eq!(v["subnet"]["host_routes"][0]["nexthop"], "10.100.1.2");
    // A gateway inside the pool is refused on update too.
    let (st, _) = c.call(Method::PUT, &format!("/subnets/{sid}"), &a.token, Some(json!({"subnet": {"gateway_ip": "10.100.0.4"}}))).await;
    assert_eq!(st, 409);
    let p = c.port(&a.token, id).await;
    let (st, v) = c.call(Method::DELETE, &format!("/subnets/{sid}"), &a.token, None).await;
    assert_eq!((st.as_u16(), C::kind(&v)), (409, "SubnetInUse"));
    c.call(Method::DELETE, &format!("/ports/{}", p["id"].as_str().unwrap()), &a.token, None).await;
    assert_eq!(c.call(Method::DELETE, &format!("/subnets/{sid}"), &a.token, None).await.0, 204);
});

api_test!(async fn an_auto_address_subnet_goes_from_under_its_ports_but_not_a_routers(c) {
    // SLAAC and DHCPv6-stateless subnets: a port holding an address of one does not keep
    // it from being deleted (the port loses that address, as in Neutron); a router
    // interface on it does.
    let a = c.tenant("member").await;
    for mode in ["slaac", "dhcpv6-stateless"] {
        let n = c.network(&a.token, "n6").await;
        let id = n["id"].as_str().unwrap();
        let v4 = c.create(&a.token, "subnets", "subnet", json!({"network_id": id, "cidr": "10.60.0.0/24",
            "ip_version": 4})).await;
        let s = c.create(&a.token, "subnets", "subnet", json!({"network_id": id, "cidr": "fd00:60::/64",
            "ip_version": 6, "ipv6_ra_mode": mode, "ipv6_address_mode": mode})).await;
        let sid = s["id"].as_str().unwrap();
        let p = c.port(&a.token, id).await;
        let pid = p["id"].as_str().unwrap();
        assert_eq!(p["fixed_ips"].as_array().unwrap().len(), 2, "{p}");
        let revision = p["revision_number"].as_i64().unwrap();
        assert_eq!(c.call(Method::DELETE, &format!("/subnets/{sid}"), &a.token, None).await.0, 204);
        let (_, v) = c.call(Method::GET, &format!("/ports/{pid}"), &a.token, None).await;
        assert_eq!(v["port"]["fixed_ips"], json!([{"subnet_id": v4["id"], "ip_address": p["fixed_ips"][0]["ip_address"]}]), "{v}");
        assert!(v["port"]["revision_number"].as_i64().unwrap() > revision);
        // The network still has a port in use.
        let (st, v) = c.call(Method::DELETE, &format!("/networks/{id}"), &a.token, None).await;
        assert_eq!((st.as_u16(), C::kind(&v)), (409, "NetworkInUse"));
        assert!(v["NeutronError"]["message"].as_str().unwrap().contains("There are one or more ports still in use on the network"), "{v}");

        // With a router interface on it, the subnet stays.
        let s = c.create(&a.token, "subnets", "subnet", json!({"network_id": id, "cidr": "fd00:61::/64",
            "ip_version": 6, "ipv6_ra_mode": mode, "ipv6_address_mode": mode})).await;
        let sid = s["id"].as_str().unwrap();
        let r = c.create(&a.token, "routers", "router", json!({"name": "r6"})).await;
        let rid = r["id"].as_str().unwrap();
        let (st, v) = c.call(Method::PUT, &format!("/routers/{rid}/add_router_interface"), &a.token,
            Some(json!({"subnet_id": sid}))).await;
        assert_eq!(st, 200, "{v}");
        let (st, v) = c.call(Method::DELETE, &format!("/subnets/{sid}"), &a.token, None).await;
        assert_eq!((st.as_u16(), C::kind(&v)), (409, "SubnetInUse"));
        c.call(Method::PUT, &format!("/routers/{rid}/remove_router_interface"), &a.token,
            Some(json!({"subnet_id": sid}))).await;
        assert_eq!(c.call(Method::DELETE, &format!("/subnets/{sid}"), &a.token, None).await.0, 204);
        c.call(Method::DELETE, &format!("/routers/{rid}"), &a.token, None).await;
        c.call(Method::DELETE, &format!("/ports/{pid}"), &a.token, None).await;
        assert_eq!(c.call(Method::DELETE, &format!("/networks/{id}"), &a.token, None).await.0, 204);
    }
});
