//! The networking view: Neutron error bodies checked on every error, and helpers that create
//! networks, subnets and ports.

use std::ops::Deref;

use axum::body::Body;
use ferrostack_store::Engine;
use http::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::TestCloud as Core;
pub use crate::{engines, Tenant};

/// A test cloud seen from the networking API.
pub struct NetworkCloud(Core);

impl Deref for NetworkCloud {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.0
    }
}

impl NetworkCloud {
    pub async fn start(engine: Engine) -> NetworkCloud {
        NetworkCloud(Core::builder(engine).start().await)
    }

    pub async fn finish(self) {
        self.0.finish().await
    }

    /// Calls `/networking/v2.0{path}`; returns status and JSON body. Every error must be a
    /// `NeutronError` body with a type and a message.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_with(method, path, token, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let uri = format!("/networking/v2.0{path}");
        let mut b = Request::builder()
            .method(method)
            .uri(&uri)
            .header("x-auth-token", token);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
            None => Body::empty(),
        };
        let (status, _, bytes) = self.send_raw(b.body(body).unwrap()).await;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_client_error() || status.is_server_error() {
            let e = &v["NeutronError"];
            assert!(
                e["type"].is_string() && e["message"].is_string() && e["detail"].is_string(),
                "{uri}: not a NeutronError body: {v}"
            );
        }
        (status, v)
    }

    pub async fn tenant(&self, role: &str) -> Tenant {
        self.new_tenant(role).await
    }

    /// The error type of a NeutronError body.
    pub fn kind(v: &Value) -> &str {
        v["NeutronError"]["type"].as_str().unwrap_or("")
    }

    /// Creates a resource; panics unless 201; returns the resource object.
    pub async fn create(&self, token: &str, collection: &str, key: &str, body: Value) -> Value {
        let (s, v) = self
            .call(
                Method::POST,
                &format!("/{collection}"),
                token,
                Some(json!({ key: body })),
            )
            .await;
        assert_eq!(s, 201, "POST /{collection}: {v}");
        v[key].clone()
    }

    pub async fn network(&self, token: &str, name: &str) -> Value {
        self.create(token, "networks", "network", json!({"name": name}))
            .await
    }

    pub async fn subnet(&self, token: &str, network_id: &str, cidr: &str) -> Value {
        self.create(
            token,
            "subnets",
            "subnet",
            json!({"network_id": network_id, "cidr": cidr, "ip_version": 4}),
        )
        .await
    }

    pub async fn port(&self, token: &str, network_id: &str) -> Value {
        self.create(token, "ports", "port", json!({"network_id": network_id}))
            .await
    }

    /// Ids of a list answer's items.
    pub fn ids(v: &Value, collection: &str) -> Vec<String> {
        v[collection]
            .as_array()
            .unwrap_or_else(|| panic!("no {collection} in {v}"))
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }
}
