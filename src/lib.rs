//! sip-operator: manages SIP domains, profiles and users as Kubernetes custom resources.
pub mod api;
pub mod cli;
mod clock;
pub mod controller;
pub mod crd_check;
pub mod crd_reference;
pub mod crds;
pub mod credentials;
pub mod http;
pub mod keys;
pub mod leader;
pub mod metrics;
mod object_identity;
pub mod registrar;
mod registrar_state;
pub mod scope;
mod sync;
pub mod telemetry;
