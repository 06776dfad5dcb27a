//! Security groups and rules: the default group, validation with Neutron's messages,
//! duplicates, groups in use.

use ferrostack_testkit::network::NetworkCloud as C;
use http::Method;
use serde_json::{json, Value};

api_test!(async fn a_project_gets_its_default_group_on_first_look(c) {
    let a = c.tenant("member").await;
    let (s, v) = c.call(Method::GET, "/security-groups", &a.token, None).await;
    assert_eq!(s, 200);
    let groups = v["security_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    let d = &groups[0];
    assert_eq!(d["name"], "default");
    let rules = d["security_group_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4);
    let from_members = rules.iter().filter(|r| r["direction"] == "ingress" && r["remote_group_id"] == d["id"]).count();
    assert_eq!(from_members, 2, "ingress only from the group's own members: {rules:?}");
    assert!(rules.iter().all(|r| r["belongs_to_default_sg"] == true));
    // Listing again does not make a second one; a group named default cannot be made.
    let (_, v) = c.call(Method::GET, "/security-groups", &a.token, None).await;
    assert_eq!(v["security_groups"].as_array().unwrap().len(), 1);
    let (s, v) = c.call(Method::POST, "/security-groups", &a.token, Some(json!({"security_group": {"name": "Default"}}))).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (409, "SecurityGroupDefaultAlreadyExists"));
    // The default group is not its project's to delete; an admin may.
    let id = d["id"].as_str().unwrap();
    let (s, v) = c.call(Method::DELETE, &format!("/security-groups/{id}"), &a.token, None).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (409, "SecurityGroupCannotRemoveDefault"));
    let admin = c.admin_token().await;
    let (_, l) = c.call(Method::GET, &format!("/security-groups?project_id={}&name=default", a.project_id), &admin, None).await;
    assert_eq!(C::ids(&l, "security_groups"), vec![id.to_string()]);
    assert_eq!(c.call(Method::DELETE, &format!("/security-groups/{id}"), &admin, None).await.0, 204);
});

async fn rule(c: &C, token: &str, body: Value) -> (u16, Value) {
    let (s, v) = c
        .call(
            Method::POST,
            "/security-group-rules",
            token,
            Some(json!({"security_group_rule": body})),
        )
        .await;
    (s.as_u16(), v)
}

api_test!(async fn rules_are_checked_as_neutron_checks_them(c) {
    let a = c.tenant("member").await;
    let g = c.create(&a.token, "security-groups", "security_group", json!({"name": "web"})).await;
    assert_eq!(g["security_group_rules"].as_array().unwrap().len(), 2, "egress rules: {g}");
    let gid = g["id"].as_str().unwrap();
    let base = |extra: Value| {
        let mut b = json!({"security_group_id": gid, "direction": "ingress", "ethertype": "IPv4"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let (s, r) = rule(c, &a.token, base(json!({"protocol": "tcp", "port_range_min": 80, "port_range_max": 80,
        "remote_ip_prefix": "0.0.0.0/0", "remote_group_id": null}))).await;
    assert_eq!(s, 201, "{r}");
    let r = &r["security_group_rule"];
    assert_eq!((r["port_range_min"].as_i64(), r["remote_group_id"].is_null()), (Some(80), true));
    let (_, shown) = c.call(Method::GET, &format!("/security-group-rules/{}", r["id"].as_str().unwrap()), &a.token, None).await;
    assert_eq!(&shown["security_group_rule"], r);
    let (s, v) = rule(c, &a.token, base(json!({"protocol": "6", "port_range_min": 80, "port_range_max": 80,
        "remote_ip_prefix": "0.0.0.0/0"}))).await;
    assert_eq!((s, C::kind(&v)), (409, "SecurityGroupRuleExists"), "tcp and 6 are one protocol");
    let (s, v) = rule(c, &a.token, base(json!({"protocol": 17}))).await;
    assert_eq!((s, v["security_group_rule"]["protocol"].as_str()), (201, Some("17")));
    let (s, v) = rule(c, &a.token, base(json!({"protocol": "icmp", "port_range_min": 0, "port_range_max": 0}))).await;
    assert_eq!((s, v["security_group_rule"]["port_range_min"].as_i64()), (201, Some(0)));
    for (proto, min, max, text) in [
        ("tcp", json!(-16), json!(80), "Invalid value for port -16"),
        ("tcp", json!(80), json!(79), "port_range_min must be <= port_range_max"),
        ("tcp", json!(80), json!(65536), "Invalid value for port 65536"),
        ("tcp", Value::Null, json!(6), "port_range_min must be <= port_range_max"),
        ("tcp", json!(6), Value::Null, "port_range_min must be <= port_range_max"),
        ("icmp", json!(1), json!(256), "Invalid value for ICMP code"),
        ("icmp", json!(-1), json!(25), "Invalid value"),
        ("icmp", Value::Null, json!(6), "ICMP type (port-range-min) is missing"),
        ("icmp", json!(300), json!(1), "Invalid value for ICMP type"),
    ] {
        let (s, v) = rule(c, &a.token, base(json!({"protocol": proto, "port_range_min": min, "port_range_max": max}))).await;
        assert_eq!(s, 400, "{proto} {min} {max}: {v}");
        assert!(v["NeutronError"]["message"].as_str().unwrap().contains(text), "{proto} {min} {max}: {v}");
    }
    for prefix in ["192.168.1./24", "192.168.1.1/33", "bad_prefix", "256"] {
        assert_eq!(rule(c, &a.token, base(json!({"protocol": "tcp", "remote_ip_prefix": prefix}))).await.0, 400, "{prefix}");
    }
    assert_eq!(rule(c, &a.token, base(json!({"protocol": "bad_protocol_name"}))).await.0, 400);
    assert_eq!(rule(c, &a.token, base(json!({"ethertype": "bad_ethertype"}))).await.0, 400);
    assert_eq!(rule(c, &a.token, base(json!({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}))).await.0, 400);
    assert_eq!(rule(c, &a.token, base(json!({"remote_group_id": "bad_group_id"}))).await.0, 404);
    assert_eq!(rule(c, &a.token, json!({"security_group_id": uuid(), "direction": "ingress"})).await.0, 404);
    // Another project neither sees the group nor adds rules to it.
    let b = c.tenant("member").await;
    assert_eq!(c.call(Method::GET, &format!("/security-groups/{gid}"), &b.token, None).await.0, 404);
    assert_eq!(rule(c, &b.token, base(json!({"protocol": "udp"}))).await.0, 404);
});

fn uuid() -> String {
    "6b4f3a8c-0f1e-4b5a-9c7d-2e8f1a3b5c7d".into()
}

api_test!(async fn a_group_in_use_stays_and_deleting_a_group_takes_its_rules(c) {
    let a = c.tenant("member").await;
    let g = c.create(&a.token, "security-groups", "security_group", json!({"name": "g"})).await;
    let gid = g["id"].as_str().unwrap();
    let n = c.network(&a.token, "n").await;
    let p = c.create(&a.token, "ports", "port", json!({"network_id": n["id"], "security_groups": [gid]})).await;
    assert_eq!(p["security_groups"], json!([gid]));
    let (s, v) = c.call(Method::DELETE, &format!("/security-groups/{gid}"), &a.token, None).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (409, "SecurityGroupInUse"));
    let (s, _) = c.call(Method::PUT, &format!("/ports/{}", p["id"].as_str().unwrap()), &a.token,
        Some(json!({"port": {"security_groups": []}}))).await;
    assert_eq!(s, 200);
    let rules: Vec<String> = g["security_group_rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(c.call(Method::DELETE, &format!("/security-groups/{gid}"), &a.token, None).await.0, 204);
    for r in rules {
        assert_eq!(c.call(Method::GET, &format!("/security-group-rules/{r}"), &a.token, None).await.0, 404);
    }
    // Renaming works; the group a port names must be the project's.
    let b = c.tenant("member").await;
    let bg = c.create(&b.token, "security-groups", "security_group", json!({"name": "theirs"})).await;
    let (s, v) = c.call(Method::POST, "/ports", &a.token, Some(json!({"port": {"network_id": n["id"], "security_groups": [bg["id"]]}}))).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (404, "SecurityGroupNotFound"));
});

api_test!(async fn address_groups_are_named_cidr_sets_that_rules_filter_with(c) {
    let admin = c.admin_token().await;
    let a = c.tenant("member").await;
    let g = c.create(&a.token, "address-groups", "address_group",
        json!({"name": "office", "addresses": ["198.51.100.7/24", "2001:db8::1/64"]})).await;
    let id = g["id"].as_str().unwrap().to_string();
    // Normalized, as Neutron keeps them.
    assert_eq!(g["addresses"], json!(["198.51.100.0/24", "2001:db8::/64"]));
    assert_eq!(g["project_id"], a.project_id.as_str());
    let put = |path: String, body: Value| { let c = &c; let t = a.token.clone(); async move {
        c.call(Method::PUT, &path, &t, Some(body)).await
    }};
    let (s, v) = put(format!("/address-groups/{id}/add_addresses"), json!({"addresses": ["203.0.113.9"]})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["address_group"]["addresses"], json!(["198.51.100.0/24", "203.0.113.9/32", "2001:db8::/64"]));
    let (s, v) = put(format!("/address-groups/{id}/add_addresses"), json!({"addresses": ["203.0.113.9/32"]})).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (400, "AddressesAlreadyExist"), "{v}");
    let (s, v) = put(format!("/address-groups/{id}/remove_addresses"), json!({"addresses": ["192.0.2.1/32"]})).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (404, "AddressesNotFound"), "{v}");
    let (s, v) = put(format!("/address-groups/{id}/add_addresses"), json!({"addresses": ["not-a-cidr"]})).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = put(format!("/address-groups/{id}"), json!({"address_group": {"addresses": []}})).await;
    assert_eq!(s, 400, "addresses change only through add/remove: {v}");
    let (s, v) = put(format!("/address-groups/{id}"), json!({"address_group": {"name": "hq", "description": "the office"}})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["address_group"]["name"].as_str(), v["address_group"]["revision_number"].as_i64()), (Some("hq"), Some(3)));
    // Another project neither sees it nor names it in a rule.
    let b = c.tenant("member").await;
    let (s, _) = c.call(Method::GET, &format!("/address-groups/{id}"), &b.token, None).await;
    assert_eq!(s, 404);
    let (_, l) = c.call(Method::GET, "/address-groups", &b.token, None).await;
    assert_eq!(l["address_groups"], json!([]));
    let bsg = c.create(&b.token, "security-groups", "security_group", json!({"name": "b"})).await;
    let (s, v) = c.call(Method::POST, "/security-group-rules", &b.token, Some(json!({"security_group_rule": {
        "security_group_id": bsg["id"], "direction": "ingress", "remote_address_group_id": id}}))).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (404, "AddressGroupNotFound"), "{v}");

    // A rule naming it; not with a prefix too. The host filtering a port in the group gets
    // the rule and the group's addresses.
    let web = c.create(&a.token, "security-groups", "security_group", json!({"name": "web"})).await;
    let web_id = web["id"].as_str().unwrap();
    let (s, v) = c.call(Method::POST, "/security-group-rules", &a.token, Some(json!({"security_group_rule": {
        "security_group_id": web_id, "direction": "ingress", "remote_address_group_id": id,
        "remote_ip_prefix": "10.0.0.0/8"}}))).await;
    assert_eq!(s, 400, "{v}");
    let rule = c.create(&a.token, "security-group-rules", "security_group_rule", json!({
        "security_group_id": web_id, "direction": "ingress", "protocol": "tcp", "port_range_min": 80,
        "port_range_max": 80, "remote_address_group_id": id})).await;
    assert_eq!(rule["remote_address_group_id"], id.as_str());
    let n = c.network(&a.token, "n").await;
    let net = n["id"].as_str().unwrap();
    c.subnet(&a.token, net, "10.0.0.0/24").await;
    c.create(&admin, "ports", "port", json!({"network_id": net, "security_groups": [web_id],
        "binding:host_id": "h1", "device_owner": "compute:nova"})).await;
    let h1 = c.cloud.network.host_networking("h1", &[]).await.unwrap();
    let rules = &h1.security_groups.iter().find(|g| g.id == web_id).unwrap().rules;
    assert!(rules.iter().any(|r| r.remote == ferrostack_agent_api::Remote::AddressGroup(id.clone())), "{rules:?}");
    assert_eq!(h1.address_groups.len(), 1);
    assert_eq!(h1.address_groups[0].addresses.len(), 3);
    // In use: not deleted; once the rule is gone, deleted.
    let (s, v) = c.call(Method::DELETE, &format!("/address-groups/{id}"), &a.token, None).await;
    assert_eq!((s.as_u16(), C::kind(&v)), (409, "AddressGroupInUse"), "{v}");
    let (s, _) = c.call(Method::DELETE, &format!("/security-group-rules/{}", rule["id"].as_str().unwrap()), &a.token, None).await;
    assert_eq!(s, 204);
    let (s, _) = c.call(Method::DELETE, &format!("/address-groups/{id}"), &a.token, None).await;
    assert_eq!(s, 204);
    let (s, _) = c.call(Method::GET, &format!("/address-groups/{id}"), &a.token, None).await;
    assert_eq!(s, 404);
});
