//! `/servers`: create, list, detail, show, update, delete. The server body itself is
//! rendered by `server_views.rs`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use ferrostack_api::microversion::Microversion;
use ferrostack_api::request::RequestId;
use ferrostack_api::{ApiError, Auth, Json};
use serde_json::{json, Map, Value};

use super::server_views::{
    generated_password, limited_view, links, server_view, target, with_server_groups,
};
use super::State;
use crate::app::server_list::{PageServers, ServerFilters, ServerQuery, Sort};
use crate::app::servers::{CreateRequest, RequestedNetworks, ServerUpdate};
use crate::peers::NicRequest;
use crate::ComputeService;

/// Nova's timestamps, as other resources show them (`os-services`).
pub(crate) use super::server_views::iso;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/servers", get(list).post(create))
        .route("/servers/detail", get(detail))
        .route("/servers/{id}", get(show).put(update).delete(remove))
}

// ---------------------------------------------------------------- create

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

fn field_str(body: &Map<String, Value>, k: &str) -> Result<Option<String>, ApiError> {
    match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(format!(
            "Invalid input for field/attribute {k}. Value: {other}. {other} is not of type 'string'"
        ))),
    }
}

/// The properties Nova's `POST /servers` schema allows in `server` at microversion `v`
/// (`additionalProperties: False`: anything else is refused with 400).
fn create_properties(v: Microversion) -> Vec<&'static str> {
    let mut keys = vec![
        "name",
        "imageRef",
        "flavorRef",
        "adminPass",
        "metadata",
        "networks",
        "OS-DCF:diskConfig",
        "accessIPv4",
        "accessIPv6",
        "block_device_mapping",
        "block_device_mapping_v2",
        "config_drive",
        "key_name",
        "min_count",
        "max_count",
        "return_reservation_id",
        "security_groups",
        "user_data",
        "availability_zone",
    ];
    if !v.at_least(2, 57) {
        keys.push("personality");
    }
    for (minor, key) in [
        (19, "description"),
        (52, "tags"),
        (63, "trusted_image_certificates"),
        (74, "host"),
        (74, "hypervisor_hostname"),
        (90, "hostname"),
    ] {
        if v.at_least(2, minor) {
            keys.push(key);
        }
    }
    keys
}

fn parse_create(body: &Value, v: Microversion) -> Result<CreateRequest, ApiError> {
    let outer = body.as_object().ok_or_else(|| {
        bad(format!(
            "{} is not of type 'object'",
            super::input::repr(body)
        ))
    })?;
    let s = outer
        .get("server")
        .and_then(|s| s.as_object())
        .ok_or_else(|| bad("'server' is a required property"))?;
    super::input::top_level(
        outer,
        &["server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"],
    )?;
    super::input::properties(s, "server", &create_properties(v), &["name", "flavorRef"])?;
    let name = super::input::name("name", &s["name"])?.to_string();
    let flavor_ref = match s.get("flavorRef") {
        Some(Value::String(f)) if !f.is_empty() => f.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute flavorRef. Value: {other}."
            )))
        }
        None => {
            return Err(bad(
                "Invalid input for field/attribute server. 'flavorRef' is a required property",
            ))
        }
    };
    let image_ref = match s.get("imageRef") {
        Some(Value::String(i)) => i.rsplit('/').next().unwrap_or("").to_string(),
        None | Some(Value::Null) => {
            // Boot from an image through block_device_mapping_v2 (source_type image).
            s.get("block_device_mapping_v2")
                .and_then(|b| b.as_array())
                .and_then(|a| a.iter().find(|d| d.get("boot_index").and_then(|b| b.as_i64().or_else(|| b.as_str().and_then(|x| x.parse().ok()))) == Some(0)))
                .and_then(|d| if d.get("source_type").and_then(|x| x.as_str()) == Some("image") { d.get("uuid").and_then(|u| u.as_str()).map(str::to_string) } else { None })
                .ok_or_else(|| bad("Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid."))?
        }
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute imageRef. Value: {other}."
            )))
        }
    };
    if uuid::Uuid::parse_str(&image_ref).is_err() {
        return Err(bad("Invalid imageRef provided.".to_string()));
    }
    let count = |k: &str| -> Result<Option<i64>, ApiError> {
        match s.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some_and(|x| x >= 1) => Ok(n.as_i64()),
            Some(Value::String(x)) if x.parse::<i64>().is_ok_and(|x| x >= 1) => Ok(x.parse().ok()),
            Some(other) => Err(bad(format!("Invalid input for field/attribute {k}. Value: {other}. {other} is less than the minimum of 1"))),
        }
    };
    let min_count = count("min_count")?.unwrap_or(1);
    let max_count = count("max_count")?.unwrap_or(min_count);
    if max_count < min_count {
        return Err(bad("min_count must be <= max_count"));
    }
    let mut metadata = BTreeMap::new();
    if let Some(m) = s.get("metadata") {
        let m = m.as_object().ok_or_else(|| bad("Invalid input for field/attribute metadata. Value: metadata. is not of type 'object'"))?;
        for (k, val) in m {
            let val = val.as_str().ok_or_else(|| bad(format!("Invalid input for field/attribute metadata. Value: {val}. {val} is not of type 'string'")))?;
            if k.is_empty() || k.chars().count() > 255 || val.chars().count() > 255 {
                return Err(bad(format!("Invalid input for field/attribute metadata. Value: {k}. metadata keys and values must be 1-255 characters")));
            }
            metadata.insert(k.clone(), val.to_string());
        }
    }
    let user_data = field_str(s, "user_data")?;
    if let Some(u) = &user_data {
        use base64::Engine;
        if u.len() > 65535
            || base64::engine::general_purpose::STANDARD
                .decode(u.as_bytes())
                .is_err()
        {
            return Err(bad(
                "Invalid input for field/attribute user_data. Value: user_data. is not a 'base64'",
            ));
        }
    }
    let networks = match s.get("networks") {
        None => {
            if v.at_least(2, 37) {
                return Err(bad(
                    "Invalid input for field/attribute server. 'networks' is a required property",
                ));
            }
            RequestedNetworks::Available
        }
        Some(Value::String(x)) if x == "auto" && v.at_least(2, 37) => RequestedNetworks::Auto,
        Some(Value::String(x)) if x == "none" && v.at_least(2, 37) => RequestedNetworks::None,
        Some(Value::Array(a)) => {
            let mut list = Vec::with_capacity(a.len());
            for n in a {
                list.push(nic_request(n, v)?);
            }
            if list.is_empty() {
                RequestedNetworks::Available
            } else {
                RequestedNetworks::List(list)
            }
        }
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute networks. Value: {other}."
            )))
        }
    };
    let security_groups = s
        .get("security_groups")
        .and_then(|g| g.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|g| g.get("name").and_then(|n| n.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| vec!["default".to_string()]);
    let hints = body
        .get("os:scheduler_hints")
        .or(body.get("OS-SCH-HNT:scheduler_hints"))
        .and_then(|h| h.as_object())
        .cloned()
        .unwrap_or_default();
    let tags = s
        .get("tags")
        .and_then(|t| t.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(CreateRequest {
        name,
        description: field_str(s, "description")?,
        hostname: match s.get("hostname") {
            None => None,
            Some(_) if !v.at_least(2, 90) => {
                return Err(bad("Invalid input for field/attribute server. Additional properties are not allowed ('hostname' was unexpected)"))
            }
            Some(h) => Some(super::input::hostname(h, v)?),
        },
        image_ref,
        flavor_ref,
        key_name: field_str(s, "key_name")?,
        user_data,
        metadata,
        availability_zone: field_str(s, "availability_zone")?,
        min_count,
        max_count,
        hints,
        networks,
        security_groups,
        config_drive: matches!(s.get("config_drive"), Some(Value::Bool(true)))
            || matches!(s.get("config_drive"), Some(Value::String(x)) if x == "true" || x == "True"),
        access_ip_v4: s
            .get("accessIPv4")
            .map(super::input::access_ip_v4)
            .transpose()?,
        access_ip_v6: s
            .get("accessIPv6")
            .map(super::input::access_ip_v6)
            .transpose()?,
        tags,
        injected: ferrostack_agent_api::Injected {
            files: match s.get("personality") {
                None | Some(Value::Null) => Vec::new(),
                Some(p) => super::input::personality(p)?,
            },
            // The password the response shows: the caller's, else a generated one (Nova's).
            admin_pass: Some(match s.get("adminPass") {
                None | Some(Value::Null) => generated_password(),
                Some(p) => super::input::string("adminPass", p, 0, usize::MAX)?.to_string(),
            }),
        },
    })
}

async fn create(
    svc: State,
    auth: Auth,
    v: Microversion,
    Extension(rid): Extension<RequestId>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let project = auth.project_id().unwrap_or_default().to_string();
    auth.enforce(
        &svc.policy,
        "os_compute_api:servers:create",
        &json!({"project_id": project, "user_id": auth.user_id}),
    )?;
    let req = parse_create(&body, v)?;
    let admin_pass = req.injected.admin_pass.clone().unwrap_or_default();
    let return_reservation = body["server"]["return_reservation_id"]
        .as_bool()
        .unwrap_or(false);
    let created = svc.create_servers(&auth, req, &rid.0).await?;
    let base = format!("{}/compute", svc.config.public_url);
    if return_reservation {
        return Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"reservation_id": created[0].reservation_id})),
        )
            .into_response());
    }
    let i = &created[0];
    let mut server = json!({
        "id": i.uuid,
        "links": links(&base, "servers", &i.uuid),
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": i.request_spec["security_groups"].as_array().map(|a| a.iter().map(|g| json!({"name": g})).collect::<Vec<_>>()).unwrap_or_default(),
    });
    server["adminPass"] = json!(admin_pass);
    let mut resp = (StatusCode::ACCEPTED, axum::Json(json!({"server": server}))).into_response();
    if let Ok(loc) = http::HeaderValue::from_str(&format!("{base}/v2.1/servers/{}", i.uuid)) {
        resp.headers_mut().insert(http::header::LOCATION, loc);
    }
    Ok(resp)
}

// ---------------------------------------------------------------- list

async fn list(
    svc: State,
    auth: Auth,
    v: Microversion,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    listing(svc, auth, v, q, false).await
}

async fn detail(
    svc: State,
    auth: Auth,
    v: Microversion,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    listing(svc, auth, v, q, true).await
}

fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_micros())
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc().timestamp_micros())
        })
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|t| t.and_utc().timestamp_micros())
        })
}

/// The listing's filters from its query. Each key present filters (and makes the listing a
/// filtered one), whatever its value.
fn query_filters(
    qm: &HashMap<&str, &str>,
    changes_since: Option<i64>,
    deleted: bool,
) -> ServerFilters {
    let text = |k: &str| qm.get(k).map(|s| s.to_string());
    let list = |k: &str| {
        qm.get(k)
            .map(|t| t.split(',').map(str::to_string).collect::<Vec<_>>())
    };
    ServerFilters {
        name: text("name"),
        ip: text("ip"),
        ip6: text("ip6"),
        status: text("status"),
        host: text("host"),
        flavor: text("flavor"),
        image: text("image"),
        reservation_id: text("reservation_id"),
        availability_zone: text("availability_zone"),
        locked: qm
            .get("locked")
            .map(|l| *l == "true" || *l == "True" || *l == "1"),
        changes_since,
        deleted,
        tags: list("tags"),
        tags_any: list("tags-any"),
        not_tags: list("not-tags"),
        not_tags_any: list("not-tags-any"),
        sort: qm.get("sort_key").map(|key| Sort {
            key: key.to_string(),
            descending: qm.get("sort_dir").is_none_or(|d| *d != "asc"),
        }),
    }
}

async fn listing(
    svc: State,
    auth: Auth,
    v: Microversion,
    q: Vec<(String, String)>,
    detailed: bool,
) -> Result<Response, ApiError> {
    let project = auth.project_id().unwrap_or_default().to_string();
    let rule = if detailed {
        "os_compute_api:servers:detail"
    } else {
        "os_compute_api:servers:index"
    };
    auth.enforce(&svc.policy, rule, &json!({"project_id": project}))?;
    let mut qm: HashMap<&str, &str> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if !v.at_least(2, 73) {
        // Not a filter before 2.73: Nova drops unknown query parameters.
        qm.remove("locked");
    }
    let admin = auth.is_admin;
    let all_tenants = qm
        .get("all_tenants")
        .is_some_and(|v| !matches!(*v, "0" | "false" | "False"));
    if all_tenants {
        auth.enforce(
            &svc.policy,
            &format!("{rule}:get_all_tenants"),
            &json!({"project_id": project}),
        )?;
    }
    let scope: Option<String> = if all_tenants {
        qm.get("project_id")
            .or(qm.get("tenant_id"))
            .map(|s| s.to_string())
    } else if admin {
        Some(
            qm.get("project_id")
                .or(qm.get("tenant_id"))
                .map(|s| s.to_string())
                .unwrap_or(project.clone()),
        )
    } else {
        Some(project.clone())
    };
    let changes_since = match qm.get("changes-since") {
        Some(t) => Some(parse_time(t).ok_or_else(|| bad(format!("Invalid input for query parameters changes-since. Value: {t}. '{t}' is not a 'date-time'")))?),
        None => None,
    };
    let deleted_filter = qm
        .get("deleted")
        .is_some_and(|v| matches!(*v, "true" | "True" | "1"))
        && admin;
    // Nova's max_limit: a page never holds more than 1,000 servers, asked for or not (the
    // next link says where the rest is).
    let limit = match qm.get("limit") {
        Some(l) => l.parse::<usize>().map_err(|_| {
            bad(format!(
                "Invalid input for query parameters limit. Value: {l}."
            ))
        })?,
        None => MAX_LIMIT,
    }
    .min(MAX_LIMIT);
    let query = ServerQuery {
        project: scope,
        admin,
        filters: query_filters(&qm, changes_since, deleted_filter),
        marker: qm.get("marker").map(|m| m.to_string()),
        limit,
        detailed,
    };
    let page = svc.list_servers(&query).await?;
    let base = format!("{}/compute", svc.config.public_url);
    let last = page.servers.last_id();
    let servers: Vec<Value> = match &page.servers {
        PageServers::Names(rows) => rows
            .iter()
            .map(|(id, name)| json!({"id": id, "name": name, "links": links(&base, "servers", id)}))
            .collect(),
        PageServers::Instances(list, faults) => list
            .iter()
            .map(|i| {
                if detailed {
                    server_view(&svc, i, faults.get(&i.uuid), v, admin)
                } else {
                    json!({"id": i.uuid, "name": i.display_name, "links": links(&base, "servers", &i.uuid)})
                }
            })
            .collect(),
    };
    Ok(axum::Json(page_body(
        servers, &base, detailed, &q, limit, page.more, last,
    ))
    .into_response())
}

/// The largest page a listing returns (Nova's `max_limit`).
const MAX_LIMIT: usize = 1000;

/// `{"servers": [...]}` with the next link when more follow a full page.
/// The next link keeps the request's filters and sort keys, as Nova's does.
fn page_body(
    servers: Vec<Value>,
    base: &str,
    detailed: bool,
    query: &[(String, String)],
    limit: usize,
    more: bool,
    last: Option<&str>,
) -> Value {
    let full = servers.len() == limit;
    let mut body = json!({"servers": servers});
    if let (true, true, Some(last)) = (full, more, last) {
        let path = if detailed {
            "servers/detail"
        } else {
            "servers"
        };
        // The limit this page was cut at (a larger one asked for is capped).
        let mut q: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k != "limit")
            .cloned()
            .collect();
        q.push(("limit".into(), limit.to_string()));
        body["servers_links"] = super::next_links(base, path, &q, last);
    }
    body
}

// ---------------------------------------------------------------- show/update/delete

async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, "os_compute_api:servers:show", &target(&inst))?;
    let fault = svc.server_fault(&inst.uuid).await?;
    let mut server = server_view(&svc, &inst, fault.as_ref(), v, auth.is_admin);
    with_server_groups(&svc, &mut server, &inst, v).await?;
    Ok(axum::Json(json!({ "server": server })).into_response())
}

async fn update(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, "os_compute_api:servers:update", &target(&inst))?;
    let s = body
        .get("server")
        .and_then(|s| s.as_object())
        .ok_or_else(|| {
            bad("Invalid input for field/attribute server. 'server' is a required property")
        })?;
    if let Some(outer) = body.as_object() {
        super::input::top_level(outer, &["server"])?;
    }
    for k in s.keys() {
        let ok = matches!(
            k.as_str(),
            "name" | "accessIPv4" | "accessIPv6" | "OS-DCF:diskConfig"
        ) || (k == "description" && v.at_least(2, 19))
            || (k == "hostname" && v.at_least(2, 90));
        if !ok {
            return Err(bad(format!("Invalid input for field/attribute server. Additional properties are not allowed ('{k}' was unexpected)")));
        }
    }
    let name = match s.get("name") {
        None => None,
        Some(n) => Some(super::input::name("name", n)?.to_string()),
    };
    let description = match s.get("description") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(d)) if d.chars().count() <= 255 => Some(Some(d.clone())),
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute description. Value: {other}."
            )))
        }
    };
    let hostname = s
        .get("hostname")
        .map(|h| super::input::hostname(h, v))
        .transpose()?;
    let update = ServerUpdate {
        name,
        description,
        hostname,
        access_ip_v4: s
            .get("accessIPv4")
            .map(super::input::access_ip_v4)
            .transpose()?,
        access_ip_v6: s
            .get("accessIPv6")
            .map(super::input::access_ip_v6)
            .transpose()?,
    };
    let fresh = svc.update_server(&inst, update).await?;
    let mut server = limited_view(
        server_view(&svc, &fresh, None, v, auth.is_admin),
        &fresh,
        v,
        false,
    );
    with_server_groups(&svc, &mut server, &fresh, v).await?;
    Ok(axum::Json(json!({ "server": server })).into_response())
}

async fn remove(
    svc: State,
    auth: Auth,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, "os_compute_api:servers:delete", &target(&inst))?;
    svc.delete_server(&inst, &auth, &rid.0).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// One entry of `networks`: a port, or a network with an address on it maybe (Nova's schema
/// and its "Bad networks format" checks).
fn nic_request(n: &Value, v: Microversion) -> Result<NicRequest, ApiError> {
    let bad = |m: String| ApiError::bad_request(m);
    let Some(obj) = n.as_object() else {
        return Err(bad(format!(
            "Invalid input for field/attribute networks. Value: {n}. {n} is not of type 'object'"
        )));
    };
    // The tag came in 2.32, went in 2.37 and came back in 2.42.
    let tagged = v.at_least(2, 32) && (!v.at_least(2, 37) || v.at_least(2, 42));
    let allowed: &[&str] = if tagged {
        &["uuid", "port", "fixed_ip", "tag"]
    } else {
        &["uuid", "port", "fixed_ip"]
    };
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!(
            "Invalid input for field/attribute networks. Value: {n}. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad(format!(
                "Invalid input for field/attribute {k}. Value: {other}. {other} is not of type 'string'"
            ))),
        }
    };
    if let Some(port) = text("port")? {
        if uuid::Uuid::parse_str(&port).is_err() {
            return Err(bad(format!(
                "Invalid input for field/attribute port. Value: {port}. '{port}' is not a 'uuid'"
            )));
        }
        return Ok(NicRequest::Port(port));
    }
    let Some(id) = text("uuid")? else {
        return Err(bad(
            "Bad networks format: network uuid is not in proper format ()".into(),
        ));
    };
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(bad(format!(
            "Bad networks format: network uuid is not in proper format ({id})"
        )));
    }
    let fixed_ip = match text("fixed_ip")? {
        None => None,
        Some(ip) => Some(ip.parse().map_err(|_| {
            bad(format!(
                "Invalid input for field/attribute fixed_ip. Value: {ip}. '{ip}' is not a 'ip-address'"
            ))
        })?),
    };
    Ok(NicRequest::Network { id, fixed_ip })
}
