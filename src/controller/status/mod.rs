//! How the operator reports: conditions and their reasons (part of the API), the status
//! write (server-side apply, only on change) and Kubernetes Events.
pub mod conditions;
pub mod event_sink;
pub mod events;
pub mod patch;
pub mod reasons;
pub mod registrar;
