//! The metadata proxy of a host: in each DHCP namespace the host runs, an HTTP server on
//! `169.254.169.254:80` (the DHCP port holds that address, and DHCP gives every guest a route
//! to it through the port). A request names its guest by where it comes from: its source
//! address on that namespace's network (the host's anti-spoofing drops a guest sending from
//! an address not its own). The controller says which server's port holds that address
//! (`Controller::metadata`), and the proxy answers from that guest's spec
//! (`ferrostack_agent_api::metadata`). Like Neutron's, it runs beside the agent's other work;
//! it is started again whenever its namespace is made again.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ferrostack_agent_api::{metadata, Controller, HostNetworking};
use ferrostack_netplane::dhcp;

/// The metadata servers of one host's DHCP namespaces.
pub struct MetadataProxy {
    host: String,
    /// The cloud's prefix of host-level names.
    prefix: String,
    controller: Arc<dyn Controller>,
    /// Namespace -> its server (and the namespace's identity when it was started: a
    /// namespace made again is another one, whose server must be started anew).
    servers: tokio::sync::Mutex<HashMap<String, Server>>,
}

struct Server {
    identity: Option<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Ctx {
    host: String,
    network_id: String,
    controller: Arc<dyn Controller>,
}

/// The metadata service's port.
pub const PORT: u16 = 80;

impl MetadataProxy {
    pub fn new(host: &str, prefix: &str, controller: Arc<dyn Controller>) -> MetadataProxy {
        MetadataProxy {
            host: host.to_string(),
            prefix: prefix.to_string(),
            controller,
            servers: Default::default(),
        }
    }

    /// Serves metadata in the DHCP namespace of each network `want` runs DHCP for, and no
    /// other (a server whose namespace went ends).
    pub async fn sync(&self, want: &HostNetworking) {
        let mut servers = self.servers.lock().await;
        let mut keep = Vec::new();
        for d in &want.dhcp {
            let ns = dhcp::netns(&self.prefix, &self.host, &d.network_id);
            keep.push(ns.clone());
            let identity = namespace_identity(&ns);
            if identity.is_none() {
                continue;
            }
            if servers
                .get(&ns)
                .is_some_and(|s| s.identity == identity && !s.task.is_finished())
            {
                continue;
            }
            servers.remove(&ns);
            let addr = SocketAddr::from((IpAddr::from(dhcp::METADATA_IP), PORT));
            match ferrostack_netplane::linux::listen_in(&ns, addr).await {
                Ok(listener) => {
                    let ctx = Ctx {
                        host: self.host.clone(),
                        network_id: d.network_id.clone(),
                        controller: self.controller.clone(),
                    };
                    let task = tokio::spawn(serve(listener, ctx, ns.clone()));
                    tracing::info!(netns = %ns, network = %d.network_id, "metadata proxy started");
                    servers.insert(ns, Server { identity, task });
                }
                Err(e) => {
                    tracing::warn!(netns = %ns, error = %e, "starting the metadata proxy failed");
                }
            }
        }
        servers.retain(|ns, _| keep.contains(ns));
    }
}

/// The inode of a named namespace: the same name made again is another namespace.
fn namespace_identity(netns: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/run/netns/{netns}"))
        .ok()
        .map(|m| m.ino())
}

async fn serve(listener: std::net::TcpListener, ctx: Ctx, netns: String) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(netns = %netns, error = %e, "metadata proxy socket");
            return;
        }
    };
    let app = axum::Router::new().fallback(answer).with_state(ctx);
    if let Err(e) = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    {
        tracing::warn!(netns = %netns, error = %e, "metadata proxy ended");
    }
}

async fn answer(
    State(ctx): State<Ctx>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n").into_response();
    }
    let address = match peer.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let spec = match ctx
        .controller
        .metadata(&ctx.host, &ctx.network_id, address)
        .await
    {
        Ok(Some(spec)) => spec,
        Ok(None) => {
            tracing::info!(network = %ctx.network_id, %address, "metadata request from an address no server holds");
            return (StatusCode::NOT_FOUND, "No instance has this address\n").into_response();
        }
        Err(e) => {
            tracing::warn!(network = %ctx.network_id, %address, error = %e, "metadata request");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The metadata service is unavailable\n",
            )
                .into_response();
        }
    };
    match metadata::answer(&spec, address, uri.path()) {
        Some(doc) => ([(header::CONTENT_TYPE, doc.content_type)], doc.body).into_response(),
        None => (StatusCode::NOT_FOUND, "Not found\n").into_response(),
    }
}
