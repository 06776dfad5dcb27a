//! Behaviour of the built-in Keystone (identity) defaults.

// Test code: a panic is a failed test, and test data stays in range.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use ferrostack_policy::{Credentials, Enforcer};
use serde_json::{json, Value};

fn roles(names: &[&str]) -> Vec<String> {
    names.iter().map(|r| r.to_string()).collect()
}

/// Role sets as keystone's implied roles expand them.
const ADMIN: &[&str] = &["admin", "manager", "member", "reader"];
const MANAGER: &[&str] = &["manager", "member", "reader"];
const MEMBER: &[&str] = &["member", "reader"];
const READER: &[&str] = &["reader"];

fn project_user(r: &[&str]) -> Credentials {
    Credentials {
        user_id: "u-proj".into(),
        user_domain_id: "dom-a".into(),
        project_id: Some("proj-1".into()),
        project_domain_id: Some("dom-a".into()),
        roles: roles(r),
        ..Credentials::default()
    }
}

/// An admin of the cloud's admin project (Keystone's `is_admin_project`): a cloud admin.
fn cloud_admin() -> Credentials {
    Credentials {
        is_admin_project: true,
        ..project_user(ADMIN)
    }
}

fn domain_user(domain: &str, r: &[&str]) -> Credentials {
    Credentials {
        user_id: format!("u-{domain}"),
        user_domain_id: domain.into(),
        domain_id: Some(domain.into()),
        roles: roles(r),
        ..Credentials::default()
    }
}

fn system_user(r: &[&str]) -> Credentials {
    Credentials {
        user_id: "u-sys".into(),
        user_domain_id: "default".into(),
        system_scope: Some("all".into()),
        roles: roles(r),
        ..Credentials::default()
    }
}

fn user_target(id: &str, domain: &str) -> Value {
    json!({"user_id": id, "target": {"user": {"id": id, "domain_id": domain}}})
}

fn project_target(id: &str, domain: &str) -> Value {
    json!({"project_id": id, "target": {"project": {"id": id, "domain_id": domain}}})
}

fn new_project(domain: &str) -> Value {
    json!({"target": {"project": {"name": "new", "domain_id": domain}}})
}

fn new_user(domain: &str) -> Value {
    json!({"target": {"user": {"name": "new", "domain_id": domain}}})
}

fn list_in_domain(domain: &str) -> Value {
    json!({"target": {"domain_id": domain}})
}

#[test]
fn defaults_load_and_cover_the_v3_api() {
    let e = Enforcer::try_with_defaults().expect("embedded defaults load");
    let expected = [
        "admin_required",
        "service_role",
        "service_or_admin",
        "owner",
        "admin_or_owner",
        "token_subject",
        "admin_or_token_subject",
        "service_admin_or_token_subject",
        "domain_managed_target_role",
        "default",
        "identity:check_token",
        "identity:validate_token",
        "identity:revoke_token",
        "identity:revocation_list",
        "identity:get_auth_catalog",
        "identity:get_auth_projects",
        "identity:get_auth_domains",
        "identity:get_auth_system",
        "identity:get_domain",
        "identity:list_domains",
        "identity:create_domain",
        "identity:update_domain",
        "identity:delete_domain",
        "identity:get_project",
        "identity:list_projects",
        "identity:list_user_projects",
        "identity:create_project",
        "identity:update_project",
        "identity:delete_project",
        "identity:list_project_tags",
        "identity:get_project_tag",
        "identity:update_project_tags",
        "identity:create_project_tag",
        "identity:delete_project_tags",
        "identity:delete_project_tag",
        "identity:get_user",
        "identity:list_users",
        "identity:create_user",
        "identity:update_user",
        "identity:delete_user",
        "identity:list_projects_for_user",
        "identity:list_domains_for_user",
        "identity:change_password",
        "identity:get_group",
        "identity:list_groups",
        "identity:list_groups_for_user",
        "identity:create_group",
        "identity:update_group",
        "identity:delete_group",
        "identity:list_users_in_group",
        "identity:check_user_in_group",
        "identity:add_user_to_group",
        "identity:remove_user_from_group",
        "identity:get_role",
        "identity:list_roles",
        "identity:create_role",
        "identity:update_role",
        "identity:delete_role",
        "identity:get_domain_role",
        "identity:list_domain_roles",
        "identity:create_domain_role",
        "identity:update_domain_role",
        "identity:delete_domain_role",
        "identity:get_implied_role",
        "identity:list_implied_roles",
        "identity:list_role_inference_rules",
        "identity:check_implied_role",
        "identity:create_implied_role",
        "identity:delete_implied_role",
        "identity:check_grant",
        "identity:list_grants",
        "identity:create_grant",
        "identity:revoke_grant",
        "identity:list_system_grants_for_user",
        "identity:check_system_grant_for_user",
        "identity:create_system_grant_for_user",
        "identity:revoke_system_grant_for_user",
        "identity:list_system_grants_for_group",
        "identity:check_system_grant_for_group",
        "identity:create_system_grant_for_group",
        "identity:revoke_system_grant_for_group",
        "identity:list_role_assignments",
        "identity:list_role_assignments_for_tree",
        "identity:get_region",
        "identity:list_regions",
        "identity:create_region",
        "identity:update_region",
        "identity:delete_region",
        "identity:get_service",
        "identity:list_services",
        "identity:create_service",
        "identity:update_service",
        "identity:delete_service",
        "identity:get_endpoint",
        "identity:list_endpoints",
        "identity:create_endpoint",
        "identity:update_endpoint",
        "identity:delete_endpoint",
        "identity:get_application_credential",
        "identity:list_application_credentials",
        "identity:create_application_credential",
        "identity:delete_application_credential",
        "identity:get_credential",
        "identity:list_credentials",
        "identity:create_credential",
        "identity:update_credential",
        "identity:delete_credential",
        "identity:get_limit_model",
        "identity:get_limit",
        "identity:list_limits",
        "identity:create_limits",
        "identity:update_limit",
        "identity:delete_limit",
        "identity:get_registered_limit",
        "identity:list_registered_limits",
        "identity:create_registered_limits",
        "identity:update_registered_limit",
        "identity:delete_registered_limit",
    ];
    for name in expected {
        assert!(e.has_rule(name), "missing default rule {name}");
    }
    let names = e.rule_names();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    assert_eq!(
        names.iter().filter(|n| n.starts_with("identity:")).count(),
        132
    );
    // Every rule reference in the defaults resolves.
    for name in &names {
        let src = e.check_str(name).unwrap();
        for tok in src.split(|c: char| c.is_whitespace() || c == '(' || c == ')') {
            if let Some(target) = tok.strip_prefix("rule:") {
                assert!(
                    e.has_rule(target),
                    "{name} references unknown rule {target}"
                );
            }
        }
    }
}

#[test]
fn the_admin_projects_admin_may_create_projects_and_users() {
    let e = Enforcer::with_defaults();
    let admin = cloud_admin();
    assert!(e.enforce("identity:create_project", &new_project("dom-a"), &admin));
    assert!(e.enforce("identity:create_user", &new_user("dom-a"), &admin));
    assert!(e.enforce("identity:create_project", &new_project("dom-b"), &admin));
    assert!(e.enforce("identity:create_domain", &json!({}), &admin));
    assert!(e.enforce("identity:delete_user", &user_target("x", "dom-b"), &admin));
    assert!(e.enforce("identity:list_users", &json!({}), &admin));
}

#[test]
fn an_ordinary_projects_admin_is_no_cloud_admin() {
    // Keystone's defaults make `admin` on any project a cloud admin; here only on the admin
    // project (context_is_admin).
    let e = Enforcer::with_defaults();
    let admin = project_user(ADMIN);
    assert!(!e.enforce("context_is_admin", &json!({}), &admin));
    assert!(e.enforce("context_is_admin", &json!({}), &cloud_admin()));
    assert!(!e.enforce("identity:create_project", &new_project("dom-a"), &admin));
    assert!(!e.enforce("identity:create_domain", &json!({}), &admin));
    assert!(!e.enforce("identity:update_user", &user_target("x", "dom-a"), &admin));
    assert!(!e.enforce("identity:list_users", &json!({}), &admin));
    // It still reads its own project, as any member does.
    assert!(e.enforce(
        "identity:get_project",
        &json!({"target": {"project": {"id": "proj-1", "domain_id": "dom-a"}}}),
        &admin
    ));
}

#[test]
fn member_and_reader_may_not_create() {
    let e = Enforcer::with_defaults();
    for r in [MEMBER, READER] {
        let c = project_user(r);
        assert!(!e.enforce("identity:create_project", &new_project("dom-a"), &c));
        assert!(!e.enforce("identity:create_user", &new_user("dom-a"), &c));
        assert!(!e.enforce(
            "identity:create_group",
            &json!({"target": {"group": {"domain_id": "dom-a"}}}),
            &c
        ));
        assert!(!e.enforce("identity:create_domain", &json!({}), &c));
        assert!(!e.enforce("identity:create_role", &json!({}), &c));
        assert!(!e.enforce("identity:create_region", &json!({}), &c));
    }
    // A project-scoped manager is not a domain manager.
    let pm = project_user(MANAGER);
    assert!(!e.enforce("identity:create_project", &new_project("dom-a"), &pm));
    assert!(!e.enforce("identity:create_user", &new_user("dom-a"), &pm));
    assert!(!e.enforce("identity:list_roles", &json!({}), &pm));
}

#[test]
fn project_reader_reads_own_project_but_changes_nothing() {
    let e = Enforcer::with_defaults();
    let reader = project_user(READER);
    let own = project_target("proj-1", "dom-a");
    let other = project_target("proj-2", "dom-a");
    assert!(e.enforce("identity:get_project", &own, &reader));
    assert!(e.enforce("identity:list_project_tags", &own, &reader));
    assert!(e.enforce("identity:get_project_tag", &own, &reader));
    assert!(!e.enforce("identity:get_project", &other, &reader));
    assert!(!e.enforce("identity:update_project", &own, &reader));
    assert!(!e.enforce("identity:create_project_tag", &own, &reader));
    assert!(!e.enforce("identity:delete_project", &own, &reader));
    // Catalog-ish reads open to everyone.
    assert!(e.enforce("identity:list_regions", &json!({}), &reader));
    assert!(e.enforce("identity:get_region", &json!({}), &reader));
    assert!(e.enforce("identity:list_registered_limits", &json!({}), &reader));
    assert!(e.enforce("identity:get_auth_catalog", &json!({}), &reader));
    // Services/endpoints are system reader data.
    assert!(!e.enforce("identity:list_services", &json!({}), &reader));
    assert!(!e.enforce("identity:list_endpoints", &json!({}), &reader));
    // Not the other users of the domain.
    assert!(!e.enforce("identity:list_users", &list_in_domain("dom-a"), &reader));
    assert!(!e.enforce(
        "identity:get_user",
        &user_target("someone", "dom-a"),
        &reader
    ));
}

#[test]
fn system_reader_lists_but_does_not_change() {
    let e = Enforcer::with_defaults();
    let sr = system_user(READER);
    assert!(e.enforce("identity:list_users", &json!({}), &sr));
    assert!(e.enforce("identity:list_users", &list_in_domain("dom-b"), &sr));
    assert!(e.enforce("identity:get_user", &user_target("x", "dom-b"), &sr));
    assert!(e.enforce("identity:list_projects", &json!({}), &sr));
    assert!(e.enforce("identity:get_project", &project_target("p", "dom-b"), &sr));
    assert!(e.enforce("identity:list_services", &json!({}), &sr));
    assert!(e.enforce("identity:list_role_assignments", &json!({}), &sr));
    assert!(e.enforce("identity:list_system_grants_for_user", &json!({}), &sr));
    assert!(!e.enforce("identity:create_user", &new_user("dom-a"), &sr));
    assert!(!e.enforce("identity:update_user", &user_target("x", "dom-a"), &sr));
    assert!(!e.enforce("identity:delete_user", &user_target("x", "dom-a"), &sr));
    assert!(!e.enforce("identity:create_project", &new_project("dom-a"), &sr));
    assert!(!e.enforce("identity:create_system_grant_for_user", &json!({}), &sr));

    let sa = system_user(ADMIN);
    assert!(e.enforce("identity:create_user", &new_user("dom-a"), &sa));
    assert!(e.enforce("identity:create_domain", &json!({}), &sa));
}

#[test]
fn domain_reader_and_manager_are_confined_to_their_domain() {
    let e = Enforcer::with_defaults();
    let reader_a = domain_user("dom-a", READER);
    // keystone's list_users target: the domain being listed (target.domain_id).
    assert!(e.enforce("identity:list_users", &list_in_domain("dom-a"), &reader_a));
    assert!(!e.enforce("identity:list_users", &list_in_domain("dom-b"), &reader_a));
    assert!(!e.enforce("identity:list_users", &json!({}), &reader_a));
    // get_user reads target.user.domain_id.
    assert!(e.enforce("identity:get_user", &user_target("x", "dom-a"), &reader_a));
    assert!(!e.enforce("identity:get_user", &user_target("x", "dom-b"), &reader_a));
    assert!(e.enforce(
        "identity:list_projects",
        &list_in_domain("dom-a"),
        &reader_a
    ));
    assert!(!e.enforce(
        "identity:list_projects",
        &list_in_domain("dom-b"),
        &reader_a
    ));
    assert!(e.enforce(
        "identity:get_project",
        &project_target("p", "dom-a"),
        &reader_a
    ));
    assert!(!e.enforce(
        "identity:get_project",
        &project_target("p", "dom-b"),
        &reader_a
    ));
    assert!(!e.enforce("identity:create_user", &new_user("dom-a"), &reader_a));
    assert!(!e.enforce("identity:list_roles", &json!({}), &reader_a));

    let manager_a = domain_user("dom-a", MANAGER);
    assert!(e.enforce("identity:create_user", &new_user("dom-a"), &manager_a));
    assert!(!e.enforce("identity:create_user", &new_user("dom-b"), &manager_a));
    assert!(e.enforce(
        "identity:update_user",
        &user_target("x", "dom-a"),
        &manager_a
    ));
    assert!(!e.enforce(
        "identity:delete_user",
        &user_target("x", "dom-b"),
        &manager_a
    ));
    assert!(e.enforce("identity:create_project", &new_project("dom-a"), &manager_a));
    assert!(!e.enforce("identity:create_project", &new_project("dom-b"), &manager_a));
    // A project acting as a domain (domain_id null) is out of reach.
    let domain_project = json!({"target": {"project": {"id": "dom-a", "domain_id": null}}});
    assert!(!e.enforce("identity:update_project", &domain_project, &manager_a));
    assert!(e.enforce("identity:list_roles", &json!({}), &manager_a));
    // Group membership: both the group and the user must be in the domain.
    let membership = |g: &str, u: &str| json!({"target": {"group": {"id": "g", "domain_id": g}, "user": {"id": "u", "domain_id": u}}});
    assert!(e.enforce(
        "identity:add_user_to_group",
        &membership("dom-a", "dom-a"),
        &manager_a
    ));
    assert!(!e.enforce(
        "identity:add_user_to_group",
        &membership("dom-a", "dom-b"),
        &manager_a
    ));
    assert!(e.enforce(
        "identity:check_user_in_group",
        &membership("dom-a", "dom-a"),
        &reader_a
    ));
    assert!(!e.enforce(
        "identity:check_user_in_group",
        &membership("dom-b", "dom-a"),
        &reader_a
    ));
}

#[test]
fn domain_admin_is_confined_to_its_domain() {
    // ferrostack's deviation from keystone: admin_required needs a non-domain scope, so a
    // domain-scoped admin (whose token also carries the implied manager role) is a domain
    // manager of its own domain, not a cloud admin.
    let e = Enforcer::with_defaults();
    let admin_a = domain_user("dom-a", &["admin", "manager", "member", "reader"]);
    assert!(e.enforce("identity:list_users", &list_in_domain("dom-a"), &admin_a));
    assert!(!e.enforce("identity:list_users", &list_in_domain("dom-b"), &admin_a));
    assert!(e.enforce("identity:create_user", &new_user("dom-a"), &admin_a));
    assert!(!e.enforce("identity:create_user", &new_user("dom-b"), &admin_a));
    assert!(!e.enforce("identity:create_domain", &json!({}), &admin_a));
    assert!(!e.enforce("identity:create_role", &json!({}), &admin_a));
    // The admin project's admin is a cloud admin.
    assert!(e.enforce(
        "identity:list_users",
        &list_in_domain("dom-b"),
        &cloud_admin()
    ));
    // A domain admin grants only the domain-managed roles, in its own domain.
    let grant = |role: &str, domain: &str| {
        json!({"target": {"role": {"name": role, "domain_id": null},
            "user": {"domain_id": domain}, "project": {"domain_id": domain}}})
    };
    for role in ["manager", "member", "reader"] {
        assert!(
            e.enforce("identity:create_grant", &grant(role, "dom-a"), &admin_a),
            "{role}"
        );
    }
    assert!(!e.enforce("identity:create_grant", &grant("admin", "dom-a"), &admin_a));
    assert!(!e.enforce(
        "identity:create_grant",
        &grant("service", "dom-a"),
        &admin_a
    ));
    assert!(!e.enforce("identity:create_grant", &grant("member", "dom-b"), &admin_a));
    assert!(!e.enforce("identity:revoke_grant", &grant("admin", "dom-a"), &admin_a));
}

#[test]
fn domain_admin_confined_with_strict_srbac_override() {
    // The overrides keystone's own protection tests use for the domain admin
    // persona (pure secure-RBAC, without the admin_required shortcut).
    let mut e = Enforcer::with_defaults();
    e.load_overrides(
        r#"
"identity:get_user": "(role:reader and system_scope:all) or (role:reader and token.domain.id:%(target.user.domain_id)s) or user_id:%(target.user.id)s"
"identity:list_users": "(role:reader and system_scope:all) or (role:reader and domain_id:%(target.domain_id)s)"
"identity:create_user": "(role:admin and system_scope:all) or (role:admin and token.domain.id:%(target.user.domain_id)s)"
"#,
    )
    .unwrap();
    let admin_a = domain_user("dom-a", ADMIN);
    assert!(e.enforce("identity:list_users", &list_in_domain("dom-a"), &admin_a));
    assert!(!e.enforce("identity:list_users", &list_in_domain("dom-b"), &admin_a));
    assert!(e.enforce("identity:get_user", &user_target("x", "dom-a"), &admin_a));
    assert!(!e.enforce("identity:get_user", &user_target("x", "dom-b"), &admin_a));
    assert!(e.enforce("identity:create_user", &new_user("dom-a"), &admin_a));
    assert!(!e.enforce("identity:create_user", &new_user("dom-b"), &admin_a));
}

#[test]
fn users_manage_themselves() {
    let e = Enforcer::with_defaults();
    let me = project_user(MEMBER);
    let myself = user_target("u-proj", "dom-a");
    let someone = user_target("u-other", "dom-a");
    assert!(e.enforce("identity:get_user", &myself, &me));
    assert!(!e.enforce("identity:get_user", &someone, &me));
    assert!(e.enforce("identity:change_password", &myself, &me));
    assert!(!e.enforce("identity:change_password", &someone, &me));
    assert!(e.enforce("identity:list_user_projects", &myself, &me));
    assert!(!e.enforce("identity:list_user_projects", &someone, &me));
    assert!(e.enforce("identity:list_groups_for_user", &myself, &me));
    assert!(!e.enforce("identity:list_groups_for_user", &someone, &me));
    // ...but cannot update their own user record (admin/manager only).
    assert!(!e.enforce("identity:update_user", &myself, &me));
    // Unscoped tokens may list what they can scope to.
    let unscoped = Credentials {
        user_id: "u-proj".into(),
        user_domain_id: "dom-a".into(),
        ..Credentials::default()
    };
    assert!(e.enforce("identity:list_projects_for_user", &json!({}), &unscoped));
    assert!(e.enforce("identity:get_auth_projects", &json!({}), &unscoped));
    assert!(e.enforce("identity:change_password", &myself, &unscoped));
}

#[test]
fn application_credentials_and_credentials() {
    let e = Enforcer::with_defaults();
    let me = project_user(MEMBER);
    let mine = json!({"user_id": "u-proj"});
    let theirs = json!({"user_id": "u-other"});
    assert!(e.enforce("identity:create_application_credential", &mine, &me));
    assert!(!e.enforce("identity:create_application_credential", &theirs, &me));
    assert!(e.enforce("identity:get_application_credential", &mine, &me));
    assert!(e.enforce("identity:list_application_credentials", &mine, &me));
    assert!(e.enforce("identity:delete_application_credential", &mine, &me));
    assert!(!e.enforce("identity:delete_application_credential", &theirs, &me));
    // Application credentials are created with project-scoped tokens only.
    let sys = Credentials {
        user_id: "u-proj".into(),
        ..system_user(ADMIN)
    };
    assert!(!e.enforce("identity:create_application_credential", &mine, &sys));

    let cred = |owner: &str| json!({"target": {"credential": {"user_id": owner}}});
    assert!(e.enforce("identity:get_credential", &cred("u-proj"), &me));
    assert!(e.enforce("identity:create_credential", &cred("u-proj"), &me));
    assert!(!e.enforce("identity:create_credential", &cred("u-other"), &me));
    assert!(!e.enforce("identity:get_credential", &cred("u-other"), &me));
    assert!(e.enforce(
        "identity:get_credential",
        &cred("u-other"),
        &system_user(READER)
    ));
}

#[test]
fn tokens() {
    let e = Enforcer::with_defaults();
    let me = project_user(MEMBER);
    let mine = json!({"target": {"token": {"user_id": "u-proj"}}});
    let theirs = json!({"target": {"token": {"user_id": "u-other"}}});
    for action in [
        "identity:check_token",
        "identity:validate_token",
        "identity:revoke_token",
    ] {
        assert!(e.enforce(action, &mine, &me), "{action}");
        assert!(!e.enforce(action, &theirs, &me), "{action}");
    }
    let service = project_user(&["service"]);
    assert!(e.enforce("identity:validate_token", &theirs, &service));
    assert!(!e.enforce("identity:revoke_token", &theirs, &service));
    assert!(e.enforce("identity:check_token", &theirs, &system_user(READER)));
    assert!(!e.enforce("identity:revoke_token", &theirs, &system_user(READER)));
}

#[test]
fn grants_by_domain_manager_limited_to_safe_roles() {
    let e = Enforcer::with_defaults();
    let manager_a = domain_user("dom-a", MANAGER);
    let grant = |role: &str, role_domain: Value, user_dom: &str, proj_dom: &str| {
        json!({"target": {
            "role": {"id": "r", "name": role, "domain_id": role_domain},
            "user": {"id": "u", "domain_id": user_dom},
            "project": {"id": "p", "domain_id": proj_dom},
        }})
    };
    assert!(e.enforce(
        "identity:create_grant",
        &grant("member", Value::Null, "dom-a", "dom-a"),
        &manager_a
    ));
    assert!(e.enforce(
        "identity:revoke_grant",
        &grant("reader", Value::Null, "dom-a", "dom-a"),
        &manager_a
    ));
    assert!(!e.enforce(
        "identity:create_grant",
        &grant("admin", Value::Null, "dom-a", "dom-a"),
        &manager_a
    ));
    assert!(!e.enforce(
        "identity:create_grant",
        &grant("member", Value::Null, "dom-b", "dom-a"),
        &manager_a
    ));
    assert!(!e.enforce(
        "identity:create_grant",
        &grant("member", Value::Null, "dom-a", "dom-b"),
        &manager_a
    ));

    // Domain readers may check grants of global roles and roles of their domain.
    let reader_a = domain_user("dom-a", READER);
    assert!(e.enforce(
        "identity:check_grant",
        &grant("member", Value::Null, "dom-a", "dom-a"),
        &reader_a
    ));
    assert!(e.enforce(
        "identity:check_grant",
        &grant("custom", json!("dom-a"), "dom-a", "dom-a"),
        &reader_a
    ));
    assert!(!e.enforce(
        "identity:check_grant",
        &grant("custom", json!("dom-b"), "dom-a", "dom-a"),
        &reader_a
    ));
    assert!(!e.enforce(
        "identity:create_grant",
        &grant("member", Value::Null, "dom-a", "dom-a"),
        &reader_a
    ));
    // Grants on the domain itself (target.domain.id) and for groups.
    let on_domain = json!({"target": {
        "role": {"name": "member", "domain_id": null},
        "group": {"id": "g", "domain_id": "dom-a"},
        "domain": {"id": "dom-a"},
    }});
    assert!(e.enforce("identity:list_grants", &on_domain, &reader_a));
    assert!(e.enforce("identity:create_grant", &on_domain, &manager_a));
    assert!(!e.enforce(
        "identity:create_grant",
        &on_domain,
        &domain_user("dom-b", MANAGER)
    ));
}

#[test]
fn role_reads() {
    let e = Enforcer::with_defaults();
    let manager_a = domain_user("dom-a", MANAGER);
    let role = |name: &str| json!({"target": {"role": {"name": name}}});
    assert!(e.enforce("identity:get_role", &role("member"), &manager_a));
    assert!(!e.enforce("identity:get_role", &role("admin"), &manager_a));
    assert!(e.enforce("identity:get_role", &role("admin"), &system_user(READER)));
    assert!(!e.enforce("identity:get_role", &role("member"), &project_user(MEMBER)));
}

#[test]
fn limits() {
    let e = Enforcer::with_defaults();
    let me = project_user(READER);
    let limit = |project: Value, project_dom: &str| json!({"target": {"limit": {"project_id": project, "project": {"domain_id": project_dom}}}});
    assert!(e.enforce("identity:get_limit", &limit(json!("proj-1"), "dom-a"), &me));
    assert!(!e.enforce("identity:get_limit", &limit(json!("proj-2"), "dom-a"), &me));
    assert!(e.enforce(
        "identity:get_limit",
        &limit(json!("proj-2"), "dom-a"),
        &domain_user("dom-a", READER)
    ));
    assert!(e.enforce("identity:list_limits", &json!({}), &me));
    assert!(!e.enforce("identity:create_limits", &json!({}), &me));
}

#[test]
fn unknown_action_falls_back_to_default() {
    let e = Enforcer::with_defaults();
    assert!(e.enforce("identity:not_a_real_action", &json!({}), &cloud_admin()));
    assert!(!e.enforce(
        "identity:not_a_real_action",
        &json!({}),
        &project_user(MEMBER)
    ));
}
