//! Healing sweeps, once per [`SWEEP_INTERVAL`]: the users whose admission verdict moved (a
//! winner left, a name was freed, a seat opened, an older user claimed a name) are reconciled,
//! which heals or stalls them without a manual poke; and the SipDomains and SipProfiles whose
//! users changed recount them. Collecting these between ticks makes a burst of N user events
//! cost one judging of the namespace and one status write per domain and profile per tick,
//! instead of one each per event.
use std::collections::HashSet;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::ObjectRef;

use crate::api::{SipDomain, SipProfile, SipUser};
use crate::controller::cache::Stores;
use crate::sync::lock;

/// How long changes collect before a sweep.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// Objects to queue at the next sweep, each once.
pub struct Pending<K: kube::Resource>(Arc<Mutex<HashSet<ObjectRef<K>>>>)
where
    K::DynamicType: Hash + Eq;

impl<K: kube::Resource<DynamicType = ()>> Default for Pending<K> {
    fn default() -> Self {
        Pending(Arc::default())
    }
}

impl<K: kube::Resource<DynamicType = ()>> Clone for Pending<K> {
    fn clone(&self) -> Self {
        Pending(self.0.clone())
    }
}

impl<K: kube::Resource<DynamicType = ()>> Pending<K> {
    pub fn add(&self, refs: impl IntoIterator<Item = ObjectRef<K>>) {
        lock(&self.0).extend(refs);
    }

    fn take(&self) -> HashSet<ObjectRef<K>> {
        std::mem::take(&mut *lock(&self.0))
    }
}

/// Where the sweep sends what it found.
pub struct Queues {
    pub users: UnboundedSender<ObjectRef<SipUser>>,
    pub domains: UnboundedSender<ObjectRef<SipDomain>>,
    pub profiles: UnboundedSender<ObjectRef<SipProfile>>,
}

/// Sweeps until the user controller is gone (its channel closes).
pub async fn run(stores: Stores, recount: (Pending<SipDomain>, Pending<SipProfile>), queues: Queues) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !queues.users.is_closed() {
        tick.tick().await;
        let moved = stores.admission().take_moved();
        if !moved.is_empty() {
            tracing::debug!(users = moved.len(), "admission moved");
        }
        crate::controller::send_all(&queues.users, moved);
        crate::controller::send_all(&queues.domains, recount.0.take());
        crate::controller::send_all(&queues.profiles, recount.1.take());
    }
}
