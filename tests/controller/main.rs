//! The controller, proven against a real kube-apiserver: every test gets a namespace of its own
//! and its own `sip-operator` process (the real binary, with the restricted RBAC identity of
//! the control plane), applies SipDomains, SipProfiles and SipUsers as a person would, and
//! watches what the operator makes of them: Secrets, status conditions, events, metrics,
//! leader election and the API writes it makes (through the audit log).
#[path = "../support/mod.rs"]
mod support;

mod builders;
mod scenario;

mod capacity;
mod conflicts;
mod credentials;
mod deletion;
mod devices;
mod events_and_secrecy;
mod fuzz;
mod import;
mod invites;
mod leader;
mod malformed;
mod observability;
mod provisioning;
mod references;
mod registrar_settings;
mod resync;
mod rotation;
mod suspension;
