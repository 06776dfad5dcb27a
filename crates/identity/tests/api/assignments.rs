//! Role grants on projects, domains and the system, for users and groups, inherited grants
//! (OS-INHERIT), and `GET /v3/role_assignments` with its filters.

use serde_json::{json, Value};

use crate::common::{message, names, On, TestCloud, V3};

/// The assignments of a listing as comparable tuples:
/// (actor kind, actor id, role id, scope kind, scope id, inherited).
fn rows(b: &Value) -> Vec<(String, String, String, String, String, bool)> {
    let mut out: Vec<_> = b["role_assignments"]
        .as_array()
        .unwrap_or_else(|| panic!("role_assignments: {b}"))
        .iter()
        .map(|a| {
            let (ak, aid) = if let Some(u) = a.get("user") {
                ("user", u["id"].as_str().unwrap())
            } else {
                ("group", a["group"]["id"].as_str().unwrap())
            };
            let s = &a["scope"];
            let (sk, sid) = if let Some(p) = s.get("project") {
                ("project", p["id"].as_str().unwrap().to_string())
            } else if let Some(d) = s.get("domain") {
                ("domain", d["id"].as_str().unwrap().to_string())
            } else {
                assert_eq!(s["system"], json!({"all": true}), "{a}");
                ("system", "all".to_string())
            };
            (
                ak.to_string(),
                aid.to_string(),
                a["role"]["id"].as_str().unwrap().to_string(),
                sk.to_string(),
                sid,
                s.get("OS-INHERIT:inherited_to") == Some(&json!("projects")),
            )
        })
        .collect();
    out.sort();
    out
}

fn row(
    ak: &str,
    aid: &str,
    rid: &str,
    sk: &str,
    sid: &str,
    inh: bool,
) -> (String, String, String, String, String, bool) {
    (
        ak.into(),
        aid.into(),
        rid.into(),
        sk.into(),
        sid.into(),
        inh,
    )
}

api_test!(
    async fn user_grant_on_a_project(c) {
        let p = c.create_project("gp", "default").await;
        let u = c.create_user("ann", "default").await;
        let rid = c.role_id("member").await;
        let t = c.admin_token().await;
        let one = format!("/v3/projects/{p}/users/{}/roles/{rid}", u.id);
        let b = c.admin("GET", &one, None, 404).await;
        assert!(message(&b).contains(&rid), "{b}");
        c.admin("PUT", &one, None, 204).await;
        c.admin("PUT", &one, None, 204).await;
        c.admin("GET", &one, None, 204).await;
        let (s, _, _) = c.req("HEAD", &one, Some(&t), None).await;
        assert_eq!(s, 204);
        let b = c.admin("GET", &format!("/v3/projects/{p}/users/{}/roles", u.id), None, 200).await;
        assert_eq!(names(&b, "roles"), ["member"], "the direct grant only (implied roles are not grants)");
        assert_eq!(b["roles"][0]["links"]["self"], format!("{V3}/roles/{rid}"));
        c.token_for(&u.id, &u.password, &p).await;
        c.admin("DELETE", &one, None, 204).await;
        c.admin("DELETE", &one, None, 404).await;
        c.admin("GET", &one, None, 404).await;
        let b = c.admin("GET", &format!("/v3/projects/{p}/users/{}/roles", u.id), None, 200).await;
        assert_eq!(b["roles"], json!([]));
        // Unknown parts.
        c.admin("PUT", &format!("/v3/projects/nope/users/{}/roles/{rid}", u.id), None, 404).await;
        c.admin("PUT", &format!("/v3/projects/{p}/users/nope/roles/{rid}"), None, 404).await;
        let b = c.admin("PUT", &format!("/v3/projects/{p}/users/{}/roles/nope", u.id), None, 404).await;
        assert_eq!(message(&b), "Could not find role: nope.");
    }
);

api_test!(
    async fn group_grants_on_project_and_domain(c) {
        let d = c.create_domain("gd").await;
        let p = c.create_project("gpp", &d).await;
        let g = c.create_group("grp", &d).await;
        let u = c.create_user("bea", &d).await;
        c.admin("PUT", &format!("/v3/groups/{g}/users/{}", u.id), None, 204).await;
        let reader = c.role_id("reader").await;
        let manager = c.role_id("manager").await;
        c.admin("PUT", &format!("/v3/projects/{p}/groups/{g}/roles/{reader}"), None, 204).await;
        c.admin("PUT", &format!("/v3/domains/{d}/groups/{g}/roles/{manager}"), None, 204).await;
        c.admin("GET", &format!("/v3/projects/{p}/groups/{g}/roles/{reader}"), None, 204).await;
        c.admin("GET", &format!("/v3/domains/{d}/groups/{g}/roles/{manager}"), None, 204).await;
        c.admin("GET", &format!("/v3/domains/{d}/groups/{g}/roles/{reader}"), None, 404).await;
        let b = c.admin("GET", &format!("/v3/domains/{d}/groups/{g}/roles"), None, 200).await;
        assert_eq!(names(&b, "roles"), ["manager"]);
        c.token_for(&u.id, &u.password, &p).await;
        let (s, _, b) = c.password_auth(&u.id, &u.password, json!({"domain": {"id": d}})).await;
        assert_eq!(s, 201, "{b}");
        // A domain grant is not a project grant.
        let q = c.create_project("gpq", &d).await;
        let (s, _, _) = c.password_auth(&u.id, &u.password, json!({"project": {"id": q}})).await;
        assert_eq!(s, 401);
    }
);

api_test!(
    async fn user_grant_on_a_domain(c) {
        let d = c.create_domain("ud").await;
        let u = c.create_user("cal", &d).await;
        let rid = c.role_id("reader").await;
        let one = format!("/v3/domains/{d}/users/{}/roles/{rid}", u.id);
        c.admin("PUT", &one, None, 204).await;
        c.admin("GET", &one, None, 204).await;
        let b = c.admin("GET", &format!("/v3/domains/{d}/users/{}/roles", u.id), None, 200).await;
        assert_eq!(names(&b, "roles"), ["reader"]);
        c.domain_token(&u.id, &u.password, &d).await;
        c.admin("DELETE", &one, None, 204).await;
        let (s, _, _) = c.password_auth(&u.id, &u.password, json!({"domain": {"id": d}})).await;
        assert_eq!(s, 401);
        c.admin("PUT", &format!("/v3/domains/nope/users/{}/roles/{rid}", u.id), None, 404).await;
    }
);

api_test!(
    async fn system_grants(c) {
        let u = c.create_user("sys", "default").await;
        let g = c.create_group("sysg", "default").await;
        let v = c.create_user("sysmember", "default").await;
        c.admin("PUT", &format!("/v3/groups/{g}/users/{}", v.id), None, 204).await;
        let reader = c.role_id("reader").await;
        let t = c.system_admin_token().await;
        for (actor, id) in [("users", &u.id), ("groups", &g)] {
            let one = format!("/v3/system/{actor}/{id}/roles/{reader}");
            let (s, _, b) = c.req("GET", &one, Some(&t), None).await;
            assert_eq!(s, 404, "{b}");
            let (s, _, b) = c.req("PUT", &one, Some(&t), None).await;
            assert_eq!(s, 204, "{b}");
            let (s, _, _) = c.req("GET", &one, Some(&t), None).await;
            assert_eq!(s, 204);
            let (s, _, b) = c.req("GET", &format!("/v3/system/{actor}/{id}/roles"), Some(&t), None).await;
            assert_eq!(s, 200);
            assert_eq!(names(&b, "roles"), ["reader"]);
        }
        let (s, _, b) = c.password_auth(&u.id, &u.password, json!({"system": {"all": true}})).await;
        assert_eq!(s, 201, "{b}");
        let (s, _, b) = c.password_auth(&v.id, &v.password, json!({"system": {"all": true}})).await;
        assert_eq!(s, 201, "through the group: {b}");
        let b = c.admin("GET", "/v3/role_assignments?scope.system=all", None, 200).await;
        let r = rows(&b);
        assert!(r.contains(&row("user", &u.id, &reader, "system", "all", false)), "{b}");
        assert!(r.contains(&row("group", &g, &reader, "system", "all", false)), "{b}");
        assert!(r.iter().all(|x| x.3 == "system"), "{b}");
        let (s, _, _) = c.req("DELETE", &format!("/v3/system/users/{}/roles/{reader}", u.id), Some(&t), None).await;
        assert_eq!(s, 204);
        let (s, _, _) = c.password_auth(&u.id, &u.password, json!({"system": {"all": true}})).await;
        assert_eq!(s, 401);
    }
);

api_test!(
    async fn inherited_domain_grant_reaches_every_project_of_the_domain(c) {
        let d = c.create_domain("inh").await;
        let p1 = c.create_project("i1", &d).await;
        let p2 = c.create_child_project("i2", &p1).await;
        let elsewhere = c.create_project("i3", "default").await;
        let u = c.create_user("dan", &d).await;
        let rid = c.role_id("member").await;
        let one = format!("/v3/OS-INHERIT/domains/{d}/users/{}/roles/{rid}/inherited_to_projects", u.id);
        c.admin("GET", &one, None, 404).await;
        c.admin("PUT", &one, None, 204).await;
        c.admin("GET", &one, None, 204).await;
        let b = c
            .admin("GET", &format!("/v3/OS-INHERIT/domains/{d}/users/{}/roles/inherited_to_projects", u.id), None, 200)
            .await;
        assert_eq!(names(&b, "roles"), ["member"]);
        // Not a direct domain grant.
        let b = c.admin("GET", &format!("/v3/domains/{d}/users/{}/roles", u.id), None, 200).await;
        assert_eq!(b["roles"], json!([]));
        c.token_for(&u.id, &u.password, &p1).await;
        c.token_for(&u.id, &u.password, &p2).await;
        let (s, _, _) = c.password_auth(&u.id, &u.password, json!({"domain": {"id": d}})).await;
        assert_eq!(s, 401, "inherited to projects only, not the domain itself");
        let (s, _, _) = c.password_auth(&u.id, &u.password, json!({"project": {"id": elsewhere}})).await;
        assert_eq!(s, 401);
        // A project created later inherits too.
        let p3 = c.create_project("i4", &d).await;
        c.token_for(&u.id, &u.password, &p3).await;
        // And /v3/auth/projects lists them all.
        let unscoped = c.unscoped_token(&u.id, &u.password).await;
        let b = c.expect("GET", "/v3/auth/projects", Some(&unscoped), None, 200).await;
        let mut got = crate::common::ids(&b, "projects");
        got.sort();
        let mut want = vec![p1.clone(), p2.clone(), p3.clone()];
        want.sort();
        assert_eq!(got, want);
        // The listing shows it as inherited.
        let b = c.admin("GET", &format!("/v3/role_assignments?user.id={}", u.id), None, 200).await;
        assert_eq!(rows(&b), [row("user", &u.id, &rid, "domain", &d, true)]);
        assert_eq!(
            b["role_assignments"][0]["links"]["assignment"],
            format!("{V3}/OS-INHERIT/domains/{d}/users/{}/roles/{rid}/inherited_to_projects", u.id)
        );
        c.admin("DELETE", &one, None, 204).await;
        let (s, _, _) = c.password_auth(&u.id, &u.password, json!({"project": {"id": p1}})).await;
        assert_eq!(s, 401);
    }
);

api_test!(
    async fn inherited_project_grant_reaches_the_subtree_only(c) {
        let parent = c.create_project("parent", "default").await;
        let child = c.create_child_project("child", &parent).await;
        let grandchild = c.create_child_project("grandchild", &child).await;
        let g = c.create_group("inhg", "default").await;
        let u = c.create_user("eli", "default").await;
        c.admin("PUT", &format!("/v3/groups/{g}/users/{}", u.id), None, 204).await;
        let rid = c.role_id("reader").await;
        c.admin(
            "PUT",
            &format!("/v3/OS-INHERIT/projects/{parent}/groups/{g}/roles/{rid}/inherited_to_projects"),
            None,
            204,
        )
        .await;
        c.token_for(&u.id, &u.password, &child).await;
        c.token_for(&u.id, &u.password, &grandchild).await;
        let (s, _, _) = c.password_auth(&u.id, &u.password, json!({"project": {"id": parent}})).await;
        assert_eq!(s, 401, "the project itself does not get an inherited grant");
    }
);

api_test!(
    async fn role_assignments_listing_and_filters(c) {
        let p = c.create_project("ra", "default").await;
        let q = c.create_project("rb", "default").await;
        let u = c.create_user("fin", "default").await;
        let v = c.create_user("gus", "default").await;
        let g = c.create_group("rag", "default").await;
        let member = c.role_id("member").await;
        let reader = c.role_id("reader").await;
        c.grant(&u.id, false, "member", On::Project(&p)).await;
        c.grant(&v.id, false, "reader", On::Project(&q)).await;
        c.grant(&g, true, "reader", On::Project(&p)).await;
        c.grant(&u.id, false, "reader", On::Domain("default")).await;

        let all = c.admin("GET", "/v3/role_assignments", None, 200).await;
        let r = rows(&all);
        for want in [
            row("user", &u.id, &member, "project", &p, false),
            row("user", &v.id, &reader, "project", &q, false),
            row("group", &g, &reader, "project", &p, false),
            row("user", &u.id, &reader, "domain", "default", false),
            row("user", c.admin_user_id(), &c.role_id("admin").await, "project", c.admin_project_id(), false),
        ] {
            assert!(r.contains(&want), "{want:?} in {all}");
        }
        assert!(all["links"]["self"].as_str().unwrap().ends_with("/v3/role_assignments"), "{all}");
        let a = all["role_assignments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["user"]["id"] == u.id.as_str() && a["scope"].get("project").is_some())
            .unwrap();
        assert_eq!(a["links"]["assignment"], format!("{V3}/projects/{p}/users/{}/roles/{member}", u.id));

        let b = c.admin("GET", &format!("/v3/role_assignments?user.id={}", u.id), None, 200).await;
        assert_eq!(
            rows(&b),
            {
                let mut w = vec![
                    row("user", &u.id, &member, "project", &p, false),
                    row("user", &u.id, &reader, "domain", "default", false),
                ];
                w.sort();
                w
            }
        );
        let b = c.admin("GET", &format!("/v3/role_assignments?scope.project.id={p}"), None, 200).await;
        assert_eq!(
            rows(&b),
            {
                let mut w =
                    vec![row("user", &u.id, &member, "project", &p, false), row("group", &g, &reader, "project", &p, false)];
                w.sort();
                w
            }
        );
        let b = c.admin("GET", &format!("/v3/role_assignments?group.id={g}"), None, 200).await;
        assert_eq!(rows(&b), [row("group", &g, &reader, "project", &p, false)]);
        let b = c.admin("GET", &format!("/v3/role_assignments?role.id={member}&scope.project.id={p}"), None, 200).await;
        assert_eq!(rows(&b), [row("user", &u.id, &member, "project", &p, false)]);
        let b = c.admin("GET", "/v3/role_assignments?scope.domain.id=default", None, 200).await;
        assert_eq!(rows(&b), [row("user", &u.id, &reader, "domain", "default", false)]);
    }
);

api_test!(
    async fn effective_role_assignments(c) {
        let d = c.create_domain("eff").await;
        let p = c.create_project("ep", &d).await;
        let child = c.create_child_project("ec", &p).await;
        let u = c.create_user("hal", &d).await;
        let g = c.create_group("effg", &d).await;
        c.admin("PUT", &format!("/v3/groups/{g}/users/{}", u.id), None, 204).await;
        let member = c.role_id("member").await;
        let reader = c.role_id("reader").await;
        let manager = c.role_id("manager").await;
        // Through a group, on p: member (implies reader).
        c.grant(&g, true, "member", On::Project(&p)).await;
        // Inherited from the domain: manager on every project of d.
        c.admin("PUT", &format!("/v3/OS-INHERIT/domains/{d}/users/{}/roles/{manager}/inherited_to_projects", u.id), None, 204)
            .await;

        let b = c.admin("GET", &format!("/v3/role_assignments?effective&user.id={}", u.id), None, 200).await;
        let r = rows(&b);
        for want in [
            row("user", &u.id, &member, "project", &p, false),
            row("user", &u.id, &reader, "project", &p, false),
            row("user", &u.id, &manager, "project", &p, false),
            row("user", &u.id, &member, "project", &child, false),
            row("user", &u.id, &reader, "project", &child, false),
            row("user", &u.id, &manager, "project", &child, false),
        ] {
            assert!(r.contains(&want), "{want:?} in {b}");
        }
        assert!(r.iter().all(|x| x.0 == "user" && !x.5), "no group or inherited rows when effective: {b}");
        assert!(!r.iter().any(|x| x.3 == "domain"), "the inherited grant is not a domain role: {b}");
        // The links say where each row comes from.
        let list = b["role_assignments"].as_array().unwrap();
        let via_group = list
            .iter()
            .find(|a| a["role"]["id"] == member.as_str() && a["scope"]["project"]["id"] == p.as_str())
            .unwrap();
        assert_eq!(via_group["links"]["assignment"], format!("{V3}/projects/{p}/groups/{g}/roles/{member}"));
        assert_eq!(via_group["links"]["membership"], format!("{V3}/groups/{g}/users/{}", u.id), "{via_group}");
        let implied = list
            .iter()
            .find(|a| a["role"]["id"] == reader.as_str() && a["scope"]["project"]["id"] == p.as_str())
            .unwrap();
        assert_eq!(implied["links"]["prior_role"], format!("{V3}/roles/{member}"), "{implied}");

        // Filtered to one project: the group and inherited roles land there.
        let b = c.admin("GET", &format!("/v3/role_assignments?effective&scope.project.id={child}"), None, 200).await;
        let r = rows(&b);
        assert!(r.contains(&row("user", &u.id, &manager, "project", &child, false)), "{b}");
        assert!(r.iter().all(|x| x.4 == child), "{b}");

        // effective=0 is not effective.
        let b = c.admin("GET", &format!("/v3/role_assignments?effective=0&user.id={}", u.id), None, 200).await;
        assert_eq!(rows(&b), [row("user", &u.id, &manager, "domain", &d, true)]);

        // Keystone refuses filter combinations that can only give an empty list.
        let b = c.admin("GET", &format!("/v3/role_assignments?effective&group.id={g}"), None, 400).await;
        assert!(message(&b).contains("group"), "{b}");
        let b = c
            .admin("GET", &format!("/v3/role_assignments?scope.project.id={p}&scope.domain.id={d}"), None, 400)
            .await;
        assert!(message(&b).contains("domain or project"), "{b}");
        c.admin("GET", &format!("/v3/role_assignments?user.id={}&group.id={g}", u.id), None, 400).await;
    }
);

api_test!(
    async fn include_names(c) {
        let d = c.create_domain("Names").await;
        let p = c.create_project("named", &d).await;
        let u = c.create_user("ida", &d).await;
        c.grant(&u.id, false, "reader", On::Project(&p)).await;
        let b = c
            .admin("GET", &format!("/v3/role_assignments?include_names&user.id={}", u.id), None, 200)
            .await;
        let a = &b["role_assignments"][0];
        assert_eq!(a["user"], json!({"id": u.id, "name": "ida", "domain": {"id": d, "name": "Names"}}));
        assert_eq!(a["role"]["name"], "reader");
        assert_eq!(a["scope"]["project"], json!({"id": p, "name": "named", "domain": {"id": d, "name": "Names"}}));
        let b = c.admin("GET", &format!("/v3/role_assignments?user.id={}", u.id), None, 200).await;
        assert!(b["role_assignments"][0]["user"].get("name").is_none(), "names only when asked: {b}");
    }
);

api_test!(
    async fn domain_scoped_listing_sees_its_domain_only(c) {
        let a = c.create_domain("la").await;
        let b_ = c.create_domain("lb").await;
        let pa = c.create_project("pa", &a).await;
        let pb = c.create_project("pb", &b_).await;
        let ua = c.create_user_with_role("ua", &a, "reader", On::Project(&pa)).await;
        let ub = c.create_user_with_role("ub", &b_, "reader", On::Project(&pb)).await;
        let mgr = c.create_user_with_role("mgr", &a, "reader", On::Domain(&a)).await;
        let t = c.domain_token(&mgr.id, &mgr.password, &a).await;
        let b = c.expect("GET", "/v3/role_assignments", Some(&t), None, 200).await;
        let r = rows(&b);
        assert!(r.iter().any(|x| x.1 == ua.id), "{b}");
        assert!(!r.iter().any(|x| x.1 == ub.id), "nothing of domain b: {b}");
        assert!(!r.iter().any(|x| x.1 == TestCloud::admin_user_id(c)), "{b}");
    }
);

api_test!(
    async fn include_subtree(c) {
        let top = c.create_project("top", "default").await;
        let sub = c.create_child_project("sub", &top).await;
        let other = c.create_project("side", "default").await;
        let u = c.create_user("kai", "default").await;
        let reader = c.role_id("reader").await;
        c.grant(&u.id, false, "reader", On::Project(&top)).await;
        c.grant(&u.id, false, "reader", On::Project(&sub)).await;
        c.grant(&u.id, false, "reader", On::Project(&other)).await;
        let b = c
            .admin("GET", &format!("/v3/role_assignments?scope.project.id={top}&include_subtree=true"), None, 200)
            .await;
        let mut want = vec![
            row("user", &u.id, &reader, "project", &top, false),
            row("user", &u.id, &reader, "project", &sub, false),
        ];
        want.sort();
        assert_eq!(rows(&b), want);
        // Keystone: include_subtree needs scope.project.id.
        let b = c.admin("GET", "/v3/role_assignments?include_subtree=true", None, 400).await;
        assert!(message(&b).contains("scope.project.id"), "{b}");
    }
);

api_test!(
    async fn removing_a_users_project_role_revokes_its_tokens_there(c) {
        let (u, p, t) = c.project_user("lou", "member").await;
        let q = c.create_project("elsewhere", "default").await;
        c.grant(&u.id, false, "member", On::Project(&q)).await;
        let tq = c.token_for(&u.id, &u.password, &q).await;
        let member = c.role_id("member").await;
        c.admin("DELETE", &format!("/v3/projects/{p}/users/{}/roles/{member}", u.id), None, 204).await;
        c.grant(&u.id, false, "member", On::Project(&p)).await;
        let (s, _, _) = c.req("GET", &format!("/v3/projects/{p}"), Some(&t), None).await;
        assert_eq!(s, 401, "the token was revoked, not just unauthorized for a moment");
        c.expect("GET", &format!("/v3/projects/{q}"), Some(&tq), None, 200).await;
        c.token_for(&u.id, &u.password, &p).await;
    }
);
