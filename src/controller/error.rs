//! Errors of a reconcile: each says what was being done, so a log line is actionable, and maps
//! to a stable metric label.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed (network, conflict, permission).
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// The object lacks something the API server always sets.
    #[error("{0} has no namespace; sip-operator resources are namespaced")]
    NotNamespaced(String),
    /// The caches of the referenced kinds are gone (the operator is shutting down).
    #[error("the object caches are closed; the operator is shutting down")]
    CachesClosed,
    /// Removing a deleted user from the registrar failed; the deletion waits.
    #[error("registrar cleanup: {0}")]
    RegistrarCleanup(String),
    /// Adding or removing the finalizer failed.
    #[error("{action} the finalizer {finalizer}: {source}", finalizer = crate::keys::REGISTRAR_CLEANUP_FINALIZER)]
    Finalizer {
        action: &'static str,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// The `error` label of `sip_operator_reconcile_errors_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube_api",
            Error::NotNamespaced(_) => "not_namespaced",
            Error::CachesClosed => "caches_closed",
            Error::RegistrarCleanup(_) => "registrar",
            Error::Finalizer { .. } => "finalizer",
        }
    }
}

/// `.map_err(kube_err("reading Secret x"))`: wraps a kube error with what was being done.
pub fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}
