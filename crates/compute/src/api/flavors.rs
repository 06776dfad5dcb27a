//! `/flavors`: list, detail, show, create, update (description, 2.55), delete, and extra
//! specs (`/flavors/{id}/os-extra_specs`). Flavor access is in `flavor_access.rs`.

use std::collections::BTreeMap;

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
use crate::app::flavors::{spec_not_found, FlavorQuery, NewFlavor, SORT_KEYS};
use crate::error::{ComputeError, Result};
use crate::model::{Flavor, FlavorFilter};
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/flavors", get(index).post(create))
        .route("/flavors/detail", get(detail))
        .route("/flavors/{id}", get(show).put(update).delete(remove))
        .route(
            "/flavors/{id}/os-extra_specs",
            get(specs_index).post(specs_create),
        )
        .route(
            "/flavors/{id}/os-extra_specs/{key}",
            get(spec_show).put(spec_update).delete(spec_delete),
        )
}

/// The flavor as the caller may see it (cloud admins see all), or Nova's 404.
async fn find(svc: &ComputeService, auth: &Auth, id: &str) -> Result<Flavor> {
    let project = (!auth.is_admin).then(|| auth.project_id().unwrap_or_default());
    svc.visible_flavor(id, project).await
}

fn links(svc: &ComputeService, id: &str) -> Value {
    let base = format!("{}/compute", svc.config.public_url);
    json!([
        {"rel": "self", "href": format!("{base}/v2.1/flavors/{id}")},
        {"rel": "bookmark", "href": format!("{base}/flavors/{id}")},
    ])
}

/// What a flavor body shows at this microversion for this caller.
struct View {
    detail: bool,
    description: bool,
    extra_specs: bool,
    swap_int: bool,
}

impl View {
    fn new(svc: &ComputeService, auth: &Auth, v: Microversion, detail: bool) -> View {
        let target = json!({"project_id": auth.project_id().unwrap_or_default()});
        View {
            detail,
            description: v.at_least(2, 55),
            extra_specs: detail
                && v.at_least(2, 61)
                && svc.policy.enforce(
                    "os_compute_api:os-flavor-extra-specs:index",
                    &target,
                    &auth.credentials(),
                ),
            swap_int: v.at_least(2, 75),
        }
    }

    fn render(&self, svc: &ComputeService, f: &Flavor) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!(f.id));
        o.insert("name".into(), json!(f.name));
        if self.detail {
            o.insert("ram".into(), json!(f.ram));
            o.insert("disk".into(), json!(f.disk));
            // Before 2.75 Nova shows no swap as "".
            let swap = if f.swap == 0 && !self.swap_int {
                json!("")
            } else {
                json!(f.swap)
            };
            o.insert("swap".into(), swap);
            o.insert("OS-FLV-EXT-DATA:ephemeral".into(), json!(f.ephemeral));
            o.insert("OS-FLV-DISABLED:disabled".into(), json!(f.disabled));
            o.insert("vcpus".into(), json!(f.vcpus));
            o.insert("os-flavor-access:is_public".into(), json!(f.is_public));
            o.insert("rxtx_factor".into(), json!(f.rxtx_factor));
        }
        o.insert("links".into(), links(svc, &f.id));
        if self.description {
            o.insert("description".into(), json!(f.description));
        }
        if self.extra_specs {
            o.insert("extra_specs".into(), json!(f.extra_specs));
        }
        Value::Object(o)
    }
}

async fn list(
    svc: &ComputeService,
    auth: &Auth,
    v: Microversion,
    raw: Option<String>,
    detail: bool,
) -> Result<Response> {
    let pairs = input::query_pairs(raw.as_deref());
    if v.at_least(2, 75) {
        input::only_query_params(
            &pairs,
            &[
                "limit",
                "marker",
                "is_public",
                "minRam",
                "minDisk",
                "sort_key",
                "sort_dir",
            ],
        )?;
    }
    let admin = auth.is_admin;
    let mut filter = FlavorFilter {
        project_id: auth.project_id().map(str::to_string),
        ..Default::default()
    };
    if admin {
        filter.is_public = match input::query_get(&pairs, "is_public") {
            None => Some(true),
            Some(s) if s.eq_ignore_ascii_case("none") => None,
            Some(s) => Some(input::parse_bool(s).ok_or_else(|| {
                ComputeError::BadRequest(format!("Invalid is_public filter [{s}]"))
            })?),
        };
    } else {
        filter.is_public = Some(true);
        filter.hide_disabled = true;
    }
    for (param, slot) in [
        ("minRam", &mut filter.min_ram),
        ("minDisk", &mut filter.min_disk),
    ] {
        if let Some(s) = input::query_get(&pairs, param) {
            *slot =
                Some(s.parse::<i64>().map_err(|_| {
                    ComputeError::BadRequest(format!("Invalid {param} filter [{s}]"))
                })?);
        }
    }
    let sort_key = input::query_get(&pairs, "sort_key").unwrap_or("flavorid");
    if !SORT_KEYS.contains(&sort_key) {
        return Err(ComputeError::BadRequest(format!(
            "Invalid input for query parameters sort_key. Value: {sort_key}. '{sort_key}' is \
             not one of {}",
            input::repr(&json!(SORT_KEYS))
        )));
    }
    let sort_dir = input::query_get(&pairs, "sort_dir").unwrap_or("asc");
    if sort_dir != "asc" && sort_dir != "desc" {
        return Err(ComputeError::BadRequest(format!(
            "Invalid input for query parameters sort_dir. Value: {sort_dir}. '{sort_dir}' is \
             not one of ['asc', 'desc']"
        )));
    }
    let (limit, marker) = input::limit_marker(&pairs)?;

    let view = View::new(svc, auth, v, detail);
    let limit = limit.unwrap_or(1000);
    let page = svc
        .list_flavors(&FlavorQuery {
            filter,
            sort_key: sort_key.to_string(),
            descending: sort_dir == "desc",
            marker,
            limit,
            with_extra_specs: view.extra_specs,
        })
        .await?;
    let mut body = json!({
        "flavors": page.iter().map(|f| view.render(svc, f)).collect::<Vec<_>>()
    });
    if page.len() == limit && limit > 0 {
        if let Some(last) = page.last() {
            let path = if detail { "flavors/detail" } else { "flavors" };
            body["flavors_links"] = json!([{
                "rel": "next",
                "href": format!(
                    "{}/compute/v2.1/{path}?limit={limit}&marker={}",
                    svc.config.public_url, last.id
                ),
            }]);
        }
    }
    Ok(axum::Json(body).into_response())
}

pub async fn index(
    state: State,
    auth: Auth,
    v: Microversion,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    list(&state.0, &auth, v, q, false).await
}

pub async fn detail(
    state: State,
    auth: Auth,
    v: Microversion,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    list(&state.0, &auth, v, q, true).await
}

pub async fn show(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    let svc = &state.0;
    let f = find(svc, &auth, &id).await?;
    let view = View::new(svc, &auth, v, true);
    Ok(axum::Json(json!({"flavor": view.render(svc, &f)})).into_response())
}

/// Nova's flavor id pattern: `[a-zA-Z0-9. _-]`, not starting or ending with a space.
fn check_flavor_id(v: &Value) -> Result<Option<String>> {
    let s = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => {
            return Err(input::invalid(
                "id",
                other,
                format!(
                    "{} is not of type 'string', 'number', 'null'",
                    input::repr(other)
                ),
            ))
        }
    };
    let n = s.chars().count();
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ". _-".contains(c));
    if n == 0 {
        return Err(input::invalid(
            "id",
            v,
            format!("{} is too short", input::repr(v)),
        ));
    }
    if n > 255 {
        return Err(input::invalid(
            "id",
            v,
            format!("{} is too long", input::repr(v)),
        ));
    }
    if !ok_chars || s.starts_with(' ') || s.ends_with(' ') {
        return Err(input::invalid(
            "id",
            v,
            format!(
                "{} does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'",
                input::repr(v)
            ),
        ));
    }
    Ok(Some(s))
}

fn check_rxtx(v: &Value) -> Result<f64> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let ok = s.split_once('.').map_or(
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
                |(a, b)| {
                    !a.is_empty()
                        && !b.is_empty()
                        && a.bytes().all(|c| c.is_ascii_digit())
                        && b.bytes().all(|c| c.is_ascii_digit())
                },
            );
            if !ok {
                return Err(input::invalid(
                    "rxtx_factor",
                    v,
                    format!("{} does not match '^[0-9]+(\\.[0-9]+)?$'", input::repr(v)),
                ));
            }
            s.parse::<f64>().ok()
        }
        _ => None,
    };
    let Some(x) = x else {
        return Err(input::invalid(
            "rxtx_factor",
            v,
            format!("{} is not of type 'number', 'string'", input::repr(v)),
        ));
    };
    if x <= 0.0 {
        return Err(input::invalid(
            "rxtx_factor",
            v,
            format!("{x} is less than or equal to the minimum of 0"),
        ));
    }
    if x > 3.40282e38 {
        return Err(input::invalid(
            "rxtx_factor",
            v,
            format!("{x} is greater than the maximum of 3.40282e+38"),
        ));
    }
    Ok(x)
}

/// Flavor descriptions: up to 65535 printable characters (whitespace allowed), or null.
fn check_description(v: &Value) -> Result<Option<String>> {
    if v.is_null() {
        return Ok(None);
    }
    let s = input::string("description", v, 0, 65535)?;
    if s.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return Err(input::invalid(
            "description",
            v,
            format!("{} does not match the description pattern", input::repr(v)),
        ));
    }
    Ok(Some(s.to_string()))
}

pub async fn create(
    state: State,
    auth: Auth,
    v: Microversion,
    ferrostack_api::Json(body): ferrostack_api::Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-flavor-manage:create",
        &json!({}),
    )?;
    let mut allowed = vec![
        "name",
        "id",
        "ram",
        "vcpus",
        "disk",
        "OS-FLV-EXT-DATA:ephemeral",
        "swap",
        "rxtx_factor",
        "os-flavor-access:is_public",
    ];
    if v.at_least(2, 55) {
        allowed.push("description");
    }
    let o = input::envelope(&body, "flavor", &allowed, &["name", "ram", "vcpus", "disk"])?;
    let name = input::name("name", &o["name"])?.to_string();
    let id = match o.get("id") {
        None => None,
        Some(v) => check_flavor_id(v)?,
    };
    let int = |k: &str, min: i64| -> Result<i64> {
        o.get(k)
            .map_or(Ok(0), |v| input::integer(k, v, min, MAX_INT, false))
    };
    let flavor = svc
        .create_flavor(NewFlavor {
            id,
            name,
            ram: int("ram", 1)?,
            vcpus: int("vcpus", 1)?,
            disk: int("disk", 0)?,
            ephemeral: int("OS-FLV-EXT-DATA:ephemeral", 0)?,
            swap: int("swap", 0)?,
            rxtx_factor: o.get("rxtx_factor").map_or(Ok(1.0), check_rxtx)?,
            is_public: o.get("os-flavor-access:is_public").map_or(Ok(true), |v| {
                input::boolean("os-flavor-access:is_public", v)
            })?,
            description: o.get("description").map_or(Ok(None), check_description)?,
        })
        .await?;
    let view = View::new(svc, &auth, v, true);
    Ok(axum::Json(json!({"flavor": view.render(svc, &flavor)})).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    ferrostack_api::Json(body): ferrostack_api::Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    if !v.at_least(2, 55) {
        // Nova answers a method unknown at the request's microversion with 404.
        return Err(ComputeError::NotFound(
            "The resource could not be found.".into(),
        ));
    }
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-flavor-manage:update",
        &json!({}),
    )?;
    let o = input::envelope(&body, "flavor", &["description"], &["description"])?;
    let description = check_description(&o["description"])?;
    let f = svc
        .set_flavor_description(&id, description.as_deref())
        .await?;
    let view = View::new(svc, &auth, v, true);
    Ok(axum::Json(json!({"flavor": view.render(svc, &f)})).into_response())
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-flavor-manage:delete",
        &json!({}),
    )?;
    svc.delete_flavor(&id).await?;
    Ok(StatusCode::ACCEPTED)
}

// --- extra specs ---

/// Extra spec values: strings, or numbers which Nova stores as their string.
fn spec_values(field: &str, v: &Value) -> Result<BTreeMap<String, String>> {
    let obj = v.as_object().ok_or_else(|| {
        input::invalid(
            field,
            v,
            format!("{} is not of type 'object'", input::repr(v)),
        )
    })?;
    let mut out = BTreeMap::new();
    for (k, val) in obj {
        if !input::metadata_key_ok(k) {
            return Err(input::invalid(
                field,
                v,
                format!("Additional properties are not allowed ('{k}' was unexpected)"),
            ));
        }
        let s = match val {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(input::invalid(
                    k,
                    other,
                    format!("{} is not of type 'string', 'number'", input::repr(other)),
                ))
            }
        };
        if s.chars().count() > 255 {
            return Err(input::invalid(
                k,
                val,
                format!("{} is too long", input::repr(val)),
            ));
        }
        out.insert(k.clone(), s);
    }
    Ok(out)
}

fn reader_target(auth: &Auth) -> Value {
    json!({"project_id": auth.project_id().unwrap_or_default()})
}

pub async fn specs_index(state: State, auth: Auth, Path(id): Path<String>) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-flavor-extra-specs:index",
        &reader_target(&auth),
    )?;
    let f = find(svc, &auth, &id).await?;
    Ok(axum::Json(json!({"extra_specs": f.extra_specs})).into_response())
}

pub async fn specs_create(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    ferrostack_api::Json(body): ferrostack_api::Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-flavor-extra-specs:create",
        &json!({}),
    )?;
    let outer = body.as_object().ok_or_else(|| {
        ComputeError::BadRequest(format!("{} is not of type 'object'", input::repr(&body)))
    })?;
    let inner = outer
        .get("extra_specs")
        .ok_or_else(|| ComputeError::BadRequest("'extra_specs' is a required property".into()))?;
    if let Some(k) = outer.keys().find(|k| *k != "extra_specs") {
        return Err(ComputeError::BadRequest(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let specs = spec_values("extra_specs", inner)?;
    svc.set_flavor_extra_specs(&id, &specs).await?;
    Ok(axum::Json(json!({"extra_specs": specs})).into_response())
}

pub async fn spec_show(
    state: State,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-flavor-extra-specs:show",
        &reader_target(&auth),
    )?;
    let f = find(svc, &auth, &id).await?;
    let value = f
        .extra_specs
        .get(&key)
        .ok_or_else(|| spec_not_found(&id, &key))?;
    Ok(axum::Json(json!({ key: value })).into_response())
}

pub async fn spec_update(
    state: State,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
    ferrostack_api::Json(body): ferrostack_api::Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-flavor-extra-specs:update",
        &json!({}),
    )?;
    let specs = match body.as_object() {
        Some(o) if o.len() == 1 => spec_values("extra_specs", &body)?,
        Some(o) if o.is_empty() => {
            return Err(ComputeError::BadRequest(
                "{} does not have enough properties".into(),
            ))
        }
        Some(_) => {
            return Err(ComputeError::BadRequest(format!(
                "{} has too many properties",
                input::repr(&body)
            )))
        }
        None => {
            return Err(ComputeError::BadRequest(format!(
                "{} is not of type 'object'",
                input::repr(&body)
            )))
        }
    };
    let Some(value) = specs.get(&key) else {
        return Err(ComputeError::BadRequest(
            "Request body and URI mismatch".into(),
        ));
    };
    svc.set_flavor_extra_specs(&id, &specs).await?;
    Ok(axum::Json(json!({ key: value })).into_response())
}

pub async fn spec_delete(
    state: State,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-flavor-extra-specs:delete",
        &json!({}),
    )?;
    svc.delete_flavor_extra_spec(&id, &key).await?;
    Ok(StatusCode::OK)
}
