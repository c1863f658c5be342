//! Scale benchmark: N SipUsers through the real API server, the release operator binary and a
//! real Kamailio. Prints the registrar client's raw push rate (10,000 users into one endpoint),
//! the floor (this API server's raw write rate, 16 connections creating N Secrets, times 3
//! writes per user), the time to all Ready and its ratio to the floor, API writes per user by
//! resource (from the audit log), the operator's CPU seconds and peak RSS, what a no-op resync
//! after a restart costs, and how fast a restarted Kamailio is re-synced; then one table.
//! Figures, not assertions; docs/performance.md holds the latest and explains the columns.
//!
//!   cargo bench --bench scale                                  (1,000 users, one namespace)
//!   SIP_BENCH_USERS=10000 SIP_BENCH_NAMESPACES=10 cargo bench --bench scale
//!   SIP_BENCH_FAULTS=operator-kill,kamailio-restart SIP_BENCH_SEED=42 cargo bench --bench scale
//!
//! Faults (SIP_BENCH_FAULTS, comma-separated, none by default so the plain run stays
//! comparable), each injected while users are being provisioned:
//! - `operator-kill`: SIGKILL the operator 3 times at seeded random moments, restart it;
//! - `apiserver-restart`: restart kube-apiserver at 40 % Ready (the bench's own control plane);
//! - `kamailio-restart`: SIGKILL and restart Kamailio at 60 % Ready;
//! - `failover`: two replicas with leader election, SIGKILL the leader at 50 % Ready.
//!
//! Afterwards every run checks: no user lost, every user Ready, one Secret per user and none
//! without a user, every Ready user in Kamailio with its Secret's HA1; with faults also that no
//! password changed after it was first written (from the bench's own Secret watch). A broken
//! invariant prints FAIL and the bench exits with status 1.
#[path = "../tests/support/mod.rs"]
mod support;

#[path = "scale/faults.rs"]
mod faults;
#[path = "scale/measure.rs"]
mod measure;
#[path = "scale/setup.rs"]
mod setup;
#[path = "scale/table.rs"]
mod table;

use std::time::{Duration, Instant};

use sip_operator::api::DigestAlgorithm;
use sip_operator::credentials::Password;
use sip_operator::registrar::kamailio::Kamailio as Client;
use sip_operator::registrar::{EntrySpec, Registrar, UserEntry};
use support::audit::AuditLog;
use support::kamailio::Kamailio;
use support::operator::Operator;
use support::{ControlPlane, TestNamespace};

use faults::{Fault, Ledger, Rng, Verdict};
use measure::{Fleet, print_writes, writes};

/// How often each registrar endpoint is checked for a restart, in seconds.
const CHECK_INTERVAL: &str = "2";
/// Give up waiting for all Ready when the Ready count has not grown for this long.
const STALL: Duration = Duration::from_secs(120);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|e| panic!("{name}={v:?} is not a count: {e}"))
        })
        .unwrap_or(default)
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

/// Pushes `n` users into a fresh Kamailio with the operator's registrar client; users/s.
async fn raw_push(n: usize) -> f64 {
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
                previous: None,
                changed_at: None,
                devices: &[],
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
    let rate = n as f64 / took.as_secs_f64();
    println!(
        "registrar client: {n} users pushed into one Kamailio endpoint in {:.2}s ({rate:.0} users/s)",
        took.as_secs_f64(),
    );
    rate
}

/// `sip_operator_leader` of a replica (`None` while it does not answer).
fn leads(op: &Operator) -> Option<bool> {
    let (status, body) = op.try_http_get("/metrics").ok()?;
    (status == 200).then(|| support::operator::metric_value(&body, "sip_operator_leader", &[]) == Some(1.0))
}

/// Waits until one replica of `fleet` leads; its index, or `None` after `timeout`.
async fn wait_leader(fleet: &Fleet, timeout: Duration) -> Option<usize> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(i) = fleet.live.iter().position(|o| leads(o) == Some(true)) {
            return Some(i);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One fault, due when this fraction of the users is Ready.
enum Action {
    /// The k-th operator SIGKILL, `delay` after the threshold was crossed.
    Kill(usize, Duration),
    Apiserver,
    Kamailio,
    Failover,
}

/// What the bench needs at hand while it injects faults.
struct Run<'a> {
    client: kube::Client,
    cp: &'static ControlPlane,
    first_ns: &'a TestNamespace,
    operator_args: Vec<String>,
    kamailio: Kamailio,
    fleet: Fleet,
}

impl Run<'_> {
    fn args(&self) -> Vec<&str> {
        self.operator_args.iter().map(String::as_str).collect()
    }

    /// Injects `action`; returns the moment the failover's leader was killed, if it was one.
    async fn inject(&mut self, action: &Action, ready: usize, n: usize, since: Instant) -> Option<Instant> {
        let at = format!(
            "at {ready}/{n} Ready, {:.1}s into provisioning",
            since.elapsed().as_secs_f64()
        );
        match action {
            Action::Kill(k, delay) => {
                tokio::time::sleep(*delay).await;
                let victim = wait_leader(&self.fleet, Duration::ZERO).await.unwrap_or(0);
                let killed = Instant::now();
                measure::sigkill(self.fleet.remove(victim));
                let op = Operator::launch(self.first_ns, &self.args()).await;
                self.fleet.live.push(op);
                let led = wait_leader(&self.fleet, Duration::from_secs(90)).await;
                println!(
                    "fault operator-kill #{k} {at} (+{}ms): SIGKILLed; the new process leads after {}",
                    delay.as_millis(),
                    led.map_or("- (not within 90 s)".into(), |_| format!(
                        "{:.1}s",
                        killed.elapsed().as_secs_f64()
                    ))
                );
                None
            }
            Action::Apiserver => {
                println!("fault apiserver-restart {at}:");
                faults::restart_apiserver(self.cp.dir(), &self.client).await;
                None
            }
            Action::Kamailio => {
                let start = Instant::now();
                tokio::task::block_in_place(|| self.kamailio.kill_and_restart());
                println!(
                    "fault kamailio-restart {at}: SIGKILLed and answering again after {:.1}s",
                    start.elapsed().as_secs_f64()
                );
                None
            }
            Action::Failover => {
                let Some(leader) = wait_leader(&self.fleet, Duration::ZERO).await else {
                    println!("fault failover {at}: no replica leads; nothing killed");
                    return None;
                };
                let killed = Instant::now();
                measure::sigkill(self.fleet.remove(leader));
                let led = wait_leader(&self.fleet, Duration::from_secs(90)).await;
                println!(
                    "fault failover {at}: leader SIGKILLed; the other replica leads after {} (Lease duration 15 s)",
                    led.map_or("- (not within 90 s)".into(), |_| format!(
                        "{:.1}s",
                        killed.elapsed().as_secs_f64()
                    ))
                );
                Some(killed)
            }
        }
    }
}

fn main() {
    let faults = Fault::parse(&std::env::var("SIP_BENCH_FAULTS").unwrap_or_default());
    if faults.contains(&Fault::ApiserverRestart)
        && std::env::var(support::control_plane::REUSE_ENV).is_ok_and(|v| !v.is_empty())
    {
        // Restarting a shared API server would break everyone else's tests.
        eprintln!(
            "apiserver-restart: not restarting the shared control plane named in {}; starting one of the bench's own",
            support::control_plane::REUSE_ENV
        );
        // SAFETY: no other thread exists yet (the runtime is built below).
        unsafe { std::env::remove_var(support::control_plane::REUSE_ENV) };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let failures = runtime.block_on(bench(faults));
    if !failures.is_empty() {
        println!("FAIL: {}", failures.join("; "));
        std::process::exit(1);
    }
}

async fn bench(faults: Vec<Fault>) -> Vec<String> {
    let raw_push_rate = raw_push(10_000).await;
    let n = env_usize("SIP_BENCH_USERS", 1000);
    let ns_count = env_usize("SIP_BENCH_NAMESPACES", 1).max(1);
    let cp = ControlPlane::shared();
    let client = cp.client().await;
    let namespaces: Vec<TestNamespace> = (0..ns_count).map(|_| TestNamespace::create("bench")).collect();
    let ns_names = setup::names(&namespaces);
    // Every user's htable entry (and each journal entry) lives in shared memory: the tests'
    // 48 MiB hold some 50,000 users, so larger runs get more (about 1 MiB per 500 users).
    let kamailio = Kamailio::builder()
        .shared_memory_mib(u32::try_from(48 + n / 500).unwrap_or(u32::MAX))
        .start();
    for (ns, size) in ns_names.iter().zip(setup::split(n, ns_count)) {
        setup::domain(&client, ns, &kamailio, size).await;
    }

    // Before the operator runs, in a namespace of its own, so it measures the API server alone.
    let floor_ns = TestNamespace::create("floor");
    let floor = setup::floor(&client, &floor_ns.name, n).await;

    let mut operator_args = vec![
        "--registrar-check-interval-seconds".to_string(),
        CHECK_INTERVAL.to_string(),
    ];
    for ns in &ns_names[1..] {
        operator_args.extend(["--namespace".to_string(), ns.clone()]);
    }
    let args: Vec<&str> = operator_args.iter().map(String::as_str).collect();
    let fleet = if faults.contains(&Fault::Failover) {
        // The second may report not-ready while it follows: wait for their servers only.
        let mut fleet = Fleet::one(Operator::launch(&namespaces[0], &args).await);
        fleet.live.push(Operator::launch(&namespaces[0], &args).await);
        wait_leader(&fleet, Duration::from_secs(60))
            .await
            .expect("one of two replicas leads");
        fleet
    } else {
        Fleet::one(Operator::start_with(&namespaces[0], &args).await)
    };
    let mut run = Run {
        client: client.clone(),
        cp,
        first_ns: &namespaces[0],
        operator_args: operator_args.clone(),
        kamailio,
        fleet,
    };
    let ledger = (!faults.is_empty()).then(|| Ledger::start(&client, &ns_names));
    let fault_names: Vec<&str> = faults.iter().map(|f| f.name()).collect();
    println!(
        "sip-operator scale benchmark: {n} users in {ns_count} namespace(s) with a Kamailio registrar, Kubernetes {}, faults: {}",
        cp.env("KUBE_VERSION"),
        if faults.is_empty() {
            "none".to_string()
        } else {
            fault_names.join(",")
        }
    );

    // The faults, each due at a fraction of the users Ready.
    let mut plan: Vec<(f64, Action)> = Vec::new();
    if faults.contains(&Fault::OperatorKill) {
        let seed = std::env::var("SIP_BENCH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
        let mut rng = Rng::new(seed);
        let mut kills: Vec<(f64, Duration)> = (0..3)
            .map(|_| {
                (
                    rng.range(0.0, 0.95),
                    Duration::from_millis(rng.range(0.0, 1000.0) as u64),
                )
            })
            .collect();
        kills.sort_by(|a, b| a.0.total_cmp(&b.0));
        println!(
            "operator-kill: seed {seed} (SIP_BENCH_SEED={seed} replays it): SIGKILL at {}",
            kills
                .iter()
                .map(|(f, d)| format!("{:.0} % Ready +{}ms", f * 100.0, d.as_millis()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        plan.extend(
            kills
                .into_iter()
                .enumerate()
                .map(|(k, (f, d))| (f, Action::Kill(k + 1, d))),
        );
    }
    if faults.contains(&Fault::ApiserverRestart) {
        plan.push((0.4, Action::Apiserver));
    }
    if faults.contains(&Fault::Failover) {
        plan.push((0.5, Action::Failover));
    }
    if faults.contains(&Fault::KamailioRestart) {
        plan.push((0.6, Action::Kamailio));
    }
    plan.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut plan = plan.into_iter().peekable();

    let planned = setup::plan(&ns_names, n);
    let mut audit = AuditLog::mark();
    let start = Instant::now();
    let counter = setup::ReadyCounter::start(&client, &ns_names);
    let creation = tokio::spawn(setup::create_users(client.clone(), planned.clone()));
    let mut ready = 0;
    let mut progress = Instant::now();
    let mut failover_kill = None;
    let mut last_fault_end = None;
    let mut ready_after_fault = 0;
    // A deadline, not a figure: generous enough for 100,000 users on two cores.
    let deadline = start + Duration::from_secs(600.max(n as u64 / 5));
    let all_ready = loop {
        let now = counter.count();
        if now > ready {
            progress = Instant::now();
        }
        ready = now;
        while let Some((_, action)) = plan.next_if(|(f, _)| ready as f64 >= f * n as f64) {
            if let Some(killed) = run.inject(&action, ready, n, start).await {
                failover_kill = Some(killed);
            }
            progress = Instant::now();
            last_fault_end = Some(progress);
            ready_after_fault = counter.count();
        }
        if ready >= n && plan.peek().is_none() {
            break Some(start.elapsed());
        }
        if Instant::now() >= deadline || progress.elapsed() >= STALL {
            println!(
                "FAIL: only {ready} of {n} users Ready after {:.0}s (no progress for {:.0}s)",
                start.elapsed().as_secs_f64(),
                progress.elapsed().as_secs_f64()
            );
            break None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let created = creation.await.expect("creation task");
    let cpu = run.fleet.cpu();
    let mut peak_rss = run.fleet.peak_rss();
    println!(
        "created {n} users in {:.1}s ({:.0} users/s through the API server; {} creates retried, {} failed)",
        created.took.as_secs_f64(),
        n as f64 / created.took.as_secs_f64(),
        created.retried,
        created.failed.len()
    );
    for f in created.failed.iter().take(5) {
        println!("    create failed: {f}");
    }
    if let Some(all_ready) = all_ready {
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
        if let Some(end) = last_fault_end {
            println!(
                "recovery: all {n} Ready {:.1}s after the last fault was over ({ready_then} were Ready then)",
                (start + all_ready).saturating_duration_since(end).as_secs_f64(),
                ready_then = ready_after_fault,
            );
        }
        if let Some(killed) = failover_kill {
            println!(
                "failover: all {n} Ready {:.1}s after the leader was killed",
                (start + all_ready)
                    .saturating_duration_since(killed)
                    .as_secs_f64()
            );
        }
    }
    // Let trailing domain/profile status writes land before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let provisioning_writes = writes(&mut audit, &ns_names);
    print_writes("provisioning", n, &provisioning_writes);
    println!("operator peak RSS while provisioning: {peak_rss:.1} MiB (highest of its processes)");

    let mut verdict = Verdict::default();
    if !created.failed.is_empty() {
        verdict
            .failures
            .push(format!("{} creates failed", created.failed.len()));
    }
    if all_ready.is_none() {
        verdict.failures.push(format!("only {ready} of {n} users Ready"));
    }
    faults::check_end_state(&client, &ns_names, &planned, ledger.as_ref(), &mut verdict).await;
    let registrar =
        Client::new(&run.kamailio.rpc_url(), Some(run.kamailio.token().to_string())).expect("client");
    faults::check_registrar(
        &client,
        &ns_names,
        &registrar,
        Duration::from_secs(60),
        &mut verdict,
    )
    .await;

    // No-op resync: one operator over users that are all Ready already.
    run.fleet.stop_all().await;
    writes(&mut audit, &ns_names);
    let restart = Instant::now();
    let operator = Operator::start_with(&namespaces[0], &args).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    let resync = loop {
        let done = operator
            .metric("sip_operator_reconciles_total", &[("kind", "SipUser")])
            .unwrap_or(0.0);
        if done >= n as f64 {
            break Some(restart.elapsed());
        }
        if Instant::now() >= deadline {
            println!("the restarted operator reconciled only {done} of {n} users within 300 s");
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some(resync) = resync {
        println!(
            "no-op resync after a restart: {n} users reconciled in {:.1}s ({:.0} users/s)",
            resync.as_secs_f64(),
            n as f64 / resync.as_secs_f64()
        );
    }
    let resync_writes = writes(&mut audit, &ns_names);
    print_writes("resync", n, &resync_writes);
    let (rss, hwm) = measure::memory_mib(operator.pid());
    peak_rss = peak_rss.max(hwm);
    println!("operator memory after resync: RSS {rss:.1} MiB (peak {hwm:.1} MiB)");

    // Kamailio crashes: its memory is gone. The next check (every 2 s here) notices and
    // pushes every user back.
    let kamailio = &mut run.kamailio;
    let before = held(kamailio);
    if before != n as u64 {
        println!("the registrar holds {before} users before its restart, not {n}");
    }
    kamailio.kill_and_restart();
    let restarted = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut first = None;
    let resync_rate = loop {
        let now_held = held(kamailio);
        if now_held > 0 && first.is_none() {
            first = Some(restarted.elapsed());
        }
        if now_held >= before {
            let all = restarted.elapsed();
            let first = first.unwrap_or(all);
            let rate = before as f64 / (all - first).as_secs_f64().max(0.001);
            println!(
                "full re-sync of a restarted Kamailio: first user back after {:.2}s (detection, check every {CHECK_INTERVAL}s), \
                 all {before} after {:.2}s: {rate:.0} users/s once started",
                first.as_secs_f64(),
                all.as_secs_f64(),
            );
            break Some(rate);
        }
        if Instant::now() >= deadline {
            println!("only {now_held} of {before} users re-pushed within 300 s");
            verdict.failures.push("Kamailio re-sync incomplete".into());
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    print_writes("full re-sync", n, &writes(&mut audit, &ns_names));

    table::print(&table::Figures {
        users: n,
        namespaces: ns_count,
        faults: fault_names.join(","),
        all_ready,
        ready_at_end: ready,
        floor,
        writes: provisioning_writes,
        cpu,
        peak_rss,
        restart: resync,
        restart_writes: measure::total(&resync_writes),
        resync_rate,
        raw_push_rate,
    });
    verdict.failures
}
