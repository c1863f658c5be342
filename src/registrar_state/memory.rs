//! What this process knows registrar endpoints hold: the sync marker it last left on each
//! endpoint per SIP domain, and the entry it last pushed for each user together with the
//! endpoints (and their markers at the time) that took it. The entries let an endpoint that
//! lost its memory get every user back in one batch, without a reconcile (and a Secret read)
//! per user; the endpoints let a reconcile whose entry is already held skip the call.
use std::collections::HashMap;

use k8s_openapi::jiff::Timestamp;
use std::sync::Mutex;

use crate::registrar::{UserEntry, UserKey};
use crate::sync::lock;

/// The entry last pushed for a user, and where it landed.
struct Pushed {
    entry: UserEntry,
    /// Each endpoint that took it, with the marker this process had for it then: a marker
    /// that moved since (a full sync, a restart) means the endpoint's state is another one.
    held: Vec<(String, Option<String>)>,
    /// When it was pushed (or re-sent by a full sync).
    since: std::time::Instant,
}

/// How long a pushed entry counts as held without being sent again. A little under the
/// hourly resync of every user, so that resync pushes each user once an hour anyway and
/// repairs an entry changed or deleted on the registrar behind the operator's back.
pub const HELD_FOR: std::time::Duration = std::time::Duration::from_secs(50 * 60);

/// A marker this process holds for an (endpoint, SIP domain) — `None` after a failed full
/// sync — and when the full sync that left it ran.
type Marker = (Option<String>, Timestamp);

/// The replay memory and the sync markers (one per process).
#[derive(Default)]
pub struct Memory {
    /// By (endpoint, SIP domain): the marker (`None` after a failed full sync: the next check
    /// syncs again), and when the full sync that left it ran. No entry: not seen by this
    /// process yet.
    markers: Mutex<HashMap<(String, String), Marker>>,
    /// By registrar key (`user@domain`).
    pushed: Mutex<HashMap<String, Pushed>>,
    /// SIP domains this process has checked at least once.
    checked: Mutex<std::collections::HashSet<String>>,
}

impl Memory {
    /// The marker this process left on `endpoint` for SIP domain `domain`, if any.
    pub fn marker(&self, endpoint: &str, domain: &str) -> Option<String> {
        lock(&self.markers)
            .get(&(endpoint.to_string(), domain.to_string()))
            .and_then(|(m, _)| m.clone())
    }

    /// Whether this process has checked (or synced) `endpoint` for `domain` before.
    pub fn seen(&self, endpoint: &str, domain: &str) -> bool {
        lock(&self.markers).contains_key(&(endpoint.to_string(), domain.to_string()))
    }

    /// When this process last synced `endpoint` fully for `domain` (kept here as well as in
    /// the status, so that a status write that failed does not lose it).
    pub fn last_full_sync(&self, endpoint: &str, domain: &str) -> Option<Timestamp> {
        lock(&self.markers)
            .get(&(endpoint.to_string(), domain.to_string()))
            .map(|(_, at)| *at)
    }

    /// Records the marker left on `endpoint` for `domain`; `None` forgets it, so that the next
    /// check syncs the endpoint fully again.
    pub fn set_marker(&self, endpoint: &str, domain: &str, marker: Option<String>) {
        let key = (endpoint.to_string(), domain.to_string());
        let mut markers = lock(&self.markers);
        match marker {
            Some(m) => {
                markers.insert(key, (Some(m), crate::clock::now()));
            }
            None => {
                if let Some(known) = markers.get_mut(&key) {
                    known.0 = None;
                } else {
                    markers.insert(key, (None, crate::clock::now()));
                }
            }
        }
    }

    /// Whether this is this process's first check of SIP domain `domain` (and notes it).
    pub fn first_check(&self, domain: &str) -> bool {
        lock(&self.checked).insert(domain.to_string())
    }

    /// Takes over a marker another process (this operator before a restart, or the previous
    /// leader) left on `endpoint`, with when that one last synced it fully.
    pub fn adopt_marker(&self, endpoint: &str, domain: &str, marker: String, synced_at: Timestamp) {
        lock(&self.markers).insert(
            (endpoint.to_string(), domain.to_string()),
            (Some(marker), synced_at),
        );
    }

    /// Whether `endpoint` holds `entry` as far as this process knows: it took exactly this
    /// entry while its marker for the entry's domain was the one it has now.
    pub fn holds(&self, entry: &UserEntry, endpoint: &str) -> bool {
        let marker = self.marker(endpoint, &entry.key.domain);
        lock(&self.pushed).get(&entry.key.key()).is_some_and(|p| {
            p.entry == *entry
                && p.since.elapsed() < HELD_FOR
                && p.held.iter().any(|(e, m)| e == endpoint && *m == marker)
        })
    }

    /// Records that the endpoints in `held` (with the markers read before the push) hold
    /// `entry`: every endpoint of the user's domain.
    pub fn remember(&self, entry: &UserEntry, held: Vec<(String, Option<String>)>) {
        lock(&self.pushed).insert(
            entry.key.key(),
            Pushed {
                entry: entry.clone(),
                held,
                since: std::time::Instant::now(),
            },
        );
    }

    /// Records that a full sync left `marker` on `endpoint` and pushed it `entries`: those of
    /// them still current are held there under the new marker.
    pub fn held_after_full_sync(&self, entries: &[UserEntry], endpoint: &str, marker: &str) {
        let mut pushed = lock(&self.pushed);
        for entry in entries {
            if let Some(p) = pushed.get_mut(&entry.key.key())
                && p.entry == *entry
            {
                p.held.retain(|(e, _)| e != endpoint);
                p.held.push((endpoint.to_string(), Some(marker.to_string())));
                p.since = std::time::Instant::now();
            }
        }
    }

    /// Records that no endpoint is known to hold the user any more.
    pub fn forget(&self, key: &UserKey) {
        lock(&self.pushed).remove(&key.key());
    }

    /// The entries last pushed for the users of SIP domain `fqdn`, by registrar key.
    pub fn pushed_in(&self, fqdn: &str) -> HashMap<String, UserEntry> {
        lock(&self.pushed)
            .iter()
            .filter(|(_, p)| p.entry.key.domain == fqdn)
            .map(|(k, p)| (k.clone(), p.entry.clone()))
            .collect()
    }

    /// Forgets SIP domain `fqdn` (no SipDomain claims it any more): its markers and entries.
    pub fn forget_domain(&self, fqdn: &str) {
        lock(&self.markers).retain(|(_, domain), _| domain != fqdn);
        lock(&self.pushed).retain(|_, p| p.entry.key.domain != fqdn);
    }

    /// Forgets the markers of endpoints that no domain names any more.
    pub fn forget_endpoints(&self, gone: &[String]) {
        if gone.is_empty() {
            return;
        }
        lock(&self.markers).retain(|(endpoint, _), _| !gone.contains(endpoint));
    }

    /// How many users and markers are remembered (for tests of the pruning).
    pub fn sizes(&self) -> (usize, usize) {
        (lock(&self.pushed).len(), lock(&self.markers).len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::fake::entry;

    #[test]
    fn an_entry_is_held_where_it_landed_while_the_marker_stays() {
        let memory = Memory::default();
        let alice = entry("alice", "acme.example.com", "acme");
        assert!(!memory.holds(&alice, "a"), "nothing remembered after a start");
        memory.remember(&alice, vec![("a".into(), None)]);
        assert!(memory.holds(&alice, "a"));
        assert!(!memory.holds(&alice, "b"), "another endpoint did not take it");
        let changed = entry("alice", "acme.example.com", "other realm");
        assert!(!memory.holds(&changed, "a"), "another entry");

        memory.set_marker("a", "acme.example.com", Some("m1".into()));
        assert!(!memory.holds(&alice, "a"), "the endpoint's marker moved");
        memory.held_after_full_sync(std::slice::from_ref(&alice), "a", "m1");
        assert!(memory.holds(&alice, "a"), "the full sync pushed it under m1");
        memory.held_after_full_sync(&[changed], "a", "m1");
        assert!(memory.holds(&alice, "a"), "a stale batch entry changes nothing");

        memory.forget(&alice.key);
        assert!(!memory.holds(&alice, "a"));
    }

    #[test]
    fn a_marker_found_on_first_sight_is_adopted_but_a_failed_sync_is_not_forgotten() {
        let memory = Memory::default();
        assert!(!memory.seen("a", "acme.example.com"), "a new process");
        let before = Timestamp::from_second(1_700_000_000).expect("time");
        memory.adopt_marker("a", "acme.example.com", "m0".into(), before);
        assert_eq!(memory.marker("a", "acme.example.com").as_deref(), Some("m0"));
        assert_eq!(memory.last_full_sync("a", "acme.example.com"), Some(before));
        // A full sync that failed: the endpoint stays seen, with no marker (synced again).
        memory.set_marker("a", "acme.example.com", None);
        assert!(memory.seen("a", "acme.example.com"));
        assert!(memory.first_check("acme.example.com"));
        assert!(!memory.first_check("acme.example.com"), "only once per process");
        assert_eq!(memory.marker("a", "acme.example.com"), None);
    }

    #[test]
    fn deleted_domains_and_endpoints_are_pruned() {
        let memory = Memory::default();
        memory.remember(&entry("alice", "acme.example.com", "acme"), vec![]);
        memory.remember(&entry("bob", "beta.example.com", "beta"), vec![]);
        memory.set_marker("a", "acme.example.com", Some("m".into()));
        memory.set_marker("b", "beta.example.com", Some("m".into()));
        memory.forget_domain("acme.example.com");
        assert_eq!(memory.sizes(), (1, 1));
        memory.forget_endpoints(&["b".to_string()]);
        assert_eq!(memory.sizes(), (1, 0));
        assert_eq!(memory.pushed_in("beta.example.com").len(), 1);
    }
}
