//! The service catalog: regions, services and endpoints, and the catalog as tokens and
//! `/v3/auth/catalog` show it (rendered once per identity generation, so every change here
//! bumps the generation).

use std::sync::Arc;

use ferrostack_store::sqlx::{Any, Transaction};
use serde_json::{json, Value};

use crate::error::{conflict_or, IdentityError, Result};
use crate::model::{Endpoint, Region, Service};
use crate::{db, Identity};

impl Identity {
    /// The catalog (enabled services with their enabled endpoints), rendered once per identity
    /// generation.
    pub async fn catalog(&self) -> Result<Arc<Value>> {
        let g = self.tokens.generation();
        if let Some((cg, c)) = self.catalog_cache.read().as_ref() {
            if *cg == g {
                return Ok(c.clone());
            }
        }
        let services = db::catalog::list_services(&self.db.pool).await?;
        let endpoints = db::catalog::list_endpoints(&self.db.pool).await?;
        let mut out = Vec::new();
        for s in services.iter().filter(|s| s.enabled) {
            let eps: Vec<Value> = endpoints
                .iter()
                .filter(|e| e.enabled && e.service_id == s.id)
                .map(|e| {
                    json!({
                        "id": e.id,
                        "interface": e.interface,
                        "region": e.region_id,
                        "region_id": e.region_id,
                        "url": e.url,
                    })
                })
                .collect();
            out.push(json!({"endpoints": eps, "id": s.id, "type": s.service_type, "name": s.name}));
        }
        let c = Arc::new(Value::Array(out));
        *self.catalog_cache.write() = Some((g, c.clone()));
        Ok(c)
    }
}

// ---- regions

fn region_not_found(region_id: &str) -> IdentityError {
    IdentityError::not_found("region", region_id)
}

/// The region `region_id`; `NotFound` when there is none.
pub async fn get_region(id: &Identity, region_id: &str) -> Result<Region> {
    db::catalog::get_region(&id.db.pool, region_id)
        .await?
        .ok_or_else(|| region_not_found(region_id))
}

/// The regions, only the children of `parent_region_id` when given.
pub async fn list_regions(id: &Identity, parent_region_id: Option<&str>) -> Result<Vec<Region>> {
    Ok(db::catalog::list_regions(&id.db.pool)
        .await?
        .into_iter()
        .filter(|r| parent_region_id.is_none_or(|p| r.parent_region_id.as_deref() == Some(p)))
        .collect())
}

/// Creates `r` (its parent, if any, exists: see [`get_region`]); `Conflict` when its id is
/// taken.
pub async fn create_region(id: &Identity, r: &Region) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    db::catalog::insert_region(&mut *tx, r)
        .await
        .map_err(conflict_or("region", format!("Duplicate ID, {}", r.id)))?;
    id.commit_change(tx, vec![]).await
}

/// Whether `parent` may become the parent of the region `region_id`: `NotFound` when it does
/// not exist (Keystone's RegionNotFound), a validation error when `region_id` would end up
/// among its own ancestors (CircularRegionHierarchyError).
pub async fn check_region_parent(id: &Identity, region_id: &str, parent: &str) -> Result<()> {
    let mut cur = Some(get_region(id, parent).await?);
    let mut steps = 0;
    while let Some(c) = cur {
        if c.id == region_id || steps > 64 {
            return Err(IdentityError::validation(format!(
                "The specified parent region {parent} would create a circular region hierarchy."
            )));
        }
        steps += 1;
        cur = match c.parent_region_id {
            Some(p) => db::catalog::get_region(&id.db.pool, &p).await?,
            None => None,
        };
    }
    Ok(())
}

/// Stores `r`, a changed copy of a stored region (a new parent passed
/// [`check_region_parent`]).
pub async fn update_region(id: &Identity, r: &Region) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    db::catalog::update_region(&mut *tx, r).await?;
    id.commit_change(tx, vec![]).await
}

/// Deletes the region `region_id`; `NotFound` when there is none, refused (403) while it has
/// child regions or endpoints.
pub async fn delete_region(id: &Identity, region_id: &str) -> Result<()> {
    get_region(id, region_id).await?;
    let mut tx = id.db.begin_write().await?;
    db::catalog::delete_region(&mut *tx, region_id)
        .await
        .map_err(|e| {
            if ferrostack_store::is_foreign_key_violation(&e) {
                IdentityError::ForbiddenWithReason(format!(
                    "Region {region_id} still has child regions or endpoints and cannot be deleted."
                ))
            } else {
                e.into()
            }
        })?;
    id.commit_change(tx, vec![]).await
}

// ---- services

/// The service `service_id`; `NotFound` when there is none.
pub async fn get_service(id: &Identity, service_id: &str) -> Result<Service> {
    db::catalog::get_service(&id.db.pool, service_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("service", service_id))
}

/// The services, of `service_type` and named `name` when given.
pub async fn list_services(
    id: &Identity,
    service_type: Option<&str>,
    name: Option<&str>,
) -> Result<Vec<Service>> {
    Ok(db::catalog::list_services(&id.db.pool)
        .await?
        .into_iter()
        .filter(|s| service_type.is_none_or(|t| t == s.service_type))
        .filter(|s| name.is_none_or(|n| n == s.name))
        .collect())
}

/// Creates `s`.
pub async fn create_service(id: &Identity, s: &Service) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    db::catalog::insert_service(&mut *tx, s).await?;
    id.commit_change(tx, vec![]).await
}

/// Stores `s`, a changed copy of a stored service.
pub async fn update_service(id: &Identity, s: &Service) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    db::catalog::update_service(&mut *tx, s).await?;
    id.commit_change(tx, vec![]).await
}

/// Deletes the service `service_id`; `NotFound` when there is none, refused (403) while
/// limits use it.
pub async fn delete_service(id: &Identity, service_id: &str) -> Result<()> {
    get_service(id, service_id).await?;
    let mut tx = id.db.begin_write().await?;
    db::catalog::delete_service(&mut *tx, service_id)
        .await
        .map_err(|e| {
            if ferrostack_store::is_foreign_key_violation(&e) {
                IdentityError::ForbiddenWithReason(format!(
                    "Service {service_id} is still used by limits."
                ))
            } else {
                e.into()
            }
        })?;
    id.commit_change(tx, vec![]).await
}

// ---- endpoints

/// The endpoint `endpoint_id`; `NotFound` when there is none.
pub async fn get_endpoint(id: &Identity, endpoint_id: &str) -> Result<Endpoint> {
    db::catalog::get_endpoint(&id.db.pool, endpoint_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("endpoint", endpoint_id))
}

/// Which endpoints a listing returns (every field that is set must match).
#[derive(Debug, Clone, Default)]
pub struct EndpointFilter {
    pub interface: Option<String>,
    pub service_id: Option<String>,
    pub region_id: Option<String>,
}

/// The endpoints matching `f`.
pub async fn list_endpoints(id: &Identity, f: &EndpointFilter) -> Result<Vec<Endpoint>> {
    Ok(db::catalog::list_endpoints(&id.db.pool)
        .await?
        .into_iter()
        .filter(|e| f.interface.as_ref().is_none_or(|i| *i == e.interface))
        .filter(|e| f.service_id.as_ref().is_none_or(|s| *s == e.service_id))
        .filter(|e| f.region_id.is_none() || e.region_id == f.region_id)
        .collect())
}

/// An endpoint's service must exist: a validation error (400), not a 404, as in Keystone.
pub async fn check_endpoint_service(id: &Identity, service_id: &str) -> Result<()> {
    if db::catalog::get_service(&id.db.pool, service_id)
        .await?
        .is_none()
    {
        return Err(IdentityError::validation(format!(
            "Invalid input for field 'service_id': could not find service: {service_id}."
        )));
    }
    Ok(())
}

/// An endpoint's `region_id` must name an existing region: a validation error (400), not a
/// 404, as in Keystone.
pub async fn check_endpoint_region(id: &Identity, region_id: &str) -> Result<()> {
    if db::catalog::get_region(&id.db.pool, region_id)
        .await?
        .is_none()
    {
        return Err(IdentityError::validation(format!(
            "Invalid input for field 'region_id': could not find region: {region_id}."
        )));
    }
    Ok(())
}

/// Creates `e.region_id` in `tx` when `ensure_region` and it is missing.
async fn ensure_region(
    tx: &mut Transaction<'static, Any>,
    e: &Endpoint,
    ensure_region: bool,
) -> Result<()> {
    let Some(r) = e.region_id.as_ref().filter(|_| ensure_region) else {
        return Ok(());
    };
    if db::catalog::get_region(&mut **tx, r).await?.is_none() {
        let region = Region {
            id: r.clone(),
            description: String::new(),
            parent_region_id: None,
            extra: Default::default(),
        };
        db::catalog::insert_region(&mut **tx, &region)
            .await
            .map_err(conflict_or("region", format!("Duplicate ID, {r}")))?;
    }
    Ok(())
}

/// Creates `e` (its service passed [`check_endpoint_service`]). With `ensure_region` its
/// region is created in the same transaction when missing (what the legacy `region`
/// attribute does, as in Keystone); otherwise it passed [`check_endpoint_region`].
pub async fn create_endpoint(id: &Identity, e: &Endpoint, ensure: bool) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    ensure_region(&mut tx, e, ensure).await?;
    db::catalog::insert_endpoint(&mut *tx, e).await?;
    id.commit_change(tx, vec![]).await
}

/// Stores `e`, a changed copy of a stored endpoint; `ensure_region` as for
/// [`create_endpoint`].
pub async fn update_endpoint(id: &Identity, e: &Endpoint, ensure: bool) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    ensure_region(&mut tx, e, ensure).await?;
    db::catalog::update_endpoint(&mut *tx, e).await?;
    id.commit_change(tx, vec![]).await
}

/// Deletes the endpoint `endpoint_id`; `NotFound` when there is none.
pub async fn delete_endpoint(id: &Identity, endpoint_id: &str) -> Result<()> {
    get_endpoint(id, endpoint_id).await?;
    let mut tx = id.db.begin_write().await?;
    db::catalog::delete_endpoint(&mut *tx, endpoint_id).await?;
    id.commit_change(tx, vec![]).await
}
