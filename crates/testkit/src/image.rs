//! The image view: Glance error bodies checked on every error, uploads, the store's files.

use std::ops::Deref;

use axum::body::Body;
use ferrostack_store::Engine;
use http::{HeaderMap, Method, Request, StatusCode};
use serde_json::Value;

use crate::TestCloud as Core;
pub use crate::{engines, Tenant};

pub const PATCH_CT: &str = "application/openstack-images-v2.1-json-patch";

/// A test cloud seen from the image API.
pub struct ImageCloud(Core);

impl Deref for ImageCloud {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.0
    }
}

/// Settings a test may change before the cloud starts.
pub struct Builder(crate::Builder);

impl Builder {
    pub fn max_image_size(self, bytes: u64) -> Self {
        Builder(self.0.max_image_size(bytes))
    }

    pub async fn start(self) -> ImageCloud {
        ImageCloud(self.0.start().await)
    }
}

impl ImageCloud {
    pub fn builder(engine: Engine) -> Builder {
        Builder(Core::builder(engine))
    }

    pub async fn start(engine: Engine) -> ImageCloud {
        Self::builder(engine).start().await
    }

    pub async fn finish(self) {
        self.0.finish().await
    }

    /// Sends a request; returns status, headers and the raw body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        ct: Option<&str>,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header("x-auth-token", t);
        }
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        let (status, headers, bytes) = self.send_raw(b.body(Body::from(body)).unwrap()).await;
        assert!(
            headers.contains_key("x-openstack-request-id"),
            "{path}: no request id"
        );
        if status.is_client_error() || status.is_server_error() {
            let v: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{path}: error body is not JSON"));
            assert!(
                v["title"].as_str().is_some(),
                "{path}: Glance error body {v}"
            );
            assert!(v["code"]
                .as_str()
                .unwrap_or("")
                .starts_with(&status.as_u16().to_string()));
        }
        (status, headers, bytes)
    }

    /// A JSON request; returns status and the JSON body (Null when empty).
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (ct, b) = match body {
            Some(v) => (Some("application/json"), serde_json::to_vec(&v).unwrap()),
            None => (None, vec![]),
        };
        let (s, _, bytes) = self.raw(method, path, Some(token), ct, b, &[]).await;
        (s, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn patch(&self, id: &str, token: &str, ops: Value) -> (StatusCode, Value) {
        let (s, _, bytes) = self
            .raw(
                Method::PATCH,
                &format!("/image/v2/images/{id}"),
                Some(token),
                Some(PATCH_CT),
                serde_json::to_vec(&ops).unwrap(),
                &[],
            )
            .await;
        (s, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn upload(&self, id: &str, token: &str, data: &[u8]) -> StatusCode {
        self.raw(
            Method::PUT,
            &format!("/image/v2/images/{id}/file"),
            Some(token),
            Some("application/octet-stream"),
            data.to_vec(),
            &[],
        )
        .await
        .0
    }

    /// A token of the bootstrap admin on the admin project.
    pub async fn admin(&self) -> String {
        self.admin_token().await
    }

    /// A new project with a user holding `role` on it.
    pub async fn tenant(&self, role: &str) -> Tenant {
        self.new_tenant(role).await
    }

    /// Creates an image with `body`; panics unless 201. Returns the image JSON.
    pub async fn create(&self, token: &str, body: Value) -> Value {
        let (s, v) = self
            .json(Method::POST, "/image/v2/images", token, Some(body))
            .await;
        assert_eq!(s, 201, "{v}");
        v
    }

    pub async fn show(&self, token: &str, id: &str) -> (StatusCode, Value) {
        self.json(Method::GET, &format!("/image/v2/images/{id}"), token, None)
            .await
    }

    /// Files in the store's images directory.
    pub fn stored_files(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("images/images"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

/// A minimal qcow2 v3 header, with a backing file offset when `backing`.
pub fn qcow2_bytes(backing: bool) -> Vec<u8> {
    let mut h = vec![0u8; 1024];
    h[..4].copy_from_slice(b"QFI\xfb");
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    if backing {
        h[8..16].copy_from_slice(&512u64.to_be_bytes());
        h[16..20].copy_from_slice(&10u32.to_be_bytes());
        h[512..522].copy_from_slice(b"/etc/hosts");
    }
    h[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
    h
}
