//! What a host's agent is given to build (its bound ports, their networks with the other
//! hosts' VXLAN endpoints, security groups, remote group members) and what its report
//! changes (the ports it wired become ACTIVE).

use ferrostack_agent_api::{NetworkingReport, Remote, SegmentKind, Vtep};
use http::Method;
use serde_json::json;

api_test!(async fn a_host_is_given_its_ports_networks_and_groups(c) {
    let admin = c.admin_token().await;
    let a = c.tenant("member").await;
    let n = c.network(&a.token, "n").await;
    let net = n["id"].as_str().unwrap();
    c.subnet(&a.token, net, "10.0.0.0/24").await;
    let web = c.create(&a.token, "security-groups", "security_group", json!({"name": "web"})).await;
    let web_id = web["id"].as_str().unwrap();
    c.create(&a.token, "security-group-rules", "security_group_rule", json!({
        "security_group_id": web_id, "direction": "ingress", "protocol": "tcp",
        "port_range_min": 80, "port_range_max": 80, "remote_group_id": web_id})).await;
    let bound = |host: &str| json!({"network_id": net, "security_groups": [web_id], "binding:host_id": host,
        "device_owner": "compute:nova", "allowed_address_pairs": [{"ip_address": "10.0.0.96/28"}]});
    let p1 = c.create(&admin, "ports", "port", bound("h1")).await;
    let p2 = c.create(&admin, "ports", "port", bound("h2")).await;
    let unbound = c.port(&a.token, net).await;
    let v = |port| Vtep { ip: "127.0.0.1".parse().unwrap(), port };
    c.cloud.network.register_host("h1", v(4790)).await.unwrap();
    c.cloud.network.register_host("h2", v(4791)).await.unwrap();

    let h1 = c.cloud.network.host_networking("h1", &[]).await.unwrap();
    assert_eq!(h1.ports.len(), 1);
    let port = &h1.ports[0];
    assert_eq!(port.id, p1["id"].as_str().unwrap());
    assert_eq!(port.mac, p1["mac_address"].as_str().unwrap());
    assert_eq!(port.ips[0].to_string(), p1["fixed_ips"][0]["ip_address"].as_str().unwrap());
    assert_eq!(port.address_pairs[0].ip.to_string(), "10.0.0.96/28");
    assert_eq!(port.address_pairs[0].mac, port.mac);
    assert!(port.port_security && port.admin_state_up);
    assert_eq!(port.security_groups, vec![web_id.to_string()]);
    // The network, with h2 as the VXLAN peer carrying p2's MAC (never h1 itself).
    assert_eq!(h1.networks.len(), 1);
    assert_eq!(h1.networks[0].mtu, 1450);
    match &h1.networks[0].kind {
        SegmentKind::Vxlan { peers, .. } => {
            assert_eq!(peers.len(), 1);
            assert_eq!(peers[0].vtep, v(4791));
            assert_eq!(peers[0].macs, vec![p2["mac_address"].as_str().unwrap().to_string()]);
        }
        k => panic!("not vxlan: {k:?}"),
    }
    // The group's rules, and its members' addresses as the remote group.
    let g = h1.security_groups.iter().find(|g| g.id == web_id).unwrap();
    let tcp = g.rules.iter().find(|r| r.protocol == Some(6)).unwrap();
    assert_eq!((tcp.port_min, tcp.port_max, &tcp.remote), (Some(80), Some(80), &Remote::Group(web_id.into())));
    let members = h1.remote_groups.iter().find(|g| g.id == web_id).unwrap();
    let addrs: Vec<String> = members.addresses.iter().map(|a| a.to_string()).collect();
    for p in [&p1, &p2] {
        assert!(addrs.contains(&format!("{}/32", p["fixed_ips"][0]["ip_address"].as_str().unwrap())), "{addrs:?}");
    }
    assert!(addrs.contains(&"10.0.0.96/28".to_string()));
    // DHCP: the first host that carries the network serves it, from static entries of every
    // port on it; the other host does not, and reaches its DHCP port over VXLAN.
    assert_eq!(h1.dhcp.len(), 1);
    let d = &h1.dhcp[0];
    assert_eq!(d.network_id, net);
    assert_eq!(d.subnets.len(), 1);
    assert_eq!(d.addresses.len(), 1);
    assert_eq!(d.addresses[0].prefix_len(), 24);
    let macs: Vec<&str> = d.hosts.iter().map(|h| h.mac.as_str()).collect();
    for p in [&p1, &p2, &unbound] {
        assert!(macs.contains(&p["mac_address"].as_str().unwrap()), "{macs:?}");
    }
    let (_, dports) = c.call(Method::GET, &format!("/ports?device_owner=network:dhcp&network_id={net}"), &admin, None).await;
    assert_eq!(dports["ports"][0]["binding:host_id"], "h1");
    let h2 = c.cloud.network.host_networking("h2", &[]).await.unwrap();
    assert!(h2.dhcp.is_empty());
    match &h2.networks[0].kind {
        SegmentKind::Vxlan { peers, .. } => assert!(peers[0].macs.contains(&d.mac), "{peers:?}"),
        k => panic!("not vxlan: {k:?}"),
    }
    // A host without ports has nothing to build.
    assert!(c.cloud.network.host_networking("h3", &[]).await.unwrap().is_empty());

    // h1 wired p1: ACTIVE; the unbound port and h2's stay DOWN; unwired again: DOWN.
    let status = |id: String| { let c = &c; let t = a.token.clone(); async move {
        c.call(Method::GET, &format!("/ports/{id}"), &t, None).await.1["port"]["status"].clone()
    }};
    let id = |p: &serde_json::Value| p["id"].as_str().unwrap().to_string();
    c.cloud.network.apply_host_report("h1", &NetworkingReport { wired: vec![id(&p1)], ..Default::default() }).await.unwrap();
    assert_eq!(status(id(&p1)).await, "ACTIVE");
    assert_eq!(status(id(&p2)).await, "DOWN");
    assert_eq!(status(id(&unbound)).await, "DOWN");
    c.cloud.network.apply_host_report("h1", &NetworkingReport::default()).await.unwrap();
    assert_eq!(status(id(&p1)).await, "DOWN");
    // h1 no longer carries the network (its port goes): h2 takes the DHCP over at once,
    // although h1's agent is alive.
    let (s, _) = c.call(Method::DELETE, &format!("/ports/{}", p1["id"].as_str().unwrap()), &admin, None).await;
    assert_eq!(s, 204);
    let h2 = c.cloud.network.host_networking("h2", &[]).await.unwrap();
    assert_eq!(h2.dhcp.len(), 1, "{:?}", h2.dhcp);
    assert_eq!(h2.dhcp[0].port_id, d.port_id);
    let (_, dports) = c.call(Method::GET, &format!("/ports?device_owner=network:dhcp&network_id={net}"), &admin, None).await;
    assert_eq!(dports["ports"][0]["binding:host_id"], "h2");
});

api_test!(async fn routers_are_scheduled_to_live_hosts_and_move_when_theirs_goes_silent(c) {
    let admin = c.admin_token().await;
    let a = c.tenant("member").await;
    let (_, l) = c.call(Method::GET, "/networks?router%3Aexternal=True", &a.token, None).await;
    let public = l["networks"][0]["id"].as_str().unwrap().to_string();
    let n = c.network(&a.token, "app").await;
    let net = n["id"].as_str().unwrap();
    let s = c.subnet(&a.token, net, "10.0.0.0/24").await;
    let r1 = c.create(&a.token, "routers", "router", json!({"name": "r1", "external_gateway_info": {"network_id": public}})).await;
    let r1_id = r1["id"].as_str().unwrap().to_string();
    let (st, _) = c.call(Method::PUT, &format!("/routers/{r1_id}/add_router_interface"), &a.token, Some(json!({"subnet_id": s["id"]}))).await;
    assert_eq!(st, 200);
    let vm = c.create(&admin, "ports", "port", json!({"network_id": net, "binding:host_id": "h1", "device_owner": "compute:nova"})).await;
    let fip = c.create(&admin, "floatingips", "floatingip", json!({"floating_network_id": public, "port_id": vm["id"]})).await;
    // No data-plane host yet: the router runs nowhere.
    let (_, ports) = c.call(Method::GET, &format!("/ports?device_id={r1_id}"), &admin, None).await;
    assert!(ports["ports"].as_array().unwrap().iter().all(|p| p["binding:host_id"] == ""), "{ports}");

    let v = |port| Vtep { ip: "127.0.0.1".parse().unwrap(), port };
    c.cloud.network.register_host("h1", v(4790)).await.unwrap();
    c.cloud.network.register_host("h2", v(4791)).await.unwrap();
    // The first host to ask places it: on the host with the fewest routers (h1 by name).
    let h2 = c.cloud.network.host_networking("h2", &[]).await.unwrap();
    assert!(h2.routers.is_empty());
    let h1 = c.cloud.network.host_networking("h1", &[]).await.unwrap();
    assert_eq!(h1.routers.len(), 1);
    let r = &h1.routers[0];
    assert_eq!(r.id, r1_id);
    assert_eq!(r.interfaces.len(), 1);
    assert_eq!(r.interfaces[0].addresses[0].to_string(), "10.0.0.1/24");
    let gw = r.gateway.as_ref().unwrap();
    assert_eq!(gw.next_hops[0].to_string(), "172.24.4.1");
    assert!(gw.enable_snat);
    assert_eq!(gw.port.addresses[0].prefix_len(), 24);
    assert_eq!(r.floating_ips.len(), 1);
    assert_eq!(r.floating_ips[0].floating_ip.to_string(), fip["floating_ip_address"].as_str().unwrap());
    assert_eq!(r.floating_ips[0].fixed_ip.to_string(), vm["fixed_ips"][0]["ip_address"].as_str().unwrap());
    // h1 carries both the tenant network and the external one.
    let nets: Vec<&str> = h1.networks.iter().map(|n| n.id.as_str()).collect();
    assert!(nets.contains(&net) && nets.contains(&public.as_str()), "{nets:?}");
    // Set up on h1: its ports and the floating IP are ACTIVE.
    c.cloud.network.apply_host_report("h1", &NetworkingReport { routers: vec![r1_id.clone()],
        floating_ips: vec![fip["id"].as_str().unwrap().to_string()], ..Default::default() }).await.unwrap();
    let (_, f) = c.call(Method::GET, &format!("/floatingips/{}", fip["id"].as_str().unwrap()), &admin, None).await;
    assert_eq!(f["floatingip"]["status"], "ACTIVE");
    let (_, ports) = c.call(Method::GET, &format!("/ports?device_id={r1_id}"), &admin, None).await;
    for p in ports["ports"].as_array().unwrap() {
        assert_eq!((p["binding:host_id"].as_str(), p["status"].as_str()), (Some("h1"), Some("ACTIVE")), "{p}");
    }

    // A second router goes to the less loaded h2.
    let r2 = c.create(&a.token, "routers", "router", json!({"name": "r2", "external_gateway_info": {"network_id": public}})).await;
    let r2_id = r2["id"].as_str().unwrap().to_string();
    let h2 = c.cloud.network.host_networking("h2", &[]).await.unwrap();
    assert_eq!(h2.routers.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), vec![r2_id.clone()]);

    // h1's agent goes silent past the down time: the next live host to ask takes r1 over.
    let mut tx = c.db.begin_write().await.unwrap();
    ferrostack_store::sqlx::query("UPDATE network_hosts SET heartbeat_at = 0 WHERE host = 'h1'")
        .execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let h2 = c.cloud.network.host_networking("h2", &[]).await.unwrap();
    let mut ids: Vec<String> = h2.routers.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    let mut both = vec![r1_id.clone(), r2_id.clone()];
    both.sort();
    assert_eq!(ids, both);
    let (_, ports) = c.call(Method::GET, &format!("/ports?device_id={r1_id}"), &admin, None).await;
    assert!(ports["ports"].as_array().unwrap().iter().all(|p| p["binding:host_id"] == "h2"), "{ports}");
    // h1, back, has no router left to build.
    c.cloud.network.register_host("h1", v(4790)).await.unwrap();
    assert!(c.cloud.network.host_networking("h1", &[]).await.unwrap().routers.is_empty());

    // An administratively down router keeps its place but builds no port.
    let (st, _) = c.call(Method::PUT, &format!("/routers/{r2_id}"), &a.token, Some(json!({"router": {"admin_state_up": false}}))).await;
    assert_eq!(st, 200);
    let h2 = c.cloud.network.host_networking("h2", &[]).await.unwrap();
    let down = h2.routers.iter().find(|r| r.id == r2_id).unwrap();
    assert!(down.gateway.is_none() && down.interfaces.is_empty());
});

api_test!(async fn each_data_plane_host_runs_the_four_agents(c) {
    let admin = c.admin_token().await;
    let a = c.tenant("member").await;
    let v = Vtep { ip: "127.0.0.1".parse().unwrap(), port: 4790 };
    c.cloud.network.register_host("h1", v).await.unwrap();
    let (st, l) = c.call(Method::GET, "/agents", &admin, None).await;
    assert_eq!(st, 200, "{l}");
    let agents = l["agents"].as_array().unwrap();
    let mut types: Vec<&str> = agents.iter().map(|x| x["agent_type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["DHCP agent", "L3 agent", "Linux bridge agent", "Metadata agent"]);
    assert!(agents.iter().all(|x| x["host"] == "h1" && x["alive"] == true && x["admin_state_up"] == true));
    let l3 = agents.iter().find(|x| x["agent_type"] == "L3 agent").unwrap();
    let (st, one) = c.call(Method::GET, &format!("/agents/{}", l3["id"].as_str().unwrap()), &admin, None).await;
    assert_eq!((st.as_u16(), &one["agent"]["binary"]), (200, &json!("neutron-l3-agent")));
    let (_, l) = c.call(Method::GET, "/agents?agent_type=DHCP%20agent", &admin, None).await;
    assert_eq!(l["agents"].as_array().unwrap().len(), 1);
    // Agents are an admin's to see.
    let (st, l) = c.call(Method::GET, "/agents", &a.token, None).await;
    assert_eq!((st.as_u16(), l["agents"].clone()), (200, json!([])));
    let (st, _) = c.call(Method::GET, &format!("/agents/{}", l3["id"].as_str().unwrap()), &a.token, None).await;
    assert_eq!(st, 404);
    // Where a router and a network's DHCP run.
    let (_, l) = c.call(Method::GET, "/networks?router%3Aexternal=True", &a.token, None).await;
    let public = l["networks"][0]["id"].as_str().unwrap().to_string();
    let n = c.network(&a.token, "app").await;
    let net = n["id"].as_str().unwrap();
    c.subnet(&a.token, net, "10.0.0.0/24").await;
    c.create(&admin, "ports", "port", json!({"network_id": net, "binding:host_id": "h1", "device_owner": "compute:nova"})).await;
    let r = c.create(&admin, "routers", "router", json!({"name": "r", "external_gateway_info": {"network_id": public}})).await;
    let rid = r["id"].as_str().unwrap();
    c.cloud.network.host_networking("h1", &[]).await.unwrap();
    let (st, l) = c.call(Method::GET, &format!("/routers/{rid}/l3-agents"), &admin, None).await;
    assert_eq!(st, 200, "{l}");
    assert_eq!(l["agents"][0]["id"], l3["id"]);
    let (_, l) = c.call(Method::GET, &format!("/networks/{net}/dhcp-agents"), &admin, None).await;
    assert_eq!(l["agents"][0]["agent_type"], "DHCP agent");
    let (st, _) = c.call(Method::GET, "/routers/6b4f1c2e-1111-4222-8333-444455556666/l3-agents", &admin, None).await;
    assert_eq!(st, 404);
});
