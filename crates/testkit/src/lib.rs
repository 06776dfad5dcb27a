//! The one test harness: a whole cloud in process (built by `ferrostack-cloud`) on SQLite or
//! PostgreSQL, and the views each service's tests use (`identity`, `image`, `placement`,
//! `compute`). See the README.

// Test code: a panic is a failed test, which is what a broken fixture should be.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

pub mod compute;
pub mod identity;
pub mod image;
pub mod network;
pub mod placement;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use ferrostack_cloud::{Cloud, CloudConfig};
use ferrostack_compute::{ComputeConfig, ComputeService};
use ferrostack_identity::app::bootstrap::{BootstrapOutcome, CatalogService};
use ferrostack_identity::Identity;
use ferrostack_image::ImageService;
use ferrostack_placement::PlacementService;
use ferrostack_store::sqlx::{self, Connection, Executor};
use ferrostack_store::{Db, Engine};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub use ferrostack_store;

/// The bootstrap admin's password in every test cloud.
pub const ADMIN_PASSWORD: &str = "adminpw";

/// Runs a test body once per configured engine: SQLite always, PostgreSQL when
/// `FERROSTACK_TEST_PG_URL` is set.
///
/// `api_test!(async fn name(c) { ... })` gives the body `c: &TestCloud`, a default cloud of
/// the calling crate's view (`crate::common::TestCloud`), dropped (with its PostgreSQL
/// database) afterwards; `api_test!(async fn name(engine: e) { ... })` gives the engine, for
/// bodies that build a cloud of their own.
// `crate::common` is meant: each test crate names its own view of the cloud there.
#[allow(clippy::crate_in_macro_def)]
#[macro_export]
macro_rules! api_test {
    ($(#[$meta:meta])* async fn $name:ident(engine: $engine:ident) $body:block) => {
        $(#[$meta])*
        #[tokio::test]
        async fn $name() {
            for $engine in $crate::engines() {
                eprintln!("--- {} on {:?}", stringify!($name), $engine);
                $body
            }
        }
    };
    ($(#[$meta:meta])* async fn $name:ident($c:ident) $body:block) => {
        $(#[$meta])*
        #[tokio::test]
        async fn $name() {
            for engine in $crate::engines() {
                eprintln!("--- {} on {:?}", stringify!($name), engine);
                let cloud = crate::common::TestCloud::start(engine).await;
                {
                    let $c = &cloud;
                    $body
                }
                cloud.finish().await;
            }
        }
    };
}

/// The engines to run on.
pub fn engines() -> Vec<Engine> {
    let mut v = vec![Engine::Sqlite];
    if pg_server_url().is_some() {
        v.push(Engine::Postgres);
    }
    v
}

fn pg_server_url() -> Option<String> {
    std::env::var("FERROSTACK_TEST_PG_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// `url` with its database name replaced by `db` (query string kept).
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

async fn pg_admin(server: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("connecting to FERROSTACK_TEST_PG_URL: {e}"));
    conn.execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

/// A user with a role on a project, and its token.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub project_id: String,
    pub user_id: String,
    pub token: String,
}

/// A change to the compute service's settings, made before the cloud starts.
type ComputeTune = Box<dyn FnOnce(&mut ComputeConfig)>;

/// What a test may change before its cloud starts.
pub struct Builder {
    engine: Engine,
    public_url: String,
    catalog: Vec<CatalogService>,
    lockout_failure_attempts: u32,
    lockout_duration: Duration,
    token_expiration: Duration,
    max_image_size: u64,
    compute: Option<ComputeTune>,
}

impl Builder {
    pub fn public_url(mut self, url: &str) -> Self {
        self.public_url = url.to_string();
        self
    }

    /// The services the bootstrap puts in the catalog (default: every one the cloud serves).
    pub fn catalog(mut self, services: &[(&str, &str, &str)]) -> Self {
        self.catalog = services
            .iter()
            .map(|(t, n, p)| CatalogService {
                service_type: (*t).into(),
                name: (*n).into(),
                path: (*p).into(),
            })
            .collect();
        self
    }

    pub fn lockout(mut self, attempts: u32, duration: Duration) -> Self {
        self.lockout_failure_attempts = attempts;
        self.lockout_duration = duration;
        self
    }

    pub fn token_expiration(mut self, d: Duration) -> Self {
        self.token_expiration = d;
        self
    }

    pub fn max_image_size(mut self, bytes: u64) -> Self {
        self.max_image_size = bytes;
        self
    }

    /// Adjusts the compute service's settings (e.g. a short `service_down_time`).
    pub fn compute(mut self, tune: impl FnOnce(&mut ComputeConfig) + 'static) -> Self {
        self.compute = Some(Box::new(tune));
        self
    }

    pub async fn start(self) -> TestCloud {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, pg_db) = match self.engine {
            Engine::Sqlite => (format!("sqlite://{}/t.db", dir.path().display()), None),
            Engine::Postgres => {
                let server = pg_server_url().expect("FERROSTACK_TEST_PG_URL");
                let name = format!("t_{}", uuid::Uuid::new_v4().simple());
                pg_admin(&server, &format!("CREATE DATABASE {name}")).await;
                (with_database(&server, &name), Some((server, name)))
            }
        };
        let db = Db::connect(&url).await.expect("database");
        assert_eq!(db.engine, self.engine);
        let mut cfg = CloudConfig::new(dir.path(), &self.public_url);
        cfg.token_expiration = self.token_expiration;
        cfg.lockout_failure_attempts = self.lockout_failure_attempts;
        cfg.lockout_duration = self.lockout_duration;
        cfg.max_image_size = self.max_image_size;
        if let Some(tune) = self.compute {
            tune(&mut cfg.compute);
        }
        let cloud = Cloud::open_on(db, &cfg).await.expect("cloud");
        let boot = cloud
            .bootstrap_with(Some(ADMIN_PASSWORD.into()), &self.catalog)
            .await
            .expect("bootstrap");
        TestCloud {
            engine: self.engine,
            router: cloud.router(),
            db: cloud.db.clone(),
            identity: cloud.identity.clone(),
            image: cloud.image.clone(),
            placement: cloud.placement.clone(),
            compute: cloud.compute.clone(),
            cloud,
            boot,
            dir,
            pg_db,
            admin: Default::default(),
            tasks: Default::default(),
            default_image: Default::default(),
        }
    }
}

/// A whole cloud in process, with its router as the binary serves it.
pub struct TestCloud {
    pub engine: Engine,
    pub router: Router,
    pub db: Db,
    pub identity: Arc<Identity>,
    pub image: Arc<ImageService>,
    pub placement: Arc<PlacementService>,
    pub compute: Arc<ComputeService>,
    pub cloud: Cloud,
    pub boot: BootstrapOutcome,
    /// The data directory (database file on SQLite, keys, images).
    pub dir: tempfile::TempDir,
    pg_db: Option<(String, String)>,
    admin: tokio::sync::OnceCell<String>,
    /// Background tasks (scheduler, agents) started for this cloud; aborted when it goes.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The image servers boot from unless a test says otherwise.
    pub(crate) default_image: tokio::sync::OnceCell<String>,
}

impl Drop for TestCloud {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// A response: status, headers and the raw body.
pub type RawResp = (StatusCode, HeaderMap, Vec<u8>);

impl TestCloud {
    /// A cloud with the defaults (every service in the catalog, `http://cloud.test`).
    pub fn builder(engine: Engine) -> Builder {
        Builder {
            engine,
            public_url: "http://cloud.test".into(),
            catalog: ferrostack_cloud::catalog_services(),
            lockout_failure_attempts: 0,
            lockout_duration: Duration::from_secs(1800),
            token_expiration: Duration::from_secs(3600),
            max_image_size: u64::MAX,
            compute: None,
        }
    }

    pub async fn start(engine: Engine) -> TestCloud {
        Self::builder(engine).start().await
    }

    /// Stops the cloud's tasks, closes its pools and drops its PostgreSQL database.
    pub async fn finish(self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
        self.db.pool.close().await;
        self.db.writer.close().await;
        if let Some((server, name)) = &self.pg_db {
            pg_admin(
                server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Keeps a background task of this cloud (aborted when the cloud goes).
    pub fn track(&self, handle: tokio::task::JoinHandle<()>) {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
    }

    /// Sends `req` through the router; returns status, headers and the raw body. No response
    /// may be a 500.
    pub async fn send_raw(&self, req: Request<Body>) -> RawResp {
        let method = req.method().clone();
        let path = req.uri().to_string();
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router never fails");
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes().to_vec();
        assert_ne!(
            parts.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{method} {path}: 500 {}",
            String::from_utf8_lossy(&bytes)
        );
        (parts.status, parts.headers, bytes)
    }

    /// A token for `user` (a name in the default domain) scoped to `project_id`.
    pub async fn password_token(&self, user: &str, password: &str, project_id: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"id": project_id}}}});
        let req = Request::builder()
            .method(Method::POST)
            .uri("/identity/v3/auth/tokens")
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        let (s, h, b) = self.send_raw(req).await;
        assert_eq!(s, 201, "token: {}", String::from_utf8_lossy(&b));
        h.get("x-subject-token")
            .expect("token issued")
            .to_str()
            .unwrap()
            .to_string()
    }

    /// A token of the bootstrap admin on the admin project (issued once per cloud).
    pub async fn admin_token(&self) -> String {
        self.admin
            .get_or_init(|| async {
                self.password_token("admin", ADMIN_PASSWORD, &self.boot.admin_project_id)
                    .await
            })
            .await
            .clone()
    }

    /// An identity call as the admin (`path` under `/identity/v3`); status and JSON body.
    pub async fn identity_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let admin = self.admin_token().await;
        let mut b = Request::builder()
            .method(method)
            .uri(format!("/identity/v3{path}"))
            .header("x-auth-token", admin);
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
            None => Body::empty(),
        };
        let (s, _, bytes) = self.send_raw(b.body(body).unwrap()).await;
        (s, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// A new project with a new user holding `role` on it, and the user's token.
    pub async fn new_tenant(&self, role: &str) -> Tenant {
        let n = uuid::Uuid::new_v4().simple().to_string();
        let (s, p) = self
            .identity_call(
                Method::POST,
                "/projects",
                Some(json!({"project": {"name": format!("p{n}")}})),
            )
            .await;
        assert_eq!(s, 201, "{p}");
        let project_id = p["project"]["id"].as_str().unwrap().to_string();
        self.new_user_on(&project_id, role).await
    }

    /// A new user holding `role` on an existing project, and its token.
    pub async fn new_user_on(&self, project_id: &str, role: &str) -> Tenant {
        let n = uuid::Uuid::new_v4().simple().to_string();
        let (s, u) = self
            .identity_call(
                Method::POST,
                "/users",
                Some(json!({"user": {"name": format!("u{n}"), "password": "pw"}})),
            )
            .await;
        assert_eq!(s, 201, "{u}");
        let user_id = u["user"]["id"].as_str().unwrap().to_string();
        let (_, roles) = self
            .identity_call(Method::GET, &format!("/roles?name={role}"), None)
            .await;
        let role_id = roles["roles"][0]["id"].as_str().unwrap().to_string();
        let (s, _) = self
            .identity_call(
                Method::PUT,
                &format!("/projects/{project_id}/users/{user_id}/roles/{role_id}"),
                None,
            )
            .await;
        assert_eq!(s, 204);
        let token = self
            .password_token(&format!("u{n}"), "pw", project_id)
            .await;
        Tenant {
            project_id: project_id.to_string(),
            user_id,
            token,
        }
    }
}
