//! `ferrostack bench compute`: the scheduler in process at many simulated hosts, then server
//! create to ACTIVE and server listing over HTTP against a started all-in-one cloud with fake
//! hosts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferrostack_agent_api::{Desired, PowerState};
use ferrostack_compute::db::instances;
use ferrostack_compute::instance::{FlavorSnapshot, Instance};
use ferrostack_compute::scheduler::{self, Request};
use ferrostack_compute::state::{TaskState, VmState};
use ferrostack_compute::ComputeConfig;
use ferrostack_virt::Driver;
use serde_json::{json, Value};

use super::{issue, measure, password_body, start_cloud_with, tempdir, Figures};
use crate::config::{CommonOpts, Config};

pub struct Opts {
    pub scheduler_hosts: Vec<usize>,
    pub decisions: usize,
    pub compute_hosts: usize,
    pub clients: usize,
    pub creates: usize,
    pub servers: usize,
    pub dur: Duration,
}

/// Capacity of every simulated host (as `all-in-one --compute-driver fake` gives its hosts).
const HOST_CAPACITY: (i64, i64, i64) = (32, 64 * 1024, 1000);

pub async fn run(o: Opts) -> anyhow::Result<()> {
    println!(
        "ferrostack bench compute: fake driver, {} cores, load average {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        load_average()
    );
    for &n in &o.scheduler_hosts {
        scheduler_figures(n, o.decisions, o.dur).await?;
    }
    if o.compute_hosts > 0 {
        http_figures(&o).await?;
    }
    println!("load average at the end: {}", load_average());
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn tiny_flavor() -> FlavorSnapshot {
    FlavorSnapshot {
        id: "1".into(),
        name: "m1.tiny".into(),
        vcpus: 1,
        ram: 512,
        disk: 1,
        ephemeral: 0,
        swap: 0,
        extra_specs: BTreeMap::new(),
    }
}

/// An instance row as a create would write it: waiting for a host (`host` None) or, for the
/// list measurement, already ACTIVE on `host`.
fn bench_instance(
    i: usize,
    project: &str,
    user: &str,
    image: &str,
    host: Option<&str>,
) -> Instance {
    let now = ferrostack_store::now_micros();
    let active = host.is_some();
    Instance {
        uuid: uuid::Uuid::new_v4().to_string(),
        display_name: format!("bench-{i:05}"),
        display_description: None,
        hostname: format!("bench-{i:05}"),
        project_id: project.into(),
        user_id: user.into(),
        image_ref: image.into(),
        flavor: tiny_flavor(),
        key_name: None,
        key_data: None,
        user_data: None,
        config_drive: String::new(),
        availability_zone: None,
        host: host.map(str::to_string),
        node: host.map(str::to_string),
        vm_state: if active {
            VmState::Active
        } else {
            VmState::Building
        },
        task_state: (!active).then_some(TaskState::Scheduling),
        power_state: if active {
            PowerState::Running
        } else {
            PowerState::NoState
        },
        desired_power: Desired::Running,
        target_vm_state: VmState::Active,
        one_shot: None,
        generation: 1,
        done_generation: if active { 1 } else { 0 },
        locked: false,
        locked_by: None,
        locked_reason: None,
        access_ip_v4: None,
        access_ip_v6: None,
        reservation_id: format!("r-bench{i:05}"),
        launch_index: 0,
        progress: 0,
        request_spec: json!({}),
        addresses: json!({}),
        launched_at: active.then_some(now),
        terminated_at: None,
        created_at: now,
        updated_at: Some(now),
        deleted: false,
        metadata: BTreeMap::from([
            ("role".to_string(), "bench".to_string()),
            ("index".to_string(), i.to_string()),
        ]),
        tags: vec!["bench".into()],
    }
}

fn figures(latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    let mut latencies = latencies;
    latencies.sort_unstable();
    Figures {
        count: latencies.len(),
        errors: 0,
        elapsed,
        latencies,
    }
}

fn print_rate(name: &str, unit: &str, f: &Figures) {
    println!(
        "{name:<56} {:>9.0} {unit}/s   p50 {:>7.3} ms   p99 {:>7.3} ms   ({} {unit}s, {} errors)",
        f.count as f64 / f.elapsed.as_secs_f64(),
        f.pct(0.50),
        f.pct(0.99),
        f.count,
        f.errors
    );
}

/// Scheduler decisions at `n` simulated hosts, in process on a temporary SQLite file.
async fn scheduler_figures(n: usize, decisions: usize, dur: Duration) -> anyhow::Result<()> {
    let dir =
        std::env::temp_dir().join(format!("ferrostack-bench-sched-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let dir = tempdir::Dir(dir);
    let cfg = Config::resolve(&CommonOpts {
        data_dir: Some(dir.0.clone()),
        ..Default::default()
    })?;
    let mut cc = ComputeConfig::new(&cfg.public_url);
    // Registering 10,000 hosts can take longer than the default 60 s without heartbeats: keep
    // them all up for the measurement.
    cc.service_down_time = Duration::from_secs(24 * 3600);
    let cloud =
        ferrostack_cloud::Cloud::open(&cfg.db, &crate::server::cloud_config_with(&cfg, cc)).await?;
    let compute = cloud.compute.clone();

    let (vcpus, ram, disk) = HOST_CAPACITY;
    let info = ferrostack_virt::fake::FakeDriver::new("bench", vcpus, ram, disk, Duration::ZERO)
        .host_info()
        .await?;
    let t = Instant::now();
    for i in 0..n {
        compute
            .register_host(&format!("bench-host-{i:05}"), &info)
            .await?;
    }
    let reg = t.elapsed();
    println!(
        "{:<56} {:>9.0} hosts/s  ({n} hosts in {:.1} s, in process, no agents)",
        format!("host registration (ComputeService::register_host), {n}"),
        n as f64 / reg.as_secs_f64(),
        reg.as_secs_f64()
    );

    // Host state loading (what a cache refill costs).
    let mut loads = Vec::new();
    let t = Instant::now();
    for _ in 0..5 {
        let s = Instant::now();
        let states = compute.load_host_states().await?;
        anyhow::ensure!(
            states.len() == n,
            "{} host states for {n} hosts",
            states.len()
        );
        loads.push(s.elapsed());
    }
    print_rate(
        &format!("host state load (load_host_states), {n} hosts"),
        "load",
        &figures(loads, t.elapsed()),
    );

    // Pure selection: filters + weighers over cached host states.
    let hosts = compute.load_host_states().await?;
    let req = Request {
        instance_uuid: uuid::Uuid::new_v4().to_string(),
        project_id: "bench".into(),
        user_id: "bench".into(),
        resources: scheduler::Resources {
            vcpu: 1,
            memory_mb: 512,
            disk_gb: 1,
        },
        ..Default::default()
    };
    let mut lat = Vec::new();
    let t = Instant::now();
    while t.elapsed() < dur && lat.len() < 1_000_000 {
        let s = Instant::now();
        let r = scheduler::select_top(
            &hosts,
            &req,
            compute.config.strategy,
            scheduler::CLAIM_CANDIDATES,
        );
        std::hint::black_box(r.map(|r| r.len()).unwrap_or(0));
        lat.push(s.elapsed());
    }
    print_rate(
        &format!("select only (filters + weighers), {n} hosts"),
        "decision",
        &figures(lat, t.elapsed()),
    );

    // Full decisions: schedule_one on instance rows waiting for a host.
    let mut waiting = Vec::with_capacity(decisions);
    let mut tx = compute.db.begin_write().await?;
    for i in 0..decisions {
        let inst = bench_instance(i, "bench", "bench", "bench-image", None);
        instances::insert(&mut tx, &inst).await?;
        waiting.push(inst);
    }
    tx.commit().await?;
    compute.hosts.invalidate().await;
    let mut lat = Vec::with_capacity(decisions);
    let mut errors = 0;
    let t = Instant::now();
    for inst in &waiting {
        let s = Instant::now();
        match compute.schedule_one(inst, &[]).await {
            Ok(Some(_)) => lat.push(s.elapsed()),
            _ => errors += 1,
        }
    }
    let mut f = figures(lat, t.elapsed());
    f.count += errors;
    f.errors = errors;
    print_rate(
        &format!("schedule_one (cached states + select + claim), {n} hosts"),
        "decision",
        &f,
    );

    // The placement claim alone (the write part of a decision), on the best hosts in turn.
    let ranked: Vec<(String, String)> = scheduler::select_top(
        &hosts,
        &req,
        compute.config.strategy,
        scheduler::CLAIM_CANDIDATES,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .iter()
    .map(|h| (h.host.clone(), h.provider_uuid.clone()))
    .collect();
    let mut lat = Vec::new();
    let t = Instant::now();
    for i in 0..decisions.min(500) {
        let mut r = req.clone();
        r.instance_uuid = uuid::Uuid::new_v4().to_string();
        let s = Instant::now();
        let one = &ranked[i % ranked.len()..][..1];
        let mut tx = compute.db.begin_write().await?;
        if let Ok(Some(_)) =
            scheduler::claim_first(&compute.placement, &mut tx, one, &r, None).await
        {
            tx.commit().await?;
            lat.push(s.elapsed());
        }
    }
    print_rate(
        &format!("placement claim alone (claim_first), {n} hosts"),
        "claim",
        &figures(lat, t.elapsed()),
    );
    Ok(())
}

/// Token, user and project of the admin.
async fn whoami(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<(String, String)> {
    let v: Value = client
        .get(format!("{url}/identity/v3/auth/tokens?nocatalog"))
        .header("x-auth-token", token)
        .header("x-subject-token", token)
        .send()
        .await?
        .json()
        .await?;
    Ok((
        v["token"]["user"]["id"]
            .as_str()
            .context("user id")?
            .to_string(),
        v["token"]["project"]["id"]
            .as_str()
            .context("project id")?
            .to_string(),
    ))
}

/// A 1 MiB raw image, active.
pub(super) async fn upload_image(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<String> {
    let created: Value = client
        .post(format!("{url}/image/v2/images"))
        .header("x-auth-token", token)
        .json(&json!({"name": "bench-raw", "disk_format": "raw", "container_format": "bare"}))
        .send()
        .await?
        .json()
        .await?;
    let id = created["id"].as_str().context("image id")?.to_string();
    let r = client
        .put(format!("{url}/image/v2/images/{id}/file"))
        .header("x-auth-token", token)
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 1 << 20])
        .send()
        .await?;
    anyhow::ensure!(r.status() == 204, "image upload answered {}", r.status());
    Ok(id)
}

/// Creates one server and polls it until ACTIVE; false on any error or after 120 s.
async fn create_until_active(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    image: &str,
    n: usize,
) -> bool {
    let r = client
        .post(format!("{url}/compute/v2.1/servers"))
        .header("x-auth-token", token)
        .header("openstack-api-version", "compute 2.37")
        .json(
            &json!({"server": {"name": format!("http-{n:05}"), "imageRef": image,
                                  "flavorRef": "1", "networks": "none"}}),
        )
        .send()
        .await;
    let id = match r {
        Ok(r) if r.status() == 202 => match r.json::<Value>().await {
            Ok(v) => match v["server"]["id"].as_str() {
                Some(id) => id.to_string(),
                None => return false,
            },
            Err(_) => return false,
        },
        _ => return false,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let r = client
            .get(format!("{url}/compute/v2.1/servers/{id}"))
            .header("x-auth-token", token)
            .send()
            .await;
        if let Ok(r) = r {
            if let Ok(v) = r.json::<Value>().await {
                match v["server"]["status"].as_str() {
                    Some("ACTIVE") => return true,
                    Some("ERROR") => return false,
                    _ => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

async fn http_figures(o: &Opts) -> anyhow::Result<()> {
    let hosts = o.compute_hosts.to_string();
    let cloud = start_cloud_with(&["--compute-driver", "fake", "--compute-hosts", &hosts]).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.clients + 8)
        .build()?;
    let url = cloud.url.clone();
    let token = issue(&client, &url, &password_body(&cloud.password)).await?;
    let (user, project) = whoami(&client, &url, &token).await?;
    println!(
        "cloud at {url}: {} fake hosts ({} vCPU, {} MiB, {} GB each), zero driver delay",
        o.compute_hosts, HOST_CAPACITY.0, HOST_CAPACITY.1, HOST_CAPACITY.2
    );
    let r = client
        .put(format!("{url}/compute/v2.1/os-quota-sets/{project}"))
        .header("x-auth-token", &token)
        .json(&json!({"quota_set": {"instances": -1, "cores": -1, "ram": -1}}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "quota update answered {}", r.status());
    let image = upload_image(&client, &url, &token).await?;
    // Wait until every host has registered.
    for _ in 0..200 {
        let v: Value = client
            .get(format!("{url}/compute/v2.1/os-hypervisors"))
            .header("x-auth-token", &token)
            .send()
            .await?
            .json()
            .await?;
        if v["hypervisors"].as_array().map_or(0, |a| a.len()) >= o.compute_hosts {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Create to ACTIVE.
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (c, u, tk, im) = (client.clone(), url.clone(), token.clone(), image.clone());
    let f = measure(o.clients, Duration::from_secs(600), o.creates, move || {
        let (c, u, tk, im) = (c.clone(), u.clone(), tk.clone(), im.clone());
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move { create_until_active(&c, &u, &tk, &im, n).await }
    })
    .await;
    print_rate(
        &format!("server create to ACTIVE (POST + poll GET), c={}", o.clients),
        "create",
        &f,
    );
    let created = f.count;

    // Many servers: insert the rest directly into the cloud's database.
    let db = ferrostack_store::Db::connect_without_migrating(&format!(
        "sqlite://{}/ferrostack.db",
        cloud._dir.0.display()
    ))
    .await?;
    let extra = o.servers.saturating_sub(created);
    let t = Instant::now();
    for chunk in (0..extra).collect::<Vec<_>>().chunks(1000) {
        let mut tx = db.begin_write().await?;
        for &i in chunk {
            // On a host no agent runs, so nothing converges them while listing.
            let inst = bench_instance(i, &project, &user, &image, Some("bench-list-host"));
            instances::insert(&mut tx, &inst).await?;
        }
        tx.commit().await?;
    }
    println!(
        "{extra} ACTIVE servers (2 metadata items, 1 tag each) inserted directly through \
         compute's db layer in {:.1} s; {created} created over HTTP",
        t.elapsed().as_secs_f64()
    );
    db.pool.close().await;
    db.writer.close().await;

    for (label, query) in [
        (
            "server list --long (GET /servers/detail?limit=1000)",
            "/servers/detail?limit=1000",
        ),
        (
            "server list (GET /servers?limit=1000)",
            "/servers?limit=1000",
        ),
    ] {
        for c in [1usize, 4] {
            let (client, u, token) = (
                client.clone(),
                format!("{url}/compute/v2.1{query}"),
                token.clone(),
            );
            let f = measure(c, o.dur, 100_000, move || {
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
