//! The watches that feed the caches. Objects are read through `DeserializeGuard`, so one object
//! the Rust types cannot read (written by another tool, or under an older schema) is reported
//! and skipped instead of failing every list and stalling the whole watch.
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::metrics::Metrics;

/// Watches feeding one cache: one per Api (all namespaces, or one per watched namespace).
/// managedFields are dropped (most of an object's size; never read). Each watch calls its own
/// `listed` callback from `tracker` once its initial list is cached.
pub fn cached<K>(
    apis: Vec<Api<DeserializeGuard<K>>>,
    tracker: &impl Fn() -> Box<dyn Fn() + Send>,
    metrics: Arc<Metrics>,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let watches = apis.into_iter().map(|api| {
        let metrics = metrics.clone();
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .filter_map(move |event| futures::future::ready(unguard(event, &metrics)));
        relists_as_updates(events, store.clone(), tracker()).boxed()
    });
    // The store counts as listed from the start (an empty list), so that a Controller reading
    // it does not wait for a whole-store swap that never comes; reconciles wait for every
    // watch's list through `tracker` instead.
    let listed_empty = futures::stream::iter([Ok(watcher::Event::Init), Ok(watcher::Event::InitDone)]);
    let events = listed_empty.chain(futures::stream::select_all(watches));
    let stream = reflector::reflector(writer, events).touched_objects();
    (store, stream)
}

/// Turns a watch's (re-)lists into updates of a cache that several watches share. The
/// reflector would swap its whole store for the list at `InitDone`, dropping what the other
/// watches put there; instead each listed object is applied, objects of this watch that the
/// new list no longer has are deleted, and `listed` is told.
fn relists_as_updates<K>(
    events: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
    store: Store<K>,
    listed: Box<dyn Fn() + Send>,
) -> impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    // What this watch put in the cache, and what the list in progress has shown so far.
    let mut known: HashSet<ObjectRef<K>> = HashSet::new();
    let mut listing: Option<HashSet<ObjectRef<K>>> = None;
    events
        .map(move |event| {
            let out = match event {
                Err(e) => vec![Err(e)],
                Ok(watcher::Event::Init) => {
                    listing = Some(HashSet::new());
                    Vec::new()
                }
                Ok(watcher::Event::InitApply(obj)) => {
                    let r = ObjectRef::from_obj(&obj);
                    listing.get_or_insert_with(HashSet::new).insert(r.clone());
                    known.insert(r);
                    vec![Ok(watcher::Event::Apply(obj))]
                }
                Ok(watcher::Event::InitDone) => {
                    let seen = listing.take().unwrap_or_default();
                    let gone: Vec<_> = known.difference(&seen).cloned().collect();
                    known = seen;
                    listed();
                    gone.iter()
                        .filter_map(|r| store.get(r))
                        .map(|obj| Ok(watcher::Event::Delete(obj.as_ref().clone())))
                        .collect()
                }
                Ok(watcher::Event::Apply(obj)) => {
                    known.insert(ObjectRef::from_obj(&obj));
                    vec![Ok(watcher::Event::Apply(obj))]
                }
                Ok(watcher::Event::Delete(obj)) => {
                    known.remove(&ObjectRef::from_obj(&obj));
                    vec![Ok(watcher::Event::Delete(obj))]
                }
            };
            futures::stream::iter(out)
        })
        .flatten()
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

/// Hands out one `listed` callback per watch; flips `synced` once `watches` have listed.
pub fn sync_tracker(
    synced: tokio::sync::watch::Sender<bool>,
    watches: usize,
) -> impl Fn() -> Box<dyn Fn() + Send> {
    let listed = Arc::new(Mutex::new(HashSet::new()));
    let synced = Arc::new(synced);
    let next = AtomicUsize::new(0);
    move || {
        let id = next.fetch_add(1, Ordering::Relaxed);
        let (listed, synced) = (listed.clone(), synced.clone());
        Box::new(move || {
            let mut done = super::context::lock(&listed);
            // A re-list after a lost watch lists again: count each watch once.
            done.insert(id);
            if done.len() == watches {
                synced.send_replace(true);
            }
        })
    }
}
