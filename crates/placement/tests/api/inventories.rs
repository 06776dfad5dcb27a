//! Inventories: set, show, update, delete, generations, capacity validation, in-use checks.

use http::Method;
use serde_json::json;

api_test!(async fn inventory_lifecycle(c) {
    let rp = c.provider("cn", None).await;
    let base = format!("/resource_providers/{rp}/inventories");
    let v = c.get(&base, "1.0").await;
    assert_eq!(v, json!({"resource_provider_generation": 0, "inventories": {}}));

    let body = json!({"resource_provider_generation": 0, "inventories": {
        "VCPU": {"total": 8, "allocation_ratio": 16.0},
        "MEMORY_MB": {"total": 4096, "reserved": 512, "max_unit": 4096}}});
    let (s, v) = c.req(Method::PUT, &base, "1.0", Some(body.clone())).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["resource_provider_generation"], 1);
    assert_eq!(v["inventories"]["VCPU"]["allocation_ratio"], 16.0);
    assert_eq!(v["inventories"]["VCPU"]["max_unit"], 2147483647);
    // The same generation again is a conflict.
    let (s, v) = c.req(Method::PUT, &base, "1.0", Some(body)).await;
    assert_eq!(s, 409);
    assert_eq!(v["errors"][0]["code"], "placement.concurrent_update");

    let v = c.get(&format!("{base}/MEMORY_MB"), "1.0").await;
    assert_eq!(v["reserved"], 512);
    assert_eq!(v["resource_provider_generation"], 1);
    assert_eq!(c.req(Method::GET, &format!("{base}/DISK_GB"), "1.0", None).await.0, 404);

    let (s, v) = c.req(Method::PUT, &format!("{base}/MEMORY_MB"), "1.0",
        Some(json!({"resource_provider_generation": 1, "total": 8192}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["resource_provider_generation"], 2);
    assert_eq!(v["reserved"], 0);
    assert_eq!(c.req(Method::PUT, &format!("{base}/DISK_GB"), "1.0",
        Some(json!({"resource_provider_generation": 2, "total": 10}))).await.0, 400);

    let (s, v) = c.req(Method::POST, &base, "1.0", Some(json!({"resource_class": "DISK_GB", "total": 100}))).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["resource_provider_generation"], 3);
    assert_eq!(c.req(Method::POST, &base, "1.0", Some(json!({"resource_class": "DISK_GB", "total": 100}))).await.0, 409);
    assert_eq!(c.req(Method::POST, &base, "1.0", Some(json!({"resource_class": "NOPE", "total": 100}))).await.0, 400);

    assert_eq!(c.req(Method::DELETE, &format!("{base}/DISK_GB"), "1.0", None).await.0, 204);
    assert_eq!(c.req(Method::DELETE, &format!("{base}/DISK_GB"), "1.0", None).await.0, 404);
    assert_eq!(c.req(Method::DELETE, &base, "1.4", None).await.0, 405);
    assert_eq!(c.req(Method::DELETE, &base, "1.5", None).await.0, 204);
    assert_eq!(c.get(&base, "1.5").await["inventories"], json!({}));
    assert_eq!(c.req(Method::GET, &format!("/resource_providers/{}/inventories", crate::common::uuid()), "1.0", None).await.0, 404);
});

api_test!(async fn inventory_validation(c) {
    let rp = c.provider("cn", None).await;
    let base = format!("/resource_providers/{rp}/inventories");
    let put = |inv: serde_json::Value| json!({"resource_provider_generation": 0, "inventories": {"VCPU": inv}});
    for bad in [json!({"total": 0}), json!({"total": -1}), json!({"total": "8"}), json!({"reserved": 1}),
                json!({"total": 8, "step_size": 0}), json!({"total": 8, "nope": 1}), json!({"total": 8, "allocation_ratio": -1})] {
        assert_eq!(c.req(Method::PUT, &base, "1.26", Some(put(bad.clone()))).await.0, 400, "{bad}");
    }
    // Fully reserved inventories are allowed from 1.26.
    assert_eq!(c.req(Method::PUT, &base, "1.25", Some(put(json!({"total": 4, "reserved": 4})))).await.0, 400);
    assert_eq!(c.req(Method::PUT, &base, "1.26", Some(put(json!({"total": 4, "reserved": 4})))).await.0, 200);
    let unknown = json!({"resource_provider_generation": 1, "inventories": {"CUSTOM_NOPE": {"total": 1}}});
    assert_eq!(c.req(Method::PUT, &base, "1.26", Some(unknown)).await.0, 400);
    assert_eq!(c.req(Method::PUT, &base, "1.26", Some(json!({"inventories": {}}))).await.0, 400);
});

api_test!(async fn inventory_in_use(c) {
    let rp = c.provider("cn", None).await;
    c.inventories(&rp, json!({"VCPU": {"total": 8}, "DISK_GB": {"total": 100}})).await;
    let consumer = crate::common::uuid();
    let (s, v) = c.allocate(&consumer, json!({rp.clone(): {"VCPU": 6, "DISK_GB": 10}}), json!(null)).await;
    assert_eq!(s, 204, "{v}");
    let base = format!("/resource_providers/{rp}/inventories");
    let g = c.get(&base, "1.0").await["resource_provider_generation"].clone();
    // Below the usage.
    let (s, v) = c.req(Method::PUT, &base, "1.0", Some(json!({"resource_provider_generation": g,
        "inventories": {"VCPU": {"total": 4}, "DISK_GB": {"total": 100}}}))).await;
    assert_eq!(s, 409);
    assert_eq!(v["errors"][0]["code"], "placement.inventory.inuse");
    let (s, v) = c.req(Method::PUT, &format!("{base}/VCPU"), "1.0", Some(json!({"resource_provider_generation": g, "total": 5}))).await;
    assert_eq!(s, 409);
    assert_eq!(v["errors"][0]["code"], "placement.inventory.inuse");
    // Dropping a class in use.
    let (s, v) = c.req(Method::PUT, &base, "1.0", Some(json!({"resource_provider_generation": g,
        "inventories": {"VCPU": {"total": 8}}}))).await;
    assert_eq!(s, 409);
    assert_eq!(v["errors"][0]["code"], "placement.inventory.inuse");
    let (s, v) = c.req(Method::DELETE, &base, "1.5", None).await;
    assert_eq!(s, 409);
    assert_eq!(v["errors"][0]["code"], "placement.inventory.inuse");
    assert_eq!(c.req(Method::DELETE, &format!("{base}/DISK_GB"), "1.0", None).await.0, 409);
    // Raising it is fine.
    let (s, _) = c.req(Method::PUT, &base, "1.0", Some(json!({"resource_provider_generation": g,
        "inventories": {"VCPU": {"total": 16}, "DISK_GB": {"total": 100}}}))).await;
    assert_eq!(s, 200);
    let (s, v) = c.req(Method::DELETE, &format!("/resource_providers/{rp}"), "1.0", None).await;
    assert_eq!(s, 409);
    assert_eq!(v["errors"][0]["code"], "placement.resource_provider.inuse");
});
