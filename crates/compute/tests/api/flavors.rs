//! Flavors, their extra specs and access lists.

use http::Method;
use serde_json::json;

use crate::common::TestCloud;

fn ids(v: &serde_json::Value) -> Vec<String> {
    v["flavors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

api_test!(async fn default_flavors_and_views(c) {
    let m = c.tenant("member").await;
    let (s, v) = c.call(Method::GET, "/flavors", &m.token, None).await;
    assert_eq!(s, 200);
    // Sorted by flavorid as strings, like Nova.
    assert_eq!(ids(&v), ["1", "2", "3", "4", "42", "5", "84"]);
    assert_eq!(v["flavors"][0]["name"], "m1.tiny");
    assert!(v["flavors"][0].get("ram").is_none());
    assert_eq!(v["flavors"][0]["links"][0]["href"], "http://cloud.test/compute/v2.1/flavors/1");
    assert_eq!(v["flavors"][0]["links"][1]["href"], "http://cloud.test/compute/flavors/1");

    let (_, d) = c.call(Method::GET, "/flavors/detail", &m.token, None).await;
    let nano = d["flavors"].as_array().unwrap().iter().find(|f| f["id"] == "42").unwrap().clone();
    assert_eq!(nano["name"], "m1.nano");
    assert_eq!((nano["vcpus"].as_i64(), nano["ram"].as_i64(), nano["disk"].as_i64()), (Some(1), Some(128), Some(1)));
    assert_eq!(nano["swap"], "");
    assert_eq!(nano["OS-FLV-EXT-DATA:ephemeral"], 0);
    assert_eq!(nano["OS-FLV-DISABLED:disabled"], false);
    assert_eq!(nano["os-flavor-access:is_public"], true);
    assert_eq!(nano["rxtx_factor"], 1.0);
    assert!(nano.get("description").is_none());

    let (_, f) = c.nova(Method::GET, "/flavors/42", &m.token, "2.75", None).await;
    assert_eq!(f["flavor"]["swap"], 0);
    assert_eq!(f["flavor"]["description"], serde_json::Value::Null);
    assert_eq!(f["flavor"]["extra_specs"], json!({}));
    let (_, f) = c.nova(Method::GET, "/flavors/42", &m.token, "2.60", None).await;
    assert!(f["flavor"].get("extra_specs").is_none());
    assert!(f["flavor"].get("description").is_some());

    let (s, e) = c.call(Method::GET, "/flavors/nope", &m.token, None).await;
    assert_eq!(s, 404);
    assert_eq!(TestCloud::message(&e), "Flavor nope could not be found.");
});

api_test!(async fn list_filters_sort_and_pages(c) {
    let m = c.tenant("member").await;
    let (_, v) = c.call(Method::GET, "/flavors?minRam=4096&minDisk=50", &m.token, None).await;
    assert_eq!(ids(&v), ["4", "5"]);
    let (_, v) = c.call(Method::GET, "/flavors?sort_key=memory_mb&sort_dir=desc", &m.token, None).await;
    assert_eq!(ids(&v), ["5", "4", "3", "2", "1", "84", "42"]);
    let (_, v) = c.call(Method::GET, "/flavors?limit=2", &m.token, None).await;
    assert_eq!(ids(&v), ["1", "2"]);
    assert_eq!(v["flavors_links"][0]["href"], "http://cloud.test/compute/v2.1/flavors?limit=2&marker=2");
    let (_, v) = c.call(Method::GET, "/flavors?limit=2&marker=2", &m.token, None).await;
    assert_eq!(ids(&v), ["3", "4"]);
    for bad in ["minRam=x", "sort_key=bogus", "sort_dir=up", "marker=zzz", "limit=-1"] {
        let (s, _) = c.call(Method::GET, &format!("/flavors?{bad}"), &m.token, None).await;
        assert_eq!(s, 400, "{bad}");
    }
    // Unknown query parameters are refused from 2.75.
    assert_eq!(c.call(Method::GET, "/flavors?foo=1", &m.token, None).await.0, 200);
    assert_eq!(c.nova(Method::GET, "/flavors?foo=1", &m.token, "2.75", None).await.0, 400);
});

api_test!(async fn create_validate_and_delete(c) {
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let body = json!({"flavor": {"name": "f.test", "ram": 256, "vcpus": 2, "disk": 5, "id": "ft",
        "swap": 128, "OS-FLV-EXT-DATA:ephemeral": 3, "rxtx_factor": 2.5}});
    let (s, e) = c.call(Method::POST, "/flavors", &m.token, Some(body.clone())).await;
    assert_eq!(s, 403);
    assert!(TestCloud::message(&e).contains("os_compute_api:os-flavor-manage:create"));
    let (s, v) = c.call(Method::POST, "/flavors", &admin, Some(body.clone())).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["flavor"]["id"], "ft");
    assert_eq!(v["flavor"]["swap"], 128);
    assert_eq!(v["flavor"]["OS-FLV-EXT-DATA:ephemeral"], 3);
    assert_eq!(v["flavor"]["rxtx_factor"], 2.5);
    let (s, e) = c.call(Method::POST, "/flavors", &admin, Some(body)).await;
    assert_eq!(s, 409);
    assert_eq!(TestCloud::message(&e), "Flavor with ID ft already exists.");
    let (s, e) = c.call(Method::POST, "/flavors", &admin,
        Some(json!({"flavor": {"name": "f.test", "ram": 1, "vcpus": 1, "disk": 0}}))).await;
    assert_eq!(s, 409);
    assert_eq!(TestCloud::message(&e), "Flavor with name f.test already exists.");

    // Generated ids are UUIDs; numbers as strings are accepted.
    let (s, v) = c.call(Method::POST, "/flavors", &admin,
        Some(json!({"flavor": {"name": "auto", "ram": "64", "vcpus": "1", "disk": "0"}}))).await;
    assert_eq!(s, 200);
    assert!(uuid::Uuid::parse_str(v["flavor"]["id"].as_str().unwrap()).is_ok());

    let cases = [
        (json!({"flavor": {"ram": 1, "vcpus": 1, "disk": 1}}), "'name' is a required property"),
        (json!({"flavor": {"name": "x", "ram": 0, "vcpus": 1, "disk": 1}}),
         "Invalid input for field/attribute ram. Value: 0. 0 is less than the minimum of 1"),
        (json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": -1}}),
         "-1 is less than the minimum of 0"),
        (json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "id": "bad/id"}}),
         "does not match"),
        (json!({"flavor": {"name": "x".repeat(256), "ram": 1, "vcpus": 1, "disk": 1}}), "is too long"),
        (json!({"flavor": {"name": " x", "ram": 1, "vcpus": 1, "disk": 1}}), "Can not start or end with whitespace"),
        (json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "rxtx_factor": 0}}), "minimum of 0"),
        (json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "bogus": 1}}),
         "Additional properties are not allowed ('bogus' was unexpected)"),
        (json!({"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1, "description": "d"}}),
         "Additional properties are not allowed ('description' was unexpected)"),
        (json!({"flavors": {}}), "'flavor' is a required property"),
    ];
    for (body, msg) in cases {
        let (s, e) = c.call(Method::POST, "/flavors", &admin, Some(body.clone())).await;
        assert_eq!(s, 400, "{body}");
        assert!(TestCloud::message(&e).contains(msg), "{body}: {e}");
    }

    // Description from 2.55, updatable.
    let (s, v) = c.nova(Method::POST, "/flavors", &admin, "2.55",
        Some(json!({"flavor": {"name": "described", "ram": 1, "vcpus": 1, "disk": 0, "id": "d1", "description": "small"}}))).await;
    assert_eq!(s, 200);
    assert_eq!(v["flavor"]["description"], "small");
    let upd = Some(json!({"flavor": {"description": "tiny"}}));
    assert_eq!(c.call(Method::PUT, "/flavors/d1", &admin, upd.clone()).await.0, 404);
    assert_eq!(c.nova(Method::PUT, "/flavors/d1", &m.token, "2.55", upd.clone()).await.0, 403);
    let (s, v) = c.nova(Method::PUT, "/flavors/d1", &admin, "2.55", upd).await;
    assert_eq!(s, 200);
    assert_eq!(v["flavor"]["description"], "tiny");
    assert_eq!(c.nova(Method::PUT, "/flavors/d1", &admin, "2.55", Some(json!({"flavor": {}}))).await.0, 400);

    assert_eq!(c.call(Method::DELETE, "/flavors/ft", &m.token, None).await.0, 403);
    assert_eq!(c.call(Method::DELETE, "/flavors/ft", &admin, None).await.0, 202);
    assert_eq!(c.call(Method::DELETE, "/flavors/ft", &admin, None).await.0, 404);
});

api_test!(async fn private_flavors_and_access(c) {
    let admin = c.admin().await;
    let a = c.tenant("member").await;
    let b = c.tenant("member").await;
    let (s, _) = c.call(Method::POST, "/flavors", &admin,
        Some(json!({"flavor": {"name": "priv", "ram": 64, "vcpus": 1, "disk": 0, "id": "p1",
            "os-flavor-access:is_public": false}}))).await;
    assert_eq!(s, 200);
    assert_eq!(c.call(Method::GET, "/flavors/p1", &a.token, None).await.0, 404);
    assert!(!ids(&c.call(Method::GET, "/flavors", &a.token, None).await.1).contains(&"p1".to_string()));
    // Admins list private flavors with is_public=false or None.
    assert_eq!(ids(&c.call(Method::GET, "/flavors?is_public=false", &admin, None).await.1), ["p1"]);
    assert_eq!(ids(&c.call(Method::GET, "/flavors?is_public=none", &admin, None).await.1).len(), 8);
    assert_eq!(c.call(Method::GET, "/flavors?is_public=maybe", &admin, None).await.0, 400);

    let add = |p: &str| Some(json!({"addTenantAccess": {"tenant": p}}));
    assert_eq!(c.call(Method::POST, "/flavors/p1/action", &a.token, add(&a.project_id)).await.0, 403);
    let (s, v) = c.call(Method::POST, "/flavors/p1/action", &admin, add(&a.project_id)).await;
    assert_eq!(s, 200);
    assert_eq!(v["flavor_access"], json!([{"flavor_id": "p1", "tenant_id": a.project_id}]));
    assert_eq!(c.call(Method::POST, "/flavors/p1/action", &admin, add(&a.project_id)).await.0, 409);
    let (s, e) = c.call(Method::POST, "/flavors/p1/action", &admin, add("no-such-project")).await;
    assert_eq!(s, 400);
    assert_eq!(TestCloud::message(&e), "Project ID no-such-project is not a valid project.");
    assert_eq!(c.nova(Method::POST, "/flavors/1/action", &admin, "2.7", add(&a.project_id)).await.0, 409);

    assert_eq!(c.call(Method::GET, "/flavors/p1", &a.token, None).await.0, 200);
    assert!(ids(&c.call(Method::GET, "/flavors", &a.token, None).await.1).contains(&"p1".to_string()));
    assert_eq!(c.call(Method::GET, "/flavors/p1", &b.token, None).await.0, 404);
    // get_visible, the servers' lookup, agrees.
    let mut conn = c.db.pool.acquire().await.unwrap();
    use ferrostack_compute::db::flavors::get_visible;
    assert!(get_visible(&mut conn, "p1", Some(&a.project_id)).await.unwrap().is_some());
    assert!(get_visible(&mut conn, "p1", Some(&b.project_id)).await.unwrap().is_none());
    assert!(get_visible(&mut conn, "p1", None).await.unwrap().is_some());
    drop(conn);

    let (s, v) = c.call(Method::GET, "/flavors/p1/os-flavor-access", &admin, None).await;
    assert_eq!((s.as_u16(), v["flavor_access"].as_array().unwrap().len()), (200, 1));
    assert_eq!(c.call(Method::GET, "/flavors/p1/os-flavor-access", &a.token, None).await.0, 403);
    assert_eq!(c.call(Method::GET, "/flavors/1/os-flavor-access", &admin, None).await.0, 404);

    let remove = |p: &str| Some(json!({"removeTenantAccess": {"tenant": p}}));
    let (s, v) = c.call(Method::POST, "/flavors/p1/action", &admin, remove(&a.project_id)).await;
    assert_eq!((s.as_u16(), v["flavor_access"].clone()), (200, json!([])));
    assert_eq!(c.call(Method::POST, "/flavors/p1/action", &admin, remove(&a.project_id)).await.0, 404);
    assert_eq!(c.call(Method::GET, "/flavors/p1", &a.token, None).await.0, 404);
    assert_eq!(c.call(Method::POST, "/flavors/p1/action", &admin, Some(json!({"bogus": {}}))).await.0, 400);
});

api_test!(async fn extra_specs(c) {
    let admin = c.admin().await;
    let m = c.tenant("member").await;
    let base = "/flavors/1/os-extra_specs";
    let specs = Some(json!({"extra_specs": {"hw:cpu_policy": "dedicated", "quota:vif": 5}}));
    assert_eq!(c.call(Method::POST, base, &m.token, specs.clone()).await.0, 403);
    let (s, v) = c.call(Method::POST, base, &admin, specs).await;
    assert_eq!(s, 200);
    assert_eq!(v["extra_specs"], json!({"hw:cpu_policy": "dedicated", "quota:vif": "5"}));
    let (s, v) = c.call(Method::GET, base, &m.token, None).await;
    assert_eq!((s.as_u16(), v["extra_specs"]["quota:vif"].as_str()), (200, Some("5")));
    let (s, v) = c.call(Method::GET, &format!("{base}/hw:cpu_policy"), &m.token, None).await;
    assert_eq!((s.as_u16(), v), (200, json!({"hw:cpu_policy": "dedicated"})));
    let (_, f) = c.nova(Method::GET, "/flavors/1", &m.token, "2.61", None).await;
    assert_eq!(f["flavor"]["extra_specs"]["hw:cpu_policy"], "dedicated");

    let (s, v) = c.call(Method::PUT, &format!("{base}/hw:cpu_policy"), &admin, Some(json!({"hw:cpu_policy": "shared"}))).await;
    assert_eq!((s.as_u16(), v), (200, json!({"hw:cpu_policy": "shared"})));
    let (s, e) = c.call(Method::PUT, &format!("{base}/hw:cpu_policy"), &admin, Some(json!({"other": "x"}))).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (400, "Request body and URI mismatch".to_string()));
    assert_eq!(c.call(Method::PUT, &format!("{base}/a"), &admin, Some(json!({"a": "1", "b": "2"}))).await.0, 400);
    assert_eq!(c.call(Method::POST, base, &admin, Some(json!({"extra_specs": {"bad/key": "x"}}))).await.0, 400);
    assert_eq!(c.call(Method::POST, base, &admin, Some(json!({"extra_specs": {"k": "x".repeat(256)}}))).await.0, 400);
    assert_eq!(c.call(Method::POST, "/flavors/none/os-extra_specs", &admin, Some(json!({"extra_specs": {}}))).await.0, 404);

    assert_eq!(c.call(Method::DELETE, &format!("{base}/quota:vif"), &m.token, None).await.0, 403);
    assert_eq!(c.call(Method::DELETE, &format!("{base}/quota:vif"), &admin, None).await.0, 200);
    let (s, e) = c.call(Method::GET, &format!("{base}/quota:vif"), &m.token, None).await;
    assert_eq!((s.as_u16(), TestCloud::message(&e)), (404, "Flavor 1 has no extra specs with key quota:vif.".to_string()));
    assert_eq!(c.call(Method::DELETE, &format!("{base}/quota:vif"), &admin, None).await.0, 404);
});

api_test!(async fn default_flavors_are_created_once(c) {
    let admin = c.admin().await;
    assert_eq!(c.call(Method::DELETE, "/flavors/42", &admin, None).await.0, 202);
    ferrostack_compute::db::flavors::ensure_default_flavors(&c.db).await.unwrap();
    assert_eq!(c.call(Method::GET, "/flavors/42", &admin, None).await.0, 404);
});
