//! The Nova v2.1 HTTP API: routes and thin handlers, one module per resource.

pub mod agents;
mod aggregates;
mod availability_zones;
mod console_proxy;
mod extensions;
mod flavor_access;
mod flavors;
mod floating_ips;
mod hosts;
mod hypervisors;
mod images;
mod input;
mod keypairs;
mod limits;
mod quotas;
mod server_actions;
mod server_groups;
mod server_moves;
mod server_views;
pub(crate) mod servers;
mod services;
mod usage;
mod usage_audit_log;
mod versions;

// Server sub-resources and os-migrations.
mod consoles;
mod migrations;
mod networks;
mod security_groups;
mod server_diagnostics;
mod server_external_events;
mod server_interfaces;
mod server_ips;
mod server_metadata;
mod server_password;
mod server_tags;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::{negotiate_layer, Microversion, VersionRange};
use ferrostack_api::ErrorFormat;

use crate::ComputeService;

pub type State = axum::extract::State<Arc<ComputeService>>;

/// The microversions this API serves.
pub const VERSIONS: VersionRange = VersionRange {
    service: "compute",
    legacy_header: Some("x-openstack-nova-api-version"),
    min: Microversion(2, 1),
    max: Microversion(2, 96),
};

/// The compute router, to be nested under `/compute`.
pub fn router(svc: Arc<ComputeService>) -> Router {
    let v21 = Router::new()
        .route("/", get(versions::v21))
        // Each resource module adds its routes here.
        .merge(flavors::routes())
        .merge(flavor_access::routes())
        .merge(keypairs::routes())
        .merge(quotas::routes())
        .merge(limits::routes())
        .merge(server_groups::routes())
        .merge(aggregates::routes())
        .merge(hosts::routes())
        .merge(images::routes())
        .merge(extensions::routes())
        .merge(usage_audit_log::routes())
        .merge(availability_zones::routes())
        .merge(usage::routes())
        .merge(servers::routes())
        .merge(server_actions::routes())
        .merge(services::routes())
        .merge(hypervisors::routes())
        .merge(server_metadata::routes())
        .merge(server_tags::routes())
        .merge(server_interfaces::routes())
        .merge(networks::routes())
        .merge(security_groups::routes())
        .merge(floating_ips::routes())
        .merge(server_ips::routes())
        .merge(server_password::routes())
        .merge(consoles::routes())
        .merge(server_diagnostics::routes())
        .merge(migrations::routes())
        .merge(server_external_events::routes());
    let v21 = v21.layer(axum::middleware::from_fn_with_state(
        VERSIONS,
        negotiate_layer,
    ));
    Router::new()
        .nest("/v2.1", v21)
        // The agent protocol for `ferrostack agent` processes (not part of Nova's API).
        .nest("/agent-api/v1", agents::routes())
        .route("/", get(versions::versions))
        .route("/v2", get(versions::v20))
        .route("/v2/", get(versions::v20))
        // The console page: outside /v2.1, its console token is the authorization.
        .merge(consoles::proxy_routes())
        .merge(console_proxy::routes(&svc))
        .fallback(versions::not_found)
        .with_state(svc)
        .layer(axum::middleware::from_fn(
            ferrostack_api::request::refuse_nul,
        ))
        .layer(ErrorFormat::Nova.layer())
}

/// `GET /compute/` (with the slash, which a router nested at `/compute` does not see): the
/// versions root as clients reach it when they strip `v2.1` from the catalog URL (Tempest's
/// versions client does). Merge beside the nested compute router.
pub fn root_router(svc: Arc<ComputeService>) -> Router {
    Router::new()
        .route("/compute/", get(versions::versions))
        .with_state(svc)
        .layer(axum::middleware::from_fn(
            ferrostack_api::request::refuse_nul,
        ))
        .layer(ErrorFormat::Nova.layer())
}

/// 404 from microversion 2.`minor` on: the API Nova removed there answers as a path that
/// does not exist.
pub(crate) fn removed_at(
    v: ferrostack_api::microversion::Microversion,
    minor: u32,
) -> Result<(), ferrostack_api::ApiError> {
    if v.at_least(2, minor) {
        return Err(ferrostack_api::ApiError::not_found(
            "The resource could not be found.",
        ));
    }
    Ok(())
}

/// The check of Nova's networking proxies removed at 2.36 (security groups, floating IPs):
/// 404 from 2.36, then `rule` on the caller's project.
pub(crate) fn proxy_check(
    svc: &ComputeService,
    auth: &ferrostack_api::Auth,
    v: ferrostack_api::microversion::Microversion,
    rule: &str,
) -> Result<(), ferrostack_api::ApiError> {
    removed_at(v, 36)?;
    auth.enforce(
        &svc.policy,
        rule,
        &serde_json::json!({"project_id": auth.project_id().unwrap_or_default()}),
    )?;
    Ok(())
}

/// Nova's `<collection>_links` for a page that more items follow: the request's own query
/// (filters, sort keys, limit) with `marker` set to the page's last item. `base` is the
/// compute endpoint (`<public_url>/compute`), `path` the collection (`servers/detail`).
pub(crate) fn next_links(
    base: &str,
    path: &str,
    query: &[(String, String)],
    marker: &str,
) -> serde_json::Value {
    let pairs = query
        .iter()
        .filter(|(k, _)| k != "marker")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([("marker", marker)]);
    let qs = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    serde_json::json!([{"rel": "next", "href": format!("{base}/v2.1/{path}?{qs}")}])
}
