//! What a guest reads about itself: the OpenStack metadata layout (`openstack/<version>/…`,
//! as Nova's metadata service and config drive serve it) and the EC2 one
//! (`<version>/meta-data/…`, `<version>/user-data`). Pure functions of the guest's
//! [`GuestSpec`]: the config drive writes them to files, a host's metadata proxy answers
//! them over HTTP.

use base64::Engine;
use serde_json::{json, Value};

use crate::GuestSpec;

/// The OpenStack metadata versions served (the newest Nova's and `latest`).
pub const OPENSTACK_VERSIONS: [&str; 2] = ["2018-08-27", "latest"];

/// The EC2 metadata versions served.
pub const EC2_VERSIONS: [&str; 3] = ["1.0", "2009-04-04", "latest"];

/// The files of each OpenStack version directory (`user_data` only when there is some).
pub const OPENSTACK_FILES: [&str; 5] = [
    "meta_data.json",
    "network_data.json",
    "vendor_data.json",
    "vendor_data2.json",
    "password",
];

/// `meta_data.json` of a guest. What was injected (personality files, the admin password)
/// is in it only when `spec` carries it: on the config drive, never from the service.
pub fn meta_data(spec: &GuestSpec) -> Value {
    let mut md = json!({
        "uuid": spec.uuid,
        "name": spec.name,
        "hostname": spec.hostname,
        "launch_index": 0,
        "availability_zone": spec.availability_zone,
        "project_id": spec.project_id,
        "meta": spec.metadata,
        "devices": [],
    });
    if let Some(key) = &spec.key_data {
        let name = spec.key_name.clone().unwrap_or_else(|| "key".into());
        md["public_keys"] = json!({ name.clone(): key });
        md["keys"] = json!([{"name": name, "type": "ssh", "data": key}]);
    }
    if let Some(injected) = &spec.injected {
        // Nova's layout: each file's contents in openstack/content/NNNN (Nova's "%04i"),
        // named in `files`; the admin password as `admin_pass`.
        if !injected.files.is_empty() {
            md["files"] = injected
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| json!({"path": f.path, "content_path": content_path(i)}))
                .collect();
        }
        if let Some(pass) = &injected.admin_pass {
            md["admin_pass"] = json!(pass);
        }
    }
    md
}

/// Where the `i`th personality file's contents are, under `openstack/`.
pub fn content_path(i: usize) -> String {
    format!("/content/{i:04}")
}

/// `network_data.json`: a link per NIC, each configured by DHCP.
pub fn network_data(spec: &GuestSpec) -> Value {
    let links: Vec<Value> = spec
        .nics
        .iter()
        .map(|n| {
            json!({"id": crate::tap_name(&n.port_id), "vif_id": n.port_id, "type": "bridge",
                   "ethernet_mac_address": n.mac, "mtu": n.mtu})
        })
        .collect();
    let networks: Vec<Value> = spec
        .nics
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"id": format!("network{i}"), "type": "ipv4_dhcp",
                   "link": crate::tap_name(&n.port_id)})
        })
        .collect();
    json!({"links": links, "networks": networks, "services": []})
}

/// The user data, decoded (the API took it in base64); None when there is none.
pub fn user_data(spec: &GuestSpec) -> Option<Vec<u8>> {
    let text = spec.user_data.as_deref()?;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

/// One answer of the metadata service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Document {
    fn text(s: impl Into<String>) -> Document {
        Document {
            content_type: "text/plain; charset=UTF-8",
            body: s.into().into_bytes(),
        }
    }

    fn json(v: &Value) -> Document {
        Document {
            content_type: "application/json",
            body: v.to_string().into_bytes(),
        }
    }
}

/// What `GET path` answers for guest `spec`, which asked from `address`; None: 404.
pub fn answer(spec: &GuestSpec, address: std::net::IpAddr, path: &str) -> Option<Document> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let lines = |v: &[&str]| Document::text(v.join("\n"));
    match parts.as_slice() {
        [] => {
            let mut v: Vec<&str> = EC2_VERSIONS.to_vec();
            v.push("openstack");
            Some(lines(&v))
        }
        ["openstack"] => Some(lines(&OPENSTACK_VERSIONS)),
        ["openstack", version, rest @ ..] if OPENSTACK_VERSIONS.contains(version) => {
            openstack(spec, rest)
        }
        [version, rest @ ..] if EC2_VERSIONS.contains(version) => ec2(spec, address, rest),
        _ => None,
    }
}

fn openstack(spec: &GuestSpec, rest: &[&str]) -> Option<Document> {
    match rest {
        [] => {
            let mut files: Vec<&str> = OPENSTACK_FILES.to_vec();
            if spec.user_data.is_some() {
                files.push("user_data");
            }
            Some(Document::text(files.join("\n")))
        }
        ["meta_data.json"] => Some(Document::json(&meta_data(&spec.without_injected()))),
        ["network_data.json"] => Some(Document::json(&network_data(spec))),
        ["vendor_data.json"] | ["vendor_data2.json"] => Some(Document::json(&json!({}))),
        // Nothing is encrypted for the guest here: an empty password.
        ["password"] => Some(Document::text("")),
        ["user_data"] => user_data(spec).map(|body| Document {
            content_type: "application/octet-stream",
            body,
        }),
        _ => None,
    }
}

/// EC2's ids are 8 hex digits after a prefix: taken from the uuid.
fn ec2_id(prefix: &str, uuid: &str) -> String {
    let hex: String = uuid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    format!("{prefix}-{hex:0>8}")
}

fn ec2(spec: &GuestSpec, address: std::net::IpAddr, rest: &[&str]) -> Option<Document> {
    let key_name = spec.key_name.clone().unwrap_or_else(|| "key".into());
    let text = |s: String| Some(Document::text(s));
    match rest {
        [] => text(if spec.user_data.is_some() {
            "meta-data/\nuser-data".into()
        } else {
            "meta-data/".into()
        }),
        ["user-data"] => user_data(spec).map(|body| Document {
            content_type: "application/octet-stream",
            body,
        }),
        ["meta-data"] => {
            let mut items = vec![
                "ami-id",
                "ami-launch-index",
                "hostname",
                "instance-id",
                "local-hostname",
                "local-ipv4",
                "placement/",
                "reservation-id",
            ];
            if spec.key_data.is_some() {
                items.push("public-keys/");
            }
            text(items.join("\n"))
        }
        ["meta-data", "ami-id"] => text(ec2_id("ami", &spec.image_ref)),
        ["meta-data", "ami-launch-index"] => text("0".into()),
        ["meta-data", "hostname"] | ["meta-data", "local-hostname"] => text(spec.hostname.clone()),
        ["meta-data", "instance-id"] => text(ec2_id("i", &spec.uuid)),
        ["meta-data", "local-ipv4"] => text(address.to_string()),
        ["meta-data", "reservation-id"] => text(ec2_id("r", &spec.uuid)),
        ["meta-data", "placement"] => text("availability-zone".into()),
        ["meta-data", "placement", "availability-zone"] => {
            text(spec.availability_zone.clone().unwrap_or_default())
        }
        ["meta-data", "public-keys"] if spec.key_data.is_some() => text(format!("0={key_name}")),
        ["meta-data", "public-keys", "0"] if spec.key_data.is_some() => text("openssh-key".into()),
        ["meta-data", "public-keys", "0", "openssh-key"] => spec.key_data.clone().and_then(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> GuestSpec {
        GuestSpec {
            uuid: "3f2a1b4c-5d6e-7f80-9a0b-1c2d3e4f5a6b".into(),
            name: "vm 1".into(),
            hostname: "vm-1".into(),
            vcpus: 1,
            memory_mb: 256,
            root_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            image_ref: "c0ffee00-0000-0000-0000-000000000000".into(),
            user_data: Some("aGVsbG8=".into()),
            key_data: Some("ssh-ed25519 AAAA k".into()),
            metadata: json!({"a": "b"}),
            key_name: Some("mykey".into()),
            config_drive: false,
            project_id: "p1".into(),
            availability_zone: Some("nova".into()),
            injected: Some(crate::Injected {
                files: vec![],
                admin_pass: Some("s3cret".into()),
            }),
            nics: vec![crate::GuestNic {
                position: Some(0),
                port_id: "port-1".into(),
                mac: "fa:16:3e:00:00:01".into(),
                mtu: 1450,
            }],
        }
    }

    fn get(path: &str) -> Option<String> {
        answer(&spec(), "10.0.0.5".parse().unwrap(), path)
            .map(|d| String::from_utf8(d.body).unwrap())
    }

    #[test]
    fn the_openstack_layout() {
        assert_eq!(get("/openstack").unwrap(), "2018-08-27\nlatest");
        let listing = get("/openstack/latest/").unwrap();
        assert!(listing.contains("meta_data.json") && listing.contains("user_data"));
        let md: Value =
            serde_json::from_str(&get("/openstack/latest/meta_data.json").unwrap()).unwrap();
        assert_eq!(md["uuid"], "3f2a1b4c-5d6e-7f80-9a0b-1c2d3e4f5a6b");
        assert_eq!(md["public_keys"]["mykey"], "ssh-ed25519 AAAA k");
        // The admin password reaches a guest by its config drive only.
        assert!(md.get("admin_pass").is_none(), "{md}");
        assert_eq!(get("/openstack/2018-08-27/user_data").unwrap(), "hello");
        let nd: Value =
            serde_json::from_str(&get("/openstack/latest/network_data.json").unwrap()).unwrap();
        assert_eq!(nd["links"][0]["ethernet_mac_address"], "fa:16:3e:00:00:01");
        assert_eq!(get("/openstack/latest/vendor_data2.json").unwrap(), "{}");
        assert_eq!(get("/openstack/latest/password").unwrap(), "");
        assert_eq!(get("/openstack/2012-01-01/meta_data.json"), None);
        assert_eq!(get("/openstack/latest/nothing"), None);
    }

    #[test]
    fn the_ec2_layout() {
        assert!(get("/").unwrap().contains("latest"));
        assert!(get("/latest/meta-data/").unwrap().contains("instance-id"));
        assert_eq!(get("/latest/meta-data/instance-id").unwrap(), "i-3f2a1b4c");
        assert_eq!(get("/latest/meta-data/local-ipv4").unwrap(), "10.0.0.5");
        assert_eq!(get("/2009-04-04/meta-data/hostname").unwrap(), "vm-1");
        assert_eq!(get("/latest/meta-data/public-keys/").unwrap(), "0=mykey");
        assert_eq!(
            get("/latest/meta-data/public-keys/0/openssh-key").unwrap(),
            "ssh-ed25519 AAAA k"
        );
        assert_eq!(
            get("/latest/meta-data/placement/availability-zone").unwrap(),
            "nova"
        );
        assert_eq!(get("/latest/user-data").unwrap(), "hello");
        assert_eq!(get("/latest/meta-data/nothing"), None);
    }
}
