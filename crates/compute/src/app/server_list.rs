//! Server listings (`GET /servers` and `/servers/detail`): the plain listing pages in SQL;
//! a filtered or sorted one reads the scope's instances and filters in memory, as Nova's
//! filters (regex names, statuses, tags) are not all SQL.

use std::collections::HashMap;

use crate::db::instances;
use crate::error::{ComputeError, Result};
use crate::instance::{Fault, Instance};
use crate::state::VmState;
use crate::ComputeService;

/// What a listing asks for. The API layer parsed the query and decided the scope (after
/// its all_tenants policy).
#[derive(Debug, Clone, Default)]
pub struct ServerQuery {
    /// The project whose servers are listed; None lists every project's.
    pub project: Option<String>,
    /// A cloud admin lists: the host filter applies (others' is ignored, as Nova drops it).
    pub admin: bool,
    pub filters: ServerFilters,
    /// The server the page starts after.
    pub marker: Option<String>,
    pub limit: usize,
    /// Full rows (`/servers/detail`) rather than ids and names.
    pub detailed: bool,
}

/// Nova's list filters; any of them set makes the listing a filtered one.
#[derive(Debug, Clone, Default)]
pub struct ServerFilters {
    /// A regular expression the display name must match.
    pub name: Option<String>,
    /// The API status (`ACTIVE`, `SHUTOFF`, ...), any case.
    pub status: Option<String>,
    pub host: Option<String>,
    pub flavor: Option<String>,
    /// An image id or URL.
    pub image: Option<String>,
    pub reservation_id: Option<String>,
    pub availability_zone: Option<String>,
    pub locked: Option<bool>,
    /// Regular expressions one of the server's IPv4 / IPv6 addresses must match.
    pub ip: Option<String>,
    pub ip6: Option<String>,
    /// Changed at or after (microseconds); includes deleted servers.
    pub changes_since: Option<i64>,
    /// Deleted servers only (admins).
    pub deleted: bool,
    pub tags: Option<Vec<String>>,
    pub tags_any: Option<Vec<String>>,
    pub not_tags: Option<Vec<String>>,
    pub not_tags_any: Option<Vec<String>>,
    pub sort: Option<Sort>,
}

/// A listing's order (`sort_key`, `sort_dir`).
#[derive(Debug, Clone)]
pub struct Sort {
    /// `display_name`/`name`, `created_at`, `updated_at` or `uuid`; others sort by
    /// `created_at`.
    pub key: String,
    pub descending: bool,
}

impl ServerFilters {
    fn any(&self) -> bool {
        self.deleted
            || self.name.is_some()
            || self.ip.is_some()
            || self.ip6.is_some()
            || self.status.is_some()
            || self.host.is_some()
            || self.flavor.is_some()
            || self.image.is_some()
            || self.reservation_id.is_some()
            || self.availability_zone.is_some()
            || self.locked.is_some()
            || self.changes_since.is_some()
            || self.has_tag_filter()
            || self.sort.is_some()
    }

    fn has_tag_filter(&self) -> bool {
        self.tags.is_some()
            || self.tags_any.is_some()
            || self.not_tags.is_some()
            || self.not_tags_any.is_some()
    }
}

/// One page of a listing.
#[derive(Debug)]
pub struct ServerPage {
    pub servers: PageServers,
    /// More servers follow this page.
    pub more: bool,
}

#[derive(Debug)]
pub enum PageServers {
    /// (id, name) of each server: all a plain `GET /servers` shows.
    Names(Vec<(String, String)>),
    /// Whole servers (with metadata and tags when detailed), and the latest fault of those
    /// in ERROR when detailed.
    Instances(Vec<Instance>, HashMap<String, Fault>),
}

impl PageServers {
    /// The id of the page's last server (the next page's marker).
    pub fn last_id(&self) -> Option<&str> {
        match self {
            PageServers::Names(rows) => rows.last().map(|(id, _)| id.as_str()),
            PageServers::Instances(list, _) => list.last().map(|i| i.uuid.as_str()),
        }
    }
}

impl ComputeService {
    /// One page of servers. The plain listing (no filter, `openstack server list [--long]`)
    /// orders, skips to the marker and limits in SQL, so a page reads only its own rows
    /// however many servers exist. A marker that is not in the listing's scope is a 400.
    pub async fn list_servers(&self, q: &ServerQuery) -> Result<ServerPage> {
        let mut conn = self.db.pool.acquire().await?;
        let scope = q.project.as_deref();
        let limit = q.limit;
        let plain = !q.filters.any();
        let after = match &q.marker {
            Some(m) if plain => Some(
                instances::get(&mut conn, m, false)
                    .await?
                    .filter(|i| scope.is_none_or(|p| i.project_id == p))
                    .map(|i| (i.created_at, i.uuid))
                    .ok_or_else(|| bad_marker(m))?,
            ),
            _ => None,
        };
        let after = after.as_ref().map(|(c, u)| (*c, u.as_str()));
        if plain && !q.detailed {
            let mut rows =
                instances::list_page_names(&mut conn, scope, after, Some(limit + 1)).await?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            return Ok(ServerPage {
                servers: PageServers::Names(rows),
                more,
            });
        }
        let (mut page, more) = if plain {
            let mut rows = instances::list_page(&mut conn, scope, after, Some(limit + 1)).await?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            (rows, more)
        } else {
            filtered_page(&mut conn, q).await?
        };
        if q.detailed && !plain {
            // Metadata and tags of the page only (tag filters may have loaded tags already;
            // the plain page came with them).
            for i in &mut page {
                i.tags.clear();
            }
            instances::load_children(&mut conn, &mut page).await?;
        }
        let faults = if q.detailed {
            let ids: Vec<&str> = page
                .iter()
                .filter(|i| i.vm_state == VmState::Error)
                .map(|i| i.uuid.as_str())
                .collect();
            instances::latest_faults(&mut conn, &ids).await?
        } else {
            HashMap::new()
        };
        Ok(ServerPage {
            servers: PageServers::Instances(page, faults),
            more,
        })
    }
}

fn bad_marker(m: &str) -> ComputeError {
    ComputeError::BadRequest(format!("marker [{m}] not found"))
}

/// The page of a filtered or sorted listing (without metadata, and with tags only when a
/// tag filter asked for them), and whether more instances follow it.
async fn filtered_page(
    conn: &mut crate::db::Conn,
    q: &ServerQuery,
) -> Result<(Vec<Instance>, bool)> {
    let f = &q.filters;
    let mut all = instances::list(
        conn,
        q.project.as_deref(),
        f.changes_since.is_some() || f.deleted,
    )
    .await?;
    if f.has_tag_filter() {
        instances::load_children(conn, &mut all).await?;
    }
    let name_re = match &f.name {
        Some(n) => Some(
            regex::Regex::new(n)
                .map_err(|_| ComputeError::BadRequest(format!("Invalid filter name={n}")))?,
        ),
        None => None,
    };
    let address_re = |filter: &Option<String>, key: &str| match filter {
        Some(p) => regex::Regex::new(p)
            .map(Some)
            .map_err(|_| ComputeError::BadRequest(format!("Invalid filter {key}={p}"))),
        None => Ok(None),
    };
    let (ip_re, ip6_re) = (address_re(&f.ip, "ip")?, address_re(&f.ip6, "ip6")?);
    let has_address = |i: &Instance, re: &regex::Regex, version: u64| {
        i.addresses
            .as_object()
            .into_iter()
            .flat_map(|nets| nets.values())
            .filter_map(|l| l.as_array())
            .flatten()
            .filter(|a| a["version"].as_u64() == Some(version))
            .filter_map(|a| a["addr"].as_str())
            .any(|a| re.is_match(a))
    };
    let status = f.status.as_ref().map(|s| s.to_ascii_uppercase());
    let has = |i: &Instance, t: &String| i.tags.iter().any(|x| x == t);
    all.retain(|i| {
        name_re.as_ref().is_none_or(|r| r.is_match(&i.display_name))
            && ip_re.as_ref().is_none_or(|r| has_address(i, r, 4))
            && ip6_re.as_ref().is_none_or(|r| has_address(i, r, 6))
            && status
                .as_deref()
                .is_none_or(|s| crate::state::status(i.vm_state, i.task_state) == s)
            // An admin filter: Nova drops it silently for others.
            && f.host
                .as_ref()
                .is_none_or(|h| !q.admin || i.host.as_deref() == Some(h.as_str()))
            && f.flavor.as_ref().is_none_or(|fl| i.flavor.id == *fl)
            && f.image
                .as_ref()
                .is_none_or(|im| im.rsplit('/').next() == Some(i.image_ref.as_str()))
            && f.reservation_id
                .as_ref()
                .is_none_or(|r| i.reservation_id == *r)
            && f.availability_zone
                .as_ref()
                .is_none_or(|z| i.availability_zone.as_deref() == Some(z.as_str()))
            && f.locked.is_none_or(|l| l == i.locked)
            && f.changes_since.is_none_or(|t| i.updated_at.unwrap_or(i.created_at) >= t)
            && (!f.deleted || i.deleted)
            && f.tags.as_ref().is_none_or(|t| t.iter().all(|t| has(i, t)))
            && f.tags_any.as_ref().is_none_or(|t| t.iter().any(|t| has(i, t)))
            && f.not_tags.as_ref().is_none_or(|t| !t.iter().all(|t| has(i, t)))
            && f.not_tags_any.as_ref().is_none_or(|t| !t.iter().any(|t| has(i, t)))
    });
    if let Some(sort) = &f.sort {
        match sort.key.as_str() {
            "display_name" | "name" => all.sort_by(|a, b| a.display_name.cmp(&b.display_name)),
            "created_at" => all.sort_by_key(|i| i.created_at),
            "updated_at" => all.sort_by_key(|i| i.updated_at.unwrap_or(i.created_at)),
            "uuid" => all.sort_by(|a, b| a.uuid.cmp(&b.uuid)),
            _ => all.sort_by_key(|i| i.created_at),
        }
        if sort.descending {
            all.reverse();
        }
    }
    // Marker pagination.
    let start = match &q.marker {
        Some(m) => all
            .iter()
            .position(|i| i.uuid == *m)
            .map(|p| p + 1)
            .ok_or_else(|| bad_marker(m))?,
        None => 0,
    };
    let end = (start + q.limit).min(all.len());
    let more = end < all.len();
    all.truncate(end);
    all.drain(..start.min(all.len()));
    Ok((all, more))
}
