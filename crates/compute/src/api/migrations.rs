//! `GET /os-migrations` (admin) and a server's in-progress live migrations
//! (`/servers/{id}/migrations`, 2.23+), which an admin can force to complete (2.22) or abort
//! (2.24). The move actions write the rows.

use axum::extract::{Extension, Path, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ferrostack_api::microversion::Microversion;
use ferrostack_api::request::RequestId;
use ferrostack_api::{ApiError, Auth};
use serde_json::{json, Map, Value};

use super::input::{limit_marker, nova_time, only_query_params, query_get, query_pairs};
use super::server_views::target;
use super::State;
use crate::app::migration_control::Control;
use crate::app::migrations::{is_live_in_progress, Migration, MigrationFilters};
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-migrations", get(index))
        .route("/servers/{id}/migrations", get(server_index))
        .route(
            "/servers/{id}/migrations/{mid}",
            get(server_show).delete(server_abort),
        )
        .route("/servers/{id}/migrations/{mid}/action", post(server_action))
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

/// An ISO 8601 query timestamp (with or without zone; UTC when none) in microseconds.
fn query_time(name: &str, s: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_micros())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_micros())
        })
        .map_err(|_| {
            bad(format!(
                "Invalid input for query parameters {name}. Value: {s}. '{s}' is not a \
                 'date-time'"
            ))
        })
}

/// Nova's flavor ids in migrations are internal integers; ours are flavor ids, shown when
/// numeric.
fn flavor_int(id: &Option<String>) -> Value {
    id.as_deref()
        .and_then(|s| s.parse::<i64>().ok())
        .map_or(Value::Null, |n| json!(n))
}

fn time_opt(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| json!(nova_time(t)))
}

/// One migration as os-migrations shows it at `v`.
fn view(base: &str, m: &Migration, v: Microversion) -> Value {
    let mut o = Map::new();
    o.insert("created_at".into(), json!(nova_time(m.created_at)));
    o.insert("dest_compute".into(), json!(m.dest_compute));
    o.insert("dest_host".into(), json!(m.dest_host));
    o.insert("dest_node".into(), json!(m.dest_node));
    o.insert("id".into(), json!(m.id));
    o.insert("instance_uuid".into(), json!(m.instance_uuid));
    o.insert("new_instance_type_id".into(), flavor_int(&m.new_flavor_id));
    o.insert("old_instance_type_id".into(), flavor_int(&m.old_flavor_id));
    o.insert("source_compute".into(), json!(m.source_compute));
    o.insert("source_node".into(), json!(m.source_node));
    o.insert("status".into(), json!(m.status));
    o.insert("updated_at".into(), time_opt(m.updated_at));
    if v.at_least(2, 23) {
        o.insert("migration_type".into(), json!(m.migration_type));
        if is_live_in_progress(m) {
            let path = format!("servers/{}/migrations/{}", m.instance_uuid, m.id);
            o.insert(
                "links".into(),
                json!([
                    {"rel": "self", "href": format!("{base}/v2.1/{path}")},
                    {"rel": "bookmark", "href": format!("{base}/{path}")},
                ]),
            );
        }
    }
    if v.at_least(2, 59) {
        o.insert("uuid".into(), json!(m.uuid));
    }
    if v.at_least(2, 80) {
        o.insert("user_id".into(), json!(m.user_id));
        o.insert("project_id".into(), json!(m.project_id));
    }
    Value::Object(o)
}

async fn index(
    svc: State,
    auth: Auth,
    v: Microversion,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-migrations:index",
        &json!({"project_id": auth.project_id().unwrap_or_default()}),
    )?;
    let pairs = query_pairs(raw.as_deref());
    if v.at_least(2, 59) {
        let mut allowed = vec![
            "hidden",
            "host",
            "instance_uuid",
            "source_compute",
            "status",
            "migration_type",
            "limit",
            "marker",
            "changes-since",
        ];
        if v.at_least(2, 66) {
            allowed.push("changes-before");
        }
        if v.at_least(2, 80) {
            allowed.extend(["user_id", "project_id"]);
        }
        only_query_params(&pairs, &allowed)?;
    }
    let get = |k: &str| query_get(&pairs, k).map(str::to_string);
    let mut f = MigrationFilters {
        host: get("host"),
        source_compute: get("source_compute"),
        status: get("status"),
        instance_uuid: get("instance_uuid"),
        migration_type: get("migration_type"),
        ..Default::default()
    };
    if v.at_least(2, 80) {
        f.user_id = get("user_id");
        f.project_id = get("project_id");
    }
    let (mut limit, mut marker) = (None, None);
    if v.at_least(2, 59) {
        if let Some(s) = query_get(&pairs, "changes-since") {
            f.updated_since = Some(query_time("changes-since", s)?);
        }
        (limit, marker) = limit_marker(&pairs)?;
    }
    if v.at_least(2, 66) {
        if let Some(s) = query_get(&pairs, "changes-before") {
            let before = query_time("changes-before", s)?;
            if f.updated_since.is_some_and(|since| before < since) {
                return Err(bad(
                    "The value of changes-since must be less than or equal to changes-before.",
                ));
            }
            f.updated_before = Some(before);
        }
    }
    let page = svc.list_migrations(&f, marker.as_deref(), limit).await?;
    let base = format!("{}/compute", svc.config.public_url);
    let mut body =
        json!({"migrations": page.iter().map(|m| view(&base, m, v)).collect::<Vec<_>>()});
    if let (Some(l), Some(last)) = (limit, page.last()) {
        if page.len() == l {
            body["migrations_links"] =
                super::next_links(&base, "os-migrations", &pairs, &last.uuid);
        }
    }
    Ok(axum::Json(body).into_response())
}

/// One migration as `/servers/{id}/migrations` shows it.
fn server_view(m: &Migration, v: Microversion, with_host: bool) -> Value {
    let host = |s: &Option<String>| if with_host { json!(s) } else { Value::Null };
    let mut o = json!({
        "created_at": nova_time(m.created_at),
        "dest_compute": host(&m.dest_compute),
        "dest_host": host(&m.dest_host),
        "dest_node": host(&m.dest_node),
        "disk_processed_bytes": m.disk_processed,
        "disk_remaining_bytes": m.disk_remaining,
        "disk_total_bytes": m.disk_total,
        "id": m.id,
        "memory_processed_bytes": m.memory_processed,
        "memory_remaining_bytes": m.memory_remaining,
        "memory_total_bytes": m.memory_total,
        "server_uuid": m.instance_uuid,
        "source_compute": host(&m.source_compute),
        "source_node": host(&m.source_node),
        "status": m.status,
        "updated_at": time_opt(m.updated_at),
    });
    if v.at_least(2, 59) {
        o["uuid"] = json!(m.uuid);
    }
    if v.at_least(2, 80) {
        o["user_id"] = json!(m.user_id);
        o["project_id"] = json!(m.project_id);
    }
    o
}

fn since_2_23(v: Microversion) -> Result<(), ApiError> {
    if v.at_least(2, 23) {
        Ok(())
    } else {
        Err(ApiError::not_found("The resource could not be found."))
    }
}

async fn server_index(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    since_2_23(v)?;
    let inst = svc.find_server(&auth, &id).await?;
    let t = target(&inst);
    auth.enforce(&svc.policy, "os_compute_api:servers:migrations:index", &t)?;
    let with_host = svc.policy.enforce(
        "os_compute_api:servers:migrations:index:host",
        &t,
        &auth.credentials(),
    );
    let list: Vec<Value> = svc
        .live_migrations_in_progress(&inst)
        .await?
        .iter()
        .map(|m| server_view(m, v, with_host))
        .collect();
    Ok(axum::Json(json!({"migrations": list})).into_response())
}

async fn server_show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, mid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    since_2_23(v)?;
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:servers:migrations:show",
        &target(&inst),
    )?;
    let m = svc.live_migration_in_progress(&inst, &mid).await?;
    Ok(axum::Json(json!({"migration": server_view(&m, v, true)})).into_response())
}

/// `POST /servers/{id}/migrations/{mid}/action` with `{"force_complete": null}` (2.22+).
async fn server_action(
    svc: State,
    auth: Auth,
    v: Microversion,
    Extension(rid): Extension<RequestId>,
    Path((id, mid)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    if !v.at_least(2, 22) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    let (name, arg) = body
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
        .ok_or_else(|| {
            bad("There is either no action or more than one action in the request body.")
        })?;
    if name != "force_complete" {
        return Err(bad(format!("There is no such action: {name}")));
    }
    if !arg.is_null() {
        return Err(super::input::invalid(
            "force_complete",
            arg,
            format!("{} is not of type 'null'", super::input::repr(arg)),
        )
        .into());
    }
    auth.enforce(
        &svc.policy,
        "os_compute_api:servers:migrations:force_complete",
        &json!({"project_id": auth.project_id().unwrap_or_default()}),
    )?;
    let inst = svc.find_server(&auth, &id).await?;
    svc.control_live_migration(&inst, &mid, Control::ForceComplete, &auth, &rid.0)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `DELETE /servers/{id}/migrations/{mid}`: aborts a live migration (2.24+; also one not
/// running yet from 2.65).
async fn server_abort(
    svc: State,
    auth: Auth,
    v: Microversion,
    Extension(rid): Extension<RequestId>,
    Path((id, mid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if !v.at_least(2, 24) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    auth.enforce(
        &svc.policy,
        "os_compute_api:servers:migrations:delete",
        &json!({"project_id": auth.project_id().unwrap_or_default()}),
    )?;
    let inst = svc.find_server(&auth, &id).await?;
    let control = Control::Abort {
        queued: v.at_least(2, 65),
    };
    svc.control_live_migration(&inst, &mid, control, &auth, &rid.0)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
