//! Marker pagination (`limit`, `marker`, `links` with `rel: next`) as Nova, Glance, Neutron
//! and Cinder do it.

use serde::Deserialize;

use crate::ApiError;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub marker: Option<String>,
}

impl PageQuery {
    /// The requested limit, capped at `max`; 400 on a negative or non-numeric value.
    pub fn limit(&self, max: usize) -> Result<usize, ApiError> {
        match &self.limit {
            None => Ok(max),
            Some(s) => s.parse::<usize>().map(|n| n.min(max)).map_err(|_| {
                ApiError::bad_request(format!("limit must be a non-negative integer, got '{s}'."))
            }),
        }
    }
}

/// Takes the page after `marker` (by `id_of`) of at most `limit` items from an ordered list.
/// Returns the page and the marker of the next page when more items follow.
pub fn page<T>(
    items: Vec<T>,
    marker: Option<&str>,
    limit: usize,
    id_of: impl Fn(&T) -> &str,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match marker {
        None => 0,
        Some(m) => match items.iter().position(|i| id_of(i) == m) {
            Some(p) => p + 1,
            None => return Err(ApiError::bad_request(format!("marker [{m}] not found"))),
        },
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let next = if start + page.len() < total && limit > 0 {
        page.last().map(|l| id_of(l).to_string())
    } else {
        None
    };
    Ok((page, next))
}

/// The `links` list for a page: a `next` link carrying the marker.
pub fn next_link(base_url: &str, limit: usize, next_marker: &str) -> serde_json::Value {
    serde_json::json!([{
        "rel": "next",
        "href": format!("{base_url}?limit={limit}&marker={next_marker}"),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_the_marker() {
        let ids: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        let (p, next) = page(ids.clone(), None, 2, |s| s).unwrap();
        assert_eq!(p, vec!["0", "1"]);
        assert_eq!(next.as_deref(), Some("1"));
        let (p, next) = page(ids.clone(), Some("3"), 2, |s| s).unwrap();
        assert_eq!(p, vec!["4"]);
        assert_eq!(next, None);
        assert!(page(ids, Some("x"), 2, |s| s).is_err());
    }
}
