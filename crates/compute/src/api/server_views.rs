//! The server body as Nova renders it for each microversion (show, detail, update, rebuild),
//! and what every server resource's handler shares: the policy target of a server, the
//! admin password answered, Nova's timestamps.

use ferrostack_api::microversion::Microversion;
use ferrostack_api::ApiError;
use serde_json::{json, Map, Value};
use sha2::Digest;

use crate::instance::{Fault, Instance};
use crate::ComputeService;

/// The admin password Nova answers on create, rebuild, rescue and evacuate; guests here take
/// keys, not passwords, but clients expect one.
pub fn generated_password() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A timestamp as Nova shows `created`/`updated` (seconds, `Z`).
pub fn iso(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn iso_us(micros: Option<i64>) -> Value {
    micros
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()))
        .unwrap_or(Value::Null)
}

/// `hostId`: an opaque per-project hash of the host, as Nova computes it.
fn host_id(project: &str, host: Option<&str>) -> String {
    match host {
        Some(h) => hex(&sha2::Sha224::digest(format!("{project}{h}").as_bytes())),
        None => String::new(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The self and bookmark links of `{base}/{kind}/{id}`.
pub fn links(base: &str, kind: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{base}/v2.1/{kind}/{id}")},
        {"rel": "bookmark", "href": format!("{base}/{kind}/{id}")},
    ])
}

/// The policy target of a server: its project and user.
pub fn target(i: &Instance) -> Value {
    json!({"project_id": i.project_id, "user_id": i.user_id})
}

/// The full server body (`/servers/detail`, show, update).
pub fn server_view(
    svc: &ComputeService,
    i: &Instance,
    fault: Option<&Fault>,
    v: Microversion,
    admin: bool,
) -> Value {
    let base = format!("{}/compute", svc.config.public_url);
    let status = crate::state::status(i.vm_state, i.task_state);
    let mut s = Map::new();
    s.insert("id".into(), json!(i.uuid));
    s.insert("name".into(), json!(i.display_name));
    s.insert("status".into(), json!(status));
    s.insert("tenant_id".into(), json!(i.project_id));
    s.insert("user_id".into(), json!(i.user_id));
    s.insert("metadata".into(), json!(i.metadata));
    s.insert(
        "hostId".into(),
        json!(host_id(&i.project_id, i.host.as_deref())),
    );
    s.insert(
        "image".into(),
        if i.image_ref.is_empty() {
            json!("")
        } else {
            json!({"id": i.image_ref, "links": [{"rel": "bookmark", "href": format!("{base}/images/{}", i.image_ref)}]})
        },
    );
    let f = &i.flavor;
    s.insert(
        "flavor".into(),
        if v.at_least(2, 47) {
            json!({"vcpus": f.vcpus, "ram": f.ram, "disk": f.disk, "ephemeral": f.ephemeral,
                   "swap": f.swap, "original_name": f.name, "extra_specs": f.extra_specs})
        } else {
            json!({"id": f.id, "links": [{"rel": "bookmark", "href": format!("{base}/flavors/{}", f.id)}]})
        },
    );
    s.insert("created".into(), json!(iso(i.created_at)));
    s.insert(
        "updated".into(),
        json!(iso(i.updated_at.unwrap_or(i.created_at))),
    );
    s.insert(
        "addresses".into(),
        if i.addresses.is_object() {
            i.addresses.clone()
        } else {
            json!({})
        },
    );
    s.insert(
        "accessIPv4".into(),
        json!(i.access_ip_v4.clone().unwrap_or_default()),
    );
    s.insert(
        "accessIPv6".into(),
        json!(i.access_ip_v6.clone().unwrap_or_default()),
    );
    s.insert("links".into(), links(&base, "servers", &i.uuid));
    s.insert("OS-DCF:diskConfig".into(), json!("MANUAL"));
    if matches!(status, "BUILD" | "ACTIVE") {
        s.insert("progress".into(), json!(i.progress));
    }
    s.insert(
        "OS-EXT-AZ:availability_zone".into(),
        json!(i
            .availability_zone
            .clone()
            .unwrap_or_else(|| if i.host.is_some() {
                svc.config.default_availability_zone.clone()
            } else {
                String::new()
            })),
    );
    s.insert("config_drive".into(), json!(i.config_drive));
    s.insert("key_name".into(), json!(i.key_name));
    s.insert("OS-SRV-USG:launched_at".into(), iso_us(i.launched_at));
    s.insert("OS-SRV-USG:terminated_at".into(), iso_us(i.terminated_at));
    let groups: Vec<Value> = i
        .request_spec
        .get("security_groups")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str())
                .map(|g| json!({"name": g}))
                .collect()
        })
        .unwrap_or_default();
    if !groups.is_empty() {
        s.insert("security_groups".into(), json!(groups));
    }
    s.insert("OS-EXT-STS:task_state".into(), json!(i.task_state));
    s.insert("OS-EXT-STS:vm_state".into(), json!(i.vm_state));
    s.insert("OS-EXT-STS:power_state".into(), json!(i.power_state.code()));
    s.insert("os-extended-volumes:volumes_attached".into(), json!([]));
    if admin {
        s.insert("OS-EXT-SRV-ATTR:host".into(), json!(i.host));
        s.insert(
            "OS-EXT-SRV-ATTR:instance_name".into(),
            json!(format!("instance-{}", &i.uuid[..8])),
        );
        s.insert("OS-EXT-SRV-ATTR:hypervisor_hostname".into(), json!(i.node));
        if v.at_least(2, 3) {
            s.insert(
                "OS-EXT-SRV-ATTR:reservation_id".into(),
                json!(i.reservation_id),
            );
            s.insert("OS-EXT-SRV-ATTR:launch_index".into(), json!(i.launch_index));
            s.insert("OS-EXT-SRV-ATTR:kernel_id".into(), json!(""));
            s.insert("OS-EXT-SRV-ATTR:ramdisk_id".into(), json!(""));
            s.insert("OS-EXT-SRV-ATTR:root_device_name".into(), json!("/dev/vda"));
            s.insert("OS-EXT-SRV-ATTR:user_data".into(), json!(i.user_data));
        }
    }
    if v.at_least(2, 3) && (admin || v.at_least(2, 90)) {
        s.insert("OS-EXT-SRV-ATTR:hostname".into(), json!(i.hostname));
    }
    if v.at_least(2, 9) {
        s.insert("locked".into(), json!(i.locked));
    }
    if v.at_least(2, 73) {
        s.insert("locked_reason".into(), json!(i.locked_reason));
    }
    if v.at_least(2, 19) {
        s.insert("description".into(), json!(i.display_description));
    }
    if v.at_least(2, 26) {
        s.insert("tags".into(), json!(i.tags));
    }
    if v.at_least(2, 63) {
        s.insert("trusted_image_certificates".into(), Value::Null);
    }
    if v.at_least(2, 96) {
        s.insert(
            "pinned_availability_zone".into(),
            json!(i.availability_zone),
        );
    }
    if admin && v.at_least(2, 16) && i.host.is_some() {
        s.insert("host_status".into(), json!("UP"));
    }
    if let Some(f) = fault {
        if matches!(status, "ERROR" | "DELETED") {
            let mut fj =
                json!({"code": f.code, "created": iso(f.created_at), "message": f.message});
            if admin && !f.details.is_empty() {
                fj["details"] = json!(f.details);
            }
            s.insert("fault".into(), fj);
        }
    }
    Value::Object(s)
}

/// The rebuild and update answers: before 2.75 Nova shows the server without the extended
/// attributes (status, AZ, usage, host, security groups, volumes, config drive, the
/// addresses' type and MAC); key_name
/// comes back at 2.54 and user_data at 2.57 in a rebuild answer. From 2.75 it is the full
/// show body (with user_data instead of `OS-EXT-SRV-ATTR:user_data` for a rebuild).
pub fn limited_view(mut server: Value, inst: &Instance, v: Microversion, rebuild: bool) -> Value {
    if v.at_least(2, 75) {
        if rebuild {
            // Nova's rebuild answer has `user_data` in place of the extended attribute.
            if let Some(o) = server.as_object_mut() {
                o.remove("OS-EXT-SRV-ATTR:user_data");
                o.insert("user_data".into(), json!(inst.user_data));
            }
        }
        return server;
    }
    if let Some(o) = server.as_object_mut() {
        o.retain(|k, _| {
            let extended = k.starts_with("OS-EXT-")
                || k.starts_with("OS-SRV-USG:")
                || k.starts_with("os-extended-volumes:");
            let hidden = matches!(
                k.as_str(),
                "config_drive"
                    | "key_name"
                    | "security_groups"
                    | "host_status"
                    | "server_groups"
                    | "user_data"
            );
            !(extended || hidden)
        });
        // Addresses without their extended attributes (Nova's `extend_address=False`).
        if let Some(Value::Object(nets)) = o.get_mut("addresses") {
            for list in nets.values_mut() {
                for a in list.as_array_mut().into_iter().flatten() {
                    if let Some(a) = a.as_object_mut() {
                        a.retain(|k, _| !k.starts_with("OS-EXT-IPS"));
                    }
                }
            }
        }
        if rebuild && v.at_least(2, 54) {
            o.insert("key_name".into(), json!(inst.key_name));
        }
        if rebuild && v.at_least(2, 57) {
            o.insert("user_data".into(), json!(inst.user_data));
        }
    }
    server
}

/// Show, update and rebuild answers carry the server's group ids from 2.71 (not listings).
pub async fn with_server_groups(
    svc: &ComputeService,
    server: &mut Value,
    inst: &Instance,
    v: Microversion,
) -> Result<(), ApiError> {
    if v.at_least(2, 71) {
        server["server_groups"] = json!(svc.server_group_ids(&inst.uuid).await?);
    }
    Ok(())
}
