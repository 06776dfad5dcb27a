//! `ferrostack bench ...`: benchmarks that print figures. Each starts its own all-in-one cloud
//! as a child process (this same binary) on a free loopback port with a temporary data dir, so
//! the figures include the whole HTTP path. Loops are bounded in time and count.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use serde_json::{json, Value};

mod churn;
mod compute;
mod network;
mod qemu;
mod throughput;

#[derive(Subcommand)]
pub enum BenchWhat {
    /// Token validations/s and latency at concurrency 1/16/64, token issue (token method,
    /// project-scoped) per second, password authentications per second.
    Identity {
        /// Seconds to run each measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Upload and download throughput of a large image against a plain `cp` of the same file
    /// on the same disk, and image-list latency with many images.
    Image {
        /// Size of the image to upload and download, in MiB.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Number of images to create for the list measurement.
        #[arg(long, default_value_t = 10_000)]
        images: usize,
        /// Seconds to run each list measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Scheduler decisions/s at many simulated hosts (in process), server create to ACTIVE
    /// with concurrent clients over HTTP, and server-list latency with many servers.
    Compute {
        /// Host counts for the in-process scheduler measurement.
        #[arg(long, value_delimiter = ',', default_values_t = [1_000usize, 10_000])]
        scheduler_hosts: Vec<usize>,
        /// Scheduling decisions (with claim) to time at each host count.
        #[arg(long, default_value_t = 2_000)]
        decisions: usize,
        /// Simulated (fake driver) hosts of the cloud used for the HTTP measurements (0: skip
        /// the HTTP measurements).
        #[arg(long, default_value_t = 10)]
        compute_hosts: usize,
        /// Concurrent clients creating servers.
        #[arg(long, default_value_t = 50)]
        clients: usize,
        /// Servers to create over HTTP (the fake hosts must hold them all).
        #[arg(long, default_value_t = 1_000)]
        creates: usize,
        /// Servers in the project for the list measurement (the ones not created over HTTP
        /// are inserted directly into the database).
        #[arg(long, default_value_t = 10_000)]
        servers: usize,
        /// Seconds to run each list measurement (and the pure selection loop).
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// The networking API: port create with many ports already on the network (address
    /// allocation), port list and show.
    Network {
        /// Ports on the network before the create measurement.
        #[arg(long, default_value_t = 1_000)]
        ports: usize,
        /// Ports created at each concurrency.
        #[arg(long, default_value_t = 500)]
        creates: usize,
        /// Seconds to run each measurement at most.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// A security group rule's way from the API to a host's nftables ruleset (this
    /// machine's kernel, as root) filtering many ports of the rule's group.
    SgRule {
        /// Ports of the group on the host.
        #[arg(long, default_value_t = 500)]
        ports: usize,
        /// Rules created, one at a time.
        #[arg(long, default_value_t = 20)]
        rules: usize,
    },
    /// TCP between two ports through a host's data plane (bridge, anti-spoofing, conntrack,
    /// security groups; this machine's kernel, as root) against a bare veth pair.
    Throughput {
        /// Seconds each transfer runs.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Transfers each way (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Real guests on this machine's QEMU (two local hosts): create to ACTIVE and to
    /// `testvm ready` one at a time and many at once, QEMU's memory beyond guest RAM, live
    /// migration time and downtime.
    Qemu {
        /// The testvm build (kernel, ramdisk, disk). Default: FERROSTACK_TESTVM_DIR, else
        /// ~/.cache/ferrostack-testvm/out.
        #[arg(long)]
        testvm_dir: Option<std::path::PathBuf>,
        /// Servers booted one at a time.
        #[arg(long, default_value_t = 10)]
        boots: usize,
        /// Servers booted at once.
        #[arg(long, default_value_t = 10)]
        concurrent: usize,
        /// Live migrations of one guest back and forth (0: none).
        #[arg(long, default_value_t = 10)]
        migrations: usize,
    },
    /// Clients of one project creating and deleting servers at once (some giving up on their
    /// requests early, optionally with the cloud killed and restarted), then the invariants:
    /// no 5xx, nothing stuck, quota usage = recount, placement usage = live servers' flavors.
    Churn {
        /// Concurrent clients.
        #[arg(long, default_value_t = 50)]
        clients: usize,
        /// Seconds the clients run.
        #[arg(long, default_value_t = 300)]
        seconds: u64,
        /// Simulated (fake driver) hosts.
        #[arg(long, default_value_t = 10)]
        compute_hosts: usize,
        /// Fraction of requests whose client gives up after 1-40 ms.
        #[arg(long, default_value_t = 0.1)]
        give_up: f64,
        /// Times the cloud is killed (SIGKILL) and restarted during the run.
        #[arg(long, default_value_t = 0)]
        kill_rounds: usize,
        /// Servers each client keeps at most.
        #[arg(long, default_value_t = 4)]
        live_per_client: usize,
        /// Database of the cloud (postgres://...); default SQLite in its data directory.
        #[arg(long = "cloud-db")]
        cloud_db: Option<String>,
        /// Fail (exit 1) when an invariant is broken or any answer was a 5xx.
        #[arg(long)]
        check: bool,
    },
}

pub async fn run(what: BenchWhat) -> anyhow::Result<()> {
    match what {
        BenchWhat::Identity { seconds } => identity(Duration::from_secs(seconds)).await,
        BenchWhat::Image {
            size_mib,
            images,
            seconds,
        } => image(size_mib, images, Duration::from_secs(seconds)).await,
        BenchWhat::Compute {
            scheduler_hosts,
            decisions,
            compute_hosts,
            clients,
            creates,
            servers,
            seconds,
        } => {
            compute::run(compute::Opts {
                scheduler_hosts,
                decisions,
                compute_hosts,
                clients,
                creates,
                servers,
                dur: Duration::from_secs(seconds),
            })
            .await
        }
        BenchWhat::Network {
            ports,
            creates,
            seconds,
        } => {
            network::run(network::Opts {
                existing: ports,
                creates,
                dur: Duration::from_secs(seconds),
            })
            .await
        }
        BenchWhat::SgRule { ports, rules } => {
            network::run_rule_latency(network::RuleOpts { ports, rules }).await
        }
        BenchWhat::Throughput { seconds, rounds } => {
            throughput::run(throughput::Opts { seconds, rounds }).await
        }
        BenchWhat::Qemu {
            testvm_dir,
            boots,
            concurrent,
            migrations,
        } => {
            let testvm_dir = testvm_dir
                .or_else(|| std::env::var_os("FERROSTACK_TESTVM_DIR").map(Into::into))
                .or_else(|| {
                    std::env::var_os("HOME")
                        .map(|h| std::path::PathBuf::from(h).join(".cache/ferrostack-testvm/out"))
                })
                .context("no testvm directory (--testvm-dir)")?;
            qemu::run(qemu::Opts {
                testvm_dir,
                boots,
                concurrent,
                migrations,
            })
            .await
        }
        BenchWhat::Churn {
            clients,
            seconds,
            compute_hosts,
            give_up,
            kill_rounds,
            live_per_client,
            cloud_db,
            check,
        } => {
            churn::run(churn::Opts {
                clients,
                dur: Duration::from_secs(seconds),
                compute_hosts,
                give_up,
                kill_rounds,
                db: cloud_db,
                live_per_client,
                check,
            })
            .await
        }
    }
}

/// A cloud started for a benchmark; killed on drop.
struct BenchCloud {
    child: tokio::process::Child,
    url: String,
    password: String,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A temporary directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for BenchCloud {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        // What its hosts made on this machine (the outside namespace, data planes) goes too.
        if let Ok(outside) = std::fs::read_to_string(self._dir.0.join("external-netns")) {
            network::remove_namespaces(outside.trim().trim_end_matches("-ext"));
        }
    }
}

async fn start_cloud() -> anyhow::Result<BenchCloud> {
    start_cloud_with(&[]).await
}

/// Starts a cloud with extra `all-in-one` arguments.
async fn start_cloud_with(extra: &[&str]) -> anyhow::Result<BenchCloud> {
    start_cloud_logging(extra, None).await
}

/// Starts a cloud with extra `all-in-one` arguments whose log (at `filter`) goes to
/// `cloud.log` in its data directory, for figures only the log has.
async fn start_cloud_logged(extra: &[&str], filter: &str) -> anyhow::Result<BenchCloud> {
    start_cloud_logging(extra, Some(filter)).await
}

async fn start_cloud_logging(extra: &[&str], log: Option<&str>) -> anyhow::Result<BenchCloud> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!("ferrostack-bench-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let dir = tempdir::Dir(dir);
    let exe = std::env::current_exe()?;
    let child = tokio::process::Command::new(exe)
        .args(["all-in-one", "--data-dir"])
        .arg(&dir.0)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env("FERROSTACK_LOG", log.unwrap_or("warn"))
        // The log goes to standard output (tracing's default writer).
        .stdout(match log {
            Some(_) => Stdio::from(std::fs::File::create(dir.0.join("cloud.log"))?),
            None => Stdio::null(),
        })
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the cloud")?;
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{url}/identity/v3"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let openrc = std::fs::read_to_string(dir.0.join("openrc")).context("reading openrc")?;
    let password = openrc
        .lines()
        .find_map(|l| l.strip_prefix("export OS_PASSWORD="))
        .map(|p| p.trim_matches('\'').to_string())
        .context("no password in openrc")?;
    Ok(BenchCloud {
        child,
        url,
        password,
        _dir: dir,
    })
}

fn password_body(password: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
}

async fn issue(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<String> {
    let r = client
        .post(format!("{url}/identity/v3/auth/tokens?nocatalog"))
        .json(body)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "token issue answered {}", r.status());
    Ok(r.headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .context("no X-Subject-Token")?
        .to_string())
}

/// Results of one measurement.
struct Figures {
    count: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// The index of the `p` quantile (0..=1) in a sorted list of `len` items.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "p is clamped to 0..=1, so the rounded product lies in 0..len"
)]
fn quantile_index(len: usize, p: f64) -> usize {
    (len.saturating_sub(1) as f64 * p.clamp(0.0, 1.0)).round() as usize
}

impl Figures {
    fn pct(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = quantile_index(self.latencies.len(), p);
        self.latencies[i].as_secs_f64() * 1000.0
    }
    fn print(&self, name: &str) {
        println!(
            "{name:<48} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests, {} errors)",
            self.count as f64 / self.elapsed.as_secs_f64(),
            self.pct(0.50),
            self.pct(0.99),
            self.count,
            self.errors
        );
    }
}

/// Runs `op` from `concurrency` workers for `dur` (and at most `max` requests in all).
async fn measure<F, Fut>(concurrency: usize, dur: Duration, max: usize, op: F) -> Figures
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let deadline = started + dur;
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..concurrency {
        let op = op.clone();
        let done = done.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline
                && done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < max
            {
                let t = Instant::now();
                if op().await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for h in handles {
        if let Ok((l, e)) = h.await {
            latencies.extend(l);
            errors += e;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Figures {
        count: latencies.len() + errors,
        errors,
        elapsed,
        latencies,
    }
}

async fn identity(dur: Duration) -> anyhow::Result<()> {
    let cloud = start_cloud().await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()?;
    let url = cloud.url.clone();
    let token = issue(&client, &url, &password_body(&cloud.password)).await?;
    println!(
        "ferrostack bench identity: cloud at {url}, {} s per measurement, {} cores",
        dur.as_secs(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    for c in [1usize, 16, 64] {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        let f = measure(c, dur, 5_000_000, move || {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            async move {
                client
                    .get(format!("{url}/identity/v3/auth/tokens?nocatalog"))
                    .header("x-auth-token", &token)
                    .header("x-subject-token", &token)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await;
        f.print(&format!("token validation (GET /v3/auth/tokens), c={c}"));
    }

    let rescope = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
    for c in [1usize, 16] {
        let (client, url, body) = (client.clone(), url.clone(), rescope.clone());
        let f = measure(c, dur, 1_000_000, move || {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            async move { issue(&client, &url, &body).await.is_ok() }
        })
        .await;
        f.print(&format!("token issue, token method, project scope, c={c}"));
    }

    for c in [1usize, 4] {
        let (client, url, body) = (client.clone(), url.clone(), password_body(&cloud.password));
        let f = measure(c, dur, 100_000, move || {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            async move { issue(&client, &url, &body).await.is_ok() }
        })
        .await;
        f.print(&format!("password authentication (argon2id), c={c}"));
    }
    Ok(())
}

/// Writes a `mib` MiB file of incompressible bytes (a random 1 MiB block, varied per MiB).
fn write_test_file(path: &std::path::Path, mib: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::with_capacity(4 << 20, std::fs::File::create(path)?);
    let mut block: Vec<u8> = (0..1 << 20).map(|_| rand_byte()).collect();
    for i in 0..mib {
        block[..8].copy_from_slice(&i.to_le_bytes());
        f.write_all(&block)?;
    }
    f.into_inner()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .sync_all()?;
    Ok(())
}

fn rand_byte() -> u8 {
    use std::cell::Cell;
    thread_local!(static S: Cell<u64> = const { Cell::new(0x9e37_79b9_7f4a_7c15) });
    S.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x.to_le_bytes()[3]
    })
}

async fn image(size_mib: u64, count: usize, dur: Duration) -> anyhow::Result<()> {
    let cloud = start_cloud().await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let url = cloud.url.clone();
    let token = issue(&client, &url, &password_body(&cloud.password)).await?;
    let bytes = size_mib << 20;
    println!(
        "ferrostack bench image: cloud at {url}, {size_mib} MiB image, {count} images for listing"
    );

    // Baseline: cp of the same file on the same disk (the cloud's data dir is a sibling).
    let work = cloud._dir.0.join("bench");
    std::fs::create_dir_all(&work)?;
    let src = work.join("source.raw");
    write_test_file(&src, size_mib)?;
    let t = Instant::now();
    let st = std::process::Command::new("cp")
        .arg(&src)
        .arg(work.join("copy.raw"))
        .status()?;
    anyhow::ensure!(st.success(), "cp failed");
    std::process::Command::new("sync").status()?;
    let cp = t.elapsed();
    std::fs::remove_file(work.join("copy.raw"))?;
    let mbps = |d: Duration| bytes as f64 / (1 << 20) as f64 / d.as_secs_f64();
    println!(
        "{:<48} {:>9.1} MiB/s   ({:.2} s)",
        "cp of the same file (+ sync)",
        mbps(cp),
        cp.as_secs_f64()
    );

    // Upload.
    let created: Value = client
        .post(format!("{url}/image/v2/images"))
        .header("x-auth-token", &token)
        .json(&json!({"name": "bench-big", "disk_format": "raw", "container_format": "bare"}))
        .send()
        .await?
        .json()
        .await?;
    let id = created["id"].as_str().context("image id")?.to_string();
    let f = tokio::fs::File::open(&src).await?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(f, 1 << 20));
    let t = Instant::now();
    let r = client
        .put(format!("{url}/image/v2/images/{id}/file"))
        .header("x-auth-token", &token)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await?;
    let up = t.elapsed();
    anyhow::ensure!(r.status() == 204, "upload answered {}", r.status());
    println!(
        "{:<48} {:>9.1} MiB/s   ({:.2} s, {:.2} x cp)",
        "image upload (PUT /file, md5+sha512+fsync)",
        mbps(up),
        up.as_secs_f64(),
        cp.as_secs_f64() / up.as_secs_f64()
    );

    // Download to a file on the same disk.
    let t = Instant::now();
    let mut r = client
        .get(format!("{url}/image/v2/images/{id}/file"))
        .header("x-auth-token", &token)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "download answered {}", r.status());
    let mut out = tokio::fs::File::create(work.join("download.raw")).await?;
    let mut got: u64 = 0;
    while let Some(chunk) = r.chunk().await? {
        got += chunk.len() as u64;
        tokio::io::AsyncWriteExt::write_all(&mut out, &chunk).await?;
    }
    out.sync_all().await?;
    let down = t.elapsed();
    anyhow::ensure!(got == bytes, "downloaded {got} of {bytes} bytes");
    println!(
        "{:<48} {:>9.1} MiB/s   ({:.2} s, {:.2} x cp)",
        "image download (GET /file, to disk + fsync)",
        mbps(down),
        down.as_secs_f64(),
        cp.as_secs_f64() / down.as_secs_f64()
    );
    std::fs::remove_file(&src)?;
    std::fs::remove_file(work.join("download.raw"))?;

    // Many images: raise the admin project's image count limit, create them, time the list.
    let services: Value = client
        .get(format!("{url}/identity/v3/services?type=image"))
        .header("x-auth-token", &token)
        .send()
        .await?
        .json()
        .await?;
    let sid = services["services"][0]["id"]
        .as_str()
        .context("image service")?
        .to_string();
    let project = created["owner"].as_str().context("owner")?.to_string();
    let r = client
        .post(format!("{url}/identity/v3/limits"))
        .header("x-auth-token", &token)
        .json(
            &json!({"limits": [{"project_id": project, "service_id": sid, "region_id": "RegionOne",
            "resource_name": "image_count_total", "resource_limit": count + 10}]}),
        )
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "limit create answered {}", r.status());
    let t = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (client, url, token, next) = (client.clone(), url.clone(), token.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let _ = client
                    .post(format!("{url}/image/v2/images"))
                    .header("x-auth-token", &token)
                    .json(&json!({"name": format!("img-{i:05}"), "disk_format": "raw", "container_format": "bare",
                                  "os_distro": if i % 2 == 0 { "even" } else { "odd" }}))
                    .send()
                    .await;
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let created_in = t.elapsed();
    println!(
        "{:<48} {:>9.0} req/s   ({count} images in {:.1} s)",
        "image create (POST /v2/images), c=16",
        count as f64 / created_in.as_secs_f64(),
        created_in.as_secs_f64()
    );
    for (label, query) in [
        ("image list, default page (25)", ""),
        ("image list, limit=1000", "?limit=1000"),
        (
            "image list, filter os_distro=even, limit=100",
            "?os_distro=even&limit=100",
        ),
    ] {
        for c in [1usize, 8] {
            let (client, u, token) = (
                client.clone(),
                format!("{url}/image/v2/images{query}"),
                token.clone(),
            );
            let f = measure(c, dur, 100_000, move || {
                let (client, u, token) = (client.clone(), u.clone(), token.clone());
                async move {
                    match client.get(&u).header("x-auth-token", &token).send().await {
                        Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                        _ => false,
                    }
                }
            })
            .await;
            f.print(&format!("{label}, c={c}"));
        }
    }
    Ok(())
}
