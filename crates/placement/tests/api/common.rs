//! A test cloud with identity and placement services, and helpers to call it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use ferrostack_api::auth::{validate_token, AuthLayerState};
use ferrostack_api::request::request_context;
use ferrostack_identity::service::bootstrap::{BootstrapOutcome, CatalogService};
use ferrostack_identity::{Identity, IdentityConfig};
use ferrostack_placement::PlacementService;
use ferrostack_policy::Enforcer;
use ferrostack_store::sqlx::{self, Connection, Executor};
use ferrostack_store::{Db, Engine};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// Runs the body once per engine with a fresh cloud `c`.
macro_rules! api_test {
    (async fn $name:ident($c:ident) $body:block) => {
        #[tokio::test]
        async fn $name() {
            for engine in crate::common::engines() {
                eprintln!("--- {} on {:?}", stringify!($name), engine);
                let cloud = crate::common::TestCloud::start(engine).await;
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
    pub placement: Arc<PlacementService>,
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

/// A new random UUID.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl TestCloud {
    pub async fn start(engine: Engine) -> TestCloud {
        let dir = tempfile::tempdir().unwrap();
        let url = match engine {
            Engine::Sqlite => format!("sqlite://{}/t.db", dir.path().display()),
            Engine::Postgres => {
                let server = pg_url().unwrap();
                let name = format!("p_{}", uuid::Uuid::new_v4().simple());
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
            ("placement", "placement", "/placement"),
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
        let placement = PlacementService::new(db, policy);
        let validator: Arc<dyn ferrostack_api::TokenValidator> = identity.clone();
        let router = Router::new()
            .nest(
                "/identity",
                ferrostack_identity::api::router(identity.clone()),
            )
            .nest(
                "/placement",
                ferrostack_placement::api::router(placement.clone()),
            )
            .layer(axum::middleware::from_fn_with_state(
                AuthLayerState { validator },
                validate_token,
            ))
            .layer(axum::middleware::from_fn(request_context));
        TestCloud {
            router,
            identity,
            placement,
            boot,
            dir,
            admin: Default::default(),
        }
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
        let resp = self
            .router
            .clone()
            .oneshot(b.body(body).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if parts.status.is_client_error() || parts.status.is_server_error() {
            assert_ne!(
                parts.status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{path}: 500 {v}"
            );
            assert_eq!(
                v["errors"][0]["status"],
                parts.status.as_u16(),
                "{path}: {v}"
            );
            assert!(
                v["errors"][0]["code"]
                    .as_str()
                    .unwrap()
                    .starts_with("placement."),
                "{v}"
            );
        }
        (parts.status, parts.headers, v)
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

    async fn password_token(&self, user: &str, password: &str, project_id: &str) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"id": project_id}}}});
        let req = Request::builder()
            .method(Method::POST)
            .uri("/identity/v3/auth/tokens")
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        resp.headers()
            .get("x-subject-token")
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

    async fn identity_json(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let admin = self.admin().await;
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("x-auth-token", admin);
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
            None => Body::empty(),
        };
        let resp = self
            .router
            .clone()
            .oneshot(b.body(body).unwrap())
            .await
            .unwrap();
        let s = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (s, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// A new project with a user holding `role` on it.
    pub async fn tenant(&self, role: &str) -> Tenant {
        let n = uuid::Uuid::new_v4().simple().to_string();
        let (s, p) = self
            .identity_json(
                Method::POST,
                "/identity/v3/projects",
                Some(json!({"project": {"name": format!("p{n}")}})),
            )
            .await;
        assert_eq!(s, 201);
        let project_id = p["project"]["id"].as_str().unwrap().to_string();
        let (s, u) = self
            .identity_json(
                Method::POST,
                "/identity/v3/users",
                Some(json!({"user": {"name": format!("u{n}"), "password": "pw"}})),
            )
            .await;
        assert_eq!(s, 201);
        let user_id = u["user"]["id"].as_str().unwrap().to_string();
        let (_, roles) = self
            .identity_json(
                Method::GET,
                &format!("/identity/v3/roles?name={role}"),
                None,
            )
            .await;
        let role_id = roles["roles"][0]["id"].as_str().unwrap().to_string();
        let (s, _) = self
            .identity_json(
                Method::PUT,
                &format!("/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}"),
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
