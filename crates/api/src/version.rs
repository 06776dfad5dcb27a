//! Version discovery documents served at each service root.

use serde_json::{json, Value};

/// One entry of a version list (`{"id": "v3.14", "status": "stable", ...}`).
pub fn version_entry(id: &str, status: &str, updated: &str, href: &str, media_type: &str) -> Value {
    json!({
        "id": id,
        "status": status,
        "updated": updated,
        "links": [{"rel": "self", "href": href}],
        "media-types": [{"base": "application/json", "type": media_type}],
    })
}
