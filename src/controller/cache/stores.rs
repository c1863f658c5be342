//! The caches of the operator's own kinds, and the questions the reconcilers ask them.
use std::sync::{Arc, Mutex};

use kube::ResourceExt;
use kube::runtime::reflector::Store;

use crate::api::{SipDomain, SipProfile, SipUser};
use crate::controller::admission::index::Index;
use crate::controller::error::Error;
use crate::sync::lock;

/// Caches of the operator's own kinds, filled by one watch per kind.
#[derive(Clone)]
pub struct Stores {
    /// Every watched SipUser.
    pub users: Store<SipUser>,
    /// Every watched SipDomain.
    pub domains: Store<SipDomain>,
    /// Every watched SipProfile.
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
