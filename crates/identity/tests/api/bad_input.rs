//! Bad requests: malformed JSON, wrong shapes and types, unknown fields where Keystone refuses
//! them, over-long values, duplicates. Each answer is Keystone's error body (checked for every
//! response by `TestCloud::send`) with a message naming the problem, and a failed create
//! leaves nothing behind.

use serde_json::{json, Value};

use crate::common::{message, TestCloud};

async fn counts(c: &TestCloud) -> Vec<i64> {
    let mut v = Vec::new();
    for t in [
        "users",
        "projects",
        "groups",
        "roles",
        "domains",
        "assignments",
        "services",
        "endpoints",
        "regions",
    ] {
        v.push(c.count_rows(t).await);
    }
    v
}

api_test!(
    async fn malformed_json(c) {
        let t = c.admin_token().await;
        let before = counts(c).await;
        for path in ["/v3/users", "/v3/projects", "/v3/groups", "/v3/roles", "/v3/domains", "/v3/auth/tokens"] {
            for body in [&b"{\"user\": {\"name\": "[..], b"{nope}", b"{\"a\": 1} trailing", b"\xff\xfe"] {
                let (s, _, b) = c.req_raw("POST", path, Some(&t), "application/json", body).await;
                assert_eq!(s, 400, "{path} {:?}: {b}", String::from_utf8_lossy(body));
                assert!(message(&b).to_lowercase().contains("json") || message(&b).contains("Malformed"), "{b}");
            }
            // No body at all.
            let (s, _, b) = c.req_raw("POST", path, Some(&t), "application/json", b"").await;
            assert_eq!(s, 400, "{path}: {b}");
        }
        assert_eq!(counts(c).await, before);
    }
);

api_test!(
    async fn wrong_shapes(c) {
        let before = counts(c).await;
        // Not an object, or without the resource key.
        for body in [json!([]), json!("user"), json!(1), json!({"name": "x"}), json!({"user": "x"}), json!({"user": [1]})] {
            let b = c.admin("POST", "/v3/users", Some(body.clone()), 400).await;
            assert!(!message(&b).is_empty(), "{body}: {b}");
        }
        let b = c.admin("POST", "/v3/users", Some(json!({"name": "x"})), 400).await;
        assert!(message(&b).contains("user"), "names the missing key: {b}");
        let b = c.admin("POST", "/v3/projects", Some(json!({"project": {}})), 400).await;
        assert!(message(&b).contains("name"), "{b}");
        c.admin("POST", "/v3/projects", Some(json!({"project": {"name": null}})), 400).await;
        assert_eq!(counts(c).await, before);
    }
);

api_test!(
    async fn wrong_types_name_the_field(c) {
        let before = counts(c).await;
        let cases = [
            ("/v3/users", json!({"user": {"name": 5}}), "name"),
            ("/v3/users", json!({"user": {"name": "u", "enabled": "yes"}}), "enabled"),
            ("/v3/users", json!({"user": {"name": "u", "password": 123}}), "password"),
            ("/v3/users", json!({"user": {"name": "u", "domain_id": 7}}), "domain_id"),
            ("/v3/users", json!({"user": {"name": "u", "default_project_id": true}}), "default_project_id"),
            ("/v3/projects", json!({"project": {"name": ["p"]}}), "name"),
            ("/v3/projects", json!({"project": {"name": "p", "enabled": 1}}), "enabled"),
            ("/v3/projects", json!({"project": {"name": "p", "description": 5}}), "description"),
            ("/v3/projects", json!({"project": {"name": "p", "tags": "a,b"}}), "tags"),
            ("/v3/projects", json!({"project": {"name": "p", "is_domain": "no"}}), "is_domain"),
            ("/v3/groups", json!({"group": {"name": {"n": 1}}}), "name"),
            ("/v3/roles", json!({"role": {"name": 1.5}}), "name"),
            ("/v3/domains", json!({"domain": {"name": "d", "enabled": "true"}}), "enabled"),
            ("/v3/regions", json!({"region": {"description": 1}}), "description"),
            ("/v3/services", json!({"service": {"type": "t", "name": 1}}), "name"),
        ];
        for (path, body, field) in cases {
            let b = c.admin("POST", path, Some(body.clone()), 400).await;
            assert!(message(&b).contains(field), "{path} {body}: message names '{field}': {b}");
        }
        // Updates are validated the same way.
        let u = c.create_user("typed", "default").await;
        let b = c.admin("PATCH", &format!("/v3/users/{}", u.id), Some(json!({"user": {"enabled": "no"}})), 400).await;
        assert!(message(&b).contains("enabled"), "{b}");
        let b = c.admin("PATCH", &format!("/v3/users/{}", u.id), Some(json!({"user": {"name": ""}})), 400).await;
        assert!(message(&b).contains("name"), "{b}");
        let after = counts(c).await;
        assert_eq!(after[0], before[0] + 1, "only the one good user");
        assert_eq!(after[1..], before[1..]);
        // The failed update changed nothing.
        let b = c.admin("GET", &format!("/v3/users/{}", u.id), None, 200).await;
        assert_eq!(b["user"]["enabled"], true);
        assert_eq!(b["user"]["name"], "typed");
    }
);

api_test!(
    async fn names_too_long_or_blank(c) {
        let before = counts(c).await;
        let cases = [
            ("/v3/users", "user", 255),
            ("/v3/projects", "project", 64),
            ("/v3/groups", "group", 64),
            ("/v3/roles", "role", 255),
            ("/v3/domains", "domain", 64),
        ];
        for (path, key, max) in cases {
            let b = c.admin("POST", path, Some(json!({ key: {"name": "n".repeat(max + 1)} })), 400).await;
            assert!(message(&b).contains("name"), "{path}: {b}");
            let b = c.admin("POST", path, Some(json!({ key: {"name": "   "} })), 400).await;
            assert!(message(&b).contains("name"), "{path}: {b}");
            c.admin("POST", path, Some(json!({ key: {"name": ""} })), 400).await;
        }
        assert_eq!(counts(c).await, before);
        // The longest allowed name is fine.
        for (path, key, max) in cases {
            c.admin("POST", path, Some(json!({ key: {"name": "n".repeat(max)} })), 201).await;
        }
        // A multi-byte name is measured in characters.
        c.admin("POST", "/v3/projects", Some(json!({"project": {"name": "é".repeat(64)}})), 201).await;
        // Over-long passwords.
        let b = c
            .admin("POST", "/v3/users", Some(json!({"user": {"name": "pw", "password": "p".repeat(4097)}})), 400)
            .await;
        assert!(message(&b).contains("password"), "{b}");
        assert_eq!(c.admin("GET", "/v3/users?name=pw", None, 200).await["users"], json!([]));
    }
);

api_test!(
    async fn read_only_attributes(c) {
        let b = c.admin("POST", "/v3/users", Some(json!({"user": {"name": "x", "id": "chosen"}})), 400).await;
        assert!(message(&b).contains("id"), "{b}");
        c.admin("POST", "/v3/projects", Some(json!({"project": {"name": "x", "id": "chosen"}})), 400).await;
        c.admin("GET", "/v3/users/chosen", None, 404).await;
        c.admin("GET", "/v3/projects/chosen", None, 404).await;
    }
);

api_test!(
    async fn duplicates_conflict_and_leave_one(c) {
        let cases = [
            ("/v3/users", json!({"user": {"name": "twin", "domain_id": "default"}}), "user"),
            ("/v3/projects", json!({"project": {"name": "twin", "domain_id": "default"}}), "project"),
            ("/v3/groups", json!({"group": {"name": "twin", "domain_id": "default"}}), "group"),
            ("/v3/roles", json!({"role": {"name": "twin"}}), "role"),
            ("/v3/domains", json!({"domain": {"name": "twin"}}), "domain"),
        ];
        for (path, body, kind) in cases {
            c.admin("POST", path, Some(body.clone()), 201).await;
            let b = c.admin("POST", path, Some(body.clone()), 409).await;
            let m = message(&b);
            assert!(m.starts_with(&format!("Conflict occurred attempting to store {kind}")), "{m}");
            assert!(m.contains("twin"), "{m}");
            let plural = format!("{kind}s");
            let list = c.admin("GET", &format!("{path}?name=twin"), None, 200).await;
            assert_eq!(list[plural.as_str()].as_array().unwrap().len(), 1, "{path}: {list}");
        }
    }
);

api_test!(
    async fn malformed_auth_requests(c) {
        let cases: [(Value, u16); 9] = [
            (json!({}), 400),
            (json!({"auth": {}}), 400),
            (json!({"auth": {"identity": {}}}), 400),
            (json!({"auth": {"identity": {"methods": "password"}}}), 400),
            (json!({"auth": {"identity": {"methods": []}}}), 400),
            (json!({"auth": {"identity": {"methods": ["password"]}}}), 400),
            (json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "x"}}}}}), 400),
            (json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": 5, "password": "x"}}}}}), 400),
            (
                json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": "x", "password": "y"}}},
                                "scope": {"project": {"name": "admin"}}}}),
                400,
            ),
        ];
        for (body, status) in cases {
            let (s, h, b) = c.req("POST", "/v3/auth/tokens", None, Some(body.clone())).await;
            assert_eq!(s, status, "{body}: {b}");
            assert!(h.get("x-subject-token").is_none());
        }
    }
);

api_test!(
    async fn other_content_types_are_refused(c) {
        let t = c.admin_token().await;
        let (s, _, b) = c.req_raw("POST", "/v3/projects", Some(&t), "text/plain", br#"{"project": {"name": "p"}}"#).await;
        // Keystone answers 400; a 415 is the same refusal, in Keystone's error body.
        assert!(s == 400 || s == 415, "{s}: {b}");
        assert_eq!(c.admin("GET", "/v3/projects?name=p", None, 200).await["projects"], json!([]));
    }
);

api_test!(
    async fn oversized_body(c) {
        let t = c.admin_token().await;
        let big = format!(r#"{{"project": {{"name": "big", "description": "{}"}}}}"#, "x".repeat(2 * 1024 * 1024));
        let (s, _, b) = c.req_raw("POST", "/v3/projects", Some(&t), "application/json", big.as_bytes()).await;
        assert_eq!(s, 413, "{b}");
    }
);

api_test!(
    async fn names_are_stripped_as_keystone_does(c) {
        // Keystone strips surrounding spaces from the names of users, groups and projects.
        for (path, key) in [("/v3/users", "user"), ("/v3/groups", "group"), ("/v3/projects", "project")] {
            let b = c.admin("POST", path, Some(json!({ key: {"name": "  spaced  "} })), 201).await;
            assert_eq!(b[key]["name"], "spaced", "{path}: {b}");
            c.admin("POST", path, Some(json!({ key: {"name": "spaced"} })), 409).await;
            let id = b[key]["id"].as_str().unwrap();
            let b = c.admin("PATCH", &format!("{path}/{id}"), Some(json!({ key: {"name": " renamed "} })), 200).await;
            assert_eq!(b[key]["name"], "renamed", "{path}: {b}");
        }
    }
);
