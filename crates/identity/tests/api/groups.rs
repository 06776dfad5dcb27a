//! `/v3/groups`: CRUD, filters, membership, and roles held through a group.

use serde_json::json;

use crate::common::{ids, message, names, On, V3};

api_test!(
    async fn create_show_update_delete(c) {
        let b = c
            .admin(
                "POST",
                "/v3/groups",
                Some(json!({"group": {"name": "ops", "description": "operators", "domain_id": "default"}})),
                201,
            )
            .await;
        let g = &b["group"];
        let id = g["id"].as_str().unwrap().to_string();
        assert_eq!(g["name"], "ops");
        assert_eq!(g["description"], "operators");
        assert_eq!(g["domain_id"], "default");
        assert_eq!(g["links"]["self"], format!("{V3}/groups/{id}"));
        let got = c.admin("GET", &format!("/v3/groups/{id}"), None, 200).await;
        assert_eq!(got["group"], *g);
        let b = c
            .admin("PATCH", &format!("/v3/groups/{id}"), Some(json!({"group": {"description": "ops people"}})), 200)
            .await;
        assert_eq!(b["group"]["description"], "ops people");
        assert_eq!(b["group"]["name"], "ops");
        c.admin("DELETE", &format!("/v3/groups/{id}"), None, 204).await;
        let b = c.admin("GET", &format!("/v3/groups/{id}"), None, 404).await;
        assert_eq!(message(&b), format!("Could not find group: {id}."));
        c.admin("DELETE", &format!("/v3/groups/{id}"), None, 404).await;
    }
);

api_test!(
    async fn list_filters_and_unique_names(c) {
        let d = c.create_domain("gd").await;
        let a = c.create_group("devs", "default").await;
        let o = c.create_group("devs", &d).await;
        let _q = c.create_group("qa", "default").await;
        let b = c.admin("GET", "/v3/groups?name=devs", None, 200).await;
        assert_eq!(ids(&b, "groups").len(), 2, "{b}");
        let b = c.admin("GET", &format!("/v3/groups?domain_id={d}"), None, 200).await;
        assert_eq!(ids(&b, "groups"), vec![o.clone()]);
        let b = c.admin("GET", "/v3/groups?domain_id=default&name=devs", None, 200).await;
        assert_eq!(ids(&b, "groups"), vec![a.clone()]);
        let b = c.admin("GET", "/v3/groups", None, 200).await;
        assert_eq!(ids(&b, "groups").len(), 3);
        let b = c
            .admin("POST", "/v3/groups", Some(json!({"group": {"name": "devs", "domain_id": "default"}})), 409)
            .await;
        assert!(message(&b).contains("devs"), "{b}");
        let b = c
            .admin("POST", "/v3/groups", Some(json!({"group": {"name": "x", "domain_id": "nowhere"}})), 404)
            .await;
        assert_eq!(message(&b), "Could not find domain: nowhere.");
    }
);

api_test!(
    async fn membership(c) {
        let g = c.create_group("team", "default").await;
        let u = c.create_user("una", "default").await;
        let v = c.create_user("vic", "default").await;
        let t = c.admin_token().await;
        let path = format!("/v3/groups/{g}/users/{}", u.id);
        let (s, _, b) = c.req("GET", &path, Some(&t), None).await;
        assert_eq!(s, 404, "not a member yet: {b}");
        c.admin("PUT", &path, None, 204).await;
        c.admin("PUT", &path, None, 204).await;
        c.admin("GET", &path, None, 204).await;
        let (s, _, b) = c.req("HEAD", &path, Some(&t), None).await;
        assert_eq!(s, 204);
        assert!(b.is_null());
        let b = c.admin("GET", &format!("/v3/groups/{g}/users"), None, 200).await;
        assert_eq!(names(&b, "users"), ["una"]);
        assert!(b["users"][0].get("password").is_none());
        c.admin("GET", &format!("/v3/groups/{g}/users/{}", v.id), None, 404).await;
        c.admin("DELETE", &path, None, 204).await;
        c.admin("DELETE", &path, None, 404).await;
        c.admin("GET", &path, None, 404).await;
        // Unknown group or user.
        c.admin("PUT", &format!("/v3/groups/nope/users/{}", u.id), None, 404).await;
        let b = c.admin("PUT", &format!("/v3/groups/{g}/users/nope"), None, 404).await;
        assert!(message(&b).contains("nope"), "{b}");
    }
);

api_test!(
    async fn roles_through_a_group(c) {
        let p = c.create_project("shared", "default").await;
        let g = c.create_group("crew", "default").await;
        c.grant(&g, true, "member", On::Project(&p)).await;
        let u = c.create_user("wes", "default").await;
        let (s, _, _) = c.password_auth(&u.id, &u.password, json!({"project": {"id": p}})).await;
        assert_eq!(s, 401, "no role before joining");
        c.admin("PUT", &format!("/v3/groups/{g}/users/{}", u.id), None, 204).await;
        let (s, h, b) = c.password_auth(&u.id, &u.password, json!({"project": {"id": p}})).await;
        assert_eq!(s, 201, "{b}");
        let mut roles: Vec<&str> = b["token"]["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        roles.sort();
        assert_eq!(roles, ["member", "reader"]);
        let t = crate::common::subject_token(&h);
        // Leaving the group takes the role away from the token at once.
        c.admin("DELETE", &format!("/v3/groups/{g}/users/{}", u.id), None, 204).await;
        let (s, _, _) = c.req("GET", &format!("/v3/projects/{p}"), Some(&t), None).await;
        assert_eq!(s, 401);
    }
);

api_test!(
    async fn deleting_a_group_removes_its_grants(c) {
        let p = c.create_project("gp", "default").await;
        let g = c.create_group("doomed", "default").await;
        let u = c.create_user("xen", "default").await;
        c.admin("PUT", &format!("/v3/groups/{g}/users/{}", u.id), None, 204).await;
        c.grant(&g, true, "member", On::Project(&p)).await;
        let t = c.token_for(&u.id, &u.password, &p).await;
        c.admin("DELETE", &format!("/v3/groups/{g}"), None, 204).await;
        let b = c.admin("GET", &format!("/v3/role_assignments?group.id={g}"), None, 200).await;
        assert_eq!(b["role_assignments"], json!([]));
        let (s, _, _) = c.req("GET", &format!("/v3/projects/{p}"), Some(&t), None).await;
        assert_eq!(s, 401);
        let b = c.admin("GET", &format!("/v3/users/{}/groups", u.id), None, 200).await;
        assert_eq!(b["groups"], json!([]));
    }
);
