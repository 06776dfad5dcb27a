//! Server groups (`/os-server-groups`): affinity policies the scheduler honours for their
//! members, within the `server_groups` quota.

use crate::db::{quotas, server_groups as db};
use crate::error::{ComputeError, Result};
use crate::model::ServerGroup;
use crate::ComputeService;

/// A server group to create (the API layer checked its name and policy).
#[derive(Debug, Clone)]
pub struct NewServerGroup {
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    /// `affinity`, `anti-affinity`, `soft-affinity` or `soft-anti-affinity`.
    pub policy: String,
    /// The rule of an anti-affinity group (2.64).
    pub max_server_per_host: Option<i64>,
}

/// Nova's InstanceGroupNotFound (404).
fn not_found(id: &str) -> ComputeError {
    ComputeError::NotFound(format!("Instance group {id} could not be found."))
}

impl ComputeService {
    /// A server group, its members reduced to the servers not deleted (what Nova shows).
    pub async fn server_group(&self, id: &str) -> Result<ServerGroup> {
        let mut conn = self.db.pool.acquire().await?;
        let mut g = db::get(&mut conn, id).await?.ok_or_else(|| not_found(id))?;
        let live = db::live_instances(&mut conn, &g.members).await?;
        g.members.retain(|m| live.contains(m));
        Ok(g)
    }

    /// The server groups of `project_id` (None: every project's), from the `offset`th, at
    /// most `limit`; members as in [`ComputeService::server_group`].
    pub async fn list_server_groups(
        &self,
        project_id: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ServerGroup>> {
        let mut conn = self.db.pool.acquire().await?;
        let groups = db::list(&mut conn, project_id).await?;
        let mut page: Vec<ServerGroup> = groups.into_iter().skip(offset).take(limit).collect();
        let members: Vec<String> = page.iter().flat_map(|g| g.members.clone()).collect();
        let live = db::live_instances(&mut conn, &members).await?;
        for g in &mut page {
            g.members.retain(|m| live.contains(m));
        }
        Ok(page)
    }

    /// Creates a server group within the project's and the user's `server_groups` limits
    /// (counted and inserted in one write transaction, so concurrent creates respect them).
    pub async fn create_server_group(&self, new: NewServerGroup) -> Result<ServerGroup> {
        let group = ServerGroup {
            id: uuid::Uuid::new_v4().to_string(),
            name: new.name,
            project_id: new.project_id,
            user_id: new.user_id,
            policy: new.policy,
            max_server_per_host: new.max_server_per_host,
            members: vec![],
            created_at: ferrostack_store::now_micros(),
        };
        let (project, user) = (&group.project_id, &group.user_id);
        let limits = {
            let mut conn = self.db.pool.acquire().await?;
            quotas::limits_for(&mut conn, project, user).await?
        };
        let mut tx = self.db.begin_write().await?;
        let used = quotas::server_group_count(&mut tx, project, None).await?;
        let user_used = quotas::server_group_count(&mut tx, project, Some(user)).await?;
        let over_user = limits
            .user
            .get("server_groups")
            .is_some_and(|&l| l >= 0 && user_used + 1 > l);
        if limits.check("server_groups", used, 1).is_err() || over_user {
            return Err(ComputeError::QuotaExceeded(
                "Quota exceeded, too many server groups.".into(),
            ));
        }
        db::insert(&mut tx, &group).await?;
        tx.commit().await?;
        Ok(group)
    }

    /// Deletes a server group (404 when there is none).
    pub async fn delete_server_group(&self, id: &str) -> Result<()> {
        let mut conn = self.db.writer.acquire().await?;
        if !db::delete(&mut conn, id).await? {
            return Err(not_found(id));
        }
        Ok(())
    }
}
