//! A test cloud with identity and image services, and helpers to call it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use ferrostack_api::auth::{validate_token, AuthLayerState};
use ferrostack_api::request::request_context;
use ferrostack_identity::service::bootstrap::{BootstrapOutcome, CatalogService};
use ferrostack_identity::{Identity, IdentityConfig};
use ferrostack_image::{ImageConfig, ImageService};
use ferrostack_policy::Enforcer;
use ferrostack_store::sqlx::{self, Connection, Executor};
use ferrostack_store::{Db, Engine};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub const PATCH_CT: &str = "application/openstack-images-v2.1-json-patch";

/// Runs the body once per engine with a fresh cloud `c`.
macro_rules! api_test {
    (async fn $name:ident($c:ident) $body:block) => {
        #[tokio::test]
        async fn $name() {
            for engine in crate::common::engines() {
                eprintln!("--- {} on {:?}", stringify!($name), engine);
                let cloud = crate::common::TestCloud::start(engine, u64::MAX).await;
                {
                    let $c = &cloud;
                    $body
                }
            }
        }
    };
}

pub fn engines() -> Vec<Engine> {
    let mut v = vec![Engine::Sqlite];
    if pg_url().is_some() {
        v.push(Engine::Postgres);
    }
    v
}

fn pg_url() -> Option<String> {
    std::env::var("FERROSTACK_TEST_PG_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The server URL with another database name.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, String::new()), |(b, q)| (b, format!("?{q}")));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let root = base[host_start..]
        .find('/')
        .map_or(base, |i| &base[..host_start + i]);
    format!("{root}/{db}{query}")
}

pub struct TestCloud {
    pub router: Router,
    pub identity: Arc<Identity>,
    pub image: Arc<ImageService>,
    pub boot: BootstrapOutcome,
    pub dir: tempfile::TempDir,
    admin: tokio::sync::OnceCell<String>,
}

/// A user with a role on a fresh project, and its token.
pub struct Tenant {
    pub project_id: String,
    pub user_id: String,
    pub token: String,
}

impl TestCloud {
    pub async fn start(engine: Engine, max_image_size: u64) -> TestCloud {
        let dir = tempfile::tempdir().unwrap();
        let url = match engine {
            Engine::Sqlite => format!("sqlite://{}/t.db", dir.path().display()),
            Engine::Postgres => {
                let server = pg_url().unwrap();
                let name = format!("i_{}", uuid::Uuid::new_v4().simple());
                sqlx::any::install_default_drivers();
                let mut conn = sqlx::AnyConnection::connect(&server).await.unwrap();
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap();
                let _ = conn.close().await;
                with_database(&server, &name)
            }
        };
        let db = Db::connect(&url).await.unwrap();
        let policy = Arc::new(Enforcer::with_defaults());
        let identity = Identity::new(
            db.clone(),
            IdentityConfig {
                public_url: "http://cloud.test".into(),
                region: "RegionOne".into(),
                token_expiration: Duration::from_secs(3600),
                key_repository: dir.path().join("keys"),
                max_active_keys: 3,
                lockout_failure_attempts: 0,
                lockout_duration: Duration::from_secs(60),
                admin_project: Default::default(),
            },
            policy.clone(),
        )
        .await
        .unwrap();
        let services: Vec<CatalogService> = [
            ("identity", "keystone", "/identity"),
            ("image", "glance", "/image"),
        ]
        .into_iter()
        .map(|(t, n, p)| CatalogService {
            service_type: t.into(),
            name: n.into(),
            path: p.into(),
        })
        .collect();
        let boot = identity
            .bootstrap(Some("adminpw".into()), &services)
            .await
            .unwrap();
        identity
            .ensure_registered_limits("image", &ferrostack_image::DEFAULT_LIMITS)
            .await
            .unwrap();
        let image = ImageService::new(
            db,
            ImageConfig {
                public_url: "http://cloud.test".into(),
                store_dir: dir.path().join("images"),
                max_image_size,
                property_quota: 128,
            },
            policy,
            identity.clone(),
        )
        .await
        .unwrap();
        let validator: Arc<dyn ferrostack_api::TokenValidator> = identity.clone();
        let router = Router::new()
            .nest(
                "/identity",
                ferrostack_identity::api::router(identity.clone()),
            )
            .nest("/image", ferrostack_image::api::router(image.clone()))
            .layer(axum::middleware::from_fn_with_state(
                AuthLayerState { validator },
                validate_token,
            ))
            .layer(axum::middleware::from_fn(request_context));
        TestCloud {
            router,
            identity,
            image,
            boot,
            dir,
            admin: Default::default(),
        }
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
        let resp = self
            .router
            .clone()
            .oneshot(b.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        assert!(
            parts.headers.contains_key("x-openstack-request-id"),
            "{path}: no request id"
        );
        if parts.status.is_client_error() || parts.status.is_server_error() {
            assert_ne!(
                parts.status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{path}: 500 {}",
                String::from_utf8_lossy(&bytes)
            );
            let v: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{path}: error body is not JSON"));
            assert!(
                v["title"].as_str().is_some(),
                "{path}: Glance error body {v}"
            );
            assert!(v["code"]
                .as_str()
                .unwrap_or("")
                .starts_with(&parts.status.as_u16().to_string()));
        }
        (parts.status, parts.headers, bytes)
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

    async fn password_token(&self, user: &str, password: &str, project_id: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"id": project_id}}}});
        let (_, h, _) = self
            .raw(
                Method::POST,
                "/identity/v3/auth/tokens",
                None,
                Some("application/json"),
                serde_json::to_vec(&body).unwrap(),
                &[],
            )
            .await;
        h.get("x-subject-token")
            .expect("token issued")
            .to_str()
            .unwrap()
            .to_string()
    }

    pub async fn admin(&self) -> String {
        self.admin
            .get_or_init(|| async {
                self.password_token("admin", "adminpw", &self.boot.admin_project_id)
                    .await
            })
            .await
            .clone()
    }

    /// A new project with a user holding `role` on it.
    pub async fn tenant(&self, role: &str) -> Tenant {
        let admin = self.admin().await;
        let n = uuid::Uuid::new_v4().simple().to_string();
        let (s, p) = self
            .json(
                Method::POST,
                "/identity/v3/projects",
                &admin,
                Some(json!({"project": {"name": format!("p{n}")}})),
            )
            .await;
        assert_eq!(s, 201);
        let project_id = p["project"]["id"].as_str().unwrap().to_string();
        let (s, u) = self
            .json(
                Method::POST,
                "/identity/v3/users",
                &admin,
                Some(json!({"user": {"name": format!("u{n}"), "password": "pw"}})),
            )
            .await;
        assert_eq!(s, 201);
        let user_id = u["user"]["id"].as_str().unwrap().to_string();
        let (_, roles) = self
            .json(
                Method::GET,
                &format!("/identity/v3/roles?name={role}"),
                &admin,
                None,
            )
            .await;
        let role_id = roles["roles"][0]["id"].as_str().unwrap().to_string();
        let (s, _) = self
            .json(
                Method::PUT,
                &format!("/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(s, 204);
        let token = self
            .password_token(&format!("u{n}"), "pw", &project_id)
            .await;
        Tenant {
            project_id,
            user_id,
            token,
        }
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
