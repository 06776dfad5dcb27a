//! The identity view: every response checked for what Keystone's must have (a request id, and
//! on errors `{"error": {"code", "title", "message"}}`), users, tokens and grants.

use std::ops::Deref;
use std::time::Duration;

use axum::body::Body;
use ferrostack_store::Engine;
use http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::TestCloud as Core;

pub use crate::{engines, ADMIN_PASSWORD};
pub const PUBLIC_URL: &str = "http://cloud.test:5000";
pub const REGION: &str = "RegionOne";
pub const V3: &str = "http://cloud.test:5000/identity/v3";

/// A test cloud seen from the identity API: its catalog lists the identity service only, at
/// [`PUBLIC_URL`].
pub struct IdentityCloud(Core);

impl Deref for IdentityCloud {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.0
    }
}

/// Settings a test may change before the cloud starts.
pub struct Builder(crate::Builder);

impl Builder {
    pub fn lockout(self, attempts: u32, duration: Duration) -> Self {
        Builder(self.0.lockout(attempts, duration))
    }

    pub fn token_expiration(self, d: Duration) -> Self {
        Builder(self.0.token_expiration(d))
    }

    pub async fn start(self) -> IdentityCloud {
        IdentityCloud(self.0.start().await)
    }
}

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

/// A response: status, headers and the JSON body (`Value::Null` when empty).
pub type Resp = (StatusCode, HeaderMap, Value);

impl IdentityCloud {
    pub fn builder(engine: Engine) -> Builder {
        Builder(Core::builder(engine).public_url(PUBLIC_URL).catalog(&[(
            "identity",
            "keystone",
            "/identity",
        )]))
    }

    pub async fn start(engine: Engine) -> IdentityCloud {
        Self::builder(engine).start().await
    }

    pub async fn finish(self) {
        self.0.finish().await
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
        let (status, headers, bytes) = self.send_raw(req).await;
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
        self.0.admin_token().await
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
        ferrostack_store::sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.db.pool)
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
