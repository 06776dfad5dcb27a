//! `/os-server-groups`: list, create, show, delete.

use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::input::{self, MAX_INT};
use super::State;
use crate::app::server_groups::NewServerGroup;
use crate::error::{ComputeError, Result};
use crate::model::ServerGroup;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-server-groups", get(index).post(create))
        .route("/os-server-groups/{id}", get(show).delete(remove))
}

/// Renders a group (its members are those not deleted: the app layer filtered them).
fn render(g: &ServerGroup, v: Microversion) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(g.id));
    o.insert("name".into(), json!(g.name));
    if v.at_least(2, 64) {
        o.insert("policy".into(), json!(g.policy));
        let rules = match g.max_server_per_host {
            Some(n) => json!({ "max_server_per_host": n }),
            None => json!({}),
        };
        o.insert("rules".into(), rules);
    } else {
        o.insert("policies".into(), json!([g.policy]));
        o.insert("metadata".into(), json!({}));
    }
    o.insert("members".into(), json!(g.members));
    if v.at_least(2, 13) {
        o.insert("project_id".into(), json!(g.project_id));
        o.insert("user_id".into(), json!(g.user_id));
    }
    Value::Object(o)
}

pub async fn index(
    state: State,
    auth: Auth,
    v: Microversion,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let pairs = input::query_pairs(q.as_deref());
    if v.at_least(2, 75) {
        input::only_query_params(&pairs, &["all_projects", "limit", "offset"])?;
    }
    let project = auth.project_id().unwrap_or_default().to_string();
    let target = json!({"project_id": project});
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-server-groups:index",
        &target,
    )?;
    let all = input::query_get(&pairs, "all_projects").is_some() && auth.is_admin;
    if all {
        auth.enforce(
            &svc.policy,
            "os_compute_api:os-server-groups:index:all_projects",
            &target,
        )?;
    }
    let number = |k: &str| -> Result<Option<usize>> {
        input::query_get(&pairs, k)
            .map(|s| {
                s.parse::<usize>().map_err(|_| {
                    ComputeError::BadRequest(format!(
                        "Invalid input for query parameters {k}. Value: {s}. '{s}' does not \
                         match '^[0-9]*$'"
                    ))
                })
            })
            .transpose()
    };
    let offset = number("offset")?.unwrap_or(0);
    let limit = number("limit")?.unwrap_or(1000).min(1000);
    let page = svc
        .list_server_groups((!all).then_some(project.as_str()), offset, limit)
        .await?;
    let list: Vec<Value> = page.iter().map(|g| render(g, v)).collect();
    Ok(axum::Json(json!({ "server_groups": list })).into_response())
}

pub async fn show(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    let svc = &state.0;
    let g = svc.server_group(&id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-server-groups:show",
        &json!({"project_id": g.project_id}),
    )?;
    Ok(axum::Json(json!({"server_group": render(&g, v)})).into_response())
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    let g = svc.server_group(&id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-server-groups:delete",
        &json!({"project_id": g.project_id}),
    )?;
    svc.delete_server_group(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn policy_enum(v: Microversion) -> &'static [&'static str] {
    if v.at_least(2, 15) {
        &[
            "anti-affinity",
            "affinity",
            "soft-anti-affinity",
            "soft-affinity",
        ]
    } else {
        &["anti-affinity", "affinity"]
    }
}

fn check_policy(field: &str, value: &Value, allowed: &[&str]) -> Result<String> {
    match value.as_str() {
        Some(s) if allowed.contains(&s) => Ok(s.to_string()),
        _ => Err(input::invalid(
            field,
            value,
            format!(
                "{} is not one of {}",
                input::repr(value),
                input::repr(&json!(allowed))
            ),
        )),
    }
}

/// (policy, max_server_per_host) from the body of this microversion.
fn parse_policy(v: Microversion, o: &Map<String, Value>) -> Result<(String, Option<i64>)> {
    if !v.at_least(2, 64) {
        let p = &o["policies"];
        let list = p.as_array().ok_or_else(|| {
            input::invalid(
                "policies",
                p,
                format!("{} is not of type 'array'", input::repr(p)),
            )
        })?;
        if list.is_empty() {
            return Err(input::invalid("policies", p, "[] should be non-empty"));
        }
        if list.len() > 1 {
            return Err(input::invalid(
                "policies",
                p,
                format!("{} is too long", input::repr(p)),
            ));
        }
        return Ok((check_policy("policies", &list[0], policy_enum(v))?, None));
    }
    let policy = check_policy("policy", &o["policy"], policy_enum(v))?;
    let mut max = None;
    if let Some(rules) = o.get("rules") {
        let r = rules.as_object().ok_or_else(|| {
            input::invalid(
                "rules",
                rules,
                format!("{} is not of type 'object'", input::repr(rules)),
            )
        })?;
        input::properties(r, "rules", &["max_server_per_host"], &[])?;
        if let Some(m) = r.get("max_server_per_host") {
            max = Some(input::integer("max_server_per_host", m, 1, MAX_INT, false)?);
        }
        if policy != "anti-affinity" && !r.is_empty() {
            return Err(ComputeError::BadRequest(
                "Only anti-affinity policy supports rules.".into(),
            ));
        }
    }
    Ok((policy, max))
}

pub async fn create(
    state: State,
    auth: Auth,
    v: Microversion,
    ferrostack_api::Json(body): ferrostack_api::Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    let project = auth.project_id().unwrap_or_default().to_string();
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-server-groups:create",
        &json!({"project_id": project}),
    )?;
    let o = if v.at_least(2, 64) {
        input::envelope(
            &body,
            "server_group",
            &["name", "policy", "rules"],
            &["name", "policy"],
        )?
    } else {
        input::envelope(
            &body,
            "server_group",
            &["name", "policies"],
            &["name", "policies"],
        )?
    };
    let name = input::name("name", &o["name"])?.to_string();
    let (policy, max_server_per_host) = parse_policy(v, o)?;
    let group = svc
        .create_server_group(NewServerGroup {
            name,
            project_id: project,
            user_id: auth.user_id.clone(),
            policy,
            max_server_per_host,
        })
        .await?;
    Ok(axum::Json(json!({"server_group": render(&group, v)})).into_response())
}
