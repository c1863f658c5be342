//! The operator's own writes, until the watch delivers them back.
//!
//! Each credentials write comes back as a watch event on the owned Secrets; reconciling the
//! owner for it found nothing to do but cost a Secret read. Each status write comes back too,
//! and until it does the cached copy is older than the server's: a reconcile on it would write
//! the same status again (0.8 extra status writes per user at 10,000 users). So a write is
//! remembered from before it is sent until its echo arrives: an event with the
//! resourceVersion the write returned, or any event while it is in flight (the watch can beat
//! the answer). Events of someone else's change during the flight are reported to the writer,
//! which queues its object again; an entry whose echo never comes (a re-list skipped it) is
//! dropped after [`Writes::HOLD`], so it can delay a correction but never suppress one.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

/// Where one of our writes of an object stands.
enum State<V> {
    /// Sent, no answer yet; the resourceVersions the watch delivered meanwhile.
    InFlight { value: V, seen: Vec<Option<String>> },
    /// Answered with `rv`, echo not delivered yet.
    Written { rv: String, value: V, at: Instant },
}

/// Our writes by object key, each with a value the writer compares later (a fingerprint).
pub struct Writes<V>(Mutex<HashMap<String, State<V>>>);

/// Secret writes by `namespace/name`.
pub type Echoes = Writes<()>;
/// Status writes by object UID, with a fingerprint of the status written.
pub type Written = Writes<u64>;

impl<V> Default for Writes<V> {
    fn default() -> Self {
        Writes(Mutex::default())
    }
}

impl<V: Copy> Writes<V> {
    /// How long an answered write stays remembered without its echo.
    pub const HOLD: Duration = Duration::from_secs(30);

    /// Notes that a write of `key` carrying `value` is about to be sent.
    pub fn sending(&self, key: &str, value: V) {
        let state = State::InFlight {
            value,
            seen: Vec::new(),
        };
        lock(&self.0).insert(key.to_string(), state);
    }

    /// The write's answer: the resourceVersion it left (`None`: it failed). True when the watch
    /// delivered something else meanwhile, someone else's change the writer must look at.
    pub fn answered(&self, key: &str, resource_version: Option<String>) -> bool {
        let mut known = lock(&self.0);
        let Some(State::InFlight { value, seen }) = known.remove(key) else {
            return false;
        };
        let foreign = seen.iter().any(|s| *s != resource_version);
        if let Some(rv) = resource_version
            && !seen.iter().any(|s| s.as_deref() == Some(rv.as_str()))
        {
            let state = State::Written {
                rv,
                value,
                at: Instant::now(),
            };
            known.insert(key.to_string(), state);
        }
        foreign
    }

    /// The watch delivered `key` at `resource_version`: whether that is (taken for) the echo
    /// of our write, which is then settled.
    pub fn delivered(&self, key: &str, resource_version: Option<&str>) -> bool {
        let mut known = lock(&self.0);
        match known.get_mut(key) {
            Some(State::InFlight { seen, .. }) => {
                seen.push(resource_version.map(str::to_string));
                true
            }
            Some(State::Written { rv, .. }) if Some(rv.as_str()) == resource_version => {
                known.remove(key);
                true
            }
            _ => false,
        }
    }

    /// The value of our last write of `key` while the watch has not shown it yet.
    pub fn pending(&self, key: &str) -> Option<V> {
        let mut known = lock(&self.0);
        match known.get(key) {
            Some(State::InFlight { value, .. }) => Some(*value),
            Some(State::Written { at, .. }) if at.elapsed() >= Self::HOLD => {
                known.remove(key);
                None
            }
            Some(State::Written { value, .. }) => Some(*value),
            None => None,
        }
    }

    /// Forgets `key` (its object is gone).
    pub fn forget(&self, key: &str) {
        lock(&self.0).remove(key);
    }
}

/// A fingerprint of a status, to compare it later without keeping it.
pub fn fingerprint(status: &impl serde::Serialize) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_vec(status).unwrap_or_default().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_written_version_is_an_echo_and_only_once() {
        let echoes = Echoes::default();
        echoes.sending("ns/a", ());
        assert!(!echoes.answered("ns/a", Some("10".into())));
        assert!(!echoes.delivered("ns/a", Some("9")), "an older event");
        assert!(!echoes.delivered("ns/b", Some("10")), "another Secret");
        assert!(echoes.delivered("ns/a", Some("10")));
        assert!(
            !echoes.delivered("ns/a", Some("10")),
            "a second delivery (re-list) reconciles"
        );
        echoes.sending("ns/a", ());
        echoes.answered("ns/a", Some("11".into()));
        echoes.forget("ns/a");
        assert!(!echoes.delivered("ns/a", Some("11")));
    }

    #[test]
    fn an_echo_before_the_answer_is_taken_for_it_and_anything_else_is_reported() {
        let echoes = Echoes::default();
        echoes.sending("ns/a", ());
        assert!(
            echoes.delivered("ns/a", Some("12")),
            "the watch was faster than the answer"
        );
        assert!(!echoes.answered("ns/a", Some("12".into())), "it was ours");
        assert!(
            !echoes.delivered("ns/a", Some("12")),
            "settled: nothing left to drop"
        );
        echoes.sending("ns/a", ());
        assert!(
            echoes.delivered("ns/a", Some("13")),
            "someone else's change during the write"
        );
        assert!(
            echoes.answered("ns/a", None),
            "the write failed: the caller looks again"
        );
    }

    #[test]
    fn a_written_status_is_pending_until_its_version_is_seen() {
        let w = Written::default();
        let a = fingerprint(&serde_json::json!({"ready": true}));
        let b = fingerprint(&serde_json::json!({"ready": false}));
        assert_ne!(a, b);
        w.sending("u", a);
        assert_eq!(w.pending("u"), Some(a), "in flight");
        w.answered("u", Some("7".into()));
        assert_eq!(w.pending("u"), Some(a));
        w.delivered("u", Some("6"));
        assert_eq!(w.pending("u"), Some(a), "an older event");
        w.delivered("u", Some("7"));
        assert_eq!(w.pending("u"), None);
        // The echo before the answer: nothing stays behind.
        w.sending("u", b);
        w.delivered("u", Some("8"));
        w.answered("u", Some("8".into()));
        assert_eq!(w.pending("u"), None);
    }
}
