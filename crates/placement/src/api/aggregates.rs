//! `/resource_providers/{uuid}/aggregates` (1.1; with the provider generation from 1.19).

use axum::extract::Path;
use axum::response::Response;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{Auth, Json};
use http::StatusCode;
use serde_json::{json, Value};

use super::{gate, invalid, normalize_uuid, object, only, reply, required_int, State};
use crate::error::Result;

fn wire(v: Microversion, aggs: &[String], generation: i64) -> Value {
    if v.at_least(1, 19) {
        json!({"aggregates": aggs, "resource_provider_generation": generation})
    } else {
        json!({"aggregates": aggs})
    }
}

pub async fn show(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(uuid): Path<String>,
) -> Result<Response> {
    gate(v, 1, 1)?;
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:aggregates:list",
        &json!({}),
    )?;
    let aggs = svc.provider_aggregates(&uuid).await?;
    Ok(reply(StatusCode::OK, wire(v, &aggs.value, aggs.generation)))
}

/// Before 1.19 the body is the list itself; from 1.19 an object with the generation.
pub async fn update(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(uuid): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    gate(v, 1, 1)?;
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:aggregates:update",
        &json!({}),
    )?;
    svc.provider(&uuid).await?;
    let (list, generation) = if v.at_least(1, 19) {
        let m = object(body)?;
        only(&m, &["aggregates", "resource_provider_generation"])?;
        let g = required_int(&m, "resource_provider_generation", i64::MIN, i64::MAX)?;
        let list = m
            .get("aggregates")
            .cloned()
            .ok_or_else(|| invalid("'aggregates' is a required property"))?;
        (list, Some(g))
    } else {
        (body, None)
    };
    let Value::Array(items) = list else {
        return Err(invalid(format!("{list} is not of type 'array'")));
    };
    let mut aggs = vec![];
    for a in &items {
        let u = a
            .as_str()
            .and_then(normalize_uuid)
            .ok_or_else(|| invalid(format!("{a} is not a 'uuid'")))?;
        if aggs.contains(&u) {
            return Err(invalid(format!("{items:?} has non-unique elements")));
        }
        aggs.push(u);
    }
    let generation = svc
        .update_provider_aggregates(&uuid, generation, &aggs)
        .await?;
    aggs.sort();
    Ok(reply(StatusCode::OK, wire(v, &aggs, generation)))
}
