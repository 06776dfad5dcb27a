//! The security group proxy of the compute API, as Nova serves it over Neutron (removed at
//! 2.36): `/os-security-groups` (the project's groups with their ingress rules),
//! `/os-security-group-rules` (ingress rules in Nova's terms) and a server's groups
//! (`/servers/{id}/os-security-groups`). Nova validates the body; the networking service
//! does the rest, its refusals worded as Nova's.

use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth, Json};
use serde_json::{json, Value};

use super::State;
use crate::peers::{GroupView, NovaRule, RuleView};
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-security-groups", get(list).post(create))
        .route(
            "/os-security-groups/{id}",
            get(show).put(update).delete(remove),
        )
        .route("/os-security-group-rules", post(create_rule))
        .route("/os-security-group-rules/{id}", delete(remove_rule))
        .route("/servers/{id}/os-security-groups", get(server_groups))
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

/// Nova's `validate_id` over Neutron: group ids are uuids (400 otherwise).
fn uuid(id: &str) -> Result<(), ApiError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(bad("Security group id should be uuid"));
    }
    Ok(())
}

fn rule_wire(r: &RuleView) -> Value {
    json!({
        "id": r.id,
        "parent_group_id": r.parent_group_id,
        "ip_protocol": r.ip_protocol,
        "from_port": r.from_port,
        "to_port": r.to_port,
        "group": r.group.as_ref().map_or_else(|| json!({}), |(n, p)| json!({"name": n, "tenant_id": p})),
        "ip_range": r.cidr.as_ref().map_or_else(|| json!({}), |c| json!({"cidr": c})),
    })
}

fn group_wire(g: &GroupView) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "tenant_id": g.project_id,
        "rules": g.rules.iter().map(rule_wire).collect::<Vec<_>>(),
    })
}

/// Nova's `validate_property`: a string, 1-255 characters once trimmed.
fn property(obj: &serde_json::Map<String, Value>, key: &str) -> Result<String, ApiError> {
    let Some(Value::String(s)) = obj.get(key) else {
        return Err(bad(format!(
            "Security group {key} is not a string or unicode"
        )));
    };
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 255 {
        return Err(bad(format!(
            "{key} has a minimum character requirement of 1 and a maximum of 255."
        )));
    }
    // Checked trimmed, kept as given (as Nova passes it on).
    Ok(s.clone())
}

/// `{"<key>": {...}}`, else Nova's 400s.
fn body_of<'a>(body: &'a Value, key: &str) -> Result<&'a serde_json::Map<String, Value>, ApiError> {
    match body.get(key) {
        Some(Value::Object(o)) => Ok(o),
        _ => Err(bad(format!("Missing parameter {key}"))),
    }
}

/// A group's name and description from a create or update body.
fn naming(body: &Value) -> Result<(String, String), ApiError> {
    let g = body_of(body, "security_group")?;
    Ok((property(g, "name")?, property(g, "description")?))
}

async fn list(
    svc: State,
    auth: Auth,
    v: Microversion,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    super::proxy_check(&svc, &auth, v, "os_compute_api:os-security-groups:get")?;
    // `all_tenants` (admins): every project's groups.
    let all = auth.is_admin
        && url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()).any(|(k, v)| {
            k == "all_tenants" && !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "off")
        });
    let groups = svc.networking.security_groups(&auth, all).await?;
    let list: Vec<Value> = groups.iter().map(group_wire).collect();
    Ok(axum::Json(json!({ "security_groups": list })).into_response())
}

async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    super::proxy_check(&svc, &auth, v, "os_compute_api:os-security-groups:show")?;
    uuid(&id)?;
    let g = svc.networking.security_group(&auth, &id).await?;
    Ok(axum::Json(json!({ "security_group": group_wire(&g) })).into_response())
}

async fn create(
    svc: State,
    auth: Auth,
    v: Microversion,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    super::proxy_check(&svc, &auth, v, "os_compute_api:os-security-groups:create")?;
    let (name, description) = naming(&body)?;
    let g = svc
        .networking
        .save_security_group(&auth, None, &name, &description)
        .await?;
    Ok(axum::Json(json!({ "security_group": group_wire(&g) })).into_response())
}

async fn update(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    super::proxy_check(&svc, &auth, v, "os_compute_api:os-security-groups:update")?;
    uuid(&id)?;
    svc.networking.security_group(&auth, &id).await?;
    let (name, description) = naming(&body)?;
    let g = svc
        .networking
        .save_security_group(&auth, Some(&id), &name, &description)
        .await?;
    Ok(axum::Json(json!({ "security_group": group_wire(&g) })).into_response())
}

async fn remove(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    super::proxy_check(&svc, &auth, v, "os_compute_api:os-security-groups:delete")?;
    uuid(&id)?;
    svc.networking.delete_security_group(&auth, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// An integer port (or ICMP type/code), as a number or numeric text.
fn port_of(v: Option<&Value>) -> Result<Option<i64>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(()),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// Nova's checks of a new rule (`_new_ingress_rule`).
fn nova_rule(body: &Value) -> Result<NovaRule, ApiError> {
    let r = body_of(body, "security_group_rule")?;
    let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
    let parent_group_id = match r.get("parent_group_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(bad("Security group id should be uuid")),
    };
    uuid(&parent_group_id)?;
    let group_id = text("group_id");
    if let Some(g) = &group_id {
        uuid(g)?;
    }
    let cidr = match (text("cidr"), &group_id) {
        (Some(c), _) => Some(
            c.parse::<ipnet::IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| bad(format!("Invalid cidr {c}.")))?,
        ),
        (None, None) => Some("0.0.0.0/0".parse().map_err(|_| bad("Invalid cidr."))?),
        (None, Some(_)) => None,
    };
    if let Some(c) = cidr {
        if c.prefix_len() == 0 && !c.addr().is_unspecified() {
            return Err(bad(format!("Bad prefix for network in cidr {c}")));
        }
    }
    let protocol = match r.get("ip_protocol") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.to_ascii_lowercase()),
        Some(other) => Some(other.to_string()),
    };
    let (from, to) = (port_of(r.get("from_port")), port_of(r.get("to_port")));
    let has_ports = !matches!(r.get("from_port"), None | Some(Value::Null))
        && !matches!(r.get("to_port"), None | Some(Value::Null));
    let Some(proto) = protocol.clone().filter(|_| has_ports) else {
        if group_id.is_none() {
            return Err(bad("Not enough parameters to build a valid rule."));
        }
        return Ok(NovaRule {
            parent_group_id,
            ip_protocol: protocol,
            from_port: None,
            to_port: None,
            cidr,
            group_id,
        });
    };
    let (Ok(Some(from)), Ok(Some(to))) = (from, to) else {
        return Err(bad(if proto == "icmp" {
            "Type and Code must be integers for ICMP protocol type"
        } else {
            "To and From ports must be integers"
        }));
    };
    match proto.as_str() {
        "tcp" | "udp" => {
            if from > to {
                return Err(bad(format!(
                    "Invalid port range {from}:{to}. Former value cannot be greater than the later"
                )));
            }
            if from < 1 || to > 65535 {
                return Err(bad(format!(
                    "Invalid port range {from}:{to}. Valid {} ports should be between 1-65535",
                    proto.to_uppercase()
                )));
            }
        }
        "icmp" => {
            if !(-1..=255).contains(&from) || !(-1..=255).contains(&to) {
                return Err(bad(format!(
                    "Invalid port range {from}:{to}. For ICMP, the type:code must be valid"
                )));
            }
        }
        other => return Err(bad(format!("Invalid IP protocol {other}."))),
    }
    Ok(NovaRule {
        parent_group_id,
        ip_protocol: Some(proto),
        from_port: Some(from),
        to_port: Some(to),
        cidr,
        group_id,
    })
}

async fn create_rule(
    svc: State,
    auth: Auth,
    v: Microversion,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    super::proxy_check(
        &svc,
        &auth,
        v,
        "os_compute_api:os-security-groups:rule:create",
    )?;
    let rule = nova_rule(&body)?;
    let r = svc
        .networking
        .create_security_group_rule(&auth, rule)
        .await?;
    Ok(axum::Json(json!({ "security_group_rule": rule_wire(&r) })).into_response())
}

async fn remove_rule(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    super::proxy_check(
        &svc,
        &auth,
        v,
        "os_compute_api:os-security-groups:rule:delete",
    )?;
    svc.networking
        .delete_security_group_rule(&auth, &id)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

async fn server_groups(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    super::proxy_check(&svc, &auth, v, "os_compute_api:os-security-groups:list")?;
    let inst = svc.find_server(&auth, &id).await?;
    let groups = svc
        .networking
        .server_security_groups(&auth, &inst.uuid)
        .await?;
    let list: Vec<Value> = groups.iter().map(group_wire).collect();
    Ok(axum::Json(json!({ "security_groups": list })).into_response())
}
