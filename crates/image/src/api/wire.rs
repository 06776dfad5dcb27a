//! Glance wire bodies and the validation of writable attributes.

use serde_json::{json, Map, Value};

use crate::error::{ImageError, Result};
use crate::model::{Image, Member, CONTAINER_FORMATS, DISK_FORMATS};

/// Attributes clients may never set (Glance answers 403 "Attribute 'x' is read-only.").
pub const READ_ONLY: [&str; 14] = [
    "status",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "stores",
];
/// Attributes Glance reserves for itself (403 "Attribute 'x' is reserved.").
pub const RESERVED: [&str; 3] = ["location", "deleted", "deleted_at"];
/// Core attributes handled by name (everything else is a free-form property).
pub const CORE: [&str; 10] = [
    "id",
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "tags",
];

pub fn iso(us: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn image(i: &Image) -> Value {
    let mut v = json!({
        "id": i.id,
        "name": i.name,
        "status": i.status.as_str(),
        "visibility": i.visibility.as_str(),
        "protected": i.protected,
        "os_hidden": i.os_hidden,
        "tags": i.tags,
        "disk_format": i.disk_format,
        "container_format": i.container_format,
        "min_disk": i.min_disk,
        "min_ram": i.min_ram,
        "size": i.size,
        "virtual_size": i.virtual_size,
        "checksum": i.checksum,
        "os_hash_algo": i.os_hash_algo,
        "os_hash_value": i.os_hash_value,
        "owner": i.owner,
        "created_at": iso(i.created_at),
        "updated_at": iso(i.updated_at),
        "self": format!("/v2/images/{}", i.id),
        "file": format!("/v2/images/{}/file", i.id),
        "schema": "/v2/schemas/image",
    });
    if !i.location.is_empty() {
        v["stores"] = json!("file");
    }
    if let Value::Object(m) = &mut v {
        for (k, val) in &i.properties {
            m.entry(k.clone()).or_insert_with(|| val.clone());
        }
    }
    v
}

pub fn member(m: &Member) -> Value {
    json!({
        "image_id": m.image_id,
        "member_id": m.member_id,
        "status": m.status.as_str(),
        "created_at": iso(m.created_at),
        "updated_at": iso(m.updated_at),
        "schema": "/v2/schemas/member",
    })
}

fn bad_type(field: &str, v: &Value, expected: &str) -> ImageError {
    ImageError::BadRequest(format!(
        "Invalid value for '{field}': {v} is not of type '{expected}'."
    ))
}

/// Applies one attribute to `img`, validating it. `creating` allows the formats to be set.
pub fn set_attribute(img: &mut Image, key: &str, value: Value, creating: bool) -> Result<()> {
    if READ_ONLY.contains(&key) {
        return Err(ImageError::Forbidden(format!(
            "Attribute '{key}' is read-only."
        )));
    }
    // Glance keeps the `os_glance` prefix for properties it sets itself.
    if RESERVED.contains(&key) || key.starts_with("os_glance") {
        return Err(ImageError::Forbidden(format!(
            "Attribute '{key}' is reserved."
        )));
    }
    match key {
        "id" => return Err(ImageError::Forbidden("Attribute 'id' is read-only.".into())),
        "owner" => {
            img.owner = value
                .as_str()
                .ok_or_else(|| bad_type(key, &value, "string"))?
                .to_string();
        }
        "name" => {
            img.name = match value {
                Value::Null => None,
                Value::String(s) if s.chars().count() <= 255 => Some(s),
                Value::String(_) => {
                    return Err(ImageError::BadRequest(
                        "Invalid value for 'name': longer than 255 characters.".into(),
                    ))
                }
                other => return Err(bad_type(key, &other, "string")),
            }
        }
        "visibility" => {
            let s = value
                .as_str()
                .ok_or_else(|| bad_type(key, &value, "string"))?;
            img.visibility = crate::model::Visibility::parse(s).ok_or_else(|| {
                ImageError::BadRequest(format!(
                    "Invalid value for 'visibility': '{s}' is not one of public, private, shared, community."
                ))
            })?;
        }
        "protected" | "os_hidden" => {
            let b = value
                .as_bool()
                .ok_or_else(|| bad_type(key, &value, "boolean"))?;
            if key == "protected" {
                img.protected = b
            } else {
                img.os_hidden = b
            }
        }
        "min_disk" | "min_ram" => {
            let n = value.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
                ImageError::BadRequest(format!(
                    "Invalid value for '{key}': {value} must be an integer >= 0."
                ))
            })?;
            if key == "min_disk" {
                img.min_disk = n
            } else {
                img.min_ram = n
            }
        }
        "disk_format" | "container_format" => {
            if !creating && img.status != crate::model::Status::Queued {
                return Err(ImageError::Forbidden(format!(
                    "Attribute {key} can be only replaced for a queued image."
                )));
            }
            let v = match value {
                Value::Null => None,
                Value::String(s) => {
                    let allowed: &[&str] = if key == "disk_format" {
                        &DISK_FORMATS
                    } else {
                        &CONTAINER_FORMATS
                    };
                    if !allowed.contains(&s.as_str()) {
                        return Err(ImageError::BadRequest(format!(
                            "Invalid value '{s}' for '{key}': must be one of {}.",
                            allowed.join(", ")
                        )));
                    }
                    Some(s)
                }
                other => return Err(bad_type(key, &other, "string")),
            };
            if key == "disk_format" {
                img.disk_format = v
            } else {
                img.container_format = v
            }
        }
        "tags" => {
            let list = value
                .as_array()
                .ok_or_else(|| bad_type(key, &value, "array"))?;
            let mut tags = Vec::new();
            for t in list {
                let s = t.as_str().ok_or_else(|| bad_type("tags", t, "string"))?;
                check_tag(s)?;
                if !tags.iter().any(|x: &String| x == s) {
                    tags.push(s.to_string());
                }
            }
            if tags.len() > 128 {
                return Err(ImageError::TooLarge(
                    "Maximum number of tags exceeded (128).".into(),
                ));
            }
            img.tags = tags;
        }
        _ => {
            if key.is_empty() || key.chars().count() > 255 {
                return Err(ImageError::BadRequest(format!(
                    "Invalid property name '{key}'."
                )));
            }
            match value {
                Value::String(s) if s.chars().count() <= 65535 => {
                    img.properties.insert(key.to_string(), Value::String(s));
                }
                Value::Null => {
                    img.properties.remove(key);
                }
                other => return Err(bad_type(key, &other, "string")),
            }
        }
    }
    Ok(())
}

pub fn check_tag(s: &str) -> Result<()> {
    if s.is_empty() || s.chars().count() > 255 {
        return Err(ImageError::BadRequest(format!(
            "Invalid tag '{s}': 1 to 255 characters."
        )));
    }
    Ok(())
}

/// The body of a create request as an object.
pub fn object(v: Value) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(ImageError::BadRequest(
            "The request body must be a JSON object.".into(),
        )),
    }
}
