//! How registrar problems show in conditions: the SipDomain reason for each way its
//! endpoints cannot be resolved, and, for its users, the registrar stall the domain last
//! recorded. Kept here rather than beside [`ResolveError`] so that `registrar_state` knows
//! nothing of condition reasons.
use super::conditions;
use super::reasons::{self, types};
use crate::api::SipDomain;
use crate::registrar_state::endpoints::ResolveError;

/// The SipDomain's Stalled reason when only a person can fix `e`; `None` when it may pass
/// by itself (retried at the next check).
pub fn stalled_reason(e: &ResolveError) -> Option<&'static str> {
    match e {
        ResolveError::TokenSecretNotFound { .. }
        | ResolveError::TokenKeyNotFound { .. }
        | ResolveError::TokenKeyEmpty { .. } => Some(reasons::REGISTRAR_TOKEN_NOT_FOUND),
        ResolveError::ServiceNotFound { .. } => Some(reasons::REGISTRAR_SERVICE_NOT_FOUND),
        ResolveError::ServicePortNotFound { .. } => Some(reasons::REGISTRAR_SERVICE_PORT_NOT_FOUND),
        ResolveError::UrlInvalid { .. } => Some(reasons::REGISTRAR_URL_INVALID),
        ResolveError::NoReadyEndpoints { .. } | ResolveError::Kube { .. } => None,
    }
}

/// The reason of a transient failure (the domain is Reconciling meanwhile).
pub fn transient_reason(e: &ResolveError) -> &'static str {
    match e {
        ResolveError::NoReadyEndpoints { .. } => reasons::REGISTRAR_ENDPOINTS_NOT_READY,
        _ => reasons::REGISTRAR_UNREACHABLE,
    }
}

/// Whether a SipDomain Stalled reason says its `spec.registrar` cannot work as written.
pub fn is_registrar_reason(reason: &str) -> bool {
    [
        reasons::REGISTRAR_TOKEN_NOT_FOUND,
        reasons::REGISTRAR_SERVICE_NOT_FOUND,
        reasons::REGISTRAR_SERVICE_PORT_NOT_FOUND,
        reasons::REGISTRAR_URL_INVALID,
    ]
    .contains(&reason)
}

/// The message of `domain`'s Stalled condition when, as last recorded in its status for its
/// current spec, its registrar cannot work as written. Users follow this rather than
/// classifying on their own, so they change state exactly when the domain does (which
/// re-queues them); a verdict about an older spec is not trusted.
pub fn recorded_registrar_problem(domain: &SipDomain) -> Option<&str> {
    let conditions = &domain.status.as_ref()?.conditions;
    conditions::find(conditions, types::STALLED)
        .filter(|c| c.status == "True" && is_registrar_reason(&c.reason))
        .filter(|c| c.observed_generation == domain.metadata.generation)
        .map(|c| c.message.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_spec_a_person_must_fix_stalls() {
        let token = ResolveError::TokenSecretNotFound { name: "rpc".into() };
        let key = ResolveError::TokenKeyNotFound {
            name: "rpc".into(),
            key: "token".into(),
        };
        let empty = ResolveError::TokenKeyEmpty {
            name: "rpc".into(),
            key: "token".into(),
        };
        for e in [&token, &key, &empty] {
            assert_eq!(stalled_reason(e), Some(reasons::REGISTRAR_TOKEN_NOT_FOUND));
        }
        let service = ResolveError::ServiceNotFound {
            namespace: "voip".into(),
            name: "kamailio".into(),
        };
        assert_eq!(
            stalled_reason(&service),
            Some(reasons::REGISTRAR_SERVICE_NOT_FOUND)
        );
        let port = ResolveError::ServicePortNotFound {
            namespace: "voip".into(),
            name: "kamailio".into(),
            port_name: "rpc".into(),
            ports: vec!["sip".into()],
        };
        assert_eq!(
            stalled_reason(&port),
            Some(reasons::REGISTRAR_SERVICE_PORT_NOT_FOUND)
        );
        let url = ResolveError::UrlInvalid {
            field: "spec.registrar.kamailio.urls[0]".into(),
            url: "https://kamailio/RPC".into(),
            reason: "only http://".into(),
        };
        assert_eq!(stalled_reason(&url), Some(reasons::REGISTRAR_URL_INVALID));
        for e in [&token, &key, &empty, &service, &port, &url] {
            assert!(
                stalled_reason(e).is_some_and(is_registrar_reason),
                "{e:?}: users follow every registrar stall"
            );
        }
        assert_eq!(transient_reason(&url), reasons::REGISTRAR_UNREACHABLE);
    }

    #[test]
    fn endpoints_not_ready_yet_are_not_a_person_s_problem() {
        let e = ResolveError::NoReadyEndpoints {
            namespace: "voip".into(),
            name: "kamailio".into(),
            port_name: "rpc".into(),
        };
        assert_eq!(stalled_reason(&e), None);
        assert_eq!(transient_reason(&e), reasons::REGISTRAR_ENDPOINTS_NOT_READY);
    }

    #[test]
    fn users_follow_the_recorded_registrar_stall_only() {
        let stalled = |reason: &'static str| {
            let mut d = crate::controller::fixtures::domain("acme").build();
            d.status = Some(crate::api::SipDomainStatus {
                conditions: conditions::merge(
                    &[],
                    &[conditions::Want::new(
                        types::STALLED,
                        conditions::Status::True,
                        reason,
                        "what is wrong",
                    )],
                    d.metadata.generation,
                    &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                    ),
                ),
                ..Default::default()
            });
            d
        };
        assert_eq!(
            recorded_registrar_problem(&stalled(reasons::REGISTRAR_TOKEN_NOT_FOUND)),
            Some("what is wrong")
        );
        assert_eq!(
            recorded_registrar_problem(&stalled(reasons::DOMAIN_CONFLICT)),
            None
        );
        let mut edited = stalled(reasons::REGISTRAR_URL_INVALID);
        edited.metadata.generation = Some(2);
        assert_eq!(
            recorded_registrar_problem(&edited),
            None,
            "the spec changed since"
        );
        assert_eq!(
            recorded_registrar_problem(&crate::controller::fixtures::domain("acme").build()),
            None
        );
    }
}
