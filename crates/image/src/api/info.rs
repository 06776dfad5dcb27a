//! Version discovery, `/v2/info/*` and `/v2/schemas/*`.

use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Value};

use super::State;
use crate::model::{CONTAINER_FORMATS, DISK_FORMATS};

/// Glance's version list; the newest is CURRENT, the rest SUPPORTED.
pub async fn versions(state: State) -> Response {
    let base = format!("{}/image/v2/", state.0.config.public_url);
    let ids = [
        "v2.17", "v2.16", "v2.15", "v2.9", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1",
        "v2.0",
    ];
    let list: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"id": id, "status": if i == 0 { "CURRENT" } else { "SUPPORTED" },
                   "links": [{"rel": "self", "href": base}]})
        })
        .collect();
    (
        StatusCode::MULTIPLE_CHOICES,
        axum::Json(json!({ "versions": list })),
    )
        .into_response()
}

pub async fn import_info(_auth: Auth) -> Response {
    axum::Json(json!({"import-methods": {
        "description": "Import methods available.",
        "type": "array",
        "value": ["glance-direct"],
    }}))
    .into_response()
}

pub async fn stores(_auth: Auth) -> Response {
    axum::Json(json!({"stores": [{"id": "file", "description": "Local files", "default": true}]}))
        .into_response()
}

fn image_schema() -> Value {
    let s = |d: &str| json!({"type": "string", "description": d});
    let with_null = |list: &[&str]| -> Value {
        let mut v = vec![Value::Null];
        v.extend(list.iter().map(|f| json!(f)));
        Value::Array(v)
    };
    let container_formats = with_null(&CONTAINER_FORMATS);
    let disk_formats = with_null(&DISK_FORMATS);
    json!({
        "name": "image",
        "additionalProperties": {"type": "string"},
        "links": [
            {"href": "{self}", "rel": "self"},
            {"href": "{file}", "rel": "enclosure"},
            {"href": "{schema}", "rel": "describedby"}
        ],
        "properties": {
            "id": {"type": "string", "description": "An identifier for the image",
                   "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
            "name": {"type": ["null", "string"], "maxLength": 255, "description": "Descriptive name for the image"},
            "status": {"type": "string", "readOnly": true, "description": "Status of the image",
                       "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
                                "pending_delete", "deactivated"]},
            "visibility": {"type": "string", "enum": ["community", "public", "private", "shared"],
                           "description": "Scope of image accessibility"},
            "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
            "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
            "checksum": {"type": ["null", "string"], "readOnly": true, "maxLength": 32, "description": "md5 hash of image contents."},
            "os_hash_algo": {"type": ["null", "string"], "readOnly": true, "maxLength": 64, "description": "Algorithm to calculate the os_hash_value"},
            "os_hash_value": {"type": ["null", "string"], "readOnly": true, "maxLength": 128, "description": "Hexdigest of the image contents"},
            "owner": {"type": ["null", "string"], "maxLength": 255, "description": "Owner of the image"},
            "size": {"type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes"},
            "virtual_size": {"type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes"},
            "container_format": {"type": ["null", "string"], "enum": container_formats,
                                 "description": "Format of the container"},
            "disk_format": {"type": ["null", "string"], "enum": disk_formats,
                            "description": "Format of the disk"},
            "created_at": {"type": "string", "readOnly": true, "description": "Date and time of image registration"},
            "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last image modification"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}, "description": "List of strings related to the image"},
            "direct_url": {"type": "string", "readOnly": true, "description": "URL to access the image file kept in external store"},
            "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
            "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
            "self": {"type": "string", "readOnly": true, "description": "An image self url"},
            "file": {"type": "string", "readOnly": true, "description": "An image file url"},
            "stores": {"type": "string", "readOnly": true, "description": "Store in which image data resides."},
            "schema": {"type": "string", "readOnly": true, "description": "An image schema url"},
            "kernel_id": {"type": ["null", "string"], "description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.",
                          "is_base": false},
            "ramdisk_id": {"type": ["null", "string"], "description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.",
                           "is_base": false},
            "os_distro": s("Common name of operating system distribution"),
            "os_version": s("Operating system version as specified by the distributor"),
        }
    })
}

pub async fn schema_image() -> Response {
    axum::Json(image_schema()).into_response()
}

pub async fn schema_images() -> Response {
    axum::Json(json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"}
        },
        "links": [
            {"href": "{first}", "rel": "first"},
            {"href": "{next}", "rel": "next"},
            {"href": "{schema}", "rel": "describedby"}
        ]
    }))
    .into_response()
}

fn member_schema() -> Value {
    json!({
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {"type": "string", "description": "An identifier for the image"},
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "status": {"type": "string", "enum": ["pending", "accepted", "rejected"], "description": "The status of this image member"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
            "schema": {"type": "string", "readOnly": true}
        }
    })
}

pub async fn schema_member() -> Response {
    axum::Json(member_schema()).into_response()
}

pub async fn schema_members() -> Response {
    axum::Json(json!({
        "name": "members",
        "properties": {"members": {"type": "array", "items": member_schema()}, "schema": {"type": "string"}},
        "links": [{"href": "{schema}", "rel": "describedby"}]
    }))
    .into_response()
}

/// Unknown paths under `/image` get Glance's error body too.
pub async fn not_found() -> ferrostack_api::ApiError {
    ferrostack_api::ApiError::not_found("The resource could not be found.")
}
