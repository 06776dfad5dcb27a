//! `/v3/auth/*`: issuing tokens (password, token and application_credential methods; unscoped,
//! project, domain and system scope), validating, checking and revoking them, and the
//! catalog/projects/domains/system a token can reach.

use ferrostack_identity::token::{payload, Payload, Scope};
use serde_json::{json, Value};

use crate::common::{message, subject_token, On, ADMIN_PASSWORD, PUBLIC_URL, REGION};

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    assert!(s.ends_with('Z'), "UTC with Z: {s}");
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn role_names(token: &Value) -> Vec<String> {
    let mut v: Vec<String> = token["roles"]
        .as_array()
        .unwrap_or_else(|| panic!("roles: {token}"))
        .iter()
        .map(|r| {
            assert!(r["id"].is_string(), "{r}");
            r["name"].as_str().unwrap().to_string()
        })
        .collect();
    v.sort();
    v
}

fn check_audit_id(a: &Value) {
    let s = a.as_str().unwrap();
    assert_eq!(
        s.len(),
        22,
        "audit ids are 22 urlsafe base64 characters: {s}"
    );
    assert!(
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{s}"
    );
}

/// The identity service, as the catalog of a scoped token lists it.
fn check_catalog(catalog: &Value) {
    let services = catalog
        .as_array()
        .unwrap_or_else(|| panic!("catalog: {catalog}"));
    let identity = services
        .iter()
        .find(|s| s["type"] == "identity")
        .unwrap_or_else(|| panic!("identity in the catalog: {catalog}"));
    assert_eq!(identity["name"], "keystone");
    assert!(identity["id"].is_string());
    let eps = identity["endpoints"].as_array().unwrap();
    let mut ifaces: Vec<&str> = eps
        .iter()
        .map(|e| e["interface"].as_str().unwrap())
        .collect();
    ifaces.sort();
    assert_eq!(ifaces, ["admin", "internal", "public"], "{identity}");
    for e in eps {
        assert_eq!(e["url"], format!("{PUBLIC_URL}/identity"), "{e}");
        assert_eq!(e["region"], REGION, "{e}");
        assert_eq!(e["region_id"], REGION, "{e}");
        assert!(e["id"].is_string(), "{e}");
    }
}

api_test!(
    async fn password_project_scoped_token(c) {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
        let before = chrono::Utc::now() - chrono::Duration::seconds(2);
        let (s, h, b) = c.req("POST", "/v3/auth/tokens", None, Some(body)).await;
        assert_eq!(s, 201, "{b}");
        let token = subject_token(&h);
        assert!(!token.is_empty() && token.len() < 255, "{token}");
        assert_eq!(h["content-type"], "application/json");
        let t = &b["token"];
        assert_eq!(t["methods"], json!(["password"]));
        assert_eq!(t["user"]["id"], c.admin_user_id());
        assert_eq!(t["user"]["name"], "admin");
        assert_eq!(t["user"]["domain"], json!({"id": "default", "name": "Default"}));
        assert!(t["user"].as_object().unwrap().contains_key("password_expires_at"), "{t}");
        assert_eq!(t["project"]["id"], c.admin_project_id());
        assert_eq!(t["project"]["name"], "admin");
        assert_eq!(t["project"]["domain"], json!({"id": "default", "name": "Default"}));
        assert_eq!(t["is_domain"], false);
        // admin implies manager, member and reader.
        assert_eq!(role_names(t), ["admin", "manager", "member", "reader"]);
        let issued = time(&t["issued_at"]);
        let expires = time(&t["expires_at"]);
        assert!(issued >= before && issued <= chrono::Utc::now(), "{t}");
        let life = (expires - issued).num_seconds();
        assert!((3595..=3601).contains(&life), "one hour: {life}");
        let audit = t["audit_ids"].as_array().unwrap();
        assert_eq!(audit.len(), 1, "{t}");
        check_audit_id(&audit[0]);
        check_catalog(&t["catalog"]);
        assert!(t.get("domain").is_none() && t.get("system").is_none(), "{t}");
    }
);

api_test!(
    async fn each_token_gets_its_own_audit_id(c) {
        let a = c.req("POST", "/v3/auth/tokens", None, Some(crate::common::password_body(c.admin_user_id(), ADMIN_PASSWORD, Value::Null))).await;
        let b = c.req("POST", "/v3/auth/tokens", None, Some(crate::common::password_body(c.admin_user_id(), ADMIN_PASSWORD, Value::Null))).await;
        assert_ne!(a.2["token"]["audit_ids"][0], b.2["token"]["audit_ids"][0]);
        assert_ne!(subject_token(&a.1), subject_token(&b.1));
    }
);

api_test!(
    async fn unscoped_token_has_no_roles_or_catalog(c) {
        let u = c.create_user("alice", "default").await;
        let (s, h, b) = c.password_auth(&u.id, &u.password, Value::Null).await;
        assert_eq!(s, 201, "{b}");
        let t = &b["token"];
        assert_eq!(t["user"]["id"], u.id.as_str());
        assert_eq!(t["user"]["name"], "alice");
        for absent in ["project", "domain", "system", "roles", "catalog"] {
            assert!(t.get(absent).is_none(), "an unscoped token has no {absent}: {t}");
        }
        // It validates, and it can be used (e.g. for /v3/auth/projects).
        let tok = subject_token(&h);
        c.expect("GET", "/v3/auth/projects", Some(&tok), None, 200).await;
    }
);

api_test!(
    async fn default_project_scope_and_explicit_unscoped(c) {
        let p = c.create_project("home", "default").await;
        let u = c.create_user_with_role("bob", "default", "member", On::Project(&p)).await;
        c.admin("PATCH", &format!("/v3/users/{}", u.id), Some(json!({"user": {"default_project_id": p}})), 200)
            .await;
        // No scope: the default project.
        let (s, _, b) = c.password_auth(&u.id, &u.password, Value::Null).await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(b["token"]["project"]["id"], p.as_str());
        assert_eq!(role_names(&b["token"]), ["member", "reader"]);
        // "unscoped" overrides the default project.
        let (s, _, b) = c.password_auth(&u.id, &u.password, json!("unscoped")).await;
        assert_eq!(s, 201, "{b}");
        assert!(b["token"].get("project").is_none(), "{b}");
    }
);

api_test!(
    async fn project_scope_by_name_and_domain_name(c) {
        let d = c.create_domain("Elsewhere").await;
        let p = c.create_project("work", &d).await;
        let u = c.create_user_with_role("carol", &d, "reader", On::Project(&p)).await;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "carol", "domain": {"name": "Elsewhere"}, "password": u.password}}},
            "scope": {"project": {"name": "work", "domain": {"name": "Elsewhere"}}}}});
        let (s, _, b) = c.req("POST", "/v3/auth/tokens", None, Some(body)).await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(b["token"]["project"]["id"], p.as_str());
        assert_eq!(b["token"]["project"]["domain"], json!({"id": d, "name": "Elsewhere"}));
        assert_eq!(b["token"]["user"]["domain"], json!({"id": d, "name": "Elsewhere"}));
        assert_eq!(role_names(&b["token"]), ["reader"]);
    }
);

api_test!(
    async fn domain_scoped_token(c) {
        let d = c.create_domain("dom").await;
        let u = c.create_user_with_role("dana", &d, "admin", On::Domain(&d)).await;
        let (s, h, b) = c.password_auth(&u.id, &u.password, json!({"domain": {"id": d}})).await;
        assert_eq!(s, 201, "{b}");
        let t = &b["token"];
        assert_eq!(t["domain"], json!({"id": d, "name": "dom"}));
        assert!(t.get("project").is_none() && t.get("system").is_none(), "{t}");
        assert_eq!(role_names(t), ["admin", "manager", "member", "reader"]);
        check_catalog(&t["catalog"]);
        // By name too.
        let (s, _, b) = c.password_auth(&u.id, &u.password, json!({"domain": {"name": "dom"}})).await;
        assert_eq!(s, 201, "{b}");
        // Validation shows the same scope.
        let tok = subject_token(&h);
        let admin = c.admin_token().await;
        let (s, _, v) = c.req_with_headers("GET", "/v3/auth/tokens", Some(&admin), &[("x-subject-token", &tok)], None).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["token"]["domain"]["id"], d.as_str());
    }
);

api_test!(
    async fn system_scoped_token(c) {
        let (s, _, b) = c.password_auth(c.admin_user_id(), ADMIN_PASSWORD, json!({"system": {"all": true}})).await;
        assert_eq!(s, 201, "{b}");
        let t = &b["token"];
        assert_eq!(t["system"], json!({"all": true}));
        assert!(t.get("project").is_none() && t.get("domain").is_none(), "{t}");
        assert_eq!(role_names(t), ["admin", "manager", "member", "reader"]);
        check_catalog(&t["catalog"]);
    }
);

api_test!(
    async fn scope_without_a_role_is_refused(c) {
        let p = c.create_project("nope", "default").await;
        let d = c.create_domain("nodom").await;
        let u = c.create_user("eve", "default").await;
        for scope in [
            json!({"project": {"id": p}}),
            json!({"domain": {"id": d}}),
            json!({"system": {"all": true}}),
            json!({"project": {"id": "does-not-exist"}}),
            json!({"domain": {"name": "does-not-exist"}}),
        ] {
            let (s, h, b) = c.password_auth(&u.id, &u.password, scope.clone()).await;
            assert_eq!(s, 401, "{scope}: {b}");
            assert!(h.get("x-subject-token").is_none());
        }
    }
);

api_test!(
    async fn bad_credentials_are_401_without_telling_why(c) {
        let u = c.create_user("frank", "default").await;
        let (s, h, wrong) = c.password_auth(&u.id, "not-the-password", Value::Null).await;
        assert_eq!(s, 401, "{wrong}");
        assert!(h.get("x-subject-token").is_none());
        let (s, _, unknown) = c.password_auth("no-such-user", "whatever", Value::Null).await;
        assert_eq!(s, 401, "{unknown}");
        assert_eq!(message(&wrong), message(&unknown), "the user's existence does not leak");
        // By name in an unknown domain.
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "frank", "domain": {"name": "Nowhere"}, "password": u.password}}}}});
        let (s, _, b) = c.req("POST", "/v3/auth/tokens", None, Some(body)).await;
        assert_eq!(s, 401, "{b}");
        // A disabled user.
        c.admin("PATCH", &format!("/v3/users/{}", u.id), Some(json!({"user": {"enabled": false}})), 200).await;
        let (s, _, b) = c.password_auth(&u.id, &u.password, Value::Null).await;
        assert_eq!(s, 401, "{b}");
    }
);

api_test!(
    async fn unsupported_method_is_401(c) {
        let body = json!({"auth": {"identity": {"methods": ["totp"], "totp": {"user": {"id": "x", "passcode": "1"}}}}});
        let (s, _, b) = c.req("POST", "/v3/auth/tokens", None, Some(body)).await;
        assert_eq!(s, 401, "{b}");
    }
);

api_test!(
    async fn token_method_rescopes_and_keeps_the_audit_chain(c) {
        let p = c.create_project("rescope", "default").await;
        let u = c.create_user_with_role("gina", "default", "member", On::Project(&p)).await;
        let (s, h, first) = c.password_auth(&u.id, &u.password, Value::Null).await;
        assert_eq!(s, 201);
        let unscoped = subject_token(&h);
        let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
                                   "scope": {"project": {"id": p}}}});
        let (s, h, b) = c.req("POST", "/v3/auth/tokens", None, Some(body)).await;
        assert_eq!(s, 201, "{b}");
        let t = &b["token"];
        assert!(t["methods"].as_array().unwrap().contains(&json!("token")), "{t}");
        assert_eq!(t["project"]["id"], p.as_str());
        assert_eq!(t["user"]["id"], u.id.as_str());
        let audit = t["audit_ids"].as_array().unwrap();
        assert_eq!(audit.len(), 2, "{t}");
        check_audit_id(&audit[0]);
        assert_eq!(audit[1], first["token"]["audit_ids"][0], "the chain id is the parent's");
        assert_ne!(audit[0], audit[1]);
        assert!(time(&t["expires_at"]) <= time(&first["token"]["expires_at"]), "never outlives its parent");
        let scoped = subject_token(&h);
        c.expect("GET", &format!("/v3/projects/{p}"), Some(&scoped), None, 200).await;
        // A garbage token does not authenticate.
        let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "garbage"}}}});
        let (s, _, b) = c.req("POST", "/v3/auth/tokens", None, Some(body)).await;
        assert_eq!(s, 401, "{b}");
    }
);

api_test!(
    async fn application_credential_method(c) {
        let (u, p, t) = c.project_user("hank", "member").await;
        let b = c
            .expect(
                "POST",
                &format!("/v3/users/{}/application_credentials", u.id),
                Some(&t),
                Some(json!({"application_credential": {"name": "ci"}})),
                201,
            )
            .await;
        let ac = &b["application_credential"];
        let (id, secret) = (ac["id"].as_str().unwrap(), ac["secret"].as_str().unwrap());
        let body = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": id, "secret": secret}}}});
        let (s, h, b) = c.req("POST", "/v3/auth/tokens", None, Some(body)).await;
        assert_eq!(s, 201, "{b}");
        let tok = &b["token"];
        assert_eq!(tok["methods"], json!(["application_credential"]));
        assert_eq!(tok["project"]["id"], p.as_str());
        assert_eq!(tok["user"]["id"], u.id.as_str());
        assert_eq!(tok["application_credential"]["id"], id);
        assert_eq!(tok["application_credential"]["name"], "ci");
        assert_eq!(tok["application_credential"]["restricted"], true);
        assert_eq!(role_names(tok), ["member", "reader"]);
        check_catalog(&tok["catalog"]);
        let act = subject_token(&h);
        c.expect("GET", &format!("/v3/projects/{p}"), Some(&act), None, 200).await;
        // By name and user.
        let body = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"name": "ci", "user": {"id": u.id}, "secret": secret}}}});
        let (s, _, b) = c.req("POST", "/v3/auth/tokens", None, Some(body)).await;
        assert_eq!(s, 201, "{b}");
        // A wrong secret.
        let body = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": id, "secret": "wrong"}}}});
        let (s, h, b) = c.req("POST", "/v3/auth/tokens", None, Some(body)).await;
        assert_eq!(s, 401, "{b}");
        assert!(h.get("x-subject-token").is_none());
    }
);

api_test!(
    async fn validate_check_and_nocatalog(c) {
        let admin = c.admin_token().await;
        let (u, p, t) = c.project_user("ivy", "member").await;
        let (s, h, b) = c.req_with_headers("GET", "/v3/auth/tokens", Some(&admin), &[("X-Subject-Token", &t)], None).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(subject_token(&h), t, "the subject token comes back in X-Subject-Token");
        let v = &b["token"];
        assert_eq!(v["user"]["id"], u.id.as_str());
        assert_eq!(v["project"]["id"], p.as_str());
        assert_eq!(v["methods"], json!(["password"]));
        assert_eq!(role_names(v), ["member", "reader"]);
        check_catalog(&v["catalog"]);
        // ?nocatalog leaves the catalog out.
        let (s, _, b) = c
            .req_with_headers("GET", "/v3/auth/tokens?nocatalog", Some(&admin), &[("X-Subject-Token", &t)], None)
            .await;
        assert_eq!(s, 200, "{b}");
        assert!(b["token"].get("catalog").is_none(), "{b}");
        assert_eq!(b["token"]["audit_ids"], v["audit_ids"]);
        assert_eq!(b["token"]["expires_at"], v["expires_at"]);
        assert_eq!(b["token"]["issued_at"], v["issued_at"]);
        // ?nocatalog when issuing, too.
        let (s, _, b) = c
            .req("POST", "/v3/auth/tokens?nocatalog", None, Some(crate::common::password_body(&u.id, &u.password, json!({"project": {"id": p}}))))
            .await;
        assert_eq!(s, 201, "{b}");
        assert!(b["token"].get("catalog").is_none(), "{b}");
        assert_eq!(b["token"]["project"]["id"], p.as_str());
        // A user validates its own token.
        let (s, _, b) = c.req_with_headers("GET", "/v3/auth/tokens", Some(&t), &[("X-Subject-Token", &t)], None).await;
        assert_eq!(s, 200, "{b}");
        // HEAD: 200, no body, the subject token back.
        let (s, h, b) = c.req_with_headers("HEAD", "/v3/auth/tokens", Some(&admin), &[("X-Subject-Token", &t)], None).await;
        assert_eq!(s, 200);
        assert!(b.is_null(), "{b}");
        assert_eq!(subject_token(&h), t);
        // No subject token: 400 (validate) .
        let (s, _, b) = c.req("GET", "/v3/auth/tokens", Some(&admin), None).await;
        assert_eq!(s, 400, "{b}");
        // No auth token: 401.
        let (s, _, b) = c.req_with_headers("GET", "/v3/auth/tokens", None, &[("X-Subject-Token", &t)], None).await;
        assert_eq!(s, 401, "{b}");
    }
);

api_test!(
    async fn a_user_cannot_validate_someone_elses_token(c) {
        let (_, _, t1) = c.project_user("jack", "member").await;
        let (_, _, t2) = c.project_user("jill", "member").await;
        let (s, _, b) = c.req_with_headers("GET", "/v3/auth/tokens", Some(&t1), &[("X-Subject-Token", &t2)], None).await;
        assert_eq!(s, 403, "{b}");
        let (s, _, b) = c.req_with_headers("DELETE", "/v3/auth/tokens", Some(&t1), &[("X-Subject-Token", &t2)], None).await;
        assert_eq!(s, 403, "{b}");
        // t2 still works.
        let (s, _, _) = c.req_with_headers("GET", "/v3/auth/tokens", Some(&t2), &[("X-Subject-Token", &t2)], None).await;
        assert_eq!(s, 200);
    }
);

api_test!(
    async fn revoked_token_is_404_on_validate_and_401_when_used(c) {
        let admin = c.admin_token().await;
        let (_, p, t) = c.project_user("kim", "member").await;
        let (_, _, other) = c.project_user("lee", "member").await;
        let (s, _, b) = c.req_with_headers("DELETE", "/v3/auth/tokens", Some(&admin), &[("X-Subject-Token", &t)], None).await;
        assert_eq!(s, 204, "{b}");
        assert!(b.is_null());
        let (s, _, b) = c.req_with_headers("GET", "/v3/auth/tokens", Some(&admin), &[("X-Subject-Token", &t)], None).await;
        assert_eq!(s, 404, "{b}");
        let (s, _, _) = c.req_with_headers("HEAD", "/v3/auth/tokens", Some(&admin), &[("X-Subject-Token", &t)], None).await;
        assert_eq!(s, 404);
        // Another (non-admin) user asking about it gets 404 as well, before policy.
        let (s, _, b) = c.req_with_headers("GET", "/v3/auth/tokens", Some(&other), &[("X-Subject-Token", &t)], None).await;
        assert_eq!(s, 404, "{b}");
        let (s, _, b) = c.req("GET", &format!("/v3/projects/{p}"), Some(&t), None).await;
        assert_eq!(s, 401, "{b}");
        // Revoking again: 404.
        let (s, _, b) = c.req_with_headers("DELETE", "/v3/auth/tokens", Some(&admin), &[("X-Subject-Token", &t)], None).await;
        assert_eq!(s, 404, "{b}");
        // The admin's own token is untouched.
        c.expect("GET", "/v3/users", Some(&admin), None, 200).await;
    }
);

api_test!(
    async fn self_revocation_and_tokens_sharing_the_audit_chain(c) {
        let p = c.create_project("chain", "default").await;
        let u = c.create_user_with_role("max", "default", "member", On::Project(&p)).await;
        let parent = c.unscoped_token(&u.id, &u.password).await;
        let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": parent}},
                                   "scope": {"project": {"id": p}}}});
        let (s, h, _) = c.req("POST", "/v3/auth/tokens", None, Some(body)).await;
        assert_eq!(s, 201);
        let child = subject_token(&h);
        let sibling = c.token_for(&u.id, &u.password, &p).await;
        // The user revokes its own token.
        let (s, _, b) = c.req_with_headers("DELETE", "/v3/auth/tokens", Some(&child), &[("X-Subject-Token", &child)], None).await;
        assert_eq!(s, 204, "{b}");
        let (s, _, _) = c.req("GET", &format!("/v3/projects/{p}"), Some(&child), None).await;
        assert_eq!(s, 401);
        // A token from a separate authentication is unaffected.
        c.expect("GET", &format!("/v3/projects/{p}"), Some(&sibling), None, 200).await;
    }
);

api_test!(
    async fn garbage_missing_and_expired_tokens_are_401(c) {
        let (s, _, b) = c.req("GET", "/v3/users", None, None).await;
        assert_eq!(s, 401, "{b}");
        assert_eq!(message(&b), "The request you have made requires authentication.");
        for bad in ["garbage", "", "gAAAAABnot-a-real-fernet-token", &"A".repeat(300)] {
            let (s, _, b) = c.req("GET", "/v3/users", Some(bad), None).await;
            assert_eq!(s, 401, "{bad}: {b}");
        }
        // A real token, correctly encrypted, but past its expiry.
        let expired = Payload {
            user_id: c.admin_user_id().to_string(),
            methods: vec!["password".into()],
            scope: Scope::Project(c.admin_project_id().to_string()),
            expires_at: ferrostack_store::now_micros() as f64 / 1e6 - 5.0,
            audit_ids: vec![payload::new_audit_id()],
        };
        let (tok, _) = c.identity.tokens.encrypt(&expired);
        let (s, _, b) = c.req("GET", "/v3/users", Some(&tok), None).await;
        assert_eq!(s, 401, "{b}");
        let admin = c.admin_token().await;
        let (s, _, b) = c.req_with_headers("GET", "/v3/auth/tokens", Some(&admin), &[("X-Subject-Token", &tok)], None).await;
        assert_eq!(s, 404, "{b}");
        // The same payload, still valid, is accepted: the 401 above came from the expiry.
        let fresh = Payload {
            expires_at: ferrostack_store::now_micros() as f64 / 1e6 + 60.0,
            ..expired
        };
        let (tok, _) = c.identity.tokens.encrypt(&fresh);
        c.expect("GET", "/v3/users", Some(&tok), None, 200).await;
    }
);

api_test!(
    async fn tokens_expire(engine: e) {
        let c = crate::common::TestCloud::builder(e)
            .token_expiration(std::time::Duration::from_secs(4))
            .start()
            .await;
        let t = c.admin_token().await;
        c.expect("GET", "/v3/users", Some(&t), None, 200).await;
        tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
        let (s, _, b) = c.req("GET", "/v3/users", Some(&t), None).await;
        assert_eq!(s, 401, "{b}");
        c.finish().await;
    }
);

api_test!(
    async fn auth_catalog(c) {
        let admin = c.admin_token().await;
        let b = c.expect("GET", "/v3/auth/catalog", Some(&admin), None, 200).await;
        check_catalog(&b["catalog"]);
        assert!(b["links"]["self"].as_str().unwrap().ends_with("/v3/auth/catalog"), "{b}");
        let u = c.create_user("nora", "default").await;
        let unscoped = c.unscoped_token(&u.id, &u.password).await;
        let (s, _, b) = c.req("GET", "/v3/auth/catalog", Some(&unscoped), None).await;
        assert_eq!(s, 403, "{b}");
        let (s, _, _) = c.req("GET", "/v3/auth/catalog", None, None).await;
        assert_eq!(s, 401);
    }
);

api_test!(
    async fn auth_projects_lists_what_the_user_can_scope_to(c) {
        let p1 = c.create_project("p1", "default").await;
        let p2 = c.create_project("p2", "default").await;
        let p3 = c.create_project("p3", "default").await;
        let off = c.create_project("off", "default").await;
        let u = c.create_user_with_role("olga", "default", "reader", On::Project(&p1)).await;
        let g = c.create_group("olga-team", "default").await;
        c.admin("PUT", &format!("/v3/groups/{g}/users/{}", u.id), None, 204).await;
        c.grant(&g, true, "member", On::Project(&p2)).await;
        c.grant(&u.id, false, "member", On::Project(&off)).await;
        c.admin("PATCH", &format!("/v3/projects/{off}"), Some(json!({"project": {"enabled": false}})), 200).await;
        let t = c.unscoped_token(&u.id, &u.password).await;
        let b = c.expect("GET", "/v3/auth/projects", Some(&t), None, 200).await;
        let mut got = crate::common::ids(&b, "projects");
        got.sort();
        let mut want = vec![p1.clone(), p2.clone()];
        want.sort();
        assert_eq!(got, want, "p3 has no role, 'off' is disabled: {b}");
        assert!(!got.contains(&p3));
        let one = &b["projects"][0];
        assert_eq!(one["domain_id"], "default");
        assert!(one["links"]["self"].as_str().unwrap().contains("/v3/projects/"), "{one}");
        assert!(b["links"]["self"].is_string(), "{b}");
    }
);

api_test!(
    async fn auth_domains_and_system(c) {
        let d = c.create_domain("mine").await;
        let _other = c.create_domain("theirs").await;
        let u = c.create_user_with_role("pat", &d, "reader", On::Domain(&d)).await;
        let t = c.unscoped_token(&u.id, &u.password).await;
        let b = c.expect("GET", "/v3/auth/domains", Some(&t), None, 200).await;
        assert_eq!(crate::common::ids(&b, "domains"), vec![d.clone()]);
        assert_eq!(b["domains"][0]["name"], "mine");
        let b = c.expect("GET", "/v3/auth/system", Some(&t), None, 200).await;
        assert_eq!(b["system"], json!([]));
        let admin = c.admin_token().await;
        let b = c.expect("GET", "/v3/auth/system", Some(&admin), None, 200).await;
        assert_eq!(b["system"], json!([{"all": true}]));
        let b = c.expect("GET", "/v3/auth/domains", Some(&admin), None, 200).await;
        assert_eq!(b["domains"], json!([]), "the admin has no domain role: {b}");
    }
);

api_test!(
    async fn changes_reach_tokens_at_once(c) {
        // Removing the role makes the project token stop working; adding one shows in a new
        // validation of the same token.
        let admin = c.admin_token().await;
        let (u, p, t) = c.project_user("quinn", "reader").await;
        c.grant(&u.id, false, "member", On::Project(&p)).await;
        let (_, _, b) = c.req_with_headers("GET", "/v3/auth/tokens", Some(&admin), &[("X-Subject-Token", &t)], None).await;
        assert_eq!(role_names(&b["token"]), ["member", "reader"], "{b}");
        for role in ["reader", "member"] {
            let rid = c.role_id(role).await;
            c.admin("DELETE", &format!("/v3/projects/{p}/users/{}/roles/{rid}", u.id), None, 204).await;
        }
        let (s, _, b) = c.req("GET", &format!("/v3/projects/{p}"), Some(&t), None).await;
        assert_eq!(s, 401, "{b}");
    }
);
