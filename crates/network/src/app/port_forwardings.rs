//! Floating IP port forwardings: one floating IP shared by several guests, each external
//! port (per protocol) sent to one guest's address and port. The floating IP stays
//! unassociated (no `port_id`) and takes the router that reaches the forwarded ports' subnet
//! (every forwarding of it goes through that router); its last forwarding gone, it lets go
//! of the router. The router's host DNATs each one (`ferrostack_netplane::router`).

use std::net::IpAddr;

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;

use super::floating_ips::{floating_ip_not_found, router_reaching};
use super::new_id;
use crate::db;
use crate::error::{NetworkError, Result};
use crate::model::{FloatingIp, PortForwarding};
use crate::NetworkService;

/// A new forwarding, or the changes of an update (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct ForwardingRequest {
    pub internal_port_id: Option<String>,
    pub internal_ip_address: Option<IpAddr>,
    pub internal_port: Option<u16>,
    pub external_port: Option<u16>,
    pub protocol: Option<String>,
    pub description: Option<String>,
}

fn need<T>(v: Option<T>, what: &str) -> Result<T> {
    v.ok_or_else(|| NetworkError::invalid_attr(what, format!("'{what}' is required")))
}

pub fn port_forwarding_not_found(fip: &str, id: &str) -> NetworkError {
    NetworkError::not_found(
        "PortForwardingNotFound",
        format!("Port Forwarding {id} could not be found on floating IP {fip}."),
    )
}

fn bad(msg: impl std::fmt::Display) -> NetworkError {
    NetworkError::bad_request("BadRequest", format!("Bad port_forwarding request: {msg}."))
}

impl NetworkService {
    pub async fn list_port_forwardings(&self, fip: &FloatingIp) -> Result<Vec<PortForwarding>> {
        let mut conn = self.read().await?;
        Ok(db::port_forwardings::of_floating_ip(&mut conn, &fip.id).await?)
    }

    pub async fn find_port_forwarding(&self, fip: &FloatingIp, id: &str) -> Result<PortForwarding> {
        self.list_port_forwardings(fip)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| port_forwarding_not_found(&fip.id, id))
    }

    pub async fn create_port_forwarding(
        &self,
        auth: &AuthContext,
        fip_id: &str,
        req: ForwardingRequest,
    ) -> Result<PortForwarding> {
        let pf = PortForwarding {
            id: new_id(),
            floatingip_id: fip_id.to_string(),
            internal_port_id: need(req.internal_port_id, "internal_port_id")?,
            internal_ip_address: need(req.internal_ip_address, "internal_ip_address")?,
            internal_port: need(req.internal_port, "internal_port")?,
            external_port: need(req.external_port, "external_port")?,
            protocol: need(req.protocol, "protocol")?,
            description: req.description.unwrap_or_default(),
        };
        self.write_port_forwarding(auth, pf, true).await
    }

    pub async fn update_port_forwarding(
        &self,
        auth: &AuthContext,
        fip: &FloatingIp,
        id: &str,
        req: ForwardingRequest,
    ) -> Result<PortForwarding> {
        let mut pf = self.find_port_forwarding(fip, id).await?;
        if let Some(p) = req.internal_port_id {
            pf.internal_port_id = p;
        }
        if let Some(ip) = req.internal_ip_address {
            pf.internal_ip_address = ip;
        }
        if let Some(p) = req.internal_port {
            pf.internal_port = p;
        }
        if let Some(p) = req.external_port {
            pf.external_port = p;
        }
        if let Some(p) = req.protocol {
            pf.protocol = p;
        }
        if let Some(d) = req.description {
            pf.description = d;
        }
        self.write_port_forwarding(auth, pf, false).await
    }

    /// Checks `pf` against its floating IP and port, and writes it (under the floating IP's
    /// row lock, so its router is settled once).
    async fn write_port_forwarding(
        &self,
        auth: &AuthContext,
        pf: PortForwarding,
        new: bool,
    ) -> Result<PortForwarding> {
        let mut tx = self.write().await?;
        db::lock_row(&mut tx, "floating_ips", &pf.floatingip_id).await?;
        let mut fip = db::floating_ips::get(&mut tx, &pf.floatingip_id)
            .await?
            .ok_or_else(|| floating_ip_not_found(&pf.floatingip_id))?;
        if let Some(p) = &fip.port_id {
            return Err(bad(format!(
                "The floating IP {} is associated with port {p}, port forwarding can not be created",
                fip.id
            )));
        }
        if !matches!(pf.protocol.as_str(), "tcp" | "udp") {
            return Err(NetworkError::invalid_attr(
                "protocol",
                format!("{} is not in valid_values [tcp, udp]", pf.protocol),
            ));
        }
        let port = db::ports::get(&mut tx, &pf.internal_port_id)
            .await?
            .filter(|p| auth.is_admin || p.project_id == fip.project_id)
            .ok_or_else(|| NetworkError::port_not_found(&pf.internal_port_id))?;
        let Some(fixed) = port
            .fixed_ips
            .iter()
            .find(|f| f.ip_address == pf.internal_ip_address && f.ip_address.is_ipv4())
        else {
            return Err(bad(format!(
                "The requested internal_ip_address {} is not an IPv4 address of port {}",
                pf.internal_ip_address, port.id
            )));
        };
        let router =
            router_reaching(&mut tx, &fip.floating_network_id, &port, &fixed.subnet_id).await?;
        match &fip.router_id {
            Some(r) if *r != router => {
                return Err(bad(format!(
                    "The floating IP {} forwards through router {r}, which does not reach port {}",
                    fip.id, port.id
                )))
            }
            Some(_) => {}
            None => {
                fip.router_id = Some(router.clone());
                fip.revision_number += 1;
                fip.updated_at = now_micros();
                db::floating_ips::update(&mut tx, &fip).await?;
            }
        }
        let written = if new {
            db::port_forwardings::insert(&mut tx, &pf).await
        } else {
            db::port_forwardings::update(&mut tx, &pf).await
        };
        if let Err(e) = written {
            if ferrostack_store::is_unique_violation(&e) {
                return Err(bad(format!(
                    "A duplicate port forwarding entry with same attributes already exists, conflicting values are {{'floatingip_id': '{}', 'external_port': {}, 'protocol': '{}'}} or {{'internal_port_id': '{}', 'internal_ip_address': '{}', 'internal_port': {}}}",
                    pf.floatingip_id, pf.external_port, pf.protocol, pf.internal_port_id,
                    pf.internal_ip_address, pf.internal_port
                )));
            }
            return Err(e.into());
        }
        tx.commit().await?;
        self.wake_router(&router).await;
        Ok(pf)
    }

    pub async fn delete_port_forwarding(&self, fip: &FloatingIp, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        db::lock_row(&mut tx, "floating_ips", &fip.id).await?;
        let list = db::port_forwardings::of_floating_ip(&mut tx, &fip.id).await?;
        if !list.iter().any(|p| p.id == id) {
            return Err(port_forwarding_not_found(&fip.id, id));
        }
        db::port_forwardings::delete(&mut tx, id).await?;
        let router = self.release_forwarding_router(&mut tx, &fip.id).await?;
        tx.commit().await?;
        if let Some(r) = router {
            self.wake_router(&r).await;
        }
        Ok(())
    }

    /// A floating IP left without forwardings (and not associated) lets go of its router;
    /// returns the router it forwarded through, to be woken.
    pub(crate) async fn release_forwarding_router(
        &self,
        tx: &mut db::Conn,
        fip_id: &str,
    ) -> Result<Option<String>> {
        let Some(mut fip) = db::floating_ips::get(tx, fip_id).await? else {
            return Ok(None);
        };
        let router = fip.router_id.clone();
        if fip.port_id.is_none()
            && db::port_forwardings::of_floating_ip(tx, fip_id)
                .await?
                .is_empty()
            && fip.router_id.is_some()
        {
            fip.router_id = None;
            fip.status = crate::model::FloatingIpStatus::Down;
            fip.revision_number += 1;
            fip.updated_at = now_micros();
            db::floating_ips::update(tx, &fip).await?;
        }
        Ok(router)
    }
}
