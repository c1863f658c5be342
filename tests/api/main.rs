//! The API contract, proven against a real kube-apiserver: the examples apply, the invalid
//! inputs are refused with messages naming the field, immutable fields stay immutable, and
//! `kubectl get` / `kubectl explain` read well.
#[path = "../support/mod.rs"]
mod support;

mod examples;
mod immutability;
mod invalid_examples;
mod kubectl_output;
