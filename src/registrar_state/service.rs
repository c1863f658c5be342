//! A registrar Service and its EndpointSlices as resolving reads them: lean copies holding only
//! the fields it needs (port names; ready addresses, their pod and port), decoded straight
//! from the API server's JSON so that everything else (managedFields included, at any depth)
//! is skipped unread and never cached. [`Lookup`] is how resolving asks the caches of them,
//! which the controller keeps (this module only defines the question).
use std::borrow::Cow;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::{Deserialize, Deserializer};

use crate::object_identity::Identity;

/// The label an EndpointSlice names its Service with.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What resolving reads from the cluster's caches of Services and EndpointSlices.
pub trait Lookup: Send + Sync {
    /// Whether the caches hold the Services of `namespace` (else resolving asks the API server:
    /// a Service outside the watched namespaces, e.g. a bundled registrar's).
    fn covers(&self, namespace: &str) -> bool;
    /// The cached Service `namespace/name`; `None` when there is none.
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<ServicePorts>>;
    /// The cached EndpointSlices of Service `namespace/service`.
    fn slices(&self, namespace: &str, service: &str) -> Vec<Arc<SliceEndpoints>>;
}

/// A Service as resolving reads it: its identity and the names of its ports.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ServicePorts {
    #[serde(default, deserialize_with = "lean_meta")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<ServicePortsSpec>,
}

/// The part of a Service's spec resolving reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ServicePortsSpec {
    #[serde(default)]
    pub ports: Option<Vec<PortName>>,
}

/// A Service port, by name only (unnamed when the Service has a single port).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PortName {
    #[serde(default)]
    pub name: Option<String>,
}

impl ServicePorts {
    /// The names of its ports (`""` for an unnamed one), in order.
    pub fn port_names(&self) -> Vec<String> {
        self.spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .map(|ports| ports.iter().map(|p| p.name.clone().unwrap_or_default()).collect())
            .unwrap_or_default()
    }
}

/// An EndpointSlice as resolving reads it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SliceEndpoints {
    /// Identity, and of the labels only [`SERVICE_NAME_LABEL`].
    #[serde(default, deserialize_with = "lean_meta")]
    pub metadata: ObjectMeta,
    /// `IPv4`, `IPv6` or `FQDN`.
    #[serde(default)]
    pub address_type: String,
    #[serde(default)]
    pub endpoints: Option<Vec<SliceEndpoint>>,
    #[serde(default)]
    pub ports: Option<Vec<SlicePort>>,
}

/// One endpoint of a slice.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SliceEndpoint {
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub conditions: Option<EndpointReady>,
    /// The pod behind it, so that a dual-stack pod counts once.
    #[serde(default)]
    pub target_ref: Option<TargetRef>,
}

/// An endpoint's readiness (unset means ready).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct EndpointReady {
    #[serde(default)]
    pub ready: Option<bool>,
}

/// The object behind an endpoint.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq, Hash)]
pub struct TargetRef {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
}

/// A port of a slice.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SlicePort {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub port: Option<i32>,
}

impl SliceEndpoints {
    /// The Service the slice belongs to (its [`SERVICE_NAME_LABEL`]).
    pub fn service_name(&self) -> Option<&str> {
        self.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .map(String::as_str)
    }
}

/// Only the metadata a cache needs to key and tell versions apart, and the Service name label.
fn lean_meta<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ObjectMeta, D::Error> {
    let id = Option::<Identity>::deserialize(deserializer)?.unwrap_or_default();
    Ok(id.into_meta(Some(SERVICE_NAME_LABEL)))
}

/// `Resource` for a lean copy of a namespaced built-in kind, so that kube can list and watch
/// it under the kind's own URL.
macro_rules! lean_resource {
    ($ty:ty, $kind:literal, $group:literal, $version:literal, $plural:literal) => {
        impl Resource for $ty {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($group)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($version)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

lean_resource!(ServicePorts, "Service", "", "v1", "services");
lean_resource!(
    SliceEndpoints,
    "EndpointSlice",
    "discovery.k8s.io",
    "v1",
    "endpointslices"
);

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;

    #[test]
    fn only_the_needed_fields_are_kept_and_managed_fields_of_any_depth_are_skipped() {
        let mut deep = String::from("{}");
        for _ in 0..2_000 {
            deep = format!("{{\"f:a\":{deep}}}");
        }
        let json = format!(
            r#"{{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",
              "metadata":{{"name":"k-abc","namespace":"voip","uid":"u1","resourceVersion":"9",
                "labels":{{"kubernetes.io/service-name":"kamailio","other":"x"}},
                "annotations":{{"big":"{big}"}},
                "managedFields":[{{"manager":"m","fieldsV1":{deep}}}]}},
              "addressType":"IPv4",
              "endpoints":[{{"addresses":["10.0.0.7"],"conditions":{{"ready":true,"serving":true}},
                "targetRef":{{"kind":"Pod","namespace":"voip","name":"kamailio-0","uid":"p1"}},
                "nodeName":"n1"}}],
              "ports":[{{"name":"rpc","port":5071,"protocol":"TCP"}}]}}"#,
            big = "x".repeat(1000)
        );
        let slice: SliceEndpoints = serde_json::from_str(&json).expect("decodes");
        assert_eq!(slice.name_any(), "k-abc");
        assert_eq!(slice.resource_version().as_deref(), Some("9"));
        assert_eq!(slice.service_name(), Some("kamailio"));
        assert_eq!(slice.labels().len(), 1, "only the service-name label is kept");
        assert!(slice.annotations().is_empty());
        let endpoints = slice.endpoints.as_deref().unwrap_or_default();
        assert_eq!(endpoints[0].addresses, ["10.0.0.7"]);
        assert_eq!(endpoints[0].conditions.as_ref().and_then(|c| c.ready), Some(true));

        let empty: SliceEndpoints =
            serde_json::from_str(r#"{"metadata":{"name":"e"},"addressType":"IPv4","endpoints":null}"#)
                .expect("null endpoints");
        assert!(empty.endpoints.is_none());
    }

    #[test]
    fn a_service_is_its_port_names() {
        let svc: ServicePorts = serde_json::from_str(
            r#"{"metadata":{"name":"kamailio","namespace":"voip"},
                "spec":{"type":"ClusterIP","ports":[{"name":"sip","port":5060},{"port":5071}]}}"#,
        )
        .expect("decodes");
        assert_eq!(svc.port_names(), ["sip", ""]);
        assert_eq!(ServicePorts::plural(&()), "services");
        assert_eq!(SliceEndpoints::api_version(&()), "discovery.k8s.io/v1");
    }
}
