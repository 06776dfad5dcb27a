//! `/v2.0/agents` (list and show; admins only by policy, so others list nothing), and each
//! router's L3 agent and each network's DHCP agent (`/routers/{id}/l3-agents`,
//! `/networks/{id}/dhcp-agents`): where they run.

use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use serde_json::{json, Value};

use super::{collection_url, query, wire, State};
use crate::app::agents::NetAgent;
use crate::error::{NetworkError, Result};
use crate::NetworkService;

pub fn agent(a: &NetAgent) -> Value {
    json!({
        "id": a.id,
        "agent_type": a.agent_type,
        "binary": a.binary,
        "topic": a.topic,
        "host": a.host,
        "admin_state_up": true,
        "alive": a.alive,
        "availability_zone": a.availability_zone,
        "configurations": {},
        "description": null,
        "created_at": agent_time(a.created_at),
        "started_at": agent_time(a.created_at),
        "heartbeat_timestamp": agent_time(a.heartbeat_at),
        "resources_synced": null,
    })
}

/// Neutron shows agents' times as `2024-05-01 10:00:00` (no `T`, no zone).
fn agent_time(micros: i64) -> String {
    wire::time(micros)
        .replace(['T', 'Z'], " ")
        .trim()
        .to_string()
}

fn agent_not_found(id: &str) -> NetworkError {
    NetworkError::not_found("AgentNotFound", format!("Agent {id} could not be found."))
}

pub async fn list(state: State, auth: Auth, RawQuery(q): RawQuery) -> Result<Response> {
    let svc = &state.0;
    let lq = query::ListQuery::parse(q.as_deref())?;
    let creds = auth.credentials();
    let items: Vec<Value> = svc
        .list_agents()
        .await?
        .iter()
        .map(agent)
        .filter(|a| svc.policy.enforce("get_agent", a, &creds))
        .collect();
    Ok(axum::Json(lq.render(items, "agents", &collection_url(svc, "agents"))?).into_response())
}

pub async fn show(state: State, auth: Auth, Path(id): Path<String>) -> Result<Response> {
    let svc = &state.0;
    let a = svc
        .find_agent(&id)
        .await?
        .map(|a| agent(&a))
        .filter(|a| svc.policy.enforce("get_agent", a, &auth.credentials()))
        .ok_or_else(|| agent_not_found(&id))?;
    Ok(axum::Json(json!({ "agent": a })).into_response())
}

/// The L3 agent of the host a router runs on (none while it runs nowhere).
pub async fn router_l3_agents(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let svc = &state.0;
    super::authorize(svc, &auth, "get_l3-agents", &json!({}))?;
    let hosts = svc.router_host(&id).await?;
    agents_of(svc, "L3 agent", &hosts).await
}

/// The DHCP agent of the host serving a network's DHCP.
pub async fn network_dhcp_agents(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let svc = &state.0;
    super::authorize(svc, &auth, "get_dhcp-agents", &json!({}))?;
    let hosts = svc.dhcp_host(&id).await?;
    agents_of(svc, "DHCP agent", &hosts).await
}

/// The agents of `agent_type` on `hosts`, as a listing.
async fn agents_of(svc: &NetworkService, agent_type: &str, hosts: &[String]) -> Result<Response> {
    let agents: Vec<Value> = svc
        .list_agents()
        .await?
        .iter()
        .filter(|a| a.agent_type == agent_type && hosts.contains(&a.host))
        .map(agent)
        .collect();
    Ok(axum::Json(json!({ "agents": agents })).into_response())
}
