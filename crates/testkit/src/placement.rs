//! The placement view: placement error bodies checked on every error, providers,
//! inventories and allocations at the microversions the tests name.

use std::ops::Deref;

use axum::body::Body;
use ferrostack_store::Engine;
use http::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::TestCloud as Core;
pub use crate::{engines, Tenant};

/// A new random UUID.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A test cloud seen from the placement API: its catalog lists identity and placement.
pub struct PlacementCloud(Core);

impl Deref for PlacementCloud {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.0
    }
}

impl PlacementCloud {
    pub async fn start(engine: Engine) -> PlacementCloud {
        PlacementCloud(
            Core::builder(engine)
                .catalog(&[
                    ("identity", "keystone", "/identity"),
                    ("placement", "placement", "/placement"),
                ])
                .start()
                .await,
        )
    }

    pub async fn finish(self) {
        self.0.finish().await
    }

    /// A token of the bootstrap admin on the admin project.
    pub async fn admin(&self) -> String {
        self.admin_token().await
    }

    /// A new project with a user holding `role` on it.
    pub async fn tenant(&self, role: &str) -> Tenant {
        self.new_tenant(role).await
    }

    /// Sends a request; returns status, headers and the JSON body (Null when empty). Every
    /// error must be a placement error body with a code.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        version: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, http::HeaderMap, Value) {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header("x-auth-token", t);
        }
        if let Some(v) = version {
            b = b.header("openstack-api-version", format!("placement {v}"));
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
            None => Body::empty(),
        };
        let (status, headers, bytes) = self.send_raw(b.body(body).unwrap()).await;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(v["errors"][0]["status"], status.as_u16(), "{path}: {v}");
            assert!(
                v["errors"][0]["code"]
                    .as_str()
                    .unwrap()
                    .starts_with("placement."),
                "{v}"
            );
        }
        (status, headers, v)
    }

    /// An admin request at microversion `version`; returns status and body.
    pub async fn req(
        &self,
        method: Method,
        path: &str,
        version: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let admin = self.admin().await;
        let (s, _, v) = self
            .call(
                method,
                &format!("/placement{path}"),
                Some(&admin),
                Some(version),
                body,
            )
            .await;
        (s, v)
    }

    pub async fn get(&self, path: &str, version: &str) -> Value {
        let (s, v) = self.req(Method::GET, path, version, None).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    /// Creates a provider (optionally under `parent`); returns its uuid.
    pub async fn provider(&self, name: &str, parent: Option<&str>) -> String {
        let uuid = uuid();
        let mut body = json!({"name": name, "uuid": uuid});
        if let Some(p) = parent {
            body["parent_provider_uuid"] = json!(p);
        }
        let (s, v) = self
            .req(Method::POST, "/resource_providers", "1.20", Some(body))
            .await;
        assert_eq!(s, 200, "{v}");
        uuid
    }

    /// Sets the provider's inventories (`{"VCPU": {"total": 8}, ...}`) at its generation.
    pub async fn inventories(&self, uuid: &str, invs: Value) -> Value {
        let g = self
            .get(&format!("/resource_providers/{uuid}"), "1.20")
            .await["generation"]
            .clone();
        let (s, v) = self
            .req(
                Method::PUT,
                &format!("/resource_providers/{uuid}/inventories"),
                "1.26",
                Some(json!({"resource_provider_generation": g, "inventories": invs})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// `PUT /allocations/{consumer}` at 1.28 with `allocs` = `{rp: {"VCPU": 1}}`.
    pub async fn allocate(
        &self,
        consumer: &str,
        allocs: Value,
        generation: Value,
    ) -> (StatusCode, Value) {
        let mut body = serde_json::Map::new();
        for (rp, res) in allocs.as_object().unwrap() {
            body.insert(rp.clone(), json!({"resources": res}));
        }
        self.req(
            Method::PUT,
            &format!("/allocations/{consumer}"),
            "1.28",
            Some(
                json!({"allocations": body, "project_id": "proj", "user_id": "user",
                        "consumer_generation": generation}),
            ),
        )
        .await
    }
}
