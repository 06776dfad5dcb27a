//! Unified limits: `/v3/registered_limits`, `/v3/limits`, `/v3/limits/model`.

use serde_json::{json, Value};

use crate::common::{ids, message, TestCloud, REGION, V3};

async fn service(c: &TestCloud, t: &str) -> String {
    let b = c
        .admin(
            "POST",
            "/v3/services",
            Some(json!({"service": {"type": t, "name": t}})),
            201,
        )
        .await;
    b["service"]["id"].as_str().unwrap().to_string()
}

async fn registered(c: &TestCloud, sid: &str, resource: &str, default: i64) -> String {
    let b = c
        .admin(
            "POST",
            "/v3/registered_limits",
            Some(json!({"registered_limits": [{"service_id": sid, "resource_name": resource, "default_limit": default}]})),
            201,
        )
        .await;
    b["registered_limits"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

api_test!(
    async fn model_is_flat(c) {
        let (_, _, t) = c.project_user("m", "reader").await;
        let b = c.expect("GET", "/v3/limits/model", Some(&t), None, 200).await;
        assert_eq!(b["model"]["name"], "flat");
        assert!(b["model"]["description"].is_string());
    }
);

api_test!(
    async fn registered_limits(c) {
        let sid = service(c, "compute").await;
        let b = c
            .admin(
                "POST",
                "/v3/registered_limits",
                Some(json!({"registered_limits": [
                    {"service_id": sid, "resource_name": "cores", "default_limit": 20, "description": "vCPUs"},
                    {"service_id": sid, "region_id": REGION, "resource_name": "ram_mb", "default_limit": 51200},
                ]})),
                201,
            )
            .await;
        let list = b["registered_limits"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        let cores = &list[0];
        let id = cores["id"].as_str().unwrap().to_string();
        assert_eq!(cores["service_id"], sid.as_str());
        assert_eq!(cores["resource_name"], "cores");
        assert_eq!(cores["default_limit"], 20);
        assert_eq!(cores["description"], "vCPUs");
        assert_eq!(cores["region_id"], Value::Null);
        assert_eq!(cores["links"]["self"], format!("{V3}/registered_limits/{id}"));
        assert_eq!(list[1]["region_id"], REGION);
        assert_eq!(c.admin("GET", &format!("/v3/registered_limits/{id}"), None, 200).await["registered_limit"], *cores);
        let b = c.admin("GET", "/v3/registered_limits", None, 200).await;
        assert_eq!(ids(&b, "registered_limits").len(), 2);
        let b = c.admin("GET", "/v3/registered_limits?resource_name=ram_mb", None, 200).await;
        assert_eq!(b["registered_limits"][0]["resource_name"], "ram_mb");
        let b = c.admin("GET", &format!("/v3/registered_limits?region_id={REGION}"), None, 200).await;
        assert_eq!(ids(&b, "registered_limits").len(), 1);
        // Anyone may read them.
        let (_, _, t) = c.project_user("r", "reader").await;
        c.expect("GET", "/v3/registered_limits", Some(&t), None, 200).await;
        let (s, _, _) = c
            .req("PATCH", &format!("/v3/registered_limits/{id}"), Some(&t), Some(json!({"registered_limit": {"default_limit": 1}})))
            .await;
        assert_eq!(s, 403);
        // Update.
        let b = c
            .admin("PATCH", &format!("/v3/registered_limits/{id}"), Some(json!({"registered_limit": {"default_limit": 40}})), 200)
            .await;
        assert_eq!(b["registered_limit"]["default_limit"], 40);
        assert_eq!(b["registered_limit"]["description"], "vCPUs");
        // Duplicate.
        let b = c
            .admin(
                "POST",
                "/v3/registered_limits",
                Some(json!({"registered_limits": [{"service_id": sid, "resource_name": "cores", "default_limit": 1}]})),
                409,
            )
            .await;
        assert!(message(&b).contains("cores"), "{b}");
        c.admin("DELETE", &format!("/v3/registered_limits/{id}"), None, 204).await;
        c.admin("GET", &format!("/v3/registered_limits/{id}"), None, 404).await;
        c.admin("DELETE", &format!("/v3/registered_limits/{id}"), None, 404).await;
    }
);

api_test!(
    async fn registered_limit_validation_and_atomicity(c) {
        let sid = service(c, "compute").await;
        let post = |body: Value| async move { c.admin("POST", "/v3/registered_limits", Some(body), 400).await };
        let b = post(json!({"registered_limits": [{"service_id": sid, "resource_name": "x", "default_limit": 1, "colour": "red"}]})).await;
        assert!(message(&b).contains("colour"), "unknown fields are refused: {b}");
        post(json!({"registered_limits": [{"service_id": sid, "resource_name": "x"}]})).await;
        post(json!({"registered_limits": [{"service_id": sid, "resource_name": "x", "default_limit": -2}]})).await;
        post(json!({"registered_limits": [{"service_id": sid, "resource_name": "x", "default_limit": "5"}]})).await;
        post(json!({"registered_limits": [{"service_id": sid, "resource_name": "x", "default_limit": 2147483648i64}]})).await;
        post(json!({"registered_limits": [{"service_id": sid, "resource_name": "x", "default_limit": 1.5}]})).await;
        post(json!({"registered_limits": [{"service_id": sid, "resource_name": "", "default_limit": 1}]})).await;
        post(json!({"registered_limits": []})).await;
        post(json!({"registered_limits": {"service_id": sid}})).await;
        let b = post(json!({"registered_limits": [{"service_id": "nope", "resource_name": "x", "default_limit": 1}]})).await;
        assert!(message(&b).contains("service"), "{b}");
        let b = post(json!({"registered_limits": [{"service_id": sid, "region_id": "Nowhere", "resource_name": "x", "default_limit": 1}]})).await;
        assert!(message(&b).contains("region"), "{b}");
        // A batch with one bad entry stores nothing.
        post(json!({"registered_limits": [
            {"service_id": sid, "resource_name": "good", "default_limit": 1},
            {"service_id": sid, "resource_name": "bad", "default_limit": -7},
        ]}))
        .await;
        registered(c, &sid, "taken", 1).await;
        c.admin(
            "POST",
            "/v3/registered_limits",
            Some(json!({"registered_limits": [
                {"service_id": sid, "resource_name": "fresh", "default_limit": 1},
                {"service_id": sid, "resource_name": "taken", "default_limit": 1},
            ]})),
            409,
        )
        .await;
        let b = c.admin("GET", "/v3/registered_limits", None, 200).await;
        let mut got: Vec<&str> =
            b["registered_limits"].as_array().unwrap().iter().map(|l| l["resource_name"].as_str().unwrap()).collect();
        got.sort();
        assert_eq!(got, ["taken"], "{b}");
        assert_eq!(c.count_rows("registered_limits").await, 1);
    }
);

api_test!(
    async fn project_and_domain_limits(c) {
        let sid = service(c, "compute").await;
        let rid = registered(c, &sid, "cores", 20).await;
        let d = c.create_domain("ld").await;
        let (_, p, t) = c.project_user("lim", "reader").await;
        let other = c.create_project("other", "default").await;
        let b = c
            .admin(
                "POST",
                "/v3/limits",
                Some(json!({"limits": [
                    {"project_id": p, "service_id": sid, "resource_name": "cores", "resource_limit": 5},
                    {"project_id": other, "service_id": sid, "resource_name": "cores", "resource_limit": 7},
                    {"domain_id": d, "service_id": sid, "resource_name": "cores", "resource_limit": 50, "description": "dom"},
                ]})),
                201,
            )
            .await;
        let list = b["limits"].as_array().unwrap();
        assert_eq!(list.len(), 3);
        let mine = &list[0];
        let id = mine["id"].as_str().unwrap().to_string();
        assert_eq!(mine["project_id"], p.as_str());
        assert_eq!(mine["domain_id"], Value::Null);
        assert_eq!(mine["service_id"], sid.as_str());
        assert_eq!(mine["resource_limit"], 5);
        assert_eq!(mine["links"]["self"], format!("{V3}/limits/{id}"));
        assert_eq!(list[2]["domain_id"], d.as_str());
        assert_eq!(list[2]["project_id"], Value::Null);
        assert_eq!(c.admin("GET", &format!("/v3/limits/{id}"), None, 200).await["limit"], *mine);
        let b = c.admin("GET", "/v3/limits", None, 200).await;
        assert_eq!(ids(&b, "limits").len(), 3);
        let b = c.admin("GET", &format!("/v3/limits?project_id={other}"), None, 200).await;
        assert_eq!(b["limits"][0]["resource_limit"], 7);
        let b = c.admin("GET", &format!("/v3/limits?domain_id={d}"), None, 200).await;
        assert_eq!(b["limits"][0]["resource_limit"], 50);
        // A project reader sees its own project's limits only.
        let b = c.expect("GET", "/v3/limits", Some(&t), None, 200).await;
        assert_eq!(ids(&b, "limits"), vec![id.clone()]);
        c.expect("GET", &format!("/v3/limits/{id}"), Some(&t), None, 200).await;
        let other_id = list[1]["id"].as_str().unwrap();
        let (s, _, _) = c.req("GET", &format!("/v3/limits/{other_id}"), Some(&t), None).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("PATCH", &format!("/v3/limits/{id}"), Some(&t), Some(json!({"limit": {"resource_limit": 99}}))).await;
        assert_eq!(s, 403);
        // Update.
        let b = c.admin("PATCH", &format!("/v3/limits/{id}"), Some(json!({"limit": {"resource_limit": 9, "description": "more"}})), 200).await;
        assert_eq!(b["limit"]["resource_limit"], 9);
        assert_eq!(b["limit"]["description"], "more");
        let b = c.admin("PATCH", &format!("/v3/limits/{id}"), Some(json!({"limit": {"project_id": other}})), 400).await;
        assert!(message(&b).contains("project_id"), "{b}");
        // A registered limit in use cannot be deleted.
        c.admin("DELETE", &format!("/v3/registered_limits/{rid}"), None, 403).await;
        c.admin("DELETE", &format!("/v3/limits/{id}"), None, 204).await;
        c.admin("GET", &format!("/v3/limits/{id}"), None, 404).await;
        // Duplicate.
        c.admin(
            "POST",
            "/v3/limits",
            Some(json!({"limits": [{"project_id": other, "service_id": sid, "resource_name": "cores", "resource_limit": 1}]})),
            409,
        )
        .await;
    }
);

api_test!(
    async fn limit_validation(c) {
        let sid = service(c, "compute").await;
        registered(c, &sid, "cores", 20).await;
        let p = c.create_project("lv", "default").await;
        let post = |limit: Value, status: u16| async move {
            c.admin("POST", "/v3/limits", Some(json!({ "limits": [limit] })), status).await
        };
        let b = post(json!({"project_id": p, "service_id": sid, "resource_name": "cores", "resource_limit": 1, "x": 1}), 400).await;
        assert!(message(&b).contains("'x'"), "{b}");
        post(json!({"service_id": sid, "resource_name": "cores", "resource_limit": 1}), 400).await;
        post(json!({"project_id": p, "domain_id": "default", "service_id": sid, "resource_name": "cores", "resource_limit": 1}), 400).await;
        post(json!({"project_id": p, "service_id": sid, "resource_name": "cores", "resource_limit": -2}), 400).await;
        post(json!({"project_id": p, "service_id": sid, "resource_name": "cores"}), 400).await;
        // References that do not exist: validation errors, as in Keystone.
        let b = post(json!({"project_id": "nope", "service_id": sid, "resource_name": "cores", "resource_limit": 1}), 400).await;
        assert!(message(&b).contains("project"), "{b}");
        let b = post(json!({"domain_id": "nope", "service_id": sid, "resource_name": "cores", "resource_limit": 1}), 400).await;
        assert!(message(&b).contains("domain"), "{b}");
        post(json!({"project_id": p, "service_id": "nope", "resource_name": "cores", "resource_limit": 1}), 400).await;
        // No registered limit for it: 403 (Keystone's NoLimitReference).
        let b = post(json!({"project_id": p, "service_id": sid, "resource_name": "ram", "resource_limit": 1}), 403).await;
        assert!(message(&b).contains("registered limit"), "{b}");
        assert_eq!(c.count_rows("limits").await, 0, "nothing was stored");
    }
);

api_test!(
    async fn deleting_a_project_deletes_its_limits(c) {
        let sid = service(c, "compute").await;
        registered(c, &sid, "cores", 20).await;
        let p = c.create_project("short-lived", "default").await;
        let b = c
            .admin(
                "POST",
                "/v3/limits",
                Some(json!({"limits": [{"project_id": p, "service_id": sid, "resource_name": "cores", "resource_limit": 3}]})),
                201,
            )
            .await;
        let lid = b["limits"][0]["id"].as_str().unwrap().to_string();
        c.admin("DELETE", &format!("/v3/projects/{p}"), None, 204).await;
        c.admin("GET", &format!("/v3/limits/{lid}"), None, 404).await;
        let b = c.admin("GET", &format!("/v3/limits?project_id={p}"), None, 200).await;
        assert_eq!(b["limits"], json!([]));
    }
);
