//! `ferrostack bench qemu`: real guests on this machine's QEMU (KVM where the probe passes,
//! else TCG): create to ACTIVE and create to `testvm ready` on the guest's console (one at a
//! time, then many at once), QEMU's memory overhead per guest (resident memory beyond the
//! guest's own RAM), and live migration between two local hosts (total time, and the guest's
//! downtime as QEMU measured it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use ferrostack_virt::qemu::{GuestDir, QemuProcess};

use super::{issue, password_body, start_cloud_logged, BenchCloud};

pub struct Opts {
    pub testvm_dir: PathBuf,
    pub boots: usize,
    pub concurrent: usize,
    pub migrations: usize,
}

/// How long one guest may take to boot before the benchmark gives up.
const BOOT_LIMIT: Duration = Duration::from_secs(300);

struct Api {
    client: reqwest::Client,
    url: String,
    token: String,
    data_dir: PathBuf,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .client
            .request(method, format!("{}/compute/v2.1/{path}", self.url))
            .header("X-Auth-Token", &self.token)
            .header("OpenStack-API-Version", "compute 2.90");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        let text = r.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn server(&self, id: &str) -> anyhow::Result<Value> {
        let (status, body) = self
            .call(reqwest::Method::GET, &format!("servers/{id}"), None)
            .await?;
        if status != 200 {
            bail!("server {id}: {status} {body}");
        }
        Ok(body["server"].clone())
    }

    async fn create(&self, image: &str, name: &str) -> anyhow::Result<String> {
        let body = json!({"server": {"name": name, "imageRef": image, "flavorRef": "1", "networks": "none"}});
        let (status, out) = self
            .call(reqwest::Method::POST, "servers", Some(body))
            .await?;
        if status != 202 {
            bail!("create answered {status}: {out}");
        }
        Ok(out["server"]["id"].as_str().unwrap_or_default().to_string())
    }

    async fn delete(&self, id: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::DELETE, &format!("servers/{id}"), None)
            .await?;
        let until = Instant::now() + BOOT_LIMIT;
        while Instant::now() < until {
            let (status, _) = self
                .call(reqwest::Method::GET, &format!("servers/{id}"), None)
                .await?;
            if status == 404 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("server {id} was not deleted")
    }

    /// The guest's whole console log on whichever host it is.
    fn console_log(&self, id: &str) -> String {
        let Ok(hosts) = std::fs::read_dir(self.data_dir.join("hosts")) else {
            return String::new();
        };
        hosts
            .filter_map(Result::ok)
            .map(|h| h.path().join("instances").join(id).join("console.log"))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Waits for the server to be ACTIVE (no task) and then for `testvm ready` on its
    /// console; returns both times from `start`.
    async fn until_ready(&self, id: &str, start: Instant) -> anyhow::Result<(Duration, Duration)> {
        let mut active = None;
        loop {
            if start.elapsed() > BOOT_LIMIT {
                bail!("server {id} not ready within {BOOT_LIMIT:?}");
            }
            if active.is_none() {
                let s = self.server(id).await?;
                if s["status"] == "ERROR" {
                    bail!("server {id} went to ERROR: {}", s["fault"]);
                }
                if s["status"] == "ACTIVE" && s["OS-EXT-STS:task_state"].is_null() {
                    active = Some(start.elapsed());
                }
            }
            if let Some(a) = active {
                if self.console_log(id).contains("testvm ready") {
                    return Ok((a, start.elapsed()));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn median_p90(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort_unstable();
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let at = |p: f64| v[super::quantile_index(v.len(), p)].as_secs_f64();
    (at(0.5), at(0.9))
}

/// QEMU's resident memory beyond the guest's RAM, in MiB.
fn overhead_mib(pid: i32, guest_mib: i64) -> Option<f64> {
    let m = ferrostack_virt::qemu::process::memory_use(pid, guest_mib)?;
    #[expect(
        clippy::cast_precision_loss,
        reason = "memory sizes in KiB are far below 2^52"
    )]
    Some(m.resident_kib.saturating_sub(m.guest_kib) as f64 / 1024.0)
}

fn qemu_pid(data_dir: &Path, id: &str) -> Option<i32> {
    let hosts = std::fs::read_dir(data_dir.join("hosts")).ok()?;
    hosts
        .filter_map(Result::ok)
        .map(|h| h.path().join("instances").join(id).join("qemu.pid"))
        .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok())
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    for f in ["testvm-kernel", "testvm-ramdisk", "testvm.qcow2"] {
        if !o.testvm_dir.join(f).is_file() {
            bail!(
                "no {f} in {} (scripts/lib.sh build_testvm builds it)",
                o.testvm_dir.display()
            );
        }
    }
    let testvm = o.testvm_dir.display().to_string();
    let cloud: BenchCloud = start_cloud_logged(
        &[
            "--compute-driver",
            "qemu",
            "--compute-hosts",
            "2",
            "--testvm-dir",
            &testvm,
            "--log-format",
            "json",
        ],
        "warn,ferrostack_virt=info,ferrostack_agent=info",
    )
    .await?;
    let result = measure(&o, &cloud).await;
    // The guests' QEMUs run detached from the cloud (an agent's end never stops a guest):
    // the bench ends the ones it started, whatever happened.
    kill_guests(&cloud._dir.0).await;
    result
}

/// Kills every QEMU whose guest directory is under `data_dir`.
async fn kill_guests(data_dir: &Path) {
    let Ok(hosts) = std::fs::read_dir(data_dir.join("hosts")) else {
        return;
    };
    for host in hosts.filter_map(Result::ok) {
        let root = host.path().join("instances");
        let Ok(guests) = std::fs::read_dir(&root) else {
            continue;
        };
        for g in guests.filter_map(Result::ok) {
            let dir = GuestDir::new(&root, &g.file_name().to_string_lossy());
            if let Ok(Some(p)) = QemuProcess::adopt(&dir).await {
                let _ = p.kill(Duration::ZERO).await;
            }
        }
    }
}

async fn measure(o: &Opts, cloud: &BenchCloud) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let token = issue(&client, &cloud.url, &password_body(&cloud.password)).await?;
    let api = Api {
        client,
        url: cloud.url.clone(),
        token,
        data_dir: cloud._dir.0.clone(),
    };
    // The hosts register, and QEMU's acceleration is chosen, as the cloud starts.
    let until = Instant::now() + Duration::from_secs(60);
    let hv = loop {
        let (_, body) = api
            .call(reqwest::Method::GET, "os-hypervisors/detail", None)
            .await?;
        let list = body["hypervisors"].as_array().cloned().unwrap_or_default();
        if list.len() == 2 {
            break list;
        }
        if Instant::now() > until {
            bail!("the two QEMU hosts did not register: {body}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let image = api
        .client
        .get(format!("{}/image/v2/images?name=testvm", api.url))
        .header("X-Auth-Token", &api.token)
        .send()
        .await?
        .json::<Value>()
        .await?["images"][0]["id"]
        .as_str()
        .context("no testvm image")?
        .to_string();
    println!(
        "ferrostack bench qemu: {} ({}), 2 local hosts, m1.tiny (1 vCPU, 512 MiB), testvm",
        hv[0]["hypervisor_type"].as_str().unwrap_or("?"),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_string())
            )
            .unwrap_or_default()
    );

    // One at a time.
    let (mut to_active, mut to_ready) = (Vec::new(), Vec::new());
    for i in 0..o.boots {
        let start = Instant::now();
        let id = api.create(&image, &format!("bench-{i}")).await?;
        let (a, r) = api.until_ready(&id, start).await?;
        to_active.push(a);
        to_ready.push(r);
        api.delete(&id).await?;
    }
    let (a50, a90) = median_p90(to_active);
    let (r50, r90) = median_p90(to_ready);
    println!(
        "create -> ACTIVE        ({:>2} one at a time)   median {a50:>6.2} s   p90 {a90:>6.2} s",
        o.boots
    );
    println!(
        "create -> testvm ready  ({:>2} one at a time)   median {r50:>6.2} s   p90 {r90:>6.2} s",
        o.boots
    );

    // Many at once.
    let start = Instant::now();
    let mut ids = Vec::new();
    for i in 0..o.concurrent {
        ids.push(api.create(&image, &format!("bench-c{i}")).await?);
    }
    let waits = ids.iter().map(|id| api.until_ready(id, start));
    let results = futures::future::join_all(waits).await;
    let (mut to_active, mut to_ready) = (Vec::new(), Vec::new());
    for r in results {
        let (a, r) = r?;
        to_active.push(a);
        to_ready.push(r);
    }
    let all = start.elapsed().as_secs_f64();
    let (a50, a90) = median_p90(to_active);
    let (r50, r90) = median_p90(to_ready);
    println!(
        "create -> ACTIVE        ({:>2} at once)         median {a50:>6.2} s   p90 {a90:>6.2} s",
        o.concurrent
    );
    println!("create -> testvm ready  ({:>2} at once)         median {r50:>6.2} s   p90 {r90:>6.2} s   all ready after {all:.2} s", o.concurrent);
    let overheads: Vec<f64> = ids
        .iter()
        .filter_map(|id| overhead_mib(qemu_pid(&api.data_dir, id)?, 512))
        .collect();
    if !overheads.is_empty() {
        #[expect(clippy::cast_precision_loss, reason = "a handful of guests")]
        let mean = overheads.iter().sum::<f64>() / overheads.len() as f64;
        let max = overheads.iter().copied().fold(0.0, f64::max);
        println!(
            "QEMU memory beyond guest RAM ({} guests)   mean {mean:>6.1} MiB   max {max:>6.1} MiB",
            overheads.len()
        );
    }
    for id in &ids {
        api.delete(id).await?;
    }

    // Live migration back and forth between the two hosts.
    if o.migrations > 0 {
        let start = Instant::now();
        let id = api.create(&image, "bench-live").await?;
        api.until_ready(&id, start).await?;
        let mut totals = Vec::new();
        for _ in 0..o.migrations {
            let from = api.server(&id).await?["OS-EXT-SRV-ATTR:host"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let to = hv
                .iter()
                .filter_map(|h| h["hypervisor_hostname"].as_str())
                .find(|h| *h != from)
                .context("no other host")?
                .to_string();
            let start = Instant::now();
            let body = json!({"os-migrateLive": {"host": to, "block_migration": "auto"}});
            let (status, out) = api
                .call(
                    reqwest::Method::POST,
                    &format!("servers/{id}/action"),
                    Some(body),
                )
                .await?;
            if status != 202 {
                bail!("live migration answered {status}: {out}");
            }
            loop {
                let s = api.server(&id).await?;
                if s["OS-EXT-SRV-ATTR:host"] == to.as_str()
                    && s["OS-EXT-STS:task_state"].is_null()
                    && s["status"] == "ACTIVE"
                {
                    break;
                }
                // Back on its source with no task: the migration failed and was undone.
                let undone = s["OS-EXT-SRV-ATTR:host"] == from.as_str()
                    && s["OS-EXT-STS:task_state"].is_null();
                if start.elapsed() > BOOT_LIMIT || s["status"] == "ERROR" || undone {
                    let log =
                        std::fs::read_to_string(api.data_dir.join("cloud.log")).unwrap_or_default();
                    let warnings: Vec<&str> =
                        log.lines().filter(|l| !l.contains("\"request\"")).collect();
                    bail!(
                        "live migration of {id} did not complete: {s}\nthe cloud's last lines:\n{}",
                        warnings[warnings.len().saturating_sub(40)..].join("\n")
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            totals.push(start.elapsed());
        }
        let log = std::fs::read_to_string(api.data_dir.join("cloud.log")).unwrap_or_default();
        let downtimes: Vec<Duration> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["fields"]["message"] == "live migration sent")
            .filter_map(|l| l["fields"]["downtime_ms"].as_u64())
            .map(Duration::from_millis)
            .collect();
        if downtimes.is_empty() {
            eprintln!(
                "no 'live migration sent' lines among the {} lines of the cloud's log",
                log.lines().count()
            );
            eprintln!(
                "{}",
                log.lines().rev().take(5).collect::<Vec<_>>().join("\n")
            );
        }
        let (t50, t90) = median_p90(totals);
        let (d50, d90) = median_p90(downtimes.clone());
        println!("live migration, request -> ACTIVE on the other host ({} runs)   median {t50:>6.2} s   p90 {t90:>6.2} s", o.migrations);
        println!(
            "live migration downtime (QEMU's figure, {} runs)                 median {:>6.0} ms  p90 {:>6.0} ms",
            downtimes.len(),
            d50 * 1000.0,
            d90 * 1000.0
        );
        api.delete(&id).await?;
    }
    Ok(())
}
