//! The agent protocol over HTTP: a real listener serving the cloud, an `Agent` with the
//! `HttpController` and a fake driver dialing it, and a server's life driven through the API.

use std::sync::Arc;
use std::time::Duration;

use ferrostack_agent::http::{HttpController, PasswordAuth, Ref, Secret};
use ferrostack_agent::Agent;
use ferrostack_agent_api::Controller;
use ferrostack_virt::fake::FakeDriver;
use ferrostack_virt::{Driver, PowerState};
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestCloud;

const HOST: &str = "agent-http-1";
/// Generous: the agent reacts to wake-ups at once, this only bounds a failing test.
const DEADLINE: Duration = Duration::from_secs(30);

/// Serves the cloud's router on 127.0.0.1 on a free port; returns the base URL.
async fn serve(c: &TestCloud) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = c.router.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (format!("http://{addr}"), task)
}

fn admin_auth(c: &TestCloud, base: &str) -> PasswordAuth {
    PasswordAuth {
        auth_url: format!("{base}/identity"),
        user: Ref::Name("admin".into()),
        user_domain: Ref::Id("default".into()),
        password: Secret::new("adminpw"),
        project: Ref::Id(c.admin_project().to_string()),
        project_domain: Ref::Id("default".into()),
    }
}

/// Polls the server until `pred` holds on its body (or it is gone, when `pred` takes Null).
async fn wait_server(c: &TestCloud, id: &str, what: &str, pred: impl Fn(&Value) -> bool) {
    let admin = c.admin().await;
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (s, v) = c
            .call(Method::GET, &format!("/servers/{id}"), &admin, None)
            .await;
        let server = if s == StatusCode::NOT_FOUND {
            Value::Null
        } else {
            v["server"].clone()
        };
        if pred(&server) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "server {id} never became {what}: {server}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn guest_power(driver: &FakeDriver, id: &str) -> Option<PowerState> {
    driver
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.uuid == id)
        .map(|o| o.power)
}

api_test!(
    async fn a_separate_agent_runs_a_server_over_http(c) {
        let scheduler = c.compute.spawn_scheduler();
        let (base, server_task) = serve(c).await;
        let driver = Arc::new(FakeDriver::new(HOST, 8, 16384, 100, Duration::ZERO));
        let controller = Arc::new(HttpController::new(&base, admin_auth(c, &base)).unwrap());
        let agent = Arc::new(Agent::new(HOST, driver.clone(), controller));
        let agent_task = tokio::spawn(agent.run());

        // The agent registers its host: a compute service that is up and a hypervisor.
        let admin = c.admin().await;
        let until = tokio::time::Instant::now() + DEADLINE;
        loop {
            let (s, v) = c
                .call(Method::GET, "/os-services?binary=nova-compute", &admin, None)
                .await;
            assert_eq!(s, StatusCode::OK);
            let up = v["services"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["host"] == HOST && s["state"] == "up");
            if up {
                break;
            }
            assert!(tokio::time::Instant::now() < until, "host never up: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (_, v) = c.call(Method::GET, "/os-hypervisors", &admin, None).await;
        assert!(
            v["hypervisors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["hypervisor_hostname"] == HOST),
            "{v}"
        );

        // A server is placed on it and built by the agent.
        let image = c.make_image(0, 0).await;
        let (s, v) = c
            .nova(
                Method::POST,
                "/servers",
                &admin,
                "2.37",
                Some(json!({"server": {"name": "over-http", "imageRef": image,
                    "flavorRef": "1", "networks": "none"}})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let id = v["server"]["id"].as_str().unwrap().to_string();
        wait_server(c, &id, "ACTIVE", |s| s["status"] == "ACTIVE").await;
        let (_, v) = c
            .call(Method::GET, &format!("/servers/{id}"), &admin, None)
            .await;
        assert_eq!(v["server"]["OS-EXT-SRV-ATTR:host"], HOST);
        assert_eq!(guest_power(&driver, &id).await, Some(PowerState::Running));

        // The console log comes from the agent's driver, through a question it answers.
        let (s, v) = c
            .call(
                Method::POST,
                &format!("/servers/{id}/action"),
                &admin,
                Some(json!({"os-getConsoleOutput": {"length": 50}})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let log = v["output"].as_str().unwrap();
        assert!(log.contains("[fake]"), "{log}");
        let mut conn = c.db.pool.acquire().await.unwrap();
        let left: i64 = ferrostack_store::sqlx::query_scalar("SELECT COUNT(*) FROM agent_queries")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        drop(conn);
        assert_eq!(left, 0, "answered questions are removed");

        // With the controller unreachable, converging fails and leaves the guest alone.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let cut_off = Agent::new(
            HOST,
            driver.clone(),
            Arc::new(HttpController::new(&dead, admin_auth(c, &dead)).unwrap()),
        );
        assert!(cut_off.converge_once().await.is_err());
        assert_eq!(guest_power(&driver, &id).await, Some(PowerState::Running));

        // Stop, then delete: the agent converges the driver each time.
        let (s, _) = c
            .call(
                Method::POST,
                &format!("/servers/{id}/action"),
                &admin,
                Some(json!({"os-stop": null})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        wait_server(c, &id, "SHUTOFF", |s| s["status"] == "SHUTOFF").await;
        assert_eq!(guest_power(&driver, &id).await, Some(PowerState::Shutdown));
        let (s, _) = c
            .call(Method::DELETE, &format!("/servers/{id}"), &admin, None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        wait_server(c, &id, "deleted", Value::is_null).await;
        assert_eq!(guest_power(&driver, &id).await, None);

        agent_task.abort();
        scheduler.abort();
        server_task.abort();
    }
);

api_test!(
    /// A host fetches an image over HTTP into its cache, checked against the image's hash,
    /// and both controller links write the same bytes.
    async fn images_reach_a_remote_host_over_http(c) {
        let (base, server_task) = serve(c).await;
        let http: Arc<dyn Controller> =
            Arc::new(HttpController::new(&base, admin_auth(c, &base)).unwrap());
        let image = c.make_image(0, 0).await;
        let info = http.image(HOST, &image).await.unwrap();
        assert_eq!(info.status, "active");
        assert_eq!(info.size, Some(4096));
        let dir = tempfile::tempdir().unwrap();
        let cache = ferrostack_agent::image_cache::ImageCache::new(dir.path(), HOST, http.clone());
        let cached = cache.ensure(&info).await.unwrap();
        assert_eq!(std::fs::read(&cached).unwrap(), vec![7u8; 4096]);
        let local = ferrostack_compute::agent_link::local_controller(&c.compute);
        let copy = dir.path().join("local-copy");
        local.download_image(HOST, &image, &copy).await.unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), vec![7u8; 4096]);
        let missing = http.image(HOST, "no-such-image").await.unwrap_err();
        assert!(matches!(missing, ferrostack_agent_api::LinkError::Refused { status: 404, .. }), "{missing}");
        server_task.abort();
    }
);

api_test!(
    async fn agent_endpoints_need_an_admin_or_service_token(c) {
        let path = format!("/compute/agent-api/v1/hosts/{HOST}/desired");
        let (s, _, _) = c.raw(Method::GET, &path, None, None, &[]).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let member = c.tenant("member").await;
        let (s, _, _) = c
            .raw(Method::GET, &path, Some(&member.token), None, &[])
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _, _) = c
            .raw(
                Method::POST,
                &format!("/compute/agent-api/v1/hosts/{HOST}/heartbeat"),
                Some(&member.token),
                None,
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // The service role is enough.
        let service = c.tenant("service").await;
        let (s, _, body) = c
            .raw(Method::GET, &path, Some(&service.token), None, &[])
            .await;
        assert_eq!(s, StatusCode::OK);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, json!({"guests": []}));
        // Host names are checked.
        let admin = c.admin().await;
        let (s, _, _) = c
            .raw(
                Method::POST,
                "/compute/agent-api/v1/hosts/bad%20name/heartbeat",
                Some(&admin),
                None,
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        // A long poll with no change returns after its (short) timeout.
        let (s, _, body) = c
            .raw(
                Method::GET,
                &format!("/compute/agent-api/v1/hosts/{HOST}/wait?timeout=0.01"),
                Some(&admin),
                None,
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!({"changed": false})
        );
        c.compute.wakeups.wake(HOST);
        let (_, _, body) = c
            .raw(
                Method::GET,
                &format!("/compute/agent-api/v1/hosts/{HOST}/wait?timeout=30"),
                Some(&admin),
                None,
                &[],
            )
            .await;
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!({"changed": true}),
            "a wake-up before the poll is not lost"
        );
    }
);

/// A wrong password is an error of the controller calls, not a panic or a hang.
#[tokio::test]
async fn a_wrong_password_is_a_link_error() {
    let c = TestCloud::start(ferrostack_store::Engine::Sqlite).await;
    let (base, task) = serve(&c).await;
    let mut auth = admin_auth(&c, &base);
    auth.password = Secret::new("wrong");
    let ctl = HttpController::new(&base, auth).unwrap();
    let e = ctl.heartbeat(HOST).await.unwrap_err();
    assert!(
        matches!(
            e,
            ferrostack_agent_api::LinkError::Refused { status: 401, .. }
        ),
        "{e}"
    );
    assert!(
        !format!("{e:?}").contains("wrong"),
        "the password is not in errors: {e:?}"
    );
    task.abort();
}

/// An agent started while the controller is not reachable yet keeps retrying and registers
/// once it answers.
#[tokio::test]
async fn an_agent_registers_once_the_controller_answers() {
    let c = TestCloud::start(ferrostack_store::Engine::Sqlite).await;
    // A free port nobody listens on yet.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let base = format!("http://{addr}");
    let driver = Arc::new(FakeDriver::new(HOST, 8, 16384, 100, Duration::ZERO));
    let controller = Arc::new(HttpController::new(&base, admin_auth(&c, &base)).unwrap());
    let agent_task = tokio::spawn(Arc::new(Agent::new(HOST, driver, controller)).run());
    let admin = c.admin().await;
    let registered = || async {
        let (_, v) = c.call(Method::GET, "/os-hypervisors", &admin, None).await;
        v["hypervisors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["hypervisor_hostname"] == HOST)
    };
    // Let the agent fail at least once before the controller comes up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!registered().await);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let router = c.router.clone();
    let server_task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    let until = tokio::time::Instant::now() + DEADLINE;
    while !registered().await {
        assert!(
            tokio::time::Instant::now() < until,
            "the agent never registered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agent_task.abort();
    server_task.abort();
}

/// A token revoked under the agent's feet (its user disabled and enabled again) is replaced:
/// the 401 makes the controller client authenticate again and retry.
#[tokio::test]
async fn a_revoked_token_is_renewed() {
    let c = TestCloud::start(ferrostack_store::Engine::Sqlite).await;
    let (base, task) = serve(&c).await;
    let svc_user = c.tenant("service").await;
    let auth = PasswordAuth {
        auth_url: format!("{base}/identity"),
        user: Ref::Id(svc_user.user_id.clone()),
        user_domain: Ref::Id("default".into()),
        password: Secret::new("pw"),
        project: Ref::Id(svc_user.project_id.clone()),
        project_domain: Ref::Id("default".into()),
    };
    let ctl = HttpController::new(&base, auth).unwrap();
    ctl.heartbeat(HOST).await.unwrap();
    let admin = c.admin().await;
    for enabled in [false, true] {
        let (s, _, _) = c
            .raw(
                Method::PATCH,
                &format!("/identity/v3/users/{}", svc_user.user_id),
                Some(&admin),
                Some(json!({"user": {"enabled": enabled}})),
                &[],
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    // The user's earlier token (the one in `svc_user` too) is revoked now.
    let (s, _, _) = c
        .raw(
            Method::POST,
            &format!("/compute/agent-api/v1/hosts/{HOST}/heartbeat"),
            Some(&svc_user.token),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    ctl.heartbeat(HOST).await.unwrap();
    task.abort();
}
