//! Flavors and their extra specs: visibility (public, or private with access), listing with
//! Nova's sort keys and marker paging, and the admin writes (create, description, delete,
//! extra specs). Flavor access lists are in `flavor_access.rs`.

use std::collections::BTreeMap;

use crate::db;
use crate::error::{ComputeError, Result};
use crate::model::{Flavor, FlavorFilter};
use crate::ComputeService;

/// Nova's 404 for a flavor.
pub fn not_found(id: &str) -> ComputeError {
    ComputeError::NotFound(format!("Flavor {id} could not be found."))
}

/// Nova's 404 for an extra spec the flavor does not have.
pub fn spec_not_found(flavor_id: &str, key: &str) -> ComputeError {
    ComputeError::NotFound(format!(
        "Flavor {flavor_id} has no extra specs with key {key}."
    ))
}

/// The sort keys Nova accepts for flavor listings.
pub const SORT_KEYS: [&str; 15] = [
    "created_at",
    "description",
    "disabled",
    "ephemeral_gb",
    "flavorid",
    "id",
    "is_public",
    "memory_mb",
    "name",
    "root_gb",
    "rxtx_factor",
    "swap",
    "updated_at",
    "vcpu_weight",
    "vcpus",
];

/// A flavor listing: filters, order and page.
#[derive(Debug, Clone)]
pub struct FlavorQuery {
    pub filter: FlavorFilter,
    /// One of [`SORT_KEYS`] (an unknown key orders by creation, as `id` does).
    pub sort_key: String,
    pub descending: bool,
    /// The page starts after this flavor id (which must be in the listing).
    pub marker: Option<String>,
    pub limit: usize,
    /// Load the extra specs of the flavors of the page.
    pub with_extra_specs: bool,
}

/// A new flavor as an admin asks for it.
#[derive(Debug, Clone)]
pub struct NewFlavor {
    /// Nova's flavorid; a UUID is chosen when none is given.
    pub id: Option<String>,
    pub name: String,
    pub ram: i64,
    pub vcpus: i64,
    pub disk: i64,
    pub ephemeral: i64,
    pub swap: i64,
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub description: Option<String>,
}

fn compare(a: &Flavor, b: &Flavor, key: &str) -> std::cmp::Ordering {
    let c = match key {
        "name" => a.name.cmp(&b.name),
        "memory_mb" => a.ram.cmp(&b.ram),
        "root_gb" => a.disk.cmp(&b.disk),
        "ephemeral_gb" => a.ephemeral.cmp(&b.ephemeral),
        "swap" => a.swap.cmp(&b.swap),
        "vcpus" => a.vcpus.cmp(&b.vcpus),
        "rxtx_factor" => a.rxtx_factor.total_cmp(&b.rxtx_factor),
        "is_public" => a.is_public.cmp(&b.is_public),
        "disabled" => a.disabled.cmp(&b.disabled),
        "description" => a.description.cmp(&b.description),
        "updated_at" => a.updated_at.cmp(&b.updated_at),
        "flavorid" => a.id.cmp(&b.id),
        // Nova's `id` is its row id: creation order.
        _ => a.created_at.cmp(&b.created_at),
    };
    c.then_with(|| a.created_at.cmp(&b.created_at))
        .then_with(|| a.id.cmp(&b.id))
}

impl ComputeService {
    /// The flavor `id` as `project_id` may see it (`None`: a cloud admin, who sees every
    /// flavor): public flavors and private ones the project was given access to, with extra
    /// specs; else Nova's 404.
    pub async fn visible_flavor(&self, id: &str, project_id: Option<&str>) -> Result<Flavor> {
        let mut conn = self.db.pool.acquire().await?;
        db::flavors::get_visible(&mut conn, id, project_id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// One page of the flavors matching `q.filter`, in `q`'s order. 400 when the marker is
    /// not in the listing.
    pub async fn list_flavors(&self, q: &FlavorQuery) -> Result<Vec<Flavor>> {
        let mut conn = self.db.pool.acquire().await?;
        let mut flavors = db::flavors::list(&mut conn, &q.filter).await?;
        flavors.sort_by(|a, b| {
            let c = compare(a, b, &q.sort_key);
            if q.descending {
                c.reverse()
            } else {
                c
            }
        });
        let start =
            match &q.marker {
                None => 0,
                Some(m) => {
                    flavors.iter().position(|f| &f.id == m).ok_or_else(|| {
                        ComputeError::BadRequest(format!("marker [{m}] not found"))
                    })? + 1
                }
            };
        let mut page: Vec<Flavor> = flavors.into_iter().skip(start).take(q.limit).collect();
        if q.with_extra_specs {
            db::flavors::load_extra_specs(&mut conn, &mut page).await?;
        }
        Ok(page)
    }

    /// Creates a flavor; 409 when its id or its name is taken. Returns it as stored.
    pub async fn create_flavor(&self, new: NewFlavor) -> Result<Flavor> {
        let flavor = Flavor {
            id: new.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            name: new.name,
            ram: new.ram,
            vcpus: new.vcpus,
            disk: new.disk,
            ephemeral: new.ephemeral,
            swap: new.swap,
            rxtx_factor: new.rxtx_factor,
            is_public: new.is_public,
            disabled: false,
            description: new.description,
            extra_specs: BTreeMap::new(),
            created_at: ferrostack_store::now_micros(),
            updated_at: None,
        };
        // Both uniqueness checks and the insert in one write transaction: two creates of
        // the same name cannot both pass.
        let mut tx = self.db.begin_write().await?;
        if db::flavors::get(&mut tx, &flavor.id).await?.is_some() {
            return Err(ComputeError::Conflict(format!(
                "Flavor with ID {} already exists.",
                flavor.id
            )));
        }
        if db::flavors::name_exists(&mut tx, &flavor.name).await? {
            return Err(ComputeError::Conflict(format!(
                "Flavor with name {} already exists.",
                flavor.name
            )));
        }
        db::flavors::insert(&mut tx, &flavor).await?;
        tx.commit().await?;
        Ok(flavor)
    }

    /// Sets (or clears) a flavor's description (2.55); 404 for an unknown flavor. Returns the
    /// flavor as stored.
    pub async fn set_flavor_description(
        &self,
        id: &str,
        description: Option<&str>,
    ) -> Result<Flavor> {
        let mut conn = self.db.writer.acquire().await?;
        if !db::flavors::set_description(&mut conn, id, description).await? {
            return Err(not_found(id));
        }
        db::flavors::get(&mut conn, id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// Deletes a flavor (servers keep their flavor snapshot); 404 for an unknown flavor.
    pub async fn delete_flavor(&self, id: &str) -> Result<()> {
        let mut conn = self.db.writer.acquire().await?;
        if !db::flavors::delete(&mut conn, id).await? {
            return Err(not_found(id));
        }
        Ok(())
    }

    /// Adds or replaces extra specs of a flavor, all or none; 404 for an unknown flavor.
    pub async fn set_flavor_extra_specs(
        &self,
        id: &str,
        specs: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        if db::flavors::get(&mut tx, id).await?.is_none() {
            return Err(not_found(id));
        }
        for (k, v) in specs {
            db::flavors::set_extra_spec(&mut tx, id, k, v).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes one extra spec; 404 for an unknown flavor, then for a key it does not have.
    pub async fn delete_flavor_extra_spec(&self, id: &str, key: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        if db::flavors::get(&mut tx, id).await?.is_none() {
            return Err(not_found(id));
        }
        if !db::flavors::delete_extra_spec(&mut tx, id, key).await? {
            return Err(spec_not_found(id, key));
        }
        tx.commit().await?;
        Ok(())
    }
}
