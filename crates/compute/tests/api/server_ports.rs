//! Servers on networks: ports made (or taken) at create, bound to the host, wired by its data
//! plane before the server is ACTIVE, shown as the server's addresses, and given back when
//! it goes; a create that cannot have its ports fails with nothing left.

use ferrostack_testkit::compute::ComputeCloud as C;
use http::Method;
use serde_json::{json, Value};

/// A networking call (`/networking/v2.0{path}`): status and JSON body.
async fn neutron(
    c: &C,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (s, _, bytes) = c
        .raw(
            method,
            &format!("/networking/v2.0{path}"),
            Some(token),
            body,
            &[],
        )
        .await;
    (
        s.as_u16(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn network(c: &C, token: &str, name: &str, cidr: &str) -> String {
    let (s, n) = neutron(
        c,
        Method::POST,
        "/networks",
        token,
        Some(json!({"network": {"name": name}})),
    )
    .await;
    assert_eq!(s, 201, "{n}");
    let id = n["network"]["id"].as_str().unwrap().to_string();
    let (s, v) = neutron(
        c,
        Method::POST,
        "/subnets",
        token,
        Some(json!({"subnet": {"network_id": id, "cidr": cidr, "ip_version": 4}})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    id
}

async fn ports_of(c: &C, token: &str, device: &str) -> Vec<Value> {
    let (s, v) = neutron(
        c,
        Method::GET,
        &format!("/ports?device_id={device}"),
        token,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["ports"].as_array().unwrap().clone()
}

async fn all_ports(c: &C, token: &str) -> usize {
    neutron(c, Method::GET, "/ports", token, None).await.1["ports"]
        .as_array()
        .unwrap()
        .len()
}

api_test!(async fn a_server_on_a_network_gets_a_wired_port_and_gives_it_back(c) {
    let hosts = c.start_hosts(1).await;
    let t = c.tenant("member").await;
    let net = network(c, &t.token, "app", "10.0.0.0/24").await;
    let (s, v) = c.create_server_with(&t.token, "2.37", json!({"networks": [{"uuid": net}]}), None).await;
    assert_eq!(s, 202, "{v}");
    let id = v["server"]["id"].as_str().unwrap().to_string();
    let server = c.wait_status(&id, "ACTIVE").await;
    // The port: made for the server, bound to its host, wired there (ACTIVE) before the
    // server was.
    let ports = ports_of(c, &t.token, &id).await;
    assert_eq!(ports.len(), 1, "{ports:?}");
    let p = &ports[0];
    assert_eq!(p["device_owner"], "compute:nova");
    assert_eq!(p["status"], "ACTIVE");
    let admin = c.admin().await;
    let (_, shown) = neutron(c, Method::GET, &format!("/ports/{}", p["id"].as_str().unwrap()), &admin, None).await;
    assert_eq!(shown["port"]["binding:host_id"], hosts[0].as_str());
    // The server's addresses are the port's.
    let addr = &server["addresses"]["app"][0];
    assert_eq!(addr["addr"], p["fixed_ips"][0]["ip_address"]);
    assert_eq!(addr["version"], 4);
    assert_eq!(addr["OS-EXT-IPS:type"], "fixed");
    assert_eq!(addr["OS-EXT-IPS-MAC:mac_addr"], p["mac_address"]);
    let (_, ips) = c.call(Method::GET, &format!("/servers/{id}/ips"), &t.token, None).await;
    assert_eq!(ips["addresses"]["app"][0]["addr"], p["fixed_ips"][0]["ip_address"]);
    // Its interfaces are its ports.
    let (s, ifs) = c.call(Method::GET, &format!("/servers/{id}/os-interface"), &t.token, None).await;
    assert_eq!(s, 200, "{ifs}");
    let att = &ifs["interfaceAttachments"][0];
    assert_eq!((&att["port_id"], &att["net_id"], &att["mac_addr"], &att["port_state"]),
        (&p["id"], &json!(net), &p["mac_address"], &json!("ACTIVE")));
    assert_eq!(att["fixed_ips"][0]["ip_address"], p["fixed_ips"][0]["ip_address"]);
    let (s, one) = c.call(Method::GET, &format!("/servers/{id}/os-interface/{}", p["id"].as_str().unwrap()), &t.token, None).await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(one["interfaceAttachment"]["port_id"], p["id"]);
    let (s, _) = c.call(Method::GET, &format!("/servers/{id}/os-interface/6b4f1c2e-1111-4222-8333-444455556666"), &t.token, None).await;
    assert_eq!(s, 404);
    // Security groups on the server are on its port.
    let (_, web) = neutron(c, Method::POST, "/security-groups", &t.token, Some(json!({"security_group": {"name": "web"}}))).await;
    let web_id = web["security_group"]["id"].as_str().unwrap().to_string();
    let act = |body: Value| { let c = &c; let t = t.token.clone(); let id = id.clone(); async move {
        c.call(Method::POST, &format!("/servers/{id}/action"), &t, Some(body)).await
    }};
    let (s, v) = act(json!({"addSecurityGroup": {"name": "web"}})).await;
    assert_eq!(s, 202, "{v}");
    let groups = ports_of(c, &t.token, &id).await[0]["security_groups"].clone();
    assert!(groups.as_array().unwrap().contains(&json!(web_id)), "{groups}");
    assert!(c.server(&id).await["security_groups"].as_array().unwrap().contains(&json!({"name": "web"})));
    let (s, v) = act(json!({"addSecurityGroup": {"name": "web"}})).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = act(json!({"addSecurityGroup": {"name": "nope"}})).await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = act(json!({"removeSecurityGroup": {"name": "web"}})).await;
    assert_eq!(s, 202, "{v}");
    let groups = ports_of(c, &t.token, &id).await[0]["security_groups"].clone();
    assert!(!groups.as_array().unwrap().contains(&json!(web_id)), "{groups}");
    let (s, v) = act(json!({"removeSecurityGroup": {"name": "web"}})).await;
    assert_eq!(s, 400, "{v}");
    // Deleted: the port goes with it.
    let (s, _) = c.call(Method::DELETE, &format!("/servers/{id}"), &t.token, None).await;
    assert_eq!(s, 204);
    c.wait_gone(&id).await;
    assert!(ports_of(c, &t.token, &id).await.is_empty());
});

api_test!(async fn a_port_the_user_brought_is_taken_and_kept(c) {
    c.start_hosts(1).await;
    let t = c.tenant("member").await;
    let net = network(c, &t.token, "app", "10.1.0.0/24").await;
    let (_, p) = neutron(c, Method::POST, "/ports", &t.token,
        Some(json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "10.1.0.50"}]}}))).await;
    let port = p["port"]["id"].as_str().unwrap().to_string();
    let (s, v) = c.create_server_with(&t.token, "2.37", json!({"networks": [{"port": port}]}), None).await;
    assert_eq!(s, 202, "{v}");
    let id = v["server"]["id"].as_str().unwrap().to_string();
    let server = c.wait_status(&id, "ACTIVE").await;
    assert_eq!(server["addresses"]["app"][0]["addr"], "10.1.0.50");
    // In use: a second server cannot take it.
    let (s, v) = c.create_server_with(&t.token, "2.37", json!({"networks": [{"port": port}]}), None).await;
    assert_eq!(s, 409, "{v}");
    let (s, _) = c.call(Method::DELETE, &format!("/servers/{id}"), &t.token, None).await;
    assert_eq!(s, 204);
    c.wait_gone(&id).await;
    // Another project's port on this project's network: seen (the network is ours), but
    // not ours to take (Nova's PortNotUsable).
    let other = c.tenant("member").await;
    let admin = c.admin().await;
    let (_, theirs) = neutron(c, Method::POST, "/ports", &admin,
        Some(json!({"port": {"network_id": net, "project_id": other.project_id}}))).await;
    let theirs = theirs["port"]["id"].as_str().unwrap().to_string();
    let (s, v) = c.create_server_with(&t.token, "2.37", json!({"networks": [{"port": theirs}]}), None).await;
    assert_eq!(s, 400, "{v}");
    assert!(C::message(&v).contains("not usable"), "{v}");
    // Kept, unbound, free again.
    let (_, kept) = neutron(c, Method::GET, &format!("/ports/{port}"), &t.token, None).await;
    assert_eq!(kept["port"]["device_id"], "");
    assert_eq!(kept["port"]["device_owner"], "");
    assert_eq!(kept["port"]["status"], "DOWN");
});

api_test!(async fn a_create_whose_ports_cannot_be_had_leaves_nothing(c) {
    c.start_hosts(1).await;
    let t = c.tenant("member").await;
    let net = network(c, &t.token, "app", "10.2.0.0/24").await;
    let servers_before = c.instance_rows().await;
    let ports_before = all_ports(c, &t.token).await;
    let create = |networks: Value| { let c = &c; let t = t.token.clone(); async move {
        c.create_server_with(&t, "2.37", json!({"networks": networks}), None).await
    }};
    // Not a uuid; a network that does not exist (or is another project's); a bad address.
    let (s, v) = create(json!([{"uuid": "nope"}])).await;
    assert_eq!(s, 400, "{v}");
    assert!(C::message(&v).contains("Bad networks format"), "{v}");
    let (s, v) = create(json!([{"uuid": "6b4f1c2e-1111-4222-8333-444455556666"}])).await;
    assert_eq!(s, 400, "{v}");
    assert!(C::message(&v).contains("could not be found"), "{v}");
    let (s, v) = create(json!([{"uuid": net, "fixed_ip": "10.2.0.300"}])).await;
    assert_eq!(s, 400, "{v}");
    // The second NIC's address is taken: the first NIC's port is given back too.
    let (_, p) = neutron(c, Method::POST, "/ports", &t.token,
        Some(json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "10.2.0.9"}]}}))).await;
    assert_eq!(p["port"]["fixed_ips"][0]["ip_address"], "10.2.0.9");
    let (s, v) = create(json!([{"uuid": net}, {"uuid": net, "fixed_ip": "10.2.0.9"}])).await;
    assert_eq!(s, 400, "{v}");
    // Several servers cannot share one port.
    let port = p["port"]["id"].as_str().unwrap();
    let (s, v) = c.create_server_with(&t.token, "2.37",
        json!({"networks": [{"port": port}], "min_count": 2, "max_count": 2}), None).await;
    assert_eq!(s, 400, "{v}");
    // Nothing was left behind: no server, no port but the one made here.
    for _ in 0..50 {
        if all_ports(c, &t.token).await == ports_before + 1 { break; }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(all_ports(c, &t.token).await, ports_before + 1);
    assert_eq!(c.instance_rows().await, servers_before);
    // `auto` with two networks is ambiguous (409).
    network(c, &t.token, "other", "10.3.0.0/24").await;
    let (s, v) = create(json!("auto")).await;
    assert_eq!(s, 409, "{v}");
});

api_test!(async fn networks_auto_gets_the_project_a_network(c) {
    c.start_hosts(1).await;
    // Before 2.37, no `networks` with no network available: no NIC, nothing made.
    let u = c.tenant("member").await;
    let (s, v) = c.create_server_with(&u.token, "2.36", json!({"networks": null}), None).await;
    assert_eq!(s, 202, "{v}");
    let id = v["server"]["id"].as_str().unwrap().to_string();
    assert_eq!(c.wait_status(&id, "ACTIVE").await["addresses"], json!({}));
    let (_, l) = neutron(c, Method::GET, "/networks?router%3Aexternal=False", &u.token, None).await;
    assert_eq!(l["networks"], json!([]));
    // `auto`: three servers in one request share the one network made for the project.
    let (s, v) = c.create_server_with(&u.token, "2.37",
        json!({"networks": "auto", "min_count": 3, "return_reservation_id": true}), None).await;
    assert_eq!(s, 202, "{v}");
    let (_, l) = neutron(c, Method::GET, "/networks?router%3Aexternal=False", &u.token, None).await;
    let nets = l["networks"].as_array().unwrap();
    assert_eq!(nets.len(), 1, "{l}");
    assert_eq!(nets[0]["name"], "auto_allocated_network");
    let rid = v["reservation_id"].as_str().unwrap();
    let (_, l) = c.nova(Method::GET, &format!("/servers?reservation_id={rid}"), &u.token, "2.37", None).await;
    let servers = l["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3, "{l}");
    for srv in servers {
        let got = c.wait_status(srv["id"].as_str().unwrap(), "ACTIVE").await;
        let addrs = got["addresses"].as_object().unwrap();
        assert_eq!(addrs.keys().collect::<Vec<_>>(), vec!["auto_allocated_network"], "{got}");
    }
    // With the network there, `auto` takes it; with no default external network, a project
    // without one is told it cannot have one.
    let (s, v) = c.create_server_with(&u.token, "2.37", json!({"networks": "auto"}), None).await;
    assert_eq!(s, 202, "{v}");
    let admin = c.admin().await;
    let (_, l) = neutron(c, Method::GET, "/networks?router%3Aexternal=True", &admin, None).await;
    let public = l["networks"][0]["id"].as_str().unwrap().to_string();
    let (s, _) = neutron(c, Method::PUT, &format!("/networks/{public}"), &admin,
        Some(json!({"network": {"is_default": false}}))).await;
    assert_eq!(s, 200);
    let w = c.tenant("member").await;
    let (s, v) = c.create_server_with(&w.token, "2.37", json!({"networks": "auto"}), None).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(C::message(&v), format!("Unable to automatically allocate a network for project {}", w.project_id));
});

api_test!(async fn the_metadata_service_knows_a_guest_by_its_address_on_its_network(c) {
    let hosts = c.start_hosts(1).await;
    let t = c.tenant("member").await;
    let net = network(c, &t.token, "app", "10.0.0.0/24").await;
    let other = network(c, &t.token, "other", "10.0.0.0/24").await;
    let mut servers = Vec::new();
    for _ in 0..2 {
        let (s, v) = c.create_server_with(&t.token, "2.37", json!({"networks": [{"uuid": net}], "user_data": "aGVsbG8="}), None).await;
        assert_eq!(s, 202, "{v}");
        let id = v["server"]["id"].as_str().unwrap().to_string();
        c.wait_status(&id, "ACTIVE").await;
        let ip: std::net::IpAddr = ports_of(c, &t.token, &id).await[0]["fixed_ips"][0]["ip_address"]
            .as_str().unwrap().parse().unwrap();
        servers.push((id, ip));
    }
    for (id, ip) in &servers {
        let spec = c.compute.metadata_guest(&net, *ip).await.unwrap().expect("a guest");
        assert_eq!(&spec.uuid, id);
        assert_eq!(spec.user_data.as_deref(), Some("aGVsbG8="));
        assert!(spec.injected.is_none());
        assert_eq!(spec.nics.len(), 1);
        // The same address on another network is nobody (overlapping CIDRs).
        assert!(c.compute.metadata_guest(&other, *ip).await.unwrap().is_none());
    }
    assert!(c.compute.metadata_guest(&net, "10.0.0.250".parse().unwrap()).await.unwrap().is_none());
    // Over the agent protocol: an agent's (admin's) call, never a tenant's.
    let (id, ip) = &servers[0];
    let path = format!("/compute/agent-api/v1/hosts/{}/metadata?network_id={net}&address={ip}", hosts[0]);
    let admin = c.admin().await;
    let (s, _, body) = c.raw(Method::GET, &path, Some(&admin), None, &[]).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["guest"]["uuid"], id.as_str());
    let (s, _, _) = c.raw(Method::GET, &path, Some(&t.token), None, &[]).await;
    assert_eq!(s, 403);
});

/// Waits until the server's port `port` shows `state` on its interface list.
async fn wait_interface(c: &C, token: &str, server: &str, port: &str, state: &str) {
    for _ in 0..200 {
        let (_, ifs) = c
            .call(
                Method::GET,
                &format!("/servers/{server}/os-interface"),
                token,
                None,
            )
            .await;
        if ifs["interfaceAttachments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["port_id"] == port && a["port_state"] == state)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("port {port} of {server} never became {state}");
}

api_test!(async fn interfaces_attach_to_and_detach_from_a_running_server(c) {
    c.start_hosts(1).await;
    let t = c.tenant("member").await;
    let app = network(c, &t.token, "app", "10.0.0.0/24").await;
    let db = network(c, &t.token, "db", "10.9.0.0/24").await;
    let (s, v) = c.create_server_with(&t.token, "2.37", json!({"networks": [{"uuid": app}]}), None).await;
    assert_eq!(s, 202, "{v}");
    let id = v["server"]["id"].as_str().unwrap().to_string();
    c.wait_status(&id, "ACTIVE").await;
    let post = |body: Value| { let c = &c; let t = t.token.clone(); let id = id.clone(); async move {
        c.call(Method::POST, &format!("/servers/{id}/os-interface"), &t, Some(body)).await
    }};
    // Bad requests: both a port and a network; an address without a network; not uuids.
    let (s, v) = post(json!({"interfaceAttachment": {"net_id": db, "port_id": db}})).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = post(json!({"interfaceAttachment": {"fixed_ips": [{"ip_address": "10.9.0.5"}]}})).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = post(json!({"interfaceAttachment": {"net_id": "db"}})).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = post(json!({"interfaceAttachment": {"net_id": "6b4f1c2e-1111-4222-8333-444455556666"}})).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = post(json!({})).await;
    assert_eq!(s, 409, "two networks: which one is ambiguous: {v}");

    // A new port on `db` at a chosen address: plugged into the guest and wired (ACTIVE).
    let (s, v) = post(json!({"interfaceAttachment": {"net_id": db, "fixed_ips": [{"ip_address": "10.9.0.5"}]}})).await;
    assert_eq!(s, 200, "{v}");
    let att = &v["interfaceAttachment"];
    assert_eq!((att["net_id"].as_str(), att["fixed_ips"][0]["ip_address"].as_str()), (Some(db.as_str()), Some("10.9.0.5")));
    let port = att["port_id"].as_str().unwrap().to_string();
    wait_interface(c, &t.token, &id, &port, "ACTIVE").await;
    let server = c.server(&id).await;
    assert_eq!(server["addresses"]["db"][0]["addr"], "10.9.0.5", "{server}");
    assert_eq!(server["addresses"]["app"].as_array().unwrap().len(), 1, "{server}");
    let (_, log) = c.call(Method::POST, &format!("/servers/{id}/action"), &t.token, Some(json!({"os-getConsoleOutput": {}}))).await;
    assert!(log["output"].as_str().unwrap().contains("plugged"), "{log}");
    // The user's own port, attached and detached: kept, unbound.
    let (_, mine) = neutron(c, Method::POST, "/ports", &t.token, Some(json!({"port": {"network_id": app}}))).await;
    let mine = mine["port"]["id"].as_str().unwrap().to_string();
    let (s, v) = post(json!({"interfaceAttachment": {"port_id": mine}})).await;
    assert_eq!(s, 200, "{v}");
    wait_interface(c, &t.token, &id, &mine, "ACTIVE").await;
    assert_eq!(c.server(&id).await["addresses"]["app"].as_array().unwrap().len(), 2);
    // Taken already: 409.
    let (s, v) = post(json!({"interfaceAttachment": {"port_id": mine}})).await;
    assert_eq!(s, 409, "{v}");
    let del = |p: String| { let c = &c; let t = t.token.clone(); let id = id.clone(); async move {
        c.call(Method::DELETE, &format!("/servers/{id}/os-interface/{p}"), &t, None).await
    }};
    let (s, _) = del(mine.clone()).await;
    assert_eq!(s, 202);
    let (_, p) = neutron(c, Method::GET, &format!("/ports/{mine}"), &t.token, None).await;
    assert_eq!((p["port"]["device_id"].as_str(), p["port"]["status"].as_str()), (Some(""), Some("DOWN")), "{p}");
    // The port compute made goes; the server keeps its first NIC only.
    let (s, _) = del(port.clone()).await;
    assert_eq!(s, 202);
    let (s, _) = neutron(c, Method::GET, &format!("/ports/{port}"), &t.token, None).await;
    assert_eq!(s, 404);
    let (s, _) = del(port.clone()).await;
    assert_eq!(s, 404);
    let server = c.server(&id).await;
    assert_eq!(server["addresses"].as_object().unwrap().keys().collect::<Vec<_>>(), vec!["app"], "{server}");
    assert_eq!(server["addresses"]["app"].as_array().unwrap().len(), 1, "{server}");
    let (_, ifs) = c.call(Method::GET, &format!("/servers/{id}/os-interface"), &t.token, None).await;
    assert_eq!(ifs["interfaceAttachments"].as_array().unwrap().len(), 1, "{ifs}");
    // Each is an instance action, as in Nova.
    let (_, acts) = c.call(Method::GET, &format!("/servers/{id}/os-instance-actions"), &t.token, None).await;
    let names: Vec<&str> = acts["instanceActions"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(names.iter().filter(|a| **a == "attach_interface").count(), 2, "{acts}");
    assert_eq!(names.iter().filter(|a| **a == "detach_interface").count(), 2, "{acts}");
    // Not while suspended (Nova's states: active, paused, stopped).
    let (s, _) = c.call(Method::POST, &format!("/servers/{id}/action"), &t.token, Some(json!({"suspend": null}))).await;
    assert_eq!(s, 202);
    c.wait_status(&id, "SUSPENDED").await;
    let (s, v) = post(json!({"interfaceAttachment": {"net_id": db}})).await;
    assert_eq!(s, 409, "{v}");
});

api_test!(async fn the_network_proxies_show_the_networks_the_caller_sees(c) {
    let t = c.tenant("member").await;
    let net = network(c, &t.token, "app", "10.5.0.0/24").await;
    let (s, l) = c.nova(Method::GET, "/os-networks", &t.token, "2.35", None).await;
    assert_eq!(s, 200, "{l}");
    let labels: Vec<&str> = l["networks"].as_array().unwrap().iter().map(|n| n["label"].as_str().unwrap()).collect();
    assert!(labels.contains(&"app") && labels.contains(&"public"), "{l}");
    let (s, one) = c.nova(Method::GET, &format!("/os-networks/{net}"), &t.token, "2.35", None).await;
    assert_eq!(s, 200, "{one}");
    assert_eq!((one["network"]["label"].as_str(), one["network"]["cidr"].is_null()), (Some("app"), true));
    let (s, one) = c.nova(Method::GET, &format!("/os-tenant-networks/{net}"), &t.token, "2.35", None).await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(one["network"]["cidr"], "10.5.0.0/24");
    // Another project's network is not there; the proxies went at 2.36; changes are gone.
    let u = c.tenant("member").await;
    let (s, _) = c.nova(Method::GET, &format!("/os-networks/{net}"), &u.token, "2.35", None).await;
    assert_eq!(s, 404);
    let (s, _) = c.nova(Method::GET, "/os-networks", &t.token, "2.36", None).await;
    assert_eq!(s, 404);
    let (s, _) = c.nova(Method::POST, "/os-networks", &t.token, "2.35", Some(json!({"network": {"label": "x"}}))).await;
    assert_eq!(s, 410);
});

api_test!(async fn the_security_group_proxy_speaks_novas_terms(c) {
    let t = c.tenant("member").await;
    let nova = |m: Method, p: String, body: Option<Value>| { let c = &c; let tok = t.token.clone(); async move {
        c.nova(m, &p, &tok, "2.35", body).await
    }};
    let (s, v) = nova(Method::POST, "/os-security-groups".into(), Some(json!({"security_group": {"name": " web ", "description": "w"}}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["security_group"]["name"], " web ");
    let web = v["security_group"]["id"].as_str().unwrap().to_string();
    let (s, _) = nova(Method::POST, "/os-security-groups".into(), Some(json!({"security_group": {"name": "", "description": "w"}}))).await;
    assert_eq!(s, 400);
    // Rules in Nova's terms; Nova's checks first.
    let rule = |body: Value| nova(Method::POST, "/os-security-group-rules".into(), Some(json!({"security_group_rule": body})));
    let (s, v) = rule(json!({"parent_group_id": web, "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"})).await;
    assert_eq!(s, 200, "{v}");
    let r = &v["security_group_rule"];
    assert_eq!((r["ip_protocol"].as_str(), r["from_port"].as_i64(), r["ip_range"]["cidr"].as_str()), (Some("tcp"), Some(22), Some("10.0.0.0/8")));
    let rid = r["id"].as_str().unwrap().to_string();
    for bad in [
        json!({"parent_group_id": web, "ip_protocol": "tcp", "from_port": 30, "to_port": 20}),
        json!({"parent_group_id": web, "ip_protocol": "gre", "from_port": 1, "to_port": 2}),
        json!({"parent_group_id": web, "ip_protocol": "tcp", "from_port": "x", "to_port": 2}),
        json!({"parent_group_id": web, "ip_protocol": "icmp", "from_port": 300, "to_port": 0}),
        json!({"parent_group_id": "not-a-uuid", "ip_protocol": "tcp", "from_port": 1, "to_port": 2}),
        json!({"parent_group_id": web, "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}),
    ] {
        let (s, v) = rule(bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let (s, _) = rule(json!({"parent_group_id": "6b4f1c2e-1111-4222-8333-444455556666", "ip_protocol": "tcp", "from_port": 1, "to_port": 2})).await;
    assert_eq!(s, 404);
    // The group shows its ingress rules only (not Neutron's default egress ones).
    let (_, g) = nova(Method::GET, format!("/os-security-groups/{web}"), None).await;
    assert_eq!(g["security_group"]["rules"].as_array().unwrap().len(), 1, "{g}");
    let (_, l) = nova(Method::GET, "/os-security-groups".into(), None).await;
    let names: Vec<&str> = l["security_groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"default") && names.contains(&" web "), "{l}");
    // A group named by another's rule may go: the rule goes with it.
    let (_, db) = nova(Method::POST, "/os-security-groups".into(), Some(json!({"security_group": {"name": "db", "description": "d"}}))).await;
    let db = db["security_group"]["id"].as_str().unwrap().to_string();
    let (s, v) = rule(json!({"parent_group_id": db, "ip_protocol": "tcp", "from_port": 5432, "to_port": 5432, "group_id": web})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["security_group_rule"]["group"]["name"], " web ");
    let (s, _) = nova(Method::DELETE, format!("/os-security-group-rules/{rid}"), None).await;
    assert_eq!(s, 202);
    let (s, v) = nova(Method::DELETE, format!("/os-security-groups/{web}"), None).await;
    assert_eq!(s, 202, "{v}");
    let (_, g) = nova(Method::GET, format!("/os-security-groups/{db}"), None).await;
    assert_eq!(g["security_group"]["rules"], json!([]), "{g}");
    // The default group cannot go; the proxy went at 2.36.
    let default = l["security_groups"].as_array().unwrap().iter().find(|g| g["name"] == "default").unwrap()["id"].as_str().unwrap().to_string();
    let (s, _) = nova(Method::DELETE, format!("/os-security-groups/{default}"), None).await;
    assert_eq!(s, 400);
    let (s, _) = c.nova(Method::GET, "/os-security-groups", &t.token, "2.36", None).await;
    assert_eq!(s, 404);
});

api_test!(async fn the_floating_ip_proxy_allocates_associates_and_releases(c) {
    c.start_hosts(1).await;
    let t = c.tenant("member").await;
    let app = network(c, &t.token, "app", "10.6.0.0/24").await;
    let (_, subs) = neutron(c, Method::GET, &format!("/subnets?network_id={app}"), &t.token, None).await;
    let sub = subs["subnets"][0]["id"].as_str().unwrap().to_string();
    let (_, nets) = neutron(c, Method::GET, "/networks?name=public", &t.token, None).await;
    let public = nets["networks"][0]["id"].as_str().unwrap().to_string();
    let (s, r) = neutron(c, Method::POST, "/routers", &t.token, Some(json!({"router": {"name": "r", "external_gateway_info": {"network_id": public}}}))).await;
    assert_eq!(s, 201, "{r}");
    let router = r["router"]["id"].as_str().unwrap().to_string();
    let (s, v) = neutron(c, Method::PUT, &format!("/routers/{router}/add_router_interface"), &t.token, Some(json!({"subnet_id": sub}))).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = c.create_server_with(&t.token, "2.37", json!({"networks": [{"uuid": app}]}), None).await;
    assert_eq!(s, 202, "{v}");
    let id = v["server"]["id"].as_str().unwrap().to_string();
    c.wait_status(&id, "ACTIVE").await;
    let nova = |m: Method, p: String, mv: &'static str, body: Option<Value>| { let c = &c; let tok = t.token.clone(); async move {
        c.nova(m, &p, &tok, mv, body).await
    }};

    // Allocate from a pool by name and by id; an unknown pool is 404.
    let (s, a) = nova(Method::POST, "/os-floating-ips".into(), "2.35", Some(json!({"pool": "public"}))).await;
    assert_eq!(s, 200, "{a}");
    let fip = a["floating_ip"].clone();
    assert_eq!((fip["pool"].as_str(), fip["fixed_ip"].is_null(), fip["instance_id"].is_null()), (Some("public"), true, true), "{fip}");
    assert_eq!(fip.as_object().unwrap().len(), 5, "{fip}");
    let (s, b) = nova(Method::POST, "/os-floating-ips".into(), "2.35", Some(json!({"pool": public}))).await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = nova(Method::POST, "/os-floating-ips".into(), "2.35", Some(json!({"pool": "non_exist_pool"}))).await;
    assert_eq!(s, 404);
    // Without a pool: the only external network.
    let (s, d) = nova(Method::POST, "/os-floating-ips".into(), "2.35", None).await;
    assert_eq!(s, 200, "{d}");
    let (_, l) = nova(Method::GET, "/os-floating-ips".into(), "2.35", None).await;
    assert_eq!(l["floating_ips"].as_array().unwrap().len(), 3, "{l}");
    let fid = fip["id"].as_str().unwrap().to_string();
    let (s, shown) = nova(Method::GET, format!("/os-floating-ips/{fid}"), "2.35", None).await;
    assert_eq!(s, 200);
    assert_eq!(shown["floating_ip"], fip);
    assert!(l["floating_ips"].as_array().unwrap().contains(&fip), "{l}");
    let (_, pools) = nova(Method::GET, "/os-floating-ip-pools".into(), "2.35", None).await;
    assert_eq!(pools, json!({"floating_ip_pools": [{"name": "public"}]}));

    // Associate: the server's first IPv4 address; the second on the same address is 400.
    let action = |body: Value, mv: &'static str| nova(Method::POST, format!("/servers/{id}/action"), mv, Some(body));
    let ip = fip["ip"].as_str().unwrap().to_string();
    let (s, v) = action(json!({"addFloatingIp": {"address": ip}}), "2.43").await;
    assert_eq!(s, 202, "{v}");
    let (_, shown) = nova(Method::GET, format!("/os-floating-ips/{fid}"), "2.35", None).await;
    assert_eq!(shown["floating_ip"]["instance_id"], id.as_str(), "{shown}");
    assert!(shown["floating_ip"]["fixed_ip"].as_str().unwrap().starts_with("10.6.0."), "{shown}");
    let other = b["floating_ip"]["ip"].as_str().unwrap().to_string();
    let (s, v) = action(json!({"addFloatingIp": {"address": other}}), "2.43").await;
    assert_eq!(s, 400, "{v}");
    for (bad, want) in [
        (json!({"addFloatingIp": {"address": "0.0.0.0"}}), 404),
        (json!({"addFloatingIp": {"address": ""}}), 400),
        (json!({"addFloatingIp": {"address": ip, "fixed_address": "10.99.0.1"}}), 400),
        (json!({"addFloatingIp": {"address": ip, "extra": 1}}), 400),
        (json!({"removeFloatingIp": {"address": "0.0.0.0"}}), 404),
        (json!({"removeFloatingIp": {"address": other}}), 409),
    ] {
        let (s, v) = action(bad.clone(), "2.43").await;
        assert_eq!(s, want, "{bad}: {v}");
    }
    let (s, _) = action(json!({"addFloatingIp": {"address": ip}}), "2.44").await;
    assert_eq!(s, 404, "gone at 2.44");
    let (s, v) = action(json!({"removeFloatingIp": {"address": ip}}), "2.43").await;
    assert_eq!(s, 202, "{v}");
    let (_, shown) = nova(Method::GET, format!("/os-floating-ips/{fid}"), "2.35", None).await;
    assert!(shown["floating_ip"]["instance_id"].is_null(), "{shown}");

    // Another project sees none of them; release; gone at 2.36.
    let u = c.tenant("member").await;
    let (s, _) = c.nova(Method::GET, &format!("/os-floating-ips/{fid}"), &u.token, "2.35", None).await;
    assert_eq!(s, 404);
    let (s, _) = c.nova(Method::DELETE, &format!("/os-floating-ips/{fid}"), &u.token, "2.35", None).await;
    assert_eq!(s, 404);
    let (s, _) = nova(Method::DELETE, format!("/os-floating-ips/{fid}"), "2.35", None).await;
    assert_eq!(s, 202);
    let (s, _) = nova(Method::GET, format!("/os-floating-ips/{fid}"), "2.35", None).await;
    assert_eq!(s, 404);
    let (s, _) = nova(Method::GET, "/os-floating-ips".into(), "2.36", None).await;
    assert_eq!(s, 404);
});

api_test!(async fn a_servers_port_deleted_through_the_networking_api_leaves_the_server(c) {
    c.start_hosts(1).await;
    let t = c.tenant("member").await;
    let app = network(c, &t.token, "app", "10.7.0.0/24").await;
    let db = network(c, &t.token, "db", "10.8.0.0/24").await;
    let (s, v) = c.create_server_with(&t.token, "2.37", json!({"networks": [{"uuid": app}, {"uuid": db}]}), None).await;
    assert_eq!(s, 202, "{v}");
    let id = v["server"]["id"].as_str().unwrap().to_string();
    c.wait_status(&id, "ACTIVE").await;
    let port = ports_of(c, &t.token, &id)
        .await
        .into_iter()
        .find(|p| p["network_id"] == db.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Neutron lets the port go; Nova hears network-vif-deleted and lets go of the NIC.
    let (s, v) = neutron(c, Method::DELETE, &format!("/ports/{port}"), &t.token, None).await;
    assert_eq!(s, 204, "{v}");
    let mut addresses = Value::Null;
    for _ in 0..200 {
        addresses = c.server(&id).await["addresses"].clone();
        if addresses.as_object().is_some_and(|a| a.len() == 1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(addresses.as_object().unwrap().keys().collect::<Vec<_>>(), vec!["app"], "{addresses}");
    let (_, ifs) = c.call(Method::GET, &format!("/servers/{id}/os-interface"), &t.token, None).await;
    assert_eq!(ifs["interfaceAttachments"].as_array().unwrap().len(), 1, "{ifs}");
    // The server stays ACTIVE and goes cleanly, its other port with it.
    assert_eq!(c.server(&id).await["status"], "ACTIVE");
    let (s, _) = c.call(Method::DELETE, &format!("/servers/{id}"), &t.token, None).await;
    assert_eq!(s, 204);
});
