//! The four reconcilers and how they are wired: one watch per kind feeding a cache, the
//! cross-kind triggers (a user changes → its domain, profile and affected users; a domain or
//! profile changes → its users), metadata-only watches for Secrets.
mod admission;
mod cache;
mod context;
mod error;
mod feeds;
mod finalizer;
mod sip_domain;
mod sip_profile;
mod sip_user;
mod sip_user_invite;
mod status;

#[cfg(test)]
mod fixtures;

pub use cache::Stores;
pub use context::{Backoff, Context, Settings};
pub use error::Error;
pub use sip_user::ROTATION_HANDLED_ANNOTATION;
pub use status::event_sink::EventSink;
/// Condition types and reasons, part of the API (kept at this path for scripts and tests).
pub use status::reasons;

use std::future::Future;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};

use admission::healing;
use cache::{ServiceCaches, triggers, unreadable, watches};

use crate::api::{SipDomain, SipProfile, SipUser, SipUserInvite};
use crate::keys::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, managed_secrets_selector};
use crate::metrics::Metrics;
use crate::registrar_state::service::{ServicePorts, SliceEndpoints};
use crate::registrar_state::{Resolver, Tokens};
use crate::scope::Scope;

/// Reconciles at most this many objects at once per kind (two cores; API-bound work). 64
/// for users was measured at 10,000 users: no faster (the API server is the bound), and more
/// reconciles ran on a cache behind their own writes (4.46 writes per user against 4.13).
const CONCURRENCY: u16 = 16;

fn error_policy<K: Resource>(kind: &'static str) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action {
    move |obj, err, ctx| {
        ctx.metrics.reconcile_failed(kind, err.metric_label());
        let delay = ctx.backoff.failed(&obj.meta().uid.clone().unwrap_or_default());
        tracing::warn!(
            kind,
            object = %format!("{}/{}", obj.meta().namespace.as_deref().unwrap_or_default(), obj.meta().name.as_deref().unwrap_or_default()),
            error = %err,
            retry_in_s = delay.as_secs(),
            "reconcile failed"
        );
        Action::requeue(delay)
    }
}

/// Queues reconciles. Sending only fails once the controllers are gone (shutdown), when
/// dropping the request is right.
pub(crate) fn send_all<K: Resource>(
    tx: &mpsc::UnboundedSender<ObjectRef<K>>,
    refs: impl IntoIterator<Item = ObjectRef<K>>,
) {
    for r in refs {
        let _ = tx.unbounded_send(r);
    }
}

/// Runs the three controllers until `shutdown` resolves (then finishes in-flight reconciles).
pub async fn run(
    client: Client,
    scope: Scope,
    settings: Settings,
    metrics: Arc<Metrics>,
    reporter: Reporter,
    shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
) {
    let (synced_tx, synced) = tokio::sync::watch::channel(false);
    // Four kinds and the registrar Services and EndpointSlices, one watch per namespace each
    // (or one for all namespaces).
    let tracker = watches::sync_tracker(synced_tx, 6 * scope.apis::<SipUser>(&client).len());
    let recorder = status::event_sink::EventSink::new(client.clone(), reporter);
    let on_unreadable = unreadable::reporter(recorder.clone(), metrics.clone());
    let (users, user_stream) =
        watches::cached::<SipUser>(scope.apis(&client), &tracker, on_unreadable.clone());
    let (domains, domain_stream) =
        watches::cached::<SipDomain>(scope.apis(&client), &tracker, on_unreadable.clone());
    let (profiles, profile_stream) =
        watches::cached::<SipProfile>(scope.apis(&client), &tracker, on_unreadable.clone());
    let (invites, invite_stream) =
        watches::cached::<SipUserInvite>(scope.apis(&client), &tracker, on_unreadable);
    // Registrar Services and EndpointSlices, trimmed to what resolving reads, so that no
    // reconcile reads them from the API server.
    let (services, service_stream) = watches::cached_trimmed::<ServicePorts>(scope.apis(&client), &tracker);
    let (slices, slice_stream) = watches::cached_trimmed::<SliceEndpoints>(scope.apis(&client), &tracker);
    let service_caches = ServiceCaches::new(scope.clone(), services, slices);
    // Token Secrets are read once per version; the metadata-only watch below invalidates them.
    let tokens = Arc::new(Tokens::default());
    let stores = Stores {
        users: users.clone(),
        domains: domains.clone(),
        profiles: profiles.clone(),
        index: Default::default(),
        synced,
    };
    let (user_tx, user_rx) = mpsc::unbounded::<ObjectRef<SipUser>>();
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder,
        metrics,
        stores: stores.clone(),
        backoff: Backoff::default(),
        endpoints: Arc::new(Resolver::new(
            client.clone(),
            Arc::new(service_caches.clone()),
            tokens.clone(),
        )),
        memory: Default::default(),
        registrations: Default::default(),
        settings,
        secret_echoes: Default::default(),
        announced: Default::default(),
        status_written: Default::default(),
        resync_users: user_tx.clone(),
    });

    let (domain_tx, domain_rx) = mpsc::unbounded::<ObjectRef<SipDomain>>();
    let (profile_tx, profile_rx) = mpsc::unbounded::<ObjectRef<SipProfile>>();

    let recount = (healing::Pending::default(), healing::Pending::default());
    let sweeper = tokio::spawn(healing::run(
        stores.clone(),
        recount.clone(),
        healing::Queues {
            users: user_tx.clone(),
            domains: domain_tx.clone(),
            profiles: profile_tx.clone(),
        },
    ));
    // Each event updates the admission index and what the operator keeps per object, and
    // passes on only if the object's own reconcile reacts to it (see feeds.rs).
    // A user that appears or gets its credentials lets its waiting invites be issued.
    let (invite_tx, invite_rx) = mpsc::unbounded::<ObjectRef<SipUserInvite>>();
    let user_stream = {
        let mut feed = feeds::UserFeed::new(ctx.clone(), recount.clone());
        let invites = invites.clone();
        user_stream
            .inspect_ok(move |user| send_all(&invite_tx, sip_user_invite::of_user(&invites, user)))
            .try_filter(move |user| futures::future::ready(feed.observe(user)))
    };
    let domain_stream = {
        let mut feed = feeds::DomainFeed::new(ctx.clone(), user_tx.clone(), domain_tx.clone());
        domain_stream.try_filter(move |domain| futures::future::ready(feed.observe(domain)))
    };
    let profile_stream = {
        let mut feed = feeds::ProfileFeed::new(ctx.clone(), user_tx.clone());
        profile_stream.try_filter(move |profile| futures::future::ready(feed.observe(profile)))
    };

    // Api<PartialObjectMeta<_>> makes metadata-only requests: no Secret data in this process
    // beyond what a reconcile reads on purpose.
    let secret_watches = |labels: String| {
        let config = watcher::Config::default().labels(&labels);
        futures::stream::select_all(scope.apis::<PartialObjectMeta<Secret>>(&client).into_iter().map(
            move |api| {
                watcher(api, config.clone())
                    .default_backoff()
                    .touched_objects()
                    .boxed()
            },
        ))
    };
    // Our Secrets, metadata only and by label: deleting or editing one re-reconciles its owner.
    let owned_secrets = {
        let ctx = ctx.clone();
        secret_watches(managed_secrets_selector()).try_filter(move |s| {
            let key = format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any());
            let echo = ctx.secret_echoes.delivered(&key, s.resource_version().as_deref());
            futures::future::ready(!echo)
        })
    };
    // Everyone else's Secrets, metadata only: a change of an imported password source, or of
    // a SipDomain's registrar token (that domain is queued as well).
    let other_secrets = {
        let (stores, dtx) = (stores.clone(), domain_tx.clone());
        let tokens = tokens.clone();
        secret_watches(format!("{MANAGED_BY_LABEL}!={MANAGED_BY_VALUE}")).inspect_ok(move |s| {
            tokens.invalidate(&s.namespace().unwrap_or_default(), &s.name_any());
            send_all(
                &dtx,
                triggers::on_token_secret(s.namespace(), &s.name_any(), &stores),
            );
        })
    };

    let config = ControllerConfig::default().concurrency(CONCURRENCY);
    let user_controller = {
        let stores = stores.clone();
        Controller::for_stream(user_stream, users)
            .with_config(config.clone())
            .owns_stream(owned_secrets)
            .watches_stream(other_secrets, move |s| {
                let users = triggers::on_source_secret(s.namespace(), &s.name_any(), &stores);
                tracing::debug!(secret = %s.name_any(), users = users.len(), "a Secret the operator does not manage changed");
                users
            })
            .reconcile_on(user_rx)
            .graceful_shutdown_on(shutdown.clone())
            .run(sip_user::reconcile, error_policy("SipUser"), ctx.clone())
            .for_each(|_| async {})
    };
    // A registrar Service or its slices changed: the domains naming it check it again (a new
    // endpoint gets its users; a Service created late heals them).
    let slice_stream = {
        let caches = service_caches.clone();
        slice_stream.inspect_ok(move |slice| caches.observe_slice(slice))
    };
    let domain_controller = Controller::for_stream(domain_stream, domains)
        .with_config(config.clone())
        .watches_stream(service_stream, {
            let stores = stores.clone();
            move |svc| triggers::on_registrar_service(svc.namespace(), &svc.name_any(), &stores)
        })
        .watches_stream(slice_stream, {
            let stores = stores.clone();
            move |slice| match slice.service_name() {
                Some(service) => triggers::on_registrar_service(slice.namespace(), service, &stores),
                None => Vec::new(),
            }
        })
        .reconcile_on(domain_rx)
        .graceful_shutdown_on(shutdown.clone())
        .run(sip_domain::reconcile, error_policy("SipDomain"), ctx.clone())
        .for_each(|_| async {});
    let profile_controller = Controller::for_stream(profile_stream, profiles)
        .with_config(config.clone())
        .reconcile_on(profile_rx)
        .graceful_shutdown_on(shutdown.clone())
        .run(sip_profile::reconcile, error_policy("SipProfile"), ctx.clone())
        .for_each(|_| async {});
    let invite_controller = Controller::for_stream(invite_stream, invites)
        .with_config(config)
        .reconcile_on(invite_rx)
        .graceful_shutdown_on(shutdown)
        .run(sip_user_invite::reconcile, error_policy("SipUserInvite"), ctx)
        .for_each(|_| async {});
    futures::join!(
        user_controller,
        domain_controller,
        profile_controller,
        invite_controller
    );
    // The controllers dropped their receivers: the sweeper sees its channel closed and ends.
    drop(user_tx);
    let _ = sweeper.await;
}
