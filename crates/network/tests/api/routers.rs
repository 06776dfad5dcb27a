//! Routers, their interfaces and gateways, floating IPs and subnet pools.

use ferrostack_testkit::network::NetworkCloud as C;
use http::Method;
use serde_json::{json, Value};

async fn public(c: &C, token: &str) -> String {
    let (_, l) = c
        .call(Method::GET, "/networks?router%3Aexternal=True", token, None)
        .await;
    l["networks"][0]["id"].as_str().unwrap().to_string()
}

api_test!(async fn a_router_joins_subnets_and_reaches_the_outside(c) {
    let a = c.tenant("member").await;
    let public = public(c, &a.token).await;
    let n = c.network(&a.token, "app").await;
    let nid = n["id"].as_str().unwrap();
    let s = c.subnet(&a.token, nid, "10.0.0.0/24").await;
    let sid = s["id"].as_str().unwrap();
    let r = c.create(&a.token, "routers", "router", json!({"name": "r1", "external_gateway_info": {"network_id": public}})).await;
    let rid = r["id"].as_str().unwrap();
    let gw = &r["external_gateway_info"];
    assert_eq!(gw["network_id"], public.as_str());
    assert_eq!(gw["enable_snat"], true);
    assert!(gw["external_fixed_ips"][0]["ip_address"].as_str().unwrap().starts_with("172.24.4."), "{r}");
    // Setting SNAT off is an admin's.
    let (st, _) = c.call(Method::PUT, &format!("/routers/{rid}"), &a.token,
        Some(json!({"router": {"external_gateway_info": {"network_id": public, "enable_snat": false}}}))).await;
    assert_eq!(st, 403);
    let (st, info) = c.call(Method::PUT, &format!("/routers/{rid}/add_router_interface"), &a.token, Some(json!({"subnet_id": sid}))).await;
    assert_eq!(st, 200, "{info}");
    assert_eq!(info["subnet_id"], sid);
    let port_id = info["port_id"].as_str().unwrap();
    let (_, p) = c.call(Method::GET, &format!("/ports/{port_id}"), &a.token, None).await;
    assert_eq!(p["port"]["device_id"], rid);
    assert_eq!(p["port"]["device_owner"], "network:router_interface");
    assert_eq!(p["port"]["fixed_ips"][0]["ip_address"], "10.0.0.1");
    // Only the interface is listed to the project (the gateway port is nobody's).
    let (_, l) = c.call(Method::GET, &format!("/ports?device_id={rid}"), &a.token, None).await;
    assert_eq!(C::ids(&l, "ports"), vec![port_id.to_string()]);
    let (st, v) = c.call(Method::PUT, &format!("/routers/{rid}/add_router_interface"), &a.token, Some(json!({"subnet_id": sid}))).await;
    assert_eq!(st, 400, "{v}");
    // The port cannot be deleted on its own, the router not while it has interfaces.
    let (st, v) = c.call(Method::DELETE, &format!("/ports/{port_id}"), &a.token, None).await;
    assert_eq!((st.as_u16(), C::kind(&v)), (409, "ServicePortInUse"));
    let (st, v) = c.call(Method::DELETE, &format!("/routers/{rid}"), &a.token, None).await;
    assert_eq!((st.as_u16(), C::kind(&v)), (409, "RouterInUse"));
    // Static routes: the next hop must be on an attached subnet; null clears them.
    let routes = json!([{"destination": "10.50.0.0/24", "nexthop": "10.0.0.9"}]);
    let (st, v) = c.call(Method::PUT, &format!("/routers/{rid}"), &a.token, Some(json!({"router": {"routes": routes}}))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["router"]["routes"], routes);
    let (st, _) = c.call(Method::PUT, &format!("/routers/{rid}"), &a.token,
        Some(json!({"router": {"routes": [{"destination": "10.60.0.0/24", "nexthop": "192.168.9.9"}]}}))).await;
    assert_eq!(st, 400);
    let (_, v) = c.call(Method::PUT, &format!("/routers/{rid}"), &a.token, Some(json!({"router": {"routes": null}}))).await;
    assert_eq!(v["router"]["routes"], json!([]));

    // A floating IP for a port on the subnet, through this router.
    let vm = c.port(&a.token, nid).await;
    let (st, f) = c.call(Method::POST, "/floatingips", &a.token,
        Some(json!({"floatingip": {"floating_network_id": public, "port_id": vm["id"]}}))).await;
    assert_eq!(st, 201, "{f}");
    let f = &f["floatingip"];
    assert_eq!(f["router_id"], rid);
    assert_eq!(f["fixed_ip_address"], vm["fixed_ips"][0]["ip_address"]);
    let fid = f["id"].as_str().unwrap();
    // Now the interface and the gateway are needed by it.
    let (st, v) = c.call(Method::PUT, &format!("/routers/{rid}/remove_router_interface"), &a.token, Some(json!({"subnet_id": sid}))).await;
    assert_eq!((st.as_u16(), C::kind(&v)), (409, "RouterInterfaceInUseByFloatingIP"));
    let (st, _) = c.call(Method::PUT, &format!("/routers/{rid}"), &a.token, Some(json!({"router": {"external_gateway_info": {}}}))).await;
    assert_eq!(st, 409);
    // Disassociate, delete; then the interface goes (with its port) and the router.
    let (st, v) = c.call(Method::PUT, &format!("/floatingips/{fid}"), &a.token, Some(json!({"floatingip": {"port_id": null}}))).await;
    assert_eq!((st.as_u16(), v["floatingip"]["port_id"].clone()), (200, Value::Null));
    assert_eq!(c.call(Method::DELETE, &format!("/floatingips/{fid}"), &a.token, None).await.0, 204);
    let (st, _) = c.call(Method::PUT, &format!("/routers/{rid}/remove_router_interface"), &a.token, Some(json!({"subnet_id": sid}))).await;
    assert_eq!(st, 200);
    assert_eq!(c.call(Method::GET, &format!("/ports/{port_id}"), &a.token, None).await.0, 404);
    let (st, v) = c.call(Method::PUT, &format!("/routers/{rid}/remove_router_interface"), &a.token, Some(json!({"port_id": port_id}))).await;
    assert_eq!((st.as_u16(), C::kind(&v)), (404, "RouterInterfaceNotFound"));
    assert_eq!(c.call(Method::DELETE, &format!("/routers/{rid}"), &a.token, None).await.0, 204);
    // Nothing of the router is left on the external network.
    let admin = c.admin_token().await;
    let (_, l) = c.call(Method::GET, &format!("/ports?network_id={public}"), &admin, None).await;
    assert_eq!(l["ports"], json!([]));
});

api_test!(async fn router_mistakes_are_refused(c) {
    let a = c.tenant("member").await;
    let n1 = c.network(&a.token, "n1").await;
    let n2 = c.network(&a.token, "n2").await;
    let s1 = c.subnet(&a.token, n1["id"].as_str().unwrap(), "10.100.0.0/28").await;
    let s2 = c.subnet(&a.token, n2["id"].as_str().unwrap(), "10.100.0.0/28").await;
    let r = c.create(&a.token, "routers", "router", json!({"name": "r", "external_gateway_info": {}, "admin_state_up": false})).await;
    assert_eq!(r["external_gateway_info"], Value::Null);
    assert_eq!(r["admin_state_up"], false);
    let rid = r["id"].as_str().unwrap();
    let add = |s: &Value| json!({"subnet_id": s["id"]});
    assert_eq!(c.call(Method::PUT, &format!("/routers/{rid}/add_router_interface"), &a.token, Some(add(&s1))).await.0, 200);
    let (st, v) = c.call(Method::PUT, &format!("/routers/{rid}/add_router_interface"), &a.token, Some(add(&s2))).await;
    assert_eq!(st, 400, "overlapping subnets on one router: {v}");
    let (_, l) = c.call(Method::GET, &format!("/ports?network_id={}", n2["id"].as_str().unwrap()), &a.token, None).await;
    assert_eq!(l["ports"], json!([]), "no port left behind");
    // Gateways: a network that is not there, one that is not external.
    let (st, _) = c.call(Method::PUT, &format!("/routers/{rid}"), &a.token, Some(json!({"router": {"external_gateway_info": {"network_id": rid}}}))).await;
    assert_eq!(st, 404);
    let (st, _) = c.call(Method::PUT, &format!("/routers/{rid}"), &a.token, Some(json!({"router": {"external_gateway_info": {"network_id": n2["id"]}}}))).await;
    assert_eq!(st, 400);
    for m in [Method::GET, Method::DELETE] {
        assert_eq!(c.call(m, "/routers/not-a-router", &a.token, None).await.0, 404);
    }
    // A floating IP needs a router from the port's subnet to the external network.
    let public = public(c, &a.token).await;
    let vm = c.port(&a.token, n2["id"].as_str().unwrap()).await;
    let (st, v) = c.call(Method::POST, "/floatingips", &a.token,
        Some(json!({"floatingip": {"floating_network_id": public, "port_id": vm["id"]}}))).await;
    assert_eq!((st.as_u16(), C::kind(&v)), (404, "ExternalGatewayForFloatingIPNotFound"));
    let (st, _) = c.call(Method::POST, "/floatingips", &a.token,
        Some(json!({"floatingip": {"floating_network_id": n1["id"]}}))).await;
    assert_eq!(st, 400, "not an external network");
    // ... and nothing was allocated by the failures.
    let (_, l) = c.call(Method::GET, "/floatingips", &a.token, None).await;
    assert_eq!(l["floatingips"], json!([]));
    // Choosing the floating address is not a member's.
    let (st, _) = c.call(Method::POST, "/floatingips", &a.token,
        Some(json!({"floatingip": {"floating_network_id": public, "floating_ip_address": "172.24.4.100"}}))).await;
    assert_eq!(st, 403);
});

api_test!(async fn subnets_take_their_cidrs_from_pools(c) {
    let a = c.tenant("member").await;
    let p = c.create(&a.token, "subnetpools", "subnetpool", json!({"name": "pool", "prefixes": ["10.10.0.0/16"], "default_prefixlen": 24})).await;
    assert_eq!((p["ip_version"].as_i64(), p["min_prefixlen"].as_i64(), p["max_prefixlen"].as_i64()), (Some(4), Some(8), Some(32)));
    let pid = p["id"].as_str().unwrap();
    let n = c.network(&a.token, "n").await;
    let nid = n["id"].as_str().unwrap();
    let s1 = c.create(&a.token, "subnets", "subnet", json!({"network_id": nid, "subnetpool_id": pid, "ip_version": 4})).await;
    assert_eq!(s1["cidr"], "10.10.0.0/24");
    assert_eq!(s1["subnetpool_id"], pid);
    let n2 = c.network(&a.token, "n2").await;
    let s2 = c.create(&a.token, "subnets", "subnet", json!({"network_id": n2["id"], "subnetpool_id": pid, "ip_version": 4, "prefixlen": 26})).await;
    assert_eq!(s2["cidr"], "10.10.1.0/26");
    let (st, _) = c.call(Method::POST, "/subnets", &a.token, Some(json!({"subnet": {"network_id": n2["id"], "subnetpool_id": pid,
        "ip_version": 4, "cidr": "10.20.0.0/24"}}))).await;
    assert_eq!(st, 400, "outside the pool");
    let (st, v) = c.call(Method::DELETE, &format!("/subnetpools/{pid}"), &a.token, None).await;
    assert_eq!((st.as_u16(), C::kind(&v)), (409, "SubnetPoolInUse"));
    let (st, v) = c.call(Method::PUT, &format!("/subnetpools/{pid}"), &a.token, Some(json!({"subnetpool": {"name": "renamed"}}))).await;
    assert_eq!((st.as_u16(), v["subnetpool"]["name"].as_str()), (200, Some("renamed")));
    let (st, _) = c.call(Method::POST, "/subnetpools", &a.token, Some(json!({"subnetpool": {"prefixes": ["10.0.0.0/8"], "shared": true}}))).await;
    assert_eq!(st, 403);
    let fresh = c.create(&a.token, "subnetpools", "subnetpool", json!({"name": "x", "prefixes": ["1.0.0.0/16", "2.0.0.0/16"]})).await;
    let fid = fresh["id"].as_str().unwrap();
    assert_eq!(c.call(Method::DELETE, &format!("/subnetpools/{fid}"), &a.token, None).await.0, 204);
    assert_eq!(c.call(Method::GET, &format!("/subnetpools/{fid}"), &a.token, None).await.0, 404);
});

api_test!(async fn router_ports_are_the_services_and_other_projects_subnets_stay_theirs(c) {
    let a = c.tenant("member").await;
    let b = c.tenant("member").await;
    let admin = c.admin_token().await;
    let public = public(c, &a.token).await;
    // B's router may not take the gateway address of the public subnet, nor of a subnet of
    // a network shared with everyone.
    let rb = c.create(&b.token, "routers", "router", json!({"name": "rb"})).await;
    let rbid = rb["id"].as_str().unwrap();
    let (_, subs) = c.call(Method::GET, &format!("/subnets?network_id={public}"), &b.token, None).await;
    let pub_subnet = subs["subnets"][0]["id"].clone();
    let (st, v) = c.call(Method::PUT, &format!("/routers/{rbid}/add_router_interface"), &b.token, Some(json!({"subnet_id": pub_subnet}))).await;
    assert_eq!(st, 400, "{v}");
    let shared = c.create(&admin, "networks", "network", json!({"name": "shared", "shared": true})).await;
    let ss = c.subnet(&admin, shared["id"].as_str().unwrap(), "10.70.0.0/24").await;
    let (st, _) = c.call(Method::PUT, &format!("/routers/{rbid}/add_router_interface"), &b.token, Some(json!({"subnet_id": ss["id"]}))).await;
    assert_eq!(st, 400);
    // Nobody makes a router's port through the port API; B's router stays deletable.
    let na = c.network(&a.token, "na").await;
    c.subnet(&a.token, na["id"].as_str().unwrap(), "10.71.0.0/24").await;
    let (st, _) = c.call(Method::POST, "/ports", &a.token, Some(json!({"port": {"network_id": na["id"],
        "device_owner": "network:router_interface", "device_id": rbid}}))).await;
    assert_eq!(st, 400);
    let p = c.port(&a.token, na["id"].as_str().unwrap()).await;
    let (st, _) = c.call(Method::PUT, &format!("/ports/{}", p["id"].as_str().unwrap()), &a.token,
        Some(json!({"port": {"device_owner": "network:floatingip"}}))).await;
    assert_eq!(st, 400);
    assert_eq!(c.call(Method::DELETE, &format!("/routers/{rbid}"), &b.token, None).await.0, 204);
    // A project on a shared network cannot turn its port into the network's DHCP port (which
    // the owner's deletes would take with them): the rule sees the port as updated.
    let bp = c.port(&b.token, shared["id"].as_str().unwrap()).await;
    let (st, _) = c.call(Method::PUT, &format!("/ports/{}", bp["id"].as_str().unwrap()), &b.token,
        Some(json!({"port": {"device_owner": "network:dhcp"}}))).await;
    assert_eq!(st, 403);
});

api_test!(async fn a_floating_ip_keeps_its_address_and_an_external_network_in_use_stays_external(c) {
    let a = c.tenant("member").await;
    let admin = c.admin_token().await;
    let public = public(c, &a.token).await;
    let n = c.network(&a.token, "n").await;
    let nid = n["id"].as_str().unwrap();
    let s = c.subnet(&a.token, nid, "10.0.0.0/24").await;
    let r = c.create(&a.token, "routers", "router", json!({"name": "r", "external_gateway_info": {"network_id": public}})).await;
    c.call(Method::PUT, &format!("/routers/{}/add_router_interface", r["id"].as_str().unwrap()), &a.token, Some(json!({"subnet_id": s["id"]}))).await;
    let vm = c.port(&a.token, nid).await;
    let f = c.create(&a.token, "floatingips", "floatingip", json!({"floating_network_id": public, "port_id": vm["id"]})).await;
    assert_eq!(f["fixed_ip_address"], vm["fixed_ips"][0]["ip_address"]);
    let (st, v) = c.call(Method::PUT, &format!("/ports/{}", vm["id"].as_str().unwrap()), &a.token,
        Some(json!({"port": {"fixed_ips": [{"subnet_id": s["id"], "ip_address": "10.0.0.77"}]}}))).await;
    assert_eq!(st, 400, "{v}");
    // Not onto the router's own interface, nor an IPv6 address.
    let (_, ifs) = c.call(Method::GET, &format!("/ports?device_id={}", r["id"].as_str().unwrap()), &a.token, None).await;
    let (st, _) = c.call(Method::POST, "/floatingips", &a.token,
        Some(json!({"floatingip": {"floating_network_id": public, "port_id": ifs["ports"][0]["id"]}}))).await;
    assert_eq!(st, 400);
    let (st, v) = c.call(Method::PUT, &format!("/networks/{public}"), &admin, Some(json!({"network": {"router:external": false}}))).await;
    assert_eq!((st.as_u16(), C::kind(&v)), (409, "ExternalNetworkInUse"));
});

api_test!(async fn port_forwardings_share_a_floating_ip_among_guests(c) {
    let a = c.tenant("member").await;
    let public = public(c, &a.token).await;
    let n = c.network(&a.token, "app").await;
    let net = n["id"].as_str().unwrap();
    let s = c.subnet(&a.token, net, "10.0.0.0/24").await;
    let r = c.create(&a.token, "routers", "router", json!({"name": "r1", "external_gateway_info": {"network_id": public}})).await;
    let rid = r["id"].as_str().unwrap().to_string();
    let (st, _) = c.call(Method::PUT, &format!("/routers/{rid}/add_router_interface"), &a.token, Some(json!({"subnet_id": s["id"]}))).await;
    assert_eq!(st, 200);
    let vm1 = c.create(&a.token, "ports", "port", json!({"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.11"}]})).await;
    let vm2 = c.create(&a.token, "ports", "port", json!({"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.12"}]})).await;
    let fip = c.create(&a.token, "floatingips", "floatingip", json!({"floating_network_id": public})).await;
    let fid = fip["id"].as_str().unwrap().to_string();
    let pfs = format!("/floatingips/{fid}/port_forwardings");
    let post = |body: Value| { let c = &c; let t = a.token.clone(); let p = pfs.clone(); async move {
        c.call(Method::POST, &p, &t, Some(json!({"port_forwarding": body}))).await
    }};
    let (st, v) = post(json!({"protocol": "tcp", "internal_ip_address": "10.0.0.11", "internal_port": 22,
        "internal_port_id": vm1["id"], "external_port": 2201})).await;
    assert_eq!(st, 201, "{v}");
    let pf1 = v["port_forwarding"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["port_forwarding"]["external_port"], 2201);
    let (st, v) = post(json!({"protocol": "tcp", "internal_ip_address": "10.0.0.12", "internal_port": 22,
        "internal_port_id": vm2["id"], "external_port": 2202})).await;
    assert_eq!(st, 201, "{v}");
    // The floating IP now goes through the router; it is not associated with a port.
    let (_, f) = c.call(Method::GET, &format!("/floatingips/{fid}"), &a.token, None).await;
    assert_eq!((f["floatingip"]["router_id"].as_str(), f["floatingip"]["port_id"].is_null()), (Some(rid.as_str()), true));
    // Mistakes: the same external port; an address not the port's; another protocol; a
    // port out of range; associating the floating IP with a port now.
    let (st, v) = post(json!({"protocol": "tcp", "internal_ip_address": "10.0.0.12", "internal_port": 80,
        "internal_port_id": vm2["id"], "external_port": 2201})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = post(json!({"protocol": "tcp", "internal_ip_address": "10.0.0.99", "internal_port": 80,
        "internal_port_id": vm2["id"], "external_port": 2280})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = post(json!({"protocol": "icmp", "internal_ip_address": "10.0.0.12", "internal_port": 80,
        "internal_port_id": vm2["id"], "external_port": 2280})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = post(json!({"protocol": "tcp", "internal_ip_address": "10.0.0.12", "internal_port": 0,
        "internal_port_id": vm2["id"], "external_port": 2280})).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = c.call(Method::PUT, &format!("/floatingips/{fid}"), &a.token, Some(json!({"floatingip": {"port_id": vm1["id"]}}))).await;
    assert_eq!(st, 409, "{v}");
    // Another project sees none of it.
    let b = c.tenant("member").await;
    let (st, _) = c.call(Method::GET, &pfs, &b.token, None).await;
    assert_eq!(st, 404);
    // Listed, shown, changed.
    let (_, l) = c.call(Method::GET, &pfs, &a.token, None).await;
    assert_eq!(l["port_forwardings"].as_array().unwrap().len(), 2, "{l}");
    let (st, v) = c.call(Method::PUT, &format!("{pfs}/{pf1}"), &a.token,
        Some(json!({"port_forwarding": {"external_port": 2211, "description": "ssh to vm1"}}))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!((v["port_forwarding"]["external_port"].as_u64(), v["port_forwarding"]["description"].as_str()), (Some(2211), Some("ssh to vm1")));
    // The router's host DNATs both.
    c.cloud.network.register_host("h1", ferrostack_agent_api::Vtep { ip: "127.0.0.1".parse().unwrap(), port: 4790 }).await.unwrap();
    let h1 = c.cloud.network.host_networking("h1", &[]).await.unwrap();
    let fw = &h1.routers[0].port_forwardings;
    assert_eq!(fw.iter().map(|f| (f.external_port, f.internal_port)).collect::<Vec<_>>().len(), 2, "{fw:?}");
    assert!(fw.iter().any(|f| f.external_port == 2211 && f.internal_ip.to_string() == "10.0.0.11"), "{fw:?}");
    // A forwarded port deleted takes its forwarding; the last one deleted frees the router.
    let (st, _) = c.call(Method::DELETE, &format!("/ports/{}", vm2["id"].as_str().unwrap()), &a.token, None).await;
    assert_eq!(st, 204);
    let (_, l) = c.call(Method::GET, &pfs, &a.token, None).await;
    assert_eq!(l["port_forwardings"].as_array().unwrap().len(), 1, "{l}");
    let (st, _) = c.call(Method::DELETE, &format!("{pfs}/{pf1}"), &a.token, None).await;
    assert_eq!(st, 204);
    let (st, _) = c.call(Method::DELETE, &format!("{pfs}/{pf1}"), &a.token, None).await;
    assert_eq!(st, 404);
    let (_, f) = c.call(Method::GET, &format!("/floatingips/{fid}"), &a.token, None).await;
    assert!(f["floatingip"]["router_id"].is_null(), "{f}");
    // Associating it with a port works again.
    let (st, v) = c.call(Method::PUT, &format!("/floatingips/{fid}"), &a.token, Some(json!({"floatingip": {"port_id": vm1["id"]}}))).await;
    assert_eq!(st, 200, "{v}");
});
