//! Scale benchmark: N SipUsers through the real API server, the real operator binary and a
//! real Kamailio. Prints the registrar client's raw push rate (10,000 users into one endpoint),
//! users/s to Ready, API writes per user (from the audit log), the operator's memory, what a
//! no-op resync after a restart costs, and how long the full re-sync of a restarted Kamailio
//! takes. Figures, not assertions.
//!
//!   cargo bench --bench scale            (1,000 users)
//!   SIP_BENCH_USERS=5000 cargo bench --bench scale
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ListParams, PostParams};
use sip_operator::api::{DigestAlgorithm, SipDomain, SipProfile, SipUser};
use sip_operator::credentials::Password;
use sip_operator::registrar::kamailio::Kamailio as Client;
use sip_operator::registrar::{EntrySpec, Registrar, UserEntry};
use support::audit::AuditLog;
use support::kamailio::Kamailio;
use support::operator::Operator;
use support::{ControlPlane, TestNamespace};

fn ready(u: &SipUser) -> bool {
    u.status.as_ref().is_some_and(|s| {
        s.observed_generation == u.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

async fn count_ready(api: &Api<SipUser>) -> usize {
    let list = api.list(&ListParams::default()).await.expect("list users");
    list.items.iter().filter(|u| ready(u)).count()
}

/// VmRSS and VmHWM of a process, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds (user + system) the process `pid` has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name;
    // Linux reports them in USER_HZ, 100 per second.
    (ticks(11) + ticks(12)) / 100.0
}

/// The floor: how long the API server takes for `3 * n` writes when written as fast as it
/// takes them (16 connections creating `n` Secrets), measured in this run.
async fn floor(client: &kube::Client, ns: &str, n: usize) -> Duration {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let secrets = secrets.clone();
            async move {
                let s: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
                    "apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("floor-{i:06}")},
                    "stringData": {"password": "0123456789abcdef0123456789abcdef"}
                }))
                .expect("floor Secret");
                secrets
                    .create(&PostParams::default(), &s)
                    .await
                    .expect("create floor Secret");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let took = start.elapsed();
    println!(
        "floor: {n} Secrets created in {:.1}s ({:.0} writes/s, 16 in flight); 3 writes per user -> floor {:.1}s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        3.0 * took.as_secs_f64()
    );
    took * 3
}

/// The operator's writes in `ns` since the last read, by resource/verb.
fn writes(audit: &mut AuditLog, ns: &str) -> BTreeMap<String, usize> {
    let mut by_kind = BTreeMap::new();
    for e in audit.read_new().iter().filter(|e| e.is_operator_write_in(ns)) {
        let obj = e.object_ref.clone().unwrap_or_default();
        let key = format!(
            "{} {}{}",
            e.verb,
            obj.resource,
            obj.subresource.map(|s| format!("/{s}")).unwrap_or_default()
        );
        *by_kind.entry(key).or_insert(0) += 1;
    }
    by_kind
}

fn print_writes(label: &str, n: usize, by_kind: &BTreeMap<String, usize>) {
    let total: usize = by_kind.values().sum();
    println!(
        "{label}: {total} API writes = {:.2} per user",
        total as f64 / n as f64
    );
    for (k, v) in by_kind {
        println!("    {k:<28} {v:>7}  ({:.2}/user)", *v as f64 / n as f64);
    }
}

async fn wait_all_ready(api: &Api<SipUser>, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while count_ready(api).await < n {
        assert!(
            Instant::now() < deadline,
            "not all {n} users became Ready within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How many users the `users` htable of `kamailio` holds.
fn held(kamailio: &Kamailio) -> u64 {
    let stats = kamailio.rpc_ok("htable.stats", serde_json::json!([]));
    let tables = stats.as_array().cloned().unwrap_or_else(|| vec![stats]);
    tables
        .iter()
        .find(|t| t["name"] == "users")
        .and_then(|t| t["all"].as_u64())
        .unwrap_or(0)
}

/// Pushes `n` users into a fresh Kamailio with the operator's registrar client.
async fn raw_push(n: usize) {
    let kamailio = Kamailio::start();
    let client = Client::new(&kamailio.rpc_url(), Some(kamailio.token().to_string())).expect("client");
    let password = Password::new("bench-password-0123456789");
    let entries: Vec<UserEntry> = (0..n)
        .map(|i| {
            UserEntry::build(&EntrySpec {
                username: &format!("u{i:05}"),
                domain: "bench.example.com",
                realm: "bench.example.com",
                password: &password,
                algorithms: &[DigestAlgorithm::Md5],
                max_contacts: 3,
                extension: Some(&format!("{}", 100000 + i)),
                aliases: &[],
                flags: &["voicemail".to_string()],
                barge_group: None,
                caller_id: None,
            })
        })
        .collect();
    let start = Instant::now();
    client.upsert(&entries).await.expect("push");
    let took = start.elapsed();
    assert_eq!(held(&kamailio), n as u64, "every user is in the htable");
    println!(
        "registrar client: {n} users pushed into one Kamailio endpoint in {:.2}s ({:.0} users/s)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    raw_push(10_000).await;
    let n: usize = std::env::var("SIP_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let cp = ControlPlane::shared();
    let ns = TestNamespace::create("bench");
    let client = cp.client().await;
    let pp = PostParams::default();
    let mut kamailio = Kamailio::start();
    let domain: SipDomain = serde_json::from_value(serde_json::json!({
        "apiVersion": "sipoperator.io/v1alpha1", "kind": "SipDomain",
        "metadata": {"name": "bench"},
        "spec": {
            "domain": format!("{}.bench.example.com", ns.name), "defaultProfile": "agent",
            "registrar": {"kamailio": {
                "urls": [kamailio.rpc_url()],
                "tokenSecretRef": {"name": "kamailio-rpc", "key": "token"}
            }}
        }
    }))
    .expect("domain");
    let token: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kamailio-rpc"},
        "stringData": {"token": kamailio.token()}
    }))
    .expect("token Secret");
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &ns.name)
        .create(&pp, &token)
        .await
        .expect("create token Secret");
    Api::<SipDomain>::namespaced(client.clone(), &ns.name)
        .create(&pp, &domain)
        .await
        .expect("create domain");
    let profile: SipProfile = serde_json::from_value(serde_json::json!({
        "apiVersion": "sipoperator.io/v1alpha1", "kind": "SipProfile",
        "metadata": {"name": "agent"}, "spec": {"capacity": n, "flags": ["voicemail"]}
    }))
    .expect("profile");
    Api::<SipProfile>::namespaced(client.clone(), &ns.name)
        .create(&pp, &profile)
        .await
        .expect("create profile");

    // Before the operator runs, in a namespace of its own, so it measures the API server alone.
    let floor_ns = TestNamespace::create("floor");
    let floor = floor(&client, &floor_ns.name, n).await;

    let check_interval = "2";
    let mut operator =
        Operator::start_with(&ns, &["--registrar-check-interval-seconds", check_interval]).await;
    let users: Api<SipUser> = Api::namespaced(client.clone(), &ns.name);
    let mut audit = AuditLog::mark();
    println!(
        "sip-operator scale benchmark: {n} users with a Kamailio registrar, Kubernetes {}",
        cp.env("KUBE_VERSION")
    );

    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let users = users.clone();
            async move {
                let u: SipUser = serde_json::from_value(serde_json::json!({
                    "apiVersion": "sipoperator.io/v1alpha1", "kind": "SipUser",
                    "metadata": {"name": format!("u{i:05}")},
                    "spec": {"domainRef": "bench", "extension": format!("{}", 100000 + i)}
                }))
                .expect("user");
                users
                    .create(&PostParams::default(), &u)
                    .await
                    .expect("create user");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let created = start.elapsed();
    // A deadline, not a figure: generous enough for 100,000 users on two cores.
    wait_all_ready(&users, n, Duration::from_secs(600.max(n as u64 / 5))).await;
    let all_ready = start.elapsed();
    let (rss, hwm) = memory_mib(operator.pid());
    let cpu = cpu_seconds(operator.pid());
    println!(
        "created {n} users in {:.1}s ({:.0} users/s through the API server)",
        created.as_secs_f64(),
        n as f64 / created.as_secs_f64()
    );
    println!(
        "all Ready after {:.1}s: {:.0} users/s end to end (Secret + registrar push + status + finalizer + event each)",
        all_ready.as_secs_f64(),
        n as f64 / all_ready.as_secs_f64()
    );
    println!(
        "all Ready / floor = {:.1}x; operator CPU {cpu:.1}s ({:.1} ms per user)",
        all_ready.as_secs_f64() / floor.as_secs_f64(),
        cpu * 1000.0 / n as f64
    );
    // Let trailing domain/profile status writes land before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    print_writes("provisioning", n, &writes(&mut audit, &ns.name));
    println!("operator memory with {n} users cached: RSS {rss:.1} MiB (peak {hwm:.1} MiB)");

    operator.stop().await;
    writes(&mut audit, &ns.name);
    let restart = Instant::now();
    let operator = Operator::start_with(&ns, &["--registrar-check-interval-seconds", check_interval]).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = operator
            .metric("sip_operator_reconciles_total", &[("kind", "SipUser")])
            .unwrap_or(0.0);
        if done >= n as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted operator reconciled only {done} of {n} users"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resync = restart.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "no-op resync after a restart: {n} users reconciled in {:.1}s ({:.0} users/s)",
        resync.as_secs_f64(),
        n as f64 / resync.as_secs_f64()
    );
    print_writes("resync", n, &writes(&mut audit, &ns.name));
    let (rss, hwm) = memory_mib(operator.pid());
    println!("operator memory after resync: RSS {rss:.1} MiB (peak {hwm:.1} MiB)");

    // Kamailio crashes: its memory is gone. The next check (every 2 s here) notices and
    // pushes every user back.
    assert_eq!(held(&kamailio), n as u64, "the registrar holds every user");
    kamailio.kill_and_restart();
    let restarted = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut first = None;
    loop {
        let now_held = held(&kamailio);
        if now_held > 0 && first.is_none() {
            first = Some(restarted.elapsed());
        }
        if now_held >= n as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {now_held} of {n} users re-pushed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = restarted.elapsed();
    let first = first.unwrap_or(all);
    println!(
        "full re-sync of a restarted Kamailio: first user back after {:.2}s (detection, check every {check_interval}s), \
         all {n} after {:.2}s: {:.0} users/s once started",
        first.as_secs_f64(),
        all.as_secs_f64(),
        n as f64 / (all - first).as_secs_f64().max(0.001)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    print_writes("full re-sync", n, &writes(&mut audit, &ns.name));
}
