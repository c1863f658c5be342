//! Kubernetes Events on our objects: only on changes a person cares about (credentials
//! created or rotated, a new stalled reason), never per reconcile. Notes never hold secrets.
use std::collections::HashMap;
use std::sync::Mutex;

use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use crate::controller::Context;
use crate::sync::lock;

/// What an announcement is about: one of each is in force per object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// The object's current Stalled reason.
    Stalled,
    /// The first password written to its Secret.
    CredentialsCreated,
}

/// What this process announced per object UID and topic. A reconcile can run on a cached copy
/// that does not show our last status write yet; its status then looks as if nothing had been
/// announced, and this memory keeps it from announcing the same thing twice.
#[derive(Default)]
pub struct Announced {
    topics: Mutex<HashMap<(String, Topic), &'static str>>,
    /// Devices (object UID, device name) whose first password this process announced.
    devices: Mutex<std::collections::HashSet<(String, String)>>,
}

impl Announced {
    /// Records `reason` for `uid` and `topic`; false when it was already the announced one.
    fn first(&self, uid: &str, topic: Topic, reason: &'static str) -> bool {
        lock(&self.topics).insert((uid.to_string(), topic), reason) != Some(reason)
    }

    /// The topic is no longer in force (e.g. the object is not stalled any more).
    fn clear(&self, uid: &str, topic: Topic) {
        lock(&self.topics).remove(&(uid.to_string(), topic));
    }

    /// Records the first password of device `device` of `uid`; false when it was announced.
    fn first_device(&self, uid: &str, device: &str) -> bool {
        lock(&self.devices).insert((uid.to_string(), device.to_string()))
    }

    /// Device `device` of `uid` was removed: added again, it gets a new first password.
    pub fn forget_device(&self, uid: &str, device: &str) {
        lock(&self.devices).remove(&(uid.to_string(), device.to_string()));
    }

    /// Forgets an object that is gone.
    pub fn forget(&self, uid: &str) {
        let mut known = lock(&self.topics);
        for topic in [Topic::Stalled, Topic::CredentialsCreated] {
            known.remove(&(uid.to_string(), topic));
        }
        lock(&self.devices).retain(|(u, _)| u != uid);
    }
}

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
    let uid = obj.uid().unwrap_or_default();
    match now {
        Some((reason, message)) => {
            if previous_reason != Some(reason) && ctx.announced.first(&uid, Topic::Stalled, reason) {
                publish(ctx, obj, EventType::Warning, reason, message.to_string()).await;
            }
        }
        None => ctx.announced.clear(&uid, Topic::Stalled),
    }
}

/// An Event for a new password, unless this process announced the first one already (a
/// rotation or an import is announced each time it happens).
pub async fn on_password<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    first: bool,
    reason: &'static str,
    note: String,
) {
    let uid = obj.uid().unwrap_or_default();
    if !first || ctx.announced.first(&uid, Topic::CredentialsCreated, reason) {
        publish(ctx, obj, EventType::Normal, reason, note).await;
    }
}

/// An Event for a device's new password: its first one once per process (as
/// [`on_password`]), each rotation each time.
pub async fn on_device_password<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    device: &str,
    first: bool,
    reason: &'static str,
    note: String,
) {
    let uid = obj.uid().unwrap_or_default();
    if !first || ctx.announced.first_device(&uid, device) {
        publish(ctx, obj, EventType::Normal, reason, note).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_is_announced_once_until_it_is_cleared() {
        let a = Announced::default();
        assert!(a.first("u", Topic::Stalled, "DomainNotFound"));
        assert!(!a.first("u", Topic::Stalled, "DomainNotFound"), "a stale copy");
        assert!(a.first("u", Topic::Stalled, "ProfileNotFound"), "a new reason");
        assert!(
            a.first("u", Topic::CredentialsCreated, "CredentialsCreated"),
            "topics apart"
        );
        a.clear("u", Topic::Stalled);
        assert!(a.first("u", Topic::Stalled, "ProfileNotFound"), "stalled again");
        a.forget("u");
        assert!(a.first("u", Topic::CredentialsCreated, "CredentialsCreated"));

        assert!(a.first_device("u", "desk"));
        assert!(!a.first_device("u", "desk"), "a stale copy");
        assert!(a.first_device("u", "soft"), "devices apart");
        a.forget_device("u", "desk");
        assert!(a.first_device("u", "desk"), "removed and added again");
        a.forget("u");
        assert!(a.first_device("u", "soft"));
    }
}
