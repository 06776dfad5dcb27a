//! Private flavor access: `GET /flavors/{id}/os-flavor-access` and the
//! `addTenantAccess`/`removeTenantAccess` actions on `POST /flavors/{id}/action`.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::Auth;
use serde_json::{json, Value};

use super::flavors::not_found;
use super::input;
use super::State;
use crate::db;
use crate::error::{ComputeError, Result};
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/flavors/{id}/os-flavor-access", get(index))
        .route("/flavors/{id}/action", post(action))
}

fn render(flavor_id: &str, projects: &[String]) -> Response {
    let list: Vec<Value> = projects
        .iter()
        .map(|p| json!({"flavor_id": flavor_id, "tenant_id": p}))
        .collect();
    axum::Json(json!({ "flavor_access": list })).into_response()
}

pub async fn index(state: State, auth: Auth, Path(id): Path<String>) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(&svc.policy, "os_compute_api:os-flavor-access", &json!({}))?;
    let mut conn = svc.db.pool.acquire().await?;
    let flavor = db::flavors::get(&mut conn, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    if flavor.is_public {
        return Err(ComputeError::NotFound(
            "Access list not available for public flavors.".into(),
        ));
    }
    let projects = db::flavors::access_list(&mut conn, &id).await?;
    Ok(render(&id, &projects))
}

pub async fn action(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    ferrostack_api::Json(body): ferrostack_api::Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    let add = match body.as_object() {
        Some(o) if o.contains_key("addTenantAccess") => true,
        Some(o) if o.contains_key("removeTenantAccess") => false,
        _ => {
            return Err(ComputeError::BadRequest(
                "There is no such action in the request body.".into(),
            ))
        }
    };
    let (key, rule) = if add {
        (
            "addTenantAccess",
            "os_compute_api:os-flavor-access:add_tenant_access",
        )
    } else {
        (
            "removeTenantAccess",
            "os_compute_api:os-flavor-access:remove_tenant_access",
        )
    };
    auth.enforce(&svc.policy, rule, &json!({}))?;
    let o = input::envelope(&body, key, &["tenant"], &["tenant"])?;
    let tenant = input::string("tenant", &o["tenant"], 1, 255)?.to_string();

    let mut tx = svc.db.begin_write().await?;
    // Nova checks the project with Keystone; the project table is in the same database.
    if ferrostack_identity::db::projects::get(&mut tx, &tenant)
        .await?
        .is_none()
    {
        return Err(ComputeError::BadRequest(format!(
            "Project ID {tenant} is not a valid project."
        )));
    }
    let flavor = db::flavors::get(&mut tx, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    if add {
        if flavor.is_public && v.at_least(2, 7) {
            return Err(ComputeError::Conflict(
                "Can not add access to a public flavor.".into(),
            ));
        }
        if !db::flavors::add_access(&mut tx, &id, &tenant).await? {
            return Err(ComputeError::Conflict(format!(
                "Flavor access already exists for flavor {id} and project {tenant} \
                 combination."
            )));
        }
    } else if !db::flavors::remove_access(&mut tx, &id, &tenant).await? {
        return Err(ComputeError::NotFound(format!(
            "Flavor access not found for {id} / {tenant} combination."
        )));
    }
    let projects = db::flavors::access_list(&mut tx, &id).await?;
    tx.commit().await?;
    Ok(render(&id, &projects))
}
