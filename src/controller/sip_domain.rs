//! The SipDomain reconciler: cluster-wide FQDN conflicts, a valid extension pattern, and the
//! count of admitted users.
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::admission::{domain_conflicts, domain_problem};
use super::conditions::{self, Status, Want, true_reason};
use super::reasons::{self, types};
use super::{Context, Error, events, registrar_sync, status_patch};
use crate::api::{SipDomain, SipDomainStatus};

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
    let users = ctx
        .stores
        .admission(&ns, None)
        .domain_users
        .get(&name)
        .copied()
        .unwrap_or(0);

    let previous = domain.status.as_ref();
    // A stalled domain pushes nothing; otherwise check that its registrar endpoints are whole.
    let check = match problem {
        None => registrar_sync::check(&domain, previous.map_or(&[][..], |s| &s.registrars), &ctx).await,
        Some(_) => Default::default(),
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut desired = build_status(&domain, previous, problem.as_ref(), users, &now);
    desired.registered_users = match (&domain.spec.registrar, &problem) {
        (Some(_), None) => check.registered_users.or(desired.registered_users),
        _ => None,
    };
    desired.registrars = check.endpoints;
    status_patch::apply_if_changed(&ctx.client, domain.as_ref(), previous, &desired).await?;

    let previous_stalled = previous.and_then(|s| true_reason(&s.conditions, types::STALLED));
    events::on_stalled(
        &ctx,
        domain.as_ref(),
        previous_stalled,
        problem.as_ref().map(|(r, m)| (*r, m.as_str())),
    )
    .await;
    let status_of = |t| conditions::find(&desired.conditions, t).map_or("Unknown", |c| c.status.as_str());
    ctx.metrics.record_object(
        "SipDomain",
        &format!("{ns}/{name}"),
        status_of(types::READY),
        status_of(types::STALLED),
    );
    ctx.backoff.succeeded(&domain.uid().unwrap_or_default());
    if domain.spec.registrar.is_some() {
        // The next registrar check (restart detection).
        return Ok(Action::requeue(ctx.settings.registrar_check_interval));
    }
    Ok(Action::await_change())
}

/// The SipDomain status, pure. Registrar fields carry over (the registrar step owns them).
pub fn build_status(
    domain: &SipDomain,
    previous: Option<&SipDomainStatus>,
    problem: Option<&(&'static str, String)>,
    users: i32,
    now: &Time,
) -> SipDomainStatus {
    let previous = previous.cloned().unwrap_or_default();
    let wanted = match problem {
        Some((reason, message)) => vec![
            Want::new(types::READY, Status::False, reason, message.clone()),
            Want::new(types::RECONCILING, Status::False, reasons::NOT_RECONCILING, ""),
            Want::new(types::STALLED, Status::True, reason, message.clone()),
        ],
        None => vec![
            Want::new(
                types::READY,
                Status::True,
                reasons::READY,
                format!("domain {} is served", domain.spec.domain),
            ),
            Want::new(types::RECONCILING, Status::False, reasons::NOT_RECONCILING, ""),
            Want::new(types::STALLED, Status::False, reasons::NOT_STALLED, ""),
        ],
    };
    let generation = domain.meta().generation;
    SipDomainStatus {
        observed_generation: generation,
        conditions: conditions::merge(&previous.conditions, &wanted, generation, now),
        users: Some(users),
        registered_users: previous.registered_users,
        registrars: previous.registrars,
    }
}
