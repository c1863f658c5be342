//! The objects of a run: per namespace a SipDomain on the one Kamailio, its token Secret and a
//! SipProfile; then the users, created with 16 connections and retried through faults.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use sip_operator::api::{SipDomain, SipProfile, SipUser};

use crate::support::TestNamespace;
use crate::support::kamailio::Kamailio;

/// How many users go in each of `namespaces` namespaces (the first ones take the remainder).
pub fn split(n: usize, namespaces: usize) -> Vec<usize> {
    (0..namespaces)
        .map(|i| n / namespaces + usize::from(i < n % namespaces))
        .collect()
}

/// The SIP domain of a bench namespace.
pub fn sip_domain(ns: &str) -> String {
    format!("{ns}.bench.example.com")
}

/// Token Secret, SipDomain `bench` on `kamailio`, SipProfile `agent` with room for `capacity`.
pub async fn domain(client: &kube::Client, ns: &str, kamailio: &Kamailio, capacity: usize) {
    let pp = PostParams::default();
    let token: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kamailio-rpc"},
        "stringData": {"token": kamailio.token()}
    }))
    .expect("token Secret");
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&pp, &token)
        .await
        .expect("create token Secret");
    let domain: SipDomain = serde_json::from_value(serde_json::json!({
        "apiVersion": "sipoperator.io/v1alpha1", "kind": "SipDomain",
        "metadata": {"name": "bench"},
        "spec": {
            "domain": sip_domain(ns), "defaultProfile": "agent",
            "registrar": {"kamailio": {
                "urls": [kamailio.rpc_url()],
                "tokenSecretRef": {"name": "kamailio-rpc", "key": "token"}
            }}
        }
    }))
    .expect("domain");
    Api::<SipDomain>::namespaced(client.clone(), ns)
        .create(&pp, &domain)
        .await
        .expect("create domain");
    let profile: SipProfile = serde_json::from_value(serde_json::json!({
        "apiVersion": "sipoperator.io/v1alpha1", "kind": "SipProfile",
        "metadata": {"name": "agent"}, "spec": {"capacity": capacity, "flags": ["voicemail"]}
    }))
    .expect("profile");
    Api::<SipProfile>::namespaced(client.clone(), ns)
        .create(&pp, &profile)
        .await
        .expect("create profile");
}

/// The floor: how long the API server takes for `3 * n` writes when written as fast as it
/// takes them (16 connections creating `n` Secrets), measured in this run.
pub async fn floor(client: &kube::Client, ns: &str, n: usize) -> Duration {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let secrets = secrets.clone();
            async move {
                let s: Secret = serde_json::from_value(serde_json::json!({
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

/// One user to create: its namespace and its index (name `u<i>`, extension `100000 + i`).
#[derive(Clone)]
pub struct Planned {
    pub ns: String,
    pub index: usize,
}

impl Planned {
    pub fn name(&self) -> String {
        format!("u{:05}", self.index)
    }
}

/// Every user of the run, namespace by namespace, in creation order (interleaved, so that all
/// namespaces fill at once).
pub fn plan(namespaces: &[String], n: usize) -> Vec<Planned> {
    let sizes = split(n, namespaces.len());
    let mut per: Vec<Vec<Planned>> = Vec::new();
    let mut index = 0;
    for (ns, size) in namespaces.iter().zip(sizes) {
        per.push(
            (0..size)
                .map(|_| {
                    index += 1;
                    Planned {
                        ns: ns.clone(),
                        index: index - 1,
                    }
                })
                .collect(),
        );
    }
    let longest = per.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| per.iter().filter_map(move |p| p.get(i).cloned()))
        .collect()
}

/// What a creation run reports: how many creates needed a retry (faults in the way).
pub struct Created {
    pub took: Duration,
    pub retried: usize,
    pub failed: Vec<String>,
}

/// Creates the users with 16 connections. A create that fails for want of an API server is
/// retried (for up to two minutes); AlreadyExists after a retry means the first try landed.
pub async fn create_users(client: kube::Client, users: Vec<Planned>) -> Created {
    let start = Instant::now();
    let retried = Arc::new(AtomicUsize::new(0));
    let failed: Vec<String> = futures::stream::iter(users)
        .map(|p| {
            let api: Api<SipUser> = Api::namespaced(client.clone(), &p.ns);
            let retried = retried.clone();
            async move {
                let u: SipUser = serde_json::from_value(serde_json::json!({
                    "apiVersion": "sipoperator.io/v1alpha1", "kind": "SipUser",
                    "metadata": {"name": p.name()},
                    "spec": {"domainRef": "bench", "extension": format!("{}", 100000 + p.index)}
                }))
                .expect("user");
                let deadline = Instant::now() + Duration::from_secs(120);
                let mut tries = 0;
                loop {
                    tries += 1;
                    match api.create(&PostParams::default(), &u).await {
                        Ok(_) => return None,
                        Err(kube::Error::Api(s)) if s.is_already_exists() && tries > 1 => return None,
                        Err(e) if Instant::now() >= deadline => {
                            return Some(format!("{}/{}: {e}", p.ns, p.name()));
                        }
                        Err(_) => {
                            if tries == 1 {
                                retried.fetch_add(1, Ordering::Relaxed);
                            }
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                    }
                }
            }
        })
        .buffer_unordered(16)
        .filter_map(|r| async move { r })
        .collect()
        .await;
    Created {
        took: start.elapsed(),
        retried: retried.load(Ordering::Relaxed),
        failed,
    }
}

pub fn ready(u: &SipUser) -> bool {
    u.status.as_ref().is_some_and(|s| {
        s.observed_generation == u.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// The users of `namespaces`, or `None` while the API server does not answer.
pub async fn list_users(client: &kube::Client, namespaces: &[String]) -> Option<Vec<SipUser>> {
    let mut all = Vec::new();
    for ns in namespaces {
        let api: Api<SipUser> = Api::namespaced(client.clone(), ns);
        all.extend(api.list(&ListParams::default()).await.ok()?.items);
    }
    Some(all)
}

/// Counts the Ready users of some namespaces from a watch (one list, then events), so that
/// waiting for N users does not LIST N users every 250 ms: at 10,000 users that polling kept
/// the API server busy and slowed the run it measured.
pub struct ReadyCounter {
    stores: Vec<kube::runtime::reflector::Store<SipUser>>,
    watches: Vec<tokio::task::JoinHandle<()>>,
}

impl ReadyCounter {
    /// Starts one watch per namespace (re-listing after an API server restart).
    pub fn start(client: &kube::Client, namespaces: &[String]) -> Self {
        use kube::runtime::{WatchStreamExt, reflector, watcher};
        let mut stores = Vec::new();
        let mut watches = Vec::new();
        for ns in namespaces {
            let api: Api<SipUser> = Api::namespaced(client.clone(), ns);
            let (store, writer) = reflector::store();
            let stream = reflector(writer, watcher(api, watcher::Config::default()).default_backoff());
            watches.push(tokio::spawn(stream.for_each(|_| async {})));
            stores.push(store);
        }
        ReadyCounter { stores, watches }
    }

    /// How many watched users are Ready now.
    pub fn count(&self) -> usize {
        self.stores
            .iter()
            .map(|s| s.state().iter().filter(|u| ready(u)).count())
            .sum()
    }
}

impl Drop for ReadyCounter {
    fn drop(&mut self) {
        for w in &self.watches {
            w.abort();
        }
    }
}

/// The names of `namespaces`.
pub fn names(namespaces: &[TestNamespace]) -> Vec<String> {
    namespaces.iter().map(|n| n.name.clone()).collect()
}
