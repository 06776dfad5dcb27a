//! Get-me-a-network (Neutron's `auto-allocated-topology`): the first time a project asks, a
//! network with a subnet from each default subnet pool and a router from it to the default
//! external network are made for it; later asks answer the same network. Nova calls this when
//! a server is created with `networks: auto` and the project has no network of its own.
//!
//! The steps are separate changes (as in Neutron), so a failure part way removes what was
//! made; the network stays administratively down until the topology is recorded, so a
//! server picking a network meanwhile never takes a half-built one. Two requests racing
//! settle on the one recorded first; the loser removes its own.

use ferrostack_api::AuthContext;

use super::networks::{NetworkChanges, NewNetwork};
use super::routers::{GatewayRequest, InterfaceRef, NewRouter};
use super::subnetpools::PoolRequest;
use super::subnets::NewSubnet;
use crate::db;
use crate::error::{NetworkError, Result};
use crate::model::SubnetPool;
use crate::NetworkService;

const NETWORK_NAME: &str = "auto_allocated_network";
const ROUTER_NAME: &str = "auto_allocated_router";

fn deployment_error(reason: &str) -> NetworkError {
    NetworkError::conflict(
        "AutoAllocationFailure",
        format!("Deployment error: {reason}."),
    )
}

/// A removal of something already gone (a concurrent delete) is not an error.
fn gone_is_fine<T>(r: Result<T>) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(NetworkError::Neutron { status, .. }) if status == http::StatusCode::NOT_FOUND => {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

impl NetworkService {
    /// The dry run: whether a topology could be made (a default external network and a
    /// default subnet pool exist); Neutron's 409 naming what is missing otherwise.
    pub async fn check_auto_allocation(&self) -> Result<()> {
        self.default_external_network().await?;
        self.default_subnetpools().await?;
        Ok(())
    }

    /// The network of `project`'s topology, made now when it has none.
    pub async fn auto_allocated_network(
        &self,
        auth: &AuthContext,
        project: &str,
    ) -> Result<String> {
        if let Some((net, _)) = db::auto_allocated::get(&mut *self.read().await?, project).await? {
            return Ok(net);
        }
        let external = self.default_external_network().await?;
        let pools = self.default_subnetpools().await?;
        let (network_id, subnets) = self.auto_private_network(project, &pools).await?;
        let router_id = match self.auto_router(auth, project, &external, &subnets).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(project, error = %e, "auto-allocation: no external connectivity");
                self.remove_topology(auth, &network_id, None, &subnets)
                    .await;
                return Err(deployment_error("Unable to provide external connectivity"));
            }
        };
        let recorded = {
            let mut tx = self.write().await?;
            let done =
                db::auto_allocated::insert(&mut tx, project, &network_id, &router_id).await?;
            tx.commit().await?;
            done
        };
        if !recorded {
            // Another request made the project's topology first: keep that one.
            self.remove_topology(auth, &network_id, Some(&router_id), &subnets)
                .await;
            return db::auto_allocated::get(&mut *self.read().await?, project)
                .await?
                .map(|(net, _)| net)
                .ok_or_else(|| deployment_error("Unable to provide tenant private network"));
        }
        self.update_network(
            &network_id,
            NetworkChanges {
                admin_state_up: Some(true),
                ..Default::default()
            },
            None,
        )
        .await?;
        Ok(network_id)
    }

    /// Removes `project`'s topology (router, network, subnets) when it has one.
    pub async fn delete_auto_allocated_topology(
        &self,
        auth: &AuthContext,
        project: &str,
    ) -> Result<()> {
        let Some((net, router)) =
            db::auto_allocated::get(&mut *self.read().await?, project).await?
        else {
            return Ok(());
        };
        let subnets: Vec<String> = {
            let mut conn = self.read().await?;
            db::subnets::for_network(&mut conn, &net)
                .await?
                .into_iter()
                .map(|s| s.id)
                .collect()
        };
        if let Some(r) = &router {
            self.remove_router(auth, r, &subnets).await?;
        }
        gone_is_fine(self.delete_network(&net).await)?;
        let mut tx = self.write().await?;
        db::auto_allocated::delete(&mut tx, project).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn default_external_network(&self) -> Result<String> {
        let mut conn = self.read().await?;
        db::networks::list(&mut conn, None)
            .await?
            .into_iter()
            .find(|n| n.router_external && n.is_default)
            .map(|n| n.id)
            .ok_or_else(|| deployment_error("No default router:external network"))
    }

    /// The default subnet pools, IPv4 first.
    async fn default_subnetpools(&self) -> Result<Vec<SubnetPool>> {
        let mut conn = self.read().await?;
        let mut pools: Vec<SubnetPool> = db::subnetpools::list(&mut conn, None)
            .await?
            .into_iter()
            .filter(|p| p.is_default)
            .collect();
        pools.sort_by_key(|p| p.ip_version);
        pools.dedup_by_key(|p| p.ip_version);
        if pools.is_empty() {
            return Err(deployment_error("No default subnetpools defined"));
        }
        Ok(pools)
    }

    /// The project's network (down until recorded) with a subnet from each pool.
    async fn auto_private_network(
        &self,
        project: &str,
        pools: &[SubnetPool],
    ) -> Result<(String, Vec<String>)> {
        let net = self
            .create_network_in(
                project.to_string(),
                NewNetwork {
                    name: NETWORK_NAME.into(),
                    admin_state_up: false,
                    port_security_enabled: true,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| {
                tracing::warn!(project, error = %e, "auto-allocation: no network");
                deployment_error("Unable to provide tenant private network")
            })?;
        let mut subnets = Vec::new();
        for pool in pools {
            let made = self
                .create_subnet_in(
                    project.to_string(),
                    NewSubnet {
                        network_id: net.id.clone(),
                        name: format!("auto_allocated_subnet_v{}", pool.ip_version),
                        ip_version: pool.ip_version,
                        pool: Some(PoolRequest {
                            id: Some(pool.id.clone()),
                            prefixlen: None,
                        }),
                        enable_dhcp: true,
                        ..Default::default()
                    },
                )
                .await;
            match made {
                Ok(s) => subnets.push(s.id),
                Err(e) => {
                    tracing::warn!(project, error = %e, "auto-allocation: no subnet");
                    let _ = self.delete_network(&net.id).await;
                    return Err(deployment_error("Unable to provide tenant private network"));
                }
            }
        }
        Ok((net.id, subnets))
    }

    /// The project's router: gateway on `external`, an interface on each subnet.
    async fn auto_router(
        &self,
        auth: &AuthContext,
        project: &str,
        external: &str,
        subnets: &[String],
    ) -> Result<String> {
        let router = self
            .create_router(
                auth,
                NewRouter {
                    project_id: Some(project.to_string()),
                    name: ROUTER_NAME.into(),
                    admin_state_up: true,
                    gateway: Some(GatewayRequest {
                        network_id: external.to_string(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await?;
        for s in subnets {
            if let Err(e) = self
                .add_interface(auth, &router.id, InterfaceRef::Subnet(s.clone()))
                .await
            {
                let _ = self.remove_router(auth, &router.id, subnets).await;
                return Err(e);
            }
        }
        Ok(router.id)
    }

    /// Best effort: what a failed or lost allocation made.
    async fn remove_topology(
        &self,
        auth: &AuthContext,
        network_id: &str,
        router_id: Option<&str>,
        subnets: &[String],
    ) {
        if let Some(r) = router_id {
            if let Err(e) = self.remove_router(auth, r, subnets).await {
                tracing::warn!(router = r, error = %e, "auto-allocation: router left behind");
            }
        }
        if let Err(e) = self.delete_network(network_id).await {
            tracing::warn!(network = network_id, error = %e, "auto-allocation: network left behind");
        }
    }

    /// Takes router `router_id` off `subnets` and deletes it; an interface or router already
    /// gone (never attached, or removed by a racing delete) is fine.
    async fn remove_router(
        &self,
        auth: &AuthContext,
        router_id: &str,
        subnets: &[String],
    ) -> Result<()> {
        for s in subnets {
            gone_is_fine(
                self.remove_interface(auth, router_id, InterfaceRef::Subnet(s.clone()))
                    .await,
            )?;
        }
        gone_is_fine(self.delete_router(router_id).await)
    }
}
