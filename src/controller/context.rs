//! What every reconcile shares: the client, the caches of the three kinds, the registrar
//! endpoints and what they hold, the event recorder, metrics and per-object backoff.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;

use super::cache::Stores;
use super::status::event_sink::EventSink;
use crate::api::SipUser;
use crate::metrics::Metrics;
use crate::registrar_state::{Memory, Registrations, Source};
use crate::sync::lock;

/// Tunables of the controllers.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often each registrar endpoint is checked for a restart (and re-synced after one).
    pub registrar_check_interval: std::time::Duration,
    /// A user's failed authentications (in the registrar's window) that raise one Warning Event.
    pub auth_failure_warning_threshold: u64,
    /// The invite page's public base URL (`--invite-url`); without it no invite link is issued.
    pub invite_url: Option<String>,
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

/// What every reconcile of the three kinds is handed (one per process, behind an `Arc`).
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Publishes Events on the reconciled objects.
    pub recorder: EventSink,
    pub metrics: Arc<Metrics>,
    /// The caches of the three kinds.
    pub stores: Stores,
    /// Per-object retry delays after failed reconciles.
    pub backoff: Backoff,
    /// The registrar endpoints each domain names (from caches; a fake in unit tests).
    pub endpoints: Arc<dyn Source>,
    /// What each registrar endpoint is known to hold, and the sync markers.
    pub memory: Memory,
    /// Live registrations as last read from the registrars.
    pub registrations: Registrations,
    pub settings: Settings,
    /// The operator's own Secret writes, so that their watch events do not re-queue the owner.
    pub secret_echoes: super::cache::echoes::Echoes,
    /// What this process announced per object, against duplicate Events from stale copies.
    pub announced: super::status::events::Announced,
    /// The statuses this process wrote that the caches do not show yet.
    pub status_written: super::cache::echoes::Written,
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
