//! The compute view: Nova error bodies checked under `/compute`, fake hosts, servers and waits.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use ferrostack_compute::ComputeConfig;
use ferrostack_store::sqlx;
use ferrostack_store::Engine;
use http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{json, Value};

pub use crate::Tenant;
use crate::TestCloud as Core;

pub const PUBLIC_URL: &str = "http://cloud.test";

pub use crate::engines;
pub use ferrostack_cloud::local_host_names;

/// A test cloud seen from the compute API.
pub struct ComputeCloud {
    core: Core,
    scheduler_started: AtomicBool,
}

impl Deref for ComputeCloud {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl ComputeCloud {
    pub async fn start(engine: Engine) -> ComputeCloud {
        Self::wrap(Core::builder(engine).public_url(PUBLIC_URL).start().await)
    }

    /// A cloud whose compute settings `tune` adjusts (e.g. a short `service_down_time`).
    pub async fn start_with(
        engine: Engine,
        tune: impl FnOnce(&mut ComputeConfig) + 'static,
    ) -> ComputeCloud {
        Self::wrap(
            Core::builder(engine)
                .public_url(PUBLIC_URL)
                .compute(tune)
                .start()
                .await,
        )
    }

    fn wrap(core: Core) -> ComputeCloud {
        ComputeCloud {
            core,
            scheduler_started: AtomicBool::new(false),
        }
    }

    pub async fn finish(self) {
        self.core.finish().await
    }

    /// Sends a request; returns status, headers and the raw body. Checks every error is a
    /// Nova error body under `/compute`.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header("x-auth-token", t);
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                serde_json::to_vec(&v).unwrap()
            }
            None => vec![],
        };
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (status, headers, bytes) = self.send_raw(b.body(Body::from(body)).unwrap()).await;
        if path.starts_with("/compute") && (status.is_client_error() || status.is_server_error()) {
            let v: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{path}: error body is not JSON"));
            let inner = v.as_object().and_then(|o| o.values().next()).cloned();
            assert_eq!(
                inner.as_ref().and_then(|i| i["code"].as_u64()),
                Some(u64::from(status.as_u16())),
                "{path}: Nova error body {v}"
            );
        }
        (status, headers, bytes)
    }

    /// A compute call at microversion `mv` ("2.1" .. "2.96"); `path` is under
    /// `/compute/v2.1`. Returns status and JSON body (Null when empty).
    pub async fn nova(
        &self,
        method: Method,
        path: &str,
        token: &str,
        mv: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let header = format!("compute {mv}");
        let (s, _, bytes) = self
            .raw(
                method,
                &format!("/compute/v2.1{path}"),
                Some(token),
                body,
                &[("openstack-api-version", &header)],
            )
            .await;
        (s, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// [`Self::nova`] at the base microversion 2.1.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.nova(method, path, token, "2.1", body).await
    }

    /// The Nova error message of a body (`{"badRequest": {"message": ...}}`).
    pub fn message(v: &Value) -> String {
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(|i| i["message"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// A token of the bootstrap admin on the admin project.
    pub async fn admin(&self) -> String {
        self.admin_token().await
    }

    pub fn admin_project(&self) -> &str {
        &self.boot.admin_project_id
    }

    /// A new project with a user holding `role` on it.
    pub async fn tenant(&self, role: &str) -> Tenant {
        self.new_tenant(role).await
    }

    /// A new user holding `role` on an existing project.
    pub async fn user_on(&self, project_id: &str, role: &str) -> Tenant {
        self.new_user_on(project_id, role).await
    }

    /// Registers a `nova-compute` service on `host` as if its agent had just heartbeaten
    /// (`up`), or had been silent for an hour.
    pub async fn add_compute_service(&self, host: &str, up: bool) {
        let now = ferrostack_store::now_micros();
        let seen = if up { now } else { now - 3_600_000_000 };
        let mut tx = self.db.begin_write().await.unwrap();
        let id = ferrostack_store::next_id(&mut tx, ferrostack_store::IdSeq::ComputeServices)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO compute_services (id, uuid, host, service_binary, topic, disabled, \
             forced_down, last_seen_up, created_at, updated_at) \
             VALUES ($1, $2, $3, 'nova-compute', 'compute', 0, 0, $4, $5, $4)",
        )
        .bind(id)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(host)
        .bind(seen)
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    /// Registers the compute node of `host` and its placement provider (empty inventory), as
    /// an agent would; returns the node's (= provider's) uuid.
    pub async fn add_compute_node(&self, host: &str) -> String {
        let uuid = uuid::Uuid::new_v4().to_string();
        let mut tx = self.db.begin_write().await.unwrap();
        let id = ferrostack_store::next_id(&mut tx, ferrostack_store::IdSeq::ComputeNodes)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO compute_nodes (id, uuid, host, hypervisor_hostname, hypervisor_type, \
             vcpus, memory_mb, local_gb, created_at) VALUES ($1, $2, $3, $3, 'fake', 4, 8192, 100, $4)",
        )
        .bind(id)
        .bind(&uuid)
        .bind(host)
        .bind(ferrostack_store::now_micros())
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        self.placement
            .sync_compute_provider(&ferrostack_placement::ComputeProvider {
                uuid: uuid.clone(),
                name: host.to_string(),
                inventories: Default::default(),
                traits: vec![],
            })
            .await
            .unwrap();
        uuid
    }

    /// Disables (or enables) the compute service of `host`.
    pub async fn set_service_disabled(&self, host: &str, disabled: bool) {
        sqlx::query("UPDATE compute_services SET disabled = $2 WHERE host = $1")
            .bind(host)
            .bind(i64::from(disabled))
            .execute(&self.db.writer)
            .await
            .unwrap();
    }

    /// Inserts an instance row (what the servers code creates) for usage and quota tests.
    pub async fn add_instance(&self, t: &InstanceRow<'_>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let flavor = json!({"id": "1", "name": t.flavor_name, "vcpus": t.vcpus, "ram": t.ram,
            "disk": t.disk, "ephemeral": 0, "swap": 0, "extra_specs": {}});
        sqlx::query(
            "INSERT INTO instances (uuid, display_name, hostname, project_id, user_id, flavor, \
             vcpus, memory_mb, root_gb, vm_state, reservation_id, launched_at, terminated_at, \
             created_at, deleted_at, deleted) \
             VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, 'r-test', $10, $11, $12, $13, $14)",
        )
        .bind(&id)
        .bind(t.name)
        .bind(t.project_id)
        .bind(t.user_id)
        .bind(flavor.to_string())
        .bind(t.vcpus)
        .bind(t.ram)
        .bind(t.disk)
        .bind(if t.terminated_at.is_some() {
            "deleted"
        } else {
            "active"
        })
        .bind(t.launched_at)
        .bind(t.terminated_at)
        .bind(t.launched_at.unwrap_or_else(ferrostack_store::now_micros))
        .bind(t.terminated_at)
        .bind(i64::from(t.terminated_at.is_some()))
        .execute(&self.db.writer)
        .await
        .unwrap();
        id
    }
}

/// An instance row for [`ComputeCloud::add_instance`].
pub struct InstanceRow<'a> {
    pub name: &'a str,
    pub project_id: &'a str,
    pub user_id: &'a str,
    pub flavor_name: &'a str,
    pub vcpus: i64,
    pub ram: i64,
    pub disk: i64,
    pub launched_at: Option<i64>,
    pub terminated_at: Option<i64>,
}

/// Per-host capacity of the fake hosts of [`ComputeCloud::start_hosts`]: (vcpus, memory_mb,
/// disk_gb).
pub const HOST_CAPACITY: (i64, i64, i64) = (8, 16384, 200);

/// How long a test waits for the cloud to converge before it fails. Generous: the tests
/// assert what happens, not how fast.
pub const DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------- hosts and servers

impl ComputeCloud {
    /// Starts the scheduler loop (once) and `n` fake hosts `host-1..n` (`host` when n is 1)
    /// with [`HOST_CAPACITY`], and waits until all of them are schedulable. Returns their
    /// names.
    pub async fn start_hosts(&self, n: usize) -> Vec<String> {
        self.start_scheduler();
        for h in self.spawn_fake_hosts("host", n, HOST_CAPACITY) {
            self.track(h);
        }
        let names = ferrostack_cloud::local_host_names("host", n);
        for h in &names {
            self.wait_host(h).await;
        }
        names
    }

    /// `n` fake hosts (`prefix`, or `prefix-1..n`) with in-process agents and no driver
    /// delay, as the wiring starts them (`Cloud::spawn_fake_hosts`).
    pub fn spawn_fake_hosts(
        &self,
        prefix: &str,
        n: usize,
        capacity: (i64, i64, i64),
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.cloud
            .spawn_fake_hosts(prefix, n, capacity, Duration::ZERO)
    }

    /// Starts the scheduling loop of the compute service (once per cloud).
    pub fn start_scheduler(&self) {
        if !self.scheduler_started.swap(true, Ordering::SeqCst) {
            self.track(self.compute.spawn_scheduler());
        }
    }

    /// Starts one agent for `host` over `driver`; the handle stops it (abort = crash).
    pub fn spawn_agent(
        &self,
        host: &str,
        driver: Arc<dyn ferrostack_virt::Driver>,
    ) -> tokio::task::AbortHandle {
        let h = ferrostack_compute::agent_link::spawn_agent(&self.compute, host, driver);
        let abort = h.abort_handle();
        self.track(h);
        abort
    }

    /// Waits until `host` is registered with capacity (as the scheduler sees it).
    pub async fn wait_host(&self, host: &str) {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let states = self.compute.load_host_states().await.unwrap();
            if states.iter().any(|s| s.host == host && s.capacity.vcpu > 0) {
                // The scheduler caches host states briefly; start from what is there now.
                self.compute.hosts.invalidate().await;
                return;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "host {host} never registered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A public, active raw image (uploaded by the admin) with the given minimums.
    pub async fn make_image(&self, min_disk: i64, min_ram: i64) -> String {
        let admin = self.admin().await;
        let (s, _, b) = self
            .raw(
                Method::POST,
                "/image/v2/images",
                Some(&admin),
                Some(
                    json!({"name": "img", "disk_format": "raw", "container_format": "bare",
                    "visibility": "public", "min_disk": min_disk, "min_ram": min_ram}),
                ),
                &[],
            )
            .await;
        assert_eq!(s, 201, "{}", String::from_utf8_lossy(&b));
        let id = serde_json::from_slice::<Value>(&b).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let req = Request::builder()
            .method(Method::PUT)
            .uri(format!("/image/v2/images/{id}/file"))
            .header("x-auth-token", &admin)
            .header("content-type", "application/octet-stream")
            .body(Body::from(vec![7u8; 4096]))
            .unwrap();
        let (s, _, _) = self.send_raw(req).await;
        assert_eq!(s, 204);
        id
    }

    /// The image servers boot from unless a test says otherwise (made once per cloud).
    pub async fn image_id(&self) -> String {
        self.default_image
            .get_or_init(|| self.make_image(0, 0))
            .await
            .clone()
    }

    /// POST /servers at microversion `mv` with `server` (name, imageRef, flavorRef and
    /// networks "none" filled in unless given) and `hints`.
    pub async fn create_server_with(
        &self,
        token: &str,
        mv: &str,
        server: Value,
        hints: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut s = json!({"name": "vm", "imageRef": self.image_id().await, "flavorRef": "1",
            "networks": "none"});
        for (k, v) in server.as_object().expect("server is an object") {
            if v.is_null() {
                s.as_object_mut().unwrap().remove(k);
            } else {
                s[k] = v.clone();
            }
        }
        let mut body = json!({ "server": s });
        if let Some(h) = hints {
            body["os:scheduler_hints"] = h;
        }
        self.nova(Method::POST, "/servers", token, mv, Some(body))
            .await
    }

    /// Creates a server named `name` (m1.tiny, the test image, no network); returns its id.
    pub async fn create_server(&self, token: &str, name: &str) -> String {
        let (s, v) = self
            .create_server_with(token, "2.37", json!({ "name": name }), None)
            .await;
        assert_eq!(s, 202, "{v}");
        v["server"]["id"].as_str().unwrap().to_string()
    }

    /// Creates a server and waits until it is ACTIVE; returns its id.
    pub async fn boot(&self, token: &str, name: &str) -> String {
        let id = self.create_server(token, name).await;
        self.wait_status(&id, "ACTIVE").await;
        id
    }

    /// The server as the admin sees it at the newest microversion (Null when gone).
    pub async fn server(&self, id: &str) -> Value {
        let admin = self.admin().await;
        let (s, v) = self
            .nova(Method::GET, &format!("/servers/{id}"), &admin, "2.96", None)
            .await;
        if s == StatusCode::NOT_FOUND {
            return Value::Null;
        }
        assert_eq!(s, 200, "{v}");
        v["server"].clone()
    }

    /// Polls the server until its status is `status` with no task in progress; fails on an
    /// unexpected ERROR and after [`DEADLINE`]. Returns the server (admin view, 2.96).
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let s = self.server(id).await;
            if s["status"] == status && s["OS-EXT-STS:task_state"].is_null() {
                return s;
            }
            assert!(
                status == "ERROR" || s["status"] != "ERROR",
                "server {id} went to ERROR while waiting for {status}: {s}"
            );
            assert!(
                tokio::time::Instant::now() < until,
                "server {id} never reached {status}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the server is gone (404 to the admin).
    pub async fn wait_gone(&self, id: &str) {
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let s = self.server(id).await;
            if s.is_null() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "server {id} never went away: {s}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Posts a server action; returns status and body.
    pub async fn action(
        &self,
        token: &str,
        id: &str,
        mv: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.nova(
            Method::POST,
            &format!("/servers/{id}/action"),
            token,
            mv,
            Some(body),
        )
        .await
    }

    /// Instance rows in the database (deleted ones too), for "nothing left behind" checks.
    pub async fn instance_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM instances")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Hosts of the given servers, as the admin sees them.
    pub async fn hosts_of(&self, ids: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for id in ids {
            out.push(
                self.server(id).await["OS-EXT-SRV-ATTR:host"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        out
    }
}
