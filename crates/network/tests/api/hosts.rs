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
    c.cloud.network.apply_host_report("h1", &NetworkingReport { wired: vec![id(&p1)], error: None }).await.unwrap();
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
