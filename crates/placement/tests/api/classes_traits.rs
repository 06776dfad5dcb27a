//! Resource classes and traits, global and per provider.

use http::Method;
use serde_json::json;

api_test!(async fn resource_classes(c) {
    let v = c.get("/resource_classes", "1.2").await;
    let names: Vec<&str> = v["resource_classes"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(&names[..3], &["VCPU", "MEMORY_MB", "DISK_GB"]);
    assert!(names.contains(&"PCPU") && names.contains(&"VGPU"));
    assert_eq!(v["resource_classes"][0]["links"][0]["href"], "/placement/resource_classes/VCPU");

    let (s, _) = c.req(Method::POST, "/resource_classes", "1.2", Some(json!({"name": "CUSTOM_GOLD"}))).await;
    assert_eq!(s, 201);
    let (s, v) = c.req(Method::POST, "/resource_classes", "1.2", Some(json!({"name": "CUSTOM_GOLD"}))).await;
    assert_eq!(s, 409);
    assert_eq!(v["errors"][0]["code"], "placement.duplicate_name");
    for bad in ["GOLD", "CUSTOM_gold", "CUSTOM_"] {
        assert_eq!(c.req(Method::POST, "/resource_classes", "1.2", Some(json!({"name": bad}))).await.0, 400);
    }
    assert_eq!(c.get("/resource_classes/CUSTOM_GOLD", "1.2").await["name"], "CUSTOM_GOLD");
    assert_eq!(c.req(Method::GET, "/resource_classes/CUSTOM_NOPE", "1.2", None).await.0, 404);
    // 1.7: PUT creates or confirms.
    assert_eq!(c.req(Method::PUT, "/resource_classes/CUSTOM_SILVER", "1.7", None).await.0, 201);
    assert_eq!(c.req(Method::PUT, "/resource_classes/CUSTOM_SILVER", "1.7", None).await.0, 204);
    assert_eq!(c.req(Method::PUT, "/resource_classes/VCPU", "1.7", None).await.0, 204);
    assert_eq!(c.req(Method::PUT, "/resource_classes/SILVER", "1.7", None).await.0, 400);
    // Before 1.7: rename, with the inventories using it.
    let rp = c.provider("cn", None).await;
    c.inventories(&rp, json!({"CUSTOM_SILVER": {"total": 4}})).await;
    let (s, v) = c.req(Method::PUT, "/resource_classes/CUSTOM_SILVER", "1.2", Some(json!({"name": "CUSTOM_BRONZE"}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "CUSTOM_BRONZE");
    assert_eq!(c.get(&format!("/resource_providers/{rp}/inventories/CUSTOM_BRONZE"), "1.2").await["total"], 4);
    assert_eq!(c.req(Method::PUT, "/resource_classes/VCPU", "1.2", Some(json!({"name": "CUSTOM_X"}))).await.0, 400);
    // Delete: standard 400, in use 409, custom 204.
    assert_eq!(c.req(Method::DELETE, "/resource_classes/VCPU", "1.2", None).await.0, 400);
    assert_eq!(c.req(Method::DELETE, "/resource_classes/CUSTOM_BRONZE", "1.2", None).await.0, 409);
    assert_eq!(c.req(Method::DELETE, "/resource_classes/CUSTOM_GOLD", "1.2", None).await.0, 204);
    assert_eq!(c.req(Method::DELETE, "/resource_classes/CUSTOM_GOLD", "1.2", None).await.0, 404);
});

api_test!(async fn traits(c) {
    let v = c.get("/traits?name=startswith:COMPUTE_STATUS", "1.6").await;
    assert_eq!(v["traits"], json!(["COMPUTE_STATUS_DISABLED"]));
    let all = c.get("/traits", "1.6").await;
    let all = all["traits"].as_array().unwrap();
    assert!(all.len() > 300);
    for t in ["MISC_SHARES_VIA_AGGREGATE", "STORAGE_DISK_SSD", "HW_CPU_X86_AVX2", "COMPUTE_VOLUME_MULTI_ATTACH"] {
        assert!(all.contains(&json!(t)), "{t}");
    }
    assert_eq!(c.req(Method::PUT, "/traits/CUSTOM_FAST", "1.6", None).await.0, 201);
    assert_eq!(c.req(Method::PUT, "/traits/CUSTOM_FAST", "1.6", None).await.0, 204);
    assert_eq!(c.req(Method::PUT, "/traits/FAST", "1.6", None).await.0, 400);
    assert_eq!(c.req(Method::GET, "/traits/CUSTOM_FAST", "1.6", None).await.0, 204);
    assert_eq!(c.req(Method::GET, "/traits/CUSTOM_SLOW", "1.6", None).await.0, 404);
    let v = c.get("/traits?name=in:CUSTOM_FAST,HW_CPU_X86_SSE,CUSTOM_SLOW", "1.6").await;
    assert_eq!(v["traits"], json!(["CUSTOM_FAST", "HW_CPU_X86_SSE"]));
    assert_eq!(c.req(Method::GET, "/traits?name=CUSTOM_FAST", "1.6", None).await.0, 400);

    let rp = c.provider("cn", None).await;
    let path = format!("/resource_providers/{rp}/traits");
    assert_eq!(c.get(&path, "1.6").await, json!({"traits": [], "resource_provider_generation": 0}));
    let (s, v) = c.req(Method::PUT, &path, "1.6", Some(json!({"traits": ["CUSTOM_FAST", "HW_CPU_X86_SSE"], "resource_provider_generation": 0}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["resource_provider_generation"], 1);
    let (s, v) = c.req(Method::PUT, &path, "1.6", Some(json!({"traits": [], "resource_provider_generation": 0}))).await;
    assert_eq!(s, 409);
    assert_eq!(v["errors"][0]["code"], "placement.concurrent_update");
    assert_eq!(c.req(Method::PUT, &path, "1.6", Some(json!({"traits": ["CUSTOM_NOPE"], "resource_provider_generation": 1}))).await.0, 400);
    assert_eq!(c.get("/traits?associated=true", "1.6").await["traits"], json!(["CUSTOM_FAST", "HW_CPU_X86_SSE"]));
    assert!(!c.get("/traits?associated=false", "1.6").await["traits"].as_array().unwrap().contains(&json!("CUSTOM_FAST")));
    // In use, standard, then cleared and deleted.
    assert_eq!(c.req(Method::DELETE, "/traits/CUSTOM_FAST", "1.6", None).await.0, 409);
    assert_eq!(c.req(Method::DELETE, "/traits/HW_CPU_X86_SSE", "1.6", None).await.0, 400);
    assert_eq!(c.req(Method::DELETE, &path, "1.6", None).await.0, 204);
    assert_eq!(c.get(&path, "1.6").await["resource_provider_generation"], 2);
    assert_eq!(c.req(Method::DELETE, "/traits/CUSTOM_FAST", "1.6", None).await.0, 204);
    assert_eq!(c.req(Method::DELETE, "/traits/CUSTOM_FAST", "1.6", None).await.0, 404);
});
