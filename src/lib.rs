//! sip-operator: manages SIP domains, profiles and users as Kubernetes custom resources.
pub mod api;
pub mod crds;
