//! `/v2.0/subnets`.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::input::{self, Obj};
use super::{authorize, authorize_attrs, collection_url, created, hide_attrs, query, wire, State};
use crate::app::subnetpools::PoolRequest;
use crate::app::subnets::{Gateway, NewSubnet, SubnetChanges};
use crate::error::{NetworkError, Result};
use crate::ipam;
use crate::model::{HostRoute, Ipv6Mode, Network, Pool, Subnet};
use crate::NetworkService;

const CREATE_ATTRS: [&str; 17] = [
    "name",
    "description",
    "network_id",
    "ip_version",
    "cidr",
    "gateway_ip",
    "enable_dhcp",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "dns_nameservers",
    "host_routes",
    "allocation_pools",
    "project_id",
    "tenant_id",
    "subnetpool_id",
    "prefixlen",
    "use_default_subnetpool",
];

const UPDATE_ATTRS: [&str; 7] = [
    "name",
    "description",
    "gateway_ip",
    "enable_dhcp",
    "dns_nameservers",
    "host_routes",
    "allocation_pools",
];

/// The policy target of a subnet: its attributes and its network's owner and sharing.
fn target(s: &Subnet, n: &Network, auth: &Auth) -> Value {
    let mut t = wire::subnet(s);
    t["network:project_id"] = json!(n.project_id);
    t["network:tenant_id"] = json!(n.project_id);
    t["shared"] = json!(n.shared_with(auth.project_id().unwrap_or("")));
    t["router:external"] = json!(n.router_external);
    t
}

/// A subnet as shown: with its network's `router:external` (the subnet-external-network
/// extension).
fn view(svc: &NetworkService, auth: &Auth, s: &Subnet, n: &Network) -> Value {
    let mut v = wire::subnet(s);
    v["router:external"] = json!(n.router_external);
    hide_attrs(svc, auth, "get_subnet", v, &target(s, n, auth))
}

fn ip(key: &str, v: &Value) -> Result<IpAddr> {
    let s = v.as_str().ok_or_else(|| {
        NetworkError::invalid_attr(key, format!("'{v}' is not a valid IP address"))
    })?;
    ipam::parse_ip(s).map_err(|e| NetworkError::invalid_attr(key, e))
}

fn ips(obj: &Obj, key: &str) -> Result<Option<Vec<IpAddr>>> {
    match input::strings(obj, key)? {
        None => Ok(None),
        Some(list) => list
            .iter()
            .map(|s| ipam::parse_ip(s).map_err(|e| NetworkError::invalid_attr(key, e)))
            .collect::<Result<Vec<_>>>()
            .map(Some),
    }
}

fn routes(obj: &Obj) -> Result<Option<Vec<HostRoute>>> {
    let Some(list) = input::objects(obj, "host_routes")? else {
        return Ok(None);
    };
    list.iter()
        .map(|r| {
            input::only(r, &["destination", "nexthop"])?;
            let dest = r.get("destination").and_then(Value::as_str).unwrap_or("");
            let destination = ipam::parse_prefix(dest)
                .map_err(|e| NetworkError::invalid_attr("host_routes", e))?;
            let nexthop = ip("host_routes", r.get("nexthop").unwrap_or(&Value::Null))?;
            Ok(HostRoute {
                destination,
                nexthop,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn pools(obj: &Obj) -> Result<Option<Vec<Pool>>> {
    let Some(list) = input::objects(obj, "allocation_pools")? else {
        return Ok(None);
    };
    list.iter()
        .map(|p| {
            input::only(p, &["start", "end"])?;
            Ok(Pool {
                start: ip("allocation_pools", p.get("start").unwrap_or(&Value::Null))?,
                end: ip("allocation_pools", p.get("end").unwrap_or(&Value::Null))?,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn mode(obj: &Obj, key: &str) -> Result<Option<Ipv6Mode>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ipv6Mode::parse(s).map(Some).ok_or_else(|| {
            NetworkError::invalid_attr(
                key,
                format!("'{s}' is not in ['dhcpv6-stateful', 'dhcpv6-stateless', 'slaac', None]"),
            )
        }),
        Some(other) => Err(NetworkError::invalid_attr(
            key,
            format!("'{other}' is not a valid value"),
        )),
    }
}

fn parse_new(obj: &Obj) -> Result<NewSubnet> {
    input::only(obj, &CREATE_ATTRS)?;
    let network_id = input::string(obj, "network_id", 255)?
        .ok_or_else(|| NetworkError::invalid_attr("network_id", "'network_id' is required"))?;
    let cidr = match input::string(obj, "cidr", 64)? {
        Some(c) => {
            Some(ipam::parse_subnet_cidr(&c).map_err(|e| NetworkError::invalid_attr("cidr", e))?)
        }
        None => None,
    };
    let pool_id = match obj.get("subnetpool_id") {
        None | Some(Value::Null) => None,
        Some(_) => input::string(obj, "subnetpool_id", 255)?,
    };
    let use_default = input::boolean(obj, "use_default_subnetpool")?.unwrap_or(false);
    let prefixlen = match input::integer(obj, "prefixlen")? {
        None => None,
        Some(n) => Some(u8::try_from(n).ok().filter(|n| *n <= 128).ok_or_else(|| {
            NetworkError::invalid_attr("prefixlen", format!("'{n}' is not a valid prefix length"))
        })?),
    };
    let pool = (pool_id.is_some() || use_default).then_some(PoolRequest {
        id: pool_id,
        prefixlen,
    });
    if cidr.is_none() && pool.is_none() {
        return Err(NetworkError::bad_request(
            "BadRequest",
            "Bad subnets request: a cidr must be specified in the absence of a subnet pool.",
        ));
    }
    let ip_version = match input::integer(obj, "ip_version")? {
        None => match cidr {
            Some(c) if c.addr().is_ipv6() => 6,
            Some(_) => 4,
            None => {
                return Err(NetworkError::invalid_attr(
                    "ip_version",
                    "'ip_version' is required",
                ))
            }
        },
        Some(4) => 4,
        Some(6) => 6,
        Some(v) => {
            return Err(NetworkError::invalid_attr(
                "ip_version",
                format!("'{v}' is not in [4, 6]"),
            ))
        }
    };
    let gateway = match obj.get("gateway_ip") {
        None => Gateway::Default,
        Some(Value::Null) => Gateway::None,
        Some(v) => Gateway::Ip(ip("gateway_ip", v)?),
    };
    Ok(NewSubnet {
        project_id: input::project(obj)?,
        network_id,
        name: input::string(obj, "name", 255)?.unwrap_or_default(),
        description: input::string(obj, "description", 255)?.unwrap_or_default(),
        ip_version,
        cidr,
        pool,
        gateway,
        enable_dhcp: input::boolean(obj, "enable_dhcp")?.unwrap_or(true),
        ipv6_ra_mode: mode(obj, "ipv6_ra_mode")?,
        ipv6_address_mode: mode(obj, "ipv6_address_mode")?,
        dns_nameservers: ips(obj, "dns_nameservers")?.unwrap_or_default(),
        host_routes: routes(obj)?.unwrap_or_default(),
        allocation_pools: pools(obj)?,
    })
}

pub async fn create(state: State, auth: Auth, body: Bytes) -> Result<Response> {
    let svc = &state.0;
    let (objs, bulk) = input::create_body(&body, "subnet", "subnets")?;
    let mut out = Vec::new();
    for obj in &objs {
        let req = parse_new(obj)?;
        let project = crate::app::owner_for(&auth, req.project_id.as_deref())?;
        let net = svc.find_network(&req.network_id, &auth).await?;
        let t = json!({"project_id": project, "tenant_id": project,
                       "network:project_id": net.project_id, "network:tenant_id": net.project_id,
                       "shared": net.shared_with(auth.project_id().unwrap_or("")), "router:external": net.router_external});
        authorize(svc, &auth, "create_subnet", &t)?;
        authorize_attrs(svc, &auth, "create_subnet", obj, &t, &[])?;
        let s = svc.create_subnet(&auth, req).await?;
        out.push(view(svc, &auth, &s, &net));
    }
    Ok(created("subnet", "subnets", bulk, out))
}

pub async fn list(state: State, auth: Auth, RawQuery(q): RawQuery) -> Result<Response> {
    let svc = &state.0;
    let lq = query::ListQuery::parse(q.as_deref())?;
    let creds = auth.credentials();
    let nets: std::collections::HashMap<String, Network> = svc
        .list_networks(&auth)
        .await?
        .into_iter()
        .map(|n| (n.id.clone(), n))
        .collect();
    let items: Vec<Value> = svc
        .list_subnets(&auth)
        .await?
        .iter()
        .filter_map(|s| {
            let n = nets.get(&s.network_id)?;
            let t = target(s, n, &auth);
            svc.policy
                .enforce("get_subnet", &t, &creds)
                .then(|| view(svc, &auth, s, n))
        })
        .collect();
    Ok(axum::Json(lq.render(items, "subnets", &collection_url(svc, "subnets"))?).into_response())
}

async fn readable(svc: &NetworkService, auth: &Auth, id: &str) -> Result<(Subnet, Network)> {
    let (s, n) = svc.find_subnet(id, auth).await?;
    if !svc
        .policy
        .enforce("get_subnet", &target(&s, &n, auth), &auth.credentials())
    {
        return Err(NetworkError::subnet_not_found(id));
    }
    Ok((s, n))
}

pub async fn show(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let (s, n) = readable(svc, &auth, &id).await?;
    let v = query::project(view(svc, &auth, &s, &n), &query::fields_of(q.as_deref()));
    Ok(axum::Json(json!({ "subnet": v })).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let obj = input::update_body(&body, "subnet")?;
    input::only(&obj, &UPDATE_ATTRS)?;
    let (s, n) = readable(svc, &auth, &id).await?;
    let t = target(&s, &n, &auth);
    authorize(svc, &auth, "update_subnet", &t)?;
    authorize_attrs(svc, &auth, "update_subnet", &obj, &t, &[])?;
    let changes = SubnetChanges {
        name: input::string(&obj, "name", 255)?,
        description: input::string(&obj, "description", 255)?,
        gateway_ip: match obj.get("gateway_ip") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(v) => Some(Some(ip("gateway_ip", v)?)),
        },
        enable_dhcp: input::boolean(&obj, "enable_dhcp")?,
        dns_nameservers: ips(&obj, "dns_nameservers")?,
        host_routes: routes(&obj)?,
        allocation_pools: pools(&obj)?,
    };
    let s = svc
        .update_subnet(&id, changes, input::if_match(&headers)?)
        .await?;
    Ok(axum::Json(json!({ "subnet": view(svc, &auth, &s, &n) })).into_response())
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    let (s, n) = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "delete_subnet", &target(&s, &n, &auth))?;
    svc.delete_subnet(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
