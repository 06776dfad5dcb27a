//! The agent of one host. It never receives commands: it asks the controller what its host
//! should run ([`Controller::desired`]), compares that with what the driver actually runs,
//! converges with idempotent driver calls, and reports what it observed. A restart of the
//! agent or of the controller simply converges again, so nothing stays stuck in BUILD or
//! `deleting` (the failure Nova's fire-and-forget RPC casts are known for).
//!
//! The protocol (desired state, reports, questions, the [`Controller`] trait) is its own crate,
//! `ferrostack-agent-api`. The controller is in process in all-in-one (the compute crate
//! implements it over the database) and over HTTP for `ferrostack agent` ([`http`]); the agent
//! does the same either way, questions included.

pub mod http;
pub mod image_cache;
pub mod metadata_proxy;
pub mod network_host;
pub mod qemu_host;
pub mod transfer;
pub mod vifs;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use ferrostack_agent_api as protocol;
use ferrostack_agent_api::{
    Answer, Arrival, Ask, Controller, Departure, Desired, DesiredGuest, GuestReport, HostReport,
    LinkError, NetworkingReport, OneShot, Outgoing,
};
use ferrostack_virt::{Driver, Incoming, PowerState};

/// What `driver` answers to `ask` about guest `uuid`: the agent's answer to a [`Query`](protocol::Query).
pub async fn ask_driver(driver: &dyn Driver, uuid: &str, ask: Ask) -> Result<String, String> {
    match ask {
        Ask::ConsoleOutput => driver.console_output(uuid, None).await,
        Ask::Diagnostics => driver.diagnostics(uuid).await.map(|v| v.to_string()),
        // Answered by dialing back ([`Agent::dial_back`]), not with text.
        Ask::VncConsole | Ask::SerialConsole => {
            return Err(format!("{} is answered by dialing back", ask.as_str()))
        }
    }
    .map_err(|e| e.to_string())
}

/// What converging a guest came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Converged {
    /// The guest is as desired.
    Done,
    /// A live migration's destination waits for the guest at `endpoint`.
    Waiting { endpoint: String },
    /// A live migration's source is sending the guest, or has sent it.
    Sending(Outgoing),
}

impl Converged {
    /// A move is under way that the next pass takes further.
    fn in_motion(&self) -> bool {
        matches!(
            self,
            Converged::Waiting { .. } | Converged::Sending(Outgoing::Sending(_))
        )
    }
}

/// How often an idle agent converges anyway, and heartbeats.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(5);
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// How soon the next pass comes while a live migration is under way here (its progress is
/// reported, its end noticed, within this).
pub const MOVE_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longest pause between two registration attempts while the controller is unreachable.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(15);

pub struct Agent {
    pub host: String,
    pub driver: Arc<dyn Driver>,
    pub controller: Arc<dyn Controller>,
    /// The generation whose one-shot was last done, per guest, so a reboot is done once.
    done_one_shot: tokio::sync::Mutex<HashMap<String, i64>>,
    /// The migrations whose disk this host handed over (once each; again after a restart,
    /// which only replaces the same file).
    handed_over: tokio::sync::Mutex<std::collections::HashSet<String>>,
    /// The console questions being answered by dialing back (once each).
    dialing: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The host's network data plane, when it has one.
    dataplane: Option<Arc<ferrostack_netplane::Dataplane>>,
    /// What the data plane last reported (a report is sent when it changes).
    net_reported: tokio::sync::Mutex<Option<NetworkingReport>>,
    /// The metadata servers of the host's DHCP namespaces (a data plane on a real kernel).
    metadata: Option<Arc<metadata_proxy::MetadataProxy>>,
    /// The NICs each guest was last given (`Driver::set_nics`), so a guest is only asked
    /// again when its ports change (and once after a restart).
    nics_applied: tokio::sync::Mutex<HashMap<String, Vec<ferrostack_agent_api::GuestNic>>>,
}

impl Agent {
    pub fn new(host: &str, driver: Arc<dyn Driver>, controller: Arc<dyn Controller>) -> Self {
        Agent {
            host: host.to_string(),
            driver,
            controller,
            done_one_shot: Default::default(),
            handed_over: Default::default(),
            dialing: Default::default(),
            dataplane: None,
            net_reported: Default::default(),
            metadata: None,
            nics_applied: Default::default(),
        }
    }

    /// The agent of a host that runs a network data plane: it converges it before the
    /// guests (bridges and rules before taps) and again after them (taps their QEMUs just
    /// made), and reports the ports it wired.
    pub fn with_dataplane(mut self, dataplane: Arc<ferrostack_netplane::Dataplane>) -> Self {
        self.dataplane = Some(dataplane);
        self
    }

    /// The agent of a host whose data plane runs on the real kernel: it serves the metadata
    /// of its DHCP namespaces' guests.
    pub fn with_metadata_proxy(mut self) -> Self {
        if let Some(dp) = &self.dataplane {
            self.metadata = Some(Arc::new(metadata_proxy::MetadataProxy::new(
                &self.host,
                &dp.config().prefix,
                self.controller.clone(),
            )));
        }
        self
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
            let in_motion = match self.converge_once().await {
                Ok(in_motion) => in_motion,
                Err(e) => {
                    tracing::warn!(host = %self.host, error = %e, "agent converge failed");
                    false
                }
            };
            if let Err(e) = self.answer_queries().await {
                tracing::warn!(host = %self.host, error = %e, "answering the controller failed");
            }
            if last_beat.elapsed() >= HEARTBEAT_INTERVAL {
                // Re-registering also refreshes inventory and uptime; a failure is retried.
                registered = self.register().await.is_ok();
                last_beat = tokio::time::Instant::now();
            }
            let wait = if in_motion {
                MOVE_POLL_INTERVAL
            } else {
                RESYNC_INTERVAL
            };
            self.controller.wait_for_change(&self.host, wait).await;
        }
    }

    async fn register(&self) -> Result<(), LinkError> {
        let mut info = self
            .driver
            .host_info()
            .await
            .map_err(|e| LinkError::Driver(e.into()))?;
        info.vtep = self.dataplane.as_ref().map(|d| d.config().vtep);
        self.controller.register(&self.host, &info).await?;
        self.controller.heartbeat(&self.host).await
    }

    /// One pass: fetch, converge every guest, report. Guests the driver runs that the
    /// controller does not know are left alone (logged): they may belong to an instance
    /// being created in this very moment. True when a live migration is under way here, so
    /// the next pass should come soon.
    pub async fn converge_once(&self) -> Result<bool, LinkError> {
        let started = std::time::Instant::now();
        let wanted = self.controller.desired(&self.host).await?;
        let fetched = started.elapsed();
        let desired = wanted.guests;
        if let Some(dp) = &self.dataplane {
            // Networks and rules first: a guest's tap joins a bridge that is filtered already.
            dp.converge(&wanted.networking).await;
            tracing::debug!(
                host = %self.host,
                fetch_ms = fetched.as_secs_f64() * 1e3,
                dataplane_ms = (started.elapsed() - fetched).as_secs_f64() * 1e3,
                ports = wanted.networking.ports.len(),
                "desired state fetched and the data plane converged"
            );
        }
        let observed: HashMap<String, PowerState> = self
            .driver
            .list()
            .await
            .map_err(|e| LinkError::Driver(e.into()))?
            .into_iter()
            .map(|o| (o.uuid, o.power))
            .collect();
        let mut outcomes = Vec::with_capacity(desired.len());
        for guest in &desired {
            let have = observed.get(&guest.spec.uuid).copied();
            let outcome = self.converge_guest(guest, have).await;
            if let Err(e) = &outcome {
                tracing::warn!(
                    host = %self.host,
                    uuid = %guest.spec.uuid,
                    error = %e,
                    departure = ?guest.departure,
                    arrival = ?guest.arrival,
                    desired = ?guest.desired,
                    observed = ?observed,
                    "converging a guest failed"
                );
            }
            outcomes.push(outcome);
        }
        let networking = self.converge_networking(&wanted.networking).await;
        if desired.is_empty() {
            if networking.is_some() {
                let report = HostReport {
                    guests: Vec::new(),
                    networking,
                };
                self.report_networking(report).await?;
            }
            return Ok(false);
        }
        let in_motion = outcomes
            .iter()
            .any(|o| o.as_ref().is_ok_and(Converged::in_motion));
        let now: HashMap<String, PowerState> = self
            .driver
            .list()
            .await
            .map_err(|e| LinkError::Driver(e.into()))?
            .into_iter()
            .map(|o| (o.uuid, o.power))
            .collect();
        let guests: Vec<GuestReport> = desired
            .iter()
            .zip(outcomes)
            .filter_map(|(guest, outcome)| {
                let power = now.get(&guest.spec.uuid).copied();
                let (mut incoming, mut outgoing, mut error) = (None, None, None);
                match outcome {
                    Ok(Converged::Done) => {}
                    Ok(Converged::Waiting { endpoint }) => incoming = Some(endpoint),
                    Ok(Converged::Sending(o)) => outgoing = Some(o),
                    Err(e) => error = Some(e),
                }
                let report = GuestReport {
                    uuid: guest.spec.uuid.clone(),
                    generation: guest.generation,
                    power: power.unwrap_or(PowerState::NoState),
                    gone: power.is_none(),
                    error,
                    incoming,
                    outgoing,
                };
                let news =
                    !guest.settled || report.error.is_some() || report.power != guest.known_power;
                news.then_some(report)
            })
            .collect();
        let report = HostReport { guests, networking };
        if !report.is_empty() {
            self.report_networking(report).await?;
        }
        Ok(in_motion)
    }

    /// Converges the data plane (after the guests: the taps their QEMUs made join their
    /// bridges) and returns its report when it differs from the last one sent.
    async fn converge_networking(
        &self,
        want: &ferrostack_agent_api::HostNetworking,
    ) -> Option<NetworkingReport> {
        let dp = self.dataplane.as_ref()?;
        let report = dp.converge(want).await;
        if let Some(e) = &report.error {
            tracing::warn!(host = %self.host, error = %e, "converging the data plane failed");
        }
        if let Some(m) = &self.metadata {
            m.sync(want).await;
        }
        let last = self.net_reported.lock().await;
        (last.as_ref() != Some(&report)).then_some(report)
    }

    /// Sends `report`; its networking part counts as sent once the controller took it.
    async fn report_networking(&self, report: HostReport) -> Result<(), LinkError> {
        let networking = report.networking.clone();
        self.controller.report(&self.host, report).await?;
        if networking.is_some() {
            *self.net_reported.lock().await = networking;
        }
        Ok(())
    }

    /// Answers the controller's waiting questions from the driver.
    pub async fn answer_queries(&self) -> Result<(), LinkError> {
        for q in self.controller.queries(&self.host).await? {
            if let Some(kind) = q.ask.console() {
                self.dial_back(q, kind);
                continue;
            }
            let answer = Answer::of(ask_driver(self.driver.as_ref(), &q.uuid, q.ask).await);
            self.controller.answer(&self.host, &q.id, &answer).await?;
        }
        Ok(())
    }

    /// Carries a console of one of this host's guests to the controller, which asked with
    /// question `q`: opens the guest's console, dials the controller back, answers (an error
    /// when either could not be done) and then carries the bytes both ways until one side
    /// ends, in a task of its own. A question seen again while its dial is under way is left.
    fn dial_back(&self, q: ferrostack_agent_api::Query, kind: ferrostack_agent_api::ConsoleKind) {
        {
            let mut dialing = self.dialing.lock().unwrap_or_else(|p| p.into_inner());
            if !dialing.insert(q.id.clone()) {
                return;
            }
        }
        let (driver, controller, host) = (
            self.driver.clone(),
            self.controller.clone(),
            self.host.clone(),
        );
        let dialing = self.dialing.clone();
        tokio::spawn(async move {
            let opened = async {
                let guest = driver
                    .open_console(&q.uuid, kind)
                    .await
                    .map_err(|e| e.to_string())?;
                let link = controller
                    .dial_console(&host, &q.id)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((guest, link))
            }
            .await;
            let answer = match &opened {
                Ok(_) => Answer::of(Ok("connected".into())),
                Err(e) => Answer::of(Err(e.clone())),
            };
            // The controller may have stopped waiting already: nothing to do about it.
            let _ = controller.answer(&host, &q.id, &answer).await;
            if let Ok((mut guest, mut link)) = opened {
                tracing::info!(%host, uuid = %q.uuid, ?kind, "console carried to the controller");
                let _ = tokio::io::copy_bidirectional(&mut guest, &mut link).await;
            }
            dialing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&q.id);
        });
    }

    /// Writes the guest's disk to a scratch file and hands it to the controller.
    async fn snapshot(&self, g: &DesiredGuest, image: &str) -> Result<(), String> {
        let path = self.scratch("snapshot", &g.spec.uuid, &g.generation.to_string());
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

    /// A scratch file of this host's agent for a guest (snapshots, handed-over disks).
    fn scratch(&self, what: &str, uuid: &str, tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("ferrostack-{what}-{}-{uuid}-{tag}", self.host))
    }

    /// A cold move's source: the guest (powered off) hands its disk to the controller.
    async fn hand_over(&self, uuid: &str, migration: &str) -> Result<(), String> {
        if self.handed_over.lock().await.contains(migration) {
            return Ok(());
        }
        let path = self.scratch("handover", uuid, migration);
        let result = async {
            let has_disk = self
                .driver
                .hand_over(uuid, &path)
                .await
                .map_err(|e| e.to_string())?;
            if has_disk {
                self.controller
                    .upload_migration_disk(&self.host, migration, &path)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        .await;
        let _ = tokio::fs::remove_file(&path).await;
        if result.is_ok() {
            self.handed_over.lock().await.insert(migration.to_string());
        }
        result
    }

    /// A cold move's destination: builds the guest from the disk its source handed over.
    async fn receive(&self, g: &DesiredGuest, migration: &str) -> Result<(), String> {
        let path = self.scratch("receive", &g.spec.uuid, migration);
        let result = async {
            let has_disk = self
                .controller
                .download_migration_disk(&self.host, migration, &path)
                .await
                .map_err(|e| e.to_string())?;
            self.driver
                .receive(&g.spec, has_disk.then_some(path.as_path()))
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
    ) -> Result<Converged, String> {
        let d = &self.driver;
        let uuid = g.spec.uuid.as_str();
        let err = |e: ferrostack_virt::DriverError| e.to_string();
        match &g.departure {
            Some(_) if have.is_none() => {
                return Err(format!(
                    "guest {uuid} to be moved is not on host {}",
                    self.host
                ))
            }
            Some(Departure::HandOver { migration }) => {
                if have != Some(PowerState::Shutdown) {
                    d.power_off(uuid).await.map_err(err)?;
                }
                self.hand_over(uuid, migration).await?;
                return Ok(Converged::Done);
            }
            Some(Departure::Live {
                endpoint,
                force_complete,
                ..
            }) => {
                // Once sent, the guest stays here stopped until the controller has recorded
                // it (and then no longer wants it here): a migration called off at that very
                // moment still finds it and runs it on.
                let out = d.send(uuid, endpoint, *force_complete).await.map_err(err)?;
                return Ok(Converged::Sending(out));
            }
            // A live migration from here that was called off (or none: nothing to do). Not for
            // a guest that goes: a sent one must never run here again.
            None if have.is_some() && g.desired != Desired::Absent => {
                d.stay(uuid).await.map_err(err)?
            }
            None => {}
        }
        let mut have = have;
        if let Some(Arrival::Live { sent, .. }) = &g.arrival {
            match d.incoming(&g.spec, *sent).await.map_err(err)? {
                Incoming::Waiting { endpoint } => return Ok(Converged::Waiting { endpoint }),
                // Paused until it may run, like any guest that just arrived.
                Incoming::Arrived => {
                    if matches!(have, None | Some(PowerState::NoState)) {
                        have = Some(PowerState::Paused);
                        self.done_one_shot
                            .lock()
                            .await
                            .insert(uuid.to_string(), g.generation);
                    }
                }
            }
        }
        self.converge_power(g, have).await?;
        if g.desired == Desired::Absent {
            self.nics_applied.lock().await.remove(&g.spec.uuid);
        } else {
            self.converge_nics(g).await;
        }
        Ok(Converged::Done)
    }

    /// Hot-plugs the NICs attached or detached since the guest's NICs were last set. A
    /// failure is logged and tried again on the next pass; it never fails the guest (the
    /// port stays DOWN, which its user sees).
    async fn converge_nics(&self, g: &DesiredGuest) {
        let uuid = &g.spec.uuid;
        if self.nics_applied.lock().await.get(uuid) == Some(&g.spec.nics) {
            return;
        }
        match self.driver.set_nics(&g.spec).await {
            Ok(()) => {
                self.nics_applied
                    .lock()
                    .await
                    .insert(uuid.clone(), g.spec.nics.clone());
            }
            // Not made yet (a guest still to be received, or stopped before it was built).
            Err(ferrostack_virt::DriverError::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(host = %self.host, %uuid, error = %e, "setting a guest's NICs failed")
            }
        }
    }

    /// The guest's power and one-shot operation, wherever it came from.
    async fn converge_power(
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
                if let Some(image) = g.one_shot.as_ref().and_then(OneShot::snapshot_image) {
                    let mut done = self.done_one_shot.lock().await;
                    if done.get(uuid) != Some(&g.generation) {
                        self.snapshot(g, image).await?;
                        done.insert(uuid.to_string(), g.generation);
                    }
                }
                d.destroy(uuid).await.map_err(err)?;
            }
            return Ok(());
        }
        // A guest that was running (or paused) as wanted and is now off powered itself off or
        // its hypervisor process ended: the controller is told (and stops the server, as
        // Nova's power-state sync does) instead of the guest being started behind the user's
        // back.
        if have == Some(PowerState::Shutdown)
            && g.settled
            && matches!(g.known_power, PowerState::Running | PowerState::Paused)
        {
            return Ok(());
        }
        let mut have = match have {
            Some(p) => p,
            None => {
                match &g.arrival {
                    Some(Arrival::Disk { migration }) => self.receive(g, migration).await?,
                    _ => d.spawn(&g.spec).await.map_err(err)?,
                }
                self.done_one_shot
                    .lock()
                    .await
                    .insert(uuid.to_string(), g.generation);
                PowerState::Running
            }
        };
        if let Some(shot) = &g.one_shot {
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
                    OneShot::Rescue { image } => {
                        let image = image.as_deref().unwrap_or(&g.spec.image_ref);
                        d.rescue(uuid, image).await.map_err(err)?
                    }
                    OneShot::Unrescue => d.unrescue(uuid).await.map_err(err)?,
                    OneShot::Snapshot { image } => self.snapshot(g, image).await?,
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
                    OneShot::Snapshot { .. } => {}
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
