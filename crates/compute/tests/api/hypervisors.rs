//! `os-hypervisors` beyond list/show: search, servers and uptime (before 2.53/2.88) and the
//! 2.53 `hypervisor_hostname_pattern` / `with_servers` filters.

use http::Method;
use serde_json::Value;

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["hypervisors"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|h| h["hypervisor_hostname"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

api_test!(async fn search_servers_uptime_and_filters(c) {
    c.start_hosts(2).await;
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let server = c.boot(&m.token, "on-a-host").await;
    let host = c.hosts_of(std::slice::from_ref(&server)).await.remove(0);

    // Before 2.53: search and servers by hostname substring; none matching is 404.
    let (s, v) = c.nova(Method::GET, "/os-hypervisors/host/search", &admin, "2.1", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(names(&v), ["host-1", "host-2"]);
    let (s, v) = c.nova(Method::GET, "/os-hypervisors/host-2/search", &admin, "2.1", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(names(&v), ["host-2"]);
    let (s, _) = c.nova(Method::GET, "/os-hypervisors/nope/search", &admin, "2.1", None).await;
    assert_eq!(s, 404);
    let (s, v) = c.nova(Method::GET, "/os-hypervisors/host/servers", &admin, "2.1", None).await;
    assert_eq!(s, 200, "{v}");
    for h in v["hypervisors"].as_array().unwrap() {
        if h["hypervisor_hostname"] == host.as_str() {
            assert_eq!(h["servers"][0]["uuid"], server.as_str(), "{h}");
            assert!(h["servers"][0]["name"].as_str().unwrap().starts_with("instance-"));
        } else {
            assert!(h.get("servers").is_none(), "{h}");
        }
    }
    // Gone from 2.53 (the filters replace them).
    let (s, _) = c.nova(Method::GET, "/os-hypervisors/host/search", &admin, "2.53", None).await;
    assert_eq!(s, 404);

    // Uptime by integer id before 2.53; part of show from 2.88, where the old path is gone.
    let (_, v) = c.nova(Method::GET, "/os-hypervisors", &admin, "2.1", None).await;
    let id = v["hypervisors"][0]["id"].clone();
    let (s, v) = c.nova(Method::GET, &format!("/os-hypervisors/{id}/uptime"), &admin, "2.1", None).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["hypervisor"]["uptime"].as_str().unwrap().contains("up"), "{v}");
    let (_, v) = c.nova(Method::GET, "/os-hypervisors", &admin, "2.88", None).await;
    let uuid = v["hypervisors"][0]["id"].as_str().unwrap().to_string();
    let (s, _) = c.nova(Method::GET, &format!("/os-hypervisors/{uuid}/uptime"), &admin, "2.88", None).await;
    assert_eq!(s, 404);
    let (s, v) = c.nova(Method::GET, &format!("/os-hypervisors/{uuid}"), &admin, "2.88", None).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["hypervisor"]["uptime"].is_string(), "{v}");

    // 2.53 filters.
    let (s, v) = c.nova(Method::GET, "/os-hypervisors?hypervisor_hostname_pattern=host&with_servers=true",
        &admin, "2.53", None).await;
    assert_eq!(s, 200, "{v}");
    for h in v["hypervisors"].as_array().unwrap() {
        let on_it = h["hypervisor_hostname"] == host.as_str();
        assert_eq!(h["servers"].as_array().unwrap().len(), usize::from(on_it), "{h}");
    }
    let (s, _) = c.nova(Method::GET, "/os-hypervisors?hypervisor_hostname_pattern=nope", &admin, "2.53", None).await;
    assert_eq!(s, 404);
    let (s, _) = c.nova(Method::GET, "/os-hypervisors?hypervisor_hostname_pattern=host&limit=1", &admin, "2.53", None).await;
    assert_eq!(s, 400);
    let (s, _) = c.nova(Method::GET, "/os-hypervisors/detail?with_servers=maybe", &admin, "2.53", None).await;
    assert_eq!(s, 400);
    let (s, _) = c.nova(Method::GET, "/os-hypervisors/1", &admin, "2.53", None).await;
    assert_eq!(s, 400, "2.53 takes uuids only");
    let (s, v) = c.nova(Method::GET, &format!("/os-hypervisors/{uuid}?with_servers=1"), &admin, "2.53", None).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["hypervisor"]["servers"].is_array(), "{v}");

    // Admin only.
    let (s, _) = c.nova(Method::GET, "/os-hypervisors/host/search", &m.token, "2.1", None).await;
    assert_eq!(s, 403);
});
