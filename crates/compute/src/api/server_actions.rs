//! `POST /servers/{id}/action` and the per-server read endpoints that go with actions
//! (`os-instance-actions`, console output).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use ferrostack_api::microversion::Microversion;
use ferrostack_api::request::RequestId;
use ferrostack_api::{ApiError, Auth, Json};
use serde_json::{json, Value};

use super::input;
use super::server_views::{iso, target};
use super::State;
use crate::app::server_actions::{
    check_reboot, check_unshelve, unlock_needs_override, RebootKind, ResetState, UnshelveTo,
};
use crate::app::servers::check_lock;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/servers/{id}/action", post(action))
        .route("/servers/{id}/os-instance-actions", get(list_actions))
        .route(
            "/servers/{id}/os-instance-actions/{request_id}",
            get(show_action),
        )
}

/// The properties Nova's schema allows in the body of the actions this module carries out
/// (those of moves, rebuild, rescue and images are checked where they are parsed).
fn action_properties(name: &str, v: Microversion) -> Option<&'static [&'static str]> {
    Some(match name {
        "reboot" => &["type"],
        "lock" if v.at_least(2, 73) => &["locked_reason"],
        "lock" => &[],
        "unshelve" => &["availability_zone", "host"],
        "os-getConsoleOutput" => &["length"],
        "addSecurityGroup" | "removeSecurityGroup" => &["name"],
        "addFloatingIp" => &["address", "fixed_address"],
        "removeFloatingIp" => &["address"],
        "os-resetState" => &["state"],
        "os-getVNCConsole" | "os-getSPICEConsole" | "os-getSerialConsole" | "os-getRDPConsole" => {
            &["type"]
        }
        "pause" | "unpause" | "suspend" | "resume" | "shelve" | "shelveOffload"
        | "trigger_crash_dump" | "unlock" => &[],
        _ => return None,
    })
}

async fn action(
    svc: State,
    auth: Auth,
    v: Microversion,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let (name, args) = body
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
        .ok_or_else(|| {
            ApiError::bad_request(
                "There is either no action or more than one action in the request body.",
            )
        })?;
    // The floating IP actions went with the proxies at 2.44 (no action there at all).
    if matches!(name.as_str(), "addFloatingIp" | "removeFloatingIp") {
        super::removed_at(v, 44)?;
    }
    // Nova's action schemas allow no other properties than these (before the server is
    // looked up, as Nova validates first).
    if let (Some(allowed), Value::Object(o)) = (action_properties(name, v), args) {
        input::properties(o, name, allowed, &[])?;
    }
    let inst = svc.find_server(&auth, &id).await?;
    let t = target(&inst);
    // A locked server refuses actions from non-admins (before their policy), except those
    // that read it or manage the lock.
    let guarded = !matches!(
        name.as_str(),
        "lock"
            | "unlock"
            | "os-getConsoleOutput"
            | "os-resetState"
            | "os-getVNCConsole"
            | "os-getSPICEConsole"
            | "os-getSerialConsole"
            | "os-getRDPConsole"
            // Nova does not check the lock for these.
            | "addFloatingIp"
            | "removeFloatingIp"
    );
    if guarded {
        check_lock(&inst, &auth)?;
    }
    let rid = rid.0.as_str();
    if super::server_moves::ACTIONS.contains(&name.as_str()) {
        return super::server_moves::dispatch(&svc, &auth, rid, v, &inst, name, args).await;
    }
    let enforce = |rule: &str| auth.enforce(&svc.policy, rule, &t);
    match name.as_str() {
        "reboot" => {
            let kind = args.get("type").and_then(|t| t.as_str()).unwrap_or("");
            let kind = match kind.to_ascii_uppercase().as_str() {
                "HARD" => RebootKind::Hard,
                "SOFT" => RebootKind::Soft,
                _ => return Err(ApiError::bad_request(format!("Invalid input for field/attribute type. Value: {kind}. '{kind}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"))),
            };
            // A soft reboot's state is checked before its policy.
            check_reboot(&inst, kind)?;
            enforce("os_compute_api:servers:reboot")?;
            svc.reboot(&inst, &auth, rid, kind).await?;
        }
        "os-stop" => {
            enforce("os_compute_api:servers:stop")?;
            svc.stop(&inst, &auth, rid).await?;
        }
        "os-start" => {
            enforce("os_compute_api:servers:start")?;
            svc.start(&inst, &auth, rid).await?;
        }
        "pause" => {
            enforce("os_compute_api:os-pause-server:pause")?;
            svc.pause(&inst, &auth, rid).await?;
        }
        "unpause" => {
            enforce("os_compute_api:os-pause-server:unpause")?;
            svc.unpause(&inst, &auth, rid).await?;
        }
        "suspend" => {
            enforce("os_compute_api:os-suspend-server:suspend")?;
            svc.suspend(&inst, &auth, rid).await?;
        }
        "resume" => {
            enforce("os_compute_api:os-suspend-server:resume")?;
            svc.resume(&inst, &auth, rid).await?;
        }
        "trigger_crash_dump" => {
            if !v.at_least(2, 17) {
                // A versioned action in Nova: no such method below its microversion.
                return Err(ApiError::not_found("The resource could not be found."));
            }
            enforce("os_compute_api:servers:trigger_crash_dump")?;
            svc.trigger_crash_dump(&inst, &auth, rid).await?;
        }
        "shelve" => {
            enforce("os_compute_api:os-shelve:shelve")?;
            svc.shelve(&inst, &auth, rid).await?;
        }
        "shelveOffload" => {
            enforce("os_compute_api:os-shelve:shelve_offload")?;
            svc.shelve_offload(&inst, &auth, rid).await?;
        }
        "unshelve" => {
            enforce("os_compute_api:os-shelve:unshelve")?;
            // Its state is checked before its body and the to-host rule.
            check_unshelve(&inst)?;
            let to = unshelve_target(args, v)?;
            if to.host.is_some() {
                enforce("os_compute_api:os-shelve:unshelve_to_host")?;
            }
            svc.unshelve(&inst, &auth, rid, &to).await?;
        }
        "addSecurityGroup" | "removeSecurityGroup" => {
            let add = name == "addSecurityGroup";
            enforce(if add {
                "os_compute_api:os-security-groups:add"
            } else {
                "os_compute_api:os-security-groups:remove"
            })?;
            let group = args
                .get("name")
                .and_then(|n| n.as_str())
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid input for field/attribute {name}. Value: {args}. 'name' is a required property"
                    ))
                })?;
            svc.change_security_group(&inst, &auth, group, add).await?;
        }
        "addFloatingIp" | "removeFloatingIp" => {
            let add = name == "addFloatingIp";
            enforce(if add {
                "os_compute_api:os-floating-ips:add"
            } else {
                "os_compute_api:os-floating-ips:remove"
            })?;
            let address = super::floating_ips::address(args, name, "address")?.ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid input for field/attribute {name}. Value: {args}. 'address' is a required property"
                ))
            })?;
            if add {
                let fixed = super::floating_ips::address(args, name, "fixed_address")?;
                super::floating_ips::associate(&svc, &auth, &inst, address, fixed).await?;
            } else {
                super::floating_ips::disassociate(&svc, &auth, &inst, address).await?;
            }
        }
        "lock" => {
            enforce("os_compute_api:os-lock-server:lock")?;
            let reason = args.get("locked_reason").and_then(|r| r.as_str());
            if reason.is_some_and(|r| r.chars().count() > 255) {
                return Err(ApiError::bad_request(
                    "Invalid input for field/attribute locked_reason. Value is too long",
                ));
            }
            svc.lock_server(&inst, &auth, rid, reason).await?;
        }
        "unlock" => {
            enforce("os_compute_api:os-lock-server:unlock")?;
            if unlock_needs_override(&inst, &auth) {
                enforce("os_compute_api:os-lock-server:unlock:unlock_override")?;
            }
            svc.unlock_server(&inst).await?;
        }
        "os-getConsoleOutput" => {
            enforce("os_compute_api:os-console-output")?;
            let lines = match args.get("length") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => n
                    .as_i64()
                    .filter(|n| *n >= -1)
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                // -1 (or any negative the filter lets through): the whole log.
                Some(Value::String(s)) => s
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= -1)
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                Some(_) => None,
            };
            if args.get("length").is_some_and(|l| !l.is_null()) && lines.is_none() {
                return Err(ApiError::bad_request(
                    "Invalid input for field/attribute length.",
                ));
            }
            let out = svc.console_output(&inst, lines).await?;
            return Ok(axum::Json(json!({"output": out})).into_response());
        }
        "os-resetState" => {
            enforce("os_compute_api:os-admin-actions:reset_state")?;
            let state = args.get("state").and_then(|s| s.as_str()).unwrap_or("");
            let state = match state {
                "active" => ResetState::Active,
                "error" => ResetState::Error,
                _ => return Err(ApiError::bad_request(format!("Invalid input for field/attribute state. Value: {state}. '{state}' is not one of ['active', 'error']"))),
            };
            svc.reset_state(&inst, state).await?;
        }
        "injectNetworkInfo" => {
            // Nothing to inject: guests take their network from DHCP and the metadata
            // service, which always show the ports as they are (as Nova with Neutron).
            enforce("os_compute_api:os-admin-actions:inject_network_info")?;
        }
        "os-getVNCConsole" | "os-getSPICEConsole" | "os-getSerialConsole" | "os-getRDPConsole" => {
            return super::consoles::legacy_action(&svc, &auth, v, &inst, name, args).await;
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "There is no such action: {other}"
            )))
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// The body of an unshelve: a zone (2.77) and a host (2.91) as Nova's schema allows them.
fn unshelve_target(args: &Value, v: Microversion) -> Result<UnshelveTo, ApiError> {
    let Some(o) = args.as_object() else {
        return Ok(UnshelveTo::default());
    };
    let bad = |m: String| {
        ApiError::bad_request(format!("Invalid input for field/attribute unshelve. {m}"))
    };
    let mut allowed = vec![];
    if v.at_least(2, 77) {
        allowed.push("availability_zone");
    }
    if v.at_least(2, 91) {
        allowed.push("host");
    }
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let text = |k: &str| -> Result<Option<Option<String>>, ApiError> {
        match o.get(k) {
            None => Ok(None),
            Some(Value::Null) if v.at_least(2, 91) && k == "availability_zone" => Ok(Some(None)),
            Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 255 => {
                Ok(Some(Some(s.clone())))
            }
            Some(other) => Err(bad(format!(
                "Value: {other}. '{k}' must be a non-empty string"
            ))),
        }
    };
    Ok(UnshelveTo {
        availability_zone: text("availability_zone")?,
        host: text("host")?.flatten(),
    })
}

async fn list_actions(
    svc: State,
    auth: Auth,
    v: ferrostack_api::microversion::Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-instance-actions:list",
        &target(&inst),
    )?;
    let list = svc.instance_actions(&inst).await?;
    let out: Vec<Value> = list
        .iter()
        .map(|a| {
            let mut one = json!({
                "action": a.action, "instance_uuid": a.instance_uuid, "request_id": a.request_id,
                "user_id": a.user_id, "project_id": a.project_id, "start_time": iso(a.start_time),
                "message": a.message,
            });
            // An action's last change is shown from 2.58 on.
            if v.at_least(2, 58) {
                one["updated_at"] = json!(a.updated_at.map(iso));
            }
            one
        })
        .collect();
    Ok(axum::Json(json!({"instanceActions": out})).into_response())
}

async fn show_action(
    svc: State,
    auth: Auth,
    v: ferrostack_api::microversion::Microversion,
    Path((id, request_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-instance-actions:show",
        &target(&inst),
    )?;
    let (a, events) = svc.instance_action(&inst, &request_id).await?;
    let show_events = svc.policy.enforce(
        "os_compute_api:os-instance-actions:events",
        &target(&inst),
        &auth.credentials(),
    );
    let mut body = json!({
        "action": a.action, "instance_uuid": a.instance_uuid, "request_id": a.request_id,
        "user_id": a.user_id, "project_id": a.project_id, "start_time": iso(a.start_time),
        "message": a.message,
    });
    if v.at_least(2, 58) {
        body["updated_at"] = json!(a.updated_at.map(iso));
    }
    let details = show_events || auth.is_admin;
    // Since 2.51 everyone sees the events; the traceback (and the host, 2.62) stay admin
    // details.
    if details || v.at_least(2, 51) {
        body["events"] = json!(events
            .iter()
            .map(|e| {
                let mut ev = json!({
                    "event": e.event, "start_time": iso(e.start_time),
                    "finish_time": e.finish_time.map(iso), "result": e.result,
                });
                if details {
                    ev["traceback"] = json!(e.traceback);
                    if v.at_least(2, 62) {
                        ev["host"] = json!(e.host);
                    }
                }
                ev
            })
            .collect::<Vec<_>>());
    }
    Ok(axum::Json(json!({"instanceAction": body})).into_response())
}
