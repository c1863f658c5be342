//! Kubernetes Events on our objects: only on changes a person cares about (credentials
//! created or rotated, a new stalled reason), never per reconcile. Notes never hold secrets.
use kube::Resource;
use kube::runtime::events::{Event, EventType};

use crate::controller::Context;

/// Publishes an Event regarding `obj`; a failure is logged, not fatal (events are best effort).
pub async fn publish<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(%err, reason, "could not publish event");
    }
}

/// A Warning Event when the object newly became stalled, or stalled for another reason.
pub async fn on_stalled<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    previous_reason: Option<&str>,
    now: Option<(&'static str, &str)>,
) {
    if let Some((reason, message)) = now
        && previous_reason != Some(reason)
    {
        publish(ctx, obj, EventType::Warning, reason, message.to_string()).await;
    }
}
