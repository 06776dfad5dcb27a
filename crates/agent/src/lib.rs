//! The agent of one host. It never receives commands: it asks the controller what its host
//! should run ([`Controller::desired`]), compares that with what the driver actually runs,
//! converges with idempotent driver calls, and reports what it observed. A restart of the
//! agent or of the controller simply converges again, so nothing stays stuck in BUILD or
//! `deleting` (the failure Nova's fire-and-forget RPC casts are known for).
//!
//! The controller side is [`Controller`]: in-process in all-in-one (the compute crate
//! implements it over the database), over HTTP for `ferrostack agent` ([`http`]).

pub mod http;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferrostack_virt::{Driver, GuestSpec, HostInfo, PowerState};
use serde::{Deserialize, Serialize};

/// The power state the controller wants a guest in; `Absent` means: not on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    Running,
    Stopped,
    Paused,
    Suspended,
    Absent,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Stopped => "stopped",
            Desired::Paused => "paused",
            Desired::Suspended => "suspended",
            Desired::Absent => "absent",
        }
    }
    pub fn parse(s: &str) -> Option<Desired> {
        Some(match s {
            "running" => Desired::Running,
            "stopped" => Desired::Stopped,
            "paused" => Desired::Paused,
            "suspended" => Desired::Suspended,
            "absent" => Desired::Absent,
            _ => return None,
        })
    }
    fn power(self) -> PowerState {
        match self {
            Desired::Running => PowerState::Running,
            Desired::Stopped => PowerState::Shutdown,
            Desired::Paused => PowerState::Paused,
            Desired::Suspended => PowerState::Suspended,
            Desired::Absent => PowerState::NoState,
        }
    }
}

/// A one-shot operation on top of the desired power state, done once per generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OneShot {
    SoftReboot,
    HardReboot,
    /// Destroy and spawn again (rebuild, evacuate to this host).
    Recreate,
    CrashDump,
    /// Boot the rescue image (`DesiredGuest::rescue_image`) with the guest's disk attached.
    Rescue,
    Unrescue,
    /// Copy the root disk into the image `DesiredGuest::snapshot_image` (createImage).
    Snapshot,
    /// Power off and take the spec's sizes (a resize to, or its revert on, the same host).
    Resize,
}

/// One guest of this host as the controller wants it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DesiredGuest {
    pub spec: GuestSpec,
    pub desired: Desired,
    pub one_shot: Option<OneShot>,
    /// Changes with every API change of the guest's desired state.
    pub generation: i64,
    /// True when the controller already recorded this generation as done, with
    /// `known_power`: then only a change is worth a report.
    pub settled: bool,
    pub known_power: PowerState,
    /// The image a `Rescue` boots (the guest's own image when None).
    #[serde(default)]
    pub rescue_image: Option<String>,
    /// The image a `Snapshot` fills.
    #[serde(default)]
    pub snapshot_image: Option<String>,
}

/// What the agent saw after converging one guest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub uuid: String,
    /// The generation this report answers.
    pub generation: i64,
    /// The guest's power state now (`NoState` when it is not on this host).
    pub power: PowerState,
    /// True when the guest is not on this host any more.
    pub gone: bool,
    /// Why converging failed, for the instance fault.
    pub error: Option<String>,
}

/// A question the controller asks of the host's agent, answered from its driver: what only
/// the host knows (a guest's console log). Agents in the controller's process are asked
/// directly; agents in their own process fetch these.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Query {
    pub id: String,
    /// The guest asked about.
    pub uuid: String,
    pub ask: Ask,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ask {
    /// The whole serial console log.
    ConsoleOutput,
}

/// The answer to a [`Query`]: its text, or why there is none.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub result: Option<String>,
    pub error: Option<String>,
}

/// What `driver` answers to `ask` about guest `uuid`: the agent's answer to a [`Query`], and
/// what a controller reads directly from a driver in its own process.
pub async fn ask_driver(driver: &dyn Driver, uuid: &str, ask: Ask) -> Result<String, String> {
    match ask {
        Ask::ConsoleOutput => driver.console_output(uuid, None).await,
    }
    .map_err(|e| e.to_string())
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LinkError(pub String);

/// The controller as an agent sees it.
#[async_trait::async_trait]
pub trait Controller: Send + Sync {
    /// Registers (or refreshes) the host: its service, hypervisor record and placement
    /// inventory.
    async fn register(&self, host: &str, info: &HostInfo) -> Result<(), LinkError>;
    /// Every guest the controller wants on `host`, including ones to remove (`Absent`).
    async fn desired(&self, host: &str) -> Result<Vec<DesiredGuest>, LinkError>;
    async fn report(&self, host: &str, reports: Vec<Report>) -> Result<(), LinkError>;
    async fn heartbeat(&self, host: &str) -> Result<(), LinkError>;
    /// Returns when something for `host` may have changed, or after `timeout`.
    async fn wait_for_change(&self, host: &str, timeout: Duration);
    /// Uploads a snapshot file (`disk_format` as the driver wrote it) as the data of image
    /// `image_id`, which the controller created when the snapshot was asked for.
    async fn upload_snapshot(
        &self,
        host: &str,
        image_id: &str,
        path: &std::path::Path,
        disk_format: &str,
    ) -> Result<(), LinkError> {
        let _ = (host, image_id, path, disk_format);
        Err(LinkError(
            "this controller link cannot upload snapshots".into(),
        ))
    }
    /// The questions waiting for `host`'s answer. None by default: a controller in the same
    /// process reads the host's driver itself.
    async fn queries(&self, host: &str) -> Result<Vec<Query>, LinkError> {
        let _ = host;
        Ok(Vec::new())
    }
    async fn answer(&self, host: &str, query_id: &str, answer: &Answer) -> Result<(), LinkError> {
        let _ = (host, query_id, answer);
        Err(LinkError("this controller link takes no answers".into()))
    }
}

/// How often an idle agent converges anyway, and heartbeats.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(5);
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// Longest pause between two registration attempts while the controller is unreachable.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(15);

pub struct Agent {
    pub host: String,
    pub driver: Arc<dyn Driver>,
    pub controller: Arc<dyn Controller>,
    /// The generation whose one-shot was last done, per guest, so a reboot is done once.
    done_one_shot: tokio::sync::Mutex<HashMap<String, i64>>,
}

impl Agent {
    pub fn new(host: &str, driver: Arc<dyn Driver>, controller: Arc<dyn Controller>) -> Self {
        Agent {
            host: host.to_string(),
            driver,
            controller,
            done_one_shot: Default::default(),
        }
    }

    /// Runs until the task is dropped: registers, then converges whenever the controller says
    /// something changed, and at least every [`RESYNC_INTERVAL`].
    pub async fn run(self: Arc<Self>) {
        let mut registered = false;
        let mut last_beat = tokio::time::Instant::now();
        let mut retry = Duration::from_secs(1);
        loop {
            if !registered {
                match self.register().await {
                    Ok(()) => {
                        registered = true;
                        retry = Duration::from_secs(1);
                        tracing::info!(host = %self.host, "agent registered");
                    }
                    Err(e) => {
                        // Guests stay as they are meanwhile: nothing is converged without
                        // the controller's word.
                        tracing::warn!(host = %self.host, error = %e, retry_in_s = retry.as_secs(), "agent registration failed; retrying");
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(MAX_RETRY_DELAY);
                        continue;
                    }
                }
            }
            if let Err(e) = self.converge_once().await {
                tracing::warn!(host = %self.host, error = %e, "agent converge failed");
            }
            if let Err(e) = self.answer_queries().await {
                tracing::warn!(host = %self.host, error = %e, "answering the controller failed");
            }
            if last_beat.elapsed() >= HEARTBEAT_INTERVAL {
                // Re-registering also refreshes inventory and uptime; a failure is retried.
                registered = self.register().await.is_ok();
                last_beat = tokio::time::Instant::now();
            }
            self.controller
                .wait_for_change(&self.host, RESYNC_INTERVAL)
                .await;
        }
    }

    async fn register(&self) -> Result<(), LinkError> {
        let info = self
            .driver
            .host_info()
            .await
            .map_err(|e| LinkError(e.to_string()))?;
        self.controller.register(&self.host, &info).await?;
        self.controller.heartbeat(&self.host).await
    }

    /// One pass: fetch, converge every guest, report. Guests the driver runs that the
    /// controller does not know are left alone (logged): they may belong to an instance
    /// being created in this very moment.
    pub async fn converge_once(&self) -> Result<(), LinkError> {
        let desired = self.controller.desired(&self.host).await?;
        let observed: HashMap<String, PowerState> = self
            .driver
            .list()
            .await
            .map_err(|e| LinkError(e.to_string()))?
            .into_iter()
            .map(|o| (o.uuid, o.power))
            .collect();
        let mut errors = Vec::with_capacity(desired.len());
        for guest in &desired {
            let have = observed.get(&guest.spec.uuid).copied();
            errors.push(self.converge_guest(guest, have).await.err());
        }
        if desired.is_empty() {
            return Ok(());
        }
        let now: HashMap<String, PowerState> = self
            .driver
            .list()
            .await
            .map_err(|e| LinkError(e.to_string()))?
            .into_iter()
            .map(|o| (o.uuid, o.power))
            .collect();
        let reports: Vec<Report> = desired
            .iter()
            .zip(errors)
            .filter_map(|(guest, error)| {
                let power = now.get(&guest.spec.uuid).copied();
                let report = Report {
                    uuid: guest.spec.uuid.clone(),
                    generation: guest.generation,
                    power: power.unwrap_or(PowerState::NoState),
                    gone: power.is_none(),
                    error,
                };
                let news =
                    !guest.settled || report.error.is_some() || report.power != guest.known_power;
                news.then_some(report)
            })
            .collect();
        if reports.is_empty() {
            return Ok(());
        }
        self.controller.report(&self.host, reports).await
    }

    /// Answers the controller's waiting questions from the driver.
    pub async fn answer_queries(&self) -> Result<(), LinkError> {
        for q in self.controller.queries(&self.host).await? {
            let (result, error) = match ask_driver(self.driver.as_ref(), &q.uuid, q.ask).await {
                Ok(text) => (Some(text), None),
                Err(e) => (None, Some(e)),
            };
            let answer = Answer { result, error };
            self.controller.answer(&self.host, &q.id, &answer).await?;
        }
        Ok(())
    }

    /// Writes the guest's disk to a scratch file and hands it to the controller.
    async fn snapshot(&self, g: &DesiredGuest) -> Result<(), String> {
        let image = g
            .snapshot_image
            .as_deref()
            .ok_or("snapshot asked without a target image")?;
        let path = std::env::temp_dir().join(format!(
            "ferrostack-snapshot-{}-{}",
            g.spec.uuid, g.generation
        ));
        let result = async {
            let format = self
                .driver
                .snapshot(&g.spec.uuid, &path)
                .await
                .map_err(|e| e.to_string())?;
            self.controller
                .upload_snapshot(&self.host, image, &path, &format)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        let _ = tokio::fs::remove_file(&path).await;
        result
    }

    /// Brings one guest to its desired state with the fewest driver calls.
    async fn converge_guest(
        &self,
        g: &DesiredGuest,
        have: Option<PowerState>,
    ) -> Result<(), String> {
        let d = &self.driver;
        let uuid = g.spec.uuid.as_str();
        let err = |e: ferrostack_virt::DriverError| e.to_string();
        if g.desired == Desired::Absent {
            if have.is_some() {
                // Shelving: keep the disk as an image before the guest goes.
                if g.one_shot == Some(OneShot::Snapshot) {
                    let mut done = self.done_one_shot.lock().await;
                    if done.get(uuid) != Some(&g.generation) {
                        self.snapshot(g).await?;
                        done.insert(uuid.to_string(), g.generation);
                    }
                }
                d.destroy(uuid).await.map_err(err)?;
            }
            return Ok(());
        }
        let mut have = match have {
            Some(p) => p,
            None => {
                d.spawn(&g.spec).await.map_err(err)?;
                self.done_one_shot
                    .lock()
                    .await
                    .insert(uuid.to_string(), g.generation);
                PowerState::Running
            }
        };
        if let Some(shot) = g.one_shot {
            let mut done = self.done_one_shot.lock().await;
            if done.get(uuid) != Some(&g.generation) {
                match shot {
                    OneShot::SoftReboot => d.reboot(uuid, false).await.map_err(err)?,
                    OneShot::HardReboot => d.reboot(uuid, true).await.map_err(err)?,
                    OneShot::Recreate => {
                        d.destroy(uuid).await.map_err(err)?;
                        d.spawn(&g.spec).await.map_err(err)?;
                    }
                    OneShot::CrashDump => d.inject_nmi(uuid).await.map_err(err)?,
                    OneShot::Rescue => {
                        let image = g.rescue_image.as_deref().unwrap_or(&g.spec.image_ref);
                        d.rescue(uuid, image).await.map_err(err)?
                    }
                    OneShot::Unrescue => d.unrescue(uuid).await.map_err(err)?,
                    OneShot::Snapshot => self.snapshot(g).await?,
                    OneShot::Resize => {
                        if have != PowerState::Shutdown {
                            d.power_off(uuid).await.map_err(err)?;
                        }
                        d.resize(&g.spec).await.map_err(err)?;
                    }
                }
                done.insert(uuid.to_string(), g.generation);
                match shot {
                    // The guest decides what a crash dump leaves; report what it is now.
                    OneShot::CrashDump => return Ok(()),
                    // A snapshot leaves the guest as it was.
                    OneShot::Snapshot => {}
                    // Off now; the desired power decides what follows.
                    OneShot::Resize => have = PowerState::Shutdown,
                    _ => have = PowerState::Running,
                }
            }
        }
        let want = g.desired.power();
        if have == want {
            return Ok(());
        }
        // From wherever the guest is, to running first when needed, then to the target.
        match (have, want) {
            (PowerState::Paused, PowerState::Running) => d.unpause(uuid).await.map_err(err)?,
            (PowerState::Suspended, PowerState::Running) => d.resume(uuid).await.map_err(err)?,
            (_, PowerState::Running) => d.power_on(uuid).await.map_err(err)?,
            (_, PowerState::Shutdown) => d.power_off(uuid).await.map_err(err)?,
            (PowerState::Running, PowerState::Paused) => d.pause(uuid).await.map_err(err)?,
            (PowerState::Running | PowerState::Paused, PowerState::Suspended) => {
                d.suspend(uuid).await.map_err(err)?
            }
            (_, PowerState::Paused) => {
                d.power_on(uuid).await.map_err(err)?;
                d.pause(uuid).await.map_err(err)?
            }
            (_, PowerState::Suspended) => {
                d.power_on(uuid).await.map_err(err)?;
                d.suspend(uuid).await.map_err(err)?
            }
            _ => {}
        }
        Ok(())
    }
}
