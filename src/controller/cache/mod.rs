//! What the reconcilers read instead of asking the API server: the decoded form of watched
//! objects (and, as the controller grows, the stores and watches themselves).
pub mod lean;

pub use lean::{Lean, Unreadable};
