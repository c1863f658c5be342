//! The SipDomain reconciler: cluster-wide FQDN conflicts, a valid extension pattern, registrar
//! settings that can work (Stalled when only a person can fix them, Reconciling while the
//! registrar is not ready), and the count of admitted users.
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

mod registrar_check;

use self::registrar_check::Health;
use super::admission::{domain_conflicts, domain_problem};
use super::status::conditions::{self, Status, Want, true_reason};
use super::status::reasons::{self, types};
use super::status::{events, patch as status_patch};
use super::{Context, Error};
use crate::api::{SipDomain, SipDomainStatus};

/// Reconciles one SipDomain: its own problems, then (when it has none) a check of its
/// registrar endpoints; requeued every check interval when it names a registrar.
#[tracing::instrument(
    name = "reconcile_domain",
    skip_all,
    fields(namespace = domain.namespace().unwrap_or_default(), name = domain.name_any(), domain = domain.spec.domain)
)]
pub async fn reconcile(domain: Arc<SipDomain>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started("SipDomain");
    let ns = domain
        .namespace()
        .ok_or_else(|| Error::NotNamespaced(domain.name_any()))?;
    ctx.stores.ready().await?;
    let name = domain.name_any();
    let all = ctx.stores.domains.state();
    let losers = domain_conflicts(all.iter().map(Arc::as_ref));
    let problem = domain_problem(
        &domain,
        losers.get(&(ns.clone(), name.clone())).map(String::as_str),
    );
    let users = ctx.stores.admission().domain_seats(&ns, &name);

    let previous = domain.status.as_ref();
    // A stalled domain pushes nothing; otherwise check that its registrar endpoints are whole.
    let check = match problem {
        None => registrar_check::check(&domain, previous.map_or(&[][..], |s| &s.registrars), &ctx).await,
        Some(_) => Default::default(),
    };
    // A registrar only a person can fix stalls the domain like its own problems do.
    let stall = problem.clone().or(match &check.health {
        Health::Invalid { reason, message } => Some((*reason, message.clone())),
        _ => None,
    });
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut desired = build_status(&domain, previous, problem.as_ref(), &check.health, users, &now);
    desired.registered_users = match (&domain.spec.registrar, &problem) {
        (Some(_), None) => check.registered_users.or(desired.registered_users),
        _ => None,
    };
    desired.registrars = check.endpoints;
    status_patch::apply_if_changed(
        &ctx.client,
        &ctx.status_written,
        domain.as_ref(),
        previous,
        &desired,
    )
    .await?;

    let previous_stalled = previous.and_then(|s| true_reason(&s.conditions, types::STALLED));
    events::on_stalled(
        &ctx,
        domain.as_ref(),
        previous_stalled,
        stall.as_ref().map(|(r, m)| (*r, m.as_str())),
    )
    .await;
    let status_of = |t| conditions::find(&desired.conditions, t).map_or("Unknown", |c| c.status.as_str());
    // A domain deleted while this reconcile ran has left the gauge (`forget`): not back in.
    if ctx
        .stores
        .domain(&ns, &name)
        .is_some_and(|d| d.uid() == domain.uid())
    {
        ctx.metrics.record_object(
            "SipDomain",
            &format!("{ns}/{name}"),
            status_of(types::READY),
            status_of(types::STALLED),
        );
    }
    ctx.backoff.succeeded(&domain.uid().unwrap_or_default());
    if domain.spec.registrar.is_some() {
        // The next registrar check (restart detection; a registrar that was not ready or not
        // valid is looked at again, so the domain heals without a poke).
        return Ok(Action::requeue(ctx.settings.registrar_check_interval));
    }
    Ok(Action::await_change())
}

/// The SipDomain status, pure. `problem` is the domain's own (a conflict, a bad pattern: no
/// registrar check ran); else `registrar` decides between Stalled, Reconciling and Ready.
/// Registrar fields carry over (the registrar step owns them).
pub fn build_status(
    domain: &SipDomain,
    previous: Option<&SipDomainStatus>,
    problem: Option<&(&'static str, String)>,
    registrar: &Health,
    users: i32,
    now: &Time,
) -> SipDomainStatus {
    let previous = previous.cloned().unwrap_or_default();
    let not_stalled = || Want::new(types::STALLED, Status::False, reasons::NOT_STALLED, "");
    let not_reconciling = || Want::new(types::RECONCILING, Status::False, reasons::NOT_RECONCILING, "");
    let stalled = |reason, message: &String| {
        vec![
            Want::new(types::READY, Status::False, reason, message.clone()),
            not_reconciling(),
            Want::new(types::STALLED, Status::True, reason, message.clone()),
        ]
    };
    let mut wanted = match (problem, registrar) {
        (Some((reason, message)), _) => stalled(*reason, message),
        (None, Health::Invalid { reason, message }) => stalled(*reason, message),
        (None, Health::Transient { reason, message }) => {
            let message = format!("the registrar does not take users yet: {message}");
            vec![
                Want::new(types::READY, Status::False, reason, message.clone()),
                Want::new(types::RECONCILING, Status::True, reason, message),
                not_stalled(),
            ]
        }
        (None, Health::NotChecked | Health::Ready { .. }) => vec![
            Want::new(
                types::READY,
                Status::True,
                reasons::READY,
                format!("domain {} is served", domain.spec.domain),
            ),
            not_reconciling(),
            not_stalled(),
        ],
    };
    wanted.push(registrar_ready(domain, problem, registrar));
    let generation = domain.meta().generation;
    SipDomainStatus {
        observed_generation: generation,
        conditions: conditions::merge(&previous.conditions, &wanted, generation, now),
        users: Some(users),
        registered_users: previous.registered_users,
        registrars: previous.registrars,
    }
}

/// The `RegistrarReady` detail condition.
fn registrar_ready(domain: &SipDomain, problem: Option<&(&'static str, String)>, registrar: &Health) -> Want {
    let want = |status, reason, message: String| Want::new(types::REGISTRAR_READY, status, reason, message);
    if domain.spec.registrar.is_none() {
        return want(
            Status::Unknown,
            reasons::NO_REGISTRAR_CONFIGURED,
            "the SipDomain names no registrar (spec.registrar)".into(),
        );
    }
    match (problem, registrar) {
        (Some(_), _) | (None, Health::NotChecked) => want(
            Status::Unknown,
            reasons::REGISTRAR_NOT_CHECKED,
            "the registrar is not checked while the SipDomain is stalled; see the Stalled condition".into(),
        ),
        (None, Health::Ready { endpoints }) => want(
            Status::True,
            reasons::REGISTRAR_ENDPOINTS_READY,
            format!("{endpoints} registrar endpoint(s) answered the last check"),
        ),
        (None, Health::Transient { reason, message } | Health::Invalid { reason, message }) => {
            want(Status::False, reason, message.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RegistrarEndpointStatus;
    use crate::controller::fixtures;
    use crate::registrar_state::endpoints::ResolveError;

    fn with_registrar() -> SipDomain {
        let mut d = fixtures::domain("acme").build();
        d.spec.registrar = Some(
            serde_json::from_value(serde_json::json!({"kamailio": {"urls": ["http://k:5071/RPC"]}}))
                .expect("registrar"),
        );
        d
    }

    fn t(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).expect("time"))
    }

    fn cond<'a>(s: &'a SipDomainStatus, t: &str) -> [&'a str; 3] {
        let c = conditions::find(&s.conditions, t).expect("condition present");
        [c.status.as_str(), c.reason.as_str(), c.message.as_str()]
    }

    #[test]
    fn a_registrar_only_a_person_can_fix_stalls_the_domain() {
        let e = ResolveError::TokenSecretNotFound { name: "rpc".into() };
        let s = build_status(
            &with_registrar(),
            None,
            None,
            &Health::of_unresolved(&e),
            0,
            &t(1),
        );
        let [status, reason, message] = cond(&s, types::STALLED);
        assert_eq!((status, reason), ("True", reasons::REGISTRAR_TOKEN_NOT_FOUND));
        assert!(
            message.contains("spec.registrar.kamailio.tokenSecretRef"),
            "{message}"
        );
        assert_eq!(cond(&s, types::READY)[0], "False");
        assert_eq!(cond(&s, types::RECONCILING)[0], "False");
        assert_eq!(
            cond(&s, types::REGISTRAR_READY)[..2],
            ["False", reasons::REGISTRAR_TOKEN_NOT_FOUND][..]
        );
    }

    #[test]
    fn a_registrar_that_is_not_ready_yet_keeps_the_domain_reconciling() {
        let e = ResolveError::NoReadyEndpoints {
            namespace: "ns".into(),
            name: "kamailio".into(),
            port_name: "rpc".into(),
        };
        let s = build_status(
            &with_registrar(),
            None,
            None,
            &Health::of_unresolved(&e),
            0,
            &t(1),
        );
        assert_eq!(cond(&s, types::STALLED)[0], "False");
        assert_eq!(
            cond(&s, types::RECONCILING)[..2],
            ["True", reasons::REGISTRAR_ENDPOINTS_NOT_READY][..]
        );
        assert_eq!(
            cond(&s, types::READY)[..2],
            ["False", reasons::REGISTRAR_ENDPOINTS_NOT_READY][..]
        );

        let endpoints = [
            RegistrarEndpointStatus {
                address: "http://a/RPC".into(),
                ..Default::default()
            },
            RegistrarEndpointStatus {
                address: "http://b/RPC".into(),
                last_error: Some("registrar endpoint http://b/RPC is unreachable: refused".into()),
                ..Default::default()
            },
        ];
        let s = build_status(
            &with_registrar(),
            Some(&s),
            None,
            &Health::of_endpoints(&endpoints),
            0,
            &t(2),
        );
        let [status, reason, message] = cond(&s, types::RECONCILING);
        assert_eq!((status, reason), ("True", reasons::REGISTRAR_UNREACHABLE));
        assert!(
            message.contains("1 of 2") && message.contains("http://b/RPC"),
            "{message}"
        );

        // Healed: Ready, and back to an identical list on the next check.
        let healed = build_status(
            &with_registrar(),
            Some(&s),
            None,
            &Health::of_endpoints(&endpoints[..1]),
            0,
            &t(3),
        );
        assert_eq!(cond(&healed, types::READY)[..2], ["True", reasons::READY][..]);
        assert_eq!(
            cond(&healed, types::REGISTRAR_READY)[..2],
            ["True", reasons::REGISTRAR_ENDPOINTS_READY][..]
        );
        let again = build_status(
            &with_registrar(),
            Some(&healed),
            None,
            &Health::of_endpoints(&endpoints[..1]),
            0,
            &t(4),
        );
        assert_eq!(again, healed);
    }

    #[test]
    fn the_domain_s_own_problem_comes_first_and_no_registrar_is_unknown() {
        let problem = (reasons::DOMAIN_CONFLICT, "claimed by ns/older".to_string());
        let s = build_status(
            &with_registrar(),
            None,
            Some(&problem),
            &Health::NotChecked,
            0,
            &t(1),
        );
        assert_eq!(
            cond(&s, types::STALLED)[..2],
            ["True", reasons::DOMAIN_CONFLICT][..]
        );
        assert_eq!(
            cond(&s, types::REGISTRAR_READY)[..2],
            ["Unknown", reasons::REGISTRAR_NOT_CHECKED][..]
        );
        let plain = fixtures::domain("acme").build();
        let s = build_status(&plain, None, None, &Health::NotChecked, 0, &t(1));
        assert_eq!(cond(&s, types::READY)[0], "True");
        assert_eq!(
            cond(&s, types::REGISTRAR_READY)[..2],
            ["Unknown", reasons::NO_REGISTRAR_CONFIGURED][..]
        );
    }
}
