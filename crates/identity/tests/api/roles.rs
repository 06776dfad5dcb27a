//! `/v3/roles`: global and domain-specific roles, and implied roles (`/v3/roles/{id}/implies`,
//! `/v3/role_inferences`).

use serde_json::{json, Value};

use crate::common::{ids, message, names, subject_token, On, V3};

fn token_role_names(b: &Value) -> Vec<String> {
    let mut v: Vec<String> = b["token"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

api_test!(
    async fn default_roles_exist(c) {
        let b = c.admin("GET", "/v3/roles", None, 200).await;
        let mut got = names(&b, "roles");
        got.sort();
        assert_eq!(got, ["admin", "manager", "member", "reader", "service"]);
        for r in b["roles"].as_array().unwrap() {
            assert_eq!(r["domain_id"], Value::Null, "{r}");
        }
        let b = c.admin("GET", "/v3/role_inferences", None, 200).await;
        let rules = b["role_inferences"].as_array().unwrap();
        let mut pairs: Vec<(String, String)> = rules
            .iter()
            .flat_map(|r| {
                let prior = r["prior_role"]["name"].as_str().unwrap().to_string();
                r["implies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |i| (prior.clone(), i["name"].as_str().unwrap().to_string()))
            })
            .collect();
        pairs.sort();
        let want: Vec<(String, String)> = [("admin", "manager"), ("manager", "member"), ("member", "reader")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(pairs, want);
    }
);

api_test!(
    async fn create_show_update_delete(c) {
        let b = c
            .admin("POST", "/v3/roles", Some(json!({"role": {"name": "auditor", "description": "reads logs"}})), 201)
            .await;
        let r = &b["role"];
        let id = r["id"].as_str().unwrap().to_string();
        assert_eq!(r["name"], "auditor");
        assert_eq!(r["description"], "reads logs");
        assert_eq!(r["domain_id"], Value::Null);
        assert_eq!(r["links"]["self"], format!("{V3}/roles/{id}"));
        assert_eq!(c.admin("GET", &format!("/v3/roles/{id}"), None, 200).await["role"], *r);
        let b = c.admin("GET", "/v3/roles?name=auditor", None, 200).await;
        assert_eq!(ids(&b, "roles"), vec![id.clone()]);
        let b = c
            .admin("PATCH", &format!("/v3/roles/{id}"), Some(json!({"role": {"name": "auditor2"}})), 200)
            .await;
        assert_eq!(b["role"]["name"], "auditor2");
        assert_eq!(b["role"]["description"], "reads logs");
        let b = c.admin("POST", "/v3/roles", Some(json!({"role": {"name": "auditor2"}})), 409).await;
        assert!(message(&b).contains("auditor2"), "{b}");
        c.admin("DELETE", &format!("/v3/roles/{id}"), None, 204).await;
        let b = c.admin("GET", &format!("/v3/roles/{id}"), None, 404).await;
        assert_eq!(message(&b), format!("Could not find role: {id}."));
    }
);

api_test!(
    async fn deleting_a_role_removes_its_assignments(c) {
        let rid = c.create_role("temp").await;
        let p = c.create_project("rp", "default").await;
        let u = c.create_user("ray", "default").await;
        c.grant(&u.id, false, "temp", On::Project(&p)).await;
        let t = c.token_for(&u.id, &u.password, &p).await;
        c.admin("DELETE", &format!("/v3/roles/{rid}"), None, 204).await;
        let b = c.admin("GET", &format!("/v3/role_assignments?user.id={}", u.id), None, 200).await;
        assert_eq!(b["role_assignments"], json!([]));
        let (s, _, _) = c.req("GET", &format!("/v3/projects/{p}"), Some(&t), None).await;
        assert_eq!(s, 401);
    }
);

api_test!(
    async fn domain_specific_roles(c) {
        let d = c.create_domain("dsr").await;
        let other = c.create_domain("dsr-other").await;
        let b = c
            .admin("POST", "/v3/roles", Some(json!({"role": {"name": "member", "domain_id": d}})), 201)
            .await;
        let drid = b["role"]["id"].as_str().unwrap().to_string();
        assert_eq!(b["role"]["domain_id"], d.as_str());
        // Same name in the same domain: conflict. In another domain: fine.
        c.admin("POST", "/v3/roles", Some(json!({"role": {"name": "member", "domain_id": d}})), 409).await;
        c.admin("POST", "/v3/roles", Some(json!({"role": {"name": "member", "domain_id": other}})), 201).await;
        // Unknown domain.
        c.admin("POST", "/v3/roles", Some(json!({"role": {"name": "x", "domain_id": "nowhere"}})), 400).await;
        // Listing: global roles by default, a domain's roles with ?domain_id.
        let b = c.admin("GET", "/v3/roles", None, 200).await;
        assert!(!ids(&b, "roles").contains(&drid), "{b}");
        let b = c.admin("GET", &format!("/v3/roles?domain_id={d}"), None, 200).await;
        assert_eq!(ids(&b, "roles"), vec![drid.clone()]);
        // The domain of a role cannot change.
        c.admin("PATCH", &format!("/v3/roles/{drid}"), Some(json!({"role": {"domain_id": other}})), 400).await;

        // Granted inside its domain: fine; the token shows only the global roles it implies.
        let p = c.create_project("in-d", &d).await;
        let po = c.create_project("in-other", &other).await;
        let u = c.create_user("dora", &d).await;
        let reader = c.role_id("reader").await;
        c.admin("PUT", &format!("/v3/roles/{drid}/implies/{reader}"), None, 201).await;
        c.admin("PUT", &format!("/v3/projects/{p}/users/{}/roles/{drid}", u.id), None, 204).await;
        let (s, _, b) = c.password_auth(&u.id, &u.password, json!({"project": {"id": p}})).await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(token_role_names(&b), ["reader"], "the domain role itself is not in the token");
        // Outside its domain: refused.
        let b = c.admin("PUT", &format!("/v3/projects/{po}/users/{}/roles/{drid}", u.id), None, 403).await;
        assert!(message(&b).contains(&drid), "{b}");
        // A global role cannot imply a domain-specific one.
        c.admin("PUT", &format!("/v3/roles/{reader}/implies/{drid}"), None, 403).await;
    }
);

api_test!(
    async fn implied_roles(c) {
        let prior = c.create_role("lead").await;
        let implied = c.create_role("dev").await;
        let path = format!("/v3/roles/{prior}/implies/{implied}");
        let t = c.admin_token().await;
        c.admin("GET", &path, None, 404).await;
        let b = c.admin("PUT", &path, None, 201).await;
        let inf = &b["role_inference"];
        assert_eq!(inf["prior_role"]["id"], prior.as_str());
        assert_eq!(inf["prior_role"]["name"], "lead");
        assert_eq!(inf["prior_role"]["links"]["self"], format!("{V3}/roles/{prior}"));
        assert_eq!(inf["implies"]["id"], implied.as_str());
        assert_eq!(inf["implies"]["name"], "dev");
        assert_eq!(b["links"]["self"], format!("{V3}{}", &path[3..]));
        let got = c.admin("GET", &path, None, 200).await;
        assert_eq!(got["role_inference"], *inf);
        let (s, _, _) = c.req("HEAD", &path, Some(&t), None).await;
        assert_eq!(s, 204, "HEAD checks an implication (Keystone answers 204)");
        let b = c.admin("GET", &format!("/v3/roles/{prior}/implies"), None, 200).await;
        assert_eq!(b["role_inference"]["prior_role"]["id"], prior.as_str());
        assert_eq!(ids(&b["role_inference"], "implies"), vec![implied.clone()]);
        let b = c.admin("GET", "/v3/role_inferences", None, 200).await;
        assert!(
            b["role_inferences"].as_array().unwrap().iter().any(|r| r["prior_role"]["id"] == prior.as_str()
                && r["implies"].as_array().unwrap().iter().any(|i| i["id"] == implied.as_str())),
            "{b}"
        );

        // A user holding the prior role gets the implied one in its token.
        let p = c.create_project("imp", "default").await;
        let u = c.create_user_with_role("ian", "default", "lead", On::Project(&p)).await;
        let (s, h, b) = c.password_auth(&u.id, &u.password, json!({"project": {"id": p}})).await;
        assert_eq!(s, 201);
        assert_eq!(token_role_names(&b), ["dev", "lead"]);
        let tok = subject_token(&h);

        c.admin("DELETE", &path, None, 204).await;
        c.admin("DELETE", &path, None, 404).await;
        c.admin("GET", &path, None, 404).await;
        // The same token no longer shows the implied role.
        let (s, _, b) = c.req_with_headers("GET", "/v3/auth/tokens", Some(&t), &[("x-subject-token", &tok)], None).await;
        assert_eq!(s, 200);
        assert_eq!(token_role_names(&b), ["lead"]);
        // Unknown roles.
        c.admin("PUT", &format!("/v3/roles/{prior}/implies/nope"), None, 404).await;
        c.admin("PUT", &format!("/v3/roles/nope/implies/{implied}"), None, 404).await;
    }
);

api_test!(
    async fn implied_role_chains_are_transitive(c) {
        let a = c.create_role("ra").await;
        let b_ = c.create_role("rb").await;
        let c_ = c.create_role("rc").await;
        c.admin("PUT", &format!("/v3/roles/{a}/implies/{b_}"), None, 201).await;
        c.admin("PUT", &format!("/v3/roles/{b_}/implies/{c_}"), None, 201).await;
        let p = c.create_project("chain", "default").await;
        let u = c.create_user_with_role("jo", "default", "ra", On::Project(&p)).await;
        let (_, _, b) = c.password_auth(&u.id, &u.password, json!({"project": {"id": p}})).await;
        assert_eq!(token_role_names(&b), ["ra", "rb", "rc"]);
    }
);

api_test!(
    async fn cycles_are_refused(c) {
        let a = c.create_role("ca").await;
        let b_ = c.create_role("cb").await;
        let c_ = c.create_role("cc").await;
        c.admin("PUT", &format!("/v3/roles/{a}/implies/{b_}"), None, 201).await;
        c.admin("PUT", &format!("/v3/roles/{b_}/implies/{c_}"), None, 201).await;
        let b = c.admin("PUT", &format!("/v3/roles/{c_}/implies/{a}"), None, 400).await;
        assert!(message(&b).contains("cycle"), "{b}");
        let b = c.admin("PUT", &format!("/v3/roles/{a}/implies/{a}"), None, 400).await;
        assert!(message(&b).contains("cycle"), "{b}");
        // Nothing was stored.
        c.admin("GET", &format!("/v3/roles/{c_}/implies/{a}"), None, 404).await;
        let b = c.admin("GET", &format!("/v3/roles/{c_}/implies"), None, 200).await;
        assert_eq!(b["role_inference"]["implies"], json!([]));
    }
);

api_test!(
    async fn admin_cannot_be_implied(c) {
        let r = c.create_role("wannabe").await;
        let admin = c.role_id("admin").await;
        let b = c.admin("PUT", &format!("/v3/roles/{r}/implies/{admin}"), None, 403).await;
        assert!(message(&b).contains("admin"), "{b}");
    }
);

api_test!(
    async fn only_admins_manage_roles(c) {
        let (_, _, t) = c.project_user("nobody", "member").await;
        let (s, _, _) = c.req("POST", "/v3/roles", Some(&t), Some(json!({"role": {"name": "mine"}}))).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("GET", "/v3/roles", Some(&t), None).await;
        assert_eq!(s, 403);
        let r = c.role_id("member").await;
        let (s, _, _) = c.req("DELETE", &format!("/v3/roles/{r}"), Some(&t), None).await;
        assert_eq!(s, 403);
        let (s, _, _) = c.req("GET", "/v3/role_inferences", Some(&t), None).await;
        assert_eq!(s, 403);
    }
);
