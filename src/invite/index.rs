//! The invites every replica's page serves from: a cache fed by watches (no request reads the
//! API server to find a link), indexed by the SHA-256 of the link's token and by that of the
//! provisioning token minted when it was used.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, watcher};

use crate::api::SipUserInvite;
use crate::sync::{read, write};

/// The invites by `namespace/name`, and the token hash of each issued one.
#[derive(Default)]
pub struct Index {
    inner: RwLock<Inner>,
    /// Watches that listed once, and how many there are.
    synced: std::sync::atomic::AtomicUsize,
    watches: usize,
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<String, Arc<SipUserInvite>>,
    by_hash: HashMap<String, String>,
    by_provisioning_hash: HashMap<String, String>,
}

fn key(invite: &SipUserInvite) -> String {
    format!("{}/{}", invite.namespace().unwrap_or_default(), invite.name_any())
}

fn hash_of(invite: &SipUserInvite) -> Option<&str> {
    invite.status.as_ref().and_then(|s| s.token_hash.as_deref())
}

fn provisioning_hash_of(invite: &SipUserInvite) -> Option<&str> {
    invite
        .status
        .as_ref()
        .and_then(|s| s.provisioning_token_hash.as_deref())
}

impl Inner {
    fn insert(&mut self, invite: Arc<SipUserInvite>) {
        let k = key(&invite);
        self.remove(&k);
        if let Some(h) = hash_of(&invite) {
            self.by_hash.insert(h.to_string(), k.clone());
        }
        if let Some(h) = provisioning_hash_of(&invite) {
            self.by_provisioning_hash.insert(h.to_string(), k.clone());
        }
        self.by_key.insert(k, invite);
    }

    fn remove(&mut self, k: &str) {
        let Some(old) = self.by_key.remove(k) else {
            return;
        };
        for (hash, map) in [
            (hash_of(&old), &mut self.by_hash),
            (provisioning_hash_of(&old), &mut self.by_provisioning_hash),
        ] {
            if let Some(h) = hash
                && map.get(h).map(String::as_str) == Some(k)
            {
                map.remove(h);
            }
        }
    }
}

impl Index {
    /// An empty index to be fed by `watches` watches.
    pub fn new(watches: usize) -> Index {
        Index {
            watches,
            ..Default::default()
        }
    }

    /// Whether every watch has listed once (before, an unknown link may just not be seen yet).
    pub fn listed(&self) -> bool {
        self.synced.load(std::sync::atomic::Ordering::Relaxed) >= self.watches
    }

    /// The invite whose link's token hashes to `hash`, as last seen by the watch.
    pub fn by_token_hash(&self, hash: &str) -> Option<Arc<SipUserInvite>> {
        let inner = read(&self.inner);
        inner.by_hash.get(hash).and_then(|k| inner.by_key.get(k)).cloned()
    }

    /// The invite whose provisioning token hashes to `hash`, as last seen by the watch.
    pub fn by_provisioning_hash(&self, hash: &str) -> Option<Arc<SipUserInvite>> {
        let inner = read(&self.inner);
        inner
            .by_provisioning_hash
            .get(hash)
            .and_then(|k| inner.by_key.get(k))
            .cloned()
    }

    /// Number of cached invites.
    pub fn len(&self) -> usize {
        read(&self.inner).by_key.len()
    }

    /// Whether no invite is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records a newer copy of an invite (e.g. the one this replica just wrote), unless the
    /// watch already delivered a newer one.
    pub fn observe(&self, invite: SipUserInvite) {
        let mut inner = write(&self.inner);
        let newer = |a: &SipUserInvite, b: &SipUserInvite| {
            let rv = |i: &SipUserInvite| i.resource_version().and_then(|v| v.parse::<u64>().ok());
            matches!((rv(a), rv(b)), (Some(x), Some(y)) if x > y)
        };
        let stale = inner
            .by_key
            .get(&key(&invite))
            .is_some_and(|have| newer(have, &invite));
        if !stale {
            inner.insert(Arc::new(invite));
        }
    }
}

/// Applies one watch's events to the index: `mine` is what this watch put there, so a relist
/// drops only its own vanished objects.
pub struct Feeder {
    index: Arc<Index>,
    mine: HashSet<String>,
    relisting: Option<HashSet<String>>,
}

impl Feeder {
    pub fn new(index: Arc<Index>) -> Feeder {
        Feeder {
            index,
            mine: HashSet::new(),
            relisting: None,
        }
    }

    /// Applies `event`; true once a (re)list completed.
    pub fn apply(&mut self, event: watcher::Event<SipUserInvite>) -> bool {
        let mut inner = write(&self.index.inner);
        match event {
            watcher::Event::Apply(invite) => {
                self.mine.insert(key(&invite));
                inner.insert(Arc::new(invite));
                false
            }
            watcher::Event::Delete(invite) => {
                let k = key(&invite);
                self.mine.remove(&k);
                inner.remove(&k);
                false
            }
            watcher::Event::Init => {
                self.relisting = Some(HashSet::new());
                false
            }
            watcher::Event::InitApply(invite) => {
                let k = key(&invite);
                self.relisting.get_or_insert_default().insert(k.clone());
                self.mine.insert(k);
                inner.insert(Arc::new(invite));
                false
            }
            watcher::Event::InitDone => {
                let listed = self.relisting.take().unwrap_or_default();
                for gone in self.mine.difference(&listed) {
                    inner.remove(gone);
                }
                self.mine = listed;
                true
            }
        }
    }
}

/// Runs one watch per Api into `index` until the process ends.
pub async fn feed(index: Arc<Index>, apis: Vec<kube::Api<SipUserInvite>>) {
    let watches = apis.into_iter().map(|api| {
        let index = index.clone();
        async move {
            let mut feeder = Feeder::new(index.clone());
            let mut listed_once = false;
            let mut events = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => {
                        if feeder.apply(event) && !listed_once {
                            listed_once = true;
                            index.synced.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "invite page: watching SipUserInvites failed; retrying")
                    }
                }
            }
        }
    });
    futures::future::join_all(watches).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SipUserInviteStatus;

    fn invite(ns: &str, name: &str, hash: Option<&str>, rv: &str) -> SipUserInvite {
        let mut i = SipUserInvite::new(
            name,
            serde_json::from_value(serde_json::json!({"userRef": "alice"})).expect("spec"),
        );
        i.metadata.namespace = Some(ns.into());
        i.metadata.resource_version = Some(rv.into());
        i.status = Some(SipUserInviteStatus {
            token_hash: hash.map(str::to_string),
            ..Default::default()
        });
        i
    }

    #[test]
    fn invites_are_found_by_token_hash_until_deleted() {
        let index = Arc::new(Index::default());
        let mut feed = Feeder::new(index.clone());
        feed.apply(watcher::Event::Apply(invite("a", "one", None, "1")));
        assert!(index.by_token_hash("h1").is_none(), "not issued yet");
        feed.apply(watcher::Event::Apply(invite("a", "one", Some("h1"), "2")));
        assert_eq!(
            index.by_token_hash("h1").map(|i| i.name_any()),
            Some("one".into())
        );
        assert!(index.by_token_hash("h2").is_none());
        feed.apply(watcher::Event::Delete(invite("a", "one", Some("h1"), "3")));
        assert!(index.by_token_hash("h1").is_none());
        assert!(index.is_empty());
    }

    #[test]
    fn a_used_invite_is_found_by_its_provisioning_token_hash_too() {
        let index = Arc::new(Index::default());
        let mut feed = Feeder::new(index.clone());
        let mut used = invite("a", "one", Some("h1"), "2");
        if let Some(s) = used.status.as_mut() {
            s.provisioning_token_hash = Some("p1".into());
        }
        feed.apply(watcher::Event::Apply(used.clone()));
        assert_eq!(
            index.by_provisioning_hash("p1").map(|i| i.name_any()),
            Some("one".into())
        );
        assert!(
            index.by_provisioning_hash("h1").is_none(),
            "the two keys are apart"
        );
        feed.apply(watcher::Event::Delete(used));
        assert!(index.by_provisioning_hash("p1").is_none());
    }

    #[test]
    fn a_relist_drops_only_what_vanished_from_its_own_watch() {
        let index = Arc::new(Index::default());
        let (mut a, mut b) = (Feeder::new(index.clone()), Feeder::new(index.clone()));
        a.apply(watcher::Event::Apply(invite("a", "x", Some("hx"), "1")));
        a.apply(watcher::Event::Apply(invite("a", "y", Some("hy"), "1")));
        b.apply(watcher::Event::Apply(invite("b", "z", Some("hz"), "1")));
        a.apply(watcher::Event::Init);
        a.apply(watcher::Event::InitApply(invite("a", "x", Some("hx"), "4")));
        assert!(a.apply(watcher::Event::InitDone));
        assert!(index.by_token_hash("hx").is_some());
        assert!(index.by_token_hash("hy").is_none(), "gone while not watched");
        assert!(index.by_token_hash("hz").is_some(), "another watch's");
    }

    #[test]
    fn an_own_write_is_seen_at_once_but_never_replaces_a_newer_copy() {
        let index = Arc::new(Index::default());
        let mut feed = Feeder::new(index.clone());
        feed.apply(watcher::Event::Apply(invite("a", "x", Some("h"), "5")));
        index.observe(invite("a", "x", Some("h"), "4"));
        assert_eq!(
            index.by_token_hash("h").and_then(|i| i.resource_version()),
            Some("5".into())
        );
        index.observe(invite("a", "x", Some("h"), "6"));
        assert_eq!(
            index.by_token_hash("h").and_then(|i| i.resource_version()),
            Some("6".into())
        );
    }
}
