//! Resource providers: CRUD, trees, aggregates, filters, auth and microversions.

use http::Method;
use serde_json::json;

use crate::common::uuid;

api_test!(async fn version_document_and_microversions(c) {
    let (s, h, v) = c.call(Method::GET, "/placement", None, None, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["versions"][0]["id"], "v1.0");
    assert_eq!(v["versions"][0]["max_version"], "1.39");
    assert_eq!(v["versions"][0]["status"], "CURRENT");
    assert_eq!(h["openstack-api-version"], "placement 1.0");
    let admin = c.admin().await;
    let (s, _, _) = c.call(Method::GET, "/placement/resource_providers", Some(&admin), Some("1.99"), None).await;
    assert_eq!(s, 406);
    let (s, _, _) = c.call(Method::GET, "/placement/resource_providers", Some(&admin), Some("one"), None).await;
    assert_eq!(s, 400);
    let (s, h, _) = c.call(Method::GET, "/placement/resource_providers", Some(&admin), Some("latest"), None).await;
    assert_eq!(s, 200);
    assert_eq!(h["openstack-api-version"], "placement 1.39");
    assert_eq!(h["cache-control"], "no-cache");
    assert!(h.contains_key("last-modified"));
    // Routes newer than the request's version are absent.
    assert_eq!(c.req(Method::GET, "/traits", "1.5", None).await.0, 404);
    assert_eq!(c.req(Method::GET, "/resource_classes", "1.1", None).await.0, 404);
    assert_eq!(c.req(Method::GET, "/usages?project_id=x", "1.8", None).await.0, 404);
});

api_test!(async fn auth_is_required_and_admin_only(c) {
    let (s, _, _) = c.call(Method::GET, "/placement/resource_providers", None, None, None).await;
    assert_eq!(s, 401);
    let member = c.tenant("member").await;
    let (s, _, v) = c.call(Method::GET, "/placement/resource_providers", Some(&member.token), None, None).await;
    assert_eq!(s, 403, "{v}");
});

api_test!(async fn create_show_update_delete(c) {
    let id = uuid();
    let (s, h, v) = c
        .call(Method::POST, "/placement/resource_providers", Some(&c.admin().await), Some("1.0"),
              Some(json!({"name": "cn1", "uuid": id})))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(h["location"], format!("/placement/resource_providers/{id}").as_str());
    let p = c.get(&format!("/resource_providers/{id}"), "1.14").await;
    assert_eq!(p["name"], "cn1");
    assert_eq!(p["generation"], 0);
    assert_eq!(p["root_provider_uuid"], id.as_str());
    assert!(p["parent_provider_uuid"].is_null());
    let rels: Vec<&str> = p["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap()).collect();
    assert_eq!(rels, vec!["self", "inventories", "usages", "aggregates", "traits", "allocations"]);
    assert!(c.get(&format!("/resource_providers/{id}"), "1.0").await.get("root_provider_uuid").is_none());

    let (s, v) = c.req(Method::POST, "/resource_providers", "1.20", Some(json!({"name": "cn1"}))).await;
    assert_eq!(s, 409);
    assert_eq!(v["errors"][0]["code"], "placement.duplicate_name");
    let (s, v) = c.req(Method::POST, "/resource_providers", "1.20", Some(json!({"name": "cn2"}))).await;
    assert_eq!(s, 200);
    assert_eq!(v["generation"], 0);
    let other = v["uuid"].as_str().unwrap().to_string();
    assert_eq!(c.req(Method::POST, "/resource_providers", "1.20", Some(json!({"name": "x", "bogus": 1}))).await.0, 400);
    assert_eq!(c.req(Method::POST, "/resource_providers", "1.20", Some(json!({"name": "x", "uuid": "nope"}))).await.0, 400);

    let (s, v) = c.req(Method::PUT, &format!("/resource_providers/{id}"), "1.14", Some(json!({"name": "cn1-renamed"}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["generation"], 1);
    assert_eq!(c.req(Method::PUT, &format!("/resource_providers/{id}"), "1.14", Some(json!({"name": "cn2"}))).await.0, 409);

    let l = c.get("/resource_providers?name=cn2", "1.14").await;
    assert_eq!(l["resource_providers"].as_array().unwrap().len(), 1);
    let l = c.get(&format!("/resource_providers?uuid={id}"), "1.14").await;
    assert_eq!(l["resource_providers"][0]["name"], "cn1-renamed");
    assert_eq!(c.req(Method::GET, "/resource_providers?in_tree=x", "1.13", None).await.0, 400);

    assert_eq!(c.req(Method::DELETE, &format!("/resource_providers/{other}"), "1.14", None).await.0, 204);
    assert_eq!(c.req(Method::GET, &format!("/resource_providers/{other}"), "1.14", None).await.0, 404);
    assert_eq!(c.req(Method::DELETE, &format!("/resource_providers/{other}"), "1.14", None).await.0, 404);
});

api_test!(async fn provider_trees(c) {
    let root = c.provider("root", None).await;
    let child = c.provider("child", Some(&root)).await;
    let grandchild = c.provider("grandchild", Some(&child)).await;
    let other = c.provider("other", None).await;
    let g = c.get(&format!("/resource_providers/{grandchild}"), "1.14").await;
    assert_eq!(g["root_provider_uuid"], root.as_str());
    assert_eq!(g["parent_provider_uuid"], child.as_str());
    let l = c.get(&format!("/resource_providers?in_tree={grandchild}"), "1.14").await;
    assert_eq!(l["resource_providers"].as_array().unwrap().len(), 3);
    let (s, v) = c.req(Method::POST, "/resource_providers", "1.14", Some(json!({"name": "orphan", "parent_provider_uuid": uuid()}))).await;
    assert_eq!(s, 400, "{v}");

    let (s, v) = c.req(Method::DELETE, &format!("/resource_providers/{child}"), "1.14", None).await;
    assert_eq!(s, 409);
    assert_eq!(v["errors"][0]["code"], "placement.resource_provider.cannot_delete_parent");

    // Re-parenting needs 1.37, and may not create a loop.
    let body = json!({"name": "child", "parent_provider_uuid": other});
    assert_eq!(c.req(Method::PUT, &format!("/resource_providers/{child}"), "1.36", Some(body.clone())).await.0, 400);
    let (s, v) = c.req(Method::PUT, &format!("/resource_providers/{child}"), "1.37", Some(body)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["root_provider_uuid"], other.as_str());
    let g = c.get(&format!("/resource_providers/{grandchild}"), "1.14").await;
    assert_eq!(g["root_provider_uuid"], other.as_str());
    let looped = json!({"name": "child", "parent_provider_uuid": grandchild});
    assert_eq!(c.req(Method::PUT, &format!("/resource_providers/{child}"), "1.37", Some(looped)).await.0, 400);
    // Un-parenting.
    let (s, v) = c.req(Method::PUT, &format!("/resource_providers/{child}"), "1.37", Some(json!({"name": "child", "parent_provider_uuid": null}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["root_provider_uuid"], child.as_str());
    // Setting a parent where there was none is allowed before 1.37.
    let (s, v) = c.req(Method::PUT, &format!("/resource_providers/{child}"), "1.14", Some(json!({"name": "child", "parent_provider_uuid": root}))).await;
    assert_eq!(s, 200, "{v}");
});

api_test!(async fn aggregates_and_member_of(c) {
    let a = c.provider("a", None).await;
    let b = c.provider("b", None).await;
    let (agg1, agg2) = (uuid(), uuid());
    let path = format!("/resource_providers/{a}/aggregates");
    assert_eq!(c.req(Method::GET, &path, "1.0", None).await.0, 404);
    let (s, v) = c.req(Method::PUT, &path, "1.1", Some(json!([agg1]))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({"aggregates": [agg1]}));
    let v = c.get(&path, "1.19").await;
    assert_eq!(v["resource_provider_generation"], 1);
    let (s, v) = c.req(Method::PUT, &path, "1.19", Some(json!({"aggregates": [agg1, agg2], "resource_provider_generation": 0}))).await;
    assert_eq!(s, 409);
    assert_eq!(v["errors"][0]["code"], "placement.concurrent_update");
    let (s, v) = c.req(Method::PUT, &path, "1.19", Some(json!({"aggregates": [agg1, agg2], "resource_provider_generation": 1}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["resource_provider_generation"], 2);
    assert_eq!(c.req(Method::PUT, &path, "1.19", Some(json!({"aggregates": ["x"], "resource_provider_generation": 2}))).await.0, 400);
    c.placement.set_provider_aggregates(&b, std::slice::from_ref(&agg2)).await.unwrap();

    let names = |v: serde_json::Value| -> Vec<String> {
        let mut n: Vec<String> = v["resource_providers"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
        n.sort();
        n
    };
    assert_eq!(names(c.get(&format!("/resource_providers?member_of={agg1}"), "1.3").await), vec!["a"]);
    assert_eq!(names(c.get(&format!("/resource_providers?member_of=in:{agg1},{agg2}"), "1.3").await), vec!["a", "b"]);
    assert_eq!(names(c.get(&format!("/resource_providers?member_of={agg1}&member_of={agg2}"), "1.24").await), vec!["a"]);
    assert_eq!(names(c.get(&format!("/resource_providers?member_of=!{agg1}"), "1.32").await), vec!["b"]);
    assert_eq!(c.req(Method::GET, &format!("/resource_providers?member_of=!{agg1}"), "1.31", None).await.0, 400);
    assert_eq!(c.req(Method::GET, &format!("/resource_providers?member_of={agg1}"), "1.2", None).await.0, 400);
});

api_test!(async fn list_filters_on_resources_and_traits(c) {
    let a = c.provider("a", None).await;
    let b = c.provider("b", None).await;
    c.inventories(&a, json!({"VCPU": {"total": 4}, "DISK_GB": {"total": 100, "max_unit": 50}})).await;
    c.inventories(&b, json!({"VCPU": {"total": 16}})).await;
    let names = |v: serde_json::Value| -> Vec<String> {
        v["resource_providers"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(c.get("/resource_providers?resources=VCPU:8", "1.4").await), vec!["b"]);
    assert_eq!(names(c.get("/resource_providers?resources=VCPU:2,DISK_GB:50", "1.4").await), vec!["a"]);
    assert!(names(c.get("/resource_providers?resources=DISK_GB:60", "1.4").await).is_empty());
    assert_eq!(c.req(Method::GET, "/resource_providers?resources=NOPE:1", "1.4", None).await.0, 400);
    assert_eq!(c.req(Method::GET, "/resource_providers?resources=VCPU", "1.4", None).await.0, 400);
    let gen = c.get(&format!("/resource_providers/{a}"), "1.0").await["generation"].clone();
    let (s, v) = c.req(Method::PUT, &format!("/resource_providers/{a}/traits"), "1.6",
        Some(json!({"traits": ["HW_CPU_X86_AVX2"], "resource_provider_generation": gen}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(names(c.get("/resource_providers?required=HW_CPU_X86_AVX2", "1.18").await), vec!["a"]);
    assert_eq!(names(c.get("/resource_providers?required=!HW_CPU_X86_AVX2", "1.22").await), vec!["b"]);
    assert_eq!(names(c.get("/resource_providers?required=in:HW_CPU_X86_AVX2,HW_CPU_X86_SSE", "1.39").await), vec!["a"]);
    assert_eq!(c.req(Method::GET, "/resource_providers?required=CUSTOM_NOPE", "1.18", None).await.0, 400);
    assert_eq!(c.req(Method::GET, "/resource_providers?required=HW_CPU_X86_AVX2", "1.17", None).await.0, 400);
});
