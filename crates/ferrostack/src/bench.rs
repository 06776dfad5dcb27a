//! `ferrostack bench ...`: benchmarks that print figures. Each starts its own all-in-one cloud
//! as a child process (this same binary) on a free loopback port with a temporary data dir, so
//! the figures include the whole HTTP path. Loops are bounded in time and count.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum BenchWhat {
    /// Token validations/s and latency at concurrency 1/16/64, token issue (token method,
    /// project-scoped) per second, password authentications per second.
    Identity {
        /// Seconds to run each measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
}

pub async fn run(what: BenchWhat) -> anyhow::Result<()> {
    match what {
        BenchWhat::Identity { seconds } => identity(Duration::from_secs(seconds)).await,
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
    }
}

async fn start_cloud() -> anyhow::Result<BenchCloud> {
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
        .env("FERROSTACK_LOG", "warn")
        .stdout(Stdio::null())
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

impl Figures {
    fn pct(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
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
