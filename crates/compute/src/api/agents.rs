//! The agent protocol over HTTP, for `ferrostack agent` processes on other hosts. Mounted at
//! `/compute/agent-api/v1` (outside the microversioned Nova API: no client but our agent
//! calls it). Each handler calls the very function the in-process `LocalController` calls,
//! so an agent behaves the same in process and over the network.
//!
//! - `POST /hosts/{host}/register`  body: `HostInfo`                → 204
//! - `GET  /hosts/{host}/desired`                                   → `DesiredHost`
//! - `POST /hosts/{host}/reports`   body: `HostReport`              → 204
//! - `POST /hosts/{host}/heartbeat`                                 → 204
//! - `GET  /hosts/{host}/wait?timeout=S` long poll                  → `{"changed": bool}`
//! - `GET  /hosts/{host}/queries`                                   → `{"queries": [Query]}`
//! - `POST /hosts/{host}/queries/{id}` body: `Answer`               → 204 (404: nobody waits)
//! - `GET  /hosts/{host}/metadata?network_id=N&address=A`           → `{"guest": GuestSpec|null}`
//!   (the guest a metadata request from `A` on network `N` came from)
//! - `GET  /hosts/{host}/images/{id}`                               → `ImageInfo`
//! - `GET  /hosts/{host}/images/{id}/file`                          → the image's data
//! - `PUT  /hosts/{host}/images/{id}/file` body: the snapshot's data,
//!   header `X-Image-Disk-Format: raw|qcow2`                        → 204
//! - `PUT  /hosts/{host}/migrations/{id}/disk` body: the root disk a cold move's source
//!   hands over                                                     → 204
//! - `GET  /hosts/{host}/migrations/{id}/disk` (the destination)    → the disk, or 204 when
//!   the source had none
//! - `GET  /hosts/{host}/consoles/{id}` with `Upgrade: ferrostack-console` → 101, then the
//!   console's bytes both ways: the agent dialing back with the console that question `id`
//!   asked for (404 when nobody waits for it)
//!
//! Every call needs a token passing the `compute:agent` rule (admin or service role).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ferrostack_agent_api::{Answer, HostInfo, HostReport, CONSOLE_UPGRADE};
use ferrostack_api::{ApiError, Auth, Json};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::State;
use crate::ComputeService;

/// The longest long poll, whatever the agent asks: keeps idle connections from piling up
/// behind proxies with their own idle timeouts.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/hosts/{host}/register", post(register))
        .route("/hosts/{host}/desired", get(desired))
        .route("/hosts/{host}/reports", post(reports))
        .route("/hosts/{host}/heartbeat", post(heartbeat))
        .route("/hosts/{host}/wait", get(wait))
        .route("/hosts/{host}/queries", get(queries))
        .route("/hosts/{host}/queries/{id}", post(answer))
        .route("/hosts/{host}/metadata", get(metadata))
        .route("/hosts/{host}/images/{id}", get(image))
        .route(
            "/hosts/{host}/images/{id}/file",
            get(image_data).put(snapshot_data),
        )
        .route(
            "/hosts/{host}/migrations/{id}/disk",
            get(migration_disk).put(hand_over_disk),
        )
        .route("/hosts/{host}/consoles/{id}", get(console))
}

/// An agent dialing back with a console: the connection is upgraded and handed to the
/// console proxy's request that waits for it.
async fn console(
    svc: State,
    auth: Auth,
    Path((host, id)): Path<(String, String)>,
    mut req: axum::extract::Request,
) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    let upgrade = req
        .headers()
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok());
    if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case(CONSOLE_UPGRADE)) {
        return Err(ApiError::bad_request(format!(
            "A console connection needs 'Upgrade: {CONSOLE_UPGRADE}'."
        )));
    }
    if !svc.console_expected(&host, &id) {
        return Err(ApiError::not_found(format!(
            "No console waits for question {id}."
        )));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => {
                let stream = Box::new(hyper_util::rt::TokioIo::new(up));
                if !svc.console_dialed(&host, &id, stream) {
                    tracing::warn!(%host, question = %id, "a console came after its asker gave up");
                }
            }
            Err(e) => tracing::warn!(%host, error = %e, "a console connection failed to upgrade"),
        }
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("upgrade"),
    );
    h.insert(
        axum::http::header::UPGRADE,
        axum::http::HeaderValue::from_static(CONSOLE_UPGRADE),
    );
    Ok(resp)
}

/// Checks the caller may act as an agent, and that `host` is a plausible host name (it
/// becomes a service, a hypervisor and a resource provider name).
fn allow(svc: &ComputeService, auth: &Auth, host: &str) -> Result<(), ApiError> {
    auth.enforce(&svc.policy, "compute:agent", &json!({"host": host}))?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !ok {
        return Err(ApiError::bad_request(format!(
            "Invalid host name {host:?}: letters, digits, '.', '-' and '_' only, at most 255."
        )));
    }
    Ok(())
}

/// A response streaming `data` as raw bytes (an image, a disk).
fn octet_stream(data: ferrostack_image::store::ByteStream) -> Response {
    let mut resp = Response::new(Body::from_stream(data));
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/octet-stream"),
    );
    resp
}

async fn register(
    svc: State,
    auth: Auth,
    Path(host): Path<String>,
    Json(info): Json<HostInfo>,
) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    if info.vcpus < 0 || info.memory_mb < 0 || info.local_gb < 0 {
        return Err(ApiError::bad_request(
            "Host resources must not be negative.",
        ));
    }
    svc.register_host(&host, &info).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn desired(svc: State, auth: Auth, Path(host): Path<String>) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    let desired = svc.desired_for(&host).await?;
    Ok(axum::Json(desired).into_response())
}

async fn reports(
    svc: State,
    auth: Auth,
    Path(host): Path<String>,
    Json(report): Json<HostReport>,
) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    svc.apply_reports(&host, report).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn heartbeat(svc: State, auth: Auth, Path(host): Path<String>) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    svc.heartbeat(&host).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct WaitQuery {
    /// Seconds (fractions allowed); capped at [`MAX_WAIT`].
    timeout: Option<f64>,
}

/// Returns as soon as the host's desired state may have changed (the same wake-up the
/// in-process agents wait on), or after the timeout. A wake-up that came while no poll was
/// waiting is kept by the `Notify` and ends the next poll at once, so none is lost between
/// two polls of one agent. Only this controller's wake-ups are seen: with several controllers
/// an agent polling another one catches up at its next resync.
async fn wait(
    svc: State,
    auth: Auth,
    Path(host): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    let secs = q.timeout.unwrap_or(MAX_WAIT.as_secs_f64());
    if !secs.is_finite() || secs < 0.0 {
        return Err(ApiError::bad_request(
            "timeout must be a non-negative number of seconds.",
        ));
    }
    let timeout = Duration::from_secs_f64(secs).min(MAX_WAIT);
    let n = svc.wakeups.of(&host);
    let changed = tokio::time::timeout(timeout, n.notified()).await.is_ok();
    Ok(axum::Json(json!({ "changed": changed })).into_response())
}

async fn queries(svc: State, auth: Auth, Path(host): Path<String>) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    let queries = svc.queries_for(&host).await?;
    Ok(axum::Json(json!({ "queries": queries })).into_response())
}

async fn answer(
    svc: State,
    auth: Auth,
    Path((host, id)): Path<(String, String)>,
    Json(body): Json<Answer>,
) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    if !svc.answer_query(&host, &id, &body).await? {
        return Err(ApiError::not_found(format!(
            "No open question {id} for host {host}."
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct MetadataQuery {
    network_id: String,
    address: String,
}

async fn metadata(
    svc: State,
    auth: Auth,
    Path(host): Path<String>,
    Query(q): Query<MetadataQuery>,
) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    let address: std::net::IpAddr = q
        .address
        .parse()
        .map_err(|_| ApiError::bad_request(format!("Invalid address {:?}.", q.address)))?;
    let guest = svc.metadata_guest(&q.network_id, address).await?;
    Ok(axum::Json(json!({ "guest": guest })).into_response())
}

async fn image(
    svc: State,
    auth: Auth,
    Path((host, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    Ok(axum::Json(svc.image_for_host(&id).await?).into_response())
}

async fn image_data(
    svc: State,
    auth: Auth,
    Path((host, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    Ok(octet_stream(svc.image_data_for_host(&id).await?))
}

async fn snapshot_data(
    svc: State,
    auth: Auth,
    Path((host, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    let format = headers
        .get("x-image-disk-format")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::bad_request("X-Image-Disk-Format is required."))?;
    let data = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other))
        .boxed();
    svc.store_snapshot_from_host(&id, data, format).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn hand_over_disk(
    svc: State,
    auth: Auth,
    Path((host, id)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    let data = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other))
        .boxed();
    svc.store_migration_disk(&host, &id, data).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn migration_disk(
    svc: State,
    auth: Auth,
    Path((host, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    allow(&svc, &auth, &host)?;
    Ok(match svc.migration_disk(&host, &id).await? {
        Some(data) => octet_stream(data),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}
