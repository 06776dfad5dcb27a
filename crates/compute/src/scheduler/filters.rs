//! Host filters, in the order they run. Each says, for a host it removes, why (the first
//! reason seen is kept for the "No valid host" message).

use super::{HostState, Request};

pub struct Filter {
    pub name: &'static str,
    /// Whether the filter can remove any host for this request (a filter whose input the
    /// request does not have is skipped: at 10,000 hosts every call counts).
    pub applies: fn(&Request) -> bool,
    pub check: fn(&HostState, &Request) -> Result<(), String>,
}

fn always(_: &Request) -> bool {
    true
}

pub const PIPELINE: &[Filter] = &[
    Filter {
        name: "ComputeFilter",
        applies: always,
        check: compute,
    },
    Filter {
        name: "IgnoredHosts",
        applies: |r| !r.ignore_hosts.is_empty() || r.forced_host.is_some(),
        check: ignored,
    },
    Filter {
        name: "AvailabilityZoneFilter",
        applies: |r| r.availability_zone.is_some(),
        check: availability_zone,
    },
    Filter {
        name: "VCPU",
        applies: |r| r.resources.vcpu > 0,
        check: |h, r| resource(h.free.vcpu, r.resources.vcpu, "VCPUs"),
    },
    Filter {
        name: "RAM",
        applies: |r| r.resources.memory_mb > 0,
        check: |h, r| resource(h.free.memory_mb, r.resources.memory_mb, "MB"),
    },
    Filter {
        name: "DISK",
        applies: |r| r.resources.disk_gb > 0,
        check: |h, r| resource(h.free.disk_gb, r.resources.disk_gb, "GB of disk"),
    },
    Filter {
        name: "AggregateInstanceExtraSpecsFilter",
        applies: |r| {
            r.flavor_extra_specs
                .keys()
                .any(|k| k.starts_with("aggregate_instance_extra_specs:"))
        },
        check: aggregate_extra_specs,
    },
    Filter {
        name: "AggregateMultiTenancyIsolation",
        applies: always,
        check: tenant_isolation,
    },
    Filter {
        name: "ImagePropertiesFilter",
        applies: |r| {
            [
                "hw_architecture",
                "architecture",
                "img_hv_type",
                "hypervisor_type",
            ]
            .iter()
            .any(|k| r.image_properties.contains_key(*k))
        },
        check: image_properties,
    },
    Filter {
        name: "ServerGroupAffinityFilter",
        applies: |r| r.group.is_some(),
        check: affinity,
    },
    Filter {
        name: "ServerGroupAntiAffinityFilter",
        applies: |r| r.group.is_some(),
        check: anti_affinity,
    },
    Filter {
        name: "SameHostFilter",
        applies: |r| !r.same_host.is_empty(),
        check: same_host,
    },
    Filter {
        name: "DifferentHostFilter",
        applies: |r| !r.different_host.is_empty(),
        check: different_host,
    },
];

fn compute(h: &HostState, _: &Request) -> Result<(), String> {
    match (h.enabled, h.up) {
        (false, _) => Err("are disabled".into()),
        (_, false) => Err("are down (no heartbeat)".into()),
        _ => Ok(()),
    }
}

fn ignored(h: &HostState, r: &Request) -> Result<(), String> {
    if r.ignore_hosts.contains(&h.host) {
        return Err("were excluded (source host or failed before)".into());
    }
    if let Some(f) = &r.forced_host {
        if f != &h.host {
            return Err(format!("are not the requested host {f}"));
        }
    }
    Ok(())
}

fn availability_zone(h: &HostState, r: &Request) -> Result<(), String> {
    match &r.availability_zone {
        Some(az) if az != &h.availability_zone => Err(format!("are not in availability zone {az}")),
        _ => Ok(()),
    }
}

fn resource(free: i64, want: i64, unit: &str) -> Result<(), String> {
    if free < want {
        return Err(format!("lack {want} {unit}"));
    }
    Ok(())
}

/// `aggregate_instance_extra_specs:key=value` in the flavor needs an aggregate of the host with
/// that metadata (values may be `<in> a`, `s== a`, `<or> a <or> b`, or plain equality).
fn aggregate_extra_specs(h: &HostState, r: &Request) -> Result<(), String> {
    for (k, v) in &r.flavor_extra_specs {
        let Some(key) = k.strip_prefix("aggregate_instance_extra_specs:") else {
            continue;
        };
        let values = h.aggregate_metadata.get(key);
        let ok = values.is_some_and(|vals| vals.iter().any(|have| spec_matches(v, have)));
        if !ok {
            return Err(format!("have no aggregate with {key}={v}"));
        }
    }
    Ok(())
}

/// Nova's extra-spec operators (nova/scheduler/filters/extra_specs_ops.py), the common ones.
pub fn spec_matches(spec: &str, have: &str) -> bool {
    let spec = spec.trim();
    if let Some(rest) = spec.strip_prefix("<in>") {
        return have.contains(rest.trim());
    }
    if spec.starts_with("<or>") {
        return spec
            .split("<or>")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .any(|s| s == have);
    }
    if let Some(rest) = spec.strip_prefix("s==") {
        return have == rest.trim();
    }
    if let Some(rest) = spec.strip_prefix("s!=") {
        return have != rest.trim();
    }
    let num = |s: &str| s.trim().parse::<f64>().ok();
    for (op, f) in [
        (">=", (|a, b| a >= b) as fn(f64, f64) -> bool),
        ("<=", |a, b| a <= b),
        ("==", |a: f64, b: f64| (a - b).abs() < f64::EPSILON),
        ("=", |a, b| a >= b),
    ] {
        if let Some(rest) = spec.strip_prefix(op) {
            return matches!((num(have), num(rest)), (Some(a), Some(b)) if f(a, b));
        }
    }
    spec.eq_ignore_ascii_case(have)
}

/// Hosts in an aggregate with `filter_tenant_id` take only those projects.
fn tenant_isolation(h: &HostState, r: &Request) -> Result<(), String> {
    if h.aggregate_metadata.is_empty() {
        return Ok(());
    }
    let allowed: Vec<&String> = h
        .aggregate_metadata
        .iter()
        .filter(|(k, _)| k.starts_with("filter_tenant_id"))
        .flat_map(|(_, v)| v.iter())
        .collect();
    if allowed.is_empty()
        || allowed
            .iter()
            .any(|v| v.split(',').any(|p| p.trim() == r.project_id))
    {
        Ok(())
    } else {
        Err("are reserved for other projects (filter_tenant_id)".into())
    }
}

fn image_properties(h: &HostState, r: &Request) -> Result<(), String> {
    if let Some(arch) = r
        .image_properties
        .get("hw_architecture")
        .or(r.image_properties.get("architecture"))
    {
        if arch != "x86_64" && arch != "x86-64" {
            return Err(format!("cannot run architecture {arch}"));
        }
    }
    if let Some(hv) = r
        .image_properties
        .get("img_hv_type")
        .or(r.image_properties.get("hypervisor_type"))
    {
        let ok = hv.eq_ignore_ascii_case(&h.hypervisor_type)
            || (hv.eq_ignore_ascii_case("qemu") && h.hypervisor_type.eq_ignore_ascii_case("kvm"));
        if !ok {
            return Err(format!("are not of hypervisor type {hv}"));
        }
    }
    Ok(())
}

fn affinity(h: &HostState, r: &Request) -> Result<(), String> {
    let Some(g) = &r.group else { return Ok(()) };
    if !g.policy.ends_with("affinity") || g.policy.contains("anti") || g.member_hosts.is_empty() {
        return Ok(());
    }
    if g.policy == "affinity" && !g.member_hosts.contains_key(&h.host) {
        return Err(format!("do not run members of affinity group {}", g.id));
    }
    Ok(())
}

fn anti_affinity(h: &HostState, r: &Request) -> Result<(), String> {
    let Some(g) = &r.group else { return Ok(()) };
    if g.policy != "anti-affinity" {
        return Ok(());
    }
    let max = g.max_server_per_host.unwrap_or(1);
    let here = g.member_hosts.get(&h.host).copied().unwrap_or(0);
    if here >= max {
        return Err(format!(
            "already run {here} member(s) of anti-affinity group {} (max {max} per host)",
            g.id
        ));
    }
    Ok(())
}

fn same_host(h: &HostState, r: &Request) -> Result<(), String> {
    if r.same_host.is_empty() || r.same_host.iter().all(|i| h.instances.contains(i)) {
        Ok(())
    } else {
        Err("do not run the instances of the same_host hint".into())
    }
}

fn different_host(h: &HostState, r: &Request) -> Result<(), String> {
    if r.different_host.iter().any(|i| h.instances.contains(i)) {
        Err("run an instance of the different_host hint".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{select, GroupHint, Resources, Strategy};
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    fn host(name: &str, ram: i64) -> HostState {
        HostState {
            host: name.into(),
            provider_uuid: format!("rp-{name}"),
            hypervisor_type: "fake".into(),
            enabled: true,
            up: true,
            free: Resources {
                vcpu: 8,
                memory_mb: ram,
                disk_gb: 100,
            },
            capacity: Resources {
                vcpu: 8,
                memory_mb: 8192,
                disk_gb: 100,
            },
            availability_zone: "nova".into(),
            aggregate_metadata: BTreeMap::new(),
            instances: Default::default(),
        }
    }

    fn req(ram: i64) -> Request {
        Request {
            instance_uuid: "i1".into(),
            project_id: "p1".into(),
            resources: Resources {
                vcpu: 1,
                memory_mb: ram,
                disk_gb: 1,
            },
            ..Default::default()
        }
    }

    #[test]
    fn no_valid_host_says_why_per_filter() {
        let mut hosts = vec![
            host("a", 1024),
            host("b", 1024),
            host("c", 8192),
            host("d", 8192),
        ];
        hosts[2].enabled = false;
        hosts[3].up = false;
        let e = select(&hosts, &req(99_999_999), Strategy::Spread).unwrap_err();
        assert_eq!(e.considered, 4);
        assert_eq!(
            e.removed[0],
            ("ComputeFilter".into(), 2, "are disabled".into())
        );
        assert_eq!(e.removed[1], ("RAM".into(), 2, "lack 99999999 MB".into()));
        let text = e.to_string();
        assert!(text.contains("RAM: 2 hosts lack 99999999 MB"), "{text}");
    }

    #[test]
    fn spread_prefers_free_ram_pack_prefers_full() {
        let hosts = vec![host("small", 1024), host("big", 8000)];
        let spread = select(&hosts, &req(512), Strategy::Spread).unwrap();
        assert_eq!(spread[0].host, "big");
        let pack = select(&hosts, &req(512), Strategy::Pack).unwrap();
        assert_eq!(pack[0].host, "small");
    }

    #[test]
    fn availability_zone_and_forced_host() {
        let mut hosts = vec![host("a", 4096), host("b", 4096)];
        hosts[1].availability_zone = "zone1".into();
        let mut r = req(512);
        r.availability_zone = Some("zone1".into());
        assert_eq!(select(&hosts, &r, Strategy::Spread).unwrap()[0].host, "b");
        r.availability_zone = None;
        r.forced_host = Some("a".into());
        let got = select(&hosts, &r, Strategy::Spread).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].host, "a");
    }

    #[test]
    fn aggregate_extra_specs_and_isolation() {
        let mut hosts = vec![host("a", 4096), host("b", 4096)];
        hosts[0]
            .aggregate_metadata
            .insert("ssd".into(), vec!["true".into()]);
        hosts[1]
            .aggregate_metadata
            .insert("filter_tenant_id".into(), vec!["other".into()]);
        let mut r = req(512);
        r.flavor_extra_specs
            .insert("aggregate_instance_extra_specs:ssd".into(), "true".into());
        assert_eq!(select(&hosts, &r, Strategy::Spread).unwrap()[0].host, "a");
        r.flavor_extra_specs.clear();
        let got = select(&hosts, &r, Strategy::Spread).unwrap();
        assert_eq!(got.len(), 1, "b is reserved for project 'other'");
        assert!(spec_matches("<or> a <or> b", "b"));
        assert!(spec_matches(">= 4", "8"));
        assert!(!spec_matches("s== x", "y"));
    }

    #[test]
    fn server_group_policies() {
        let hosts = vec![host("a", 4096), host("b", 4096)];
        let mut r = req(512);
        r.group = Some(GroupHint {
            id: "g".into(),
            policy: "anti-affinity".into(),
            max_server_per_host: None,
            member_hosts: HashMap::from([("a".into(), 1)]),
        });
        let got = select(&hosts, &r, Strategy::Spread).unwrap();
        assert_eq!(
            got.iter().map(|h| h.host.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        r.group.as_mut().unwrap().policy = "affinity".into();
        let got = select(&hosts, &r, Strategy::Spread).unwrap();
        assert_eq!(
            got.iter().map(|h| h.host.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        r.group.as_mut().unwrap().policy = "anti-affinity".into();
        r.group.as_mut().unwrap().member_hosts = HashMap::from([("a".into(), 1), ("b".into(), 1)]);
        let e = select(&hosts, &r, Strategy::Spread).unwrap_err();
        assert_eq!(e.removed[0].0, "ServerGroupAntiAffinityFilter");
    }
}
