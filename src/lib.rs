//! sip-operator: manages SIP domains, profiles and users as Kubernetes custom resources.
pub mod api;
pub mod controller;
pub mod crds;
pub mod credentials;
pub mod http;
pub mod keys;
pub mod metrics;
