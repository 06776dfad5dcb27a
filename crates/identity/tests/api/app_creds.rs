//! `/v3/users/{user_id}/application_credentials` and authenticating with them.

use serde_json::{json, Value};

use crate::common::{message, subject_token, On, TestCloud, V3};

async fn create(
    c: &TestCloud,
    user_id: &str,
    token: &str,
    body: Value,
) -> (http::StatusCode, Value) {
    let (s, _, b) = c
        .req(
            "POST",
            &format!("/v3/users/{user_id}/application_credentials"),
            Some(token),
            Some(body),
        )
        .await;
    (s, b)
}

async fn app_cred_auth(c: &TestCloud, id: &str, secret: &str) -> crate::common::Resp {
    let body = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": id, "secret": secret}}}});
    c.req("POST", "/v3/auth/tokens", None, Some(body)).await
}

api_test!(
    async fn create_list_show_delete(c) {
        let (u, p, t) = c.project_user("ava", "member").await;
        let (s, b) = create(
            c,
            &u.id,
            &t,
            json!({"application_credential": {"name": "deploy", "description": "CI deploys"}}),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        let ac = &b["application_credential"];
        let id = ac["id"].as_str().unwrap().to_string();
        assert_eq!(ac["name"], "deploy");
        assert_eq!(ac["description"], "CI deploys");
        assert_eq!(ac["project_id"], p.as_str());
        assert_eq!(ac["user_id"], u.id.as_str());
        assert_eq!(ac["unrestricted"], false);
        assert_eq!(ac["expires_at"], Value::Null);
        assert!(ac["secret"].as_str().is_some_and(|s| s.len() >= 32), "a generated secret: {ac}");
        let mut roles: Vec<&str> = ac["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        roles.sort();
        assert_eq!(roles, ["member", "reader"], "the token's roles by default");
        assert_eq!(ac["links"]["self"], format!("{V3}/users/{}/application_credentials/{id}", u.id));

        let list_path = format!("/v3/users/{}/application_credentials", u.id);
        let b = c.expect("GET", &list_path, Some(&t), None, 200).await;
        let list = b["application_credentials"].as_array().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["id"], id.as_str());
        assert!(list[0].get("secret").is_none(), "the secret is shown once: {b}");
        let b = c.expect("GET", &format!("{list_path}?name=deploy"), Some(&t), None, 200).await;
        assert_eq!(b["application_credentials"].as_array().unwrap().len(), 1);
        let b = c.expect("GET", &format!("{list_path}?name=other"), Some(&t), None, 200).await;
        assert_eq!(b["application_credentials"], json!([]));
        let one = format!("{list_path}/{id}");
        let b = c.expect("GET", &one, Some(&t), None, 200).await;
        assert_eq!(b["application_credential"]["name"], "deploy");
        assert!(b["application_credential"].get("secret").is_none());
        // The admin can see it too.
        c.admin("GET", &one, None, 200).await;

        let secret = ac["secret"].as_str().unwrap().to_string();
        let (s, h, _) = app_cred_auth(c, &id, &secret).await;
        assert_eq!(s, 201);
        let act = subject_token(&h);
        c.expect("DELETE", &one, Some(&t), None, 204).await;
        c.expect("GET", &one, Some(&t), None, 404).await;
        c.expect("DELETE", &one, Some(&t), None, 404).await;
        // Its tokens stop working, and it no longer authenticates.
        let (s, _, _) = c.req("GET", &format!("/v3/projects/{p}"), Some(&act), None).await;
        assert_eq!(s, 401);
        let (s, _, _) = app_cred_auth(c, &id, &secret).await;
        assert_eq!(s, 401);
    }
);

api_test!(
    async fn chosen_secret_roles_and_expiry(c) {
        let (u, p, t) = c.project_user("bo", "member").await;
        let expires = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%S").to_string();
        let (s, b) = create(
            c,
            &u.id,
            &t,
            json!({"application_credential": {"name": "ro", "secret": "my-own-secret", "roles": [{"name": "reader"}],
                                              "expires_at": expires, "unrestricted": false}}),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        let ac = &b["application_credential"];
        assert_eq!(ac["secret"], "my-own-secret");
        assert!(ac["expires_at"].as_str().unwrap().starts_with(&expires), "{ac}");
        assert_eq!(ac["roles"].as_array().unwrap().len(), 1);
        assert_eq!(ac["roles"][0]["name"], "reader");
        let (s, _, b) = app_cred_auth(c, ac["id"].as_str().unwrap(), "my-own-secret").await;
        assert_eq!(s, 201, "{b}");
        let names: Vec<&str> = b["token"]["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["reader"], "only the delegated role");
        assert_eq!(b["token"]["project"]["id"], p.as_str());
        let exp = chrono::DateTime::parse_from_rfc3339(b["token"]["expires_at"].as_str().unwrap()).unwrap();
        assert!(exp <= chrono::Utc::now() + chrono::Duration::hours(1) + chrono::Duration::seconds(5));
    }
);

api_test!(
    async fn refused_creations(c) {
        let (u, _, t) = c.project_user("cy", "member").await;
        let (other, _, _) = c.project_user("di", "member").await;
        let count = || async { c.count_rows("application_credentials").await };
        // Unknown fields (Keystone's schema has additionalProperties: false).
        let (s, b) = create(c, &u.id, &t, json!({"application_credential": {"name": "x", "colour": "red"}})).await;
        assert_eq!(s, 400, "{b}");
        assert!(message(&b).contains("colour"), "{b}");
        // No name, bad types, too long.
        let (s, _) = create(c, &u.id, &t, json!({"application_credential": {"description": "x"}})).await;
        assert_eq!(s, 400);
        let (s, _) = create(c, &u.id, &t, json!({"application_credential": {"name": 7}})).await;
        assert_eq!(s, 400);
        let (s, _) = create(c, &u.id, &t, json!({"application_credential": {"name": "x", "unrestricted": "yes"}})).await;
        assert_eq!(s, 400);
        let (s, _) = create(c, &u.id, &t, json!({"application_credential": {"name": "n".repeat(256)}})).await;
        assert_eq!(s, 400);
        // Expiry in the past, or not a time.
        let (s, b) = create(c, &u.id, &t, json!({"application_credential": {"name": "x", "expires_at": "2001-01-01T00:00:00Z"}})).await;
        assert_eq!(s, 400, "{b}");
        let (s, _) = create(c, &u.id, &t, json!({"application_credential": {"name": "x", "expires_at": "tomorrow"}})).await;
        assert_eq!(s, 400);
        // A role the user does not have on the project: 400 (Keystone 30.0.0 `_get_roles`:
        // ApplicationCredentialValidationError); a role name that does not exist: 404.
        let (s, b) = create(c, &u.id, &t, json!({"application_credential": {"name": "x", "roles": [{"name": "admin"}]}})).await;
        assert_eq!(s, 400, "{b}");
        let (s, b) = create(c, &u.id, &t, json!({"application_credential": {"name": "x", "roles": [{"name": "no-such-role"}]}})).await;
        assert_eq!(s, 404, "{b}");
        // For another user.
        let (s, b) = create(c, &other.id, &t, json!({"application_credential": {"name": "x"}})).await;
        assert_eq!(s, 403, "{b}");
        assert_eq!(count().await, 0, "nothing was stored");
        // Duplicate names.
        let (s, _) = create(c, &u.id, &t, json!({"application_credential": {"name": "dup"}})).await;
        assert_eq!(s, 201);
        let (s, b) = create(c, &u.id, &t, json!({"application_credential": {"name": "dup"}})).await;
        assert_eq!(s, 409, "{b}");
        assert_eq!(count().await, 1);
        // Listing someone else's credentials.
        let (s, _, _) = c.req("GET", &format!("/v3/users/{}/application_credentials", other.id), Some(&t), None).await;
        assert_eq!(s, 403);
    }
);

api_test!(
    async fn restricted_credentials_cannot_make_more(c) {
        let (u, _, t) = c.project_user("ed", "member").await;
        let (_, b) = create(c, &u.id, &t, json!({"application_credential": {"name": "restricted"}})).await;
        let ac = &b["application_credential"];
        let (_, h, _) = app_cred_auth(c, ac["id"].as_str().unwrap(), ac["secret"].as_str().unwrap()).await;
        let act = subject_token(&h);
        let (s, b) = create(c, &u.id, &act, json!({"application_credential": {"name": "child"}})).await;
        assert_eq!(s, 403, "{b}");
        let (s, _, _) = c
            .req("DELETE", &format!("/v3/users/{}/application_credentials/{}", u.id, ac["id"].as_str().unwrap()), Some(&act), None)
            .await;
        assert_eq!(s, 403);
        // Nor get a new token with the token method.
        let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": act}}}});
        let (s, _, b) = c.req("POST", "/v3/auth/tokens", None, Some(body)).await;
        assert!(s == 401 || s == 403, "{s}: {b}");
        // An unrestricted one can.
        let (_, b) = create(c, &u.id, &t, json!({"application_credential": {"name": "free", "unrestricted": true}})).await;
        let ac = &b["application_credential"];
        let (_, h, _) = app_cred_auth(c, ac["id"].as_str().unwrap(), ac["secret"].as_str().unwrap()).await;
        let act = subject_token(&h);
        let (s, b) = create(c, &u.id, &act, json!({"application_credential": {"name": "child"}})).await;
        assert_eq!(s, 201, "{b}");
    }
);

api_test!(
    async fn a_scope_cannot_be_requested(c) {
        let (u, p, t) = c.project_user("fa", "member").await;
        let (_, b) = create(c, &u.id, &t, json!({"application_credential": {"name": "s"}})).await;
        let ac = &b["application_credential"];
        let body = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": ac["id"], "secret": ac["secret"]}},
            "scope": {"project": {"id": p}}}});
        let (s, _, b) = c.req("POST", "/v3/auth/tokens", None, Some(body)).await;
        assert_eq!(s, 401, "Keystone: ApplicationCredentialAuthError: {b}");
        assert!(message(&b).contains("scope"), "{b}");
    }
);

api_test!(
    async fn losing_the_role_disables_the_credential(c) {
        let (u, p, t) = c.project_user("gi", "member").await;
        let (_, b) = create(c, &u.id, &t, json!({"application_credential": {"name": "lose"}})).await;
        let ac = &b["application_credential"];
        let (id, secret) = (ac["id"].as_str().unwrap().to_string(), ac["secret"].as_str().unwrap().to_string());
        let (_, h, _) = app_cred_auth(c, &id, &secret).await;
        let act = subject_token(&h);
        let member = c.role_id("member").await;
        c.admin("DELETE", &format!("/v3/projects/{p}/users/{}/roles/{member}", u.id), None, 204).await;
        let (s, _, _) = c.req("GET", &format!("/v3/projects/{p}"), Some(&act), None).await;
        assert_eq!(s, 401);
        let (s, _, _) = app_cred_auth(c, &id, &secret).await;
        assert_eq!(s, 401);
        // Given back: it works again (the credential itself was kept).
        c.grant(&u.id, false, "member", On::Project(&p)).await;
        let (s, _, b) = app_cred_auth(c, &id, &secret).await;
        assert_eq!(s, 201, "{b}");
    }
);

api_test!(
    async fn deleting_the_user_deletes_its_credentials(c) {
        let (u, _, t) = c.project_user("hu", "member").await;
        let (_, b) = create(c, &u.id, &t, json!({"application_credential": {"name": "bye"}})).await;
        let ac = &b["application_credential"];
        c.admin("DELETE", &format!("/v3/users/{}", u.id), None, 204).await;
        let (s, _, _) = app_cred_auth(c, ac["id"].as_str().unwrap(), ac["secret"].as_str().unwrap()).await;
        assert_eq!(s, 401);
        assert_eq!(c.count_rows("application_credentials").await, 0);
    }
);

api_test!(
    async fn disabling_the_user_deletes_its_credentials(c) {
        // Keystone deletes a user's application credentials when the user is disabled.
        let (u, _, t) = c.project_user("iv", "member").await;
        let (_, b) = create(c, &u.id, &t, json!({"application_credential": {"name": "off"}})).await;
        let ac = &b["application_credential"];
        c.admin("PATCH", &format!("/v3/users/{}", u.id), Some(json!({"user": {"enabled": false}})), 200).await;
        c.admin("PATCH", &format!("/v3/users/{}", u.id), Some(json!({"user": {"enabled": true}})), 200).await;
        let (s, _, _) = app_cred_auth(c, ac["id"].as_str().unwrap(), ac["secret"].as_str().unwrap()).await;
        assert_eq!(s, 401);
        let b = c.admin("GET", &format!("/v3/users/{}/application_credentials", u.id), None, 200).await;
        assert_eq!(b["application_credentials"], json!([]));
    }
);
