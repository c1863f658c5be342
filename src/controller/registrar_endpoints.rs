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

use crate::api::{KamailioRegistrar, SipDomain};
use crate::credentials::secret_value;
use crate::registrar::kamailio::Kamailio;

/// Kamailio clients by URL, with the token they were made with, and the sync marker this
/// operator last left on each endpoint.
#[derive(Default)]
pub struct Clients {
    by_url: Mutex<HashMap<String, (Option<String>, Kamailio)>>,
    markers: Mutex<HashMap<String, String>>,
}

impl Clients {
    /// The marker this process left on `endpoint`, if any.
    pub fn marker(&self, endpoint: &str) -> Option<String> {
        self.markers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(endpoint)
            .cloned()
    }

    pub fn set_marker(&self, endpoint: &str, marker: String) {
        self.markers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(endpoint.to_string(), marker);
    }

    fn get(&self, url: &str, token: &Option<String>) -> Result<Kamailio, String> {
        let mut clients = self.by_url.lock().unwrap_or_else(|e| e.into_inner());
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
    let urls = ready_addresses(&slices.items)
        .into_iter()
        .map(|addr| format!("http://{}:{}{}", bracket(&addr), service.port, service.path))
        .collect::<Vec<_>>();
    if urls.is_empty() {
        return Err(format!(
            "Service {svc_ns}/{} has no ready endpoints",
            service.name
        ));
    }
    Ok(urls)
}

/// Addresses of ready endpoints, sorted and without duplicates.
pub fn ready_addresses(slices: &[EndpointSlice]) -> Vec<String> {
    let mut addrs: Vec<String> = slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        // Ready unset means ready (EndpointSlice API semantics).
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .flat_map(|e| e.addresses.iter().cloned())
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
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
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};

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

    #[test]
    fn only_ready_endpoints_count() {
        let slice = EndpointSlice {
            endpoints: vec![
                endpoint("10.0.0.2", Some(true)),
                endpoint("10.0.0.1", None),
                endpoint("10.0.0.3", Some(false)),
            ],
            ..Default::default()
        };
        assert_eq!(ready_addresses(&[slice.clone(), slice]), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(bracket("fd00::1"), "[fd00::1]");
    }
}
