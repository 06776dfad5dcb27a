//! Host aggregates and availability zones.

use http::Method;
use serde_json::json;

use crate::common::TestCloud;

api_test!(async fn aggregate_crud_and_hosts(c) {
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    c.add_compute_service("host1", true).await;
    c.add_compute_service("host2", true).await;
    let body = Some(json!({"aggregate": {"name": "agg1", "availability_zone": "az1"}}));
    assert_eq!(c.call(Method::POST, "/os-aggregates", &m.token, body.clone()).await.0, 403);
    let (s, v) = c.call(Method::POST, "/os-aggregates", &admin, body.clone()).await;
    assert_eq!(s, 200, "{v}");
    let a = &v["aggregate"];
    assert_eq!(a["name"], "agg1");
    assert_eq!(a["availability_zone"], "az1");
    assert!(a.get("hosts").is_none() && a.get("uuid").is_none());
    let id = a["id"].as_i64().unwrap();
    let (s, e) = c.call(Method::POST, "/os-aggregates", &admin, body).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (409, "Aggregate agg1 already exists.".to_string()));

    let (s, v) = c.nova(Method::GET, &format!("/os-aggregates/{id}"), &admin, "2.41", None).await;
    assert_eq!(s, 200);
    assert!(uuid::Uuid::parse_str(v["aggregate"]["uuid"].as_str().unwrap()).is_ok());
    assert_eq!(v["aggregate"]["metadata"], json!({"availability_zone": "az1"}));
    assert_eq!(c.call(Method::GET, &format!("/os-aggregates/{id}"), &m.token, None).await.0, 403);
    assert_eq!(c.call(Method::GET, "/os-aggregates/999", &admin, None).await.0, 404);
    assert_eq!(c.call(Method::GET, "/os-aggregates/abc", &admin, None).await.0, 400);

    let act = format!("/os-aggregates/{id}/action");
    let add = |h: &str| Some(json!({"add_host": {"host": h}}));
    assert_eq!(c.call(Method::POST, &act, &m.token, add("host1")).await.0, 403);
    let (s, v) = c.call(Method::POST, &act, &admin, add("host1")).await;
    assert_eq!((s.as_u16(), v["aggregate"]["hosts"].clone()), (200, json!(["host1"])));
    assert_eq!(c.call(Method::POST, &act, &admin, add("host1")).await.0, 409);
    let (s, e) = c.call(Method::POST, &act, &admin, add("ghost")).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (404, "Compute host ghost could not be found.".to_string()));

    // A host cannot be in two zones.
    let (_, v) = c.call(Method::POST, "/os-aggregates", &admin,
        Some(json!({"aggregate": {"name": "agg2", "availability_zone": "az2"}}))).await;
    let id2 = v["aggregate"]["id"].as_i64().unwrap();
    let (s, e) = c.call(Method::POST, &format!("/os-aggregates/{id2}/action"), &admin, add("host1")).await;
    assert_eq!(s, 400);
    assert!(TestCloud::message(&e).contains("already in availability zone(s) ['az1']"), "{e}");
    // ... but may join an aggregate without a zone.
    let (_, v) = c.call(Method::POST, "/os-aggregates", &admin, Some(json!({"aggregate": {"name": "plain"}}))).await;
    let id3 = v["aggregate"]["id"].as_i64().unwrap();
    assert_eq!(c.call(Method::POST, &format!("/os-aggregates/{id3}/action"), &admin, add("host1")).await.0, 200);
    // Setting a conflicting zone on that aggregate is refused too.
    let (s, _) = c.call(Method::POST, &format!("/os-aggregates/{id3}/action"), &admin,
        Some(json!({"set_metadata": {"metadata": {"availability_zone": "az9"}}}))).await;
    assert_eq!(s, 400);
    let (s, _) = c.call(Method::PUT, &format!("/os-aggregates/{id3}"), &admin,
        Some(json!({"aggregate": {"availability_zone": "az9"}}))).await;
    assert_eq!(s, 400);

    // Metadata: set, and null removes.
    let (s, v) = c.call(Method::POST, &act, &admin,
        Some(json!({"set_metadata": {"metadata": {"ssd": "true", "gpu": "1"}}}))).await;
    assert_eq!(s, 200);
    assert_eq!(v["aggregate"]["metadata"], json!({"availability_zone": "az1", "ssd": "true", "gpu": "1"}));
    let (_, v) = c.call(Method::POST, &act, &admin, Some(json!({"set_metadata": {"metadata": {"gpu": null}}}))).await;
    assert_eq!(v["aggregate"]["metadata"], json!({"availability_zone": "az1", "ssd": "true"}));
    assert_eq!(c.call(Method::POST, &act, &admin, Some(json!({"set_metadata": {"metadata": {"bad/key": "x"}}}))).await.0, 400);
    assert_eq!(c.call(Method::POST, &act, &admin, Some(json!({"set_metadata": {}}))).await.0, 400);

    // Update name and zone.
    let (s, v) = c.call(Method::PUT, &format!("/os-aggregates/{id}"), &admin,
        Some(json!({"aggregate": {"name": "agg1b", "availability_zone": "az1b"}}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["aggregate"]["name"].as_str(), v["aggregate"]["availability_zone"].as_str()), (Some("agg1b"), Some("az1b")));
    assert_eq!(v["aggregate"]["metadata"]["availability_zone"], "az1b");
    assert_eq!(c.call(Method::PUT, &format!("/os-aggregates/{id}"), &admin, Some(json!({"aggregate": {}}))).await.0, 400);
    assert_eq!(c.call(Method::PUT, &format!("/os-aggregates/{id}"), &admin, Some(json!({"aggregate": {"name": "agg2"}}))).await.0, 409);

    // The scheduler's view and zone lookup.
    let mut conn = c.db.pool.acquire().await.unwrap();
    let all = ferrostack_compute::db::aggregates::all(&mut conn).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(ferrostack_compute::db::aggregates::zone_of(&all, "host1", "nova"), "az1b");
    assert_eq!(ferrostack_compute::db::aggregates::zone_of(&all, "host2", "nova"), "nova");
    drop(conn);

    let (s, v) = c.call(Method::GET, "/os-aggregates", &admin, None).await;
    assert_eq!((s.as_u16(), v["aggregates"].as_array().unwrap().len()), (200, 3));

    // Not empty: no delete. Remove hosts, then delete.
    let (s, e) = c.call(Method::DELETE, &format!("/os-aggregates/{id}"), &admin, None).await;
    assert_eq!(s, 400);
    assert!(TestCloud::message(&e).contains("Host aggregate is not empty"));
    let remove = |h: &str| Some(json!({"remove_host": {"host": h}}));
    assert_eq!(c.call(Method::POST, &act, &admin, remove("host2")).await.0, 404);
    let (s, v) = c.call(Method::POST, &act, &admin, remove("host1")).await;
    assert_eq!((s.as_u16(), v["aggregate"]["hosts"].clone()), (200, json!([])));
    assert_eq!(c.call(Method::DELETE, &format!("/os-aggregates/{id}"), &m.token, None).await.0, 403);
    assert_eq!(c.call(Method::DELETE, &format!("/os-aggregates/{id}"), &admin, None).await.0, 200);
    assert_eq!(c.call(Method::DELETE, &format!("/os-aggregates/{id}"), &admin, None).await.0, 404);
    assert_eq!(c.call(Method::POST, &act, &admin, Some(json!({"bogus": {}}))).await.0, 400);
});

api_test!(async fn placement_aggregates_mirror_hosts(c) {
    let admin = c.admin().await;
    c.add_compute_service("hp", true).await;
    let rp = c.add_compute_node("hp").await;
    let mut uuids = vec![];
    for name in ["x", "y"] {
        let (_, v) = c.nova(Method::POST, "/os-aggregates", &admin, "2.41",
            Some(json!({"aggregate": {"name": name}}))).await;
        let id = v["aggregate"]["id"].as_i64().unwrap();
        uuids.push((id, v["aggregate"]["uuid"].as_str().unwrap().to_string()));
        let (s, _) = c.call(Method::POST, &format!("/os-aggregates/{id}/action"), &admin,
            Some(json!({"add_host": {"host": "hp"}}))).await;
        assert_eq!(s, 200);
    }
    let placement_aggs = || async {
        let (s, _, body) = c.raw(Method::GET, &format!("/placement/resource_providers/{rp}/aggregates"),
            Some(&admin), None, &[("openstack-api-version", "placement 1.19")]).await;
        assert_eq!(s, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut a: Vec<String> = v["aggregates"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
        a.sort();
        a
    };
    let mut want: Vec<String> = uuids.iter().map(|(_, u)| u.clone()).collect();
    want.sort();
    assert_eq!(placement_aggs().await, want);
    let (s, _) = c.call(Method::POST, &format!("/os-aggregates/{}/action", uuids[0].0), &admin,
        Some(json!({"remove_host": {"host": "hp"}}))).await;
    assert_eq!(s, 200);
    assert_eq!(placement_aggs().await, vec![uuids[1].1.clone()]);
});

api_test!(async fn availability_zones(c) {
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    c.add_compute_service("h1", true).await;
    c.add_compute_service("h2", false).await;
    c.add_compute_service("h3", true).await;
    let (_, v) = c.call(Method::POST, "/os-aggregates", &admin,
        Some(json!({"aggregate": {"name": "a", "availability_zone": "zone-a"}}))).await;
    let id = v["aggregate"]["id"].as_i64().unwrap();
    c.call(Method::POST, &format!("/os-aggregates/{id}/action"), &admin, Some(json!({"add_host": {"host": "h1"}}))).await;
    let (_, v) = c.call(Method::POST, "/os-aggregates", &admin,
        Some(json!({"aggregate": {"name": "b", "availability_zone": "zone-b"}}))).await;
    let id = v["aggregate"]["id"].as_i64().unwrap();
    c.call(Method::POST, &format!("/os-aggregates/{id}/action"), &admin, Some(json!({"add_host": {"host": "h3"}}))).await;
    c.set_service_disabled("h3", true).await;

    let (s, v) = c.call(Method::GET, "/os-availability-zone", &m.token, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["availabilityZoneInfo"], json!([
        {"zoneName": "nova", "zoneState": {"available": true}, "hosts": null},
        {"zoneName": "zone-a", "zoneState": {"available": true}, "hosts": null},
        {"zoneName": "zone-b", "zoneState": {"available": false}, "hosts": null},
    ]));

    assert_eq!(c.call(Method::GET, "/os-availability-zone/detail", &m.token, None).await.0, 403);
    let (s, v) = c.call(Method::GET, "/os-availability-zone/detail", &admin, None).await;
    assert_eq!(s, 200);
    let info = v["availabilityZoneInfo"].as_array().unwrap();
    let zone = |n: &str| info.iter().find(|z| z["zoneName"] == n).unwrap().clone();
    let h1 = &zone("zone-a")["hosts"]["h1"]["nova-compute"];
    assert_eq!((h1["available"].as_bool(), h1["active"].as_bool()), (Some(true), Some(true)));
    let h2 = &zone("nova")["hosts"]["h2"]["nova-compute"];
    assert_eq!(h2["available"], false);
    assert_eq!(zone("zone-b")["hosts"], serde_json::Value::Null);
});
