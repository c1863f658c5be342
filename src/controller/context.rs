//! What every reconcile shares: the client, the caches of the three kinds, the event
//! recorder, metrics and per-object backoff.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::event_sink::EventSink;
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};

use super::Error;
use super::admission_index::Index;
use crate::api::{SipDomain, SipProfile, SipUser};
use crate::metrics::Metrics;

/// Caches of the operator's own kinds, filled by one watch per kind.
#[derive(Clone)]
pub struct Stores {
    pub users: Store<SipUser>,
    pub domains: Store<SipDomain>,
    pub profiles: Store<SipProfile>,
    /// Admission of the cached users, kept current from the same watch events.
    pub index: Arc<Mutex<Index>>,
    /// Flips to true once all three caches have listed. (`Store::wait_until_ready` keeps only
    /// one waker, so concurrent reconciles waiting on it can sleep forever.)
    pub synced: tokio::sync::watch::Receiver<bool>,
}

impl Stores {
    /// Waits until every cache has listed once, so admission never runs on partial data.
    pub async fn ready(&self) -> Result<(), Error> {
        self.synced
            .clone()
            .wait_for(|synced| *synced)
            .await
            .map(|_| ())
            .map_err(|_| Error::CachesClosed)
    }

    /// The admission index, fed by the watches (see [`Index`]).
    pub fn admission(&self) -> std::sync::MutexGuard<'_, Index> {
        lock(&self.index)
    }

    /// The SipDomain `name` in `namespace`, from the cache.
    pub fn domain(&self, namespace: &str, name: &str) -> Option<Arc<SipDomain>> {
        self.domains
            .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
    }

    /// The cached users of `domain` (this SipDomain object: its namespace, its name) that
    /// `pick` selects.
    pub fn domain_users(&self, domain: &SipDomain, pick: impl Fn(&SipUser) -> bool) -> Vec<Arc<SipUser>> {
        let ns = domain.namespace();
        let name = domain.name_any();
        self.users
            .state_filter(|u| u.namespace() == ns && u.spec.domain_ref == name && pick(u))
    }
}

/// Locks `m`, also after a panic elsewhere poisoned it (the maps behind these locks stay
/// consistent: every update is a single insert or remove).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Consecutive failures per object UID, for exponential backoff (kube has none per object).
#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    const BASE: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(300);

    /// Records a failure and returns how long to wait: 1 s, 2 s, 4 s ... capped at 5 min.
    pub fn failed(&self, uid: &str) -> Duration {
        let mut failures = lock(&self.failures);
        let n = failures.entry(uid.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        Self::BASE
            .saturating_mul(2u32.saturating_pow(*n - 1))
            .min(Self::MAX)
    }

    /// Forgets the failures of an object that reconciled.
    pub fn succeeded(&self, uid: &str) {
        lock(&self.failures).remove(uid);
    }
}

pub struct Context {
    pub client: Client,
    pub recorder: EventSink,
    pub metrics: Arc<Metrics>,
    pub stores: Stores,
    pub backoff: Backoff,
    /// Registrar clients, kept across reconciles for their connections.
    pub registrars: super::registrar_endpoints::Clients,
    /// Live registrations as last read from the registrars.
    pub registrations: super::registrations::Registrations,
    pub settings: super::Settings,
    /// Queues users for reconcile (a registrar endpoint that lost its memory needs them all).
    pub resync_users: futures::channel::mpsc::UnboundedSender<kube::runtime::reflector::ObjectRef<SipUser>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_failure_up_to_five_minutes_and_resets() {
        let b = Backoff::default();
        let delays: Vec<_> = (0..12).map(|_| b.failed("u").as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(b.failed("other").as_secs(), 1, "per object");
        b.succeeded("u");
        assert_eq!(b.failed("u").as_secs(), 1);
    }
}
