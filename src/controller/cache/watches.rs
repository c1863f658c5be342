//! The watches that feed the caches. Objects are decoded as [`Lean`]: without managedFields
//! (which can nest past any decoder's limit) and with a failure confined to its object, so one
//! object the Rust types cannot read (written by another tool, or under an older schema) is
//! reported and skipped instead of failing every list and stalling the whole watch.
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use super::{Lean, Unreadable};
use crate::sync::lock;

/// Told about every object a watch could not decode (the watch goes on without it).
pub type OnUnreadable = Arc<dyn Fn(&'static str, &Unreadable) + Send + Sync>;

/// Watches feeding one cache: one per Api (all namespaces, or one per watched namespace).
/// Each watch calls its own `listed` callback from `tracker` once its initial list is cached;
/// `on_unreadable` hears of each object that could not be decoded.
pub fn cached<K>(
    apis: Vec<Api<Lean<K>>>,
    tracker: &impl Fn() -> Box<dyn Fn() + Send>,
    on_unreadable: OnUnreadable,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    watched(apis, tracker, move |event| readable(event, &on_unreadable))
}

/// Watches feeding one cache of a built-in kind decoded into a trimmed type of its own (which
/// skips unread every field it does not hold, managedFields included, so needs no [`Lean`]);
/// otherwise like [`cached`].
pub fn cached_trimmed<K>(
    apis: Vec<Api<K>>,
    tracker: &impl Fn() -> Box<dyn Fn() + Send>,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    watched(apis, tracker, Some)
}

/// One store fed by one watch per Api, each event passed through `decode` (which may drop it).
fn watched<W, K>(
    apis: Vec<Api<W>>,
    tracker: &impl Fn() -> Box<dyn Fn() + Send>,
    decode: impl Fn(watcher::Result<watcher::Event<W>>) -> Option<watcher::Result<watcher::Event<K>>>
    + Clone
    + Send
    + 'static,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    W: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let watches = apis.into_iter().map(|api| {
        let decode = decode.clone();
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .filter_map(move |event| futures::future::ready(decode(event)));
        relists_as_updates(events, store.clone(), tracker()).boxed()
    });
    let stream = shared_store(writer, watches.collect());
    (store, stream)
}

/// One store fed by several watches, as a stream of the objects they touch.
fn shared_store<K>(
    writer: reflector::store::Writer<K>,
    watches: Vec<futures::stream::BoxStream<'static, watcher::Result<watcher::Event<K>>>>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    // The store counts as listed from the start (an empty list), so that a Controller reading
    // it does not wait for a whole-store swap that never comes; reconciles wait for every
    // watch's list through `tracker` instead.
    let listed_empty = futures::stream::iter([Ok(watcher::Event::Init), Ok(watcher::Event::InitDone)]);
    let events = listed_empty.chain(futures::stream::select_all(watches));
    reflector::reflector(writer, events).touched_objects()
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

/// Passes decoded objects on and reports the others.
fn readable<K>(
    event: watcher::Result<watcher::Event<Lean<K>>>,
    on_unreadable: &OnUnreadable,
) -> Option<watcher::Result<watcher::Event<K>>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let decoded = |lean: Lean<K>| match lean.into_result() {
        Ok(obj) => Some(obj),
        Err(unreadable) => {
            on_unreadable(static_kind(&K::kind(&())), &unreadable);
            None
        }
    };
    Some(match event {
        Err(e) => Err(e),
        Ok(watcher::Event::Apply(g)) => Ok(watcher::Event::Apply(decoded(g)?)),
        Ok(watcher::Event::InitApply(g)) => Ok(watcher::Event::InitApply(decoded(g)?)),
        // An object deleted while unreadable cannot be named to the cache; if it was cached
        // while readable, that copy stays until the next re-list.
        Ok(watcher::Event::Delete(g)) => Ok(watcher::Event::Delete(decoded(g)?)),
        Ok(watcher::Event::Init) => Ok(watcher::Event::Init),
        Ok(watcher::Event::InitDone) => Ok(watcher::Event::InitDone),
    })
}

/// The kind as a metric label.
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
            let mut done = lock(&listed);
            // A re-list after a lost watch lists again: count each watch once.
            done.insert(id);
            if done.len() == watches {
                synced.send_replace(true);
            }
        })
    }
}
