//! `/servers`: create, list, detail, show, update, delete, and the server body as Nova renders
//! it for each microversion.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use ferrostack_api::microversion::Microversion;
use ferrostack_api::request::RequestId;
use ferrostack_api::{ApiError, Auth, AuthContext, Json};
use serde_json::{json, Map, Value};
use sha2::Digest;

use super::State;
use crate::app::servers::CreateRequest;
use crate::db::instances;
use crate::error::ComputeError;
use crate::instance::{self, Fault, Instance};
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/servers", get(list).post(create))
        .route("/servers/detail", get(detail))
        .route("/servers/{id}", get(show).put(update).delete(remove))
}

/// The admin password Nova answers on create, rebuild, rescue and evacuate; guests here take
/// keys, not passwords, but clients expect one.
pub(super) fn generated_password() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

pub(crate) fn iso(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn iso_us(micros: Option<i64>) -> Value {
    micros
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()))
        .unwrap_or(Value::Null)
}

/// `hostId`: an opaque per-project hash of the host, as Nova computes it.
fn host_id(project: &str, host: Option<&str>) -> String {
    match host {
        Some(h) => hex(&sha2::Sha224::digest(format!("{project}{h}").as_bytes())),
        None => String::new(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn links(base: &str, kind: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{base}/v2.1/{kind}/{id}")},
        {"rel": "bookmark", "href": format!("{base}/{kind}/{id}")},
    ])
}

/// Loads a server the caller may see (404 otherwise, also for other projects' servers).
pub async fn find(
    svc: &ComputeService,
    auth: &AuthContext,
    id: &str,
) -> Result<Instance, ApiError> {
    let mut conn = svc.db.pool.acquire().await.map_err(ComputeError::from)?;
    let inst = instances::get(&mut conn, id, false)
        .await
        .map_err(ComputeError::from)?
        .filter(|i| auth.is_admin || auth.project_id() == Some(i.project_id.as_str()))
        .ok_or_else(|| ApiError::not_found(format!("Instance {id} could not be found.")))?;
    Ok(inst)
}

pub fn target(i: &Instance) -> Value {
    json!({"project_id": i.project_id, "user_id": i.user_id})
}

/// The full server body (`/servers/detail`, show, update).
pub fn server_view(
    svc: &ComputeService,
    i: &Instance,
    fault: Option<&Fault>,
    v: Microversion,
    admin: bool,
) -> Value {
    let base = format!("{}/compute", svc.config.public_url);
    let status = instance::status(&i.vm_state, i.task_state.as_deref());
    let mut s = Map::new();
    s.insert("id".into(), json!(i.uuid));
    s.insert("name".into(), json!(i.display_name));
    s.insert("status".into(), json!(status));
    s.insert("tenant_id".into(), json!(i.project_id));
    s.insert("user_id".into(), json!(i.user_id));
    s.insert("metadata".into(), json!(i.metadata));
    s.insert(
        "hostId".into(),
        json!(host_id(&i.project_id, i.host.as_deref())),
    );
    s.insert(
        "image".into(),
        if i.image_ref.is_empty() {
            json!("")
        } else {
            json!({"id": i.image_ref, "links": [{"rel": "bookmark", "href": format!("{base}/images/{}", i.image_ref)}]})
        },
    );
    let f = &i.flavor;
    s.insert(
        "flavor".into(),
        if v.at_least(2, 47) {
            json!({"vcpus": f.vcpus, "ram": f.ram, "disk": f.disk, "ephemeral": f.ephemeral,
                   "swap": f.swap, "original_name": f.name, "extra_specs": f.extra_specs})
        } else {
            json!({"id": f.id, "links": [{"rel": "bookmark", "href": format!("{base}/flavors/{}", f.id)}]})
        },
    );
    s.insert("created".into(), json!(iso(i.created_at)));
    s.insert(
        "updated".into(),
        json!(iso(i.updated_at.unwrap_or(i.created_at))),
    );
    s.insert(
        "addresses".into(),
        if i.addresses.is_object() {
            i.addresses.clone()
        } else {
            json!({})
        },
    );
    s.insert(
        "accessIPv4".into(),
        json!(i.access_ip_v4.clone().unwrap_or_default()),
    );
    s.insert(
        "accessIPv6".into(),
        json!(i.access_ip_v6.clone().unwrap_or_default()),
    );
    s.insert("links".into(), links(&base, "servers", &i.uuid));
    s.insert("OS-DCF:diskConfig".into(), json!("MANUAL"));
    if matches!(status, "BUILD" | "ACTIVE") {
        s.insert("progress".into(), json!(i.progress));
    }
    s.insert(
        "OS-EXT-AZ:availability_zone".into(),
        json!(i
            .availability_zone
            .clone()
            .unwrap_or_else(|| if i.host.is_some() {
                svc.config.default_availability_zone.clone()
            } else {
                String::new()
            })),
    );
    s.insert("config_drive".into(), json!(i.config_drive));
    s.insert("key_name".into(), json!(i.key_name));
    s.insert("OS-SRV-USG:launched_at".into(), iso_us(i.launched_at));
    s.insert("OS-SRV-USG:terminated_at".into(), iso_us(i.terminated_at));
    let groups: Vec<Value> = i
        .request_spec
        .get("security_groups")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str())
                .map(|g| json!({"name": g}))
                .collect()
        })
        .unwrap_or_default();
    if !groups.is_empty() {
        s.insert("security_groups".into(), json!(groups));
    }
    s.insert("OS-EXT-STS:task_state".into(), json!(i.task_state));
    s.insert("OS-EXT-STS:vm_state".into(), json!(i.vm_state));
    s.insert("OS-EXT-STS:power_state".into(), json!(i.power_state));
    s.insert("os-extended-volumes:volumes_attached".into(), json!([]));
    if admin {
        s.insert("OS-EXT-SRV-ATTR:host".into(), json!(i.host));
        s.insert(
            "OS-EXT-SRV-ATTR:instance_name".into(),
            json!(format!("instance-{}", &i.uuid[..8])),
        );
        s.insert("OS-EXT-SRV-ATTR:hypervisor_hostname".into(), json!(i.node));
        if v.at_least(2, 3) {
            s.insert(
                "OS-EXT-SRV-ATTR:reservation_id".into(),
                json!(i.reservation_id),
            );
            s.insert("OS-EXT-SRV-ATTR:launch_index".into(), json!(i.launch_index));
            s.insert("OS-EXT-SRV-ATTR:kernel_id".into(), json!(""));
            s.insert("OS-EXT-SRV-ATTR:ramdisk_id".into(), json!(""));
            s.insert("OS-EXT-SRV-ATTR:root_device_name".into(), json!("/dev/vda"));
            s.insert("OS-EXT-SRV-ATTR:user_data".into(), json!(i.user_data));
        }
    }
    if v.at_least(2, 3) && (admin || v.at_least(2, 90)) {
        s.insert("OS-EXT-SRV-ATTR:hostname".into(), json!(i.hostname));
    }
    if v.at_least(2, 9) {
        s.insert("locked".into(), json!(i.locked));
    }
    if v.at_least(2, 73) {
        s.insert("locked_reason".into(), json!(i.locked_reason));
    }
    if v.at_least(2, 19) {
        s.insert("description".into(), json!(i.display_description));
    }
    if v.at_least(2, 26) {
        s.insert("tags".into(), json!(i.tags));
    }
    if v.at_least(2, 63) {
        s.insert("trusted_image_certificates".into(), Value::Null);
    }
    if v.at_least(2, 96) {
        s.insert(
            "pinned_availability_zone".into(),
            json!(i.availability_zone),
        );
    }
    if admin && v.at_least(2, 16) && i.host.is_some() {
        s.insert("host_status".into(), json!("UP"));
    }
    if let Some(f) = fault {
        if matches!(status, "ERROR" | "DELETED") {
            let mut fj =
                json!({"code": f.code, "created": iso(f.created_at), "message": f.message});
            if admin && !f.details.is_empty() {
                fj["details"] = json!(f.details);
            }
            s.insert("fault".into(), fj);
        }
    }
    Value::Object(s)
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
            } else {
                json!("auto")
            }
        }
        Some(Value::String(x)) if x == "auto" || x == "none" => json!(x),
        Some(Value::Array(a)) => {
            // No network service yet: any requested network or port is unknown.
            if let Some(n) = a.first() {
                let id = n
                    .get("uuid")
                    .or(n.get("port"))
                    .and_then(|x| x.as_str())
                    .unwrap_or("");
                return Err(ApiError::bad_request(format!(
                    "Network {id} could not be found."
                )));
            }
            json!([])
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
    server["adminPass"] = json!(generated_password());
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

/// Query parameters that filter or sort the list: with any of them, the listing reads every
/// instance of the scope and filters in memory.
const FILTER_KEYS: &[&str] = &[
    "name",
    "status",
    "host",
    "flavor",
    "image",
    "reservation_id",
    "availability_zone",
    "locked",
    "changes-since",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "sort_key",
];

const TAG_KEYS: &[&str] = &["tags", "tags-any", "not-tags", "not-tags-any"];

/// A listing's filters, as parsed from the query.
struct Filters<'a> {
    qm: &'a HashMap<&'a str, &'a str>,
    scope: Option<&'a str>,
    admin: bool,
    changes_since: Option<i64>,
    deleted_filter: bool,
    limit: usize,
}

/// The page of a filtered or sorted listing (without metadata, and with tags only when a
/// tag filter asked for them), and whether more instances follow it.
async fn filtered_listing(
    conn: &mut crate::db::Conn,
    f: &Filters<'_>,
) -> Result<(Vec<Instance>, bool), ApiError> {
    let (qm, admin, changes_since, deleted_filter) =
        (f.qm, f.admin, f.changes_since, f.deleted_filter);
    let mut all = instances::list(conn, f.scope, changes_since.is_some() || deleted_filter)
        .await
        .map_err(ComputeError::from)?;
    if TAG_KEYS.iter().any(|k| qm.contains_key(k)) {
        instances::load_children(conn, &mut all)
            .await
            .map_err(ComputeError::from)?;
    }
    let name_re = match qm.get("name") {
        Some(n) => Some(regex::Regex::new(n).map_err(|_| bad(format!("Invalid filter name={n}")))?),
        None => None,
    };
    let status = qm.get("status").map(|s| s.to_ascii_uppercase());
    all.retain(|i| {
        name_re.as_ref().is_none_or(|r| r.is_match(&i.display_name))
            && status
                .as_deref()
                .is_none_or(|s| instance::status(&i.vm_state, i.task_state.as_deref()) == s)
            // An admin filter: Nova drops it silently for others.
            && qm
                .get("host")
                .is_none_or(|h| !admin || i.host.as_deref() == Some(*h))
            && qm.get("flavor").is_none_or(|f| i.flavor.id == *f)
            && qm
                .get("image")
                .is_none_or(|im| im.rsplit('/').next() == Some(i.image_ref.as_str()))
            && qm
                .get("reservation_id")
                .is_none_or(|r| i.reservation_id == *r)
            && qm
                .get("availability_zone")
                .is_none_or(|z| i.availability_zone.as_deref() == Some(*z))
            && qm
                .get("locked")
                .is_none_or(|l| (*l == "true" || *l == "True" || *l == "1") == i.locked)
            && changes_since.is_none_or(|t| i.updated_at.unwrap_or(i.created_at) >= t)
            && (!deleted_filter || i.deleted)
            && qm
                .get("tags")
                .is_none_or(|t| t.split(',').all(|t| i.tags.iter().any(|x| x == t)))
            && qm
                .get("tags-any")
                .is_none_or(|t| t.split(',').any(|t| i.tags.iter().any(|x| x == t)))
            && qm
                .get("not-tags")
                .is_none_or(|t| !t.split(',').all(|t| i.tags.iter().any(|x| x == t)))
            && qm
                .get("not-tags-any")
                .is_none_or(|t| !t.split(',').any(|t| i.tags.iter().any(|x| x == t)))
    });
    if let Some(key) = qm.get("sort_key") {
        let desc = qm.get("sort_dir").is_none_or(|d| *d != "asc");
        match *key {
            "display_name" | "name" => all.sort_by(|a, b| a.display_name.cmp(&b.display_name)),
            "created_at" => all.sort_by_key(|i| i.created_at),
            "updated_at" => all.sort_by_key(|i| i.updated_at.unwrap_or(i.created_at)),
            "uuid" => all.sort_by(|a, b| a.uuid.cmp(&b.uuid)),
            _ => all.sort_by_key(|i| i.created_at),
        }
        if desc {
            all.reverse();
        }
    }
    // Marker pagination.
    let limit = f.limit;
    let start = match qm.get("marker") {
        Some(m) => all
            .iter()
            .position(|i| i.uuid == *m)
            .map(|p| p + 1)
            .ok_or_else(|| bad(format!("marker [{m}] not found")))?,
        None => 0,
    };
    let end = (start + limit).min(all.len());
    let more = end < all.len();
    all.truncate(end);
    all.drain(..start.min(all.len()));
    Ok((all, more))
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
    let mut conn = svc.db.pool.acquire().await.map_err(ComputeError::from)?;
    let plain = !deleted_filter && !FILTER_KEYS.iter().any(|k| qm.contains_key(k));
    let base = format!("{}/compute", svc.config.public_url);
    // The plain listing (`openstack server list [--long]`): order, marker and limit in SQL,
    // so a page reads only its own rows however many servers exist.
    let after = match qm.get("marker") {
        Some(m) if plain => Some(
            instances::get(&mut conn, m, false)
                .await
                .map_err(ComputeError::from)?
                .filter(|i| scope.as_deref().is_none_or(|p| i.project_id == p))
                .map(|i| (i.created_at, i.uuid))
                .ok_or_else(|| bad(format!("marker [{m}] not found")))?,
        ),
        _ => None,
    };
    let after = after.as_ref().map(|(c, u)| (*c, u.as_str()));
    if plain && !detailed {
        // Ids and names are all `GET /servers` shows: no full rows.
        let mut rows =
            instances::list_page_names(&mut conn, scope.as_deref(), after, Some(limit + 1))
                .await
                .map_err(ComputeError::from)?;
        drop(conn);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let servers: Vec<Value> = rows
            .iter()
            .map(|(id, name)| json!({"id": id, "name": name, "links": links(&base, "servers", id)}))
            .collect();
        let last = rows.last().map(|(id, _)| id.as_str());
        return Ok(
            axum::Json(page_body(servers, &base, detailed, &q, limit, more, last)).into_response(),
        );
    }
    let (mut page, more) = if plain {
        let mut rows = instances::list_page(&mut conn, scope.as_deref(), after, Some(limit + 1))
            .await
            .map_err(ComputeError::from)?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        (rows, more)
    } else {
        let filters = Filters {
            qm: &qm,
            scope: scope.as_deref(),
            admin,
            changes_since,
            deleted_filter,
            limit,
        };
        filtered_listing(&mut conn, &filters).await?
    };
    if detailed && !plain {
        // Metadata and tags of the page only (tag filters may have loaded tags already; the
        // plain page came with them).
        for i in &mut page {
            i.tags.clear();
        }
        instances::load_children(&mut conn, &mut page)
            .await
            .map_err(ComputeError::from)?;
    }
    let faults = if detailed {
        let ids: Vec<&str> = page
            .iter()
            .filter(|i| i.vm_state == "error")
            .map(|i| i.uuid.as_str())
            .collect();
        instances::latest_faults(&mut conn, &ids)
            .await
            .map_err(ComputeError::from)?
    } else {
        HashMap::new()
    };
    drop(conn);
    let servers: Vec<Value> = page
        .iter()
        .map(|i| {
            if detailed {
                server_view(&svc, i, faults.get(&i.uuid), v, admin)
            } else {
                json!({"id": i.uuid, "name": i.display_name, "links": links(&base, "servers", &i.uuid)})
            }
        })
        .collect();
    let last = page.last().map(|i| i.uuid.as_str());
    Ok(axum::Json(page_body(servers, &base, detailed, &q, limit, more, last)).into_response())
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
    let inst = find(&svc, &auth, &id).await?;
    auth.enforce(&svc.policy, "os_compute_api:servers:show", &target(&inst))?;
    let mut conn = svc.db.pool.acquire().await.map_err(ComputeError::from)?;
    let faults = instances::latest_faults(&mut conn, &[inst.uuid.as_str()])
        .await
        .map_err(ComputeError::from)?;
    drop(conn);
    let mut server = server_view(&svc, &inst, faults.get(&inst.uuid), v, auth.is_admin);
    with_server_groups(&svc, &mut server, &inst, v).await?;
    Ok(axum::Json(json!({ "server": server })).into_response())
}

/// Show, update and rebuild answers carry the server's group ids from 2.71 (not listings).
pub(super) async fn with_server_groups(
    svc: &ComputeService,
    server: &mut Value,
    inst: &Instance,
    v: Microversion,
) -> Result<(), ApiError> {
    if v.at_least(2, 71) {
        let mut conn = svc.db.pool.acquire().await.map_err(ComputeError::from)?;
        let group = crate::db::server_groups::for_instance(&mut conn, &inst.uuid)
            .await
            .map_err(ComputeError::from)?;
        server["server_groups"] = json!(group.map(|g| vec![g.id]).unwrap_or_default());
    }
    Ok(())
}

async fn update(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let inst = find(&svc, &auth, &id).await?;
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
    let access_ips = [
        (
            "access_ip_v4",
            s.get("accessIPv4")
                .map(super::input::access_ip_v4)
                .transpose()?,
        ),
        (
            "access_ip_v6",
            s.get("accessIPv6")
                .map(super::input::access_ip_v6)
                .transpose()?,
        ),
    ];
    let now = ferrostack_store::now_micros();
    let mut tx = svc.db.begin_write().await.map_err(ComputeError::from)?;
    instances::update_fields(
        &mut tx,
        &inst.uuid,
        name.as_deref(),
        description.as_ref().map(|d| d.as_deref()),
        hostname.as_deref(),
        now,
    )
    .await
    .map_err(ComputeError::from)?;
    for (col, val) in access_ips {
        if let Some(val) = val {
            instances::set_text(&mut tx, &inst.uuid, col, Some(&val), now)
                .await
                .map_err(ComputeError::from)?;
        }
    }
    tx.commit().await.map_err(ComputeError::from)?;
    let fresh = find(&svc, &auth, &id).await?;
    let mut server = super::server_moves::limited_view(
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
    let inst = find(&svc, &auth, &id).await?;
    auth.enforce(&svc.policy, "os_compute_api:servers:delete", &target(&inst))?;
    if inst.locked && !auth.is_admin {
        return Err(ApiError::conflict(format!(
            "Instance {} is locked",
            inst.uuid
        )));
    }
    svc.delete_server(&inst, &auth, &rid.0).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
