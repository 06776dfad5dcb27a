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
use super::servers::{find, iso, target};
use super::State;
use crate::app::servers::check_state;
use crate::db::{actions, instances};
use crate::error::ComputeError;
use crate::instance::vm;
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
    // Nova's action schemas allow no other properties than these (before the server is
    // looked up, as Nova validates first).
    if let (Some(allowed), Value::Object(o)) = (action_properties(name, v), args) {
        input::properties(o, name, allowed, &[])?;
    }
    let inst = find(&svc, &auth, &id).await?;
    let t = target(&inst);
    let admin = auth.is_admin;
    // A locked server refuses actions from non-admins, except unlock by its locker's rules.
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
    );
    if inst.locked && guarded && !admin {
        return Err(ApiError::conflict(format!(
            "Instance {} is locked",
            inst.uuid
        )));
    }
    let rid = rid.0.as_str();
    if super::server_moves::ACTIONS.contains(&name.as_str()) {
        return super::server_moves::dispatch(&svc, &auth, rid, v, &inst, name, args).await;
    }
    let power = |action: &'static str,
                 rule: &'static str,
                 desired: &'static str,
                 target_vm: &'static str,
                 task: Option<&'static str>,
                 shot: Option<&'static str>| {
        let svc = svc.clone();
        let auth = auth.clone();
        let inst = inst.clone();
        let t = t.clone();
        async move {
            auth.enforce(&svc.policy, rule, &t)?;
            let change = crate::app::servers::Change {
                action,
                desired: Some(desired),
                target_vm_state: target_vm,
                task_state: task,
                one_shot: shot,
            };
            svc.request_change(&inst, &auth, rid, change).await?;
            Ok::<Response, ApiError>(StatusCode::ACCEPTED.into_response())
        }
    };
    match name.as_str() {
        "reboot" => {
            let kind = args.get("type").and_then(|t| t.as_str()).unwrap_or("");
            let hard = match kind.to_ascii_uppercase().as_str() {
                "HARD" => true,
                "SOFT" => false,
                _ => return Err(ApiError::bad_request(format!("Invalid input for field/attribute type. Value: {kind}. '{kind}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"))),
            };
            if !hard && inst.vm_state != vm::ACTIVE {
                check_state(&inst, "reboot")?;
                return Err(ComputeError::Conflict(format!(
                    "Cannot 'reboot' instance {} while it is in vm_state {}",
                    inst.uuid, inst.vm_state
                ))
                .into());
            }
            let (task, shot) = if hard {
                ("rebooting_hard", "hard_reboot")
            } else {
                ("rebooting", "soft_reboot")
            };
            power(
                "reboot",
                "os_compute_api:servers:reboot",
                "running",
                vm::ACTIVE,
                Some(task),
                Some(shot),
            )
            .await
        }
        "os-stop" => {
            power(
                "stop",
                "os_compute_api:servers:stop",
                "stopped",
                vm::STOPPED,
                Some("powering-off"),
                None,
            )
            .await
        }
        "os-start" => {
            power(
                "start",
                "os_compute_api:servers:start",
                "running",
                vm::ACTIVE,
                Some("powering-on"),
                None,
            )
            .await
        }
        "pause" => {
            power(
                "pause",
                "os_compute_api:os-pause-server:pause",
                "paused",
                vm::PAUSED,
                Some("pausing"),
                None,
            )
            .await
        }
        "unpause" => {
            power(
                "unpause",
                "os_compute_api:os-pause-server:unpause",
                "running",
                vm::ACTIVE,
                Some("unpausing"),
                None,
            )
            .await
        }
        "suspend" => {
            power(
                "suspend",
                "os_compute_api:os-suspend-server:suspend",
                "suspended",
                vm::SUSPENDED,
                Some("suspending"),
                None,
            )
            .await
        }
        "resume" => {
            power(
                "resume",
                "os_compute_api:os-suspend-server:resume",
                "running",
                vm::ACTIVE,
                Some("resuming"),
                None,
            )
            .await
        }
        "trigger_crash_dump" => {
            if !v.at_least(2, 17) {
                // A versioned action in Nova: no such method below its microversion.
                return Err(ApiError::not_found("The resource could not be found."));
            }
            power(
                "trigger_crash_dump",
                "os_compute_api:servers:trigger_crash_dump",
                "running",
                vm::ACTIVE,
                None,
                Some("crash_dump"),
            )
            .await
        }
        "shelve" => {
            auth.enforce(&svc.policy, "os_compute_api:os-shelve:shelve", &t)?;
            svc.shelve(&inst, &auth, rid).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "shelveOffload" => {
            power(
                "shelveOffload",
                "os_compute_api:os-shelve:shelve_offload",
                "absent",
                vm::SHELVED_OFFLOADED,
                Some("shelving_offloading"),
                None,
            )
            .await
        }
        "unshelve" => {
            auth.enforce(&svc.policy, "os_compute_api:os-shelve:unshelve", &t)?;
            check_state(&inst, "unshelve")?;
            let to = unshelve_target(args, v)?;
            if to.host.is_some() {
                auth.enforce(&svc.policy, "os_compute_api:os-shelve:unshelve_to_host", &t)?;
            }
            svc.unshelve(&inst, &auth, rid, &to).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "lock" => {
            auth.enforce(&svc.policy, "os_compute_api:os-lock-server:lock", &t)?;
            let reason = args.get("locked_reason").and_then(|r| r.as_str());
            if reason.is_some_and(|r| r.chars().count() > 255) {
                return Err(ApiError::bad_request(
                    "Invalid input for field/attribute locked_reason. Value is too long",
                ));
            }
            let mut tx = svc.db.begin_write().await.map_err(ComputeError::from)?;
            let by = if admin && auth.project_id() != Some(inst.project_id.as_str()) {
                "admin"
            } else {
                "owner"
            };
            instances::set_lock(
                &mut tx,
                &inst.uuid,
                true,
                Some(by),
                reason,
                ferrostack_store::now_micros(),
            )
            .await
            .map_err(ComputeError::from)?;
            actions::start(
                &mut tx,
                &inst.uuid,
                rid,
                "lock",
                &inst.project_id,
                &auth.user_id,
                inst.host.as_deref(),
                ferrostack_store::now_micros(),
            )
            .await
            .map_err(ComputeError::from)?;
            actions::finish_open(
                &mut tx,
                &inst.uuid,
                None,
                None,
                ferrostack_store::now_micros(),
            )
            .await
            .map_err(ComputeError::from)?;
            tx.commit().await.map_err(ComputeError::from)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "unlock" => {
            auth.enforce(&svc.policy, "os_compute_api:os-lock-server:unlock", &t)?;
            if inst.locked_by.as_deref() == Some("admin") && !admin {
                auth.enforce(
                    &svc.policy,
                    "os_compute_api:os-lock-server:unlock:unlock_override",
                    &t,
                )?;
            }
            let mut tx = svc.db.begin_write().await.map_err(ComputeError::from)?;
            instances::set_lock(
                &mut tx,
                &inst.uuid,
                false,
                None,
                None,
                ferrostack_store::now_micros(),
            )
            .await
            .map_err(ComputeError::from)?;
            tx.commit().await.map_err(ComputeError::from)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-getConsoleOutput" => {
            auth.enforce(&svc.policy, "os_compute_api:os-console-output", &t)?;
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
            Ok(axum::Json(json!({"output": out})).into_response())
        }
        "os-resetState" => {
            auth.enforce(
                &svc.policy,
                "os_compute_api:os-admin-actions:reset_state",
                &t,
            )?;
            let state = args.get("state").and_then(|s| s.as_str()).unwrap_or("");
            let vm_state = match state {
                "active" => vm::ACTIVE,
                "error" => vm::ERROR,
                _ => return Err(ApiError::bad_request(format!("Invalid input for field/attribute state. Value: {state}. '{state}' is not one of ['active', 'error']"))),
            };
            let now = ferrostack_store::now_micros();
            let mut tx = svc.db.begin_write().await.map_err(ComputeError::from)?;
            instances::set_text(&mut tx, &inst.uuid, "vm_state", Some(vm_state), now)
                .await
                .map_err(ComputeError::from)?;
            instances::set_text(&mut tx, &inst.uuid, "task_state", None, now)
                .await
                .map_err(ComputeError::from)?;
            tx.commit().await.map_err(ComputeError::from)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-getVNCConsole" | "os-getSPICEConsole" | "os-getSerialConsole" | "os-getRDPConsole" => {
            super::consoles::legacy_action(&svc, &auth, v, &inst, name, args).await
        }
        other => Err(ApiError::bad_request(format!(
            "There is no such action: {other}"
        ))),
    }
}

/// Where an unshelve may go: a new availability zone (2.77; `null` unpins, 2.91) and a host
/// (2.91, admins). Both only for a shelved-offloaded server.
#[derive(Debug, Default)]
pub struct UnshelveTo {
    pub availability_zone: Option<Option<String>>,
    pub host: Option<String>,
}

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

impl ComputeService {
    /// Unshelve: the instance waits for the scheduler again, like a new build; in a new zone
    /// (kept for later scheduling, as Nova's request spec keeps it) and on a given host (this
    /// placement only) when asked.
    pub async fn unshelve(
        &self,
        inst: &crate::instance::Instance,
        auth: &ferrostack_api::AuthContext,
        rid: &str,
        to: &UnshelveTo,
    ) -> crate::error::Result<()> {
        let mut spec = inst.request_spec.clone();
        if to.availability_zone.is_some() || to.host.is_some() {
            self.check_unshelve_target(inst, to).await?;
            if let Some(zone) = &to.availability_zone {
                match zone {
                    Some(z) => spec["availability_zone"] = json!(z),
                    None => {
                        if let Some(o) = spec.as_object_mut() {
                            o.remove("availability_zone");
                        }
                    }
                }
            }
            if let Some(h) = &to.host {
                spec["requested_host"] = json!(h);
            }
        }
        let now = ferrostack_store::now_micros();
        let mut tx = self.db.begin_write().await?;
        if spec != inst.request_spec {
            instances::set_request_spec(&mut tx, &inst.uuid, &spec, now).await?;
        }
        if let Some(zone) = &to.availability_zone {
            instances::set_text(
                &mut tx,
                &inst.uuid,
                "availability_zone",
                zone.as_deref(),
                now,
            )
            .await?;
        }
        actions::start(
            &mut tx,
            &inst.uuid,
            rid,
            "unshelve",
            &inst.project_id,
            &auth.user_id,
            None,
            now,
        )
        .await?;
        instances::set_desire(
            &mut tx,
            &inst.uuid,
            "running",
            vm::ACTIVE,
            Some("unshelving"),
            None,
            now,
        )
        .await?;
        instances::set_text(&mut tx, &inst.uuid, "vm_state", Some(vm::BUILDING), now).await?;
        instances::set_host(&mut tx, &inst.uuid, None, None, now).await?;
        tx.commit().await?;
        self.schedule_now.notify_one();
        Ok(())
    }

    /// Nova's rules for an unshelve with a zone or a host: only when shelved offloaded (409),
    /// the host must exist (400), the zone must exist (400), and a host must be in the zone
    /// asked for (409).
    async fn check_unshelve_target(
        &self,
        inst: &crate::instance::Instance,
        to: &UnshelveTo,
    ) -> crate::error::Result<()> {
        if inst.vm_state != vm::SHELVED_OFFLOADED {
            return Err(ComputeError::Conflict(format!(
                "The unshelve of instance {} with an availability zone or a host is only allowed \
                 when it is shelved offloaded; it is {}.",
                inst.uuid, inst.vm_state
            )));
        }
        let mut conn = self.db.pool.acquire().await?;
        if let Some(Some(zone)) = &to.availability_zone {
            if !self.zone_exists(&mut conn, zone).await? {
                return Err(ComputeError::BadRequest(
                    "The requested availability zone is not available".into(),
                ));
            }
        }
        if let Some(host) = &to.host {
            let known = crate::db::hosts::service_by_host(&mut conn, host, "nova-compute")
                .await?
                .is_some();
            if !known {
                return Err(ComputeError::BadRequest(format!(
                    "Compute host {host} could not be found."
                )));
            }
            if let Some(Some(zone)) = &to.availability_zone {
                if &self.host_zone(&mut conn, host).await? != zone {
                    return Err(ComputeError::Conflict(format!(
                        "Host {host} is not in the availability zone {zone}."
                    )));
                }
            }
        }
        Ok(())
    }

    /// The console log, asked of the host's agent (in this process or its own).
    pub async fn console_output(
        &self,
        inst: &crate::instance::Instance,
        lines: Option<usize>,
    ) -> crate::error::Result<String> {
        let host = match &inst.host {
            Some(h) if inst.vm_state != vm::BUILDING => h,
            _ => {
                return Err(ComputeError::Conflict(format!(
                    "Cannot 'get_console_output' instance {} while it is in vm_state {}",
                    inst.uuid, inst.vm_state
                )))
            }
        };
        let out = self
            .ask_host(host, &inst.uuid, ferrostack_agent::Ask::ConsoleOutput)
            .await?
            .map_err(|e| ComputeError::Conflict(format!("Guest console not available: {e}")))?;
        // Nova's tail: the last `length` pieces of the log split at '\n' (a final newline
        // counts as an empty last line).
        Ok(match lines {
            Some(n) => {
                let all: Vec<&str> = out.split('\n').collect();
                all[all.len().saturating_sub(n)..].join("\n")
            }
            None => out,
        })
    }
}

async fn list_actions(
    svc: State,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let inst = find(&svc, &auth, &id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-instance-actions:list",
        &target(&inst),
    )?;
    let mut conn = svc.db.pool.acquire().await.map_err(ComputeError::from)?;
    let list = actions::list(&mut conn, &inst.uuid)
        .await
        .map_err(ComputeError::from)?;
    let out: Vec<Value> = list
        .iter()
        .map(|a| {
            json!({
                "action": a.action, "instance_uuid": a.instance_uuid, "request_id": a.request_id,
                "user_id": a.user_id, "project_id": a.project_id, "start_time": iso(a.start_time),
                "message": a.message, "updated_at": a.updated_at.map(iso),
            })
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
    let inst = find(&svc, &auth, &id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-instance-actions:show",
        &target(&inst),
    )?;
    let mut conn = svc.db.pool.acquire().await.map_err(ComputeError::from)?;
    let (a, events) = actions::by_request(&mut conn, &inst.uuid, &request_id)
        .await
        .map_err(ComputeError::from)?
        .ok_or_else(|| ApiError::not_found(format!("Action {request_id} not found")))?;
    let show_events = svc.policy.enforce(
        "os_compute_api:os-instance-actions:events",
        &target(&inst),
        &auth.credentials(),
    );
    let mut body = json!({
        "action": a.action, "instance_uuid": a.instance_uuid, "request_id": a.request_id,
        "user_id": a.user_id, "project_id": a.project_id, "start_time": iso(a.start_time),
        "message": a.message, "updated_at": a.updated_at.map(iso),
    });
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
