//! What each watch event of the three kinds does before it may queue a reconcile: it keeps
//! the admission index and the per-object memories current, queues the reconciles of other
//! objects it concerns (a domain's users, its rivals; the recounts), and says whether the
//! object's own reconcile reacts to it (not to its own status writes, its own finalizer's
//! arrival: see [`triggers::user_trigger`] and [`triggers::user_relevant`]).
use std::sync::Arc;

use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::admission::healing::Pending;
use super::cache::triggers::{self, Seen, UserTrigger};
use super::status::conditions;
use super::{Context, reasons, send_all};
use crate::api::{SipDomain, SipProfile, SipUser};

/// Drops what the operator keeps about an object that left its cache (deleted): its line in
/// `sip_operator_objects`, its backoff count and its write and announcement memories, so none
/// grows with every object ever seen.
fn forget<K: Resource<DynamicType = ()>>(ctx: &Context, kind: &'static str, obj: &K) {
    let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
    ctx.metrics.forget_object(kind, &key);
    let uid = obj.uid().unwrap_or_default();
    ctx.backoff.succeeded(&uid);
    ctx.status_written.forget(&uid);
    ctx.announced.forget(&uid);
}

/// Drops what the registrar side keeps about a deleted SipDomain: its registration view, and
/// (unless another SipDomain claims the same SIP domain) its markers and replay memory.
fn forget_registrar_state(ctx: &Context, domain: &SipDomain) {
    ctx.registrations
        .forget_view(&domain.namespace().unwrap_or_default(), &domain.name_any());
    let fqdn = &domain.spec.domain;
    if ctx.stores.domains.find(|d| d.spec.domain == *fqdn).is_none() {
        ctx.memory.forget_domain(fqdn);
        ctx.metrics.forget_domain(fqdn);
    }
}

/// SipUser events.
pub struct UserFeed {
    ctx: Arc<Context>,
    recount: (Pending<SipDomain>, Pending<SipProfile>),
    seen: Seen<UserTrigger>,
}

impl UserFeed {
    pub fn new(ctx: Arc<Context>, recount: (Pending<SipDomain>, Pending<SipProfile>)) -> Self {
        UserFeed {
            ctx,
            recount,
            seen: Seen::default(),
        }
    }

    /// Takes in one event; true when the user's own reconcile reacts to it.
    pub fn observe(&mut self, user: &SipUser) -> bool {
        let (ctx, stores) = (&self.ctx, &self.ctx.stores);
        let cached = stores.users.get(&ObjectRef::from_obj(user)).is_some();
        let uid = user.uid().unwrap_or_default();
        ctx.status_written
            .delivered(&uid, user.resource_version().as_deref());
        if cached {
            stores.admission().upsert_user(user);
        } else {
            let ns = user.namespace().unwrap_or_default();
            stores.admission().remove_user(&ns, &user.name_any());
            ctx.secret_echoes.forget(&format!("{ns}/{}", user.secret_name()));
            forget(ctx, "SipUser", user);
        }
        // Counts change with every user: recounted once per sweep, not once per event.
        let t = triggers::on_user(user, stores);
        self.recount.0.add(t.domains);
        self.recount.1.add(t.profiles);
        self.seen
            .changed(&uid, cached.then(|| triggers::user_trigger(user)))
    }
}

/// SipDomain events.
pub struct DomainFeed {
    ctx: Arc<Context>,
    users: UnboundedSender<ObjectRef<SipUser>>,
    domains: UnboundedSender<ObjectRef<SipDomain>>,
    seen: Seen,
}

impl DomainFeed {
    pub fn new(
        ctx: Arc<Context>,
        users: UnboundedSender<ObjectRef<SipUser>>,
        domains: UnboundedSender<ObjectRef<SipDomain>>,
    ) -> Self {
        DomainFeed {
            ctx,
            users,
            domains,
            seen: Seen::default(),
        }
    }

    /// Takes in one event; true when users care about it, and then the domain reconciles too
    /// (not after its own status writes).
    pub fn observe(&mut self, domain: &SipDomain) -> bool {
        let (ctx, stores) = (&self.ctx, &self.ctx.stores);
        let uid = domain.uid().unwrap_or_default();
        ctx.status_written
            .delivered(&uid, domain.resource_version().as_deref());
        let cached = stores.domains.get(&ObjectRef::from_obj(domain));
        let ns = domain.namespace().unwrap_or_default();
        stores
            .admission()
            .set_domain(&ns, &domain.name_any(), cached.clone());
        if cached.is_none() {
            forget(ctx, "SipDomain", domain);
            forget_registrar_state(ctx, domain);
        }
        let stalled = domain
            .status
            .as_ref()
            .and_then(|s| conditions::true_reason(&s.conditions, reasons::types::STALLED));
        let state = cached.is_some().then(|| triggers::user_relevant(domain, stalled));
        let changed = self.seen.changed(&uid, state);
        if changed {
            let (users, rivals) = triggers::on_domain(domain, stores);
            send_all(&self.users, users);
            send_all(&self.domains, rivals);
        }
        changed
    }
}

/// SipProfile events.
pub struct ProfileFeed {
    ctx: Arc<Context>,
    users: UnboundedSender<ObjectRef<SipUser>>,
    seen: Seen,
}

impl ProfileFeed {
    pub fn new(ctx: Arc<Context>, users: UnboundedSender<ObjectRef<SipUser>>) -> Self {
        ProfileFeed {
            ctx,
            users,
            seen: Seen::default(),
        }
    }

    /// Takes in one event; true when its users care about it (and the profile reconciles).
    pub fn observe(&mut self, profile: &SipProfile) -> bool {
        let (ctx, stores) = (&self.ctx, &self.ctx.stores);
        let uid = profile.uid().unwrap_or_default();
        ctx.status_written
            .delivered(&uid, profile.resource_version().as_deref());
        let cached = stores.profiles.get(&ObjectRef::from_obj(profile));
        let ns = profile.namespace().unwrap_or_default();
        stores
            .admission()
            .set_profile(&ns, &profile.name_any(), cached.as_deref());
        if cached.is_none() {
            forget(ctx, "SipProfile", profile);
        }
        let changed = self.seen.changed(
            &uid,
            cached.is_some().then(|| triggers::user_relevant(profile, None)),
        );
        if changed {
            send_all(&self.users, triggers::on_profile(profile, stores));
        }
        changed
    }
}
