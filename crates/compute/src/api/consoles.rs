//! Remote consoles: `POST /servers/{id}/remote-consoles` (2.6+), the legacy
//! `os-get*Console` server actions (up to 2.5), `/os-console-auth-tokens/{token}` and the
//! console page the URLs point at (outside /v2.1: the console token is its authorization).

use axum::extract::{Path, Query};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth, Json};
use serde_json::{json, Map, Value};

use super::input::{invalid, properties, repr};
use super::server_views::target;
use super::State;
use crate::error::ComputeError;
use crate::instance::Instance;
use crate::ComputeService;

const POLICY: &str = "os_compute_api:os-remote-consoles";

/// Routes under /v2.1.
pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/servers/{id}/remote-consoles", post(create))
        .route("/os-console-auth-tokens/{token}", get(show_token))
}

/// The console page, mounted beside /v2.1 (no Keystone token needed).
pub fn proxy_routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/console", get(console_page))
        .route("/console/", get(console_page))
}

/// A string property that must be one of `allowed`.
fn one_of<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    allowed: &[&str],
) -> Result<&'a str, ComputeError> {
    let v = &obj[key];
    let s = v
        .as_str()
        .ok_or_else(|| invalid(key, v, format!("{} is not of type 'string'", repr(v))))?;
    if !allowed.contains(&s) {
        let list = allowed
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(invalid(
            key,
            v,
            format!("{} is not one of [{list}]", repr(v)),
        ));
    }
    Ok(s)
}

async fn create(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    if !v.at_least(2, 6) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, POLICY, &target(&inst))?;
    let rc = super::input::envelope(
        &body,
        "remote_console",
        &["protocol", "type"],
        &["protocol", "type"],
    )?;
    let (mut protocols, mut types) = (
        vec!["vnc", "spice", "serial", "rdp"],
        vec!["novnc", "xvpvnc", "spice-html5", "serial", "rdp-html5"],
    );
    if v.at_least(2, 8) {
        protocols.push("mks");
        types.push("webmks");
    }
    let protocol = one_of(rc, "protocol", &protocols)?;
    let console_type = one_of(rc, "type", &types)?;
    if protocol == "rdp" {
        return Err(ApiError::bad_request(format!(
            "Unavailable console type {protocol}."
        )));
    }
    let url = svc.remote_console(&inst, protocol, console_type).await?;
    Ok(axum::Json(json!({"remote_console": {
        "protocol": protocol, "type": console_type, "url": url}}))
    .into_response())
}

/// The legacy console actions (`os-getVNCConsole`, `os-getSPICEConsole`,
/// `os-getSerialConsole`, `os-getRDPConsole`), microversions 2.1-2.5; called from the
/// server action dispatcher with the action's arguments.
pub(crate) async fn legacy_action(
    svc: &ComputeService,
    auth: &Auth,
    v: Microversion,
    inst: &Instance,
    action: &str,
    args: &Value,
) -> Result<Response, ApiError> {
    super::removed_at(v, 6)?;
    auth.enforce(&svc.policy, POLICY, &target(inst))?;
    let (protocol, types): (&str, &[&str]) = match action {
        "os-getVNCConsole" => ("vnc", &["novnc", "xvpvnc"]),
        "os-getSPICEConsole" => ("spice", &["spice-html5"]),
        "os-getSerialConsole" => ("serial", &["serial"]),
        // Removed with the Hyper-V driver: Nova answers a bare 400.
        _ => {
            return Err(ApiError::bad_request(
                "The server could not comply with the request since it is either malformed \
                 or otherwise incorrect.",
            ))
        }
    };
    let obj = args.as_object().ok_or_else(|| {
        invalid(
            action,
            args,
            format!("{} is not of type 'object'", repr(args)),
        )
    })?;
    properties(obj, action, &["type"], &["type"])?;
    let console_type = one_of(obj, "type", types)?;
    let url = svc.remote_console(inst, protocol, console_type).await?;
    Ok(axum::Json(json!({"console": {"type": console_type, "url": url}})).into_response())
}

/// `GET /os-console-auth-tokens/{token}` (admin): what a console token connects to. Before
/// 2.31 only RDP consoles had tokens here, and RDP is gone: 400.
async fn show_token(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    if !v.at_least(2, 31) {
        return Err(ApiError::bad_request(
            "The server could not comply with the request since it is either malformed or \
             otherwise incorrect.",
        ));
    }
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-console-auth-tokens",
        &json!({"project_id": auth.project_id().unwrap_or_default()}),
    )?;
    let a = svc
        .console_auth(&token)
        .await?
        .ok_or_else(|| ApiError::not_found("Token not found"))?;
    Ok(axum::Json(json!({"console": {
        "instance_uuid": a.instance_uuid,
        "host": a.host,
        "port": a.port,
        "internal_access_path": a.internal_access_path,
    }}))
    .into_response())
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The page a console URL opens. With the fake driver there is no guest screen: the page
/// says which server's simulated console this is. (A real driver serves noVNC here.)
async fn console_page(svc: State, Query(q): Query<TokenQuery>) -> Result<Response, ApiError> {
    let token = q.token.unwrap_or_default();
    let invalid_token =
        || ApiError::not_found(format!("The token '{token}' is invalid or has expired"));
    let (a, inst) = svc
        .console_session(&token)
        .await?
        .ok_or_else(invalid_token)?;
    let name = escape(&inst.display_name);
    let page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Console of {name}</title>\
         </head><body><h1>Console of server {name}</h1>\
         <p>This is a simulated {kind} console of server {name} ({uuid}) on host {host}: \
         the fake driver has no guest screen.</p></body></html>\n",
        kind = escape(&a.console_type),
        uuid = escape(&inst.uuid),
        host = escape(&a.host),
    );
    Ok(Html(page).into_response())
}
