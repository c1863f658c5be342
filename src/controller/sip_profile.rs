//! The SipProfile reconciler: reports admitted users against the capacity.
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::status::conditions::{self, Status, Want};
use super::status::patch as status_patch;
use super::status::reasons::{self, types};
use super::{Context, Error};
use crate::api::{SipProfile, SipProfileStatus};

/// Reconciles one SipProfile: its status says how many admitted users take its seats.
#[tracing::instrument(
    name = "reconcile_profile",
    skip_all,
    fields(namespace = profile.namespace().unwrap_or_default(), name = profile.name_any())
)]
pub async fn reconcile(profile: Arc<SipProfile>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started("SipProfile");
    let ns = profile
        .namespace()
        .ok_or_else(|| Error::NotNamespaced(profile.name_any()))?;
    ctx.stores.ready().await?;
    let name = profile.name_any();
    let users = ctx.stores.admission().profile_seats(&ns, &name);

    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let previous = profile.status.as_ref();
    let desired = build_status(&profile, previous, users, &now);
    status_patch::apply_if_changed(
        &ctx.client,
        &ctx.status_written,
        profile.as_ref(),
        previous,
        &desired,
    )
    .await?;
    // A profile deleted while this reconcile ran has left the gauge (`forget`): not back in.
    let cached = ctx
        .stores
        .profiles
        .get(&kube::runtime::reflector::ObjectRef::new(&name).within(&ns));
    if cached.is_some_and(|p| p.uid() == profile.uid()) {
        ctx.metrics
            .record_object("SipProfile", &format!("{ns}/{name}"), "True", "False");
    }
    ctx.backoff.succeeded(&profile.uid().unwrap_or_default());
    Ok(Action::await_change())
}

/// The SipProfile status, pure.
pub fn build_status(
    profile: &SipProfile,
    previous: Option<&SipProfileStatus>,
    users: i32,
    now: &Time,
) -> SipProfileStatus {
    let previous = previous.cloned().unwrap_or_default();
    let usage = match profile.spec.capacity {
        Some(capacity) => format!("{users} of {capacity} seats used"),
        None => format!("{users} users, no capacity limit"),
    };
    let wanted = [
        Want::new(types::READY, Status::True, reasons::READY, usage),
        Want::new(types::RECONCILING, Status::False, reasons::NOT_RECONCILING, ""),
        Want::new(types::STALLED, Status::False, reasons::NOT_STALLED, ""),
    ];
    let generation = profile.meta().generation;
    SipProfileStatus {
        observed_generation: generation,
        conditions: conditions::merge(&previous.conditions, &wanted, generation, now),
        users: Some(users),
        capacity: profile.spec.capacity,
    }
}
