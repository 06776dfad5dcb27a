//! `/v3/regions`, `/v3/services`, `/v3/endpoints`: CRUD, validation, and what tokens' catalogs
//! show.

use serde_json::{json, Value};

use crate::common::{ids, message, REGION, V3};

async fn catalog_urls(c: &crate::common::TestCloud, service_type: &str) -> Vec<String> {
    let b = c.admin("GET", "/v3/auth/catalog", None, 200).await;
    b["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["type"] == service_type)
        .flat_map(|s| {
            s["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["url"].as_str().unwrap().to_string())
        })
        .collect()
}

api_test!(
    async fn regions(c) {
        // The bootstrap region.
        let b = c.admin("GET", &format!("/v3/regions/{REGION}"), None, 200).await;
        assert_eq!(b["region"]["id"], REGION);
        // POST with and without an id, PUT with the id in the path.
        let b = c.admin("POST", "/v3/regions", Some(json!({"region": {"description": "anon"}})), 201).await;
        let anon = b["region"]["id"].as_str().unwrap().to_string();
        assert!(!anon.is_empty());
        assert_eq!(b["region"]["parent_region_id"], Value::Null);
        assert_eq!(b["region"]["links"]["self"], format!("{V3}/regions/{anon}"));
        let b = c
            .admin("POST", "/v3/regions", Some(json!({"region": {"id": "East", "description": "east coast"}})), 201)
            .await;
        assert_eq!(b["region"]["id"], "East");
        assert_eq!(b["region"]["description"], "east coast");
        let b = c
            .admin("PUT", "/v3/regions/East-1", Some(json!({"region": {"parent_region_id": "East"}})), 201)
            .await;
        assert_eq!(b["region"]["id"], "East-1");
        assert_eq!(b["region"]["parent_region_id"], "East");
        // Duplicates.
        let b = c.admin("POST", "/v3/regions", Some(json!({"region": {"id": "East"}})), 409).await;
        assert!(message(&b).contains("East"), "{b}");
        // A parent that does not exist (Keystone: 404 for the region).
        let b = c
            .admin("POST", "/v3/regions", Some(json!({"region": {"id": "X", "parent_region_id": "Nowhere"}})), 404)
            .await;
        assert_eq!(message(&b), "Could not find region: Nowhere.");
        c.admin("GET", "/v3/regions/X", None, 404).await;
        // List and filter.
        let b = c.admin("GET", "/v3/regions", None, 200).await;
        let all = ids(&b, "regions");
        for r in [REGION, "East", "East-1", anon.as_str()] {
            assert!(all.contains(&r.to_string()), "{r}: {b}");
        }
        let b = c.admin("GET", "/v3/regions?parent_region_id=East", None, 200).await;
        assert_eq!(ids(&b, "regions"), ["East-1"]);
        // Update.
        let b = c
            .admin("PATCH", "/v3/regions/East", Some(json!({"region": {"description": "the east"}})), 200)
            .await;
        assert_eq!(b["region"]["description"], "the east");
        let b = c.admin("PATCH", "/v3/regions/East", Some(json!({"region": {"parent_region_id": "East"}})), 400).await;
        assert!(message(&b).contains("circular"), "{b}");
        let b = c.admin("PATCH", "/v3/regions/East", Some(json!({"region": {"parent_region_id": "East-1"}})), 400).await;
        assert!(message(&b).contains("circular"), "a loop through a child: {b}");
        let b = c
            .admin("PATCH", "/v3/regions/East-1", Some(json!({"region": {"parent_region_id": "Nowhere"}})), 404)
            .await;
        assert_eq!(message(&b), "Could not find region: Nowhere.");
        let b = c.admin("GET", "/v3/regions/East-1", None, 200).await;
        assert_eq!(b["region"]["parent_region_id"], "East", "failed updates change nothing");
        let b = c.admin("PATCH", "/v3/regions/East-1", Some(json!({"region": {"parent_region_id": null}})), 200).await;
        assert_eq!(b["region"]["parent_region_id"], Value::Null);
        c.admin("PATCH", "/v3/regions/East-1", Some(json!({"region": {"parent_region_id": "East"}})), 200).await;
        c.admin("PATCH", "/v3/regions/Nowhere", Some(json!({"region": {"description": "x"}})), 404).await;
        // Delete.
        c.admin("DELETE", "/v3/regions/East-1", None, 204).await;
        c.admin("GET", "/v3/regions/East-1", None, 404).await;
        c.admin("DELETE", "/v3/regions/East-1", None, 404).await;
        // Any token may read regions.
        let (_, _, t) = c.project_user("reg", "reader").await;
        c.expect("GET", "/v3/regions", Some(&t), None, 200).await;
        let (s, _, _) = c.req("POST", "/v3/regions", Some(&t), Some(json!({"region": {"id": "Mine"}}))).await;
        assert_eq!(s, 403);
    }
);

api_test!(
    async fn a_region_with_endpoints_cannot_be_deleted(c) {
        c.admin("POST", "/v3/regions", Some(json!({"region": {"id": "Busy"}})), 201).await;
        let b = c.admin("POST", "/v3/services", Some(json!({"service": {"type": "compute", "name": "nova"}})), 201).await;
        let sid = b["service"]["id"].as_str().unwrap().to_string();
        let b = c
            .admin(
                "POST",
                "/v3/endpoints",
                Some(json!({"endpoint": {"service_id": sid, "interface": "public", "url": "http://nova:8774/v2.1",
                                         "region_id": "Busy"}})),
                201,
            )
            .await;
        let eid = b["endpoint"]["id"].as_str().unwrap().to_string();
        let b = c.admin("DELETE", "/v3/regions/Busy", None, 403).await;
        assert!(message(&b).contains("Busy"), "{b}");
        c.admin("DELETE", &format!("/v3/endpoints/{eid}"), None, 204).await;
        c.admin("DELETE", "/v3/regions/Busy", None, 204).await;
    }
);

api_test!(
    async fn services(c) {
        let b = c
            .admin(
                "POST",
                "/v3/services",
                Some(json!({"service": {"type": "image", "name": "glance", "description": "images"}})),
                201,
            )
            .await;
        let s = &b["service"];
        let id = s["id"].as_str().unwrap().to_string();
        assert_eq!(s["type"], "image");
        assert_eq!(s["name"], "glance");
        assert_eq!(s["description"], "images");
        assert_eq!(s["enabled"], true);
        assert_eq!(s["links"]["self"], format!("{V3}/services/{id}"));
        assert_eq!(c.admin("GET", &format!("/v3/services/{id}"), None, 200).await["service"], *s);
        let b = c.admin("GET", "/v3/services?type=image", None, 200).await;
        assert_eq!(ids(&b, "services"), vec![id.clone()]);
        let b = c.admin("GET", "/v3/services?name=keystone", None, 200).await;
        assert_eq!(b["services"][0]["type"], "identity");
        let b = c
            .admin("PATCH", &format!("/v3/services/{id}"), Some(json!({"service": {"name": "glance2", "enabled": false}})), 200)
            .await;
        assert_eq!(b["service"]["name"], "glance2");
        assert_eq!(b["service"]["enabled"], false);
        assert_eq!(b["service"]["type"], "image");
        // Validation.
        let b = c.admin("POST", "/v3/services", Some(json!({"service": {"name": "typeless"}})), 400).await;
        assert!(message(&b).contains("type"), "{b}");
        c.admin("POST", "/v3/services", Some(json!({"service": {"type": 5}})), 400).await;
        c.admin("POST", "/v3/services", Some(json!({"service": {"type": "x", "enabled": "yes"}})), 400).await;
        c.admin("POST", "/v3/services", Some(json!({"service": {"type": "t".repeat(256)}})), 400).await;
        c.admin("DELETE", &format!("/v3/services/{id}"), None, 204).await;
        let b = c.admin("GET", &format!("/v3/services/{id}"), None, 404).await;
        assert_eq!(message(&b), format!("Could not find service: {id}."));
        // A reader cannot see services (Keystone: admin or system reader).
        let (_, _, t) = c.project_user("svc", "reader").await;
        let (st, _, _) = c.req("GET", "/v3/services", Some(&t), None).await;
        assert_eq!(st, 403);
    }
);

api_test!(
    async fn endpoints(c) {
        let b = c.admin("POST", "/v3/services", Some(json!({"service": {"type": "network", "name": "neutron"}})), 201).await;
        let sid = b["service"]["id"].as_str().unwrap().to_string();
        let b = c
            .admin(
                "POST",
                "/v3/endpoints",
                Some(json!({"endpoint": {"service_id": sid, "interface": "public", "url": "http://net.test:9696",
                                         "region_id": REGION}})),
                201,
            )
            .await;
        let e = &b["endpoint"];
        let id = e["id"].as_str().unwrap().to_string();
        assert_eq!(e["service_id"], sid.as_str());
        assert_eq!(e["interface"], "public");
        assert_eq!(e["url"], "http://net.test:9696");
        assert_eq!(e["region_id"], REGION);
        assert_eq!(e["region"], REGION);
        assert_eq!(e["enabled"], true);
        assert_eq!(e["links"]["self"], format!("{V3}/endpoints/{id}"));
        assert_eq!(c.admin("GET", &format!("/v3/endpoints/{id}"), None, 200).await["endpoint"], *e);
        // The legacy "region" attribute names the region too.
        let b = c
            .admin(
                "POST",
                "/v3/endpoints",
                Some(json!({"endpoint": {"service_id": sid, "interface": "internal", "url": "http://10.0.0.1:9696",
                                         "region": REGION}})),
                201,
            )
            .await;
        assert_eq!(b["endpoint"]["region_id"], REGION);
        let internal = b["endpoint"]["id"].as_str().unwrap().to_string();
        // Filters.
        let b = c.admin("GET", &format!("/v3/endpoints?service_id={sid}"), None, 200).await;
        assert_eq!(ids(&b, "endpoints").len(), 2);
        let b = c.admin("GET", &format!("/v3/endpoints?service_id={sid}&interface=internal"), None, 200).await;
        assert_eq!(ids(&b, "endpoints"), vec![internal.clone()]);
        let b = c.admin("GET", &format!("/v3/endpoints?region_id={REGION}&interface=public"), None, 200).await;
        assert!(ids(&b, "endpoints").contains(&id));
        // The new endpoints are in the catalog.
        let urls = catalog_urls(c, "network").await;
        assert!(urls.contains(&"http://net.test:9696".to_string()), "{urls:?}");
        // Update, disable: gone from the catalog.
        let b = c
            .admin("PATCH", &format!("/v3/endpoints/{id}"), Some(json!({"endpoint": {"url": "https://net.test:9697"}})), 200)
            .await;
        assert_eq!(b["endpoint"]["url"], "https://net.test:9697");
        assert_eq!(b["endpoint"]["interface"], "public");
        c.admin("PATCH", &format!("/v3/endpoints/{id}"), Some(json!({"endpoint": {"enabled": false}})), 200).await;
        let urls = catalog_urls(c, "network").await;
        assert!(!urls.iter().any(|u| u.contains("9697")), "{urls:?}");
        // Deleting the service deletes its endpoints.
        c.admin("DELETE", &format!("/v3/services/{sid}"), None, 204).await;
        c.admin("GET", &format!("/v3/endpoints/{internal}"), None, 404).await;
        assert!(catalog_urls(c, "network").await.is_empty());
    }
);

api_test!(
    async fn endpoint_validation(c) {
        let b = c.admin("POST", "/v3/services", Some(json!({"service": {"type": "volume"}})), 201).await;
        let sid = b["service"]["id"].as_str().unwrap().to_string();
        let ok = json!({"service_id": sid, "interface": "public", "url": "http://v.test:8776"});
        let with = |k: &str, v: Value| {
            let mut e = ok.clone();
            if v.is_null() {
                e.as_object_mut().unwrap().remove(k);
            } else {
                e[k] = v;
            }
            json!({ "endpoint": e })
        };
        let b = c.admin("POST", "/v3/endpoints", Some(with("interface", json!("outside"))), 400).await;
        assert!(message(&b).contains("interface"), "{b}");
        let b = c.admin("POST", "/v3/endpoints", Some(with("url", json!("not a url"))), 400).await;
        assert!(message(&b).contains("url"), "{b}");
        c.admin("POST", "/v3/endpoints", Some(with("url", Value::Null)), 400).await;
        c.admin("POST", "/v3/endpoints", Some(with("url", json!(format!("http://x.test/{}", "a".repeat(230))))), 400)
            .await;
        c.admin("POST", "/v3/endpoints", Some(with("interface", Value::Null)), 400).await;
        c.admin("POST", "/v3/endpoints", Some(with("service_id", Value::Null)), 400).await;
        c.admin("POST", "/v3/endpoints", Some(with("enabled", json!("true"))), 400).await;
        // References that do not exist are validation errors in Keystone.
        let b = c.admin("POST", "/v3/endpoints", Some(with("service_id", json!("nope"))), 400).await;
        assert!(message(&b).contains("service"), "{b}");
        let b = c.admin("POST", "/v3/endpoints", Some(with("region_id", json!("Nowhere"))), 400).await;
        assert!(message(&b).contains("region"), "{b}");
        // None of the failed attempts left an endpoint behind.
        let b = c.admin("GET", &format!("/v3/endpoints?service_id={sid}"), None, 200).await;
        assert_eq!(b["endpoints"], json!([]));
        c.admin("POST", "/v3/endpoints", Some(with("interface", json!("admin"))), 201).await;
        let e = c.admin("GET", &format!("/v3/endpoints?service_id={sid}"), None, 200).await;
        let eid = e["endpoints"][0]["id"].as_str().unwrap().to_string();
        c.admin("PATCH", &format!("/v3/endpoints/{eid}"), Some(json!({"endpoint": {"interface": "bogus"}})), 400).await;
        c.admin("PATCH", &format!("/v3/endpoints/{eid}"), Some(json!({"endpoint": {"service_id": "nope"}})), 400).await;
        c.admin("DELETE", &format!("/v3/endpoints/{eid}"), None, 204).await;
        c.admin("DELETE", &format!("/v3/endpoints/{eid}"), None, 404).await;
    }
);

api_test!(
    async fn a_disabled_service_leaves_the_catalog(c) {
        let b = c.admin("POST", "/v3/services", Some(json!({"service": {"type": "dns", "name": "designate"}})), 201).await;
        let sid = b["service"]["id"].as_str().unwrap().to_string();
        c.admin(
            "POST",
            "/v3/endpoints",
            Some(json!({"endpoint": {"service_id": sid, "interface": "public", "url": "http://dns.test:9001"}})),
            201,
        )
        .await;
        assert_eq!(catalog_urls(c, "dns").await, ["http://dns.test:9001"]);
        // An existing token's catalog follows as well.
        let (_, _, t) = c.project_user("cat", "member").await;
        let admin = c.admin_token().await;
        c.admin("PATCH", &format!("/v3/services/{sid}"), Some(json!({"service": {"enabled": false}})), 200).await;
        assert!(catalog_urls(c, "dns").await.is_empty());
        let (_, _, b) = c.req_with_headers("GET", "/v3/auth/tokens", Some(&admin), &[("x-subject-token", &t)], None).await;
        assert!(!b["token"]["catalog"].as_array().unwrap().iter().any(|s| s["type"] == "dns"), "{b}");
    }
);
