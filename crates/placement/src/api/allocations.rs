//! `/allocations/{consumer_uuid}`, `POST /allocations` (1.13) and
//! `/resource_providers/{uuid}/allocations`.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{Auth, Json};
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::{gate, invalid, normalize_uuid, object, only, reply, string, State};
use crate::app::allocations::ConsumerWrite;
use crate::error::{PlacementError, Result};
use crate::model::{INCOMPLETE_CONSUMER_ID, MAX_INT};
use crate::Allocation;

fn resources(v: &Value) -> Result<BTreeMap<String, i64>> {
    let Value::Object(m) = v else {
        return Err(invalid(format!("{v} is not of type 'object'")));
    };
    if m.is_empty() {
        return Err(invalid(
            "{} does not have enough properties (property 'resources')",
        ));
    }
    let mut out = BTreeMap::new();
    for rc in m.keys() {
        if rc.is_empty() || rc.len() > 255 {
            return Err(invalid(format!(
                "'{rc}' is not a valid resource class name"
            )));
        }
        let amount = super::required_int(m, rc, 1, MAX_INT)?;
        out.insert(rc.clone(), amount);
    }
    Ok(out)
}

/// The allocations of one consumer as a request body gives them: a list before 1.12, an
/// object keyed by provider from 1.12.
/// An empty object (remove the consumer's allocations) is accepted by `POST /allocations` and,
/// from 1.28, by `PUT`.
fn allocations(
    v: Microversion,
    body: Option<&Value>,
    allow_empty: bool,
) -> Result<Vec<Allocation>> {
    let body = body.ok_or_else(|| invalid("'allocations' is a required property"))?;
    let mut out = vec![];
    if v.at_least(1, 12) {
        let Value::Object(m) = body else {
            return Err(invalid(format!("{body} is not of type 'object'")));
        };
        if m.is_empty() && !allow_empty {
            return Err(invalid("{} does not have enough properties"));
        }
        for (rp, a) in m {
            let rp = normalize_uuid(rp)
                .ok_or_else(|| invalid(format!("'{rp}' does not match any of the regexes")))?;
            let am = object(a.clone())?;
            only(&am, &["resources", "generation"])?;
            let res = am
                .get("resources")
                .ok_or_else(|| invalid("'resources' is a required property"))?;
            out.push(Allocation {
                provider_uuid: rp,
                resources: resources(res)?,
            });
        }
    } else {
        let Value::Array(items) = body else {
            return Err(invalid(format!("{body} is not of type 'array'")));
        };
        if items.is_empty() {
            return Err(invalid("[] is too short"));
        }
        for item in items {
            let m = object(item.clone())?;
            only(&m, &["resource_provider", "resources"])?;
            let rp = m
                .get("resource_provider")
                .and_then(|p| p.get("uuid"))
                .and_then(Value::as_str)
                .and_then(normalize_uuid)
                .ok_or_else(|| invalid("'resource_provider' needs a 'uuid'"))?;
            let res = m
                .get("resources")
                .ok_or_else(|| invalid("'resources' is a required property"))?;
            let res = resources(res)?;
            match out
                .iter_mut()
                .find(|a: &&mut Allocation| a.provider_uuid == rp)
            {
                Some(a) => a.resources.extend(res),
                None => out.push(Allocation {
                    provider_uuid: rp,
                    resources: res,
                }),
            }
        }
    }
    Ok(out)
}

/// One consumer's write from its part of a request body.
fn consumer_write(
    v: Microversion,
    consumer: String,
    m: &Map<String, Value>,
    allow_empty: bool,
) -> Result<ConsumerWrite> {
    let mut allowed = vec!["allocations", "project_id", "user_id"];
    if v.at_least(1, 28) {
        allowed.push("consumer_generation");
    }
    if v.at_least(1, 34) {
        allowed.push("mappings");
    }
    if v.at_least(1, 38) {
        allowed.push("consumer_type");
    }
    only(m, &allowed)?;
    let project_id = string(m, "project_id", 255)?;
    let user_id = string(m, "user_id", 255)?;
    if v.at_least(1, 8) && (project_id.is_none() || user_id.is_none()) {
        return Err(invalid(
            "'project_id' and 'user_id' are required properties",
        ));
    }
    let generation = if v.at_least(1, 28) {
        match m.get("consumer_generation") {
            None => return Err(invalid("'consumer_generation' is a required property")),
            Some(Value::Null) => Some(None),
            Some(g) => Some(Some(g.as_i64().ok_or_else(|| {
                invalid(format!("{g} is not of type 'integer', 'null'"))
            })?)),
        }
    } else {
        None
    };
    let consumer_type = if v.at_least(1, 38) {
        let t = string(m, "consumer_type", 255)?
            .ok_or_else(|| invalid("'consumer_type' is a required property"))?;
        if !t
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(invalid(format!("'{t}' does not match '^[A-Z0-9_]+$'")));
        }
        Some(t)
    } else {
        None
    };
    Ok(ConsumerWrite {
        consumer,
        project_id: project_id.unwrap_or_else(|| INCOMPLETE_CONSUMER_ID.into()),
        user_id: user_id.unwrap_or_else(|| INCOMPLETE_CONSUMER_ID.into()),
        consumer_type,
        generation,
        allocations: allocations(v, m.get("allocations"), allow_empty)?,
    })
}

pub async fn show(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(consumer): Path<String>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:allocations:list", &json!({}))?;
    let found = svc.consumer_allocations(&consumer).await?;
    let mut allocs = Map::new();
    for a in &found.allocations {
        allocs.insert(
            a.value.provider_uuid.clone(),
            json!({"generation": a.generation, "resources": a.value.resources}),
        );
    }
    let mut body = json!({"allocations": allocs});
    if v.at_least(1, 12) {
        if let Some(c) = found.consumer {
            body["project_id"] = json!(c.project_id);
            body["user_id"] = json!(c.user_id);
            if v.at_least(1, 28) {
                body["consumer_generation"] = json!(c.generation);
            }
            if v.at_least(1, 38) {
                body["consumer_type"] = json!(c.consumer_type.as_deref().unwrap_or("unknown"));
            }
        }
    }
    Ok(reply(StatusCode::OK, body))
}

pub async fn update(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(consumer): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:allocations:update", &json!({}))?;
    let consumer = normalize_uuid(&consumer).ok_or_else(|| {
        PlacementError::BadRequest(format!("Malformed consumer_uuid: {consumer}"))
    })?;
    let m = object(body)?;
    let w = consumer_write(v, consumer, &m, v.at_least(1, 28))?;
    svc.write_allocations(&[w]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /allocations`: several consumers at once (an empty `allocations` removes them).
pub async fn manage(
    state: State,
    auth: Auth,
    v: Microversion,
    Json(body): Json<Value>,
) -> Result<Response> {
    gate(v, 1, 13)?;
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:allocations:manage", &json!({}))?;
    let m = object(body)?;
    if m.is_empty() {
        return Err(invalid("{} does not have enough properties"));
    }
    let mut writes = vec![];
    for (consumer, part) in m {
        let c = normalize_uuid(&consumer)
            .ok_or_else(|| invalid(format!("'{consumer}' does not match any of the regexes")))?;
        let pm = object(part)?;
        let w = consumer_write(v, c, &pm, true)?;
        writes.push(w);
    }
    svc.write_allocations(&writes).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn remove(state: State, auth: Auth, Path(consumer): Path<String>) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:allocations:delete", &json!({}))?;
    svc.delete_allocations(&consumer).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn for_provider(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(uuid): Path<String>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:allocations:list",
        &json!({}),
    )?;
    let found = svc.provider_allocations(&uuid).await.map_err(|e| match e {
        PlacementError::NotFound(m) => {
            PlacementError::NotFound(format!("Resource provider '{uuid}' not found: {m}"))
        }
        e => e,
    })?;
    let out: Map<String, Value> = found
        .value
        .iter()
        .map(|(c, u)| {
            let mut e = json!({"resources": u.resources});
            if v.at_least(1, 28) {
                e["consumer_generation"] = json!(u.consumer_generation);
            }
            (c.clone(), e)
        })
        .collect();
    Ok(reply(
        StatusCode::OK,
        json!({"allocations": out, "resource_provider_generation": found.generation}),
    ))
}
