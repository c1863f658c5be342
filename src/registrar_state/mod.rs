//! What the operator keeps about registrar endpoints between reconciles: which endpoints a
//! SipDomain names ([`endpoints`], from the caches of Services and EndpointSlices that
//! [`service`] describes and the tokens of [`tokens`]), one batching task per endpoint
//! ([`batcher`]), what each endpoint is known to hold and the sync markers ([`memory`]), and
//! the live registrations last read ([`registrations`], [`registration_view`]). It never
//! imports the controller: the API client, the caches and the condition reasons stay there and
//! come in as arguments or through the [`service::Lookup`] and [`endpoints::Source`] traits.
pub mod batcher;
pub mod endpoints;
pub mod memory;
pub mod registration_view;
pub mod registrations;
pub mod service;
pub mod tokens;

pub use batcher::Endpoint;
pub use endpoints::{Resolver, Source, SyncError};
pub use memory::Memory;
pub use registrations::Registrations;
pub use tokens::Tokens;
