//! `/v2.0/security-groups` and `/v2.0/security-group-rules`.

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::input::{self, Obj};
use super::{authorize, authorize_attrs, collection_url, created, query, wire, State};
use crate::app::security_groups::{GroupChanges, NewGroup, NewRule};
use crate::error::{NetworkError, Result};
use crate::ipam;
use crate::model::{Direction, EtherType, SecurityGroup, SecurityGroupRule};
use crate::NetworkService;

fn target(g: &SecurityGroup) -> Value {
    json!({"project_id": g.project_id, "tenant_id": g.project_id, "shared": false, "name": g.name})
}

fn rule_target(r: &SecurityGroupRule, group_project: &str) -> Value {
    json!({"project_id": r.project_id, "tenant_id": r.project_id,
           "security_group_id": r.security_group_id,
           "security_group:project_id": group_project, "security_group:tenant_id": group_project})
}

fn parse_group(obj: &Obj) -> Result<NewGroup> {
    input::only(
        obj,
        &["name", "description", "stateful", "project_id", "tenant_id"],
    )?;
    let name = input::string(obj, "name", 255)?.unwrap_or_default();
    if name.eq_ignore_ascii_case("default") {
        return Err(NetworkError::conflict(
            "SecurityGroupDefaultAlreadyExists",
            "Default security group already exists.",
        ));
    }
    Ok(NewGroup {
        project_id: input::project(obj)?,
        name,
        description: input::string(obj, "description", 255)?.unwrap_or_default(),
        stateful: input::boolean(obj, "stateful")?.unwrap_or(true),
    })
}

pub async fn create(state: State, auth: Auth, body: Bytes) -> Result<Response> {
    let svc = &state.0;
    let (objs, bulk) = input::create_body(&body, "security_group", "security_groups")?;
    let mut out = Vec::new();
    for obj in &objs {
        let req = parse_group(obj)?;
        let project = crate::app::owner_for(&auth, req.project_id.as_deref())?;
        let t = json!({"project_id": project, "tenant_id": project});
        authorize(svc, &auth, "create_security_group", &t)?;
        authorize_attrs(svc, &auth, "create_security_group", obj, &t, &[])?;
        let g = svc.create_group(&auth, req).await?;
        out.push(wire::security_group(&g, false));
    }
    Ok(created("security_group", "security_groups", bulk, out))
}

pub async fn list(state: State, auth: Auth, RawQuery(q): RawQuery) -> Result<Response> {
    let svc = &state.0;
    let lq = query::ListQuery::parse(q.as_deref())?;
    let creds = auth.credentials();
    let groups = svc.list_groups(&auth).await?;
    let defaults = svc.default_group_ids().await?;
    let items: Vec<Value> = groups
        .iter()
        .filter(|g| svc.policy.enforce("get_security_group", &target(g), &creds))
        .map(|g| wire::security_group(g, defaults.contains(&g.id)))
        .collect();
    Ok(axum::Json(lq.render(
        items,
        "security_groups",
        &collection_url(svc, "security-groups"),
    )?)
    .into_response())
}

async fn readable(svc: &NetworkService, auth: &Auth, id: &str) -> Result<SecurityGroup> {
    let g = svc.find_group(id, auth).await?;
    if !svc
        .policy
        .enforce("get_security_group", &target(&g), &auth.credentials())
    {
        return Err(NetworkError::security_group_not_found(id));
    }
    Ok(g)
}

pub async fn show(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let g = readable(svc, &auth, &id).await?;
    let is_default = svc.is_default_group(&id).await?;
    let v = query::project(
        wire::security_group(&g, is_default),
        &query::fields_of(q.as_deref()),
    );
    Ok(axum::Json(json!({ "security_group": v })).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let obj = input::update_body(&body, "security_group")?;
    input::only(&obj, &["name", "description", "stateful"])?;
    let g = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "update_security_group", &target(&g))?;
    let changes = GroupChanges {
        name: input::string(&obj, "name", 255)?,
        description: input::string(&obj, "description", 255)?,
        stateful: input::boolean(&obj, "stateful")?,
    };
    let g = svc
        .update_group(&id, changes, input::if_match(&headers)?)
        .await?;
    let is_default = svc.is_default_group(&id).await?;
    Ok(
        axum::Json(json!({ "security_group": wire::security_group(&g, is_default) }))
            .into_response(),
    )
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    let g = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "delete_security_group", &target(&g))?;
    svc.delete_group(&auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

const RULE_ATTRS: [&str; 13] = [
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "description",
    "project_id",
    "tenant_id",
    "normalized_cidr",
];

/// A port number as Neutron's API layer converts it: an integer 0..65535.
fn port_value(obj: &Obj, key: &str) -> Result<Option<i64>> {
    let bad = |v: &Value| {
        let shown = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        NetworkError::bad_request(
            "SecurityGroupInvalidPortValue",
            format!("Invalid value for port {shown}"),
        )
    };
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or_else(|| bad(v))?;
            if !(0..=65535).contains(&n) {
                return Err(bad(v));
            }
            Ok(Some(n))
        }
    }
}

fn nullable_string(obj: &Obj, key: &str) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        _ => input::string(obj, key, 255),
    }
}

fn parse_rule(obj: &Obj) -> Result<NewRule> {
    input::only(obj, &RULE_ATTRS)?;
    let security_group_id = input::string(obj, "security_group_id", 255)?.ok_or_else(|| {
        NetworkError::invalid_attr("security_group_id", "'security_group_id' is required")
    })?;
    let direction = match input::string(obj, "direction", 16)? {
        Some(d) => Direction::parse(&d).ok_or_else(|| {
            NetworkError::invalid_attr(
                "direction",
                format!("'{d}' is not in ['ingress', 'egress']"),
            )
        })?,
        None => {
            return Err(NetworkError::invalid_attr(
                "direction",
                "'direction' is required",
            ))
        }
    };
    let ethertype = match nullable_string(obj, "ethertype")? {
        None => EtherType::V4,
        Some(e) if e.eq_ignore_ascii_case("ipv4") => EtherType::V4,
        Some(e) if e.eq_ignore_ascii_case("ipv6") => EtherType::V6,
        Some(e) => {
            return Err(NetworkError::bad_request(
                "SecurityGroupRuleInvalidEtherType",
                format!("Security group rule for ethertype '{e}' not supported. Allowed values are ['IPv4', 'IPv6']."),
            ))
        }
    };
    let protocol = match obj.get("protocol") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(v) => {
            return Err(NetworkError::bad_request(
                "SecurityGroupRuleInvalidProtocol",
                format!("Security group rule protocol {v} not supported."),
            ))
        }
    };
    let port_range_min = port_value(obj, "port_range_min")?;
    let port_range_max = port_value(obj, "port_range_max")?;
    let remote_ip_prefix = match nullable_string(obj, "remote_ip_prefix")? {
        None => None,
        Some(p) => Some(
            ipam::parse_prefix(&p)
                .map_err(|e| NetworkError::invalid_attr("remote_ip_prefix", e))?,
        ),
    };
    Ok(NewRule {
        project_id: input::project(obj)?,
        security_group_id,
        direction,
        ethertype,
        protocol,
        port_range_min,
        port_range_max,
        remote_ip_prefix,
        remote_group_id: nullable_string(obj, "remote_group_id")?,
        remote_address_group_id: nullable_string(obj, "remote_address_group_id")?,
        description: input::string(obj, "description", 255)?.unwrap_or_default(),
    })
}

pub async fn create_rules(state: State, auth: Auth, body: Bytes) -> Result<Response> {
    let svc = &state.0;
    let (objs, bulk) = input::create_body(&body, "security_group_rule", "security_group_rules")?;
    let mut reqs = Vec::with_capacity(objs.len());
    for obj in &objs {
        let req = parse_rule(obj)?;
        let g = svc.find_group(&req.security_group_id, &auth).await?;
        let project = req
            .project_id
            .clone()
            .unwrap_or_else(|| g.project_id.clone());
        let t = json!({"project_id": project, "tenant_id": project,
                       "security_group_id": g.id,
                       "security_group:project_id": g.project_id, "security_group:tenant_id": g.project_id});
        authorize(svc, &auth, "create_security_group_rule", &t)?;
        reqs.push(req);
    }
    let defaults = svc.default_group_ids().await?;
    let rules = svc.create_rules(&auth, reqs).await?;
    let out = rules
        .iter()
        .map(|r| wire::rule(r, defaults.contains(&r.security_group_id)))
        .collect();
    Ok(created(
        "security_group_rule",
        "security_group_rules",
        bulk,
        out,
    ))
}

pub async fn list_rules(state: State, auth: Auth, RawQuery(q): RawQuery) -> Result<Response> {
    let svc = &state.0;
    let lq = query::ListQuery::parse(q.as_deref())?;
    let creds = auth.credentials();
    let groups: std::collections::HashMap<String, String> = svc
        .list_groups(&auth)
        .await?
        .into_iter()
        .map(|g| (g.id, g.project_id))
        .collect();
    let defaults: HashSet<String> = svc.default_group_ids().await?;
    let items: Vec<Value> = svc
        .list_rules(&auth)
        .await?
        .iter()
        .filter(|r| {
            let owner = groups
                .get(&r.security_group_id)
                .map_or(r.project_id.as_str(), String::as_str);
            svc.policy
                .enforce("get_security_group_rule", &rule_target(r, owner), &creds)
        })
        .map(|r| wire::rule(r, defaults.contains(&r.security_group_id)))
        .collect();
    Ok(axum::Json(lq.render(
        items,
        "security_group_rules",
        &collection_url(svc, "security-group-rules"),
    )?)
    .into_response())
}

async fn readable_rule(svc: &NetworkService, auth: &Auth, id: &str) -> Result<SecurityGroupRule> {
    let r = svc.find_rule(id, auth).await?;
    let owner = match svc.find_group(&r.security_group_id, auth).await {
        Ok(g) => g.project_id,
        Err(_) => r.project_id.clone(),
    };
    if !svc.policy.enforce(
        "get_security_group_rule",
        &rule_target(&r, &owner),
        &auth.credentials(),
    ) {
        return Err(NetworkError::security_group_rule_not_found(id));
    }
    Ok(r)
}

pub async fn show_rule(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let r = readable_rule(svc, &auth, &id).await?;
    let is_default = svc.is_default_group(&r.security_group_id).await?;
    let v = query::project(wire::rule(&r, is_default), &query::fields_of(q.as_deref()));
    Ok(axum::Json(json!({ "security_group_rule": v })).into_response())
}

pub async fn remove_rule(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    let r = readable_rule(svc, &auth, &id).await?;
    let owner = svc
        .find_group(&r.security_group_id, &auth)
        .await
        .map(|g| g.project_id)
        .unwrap_or_else(|_| r.project_id.clone());
    authorize(
        svc,
        &auth,
        "delete_security_group_rule",
        &rule_target(&r, &owner),
    )?;
    svc.delete_rule(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
