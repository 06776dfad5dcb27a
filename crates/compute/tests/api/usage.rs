//! os-simple-tenant-usage.

use http::Method;

use crate::common::InstanceRow;

const HOUR: i64 = 3_600_000_000;

fn iso(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

api_test!(async fn usage_over_a_period(c) {
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let now = ferrostack_store::now_micros();
    let start = now - 10 * HOUR;
    // Ran 2 h inside the period and was then deleted; started before the period and runs on.
    c.add_instance(&InstanceRow { name: "old", project_id: &m.project_id, user_id: &m.user_id,
        flavor_name: "m1.small", vcpus: 2, ram: 2048, disk: 20,
        launched_at: Some(start + HOUR), terminated_at: Some(start + 3 * HOUR) }).await;
    c.add_instance(&InstanceRow { name: "live", project_id: &m.project_id, user_id: &m.user_id,
        flavor_name: "m1.tiny", vcpus: 1, ram: 512, disk: 1,
        launched_at: Some(start - 5 * HOUR), terminated_at: None }).await;
    // Outside the period: terminated before it.
    c.add_instance(&InstanceRow { name: "ancient", project_id: &m.project_id, user_id: &m.user_id,
        flavor_name: "m1.tiny", vcpus: 1, ram: 512, disk: 1,
        launched_at: Some(start - 5 * HOUR), terminated_at: Some(start - 4 * HOUR) }).await;
    let end = start + 8 * HOUR;
    let q = format!("start={}&end={}", iso(start), iso(end));

    let path = format!("/os-simple-tenant-usage/{}?{q}", m.project_id);
    let (s, v) = c.call(Method::GET, &path, &m.token, None).await;
    assert_eq!(s, 200, "{v}");
    let u = &v["tenant_usage"];
    assert_eq!(u["tenant_id"], m.project_id.as_str());
    let close = |x: &serde_json::Value, y: f64| (x.as_f64().unwrap() - y).abs() < 0.01;
    assert!(close(&u["total_hours"], 10.0), "{u}");
    assert!(close(&u["total_vcpus_usage"], 2.0 * 2.0 + 8.0), "{u}");
    assert!(close(&u["total_memory_mb_usage"], 2048.0 * 2.0 + 512.0 * 8.0), "{u}");
    assert!(close(&u["total_local_gb_usage"], 20.0 * 2.0 + 8.0), "{u}");
    let servers = u["server_usages"].as_array().unwrap();
    assert_eq!(servers.len(), 2);
    let old = servers.iter().find(|s| s["name"] == "old").unwrap();
    assert_eq!((old["state"].as_str(), old["flavor"].as_str(), old["uptime"].as_i64()), (Some("terminated"), Some("m1.small"), Some(7200)));
    let live = servers.iter().find(|s| s["name"] == "live").unwrap();
    assert_eq!((live["state"].as_str(), live["ended_at"].is_null()), (Some("active"), true));

    // Other projects may not look; admins list everyone.
    let other = c.tenant("member").await;
    assert_eq!(c.call(Method::GET, &path, &other.token, None).await.0, 403);
    assert_eq!(c.call(Method::GET, &format!("/os-simple-tenant-usage?{q}"), &m.token, None).await.0, 403);
    let (s, v) = c.call(Method::GET, &format!("/os-simple-tenant-usage?{q}&detailed=1"), &admin, None).await;
    assert_eq!(s, 200);
    let mine = v["tenant_usages"].as_array().unwrap().iter().find(|t| t["tenant_id"] == m.project_id.as_str()).unwrap().clone();
    assert_eq!(mine["server_usages"].as_array().unwrap().len(), 2);
    let (_, v) = c.call(Method::GET, &format!("/os-simple-tenant-usage?{q}"), &admin, None).await;
    assert!(v["tenant_usages"][0].get("server_usages").is_none());

    // Pagination from 2.40.
    let (_, v) = c.nova(Method::GET, &format!("{path}&limit=1"), &m.token, "2.40", None).await;
    assert_eq!(v["tenant_usage"]["server_usages"].as_array().unwrap().len(), 1);
    assert!(v["tenant_usage_links"][0]["href"].as_str().unwrap().contains("marker="));

    // Bad periods.
    let bad = format!("/os-simple-tenant-usage/{}?start={}&end={}", m.project_id, iso(end), iso(start));
    assert_eq!(c.call(Method::GET, &bad, &m.token, None).await.0, 400);
    let bad = format!("/os-simple-tenant-usage/{}?start=yesterday", m.project_id);
    assert_eq!(c.call(Method::GET, &bad, &m.token, None).await.0, 400);
    // A project without usage.
    let (s, v) = c.call(Method::GET, &format!("/os-simple-tenant-usage/{}?{q}", other.project_id), &other.token, None).await;
    assert_eq!((s.as_u16(), v["tenant_usage"].clone()), (200, serde_json::json!({})));
});
