//! A server's addresses (`/servers/{id}/ips`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::instance::Instance;

/// The server's addresses by network label, each `{"version": 4|6, "addr": "..."}` (what
/// `/servers/{id}/ips` shows). The one source of a server's addresses: there is no network
/// service yet, so this is what the `addresses` column holds (`{}`); the network side fills it.
pub fn instance_addresses(inst: &Instance) -> BTreeMap<String, Vec<Value>> {
    let Some(nets) = inst.addresses.as_object() else {
        return BTreeMap::new();
    };
    nets.iter()
        .map(|(label, ips)| {
            let list = ips
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|ip| json!({"version": ip["version"], "addr": ip["addr"]}))
                        .collect()
                })
                .unwrap_or_default();
            (label.clone(), list)
        })
        .collect()
}
