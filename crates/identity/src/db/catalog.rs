//! Regions, services and endpoints.

use ferrostack_store::sqlx::{self, any::AnyRow, Any, Executor, Row};

use super::{flag, get_bool, DbResult};
use crate::model::{extra_from_text, extra_to_text, Endpoint, Region, Service};

fn region_from_row(r: &AnyRow) -> DbResult<Region> {
    Ok(Region {
        id: r.try_get("id")?,
        description: r.try_get("description")?,
        parent_region_id: r.try_get("parent_region_id")?,
        extra: extra_from_text(&r.try_get::<String, _>("extra")?),
    })
}

fn service_from_row(r: &AnyRow) -> DbResult<Service> {
    Ok(Service {
        id: r.try_get("id")?,
        service_type: r.try_get("type")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        enabled: get_bool(r, "enabled")?,
        extra: extra_from_text(&r.try_get::<String, _>("extra")?),
    })
}

fn endpoint_from_row(r: &AnyRow) -> DbResult<Endpoint> {
    Ok(Endpoint {
        id: r.try_get("id")?,
        service_id: r.try_get("service_id")?,
        region_id: r.try_get("region_id")?,
        interface: r.try_get("interface")?,
        url: r.try_get("url")?,
        enabled: get_bool(r, "enabled")?,
        extra: extra_from_text(&r.try_get::<String, _>("extra")?),
    })
}

// ---- regions

pub async fn insert_region<'e, E: Executor<'e, Database = Any>>(ex: E, r: &Region) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO regions (id, description, parent_region_id, extra) VALUES ($1, $2, $3, $4)",
    )
    .bind(&r.id)
    .bind(&r.description)
    .bind(&r.parent_region_id)
    .bind(extra_to_text(&r.extra))
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn update_region<'e, E: Executor<'e, Database = Any>>(ex: E, r: &Region) -> DbResult<()> {
    sqlx::query(
        "UPDATE regions SET description = $2, parent_region_id = $3, extra = $4 WHERE id = $1",
    )
    .bind(&r.id)
    .bind(&r.description)
    .bind(&r.parent_region_id)
    .bind(extra_to_text(&r.extra))
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn get_region<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    id: &str,
) -> DbResult<Option<Region>> {
    sqlx::query("SELECT id, description, parent_region_id, extra FROM regions WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(region_from_row)
        .transpose()
}

pub async fn list_regions<'e, E: Executor<'e, Database = Any>>(ex: E) -> DbResult<Vec<Region>> {
    sqlx::query("SELECT id, description, parent_region_id, extra FROM regions ORDER BY id")
        .fetch_all(ex)
        .await?
        .iter()
        .map(region_from_row)
        .collect()
}

pub async fn delete_region<'e, E: Executor<'e, Database = Any>>(ex: E, id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM regions WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

// ---- services

pub async fn insert_service<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    s: &Service,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO services (id, type, name, description, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&s.id)
    .bind(&s.service_type)
    .bind(&s.name)
    .bind(&s.description)
    .bind(flag(s.enabled))
    .bind(extra_to_text(&s.extra))
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn update_service<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    s: &Service,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE services SET type = $2, name = $3, description = $4, enabled = $5, extra = $6 WHERE id = $1",
    )
    .bind(&s.id)
    .bind(&s.service_type)
    .bind(&s.name)
    .bind(&s.description)
    .bind(flag(s.enabled))
    .bind(extra_to_text(&s.extra))
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn get_service<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    id: &str,
) -> DbResult<Option<Service>> {
    sqlx::query("SELECT id, type, name, description, enabled, extra FROM services WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(service_from_row)
        .transpose()
}

pub async fn list_services<'e, E: Executor<'e, Database = Any>>(ex: E) -> DbResult<Vec<Service>> {
    sqlx::query(
        "SELECT id, type, name, description, enabled, extra FROM services ORDER BY type, id",
    )
    .fetch_all(ex)
    .await?
    .iter()
    .map(service_from_row)
    .collect()
}

pub async fn delete_service<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    id: &str,
) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM services WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

// ---- endpoints

pub async fn insert_endpoint<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    e: &Endpoint,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO endpoints (id, service_id, region_id, interface, url, enabled, extra) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&e.id)
    .bind(&e.service_id)
    .bind(&e.region_id)
    .bind(&e.interface)
    .bind(&e.url)
    .bind(flag(e.enabled))
    .bind(extra_to_text(&e.extra))
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn update_endpoint<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    e: &Endpoint,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE endpoints SET service_id = $2, region_id = $3, interface = $4, url = $5, enabled = $6, \
         extra = $7 WHERE id = $1",
    )
    .bind(&e.id)
    .bind(&e.service_id)
    .bind(&e.region_id)
    .bind(&e.interface)
    .bind(&e.url)
    .bind(flag(e.enabled))
    .bind(extra_to_text(&e.extra))
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn get_endpoint<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    id: &str,
) -> DbResult<Option<Endpoint>> {
    sqlx::query(
        "SELECT id, service_id, region_id, interface, url, enabled, extra FROM endpoints WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(ex)
    .await?
    .as_ref()
    .map(endpoint_from_row)
    .transpose()
}

pub async fn list_endpoints<'e, E: Executor<'e, Database = Any>>(ex: E) -> DbResult<Vec<Endpoint>> {
    sqlx::query(
        "SELECT id, service_id, region_id, interface, url, enabled, extra FROM endpoints ORDER BY service_id, interface",
    )
    .fetch_all(ex)
    .await?
    .iter()
    .map(endpoint_from_row)
    .collect()
}

pub async fn delete_endpoint<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    id: &str,
) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM endpoints WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}
