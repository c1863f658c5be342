//! The SipUser reconciler: dereference (domain, profile from the caches) → validate (admission)
//! → credentials Secret → registrar → status, Events.
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

mod credentials;
mod registrar;
mod status;

pub use credentials::ROTATION_HANDLED_ANNOTATION;

use self::credentials as user_credentials;
use self::registrar::{self as user_registrar, Intent, Registrars};
use self::status::{self as user_status, Facts, RegistrarState};
use super::admission::Verdict;
use super::cache::Lean;
use super::finalizer::{self, Phase};
use super::status::conditions::{self, true_reason};
use super::status::reasons::events::{AUTHENTICATION_FAILURES, CHOSEN_PASSWORD_DISCARDED};
use super::status::reasons::types;
use super::status::{events, patch as status_patch};
use super::{Context, Error};
use crate::api::SipUser;
use crate::keys::{REGISTRAR_CLEANUP_FINALIZER, SKIP_CLEANUP_ANNOTATION};
use crate::registrar::UserKey;
use crate::registrar_state::registration_view::Graces;
use kube::runtime::reflector::ObjectRef;

/// How often a healthy user is looked at again without any event (drift safety net).
const RESYNC: Duration = Duration::from_secs(3600);
/// Retry after a precondition failed on a stale cached copy.
const STALE_CACHE_RETRY: Duration = Duration::from_millis(500);

/// Reconciles one SipUser (see the module docs for the steps); the deletion path removes it
/// from the registrar before its finalizer goes.
#[tracing::instrument(
    name = "reconcile_user",
    skip_all,
    fields(namespace = user.namespace().unwrap_or_default(), name = user.name_any(), domain = user.spec.domain_ref)
)]
pub async fn reconcile(user: Arc<SipUser>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started("SipUser");
    let ns = user
        .namespace()
        .ok_or_else(|| Error::NotNamespaced(user.name_any()))?;
    // Cleanup too needs whole caches: on a partial one a domain looks missing and the
    // registrar entry would be left behind.
    ctx.stores.ready().await?;
    let api: Api<Lean<SipUser>> = Api::namespaced(ctx.client.clone(), &ns);
    match finalizer::phase(user.as_ref(), REGISTRAR_CLEANUP_FINALIZER) {
        Phase::Live => apply(&user, &ctx).await,
        Phase::Unclaimed => {
            match finalizer::add(&api, &user, REGISTRAR_CLEANUP_FINALIZER).await {
                Ok(()) => {}
                // The cache had not yet seen our own finalizer patch, so the patch's test
                // failed: not a failure, the watch event with the finalizer is on its way.
                Err(e) if finalizer::is_stale_copy(&e) => {
                    tracing::debug!(user = %user.name_any(), "finalizer already added; waiting for the cache");
                    return Ok(Action::requeue(STALE_CACHE_RETRY));
                }
                Err(source) => {
                    return Err(Error::Finalizer {
                        action: "adding",
                        source,
                    });
                }
            }
            // Go on in the same pass (the finalizer is on the server now) rather than
            // waiting for the watch event of our own patch.
            apply(&user, &ctx).await
        }
        Phase::Cleanup => {
            let action = cleanup(&user, &ctx).await?;
            match finalizer::remove(&api, &user, REGISTRAR_CLEANUP_FINALIZER).await {
                Ok(()) => Ok(action),
                // A queued reconcile ran on a cached copy that still had the finalizer after
                // the object was gone (its cleanup is idempotent): nothing is left to do.
                Err(kube::Error::Api(status)) if status.is_not_found() => {
                    tracing::debug!(user = %user.name_any(), "already gone when its finalizer was removed");
                    Ok(Action::await_change())
                }
                Err(e) if finalizer::is_stale_copy(&e) => Ok(Action::requeue(STALE_CACHE_RETRY)),
                Err(source) => Err(Error::Finalizer {
                    action: "removing",
                    source,
                }),
            }
        }
        Phase::Released => Ok(Action::await_change()),
    }
}

async fn apply(user: &SipUser, ctx: &Context) -> Result<Action, Error> {
    let ns = user.namespace().unwrap_or_default();
    let verdict = ctx.stores.admission().verdict(user);
    let domain = ctx.stores.domain(&ns, &user.spec.domain_ref);

    let (credentials, passwords) = match (&verdict, &domain) {
        (Verdict::Admitted, Some(domain)) => {
            let (outcome, passwords) = user_credentials::sync(user, domain, ctx).await;
            (Some(outcome), passwords)
        }
        _ => (None, None),
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    // The domain's live registrations, for the status and for the push (which drops contacts
    // of revoked credentials).
    let view = domain
        .as_ref()
        .and_then(|d| ctx.registrations.view(&ns, &d.name_any()));
    let registrar = match &domain {
        Some(domain) if domain.spec.registrar.is_some() => {
            let profile = user
                .profile_name(Some(domain))
                .and_then(|p| ctx.stores.profiles.get(&ObjectRef::new(p).within(&ns)));
            let intent = match (&passwords, user.spec.enabled) {
                // An admitted user with credentials in place: the registrar must hold it.
                (Some(passwords), true) => Intent::Push {
                    passwords,
                    profile: profile.as_deref(),
                    registrations: view.as_deref().map(|v| (v, now.0)),
                },
                // Suspended, not admitted, or without usable credentials: it must not —
                // unless the key is another user's (a username or domain conflict loser
                // must never delete the winner's entry).
                _ if key_held_by_another(user, ctx) => Intent::Leave,
                // The Secret could not be read or written just now: what the registrar holds
                // stays (an API outage must not cut off every phone).
                _ if user.spec.enabled
                    && credentials.as_ref().is_some_and(user_credentials::Outcome::retry) =>
                {
                    Intent::Keep
                }
                _ => Intent::Remove,
            };
            user_registrar::sync(user, domain, intent, Registrars::of(ctx)).await
        }
        _ if !user.spec.enabled => RegistrarState::Suspended,
        _ => RegistrarState::NotConfigured,
    };
    // Status says why; these are tried again later, backing off per user.
    let retry = matches!(registrar, RegistrarState::Failed(_))
        || credentials.as_ref().is_some_and(user_credentials::Outcome::retry);

    let previous = user.status.as_ref();
    let graces = match &passwords {
        Some(p) => p.graces(user.username()),
        None => Graces::in_status(user.username(), previous, now.0),
    };
    let observed = domain
        .as_ref()
        .zip(view.as_ref())
        .map(|(d, view)| view.observed(user, &d.spec.domain, now.0, &graces));
    let (registration, device_contacts, device_previous_contacts, failures) = match observed {
        Some(o) => (
            Some(o.registration),
            Some(o.devices),
            Some(o.previous_password_devices),
            Some(o.failures),
        ),
        None => (None, None, None, None),
    };
    let facts = Facts {
        generation: user.meta().generation,
        enabled: user.spec.enabled,
        username: user.username(),
        profile: user.profile_name(domain.as_deref()),
        aor: domain
            .as_ref()
            .map(|d| crate::credentials::aor(user.username(), &d.spec.domain)),
        verdict: &verdict,
        credentials: credentials.as_ref(),
        registrar,
        registration,
        devices: &user.spec.devices,
        device_contacts,
        device_previous_contacts,
        failures,
    };
    let desired = user_status::build(&facts, previous, &now);

    // Events go out before the status that records what they announce: a process that dies
    // in between publishes them again on its next reconcile (at least once), never not at all.
    let stalled = user_status::stalled(&facts);
    let previous_stalled = previous.and_then(|s| true_reason(&s.conditions, types::STALLED));
    events::on_stalled(
        ctx,
        user,
        previous_stalled,
        stalled.as_ref().map(|(r, m)| (*r, m.as_str())),
    )
    .await;
    if let Some(user_credentials::Outcome::Ready {
        secret_name,
        change,
        devices,
        discarded_choice,
        ..
    }) = &credentials
    {
        if let Some(why) = discarded_choice {
            let note = format!(
                "a password the end user chose on a SipUserInvite's page was not used: {why}; the password in Secret {secret_name} stays. Issue a new invite if they should choose again"
            );
            events::publish(ctx, user, EventType::Warning, CHOSEN_PASSWORD_DISCARDED, note).await;
        }
        if let Some(change) = change {
            let (reason, note) = user_status::change_event(*change, secret_name);
            let first = *change == user_credentials::PasswordChange::Created;
            events::on_password(ctx, user, first, reason, note).await;
        }
        for device in devices {
            if let Some(change) = device.change {
                let (reason, note) = user_status::device_change_event(change, &device.name, secret_name);
                let first = change == user_credentials::PasswordChange::Created;
                events::on_device_password(ctx, user, &device.name, first, reason, note).await;
            }
        }
    }
    if let Some(note) = user_status::auth_failure_event(
        previous.and_then(|s| s.security.as_ref()),
        desired.security.as_ref(),
        ctx.settings.auth_failure_warning_threshold,
    ) {
        events::publish(ctx, user, EventType::Warning, AUTHENTICATION_FAILURES, note).await;
    }
    status_patch::apply_if_changed(&ctx.client, &ctx.status_written, user, previous, &desired).await?;
    record_metrics(ctx, user, &desired);
    let uid = user.uid().unwrap_or_default();
    if retry {
        return Ok(Action::requeue(ctx.backoff.failed(&uid)));
    }
    ctx.backoff.succeeded(&uid);
    // A grace period's end takes the previous password away (from the Secret, the registrar,
    // and the contacts still on it): the reconcile after it does that. Without this
    // reconcile's passwords (not admitted, no domain) the deadlines recorded in the status
    // still need their reconcile, to clear them there (a deadline already past: in a second).
    let deadlines = match &passwords {
        Some(p) => p.deadlines().collect(),
        None => user_status::deadlines_in(Some(&desired)),
    };
    let grace_ends = crate::rotation::until_earliest(deadlines, now.0.as_second());
    Ok(Action::requeue(grace_ends.map_or(RESYNC, |d| d.min(RESYNC))))
}

fn record_metrics(ctx: &Context, user: &SipUser, status: &crate::api::SipUserStatus) {
    let status_of = |t| conditions::find(&status.conditions, t).map_or("Unknown", |c| c.status.as_str());
    let key = format!("{}/{}", user.namespace().unwrap_or_default(), user.name_any());
    ctx.metrics.record_object(
        "SipUser",
        &key,
        status_of(types::READY),
        status_of(types::STALLED),
    );
}

/// Whether the registrar key `username@domain` of `user` belongs to someone else: another
/// admitted user of the domain with the same username, or a winning SipDomain elsewhere with
/// the same FQDN (this user's domain lost the claim).
fn key_held_by_another(user: &SipUser, ctx: &Context) -> bool {
    ctx.stores.admission().key_held_by_another(user)
}

/// Removes the user from every registrar endpoint before the object goes. Idempotent, and
/// fine for a user that was never pushed. If the registrar stays unreachable the deletion
/// waits (retried with backoff); the annotation [`SKIP_CLEANUP_ANNOTATION`] lets it go anyway.
async fn cleanup(user: &SipUser, ctx: &Context) -> Result<Action, Error> {
    let ns = user.namespace().unwrap_or_default();
    let key = format!("{ns}/{}", user.name_any());
    let skip = user
        .annotations()
        .get(SKIP_CLEANUP_ANNOTATION)
        .is_some_and(|v| v == "true");
    match ctx.stores.domain(&ns, &user.spec.domain_ref) {
        Some(domain) if domain.spec.registrar.is_some() && skip && !key_held_by_another(user, ctx) => {
            // Not removed from the registrar, but never pushed again by a full sync either.
            ctx.memory
                .forget(&UserKey::new(user.username(), &domain.spec.domain));
            tracing::info!(user = %key, "deleted without the registrar cleanup, as annotated");
        }
        Some(domain) if domain.spec.registrar.is_some() && !skip && !key_held_by_another(user, ctx) => {
            if let RegistrarState::Failed(error) =
                user_registrar::sync(user, &domain, Intent::Remove, Registrars::of(ctx)).await
            {
                return Err(Error::RegistrarCleanup(error));
            }
            tracing::info!(user = %key, "removed from the registrar");
        }
        _ => tracing::info!(user = %key, skipped = skip, "deleted; nothing to remove from a registrar"),
    }
    ctx.metrics.forget_object("SipUser", &key);
    Ok(Action::await_change())
}
