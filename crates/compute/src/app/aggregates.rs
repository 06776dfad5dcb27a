//! Host aggregates: names unique, a host in one availability zone at most (Nova refuses a
//! change that would put a host in two), and placement's aggregates kept in line with
//! Nova's (a host's resource provider is in the aggregates, by uuid, its host is in).

use std::collections::BTreeMap;

use crate::app::services::COMPUTE_BINARY;
use crate::db;
use crate::db::aggregates::AZ_KEY;
use crate::error::{ComputeError, Result};
use crate::model::Aggregate;
use crate::ComputeService;

/// Nova's 404 for an aggregate.
pub fn not_found(id: i64) -> ComputeError {
    ComputeError::NotFound(format!("Aggregate {id} could not be found."))
}

/// Checks a zone name as Nova's schema does: 1 to 255 printable characters, no ':', not
/// starting or ending with whitespace. 400 otherwise, with Nova's messages.
pub fn check_zone_name(zone: &str) -> Result<()> {
    let length = zone.chars().count();
    if length == 0 || length > 255 {
        let what = if length == 0 { "short" } else { "long" };
        return Err(ComputeError::BadRequest(format!(
            "Invalid input for field/attribute availability_zone. Value: {zone}. '{zone}' is \
             too {what}"
        )));
    }
    let edge = |c: Option<char>| c.is_some_and(char::is_whitespace);
    if zone.contains(':')
        || zone.chars().any(char::is_control)
        || edge(zone.chars().next())
        || edge(zone.chars().last())
    {
        return Err(ComputeError::BadRequest(
            "An invalid 'name' value was provided. The name must be: printable characters \
             except :.Can not start or end with whitespace."
                .into(),
        ));
    }
    Ok(())
}

/// Nova refuses to put a host in two different zones: with the aggregate's zone set to
/// `zone`, every host of `hosts` must have no other zone through another aggregate. The
/// error is Nova's reason, which callers wrap in their own message.
fn check_zone_conflict(
    all: &[Aggregate],
    agg_id: i64,
    hosts: &[String],
    zone: Option<&str>,
) -> std::result::Result<(), String> {
    let Some(zone) = zone else { return Ok(()) };
    let mut others: Vec<String> = all
        .iter()
        .filter(|a| a.id != agg_id && a.hosts.iter().any(|h| hosts.contains(h)))
        .filter_map(|a| a.availability_zone.clone())
        .filter(|z| z != zone)
        .collect();
    others.sort();
    others.dedup();
    if others.is_empty() {
        Ok(())
    } else {
        // Python's repr of a list of strings, as Nova's message shows it.
        let list: Vec<String> = others.iter().map(|z| format!("'{z}'")).collect();
        Err(format!(
            "One or more hosts already in availability zone(s) [{}]",
            list.join(", ")
        ))
    }
}

/// What an aggregate update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AggregateUpdate {
    pub name: Option<String>,
    /// `Some(None)` clears the zone.
    pub availability_zone: Option<Option<String>>,
}

impl ComputeService {
    /// Every aggregate with its hosts and metadata, by id.
    pub async fn aggregates(&self) -> Result<Vec<Aggregate>> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::aggregates::all(&mut conn).await?)
    }

    /// The aggregate `id`, or Nova's 404.
    pub async fn aggregate(&self, id: i64) -> Result<Aggregate> {
        let mut conn = self.db.pool.acquire().await?;
        db::aggregates::get(&mut conn, id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// Creates an empty aggregate, in zone `zone` if given; 409 for a name in use.
    pub async fn create_aggregate(&self, name: &str, zone: Option<&str>) -> Result<Aggregate> {
        let mut tx = self.db.begin_write().await?;
        if db::aggregates::name_taken(&mut tx, name, None).await? {
            return Err(ComputeError::Conflict(format!(
                "Aggregate {name} already exists."
            )));
        }
        let a = db::aggregates::insert(&mut tx, name, zone).await?;
        tx.commit().await?;
        Ok(a)
    }

    /// Renames an aggregate and/or changes its zone: 404, 409 for a name in use, 400 when
    /// the new zone would put one of its hosts in two zones. Returns it after the change.
    pub async fn update_aggregate(&self, id: i64, change: &AggregateUpdate) -> Result<Aggregate> {
        let mut tx = self.db.begin_write().await?;
        let all = db::aggregates::all(&mut tx).await?;
        let agg = all
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(|| not_found(id))?;
        if let Some(name) = &change.name {
            if db::aggregates::name_taken(&mut tx, name, Some(id)).await? {
                return Err(ComputeError::Conflict(format!(
                    "Aggregate {name} already exists."
                )));
            }
            db::aggregates::rename(&mut tx, id, name).await?;
        }
        if let Some(az) = &change.availability_zone {
            check_zone_conflict(&all, id, &agg.hosts, az.as_deref()).map_err(|reason| {
                ComputeError::BadRequest(format!("Cannot update aggregate {id}. Reason: {reason}."))
            })?;
            db::aggregates::set_metadata(&mut tx, id, AZ_KEY, az.as_deref()).await?;
        }
        let a = db::aggregates::get(&mut tx, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        tx.commit().await?;
        Ok(a)
    }

    /// Deletes an aggregate; 404, and 400 while it still has hosts.
    pub async fn delete_aggregate(&self, id: i64) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let a = db::aggregates::get(&mut tx, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if !a.hosts.is_empty() {
            return Err(ComputeError::BadRequest(format!(
                "Cannot remove host from aggregate {id}. Reason: Host aggregate is not empty."
            )));
        }
        db::aggregates::delete(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds the compute host `host` to the aggregate (404 for an unknown host or aggregate,
    /// 409 when it is there already, 400 when that would put it in two zones), then moves
    /// its resource provider into the matching placement aggregates.
    pub async fn aggregate_add_host(&self, id: i64, host: &str) -> Result<Aggregate> {
        let mut tx = self.db.begin_write().await?;
        if db::hosts::service_by_host(&mut tx, host, COMPUTE_BINARY)
            .await?
            .is_none()
        {
            return Err(ComputeError::NotFound(format!(
                "Compute host {host} could not be found."
            )));
        }
        let all = db::aggregates::all(&mut tx).await?;
        let agg = all
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(|| not_found(id))?;
        if agg.hosts.iter().any(|h| h == host) {
            return Err(ComputeError::Conflict(format!(
                "Aggregate {id} already has host {host}."
            )));
        }
        check_zone_conflict(
            &all,
            id,
            &[host.to_string()],
            agg.availability_zone.as_deref(),
        )
        .map_err(|reason| {
            ComputeError::BadRequest(format!(
                "Cannot add host to aggregate {id}. Reason: {reason}."
            ))
        })?;
        db::aggregates::add_host(&mut tx, id, host).await?;
        tx.commit().await?;
        self.sync_placement_aggregates(host).await?;
        self.aggregate(id).await
    }

    /// Removes `host` from the aggregate (404 for an unknown aggregate, then for a host that
    /// is not a compute host or not in it), then updates its placement aggregates.
    pub async fn aggregate_remove_host(&self, id: i64, host: &str) -> Result<Aggregate> {
        let gone =
            || ComputeError::NotFound(format!("Cannot remove host {host} in aggregate {id}"));
        let mut tx = self.db.begin_write().await?;
        if db::aggregates::get(&mut tx, id).await?.is_none() {
            return Err(not_found(id));
        }
        if db::hosts::service_by_host(&mut tx, host, COMPUTE_BINARY)
            .await?
            .is_none()
        {
            return Err(gone());
        }
        if !db::aggregates::remove_host(&mut tx, id, host).await? {
            return Err(gone());
        }
        tx.commit().await?;
        self.sync_placement_aggregates(host).await?;
        self.aggregate(id).await
    }

    /// Sets (`Some`) or removes (`None`) metadata keys of the aggregate. The
    /// `availability_zone` key is its zone: checked as a zone name and for hosts that would
    /// end up in two zones (400). 404 for an unknown aggregate.
    pub async fn set_aggregate_metadata(
        &self,
        id: i64,
        meta: &BTreeMap<String, Option<String>>,
    ) -> Result<Aggregate> {
        let mut tx = self.db.begin_write().await?;
        let all = db::aggregates::all(&mut tx).await?;
        let agg = all
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(|| not_found(id))?;
        if let Some(az) = meta.get(AZ_KEY) {
            if let Some(z) = az {
                check_zone_name(z)?;
            }
            check_zone_conflict(&all, id, &agg.hosts, az.as_deref()).map_err(|reason| {
                ComputeError::BadRequest(format!(
                    "Cannot update metadata of aggregate {id}. Reason: {reason}."
                ))
            })?;
        }
        for (k, v) in meta {
            db::aggregates::set_metadata(&mut tx, id, k, v.as_deref()).await?;
        }
        tx.commit().await?;
        self.aggregate(id).await
    }

    /// Puts the host's resource provider in exactly the placement aggregates of the Nova
    /// aggregates the host belongs to (Nova does this on add/remove host). A host without a
    /// compute node yet has no provider; its agent syncs aggregates when it registers.
    async fn sync_placement_aggregates(&self, host: &str) -> Result<()> {
        let mut conn = self.db.pool.acquire().await?;
        let Some(node) = db::hosts::node_by_host(&mut conn, host).await? else {
            return Ok(());
        };
        let uuids: Vec<String> = db::aggregates::all(&mut conn)
            .await?
            .into_iter()
            .filter(|a| a.hosts.iter().any(|h| h == host))
            .map(|a| a.uuid)
            .collect();
        drop(conn);
        self.placement
            .set_provider_aggregates(&node.uuid, &uuids)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(id: i64, zone: Option<&str>, hosts: &[&str]) -> Aggregate {
        Aggregate {
            id,
            uuid: format!("u{id}"),
            name: format!("a{id}"),
            availability_zone: zone.map(str::to_string),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            metadata: BTreeMap::new(),
            created_at: 0,
            updated_at: None,
        }
    }

    #[test]
    fn a_host_is_in_one_zone_at_most() {
        let all = [agg(1, Some("az1"), &["h1"]), agg(2, Some("az2"), &["h2"])];
        let hosts = ["h1".to_string()];
        assert_eq!(
            check_zone_conflict(&all, 3, &hosts, Some("az3")),
            Err("One or more hosts already in availability zone(s) ['az1']".to_string())
        );
        assert_eq!(check_zone_conflict(&all, 3, &hosts, Some("az1")), Ok(()));
        assert_eq!(check_zone_conflict(&all, 1, &hosts, Some("other")), Ok(()));
        assert_eq!(check_zone_conflict(&all, 3, &hosts, None), Ok(()));
    }

    #[test]
    fn zone_names_follow_novas_schema() {
        assert!(check_zone_name("az-1").is_ok());
        for bad in ["", "a:b", " az", "az ", "a\u{7}z"] {
            assert!(check_zone_name(bad).is_err(), "{bad:?}");
        }
        let err = check_zone_name("").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Invalid input for field/attribute availability_zone. Value: . '' is too short")
        );
    }
}
