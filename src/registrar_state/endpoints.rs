//! Which registrar endpoints a SipDomain names: fixed URLs, or every ready endpoint of a
//! Service (from its EndpointSlices, so a scaled-out Kamailio gets every user), with the RPC
//! token read from the Secret the domain names. Clients are kept per URL so connections are
//! reused across reconciles. When they cannot be resolved, [`ResolveError`] says what is
//! missing (which condition reason that is, is the controller's business:
//! `controller::status::registrar`).
use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use crate::api::{KamailioRegistrar, ServiceRef, SipDomain};
use crate::credentials::secret_value;
use crate::registrar::kamailio::{Kamailio, redact_userinfo};
use crate::registrar::{RegistrarError, UserEntry, UserKey};
use crate::sync::lock;

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
            Some(m) => lock(&self.markers).insert(key, (m, crate::clock::now())),
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

    fn get(&self, url: &str, token: &Option<String>) -> Result<Kamailio, ResolveError> {
        let mut clients = lock(&self.by_url);
        if let Some((t, client)) = clients.get(url)
            && t == token
        {
            return Ok(client.clone());
        }
        // Only reached for URLs already checked; the field is the closest one to name.
        let client =
            Kamailio::new(url, token.clone()).map_err(|e| invalid_url("spec.registrar.kamailio", url, e))?;
        clients.insert(url.to_string(), (token.clone(), client.clone()));
        Ok(client)
    }
}

/// Why a user could not be brought in line on its domain's registrar endpoints.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The endpoints could not be resolved (see the SipDomain's status for the same verdict).
    #[error(transparent)]
    Unresolved(#[from] ResolveError),
    /// Some endpoints failed the push or removal; one error per failing endpoint, each
    /// naming it (the others hold the change).
    #[error("{}", join_errors(.0))]
    Endpoints(Vec<RegistrarError>),
}

/// The failures of several endpoints on one line, as `SyncError` shows them.
fn join_errors(errors: &[RegistrarError]) -> String {
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    messages.join("; ")
}

/// Why the endpoints of a SipDomain's registrar could not be resolved. Messages name the
/// field to fix and never hold a token or URL credentials.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The token Secret does not exist.
    #[error(
        "the registrar token Secret {name:?} named by spec.registrar.kamailio.tokenSecretRef does not exist; \
         create it, or correct spec.registrar.kamailio.tokenSecretRef"
    )]
    TokenSecretNotFound { name: String },
    /// The token Secret lacks the key.
    #[error(
        "the registrar token Secret {name:?} has no key {key:?} (spec.registrar.kamailio.tokenSecretRef.key); \
         add the key to the Secret, or correct spec.registrar.kamailio.tokenSecretRef"
    )]
    TokenKeyNotFound { name: String, key: String },
    /// The key is there, but empty.
    #[error(
        "the key {key:?} of the registrar token Secret {name:?} (spec.registrar.kamailio.tokenSecretRef) is empty; \
         put the registrar's RPC token in it"
    )]
    TokenKeyEmpty { name: String, key: String },
    /// The Service does not exist.
    #[error(
        "the registrar Service {namespace}/{name} named by spec.registrar.kamailio.service does not exist; \
         create it, or correct spec.registrar.kamailio.service"
    )]
    ServiceNotFound { namespace: String, name: String },
    /// The Service has no port by that name (and is not a single unnamed port).
    #[error(
        "the registrar Service {namespace}/{name} has no port named {port_name:?} \
         (spec.registrar.kamailio.service.portName; its ports: {ports:?}); name the Service's JSON-RPC port so, \
         or correct spec.registrar.kamailio.service.portName"
    )]
    ServicePortNotFound {
        namespace: String,
        name: String,
        port_name: String,
        ports: Vec<String>,
    },
    /// A URL the client cannot use. `url` is redacted.
    #[error("{field} ({url}) cannot be used: {reason}; correct {field}")]
    UrlInvalid {
        field: String,
        url: String,
        reason: String,
    },
    /// The Service is there but no endpoint is ready yet: passes by itself.
    #[error(
        "the registrar Service {namespace}/{name} has no ready endpoints with a port named {port_name:?} \
         (spec.registrar.kamailio.service.portName) yet; waiting for Kamailio to become ready"
    )]
    NoReadyEndpoints {
        namespace: String,
        name: String,
        port_name: String,
    },
    /// Reading a Secret, Service or EndpointSlices failed (network, permission).
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
}

/// Checks that the client can use `url` (named `field` in messages), without any I/O.
pub fn check_url(field: &str, url: &str) -> Result<(), ResolveError> {
    Kamailio::parse_url(url)
        .map(drop)
        .map_err(|e| invalid_url(field, url, e))
}

/// Checks that a Service's JSON-RPC `path` makes usable URLs, before any address is known
/// (the same path goes with every address).
pub fn check_path(path: &str) -> Result<(), ResolveError> {
    let field = "spec.registrar.kamailio.service.path";
    // A documentation address (RFC 5737) stands in for the endpoints.
    Kamailio::parse_url(&format!("http://192.0.2.1:5071{path}"))
        .map(drop)
        .map_err(|e| invalid_url(field, path, e))
}

fn invalid_url(field: &str, url: &str, e: RegistrarError) -> ResolveError {
    let reason = match e {
        RegistrarError::Unreachable { reason, .. }
        | RegistrarError::Rejected { reason, .. }
        | RegistrarError::Inconsistent { reason, .. } => reason,
    };
    ResolveError::UrlInvalid {
        field: field.to_string(),
        url: redact_userinfo(url),
        reason,
    }
}

/// The endpoints of `domain`'s registrar; `Ok(None)` when it names none. The fixed URLs are
/// checked first (no I/O), then the token Secret, then the Service.
pub async fn resolve(
    domain: &SipDomain,
    client: &Client,
    clients: &Clients,
) -> Result<Option<Vec<Kamailio>>, ResolveError> {
    let Some(registrar) = &domain.spec.registrar else {
        return Ok(None);
    };
    let ns = domain.namespace().unwrap_or_default();
    let fixed = registrar.kamailio.urls.as_deref().unwrap_or_default();
    for (i, url) in fixed.iter().enumerate() {
        check_url(&format!("spec.registrar.kamailio.urls[{i}]"), url)?;
    }
    if let Some(service) = &registrar.kamailio.service {
        check_path(&service.path)?;
    }
    let token = token(&registrar.kamailio, &ns, client).await?;
    let urls = match &registrar.kamailio.service {
        Some(service) if registrar.kamailio.urls.is_none() => service_urls(service, &ns, client).await?,
        _ => fixed.to_vec(),
    };
    urls.iter()
        .map(|u| clients.get(u, &token))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

async fn token(
    kamailio: &KamailioRegistrar,
    ns: &str,
    client: &Client,
) -> Result<Option<String>, ResolveError> {
    let Some(r) = &kamailio.token_secret_ref else {
        return Ok(None);
    };
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(&r.name)
        .await
        .map_err(|source| ResolveError::Kube {
            action: format!("reading the registrar token Secret {:?}", r.name),
            source,
        })?;
    token_value(secret.as_ref(), &r.name, &r.key).map(Some)
}

/// The token from the Secret (if it exists), or which of its parts is missing. Pure.
pub fn token_value(secret: Option<&Secret>, name: &str, key: &str) -> Result<String, ResolveError> {
    let Some(secret) = secret else {
        return Err(ResolveError::TokenSecretNotFound { name: name.into() });
    };
    match secret_value(secret, key) {
        None => Err(ResolveError::TokenKeyNotFound {
            name: name.into(),
            key: key.into(),
        }),
        Some(v) if v.is_empty() => Err(ResolveError::TokenKeyEmpty {
            name: name.into(),
            key: key.into(),
        }),
        Some(v) => Ok(v),
    }
}

async fn service_urls(service: &ServiceRef, ns: &str, client: &Client) -> Result<Vec<String>, ResolveError> {
    let svc_ns = service.namespace.as_deref().unwrap_or(ns);
    let found = Api::<Service>::namespaced(client.clone(), svc_ns)
        .get_opt(&service.name)
        .await
        .map_err(|source| ResolveError::Kube {
            action: format!("reading the registrar Service {svc_ns}/{}", service.name),
            source,
        })?;
    check_service(found.as_ref(), svc_ns, service)?;
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), svc_ns)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={}", service.name)))
        .await
        .map_err(|source| ResolveError::Kube {
            action: format!("listing the EndpointSlices of Service {svc_ns}/{}", service.name),
            source,
        })?;
    let urls = endpoint_urls(&slices.items, &service.port_name, &service.path);
    if urls.is_empty() {
        return Err(ResolveError::NoReadyEndpoints {
            namespace: svc_ns.to_string(),
            name: service.name.clone(),
            port_name: service.port_name.clone(),
        });
    }
    Ok(urls)
}

/// That the Service exists and has the named port (or a single unnamed one, as
/// [`endpoint_urls`] accepts). Pure.
pub fn check_service(
    found: Option<&Service>,
    namespace: &str,
    service: &ServiceRef,
) -> Result<(), ResolveError> {
    let Some(found) = found else {
        return Err(ResolveError::ServiceNotFound {
            namespace: namespace.to_string(),
            name: service.name.clone(),
        });
    };
    let ports: Vec<String> = found
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(|ports| ports.iter().map(|p| p.name.clone().unwrap_or_default()).collect())
        .unwrap_or_default();
    let usable = match ports.as_slice() {
        [only] if only.is_empty() => true,
        named => named.contains(&service.port_name),
    };
    if usable {
        Ok(())
    } else {
        Err(ResolveError::ServicePortNotFound {
            namespace: namespace.to_string(),
            name: service.name.clone(),
            port_name: service.port_name.clone(),
            ports,
        })
    }
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

    fn service_ref(port_name: &str) -> ServiceRef {
        serde_json::from_value(serde_json::json!({"name": "kamailio", "portName": port_name}))
            .expect("service ref")
    }

    fn service(ports: &[&str]) -> Service {
        Service {
            spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
                ports: Some(
                    ports
                        .iter()
                        .map(|n| k8s_openapi::api::core::v1::ServicePort {
                            name: (!n.is_empty()).then(|| n.to_string()),
                            port: 5071,
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_missing_token_says_which_part_is_missing() {
        let with = |data: &[(&str, &str)]| Secret {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), k8s_openapi::ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        let e = token_value(None, "rpc", "token").expect_err("no Secret");
        assert!(matches!(e, ResolveError::TokenSecretNotFound { .. }));
        let e = token_value(Some(&with(&[("other", "x")])), "rpc", "token").expect_err("no key");
        assert!(matches!(e, ResolveError::TokenKeyNotFound { .. }));
        let e = token_value(Some(&with(&[("token", "")])), "rpc", "token").expect_err("empty");
        assert!(matches!(e, ResolveError::TokenKeyEmpty { .. }));
        assert_eq!(
            token_value(Some(&with(&[("token", "t0k")])), "rpc", "token")
                .ok()
                .as_deref(),
            Some("t0k")
        );
        for e in [
            ResolveError::TokenSecretNotFound { name: "rpc".into() },
            ResolveError::TokenKeyNotFound {
                name: "rpc".into(),
                key: "token".into(),
            },
            ResolveError::TokenKeyEmpty {
                name: "rpc".into(),
                key: "token".into(),
            },
        ] {
            let message = e.to_string();
            assert!(
                message.contains("spec.registrar.kamailio.tokenSecretRef") && message.contains("\"rpc\""),
                "{message}"
            );
        }
    }

    #[test]
    fn a_service_must_exist_and_have_the_port() {
        let rpc = service_ref("rpc");
        let e = check_service(None, "voip", &rpc).expect_err("no Service");
        assert!(matches!(e, ResolveError::ServiceNotFound { .. }), "{e:?}");
        assert!(
            e.to_string().contains("voip/kamailio")
                && e.to_string().contains("spec.registrar.kamailio.service")
        );
        let e = check_service(Some(&service(&["sip", "admin"])), "voip", &rpc).expect_err("no rpc port");
        assert!(matches!(e, ResolveError::ServicePortNotFound { .. }), "{e:?}");
        assert!(e.to_string().contains("service.portName"), "{e}");
        assert!(check_service(Some(&service(&["sip", "rpc"])), "voip", &rpc).is_ok());
        assert!(
            check_service(Some(&service(&[""])), "voip", &rpc).is_ok(),
            "a single unnamed port"
        );
        assert!(check_service(Some(&service(&[])), "voip", &rpc).is_err());
    }

    #[test]
    fn urls_the_client_cannot_use_name_the_field_and_never_the_credentials() {
        let e = check_url(
            "spec.registrar.kamailio.urls[1]",
            "https://rpc:s3cret@kamailio/RPC",
        )
        .expect_err("https");
        assert!(matches!(e, ResolveError::UrlInvalid { .. }), "{e:?}");
        let message = e.to_string();
        assert!(message.contains("spec.registrar.kamailio.urls[1]"), "{message}");
        assert!(message.contains("only http://"), "{message}");
        assert!(
            message.contains("https://***@kamailio/RPC") && !message.contains("s3cret"),
            "{message}"
        );
        assert!(check_url("f", "http://kamailio:5071/RPC").is_ok());
        assert!(
            check_url("f", "http://rpc:s3cret@kamailio:5071/RPC").is_ok(),
            "still usable, redacted"
        );
        let e = check_path("/R PC").expect_err("a space");
        assert!(
            e.to_string().contains("spec.registrar.kamailio.service.path"),
            "{e}"
        );
        assert!(check_path("/RPC").is_ok());
    }

    #[test]
    fn the_only_port_of_a_service_may_be_unnamed() {
        let s = slice(("", 5071), vec![endpoint("10.0.0.1", None)]);
        assert_eq!(endpoint_urls(&[s], "rpc", "/RPC"), ["http://10.0.0.1:5071/RPC"]);
    }
}
