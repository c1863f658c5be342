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
    /// Removing a deleted user from the registrar failed; the deletion waits (the message
    /// names the annotation that lets it go anyway).
    #[error(
        "registrar cleanup: {0}; the deletion waits for the registrar (annotate the SipUser with \
         {skip}=true to delete it without the cleanup)",
        skip = crate::keys::SKIP_CLEANUP_ANNOTATION
    )]
    RegistrarCleanup(#[source] crate::registrar_state::SyncError),
    /// The operating system's random number generator failed (no invite token can be drawn).
    #[error("drawing a random invite token: {0}")]
    Random(String),
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
            Error::Random(_) => "random",
        }
    }
}

/// `.map_err(kube_err("reading Secret x"))`: wraps a kube error with what was being done.
pub fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::RegistrarError;
    use crate::registrar_state::SyncError;

    #[test]
    fn a_failed_cleanup_names_each_endpoint_and_the_way_out() {
        let e = Error::RegistrarCleanup(SyncError::Endpoints(vec![
            RegistrarError::Unreachable {
                endpoint: "http://a/RPC".into(),
                reason: "refused".into(),
            },
            RegistrarError::Unreachable {
                endpoint: "http://b/RPC".into(),
                reason: "timed out".into(),
            },
        ]));
        assert_eq!(
            e.to_string(),
            "registrar cleanup: registrar endpoint http://a/RPC is unreachable: refused; \
             registrar endpoint http://b/RPC is unreachable: timed out; the deletion waits for the \
             registrar (annotate the SipUser with sipoperator.io/skip-registrar-cleanup=true to delete \
             it without the cleanup)"
        );
        assert_eq!(e.metric_label(), "registrar");
    }
}
