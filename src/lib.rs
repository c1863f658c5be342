//! sip-operator: manages SIP domains, profiles and users as Kubernetes custom resources.
pub mod api;
pub mod crds;
pub mod keys;
pub mod http;
pub mod metrics;
