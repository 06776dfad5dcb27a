//! Unified limits (Keystone's flat model): registered limits (a service's default for a
//! resource) and project or domain limits, and how other services consume them: a project's
//! limit for a resource, and registering a service's default limits at start.

use crate::db;
use crate::error::{conflict_or, IdentityError, Result};
use crate::model::{new_id, Limit, RegisteredLimit};
use crate::Identity;

impl Identity {
    async fn service_id_of_type(&self, service_type: &str) -> Result<Option<String>> {
        Ok(db::catalog::list_services(&self.db.pool)
            .await?
            .into_iter()
            .find(|s| s.service_type == service_type)
            .map(|s| s.id))
    }

    /// The limit on `resource_name` of the `service_type` service for `project_id`: the project's
    /// own limit, else the registered default; `None` when neither exists (no limit).
    pub async fn project_limit(
        &self,
        service_type: &str,
        resource_name: &str,
        project_id: &str,
    ) -> Result<Option<i64>> {
        let Some(service_id) = self.service_id_of_type(service_type).await? else {
            return Ok(None);
        };
        let region = Some(self.config.region.clone());
        let matches = |sid: &str, r: &Option<String>, res: &str| {
            sid == service_id && (r.is_none() || *r == region) && res == resource_name
        };
        let limits = db::limits::list_limits(&self.db.pool).await?;
        if let Some(l) = limits.iter().find(|l| {
            l.project_id.as_deref() == Some(project_id)
                && matches(&l.service_id, &l.region_id, &l.resource_name)
        }) {
            return Ok(Some(l.resource_limit));
        }
        let registered = db::limits::list_registered(&self.db.pool).await?;
        Ok(registered
            .iter()
            .find(|l| matches(&l.service_id, &l.region_id, &l.resource_name))
            .map(|l| l.default_limit))
    }

    /// Registers default limits for the `service_type` service in this region when missing
    /// (operators change them with `openstack registered limit set`).
    pub async fn ensure_registered_limits(
        &self,
        service_type: &str,
        defaults: &[(&str, i64, &str)],
    ) -> Result<()> {
        let Some(service_id) = self.service_id_of_type(service_type).await? else {
            return Ok(());
        };
        let existing = db::limits::list_registered(&self.db.pool).await?;
        let mut tx = self.db.begin_write().await?;
        for (resource, default, description) in defaults {
            if existing
                .iter()
                .any(|l| l.service_id == service_id && l.resource_name == *resource)
            {
                continue;
            }
            db::limits::insert_registered(
                &mut *tx,
                &RegisteredLimit {
                    id: new_id(),
                    service_id: service_id.clone(),
                    region_id: Some(self.config.region.clone()),
                    resource_name: resource.to_string(),
                    default_limit: *default,
                    description: description.to_string(),
                },
            )
            .await?;
        }
        self.commit_change(tx, vec![]).await
    }
}

// ---- registered limits

fn duplicate_resource(resource_name: &str) -> String {
    format!("Duplicate entry found with resource_name {resource_name}")
}

/// A limit's service must exist, and its region when it names one: validation errors (400)
/// otherwise, as in Keystone.
pub async fn check_refs(id: &Identity, service_id: &str, region_id: Option<&str>) -> Result<()> {
    if db::catalog::get_service(&id.db.pool, service_id)
        .await?
        .is_none()
    {
        return Err(IdentityError::validation(format!(
            "Could not find service: {service_id}."
        )));
    }
    if let Some(r) = region_id {
        if db::catalog::get_region(&id.db.pool, r).await?.is_none() {
            return Err(IdentityError::validation(format!(
                "Could not find region: {r}."
            )));
        }
    }
    Ok(())
}

/// Creates the registered limits `ls` together (each passed [`check_refs`]); `Conflict` when
/// one exists for the same service, region and resource.
pub async fn create_registered(id: &Identity, ls: &[RegisteredLimit]) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    for l in ls {
        db::limits::insert_registered(&mut *tx, l)
            .await
            .map_err(conflict_or(
                "registered_limit",
                duplicate_resource(&l.resource_name),
            ))?;
    }
    id.commit_change(tx, vec![]).await
}

/// Which limits (registered or not) a listing returns (every field that is set must match).
#[derive(Debug, Clone, Default)]
pub struct LimitFilter {
    pub service_id: Option<String>,
    pub region_id: Option<String>,
    pub resource_name: Option<String>,
    /// Project limits only: of this project.
    pub project_id: Option<String>,
    /// Project limits only: of this domain.
    pub domain_id: Option<String>,
}

impl LimitFilter {
    fn matches(&self, service_id: &str, region_id: &Option<String>, resource_name: &str) -> bool {
        self.service_id.as_ref().is_none_or(|s| s == service_id)
            && (self.region_id.is_none() || *region_id == self.region_id)
            && self
                .resource_name
                .as_ref()
                .is_none_or(|r| r == resource_name)
    }
}

/// The registered limits matching `f` (its project and domain do not apply).
pub async fn list_registered(id: &Identity, f: &LimitFilter) -> Result<Vec<RegisteredLimit>> {
    Ok(db::limits::list_registered(&id.db.pool)
        .await?
        .into_iter()
        .filter(|l| f.matches(&l.service_id, &l.region_id, &l.resource_name))
        .collect())
}

/// The registered limit `limit_id`; `NotFound` when there is none.
pub async fn get_registered(id: &Identity, limit_id: &str) -> Result<RegisteredLimit> {
    db::limits::get_registered(&id.db.pool, limit_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("registered limit", limit_id))
}

/// Refuses (403) to change the service, region or resource of `l` while project limits use it.
pub async fn check_registered_movable(id: &Identity, l: &RegisteredLimit) -> Result<()> {
    if db::limits::limits_reference(&id.db.pool, l).await? {
        return Err(IdentityError::ForbiddenWithReason(
            "Cannot change the service, region or resource of a registered limit that project limits use.".into(),
        ));
    }
    Ok(())
}

/// Stores `l`, a changed copy of a stored registered limit (a changed service, region or
/// resource passed [`check_registered_movable`]); validation errors for missing references,
/// `Conflict` when another one has the same service, region and resource.
pub async fn update_registered(id: &Identity, l: &RegisteredLimit) -> Result<()> {
    check_refs(id, &l.service_id, l.region_id.as_deref()).await?;
    let mut tx = id.db.begin_write().await?;
    db::limits::update_registered(&mut *tx, l)
        .await
        .map_err(conflict_or(
            "registered_limit",
            duplicate_resource(&l.resource_name),
        ))?;
    id.commit_change(tx, vec![]).await
}

/// Deletes the registered limit `l`; refused (403) while project limits use it.
pub async fn delete_registered(id: &Identity, l: &RegisteredLimit) -> Result<()> {
    if db::limits::limits_reference(&id.db.pool, l).await? {
        return Err(IdentityError::ForbiddenWithReason(
            "Cannot delete a registered limit that project limits use.".into(),
        ));
    }
    let mut tx = id.db.begin_write().await?;
    db::limits::delete_registered(&mut *tx, &l.id).await?;
    id.commit_change(tx, vec![]).await
}

// ---- project and domain limits

/// A reference to a missing project or domain in a limit is a validation error in Keystone.
fn not_found_is_invalid(e: IdentityError) -> IdentityError {
    match e {
        IdentityError::NotFound { .. } => IdentityError::Validation(e.to_string()),
        other => other,
    }
}

/// Checks a new limit: it names exactly one of a project or a domain, which exists, and
/// existing service and region (validation errors otherwise), and a registered limit exists
/// for its service, region and resource (403 otherwise).
pub async fn check_new_limit(id: &Identity, l: &Limit) -> Result<()> {
    if l.project_id.is_some() == l.domain_id.is_some() {
        return Err(IdentityError::validation(
            "A limit names exactly one of project_id or domain_id.",
        ));
    }
    if let Some(p) = &l.project_id {
        super::projects::get(id, p)
            .await
            .map_err(not_found_is_invalid)?;
    }
    if let Some(d) = &l.domain_id {
        super::domains::get(id, d)
            .await
            .map_err(not_found_is_invalid)?;
    }
    check_refs(id, &l.service_id, l.region_id.as_deref()).await?;
    let registered = db::limits::list_registered(&id.db.pool).await?;
    if !registered.iter().any(|r| {
        r.service_id == l.service_id
            && r.region_id == l.region_id
            && r.resource_name == l.resource_name
    }) {
        return Err(IdentityError::ForbiddenWithReason(format!(
            "The service_id {}, region_id {:?} and resource_name {} have no registered limit.",
            l.service_id, l.region_id, l.resource_name
        )));
    }
    Ok(())
}

/// Creates the limits `ls` together (each passed [`check_new_limit`]); `Conflict` when one
/// exists for the same owner, service, region and resource.
pub async fn create_limits(id: &Identity, ls: &[Limit]) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    for l in ls {
        db::limits::insert_limit(&mut *tx, l)
            .await
            .map_err(conflict_or("limit", duplicate_resource(&l.resource_name)))?;
    }
    id.commit_change(tx, vec![]).await
}

/// Whose limits a caller may see.
#[derive(Debug, Clone, Default)]
pub struct LimitViewer {
    /// A system-scoped caller or a cloud admin sees every limit.
    pub cloud_wide: bool,
    /// Otherwise the limits of the caller's project...
    pub project_id: Option<String>,
    /// ...or of its domain.
    pub domain_id: Option<String>,
}

/// The limits `viewer` may see that match `f`.
pub async fn list_limits(
    id: &Identity,
    viewer: &LimitViewer,
    f: &LimitFilter,
) -> Result<Vec<Limit>> {
    Ok(db::limits::list_limits(&id.db.pool)
        .await?
        .into_iter()
        .filter(|l| {
            viewer.cloud_wide
                || (viewer.project_id.is_some() && l.project_id == viewer.project_id)
                || (viewer.domain_id.is_some() && l.domain_id == viewer.domain_id)
        })
        .filter(|l| f.project_id.is_none() || l.project_id == f.project_id)
        .filter(|l| f.domain_id.is_none() || l.domain_id == f.domain_id)
        .filter(|l| f.matches(&l.service_id, &l.region_id, &l.resource_name))
        .collect())
}

/// The limit `limit_id`; `NotFound` when there is none.
pub async fn get_limit(id: &Identity, limit_id: &str) -> Result<Limit> {
    db::limits::get_limit(&id.db.pool, limit_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("limit", limit_id))
}

/// Stores `l`, a changed copy of a stored limit (only its value and description change).
pub async fn update_limit(id: &Identity, l: &Limit) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    db::limits::update_limit(&mut *tx, l).await?;
    id.commit_change(tx, vec![]).await
}

/// Deletes the limit `limit_id`; `NotFound` when there is none.
pub async fn delete_limit(id: &Identity, limit_id: &str) -> Result<()> {
    let l = get_limit(id, limit_id).await?;
    let mut tx = id.db.begin_write().await?;
    db::limits::delete_limit(&mut *tx, &l.id).await?;
    id.commit_change(tx, vec![]).await
}
