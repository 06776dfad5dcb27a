//! Subnet pools: prefixes a project's subnets take their CIDRs from (`subnetpool_id`, or the
//! default pool of an IP version), with prefix-length bounds.

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;
use ipnet::IpNet;

use super::{listing_scope, new_id};
use crate::db;
use crate::error::{NetworkError, Result};
use crate::ipam;
use crate::model::SubnetPool;
use crate::NetworkService;

/// A subnet's request for a CIDR from a pool.
#[derive(Debug, Clone, Default)]
pub struct PoolRequest {
    /// `None`: the default pool of the subnet's IP version.
    pub id: Option<String>,
    pub prefixlen: Option<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct NewSubnetPool {
    pub project_id: Option<String>,
    pub name: String,
    pub description: String,
    pub prefixes: Vec<IpNet>,
    pub default_prefixlen: Option<u8>,
    pub min_prefixlen: Option<u8>,
    pub max_prefixlen: Option<u8>,
    pub shared: bool,
    pub is_default: bool,
    pub default_quota: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct SubnetPoolChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub prefixes: Option<Vec<IpNet>>,
    pub default_prefixlen: Option<u8>,
    pub min_prefixlen: Option<u8>,
    pub max_prefixlen: Option<u8>,
    pub is_default: Option<bool>,
    pub default_quota: Option<Option<i64>>,
}

pub fn subnetpool_not_found(id: &str) -> NetworkError {
    NetworkError::not_found(
        "SubnetPoolNotFound",
        format!("Subnet pool {id} could not be found."),
    )
}

fn invalid_pool(msg: impl std::fmt::Display) -> NetworkError {
    NetworkError::bad_request(
        "IllegalSubnetPoolPrefixBounds",
        format!("Illegal prefix bounds: {msg}."),
    )
}

/// Checks a pool's prefixes and bounds (all of one IP version, min <= default <= max, each
/// prefix no longer than max).
fn check_pool(p: &SubnetPool) -> Result<()> {
    if p.prefixes.is_empty() {
        return Err(NetworkError::invalid_attr(
            "prefixes",
            "a subnet pool needs at least one prefix",
        ));
    }
    let max_len = if p.ip_version == 4 { 32 } else { 128 };
    if p.prefixes
        .iter()
        .any(|x| x.addr().is_ipv4() != (p.ip_version == 4))
    {
        return Err(NetworkError::bad_request(
            "PrefixVersionMismatch",
            "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
        ));
    }
    if !(p.min_prefixlen <= p.default_prefixlen
        && p.default_prefixlen <= p.max_prefixlen
        && p.max_prefixlen <= max_len)
    {
        return Err(invalid_pool(format!(
            "min_prefixlen {} <= default_prefixlen {} <= max_prefixlen {} <= {max_len}",
            p.min_prefixlen, p.default_prefixlen, p.max_prefixlen
        )));
    }
    Ok(())
}

impl NetworkService {
    pub fn subnetpool_visible(p: &SubnetPool, auth: &AuthContext) -> bool {
        auth.is_admin || p.shared || auth.project_id() == Some(p.project_id.as_str())
    }

    pub async fn find_subnetpool(&self, id: &str, auth: &AuthContext) -> Result<SubnetPool> {
        let mut conn = self.read().await?;
        match db::subnetpools::get(&mut conn, id).await? {
            Some(p) if Self::subnetpool_visible(&p, auth) => Ok(p),
            _ => Err(subnetpool_not_found(id)),
        }
    }

    pub async fn list_subnetpools(&self, auth: &AuthContext) -> Result<Vec<SubnetPool>> {
        let mut conn = self.read().await?;
        Ok(db::subnetpools::list(&mut conn, listing_scope(auth)).await?)
    }

    pub async fn create_subnetpool(
        &self,
        auth: &AuthContext,
        req: NewSubnetPool,
    ) -> Result<SubnetPool> {
        let project = super::owner_for(auth, req.project_id.as_deref())?;
        self.create_subnetpool_in(project, req).await
    }

    /// Creates a subnet pool of `project` (the caller is already authorized).
    pub(crate) async fn create_subnetpool_in(
        &self,
        project: String,
        req: NewSubnetPool,
    ) -> Result<SubnetPool> {
        let ip_version = match req.prefixes.first() {
            Some(IpNet::V6(_)) => 6,
            _ => 4,
        };
        let min = req
            .min_prefixlen
            .unwrap_or(if ip_version == 4 { 8 } else { 64 });
        let now = now_micros();
        let p = SubnetPool {
            id: new_id(),
            project_id: project.clone(),
            name: req.name,
            description: req.description,
            ip_version,
            prefixes: req.prefixes.iter().map(IpNet::trunc).collect(),
            default_prefixlen: req.default_prefixlen.unwrap_or(min),
            min_prefixlen: min,
            max_prefixlen: req
                .max_prefixlen
                .unwrap_or(if ip_version == 4 { 32 } else { 128 }),
            shared: req.shared,
            is_default: req.is_default,
            default_quota: req.default_quota,
            revision_number: 1,
            created_at: now,
            updated_at: now,
            tags: Vec::new(),
        };
        check_pool(&p)?;
        let mut tx = self.write().await?;
        self.check_quota(&mut tx, &project, "subnetpool").await?;
        if p.is_default {
            check_one_default(&mut tx, &p).await?;
        }
        db::subnetpools::insert(&mut tx, &p).await?;
        tx.commit().await?;
        Ok(p)
    }

    pub async fn update_subnetpool(
        &self,
        id: &str,
        c: SubnetPoolChanges,
        if_match: Option<i64>,
    ) -> Result<SubnetPool> {
        let mut tx = self.write().await?;
        let mut p = db::subnetpools::get(&mut tx, id)
            .await?
            .ok_or_else(|| subnetpool_not_found(id))?;
        Self::check_revision(if_match, p.revision_number)?;
        if let Some(v) = c.name {
            p.name = v;
        }
        if let Some(v) = c.description {
            p.description = v;
        }
        if let Some(prefixes) = c.prefixes {
            let new: Vec<IpNet> = prefixes.iter().map(IpNet::trunc).collect();
            // Prefixes may grow, never shrink: every old one stays covered.
            if let Some(lost) = p
                .prefixes
                .iter()
                .find(|old| !new.iter().any(|n| n.contains(*old)))
            {
                return Err(NetworkError::bad_request(
                    "IllegalSubnetPoolPrefixUpdate",
                    format!("Illegal update to prefixes: {lost} is no longer covered; prefixes can only be added."),
                ));
            }
            p.prefixes = new;
        }
        if let Some(v) = c.min_prefixlen {
            p.min_prefixlen = v;
        }
        if let Some(v) = c.max_prefixlen {
            p.max_prefixlen = v;
        }
        if let Some(v) = c.default_prefixlen {
            p.default_prefixlen = v;
        }
        if let Some(v) = c.is_default {
            p.is_default = v;
        }
        if let Some(v) = c.default_quota {
            p.default_quota = v;
        }
        check_pool(&p)?;
        if p.is_default {
            check_one_default(&mut tx, &p).await?;
        }
        p.revision_number += 1;
        p.updated_at = now_micros();
        db::subnetpools::update(&mut tx, &p).await?;
        tx.commit().await?;
        Ok(p)
    }

    pub async fn delete_subnetpool(&self, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        db::subnetpools::get(&mut tx, id)
            .await?
            .ok_or_else(|| subnetpool_not_found(id))?;
        if !db::subnetpools::subnet_cidrs(&mut tx, id).await?.is_empty() {
            return Err(NetworkError::conflict(
                "SubnetPoolInUse",
                format!("Unable to complete operation on subnet pool {id}. Two or more concurrent subnets allocated."),
            ));
        }
        db::subnetpools::delete(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The CIDR a new subnet of `project` takes from a pool: the one asked for, if inside
    /// the pool and free, else the first free block of the asked (or default) length.
    pub(crate) async fn cidr_from_pool(
        &self,
        tx: &mut db::Conn,
        project: &str,
        ip_version: u8,
        asked: Option<IpNet>,
        req: &PoolRequest,
    ) -> Result<(IpNet, String)> {
        let pool = match &req.id {
            Some(id) => db::subnetpools::get(tx, id)
                .await?
                .filter(|p| p.shared || p.project_id == project || project.is_empty())
                .ok_or_else(|| subnetpool_not_found(id))?,
            None => db::subnetpools::list(tx, None)
                .await?
                .into_iter()
                .find(|p| p.is_default && p.ip_version == ip_version)
                .ok_or_else(|| {
                    NetworkError::bad_request(
                        "BadRequest",
                        format!("Bad subnets request: no default subnet pool for IPv{ip_version} exists."),
                    )
                })?,
        };
        db::lock_row(tx, "subnetpools", &pool.id).await?;
        let used: Vec<IpNet> = db::subnetpools::subnet_cidrs(tx, &pool.id)
            .await?
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect();
        if let Some(c) = asked {
            if !pool.prefixes.iter().any(|p| p.contains(&c)) {
                return Err(NetworkError::bad_request(
                    "BadRequest",
                    format!(
                        "Bad subnets request: cidr {c} is not in subnet pool {}.",
                        pool.id
                    ),
                ));
            }
            if c.prefix_len() < pool.min_prefixlen || c.prefix_len() > pool.max_prefixlen {
                return Err(invalid_pool(format!(
                    "prefix length {} is outside the pool's {}-{}",
                    c.prefix_len(),
                    pool.min_prefixlen,
                    pool.max_prefixlen
                )));
            }
            if used.iter().any(|u| ipam::overlaps(u, &c)) {
                return Err(NetworkError::conflict(
                    "SubnetAllocationError",
                    format!(
                        "Failed to allocate subnet: cidr {c} overlaps a subnet of pool {}.",
                        pool.id
                    ),
                ));
            }
            return Ok((c, pool.id));
        }
        let len = req.prefixlen.unwrap_or(pool.default_prefixlen);
        if len < pool.min_prefixlen || len > pool.max_prefixlen {
            return Err(invalid_pool(format!(
                "prefixlen {len} is outside the pool's {}-{}",
                pool.min_prefixlen, pool.max_prefixlen
            )));
        }
        for prefix in &pool.prefixes {
            if prefix.prefix_len() > len {
                continue;
            }
            let Ok(blocks) = prefix.subnets(len) else {
                continue;
            };
            for b in blocks {
                if !used.iter().any(|u| ipam::overlaps(u, &b)) {
                    return Ok((b, pool.id));
                }
            }
        }
        Err(NetworkError::conflict(
            "SubnetAllocationError",
            format!("Failed to allocate subnet: Insufficient prefix space to allocate subnet size /{len}."),
        ))
    }
}

async fn check_one_default(conn: &mut db::Conn, p: &SubnetPool) -> Result<()> {
    let all = db::subnetpools::list(conn, None).await?;
    if let Some(other) = all
        .iter()
        .find(|o| o.is_default && o.id != p.id && o.ip_version == p.ip_version)
    {
        return Err(NetworkError::bad_request(
            "BadRequest",
            format!("Invalid input for operation: A default subnetpool for this IP family has already been set ({}).", other.id),
        ));
    }
    Ok(())
}
