//! Allocations: consumer generations, capacity and unit conflicts, formats per microversion,
//! POST /allocations, provider allocations and usages.

use http::Method;
use serde_json::json;

use crate::common::uuid;

api_test!(async fn allocate_with_consumer_generations(c) {
    let rp = c.provider("cn", None).await;
    c.inventories(&rp, json!({"VCPU": {"total": 4, "allocation_ratio": 2.0}, "MEMORY_MB": {"total": 1024}})).await;
    let consumer = uuid();
    let (s, v) = c.allocate(&consumer, json!({rp.clone(): {"VCPU": 2}}), json!(5)).await;
    assert_eq!(s, 409);
    assert_eq!(v["errors"][0]["code"], "placement.concurrent_update");
    let (s, v) = c.allocate(&consumer, json!({rp.clone(): {"VCPU": 2, "MEMORY_MB": 512}}), json!(null)).await;
    assert_eq!(s, 204, "{v}");
    let v = c.get(&format!("/allocations/{consumer}"), "1.28").await;
    assert_eq!(v["consumer_generation"], 1);
    assert_eq!(v["project_id"], "proj");
    assert_eq!(v["allocations"][&rp]["resources"]["MEMORY_MB"], 512);
    assert_eq!(v["allocations"][&rp]["generation"], 2);
    assert!(c.get(&format!("/allocations/{consumer}"), "1.11").await.get("project_id").is_none());
    // A stale generation, then the right one.
    assert_eq!(c.allocate(&consumer, json!({rp.clone(): {"VCPU": 3}}), json!(null)).await.0, 409);
    assert_eq!(c.allocate(&consumer, json!({rp.clone(): {"VCPU": 3}}), json!(1)).await.0, 204);
    // consumer_generation is required from 1.28.
    let (s, _) = c.req(Method::PUT, &format!("/allocations/{consumer}"), "1.28",
        Some(json!({"allocations": {}, "project_id": "p", "user_id": "u"}))).await;
    assert_eq!(s, 400);
    // An empty object removes them (with the generation).
    let (s, v) = c.req(Method::PUT, &format!("/allocations/{consumer}"), "1.28",
        Some(json!({"allocations": {}, "project_id": "p", "user_id": "u", "consumer_generation": 2}))).await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(c.get(&format!("/allocations/{consumer}"), "1.28").await, json!({"allocations": {}}));
    assert_eq!(c.req(Method::PUT, "/allocations/not-a-uuid", "1.28",
        Some(json!({"allocations": {}, "project_id": "p", "user_id": "u", "consumer_generation": null}))).await.0, 400);
});

api_test!(async fn capacity_units_and_inventory_conflicts(c) {
    let rp = c.provider("cn", None).await;
    c.inventories(&rp, json!({"VCPU": {"total": 4, "reserved": 1, "max_unit": 2},
                             "DISK_GB": {"total": 100, "step_size": 10, "min_unit": 10}})).await;
    let a = uuid();
    assert_eq!(c.allocate(&a, json!({rp.clone(): {"VCPU": 2}}), json!(null)).await.0, 204);
    // Capacity is (4 - 1) * 1.0 = 3: one more VCPU fits, two do not.
    let (s, v) = c.allocate(&uuid(), json!({rp.clone(): {"VCPU": 2}}), json!(null)).await;
    assert_eq!(s, 409);
    let detail = v["errors"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("VCPU") && detail.contains(&rp) && detail.contains("exceed the capacity"), "{detail}");
    assert_eq!(c.allocate(&uuid(), json!({rp.clone(): {"VCPU": 1}}), json!(null)).await.0, 204);
    // Units: above max_unit, off step_size, below min_unit.
    for res in [json!({"VCPU": 3}), json!({"DISK_GB": 15}), json!({"DISK_GB": 5})] {
        let (s, v) = c.allocate(&uuid(), json!({rp.clone(): res}), json!(null)).await;
        assert_eq!(s, 409, "{v}");
        assert!(v["errors"][0]["detail"].as_str().unwrap().contains("constraints") || v["errors"][0]["detail"].as_str().unwrap().contains("capacity"));
    }
    // No inventory of the class, unknown class, unknown provider, bad amounts.
    assert_eq!(c.allocate(&uuid(), json!({rp.clone(): {"MEMORY_MB": 1}}), json!(null)).await.0, 409);
    assert_eq!(c.allocate(&uuid(), json!({rp.clone(): {"CUSTOM_NOPE": 1}}), json!(null)).await.0, 400);
    assert_eq!(c.allocate(&uuid(), json!({uuid(): {"VCPU": 1}}), json!(null)).await.0, 400);
    assert_eq!(c.allocate(&uuid(), json!({rp.clone(): {"VCPU": 0}}), json!(null)).await.0, 400);
    // Replacing a consumer's own allocation does not count it twice.
    assert_eq!(c.allocate(&a, json!({rp.clone(): {"VCPU": 2, "DISK_GB": 20}}), json!(1)).await.0, 204);
});

api_test!(async fn older_formats_and_post_allocations(c) {
    let rp = c.provider("cn", None).await;
    c.inventories(&rp, json!({"VCPU": {"total": 8}})).await;
    let a = uuid();
    let list_body = json!({"allocations": [{"resource_provider": {"uuid": rp}, "resources": {"VCPU": 1}}]});
    assert_eq!(c.req(Method::PUT, &format!("/allocations/{a}"), "1.0", Some(list_body.clone())).await.0, 204);
    // From 1.8 project and user are required.
    assert_eq!(c.req(Method::PUT, &format!("/allocations/{a}"), "1.8", Some(list_body)).await.0, 400);
    assert_eq!(c.req(Method::PUT, &format!("/allocations/{a}"), "1.12",
        Some(json!({"allocations": {}, "project_id": "p", "user_id": "u"}))).await.0, 400);

    let (b, d) = (uuid(), uuid());
    let body = json!({
        b.clone(): {"allocations": {rp.clone(): {"resources": {"VCPU": 2}}}, "project_id": "p", "user_id": "u", "consumer_generation": null},
        d.clone(): {"allocations": {rp.clone(): {"resources": {"VCPU": 3}}}, "project_id": "p", "user_id": "u2", "consumer_generation": null},
    });
    assert_eq!(c.req(Method::POST, "/allocations", "1.12", Some(body.clone())).await.0, 404);
    let (s, v) = c.req(Method::POST, "/allocations", "1.28", Some(body)).await;
    assert_eq!(s, 204, "{v}");
    let v = c.get(&format!("/resource_providers/{rp}/allocations"), "1.28").await;
    assert_eq!(v["allocations"][&b]["resources"]["VCPU"], 2);
    assert_eq!(v["allocations"][&d]["consumer_generation"], 1);
    let v = c.get(&format!("/resource_providers/{rp}/usages"), "1.0").await;
    assert_eq!(v["usages"]["VCPU"], 6);
    // Over capacity as a whole: nothing is written.
    let e = uuid();
    let body = json!({
        e.clone(): {"allocations": {rp.clone(): {"resources": {"VCPU": 1}}}, "project_id": "p", "user_id": "u", "consumer_generation": null},
        b.clone(): {"allocations": {rp.clone(): {"resources": {"VCPU": 4}}}, "project_id": "p", "user_id": "u", "consumer_generation": 1},
    });
    assert_eq!(c.req(Method::POST, "/allocations", "1.28", Some(body)).await.0, 409);
    assert_eq!(c.get(&format!("/allocations/{e}"), "1.28").await, json!({"allocations": {}}));
    // Moving b's allocation to e (as Nova does for migrations) within capacity.
    let body = json!({
        b.clone(): {"allocations": {}, "project_id": "p", "user_id": "u", "consumer_generation": 1},
        e.clone(): {"allocations": {rp.clone(): {"resources": {"VCPU": 2}}}, "project_id": "p", "user_id": "u", "consumer_generation": null},
    });
    assert_eq!(c.req(Method::POST, "/allocations", "1.28", Some(body)).await.0, 204);

    assert_eq!(c.req(Method::DELETE, &format!("/allocations/{d}"), "1.0", None).await.0, 204);
    assert_eq!(c.req(Method::DELETE, &format!("/allocations/{d}"), "1.0", None).await.0, 404);
    assert_eq!(c.get(&format!("/resource_providers/{rp}/usages"), "1.0").await["usages"]["VCPU"], 3);
});

api_test!(async fn project_usages_and_consumer_types(c) {
    let rp = c.provider("cn", None).await;
    c.inventories(&rp, json!({"VCPU": {"total": 8}, "MEMORY_MB": {"total": 4096}})).await;
    let reader = c.tenant("reader").await;
    let p = reader.project_id.clone();
    let put = |consumer: String, res: serde_json::Value, user: &str, ctype: &str| {
        json!({"consumer": consumer, "body": {"allocations": {rp.clone(): {"resources": res}},
              "project_id": p, "user_id": user, "consumer_generation": null, "consumer_type": ctype}})
    };
    for w in [put(uuid(), json!({"VCPU": 2, "MEMORY_MB": 512}), "u1", "INSTANCE"),
              put(uuid(), json!({"VCPU": 1}), "u2", "INSTANCE"),
              put(uuid(), json!({"MEMORY_MB": 256}), "u1", "MIGRATION")] {
        let (s, v) = c.req(Method::PUT, &format!("/allocations/{}", w["consumer"].as_str().unwrap()), "1.38", Some(w["body"].clone())).await;
        assert_eq!(s, 204, "{v}");
    }
    let v = c.get(&format!("/usages?project_id={p}"), "1.9").await;
    assert_eq!(v, json!({"usages": {"VCPU": 3, "MEMORY_MB": 768}}));
    let v = c.get(&format!("/usages?project_id={p}&user_id=u1"), "1.9").await;
    assert_eq!(v["usages"]["VCPU"], 2);
    let v = c.get(&format!("/usages?project_id={p}"), "1.38").await;
    assert_eq!(v["usages"]["INSTANCE"], json!({"consumer_count": 2, "VCPU": 3, "MEMORY_MB": 512}));
    assert_eq!(v["usages"]["MIGRATION"]["consumer_count"], 1);
    let v = c.get(&format!("/usages?project_id={p}&consumer_type=all"), "1.38").await;
    assert_eq!(v["usages"]["all"]["consumer_count"], 3);
    assert_eq!(c.req(Method::GET, "/usages", "1.9", None).await.0, 400);
    // A project's reader sees its own project's usage only.
    let (s, _, _) = c.call(Method::GET, &format!("/placement/usages?project_id={p}"), Some(&reader.token), Some("1.9"), None).await;
    assert_eq!(s, 200);
    let (s, _, _) = c.call(Method::GET, "/placement/usages?project_id=other", Some(&reader.token), Some("1.9"), None).await;
    assert_eq!(s, 403);
    // consumer_type is required from 1.38.
    let (s, _) = c.req(Method::PUT, &format!("/allocations/{}", uuid()), "1.38",
        Some(json!({"allocations": {}, "project_id": "p", "user_id": "u", "consumer_generation": null}))).await;
    assert_eq!(s, 400);
});
