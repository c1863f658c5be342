//! Healing sweeps: after users of a namespace change, the users whose admission moved (see
//! [`triggers::admission_drift`]) are reconciled. Computing that takes the whole namespace, so
//! it runs at most once per [`SWEEP_INTERVAL`] per namespace rather than on every event: a
//! burst of N user events costs O(N) instead of O(N²).
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::ObjectRef;

use crate::api::SipUser;
use crate::controller::cache::{Stores, triggers};
use crate::sync::lock;

/// How long changes collect before a sweep.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// Namespaces with user changes since the last sweep.
#[derive(Default, Clone)]
pub struct Dirty(Arc<Mutex<HashSet<String>>>);

impl Dirty {
    /// Notes that users of `namespace` changed; the next sweep looks at it.
    pub fn mark(&self, namespace: String) {
        lock(&self.0).insert(namespace);
    }

    fn take(&self) -> HashSet<String> {
        std::mem::take(&mut *lock(&self.0))
    }
}

/// Sweeps dirty namespaces until the user controller is gone (its channel closes).
pub async fn run(stores: Stores, dirty: Dirty, users: UnboundedSender<ObjectRef<SipUser>>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !users.is_closed() {
        tick.tick().await;
        for namespace in dirty.take() {
            let _span = tracing::debug_span!("healing_sweep", namespace = %namespace).entered();
            let drifted = triggers::admission_drift(&namespace, &stores);
            tracing::debug!(users = drifted.len(), "users whose admission moved");
            for user in drifted {
                // Fails only once the user controller is gone (shutdown): nothing to heal then.
                let _ = users.unbounded_send(user);
            }
        }
    }
}
