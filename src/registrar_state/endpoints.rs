//! Which registrar endpoints a SipDomain names: fixed URLs, or every ready endpoint of a
//! Service (from its EndpointSlices, so a scaled-out Kamailio gets every user), with the RPC
//! token read from the Secret the domain names. All of it comes from caches: the Service and
//! its slices from the controller's watches (through [`Lookup`]), the token from [`Tokens`];
//! only a Service outside the watched namespaces is read from the API server. Endpoints are
//! kept per URL so that connections and batching tasks last across reconciles. When they
//! cannot be resolved, [`ResolveError`] says what is missing (which condition reason that is,
//! is the controller's business: `controller::status::registrar`).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::batcher::Endpoint;
use super::service::{Lookup, SERVICE_NAME_LABEL, ServicePorts, SliceEndpoints, TargetRef};
use super::tokens::{Held, Tokens};
use crate::api::{KamailioRegistrar, ServiceRef, SipDomain};
use crate::registrar::RegistrarError;
use crate::registrar::kamailio::{Kamailio, redact_userinfo};
use crate::sync::lock;

/// Where reconcile steps get a domain's registrar endpoints from: [`Resolver`], or a fake in
/// unit tests.
pub trait Source: Send + Sync {
    /// The endpoints of `domain`'s registrar; `Ok(None)` when it names none.
    fn resolve<'a>(
        &'a self,
        domain: &'a SipDomain,
    ) -> BoxFuture<'a, Result<Option<Vec<Endpoint>>, ResolveError>>;

    /// Drops the endpoints no resolve asked for within `unused_for` (no domain names them any
    /// more: every domain with a registrar resolves once per check interval); their names.
    fn prune(&self, _unused_for: Duration) -> Vec<String> {
        Vec::new()
    }
}

/// The real [`Source`]: caches in, an [`Endpoint`] (client and batching task) per URL out.
pub struct Resolver {
    client: Client,
    lookup: Arc<dyn Lookup>,
    tokens: Arc<Tokens>,
    by_url: Mutex<HashMap<String, Kept>>,
}

/// An endpoint as kept by URL: the token it was made with and when a resolve last named it.
struct Kept {
    token: Option<String>,
    endpoint: Endpoint,
    used: Instant,
}

impl Resolver {
    /// A resolver reading Services and slices through `lookup`, tokens through `tokens` (and
    /// `client` for a token Secret not cached yet, or a Service outside the watched namespaces).
    pub fn new(client: Client, lookup: Arc<dyn Lookup>, tokens: Arc<Tokens>) -> Resolver {
        Resolver {
            client,
            lookup,
            tokens,
            by_url: Mutex::default(),
        }
    }

    fn endpoint(&self, url: &str, token: &Option<String>) -> Result<Endpoint, ResolveError> {
        let mut clients = lock(&self.by_url);
        if let Some(kept) = clients.get_mut(url)
            && kept.token == *token
        {
            kept.used = Instant::now();
            return Ok(kept.endpoint.clone());
        }
        // Only reached for URLs already checked; the field is the closest one to name.
        let client =
            Kamailio::new(url, token.clone()).map_err(|e| invalid_url("spec.registrar.kamailio", url, e))?;
        let endpoint = Endpoint::new(Arc::new(client));
        clients.insert(
            url.to_string(),
            Kept {
                token: token.clone(),
                endpoint: endpoint.clone(),
                used: Instant::now(),
            },
        );
        Ok(endpoint)
    }

    async fn token(&self, kamailio: &KamailioRegistrar, ns: &str) -> Result<Option<String>, ResolveError> {
        let Some(r) = &kamailio.token_secret_ref else {
            return Ok(None);
        };
        let secrets = Api::<Secret>::namespaced(self.client.clone(), ns);
        let read = secrets.get_opt(&r.name);
        let held = self
            .tokens
            .get(ns, &r.name, &r.key, read)
            .await
            .map_err(|source| ResolveError::Kube {
                action: format!("reading the registrar token Secret {:?}", r.name),
                source,
            })?;
        token_value(&held, &r.name, &r.key).map(Some)
    }

    async fn service_urls(&self, service: &ServiceRef, ns: &str) -> Result<Vec<String>, ResolveError> {
        let svc_ns = service.namespace.as_deref().unwrap_or(ns);
        let (found, slices) = if self.lookup.covers(svc_ns) {
            (
                self.lookup.service(svc_ns, &service.name),
                self.lookup.slices(svc_ns, &service.name),
            )
        } else {
            self.read_service(svc_ns, &service.name).await?
        };
        check_service(found.as_deref(), svc_ns, service)?;
        let urls = endpoint_urls(slices.iter().map(Arc::as_ref), &service.port_name, &service.path);
        if urls.is_empty() {
            return Err(ResolveError::NoReadyEndpoints {
                namespace: svc_ns.to_string(),
                name: service.name.clone(),
                port_name: service.port_name.clone(),
            });
        }
        Ok(urls)
    }

    /// A Service the caches do not cover, and its slices, from the API server.
    async fn read_service(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<(Option<Arc<ServicePorts>>, Vec<Arc<SliceEndpoints>>), ResolveError> {
        let found = Api::<ServicePorts>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .map_err(|source| ResolveError::Kube {
                action: format!("reading the registrar Service {ns}/{name}"),
                source,
            })?;
        let slices = Api::<SliceEndpoints>::namespaced(self.client.clone(), ns)
            .list(&ListParams::default().labels(&format!("{SERVICE_NAME_LABEL}={name}")))
            .await
            .map_err(|source| ResolveError::Kube {
                action: format!("listing the EndpointSlices of Service {ns}/{name}"),
                source,
            })?;
        Ok((
            found.map(Arc::new),
            slices.items.into_iter().map(Arc::new).collect(),
        ))
    }
}

impl Source for Resolver {
    /// The fixed URLs are checked first (no I/O), then the token, then the Service.
    fn resolve<'a>(
        &'a self,
        domain: &'a SipDomain,
    ) -> BoxFuture<'a, Result<Option<Vec<Endpoint>>, ResolveError>> {
        async move {
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
            let token = self.token(&registrar.kamailio, &ns).await?;
            let urls = match &registrar.kamailio.service {
                Some(service) if registrar.kamailio.urls.is_none() => self.service_urls(service, &ns).await?,
                _ => fixed.to_vec(),
            };
            urls.iter()
                .map(|u| self.endpoint(u, &token))
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        .boxed()
    }

    fn prune(&self, unused_for: Duration) -> Vec<String> {
        let mut gone = Vec::new();
        lock(&self.by_url).retain(|_, kept| {
            let keep = kept.used.elapsed() < unused_for;
            if !keep {
                gone.push(kept.endpoint.registrar().endpoint().to_string());
            }
            keep
        });
        gone
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
        partly @ RegistrarError::PartlyRejected { .. } => partly.to_string(),
    };
    ResolveError::UrlInvalid {
        field: field.to_string(),
        url: redact_userinfo(url),
        reason,
    }
}

/// The token, or which part of the Secret is missing. Pure.
pub fn token_value(held: &Held, name: &str, key: &str) -> Result<String, ResolveError> {
    match held {
        Held::NoSecret => Err(ResolveError::TokenSecretNotFound { name: name.into() }),
        Held::NoKey => Err(ResolveError::TokenKeyNotFound {
            name: name.into(),
            key: key.into(),
        }),
        Held::Value(v) if v.is_empty() => Err(ResolveError::TokenKeyEmpty {
            name: name.into(),
            key: key.into(),
        }),
        Held::Value(v) => Ok(v.clone()),
    }
}

/// That the Service exists and has the named port (or a single unnamed one, as
/// [`endpoint_urls`] accepts). Pure.
pub fn check_service(
    found: Option<&ServicePorts>,
    namespace: &str,
    service: &ServiceRef,
) -> Result<(), ResolveError> {
    let Some(found) = found else {
        return Err(ResolveError::ServiceNotFound {
            namespace: namespace.to_string(),
            name: service.name.clone(),
        });
    };
    let ports = found.port_names();
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
pub fn endpoint_urls<'a>(
    slices: impl IntoIterator<Item = &'a SliceEndpoints>,
    port_name: &str,
    path: &str,
) -> Vec<String> {
    let mut ordered: Vec<&SliceEndpoints> = slices.into_iter().collect();
    ordered.sort_by_key(|s| s.address_type != "IPv4");
    let mut pods: std::collections::HashSet<&TargetRef> = std::collections::HashSet::new();
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
            .flatten()
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true));
        for endpoint in ready {
            if endpoint.target_ref.as_ref().is_some_and(|p| !pods.insert(p)) {
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
    use crate::registrar_state::service::{EndpointReady, SliceEndpoint, SlicePort};

    fn endpoint(addr: &str, ready: Option<bool>) -> SliceEndpoint {
        SliceEndpoint {
            addresses: vec![addr.into()],
            conditions: Some(EndpointReady { ready }),
            ..Default::default()
        }
    }

    fn slice(port: (&str, i32), endpoints: Vec<SliceEndpoint>) -> SliceEndpoints {
        SliceEndpoints {
            endpoints: Some(endpoints),
            ports: Some(vec![SlicePort {
                name: Some(port.0.into()),
                port: Some(port.1),
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
        let pod = |name: &str, addr: &str| SliceEndpoint {
            target_ref: Some(TargetRef {
                namespace: Some("voip".into()),
                name: Some(name.into()),
                uid: None,
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

    fn service(ports: &[&str]) -> ServicePorts {
        let ports: Vec<serde_json::Value> = ports
            .iter()
            .map(|n| match n {
                &"" => serde_json::json!({"port": 5071}),
                n => serde_json::json!({"name": n, "port": 5071}),
            })
            .collect();
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": "kamailio"}, "spec": {"ports": ports}}),
        )
        .expect("service")
    }

    #[test]
    fn a_missing_token_says_which_part_is_missing() {
        let e = token_value(&Held::NoSecret, "rpc", "token").expect_err("no Secret");
        assert!(matches!(e, ResolveError::TokenSecretNotFound { .. }));
        let e = token_value(&Held::NoKey, "rpc", "token").expect_err("no key");
        assert!(matches!(e, ResolveError::TokenKeyNotFound { .. }));
        let e = token_value(&Held::Value(String::new()), "rpc", "token").expect_err("empty");
        assert!(matches!(e, ResolveError::TokenKeyEmpty { .. }));
        assert_eq!(
            token_value(&Held::Value("t0k".into()), "rpc", "token")
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
