//! The SipUser reconciler: dereference (domain, profile from the caches) → validate (admission)
//! → credentials Secret → registrar → status, Events.
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, finalizer};
use kube::{Resource, ResourceExt};

use super::admission::Verdict;
use super::conditions::true_reason;
use super::reasons::types;
use super::user_status::{self, Facts, RegistrarState};
use super::{Context, Error, events, status_patch, user_credentials};
use crate::api::SipUser;
use crate::keys::REGISTRAR_CLEANUP_FINALIZER;

/// How often a healthy user is looked at again without any event (drift safety net).
const RESYNC: Duration = Duration::from_secs(3600);
/// Retry after a precondition failed on a stale cached copy.
const STALE_CACHE_RETRY: Duration = Duration::from_millis(500);

pub async fn reconcile(user: Arc<SipUser>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started("SipUser");
    let ns = user
        .namespace()
        .ok_or_else(|| Error::NotNamespaced(user.name_any()))?;
    let api: Api<SipUser> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, REGISTRAR_CLEANUP_FINALIZER, user.clone(), |event| async {
        match event {
            finalizer::Event::Apply(user) => apply(&user, &api, &ctx).await,
            finalizer::Event::Cleanup(user) => cleanup(&user, &ctx).await,
        }
    })
    .await;
    let result = match result {
        // The cache had not yet seen our own finalizer patch, so adding it again failed its
        // precondition: not a failure, the watch event with the finalizer is on its way.
        Err(finalizer::Error::AddFinalizer(kube::Error::Api(status)))
            if status.is_invalid() || status.is_conflict() =>
        {
            tracing::debug!(user = %user.name_any(), "finalizer already added; waiting for the cache");
            Ok(Action::requeue(STALE_CACHE_RETRY))
        }
        other => other.map_err(|e| Error::Finalizer(Box::new(e))),
    };
    if result.is_ok() {
        ctx.backoff.succeeded(&user.uid().unwrap_or_default());
    }
    result
}

async fn apply(user: &SipUser, api: &Api<SipUser>, ctx: &Context) -> Result<Action, Error> {
    ctx.stores.ready().await?;
    let ns = user.namespace().unwrap_or_default();
    let name = user.name_any();
    let admission = ctx.stores.admission(&ns, Some(user));
    let verdict = admission.users.get(&name).cloned().unwrap_or(Verdict::Admitted);
    let domain = ctx.stores.domain(&ns, &user.spec.domain_ref);

    let credentials = match (&verdict, &domain) {
        (Verdict::Admitted, Some(domain)) => Some(user_credentials::sync(user, domain, ctx).await?),
        _ => None,
    };
    let registrar = match (&domain, user.spec.enabled) {
        (_, false) => RegistrarState::Suspended,
        (Some(d), true) if d.spec.registrar.is_some() => RegistrarState::Unsupported,
        _ => RegistrarState::NotConfigured,
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
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let previous = user.status.as_ref();
    let desired = user_status::build(&facts, previous, &now);
    status_patch::apply_if_changed(api, user, previous, &desired).await?;

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
        change: Some(change),
        ..
    }) = &credentials
    {
        let (reason, note) = user_status::change_event(*change, secret_name);
        events::publish(ctx, user, EventType::Normal, reason, note).await;
    }
    record_metrics(ctx, user, &desired);
    Ok(Action::requeue(RESYNC))
}

fn record_metrics(ctx: &Context, user: &SipUser, status: &crate::api::SipUserStatus) {
    let status_of =
        |t| super::conditions::find(&status.conditions, t).map_or("Unknown", |c| c.status.as_str());
    let key = format!("{}/{}", user.namespace().unwrap_or_default(), user.name_any());
    ctx.metrics.record_object(
        "SipUser",
        &key,
        status_of(types::READY),
        status_of(types::STALLED),
    );
}

/// Removes the user from the registrar before the object goes. Without a registrar (or when
/// the user was never pushed) there is nothing to remove, so this is idempotent.
async fn cleanup(user: &SipUser, ctx: &Context) -> Result<Action, Error> {
    let key = format!("{}/{}", user.namespace().unwrap_or_default(), user.name_any());
    ctx.metrics.forget_object("SipUser", &key);
    tracing::info!(user = %key, "SipUser deleted; registrar cleanup has nothing to remove");
    Ok(Action::await_change())
}
