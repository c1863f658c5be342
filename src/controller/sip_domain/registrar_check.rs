//! Keeps registrar endpoints whole and reads their registrations: each check reads the
//! operator's sync marker on every endpoint of a domain; an endpoint without it (a restarted
//! Kamailio lost its memory) or with another one gets a new marker and every user of the
//! domain is reconciled, which pushes it again. Then one bulk read of the live registrations
//! per endpoint. Two RPCs per endpoint per interval; no API write unless a status changes.
use std::collections::HashSet;

use futures::future::join_all;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use rand::RngExt;
use tracing::Instrument;

use crate::api::{Conditioned, RegistrarEndpointStatus, SipDomain, SipUser};
use crate::controller::Context;
use crate::controller::status::reasons::REGISTRAR_UNREACHABLE;
use crate::controller::status::reasons::types::REGISTRAR_SYNCED;
use crate::controller::status::registrar;
use crate::registrar::{Registrar, RegistrarError, UserEntry, UserKey};
use crate::registrar_state::Endpoint;
use crate::registrar_state::endpoints::ResolveError;
use crate::registrar_state::registration_view::View;

/// What one check of a domain's registrar found.
#[derive(Debug, Default)]
pub struct Check {
    /// The status entry of each endpoint.
    pub endpoints: Vec<RegistrarEndpointStatus>,
    /// Users with a registered device, when at least one endpoint could be read.
    pub registered_users: Option<i32>,
    /// The verdict for the domain's conditions.
    pub health: Health,
}

/// Where a domain stands with its registrar.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Health {
    /// No registrar named, or not checked (the domain is stalled for another reason).
    #[default]
    NotChecked,
    /// Every endpoint answered the check.
    Ready { endpoints: usize },
    /// Something that may pass by itself (no ready endpoint yet, an endpoint unreachable):
    /// retried at the next check.
    Transient { reason: &'static str, message: String },
    /// The spec cannot work as written: only a person can fix it.
    Invalid { reason: &'static str, message: String },
}

impl Health {
    /// The verdict for a registrar whose endpoints could not be resolved.
    pub fn of_unresolved(e: &ResolveError) -> Health {
        match registrar::stalled_reason(e) {
            Some(reason) => Health::Invalid {
                reason,
                message: e.to_string(),
            },
            None => Health::Transient {
                reason: registrar::transient_reason(e),
                message: format!("{e}; checked again every check interval"),
            },
        }
    }

    /// The verdict from the endpoints' status entries after a check.
    pub fn of_endpoints(endpoints: &[RegistrarEndpointStatus]) -> Health {
        let failed: Vec<&RegistrarEndpointStatus> =
            endpoints.iter().filter(|e| e.last_error.is_some()).collect();
        match failed.first() {
            None => Health::Ready {
                endpoints: endpoints.len(),
            },
            Some(first) => Health::Transient {
                reason: REGISTRAR_UNREACHABLE,
                message: format!(
                    "{} of {} registrar endpoint(s) failed the last check, e.g. {}; checked again every check interval \
                     (status.registrars[].lastError has each)",
                    failed.len(),
                    endpoints.len(),
                    first.last_error.as_deref().unwrap_or_default()
                ),
            },
        }
    }
}

/// Checks every endpoint of `domain`'s registrar: restart detection (and a full re-push
/// after one), then one bulk read of its registrations, merged into the domain's view; users
/// whose `status.registration` would change are queued for reconcile.
pub async fn check(domain: &SipDomain, previous: &[RegistrarEndpointStatus], ctx: &Context) -> Check {
    let endpoints = match ctx.endpoints.resolve(domain).await {
        Ok(None) => return Check::default(),
        Ok(Some(endpoints)) => endpoints,
        Err(e) => {
            let health = Health::of_unresolved(&e);
            return Check {
                endpoints: vec![RegistrarEndpointStatus {
                    address: "(unresolved)".into(),
                    last_error: Some(e.to_string()),
                    ..Default::default()
                }],
                registered_users: None,
                health,
            };
        }
    };
    let ns = domain.namespace().unwrap_or_default();
    let name = domain.name_any();
    let scan = ctx
        .registrations
        .scan_due(&ns, &name, ctx.settings.registrar_check_interval);
    // Between scans the count stands as last written.
    let synced_users = scan.then(|| {
        ctx.stores
            .domain_users(domain, |u| u.condition_status(REGISTRAR_SYNCED) == Some("True"))
            .len() as i32
    });
    // Domains sharing an endpoint read it once per interval between them.
    let fresh_for = ctx.settings.registrar_check_interval / 2;
    let first_check = ctx.memory.first_check(&domain.spec.domain);
    let (ns, name) = (&ns, &name);
    let fqdn = domain.spec.domain.as_str();
    let checks = endpoints.iter().map(|endpoint| {
        let span = tracing::info_span!(
            "registrar_check",
            namespace = %ns,
            name = %name,
            domain = fqdn,
            endpoint = endpoint.endpoint()
        );
        async move {
            let before = previous.iter().find(|p| p.address == endpoint.endpoint());
            let mut status = RegistrarEndpointStatus {
                address: endpoint.endpoint().to_string(),
                synced_users: synced_users.unwrap_or_else(|| before.map_or(0, |b| b.synced_users)),
                last_full_sync: before.and_then(|b| b.last_full_sync.clone()),
                last_error: None,
            };
            let ours = ctx.memory.marker(endpoint.endpoint(), fqdn);
            match endpoint.sync_marker(fqdn).await {
                Ok(Some(marker)) if ours.as_deref() == Some(marker.as_str()) => {}
                // A marker left before this process started (a restart, a new leader), on
                // its first check of the domain: the endpoint kept its users. (An endpoint
                // that shows up later may have missed pushes of this process: synced fully.) Every user is reconciled after a start and pushes
                // what this process does not know the endpoint holds, so a full sync would
                // only repeat that (and move lastFullSync: a status write per domain).
                Ok(Some(marker)) if first_check && !ctx.memory.seen(endpoint.endpoint(), fqdn) => {
                    let synced_at = before
                        .and_then(|b| b.last_full_sync.as_ref())
                        .map_or_else(crate::clock::now, |t| t.0);
                    ctx.memory
                        .adopt_marker(endpoint.endpoint(), fqdn, marker, synced_at);
                }
                Ok(found) => match full_sync(domain, endpoint, ctx).await {
                    Ok(()) => tracing::info!(
                        endpoint = endpoint.endpoint(),
                        domain = %format!("{ns}/{name}"),
                        restarted = found.is_none(),
                        "registrar endpoint needs every user again; re-pushed"
                    ),
                    Err(e) => status.last_error = Some(e.to_string()),
                },
                Err(e) => status.last_error = Some(e.to_string()),
            }
            if let Some(at) = ctx.memory.last_full_sync(endpoint.endpoint(), fqdn) {
                status.last_full_sync = Some(Time(at));
            }
            let dump = match ctx.registrations.read(endpoint, fresh_for).await {
                Ok(dump) => Some(dump),
                Err(e) => {
                    status.last_error.get_or_insert(e.to_string());
                    None
                }
            };
            let recovered = before.is_some_and(|b| b.last_error.is_some()) && status.last_error.is_none();
            (status, dump, recovered)
        }
        .instrument(span)
    });
    let results = join_all(checks).await;
    if results.iter().any(|(_, _, recovered)| *recovered) {
        // Users that failed against it (or wait to be deleted) need not sit out their backoff.
        // (Users never reconciled, or with a status write in flight, are on their way.)
        queue_users(domain, ctx, |u| {
            let settled =
                u.status.is_some() && ctx.status_written.pending(&u.uid().unwrap_or_default()).is_none();
            u.metadata.deletion_timestamp.is_some()
                || (settled && u.condition_status(REGISTRAR_SYNCED) != Some("True"))
        });
    }
    let (statuses, dumps): (Vec<_>, Vec<_>) = results.into_iter().map(|(s, d, _)| (s, d)).unzip();
    let dumps: Vec<_> = dumps.into_iter().flatten().collect();
    let registered_users = if dumps.is_empty() {
        // Nothing could be read: the last view stands, and so does the count.
        None
    } else {
        let view = ctx
            .registrations
            .set_view(ns, name, View::build(&domain.spec.domain, &dumps));
        ctx.metrics
            .record_auth_failures(&domain.spec.domain, view.failures_total(), view.blocked_sources());
        if scan {
            queue_changed_registrations(domain, &view, ctx);
        }
        Some(view.registered() as i32)
    };
    // Reads and clients no domain asked for in four intervals belong to endpoints that went.
    let unused_for = ctx.settings.registrar_check_interval.saturating_mul(4);
    ctx.registrations.prune(unused_for);
    ctx.memory.forget_endpoints(&ctx.endpoints.prune(unused_for));
    Check {
        health: Health::of_endpoints(&statuses),
        endpoints: statuses,
        registered_users,
    }
}

/// Queues the users of `domain` whose `status.registration` differs from what `view` says,
/// so that the user reconciler writes it (and nobody else).
fn queue_changed_registrations(domain: &SipDomain, view: &View, ctx: &Context) {
    let now = k8s_openapi::jiff::Timestamp::now();
    queue_users(domain, ctx, |u| {
        // A user whose status write the cache does not show yet was just reconciled with a
        // view at most one interval old; the next check compares it again.
        if ctx.status_written.pending(&u.uid().unwrap_or_default()).is_some() {
            return false;
        }
        // Not reconciled yet, or a reconcile of a newer spec is due: that reconcile reads
        // the view anyway (queueing it again would run it twice, the second time on a cache
        // that does not show the first one's writes yet).
        let status = u.status.as_ref();
        if status.is_none_or(|s| s.observed_generation != u.metadata.generation) {
            return false;
        }
        let current = u.status.as_ref().and_then(|s| s.registration.as_ref());
        // Most users have no device now and had none: nothing to summarize.
        let fqdn = domain.spec.domain.as_str();
        let aors: Vec<String> = std::iter::once(u.username())
            .chain(u.spec.aliases.iter().map(String::as_str))
            .map(|name| UserKey::new(name, fqdn).key())
            .collect();
        // Nor any failed authentication now or in the status (also most users).
        let failed = view.failures(&aors[0]).is_some()
            || status.is_some_and(|s| s.security.as_ref().is_some_and(|s| s.failures != 0));
        if current.is_some_and(|r| r.contacts == 0) && view.none_on(&aors) && !failed {
            return false;
        }
        let graces = crate::registrar_state::registration_view::Graces::in_status(u.username(), status, now);
        view.observed(u, fqdn, now, &graces)
            .differs_from(u.status.as_ref())
    });
}

/// The users of `domain` (this SipDomain object) that `pick` selects, queued for reconcile.
fn queue_users(domain: &SipDomain, ctx: &Context, pick: impl Fn(&SipUser) -> bool) {
    for user in ctx.stores.domain_users(domain, pick) {
        let _ = ctx
            .resync_users
            .unbounded_send(ObjectRef::from_obj(user.as_ref()));
    }
}

/// Pushes every user of the domain to an endpoint that lost them, and leaves a new marker.
/// Users whose current entry this operator pushed (admitted, enabled, synced, not being
/// deleted) go in one batch from memory; the others through their reconcile, queued first so
/// that a failing batch cannot lose them. The marker goes before the batch (a restart during
/// it is noticed next time) and is forgotten when the batch fails (the next check retries).
#[tracing::instrument(name = "registrar_full_sync", skip_all)]
async fn full_sync(domain: &SipDomain, endpoint: &Endpoint, ctx: &Context) -> Result<(), RegistrarError> {
    let fqdn = domain.spec.domain.as_str();
    let pushed = ctx.memory.pushed_in(fqdn);
    let current = |u: &SipUser| {
        u.spec.enabled
            && u.metadata.deletion_timestamp.is_none()
            && u.condition_status(REGISTRAR_SYNCED) == Some("True")
    };
    let key_of = |u: &SipUser| UserKey::new(u.username(), fqdn).key();
    let batch: Vec<UserEntry> = ctx
        .stores
        .domain_users(domain, current)
        .iter()
        .filter_map(|u| pushed.get(&key_of(u)).cloned())
        .collect();
    let in_batch: HashSet<String> = batch.iter().map(|e| e.key.key()).collect();
    // Before the users go: a queued reconcile must not take the old marker for proof that
    // the endpoint holds its entry (it lost it).
    ctx.memory.set_marker(endpoint.endpoint(), fqdn, None);
    queue_users(domain, ctx, |u| !in_batch.contains(&key_of(u)));

    let marker: String = {
        let mut rng = rand::rng();
        (0..16)
            .map(|_| format!("{:x}", rng.random_range(0..16u8)))
            .collect()
    };
    endpoint.set_sync_marker(fqdn, &marker).await?;
    ctx.memory
        .set_marker(endpoint.endpoint(), fqdn, Some(marker.clone()));
    let pushed_all = async {
        let held = held_of(&batch, endpoint.upsert(&batch).await, endpoint.endpoint())?;
        ctx.memory
            .held_after_full_sync(&held, endpoint.endpoint(), &marker);
        // Reconciles during the batch may have removed a user or changed its entry (a
        // suspension, a rotation): the endpoint follows them.
        let now = ctx.memory.pushed_in(fqdn);
        let gone: Vec<UserKey> = batch
            .iter()
            .filter(|e| !now.contains_key(&e.key.key()))
            .map(|e| e.key.clone())
            .collect();
        let changed: Vec<UserEntry> = batch
            .iter()
            .filter_map(|e| now.get(&e.key.key()).filter(|n| *n != e).cloned())
            .collect();
        endpoint.remove(&gone).await?;
        let held = held_of(&changed, endpoint.upsert(&changed).await, endpoint.endpoint())?;
        ctx.memory
            .held_after_full_sync(&held, endpoint.endpoint(), &marker);
        Ok(())
    }
    .await;
    if pushed_all.is_err() {
        ctx.memory.set_marker(endpoint.endpoint(), fqdn, None);
    }
    pushed_all
}

/// The entries of `batch` the endpoint holds after `result`. Users it cannot hold (e.g. users
/// with devices on a config without the `devices` htable) are left out: their own reconciles
/// push them again and report why that fails, while the others count as synced (so the
/// sync marker stays and the domain is not re-synced on every check).
fn held_of(
    batch: &[UserEntry],
    result: Result<(), RegistrarError>,
    endpoint: &str,
) -> Result<Vec<UserEntry>, RegistrarError> {
    let rejected: HashSet<UserKey> = match result {
        Ok(()) => HashSet::new(),
        Err(RegistrarError::PartlyRejected { users, error }) => {
            tracing::warn!(endpoint, users = users.len(), error = %error, "full sync left users out");
            users.into_iter().collect()
        }
        Err(e) => return Err(e),
    };
    Ok(batch
        .iter()
        .filter(|e| !rejected.contains(&e.key))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_sync_holds_all_but_the_users_the_endpoint_refused() {
        let batch: Vec<UserEntry> = ["alice", "bob"]
            .iter()
            .map(|u| crate::registrar::fake::entry(u, "acme.example.com", "acme.example.com"))
            .collect();
        let refused = RegistrarError::Rejected {
            endpoint: "http://a/RPC".into(),
            method: "htable.sets".into(),
            reason: "no devices htable".into(),
        };
        let partly = RegistrarError::PartlyRejected {
            users: vec![UserKey::new("bob", "acme.example.com")],
            error: Box::new(refused.clone()),
        };
        let held = held_of(&batch, Err(partly), "http://a/RPC").expect("the others are held");
        assert_eq!(
            held.iter().map(|e| e.key.username.as_str()).collect::<Vec<_>>(),
            ["alice"]
        );
        assert_eq!(held_of(&batch, Ok(()), "http://a/RPC").expect("all").len(), 2);
        assert!(held_of(&batch, Err(refused), "http://a/RPC").is_err());
    }
}
