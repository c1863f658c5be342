//! Registrations at scale (ignored by default; prints figures, asserts no timings):
//!
//!     cargo test --release --test registrar scale_ul -- --ignored --nocapture
//!
//! `UL_SCALE_SIZES` (default `10000,40000,100000`) AoRs are put into the shipped config's
//! usrloc with `ul.add`, pipelined, each with the journal entry a REGISTER would have left
//! (`ul.add` over RPC is not journaled by the config itself). At each size it prints the
//! time and this process's CPU (it plays the operator) for a first read and for a read with
//! nothing new, Kamailio's memory, and what the former path (`ul.dump`) gets. At 10,000 AoRs
//! it also measures how long after a SIPp REGISTER's 200 OK `registrations()` shows it.
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sip_operator::registrar::Registrar;
use sip_operator::registrar::kamailio::Kamailio as Client;

use crate::support::kamailio::{Kamailio, free_port};
use crate::support::sipp::Registration;
use crate::{DOMAIN, TestUser};

/// This process's CPU time (user + system) so far.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().filter_map(|f| f.parse().ok()).collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
    let ticks = fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Kamailio's CPU time (all its processes), to wait until it is idle again.
fn group_cpu(pgid: u32) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) {
            total += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

fn wait_idle(kamailio: &Kamailio) {
    let mut last = group_cpu(kamailio.pid());
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = group_cpu(kamailio.pid());
        if now.saturating_sub(last) <= 2 {
            return;
        }
        last = now;
    }
}

fn shm_used_mib(kamailio: &Kamailio) -> f64 {
    let mem = kamailio.rpc_ok("core.shmmem", json!([]));
    mem["real_used"].as_f64().unwrap_or(0.0) / 1_048_576.0
}

/// Adds AoRs `from..to` with one contact each, and their journal entries after `head`;
/// returns the new head.
fn fill(kamailio: &Kamailio, from: usize, to: usize, head: usize) -> usize {
    let calls: Vec<(&str, Value)> = (from..to)
        .flat_map(|i| {
            let aor = format!("u{i}@scale.example.com");
            [
                (
                    "ul.add",
                    json!([
                        "location",
                        aor,
                        format!("sip:u{i}@127.0.0.1:5060"),
                        3600,
                        1.0,
                        "",
                        0,
                        0,
                        0
                    ]),
                ),
                (
                    "htable.sets",
                    json!(["uljournal", (head + 1 + i - from).to_string(), aor]),
                ),
            ]
        })
        .collect();
    let errors = kamailio.pipeline(&calls, 4);
    assert_eq!(
        errors,
        0,
        "errors filling usrloc; log:\n{}",
        kamailio.log_tail(10)
    );
    let head = head + to - from;
    kamailio.rpc_ok("htable.seti", json!(["ulseq", "head", head]));
    head
}

async fn timed_read(client: &Client) -> (usize, Duration, Duration) {
    let (t, c) = (Instant::now(), cpu());
    let n = client.registrations().await.expect("registrations").len();
    (n, t.elapsed(), cpu().saturating_sub(c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a scale run: minutes, and prints figures"]
async fn scale_ul() {
    let sizes: Vec<usize> = std::env::var("UL_SCALE_SIZES")
        .unwrap_or_else(|_| "10000,40000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let kamailio = Kamailio::builder().shared_memory_mib(384).start();
    let token = Some(kamailio.token().to_string());
    let operator = Client::new(&kamailio.rpc_url(), token.clone()).expect("client");
    let late = TestUser::new("late");
    kamailio.set_user(&late.key(), &late.entry(1));
    println!(
        "| AoRs | fill | first read | its CPU | read, nothing new | its CPU | Kamailio PSS | shm used | ul.dump (former path) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let (mut filled, mut head) = (0, 0);
    for size in sizes {
        let t = Instant::now();
        head = fill(&kamailio, filled, size, head);
        filled = size;
        let fill_time = t.elapsed();
        let fresh = Client::new(&kamailio.rpc_url(), token.clone()).expect("client");
        let (n, first, first_cpu) = timed_read(&fresh).await;
        assert!(n >= size, "every AoR read: {n} of {size}");
        let _ = operator.registrations().await.expect("registrations");
        let (_, again, again_cpu) = timed_read(&operator).await;
        let pss = kamailio.pss_kib() as f64 / 1024.0;
        let shm = shm_used_mib(&kamailio);

        let mut latency = String::new();
        if size == 10_000 {
            let phone = Registration::new("late", DOMAIN, &late.password)
                .expires(300)
                .local_port(free_port(true));
            assert_eq!(phone.run(kamailio.sip_addr()).status, 200);
            let ok_at = Instant::now();
            let mut reads = 0;
            loop {
                reads += 1;
                let contacts = operator.registrations().await.expect("registrations");
                if contacts.iter().any(|c| c.aor == late.key()) {
                    break;
                }
                assert!(ok_at.elapsed() < Duration::from_secs(30), "never shown");
            }
            latency = format!(
                "a SIPp REGISTER at {size} AoRs shows in registrations() {:?} after SIPp ended with 200 OK ({reads} read(s))",
                ok_at.elapsed()
            );
            head += 1;
        }

        let t = Instant::now();
        let former = match operator.call("ul.dump", json!([])).await {
            Ok(v) => format!("ok in {:?}, {} bytes", t.elapsed(), v.to_string().len()),
            Err(e) => format!("after {:?}: {e}", t.elapsed()),
        };
        println!(
            "| {size} | {fill_time:.1?} | {first:.1?} | {first_cpu:?} | {again:.1?} | {again_cpu:?} | {pss:.0} MiB | {shm:.0} MiB | {former} |"
        );
        if !latency.is_empty() {
            println!("{latency}");
        }
        // The former path leaves a Kamailio worker busy building its answer.
        wait_idle(&kamailio);
    }
    let log = kamailio.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).take(6).collect();
    println!("Kamailio errors (first 6):\n{}", errors.join("\n"));
}
