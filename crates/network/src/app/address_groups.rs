//! Address groups: named sets of CIDRs a security group rule can name as its remote
//! (`remote_address_group_id`), so an allow or deny list is one rule, not one per address.
//! Their addresses change only through `add_addresses`/`remove_addresses` (under the group's
//! row lock); every host filtering with a rule that names the group is woken to reload its
//! nftables set.

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;
use ipnet::IpNet;

use super::{listing_scope, new_id};
use crate::db;
use crate::error::{NetworkError, Result};
use crate::model::AddressGroup;
use crate::NetworkService;

#[derive(Debug, Clone, Default)]
pub struct NewAddressGroup {
    pub project_id: Option<String>,
    pub name: String,
    pub description: String,
    pub addresses: Vec<IpNet>,
}

#[derive(Debug, Clone, Default)]
pub struct AddressGroupChanges {
    pub name: Option<String>,
    pub description: Option<String>,
}

pub fn address_group_not_found(id: &str) -> NetworkError {
    NetworkError::not_found(
        "AddressGroupNotFound",
        format!("Address group {id} could not be found."),
    )
}

/// Sorted, host bits cleared, each once.
fn normalized(addresses: &[IpNet]) -> Vec<IpNet> {
    let mut v: Vec<IpNet> = addresses.iter().map(IpNet::trunc).collect();
    v.sort();
    v.dedup();
    v
}

fn listed(addresses: &[IpNet]) -> String {
    let v: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    format!("[{}]", v.join(", "))
}

impl NetworkService {
    pub fn address_group_visible(g: &AddressGroup, auth: &AuthContext) -> bool {
        auth.is_admin || auth.project_id() == Some(g.project_id.as_str())
    }

    pub async fn find_address_group(&self, id: &str, auth: &AuthContext) -> Result<AddressGroup> {
        let mut conn = self.read().await?;
        match db::address_groups::get(&mut conn, id).await? {
            Some(g) if Self::address_group_visible(&g, auth) => Ok(g),
            _ => Err(address_group_not_found(id)),
        }
    }

    pub async fn list_address_groups(&self, auth: &AuthContext) -> Result<Vec<AddressGroup>> {
        let mut conn = self.read().await?;
        Ok(db::address_groups::list(&mut conn, listing_scope(auth)).await?)
    }

    pub async fn create_address_group(
        &self,
        auth: &AuthContext,
        req: NewAddressGroup,
    ) -> Result<AddressGroup> {
        let project = super::owner_for(auth, req.project_id.as_deref())?;
        let now = now_micros();
        let g = AddressGroup {
            id: new_id(),
            project_id: project,
            name: req.name,
            description: req.description,
            addresses: normalized(&req.addresses),
            revision_number: 1,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.write().await?;
        db::address_groups::insert(&mut tx, &g).await?;
        tx.commit().await?;
        Ok(g)
    }

    pub async fn update_address_group(
        &self,
        id: &str,
        c: AddressGroupChanges,
        if_match: Option<i64>,
    ) -> Result<AddressGroup> {
        self.change_address_group(id, if_match, |g| {
            if let Some(n) = c.name {
                g.name = n;
            }
            if let Some(d) = c.description {
                g.description = d;
            }
            Ok(())
        })
        .await
    }

    /// Adds `addresses`; one already in the group is Neutron's 400 `AddressesAlreadyExist`.
    pub async fn add_addresses(&self, id: &str, addresses: &[IpNet]) -> Result<AddressGroup> {
        let add = normalized(addresses);
        let g = self
            .change_address_group(id, None, |g| {
                let present: Vec<IpNet> = add
                    .iter()
                    .filter(|a| g.addresses.contains(a))
                    .copied()
                    .collect();
                if !present.is_empty() {
                    return Err(NetworkError::bad_request(
                        "AddressesAlreadyExist",
                        format!(
                            "Addresses {} already exist in the address group {}.",
                            listed(&present),
                            g.id
                        ),
                    ));
                }
                g.addresses = normalized(&[g.addresses.clone(), add.clone()].concat());
                Ok(())
            })
            .await?;
        self.wake_address_group(id).await;
        Ok(g)
    }

    /// Removes `addresses`; one not in the group is Neutron's 404 `AddressesNotFound`.
    pub async fn remove_addresses(&self, id: &str, addresses: &[IpNet]) -> Result<AddressGroup> {
        let drop = normalized(addresses);
        let g = self
            .change_address_group(id, None, |g| {
                let missing: Vec<IpNet> = drop
                    .iter()
                    .filter(|a| !g.addresses.contains(a))
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    return Err(NetworkError::not_found(
                        "AddressesNotFound",
                        format!(
                            "Addresses {} not found in the address group {}.",
                            listed(&missing),
                            g.id
                        ),
                    ));
                }
                g.addresses.retain(|a| !drop.contains(a));
                Ok(())
            })
            .await?;
        self.wake_address_group(id).await;
        Ok(g)
    }

    /// Reads, changes and writes the group under its row lock, with a new revision.
    async fn change_address_group(
        &self,
        id: &str,
        if_match: Option<i64>,
        change: impl FnOnce(&mut AddressGroup) -> Result<()>,
    ) -> Result<AddressGroup> {
        let mut tx = self.write().await?;
        db::lock_row(&mut tx, "address_groups", id).await?;
        let mut g = db::address_groups::get(&mut tx, id)
            .await?
            .ok_or_else(|| address_group_not_found(id))?;
        Self::check_revision(if_match, g.revision_number)?;
        change(&mut g)?;
        g.revision_number += 1;
        g.updated_at = now_micros();
        db::address_groups::update(&mut tx, &g).await?;
        tx.commit().await?;
        Ok(g)
    }

    /// Refused while a security group rule names it (`AddressGroupInUse`).
    pub async fn delete_address_group(&self, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        db::address_groups::get(&mut tx, id)
            .await?
            .ok_or_else(|| address_group_not_found(id))?;
        if !db::address_groups::referring_groups(&mut tx, id)
            .await?
            .is_empty()
        {
            return Err(NetworkError::conflict(
                "AddressGroupInUse",
                format!("Address group {id} is in use on one or more security group rules."),
            ));
        }
        db::address_groups::delete(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }
}
