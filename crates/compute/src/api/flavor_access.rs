//! Private flavor access: `GET /flavors/{id}/os-flavor-access` and the
//! `addTenantAccess`/`removeTenantAccess` actions on `POST /flavors/{id}/action`.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::Auth;
use serde_json::{json, Value};

use super::input;
use super::State;
use crate::app::flavor_access::AccessChange;
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
    let projects = svc.flavor_access(&id).await?;
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

    let change = if add {
        AccessChange::Add {
            refuse_public: v.at_least(2, 7),
        }
    } else {
        AccessChange::Remove
    };
    let projects = svc.change_flavor_access(&id, &tenant, change).await?;
    Ok(render(&id, &projects))
}
