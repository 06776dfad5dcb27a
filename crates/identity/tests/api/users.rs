//! `/v3/users`: CRUD, filters, self-service password change, lockout, and what disabling or
//! deleting a user does to its tokens.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{ids, message, names, On, TestCloud, V3};

fn no_secrets(v: &Value) {
    let s = v.to_string();
    assert!(
        !s.contains("password_hash") && !s.contains("argon2"),
        "no hash leaks: {s}"
    );
    assert!(
        v.get("password").is_none(),
        "no password in a user body: {v}"
    );
}

api_test!(
    async fn create_show_update_delete(c) {
        let b = c
            .admin(
                "POST",
                "/v3/users",
                Some(json!({"user": {"name": "alice", "domain_id": "default", "password": "s3cret",
                                     "email": "alice@example.org", "description": "Alice"}})),
                201,
            )
            .await;
        let u = &b["user"];
        no_secrets(u);
        let id = u["id"].as_str().unwrap().to_string();
        assert_eq!(u["name"], "alice");
        assert_eq!(u["domain_id"], "default");
        assert_eq!(u["enabled"], true);
        assert_eq!(u["email"], "alice@example.org");
        assert_eq!(u["description"], "Alice");
        assert!(u.as_object().unwrap().contains_key("password_expires_at"), "{u}");
        assert_eq!(u["links"]["self"], format!("{V3}/users/{id}"));

        let got = c.admin("GET", &format!("/v3/users/{id}"), None, 200).await;
        assert_eq!(got["user"], *u);
        no_secrets(&got["user"]);

        let b = c
            .admin(
                "PATCH",
                &format!("/v3/users/{id}"),
                Some(json!({"user": {"name": "alice2", "email": "a2@example.org"}})),
                200,
            )
            .await;
        assert_eq!(b["user"]["name"], "alice2");
        assert_eq!(b["user"]["email"], "a2@example.org");
        assert_eq!(b["user"]["description"], "Alice");
        no_secrets(&b["user"]);
        // The password still works after a profile update.
        c.unscoped_token(&id, "s3cret").await;

        c.admin("DELETE", &format!("/v3/users/{id}"), None, 204).await;
        let b = c.admin("GET", &format!("/v3/users/{id}"), None, 404).await;
        assert_eq!(message(&b), format!("Could not find user: {id}."));
        c.admin("DELETE", &format!("/v3/users/{id}"), None, 404).await;
    }
);

api_test!(
    async fn list_and_filters(c) {
        let d = c.create_domain("other").await;
        let a = c.create_user("amy", "default").await;
        let b_ = c.create_user("ben", "default").await;
        let o = c.create_user("amy", &d).await;
        c.admin("PATCH", &format!("/v3/users/{}", b_.id), Some(json!({"user": {"enabled": false}})), 200).await;
        let all = c.admin("GET", "/v3/users", None, 200).await;
        let all_ids = ids(&all, "users");
        for u in [&a.id, &b_.id, &o.id, &c.admin_user_id().to_string()] {
            assert!(all_ids.contains(u), "{u}: {all}");
        }
        for u in all["users"].as_array().unwrap() {
            no_secrets(u);
        }
        assert_eq!(all["links"]["self"], format!("{V3}/users"));
        let b = c.admin("GET", "/v3/users?name=amy", None, 200).await;
        assert_eq!(ids(&b, "users").len(), 2, "{b}");
        let b = c.admin("GET", &format!("/v3/users?domain_id={d}"), None, 200).await;
        assert_eq!(ids(&b, "users"), vec![o.id.clone()]);
        let b = c.admin("GET", "/v3/users?domain_id=default&name=amy", None, 200).await;
        assert_eq!(ids(&b, "users"), vec![a.id.clone()]);
        let b = c.admin("GET", "/v3/users?enabled=false", None, 200).await;
        assert_eq!(ids(&b, "users"), vec![b_.id.clone()]);
    }
);

api_test!(
    async fn names_are_unique_per_domain(c) {
        let d = c.create_domain("d2").await;
        c.create_user("sam", "default").await;
        let b = c
            .admin("POST", "/v3/users", Some(json!({"user": {"name": "sam", "domain_id": "default"}})), 409)
            .await;
        assert_eq!(
            message(&b),
            "Conflict occurred attempting to store user - Duplicate entry found with name sam at domain ID default."
        );
        c.admin("POST", "/v3/users", Some(json!({"user": {"name": "sam", "domain_id": d}})), 201).await;
        let other = c.create_user("tom", "default").await;
        c.admin("PATCH", &format!("/v3/users/{}", other.id), Some(json!({"user": {"name": "sam"}})), 409).await;
    }
);

api_test!(
    async fn unknown_domain_is_404(c) {
        let b = c
            .admin("POST", "/v3/users", Some(json!({"user": {"name": "x", "domain_id": "nowhere"}})), 404)
            .await;
        assert_eq!(message(&b), "Could not find domain: nowhere.");
        assert_eq!(c.admin("GET", "/v3/users?name=x", None, 200).await["users"], json!([]));
    }
);

api_test!(
    async fn domain_cannot_change(c) {
        let d = c.create_domain("dy").await;
        let u = c.create_user("fixed", "default").await;
        let b = c
            .admin("PATCH", &format!("/v3/users/{}", u.id), Some(json!({"user": {"domain_id": d}})), 400)
            .await;
        assert!(message(&b).contains("domain_id"), "{b}");
    }
);

api_test!(
    async fn admin_sets_a_password(c) {
        let u = c.create_user("pat", "default").await;
        let t = c.unscoped_token(&u.id, &u.password).await;
        c.admin("PATCH", &format!("/v3/users/{}", u.id), Some(json!({"user": {"password": "newpass"}})), 200).await;
        let (s, _, _) = c.password_auth(&u.id, &u.password, Value::Null).await;
        assert_eq!(s, 401, "the old password is gone");
        c.unscoped_token(&u.id, "newpass").await;
        let (s, _, _) = c.req("GET", "/v3/auth/projects", Some(&t), None).await;
        assert_eq!(s, 401, "tokens from before the change are revoked");
    }
);

api_test!(
    async fn change_own_password(c) {
        let p = c.create_project("pw", "default").await;
        let u = c.create_user_with_role("quinn", "default", "member", On::Project(&p)).await;
        let old_token = c.token_for(&u.id, &u.password, &p).await;
        let path = format!("/v3/users/{}/password", u.id);
        // Wrong original password.
        let (s, _, b) = c
            .req("POST", &path, None, Some(json!({"user": {"original_password": "wrong", "password": "next"}})))
            .await;
        assert_eq!(s, 401, "{b}");
        c.token_for(&u.id, &u.password, &p).await;
        // Missing fields.
        let (s, _, b) = c.req("POST", &path, None, Some(json!({"user": {"password": "next"}}))).await;
        assert_eq!(s, 400, "{b}");
        assert!(message(&b).contains("original_password"), "{b}");
        let (s, _, b) = c.req("POST", &path, None, Some(json!({"user": {"original_password": u.password}}))).await;
        assert_eq!(s, 400, "{b}");
        // Right: 204, no token needed (the original password authenticates).
        let (s, _, b) = c
            .req("POST", &path, None, Some(json!({"user": {"original_password": u.password, "password": "next"}})))
            .await;
        assert_eq!(s, 204, "{b}");
        assert!(b.is_null());
        let (s, _, _) = c.password_auth(&u.id, &u.password, Value::Null).await;
        assert_eq!(s, 401);
        let new_token = c.token_for(&u.id, "next", &p).await;
        let (s, _, _) = c.req("GET", &format!("/v3/projects/{p}"), Some(&old_token), None).await;
        assert_eq!(s, 401, "old tokens are revoked");
        c.expect("GET", &format!("/v3/projects/{p}"), Some(&new_token), None, 200).await;
        // An unknown user: 401 too (no existence leak).
        let (s, _, _) = c
            .req("POST", "/v3/users/nope/password", None, Some(json!({"user": {"original_password": "a", "password": "b"}})))
            .await;
        assert_eq!(s, 401);
    }
);

api_test!(
    async fn lockout_after_failed_attempts(engine: e) {
        let c = TestCloud::builder(e)
            .lockout(2, Duration::from_secs(5))
            .start()
            .await;
        let u = c.create_user("locky", "default").await;
        let v = c.create_user("bystander", "default").await;
        for _ in 0..2 {
            let (s, _, b) = c.password_auth(&u.id, "wrong", Value::Null).await;
            assert_eq!(s, 401, "{b}");
        }
        // Locked: even the right password is refused, and the message says so.
        let (s, _, b) = c.password_auth(&u.id, &u.password, Value::Null).await;
        assert_eq!(s, 401, "{b}");
        assert_eq!(
            message(&b),
            format!("The account is locked for user: {}.", u.id)
        );
        // Others are not affected.
        c.unscoped_token(&v.id, &v.password).await;
        // After the lockout duration, the right password works again and resets the count.
        tokio::time::sleep(Duration::from_millis(5200)).await;
        c.unscoped_token(&u.id, &u.password).await;
        let (s, _, b) = c.password_auth(&u.id, "wrong", Value::Null).await;
        assert_eq!(s, 401);
        assert!(
            !message(&b).contains("locked"),
            "one failure after a success does not lock: {b}"
        );
        c.unscoped_token(&u.id, &u.password).await;
        c.finish().await;
    }
);

api_test!(
    async fn an_admin_password_reset_unlocks(engine: e) {
        let c = TestCloud::builder(e)
            .lockout(1, Duration::from_secs(3600))
            .start()
            .await;
        let u = c.create_user("stuck", "default").await;
        let (s, _, _) = c.password_auth(&u.id, "wrong", Value::Null).await;
        assert_eq!(s, 401);
        let (s, _, b) = c.password_auth(&u.id, &u.password, Value::Null).await;
        assert_eq!(s, 401);
        assert!(message(&b).contains("locked"), "{b}");
        c.admin(
            "PATCH",
            &format!("/v3/users/{}", u.id),
            Some(json!({"user": {"password": "fresh"}})),
            200,
        )
        .await;
        c.unscoped_token(&u.id, "fresh").await;
        c.finish().await;
    }
);

api_test!(
    async fn no_lockout_when_not_configured(c) {
        let u = c.create_user("free", "default").await;
        for _ in 0..6 {
            let (s, _, _) = c.password_auth(&u.id, "wrong", Value::Null).await;
            assert_eq!(s, 401);
        }
        c.unscoped_token(&u.id, &u.password).await;
    }
);

api_test!(
    async fn disabling_a_user_revokes_its_tokens(c) {
        let (u, p, t) = c.project_user("dis", "member").await;
        c.admin("PATCH", &format!("/v3/users/{}", u.id), Some(json!({"user": {"enabled": false}})), 200).await;
        let (s, _, _) = c.req("GET", &format!("/v3/projects/{p}"), Some(&t), None).await;
        assert_eq!(s, 401);
        c.admin("PATCH", &format!("/v3/users/{}", u.id), Some(json!({"user": {"enabled": true}})), 200).await;
        let (s, _, _) = c.req("GET", &format!("/v3/projects/{p}"), Some(&t), None).await;
        assert_eq!(s, 401, "re-enabling does not bring revoked tokens back");
        c.token_for(&u.id, &u.password, &p).await;
    }
);

api_test!(
    async fn deleting_a_user_removes_its_assignments_memberships_and_tokens(c) {
        let (u, p, t) = c.project_user("gone", "member").await;
        let g = c.create_group("g", "default").await;
        c.admin("PUT", &format!("/v3/groups/{g}/users/{}", u.id), None, 204).await;
        c.admin("DELETE", &format!("/v3/users/{}", u.id), None, 204).await;
        let (s, _, _) = c.req("GET", &format!("/v3/projects/{p}"), Some(&t), None).await;
        assert_eq!(s, 401);
        let b = c.admin("GET", &format!("/v3/role_assignments?user.id={}", u.id), None, 200).await;
        assert_eq!(b["role_assignments"], json!([]));
        let b = c.admin("GET", &format!("/v3/groups/{g}/users"), None, 200).await;
        assert_eq!(b["users"], json!([]));
    }
);

api_test!(
    async fn groups_of_a_user(c) {
        let u = c.create_user("member", "default").await;
        let g1 = c.create_group("first", "default").await;
        let g2 = c.create_group("second", "default").await;
        let _g3 = c.create_group("third", "default").await;
        for g in [&g1, &g2] {
            c.admin("PUT", &format!("/v3/groups/{g}/users/{}", u.id), None, 204).await;
        }
        let b = c.admin("GET", &format!("/v3/users/{}/groups", u.id), None, 200).await;
        let mut got = names(&b, "groups");
        got.sort();
        assert_eq!(got, ["first", "second"]);
        c.admin("GET", "/v3/users/nope/groups", None, 404).await;
    }
);

api_test!(
    async fn a_user_reads_itself_but_not_others(c) {
        let (u, _, t) = c.project_user("self", "member").await;
        let b = c.expect("GET", &format!("/v3/users/{}", u.id), Some(&t), None, 200).await;
        assert_eq!(b["user"]["name"], "self");
        let (s, _, b) = c.req("GET", &format!("/v3/users/{}", c.admin_user_id()), Some(&t), None).await;
        assert_eq!(s, 403, "{b}");
        let (s, _, b) = c.req("GET", "/v3/users", Some(&t), None).await;
        assert_eq!(s, 403, "{b}");
        // It cannot update itself (Keystone: identity:update_user is admin-only).
        let (s, _, b) = c
            .req("PATCH", &format!("/v3/users/{}", u.id), Some(&t), Some(json!({"user": {"enabled": true}})))
            .await;
        assert_eq!(s, 403, "{b}");
    }
);

api_test!(
    async fn password_change_is_no_way_around_the_lockout(engine: e) {
        let c = TestCloud::builder(e)
            .lockout(2, Duration::from_secs(2))
            .start()
            .await;
        let u = c.create_user("guessed", "default").await;
        let path = format!("/v3/users/{}/password", u.id);
        let change = |orig: &str| json!({"user": {"original_password": orig, "password": "taken"}});
        // Wrong original passwords count as failed logins...
        for _ in 0..2 {
            let (s, _, b) = c.req("POST", &path, None, Some(change("guess"))).await;
            assert_eq!(s, 401, "{b}");
        }
        // ... so the account is now locked, for logins and for password changes alike.
        let (s, _, b) = c.password_auth(&u.id, &u.password, Value::Null).await;
        assert_eq!(s, 401);
        assert!(message(&b).contains("locked"), "{b}");
        let (s, _, b) = c.req("POST", &path, None, Some(change(&u.password))).await;
        assert_eq!(s, 401, "{b}");
        assert!(message(&b).contains("locked"), "{b}");
        // Nothing changed: once the lockout is over, the old password is still the one.
        tokio::time::sleep(Duration::from_millis(2200)).await;
        c.unscoped_token(&u.id, &u.password).await;
        c.finish().await;
    }
);
