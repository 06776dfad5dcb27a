//! Allocation candidates: resources, traits, aggregates, limits, granular groups, nested
//! providers, sharing providers and the response shapes per microversion.

use http::Method;
use serde_json::{json, Value};

use crate::common::uuid;

fn providers_of(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for ar in v["allocation_requests"].as_array().unwrap() {
        match &ar["allocations"] {
            Value::Object(m) => out.extend(m.keys().cloned()),
            // Before 1.12: a list of {"resource_provider": {"uuid": ...}, "resources": ...}.
            list => out.extend(
                list.as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["resource_provider"]["uuid"].as_str().unwrap().to_string()),
            ),
        }
    }
    out.sort();
    out
}

api_test!(async fn filters_on_resources_traits_and_aggregates(c) {
    let a = c.provider("a", None).await;
    let b = c.provider("b", None).await;
    c.inventories(&a, json!({"VCPU": {"total": 4}, "MEMORY_MB": {"total": 2048}})).await;
    c.inventories(&b, json!({"VCPU": {"total": 16}, "MEMORY_MB": {"total": 8192}})).await;
    let gen = c.get(&format!("/resource_providers/{a}"), "1.0").await["generation"].clone();
    let (s, _) = c.req(Method::PUT, &format!("/resource_providers/{a}/traits"), "1.6",
        Some(json!({"traits": ["HW_CPU_X86_AVX2"], "resource_provider_generation": gen}))).await;
    assert_eq!(s, 200);
    let agg = uuid();
    c.placement.set_provider_aggregates(&b, std::slice::from_ref(&agg)).await.unwrap();
    let mut ab = vec![a.clone(), b.clone()];
    ab.sort();

    assert_eq!(c.req(Method::GET, "/allocation_candidates?resources=VCPU:1", "1.9", None).await.0, 404);
    let v = c.get("/allocation_candidates?resources=VCPU:2,MEMORY_MB:1024", "1.10").await;
    assert_eq!(providers_of(&v), ab);
    assert_eq!(v["allocation_requests"][0]["allocations"][0]["resources"]["VCPU"], 2);
    assert_eq!(v["provider_summaries"][&a]["resources"]["VCPU"], json!({"capacity": 4, "used": 0}));
    let v = c.get("/allocation_candidates?resources=VCPU:8", "1.12").await;
    assert_eq!(providers_of(&v), vec![b.clone()]);
    assert_eq!(v["allocation_requests"][0]["allocations"][&b]["resources"]["VCPU"], 8);

    let v = c.get("/allocation_candidates?resources=VCPU:1&required=HW_CPU_X86_AVX2", "1.17").await;
    assert_eq!(providers_of(&v), vec![a.clone()]);
    assert_eq!(v["provider_summaries"][&a]["traits"], json!(["HW_CPU_X86_AVX2"]));
    let v = c.get("/allocation_candidates?resources=VCPU:1&required=!HW_CPU_X86_AVX2", "1.22").await;
    assert_eq!(providers_of(&v), vec![b.clone()]);
    let v = c.get("/allocation_candidates?resources=VCPU:1&required=in:HW_CPU_X86_AVX2,HW_CPU_X86_SSE", "1.39").await;
    assert_eq!(providers_of(&v), vec![a.clone()]);
    let v = c.get(&format!("/allocation_candidates?resources=VCPU:1&member_of={agg}"), "1.21").await;
    assert_eq!(providers_of(&v), vec![b.clone()]);
    let v = c.get(&format!("/allocation_candidates?resources=VCPU:1&member_of=in:{agg},{}", uuid()), "1.21").await;
    assert_eq!(providers_of(&v), vec![b.clone()]);
    let v = c.get(&format!("/allocation_candidates?resources=VCPU:1&member_of=!{agg}"), "1.32").await;
    assert_eq!(providers_of(&v), vec![a.clone()]);
    let v = c.get(&format!("/allocation_candidates?resources=VCPU:1&in_tree={a}"), "1.31").await;
    assert_eq!(providers_of(&v), vec![a.clone()]);
    let v = c.get("/allocation_candidates?resources=VCPU:1&limit=1", "1.16").await;
    assert_eq!(v["allocation_requests"].as_array().unwrap().len(), 1);
    assert_eq!(v["provider_summaries"].as_object().unwrap().len(), 1);
    let v = c.get("/allocation_candidates?resources=VCPU:1&root_required=HW_CPU_X86_AVX2", "1.35").await;
    assert_eq!(providers_of(&v), vec![a.clone()]);

    // Used capacity counts.
    assert_eq!(c.allocate(&uuid(), json!({b.clone(): {"VCPU": 10}}), json!(null)).await.0, 204);
    let v = c.get("/allocation_candidates?resources=VCPU:8", "1.12").await;
    assert!(providers_of(&v).is_empty());
    let v = c.get("/allocation_candidates?resources=VCPU:1", "1.27").await;
    assert_eq!(v["provider_summaries"][&b]["resources"]["VCPU"]["used"], 10);
    assert!(v["provider_summaries"][&b]["resources"].get("MEMORY_MB").is_some());
    let v = c.get("/allocation_candidates?resources=VCPU:1", "1.26").await;
    assert!(v["provider_summaries"][&b]["resources"].get("MEMORY_MB").is_none());

    // Errors.
    assert_eq!(c.req(Method::GET, "/allocation_candidates?resources=CUSTOM_NOPE:1", "1.10", None).await.0, 400);
    assert_eq!(c.req(Method::GET, "/allocation_candidates?resources=VCPU:1&required=CUSTOM_NOPE", "1.17", None).await.0, 400);
    assert_eq!(c.req(Method::GET, "/allocation_candidates", "1.10", None).await.0, 400);
    assert_eq!(c.req(Method::GET, "/allocation_candidates?resources=VCPU:1&bogus=1", "1.10", None).await.0, 400);
});

api_test!(async fn granular_nested_and_sharing(c) {
    let cn = c.provider("cn", None).await;
    let numa0 = c.provider("cn-numa0", Some(&cn)).await;
    let numa1 = c.provider("cn-numa1", Some(&cn)).await;
    c.inventories(&cn, json!({"DISK_GB": {"total": 100}})).await;
    c.inventories(&numa0, json!({"VCPU": {"total": 4}})).await;
    c.inventories(&numa1, json!({"VCPU": {"total": 4}})).await;

    // Before 1.29 nested providers do not serve.
    let v = c.get("/allocation_candidates?resources=VCPU:1", "1.28").await;
    assert!(providers_of(&v).is_empty());
    let v = c.get("/allocation_candidates?resources=VCPU:1,DISK_GB:10", "1.29").await;
    assert_eq!(v["allocation_requests"].as_array().unwrap().len(), 2);
    assert_eq!(v["provider_summaries"].as_object().unwrap().len(), 3);
    assert_eq!(v["provider_summaries"][&numa0]["parent_provider_uuid"], cn.as_str());
    assert_eq!(v["provider_summaries"][&numa0]["root_provider_uuid"], cn.as_str());

    // Two numbered groups: isolate puts them on different NUMA nodes.
    let q = "/allocation_candidates?resources1=VCPU:2&resources2=VCPU:2";
    assert_eq!(c.req(Method::GET, q, "1.29", None).await.0, 400);
    let v = c.get(&format!("{q}&group_policy=isolate"), "1.34").await;
    assert_eq!(v["allocation_requests"].as_array().unwrap().len(), 2);
    let ar = &v["allocation_requests"][0];
    assert_eq!(ar["allocations"].as_object().unwrap().len(), 2);
    assert_eq!(ar["mappings"]["1"].as_array().unwrap().len(), 1);
    let v = c.get(&format!("{q}&group_policy=none"), "1.34").await;
    assert_eq!(v["allocation_requests"].as_array().unwrap().len(), 4);
    // String suffixes and same_subtree with a resourceless group.
    let gen = c.get(&format!("/resource_providers/{numa1}"), "1.0").await["generation"].clone();
    c.req(Method::PUT, &format!("/resource_providers/{numa1}/traits"), "1.6",
        Some(json!({"traits": ["HW_NUMA_ROOT"], "resource_provider_generation": gen}))).await;
    let v = c.get("/allocation_candidates?resources_C=VCPU:1&required_N=HW_NUMA_ROOT&same_subtree=_C,_N", "1.36").await;
    assert_eq!(providers_of(&v), vec![numa1.clone()]);
    assert_eq!(v["allocation_requests"][0]["mappings"]["_N"], json!([numa1]));

    // A sharing provider in the compute node's aggregate serves its disk.
    let ss = c.provider("shared-storage", None).await;
    c.inventories(&ss, json!({"DISK_GB": {"total": 1000}})).await;
    let agg = uuid();
    c.placement.set_provider_aggregates(&ss, std::slice::from_ref(&agg)).await.unwrap();
    c.placement.set_provider_aggregates(&cn, std::slice::from_ref(&agg)).await.unwrap();
    let gen = c.get(&format!("/resource_providers/{ss}"), "1.0").await["generation"].clone();
    c.req(Method::PUT, &format!("/resource_providers/{ss}/traits"), "1.6",
        Some(json!({"traits": ["MISC_SHARES_VIA_AGGREGATE"], "resource_provider_generation": gen}))).await;
    let v = c.get("/allocation_candidates?resources=VCPU:1,DISK_GB:500", "1.29").await;
    let ars = v["allocation_requests"].as_array().unwrap();
    assert_eq!(ars.len(), 2, "{v}");
    assert!(ars.iter().all(|ar| ar["allocations"][&ss]["resources"]["DISK_GB"] == 500));
});
