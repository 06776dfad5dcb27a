//! An agent that dies in the middle of an operation: a new agent for the same host converges
//! again, so nothing stays in BUILD or `deleting`.

use std::sync::Arc;
use std::time::Duration;

use ferrostack_virt::fake::FakeDriver;
use ferrostack_virt::{Driver, GuestSpec, HostInfo, Observed, Result};
use http::Method;
use serde_json::json;
use tokio::sync::Notify;

use crate::common::HOST_CAPACITY;

/// A fake host whose spawns never finish (a guest that hangs while booting): it says when a
/// spawn started, then waits until the agent is killed.
struct HangingSpawn {
    inner: FakeDriver,
    spawning: Arc<Notify>,
}

#[async_trait::async_trait]
impl Driver for HangingSpawn {
    fn name(&self) -> &'static str {
        "fake"
    }
    async fn host_info(&self) -> Result<HostInfo> {
        self.inner.host_info().await
    }
    async fn list(&self) -> Result<Vec<Observed>> {
        self.inner.list().await
    }
    async fn spawn(&self, _spec: &GuestSpec) -> Result<()> {
        self.spawning.notify_one();
        std::future::pending().await
    }
    async fn destroy(&self, uuid: &str) -> Result<()> {
        self.inner.destroy(uuid).await
    }
    async fn power_on(&self, uuid: &str) -> Result<()> {
        self.inner.power_on(uuid).await
    }
    async fn power_off(&self, uuid: &str) -> Result<()> {
        self.inner.power_off(uuid).await
    }
    async fn reboot(&self, uuid: &str, hard: bool) -> Result<()> {
        self.inner.reboot(uuid, hard).await
    }
    async fn pause(&self, uuid: &str) -> Result<()> {
        self.inner.pause(uuid).await
    }
    async fn unpause(&self, uuid: &str) -> Result<()> {
        self.inner.unpause(uuid).await
    }
    async fn suspend(&self, uuid: &str) -> Result<()> {
        self.inner.suspend(uuid).await
    }
    async fn resume(&self, uuid: &str) -> Result<()> {
        self.inner.resume(uuid).await
    }
    async fn console_output(&self, uuid: &str, max_lines: Option<usize>) -> Result<String> {
        self.inner.console_output(uuid, max_lines).await
    }
    async fn diagnostics(&self, uuid: &str) -> Result<serde_json::Value> {
        self.inner.diagnostics(uuid).await
    }
    async fn inject_nmi(&self, uuid: &str) -> Result<()> {
        self.inner.inject_nmi(uuid).await
    }
    async fn rescue(&self, uuid: &str, image: &str) -> Result<()> {
        self.inner.rescue(uuid, image).await
    }
    async fn unrescue(&self, uuid: &str) -> Result<()> {
        self.inner.unrescue(uuid).await
    }
    async fn snapshot(&self, uuid: &str, dest: &std::path::Path) -> Result<String> {
        self.inner.snapshot(uuid, dest).await
    }
    async fn resize(&self, spec: &GuestSpec) -> Result<()> {
        self.inner.resize(spec).await
    }
    async fn hand_over(&self, uuid: &str, dest: &std::path::Path) -> Result<bool> {
        self.inner.hand_over(uuid, dest).await
    }
    async fn receive(&self, spec: &GuestSpec, disk: Option<&std::path::Path>) -> Result<()> {
        self.inner.receive(spec, disk).await
    }
    async fn incoming(&self, spec: &GuestSpec, sent: bool) -> Result<ferrostack_virt::Incoming> {
        self.inner.incoming(spec, sent).await
    }
    async fn send(
        &self,
        uuid: &str,
        endpoint: &str,
        force_complete: bool,
    ) -> Result<ferrostack_virt::Outgoing> {
        self.inner.send(uuid, endpoint, force_complete).await
    }
    async fn stay(&self, uuid: &str) -> Result<()> {
        self.inner.stay(uuid).await
    }
    async fn set_nics(&self, spec: &GuestSpec) -> Result<()> {
        self.inner.set_nics(spec).await
    }
    async fn open_console(
        &self,
        uuid: &str,
        kind: ferrostack_virt::ConsoleKind,
    ) -> Result<Box<dyn ferrostack_virt::ConsoleIo>> {
        self.inner.open_console(uuid, kind).await
    }
}

fn fake(host: &str) -> Arc<FakeDriver> {
    let (v, m, d) = HOST_CAPACITY;
    Arc::new(FakeDriver::new(host, v, m, d, Duration::ZERO))
}

api_test!(async fn agent_killed_during_spawn_converges_after_restart(c) {
    c.start_scheduler();
    let spawning = Arc::new(Notify::new());
    let (v, mem, d) = HOST_CAPACITY;
    let hanging = Arc::new(HangingSpawn {
        inner: FakeDriver::new("h1", v, mem, d, Duration::ZERO),
        spawning: spawning.clone(),
    });
    let first = c.spawn_agent("h1", hanging);
    c.wait_host("h1").await;
    let m = c.tenant("member").await;
    let id = c.create_server(&m.token, "vm").await;
    tokio::time::timeout(crate::common::DEADLINE, spawning.notified())
        .await
        .expect("the agent started spawning the guest");
    first.abort();
    let s = c.server(&id).await;
    assert_eq!((s["status"].as_str(), s["OS-EXT-SRV-ATTR:host"].as_str()), (Some("BUILD"), Some("h1")), "{s}");

    // A new agent for the same host (a fresh driver: the old guest died with the process).
    let driver = fake("h1");
    c.spawn_agent("h1", driver.clone());
    let s = c.wait_status(&id, "ACTIVE").await;
    assert_eq!(s["OS-EXT-SRV-ATTR:host"], "h1");
    assert_eq!(s["OS-EXT-STS:power_state"], 1);
    let guests = driver.list().await.unwrap();
    assert_eq!(guests.len(), 1);
    assert_eq!(guests[0].uuid, id);
    let (_, v) = c.call(Method::GET, &format!("/servers/{id}/os-instance-actions"), &m.token, None).await;
    assert_eq!(v["instanceActions"][0]["action"], "create");
    assert!(v["instanceActions"][0]["message"].is_null(), "{v}");
});

api_test!(async fn delete_while_agent_is_down_completes_after_restart(c) {
    c.start_scheduler();
    let driver = fake("h1");
    let first = c.spawn_agent("h1", driver.clone());
    c.wait_host("h1").await;
    let m = c.tenant("member").await;
    let keep = c.boot(&m.token, "keep").await;
    let gone = c.boot(&m.token, "gone").await;
    assert_eq!(driver.list().await.unwrap().len(), 2);
    first.abort();

    assert_eq!(c.call(Method::DELETE, &format!("/servers/{gone}"), &m.token, None).await.0, 204);
    // Nobody removes the guest yet: the server shows it is being deleted.
    let s = c.server(&gone).await;
    assert_eq!(s["OS-EXT-STS:task_state"], "deleting", "{s}");
    // A stop asked while the agent is down is done after the restart too.
    assert_eq!(c.action(&m.token, &keep, "2.1", json!({"os-stop": null})).await.0, 202);

    // The same host's agent comes back (same driver: the guests survived the agent).
    c.spawn_agent("h1", driver.clone());
    c.wait_gone(&gone).await;
    c.wait_status(&keep, "SHUTOFF").await;
    let guests = driver.list().await.unwrap();
    assert_eq!(guests.len(), 1);
    assert_eq!(guests[0].uuid, keep);
    assert_eq!(guests[0].power, ferrostack_virt::PowerState::Shutdown);
    let (_, v) = c.call(Method::GET, "/os-hypervisors/statistics", &c.admin().await, None).await;
    assert_eq!(v["hypervisor_statistics"]["running_vms"], 1, "{v}");
});

api_test!(async fn failed_snapshot_leaves_the_server_as_it_was(c) {
    c.start_scheduler();
    let driver = fake("h1");
    let first = c.spawn_agent("h1", driver.clone());
    c.wait_host("h1").await;
    let m = c.tenant("member").await;
    let id = c.boot(&m.token, "vm").await;
    first.abort();

    // The snapshot waits for the agent; its image is deleted meanwhile, so the upload fails.
    let (s, b) = c.action(&m.token, &id, "2.45", json!({"createImage": {"name": "snap"}})).await;
    assert_eq!(s, 202, "{b}");
    let image = b["image_id"].as_str().unwrap().to_string();
    assert_eq!(c.server(&id).await["OS-EXT-STS:task_state"], "image_snapshot");
    let (s, _, _) = c
        .raw(Method::DELETE, &format!("/image/v2/images/{image}"), Some(&m.token), None, &[])
        .await;
    assert_eq!(s, 204);
    c.spawn_agent("h1", driver.clone());

    // Not ERROR: the guest never stopped running, as Nova only reverts the task state.
    let s = c.wait_status(&id, "ACTIVE").await;
    assert_eq!(s["OS-EXT-STS:power_state"], 1, "{s}");
    assert_eq!(s["OS-EXT-STS:vm_state"], "active");
    assert_eq!(driver.list().await.unwrap().len(), 1);
    let (_, v) = c.call(Method::GET, &format!("/servers/{id}/os-instance-actions"), &m.token, None).await;
    assert_eq!(v["instanceActions"][0]["action"], "createImage", "{v}");
    assert_eq!(v["instanceActions"][0]["message"], "Error", "{v}");
    // The server takes further actions.
    assert_eq!(c.action(&m.token, &id, "2.1", json!({"os-stop": null})).await.0, 202);
    c.wait_status(&id, "SHUTOFF").await;
});
