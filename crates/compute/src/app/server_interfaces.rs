//! A server's interfaces (`os-interface`) and security groups (`addSecurityGroup`,
//! `removeSecurityGroup`): its ports, through the networking service.

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;

use crate::db::{self, instances};
use crate::error::{ComputeError, Result};
use crate::instance::Instance;
use crate::peers::PortView;
use crate::ComputeService;

impl ComputeService {
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
