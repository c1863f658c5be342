//! The operator's own Secret writes, until the watch delivers them back. Each credentials
//! write comes back as a watch event on the owned Secrets; reconciling the owner for it found
//! nothing to do but cost a Secret read. An event whose resourceVersion is the one our write
//! returned is that echo and is dropped; anything else (an edit, a deletion — which carries a
//! newer resourceVersion) still reconciles the owner.
use std::collections::HashMap;
use std::sync::Mutex;

use crate::sync::lock;

/// Written resourceVersions by `namespace/name`, each kept until its echo arrives (or the next
/// write of that Secret replaces it).
#[derive(Default)]
pub struct Echoes(Mutex<HashMap<String, String>>);

impl Echoes {
    /// Notes that our write left `key` at `resource_version`.
    pub fn wrote(&self, key: String, resource_version: Option<String>) {
        if let Some(rv) = resource_version {
            lock(&self.0).insert(key, rv);
        }
    }

    /// Whether an event on `key` at `resource_version` is the echo of our last write (which is
    /// then forgotten).
    pub fn is_echo(&self, key: &str, resource_version: Option<&str>) -> bool {
        let mut known = lock(&self.0);
        match (known.get(key), resource_version) {
            (Some(ours), Some(seen)) if ours == seen => {
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
        echoes.wrote("ns/a".into(), Some("10".into()));
        assert!(!echoes.is_echo("ns/a", Some("9")), "an older event");
        assert!(!echoes.is_echo("ns/b", Some("10")), "another Secret");
        assert!(echoes.is_echo("ns/a", Some("10")));
        assert!(
            !echoes.is_echo("ns/a", Some("10")),
            "a second delivery (re-list) reconciles"
        );
        echoes.wrote("ns/a".into(), Some("11".into()));
        echoes.forget("ns/a");
        assert!(!echoes.is_echo("ns/a", Some("11")));
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
