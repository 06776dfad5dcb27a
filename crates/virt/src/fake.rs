//! The `fake` driver: guests are entries in memory that go through the same transitions as
//! real ones (a paused guest cannot be suspended, a stopped one cannot be paused, ...), with an
//! optional delay per operation to make builds take time in tests.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::{
    Driver, DriverError, GuestSpec, HostInfo, MoveProgress, Observed, Outgoing, PowerState, Result,
};

struct Guest {
    spec: GuestSpec,
    power: PowerState,
    console: Vec<String>,
    started: Instant,
    /// The rescue image while rescued.
    rescued: Option<String>,
    /// A live migration being sent from here.
    sending: Option<Sending>,
}

/// A simulated live migration on its source.
struct Sending {
    /// Steps still to go before all is sent.
    left: u32,
    /// The guest's power when the migration began (it comes back to it when called off).
    prior: PowerState,
}

pub struct FakeDriver {
    host: String,
    vcpus: i64,
    memory_mb: i64,
    local_gb: i64,
    delay: Duration,
    booted: Instant,
    guests: Mutex<HashMap<String, Guest>>,
    /// How many steps a live migration takes after its first (see [`FakeDriver::set_migration_steps`]).
    migration_steps: std::sync::atomic::AtomicU32,
    /// Destroys fail while set (see [`FakeDriver::set_destroys_failing`]).
    destroys_failing: std::sync::atomic::AtomicBool,
    /// Plugs the simulated taps of guests' ports (a simulated data plane); None: no NICs.
    vifs: Option<std::sync::Arc<dyn crate::vif::VifPlugger>>,
}

impl FakeDriver {
    /// A simulated host with the given capacity; `delay` is slept by every guest operation.
    pub fn new(host: &str, vcpus: i64, memory_mb: i64, local_gb: i64, delay: Duration) -> Self {
        FakeDriver {
            host: host.to_string(),
            vcpus,
            memory_mb,
            local_gb,
            delay,
            booted: Instant::now(),
            guests: Mutex::new(HashMap::new()),
            migration_steps: std::sync::atomic::AtomicU32::new(1),
            destroys_failing: std::sync::atomic::AtomicBool::new(false),
            vifs: None,
        }
    }

    /// Guests' ports get simulated taps, plugged by `vifs` as they are made and unplugged as
    /// they go (the way a QEMU's taps come and go with it).
    pub fn with_vifs(mut self, vifs: std::sync::Arc<dyn crate::vif::VifPlugger>) -> Self {
        self.vifs = Some(vifs);
        self
    }

    /// How many more steps ([`Driver::send`] calls) a live migration from this host takes
    /// after the one that starts it: 1 by default; `u32::MAX` keeps it going until it is
    /// forced to complete or called off (as a guest that dirties memory faster than the link
    /// carries it), for tests of force-complete and abort.
    pub fn set_migration_steps(&self, steps: u32) {
        self.migration_steps
            .store(steps, std::sync::atomic::Ordering::Relaxed);
    }

    /// Makes every destroy fail while `failing` (a host that cannot remove its guests for a
    /// while), for tests of what waits for a guest to be removed.
    pub fn set_destroys_failing(&self, failing: bool) {
        self.destroys_failing
            .store(failing, std::sync::atomic::Ordering::Relaxed);
    }

    async fn pause_a_moment(&self) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }

    /// Moves a guest from one of `from` to `to`, or says why not.
    fn transition(
        &self,
        uuid: &str,
        from: &[PowerState],
        to: PowerState,
        what: &str,
    ) -> Result<()> {
        let mut guests = self.guests.lock();
        let g = guests
            .get_mut(uuid)
            .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
        if g.power == to {
            return Ok(());
        }
        if !from.contains(&g.power) {
            return Err(DriverError::failed(format!(
                "cannot {what} a guest that is {:?}",
                g.power
            )));
        }
        g.power = to;
        g.console.push(format!("[fake] {what}: now {to:?}"));
        Ok(())
    }
}

#[async_trait::async_trait]
impl Driver for FakeDriver {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn host_info(&self) -> Result<HostInfo> {
        Ok(HostInfo {
            // The agent adds its data plane's endpoint.
            vtep: None,
            hypervisor_type: "fake".into(),
            hypervisor_version: 1000,
            vcpus: self.vcpus,
            memory_mb: self.memory_mb,
            local_gb: self.local_gb,
            cpu_info: serde_json::json!({"arch": "x86_64", "model": "fake", "vendor": "ferrostack",
                "topology": {"sockets": 1, "cores": self.vcpus, "threads": 1}}),
            traits: vec![
                "COMPUTE_NET_ATTACH_INTERFACE".into(),
                "COMPUTE_TRUSTED_CERTS".into(),
                "HW_CPU_X86_SSE2".into(),
            ],
            uptime_seconds: i64::try_from(self.booted.elapsed().as_secs()).unwrap_or(i64::MAX),
        })
    }

    async fn list(&self) -> Result<Vec<Observed>> {
        Ok(self
            .guests
            .lock()
            .iter()
            .map(|(uuid, g)| Observed {
                uuid: uuid.clone(),
                power: g.power,
            })
            .collect())
    }

    async fn spawn(&self, spec: &GuestSpec) -> Result<()> {
        self.pause_a_moment().await;
        let fresh = !self.guests.lock().contains_key(&spec.uuid);
        if fresh {
            if let Some(vifs) = &self.vifs {
                for vif in crate::vif::port_vifs(spec) {
                    vifs.plug(&vif).await?;
                }
            }
        }
        let mut guests = self.guests.lock();
        guests.entry(spec.uuid.clone()).or_insert_with(|| Guest {
            spec: spec.clone(),
            power: PowerState::Running,
            console: vec![
                format!("[fake] {} booting on {}", spec.uuid, self.host),
                format!(
                    "[fake] {} vCPU, {} MiB memory, {} GiB root disk from image {}",
                    spec.vcpus, spec.memory_mb, spec.root_gb, spec.image_ref
                ),
                "[fake] kernel: simulated guest, no real devices".to_string(),
                format!("[fake] hostname set to {}", spec.hostname),
                format!(
                    "testvm ready hostname={} instance_id={} (simulated by the fake driver)",
                    spec.hostname, spec.uuid
                ),
            ],
            started: Instant::now(),
            rescued: None,
            sending: None,
        });
        Ok(())
    }

    async fn destroy(&self, uuid: &str) -> Result<()> {
        self.pause_a_moment().await;
        if self
            .destroys_failing
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(DriverError::failed(format!(
                "guest {uuid} cannot be removed now (simulated)"
            )));
        }
        let gone = self.guests.lock().remove(uuid);
        if let (Some(g), Some(vifs)) = (gone, &self.vifs) {
            for vif in crate::vif::port_vifs(&g.spec) {
                vifs.unplug(&vif).await?;
            }
        }
        Ok(())
    }

    async fn set_nics(&self, spec: &GuestSpec) -> Result<()> {
        let before = match self.guests.lock().get(&spec.uuid) {
            Some(g) => g.spec.clone(),
            None => return Err(DriverError::NotFound(spec.uuid.clone())),
        };
        let (added, removed) = crate::vif::changed_vifs(&before, spec);
        if let Some(vifs) = &self.vifs {
            for vif in &removed {
                vifs.unplug(vif).await?;
            }
            for vif in &added {
                vifs.plug(vif).await?;
            }
        }
        if let Some(g) = self.guests.lock().get_mut(&spec.uuid) {
            g.spec.nics = spec.nics.clone();
            for v in &added {
                g.console
                    .push(format!("[fake] NIC {} ({}) plugged", v.tap, v.mac));
            }
            for v in &removed {
                g.console
                    .push(format!("[fake] NIC {} ({}) unplugged", v.tap, v.mac));
            }
        }
        Ok(())
    }

    async fn power_on(&self, uuid: &str) -> Result<()> {
        self.pause_a_moment().await;
        self.transition(
            uuid,
            &[
                PowerState::Shutdown,
                PowerState::Crashed,
                PowerState::NoState,
            ],
            PowerState::Running,
            "power on",
        )
    }

    async fn power_off(&self, uuid: &str) -> Result<()> {
        self.pause_a_moment().await;
        self.transition(
            uuid,
            &[
                PowerState::Running,
                PowerState::Paused,
                PowerState::Suspended,
                PowerState::Crashed,
            ],
            PowerState::Shutdown,
            "power off",
        )
    }

    async fn reboot(&self, uuid: &str, hard: bool) -> Result<()> {
        self.pause_a_moment().await;
        let mut guests = self.guests.lock();
        let g = guests
            .get_mut(uuid)
            .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
        if !hard && g.power != PowerState::Running {
            return Err(DriverError::failed(format!(
                "cannot soft reboot a guest that is {:?}",
                g.power
            )));
        }
        g.power = PowerState::Running;
        g.started = Instant::now();
        g.console.push(format!(
            "[fake] {} reboot; testvm ready hostname={} instance_id={}",
            if hard { "hard" } else { "soft" },
            g.spec.hostname,
            g.spec.uuid
        ));
        Ok(())
    }

    async fn pause(&self, uuid: &str) -> Result<()> {
        self.transition(uuid, &[PowerState::Running], PowerState::Paused, "pause")
    }

    async fn unpause(&self, uuid: &str) -> Result<()> {
        self.transition(uuid, &[PowerState::Paused], PowerState::Running, "unpause")
    }

    async fn suspend(&self, uuid: &str) -> Result<()> {
        self.pause_a_moment().await;
        self.transition(
            uuid,
            &[PowerState::Running, PowerState::Paused],
            PowerState::Suspended,
            "suspend",
        )
    }

    async fn resume(&self, uuid: &str) -> Result<()> {
        self.pause_a_moment().await;
        self.transition(
            uuid,
            &[PowerState::Suspended],
            PowerState::Running,
            "resume",
        )
    }

    async fn console_output(&self, uuid: &str, max_lines: Option<usize>) -> Result<String> {
        let guests = self.guests.lock();
        let g = guests
            .get(uuid)
            .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
        let skip = max_lines.map_or(0, |n| g.console.len().saturating_sub(n));
        Ok(g.console[skip..].join("\n") + "\n")
    }

    async fn diagnostics(&self, uuid: &str) -> Result<serde_json::Value> {
        let guests = self.guests.lock();
        let g = guests
            .get(uuid)
            .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
        Ok(serde_json::json!({
            "state": format!("{:?}", g.power).to_lowercase(),
            "driver": "fake",
            "hypervisor": "fake",
            "hypervisor_os": "linux",
            "uptime": g.started.elapsed().as_secs(),
            "config_drive": false,
            "num_cpus": g.spec.vcpus,
            "num_nics": 0,
            "num_disks": 1,
            "memory_details": {"maximum": g.spec.memory_mb, "used": 0},
            "cpu_details": [], "nic_details": [], "disk_details": [],
        }))
    }

    async fn inject_nmi(&self, uuid: &str) -> Result<()> {
        let mut guests = self.guests.lock();
        let g = guests
            .get_mut(uuid)
            .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
        g.console
            .push("[fake] NMI received: kernel panic - dumping".into());
        g.power = PowerState::Crashed;
        Ok(())
    }

    async fn resize(&self, spec: &GuestSpec) -> Result<()> {
        self.pause_a_moment().await;
        let mut guests = self.guests.lock();
        let g = guests
            .get_mut(&spec.uuid)
            .ok_or_else(|| DriverError::NotFound(spec.uuid.clone()))?;
        if g.power != PowerState::Shutdown {
            return Err(DriverError::failed(format!(
                "guest {} must be powered off to be resized",
                spec.uuid
            )));
        }
        g.console.push(format!(
            "[fake] resized to {} vCPU, {} MiB memory, {} GiB root disk",
            spec.vcpus, spec.memory_mb, spec.root_gb
        ));
        g.spec.vcpus = spec.vcpus;
        g.spec.memory_mb = spec.memory_mb;
        g.spec.root_gb = g.spec.root_gb.max(spec.root_gb);
        Ok(())
    }

    async fn rescue(&self, uuid: &str, rescue_image_ref: &str) -> Result<()> {
        self.pause_a_moment().await;
        let mut guests = self.guests.lock();
        let g = guests
            .get_mut(uuid)
            .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
        if g.rescued.is_none() {
            g.console
                .push(format!("[fake] rescue: booting {rescue_image_ref}"));
            g.rescued = Some(rescue_image_ref.to_string());
        }
        g.power = PowerState::Running;
        Ok(())
    }

    async fn unrescue(&self, uuid: &str) -> Result<()> {
        self.pause_a_moment().await;
        let mut guests = self.guests.lock();
        let g = guests
            .get_mut(uuid)
            .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
        if g.rescued.take().is_some() {
            g.console.push("[fake] unrescue: booting own disk".into());
        }
        g.power = PowerState::Running;
        Ok(())
    }

    /// A fake guest has no disk: the snapshot is a small raw image whose first bytes name the
    /// guest and its base image, so each snapshot is distinguishable and checksummable.
    async fn snapshot(&self, uuid: &str, dest: &std::path::Path) -> Result<String> {
        self.pause_a_moment().await;
        let header = {
            let guests = self.guests.lock();
            let g = guests
                .get(uuid)
                .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
            format!(
                "ferrostack fake disk of {} (base image {}) on {}\n",
                uuid, g.spec.image_ref, self.host
            )
        };
        let mut data = header.into_bytes();
        data.resize(1 << 20, 0);
        tokio::fs::write(dest, &data)
            .await
            .map_err(|e| DriverError::failed_with(format!("cannot write snapshot: {e}"), e))?;
        Ok("raw".into())
    }

    /// A simulated guest has no disk: the destination boots a fresh one.
    async fn hand_over(&self, uuid: &str, _dest: &std::path::Path) -> Result<bool> {
        if !self.guests.lock().contains_key(uuid) {
            return Err(DriverError::NotFound(uuid.to_string()));
        }
        Ok(false)
    }

    async fn receive(&self, spec: &GuestSpec, _disk: Option<&std::path::Path>) -> Result<()> {
        self.spawn(spec).await
    }

    /// A simulated guest waits (paused, at a made-up endpoint) until its source has sent it,
    /// then has arrived, paused as a real one is until the agent lets it run.
    async fn incoming(&self, spec: &GuestSpec, sent: bool) -> Result<crate::Incoming> {
        if !self.guests.lock().contains_key(&spec.uuid) {
            self.spawn(spec).await?;
            if let Some(g) = self.guests.lock().get_mut(&spec.uuid) {
                g.power = PowerState::Paused;
                g.console
                    .push(format!("[fake] {} arriving on {}", spec.uuid, self.host));
            }
        }
        if sent {
            Ok(crate::Incoming::Arrived)
        } else {
            Ok(crate::Incoming::Waiting {
                endpoint: format!("fake://{}/{}", self.host, spec.uuid),
            })
        }
    }

    /// A simulated migration: started by the first call, sent after the configured number of
    /// further steps (at once when forced), with figures from the guest's memory size.
    async fn send(&self, uuid: &str, _endpoint: &str, force_complete: bool) -> Result<Outgoing> {
        self.pause_a_moment().await;
        let steps = self
            .migration_steps
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut guests = self.guests.lock();
        let g = guests
            .get_mut(uuid)
            .ok_or_else(|| DriverError::NotFound(uuid.to_string()))?;
        let prior = g.power;
        let sending = g.sending.get_or_insert(Sending { left: steps, prior });
        if force_complete {
            sending.left = 0;
        }
        if sending.left == 0 {
            if g.power != PowerState::Shutdown {
                g.power = PowerState::Shutdown;
                g.console
                    .push(format!("[fake] {uuid} sent by live migration"));
            }
            return Ok(Outgoing::Sent);
        }
        let total = steps.max(1);
        let done = total - sending.left.min(total);
        sending.left -= 1;
        let memory = g.spec.memory_mb * 1024 * 1024;
        let processed = memory / i64::from(total) * i64::from(done);
        Ok(Outgoing::Sending(MoveProgress {
            memory_total: Some(memory),
            memory_processed: Some(processed),
            memory_remaining: Some(memory - processed),
            ..Default::default()
        }))
    }

    async fn open_console(
        &self,
        _uuid: &str,
        _kind: crate::ConsoleKind,
    ) -> Result<Box<dyn crate::ConsoleIo>> {
        Err(DriverError::Unsupported("consoles", "fake"))
    }

    async fn stay(&self, uuid: &str) -> Result<()> {
        let mut guests = self.guests.lock();
        if let Some(g) = guests.get_mut(uuid) {
            if let Some(s) = g.sending.take() {
                g.power = s.prior;
                g.console
                    .push(format!("[fake] {uuid}: live migration called off"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(uuid: &str) -> GuestSpec {
        GuestSpec {
            uuid: uuid.into(),
            name: "vm".into(),
            hostname: "vm".into(),
            vcpus: 1,
            memory_mb: 64,
            root_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            image_ref: String::new(),
            user_data: None,
            key_data: None,
            metadata: serde_json::json!({}),
            key_name: None,
            config_drive: false,
            project_id: String::new(),
            availability_zone: None,
            injected: None,
            nics: Vec::new(),
        }
    }

    #[tokio::test]
    async fn transitions_follow_guest_rules() {
        let d = FakeDriver::new("h1", 4, 4096, 40, Duration::ZERO);
        d.spawn(&spec("a")).await.unwrap();
        d.spawn(&spec("a")).await.unwrap(); // idempotent
        assert_eq!(d.list().await.unwrap().len(), 1);
        d.pause("a").await.unwrap();
        assert!(
            d.reboot("a", false).await.is_err(),
            "soft reboot needs running"
        );
        d.suspend("a").await.unwrap();
        assert!(d.unpause("a").await.is_err());
        d.resume("a").await.unwrap();
        d.power_off("a").await.unwrap();
        assert!(d.pause("a").await.is_err());
        d.power_on("a").await.unwrap();
        assert!(d
            .console_output("a", Some(1))
            .await
            .unwrap()
            .contains("power on"));
        d.destroy("a").await.unwrap();
        d.destroy("a").await.unwrap();
        assert!(matches!(
            d.power_on("a").await,
            Err(DriverError::NotFound(_))
        ));
    }
}
