//! The test cloud: the real identity service on a fresh database (SQLite in a temporary
//! directory, or a fresh PostgreSQL database when `FERROSTACK_TEST_PG_URL` names a server),
//! driven in-process through the router the binary serves, with helpers to call it.
//!
//! Every response that goes through [`TestCloud::req`] is also checked for what every
//! Keystone response must have: an `x-openstack-request-id` header, and on errors the body
//! `{"error": {"code": <status>, "title": .., "message": ..}}`.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use ferrostack_api::auth::{validate_token, AuthLayerState};
use ferrostack_api::request::request_context;
use ferrostack_identity::service::bootstrap::{BootstrapOutcome, CatalogService};
use ferrostack_identity::{Identity, IdentityConfig};
use ferrostack_policy::Enforcer;
use ferrostack_store::sqlx::{self, Connection, Executor};
use ferrostack_store::{Db, Engine};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "adminpw";
pub const PUBLIC_URL: &str = "http://cloud.test:5000";
pub const REGION: &str = "RegionOne";
pub const V3: &str = "http://cloud.test:5000/identity/v3";

/// Runs a test body once per configured engine: SQLite always, PostgreSQL when
/// `FERROSTACK_TEST_PG_URL` is set.
///
/// `api_test!(async fn name(c) { ... })` gives the body `c: &TestCloud`, a default cloud;
/// `api_test!(async fn name(engine: e) { ... })` gives the engine, for bodies that build a
/// cloud of their own (`TestCloud::builder(e)...start().await`).
macro_rules! api_test {
    ($(#[$meta:meta])* async fn $name:ident(engine: $engine:ident) $body:block) => {
        $(#[$meta])*
        #[tokio::test]
        async fn $name() {
            for $engine in crate::common::engines() {
                eprintln!("--- {} on {:?}", stringify!($name), $engine);
                $body
            }
        }
    };
    ($(#[$meta:meta])* async fn $name:ident($c:ident) $body:block) => {
        $(#[$meta])*
        #[tokio::test]
        async fn $name() {
            for engine in crate::common::engines() {
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
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let host_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[host_start..].find('/') {
        Some(i) => &base[..host_start + i],
        None => base,
    };
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

/// Settings a test may change before the cloud starts.
pub struct Builder {
    engine: Engine,
    lockout_failure_attempts: u32,
    lockout_duration: Duration,
    token_expiration: Duration,
}

impl Builder {
    pub fn lockout(mut self, attempts: u32, duration: Duration) -> Self {
        self.lockout_failure_attempts = attempts;
        self.lockout_duration = duration;
        self
    }

    pub fn token_expiration(mut self, d: Duration) -> Self {
        self.token_expiration = d;
        self
    }

    pub async fn start(self) -> TestCloud {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, pg_db) = match self.engine {
            Engine::Sqlite => (
                format!("sqlite://{}/ferrostack.db", dir.path().display()),
                None,
            ),
            Engine::Postgres => {
                let server = pg_server_url().expect("FERROSTACK_TEST_PG_URL");
                let name = format!("t_{}", uuid::Uuid::new_v4().simple());
                pg_admin(&server, &format!("CREATE DATABASE {name}")).await;
                (with_database(&server, &name), Some((server, name)))
            }
        };
        let db = Db::connect(&url).await.expect("database");
        assert_eq!(db.engine, self.engine);
        let config = IdentityConfig {
            public_url: PUBLIC_URL.into(),
            region: REGION.into(),
            token_expiration: self.token_expiration,
            key_repository: dir.path().join("fernet-keys"),
            max_active_keys: 3,
            lockout_failure_attempts: self.lockout_failure_attempts,
            lockout_duration: self.lockout_duration,
            admin_project: Default::default(),
        };
        let identity = Identity::new(db, config, Arc::new(Enforcer::with_defaults()))
            .await
            .expect("identity service");
        let boot = identity
            .bootstrap(
                Some(ADMIN_PASSWORD.into()),
                &[CatalogService {
                    service_type: "identity".into(),
                    name: "keystone".into(),
                    path: "/identity".into(),
                }],
            )
            .await
            .expect("bootstrap");
        // As crates/ferrostack/src/server.rs builds it (Cloud::router).
        let validator: Arc<dyn ferrostack_api::TokenValidator> = identity.clone();
        let router = Router::new()
            .nest(
                "/identity",
                ferrostack_identity::api::router(identity.clone()),
            )
            .layer(axum::middleware::from_fn_with_state(
                AuthLayerState { validator },
                validate_token,
            ))
            .layer(axum::middleware::from_fn(request_context));
        TestCloud {
            engine: self.engine,
            identity,
            router,
            boot,
            admin_token: tokio::sync::OnceCell::new(),
            _dir: dir,
            pg_db,
        }
    }
}

/// A user created by a test, with its password.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub password: String,
}

/// Where a role is granted.
#[derive(Debug, Clone, Copy)]
pub enum On<'a> {
    Project(&'a str),
    Domain(&'a str),
    System,
}

pub struct TestCloud {
    pub engine: Engine,
    pub identity: Arc<Identity>,
    pub router: Router,
    pub boot: BootstrapOutcome,
    admin_token: tokio::sync::OnceCell<String>,
    _dir: tempfile::TempDir,
    pg_db: Option<(String, String)>,
}

/// A response: status, headers and the JSON body (`Value::Null` when empty).
pub type Resp = (StatusCode, HeaderMap, Value);

impl TestCloud {
    pub fn builder(engine: Engine) -> Builder {
        Builder {
            engine,
            lockout_failure_attempts: 0,
            lockout_duration: Duration::from_secs(1800),
            token_expiration: Duration::from_secs(3600),
        }
    }

    pub async fn start(engine: Engine) -> TestCloud {
        Self::builder(engine).start().await
    }

    /// Closes the pool and drops the PostgreSQL database of this cloud.
    pub async fn finish(self) {
        self.identity.db.pool.close().await;
        if let Some((server, name)) = &self.pg_db {
            pg_admin(
                server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    }

    pub fn admin_user_id(&self) -> &str {
        &self.boot.admin_user_id
    }

    pub fn admin_project_id(&self) -> &str {
        &self.boot.admin_project_id
    }

    /// Sends a raw request. `path` is absolute (`/identity/v3/...`), or starts with `/v3`
    /// (then `/identity` is put in front).
    pub async fn send(&self, req: Request<Body>) -> Resp {
        let method = req.method().clone();
        let path = req.uri().to_string();
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router never fails");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{method} {path}: body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        let rid = headers
            .get("x-openstack-request-id")
            .unwrap_or_else(|| panic!("{method} {path}: no x-openstack-request-id header"))
            .to_str()
            .unwrap();
        assert!(rid.starts_with("req-"), "{method} {path}: request id {rid}");
        if (status.is_client_error() || status.is_server_error()) && method != Method::HEAD {
            let e = &body["error"];
            assert_eq!(
                e["code"],
                status.as_u16(),
                "{method} {path}: Keystone error body: {body}"
            );
            assert_eq!(
                e["title"],
                status.canonical_reason().unwrap(),
                "{method} {path}: Keystone error title: {body}"
            );
            assert!(
                e["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{method} {path}: Keystone error message: {body}"
            );
            assert_eq!(
                headers.get("content-type").map(|v| v.to_str().unwrap()),
                Some("application/json"),
                "{method} {path}"
            );
        }
        assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{method} {path}: {body}"
        );
        (status, headers, body)
    }

    fn uri(path: &str) -> String {
        if path.starts_with("/v3") {
            format!("/identity{path}")
        } else {
            path.to_string()
        }
    }

    /// A JSON request with an optional `X-Auth-Token`.
    pub async fn req(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(Self::uri(path));
        if let Some(t) = token {
            b = b.header("x-auth-token", t);
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
            None => Body::empty(),
        };
        self.send(b.body(body).unwrap()).await
    }

    /// A request with a raw body and content type.
    pub async fn req_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> Resp {
        let mut b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(Self::uri(path))
            .header("content-type", content_type);
        if let Some(t) = token {
            b = b.header("x-auth-token", t);
        }
        self.send(b.body(Body::from(body.to_vec())).unwrap()).await
    }

    /// A request with extra headers.
    pub async fn req_with_headers(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(Self::uri(path));
        if let Some(t) = token {
            b = b.header("x-auth-token", t);
        }
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
        self.send(b.body(body).unwrap()).await
    }

    /// `req`, asserting the status; returns the body.
    pub async fn expect(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let (s, _, b) = self.req(method, path, token, body).await;
        assert_eq!(s.as_u16(), status, "{method} {path}: {b}");
        b
    }

    /// `expect` with the admin token.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let t = self.admin_token().await;
        self.expect(method, path, Some(&t), body, status).await
    }

    // ---- tokens

    /// `POST /v3/auth/tokens` with the password method (user by id); `scope` is left out
    /// when null.
    pub async fn password_auth(&self, user_id: &str, password: &str, scope: Value) -> Resp {
        self.req(
            "POST",
            "/v3/auth/tokens",
            None,
            Some(password_body(user_id, password, scope)),
        )
        .await
    }

    /// Issues a token and returns it (asserting 201 and an X-Subject-Token).
    pub async fn issue(&self, user_id: &str, password: &str, scope: Value) -> String {
        let (s, h, b) = self.password_auth(user_id, password, scope).await;
        assert_eq!(s, StatusCode::CREATED, "token for {user_id}: {b}");
        subject_token(&h)
    }

    /// A project-scoped token.
    pub async fn token_for(&self, user_id: &str, password: &str, project_id: &str) -> String {
        self.issue(user_id, password, json!({"project": {"id": project_id}}))
            .await
    }

    pub async fn domain_token(&self, user_id: &str, password: &str, domain_id: &str) -> String {
        self.issue(user_id, password, json!({"domain": {"id": domain_id}}))
            .await
    }

    pub async fn system_token(&self, user_id: &str, password: &str) -> String {
        self.issue(user_id, password, json!({"system": {"all": true}}))
            .await
    }

    pub async fn unscoped_token(&self, user_id: &str, password: &str) -> String {
        self.issue(user_id, password, Value::Null).await
    }

    /// The bootstrap admin's token on the admin project (what the openrc gives).
    pub async fn admin_token(&self) -> String {
        self.admin_token
            .get_or_init(|| async {
                let body = json!({"auth": {
                    "identity": {"methods": ["password"], "password": {"user": {
                        "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
                    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
                let (s, h, b) = self.req("POST", "/v3/auth/tokens", None, Some(body)).await;
                assert_eq!(s, StatusCode::CREATED, "admin token: {b}");
                subject_token(&h)
            })
            .await
            .clone()
    }

    pub async fn system_admin_token(&self) -> String {
        self.system_token(&self.boot.admin_user_id.clone(), ADMIN_PASSWORD)
            .await
    }

    // ---- fixtures (made by the admin)

    pub async fn create_domain(&self, name: &str) -> String {
        let b = self
            .admin(
                "POST",
                "/v3/domains",
                Some(json!({"domain": {"name": name}})),
                201,
            )
            .await;
        b["domain"]["id"].as_str().unwrap().to_string()
    }

    pub async fn create_project(&self, name: &str, domain_id: &str) -> String {
        let b = self
            .admin(
                "POST",
                "/v3/projects",
                Some(json!({"project": {"name": name, "domain_id": domain_id}})),
                201,
            )
            .await;
        b["project"]["id"].as_str().unwrap().to_string()
    }

    pub async fn create_child_project(&self, name: &str, parent_id: &str) -> String {
        let b = self
            .admin(
                "POST",
                "/v3/projects",
                Some(json!({"project": {"name": name, "parent_id": parent_id}})),
                201,
            )
            .await;
        b["project"]["id"].as_str().unwrap().to_string()
    }

    pub async fn create_user(&self, name: &str, domain_id: &str) -> TestUser {
        let password = format!("pw-{name}");
        let b = self
            .admin(
                "POST",
                "/v3/users",
                Some(json!({"user": {"name": name, "domain_id": domain_id, "password": password}})),
                201,
            )
            .await;
        TestUser {
            id: b["user"]["id"].as_str().unwrap().to_string(),
            name: name.to_string(),
            domain_id: domain_id.to_string(),
            password,
        }
    }

    pub async fn create_group(&self, name: &str, domain_id: &str) -> String {
        let b = self
            .admin(
                "POST",
                "/v3/groups",
                Some(json!({"group": {"name": name, "domain_id": domain_id}})),
                201,
            )
            .await;
        b["group"]["id"].as_str().unwrap().to_string()
    }

    pub async fn create_role(&self, name: &str) -> String {
        let b = self
            .admin(
                "POST",
                "/v3/roles",
                Some(json!({"role": {"name": name}})),
                201,
            )
            .await;
        b["role"]["id"].as_str().unwrap().to_string()
    }

    /// The id of the global role `name`.
    pub async fn role_id(&self, name: &str) -> String {
        let b = self
            .admin("GET", &format!("/v3/roles?name={name}"), None, 200)
            .await;
        let roles = b["roles"].as_array().unwrap();
        assert_eq!(roles.len(), 1, "role {name}: {b}");
        roles[0]["id"].as_str().unwrap().to_string()
    }

    /// Grants the role named `role` to a user (or group, with `group: true`).
    pub async fn grant(&self, actor_id: &str, group: bool, role: &str, on: On<'_>) {
        let rid = self.role_id(role).await;
        let actors = if group { "groups" } else { "users" };
        let path = match on {
            On::Project(p) => format!("/v3/projects/{p}/{actors}/{actor_id}/roles/{rid}"),
            On::Domain(d) => format!("/v3/domains/{d}/{actors}/{actor_id}/roles/{rid}"),
            On::System => format!("/v3/system/{actors}/{actor_id}/roles/{rid}"),
        };
        self.admin("PUT", &path, None, 204).await;
    }

    /// A user in `domain_id` holding `role` on `on`.
    pub async fn create_user_with_role(
        &self,
        name: &str,
        domain_id: &str,
        role: &str,
        on: On<'_>,
    ) -> TestUser {
        let u = self.create_user(name, domain_id).await;
        self.grant(&u.id, false, role, on).await;
        u
    }

    /// A user of the default domain with `role` on a new project of its own; returns the
    /// user, the project id and a token scoped to it.
    pub async fn project_user(&self, name: &str, role: &str) -> (TestUser, String, String) {
        let p = self
            .create_project(&format!("{name}-project"), "default")
            .await;
        let u = self
            .create_user_with_role(name, "default", role, On::Project(&p))
            .await;
        let t = self.token_for(&u.id, &u.password, &p).await;
        (u, p, t)
    }

    /// Counts rows of `table` straight from the database (to prove nothing was left behind).
    pub async fn count_rows(&self, table: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.identity.db.pool)
            .await
            .unwrap()
    }
}

pub fn password_body(user_id: &str, password: &str, scope: Value) -> Value {
    let mut b = json!({"auth": {"identity": {"methods": ["password"],
        "password": {"user": {"id": user_id, "password": password}}}}});
    if !scope.is_null() {
        b["auth"]["scope"] = scope;
    }
    b
}

pub fn subject_token(h: &HeaderMap) -> String {
    h.get("x-subject-token")
        .expect("X-Subject-Token header")
        .to_str()
        .unwrap()
        .to_string()
}

/// The Keystone error message of an error body.
pub fn message(b: &Value) -> &str {
    b["error"]["message"].as_str().unwrap_or("")
}

/// Ids of the objects in `b[key]`.
pub fn ids(b: &Value, key: &str) -> Vec<String> {
    b[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not a list: {b}"))
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

/// Names of the objects in `b[key]`.
pub fn names(b: &Value, key: &str) -> Vec<String> {
    b[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not a list: {b}"))
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect()
}
