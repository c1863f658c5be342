//! The caches of registrar Services and their EndpointSlices (trimmed to what resolving
//! reads), answering `registrar_state`'s [`Lookup`] so that no reconcile reads them from the
//! API server. Slices are indexed by their Service as the watch reports them, so a lookup
//! touches only that Service's slices, however many a cluster-wide watch holds.
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::registrar_state::service::{Lookup, ServicePorts, SliceEndpoints};
use crate::scope::Scope;
use crate::sync::lock;

/// Slice names by (namespace, Service).
type SliceIndex = HashMap<(String, String), BTreeSet<String>>;

/// Services and EndpointSlices of the watched namespaces.
#[derive(Clone)]
pub struct ServiceCaches {
    /// Which namespaces the watches cover.
    pub scope: Scope,
    pub services: Store<ServicePorts>,
    pub slices: Store<SliceEndpoints>,
    by_service: Arc<Mutex<SliceIndex>>,
}

impl ServiceCaches {
    /// Caches over the two stores the watches fill.
    pub fn new(scope: Scope, services: Store<ServicePorts>, slices: Store<SliceEndpoints>) -> Self {
        ServiceCaches {
            scope,
            services,
            slices,
            by_service: Arc::default(),
        }
    }

    /// Keeps the index in line with a slice the watch touched (after the store applied it):
    /// indexed while the store has it, dropped once it is gone.
    pub fn observe_slice(&self, slice: &SliceEndpoints) {
        let ns = slice.namespace().unwrap_or_default();
        let name = slice.name_any();
        let Some(service) = slice.service_name() else {
            return;
        };
        let key = (ns.clone(), service.to_string());
        let mut index = lock(&self.by_service);
        if self.slices.get(&ObjectRef::new(&name).within(&ns)).is_some() {
            index.entry(key).or_default().insert(name);
        } else if let Some(names) = index.get_mut(&key) {
            names.remove(&name);
            if names.is_empty() {
                index.remove(&key);
            }
        }
    }
}

impl Lookup for ServiceCaches {
    fn covers(&self, namespace: &str) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Namespaces(list) => list.iter().any(|n| n == namespace),
        }
    }

    fn service(&self, namespace: &str, name: &str) -> Option<Arc<ServicePorts>> {
        self.services.get(&ObjectRef::new(name).within(namespace))
    }

    fn slices(&self, namespace: &str, service: &str) -> Vec<Arc<SliceEndpoints>> {
        let names: Vec<String> = lock(&self.by_service)
            .get(&(namespace.to_string(), service.to_string()))
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default();
        names
            .iter()
            .filter_map(|n| self.slices.get(&ObjectRef::new(n).within(namespace)))
            // A slice relabelled to another Service is re-indexed there on its event.
            .filter(|s| s.service_name() == Some(service))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    fn slice(ns: &str, name: &str, service: &str) -> SliceEndpoints {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
        }))
        .expect("slice")
    }

    #[test]
    fn slices_are_found_by_their_service_and_dropped_when_gone() {
        let (services, _) = reflector::store::<ServicePorts>();
        let (slices, mut writer) = reflector::store::<SliceEndpoints>();
        let caches = ServiceCaches::new(Scope::Namespaces(vec!["voip".into()]), services, slices);
        let (a, b, other) = (
            slice("voip", "k-a", "kamailio"),
            slice("voip", "k-b", "kamailio"),
            slice("voip", "x-a", "other"),
        );
        for s in [&a, &b, &other] {
            writer.apply_watcher_event(&Event::Apply(s.clone()));
            caches.observe_slice(s);
        }
        let names = |found: Vec<Arc<SliceEndpoints>>| found.iter().map(|s| s.name_any()).collect::<Vec<_>>();
        assert_eq!(names(caches.slices("voip", "kamailio")), ["k-a", "k-b"]);
        assert!(caches.slices("elsewhere", "kamailio").is_empty());
        writer.apply_watcher_event(&Event::Delete(a.clone()));
        caches.observe_slice(&a);
        assert_eq!(names(caches.slices("voip", "kamailio")), ["k-b"]);
        assert!(caches.covers("voip") && !caches.covers("elsewhere"));
    }
}
