//! What the operator keeps about registrar endpoints between reconciles: which endpoints a
//! SipDomain names and a client for each ([`endpoints`]), the replay memory of what was last
//! pushed and the sync markers, and the live registrations last read ([`registrations`],
//! [`registration_view`]). It never imports the controller: the API client, the caches and
//! the condition reasons stay there and come in as arguments.
pub mod endpoints;
pub mod registration_view;
pub mod registrations;

pub use endpoints::{Clients, SyncError};
pub use registrations::Registrations;
