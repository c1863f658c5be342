//! Live registrations in memory: the last bulk read (contacts and failed authentications) of
//! each registrar endpoint, and each SipDomain's view merged from its endpoints. The domain check fills it once per
//! interval; the user reconciler, the only writer of SipUser status, reads from it.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::registration_view::{Dump, View};
use crate::registrar::{Registrar, RegistrarError};
use crate::sync::lock;

/// The last bulk read of each registrar endpoint and the view of each SipDomain merged from
/// them; one per process, shared by the domain check (writer) and the user reconciler.
#[derive(Default)]
pub struct Registrations {
    /// By endpoint, with when it was read (domains sharing an endpoint read it once).
    dumps: Mutex<HashMap<String, (Instant, Dump)>>,
    /// By SipDomain (namespace, name).
    views: Mutex<HashMap<(String, String), Arc<View>>>,
    /// By SipDomain: when its users were last compared with its view.
    scans: Mutex<HashMap<(String, String), Instant>>,
}

impl Registrations {
    /// The endpoint's registrations, read anew unless the last read is younger than `fresh_for`.
    pub async fn read(&self, endpoint: &impl Registrar, fresh_for: Duration) -> Result<Dump, RegistrarError> {
        if let Some((read, dump)) = lock(&self.dumps).get(endpoint.endpoint())
            && read.elapsed() < fresh_for
        {
            return Ok(dump.clone());
        }
        let (contacts, auth_failures) =
            futures::try_join!(endpoint.registrations(), endpoint.auth_failures())?;
        let dump = Dump {
            endpoint: endpoint.endpoint().into(),
            read_at: crate::clock::now(),
            contacts: Arc::new(contacts),
            auth_failures: Arc::new(auth_failures),
        };
        lock(&self.dumps).insert(endpoint.endpoint().to_string(), (Instant::now(), dump.clone()));
        Ok(dump)
    }

    /// Replaces the view of a SipDomain.
    pub fn set_view(&self, namespace: &str, name: &str, view: View) -> Arc<View> {
        let view = Arc::new(view);
        lock(&self.views).insert((namespace.to_string(), name.to_string()), view.clone());
        view
    }

    /// The last view of a SipDomain; `None` before its registrar was first read.
    pub fn view(&self, namespace: &str, name: &str) -> Option<Arc<View>> {
        lock(&self.views)
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Forgets the view of a deleted SipDomain.
    pub fn forget_view(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        lock(&self.views).remove(&key);
        lock(&self.scans).remove(&key);
    }

    /// Whether the users of a SipDomain are due to be compared with its view (and counted)
    /// again: at most once per `every`, however often the domain reconciles (its recounts run
    /// up to four times a second while users are created, and each comparison walks all of
    /// the domain's users).
    pub fn scan_due(&self, namespace: &str, name: &str, every: Duration) -> bool {
        let mut scans = lock(&self.scans);
        let key = (namespace.to_string(), name.to_string());
        if scans.get(&key).is_some_and(|at| at.elapsed() < every) {
            return false;
        }
        scans.insert(key, Instant::now());
        true
    }

    /// Forgets reads older than `max_age` (endpoints that went away).
    pub fn prune(&self, max_age: Duration) {
        lock(&self.dumps).retain(|_, (read, _)| read.elapsed() < max_age);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_scan_is_due_once_per_interval_and_again_after_it_is_forgotten() {
        let r = Registrations::default();
        let every = Duration::from_secs(60);
        assert!(r.scan_due("ns", "acme", every));
        assert!(!r.scan_due("ns", "acme", every), "within the interval");
        assert!(r.scan_due("ns", "other", every), "per domain");
        assert!(r.scan_due("ns", "acme", Duration::ZERO), "the interval passed");
        r.forget_view("ns", "acme");
        assert!(r.scan_due("ns", "acme", every), "a deleted domain is forgotten");
    }
}
