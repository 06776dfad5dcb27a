//! `/v3/domains`.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{Auth, Json};
use http::StatusCode;
use serde_json::{json, Value};

use super::wire::{
    self, body_object, drop_readonly, take_opt_bool, take_opt_string, take_stripped_name,
    with_extra,
};
use super::State;
use crate::db;
use crate::error::{conflict_or, IdentityError, Result};
use crate::model::{new_id, Domain, DEFAULT_DOMAIN_ID};
use crate::Identity;

pub fn routes() -> Router<std::sync::Arc<Identity>> {
    Router::new()
        .route("/domains", get(list).post(create))
        .route(
            "/domains/{domain_id}",
            get(show).patch(update).delete(remove),
        )
}

pub fn wire(id: &Identity, d: &Domain) -> Value {
    with_extra(
        json!({
            "id": d.id,
            "name": d.name,
            "description": d.description,
            "enabled": d.enabled,
            "tags": [],
            "options": {},
            "links": wire::self_link(id, &format!("domains/{}", d.id)),
        }),
        &d.extra,
    )
}

fn target(d: &Domain) -> Value {
    json!({"target": {"domain": {"id": d.id, "name": d.name}}, "domain_id": d.id})
}

pub async fn get_domain(id: &Identity, domain_id: &str) -> Result<Domain> {
    db::domains::get(&id.db.pool, domain_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("domain", domain_id))
}

async fn create(state: State, auth: Auth, Json(body): Json<Value>) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:create_domain", &json!({}))?;
    let mut o = body_object(body, "domain")?;
    drop_readonly(&mut o, None)?;
    let name = take_stripped_name(&mut o, "name", 64)?;
    let d = Domain {
        id: take_opt_string(&mut o, "explicit_domain_id", 64)?.unwrap_or_else(new_id),
        name: name.clone(),
        description: take_opt_string(&mut o, "description", 65535)?.unwrap_or_default(),
        enabled: take_opt_bool(&mut o, "enabled")?.unwrap_or(true),
        extra: {
            o.remove("tags");
            o.remove("options");
            o
        },
    };
    let mut tx = id.db.begin_write().await?;
    db::domains::insert(&mut *tx, &d)
        .await
        .map_err(conflict_or(
            "domain",
            format!("Duplicate entry found with name {name}"),
        ))?;
    id.commit_change(tx, vec![]).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"domain": wire(id, &d)})),
    )
        .into_response())
}

async fn list(
    state: State,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:list_domains", &json!({}))?;
    let domains: Vec<Value> = db::domains::list(&id.db.pool)
        .await?
        .iter()
        .filter(|d| q.get("name").is_none_or(|n| *n == d.name))
        .filter(|d| {
            q.get("enabled")
                .is_none_or(|e| wire::query_bool(e) == d.enabled)
        })
        .map(|d| wire(id, d))
        .collect();
    Ok(
        axum::Json(json!({"domains": domains, "links": wire::collection_links(id, "domains")}))
            .into_response(),
    )
}

async fn show(state: State, auth: Auth, Path(domain_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let d = get_domain(id, &domain_id).await?;
    auth.enforce(&id.policy, "identity:get_domain", &target(&d))?;
    Ok(axum::Json(json!({"domain": wire(id, &d)})).into_response())
}

async fn update(
    state: State,
    auth: Auth,
    Path(domain_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    let mut d = get_domain(id, &domain_id).await?;
    auth.enforce(&id.policy, "identity:update_domain", &target(&d))?;
    let mut o = body_object(body, "domain")?;
    drop_readonly(&mut o, Some(&domain_id))?;
    if o.contains_key("name") {
        d.name = take_stripped_name(&mut o, "name", 64)?;
    }
    if let Some(desc) = take_opt_string(&mut o, "description", 65535)? {
        d.description = desc;
    }
    let was_enabled = d.enabled;
    if let Some(e) = take_opt_bool(&mut o, "enabled")? {
        d.enabled = e;
    }
    o.remove("tags");
    o.remove("options");
    d.extra.extend(o);
    let mut tx = id.db.begin_write().await?;
    db::domains::update(&mut *tx, &d)
        .await
        .map_err(conflict_or(
            "domain",
            format!("Duplicate entry found with name {}", d.name),
        ))?;
    let mut events = vec![];
    if was_enabled && !d.enabled {
        let now = ferrostack_store::now_micros();
        events.push(crate::model::RevocationEvent {
            domain_id: d.id.clone(),
            issued_before: now,
            revoked_at: now,
            ..Default::default()
        });
        // As Keystone, the tokens of the domain's users and those scoped to its projects are
        // revoked too, so that they stay invalid once the domain is enabled again.
        for u in db::users::list(&mut *tx, Some(&d.id), None).await? {
            events.push(Identity::revoke_user_event(&u.id, None));
        }
        let filter = db::projects::ProjectFilter {
            domain_id: Some(d.id.clone()),
            ..Default::default()
        };
        for p in db::projects::list(&mut tx, &filter).await? {
            events.push(crate::model::RevocationEvent {
                project_id: p.id,
                issued_before: now,
                revoked_at: now,
                ..Default::default()
            });
        }
    }
    id.commit_change(tx, events).await?;
    Ok(axum::Json(json!({"domain": wire(id, &d)})).into_response())
}

async fn remove(state: State, auth: Auth, Path(domain_id): Path<String>) -> Result<StatusCode> {
    let id = &state.0;
    let d = get_domain(id, &domain_id).await?;
    auth.enforce(&id.policy, "identity:delete_domain", &target(&d))?;
    if d.enabled {
        return Err(IdentityError::ForbiddenWithReason(
            "Cannot delete a domain that is enabled, please disable it first.".into(),
        ));
    }
    if d.id == DEFAULT_DOMAIN_ID {
        return Err(IdentityError::ForbiddenWithReason(
            "The default domain cannot be deleted.".into(),
        ));
    }
    // Everything the domain owns goes with it, as in Keystone.
    let mut tx = id.db.begin_write().await?;
    let mut projects = db::projects::list(
        &mut tx,
        &db::projects::ProjectFilter {
            domain_id: Some(d.id.clone()),
            ..Default::default()
        },
    )
    .await?;
    // Delete leaves first: sort by depth, deepest first.
    let mut depth = HashMap::new();
    for p in &projects {
        depth.insert(
            p.id.clone(),
            db::projects::ancestors(&mut tx, &p.id).await?.len(),
        );
    }
    projects.sort_by_key(|p| std::cmp::Reverse(depth.get(&p.id).copied().unwrap_or(0)));
    for p in &projects {
        db::assignments::delete_for_target(&mut *tx, &p.id).await?;
        db::limits::delete_for_owner(&mut *tx, &p.id).await?;
        db::projects::delete(&mut tx, &p.id).await?;
    }
    db::limits::delete_for_owner(&mut *tx, &d.id).await?;
    for u in db::users::list(&mut *tx, Some(&d.id), None).await? {
        db::assignments::delete_for_actor(&mut *tx, &u.id).await?;
        db::users::delete(&mut *tx, &u.id).await?;
    }
    for g in db::groups::list(&mut *tx, Some(&d.id), None).await? {
        db::assignments::delete_for_actor(&mut *tx, &g.id).await?;
        db::groups::delete(&mut *tx, &g.id).await?;
    }
    for r in db::roles::list(&mut *tx, Some(&d.id)).await? {
        db::roles::delete(&mut *tx, &r.id).await?;
    }
    db::assignments::delete_for_target(&mut *tx, &d.id).await?;
    db::domains::delete(&mut *tx, &d.id).await?;
    id.commit_change(tx, vec![]).await?;
    Ok(StatusCode::NO_CONTENT)
}
