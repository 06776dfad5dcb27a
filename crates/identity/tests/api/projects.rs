//! `/v3/projects`: CRUD, filters, hierarchy, tags, and what disabling or deleting does.

use serde_json::json;

use crate::common::{ids, message, names, On, V3};

api_test!(
    async fn create_show_update_delete(c) {
        let b = c
            .admin(
                "POST",
                "/v3/projects",
                Some(json!({"project": {"name": "web", "description": "the web team", "domain_id": "default",
                                        "tags": ["blue", "green"], "team_size": 3}})),
                201,
            )
            .await;
        let p = &b["project"];
        let id = p["id"].as_str().unwrap().to_string();
        assert_eq!(id.len(), 32, "uuid hex: {id}");
        assert_eq!(p["name"], "web");
        assert_eq!(p["description"], "the web team");
        assert_eq!(p["domain_id"], "default");
        assert_eq!(p["parent_id"], "default", "a top-level project's parent is its domain");
        assert_eq!(p["enabled"], true);
        assert_eq!(p["is_domain"], false);
        assert_eq!(p["tags"], json!(["blue", "green"]));
        assert_eq!(p["team_size"], 3, "extra attributes are kept");
        assert_eq!(p["links"]["self"], format!("{V3}/projects/{id}"));

        let got = c.admin("GET", &format!("/v3/projects/{id}"), None, 200).await;
        assert_eq!(got["project"], *p);

        let b = c
            .admin(
                "PATCH",
                &format!("/v3/projects/{id}"),
                Some(json!({"project": {"name": "web2", "description": "", "enabled": false}})),
                200,
            )
            .await;
        assert_eq!(b["project"]["name"], "web2");
        assert_eq!(b["project"]["description"], "");
        assert_eq!(b["project"]["enabled"], false);
        assert_eq!(b["project"]["tags"], json!(["blue", "green"]), "untouched fields stay");
        let got = c.admin("GET", &format!("/v3/projects/{id}"), None, 200).await;
        assert_eq!(got["project"]["name"], "web2");
        assert_eq!(got["project"]["enabled"], false);

        let b = c.admin("DELETE", &format!("/v3/projects/{id}"), None, 204).await;
        assert!(b.is_null());
        let b = c.admin("GET", &format!("/v3/projects/{id}"), None, 404).await;
        assert_eq!(message(&b), format!("Could not find project: {id}."));
        c.admin("DELETE", &format!("/v3/projects/{id}"), None, 404).await;
        c.admin("PATCH", &format!("/v3/projects/{id}"), Some(json!({"project": {"name": "x"}})), 404).await;
    }
);

api_test!(
    async fn domain_defaults_to_the_tokens(c) {
        let b = c.admin("POST", "/v3/projects", Some(json!({"project": {"name": "nodomain"}})), 201).await;
        assert_eq!(b["project"]["domain_id"], "default", "the admin token's project domain");
    }
);

api_test!(
    async fn list_and_filters(c) {
        let d = c.create_domain("other").await;
        let a = c.create_project("alpha", "default").await;
        let b_ = c.create_project("beta", "default").await;
        let o = c.create_project("alpha", &d).await;
        c.admin("PATCH", &format!("/v3/projects/{b_}"), Some(json!({"project": {"enabled": false}})), 200).await;
        let all = c.admin("GET", "/v3/projects", None, 200).await;
        let all_ids = ids(&all, "projects");
        for p in [&a, &b_, &o, &c.admin_project_id().to_string()] {
            assert!(all_ids.contains(p), "{p} listed: {all}");
        }
        assert_eq!(all["links"]["self"], format!("{V3}/projects"));
        let by_name = c.admin("GET", "/v3/projects?name=alpha", None, 200).await;
        let mut got = ids(&by_name, "projects");
        got.sort();
        let mut want = vec![a.clone(), o.clone()];
        want.sort();
        assert_eq!(got, want);
        let in_d = c.admin("GET", &format!("/v3/projects?domain_id={d}"), None, 200).await;
        assert_eq!(ids(&in_d, "projects"), vec![o.clone()]);
        let both = c.admin("GET", &format!("/v3/projects?domain_id={d}&name=alpha"), None, 200).await;
        assert_eq!(ids(&both, "projects"), vec![o.clone()]);
        let off = c.admin("GET", "/v3/projects?enabled=false", None, 200).await;
        assert_eq!(ids(&off, "projects"), vec![b_.clone()]);
        let on = c.admin("GET", "/v3/projects?enabled=true", None, 200).await;
        assert!(!ids(&on, "projects").contains(&b_));
        let none = c.admin("GET", "/v3/projects?name=nothing-like-this", None, 200).await;
        assert_eq!(none["projects"], json!([]));
    }
);

api_test!(
    async fn names_are_unique_per_domain(c) {
        let d = c.create_domain("d2").await;
        c.create_project("same", "default").await;
        let b = c
            .admin("POST", "/v3/projects", Some(json!({"project": {"name": "same", "domain_id": "default"}})), 409)
            .await;
        assert!(message(&b).contains("same"), "{b}");
        c.admin("POST", "/v3/projects", Some(json!({"project": {"name": "same", "domain_id": d}})), 201).await;
        // Renaming onto an existing name conflicts too.
        let other = c.create_project("other", "default").await;
        c.admin("PATCH", &format!("/v3/projects/{other}"), Some(json!({"project": {"name": "same"}})), 409).await;
    }
);

api_test!(
    async fn hierarchy(c) {
        let d = c.create_domain("tree").await;
        let root = c.create_project("root", &d).await;
        let child = c.create_child_project("child", &root).await;
        let grandchild = c.create_child_project("grandchild", &child).await;
        let b = c.admin("GET", &format!("/v3/projects/{child}"), None, 200).await;
        assert_eq!(b["project"]["parent_id"], root.as_str());
        assert_eq!(b["project"]["domain_id"], d.as_str(), "a child lives in its parent's domain");
        let b = c.admin("GET", &format!("/v3/projects?parent_id={root}"), None, 200).await;
        assert_eq!(ids(&b, "projects"), vec![child.clone()]);

        let b = c.admin("GET", &format!("/v3/projects/{grandchild}?parents_as_list"), None, 200).await;
        let parents: Vec<String> = b["project"]["parents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["project"]["id"].as_str().unwrap().to_string())
            .collect();
        assert!(parents.contains(&child) && parents.contains(&root), "{b}");
        let b = c.admin("GET", &format!("/v3/projects/{root}?subtree_as_list"), None, 200).await;
        let subtree: Vec<String> = b["project"]["subtree"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["project"]["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(subtree.len(), 2, "{b}");
        assert!(subtree.contains(&child) && subtree.contains(&grandchild), "{b}");

        // A parent in another domain than the one named.
        let b = c
            .admin(
                "POST",
                "/v3/projects",
                Some(json!({"project": {"name": "x", "parent_id": root, "domain_id": "default"}})),
                400,
            )
            .await;
        assert!(message(&b).contains("domain"), "{b}");
        // A parent that does not exist (Keystone: a validation error).
        let b = c
            .admin("POST", "/v3/projects", Some(json!({"project": {"name": "x", "parent_id": "nope"}})), 400)
            .await;
        assert!(message(&b).contains("nope"), "{b}");
        // The parent of a project cannot change.
        c.admin("PATCH", &format!("/v3/projects/{child}"), Some(json!({"project": {"parent_id": d}})), 400).await;
        // Only leaves can be deleted.
        let b = c.admin("DELETE", &format!("/v3/projects/{root}"), None, 403).await;
        assert!(message(&b).contains("leaf"), "{b}");
        c.admin("DELETE", &format!("/v3/projects/{grandchild}"), None, 204).await;
        c.admin("DELETE", &format!("/v3/projects/{child}"), None, 204).await;
        c.admin("DELETE", &format!("/v3/projects/{root}"), None, 204).await;
    }
);

api_test!(
    async fn hierarchy_depth_is_limited(c) {
        let mut parent = c.create_project("level1", "default").await;
        for n in 2..=5 {
            parent = c.create_child_project(&format!("level{n}"), &parent).await;
        }
        let b = c
            .admin("POST", "/v3/projects", Some(json!({"project": {"name": "level6", "parent_id": parent}})), 403)
            .await;
        assert!(message(&b).contains("depth"), "{b}");
    }
);

api_test!(
    async fn domain_and_parent_cannot_change(c) {
        let d = c.create_domain("dx").await;
        let p = c.create_project("fixed", "default").await;
        let b = c
            .admin("PATCH", &format!("/v3/projects/{p}"), Some(json!({"project": {"domain_id": d}})), 400)
            .await;
        assert!(message(&b).contains("domain_id"), "{b}");
        // Repeating the current values is fine.
        c.admin(
            "PATCH",
            &format!("/v3/projects/{p}"),
            Some(json!({"project": {"domain_id": "default", "parent_id": "default", "id": p}})),
            200,
        )
        .await;
        // Another id in the body is refused.
        c.admin("PATCH", &format!("/v3/projects/{p}"), Some(json!({"project": {"id": "other"}})), 400).await;
    }
);

api_test!(
    async fn tags(c) {
        let p = c.create_project("tagged", "default").await;
        let t = c.admin_token().await;
        let (s, h, b) = c.req("PUT", &format!("/v3/projects/{p}/tags/red"), Some(&t), None).await;
        assert_eq!(s, 201, "{b}");
        assert!(
            h.get("location").is_some_and(|l| l.to_str().unwrap().ends_with(&format!("/projects/{p}/tags/red"))),
            "{h:?}"
        );
        c.admin("PUT", &format!("/v3/projects/{p}/tags/red"), None, 201).await;
        c.admin("GET", &format!("/v3/projects/{p}/tags/red"), None, 204).await;
        let (s, _, _) = c.req("HEAD", &format!("/v3/projects/{p}/tags/red"), Some(&t), None).await;
        assert_eq!(s, 204);
        let b = c.admin("GET", &format!("/v3/projects/{p}/tags/blue"), None, 404).await;
        assert!(message(&b).contains("blue"), "{b}");
        let b = c.admin("GET", &format!("/v3/projects/{p}/tags"), None, 200).await;
        assert_eq!(b["tags"], json!(["red"]), "no duplicate: {b}");
        assert!(b["links"]["self"].is_string(), "{b}");

        let b = c.admin("PUT", &format!("/v3/projects/{p}/tags"), Some(json!({"tags": ["a", "b", "a"]})), 200).await;
        assert_eq!(b["tags"], json!(["a", "b"]), "{b}");
        let b = c.admin("GET", &format!("/v3/projects/{p}"), None, 200).await;
        assert_eq!(b["project"]["tags"], json!(["a", "b"]));

        // Filters.
        let q = c.create_project("other", "default").await;
        c.admin("PUT", &format!("/v3/projects/{q}/tags/b"), None, 201).await;
        let b = c.admin("GET", "/v3/projects?tags=a,b", None, 200).await;
        assert_eq!(ids(&b, "projects"), vec![p.clone()]);
        let b = c.admin("GET", "/v3/projects?tags-any=a,b", None, 200).await;
        assert_eq!(ids(&b, "projects").len(), 2, "{b}");
        let b = c.admin("GET", "/v3/projects?not-tags-any=a", None, 200).await;
        assert!(!ids(&b, "projects").contains(&p));

        c.admin("DELETE", &format!("/v3/projects/{p}/tags/a"), None, 204).await;
        c.admin("DELETE", &format!("/v3/projects/{p}/tags/a"), None, 404).await;
        c.admin("DELETE", &format!("/v3/projects/{p}/tags"), None, 204).await;
        let b = c.admin("GET", &format!("/v3/projects/{p}/tags"), None, 200).await;
        assert_eq!(b["tags"], json!([]));

        // Bad tags.
        let b = c.admin("PUT", &format!("/v3/projects/{p}/tags"), Some(json!({"tags": ["x,y"]})), 400).await;
        assert!(message(&b).contains("x,y"), "{b}");
        c.admin("PUT", &format!("/v3/projects/{p}/tags"), Some(json!({"tags": ["x".repeat(256)]})), 400).await;
        c.admin("PUT", &format!("/v3/projects/{p}/tags"), Some(json!({"tags": [1]})), 400).await;
        let many: Vec<String> = (0..81).map(|i| format!("t{i}")).collect();
        c.admin("PUT", &format!("/v3/projects/{p}/tags"), Some(json!({ "tags": many })), 400).await;
        c.admin("GET", "/v3/projects/nope/tags", None, 404).await;
    }
);

api_test!(
    async fn disabling_a_project_stops_its_tokens(c) {
        let (u, p, t) = c.project_user("dave", "member").await;
        c.expect("GET", &format!("/v3/projects/{p}"), Some(&t), None, 200).await;
        c.admin("PATCH", &format!("/v3/projects/{p}"), Some(json!({"project": {"enabled": false}})), 200).await;
        let (s, _, b) = c.req("GET", &format!("/v3/projects/{p}"), Some(&t), None).await;
        assert_eq!(s, 401, "{b}");
        let (s, _, b) = c.password_auth(&u.id, &u.password, json!({"project": {"id": p}})).await;
        assert_eq!(s, 401, "{b}");
        // Enabled again: a new token works.
        c.admin("PATCH", &format!("/v3/projects/{p}"), Some(json!({"project": {"enabled": true}})), 200).await;
        c.token_for(&u.id, &u.password, &p).await;
    }
);

api_test!(
    async fn deleting_a_project_removes_its_assignments_and_tokens(c) {
        let (u, p, t) = c.project_user("erin", "member").await;
        let before = c.admin("GET", &format!("/v3/role_assignments?user.id={}", u.id), None, 200).await;
        assert_eq!(before["role_assignments"].as_array().unwrap().len(), 1, "{before}");
        c.admin("DELETE", &format!("/v3/projects/{p}"), None, 204).await;
        let after = c.admin("GET", &format!("/v3/role_assignments?user.id={}", u.id), None, 200).await;
        assert_eq!(after["role_assignments"], json!([]));
        let (s, _, _) = c.req("GET", "/v3/auth/projects", Some(&t), None).await;
        assert_eq!(s, 401);
    }
);

api_test!(
    async fn projects_of_a_user(c) {
        let p1 = c.create_project("one", "default").await;
        let p2 = c.create_project("two", "default").await;
        let _p3 = c.create_project("three", "default").await;
        let u = c.create_user_with_role("fay", "default", "reader", On::Project(&p1)).await;
        c.grant(&u.id, false, "member", On::Project(&p2)).await;
        let b = c.admin("GET", &format!("/v3/users/{}/projects", u.id), None, 200).await;
        let mut got = names(&b, "projects");
        got.sort();
        assert_eq!(got, ["one", "two"]);
        // The user itself may list them.
        let t = c.token_for(&u.id, &u.password, &p1).await;
        let b = c.expect("GET", &format!("/v3/users/{}/projects", u.id), Some(&t), None, 200).await;
        assert_eq!(b["projects"].as_array().unwrap().len(), 2);
        // But not someone else's.
        let (s, _, _) = c.req("GET", &format!("/v3/users/{}/projects", c.admin_user_id()), Some(&t), None).await;
        assert_eq!(s, 403);
        c.admin("GET", "/v3/users/nope/projects", None, 404).await;
    }
);

api_test!(
    async fn a_member_reads_its_own_project_only(c) {
        let (_, p, t) = c.project_user("gail", "member").await;
        let other = c.create_project("not-mine", "default").await;
        c.expect("GET", &format!("/v3/projects/{p}"), Some(&t), None, 200).await;
        let (s, _, b) = c.req("GET", &format!("/v3/projects/{other}"), Some(&t), None).await;
        assert_eq!(s, 403, "{b}");
        let (s, _, b) = c.req("GET", "/v3/projects", Some(&t), None).await;
        assert_eq!(s, 403, "{b}");
    }
);
