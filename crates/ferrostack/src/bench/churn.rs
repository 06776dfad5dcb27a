//! `ferrostack bench churn`: many clients of one project creating and deleting servers at once
//! against an all-in-one cloud with fake hosts, some of them giving up on their requests
//! early, optionally with the cloud killed (SIGKILL) and restarted meanwhile. Prints the write
//! latencies and the count of 5xx answers, then checks what must hold after such a run:
//! nothing stuck in a task, quota usage equal to a recount of the servers, and placement usage
//! on every host equal to the sum of its live servers' flavors (also once everything is
//! deleted: then zero).
//!
//! With `--check` a broken invariant (or any 5xx) makes the command fail; the test command
//! runs a short version that way. Figures go to docs/performance.md.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::RwLock;

use super::{issue, password_body};

pub struct Opts {
    pub clients: usize,
    pub dur: Duration,
    pub compute_hosts: usize,
    /// Fraction of requests whose client gives up after 1-40 ms.
    pub give_up: f64,
    /// Times the cloud is killed with SIGKILL and restarted during the run.
    pub kill_rounds: usize,
    /// Database URL for the cloud (default: SQLite in its data directory).
    pub db: Option<String>,
    /// Servers each client keeps at most.
    pub live_per_client: usize,
    pub check: bool,
}

/// The cloud under test: a child process that can be killed and started again on the same
/// data directory and port.
struct Cloud {
    child: Option<tokio::process::Child>,
    dir: PathBuf,
    port: u16,
    hosts: usize,
    db: Option<String>,
    url: String,
}

impl Cloud {
    async fn start(&mut self) -> anyhow::Result<()> {
        let exe = std::env::current_exe()?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args(["all-in-one", "--data-dir"])
            .arg(&self.dir)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--compute-driver", "fake"])
            .args(["--compute-hosts", &self.hosts.to_string()])
            .env("FERROSTACK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(db) = &self.db {
            cmd.args(["--db", db]);
        }
        self.child = Some(cmd.spawn().context("starting the cloud")?);
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if client
                .get(format!("{}/identity/v3", self.url))
                .send()
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the cloud did not start")
    }

    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    fn password(&self) -> anyhow::Result<String> {
        let openrc = std::fs::read_to_string(self.dir.join("openrc")).context("reading openrc")?;
        openrc
            .lines()
            .find_map(|l| l.strip_prefix("export OS_PASSWORD="))
            .map(|p| p.trim_matches('\'').to_string())
            .context("no password in openrc")
    }
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    creates: Vec<Duration>,
    deletes: Vec<Duration>,
    server_errors: usize,
    other_errors: BTreeMap<u16, usize>,
    abandoned: usize,
    unavailable: usize,
}

fn pct(v: &[Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v[super::quantile_index(v.len(), p)].as_secs_f64() * 1000.0
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!("ferrostack-churn-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = super::tempdir::Dir(dir.clone());
    let mut cloud = Cloud {
        child: None,
        dir: dir.clone(),
        port,
        hosts: o.compute_hosts,
        db: o.db.clone(),
        url: format!("http://127.0.0.1:{port}"),
    };
    cloud.start().await?;
    let url = cloud.url.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.clients + 8)
        .build()?;
    let admin = issue(&client, &url, &password_body(&cloud.password()?)).await?;
    let (project, member) = make_member(&client, &url, &admin).await?;
    let image = super::compute::upload_image(&client, &url, &admin).await?;
    public(&client, &url, &admin, &image).await?;
    wait_hosts(&client, &url, &admin, o.compute_hosts).await?;
    println!(
        "ferrostack bench churn: {} clients for {} s, {} fake hosts, {:.0}% of requests given up \
         after 1-40 ms, {} kill -9 rounds, database {}, {} cores",
        o.clients,
        o.dur.as_secs(),
        o.compute_hosts,
        o.give_up * 100.0,
        o.kill_rounds,
        if o.db.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    // The clients.
    let deadline = Instant::now() + o.dur;
    let down = Arc::new(RwLock::new(()));
    let tally = Arc::new(tokio::sync::Mutex::new(Tally::default()));
    let created = Arc::new(AtomicUsize::new(0));
    // Every answered write (when, how long), for the progress lines.
    let timeline: Arc<std::sync::Mutex<Vec<(Instant, Duration)>>> = Default::default();
    let progress = {
        let timeline = timeline.clone();
        let every = Duration::from_secs(30).min(o.dur);
        tokio::spawn(async move {
            let start = Instant::now();
            let mut from = start;
            while from < deadline {
                tokio::time::sleep(every).await;
                let to = Instant::now();
                let mut lat: Vec<Duration> = timeline
                    .lock()
                    .map(|t| {
                        t.iter()
                            .filter(|(at, _)| *at >= from && *at < to)
                            .map(|(_, d)| *d)
                            .collect()
                    })
                    .unwrap_or_default();
                lat.sort_unstable();
                println!(
                    "  {:>4.0}-{:<4.0} s: {:>6.1} writes/s, p50 {:>7.2} ms, p99 {:>7.2} ms",
                    (from - start).as_secs_f64(),
                    (to - start).as_secs_f64(),
                    lat.len() as f64 / (to - from).as_secs_f64(),
                    pct(&lat, 0.5),
                    pct(&lat, 0.99)
                );
                from = to;
            }
        })
    };
    let mut workers = Vec::new();
    for w in 0..o.clients {
        let (client, url, token, image) =
            (client.clone(), url.clone(), member.clone(), image.clone());
        let (tally, down, created) = (tally.clone(), down.clone(), created.clone());
        let timeline = timeline.clone();
        let (give_up, max_live) = (o.give_up, o.live_per_client);
        workers.push(tokio::spawn(async move {
            let mut mine: Vec<String> = Vec::new();
            // Servers whose create this client gave up on: found by name and adopted later
            // (the create goes on without its client), so that they get deleted too.
            let mut orphans: Vec<(String, u32)> = Vec::new();
            let mut t = Tally::default();
            let mut n = 0usize;
            while Instant::now() < deadline {
                let _running = down.read().await;
                if let Some((name, tries)) = orphans.pop() {
                    match find_by_name(&client, &url, &token, &name).await {
                        Some(id) => mine.push(id),
                        // Not there (yet, or the create failed): look again a few times.
                        None if tries < 5 => orphans.insert(0, (name, tries + 1)),
                        None => {}
                    }
                }
                let (create, abandon, wait_ms) = {
                    let mut rng = rand::thread_rng();
                    let create = mine.is_empty() || (mine.len() < max_live && rng.gen_bool(0.55));
                    (create, rng.gen_bool(give_up), rng.gen_range(1..40u64))
                };
                let mut target = None;
                let name = format!("churn-{w}-{n}");
                let req = if create {
                    n += 1;
                    client
                        .post(format!("{url}/compute/v2.1/servers"))
                        .header("openstack-api-version", "compute 2.37")
                        .json(&json!({"server": {"name": name,
                            "imageRef": image, "flavorRef": "42", "networks": "none"}}))
                } else {
                    let i = rand::thread_rng().gen_range(0..mine.len());
                    target = Some(mine[i].clone());
                    client.delete(format!("{url}/compute/v2.1/servers/{}", mine[i]))
                };
                let mut req = req.header("x-auth-token", &token);
                if abandon {
                    req = req.timeout(Duration::from_millis(wait_ms));
                }
                let started = Instant::now();
                let r = req.send().await;
                let took = started.elapsed();
                let r = match r {
                    Ok(r) => r,
                    Err(e) if e.is_timeout() => {
                        t.abandoned += 1;
                        if create {
                            orphans.push((name, 0));
                        }
                        continue;
                    }
                    Err(_) => {
                        // The cloud is being restarted.
                        t.unavailable += 1;
                        drop(_running);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let status = r.status().as_u16();
                if status >= 500 {
                    t.server_errors += 1;
                    let body = r.text().await.unwrap_or_default();
                    eprintln!("churn: {status} {body}");
                    continue;
                }
                if create {
                    if status == 202 {
                        t.creates.push(took);
                        if let Ok(mut tl) = timeline.lock() {
                            tl.push((started, took));
                        }
                        created.fetch_add(1, Ordering::Relaxed);
                        if let Ok(v) = r.json::<Value>().await {
                            if let Some(id) = v["server"]["id"].as_str() {
                                mine.push(id.to_string());
                            }
                        }
                    } else {
                        *t.other_errors.entry(status).or_default() += 1;
                    }
                } else {
                    let id_gone = matches!(status, 204 | 404);
                    if status == 204 {
                        t.deletes.push(took);
                        if let Ok(mut tl) = timeline.lock() {
                            tl.push((started, took));
                        }
                    } else if status != 404 {
                        *t.other_errors.entry(status).or_default() += 1;
                    }
                    if id_gone {
                        mine.retain(|m| Some(m) != target.as_ref());
                    }
                }
            }
            let mut all = tally.lock().await;
            all.creates.extend(t.creates);
            all.deletes.extend(t.deletes);
            all.server_errors += t.server_errors;
            all.abandoned += t.abandoned;
            all.unavailable += t.unavailable;
            for (k, v) in t.other_errors {
                *all.other_errors.entry(k).or_default() += v;
            }
        }));
    }
    // Kill rounds, evenly spread over the run.
    for round in 0..o.kill_rounds {
        let at = o
            .dur
            .mul_f64((round + 1) as f64 / (o.kill_rounds + 1) as f64);
        let wait = (deadline - o.dur + at).saturating_duration_since(Instant::now());
        tokio::time::sleep(wait).await;
        // Killed in the middle of whatever the clients are doing; they wait while it restarts.
        cloud.kill().await;
        let _stop = down.write().await;
        println!(
            "killed the cloud with SIGKILL after {:.1} s; restarting",
            at.as_secs_f64()
        );
        cloud.start().await?;
    }
    for w in workers {
        w.await?;
    }
    progress.abort();
    let run_time = o.dur;
    let mut t = Arc::try_unwrap(tally)
        .map_err(|_| anyhow::anyhow!("workers still running"))?
        .into_inner();
    t.creates.sort_unstable();
    t.deletes.sort_unstable();
    let writes: Vec<Duration> = {
        let mut v: Vec<Duration> = t.creates.iter().chain(t.deletes.iter()).copied().collect();
        v.sort_unstable();
        v
    };
    println!(
        "writes answered: {} creates, {} deletes in {:.0} s ({:.1} writes/s); \
         {} given up by their client, {} refused while the cloud restarted",
        t.creates.len(),
        t.deletes.len(),
        run_time.as_secs_f64(),
        writes.len() as f64 / run_time.as_secs_f64(),
        t.abandoned,
        t.unavailable
    );
    println!(
        "POST /servers    p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        pct(&t.creates, 0.5),
        pct(&t.creates, 0.99),
        pct(&t.creates, 1.0)
    );
    println!(
        "DELETE /servers  p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        pct(&t.deletes, 0.5),
        pct(&t.deletes, 0.99),
        pct(&t.deletes, 1.0)
    );
    println!(
        "all writes       p50 {:>7.2} ms   p99 {:>7.2} ms",
        pct(&writes, 0.5),
        pct(&writes, 0.99)
    );
    println!("5xx answers: {}", t.server_errors);
    if !t.other_errors.is_empty() {
        println!("other refusals (status: count): {:?}", t.other_errors);
    }

    // The invariants, once the cloud has settled.
    let admin = issue(&client, &url, &password_body(&cloud.password()?)).await?;
    let mut failures = Vec::new();
    if t.server_errors > 0 {
        failures.push(format!("{} answers were 5xx", t.server_errors));
    }
    let settled = settle(&client, &url, &admin).await?;
    let stuck: Vec<String> = settled
        .iter()
        .filter(|s| !s["OS-EXT-STS:task_state"].is_null() || s["status"] == "BUILD")
        .map(|s| format!("{} {} {}", s["id"], s["status"], s["OS-EXT-STS:task_state"]))
        .collect();
    println!(
        "after the run: {} servers, {} stuck in a task, {} in ERROR",
        settled.len(),
        stuck.len(),
        settled.iter().filter(|s| s["status"] == "ERROR").count()
    );
    if !stuck.is_empty() {
        failures.push(format!("stuck servers: {}", stuck.join(", ")));
    }
    for s in settled.iter().filter(|s| s["status"] == "ERROR") {
        failures.push(format!(
            "server {} in ERROR: {}",
            s["id"], s["fault"]["message"]
        ));
    }
    failures.extend(check_usage(&client, &url, &admin, &project, "after the run").await?);
    // Everything deleted: nothing may stay allocated or counted.
    for s in &settled {
        let id = s["id"].as_str().unwrap_or_default();
        client
            .delete(format!("{url}/compute/v2.1/servers/{id}"))
            .header("x-auth-token", &admin)
            .send()
            .await?;
    }
    let left = settle(&client, &url, &admin).await?;
    if !left.is_empty() {
        failures.push(format!("{} servers left after deleting all", left.len()));
    }
    failures.extend(check_usage(&client, &url, &admin, &project, "once all are deleted").await?);
    if failures.is_empty() {
        println!("invariants: hold (nothing stuck, quota usage = recount, placement usage = live flavors, zero once all are deleted)");
    } else {
        for f in &failures {
            println!("invariant broken: {f}");
        }
    }
    cloud.kill().await;
    if o.check && !failures.is_empty() {
        anyhow::bail!("{} invariants broken", failures.len());
    }
    Ok(())
}

/// The id of the caller's server named exactly `name`, if there is one.
async fn find_by_name(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    name: &str,
) -> Option<String> {
    let v: Value = client
        .get(format!("{url}/compute/v2.1/servers?name=%5E{name}%24"))
        .header("x-auth-token", token)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["servers"][0]["id"].as_str().map(str::to_string)
}

/// A project with a member user (the clients act as it) and unlimited compute quotas.
async fn make_member(
    client: &reqwest::Client,
    url: &str,
    admin: &str,
) -> anyhow::Result<(String, String)> {
    let post = |path: &str, body: Value| {
        client
            .post(format!("{url}/identity/v3{path}"))
            .header("x-auth-token", admin)
            .json(&body)
            .send()
    };
    let p: Value = post("/projects", json!({"project": {"name": "churn"}}))
        .await?
        .json()
        .await?;
    let project = p["project"]["id"]
        .as_str()
        .context("project id")?
        .to_string();
    let u: Value = post(
        "/users",
        json!({"user": {"name": "churner", "password": "churn-pw", "default_project_id": project}}),
    )
    .await?
    .json()
    .await?;
    let user = u["user"]["id"].as_str().context("user id")?.to_string();
    let roles: Value = client
        .get(format!("{url}/identity/v3/roles?name=member"))
        .header("x-auth-token", admin)
        .send()
        .await?
        .json()
        .await?;
    let role = roles["roles"][0]["id"].as_str().context("member role")?;
    let r = client
        .put(format!(
            "{url}/identity/v3/projects/{project}/users/{user}/roles/{role}"
        ))
        .header("x-auth-token", admin)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 204, "role grant answered {}", r.status());
    let r = client
        .put(format!("{url}/compute/v2.1/os-quota-sets/{project}"))
        .header("x-auth-token", admin)
        .json(&json!({"quota_set": {"instances": -1, "cores": -1, "ram": -1}}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "quota update answered {}", r.status());
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": user, "password": "churn-pw"}}}, "scope": {"project": {"id": project}}}});
    let token = issue(client, url, &body).await?;
    Ok((project, token))
}

async fn public(
    client: &reqwest::Client,
    url: &str,
    admin: &str,
    image: &str,
) -> anyhow::Result<()> {
    let r = client
        .patch(format!("{url}/image/v2/images/{image}"))
        .header("x-auth-token", admin)
        .header(
            "content-type",
            "application/openstack-images-v2.1-json-patch",
        )
        .body(r#"[{"op": "replace", "path": "/visibility", "value": "public"}]"#)
        .send()
        .await?;
    anyhow::ensure!(
        r.status() == 200,
        "making the image public answered {}",
        r.status()
    );
    Ok(())
}

async fn wait_hosts(
    client: &reqwest::Client,
    url: &str,
    admin: &str,
    n: usize,
) -> anyhow::Result<()> {
    for _ in 0..400 {
        let v: Value = client
            .get(format!("{url}/compute/v2.1/os-hypervisors"))
            .header("x-auth-token", admin)
            .send()
            .await?
            .json()
            .await?;
        if v["hypervisors"].as_array().map_or(0, |a| a.len()) >= n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the fake hosts did not register")
}

/// Every server of the cloud once none has had a task for a while (at most 2 minutes).
async fn settle(client: &reqwest::Client, url: &str, admin: &str) -> anyhow::Result<Vec<Value>> {
    let until = Instant::now() + Duration::from_secs(120);
    let mut calm = 0;
    loop {
        let v: Value = client
            .get(format!(
                "{url}/compute/v2.1/servers/detail?all_tenants=1&limit=1000"
            ))
            .header("x-auth-token", admin)
            .header("openstack-api-version", "compute 2.96")
            .send()
            .await?
            .json()
            .await?;
        let servers = v["servers"].as_array().cloned().unwrap_or_default();
        let busy = servers
            .iter()
            .any(|s| !s["OS-EXT-STS:task_state"].is_null() || s["status"] == "BUILD");
        calm = if busy { 0 } else { calm + 1 };
        if calm >= 3 || Instant::now() > until {
            return Ok(servers);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Quota usage against a recount, and placement usage against the live servers' flavors.
async fn check_usage(
    client: &reqwest::Client,
    url: &str,
    admin: &str,
    project: &str,
    when: &str,
) -> anyhow::Result<Vec<String>> {
    let get = |path: String, version: &'static str| {
        client
            .get(format!("{url}{path}"))
            .header("x-auth-token", admin)
            .header("openstack-api-version", version)
            .send()
    };
    let mut failures = Vec::new();
    let servers: Value = get(
        "/compute/v2.1/servers/detail?all_tenants=1&limit=1000".into(),
        "compute 2.96",
    )
    .await?
    .json()
    .await?;
    let servers = servers["servers"].as_array().cloned().unwrap_or_default();
    let mut by_host: BTreeMap<String, BTreeMap<&str, i64>> = BTreeMap::new();
    let (mut n, mut cores, mut ram) = (0, 0, 0);
    for s in &servers {
        let f = &s["flavor"];
        if s["tenant_id"] == project {
            n += 1;
            cores += f["vcpus"].as_i64().unwrap_or(0);
            ram += f["ram"].as_i64().unwrap_or(0);
        }
        if let Some(h) = s["OS-EXT-SRV-ATTR:host"].as_str() {
            let e = by_host.entry(h.to_string()).or_default();
            *e.entry("VCPU").or_default() += f["vcpus"].as_i64().unwrap_or(0);
            *e.entry("MEMORY_MB").or_default() += f["ram"].as_i64().unwrap_or(0);
            *e.entry("DISK_GB").or_default() +=
                f["disk"].as_i64().unwrap_or(0) + f["ephemeral"].as_i64().unwrap_or(0);
        }
    }
    let q: Value = get(
        format!("/compute/v2.1/os-quota-sets/{project}/detail"),
        "compute 2.1",
    )
    .await?
    .json()
    .await?;
    let q = &q["quota_set"];
    for (k, want) in [("instances", n), ("cores", cores), ("ram", ram)] {
        let got = q[k]["in_use"].as_i64().unwrap_or(-1);
        if got != want {
            failures.push(format!("{when}: quota {k} in use {got}, recount {want}"));
        }
    }
    let providers: Value = get("/placement/resource_providers".into(), "placement 1.14")
        .await?
        .json()
        .await?;
    let mut mismatched = 0;
    for p in providers["resource_providers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let (uuid, name) = (
            p["uuid"].as_str().unwrap_or_default(),
            p["name"].as_str().unwrap_or_default(),
        );
        let u: Value = get(
            format!("/placement/resource_providers/{uuid}/usages"),
            "placement 1.14",
        )
        .await?
        .json()
        .await?;
        let want = by_host.remove(name).unwrap_or_default();
        for class in ["VCPU", "MEMORY_MB", "DISK_GB"] {
            let got = u["usages"][class].as_i64().unwrap_or(0);
            let w = want.get(class).copied().unwrap_or(0);
            if got != w {
                mismatched += 1;
                failures.push(format!(
                    "{when}: host {name} has {got} {class} allocated, its servers' flavors {w}"
                ));
            }
        }
    }
    for (host, _) in by_host {
        failures.push(format!(
            "{when}: servers on {host}, which placement does not know"
        ));
    }
    println!(
        "{when}: {n} servers of the project ({cores} vCPU, {ram} MiB); quota usage {}; placement usage {}",
        if failures.iter().any(|f| f.contains("quota")) { "DIFFERS" } else { "= recount" },
        if mismatched == 0 { "= live flavors on every host" } else { "DIFFERS" }
    );
    Ok(failures)
}
