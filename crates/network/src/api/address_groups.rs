//! `/v2.0/address-groups`, with `add_addresses` and `remove_addresses`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::{HeaderMap, StatusCode};
use ipnet::IpNet;
use serde_json::{json, Value};

use super::input;
use super::{authorize, collection_url, created, query, wire, State};
use crate::app::address_groups::{address_group_not_found, AddressGroupChanges, NewAddressGroup};
use crate::error::{NetworkError, Result};
use crate::model::AddressGroup;
use crate::NetworkService;

fn target(g: &AddressGroup) -> Value {
    wire::address_group(g)
}

pub async fn create(state: State, auth: Auth, body: Bytes) -> Result<Response> {
    let svc = &state.0;
    let (objs, bulk) = input::create_body(&body, "address_group", "address_groups")?;
    let mut out = Vec::new();
    for obj in &objs {
        input::only(
            obj,
            &[
                "name",
                "description",
                "addresses",
                "project_id",
                "tenant_id",
            ],
        )?;
        let project = crate::app::owner_for(&auth, input::project(obj)?.as_deref())?;
        let t = json!({"project_id": project, "tenant_id": project});
        authorize(svc, &auth, "create_address_group", &t)?;
        let req = NewAddressGroup {
            project_id: Some(project),
            name: input::string(obj, "name", 255)?.unwrap_or_default(),
            description: input::string(obj, "description", 255)?.unwrap_or_default(),
            addresses: input::prefixes(obj, "addresses")?.unwrap_or_default(),
        };
        let g = svc.create_address_group(&auth, req).await?;
        out.push(wire::address_group(&g));
    }
    Ok(created("address_group", "address_groups", bulk, out))
}

pub async fn list(state: State, auth: Auth, RawQuery(q): RawQuery) -> Result<Response> {
    let svc = &state.0;
    let lq = query::ListQuery::parse(q.as_deref())?;
    let creds = auth.credentials();
    let items: Vec<Value> = svc
        .list_address_groups(&auth)
        .await?
        .iter()
        .map(target)
        .filter(|t| svc.policy.enforce("get_address_group", t, &creds))
        .collect();
    Ok(axum::Json(lq.render(
        items,
        "address_groups",
        &collection_url(svc, "address-groups"),
    )?)
    .into_response())
}

async fn readable(svc: &NetworkService, auth: &Auth, id: &str) -> Result<AddressGroup> {
    let g = svc.find_address_group(id, auth).await?;
    if !svc
        .policy
        .enforce("get_address_group", &target(&g), &auth.credentials())
    {
        return Err(address_group_not_found(id));
    }
    Ok(g)
}

pub async fn show(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let g = readable(svc, &auth, &id).await?;
    let v = query::project(wire::address_group(&g), &query::fields_of(q.as_deref()));
    Ok(axum::Json(json!({ "address_group": v })).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let obj = input::update_body(&body, "address_group")?;
    input::only(&obj, &["name", "description"])?;
    let g = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "update_address_group", &target(&g))?;
    let changes = AddressGroupChanges {
        name: input::string(&obj, "name", 255)?,
        description: input::string(&obj, "description", 255)?,
    };
    let g = svc
        .update_address_group(&id, changes, input::if_match(&headers)?)
        .await?;
    Ok(axum::Json(json!({ "address_group": wire::address_group(&g) })).into_response())
}

/// The body of `add_addresses`/`remove_addresses`: `{"addresses": [...]}` (not empty).
fn address_list(body: &[u8]) -> Result<Vec<IpNet>> {
    let v: Value = ferrostack_api::json::parse(body)?;
    let obj = v.as_object().cloned().unwrap_or_default();
    input::only(&obj, &["addresses"])?;
    input::prefixes(&obj, "addresses")?
        .filter(|a| !a.is_empty())
        .ok_or_else(|| NetworkError::invalid_attr("addresses", "'addresses' is required"))
}

pub async fn add_addresses(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let list = address_list(&body)?;
    let g = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "add_addresses", &target(&g))?;
    let g = svc.add_addresses(&id, &list).await?;
    Ok(axum::Json(json!({ "address_group": wire::address_group(&g) })).into_response())
}

pub async fn remove_addresses(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let list = address_list(&body)?;
    let g = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "remove_addresses", &target(&g))?;
    let g = svc.remove_addresses(&id, &list).await?;
    Ok(axum::Json(json!({ "address_group": wire::address_group(&g) })).into_response())
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    let g = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "delete_address_group", &target(&g))?;
    svc.delete_address_group(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
