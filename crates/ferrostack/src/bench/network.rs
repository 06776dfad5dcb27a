//! `ferrostack bench network`: the networking API over HTTP against a started all-in-one
//! cloud: port create with many ports already on the network (the address allocation path),
//! port listing and showing.

use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use super::{issue, measure, password_body, start_cloud_with};

pub struct Opts {
    /// Ports on the network before the create measurement.
    pub existing: usize,
    /// Ports created in the create measurement (each concurrency).
    pub creates: usize,
    pub dur: Duration,
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let r = client
        .post(url)
        .header("x-auth-token", token)
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status == 201, "POST {url}: {status} {v}");
    Ok(v)
}

/// A network `bench` with a /16 subnet, its project's quotas set to `quota` (the admin
/// project's would stop a bench at 500 ports); returns the network's and project's ids.
async fn bench_network(
    client: &reqwest::Client,
    api: &str,
    token: &str,
    quota: Value,
) -> anyhow::Result<(String, String)> {
    let net = post(
        client,
        &format!("{api}/networks"),
        token,
        json!({"network": {"name": "bench"}}),
    )
    .await?;
    let net_id = net["network"]["id"]
        .as_str()
        .context("network id")?
        .to_string();
    let project = net["network"]["project_id"]
        .as_str()
        .context("project id")?
        .to_string();
    post(
        client,
        &format!("{api}/subnets"),
        token,
        json!({"subnet": {"network_id": net_id, "cidr": "10.0.0.0/16", "ip_version": 4}}),
    )
    .await?;
    let r = client
        .put(format!("{api}/quotas/{project}"))
        .header("x-auth-token", token)
        .json(&json!({"quota": quota}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "quota update: {}", r.status());
    Ok((net_id, project))
}

/// Creates `count` ports with bodies from `port`, 100 per bulk request.
async fn bulk_ports(
    client: &reqwest::Client,
    api: &str,
    token: &str,
    count: usize,
    port: impl Fn() -> Value,
) -> anyhow::Result<()> {
    let mut made = 0;
    while made < count {
        let n = (count - made).min(100);
        let ports: Vec<Value> = (0..n).map(|_| port()).collect();
        post(
            client,
            &format!("{api}/ports"),
            token,
            json!({"ports": ports}),
        )
        .await?;
        made += n;
    }
    Ok(())
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    let cloud = start_cloud_with(&["--compute-hosts", "0"]).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let url = cloud.url.clone();
    let token = issue(&client, &url, &password_body(&cloud.password)).await?;
    let api = format!("{url}/networking/v2.0");
    println!(
        "ferrostack bench network: cloud at {url} (SQLite), {} cores, {} ports on the network before the creates",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        o.existing
    );
    let (net_id, _) = bench_network(&client, &api, &token, json!({"port": -1})).await?;
    bulk_ports(
        &client,
        &api,
        &token,
        o.existing,
        || json!({"network_id": net_id}),
    )
    .await?;
    for c in [1usize, 8] {
        let (client2, api2, token2, net2) =
            (client.clone(), api.clone(), token.clone(), net_id.clone());
        let f = measure(c, o.dur, o.creates, move || {
            let (client, api, token, net) =
                (client2.clone(), api2.clone(), token2.clone(), net2.clone());
            async move {
                client
                    .post(format!("{api}/ports"))
                    .header("x-auth-token", &token)
                    .json(&json!({"port": {"network_id": net}}))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 201)
            }
        })
        .await;
        f.print(&format!("port create (POST /v2.0/ports), c={c}"));
    }
    let total = {
        let r: Value = client
            .get(format!("{api}/ports?network_id={net_id}&fields=id"))
            .header("x-auth-token", &token)
            .send()
            .await?
            .json()
            .await?;
        r["ports"].as_array().map_or(0, Vec::len)
    };
    let some_port = {
        let r: Value = client
            .get(format!("{api}/ports?network_id={net_id}&limit=1"))
            .header("x-auth-token", &token)
            .send()
            .await?
            .json()
            .await?;
        r["ports"][0]["id"].as_str().context("a port")?.to_string()
    };
    for (name, path) in [
        (
            format!("port list ({total} ports, full bodies)"),
            format!("{api}/ports?network_id={net_id}"),
        ),
        (
            format!("port list ({total} ports, fields=id)"),
            format!("{api}/ports?network_id={net_id}&fields=id"),
        ),
        ("port show".to_string(), format!("{api}/ports/{some_port}")),
        (
            "port list of one device (device_id filter)".to_string(),
            format!("{api}/ports?device_id=nothing"),
        ),
    ] {
        let (client2, token2) = (client.clone(), token.clone());
        let f = measure(4, o.dur, 1_000_000, move || {
            let (client, token, path) = (client2.clone(), token2.clone(), path.clone());
            async move {
                client
                    .get(&path)
                    .header("x-auth-token", &token)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await;
        f.print(&format!("{name}, c=4"));
    }
    Ok(())
}

/// `ferrostack bench sg-rule`: the time from a security group rule's API call to the rule
/// being in the nftables ruleset of a host (this machine's kernel, root needed) whose data
/// plane filters `ports` ports of that group.
pub struct RuleOpts {
    pub ports: usize,
    pub rules: usize,
}

pub async fn run_rule_latency(o: RuleOpts) -> anyhow::Result<()> {
    anyhow::ensure!(
        rustix::process::geteuid().is_root(),
        "the data plane needs root: run this as root"
    );
    let cloud = start_cloud_with(&["--compute-driver", "qemu", "--compute-hosts", "1"]).await?;
    let host = crate::server::hostname();
    let client = reqwest::Client::new();
    let url = cloud.url.clone();
    let token = issue(&client, &url, &password_body(&cloud.password)).await?;
    let api = format!("{url}/networking/v2.0");
    let (net_id, project) = bench_network(
        &client,
        &api,
        &token,
        json!({"port": -1, "security_group_rule": -1}),
    )
    .await?;
    // Ports bound to the host, as a server's are: the host's ruleset filters each of them.
    bulk_ports(&client, &api, &token, o.ports, || {
        json!({"network_id": net_id, "binding:host_id": host, "device_owner": "compute:nova",
            "device_id": uuid::Uuid::new_v4().to_string()})
    })
    .await?;
    let groups: Value = client
        .get(format!(
            "{api}/security-groups?name=default&project_id={project}"
        ))
        .header("x-auth-token", &token)
        .send()
        .await?
        .json()
        .await?;
    let group = groups["security_groups"][0]["id"]
        .as_str()
        .context("default group")?
        .to_string();
    let outside =
        std::fs::read_to_string(cloud._dir.0.join("external-netns")).context("external-netns")?;
    let dp = format!("{}-dp-{host}", outside.trim().trim_end_matches("-ext"));
    let chain = |name: &str| {
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &dp,
                "nft",
                "list",
                "chain",
                "inet",
                "ferrostack",
                name,
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let last = format!("ingress_p{}", o.ports);
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while !chain(&last).contains(&last) {
        anyhow::ensure!(
            std::time::Instant::now() < until,
            "the host never filtered {} ports",
            o.ports
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "ferrostack bench sg-rule: cloud at {url}, one host on this kernel filtering {} ports of one group",
        o.ports
    );
    // The group's chain, which every port of the group jumps to.
    let group_chain = format!(
        "ingress_sg_{}",
        ferrostack_netplane::names::nft_ident(&group)
    );
    let mut latencies = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..o.rules {
        let t0 = std::time::Instant::now();
        let rule = post(
            &client,
            &format!("{api}/security-group-rules"),
            &token,
            json!({"security_group_rule": {"security_group_id": group, "direction": "ingress",
                "protocol": "tcp", "port_range_min": 10000 + i, "port_range_max": 10000 + i}}),
        )
        .await?;
        let id = rule["security_group_rule"]["id"]
            .as_str()
            .context("rule id")?
            .to_string();
        while !chain(&group_chain).contains(&id) {
            anyhow::ensure!(
                t0.elapsed() < Duration::from_secs(30),
                "rule {id} never reached the ruleset"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(t0.elapsed());
    }
    latencies.sort();
    super::Figures {
        count: latencies.len(),
        errors: 0,
        elapsed: started.elapsed(),
        latencies,
    }
    .print(&format!("rule API call -> in nftables ({} ports)", o.ports));
    // The cloud ends first (dropping it also removes what its host made on this machine).
    let mut cloud = cloud;
    let _ = cloud.child.kill().await;
    Ok(())
}

/// Deletes the namespaces named after `prefix` (ending the daemons in them first) and the
/// hosts' daemon files.
pub(super) fn remove_namespaces(prefix: &str) {
    let run = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    for line in run(&["ip", "netns", "list"]).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if !name.starts_with(&format!("{prefix}-")) {
            continue;
        }
        for pid in run(&["ip", "netns", "pids", name]).split_whitespace() {
            run(&["kill", pid]);
        }
        run(&["ip", "netns", "delete", name]);
    }
    let _ = std::fs::remove_dir_all(format!(
        "{}/{prefix}",
        ferrostack_agent::network_host::STATE_ROOT
    ));
}
