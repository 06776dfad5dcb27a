//! The placement HTTP API (served under `/placement`): routes and thin handlers, one module
//! per resource, microversions 1.0 to 1.39.

mod aggregates;
mod allocations;
mod candidates;
mod classes;
mod inventories;
mod providers;
mod query;
mod traits;
mod usages;

use std::sync::Arc;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ferrostack_api::microversion::{negotiate_layer, Microversion, VersionRange};
use ferrostack_api::ErrorFormat;
use http::{header, HeaderValue};
use serde_json::{json, Map, Value};

use crate::error::{PlacementError, Result};
use crate::PlacementService;

pub type State = axum::extract::State<Arc<PlacementService>>;

/// The microversions served.
pub const RANGE: VersionRange = VersionRange {
    service: "placement",
    legacy_header: None,
    min: Microversion(1, 0),
    max: Microversion(1, 39),
};

/// The placement router, to be nested under `/placement`.
pub fn router(svc: Arc<PlacementService>) -> Router {
    let rp = "/resource_providers/{uuid}";
    Router::new()
        .route("/", get(versions))
        .route(
            "/resource_providers",
            get(providers::list).post(providers::create),
        )
        .route(
            rp,
            get(providers::show)
                .put(providers::update)
                .delete(providers::remove),
        )
        .route(
            &format!("{rp}/inventories"),
            get(inventories::list)
                .post(inventories::create)
                .put(inventories::set_all)
                .delete(inventories::remove_all),
        )
        .route(
            &format!("{rp}/inventories/{{rc}}"),
            get(inventories::show)
                .put(inventories::update)
                .delete(inventories::remove),
        )
        .route(
            &format!("{rp}/aggregates"),
            get(aggregates::show).put(aggregates::update),
        )
        .route(
            &format!("{rp}/traits"),
            get(traits::provider_list)
                .put(traits::provider_set)
                .delete(traits::provider_clear),
        )
        .route(&format!("{rp}/allocations"), get(allocations::for_provider))
        .route(&format!("{rp}/usages"), get(usages::for_provider))
        .route(
            "/resource_classes",
            get(classes::list).post(classes::create),
        )
        .route(
            "/resource_classes/{name}",
            get(classes::show)
                .put(classes::update)
                .delete(classes::remove),
        )
        .route("/traits", get(traits::list))
        .route(
            "/traits/{name}",
            get(traits::show).put(traits::create).delete(traits::remove),
        )
        .route("/allocations", post(allocations::manage))
        .route(
            "/allocations/{consumer}",
            get(allocations::show)
                .put(allocations::update)
                .delete(allocations::remove),
        )
        .route("/usages", get(usages::for_project))
        .route("/allocation_candidates", get(candidates::list))
        .layer(axum::middleware::from_fn(cache_headers))
        .layer(axum::middleware::from_fn_with_state(RANGE, negotiate_layer))
        .with_state(svc)
        .layer(axum::middleware::from_fn(
            ferrostack_api::request::refuse_nul,
        ))
        .layer(ErrorFormat::Placement.layer())
}

/// `GET /`: the version document (no token needed).
async fn versions() -> Response {
    let v = |m: Microversion| format!("{}.{}", m.0, m.1);
    axum::Json(json!({"versions": [{
        "id": format!("v{}", v(RANGE.min)),
        "max_version": v(RANGE.max),
        "min_version": v(RANGE.min),
        "status": "CURRENT",
        "links": [{"rel": "self", "href": ""}],
    }]}))
    .into_response()
}

/// From 1.15, successful responses with a body carry `cache-control: no-cache` and a
/// `last-modified` (the time of the response: placement shows the newest change of what it
/// returns, which clients only use to avoid caching).
async fn cache_headers(
    v: Microversion,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut resp = next.run(req).await;
    let with_body = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|c| c.as_bytes().starts_with(b"application/json"));
    if v.at_least(1, 15) && resp.status().is_success() && with_body {
        let now = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Ok(val) = HeaderValue::from_str(&now) {
            h.entry(header::LAST_MODIFIED).or_insert(val);
        }
    }
    resp
}

/// Routes and methods newer than the request's microversion answer as if absent: 404 for a
/// route, 405 for a method of an older route.
pub(crate) fn gate(v: Microversion, major: u32, minor: u32) -> Result<()> {
    if v.at_least(major, minor) {
        Ok(())
    } else {
        Err(PlacementError::NotFound(
            "The resource could not be found.".into(),
        ))
    }
}

pub(crate) fn gate_method(v: Microversion, major: u32, minor: u32) -> Result<()> {
    if v.at_least(major, minor) {
        Ok(())
    } else {
        Err(PlacementError::MethodNotAllowed(
            "The method specified is not allowed for this resource.".into(),
        ))
    }
}

/// The path under which the router is mounted (`/placement`), for links.
pub struct Base(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        let inner = parts.uri.path().to_string();
        let full = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(inner.clone(), |o| o.path().to_string());
        Ok(Base(
            full.strip_suffix(&inner).unwrap_or_default().to_string(),
        ))
    }
}

/// The JSON object of a request body, or 400.
pub(crate) fn object(v: Value) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(invalid(format!("{other} is not of type 'object'"))),
    }
}

/// A body that does not match placement's schema.
pub(crate) fn invalid(why: impl std::fmt::Display) -> PlacementError {
    PlacementError::BadRequest(format!("JSON does not validate: {why}"))
}

/// Refuses properties other than `allowed`.
pub(crate) fn only(m: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

/// An integer property within `[min, max]`.
pub(crate) fn int(m: &Map<String, Value>, key: &str, min: i64, max: i64) -> Result<Option<i64>> {
    match m.get(key) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if (min..=max).contains(&n) && !v.is_f64() => Ok(Some(n)),
            Some(n) if n < min => Err(invalid(format!(
                "{n} is less than the minimum of {min} (property '{key}')"
            ))),
            Some(n) if !v.is_f64() => Err(invalid(format!(
                "{n} is greater than the maximum of {max} (property '{key}')"
            ))),
            _ => Err(invalid(format!(
                "{v} is not of type 'integer' (property '{key}')"
            ))),
        },
    }
}

pub(crate) fn required_int(m: &Map<String, Value>, key: &str, min: i64, max: i64) -> Result<i64> {
    int(m, key, min, max)?.ok_or_else(|| invalid(format!("'{key}' is a required property")))
}

/// A string property (`max` characters at most).
pub(crate) fn string(m: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max && !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::String(s)) if s.is_empty() => {
            Err(invalid(format!("'' is too short (property '{key}')")))
        }
        Some(Value::String(s)) => Err(invalid(format!("'{s}' is too long (property '{key}')"))),
        Some(v) => Err(invalid(format!(
            "{v} is not of type 'string' (property '{key}')"
        ))),
    }
}

/// A UUID property, normalized to its hyphenated lowercase form.
pub(crate) fn uuid_prop(m: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => normalize_uuid(s)
            .map(Some)
            .ok_or_else(|| invalid(format!("'{s}' is not a 'uuid' (property '{key}')"))),
        Some(v) => Err(invalid(format!(
            "{v} is not of type 'string' (property '{key}')"
        ))),
    }
}

pub(crate) fn normalize_uuid(s: &str) -> Option<String> {
    uuid::Uuid::parse_str(s)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// A JSON response with status.
pub(crate) fn reply(status: http::StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}
