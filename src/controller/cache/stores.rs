//! The caches of the operator's own kinds, and the questions the reconcilers ask them.
use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::reflector::Store;

use crate::api::{SipDomain, SipProfile, SipUser};
use crate::controller::admission::{self, Admission};
use crate::controller::error::Error;

/// Caches of the operator's own kinds, filled by one watch per kind.
#[derive(Clone)]
pub struct Stores {
    /// Every watched SipUser.
    pub users: Store<SipUser>,
    /// Every watched SipDomain.
    pub domains: Store<SipDomain>,
    /// Every watched SipProfile.
    pub profiles: Store<SipProfile>,
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

    /// Admission of one namespace from the caches; `fresh` (the object being reconciled, as
    /// the controller just received it) replaces its cached copy.
    pub fn admission(&self, namespace: &str, fresh: Option<&SipUser>) -> Admission {
        let in_ns = |ns: Option<String>| ns.as_deref() == Some(namespace);
        let all_domains = self.domains.state();
        let losers = admission::domain_conflicts(all_domains.iter().map(Arc::as_ref))
            .into_iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|((_, name), winner)| (name, winner))
            .collect();
        let domains: Vec<_> = all_domains
            .iter()
            .filter(|d| in_ns(d.namespace()))
            .map(Arc::as_ref)
            .collect();
        let profiles = self.profiles.state_filter(|p| in_ns(p.namespace()));
        let profiles: Vec<_> = profiles.iter().map(Arc::as_ref).collect();
        let fresh_uid = fresh.and_then(|u| u.uid());
        let cached = self
            .users
            .state_filter(|u| in_ns(u.namespace()) && (fresh_uid.is_none() || u.uid() != fresh_uid));
        let mut users: Vec<_> = cached
            .iter()
            .map(Arc::as_ref)
            .filter(|u| u.metadata.deletion_timestamp.is_none())
            .collect();
        if let Some(fresh) = fresh.filter(|u| u.metadata.deletion_timestamp.is_none()) {
            users.push(fresh);
        }
        admission::admit(&domains, &profiles, &users, &losers)
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
