//! Unified limits as other services consume them: a project's limit for a resource, and
//! registering a service's default limits at start.

use crate::db;
use crate::error::Result;
use crate::model::{new_id, RegisteredLimit};
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
