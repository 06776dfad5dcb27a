//! `/v2.0/ports`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::input::{self, Obj};
use super::{authorize, authorize_attrs, collection_url, created, hide_attrs, query, wire, State};
use crate::app::ports::{IpRequest, NewPort, PortChanges};
use crate::error::{NetworkError, Result};
use crate::ipam;
use crate::model::{AddressPair, DhcpOpt, Network, Port};
use crate::NetworkService;

const CREATE_ATTRS: [&str; 18] = [
    "name",
    "description",
    "network_id",
    "admin_state_up",
    "mac_address",
    "fixed_ips",
    "device_id",
    "device_owner",
    "security_groups",
    "port_security_enabled",
    "allowed_address_pairs",
    "extra_dhcp_opts",
    "binding:host_id",
    "binding:vnic_type",
    "binding:profile",
    "dns_name",
    "project_id",
    "tenant_id",
];

const UPDATE_ATTRS: [&str; 15] = [
    "name",
    "description",
    "admin_state_up",
    "mac_address",
    "fixed_ips",
    "device_id",
    "device_owner",
    "security_groups",
    "port_security_enabled",
    "allowed_address_pairs",
    "extra_dhcp_opts",
    "binding:host_id",
    "binding:vnic_type",
    "binding:profile",
    "dns_name",
];

/// The policy target of a port: its attributes and its network's owner and sharing.
fn target(p: &Port, n: &Network, auth: &Auth) -> Value {
    let mut t = wire::port(p);
    t["network:project_id"] = json!(n.project_id);
    t["network:tenant_id"] = json!(n.project_id);
    t["shared"] = json!(n.shared_with(auth.project_id().unwrap_or("")));
    t
}

fn view(svc: &NetworkService, auth: &Auth, p: &Port, n: &Network) -> Value {
    hide_attrs(svc, auth, "get_port", wire::port(p), &target(p, n, auth))
}

fn fixed_ips(obj: &Obj) -> Result<Option<Vec<IpRequest>>> {
    let Some(list) = input::objects(obj, "fixed_ips")? else {
        return Ok(None);
    };
    list.iter()
        .map(|f| {
            input::only(f, &["subnet_id", "ip_address"])?;
            let ip_address = match f.get("ip_address") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(
                    ipam::parse_ip(s).map_err(|e| NetworkError::invalid_attr("fixed_ips", e))?,
                ),
                Some(v) => {
                    return Err(NetworkError::invalid_attr(
                        "fixed_ips",
                        format!("'{v}' is not a valid IP address"),
                    ))
                }
            };
            Ok(IpRequest {
                subnet_id: input::string(f, "subnet_id", 255)?,
                ip_address,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn pairs(obj: &Obj) -> Result<Option<Vec<AddressPair>>> {
    let Some(list) = input::objects(obj, "allowed_address_pairs")? else {
        return Ok(None);
    };
    list.iter()
        .map(|p| {
            input::only(p, &["ip_address", "mac_address"])?;
            let ip_address = input::string(p, "ip_address", 64)?.ok_or_else(|| {
                NetworkError::invalid_attr("allowed_address_pairs", "Missing key: 'ip_address'")
            })?;
            let mac_address = match input::string(p, "mac_address", 32)? {
                None => String::new(),
                Some(m) => crate::app::ports::parse_mac(&m).ok_or_else(|| {
                    NetworkError::invalid_attr(
                        "allowed_address_pairs",
                        format!("'{m}' is not a valid MAC address"),
                    )
                })?,
            };
            Ok(AddressPair {
                ip_address,
                mac_address,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn dhcp_opts(obj: &Obj) -> Result<Option<Vec<DhcpOpt>>> {
    let Some(list) = input::objects(obj, "extra_dhcp_opts")? else {
        return Ok(None);
    };
    list.iter()
        .map(|o| {
            input::only(o, &["opt_name", "opt_value", "ip_version"])?;
            let opt_name = input::string(o, "opt_name", 255)?
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    NetworkError::invalid_attr("extra_dhcp_opts", "'opt_name' is required")
                })?;
            let ip_version = match input::integer(o, "ip_version")? {
                None | Some(4) => 4,
                Some(6) => 6,
                Some(v) => {
                    return Err(NetworkError::invalid_attr(
                        "extra_dhcp_opts",
                        format!("'{v}' is not in [4, 6]"),
                    ))
                }
            };
            Ok(DhcpOpt {
                opt_name,
                opt_value: input::string(o, "opt_value", 255)?.unwrap_or_default(),
                ip_version,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn profile(obj: &Obj) -> Result<Option<serde_json::Map<String, Value>>> {
    match obj.get("binding:profile") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Default::default())),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(v) => Err(NetworkError::invalid_attr(
            "binding:profile",
            format!("'{v}' is not a dictionary"),
        )),
    }
}

fn parse_new(obj: &Obj) -> Result<NewPort> {
    input::only(obj, &CREATE_ATTRS)?;
    Ok(NewPort {
        project_id: input::project(obj)?,
        network_id: input::string(obj, "network_id", 255)?
            .ok_or_else(|| NetworkError::invalid_attr("network_id", "'network_id' is required"))?,
        name: input::string(obj, "name", 255)?.unwrap_or_default(),
        description: input::string(obj, "description", 255)?.unwrap_or_default(),
        admin_state_up: input::boolean(obj, "admin_state_up")?.unwrap_or(true),
        mac_address: input::string(obj, "mac_address", 32)?,
        fixed_ips: fixed_ips(obj)?,
        device_id: input::string(obj, "device_id", 255)?.unwrap_or_default(),
        device_owner: input::string(obj, "device_owner", 255)?.unwrap_or_default(),
        security_groups: input::strings(obj, "security_groups")?,
        port_security_enabled: input::boolean(obj, "port_security_enabled")?,
        allowed_address_pairs: pairs(obj)?.unwrap_or_default(),
        extra_dhcp_opts: dhcp_opts(obj)?.unwrap_or_default(),
        binding_host_id: input::string(obj, "binding:host_id", 255)?.unwrap_or_default(),
        binding_vnic_type: input::string(obj, "binding:vnic_type", 64)?
            .unwrap_or_else(|| "normal".into()),
        binding_profile: profile(obj)?.unwrap_or_default(),
        dns_name: input::string(obj, "dns_name", 255)?.unwrap_or_default(),
    })
}

pub async fn create(state: State, auth: Auth, body: Bytes) -> Result<Response> {
    let svc = &state.0;
    let (objs, bulk) = input::create_body(&body, "port", "ports")?;
    let mut reqs = Vec::with_capacity(objs.len());
    let mut nets = Vec::with_capacity(objs.len());
    for obj in &objs {
        let req = parse_new(obj)?;
        let project = crate::app::owner_for(&auth, req.project_id.as_deref())?;
        let net = svc.find_network(&req.network_id, &auth).await?;
        let t = json!({"project_id": project, "tenant_id": project,
                       "network:project_id": net.project_id, "network:tenant_id": net.project_id,
                       "shared": net.shared_with(auth.project_id().unwrap_or("")), "device_owner": req.device_owner});
        authorize(svc, &auth, "create_port", &t)?;
        authorize_attrs(
            svc,
            &auth,
            "create_port",
            obj,
            &t,
            &[
                ("device_owner", json!("")),
                ("binding:vnic_type", json!("normal")),
            ],
        )?;
        reqs.push(req);
        nets.push(net);
    }
    let ports = svc.create_ports(&auth, reqs).await?;
    let out = ports
        .iter()
        .zip(&nets)
        .map(|(p, n)| view(svc, &auth, p, n))
        .collect();
    Ok(created("port", "ports", bulk, out))
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
    let ports = svc
        .list_ports(&auth, lq.single("network_id"), lq.single("device_id"))
        .await?;
    let items: Vec<Value> = ports
        .iter()
        .filter_map(|p| {
            let n = nets.get(&p.network_id)?;
            let t = target(p, n, &auth);
            svc.policy
                .enforce("get_port", &t, &creds)
                .then(|| hide_attrs(svc, &auth, "get_port", wire::port(p), &t))
        })
        .collect();
    Ok(axum::Json(lq.render(items, "ports", &collection_url(svc, "ports"))?).into_response())
}

async fn readable(svc: &NetworkService, auth: &Auth, id: &str) -> Result<(Port, Network)> {
    let (p, n) = svc.find_port(id, auth).await?;
    if !svc
        .policy
        .enforce("get_port", &target(&p, &n, auth), &auth.credentials())
    {
        return Err(NetworkError::port_not_found(id));
    }
    Ok((p, n))
}

pub async fn show(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let (p, n) = readable(svc, &auth, &id).await?;
    let v = query::project(view(svc, &auth, &p, &n), &query::fields_of(q.as_deref()));
    Ok(axum::Json(json!({ "port": v })).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let obj = input::update_body(&body, "port")?;
    input::only(&obj, &UPDATE_ATTRS)?;
    let (p, n) = readable(svc, &auth, &id).await?;
    let t = target(&p, &n, &auth);
    authorize(svc, &auth, "update_port", &t)?;
    // Attribute rules see the port as the update would leave it (Neutron merges the body
    // into the target), so `device_owner: network:dhcp` meets `update_port:device_owner`.
    let mut after = t.clone();
    for (k, v) in &obj {
        after[k.as_str()] = v.clone();
    }
    authorize_attrs(svc, &auth, "update_port", &obj, &after, &[])?;
    let changes = PortChanges {
        name: input::string(&obj, "name", 255)?,
        description: input::string(&obj, "description", 255)?,
        admin_state_up: input::boolean(&obj, "admin_state_up")?,
        mac_address: input::string(&obj, "mac_address", 32)?,
        fixed_ips: fixed_ips(&obj)?,
        device_id: input::string(&obj, "device_id", 255)?,
        device_owner: input::string(&obj, "device_owner", 255)?,
        security_groups: input::strings(&obj, "security_groups")?,
        port_security_enabled: input::boolean(&obj, "port_security_enabled")?,
        allowed_address_pairs: pairs(&obj)?,
        extra_dhcp_opts: dhcp_opts(&obj)?,
        binding_host_id: input::string(&obj, "binding:host_id", 255)?,
        binding_vnic_type: input::string(&obj, "binding:vnic_type", 64)?,
        binding_profile: profile(&obj)?,
        dns_name: input::string(&obj, "dns_name", 255)?,
    };
    let p = svc
        .update_port(&auth, &id, changes, input::if_match(&headers)?)
        .await?;
    Ok(axum::Json(json!({ "port": view(svc, &auth, &p, &n) })).into_response())
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    let (p, n) = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "delete_port", &target(&p, &n, &auth))?;
    svc.delete_port(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
