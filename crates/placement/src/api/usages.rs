//! `/resource_providers/{uuid}/usages` and `/usages?project_id=&user_id=` (1.9; grouped by
//! consumer type from 1.38).

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery};
use axum::response::Response;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::query::Query;
use super::{gate, reply, State};
use crate::error::{PlacementError, Result};

pub async fn for_provider(state: State, auth: Auth, Path(uuid): Path<String>) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:usages",
        &json!({}),
    )?;
    let usages = svc.provider_usage(&uuid).await?;
    Ok(reply(
        StatusCode::OK,
        json!({"resource_provider_generation": usages.generation, "usages": usages.value}),
    ))
}

pub async fn for_project(
    state: State,
    auth: Auth,
    v: Microversion,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    gate(v, 1, 9)?;
    let svc = &state.0;
    let q = Query::parse(raw);
    q.check_keys(|k| {
        k == "project_id" || k == "user_id" || (k == "consumer_type" && v.at_least(1, 38))
    })?;
    let project_id = q.one("project_id")?.ok_or_else(|| {
        PlacementError::BadRequest(
            "Invalid query string parameters: 'project_id' is a required property".into(),
        )
    })?;
    let user_id = q.one("user_id")?;
    auth.enforce(
        &svc.policy,
        "placement:usages",
        &json!({"project_id": project_id}),
    )?;
    let usage = svc.project_usage(project_id, user_id).await?;
    if !v.at_least(1, 38) {
        let mut total: BTreeMap<String, i64> = BTreeMap::new();
        for by_rc in usage.by_type.values() {
            for (rc, n) in by_rc {
                *total.entry(rc.clone()).or_default() += n;
            }
        }
        return Ok(reply(StatusCode::OK, json!({"usages": total})));
    }
    let wanted = q.one("consumer_type")?;
    let mut groups: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (t, by_rc) in &usage.by_type {
        let name = t.as_deref().unwrap_or("unknown");
        let key = match wanted {
            Some("all") => "all",
            Some(w) if w != name => continue,
            _ => name,
        };
        let g = groups.entry(key.to_string()).or_default();
        for (rc, n) in by_rc {
            let cur = g.get(rc).and_then(Value::as_i64).unwrap_or(0);
            g.insert(rc.clone(), json!(cur + n));
        }
        let count = usage.consumers_by_type.get(t).copied().unwrap_or(0);
        let cur = g.get("consumer_count").and_then(Value::as_i64).unwrap_or(0);
        g.insert("consumer_count".into(), json!(cur + count));
    }
    Ok(reply(StatusCode::OK, json!({"usages": groups})))
}
