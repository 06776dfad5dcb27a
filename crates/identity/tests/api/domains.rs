//! `/v3/domains`: CRUD, the default domain, disabling, and deleting a domain with everything
//! it owns.

use serde_json::{json, Value};

use crate::common::{ids, message, On, V3};

api_test!(
    async fn the_default_domain(c) {
        let b = c.admin("GET", "/v3/domains/default", None, 200).await;
        assert_eq!(b["domain"]["id"], "default");
        assert_eq!(b["domain"]["name"], "Default");
        assert_eq!(b["domain"]["enabled"], true);
        let b = c.admin("GET", "/v3/domains?name=Default", None, 200).await;
        assert_eq!(ids(&b, "domains"), ["default"]);
        let b = c.admin("DELETE", "/v3/domains/default", None, 403).await;
        assert!(message(&b).contains("disable"), "{b}");
        // Even disabled, by a system admin of another domain, it is not deleted.
        let ops = c.create_domain("ops").await;
        let root = c.create_user_with_role("root", &ops, "admin", On::System).await;
        let t = c.system_token(&root.id, &root.password).await;
        c.expect("PATCH", "/v3/domains/default", Some(&t), Some(json!({"domain": {"enabled": false}})), 200).await;
        let b = c.expect("DELETE", "/v3/domains/default", Some(&t), None, 403).await;
        assert!(message(&b).contains("default"), "{b}");
        c.expect("PATCH", "/v3/domains/default", Some(&t), Some(json!({"domain": {"enabled": true}})), 200).await;
        c.expect("GET", "/v3/domains/default", Some(&t), None, 200).await;
        // The admin logs in again (its earlier tokens were revoked with the domain).
        let (s, _, b) = c.password_auth(c.admin_user_id(), crate::common::ADMIN_PASSWORD, Value::Null).await;
        assert_eq!(s, 201, "{b}");
    }
);

api_test!(
    async fn create_show_update_delete(c) {
        let b = c
            .admin("POST", "/v3/domains", Some(json!({"domain": {"name": "acme", "description": "ACME Inc."}})), 201)
            .await;
        let d = &b["domain"];
        let id = d["id"].as_str().unwrap().to_string();
        assert_eq!(d["name"], "acme");
        assert_eq!(d["description"], "ACME Inc.");
        assert_eq!(d["enabled"], true);
        assert_eq!(d["links"]["self"], format!("{V3}/domains/{id}"));
        assert_eq!(c.admin("GET", &format!("/v3/domains/{id}"), None, 200).await["domain"], *d);
        let b = c
            .admin("PATCH", &format!("/v3/domains/{id}"), Some(json!({"domain": {"name": "acme2", "description": ""}})), 200)
            .await;
        assert_eq!(b["domain"]["name"], "acme2");
        assert_eq!(b["domain"]["description"], "");
        // An enabled domain cannot be deleted.
        let b = c.admin("DELETE", &format!("/v3/domains/{id}"), None, 403).await;
        assert!(message(&b).contains("disable"), "{b}");
        c.admin("PATCH", &format!("/v3/domains/{id}"), Some(json!({"domain": {"enabled": false}})), 200).await;
        let b = c.admin("GET", "/v3/domains?enabled=false", None, 200).await;
        assert_eq!(ids(&b, "domains"), vec![id.clone()]);
        c.admin("DELETE", &format!("/v3/domains/{id}"), None, 204).await;
        let b = c.admin("GET", &format!("/v3/domains/{id}"), None, 404).await;
        assert_eq!(message(&b), format!("Could not find domain: {id}."));
        // Names are unique.
        c.create_domain("uniq").await;
        c.admin("POST", "/v3/domains", Some(json!({"domain": {"name": "uniq"}})), 409).await;
        // An explicit id.
        let b = c
            .admin("POST", "/v3/domains", Some(json!({"domain": {"name": "fixed", "explicit_domain_id": "fixed-id"}})), 201)
            .await;
        assert_eq!(b["domain"]["id"], "fixed-id");
    }
);

api_test!(
    async fn disabling_a_domain_stops_its_users_and_projects(c) {
        let d = c.create_domain("sleepy").await;
        let p = c.create_project("sp", &d).await;
        let u = c.create_user_with_role("sam", &d, "member", On::Project(&p)).await;
        let dm = c.create_user_with_role("dm", &d, "reader", On::Domain(&d)).await;
        let t = c.token_for(&u.id, &u.password, &p).await;
        let dt = c.domain_token(&dm.id, &dm.password, &d).await;
        // A user of the default domain with a role on the project.
        let outsider = c.create_user_with_role("outsider", "default", "member", On::Project(&p)).await;
        let ot = c.token_for(&outsider.id, &outsider.password, &p).await;
        c.admin("PATCH", &format!("/v3/domains/{d}"), Some(json!({"domain": {"enabled": false}})), 200).await;
        for tok in [&t, &dt, &ot] {
            let (s, _, b) = c.req("GET", "/v3/auth/projects", Some(tok), None).await;
            assert_eq!(s, 401, "{b}");
        }
        let (s, _, _) = c.password_auth(&u.id, &u.password, Value::Null).await;
        assert_eq!(s, 401, "users of a disabled domain cannot authenticate");
        let (s, _, _) = c.password_auth(&outsider.id, &outsider.password, json!({"project": {"id": p}})).await;
        assert_eq!(s, 401, "projects of a disabled domain cannot be scoped to");
        c.admin("PATCH", &format!("/v3/domains/{d}"), Some(json!({"domain": {"enabled": true}})), 200).await;
        c.token_for(&u.id, &u.password, &p).await;
        c.token_for(&outsider.id, &outsider.password, &p).await;
        // Tokens from before the domain was disabled stay revoked (as in Keystone).
        for tok in [&t, &dt, &ot] {
            let (s, _, b) = c.req("GET", "/v3/auth/projects", Some(tok), None).await;
            assert_eq!(s, 401, "{b}");
        }
    }
);

api_test!(
    async fn deleting_a_domain_deletes_what_it_owns(c) {
        let d = c.create_domain("doomed").await;
        let p = c.create_project("dp", &d).await;
        let child = c.create_child_project("dc", &p).await;
        let u = c.create_user_with_role("du", &d, "member", On::Project(&child)).await;
        let g = c.create_group("dg", &d).await;
        c.admin("PUT", &format!("/v3/groups/{g}/users/{}", u.id), None, 204).await;
        let b = c.admin("POST", "/v3/roles", Some(json!({"role": {"name": "dr", "domain_id": d}})), 201).await;
        let dr = b["role"]["id"].as_str().unwrap().to_string();
        c.admin("PUT", &format!("/v3/projects/{p}/users/{}/roles/{dr}", u.id), None, 204).await;
        // A user of the default domain with a role on the domain.
        let keeper = c.create_user_with_role("keeper", "default", "reader", On::Domain(&d)).await;
        c.admin("PATCH", &format!("/v3/domains/{d}"), Some(json!({"domain": {"enabled": false}})), 200).await;
        c.admin("DELETE", &format!("/v3/domains/{d}"), None, 204).await;
        for path in [
            format!("/v3/projects/{p}"),
            format!("/v3/projects/{child}"),
            format!("/v3/users/{}", u.id),
            format!("/v3/groups/{g}"),
            format!("/v3/roles/{dr}"),
        ] {
            c.admin("GET", &path, None, 404).await;
        }
        let b = c.admin("GET", &format!("/v3/role_assignments?user.id={}", keeper.id), None, 200).await;
        assert_eq!(b["role_assignments"], json!([]), "grants on the domain are gone");
        c.admin("GET", &format!("/v3/users/{}", keeper.id), None, 200).await;
        // The name is free again.
        c.create_domain("doomed").await;
    }
);

api_test!(
    async fn who_may_read_a_domain(c) {
        let d = c.create_domain("visible").await;
        let p = c.create_project("vp", &d).await;
        let u = c.create_user_with_role("vu", &d, "member", On::Project(&p)).await;
        let t = c.token_for(&u.id, &u.password, &p).await;
        c.expect("GET", &format!("/v3/domains/{d}"), Some(&t), None, 200).await;
        let (s, _, _) = c.req("GET", "/v3/domains/default", Some(&t), None).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("GET", "/v3/domains", Some(&t), None).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("PATCH", &format!("/v3/domains/{d}"), Some(&t), Some(json!({"domain": {"enabled": false}}))).await;
        assert_eq!(s, 403);
    }
);
