//! What the reconcilers read instead of asking the API server: the watches that fill the
//! caches (decoding objects as [`Lean`]), the caches themselves ([`Stores`], and
//! [`ServiceCaches`] for registrar Services and EndpointSlices), the mappers that
//! say which objects to reconcile when another one changes, and what happens to an object
//! that cannot be decoded; and the echoes of the operator's own Secret writes.
pub mod echoes;
pub mod lean;
pub mod services;
pub mod stores;
pub mod triggers;
pub mod unreadable;
pub mod watches;

pub use lean::{Lean, Unreadable};
pub use services::ServiceCaches;
pub use stores::Stores;
