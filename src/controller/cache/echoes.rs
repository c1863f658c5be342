//! The operator's own Secret writes, until the watch delivers them back. Each credentials
//! write comes back as a watch event on the owned Secrets; reconciling the owner for it found
//! nothing to do but cost a Secret read. An event whose resourceVersion is the one our write
//! returned is that echo and is dropped; anything else (an edit, a deletion — which carries a
//! newer resourceVersion) still reconciles the owner.
use std::collections::HashMap;
use std::sync::Mutex;

use crate::sync::lock;

/// Where one of our Secret writes stands.
enum Echo {
    /// Sent, no answer yet: a watch event now is taken for its echo (the watch can deliver it
    /// before the answer arrives); `seen` says one came.
    InFlight { seen: bool },
    /// Answered with this resourceVersion, echo not seen yet.
    Written(String),
}

/// Our Secret writes by `namespace/name`, each kept until its echo arrives (or the next write
/// of that Secret replaces it).
#[derive(Default)]
pub struct Echoes(Mutex<HashMap<String, Echo>>);

impl Echoes {
    /// Notes that a write of `key` is about to be sent.
    pub fn sending(&self, key: &str) {
        lock(&self.0).insert(key.to_string(), Echo::InFlight { seen: false });
    }

    /// Notes that our write left `key` at `resource_version` (`None`: it failed).
    pub fn wrote(&self, key: &str, resource_version: Option<String>) {
        let mut known = lock(&self.0);
        match (known.get(key), resource_version) {
            (Some(Echo::InFlight { seen: true }), _) | (_, None) => {
                known.remove(key);
            }
            (_, Some(rv)) => {
                known.insert(key.to_string(), Echo::Written(rv));
            }
        }
    }

    /// Whether an event on `key` at `resource_version` is the echo of our last write (which is
    /// then forgotten). An event while a write is in flight counts as its echo: a change by
    /// someone else in that instant is seen at the next event or the periodic resync.
    pub fn is_echo(&self, key: &str, resource_version: Option<&str>) -> bool {
        let mut known = lock(&self.0);
        match known.get_mut(key) {
            Some(Echo::InFlight { seen }) => {
                *seen = true;
                true
            }
            Some(Echo::Written(ours)) if Some(ours.as_str()) == resource_version => {
                known.remove(key);
                true
            }
            _ => false,
        }
    }

    /// Forgets `key` (its owner is gone).
    pub fn forget(&self, key: &str) {
        lock(&self.0).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_written_version_is_an_echo_and_only_once() {
        let echoes = Echoes::default();
        echoes.sending("ns/a");
        echoes.wrote("ns/a", Some("10".into()));
        assert!(!echoes.is_echo("ns/a", Some("9")), "an older event");
        assert!(!echoes.is_echo("ns/b", Some("10")), "another Secret");
        assert!(echoes.is_echo("ns/a", Some("10")));
        assert!(
            !echoes.is_echo("ns/a", Some("10")),
            "a second delivery (re-list) reconciles"
        );
        echoes.wrote("ns/a", Some("11".into()));
        echoes.forget("ns/a");
        assert!(!echoes.is_echo("ns/a", Some("11")));
    }

    #[test]
    fn an_echo_before_the_answer_is_taken_for_it() {
        let echoes = Echoes::default();
        echoes.sending("ns/a");
        assert!(
            echoes.is_echo("ns/a", Some("12")),
            "the watch was faster than the answer"
        );
        echoes.wrote("ns/a", Some("12".into()));
        assert!(
            !echoes.is_echo("ns/a", Some("12")),
            "settled: nothing left to drop"
        );
        echoes.sending("ns/a");
        echoes.wrote("ns/a", None);
        assert!(
            !echoes.is_echo("ns/a", Some("13")),
            "a failed write expects no echo"
        );
    }
}

/// The status this process last wrote per object UID (a fingerprint of it, and the
/// resourceVersion the write returned), until the watch delivers that version. Until then the
/// cached copy is older than the server's, and a reconcile on it would write the same status
/// again (at 10,000 users that was 0.8 extra status writes per user). Kept at most
/// [`Written::HOLD`], so that a write the watch never shows (a re-list skipped it, someone
/// else wrote after us) only delays, never suppresses, a correction.
#[derive(Default)]
pub struct Written(Mutex<HashMap<String, (String, u64, std::time::Instant)>>);

impl Written {
    /// How long a write stays remembered without its echo.
    pub const HOLD: std::time::Duration = std::time::Duration::from_secs(30);

    /// A fingerprint of a status, to compare without keeping it.
    pub fn fingerprint(status: &impl serde::Serialize) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_vec(status).unwrap_or_default().hash(&mut h);
        h.finish()
    }

    /// Notes that our write of the status with `fingerprint` left `uid` at `resource_version`.
    pub fn wrote(&self, uid: &str, resource_version: Option<String>, fingerprint: u64) {
        if let Some(rv) = resource_version {
            lock(&self.0).insert(uid.to_string(), (rv, fingerprint, std::time::Instant::now()));
        }
    }

    /// The fingerprint of our last write to `uid` while the cache does not show it yet.
    pub fn pending(&self, uid: &str) -> Option<u64> {
        let mut known = lock(&self.0);
        match known.get(uid) {
            Some((_, _, at)) if at.elapsed() >= Self::HOLD => {
                known.remove(uid);
                None
            }
            Some((_, f, _)) => Some(*f),
            None => None,
        }
    }

    /// Whether a write to `uid` is still on its way to the cache.
    pub fn in_flight(&self, uid: &str) -> bool {
        lock(&self.0)
            .get(uid)
            .is_some_and(|(_, _, at)| at.elapsed() < Self::HOLD)
    }

    /// The watch delivered `uid` at `resource_version`: our write arrived if it is that one.
    pub fn seen(&self, uid: &str, resource_version: Option<&str>) {
        let mut known = lock(&self.0);
        if known
            .get(uid)
            .is_some_and(|(rv, _, _)| Some(rv.as_str()) == resource_version)
        {
            known.remove(uid);
        }
    }

    /// Forgets an object that is gone.
    pub fn forget(&self, uid: &str) {
        lock(&self.0).remove(uid);
    }
}

#[cfg(test)]
mod written_tests {
    use super::*;

    #[test]
    fn a_written_status_is_pending_until_its_version_is_seen() {
        let w = Written::default();
        let a = Written::fingerprint(&serde_json::json!({"ready": true}));
        let b = Written::fingerprint(&serde_json::json!({"ready": false}));
        assert_ne!(a, b);
        w.wrote("u", Some("7".into()), a);
        assert_eq!(w.pending("u"), Some(a));
        assert!(w.in_flight("u"));
        assert_ne!(w.pending("u"), Some(b), "another status is written");
        w.seen("u", Some("6"));
        assert_eq!(w.pending("u"), Some(a), "an older event");
        w.seen("u", Some("7"));
        assert_eq!(w.pending("u"), None);
        assert!(!w.in_flight("u"));
    }
}
