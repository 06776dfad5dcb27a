//! Neutron's list query language, applied to rendered resources: attribute filters (several
//! values of one attribute: any of them), `fixed_ips=ip_address=...` style filters on lists
//! of objects, tag filters, `sort_key`/`sort_dir`, `limit`/`marker`/`page_reverse` with
//! `<collection>_links`, and `fields`.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use crate::error::{NetworkError, Result};

/// Parameters that are not attribute filters.
const RESERVED: [&str; 10] = [
    "fields",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
    "page_reverse",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
];

#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    /// Attribute name -> accepted values.
    pub filters: Vec<(String, Vec<String>)>,
    pub fields: Vec<String>,
    pub sort: Vec<(String, bool)>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub page_reverse: bool,
    pub tags: Vec<String>,
    pub tags_any: Vec<String>,
    pub not_tags: Vec<String>,
    pub not_tags_any: Vec<String>,
}

fn tag_list(v: &str) -> impl Iterator<Item = String> + '_ {
    v.split(',').filter(|t| !t.is_empty()).map(str::to_string)
}

impl ListQuery {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Result<ListQuery> {
        let mut q = ListQuery::default();
        let mut sort_keys = Vec::new();
        let mut sort_dirs = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let (k, v) = (k.into_owned(), v.into_owned());
            match k.as_str() {
                "fields" => q
                    .fields
                    .extend(v.split(',').filter(|f| !f.is_empty()).map(str::to_string)),
                "sort_key" => sort_keys.push(v),
                "sort_dir" => sort_dirs.push(v),
                "limit" => {
                    let n: i64 = v.parse().map_err(|_| {
                        NetworkError::bad_request("BadRequest", format!("Bad limit request: Limit must be an integer 0 or greater and not '{v}'."))
                    })?;
                    if n < 0 {
                        return Err(NetworkError::bad_request(
                            "BadRequest",
                            format!("Bad limit request: Limit must be an integer 0 or greater and not '{v}'."),
                        ));
                    }
                    // Neutron: limit=0 means no limit.
                    q.limit = usize::try_from(n).ok().filter(|n| *n > 0);
                }
                "marker" => q.marker = Some(v),
                "page_reverse" => {
                    q.page_reverse = matches!(v.to_ascii_lowercase().as_str(), "true" | "1")
                }
                "tags" => q.tags.extend(tag_list(&v)),
                "tags-any" => q.tags_any.extend(tag_list(&v)),
                "not-tags" => q.not_tags.extend(tag_list(&v)),
                "not-tags-any" => q.not_tags_any.extend(tag_list(&v)),
                _ => match q.filters.iter_mut().find(|(name, _)| *name == k) {
                    Some((_, vals)) => vals.push(v),
                    None => q.filters.push((k, vec![v])),
                },
            }
        }
        if !sort_dirs.is_empty() && sort_dirs.len() != sort_keys.len() {
            return Err(NetworkError::bad_request(
                "BadRequest",
                "The number of sort_keys and sort_dirs must be same",
            ));
        }
        for (i, key) in sort_keys.into_iter().enumerate() {
            let asc = match sort_dirs.get(i).map(String::as_str) {
                None | Some("asc") => true,
                Some("desc") => false,
                Some(other) => {
                    return Err(NetworkError::bad_request(
                        "BadRequest",
                        format!(
                        "{other} is invalid value for sort_dir, valid value is 'asc' and 'desc'"
                    ),
                    ))
                }
            };
            q.sort.push((key, asc));
        }
        debug_assert!(!RESERVED.is_empty());
        Ok(q)
    }

    /// The single value a filter was given for `name` (for narrowing in SQL first).
    pub fn single(&self, name: &str) -> Option<&str> {
        self.filters
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| (v.len() == 1).then(|| v[0].as_str()))
    }
}

/// Whether one JSON attribute matches a filter value given as text.
fn scalar_matches(v: &Value, want: &str) -> bool {
    match v {
        Value::Bool(b) => match want.to_ascii_lowercase().as_str() {
            "true" | "1" => *b,
            "false" | "0" => !*b,
            _ => false,
        },
        Value::Number(n) => n.to_string() == want,
        Value::String(s) => s == want,
        Value::Null => want.is_empty() || want == "None",
        _ => false,
    }
}

fn value_matches(v: &Value, want: &str) -> bool {
    match v {
        // `fixed_ips=ip_address=10.0.0.5` / `fixed_ips=subnet_id=...`: an element with that.
        Value::Array(items) => {
            if let Some((sub, val)) = want.split_once('=') {
                // `ip_address_substr=...`: the address contains the text.
                if let Some(field) = sub.strip_suffix("_substr") {
                    return items.iter().any(|i| {
                        i.get(field)
                            .and_then(Value::as_str)
                            .is_some_and(|x| x.contains(val))
                    });
                }
                items
                    .iter()
                    .any(|i| i.get(sub).is_some_and(|x| scalar_matches(x, val)))
            } else {
                items.iter().any(|i| scalar_matches(i, want))
            }
        }
        other => scalar_matches(other, want),
    }
}

fn tags_of(item: &Value) -> Vec<&str> {
    item.get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (x, y) => x.to_string().cmp(&y.to_string()),
    }
}

impl ListQuery {
    /// Whether an item passes every attribute and tag filter. Filters naming attributes the
    /// resource does not have match nothing but are otherwise ignored when `known` says the
    /// name is not an attribute at all (as Neutron ignores unknown filters).
    pub fn matches(&self, item: &Value) -> bool {
        for (name, wants) in &self.filters {
            match item.get(name) {
                Some(v) => {
                    if !wants.iter().any(|w| value_matches(v, w)) {
                        return false;
                    }
                }
                None => continue,
            }
        }
        let tags = tags_of(item);
        if !self.tags.iter().all(|t| tags.contains(&t.as_str())) {
            return false;
        }
        if !self.tags_any.is_empty() && !self.tags_any.iter().any(|t| tags.contains(&t.as_str())) {
            return false;
        }
        if !self.not_tags.is_empty() && self.not_tags.iter().all(|t| tags.contains(&t.as_str())) {
            return false;
        }
        if self.not_tags_any.iter().any(|t| tags.contains(&t.as_str())) {
            return false;
        }
        true
    }

    /// Filters, sorts, pages and projects `items`; returns the collection body
    /// `{collection: [...], collection_links: [...]}` (links only when paging).
    pub fn render(&self, items: Vec<Value>, collection: &str, base_url: &str) -> Result<Value> {
        let mut items: Vec<Value> = items.into_iter().filter(|i| self.matches(i)).collect();
        if let Some((bad, _)) = self
            .sort
            .iter()
            .find(|(k, _)| items.first().is_some_and(|i| i.get(k).is_none()))
        {
            return Err(NetworkError::bad_request(
                "BadRequest",
                format!("{bad} is invalid attribute for sort_keys"),
            ));
        }
        if !self.sort.is_empty() {
            items.sort_by(|a, b| {
                for (k, asc) in &self.sort {
                    let o = compare(
                        a.get(k).unwrap_or(&Value::Null),
                        b.get(k).unwrap_or(&Value::Null),
                    );
                    let o = if *asc { o } else { o.reverse() };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                compare(
                    a.get("id").unwrap_or(&Value::Null),
                    b.get("id").unwrap_or(&Value::Null),
                )
            });
        }
        let mut links = Vec::new();
        if self.limit.is_some() || self.marker.is_some() {
            let id_of = |v: &Value| {
                v.get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let pos = match &self.marker {
                None => None,
                Some(m) => Some(items.iter().position(|i| id_of(i) == *m).ok_or_else(|| {
                    NetworkError::not_found("NotFound", format!("Marker {m} could not be found."))
                })?),
            };
            let (page, more_after, more_before): (Vec<Value>, bool, bool) = if self.page_reverse {
                let end = pos.unwrap_or(items.len());
                let start = self.limit.map_or(0, |l| end.saturating_sub(l));
                (items[start..end].to_vec(), end < items.len(), start > 0)
            } else {
                let start = pos.map_or(0, |p| p + 1);
                let end = self
                    .limit
                    .map_or(items.len(), |l| (start + l).min(items.len()));
                (items[start..end].to_vec(), end < items.len(), start > 0)
            };
            let link = |rel: &str, marker: &str, reverse: bool| {
                let mut href = format!("{base_url}?");
                if let Some(l) = self.limit {
                    href.push_str(&format!("limit={l}&"));
                }
                href.push_str(&format!("marker={marker}"));
                if reverse {
                    href.push_str("&page_reverse=True");
                }
                json!({"rel": rel, "href": href})
            };
            let full = self.limit.is_some_and(|l| page.len() == l);
            if let (Some(last), true, true) = (page.last(), full, more_after || self.page_reverse) {
                if more_after {
                    links.push(link("next", &id_of(last), false));
                }
            }
            if let (Some(first), true) = (page.first(), more_before && self.marker.is_some()) {
                links.push(link("previous", &id_of(first), true));
            }
            items = page;
        }
        let items: Vec<Value> = items.into_iter().map(|i| self.project(i)).collect();
        let mut body = Map::new();
        body.insert(collection.to_string(), Value::Array(items));
        if !links.is_empty() {
            body.insert(format!("{collection}_links"), Value::Array(links));
        }
        Ok(Value::Object(body))
    }

    /// Keeps only the asked `fields` (all without any).
    pub fn project(&self, item: Value) -> Value {
        project(item, &self.fields)
    }
}

/// Keeps only `fields` of an object (all when empty).
pub fn project(item: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return item;
    }
    match item {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| fields.iter().any(|f| f == k))
                .collect(),
        ),
        other => other,
    }
}

/// `fields` of a show request (`GET /v2.0/networks/{id}?fields=name`).
pub fn fields_of(raw: Option<&str>) -> Vec<String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "fields")
        .flat_map(|(_, v)| {
            v.split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<Value> {
        vec![
            json!({"id": "a", "name": "one", "shared": false, "mtu": 1450, "tags": ["x"],
                   "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.3"}]}),
            json!({"id": "b", "name": "two", "shared": true, "mtu": 1500, "tags": ["x", "y"],
                   "fixed_ips": [{"subnet_id": "s2", "ip_address": "10.0.1.3"}]}),
            json!({"id": "c", "name": "three", "shared": false, "mtu": 1450, "tags": [],
                   "fixed_ips": []}),
        ]
    }

    fn ids(v: &Value, coll: &str) -> Vec<String> {
        v[coll]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn filters_match_scalars_booleans_and_lists() {
        let q = ListQuery::parse(Some("shared=False&mtu=1450")).unwrap();
        assert_eq!(ids(&q.render(items(), "n", "u").unwrap(), "n"), ["a", "c"]);
        let q = ListQuery::parse(Some("name=one&name=two")).unwrap();
        assert_eq!(ids(&q.render(items(), "n", "u").unwrap(), "n"), ["a", "b"]);
        let q = ListQuery::parse(Some("fixed_ips=ip_address%3D10.0.1.3")).unwrap();
        assert_eq!(ids(&q.render(items(), "n", "u").unwrap(), "n"), ["b"]);
        let q = ListQuery::parse(Some("tags=x,y")).unwrap();
        assert_eq!(ids(&q.render(items(), "n", "u").unwrap(), "n"), ["b"]);
        let q = ListQuery::parse(Some("not-tags-any=y")).unwrap();
        assert_eq!(ids(&q.render(items(), "n", "u").unwrap(), "n"), ["a", "c"]);
    }

    #[test]
    fn sorting_paging_and_fields() {
        let q = ListQuery::parse(Some(
            "sort_key=name&sort_dir=desc&limit=2&fields=id&fields=name",
        ))
        .unwrap();
        let v = q.render(items(), "n", "http://x/v2.0/networks").unwrap();
        assert_eq!(ids(&v, "n"), ["b", "c"]);
        assert_eq!(v["n"][0], json!({"id": "b", "name": "two"}));
        assert_eq!(v["n_links"][0]["rel"], "next");
        assert!(v["n_links"][0]["href"]
            .as_str()
            .unwrap()
            .contains("marker=c"));
        let q = ListQuery::parse(Some("sort_key=name&sort_dir=desc&limit=2&marker=c")).unwrap();
        let v = q.render(items(), "n", "u").unwrap();
        assert_eq!(ids(&v, "n"), ["a"]);
        assert_eq!(v["n_links"][0]["rel"], "previous");
        assert!(ListQuery::parse(Some("sort_key=a&sort_key=b&sort_dir=asc")).is_err());
        assert!(ListQuery::parse(Some("limit=-1")).is_err());
        let q = ListQuery::parse(Some("sort_key=nope")).unwrap();
        assert!(q.render(items(), "n", "u").is_err());
    }
}
