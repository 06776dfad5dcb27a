//! Server actions that move a server or change what it runs: resize (confirm/revert),
//! migrate, os-migrateLive, evacuate, rebuild, rescue/unrescue, createImage, forceDelete and
//! restore. `server_actions::action` hands these names to [`dispatch`].

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth};
use serde_json::{json, Map, Value};

use super::input;
use super::server_views::{
    generated_password, limited_view, server_view, target, with_server_groups,
};
use crate::app::lifecycle::RebuildRequest;
use crate::instance::Instance;
use crate::ComputeService;

/// The action names this module answers.
pub const ACTIONS: &[&str] = &[
    "resize",
    "confirmResize",
    "revertResize",
    "migrate",
    "os-migrateLive",
    "evacuate",
    "rebuild",
    "rescue",
    "unrescue",
    "createImage",
    "createBackup",
    "forceDelete",
    "restore",
];

pub(super) async fn dispatch(
    svc: &std::sync::Arc<ComputeService>,
    auth: &Auth,
    rid: &str,
    v: Microversion,
    inst: &Instance,
    name: &str,
    args: &Value,
) -> Result<Response, ApiError> {
    let t = target(inst);
    let accepted = || Ok(StatusCode::ACCEPTED.into_response());
    match name {
        "resize" => {
            auth.enforce(&svc.policy, "os_compute_api:servers:resize", &t)?;
            let body = json!({ "resize": args });
            let a = input::envelope(
                &body,
                "resize",
                &["flavorRef", "OS-DCF:diskConfig"],
                &["flavorRef"],
            )?;
            let flavor_ref = flavor_ref(&a["flavorRef"])?;
            svc.resize(inst, auth, rid, &flavor_ref).await?;
            accepted()
        }
        "confirmResize" => {
            auth.enforce(&svc.policy, "os_compute_api:servers:confirm_resize", &t)?;
            svc.confirm_resize(inst, &auth.user_id, rid).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "revertResize" => {
            auth.enforce(&svc.policy, "os_compute_api:servers:revert_resize", &t)?;
            svc.revert_resize(inst, auth, rid).await?;
            accepted()
        }
        "migrate" => {
            auth.enforce(&svc.policy, "os_compute_api:os-migrate-server:migrate", &t)?;
            let host = match args {
                Value::Null => None,
                Value::Object(o) if v.at_least(2, 56) => {
                    input::properties(o, "migrate", &["host"], &[])?;
                    match o.get("host") {
                        None | Some(Value::Null) => None,
                        Some(h) => Some(input::string("host", h, 1, 255)?.to_string()),
                    }
                }
                Value::Object(o) if o.is_empty() => None,
                other => {
                    return Err(input::invalid(
                        "migrate",
                        other,
                        format!("{} is not of type 'null'", input::repr(other)),
                    )
                    .into())
                }
            };
            if host.is_some() {
                auth.enforce(
                    &svc.policy,
                    "os_compute_api:os-migrate-server:migrate:host",
                    &t,
                )?;
            }
            svc.migrate(inst, auth, rid, host).await?;
            accepted()
        }
        "os-migrateLive" => {
            auth.enforce(
                &svc.policy,
                "os_compute_api:os-migrate-server:migrate_live",
                &t,
            )?;
            let body = json!({ "os-migrateLive": args });
            let allowed: &[&str] = if v.at_least(2, 68) {
                &["host", "block_migration"]
            } else if v.at_least(2, 30) {
                &["host", "block_migration", "force"]
            } else if v.at_least(2, 25) {
                &["host", "block_migration"]
            } else {
                &["host", "block_migration", "disk_over_commit"]
            };
            let required: &[&str] = if v.at_least(2, 25) {
                &["host", "block_migration"]
            } else {
                &["host", "block_migration", "disk_over_commit"]
            };
            let a = input::envelope(&body, "os-migrateLive", allowed, required)?;
            let host = match &a["host"] {
                Value::Null => None,
                h => Some(input::string("host", h, 1, 255)?.to_string()),
            };
            match &a["block_migration"] {
                Value::Bool(_) => {}
                Value::String(s) if s == "auto" && v.at_least(2, 25) => {}
                Value::String(s) if input::parse_bool(s).is_some() => {}
                other => {
                    return Err(input::invalid(
                        "block_migration",
                        other,
                        format!("{} is not of type 'boolean'", input::repr(other)),
                    )
                    .into())
                }
            }
            svc.live_migrate(inst, auth, rid, host).await?;
            accepted()
        }
        "evacuate" => {
            auth.enforce(&svc.policy, "os_compute_api:os-evacuate", &t)?;
            let body = json!({ "evacuate": args });
            let mut allowed = vec!["host", "adminPass"];
            if !v.at_least(2, 14) {
                allowed.push("onSharedStorage");
            }
            if v.at_least(2, 29) && !v.at_least(2, 68) {
                allowed.push("force");
            }
            let required: &[&str] = if v.at_least(2, 14) {
                &[]
            } else {
                &["onSharedStorage"]
            };
            let a = input::envelope(&body, "evacuate", &allowed, required)?;
            let host = match a.get("host") {
                None | Some(Value::Null) => None,
                Some(h) => Some(input::string("host", h, 1, 255)?.to_string()),
            };
            if let Some(f) = a.get("force") {
                if input::boolean("force", f)? && host.is_none() {
                    return Err(ApiError::bad_request(
                        "Can't force to a non-provided destination",
                    ));
                }
            }
            let pass = match a.get("adminPass") {
                None | Some(Value::Null) => generated_password(),
                Some(p) => input::string("adminPass", p, 0, 255)?.to_string(),
            };
            // From 2.95 an evacuated server ends stopped, whatever it was.
            svc.evacuate(inst, auth, rid, host, v.at_least(2, 95), pass.clone())
                .await?;
            if v.at_least(2, 14) {
                Ok(StatusCode::OK.into_response())
            } else {
                Ok(axum::Json(json!({ "adminPass": pass })).into_response())
            }
        }
        "rebuild" => {
            auth.enforce(&svc.policy, "os_compute_api:servers:rebuild", &t)?;
            let body = json!({ "rebuild": args });
            let mut allowed = vec![
                "imageRef",
                "name",
                "adminPass",
                "metadata",
                "accessIPv4",
                "accessIPv6",
                "OS-DCF:diskConfig",
                "preserve_ephemeral",
            ];
            if !v.at_least(2, 57) {
                allowed.push("personality");
            }
            for (min, field) in [
                (19, "description"),
                (54, "key_name"),
                (57, "user_data"),
                (63, "trusted_image_certificates"),
                (90, "hostname"),
            ] {
                if v.at_least(2, min) {
                    allowed.push(field);
                }
            }
            let a = input::envelope(&body, "rebuild", &allowed, &["imageRef"])?;
            let mut req = parse_rebuild(a, v)?;
            let pass = match a.get("adminPass") {
                None | Some(Value::Null) => generated_password(),
                Some(p) => input::string("adminPass", p, 0, 255)?.to_string(),
            };
            req.injected.admin_pass = Some(pass.clone());
            let fresh = svc.rebuild(inst, auth, rid, req).await?;
            let mut server = limited_view(
                server_view(svc, &fresh, None, v, auth.is_admin),
                &fresh,
                v,
                true,
            );
            with_server_groups(svc, &mut server, &fresh, v).await?;
            server["adminPass"] = json!(pass);
            Ok((
                StatusCode::ACCEPTED,
                axum::Json(json!({ "server": server })),
            )
                .into_response())
        }
        "rescue" => {
            auth.enforce(&svc.policy, "os_compute_api:os-rescue", &t)?;
            let (pass, image) = match args {
                Value::Null => (None, None),
                Value::Object(o) => {
                    input::properties(o, "rescue", &["adminPass", "rescue_image_ref"], &[])?;
                    let pass = match o.get("adminPass") {
                        None | Some(Value::Null) => None,
                        Some(p) => Some(input::string("adminPass", p, 0, 255)?.to_string()),
                    };
                    let image = match o.get("rescue_image_ref") {
                        None | Some(Value::Null) => None,
                        Some(i) => {
                            let s = input::string("rescue_image_ref", i, 1, 255)?;
                            if uuid::Uuid::parse_str(s).is_err() {
                                return Err(input::invalid(
                                    "rescue_image_ref",
                                    i,
                                    format!("{} is not a 'uuid'", input::repr(i)),
                                )
                                .into());
                            }
                            Some(s.to_string())
                        }
                    };
                    (pass, image)
                }
                other => {
                    return Err(input::invalid(
                        "rescue",
                        other,
                        format!("{} is not of type 'object', 'null'", input::repr(other)),
                    )
                    .into())
                }
            };
            svc.rescue(inst, auth, rid, image.as_deref()).await?;
            let pass = pass.unwrap_or_else(generated_password);
            Ok(axum::Json(json!({ "adminPass": pass })).into_response())
        }
        "unrescue" => {
            auth.enforce(&svc.policy, "os_compute_api:os-unrescue", &t)?;
            svc.unrescue(inst, auth, rid).await?;
            accepted()
        }
        "createImage" => {
            auth.enforce(&svc.policy, "os_compute_api:servers:create_image", &t)?;
            let body = json!({ "createImage": args });
            let a = input::envelope(&body, "createImage", &["name", "metadata"], &["name"])?;
            let name = input::name("name", &a["name"])?;
            let mut meta = Map::new();
            if let Some(m) = a.get("metadata") {
                for (k, val) in input::metadata("metadata", m, false)? {
                    meta.insert(k, Value::String(val.unwrap_or_default()));
                }
            }
            let image_id = svc.create_image(inst, auth, rid, name, meta).await?;
            image_answer(svc, v, &image_id)
        }
        "createBackup" => {
            auth.enforce(&svc.policy, "os_compute_api:os-create-backup", &t)?;
            let body = json!({ "createBackup": args });
            let a = input::envelope(
                &body,
                "createBackup",
                &["name", "backup_type", "rotation", "metadata"],
                &["name", "backup_type", "rotation"],
            )?;
            let name = input::name("name", &a["name"])?;
            let backup_type = input::string("backup_type", &a["backup_type"], 0, 255)?;
            let rotation = input::integer("rotation", &a["rotation"], 0, input::MAX_INT, false)?;
            let mut meta = Map::new();
            if let Some(m) = a.get("metadata") {
                for (k, val) in input::metadata("metadata", m, false)? {
                    meta.insert(k, Value::String(val.unwrap_or_default()));
                }
            }
            let image_id = svc
                .create_backup(inst, auth, rid, name, backup_type, rotation, meta)
                .await?;
            image_answer(svc, v, &image_id)
        }
        "forceDelete" | "restore" => {
            // Soft delete is off: these only answer Nova's state check (409).
            let rule = if name == "forceDelete" {
                "os_compute_api:os-deferred-delete:force"
            } else {
                "os_compute_api:os-deferred-delete:restore"
            };
            auth.enforce(&svc.policy, rule, &t)?;
            if name == "forceDelete" {
                svc.force_delete(inst)?;
            } else {
                svc.restore(inst)?;
            }
            accepted()
        }
        other => Err(ApiError::bad_request(format!(
            "There is no such action: {other}"
        ))),
    }
}

/// createImage/createBackup answer: the image id in the body from 2.45, before that a
/// Location header pointing at the image.
fn image_answer(
    svc: &ComputeService,
    v: Microversion,
    image_id: &str,
) -> Result<Response, ApiError> {
    if v.at_least(2, 45) {
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({ "image_id": image_id })),
        )
            .into_response());
    }
    let mut resp = StatusCode::ACCEPTED.into_response();
    let loc = format!("{}/image/v2/images/{image_id}", svc.config.public_url);
    if let Ok(h) = http::HeaderValue::from_str(&loc) {
        resp.headers_mut().insert(http::header::LOCATION, h);
    }
    Ok(resp)
}

fn flavor_ref(v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) if !s.is_empty() && s.chars().count() <= 255 => Ok(s.clone()),
        Value::Number(n) if n.as_i64().is_some_and(|n| n > 0) => Ok(n.to_string()),
        other => Err(input::invalid(
            "flavorRef",
            other,
            format!(
                "{} is not valid under any of the given schemas",
                input::repr(other)
            ),
        )
        .into()),
    }
}

/// An access IP of a rebuild: null or "" clears it, anything else must be an address
/// ([`input::access_ip_v4`]/[`input::access_ip_v6`] validate and normalize).
fn access_ip(v: &Value, six: bool) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        _ if six => Ok(Some(input::access_ip_v6(v)?)),
        _ => Ok(Some(input::access_ip_v4(v)?)),
    }
}

fn parse_rebuild(a: &Map<String, Value>, v: Microversion) -> Result<RebuildRequest, ApiError> {
    let image_ref = match &a["imageRef"] {
        Value::String(s) => s.clone(),
        other => {
            return Err(input::invalid(
                "imageRef",
                other,
                format!("{} is not of type 'string'", input::repr(other)),
            )
            .into())
        }
    };
    if uuid::Uuid::parse_str(&image_ref).is_err() {
        return Err(ApiError::bad_request("Invalid imageRef provided."));
    }
    let opt_text = |k: &str, max: usize| -> Result<Option<Option<String>>, ApiError> {
        match a.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => Ok(Some(Some(input::string(k, v, 0, max)?.to_string()))),
        }
    };
    let metadata = match a.get("metadata") {
        None => None,
        Some(m) => Some(
            input::metadata("metadata", m, false)?
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect::<BTreeMap<_, _>>(),
        ),
    };
    let user_data = opt_text("user_data", 65535)?;
    if let Some(Some(u)) = &user_data {
        use base64::Engine;
        if base64::engine::general_purpose::STANDARD
            .decode(u.as_bytes())
            .is_err()
        {
            return Err(input::invalid(
                "user_data",
                &json!(u),
                format!("{} is not a 'base64'", input::repr(&json!(u))),
            )
            .into());
        }
    }
    Ok(RebuildRequest {
        image_ref,
        name: match a.get("name") {
            None => None,
            Some(n) => Some(input::name("name", n)?.to_string()),
        },
        description: opt_text("description", 255)?,
        metadata,
        access_ip_v4: a
            .get("accessIPv4")
            .map(|v| access_ip(v, false))
            .transpose()?,
        access_ip_v6: a
            .get("accessIPv6")
            .map(|v| access_ip(v, true))
            .transpose()?,
        key_name: opt_text("key_name", 255)?,
        user_data,
        hostname: match a.get("hostname") {
            None => None,
            Some(h) => Some(input::hostname(h, v)?),
        },
        injected: ferrostack_agent_api::Injected {
            files: match a.get("personality") {
                None | Some(Value::Null) => Vec::new(),
                Some(p) => input::personality(p)?,
            },
            admin_pass: None,
        },
    })
}
