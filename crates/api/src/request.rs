//! Per-request context: the request id header and the one log line per request.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;

/// The id of the current request (`req-<uuid>`), in the request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Who made the request, put in the response extensions by the auth middleware for the log.
#[derive(Debug, Clone, Default)]
pub struct LogIdentity {
    pub user_id: String,
    pub project_id: String,
}

/// Middleware: assigns a request id, sends it back as `x-openstack-request-id` (and
/// `x-compute-request-id` under `/compute`, as Nova does) and logs one line per request.
///
/// The request is handled in a task of its own, which this middleware awaits: when the client
/// goes away, the server drops this future, but the handler runs on to its end. So a handler
/// is never cancelled half-way, inside a write transaction or between two writes that belong
/// together (it commits or rolls back as it would have), and a connection never goes back to
/// the pool in the middle of one.
pub async fn request_context(mut req: Request, next: Next) -> Response {
    let id = format!("req-{}", uuid::Uuid::new_v4());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    req.extensions_mut().insert(RequestId(id.clone()));
    let started = Instant::now();
    let mut resp = match tokio::spawn(next.run(req)).await {
        Ok(resp) => resp,
        Err(e) => crate::ApiError::internal(format_args!("request {id}: handler failed: {e}"))
            .into_response(),
    };
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&id) {
        if path.starts_with("/compute") {
            resp.headers_mut().insert("x-compute-request-id", v.clone());
        }
        resp.headers_mut().insert("x-openstack-request-id", v);
    }
    let who = resp
        .extensions()
        .get::<LogIdentity>()
        .cloned()
        .unwrap_or_default();
    tracing::info!(
        target: "ferrostack::request",
        request_id = %id,
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        latency_ms = format_args!("{latency_ms:.2}"),
        user = %who.user_id,
        project = %who.project_id,
        "request"
    );
    resp
}

/// Middleware (inside each service's error renderer): a NUL character in the path or the query
/// string is refused with 400. PostgreSQL cannot store or compare it, so without this the same
/// request would answer differently on the two engines.
pub async fn refuse_nul(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let has_nul = |s: &str| s.contains("%00");
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return crate::ApiError::bad_request("NUL characters (%00) are not allowed in the URL.")
            .into_response();
    }
    next.run(req).await
}
