//! The Neutron v2.0 HTTP API: routes and thin handlers, one module per resource. A handler
//! parses the body (`input`), authorizes with Neutron's policy rules (the action, then one
//! rule per attribute set, as Neutron does), calls the application layer (`crate::app`) and
//! renders (`wire`), hiding attributes the caller may not read and applying the list query
//! language (`query`).

mod address_groups;
mod agents;
mod auto_allocate;
mod extensions;
mod floating_ips;
mod input;
mod networks;
mod port_forwardings;
mod ports;
pub mod query;
mod quotas;
mod rbac;
mod routers;
mod security_groups;
mod subnetpools;
mod subnets;
mod tags;
mod versions;
pub mod wire;

use std::sync::Arc;

use axum::routing::{get, put};
use axum::Router;
use ferrostack_api::{Auth, ErrorFormat};
use serde_json::Value;

use crate::error::{NetworkError, Result};
use crate::NetworkService;

pub type State = axum::extract::State<Arc<NetworkService>>;

/// The networking router, to be nested under `/networking`.
pub fn router(svc: Arc<NetworkService>) -> Router {
    let v2 = Router::new()
        .route("/", get(versions::resources))
        .route("/networks", get(networks::list).post(networks::create))
        .route(
            "/networks/{id}",
            get(networks::show)
                .put(networks::update)
                .delete(networks::remove),
        )
        .route("/subnets", get(subnets::list).post(subnets::create))
        .route(
            "/subnets/{id}",
            get(subnets::show)
                .put(subnets::update)
                .delete(subnets::remove),
        )
        .route("/ports", get(ports::list).post(ports::create))
        .route(
            "/ports/{id}",
            get(ports::show).put(ports::update).delete(ports::remove),
        )
        .route(
            "/security-groups",
            get(security_groups::list).post(security_groups::create),
        )
        .route(
            "/security-groups/{id}",
            get(security_groups::show)
                .put(security_groups::update)
                .delete(security_groups::remove),
        )
        .route(
            "/security-group-rules",
            get(security_groups::list_rules).post(security_groups::create_rules),
        )
        .route(
            "/security-group-rules/{id}",
            get(security_groups::show_rule).delete(security_groups::remove_rule),
        )
        .route("/routers", get(routers::list).post(routers::create))
        .route(
            "/routers/{id}",
            get(routers::show)
                .put(routers::update)
                .delete(routers::remove),
        )
        .route(
            "/routers/{id}/add_router_interface",
            put(routers::add_interface),
        )
        .route(
            "/routers/{id}/remove_router_interface",
            put(routers::remove_interface),
        )
        .route(
            "/floatingips",
            get(floating_ips::list).post(floating_ips::create),
        )
        .route(
            "/floatingips/{id}",
            get(floating_ips::show)
                .put(floating_ips::update)
                .delete(floating_ips::remove),
        )
        .route(
            "/floatingips/{id}/port_forwardings",
            get(port_forwardings::list).post(port_forwardings::create),
        )
        .route(
            "/floatingips/{id}/port_forwardings/{pf_id}",
            get(port_forwardings::show)
                .put(port_forwardings::update)
                .delete(port_forwardings::remove),
        )
        .route(
            "/subnetpools",
            get(subnetpools::list).post(subnetpools::create),
        )
        .route(
            "/subnetpools/{id}",
            get(subnetpools::show)
                .put(subnetpools::update)
                .delete(subnetpools::remove),
        )
        .route(
            "/address-groups",
            get(address_groups::list).post(address_groups::create),
        )
        .route(
            "/address-groups/{id}",
            get(address_groups::show)
                .put(address_groups::update)
                .delete(address_groups::remove),
        )
        .route(
            "/address-groups/{id}/add_addresses",
            put(address_groups::add_addresses),
        )
        .route(
            "/address-groups/{id}/remove_addresses",
            put(address_groups::remove_addresses),
        )
        .route("/rbac-policies", get(rbac::list).post(rbac::create))
        .route(
            "/rbac-policies/{id}",
            get(rbac::show).put(rbac::update).delete(rbac::remove),
        )
        .route("/quotas", get(quotas::list))
        .route(
            "/quotas/{project_id}",
            get(quotas::show).put(quotas::update).delete(quotas::reset),
        )
        .route("/quotas/{project_id}/details", get(quotas::details))
        .route("/quotas/{project_id}/default", get(quotas::defaults))
        .route(
            "/{collection}/{id}/tags",
            get(tags::list).put(tags::replace).delete(tags::clear),
        )
        .route(
            "/{collection}/{id}/tags/{tag}",
            get(tags::check).put(tags::add).delete(tags::remove),
        )
        .route("/agents", get(agents::list))
        .route("/agents/{id}", get(agents::show))
        .route("/routers/{id}/l3-agents", get(agents::router_l3_agents))
        .route(
            "/networks/{id}/dhcp-agents",
            get(agents::network_dhcp_agents),
        )
        .route(
            "/auto-allocated-topology/{project_id}",
            get(auto_allocate::show).delete(auto_allocate::remove),
        )
        .route("/extensions", get(extensions::list))
        .route("/extensions/{alias}", get(extensions::show));
    Router::new()
        .nest("/v2.0", v2)
        .route("/v2.0/", get(versions::resources))
        .route("/", get(versions::versions))
        .with_state(svc)
        .layer(axum::middleware::from_fn(
            ferrostack_api::request::refuse_nul,
        ))
        .layer(ErrorFormat::Neutron.layer())
}

/// `GET /networking/` (the catalog's endpoint with a slash, as Tempest's versions client asks
/// it); merge beside the nested router.
pub fn root_router(svc: Arc<NetworkService>) -> Router {
    Router::new()
        .route("/networking/", get(versions::versions))
        .with_state(svc)
        .layer(ErrorFormat::Neutron.layer())
}

/// Enforces `action` on `target`, as Neutron words a refusal.
pub(crate) fn authorize(
    svc: &NetworkService,
    auth: &Auth,
    action: &str,
    target: &Value,
) -> Result<()> {
    if svc.policy.enforce(action, target, &auth.credentials()) {
        Ok(())
    } else {
        Err(NetworkError::policy(&format!("rule:{action}")))
    }
}

/// Enforces, for each attribute a create or update sets, the rule `<action>:<attribute>` (and
/// `<action>:<attribute>:<key>` for the keys of its objects) when the policy has one. On
/// create, an attribute set to its default (`defaults`) needs no rule, as in Neutron.
pub(crate) fn authorize_attrs(
    svc: &NetworkService,
    auth: &Auth,
    action: &str,
    body: &input::Obj,
    target: &Value,
    defaults: &[(&str, Value)],
) -> Result<()> {
    for (k, v) in body {
        if defaults.iter().any(|(dk, dv)| dk == k && dv == v) {
            continue;
        }
        let rule = format!("{action}:{k}");
        if svc.policy.has_rule(&rule) {
            authorize(svc, auth, &rule, target)?;
        }
        let subkeys: Vec<&String> = match v {
            Value::Object(m) => m.keys().collect(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_object)
                .flat_map(|m| m.keys())
                .collect(),
            _ => Vec::new(),
        };
        for sk in subkeys {
            let rule = format!("{action}:{k}:{sk}");
            if svc.policy.has_rule(&rule) {
                authorize(svc, auth, &rule, target)?;
            }
        }
    }
    Ok(())
}

/// Removes from a rendered resource the attributes whose `<get_action>:<attribute>` rule the
/// caller does not pass (the provider attributes and port bindings, for admins only).
pub(crate) fn hide_attrs(
    svc: &NetworkService,
    auth: &Auth,
    get_action: &str,
    mut view: Value,
    target: &Value,
) -> Value {
    if let Value::Object(m) = &mut view {
        let creds = auth.credentials();
        m.retain(|k, _| {
            let rule = format!("{get_action}:{k}");
            !svc.policy.has_rule(&rule) || svc.policy.enforce(&rule, target, &creds)
        });
    }
    view
}

/// The base URL of a collection, for pagination links.
pub(crate) fn collection_url(svc: &NetworkService, collection: &str) -> String {
    format!("{}/networking/v2.0/{collection}", svc.config.public_url)
}

/// A 201 with the created resource(s): `{"network": ...}`, or `{"networks": [...]}` for bulk.
pub(crate) fn created(
    singular: &str,
    plural: &str,
    bulk: bool,
    mut items: Vec<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = if bulk {
        serde_json::json!({ plural: items })
    } else {
        serde_json::json!({ singular: items.pop().unwrap_or(Value::Null) })
    };
    (http::StatusCode::CREATED, axum::Json(body)).into_response()
}
