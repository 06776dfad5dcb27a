//! Who may do what with Keystone's default (secure RBAC) policies: members and readers of a
//! project, domain-scoped admins, managers and readers, system readers, and users acting on
//! themselves; and that one domain's people cannot reach another's.

use serde_json::json;

use crate::common::{ids, On, TestCloud};

/// Two domains, each with a project and a plain user.
struct Domains {
    a: String,
    b: String,
    pa: String,
    pb: String,
    ua: String,
    ub: String,
}

async fn two_domains(c: &TestCloud) -> Domains {
    let a = c.create_domain("dom-a").await;
    let b = c.create_domain("dom-b").await;
    let pa = c.create_project("proj-a", &a).await;
    let pb = c.create_project("proj-b", &b).await;
    let ua = c.create_user("user-a", &a).await.id;
    let ub = c.create_user("user-b", &b).await.id;
    Domains {
        a,
        b,
        pa,
        pb,
        ua,
        ub,
    }
}

api_test!(
    async fn a_member_cannot_create_projects_users_or_grants(c) {
        let (u, p, t) = c.project_user("mem", "member").await;
        let before = (c.count_rows("projects").await, c.count_rows("users").await, c.count_rows("assignments").await);
        let (s, _, b) = c.req("POST", "/v3/projects", Some(&t), Some(json!({"project": {"name": "mine"}}))).await;
        assert_eq!(s, 403, "{b}");
        assert!(b["error"]["message"].as_str().unwrap().contains("identity:create_project"), "{b}");
        let (s, _, _) = c.req("POST", "/v3/users", Some(&t), Some(json!({"user": {"name": "friend"}}))).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("POST", "/v3/domains", Some(&t), Some(json!({"domain": {"name": "mine"}}))).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("POST", "/v3/groups", Some(&t), Some(json!({"group": {"name": "mine"}}))).await;
        assert_eq!(s, 403);
        let admin = c.role_id("admin").await;
        let (s, _, _) = c.req("PUT", &format!("/v3/projects/{p}/users/{}/roles/{admin}", u.id), Some(&t), None).await;
        assert_eq!(s, 403, "no self-promotion");
        let (s, _, _) = c.req("PATCH", &format!("/v3/projects/{p}"), Some(&t), Some(json!({"project": {"name": "renamed"}}))).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("DELETE", &format!("/v3/projects/{p}"), Some(&t), None).await;
        assert_eq!(s, 403);
        assert_eq!(
            before,
            (c.count_rows("projects").await, c.count_rows("users").await, c.count_rows("assignments").await)
        );
    }
);

api_test!(
    async fn a_reader_cannot_change_anything(c) {
        let (u, p, t) = c.project_user("rdr", "reader").await;
        let g = c.create_group("rg", "default").await;
        let member = c.role_id("member").await;
        let attempts = [
            ("PATCH", format!("/v3/projects/{p}"), Some(json!({"project": {"description": "x"}}))),
            ("PUT", format!("/v3/projects/{p}/tags/x"), None),
            ("PUT", format!("/v3/projects/{p}/tags"), Some(json!({"tags": ["x"]}))),
            ("DELETE", format!("/v3/projects/{p}/tags"), None),
            ("PATCH", format!("/v3/users/{}", u.id), Some(json!({"user": {"email": "x@y"}}))),
            ("DELETE", format!("/v3/users/{}", u.id), None),
            ("POST", "/v3/groups".to_string(), Some(json!({"group": {"name": "g2"}}))),
            ("PUT", format!("/v3/groups/{g}/users/{}", u.id), None),
            ("DELETE", format!("/v3/groups/{g}"), None),
            ("PUT", format!("/v3/projects/{p}/users/{}/roles/{member}", u.id), None),
            ("POST", "/v3/roles".to_string(), Some(json!({"role": {"name": "r2"}}))),
            ("POST", "/v3/regions".to_string(), Some(json!({"region": {"id": "R2"}}))),
            ("POST", "/v3/services".to_string(), Some(json!({"service": {"type": "x"}}))),
            ("PATCH", "/v3/domains/default".to_string(), Some(json!({"domain": {"description": "x"}}))),
        ];
        for (method, path, body) in attempts {
            let (s, _, b) = c.req(method, &path, Some(&t), body).await;
            assert_eq!(s, 403, "{method} {path}: {b}");
        }
        // But it reads its project, its tags, and itself.
        c.expect("GET", &format!("/v3/projects/{p}"), Some(&t), None, 200).await;
        c.expect("GET", &format!("/v3/projects/{p}/tags"), Some(&t), None, 200).await;
        c.expect("GET", &format!("/v3/users/{}", u.id), Some(&t), None, 200).await;
        let b = c.admin("GET", &format!("/v3/projects/{p}"), None, 200).await;
        assert_eq!(b["project"]["tags"], json!([]));
        assert_eq!(b["project"]["description"], "");
    }
);

api_test!(
    async fn a_domain_admin_manages_its_domain_only(c) {
        let d = two_domains(c).await;
        let adm = c.create_user_with_role("adm-a", &d.a, "admin", On::Domain(&d.a)).await;
        let t = c.domain_token(&adm.id, &adm.password, &d.a).await;
        // Users of A: create (domain from the token or explicit), read, update, delete.
        let b = c.expect("POST", "/v3/users", Some(&t), Some(json!({"user": {"name": "new-a"}})), 201).await;
        assert_eq!(b["user"]["domain_id"], d.a.as_str(), "the token's domain by default");
        let new_a = b["user"]["id"].as_str().unwrap().to_string();
        c.expect("POST", "/v3/users", Some(&t), Some(json!({"user": {"name": "new-a2", "domain_id": d.a}})), 201).await;
        c.expect("GET", &format!("/v3/users/{}", d.ua), Some(&t), None, 200).await;
        c.expect("PATCH", &format!("/v3/users/{new_a}"), Some(&t), Some(json!({"user": {"email": "a@a"}})), 200).await;
        c.expect("DELETE", &format!("/v3/users/{new_a}"), Some(&t), None, 204).await;
        // Listing users without a filter: its domain's users.
        let b = c.expect("GET", "/v3/users", Some(&t), None, 200).await;
        let listed = ids(&b, "users");
        assert!(listed.contains(&d.ua) && listed.contains(&adm.id), "{b}");
        assert!(!listed.contains(&d.ub), "no user of domain b: {b}");
        assert!(!listed.contains(&c.admin_user_id().to_string()), "{b}");
        // Users of B: 403 everywhere.
        let (s, _, b) = c.req("POST", "/v3/users", Some(&t), Some(json!({"user": {"name": "new-b", "domain_id": d.b}}))).await;
        assert_eq!(s, 403, "{b}");
        let (s, _, _) = c.req("GET", &format!("/v3/users/{}", d.ub), Some(&t), None).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("PATCH", &format!("/v3/users/{}", d.ub), Some(&t), Some(json!({"user": {"enabled": false}}))).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("DELETE", &format!("/v3/users/{}", d.ub), Some(&t), None).await;
        assert_eq!(s, 403);
        let (s, _, b) = c.req("GET", &format!("/v3/users?domain_id={}", d.b), Some(&t), None).await;
        assert!(s == 403 || (s == 200 && b["users"] == json!([])), "{s}: {b}");
        // Projects: its domain yes, the other no.
        c.expect("POST", "/v3/projects", Some(&t), Some(json!({"project": {"name": "more-a", "domain_id": d.a}})), 201).await;
        let (s, _, _) = c.req("POST", "/v3/projects", Some(&t), Some(json!({"project": {"name": "more-b", "domain_id": d.b}}))).await;
        assert_eq!(s, 403);
        let b = c.expect("GET", "/v3/projects", Some(&t), None, 200).await;
        let listed = ids(&b, "projects");
        assert!(listed.contains(&d.pa), "{b}");
        assert!(!listed.contains(&d.pb) && !listed.contains(&c.admin_project_id().to_string()), "{b}");
        let (s, _, _) = c.req("GET", &format!("/v3/projects/{}", d.pb), Some(&t), None).await;
        assert_eq!(s, 403);
        // Grants: inside its domain only.
        let member = c.role_id("member").await;
        c.expect("PUT", &format!("/v3/projects/{}/users/{}/roles/{member}", d.pa, d.ua), Some(&t), None, 204).await;
        let (s, _, _) = c.req("PUT", &format!("/v3/projects/{}/users/{}/roles/{member}", d.pb, d.ub), Some(&t), None).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("PUT", &format!("/v3/projects/{}/users/{}/roles/{member}", d.pb, d.ua), Some(&t), None).await;
        assert_eq!(s, 403, "a user of A on a project of B");
        // Not a cloud admin: no domains, no system grants, no catalog changes.
        let (s, _, _) = c.req("POST", "/v3/domains", Some(&t), Some(json!({"domain": {"name": "new"}}))).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("PUT", &format!("/v3/system/users/{}/roles/{member}", d.ua), Some(&t), None).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("POST", "/v3/services", Some(&t), Some(json!({"service": {"type": "x"}}))).await;
        assert_eq!(s, 403);
    }
);

api_test!(
    async fn a_domain_manager_grants_only_managed_roles(c) {
        let d = two_domains(c).await;
        let m = c.create_user_with_role("mgr-a", &d.a, "manager", On::Domain(&d.a)).await;
        let t = c.domain_token(&m.id, &m.password, &d.a).await;
        let member = c.role_id("member").await;
        let admin = c.role_id("admin").await;
        c.expect("PUT", &format!("/v3/projects/{}/users/{}/roles/{member}", d.pa, d.ua), Some(&t), None, 204).await;
        let (s, _, b) = c.req("PUT", &format!("/v3/projects/{}/users/{}/roles/{admin}", d.pa, d.ua), Some(&t), None).await;
        assert_eq!(s, 403, "admin is not a role a manager hands out: {b}");
        c.expect("POST", "/v3/users", Some(&t), Some(json!({"user": {"name": "hire", "domain_id": d.a}})), 201).await;
        let (s, _, _) = c.req("POST", "/v3/users", Some(&t), Some(json!({"user": {"name": "hire", "domain_id": d.b}}))).await;
        assert_eq!(s, 403);
    }
);

api_test!(
    async fn a_domain_reader_sees_its_domain_only(c) {
        let d = two_domains(c).await;
        let ga = c.create_group("group-a", &d.a).await;
        let gb = c.create_group("group-b", &d.b).await;
        let r = c.create_user_with_role("rdr-a", &d.a, "reader", On::Domain(&d.a)).await;
        let t = c.domain_token(&r.id, &r.password, &d.a).await;
        let b = c.expect("GET", "/v3/users", Some(&t), None, 200).await;
        assert!(ids(&b, "users").contains(&d.ua) && !ids(&b, "users").contains(&d.ub), "{b}");
        let b = c.expect("GET", "/v3/groups", Some(&t), None, 200).await;
        assert_eq!(ids(&b, "groups"), vec![ga.clone()]);
        let b = c.expect("GET", "/v3/projects", Some(&t), None, 200).await;
        assert_eq!(ids(&b, "projects"), vec![d.pa.clone()]);
        c.expect("GET", &format!("/v3/projects/{}", d.pa), Some(&t), None, 200).await;
        c.expect("GET", &format!("/v3/groups/{ga}"), Some(&t), None, 200).await;
        for path in [format!("/v3/projects/{}", d.pb), format!("/v3/users/{}", d.ub), format!("/v3/groups/{gb}")] {
            let (s, _, b) = c.req("GET", &path, Some(&t), None).await;
            assert_eq!(s, 403, "{path}: {b}");
        }
        let (s, _, _) = c.req("POST", "/v3/users", Some(&t), Some(json!({"user": {"name": "nope"}}))).await;
        assert_eq!(s, 403, "a reader does not create");
    }
);

api_test!(
    async fn a_system_reader_reads_everything_and_changes_nothing(c) {
        let d = two_domains(c).await;
        let sr = c.create_user_with_role("sysreader", "default", "reader", On::System).await;
        let t = c.system_token(&sr.id, &sr.password).await;
        let b = c.expect("GET", "/v3/users", Some(&t), None, 200).await;
        assert!(ids(&b, "users").contains(&d.ua) && ids(&b, "users").contains(&d.ub));
        let b = c.expect("GET", "/v3/projects", Some(&t), None, 200).await;
        assert!(ids(&b, "projects").contains(&d.pa) && ids(&b, "projects").contains(&d.pb));
        c.expect("GET", "/v3/role_assignments", Some(&t), None, 200).await;
        c.expect("GET", "/v3/services", Some(&t), None, 200).await;
        c.expect("GET", &format!("/v3/users/{}", d.ub), Some(&t), None, 200).await;
        let (s, _, _) = c.req("POST", "/v3/projects", Some(&t), Some(json!({"project": {"name": "x", "domain_id": d.a}}))).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("DELETE", &format!("/v3/users/{}", d.ua), Some(&t), None).await;
        assert_eq!(s, 403);
    }
);

api_test!(
    async fn a_user_reads_itself_with_any_token(c) {
        let (u, _, project_token) = c.project_user("selfish", "reader").await;
        let unscoped = c.unscoped_token(&u.id, &u.password).await;
        for t in [&project_token, &unscoped] {
            let b = c.expect("GET", &format!("/v3/users/{}", u.id), Some(t), None, 200).await;
            assert_eq!(b["user"]["id"], u.id.as_str());
            c.expect("GET", &format!("/v3/users/{}/groups", u.id), Some(t), None, 200).await;
            c.expect("GET", &format!("/v3/users/{}/projects", u.id), Some(t), None, 200).await;
        }
        let other = c.create_user("stranger", "default").await;
        for t in [&project_token, &unscoped] {
            let (s, _, _) = c.req("GET", &format!("/v3/users/{}", other.id), Some(t), None).await;
            assert_eq!(s, 403);
            let (s, _, _) = c.req("GET", &format!("/v3/users/{}/groups", other.id), Some(t), None).await;
            assert_eq!(s, 403);
        }
    }
);

api_test!(
    async fn project_members_of_one_domain_cannot_reach_another(c) {
        let d = two_domains(c).await;
        let ma = c.create_user_with_role("mem-a", &d.a, "member", On::Project(&d.pa)).await;
        let t = c.token_for(&ma.id, &ma.password, &d.pa).await;
        for path in [
            format!("/v3/projects/{}", d.pb),
            format!("/v3/users/{}", d.ub),
            format!("/v3/users/{}/projects", d.ub),
            format!("/v3/domains/{}", d.b),
            format!("/v3/role_assignments?scope.project.id={}", d.pb),
            format!("/v3/projects/{}/users/{}/roles", d.pb, d.ub),
        ] {
            let (s, _, b) = c.req("GET", &path, Some(&t), None).await;
            assert_eq!(s, 403, "{path}: {b}");
        }
        // Its own domain's document is readable (Keystone: token.project.domain.id).
        c.expect("GET", &format!("/v3/domains/{}", d.a), Some(&t), None, 200).await;
    }
);
