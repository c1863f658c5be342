//! Which registrar endpoints a SipDomain names: fixed URLs, or every ready endpoint of a
//! Service (from its EndpointSlices, so a scaled-out Kamailio gets every user), with the RPC
//! token read from the Secret the domain names. Clients are kept per URL so connections are
//! reused across reconciles.
use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::context::lock;
use crate::api::{KamailioRegistrar, SipDomain};
use crate::credentials::secret_value;
use crate::registrar::kamailio::Kamailio;
use crate::registrar::{UserEntry, UserKey};

/// Kamailio clients by URL (with the token they were made with), the sync marker this
/// operator last left on each endpoint, and the entry it last pushed for each user, so that an
/// endpoint that lost its memory gets every user back in one batch, without a reconcile (and a
/// Secret read) per user.
#[derive(Default)]
pub struct Clients {
    by_url: Mutex<HashMap<String, (Option<String>, Kamailio)>>,
    /// By (endpoint, SIP domain): the marker, and when the full sync that left it ran.
    markers: Mutex<HashMap<(String, String), (String, k8s_openapi::jiff::Timestamp)>>,
    pushed: Mutex<HashMap<String, UserEntry>>,
}

impl Clients {
    /// The marker this process left on `endpoint` for SIP domain `domain`, if any.
    pub fn marker(&self, endpoint: &str, domain: &str) -> Option<String> {
        lock(&self.markers)
            .get(&(endpoint.to_string(), domain.to_string()))
            .map(|(m, _)| m.clone())
    }

    /// When this process last synced `endpoint` fully for `domain` (kept here as well as in
    /// the status, so that a status write that failed does not lose it).
    pub fn last_full_sync(&self, endpoint: &str, domain: &str) -> Option<k8s_openapi::jiff::Timestamp> {
        lock(&self.markers)
            .get(&(endpoint.to_string(), domain.to_string()))
            .map(|(_, at)| *at)
    }

    /// Records the marker left on `endpoint` for `domain`; `None` forgets it, so that the next
    /// check syncs the endpoint fully again.
    pub fn set_marker(&self, endpoint: &str, domain: &str, marker: Option<String>) {
        let key = (endpoint.to_string(), domain.to_string());
        match marker {
            Some(m) => lock(&self.markers).insert(key, (m, super::clock::now())),
            None => lock(&self.markers).remove(&key),
        };
    }

    /// Records that every endpoint of the user's domain holds `entry`.
    pub fn remember(&self, entry: &UserEntry) {
        lock(&self.pushed).insert(entry.key.key(), entry.clone());
    }

    /// Records that no endpoint holds the user any more.
    pub fn forget(&self, key: &UserKey) {
        lock(&self.pushed).remove(&key.key());
    }

    /// The entries last pushed for the users of SIP domain `fqdn`, by registrar key.
    pub fn pushed_in(&self, fqdn: &str) -> HashMap<String, UserEntry> {
        lock(&self.pushed)
            .iter()
            .filter(|(_, e)| e.key.domain == fqdn)
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect()
    }

    fn get(&self, url: &str, token: &Option<String>) -> Result<Kamailio, String> {
        let mut clients = lock(&self.by_url);
        if let Some((t, client)) = clients.get(url)
            && t == token
        {
            return Ok(client.clone());
        }
        let client = Kamailio::new(url, token.clone()).map_err(|e| e.to_string())?;
        clients.insert(url.to_string(), (token.clone(), client.clone()));
        Ok(client)
    }
}

/// The endpoints of `domain`'s registrar; `Ok(None)` when it names none. An `Err` says what a
/// person should fix (missing token Secret, Service without ready endpoints).
pub async fn resolve(
    domain: &SipDomain,
    client: &Client,
    clients: &Clients,
) -> Result<Option<Vec<Kamailio>>, String> {
    let Some(registrar) = &domain.spec.registrar else {
        return Ok(None);
    };
    let ns = domain.namespace().unwrap_or_default();
    let token = token(&registrar.kamailio, &ns, client).await?;
    let urls = urls(&registrar.kamailio, &ns, client).await?;
    urls.iter()
        .map(|u| clients.get(u, &token))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

async fn token(kamailio: &KamailioRegistrar, ns: &str, client: &Client) -> Result<Option<String>, String> {
    let Some(r) = &kamailio.token_secret_ref else {
        return Ok(None);
    };
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(&r.name)
        .await
        .map_err(|e| format!("reading the registrar token Secret {:?}: {e}", r.name))?
        .ok_or_else(|| {
            format!(
                "the registrar token Secret {:?} (spec.registrar.kamailio.tokenSecretRef) does not exist",
                r.name
            )
        })?;
    secret_value(&secret, &r.key)
        .filter(|v| !v.is_empty())
        .map(Some)
        .ok_or_else(|| {
            format!(
                "the registrar token Secret {:?} has no non-empty key {:?}",
                r.name, r.key
            )
        })
}

async fn urls(kamailio: &KamailioRegistrar, ns: &str, client: &Client) -> Result<Vec<String>, String> {
    if let Some(urls) = &kamailio.urls {
        return Ok(urls.clone());
    }
    let Some(service) = &kamailio.service else {
        return Ok(Vec::new());
    };
    let svc_ns = service.namespace.as_deref().unwrap_or(ns);
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), svc_ns)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={}", service.name)))
        .await
        .map_err(|e| {
            format!(
                "listing the EndpointSlices of Service {svc_ns}/{}: {e}",
                service.name
            )
        })?;
    let urls = endpoint_urls(&slices.items, &service.port_name, &service.path);
    if urls.is_empty() {
        return Err(format!(
            "Service {svc_ns}/{} has no ready endpoints with a port named {:?} \
             (spec.registrar.kamailio.service.portName)",
            service.name, service.port_name
        ));
    }
    Ok(urls)
}

/// The JSON-RPC URL of every ready endpoint: its address and the port its slice lists under
/// `port_name`; sorted, without duplicates. A dual-stack Service lists each pod in an IPv4
/// and an IPv6 slice; one Kamailio must be one endpoint (it holds one users table and one
/// sync marker per domain), so a pod named by `targetRef` counts once, IPv4 first.
pub fn endpoint_urls(slices: &[EndpointSlice], port_name: &str, path: &str) -> Vec<String> {
    let mut ordered: Vec<&EndpointSlice> = slices.iter().collect();
    ordered.sort_by_key(|s| s.address_type != "IPv4");
    let mut pods = std::collections::HashSet::new();
    let mut urls = Vec::new();
    for slice in ordered {
        let ports = slice.ports.as_deref().unwrap_or_default();
        let port = match ports {
            // A Service with a single port may leave it unnamed.
            [only] if only.name.as_deref().unwrap_or_default().is_empty() => Some(only),
            _ => ports.iter().find(|p| p.name.as_deref() == Some(port_name)),
        };
        let Some(port) = port.and_then(|p| p.port) else {
            continue;
        };
        // Ready unset means ready (EndpointSlice API semantics).
        let ready = slice
            .endpoints
            .iter()
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true));
        for endpoint in ready {
            let pod = endpoint
                .target_ref
                .as_ref()
                .map(|r| (r.namespace.clone(), r.name.clone(), r.uid.clone()));
            if pod.is_some_and(|p| !pods.insert(p)) {
                continue;
            }
            let first = endpoint.addresses.first();
            urls.extend(first.map(|addr| format!("http://{}:{port}{path}", bracket(addr))));
        }
    }
    urls.sort();
    urls.dedup();
    urls
}

fn bracket(addr: &str) -> String {
    if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};

    fn endpoint(addr: &str, ready: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: vec![addr.into()],
            conditions: Some(EndpointConditions {
                ready,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn slice(port: (&str, i32), endpoints: Vec<Endpoint>) -> EndpointSlice {
        EndpointSlice {
            endpoints,
            ports: Some(vec![EndpointPort {
                name: Some(port.0.into()),
                port: Some(port.1),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn only_ready_endpoints_count() {
        let s = slice(
            ("rpc", 5071),
            vec![
                endpoint("10.0.0.2", Some(true)),
                endpoint("10.0.0.1", None),
                endpoint("10.0.0.3", Some(false)),
            ],
        );
        assert_eq!(
            endpoint_urls(&[s.clone(), s], "rpc", "/RPC"),
            ["http://10.0.0.1:5071/RPC", "http://10.0.0.2:5071/RPC"]
        );
    }

    #[test]
    fn the_port_comes_from_each_slice_by_name() {
        let slices = [
            slice(("rpc", 5071), vec![endpoint("10.0.0.1", None)]),
            slice(("rpc", 6000), vec![endpoint("fd00::1", None)]),
            slice(("sip", 5060), vec![endpoint("10.0.0.9", None)]),
        ];
        assert_eq!(
            endpoint_urls(&slices, "rpc", "/RPC"),
            ["http://10.0.0.1:5071/RPC", "http://[fd00::1]:6000/RPC"]
        );
        assert!(endpoint_urls(&slices, "admin", "/RPC").is_empty());
    }

    #[test]
    fn a_dual_stack_pod_is_one_endpoint() {
        let pod = |name: &str, addr: &str| Endpoint {
            target_ref: Some(k8s_openapi::api::core::v1::ObjectReference {
                kind: Some("Pod".into()),
                namespace: Some("voip".into()),
                name: Some(name.into()),
                ..Default::default()
            }),
            ..endpoint(addr, Some(true))
        };
        let mut v6 = slice(
            ("rpc", 5071),
            vec![pod("kamailio-0", "fd00::7"), pod("kamailio-1", "fd00::8")],
        );
        v6.address_type = "IPv6".into();
        let mut v4 = slice(("rpc", 5071), vec![pod("kamailio-0", "10.0.0.7")]);
        v4.address_type = "IPv4".into();
        assert_eq!(
            endpoint_urls(&[v6, v4], "rpc", "/RPC"),
            ["http://10.0.0.7:5071/RPC", "http://[fd00::8]:5071/RPC"],
            "kamailio-0 once (IPv4), kamailio-1 only has IPv6"
        );
    }

    #[test]
    fn the_only_port_of_a_service_may_be_unnamed() {
        let s = slice(("", 5071), vec![endpoint("10.0.0.1", None)]);
        assert_eq!(endpoint_urls(&[s], "rpc", "/RPC"), ["http://10.0.0.1:5071/RPC"]);
    }
}
