//! Rule language and evaluator behaviour, through the public API.

// Test code: a panic is a failed test, and test data stays in range.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use ferrostack_policy::{Credentials, Enforcer, PolicyError, Scope};
use serde_json::{json, Value};

fn enforcer(text: &str) -> Enforcer {
    let mut e = Enforcer::new();
    e.load_overrides(text).expect("policy loads");
    e
}

fn creds(roles: &[&str]) -> Credentials {
    Credentials {
        user_id: "u1".into(),
        user_domain_id: "d1".into(),
        project_id: Some("p1".into()),
        project_domain_id: Some("d1".into()),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..Credentials::default()
    }
}

fn allowed(policy: &Enforcer, rule: &str, target: &Value, c: &Credentials) -> bool {
    policy.enforce(rule, target, c)
}

#[test]
fn always_and_never() {
    let e = enforcer(
        r#"
"empty": ""
"at": "@"
"bang": "!"
"t": "True"
"f": "False"
"list_empty": []
"#,
    );
    let c = Credentials::default();
    let t = json!({});
    assert!(allowed(&e, "empty", &t, &c));
    assert!(allowed(&e, "at", &t, &c));
    assert!(!allowed(&e, "bang", &t, &c));
    assert!(allowed(&e, "t", &t, &c));
    assert!(!allowed(&e, "f", &t, &c));
    assert!(allowed(&e, "list_empty", &t, &c));
}

#[test]
fn role_checks_case_insensitive_and_substituted() {
    let e = enforcer(
        r#"
"admin": "role:Admin"
"by_target": "role:%(target.role.name)s"
"#,
    );
    let admin = creds(&["admin"]);
    let member = creds(&["member"]);
    let t = json!({});
    assert!(allowed(&e, "admin", &t, &admin));
    assert!(!allowed(&e, "admin", &t, &member));
    assert!(allowed(
        &e,
        "by_target",
        &json!({"target": {"role": {"name": "MEMBER"}}}),
        &member
    ));
    assert!(allowed(
        &e,
        "by_target",
        &json!({"target.role.name": "member"}),
        &member
    ));
    assert!(!allowed(
        &e,
        "by_target",
        &json!({"target": {"role": {"name": "admin"}}}),
        &member
    ));
    // Missing or null substitution: false.
    assert!(!allowed(&e, "by_target", &t, &member));
    assert!(!allowed(
        &e,
        "by_target",
        &json!({"target": {"role": {"name": null}}}),
        &member
    ));
}

#[test]
fn rule_references() {
    let e = enforcer(
        r#"
"base": "role:admin"
"uses_base": "rule:base"
"uses_unknown": "rule:does_not_exist"
"unknown_or_base": "rule:does_not_exist or rule:base"
"#,
    );
    let t = json!({});
    assert!(allowed(&e, "uses_base", &t, &creds(&["admin"])));
    assert!(!allowed(&e, "uses_base", &t, &creds(&["member"])));
    assert!(!allowed(&e, "uses_unknown", &t, &creds(&["admin"])));
    assert!(allowed(&e, "unknown_or_base", &t, &creds(&["admin"])));
}

#[test]
fn generic_credential_checks() {
    let e = enforcer(
        r#"
"own": "user_id:%(target.user.id)s"
"own_flat": "user_id:%(user_id)s"
"system": "system_scope:all"
"admin_project": "is_admin_project:True"
"not_admin_project": "is_admin_project:False"
"domain_is_none": "domain_id:None"
"project": "project_id:%(target.project.id)s"
"project_domain": "project_domain_id:%(target.domain)s"
"user_domain": "user_domain_id:%(d)s"
"token_alias": "token.project.domain.id:%(d)s"
"roles_list": "roles:member"
"is_admin": "is_admin:1"
"unknown_attr": "whatever:1"
"prefixed": "project_id:p-%(suffix)s"
"#,
    );
    let c = creds(&["member"]);
    let t = json!({
        "user_id": "u1",
        "target": {"user": {"id": "u1"}, "project": {"id": "p1"}, "domain": "d1"},
        "d": "d1",
        "suffix": "1",
    });
    assert!(allowed(&e, "own", &t, &c));
    assert!(allowed(&e, "own_flat", &t, &c));
    assert!(!allowed(
        &e,
        "own",
        &json!({"target": {"user": {"id": "u2"}}}),
        &c
    ));
    assert!(allowed(&e, "project", &t, &c));
    assert!(allowed(&e, "project_domain", &t, &c));
    assert!(allowed(&e, "user_domain", &t, &c));
    assert!(allowed(&e, "token_alias", &t, &c));
    assert!(allowed(&e, "roles_list", &t, &c));
    assert!(!allowed(&e, "system", &t, &c));
    assert!(!allowed(&e, "admin_project", &t, &c));
    assert!(allowed(&e, "not_admin_project", &t, &c));
    assert!(allowed(&e, "domain_is_none", &t, &c));
    // is_admin is never set: false.
    assert!(!allowed(&e, "is_admin", &t, &c));
    assert!(!allowed(&e, "unknown_attr", &t, &c));
    // Literal with a substitution in the middle.
    let c_prefixed = Credentials {
        project_id: Some("p-1".into()),
        ..c.clone()
    };
    assert!(allowed(&e, "prefixed", &t, &c_prefixed));

    let system = Credentials {
        system_scope: Some("all".into()),
        project_id: None,
        project_domain_id: None,
        is_admin_project: true,
        ..c.clone()
    };
    assert!(allowed(&e, "system", &t, &system));
    assert!(allowed(&e, "admin_project", &t, &system));
    assert!(!allowed(&e, "project", &t, &system));

    let domain_scoped = Credentials {
        domain_id: Some("d1".into()),
        project_id: None,
        ..c
    };
    assert!(!allowed(&e, "domain_is_none", &t, &domain_scoped));
}

#[test]
fn missing_and_null_values_are_false() {
    let e = enforcer(
        r#"
"own": "user_id:%(target.user.id)s"
"project": "project_id:%(target.project.id)s"
"domain": "domain_id:%(target.domain_id)s"
"#,
    );
    let c = creds(&["member"]);
    // Missing target key.
    assert!(!allowed(&e, "own", &json!({}), &c));
    assert!(!allowed(&e, "own", &json!({"target": {}}), &c));
    // Null target value.
    assert!(!allowed(
        &e,
        "own",
        &json!({"target": {"user": {"id": null}}}),
        &c
    ));
    // Non-scalar target value.
    assert!(!allowed(
        &e,
        "own",
        &json!({"target": {"user": {"id": ["u1"]}}}),
        &c
    ));
    // Missing credential (project_id unset) vs target value "None"/null.
    let unscoped = Credentials {
        project_id: None,
        ..c.clone()
    };
    assert!(!allowed(
        &e,
        "project",
        &json!({"target": {"project": {"id": "p1"}}}),
        &unscoped
    ));
    assert!(!allowed(
        &e,
        "project",
        &json!({"target": {"project": {"id": null}}}),
        &unscoped
    ));
    // Unset domain_id (project-scoped token) never matches a null target domain.
    assert!(!allowed(
        &e,
        "domain",
        &json!({"target.domain_id": null}),
        &c
    ));
    // Empty user id in the credentials never matches an empty target value.
    let anonymous = Credentials::default();
    assert!(!allowed(
        &e,
        "own",
        &json!({"target": {"user": {"id": ""}}}),
        &anonymous
    ));
}

#[test]
fn literal_left_side() {
    let e = enforcer(
        r#"
"is_manager_role": "'manager':%(target.role.name)s"
"dq": "\"reader\":%(target.role.name)s"
"is_null": "None:%(target.role.domain_id)s"
"not_null": "not None:%(target.role.domain_id)s"
"enabled": "True:%(target.user.enabled)s"
"count": "3:%(n)s"
"#,
    );
    let c = creds(&[]);
    assert!(allowed(
        &e,
        "is_manager_role",
        &json!({"target": {"role": {"name": "manager"}}}),
        &c
    ));
    assert!(!allowed(
        &e,
        "is_manager_role",
        &json!({"target": {"role": {"name": "admin"}}}),
        &c
    ));
    assert!(!allowed(&e, "is_manager_role", &json!({}), &c));
    assert!(allowed(
        &e,
        "dq",
        &json!({"target.role.name": "reader"}),
        &c
    ));
    assert!(allowed(
        &e,
        "is_null",
        &json!({"target": {"role": {"domain_id": null}}}),
        &c
    ));
    assert!(!allowed(
        &e,
        "is_null",
        &json!({"target": {"role": {"domain_id": "d1"}}}),
        &c
    ));
    // Missing key: the check is false (oslo: KeyError), so `not` of it is true.
    assert!(!allowed(&e, "is_null", &json!({}), &c));
    assert!(allowed(
        &e,
        "not_null",
        &json!({"target": {"role": {"domain_id": "d1"}}}),
        &c
    ));
    assert!(!allowed(
        &e,
        "not_null",
        &json!({"target": {"role": {"domain_id": null}}}),
        &c
    ));
    // Booleans and numbers render like Python's str().
    assert!(allowed(
        &e,
        "enabled",
        &json!({"target": {"user": {"enabled": true}}}),
        &c
    ));
    assert!(!allowed(
        &e,
        "enabled",
        &json!({"target": {"user": {"enabled": false}}}),
        &c
    ));
    assert!(allowed(&e, "count", &json!({"n": 3}), &c));
}

#[test]
fn operators_and_precedence() {
    let e = enforcer(
        r#"
"a_or_b_and_c": "role:a or role:b and role:c"
"paren": "(role:a or role:b) and role:c"
"not_a_and_b": "not role:a and role:b"
"not_group": "not (role:a or role:b)"
"double_not": "not not role:a"
"upper": "role:a AND NOT role:b OR role:c"
"#,
    );
    let t = json!({});
    let has = |roles: &[&str]| creds(roles);
    // or binds looser than and.
    assert!(allowed(&e, "a_or_b_and_c", &t, &has(&["a"])));
    assert!(!allowed(&e, "a_or_b_and_c", &t, &has(&["b"])));
    assert!(allowed(&e, "a_or_b_and_c", &t, &has(&["b", "c"])));
    assert!(!allowed(&e, "paren", &t, &has(&["a"])));
    assert!(allowed(&e, "paren", &t, &has(&["a", "c"])));
    // not binds tighter than and.
    assert!(allowed(&e, "not_a_and_b", &t, &has(&["b"])));
    assert!(!allowed(&e, "not_a_and_b", &t, &has(&["a", "b"])));
    assert!(!allowed(&e, "not_a_and_b", &t, &has(&[])));
    assert!(allowed(&e, "not_group", &t, &has(&["c"])));
    assert!(!allowed(&e, "not_group", &t, &has(&["b"])));
    assert!(allowed(&e, "double_not", &t, &has(&["a"])));
    assert!(allowed(&e, "upper", &t, &has(&["a"])));
    assert!(!allowed(&e, "upper", &t, &has(&["a", "b"])));
    assert!(allowed(&e, "upper", &t, &has(&["a", "b", "c"])));
}

#[test]
fn unknown_kinds_parse_but_fail() {
    let e = enforcer(
        r#"
"remote": "http://policy.example.com/check"
"remote_or_admin": "https://policy.example.com/check or role:admin"
"#,
    );
    let t = json!({});
    assert!(!allowed(&e, "remote", &t, &creds(&["admin"])));
    assert!(allowed(&e, "remote_or_admin", &t, &creds(&["admin"])));
}

#[test]
fn field_checks() {
    let e = enforcer(
        r#"
"shared": "field:networks:shared=True"
"shared_lower": "field:networks:shared=true"
"not_shared": "field:networks:shared=False"
"external": "field:networks:router:external=True"
"named": "field:networks:name=True"
"mtu": "field:networks:mtu=1500"
"network_device": "field:port:device_owner=~^network:"
"no_wildcard": "not field:rbac_policy:target_tenant=* or role:admin"
"shared_or_admin": "rule:shared or role:admin"
"#,
    );
    let c = creds(&["member"]);
    let net = json!({"shared": true, "router:external": false, "name": "true", "mtu": 1500});
    assert!(allowed(&e, "shared", &net, &c));
    assert!(allowed(&e, "shared_lower", &net, &c));
    assert!(!allowed(&e, "not_shared", &net, &c));
    assert!(!allowed(&e, "external", &net, &c));
    assert!(allowed(
        &e,
        "external",
        &json!({"router:external": true}),
        &c
    ));
    // Strings compare exactly: "true" is not "True".
    assert!(!allowed(&e, "named", &net, &c));
    assert!(allowed(&e, "mtu", &net, &c));
    // A missing or null field is false (and `not` of it true).
    assert!(!allowed(&e, "shared", &json!({}), &c));
    assert!(!allowed(&e, "shared", &json!({"shared": null}), &c));
    assert!(allowed(&e, "no_wildcard", &json!({}), &c));
    assert!(allowed(
        &e,
        "no_wildcard",
        &json!({"target_tenant": "p2"}),
        &c
    ));
    assert!(!allowed(
        &e,
        "no_wildcard",
        &json!({"target_tenant": "*"}),
        &c
    ));
    assert!(allowed(
        &e,
        "no_wildcard",
        &json!({"target_tenant": "*"}),
        &creds(&["admin"])
    ));
    assert!(allowed(
        &e,
        "network_device",
        &json!({"device_owner": "network:dhcp"}),
        &c
    ));
    assert!(!allowed(
        &e,
        "network_device",
        &json!({"device_owner": "compute:nova"}),
        &c
    ));
    assert!(allowed(
        &e,
        "shared_or_admin",
        &json!({"shared": false}),
        &creds(&["admin"])
    ));
    assert_eq!(
        e.check_str("network_device"),
        Some("field:port:device_owner=~^network:")
    );

    // Malformed field checks are syntax errors naming the rule.
    for (bad, why) in [
        (r#""f": "field:networks""#, "no ':'"),
        (r#""f": "field:networks:shared""#, "no '='"),
        (r#""f": "field:networks:shared=~(a|b)""#, "not supported"),
    ] {
        let err = Enforcer::new().load_overrides(bad).unwrap_err();
        assert!(
            matches!(err, PolicyError::Syntax { ref rule, .. } if rule == "f"),
            "{err}"
        );
        assert!(err.to_string().contains(why), "{err}");
    }
}

#[test]
fn target_keys_with_colons() {
    // Neutron's owner checks on a parent resource: the service puts the parent's
    // project in the target under the literal key "network:tenant_id".
    let e = enforcer(
        r#"
"network_owner": "tenant_id:%(network:tenant_id)s"
"network_owner_new": "project_id:%(network:project_id)s"
"#,
    );
    let c = creds(&["member"]);
    let port = json!({"project_id": "p2", "network:tenant_id": "p1", "network:project_id": "p1"});
    assert!(allowed(&e, "network_owner", &port, &c));
    assert!(allowed(&e, "network_owner_new", &port, &c));
    let other = json!({"network:tenant_id": "p2", "network:project_id": "p2"});
    assert!(!allowed(&e, "network_owner", &other, &c));
    assert!(!allowed(&e, "network_owner_new", &other, &c));
    assert!(!allowed(
        &e,
        "network_owner",
        &json!({"project_id": "p1"}),
        &c
    ));
    // Nested objects are not split at ':'.
    assert!(!allowed(
        &e,
        "network_owner",
        &json!({"network": {"tenant_id": "p1"}}),
        &c
    ));
}

#[test]
fn legacy_list_syntax() {
    let e = enforcer(r#"{"r": [["role:a", "role:b"], ["role:c"]]}"#);
    let t = json!({});
    assert!(allowed(&e, "r", &t, &creds(&["a", "b"])));
    assert!(!allowed(&e, "r", &t, &creds(&["a"])));
    assert!(allowed(&e, "r", &t, &creds(&["c"])));
    assert_eq!(e.check_str("r"), Some("((role:a and role:b) or role:c)"));
}

#[test]
fn default_rule_fallback() {
    let c = creds(&["admin"]);
    let t = json!({});
    let no_default = enforcer(r#""x": "@""#);
    assert!(!no_default.enforce("not:there", &t, &c));
    let with_default = enforcer(r#""default": "role:admin""#);
    assert!(with_default.enforce("not:there", &t, &c));
    assert!(!with_default.enforce("not:there", &t, &creds(&["member"])));
    // An explicit rule is used instead of the default.
    let both = enforcer(
        r#"
"default": "role:admin"
"x": "!"
"#,
    );
    assert!(!both.enforce("x", &t, &c));
    assert!(!Enforcer::new().enforce("anything", &t, &c));
}

#[test]
fn cycles_are_refused() {
    let mut e = Enforcer::new();
    let err = e
        .load_overrides(
            r#"
"a": "rule:b"
"b": "role:x or rule:c"
"c": "rule:a"
"#,
        )
        .unwrap_err();
    match &err {
        PolicyError::Cycle { path } => {
            assert_eq!(path.first(), path.last());
            assert_eq!(path.len(), 4, "{path:?}");
        }
        other => panic!("expected a cycle error, got {other:?}"),
    }
    assert!(err.to_string().contains("a -> b -> c -> a"), "{err}");
    // Nothing was applied.
    assert!(e.rule_names().is_empty());

    // Self reference.
    assert!(matches!(
        e.load_overrides(r#""self": "rule:self""#),
        Err(PolicyError::Cycle { .. })
    ));

    // A cycle introduced by an override against existing rules is refused and
    // the previous rules stay.
    let mut e = enforcer(
        r#"
"a": "rule:b"
"b": "role:x"
"#,
    );
    assert!(matches!(
        e.load_overrides(r#""b": "rule:a""#),
        Err(PolicyError::Cycle { .. })
    ));
    assert_eq!(e.check_str("b"), Some("role:x"));
    assert!(e.enforce("a", &json!({}), &creds(&["x"])));
}

#[test]
fn syntax_errors_name_the_rule() {
    let mut e = Enforcer::new();
    let err = e
        .load_overrides(
            r#"
"good": "role:a"
"broken": "role:a and (role:b"
"#,
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PolicyError::Syntax { .. }));
    assert!(msg.contains("broken"), "{msg}");
    assert!(msg.contains("')'"), "{msg}");
    assert!(!e.has_rule("good"), "nothing is applied on error");

    let err = e.load_overrides(r#""x": true"#).unwrap_err();
    assert!(err.to_string().contains("\"x\""), "{err}");
    let err = e.load_overrides("- a\n- b\n").unwrap_err();
    assert!(matches!(err, PolicyError::Document(_)), "{err}");
    let err = e.load_overrides("{not json").unwrap_err();
    assert!(matches!(err, PolicyError::Document(_)), "{err}");
    let err = e.load_overrides(r#""x": "admin""#).unwrap_err();
    assert!(err.to_string().contains("kind:match"), "{err}");
    // Empty documents are fine.
    e.load_overrides("").unwrap();
    e.load_overrides("# only a comment\n").unwrap();
    e.load_overrides("{}").unwrap();
}

#[test]
fn json_and_yaml_overrides() {
    let mut e = Enforcer::new();
    e.load_overrides(r#"{"a": "role:x", "b": "rule:a"}"#)
        .unwrap();
    e.load_overrides("c: \"rule:b\"\n").unwrap();
    assert_eq!(e.rule_names(), vec!["a", "b", "c"]);
    assert!(e.enforce("c", &json!({}), &creds(&["x"])));
}

#[test]
fn overrides_replace_defaults() {
    let mut e = Enforcer::with_defaults();
    let project_admin = Credentials {
        is_admin_project: true,
        ..creds(&["admin", "member", "reader"])
    };
    let t = json!({"target": {"project": {"domain_id": "d1"}}});
    assert!(e.enforce("identity:create_project", &t, &project_admin));
    let scopes = e.scope_types("identity:create_project").unwrap().to_vec();

    e.load_overrides(r#""identity:create_project": "role:creator""#)
        .unwrap();
    assert_eq!(e.check_str("identity:create_project"), Some("role:creator"));
    assert!(!e.enforce("identity:create_project", &t, &project_admin));
    assert!(e.enforce("identity:create_project", &t, &creds(&["creator"])));
    // The default's scope types are kept.
    assert_eq!(
        e.scope_types("identity:create_project").unwrap(),
        scopes.as_slice()
    );
    // Overriding a base rule changes every rule that references it.
    e.load_overrides(r#""admin_required": "role:superuser""#)
        .unwrap();
    assert!(!e.enforce("identity:create_domain", &json!({}), &project_admin));
    assert!(e.enforce("identity:create_domain", &json!({}), &creds(&["superuser"])));
    // Other defaults are untouched.
    assert!(e.has_rule("identity:get_user"));
}

#[test]
fn scope_types_are_enforced() {
    let mut e = Enforcer::with_defaults();
    assert_eq!(
        e.scope_types("identity:create_domain"),
        Some(&[Scope::System, Scope::Project][..])
    );
    let domain_admin = Credentials {
        user_id: "u1".into(),
        user_domain_id: "d1".into(),
        domain_id: Some("d1".into()),
        roles: vec!["admin".into(), "member".into(), "reader".into()],
        ..Credentials::default()
    };
    assert_eq!(domain_admin.token_scope(), Scope::Domain);
    // create_domain does not accept domain-scoped tokens.
    assert!(!e.enforce("identity:create_domain", &json!({}), &domain_admin));
    // create_application_credential accepts only project scope; its check (the owner) passes.
    let owner_target = json!({"user_id": "u1"});
    assert!(!e.enforce(
        "identity:create_application_credential",
        &owner_target,
        &domain_admin
    ));
    e.set_enforce_scope(false);
    assert!(!e.enforce_scope());
    assert!(e.enforce(
        "identity:create_application_credential",
        &owner_target,
        &domain_admin
    ));
}

#[test]
fn enforcer_is_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<Enforcer>();
    let e = Enforcer::with_defaults();
    let e2 = e.clone();
    let handle = std::thread::spawn(move || e2.has_rule("identity:get_user"));
    assert!(handle.join().unwrap());
    assert!(e.has_rule("identity:get_user"));
}
