//! A server's interfaces (`os-interface`) and security groups (`addSecurityGroup`,
//! `removeSecurityGroup`): its ports, through the networking service. Attaching makes (or
//! takes) the port and adds it to the server's NICs; the host's agent then hot-plugs it into
//! the running guest and its data plane wires it (the port turns ACTIVE). Detaching takes the
//! NIC away (the agent unplugs it) and gives the port back.

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;

use super::servers::{check_lock, check_state};
use crate::db::{self, instances};
use crate::error::{ComputeError, Result};
use crate::instance::Instance;
use crate::model::InstanceNic;
use crate::peers::{NicRequest, PortView, ServerNic};
use crate::state::Action;
use crate::ComputeService;

/// What an interface attach names: a port, a network (with an address, maybe), or neither
/// (the project's one available network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachRequest {
    Nic(NicRequest),
    Any,
}

/// The lowest position no NIC of `nics` holds.
fn free_position(nics: &[InstanceNic]) -> u32 {
    (0..)
        .find(|p| !nics.iter().any(|n| n.position == *p))
        .unwrap_or(0)
}

/// `addresses` with the NIC `mac`'s entries taken out.
fn without_mac(addresses: &serde_json::Value, mac: &str) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (net, list) in addresses.as_object().into_iter().flatten() {
        let kept: Vec<serde_json::Value> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["OS-EXT-IPS-MAC:mac_addr"] != mac)
            .cloned()
            .collect();
        if !kept.is_empty() {
            out.insert(net.clone(), kept.into());
        }
    }
    out.into()
}

/// `addresses` with those of `nic` added.
fn with_nic(addresses: &serde_json::Value, nic: &ServerNic) -> serde_json::Value {
    let mut out = addresses.as_object().cloned().unwrap_or_default();
    let added = super::servers::addresses_of(std::slice::from_ref(nic));
    for (net, list) in added.as_object().into_iter().flatten() {
        let entry = out
            .entry(net.clone())
            .or_insert_with(|| serde_json::json!([]));
        if let (Some(have), Some(new)) = (entry.as_array_mut(), list.as_array()) {
            have.extend(new.iter().cloned());
        }
    }
    out.into()
}

impl ComputeService {
    /// Attaches a port to the server (Nova's `attach_interface`): made or taken now, plugged
    /// by the host's agent. All or nothing: a port that cannot be recorded is given back.
    pub async fn attach_interface(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        what: AttachRequest,
    ) -> Result<PortView> {
        check_lock(inst, auth)?;
        check_state(inst, Action::AttachInterface)?;
        let request = match what {
            AttachRequest::Nic(r) => r,
            AttachRequest::Any => NicRequest::Network {
                id: self.available_network(auth).await?.ok_or_else(|| {
                    ComputeError::BadRequest(
                        "No network is available to attach the interface to.".into(),
                    )
                })?,
                fixed_ip: None,
            },
        };
        let mut made = self
            .networking
            .allocate(auth, &inst.uuid, "compute:nova", &[request], &[])
            .await?;
        let Some(mut nic) = made.pop() else {
            return Err(ComputeError::BadRequest("No port was made".into()));
        };
        // Two attaches at once may pick the same position: the loser picks again.
        let mut recorded = Err(ComputeError::Conflict("not recorded".into()));
        for _ in 0..3 {
            recorded = self.record_attached(inst, auth, request_id, &mut nic).await;
            match &recorded {
                Err(ComputeError::Db(e)) if ferrostack_store::is_unique_violation(e) => continue,
                _ => break,
            }
        }
        if let Err(e) = recorded {
            self.networking
                .release(&inst.uuid, std::slice::from_ref(&nic.nic))
                .await;
            return Err(e);
        }
        if let Some(h) = &inst.host {
            self.wakeups.wake(h);
        }
        self.server_interface(inst, &nic.nic.port_id).await
    }

    async fn record_attached(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        nic: &mut ServerNic,
    ) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let current = instances::get(&mut tx, &inst.uuid, false)
            .await?
            .ok_or_else(|| super::servers::instance_not_found(&inst.uuid))?;
        let nics = db::instance_nics::of_instance(&mut tx, &inst.uuid).await?;
        nic.nic.position = free_position(&nics);
        db::instance_nics::insert_one(&mut tx, &inst.uuid, &nic.nic).await?;
        let addresses = with_nic(&current.addresses, nic);
        instances::set_addresses(&mut tx, &inst.uuid, &addresses, now_micros()).await?;
        self.record_done(&mut tx, inst, auth, request_id, "attach_interface")
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// An instance action for a change done at once (Nova's `attach_interface` and
    /// `detach_interface` records).
    async fn record_done(
        &self,
        tx: &mut db::Conn,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        action: &str,
    ) -> Result<()> {
        let now = now_micros();
        db::actions::start(
            tx,
            &inst.uuid,
            request_id,
            action,
            &inst.project_id,
            &auth.user_id,
            inst.host.as_deref(),
            now,
        )
        .await?;
        db::actions::finish_open(tx, &inst.uuid, None, None, now).await?;
        Ok(())
    }

    /// Detaches the server's port `port_id` (Nova's `detach_interface`): the agent unplugs
    /// it; a port compute made is deleted, one its user brought is kept, unbound.
    pub async fn detach_interface(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        port_id: &str,
    ) -> Result<()> {
        check_lock(inst, auth)?;
        check_state(inst, Action::DetachInterface)?;
        let mut tx = self.db.begin_write().await?;
        let nics = db::instance_nics::of_instance(&mut tx, &inst.uuid).await?;
        let nic = nics
            .into_iter()
            .find(|n| n.port_id == port_id)
            .ok_or_else(|| ComputeError::NotFound(format!("Port {port_id} is not attached")))?;
        let current = instances::get(&mut tx, &inst.uuid, false)
            .await?
            .ok_or_else(|| super::servers::instance_not_found(&inst.uuid))?;
        db::instance_nics::delete_one(&mut tx, &inst.uuid, port_id).await?;
        let addresses = without_mac(&current.addresses, &nic.mac);
        instances::set_addresses(&mut tx, &inst.uuid, &addresses, now_micros()).await?;
        self.record_done(&mut tx, inst, auth, request_id, "detach_interface")
            .await?;
        tx.commit().await?;
        self.networking
            .release(&inst.uuid, std::slice::from_ref(&nic))
            .await;
        if let Some(h) = &inst.host {
            self.wakeups.wake(h);
        }
        Ok(())
    }

    /// Port `port_id` of server `uuid` was deleted through the networking API (Nova's
    /// `network-vif-deleted`): the server lets go of that NIC (its row and addresses; its
    /// host unplugs it). Nothing to do when the server has no such NIC (a detach or a delete
    /// of its own released it).
    pub async fn port_deleted(&self, uuid: &str, port_id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let nics = db::instance_nics::of_instance(&mut tx, uuid).await?;
        let Some(nic) = nics.into_iter().find(|n| n.port_id == port_id) else {
            return Ok(());
        };
        let Some(current) = instances::get(&mut tx, uuid, false).await? else {
            return Ok(());
        };
        db::instance_nics::delete_one(&mut tx, uuid, port_id).await?;
        let addresses = without_mac(&current.addresses, &nic.mac);
        instances::set_addresses(&mut tx, uuid, &addresses, now_micros()).await?;
        tx.commit().await?;
        tracing::info!(
            server = uuid,
            port = port_id,
            "port deleted through the networking API: NIC removed"
        );
        if let Some(h) = &current.host {
            self.wakeups.wake(h);
        }
        Ok(())
    }

    /// The server's ports.
    pub async fn server_interfaces(&self, inst: &Instance) -> Result<Vec<PortView>> {
        self.networking.server_ports(&inst.uuid).await
    }

    /// One of the server's ports; 404 when it is not one of them.
    pub async fn server_interface(&self, inst: &Instance, port_id: &str) -> Result<PortView> {
        self.server_interfaces(inst)
            .await?
            .into_iter()
            .find(|p| p.port_id == port_id)
            .ok_or_else(|| ComputeError::NotFound(format!("Port {port_id} is not attached")))
    }

    /// Adds security group `name` to the server's ports (or removes it), and records the
    /// name with the server (`security_groups` of its views).
    pub async fn change_security_group(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        name: &str,
        add: bool,
    ) -> Result<()> {
        let mut conn = self.db.pool.acquire().await?;
        let ports: Vec<String> = db::instance_nics::of_instance(&mut conn, &inst.uuid)
            .await?
            .into_iter()
            .map(|n| n.port_id)
            .collect();
        drop(conn);
        self.networking
            .change_server_group(auth, &inst.uuid, &ports, name, add)
            .await?;
        let mut spec = inst.request_spec.clone();
        let mut names: Vec<String> = spec
            .get("security_groups")
            .and_then(|g| g.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if add {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        } else {
            names.retain(|n| n != name);
        }
        spec["security_groups"] = serde_json::json!(names);
        let mut tx = self.db.begin_write().await?;
        instances::set_request_spec(&mut tx, &inst.uuid, &spec, now_micros()).await?;
        tx.commit().await?;
        Ok(())
    }
}
