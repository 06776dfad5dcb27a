//! Get-me-a-network: `/auto-allocated-topology/{project}` makes one network, subnet and
//! router per project, from the default subnet pool to the default external network.

use ferrostack_testkit::network::NetworkCloud as C;
use http::Method;
use serde_json::{json, Value};

async fn topology(c: &C, token: &str, project: &str) -> (u16, Value) {
    let (st, v) = c
        .call(
            Method::GET,
            &format!("/auto-allocated-topology/{project}"),
            token,
            None,
        )
        .await;
    (st.as_u16(), v)
}

api_test!(async fn get_me_a_network_makes_one_topology_per_project(c) {
    let a = c.tenant("member").await;
    let (st, v) = c.call(Method::GET, "/auto-allocated-topology/None?fields=dry-run", &a.token, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["auto_allocated_topology"]["id"], "dry-run=pass");
    let (st, v) = c.call(Method::GET, "/auto-allocated-topology/None?fields=name", &a.token, None).await;
    assert_eq!((st.as_u16(), C::kind(&v)), (400, "BadRequest"), "{v}");

    let (st, v) = topology(c, &a.token, &a.project_id).await;
    assert_eq!(st, 200, "{v}");
    let net_id = v["auto_allocated_topology"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["auto_allocated_topology"]["project_id"], a.project_id.as_str());
    let (_, n) = c.call(Method::GET, &format!("/networks/{net_id}"), &a.token, None).await;
    let n = &n["network"];
    assert_eq!((n["name"].as_str(), n["admin_state_up"].as_bool()), (Some("auto_allocated_network"), Some(true)), "{n}");
    let (_, s) = c.call(Method::GET, &format!("/subnets?network_id={net_id}"), &a.token, None).await;
    let s = &s["subnets"][0];
    let cidr: ipnet::Ipv4Net = s["cidr"].as_str().unwrap().parse().unwrap();
    assert_eq!(cidr.prefix_len(), 26, "{s}");
    assert!("10.128.0.0/16".parse::<ipnet::Ipv4Net>().unwrap().contains(&cidr), "{s}");
    let (_, r) = c.call(Method::GET, "/routers", &a.token, None).await;
    let r = &r["routers"].as_array().unwrap().clone();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["name"], "auto_allocated_router");
    assert!(r[0]["external_gateway_info"]["network_id"].is_string(), "{r:?}");
    let rid = r[0]["id"].as_str().unwrap();
    let (_, p) = c.call(Method::GET, &format!("/ports?device_id={rid}&network_id={net_id}"), &a.token, None).await;
    assert_eq!(p["ports"][0]["device_owner"], "network:router_interface", "{p}");
    // Asked again: the same network. Another project's topology is not the caller's to ask.
    let (_, v) = topology(c, &a.token, "None").await;
    assert_eq!(v["auto_allocated_topology"]["id"], net_id.as_str());
    let b = c.tenant("member").await;
    let (st, _) = topology(c, &a.token, &b.project_id).await;
    assert_eq!(st, 403);

    // Racing first asks settle on one topology; the losers' networks and routers are gone.
    let asks: Vec<_> = (0..4).map(|_| topology(c, &b.token, "None")).collect();
    let answers = futures::future::join_all(asks).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(st, v)| {
            assert_eq!(*st, 200, "{v}");
            v["auto_allocated_topology"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let (_, l) = c.call(Method::GET, &format!("/networks?project_id={}", b.project_id), &b.token, None).await;
    assert_eq!(C::ids(&l, "networks"), ids.iter().cloned().collect::<Vec<_>>());
    let (_, l) = c.call(Method::GET, &format!("/routers?project_id={}", b.project_id), &b.token, None).await;
    assert_eq!(l["routers"].as_array().unwrap().len(), 1, "{l}");

    // Delete takes the router, subnet and network; the next ask makes a new one.
    let (st, _) = c.call(Method::DELETE, "/auto-allocated-topology/None", &a.token, None).await;
    assert_eq!(st, 204);
    let (st, _) = c.call(Method::GET, &format!("/networks/{net_id}"), &a.token, None).await;
    assert_eq!(st, 404);
    let (_, r) = c.call(Method::GET, "/routers", &a.token, None).await;
    assert_eq!(r["routers"], json!([]));
    let (_, v) = topology(c, &a.token, "None").await;
    assert_ne!(v["auto_allocated_topology"]["id"], net_id.as_str());

    // Without a default external network it cannot be done, and says why.
    let admin = c.admin_token().await;
    let (_, l) = c.call(Method::GET, "/networks?router%3Aexternal=True", &admin, None).await;
    let public = l["networks"][0]["id"].as_str().unwrap();
    let (st, v) = c.call(Method::PUT, &format!("/networks/{public}"), &admin, Some(json!({"network": {"is_default": false}}))).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = c.call(Method::GET, "/auto-allocated-topology/None?fields=dry-run", &b.token, None).await;
    assert_eq!((st.as_u16(), C::kind(&v)), (409, "AutoAllocationFailure"), "{v}");
    assert_eq!(v["NeutronError"]["message"], "Deployment error: No default router:external network.");
    let d = c.tenant("member").await;
    let (st, v) = topology(c, &d.token, "None").await;
    assert_eq!(st, 409, "{v}");
    let (_, l) = c.call(Method::GET, &format!("/networks?project_id={}", d.project_id), &d.token, None).await;
    assert_eq!(l["networks"], json!([]));
});
