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
