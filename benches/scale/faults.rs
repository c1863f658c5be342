//! Fault scenarios (SIP_BENCH_FAULTS) and the checks after them: what the operator must keep
//! true whatever happens — a password, once written, never changes; one Secret per user and
//! none without one; every user Ready; every Ready user in the registrar with its password.
//! Printed as seen; a broken invariant prints FAIL and makes the bench exit non-zero.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use sip_operator::api::{DigestAlgorithm, SipUser};
use sip_operator::credentials::{Password, ha1};
use sip_operator::keys::{USER_ANNOTATION, USER_LABEL, managed_secrets_selector, user_label_value};
use sip_operator::registrar::kamailio::Kamailio as Client;

use crate::setup;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    OperatorKill,
    ApiserverRestart,
    KamailioRestart,
    Failover,
}

impl Fault {
    pub const ALL: [(&'static str, Fault); 4] = [
        ("operator-kill", Fault::OperatorKill),
        ("apiserver-restart", Fault::ApiserverRestart),
        ("kamailio-restart", Fault::KamailioRestart),
        ("failover", Fault::Failover),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, f)| *f == self).map_or("?", |(n, _)| n)
    }

    /// `SIP_BENCH_FAULTS`, e.g. `operator-kill,kamailio-restart`; panics on an unknown name.
    pub fn parse(list: &str) -> Vec<Fault> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "none")
            .map(|s| {
                Self::ALL
                    .iter()
                    .find(|(n, _)| *n == s)
                    .map(|(_, f)| *f)
                    .unwrap_or_else(|| {
                        let known: Vec<_> = Self::ALL.iter().map(|(n, _)| *n).collect();
                        panic!(
                            "SIP_BENCH_FAULTS: unknown fault {s:?}; known: {}",
                            known.join(", ")
                        )
                    })
            })
            .collect()
    }
}

/// SplitMix64: a seeded generator, so that a run's kill moments can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
}

/// What the bench saw of one credentials Secret, from its own watch.
#[derive(Default, Debug)]
pub struct SecretHistory {
    /// The password in the first version the watch saw (right after the create).
    pub first: Option<Vec<u8>>,
    /// Every password value seen, in order, without repeats.
    pub passwords: Vec<Vec<u8>>,
    /// Every UID seen: more than one means the Secret was deleted and created again.
    pub uids: BTreeSet<String>,
    pub deletions: usize,
}

/// Passwords of the operator's Secrets as they appear: a Secret watch per namespace.
#[derive(Clone, Default)]
pub struct Ledger {
    pub seen: Arc<Mutex<HashMap<(String, String), SecretHistory>>>,
}

impl Ledger {
    /// Starts watching the operator's Secrets in `namespaces`; runs until the bench exits.
    pub fn start(client: &kube::Client, namespaces: &[String]) -> Ledger {
        let ledger = Ledger::default();
        for ns in namespaces {
            let api: Api<Secret> = Api::namespaced(client.clone(), ns);
            let seen = ledger.seen.clone();
            let ns = ns.clone();
            let config = watcher::Config::default().labels(&managed_secrets_selector());
            tokio::spawn(async move {
                let mut events = watcher(api, config).default_backoff().boxed();
                while let Some(event) = events.next().await {
                    let (secret, deleted) = match event {
                        Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => (s, false),
                        Ok(watcher::Event::Delete(s)) => (s, true),
                        _ => continue,
                    };
                    let name = secret.metadata.name.clone().unwrap_or_default();
                    let mut seen = seen.lock().expect("ledger lock");
                    let h = seen.entry((ns.clone(), name)).or_default();
                    if deleted {
                        h.deletions += 1;
                        continue;
                    }
                    if let Some(uid) = &secret.metadata.uid {
                        h.uids.insert(uid.clone());
                    }
                    if let Some(p) = password(&secret) {
                        h.first.get_or_insert_with(|| p.clone());
                        if h.passwords.last() != Some(&p) {
                            h.passwords.push(p);
                        }
                    }
                }
            });
        }
        ledger
    }
}

fn password(secret: &Secret) -> Option<Vec<u8>> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .map(|b| b.0.clone())
}

fn data_str(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default()
}

/// The result of the checks: lines to print, and whether an invariant broke.
#[derive(Default)]
pub struct Verdict {
    pub failures: Vec<String>,
}

impl Verdict {
    pub fn check(&mut self, what: &str, bad: usize, detail: &[String]) {
        let sample: Vec<_> = detail.iter().take(5).cloned().collect();
        if bad == 0 {
            println!("  ok   {what}: 0");
        } else {
            println!("  FAIL {what}: {bad}  e.g. {}", sample.join("; "));
            self.failures.push(format!("{what}: {bad}"));
        }
    }
}

/// The operator's Secrets of `namespaces`, or `None` while the API server does not answer.
async fn managed_secrets(client: &kube::Client, namespaces: &[String]) -> Vec<(String, Secret)> {
    let mut all = Vec::new();
    for ns in namespaces {
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let list = api
            .list(&ListParams::default().labels(&managed_secrets_selector()))
            .await
            .expect("list the operator's Secrets");
        all.extend(list.items.into_iter().map(|s| (ns.clone(), s)));
    }
    all
}

/// The end-state checks of a run: users lost or not Ready, duplicate and orphaned Secrets,
/// and (when the ledger watched) passwords that changed after their first write.
pub async fn check_end_state(
    client: &kube::Client,
    namespaces: &[String],
    planned: &[setup::Planned],
    ledger: Option<&Ledger>,
    verdict: &mut Verdict,
) {
    println!("end-state checks:");
    let users = setup::list_users(client, namespaces).await.expect("list users");
    let by_name: HashMap<(String, String), &SipUser> = users
        .iter()
        .map(|u| {
            (
                (
                    u.metadata.namespace.clone().unwrap_or_default(),
                    u.metadata.name.clone().unwrap_or_default(),
                ),
                u,
            )
        })
        .collect();
    let lost: Vec<String> = planned
        .iter()
        .filter(|p| !by_name.contains_key(&(p.ns.clone(), p.name())))
        .map(|p| format!("{}/{}", p.ns, p.name()))
        .collect();
    verdict.check("users lost (created, gone)", lost.len(), &lost);
    let not_ready: Vec<String> = users
        .iter()
        .filter(|u| !setup::ready(u))
        .map(|u| {
            let why = u
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
                .map(|c| format!("{} {}", c.reason, c.message))
                .unwrap_or_else(|| "no Ready condition".into());
            format!("{}: {why}", u.metadata.name.clone().unwrap_or_default())
        })
        .collect();
    verdict.check("users not Ready", not_ready.len(), &not_ready);

    let secrets = managed_secrets(client, namespaces).await;
    // Which user each Secret says it belongs to (the annotation holds the full name when the
    // label is a digest).
    let mut by_owner: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (ns, s) in &secrets {
        let owner = s
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(USER_ANNOTATION))
            .or_else(|| s.metadata.labels.as_ref().and_then(|l| l.get(USER_LABEL)))
            .cloned()
            .unwrap_or_default();
        by_owner
            .entry((ns.clone(), owner))
            .or_default()
            .push(s.metadata.name.clone().unwrap_or_default());
    }
    let labels_of_users: BTreeSet<(String, String)> = by_name
        .keys()
        .flat_map(|(ns, name)| [(ns.clone(), name.clone()), (ns.clone(), user_label_value(name))])
        .collect();
    let orphans: Vec<String> = by_owner
        .iter()
        .filter(|(owner, _)| !labels_of_users.contains(*owner))
        .flat_map(|((ns, owner), names)| names.iter().map(move |n| format!("{ns}/{n} (user {owner:?})")))
        .collect();
    verdict.check("orphaned Secrets (labelled, no SipUser)", orphans.len(), &orphans);
    let duplicates: Vec<String> = by_owner
        .iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|((ns, owner), names)| format!("{ns}/{owner}: {}", names.join(", ")))
        .collect();
    verdict.check("users with more than one Secret", duplicates.len(), &duplicates);
    let secret_names: BTreeSet<(String, String)> = secrets
        .iter()
        .map(|(ns, s)| (ns.clone(), s.metadata.name.clone().unwrap_or_default()))
        .collect();
    let without: Vec<String> = users
        .iter()
        .filter(|u| {
            let ns = u.metadata.namespace.clone().unwrap_or_default();
            !secret_names.contains(&(ns, u.secret_name()))
        })
        .map(|u| u.metadata.name.clone().unwrap_or_default())
        .collect();
    verdict.check("users without their Secret", without.len(), &without);

    let Some(ledger) = ledger else { return };
    let seen = ledger.seen.lock().expect("ledger lock");
    let mut changed = Vec::new();
    let mut recreated = Vec::new();
    let mut unseen = 0;
    for (ns, s) in &secrets {
        let name = s.metadata.name.clone().unwrap_or_default();
        let Some(h) = seen.get(&(ns.clone(), name.clone())) else {
            unseen += 1;
            continue;
        };
        let now = password(s);
        if h.first.is_some() && now != h.first || h.passwords.len() > 1 {
            changed.push(format!("{name} ({} values seen)", h.passwords.len()));
        }
        if h.uids.len() > 1 || h.deletions > 0 {
            recreated.push(format!(
                "{name} ({} UIDs, {} deletions)",
                h.uids.len(),
                h.deletions
            ));
        }
    }
    println!(
        "  the bench's Secret watch saw {} Secrets ({unseen} of the final ones never seen)",
        seen.len()
    );
    verdict.check("passwords changed since first written", changed.len(), &changed);
    verdict.check("Secrets deleted or re-created", recreated.len(), &recreated);
}

/// Every Ready user is in Kamailio's `users` htable with the HA1 of the password in its
/// Secret. Waits up to `timeout` for a re-sync under way; prints how long it took.
pub async fn check_registrar(
    client: &kube::Client,
    namespaces: &[String],
    kamailio: &Client,
    timeout: Duration,
    verdict: &mut Verdict,
) {
    let start = Instant::now();
    let users = setup::list_users(client, namespaces).await.expect("list users");
    let secrets = managed_secrets(client, namespaces).await;
    let secret_of: HashMap<(String, String), &Secret> = secrets
        .iter()
        .map(|(ns, s)| ((ns.clone(), s.metadata.name.clone().unwrap_or_default()), s))
        .collect();
    // (htable key, expected HA1) of every Ready user whose Secret is there.
    let want: Vec<(String, String)> = users
        .iter()
        .filter(|u| setup::ready(u))
        .filter_map(|u| {
            let ns = u.metadata.namespace.clone().unwrap_or_default();
            let s = secret_of.get(&(ns, u.secret_name()))?;
            let username = data_str(s, "username");
            let password = Password::new(data_str(s, "password"));
            let expected = ha1(DigestAlgorithm::Md5, &username, &data_str(s, "realm"), &password);
            Some((format!("{username}@{}", data_str(s, "domain")), expected))
        })
        .collect();
    let mut bad: Vec<String>;
    loop {
        let results: Vec<Option<String>> = futures::stream::iter(want.iter().cloned())
            .map(|(key, expected)| async move {
                let got = kamailio
                    .call("htable.get", serde_json::json!(["users", key]))
                    .await;
                let value = got
                    .ok()
                    .and_then(|v| v["item"]["value"].as_str().map(str::to_string));
                match value {
                    Some(v) if v.split(';').any(|f| f == format!("ha1={expected}")) => None,
                    Some(_) => Some(format!("{key}: HA1 differs from the Secret's password")),
                    None => Some(format!("{key}: missing")),
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        bad = results.into_iter().flatten().collect();
        if bad.is_empty() || start.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "  registrar: {} of {} Ready users in Kamailio with their Secret's HA1 after {:.1}s",
        want.len() - bad.len(),
        want.len(),
        start.elapsed().as_secs_f64()
    );
    verdict.check("Ready users missing or stale in Kamailio", bad.len(), &bad);
}

/// Restarts the control plane's kube-apiserver (SIGTERM, SIGKILL after 10 s) with the command
/// line it runs with, records the new PID where `stop.sh` finds it, and waits until it answers.
/// Returns how long the API was unavailable.
pub async fn restart_apiserver(state_dir: &std::path::Path, client: &kube::Client) -> Duration {
    let pids_path = state_dir.join("pids");
    let pids = std::fs::read_to_string(&pids_path).expect("read the control plane's pids");
    let pid: u32 = pids
        .lines()
        .find_map(|l| l.strip_prefix("kube-apiserver "))
        .and_then(|p| p.trim().parse().ok())
        .expect("kube-apiserver in the pids file");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("kube-apiserver cmdline");
    let argv: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let start = Instant::now();
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
        })
    };
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    while alive(pid) && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if alive(pid) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let stopped = start.elapsed();
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(state_dir.join("logs/kube-apiserver.log"))
        .expect("open the kube-apiserver log");
    let mut child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("clone log"))
        .stderr(log)
        .spawn()
        .expect("start kube-apiserver again");
    let new_pid = child.id();
    // Reaped when it exits (stop.sh stops it at the end of the run), so it never lingers as a
    // zombie that stop.sh would have to tell apart.
    std::thread::spawn(move || child.wait());
    // stop.sh (and the reaper) stop what the pids file names.
    let updated: String = pids
        .lines()
        .map(|l| {
            if l.starts_with("kube-apiserver ") {
                format!("kube-apiserver {new_pid}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&pids_path, updated).expect("update the pids file");
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    while api.list(&ListParams::default().limit(1)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "kube-apiserver did not come back within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let down = start.elapsed();
    println!(
        "  kube-apiserver {pid} stopped after {:.1}s, {new_pid} answering after {:.1}s in all",
        stopped.as_secs_f64(),
        down.as_secs_f64()
    );
    down
}
