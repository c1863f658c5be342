//! The watches that feed the caches. Objects are read through `DeserializeGuard`, so one object
//! the Rust types cannot read (written by another tool, or under an older schema) is reported
//! and skipped instead of failing every list and stalling the whole watch.
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt, TryStreamExt};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::metrics::Metrics;

/// A watch feeding a cache. managedFields are dropped (most of an object's size; never read).
/// `listed` is told once the initial list is cached.
pub fn cached<K>(
    api: Api<DeserializeGuard<K>>,
    listed: impl Fn() + Send + 'static,
    metrics: Arc<Metrics>,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let events = watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(move |event| futures::future::ready(unguard(event, &metrics)));
    let stream = reflector::reflector(writer, events)
        .inspect_ok(move |event| {
            if matches!(event, watcher::Event::InitDone) {
                listed();
            }
        })
        .touched_objects();
    (store, stream)
}

/// Passes readable objects on (without managedFields) and reports unreadable ones.
fn unguard<K>(
    event: watcher::Result<watcher::Event<DeserializeGuard<K>>>,
    metrics: &Metrics,
) -> Option<watcher::Result<watcher::Event<K>>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let readable = |guard: DeserializeGuard<K>| match guard.0 {
        Ok(mut obj) => {
            obj.managed_fields_mut().clear();
            Some(obj)
        }
        Err(invalid) => {
            let kind = K::kind(&());
            tracing::warn!(
                kind = %kind,
                object = %format!(
                    "{}/{}",
                    invalid.metadata.namespace.as_deref().unwrap_or_default(),
                    invalid.metadata.name.as_deref().unwrap_or_default()
                ),
                error = %invalid.error,
                "skipping an object that does not match the sip-operator API; fix or re-apply it"
            );
            metrics.reconcile_failed(static_kind(&kind), "invalid_object");
            None
        }
    };
    Some(match event {
        Err(e) => Err(e),
        Ok(watcher::Event::Apply(g)) => Ok(watcher::Event::Apply(readable(g)?)),
        Ok(watcher::Event::InitApply(g)) => Ok(watcher::Event::InitApply(readable(g)?)),
        // An object deleted while unreadable cannot be named to the cache; if it was cached
        // while readable, that copy stays until the next re-list.
        Ok(watcher::Event::Delete(g)) => Ok(watcher::Event::Delete(readable(g)?)),
        Ok(watcher::Event::Init) => Ok(watcher::Event::Init),
        Ok(watcher::Event::InitDone) => Ok(watcher::Event::InitDone),
    })
}

fn static_kind(kind: &str) -> &'static str {
    match kind {
        "SipUser" => "SipUser",
        "SipDomain" => "SipDomain",
        "SipProfile" => "SipProfile",
        _ => "other",
    }
}

/// Hands out one `listed` callback per cache; flips `synced` once `caches` have listed.
pub fn sync_tracker(
    synced: tokio::sync::watch::Sender<bool>,
    caches: usize,
) -> impl Fn() -> Box<dyn Fn() + Send> {
    let listed = Arc::new(Mutex::new(HashSet::new()));
    let synced = Arc::new(synced);
    let next = AtomicUsize::new(0);
    move || {
        let id = next.fetch_add(1, Ordering::Relaxed);
        let (listed, synced) = (listed.clone(), synced.clone());
        Box::new(move || {
            let mut done = listed.lock().unwrap_or_else(|e| e.into_inner());
            // A re-list after a lost watch lists again: count each cache once.
            done.insert(id);
            if done.len() == caches {
                synced.send_replace(true);
            }
        })
    }
}
