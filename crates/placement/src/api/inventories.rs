//! `/resource_providers/{uuid}/inventories` and `/inventories/{rc}`.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{Auth, Json};
use http::{header, StatusCode};
use serde_json::{json, Map, Value};

use super::{gate_method, int, invalid, object, only, reply, required_int, Base, State};
use crate::error::{PlacementError, Result};
use crate::model::MAX_INT;
use crate::Inventory;

const FIELDS: [&str; 6] = [
    "total",
    "reserved",
    "min_unit",
    "max_unit",
    "step_size",
    "allocation_ratio",
];

fn wire(inv: &Inventory) -> Value {
    json!({
        "total": inv.total,
        "reserved": inv.reserved,
        "min_unit": inv.min_unit,
        "max_unit": inv.max_unit,
        "step_size": inv.step_size,
        "allocation_ratio": inv.allocation_ratio,
    })
}

/// Reads an inventory's fields, with placement's defaults and bounds.
fn parse(m: &Map<String, Value>) -> Result<Inventory> {
    let ratio = match m.get("allocation_ratio") {
        None => 1.0,
        Some(v) => v
            .as_f64()
            .filter(|r| *r >= 0.0 && *r <= 3.4e38)
            .ok_or_else(|| invalid(format!("{v} is not a valid 'allocation_ratio'")))?,
    };
    Ok(Inventory {
        total: required_int(m, "total", 1, MAX_INT)?,
        reserved: int(m, "reserved", 0, MAX_INT)?.unwrap_or(0),
        min_unit: int(m, "min_unit", 1, MAX_INT)?.unwrap_or(1),
        max_unit: int(m, "max_unit", 1, MAX_INT)?.unwrap_or(MAX_INT),
        step_size: int(m, "step_size", 1, MAX_INT)?.unwrap_or(1),
        allocation_ratio: ratio,
    })
}

/// Reserved may equal total from 1.26 (a fully reserved inventory).
fn check_capacity(v: Microversion, uuid: &str, rc: &str, inv: &Inventory) -> Result<()> {
    let bad = if v.at_least(1, 26) {
        inv.reserved > inv.total
    } else {
        inv.reserved >= inv.total
    };
    if bad {
        let what = if v.at_least(1, 26) {
            "greater than"
        } else {
            "greater than or equal to"
        };
        return Err(PlacementError::BadRequest(format!(
            "Unable to update inventory for resource provider {uuid}: Invalid inventory for \
             '{rc}' on resource provider '{uuid}'. The reserved value is {what} total."
        )));
    }
    Ok(())
}

pub async fn list(state: State, auth: Auth, Path(uuid): Path<String>) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:inventories:list",
        &json!({}),
    )?;
    let invs = svc.inventories(&uuid).await?;
    let body: Map<String, Value> = invs
        .value
        .iter()
        .map(|(rc, i)| (rc.clone(), wire(i)))
        .collect();
    Ok(reply(
        StatusCode::OK,
        json!({"resource_provider_generation": invs.generation, "inventories": body}),
    ))
}

pub async fn show(
    state: State,
    auth: Auth,
    Path((uuid, rc)): Path<(String, String)>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:inventories:show",
        &json!({}),
    )?;
    let inv = svc.inventory(&uuid, &rc).await?;
    let mut body = wire(&inv.value);
    body["resource_provider_generation"] = json!(inv.generation);
    Ok(reply(StatusCode::OK, body))
}

/// `POST`: adds one inventory class.
pub async fn create(
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
        "placement:resource_providers:inventories:create",
        &json!({}),
    )?;
    svc.provider(&uuid).await?;
    let m = object(body)?;
    let mut allowed = FIELDS.to_vec();
    allowed.push("resource_class");
    only(&m, &allowed)?;
    let rc = super::string(&m, "resource_class", 255)?
        .ok_or_else(|| invalid("'resource_class' is a required property"))?;
    let inv = parse(&m)?;
    check_capacity(v, &uuid, &rc, &inv)?;
    let generation = svc.create_inventory(&uuid, &rc, &inv).await?;
    let mut body = wire(&inv);
    body["resource_provider_generation"] = json!(generation);
    let mut resp = reply(StatusCode::CREATED, body);
    if let Ok(l) = format!("{base}/resource_providers/{uuid}/inventories/{rc}").parse() {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    Ok(resp)
}

/// `PUT`: replaces all inventories, guarded by the provider generation.
pub async fn set_all(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(uuid): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:inventories:update",
        &json!({}),
    )?;
    svc.provider(&uuid).await?;
    let m = object(body)?;
    only(&m, &["resource_provider_generation", "inventories"])?;
    let generation = required_int(&m, "resource_provider_generation", i64::MIN, i64::MAX)?;
    let invs = match m.get("inventories") {
        Some(Value::Object(o)) => o,
        Some(other) => return Err(invalid(format!("{other} is not of type 'object'"))),
        None => return Err(invalid("'inventories' is a required property")),
    };
    let mut desired = BTreeMap::new();
    for (rc, body) in invs {
        let im = match body {
            Value::Object(o) => o,
            other => return Err(invalid(format!("{other} is not of type 'object'"))),
        };
        only(im, &FIELDS)?;
        let inv = parse(im)?;
        check_capacity(v, &uuid, rc, &inv)?;
        desired.insert(rc.clone(), inv);
    }
    let generation = svc.replace_inventories(&uuid, generation, &desired).await?;
    let body: Map<String, Value> = desired
        .iter()
        .map(|(rc, i)| (rc.clone(), wire(i)))
        .collect();
    Ok(reply(
        StatusCode::OK,
        json!({"resource_provider_generation": generation, "inventories": body}),
    ))
}

/// `PUT /inventories/{rc}`: changes one existing inventory, guarded by the generation.
pub async fn update(
    state: State,
    auth: Auth,
    v: Microversion,
    Path((uuid, rc)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:inventories:update",
        &json!({}),
    )?;
    svc.provider(&uuid).await?;
    let m = object(body)?;
    let mut allowed = FIELDS.to_vec();
    allowed.push("resource_provider_generation");
    only(&m, &allowed)?;
    let generation = required_int(&m, "resource_provider_generation", i64::MIN, i64::MAX)?;
    let inv = parse(&m)?;
    check_capacity(v, &uuid, &rc, &inv)?;
    let generation = svc.update_inventory(&uuid, &rc, generation, &inv).await?;
    let mut body = wire(&inv);
    body["resource_provider_generation"] = json!(generation);
    Ok(reply(StatusCode::OK, body))
}

/// `DELETE /inventories/{rc}` (no generation, as in placement).
pub async fn remove(
    state: State,
    auth: Auth,
    Path((uuid, rc)): Path<(String, String)>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:inventories:delete",
        &json!({}),
    )?;
    svc.provider(&uuid).await?;
    svc.delete_inventory(&uuid, &rc).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /inventories` (1.5): all of them, unless some are in use.
pub async fn remove_all(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(uuid): Path<String>,
) -> Result<Response> {
    gate_method(v, 1, 5)?;
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:inventories:delete",
        &json!({}),
    )?;
    svc.provider(&uuid).await?;
    svc.delete_inventories(&uuid).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::capacity;

    #[test]
    fn parse_applies_defaults_and_bounds() {
        let m = object(json!({"total": 8})).unwrap();
        let inv = parse(&m).unwrap();
        assert_eq!((inv.min_unit, inv.max_unit, inv.step_size), (1, MAX_INT, 1));
        assert!(parse(&object(json!({"total": 0})).unwrap()).is_err());
        assert!(parse(&object(json!({"total": 1.5})).unwrap()).is_err());
        assert!(parse(&object(json!({"reserved": 1})).unwrap()).is_err());
        let inv = Inventory::new(4);
        let full = Inventory { reserved: 4, ..inv };
        assert!(check_capacity(Microversion(1, 25), "p", "VCPU", &full).is_err());
        assert!(check_capacity(Microversion(1, 26), "p", "VCPU", &full).is_ok());
        assert_eq!(capacity::capacity(&full), 0);
    }
}
