//! `/resource_providers`: list (with filters), create, show, update, delete.

use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{Auth, Json};
use http::{header, StatusCode};
use serde_json::{json, Value};

use super::query::{self, Query};
use super::{object, only, reply, string, uuid_prop, Base, State};
use crate::app::providers::ProviderFilter;
use crate::error::{PlacementError, Result};
use crate::model::Provider;

pub(crate) fn wire(base: &str, p: &Provider, v: Microversion) -> Value {
    let url = format!("{base}/resource_providers/{}", p.uuid);
    let mut rels = vec!["inventories", "usages"];
    if v.at_least(1, 1) {
        rels.push("aggregates");
    }
    if v.at_least(1, 6) {
        rels.push("traits");
    }
    if v.at_least(1, 11) {
        rels.push("allocations");
    }
    let mut links = vec![json!({"rel": "self", "href": url})];
    links.extend(
        rels.iter()
            .map(|r| json!({"rel": r, "href": format!("{url}/{r}")})),
    );
    let mut body = json!({
        "uuid": p.uuid,
        "name": p.name,
        "generation": p.generation,
        "links": links,
    });
    if v.at_least(1, 14) {
        body["parent_provider_uuid"] = json!(p.parent_uuid);
        body["root_provider_uuid"] = json!(p.root_uuid);
    }
    body
}

pub async fn list(
    state: State,
    auth: Auth,
    v: Microversion,
    Base(base): Base,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:resource_providers:list", &json!({}))?;
    let q = Query::parse(raw);
    q.check_keys(|k| match k {
        "name" | "uuid" => true,
        "member_of" => v.at_least(1, 3),
        "resources" => v.at_least(1, 4),
        "in_tree" => v.at_least(1, 14),
        "required" => v.at_least(1, 18),
        _ => false,
    })?;
    let name = q.one("name")?;
    let uuid = q.one("uuid")?;
    let member_of = query::member_of(&q.all("member_of"), "member_of", v)?;
    let resources = match q.one("resources")? {
        Some(r) => query::resources(r)?,
        None => Default::default(),
    };
    let in_tree = q
        .one("in_tree")?
        .map(|t| query::in_tree(t, "in_tree"))
        .transpose()?;
    let required = if q.all("required").is_empty() {
        Default::default()
    } else {
        query::required(&q.all("required"), "required", v)?
    };
    let filter = ProviderFilter {
        name: name.map(str::to_string),
        uuid: uuid.map(str::to_string),
        member_of,
        resources,
        in_tree,
        required,
    };
    let out: Vec<Value> = svc
        .list_providers(&filter)
        .await?
        .into_iter()
        .map(|p| {
            let model = Provider {
                uuid: p.uuid,
                name: p.name,
                generation: p.generation,
                parent_uuid: p.parent_uuid,
                root_uuid: p.root_uuid,
                created_at: 0,
                updated_at: 0,
            };
            wire(&base, &model, v)
        })
        .collect();
    Ok(reply(StatusCode::OK, json!({"resource_providers": out})))
}

pub async fn create(
    state: State,
    auth: Auth,
    v: Microversion,
    Base(base): Base,
    Json(body): Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:create",
        &json!({}),
    )?;
    let m = object(body)?;
    if v.at_least(1, 14) {
        only(&m, &["name", "uuid", "parent_provider_uuid"])?;
    } else {
        only(&m, &["name", "uuid"])?;
    }
    let name =
        string(&m, "name", 200)?.ok_or_else(|| super::invalid("'name' is a required property"))?;
    let uuid = uuid_prop(&m, "uuid")?.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let parent = uuid_prop(&m, "parent_provider_uuid")?;
    let p = svc.create_provider(&uuid, &name, parent.as_deref()).await?;
    let location = format!("{base}/resource_providers/{uuid}");
    let mut resp = if v.at_least(1, 20) {
        reply(StatusCode::OK, wire(&base, &p, v))
    } else {
        StatusCode::CREATED.into_response()
    };
    if let Ok(l) = location.parse() {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    Ok(resp)
}

pub async fn show(
    state: State,
    auth: Auth,
    v: Microversion,
    Base(base): Base,
    Path(uuid): Path<String>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:resource_providers:show", &json!({}))?;
    let p = svc.provider(&uuid).await?;
    Ok(reply(StatusCode::OK, wire(&base, &p, v)))
}

pub async fn update(
    state: State,
    auth: Auth,
    v: Microversion,
    Base(base): Base,
    Path(uuid): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:update",
        &json!({}),
    )?;
    svc.provider(&uuid).await?;
    let m = object(body)?;
    if v.at_least(1, 14) {
        only(&m, &["name", "parent_provider_uuid"])?;
    } else {
        only(&m, &["name"])?;
    }
    let name =
        string(&m, "name", 200)?.ok_or_else(|| super::invalid("'name' is a required property"))?;
    let parent = match m.get("parent_provider_uuid") {
        None => None,
        Some(_) => Some(uuid_prop(&m, "parent_provider_uuid")?),
    };
    let p = svc
        .update_provider(
            &uuid,
            &name,
            parent.as_ref().map(|p| p.as_deref()),
            v.at_least(1, 37),
        )
        .await?;
    Ok(reply(StatusCode::OK, wire(&base, &p, v)))
}

pub async fn remove(state: State, auth: Auth, Path(uuid): Path<String>) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:delete",
        &json!({}),
    )?;
    svc.remove_provider(&uuid).await.map_err(|e| match e {
        PlacementError::NotFound(_) => PlacementError::NotFound(format!(
            "No resource provider with uuid {uuid} found for delete"
        )),
        e => e,
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
