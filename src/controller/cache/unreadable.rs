//! What happens to an object the watches could not decode: it is skipped (the rest of its
//! kind goes on being reconciled) and named once per version in a log line, the
//! `invalid_object` error metric and a Warning Event on the object itself.
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};

use crate::controller::status::event_sink::EventSink;

use super::Unreadable;
use super::watches::OnUnreadable;
use crate::metrics::Metrics;
use crate::sync::lock;

/// Event reason (Warning) on an object the operator cannot read.
pub const UNREADABLE_OBJECT: &str = "UnreadableObject";

/// The reporter the watches call; the Event is published in the background (the watch does
/// not wait for the API server).
pub fn reporter(recorder: EventSink, metrics: Arc<Metrics>) -> OnUnreadable {
    // (uid, resourceVersion) already reported: a re-list must not repeat it.
    let reported: Arc<Mutex<HashSet<(String, String)>>> = Arc::default();
    Arc::new(move |kind, unreadable: &Unreadable| {
        let meta = &unreadable.metadata;
        let version = (
            meta.uid.clone().unwrap_or_default(),
            meta.resource_version.clone().unwrap_or_default(),
        );
        if !lock(&reported).insert(version) {
            return;
        }
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        tracing::warn!(
            kind,
            object = %format!("{namespace}/{name}"),
            error = %unreadable.error,
            "skipping an object that does not match the sip-operator API; fix or re-apply it"
        );
        metrics.reconcile_failed(kind, "invalid_object");
        let Some(uid) = meta.uid.clone() else { return };
        let reference = ObjectReference {
            api_version: Some(format!("{}/{}", crate::api::GROUP, crate::api::VERSION)),
            kind: Some(kind.to_string()),
            name: Some(name),
            namespace: Some(namespace),
            uid: Some(uid),
            ..Default::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: UNREADABLE_OBJECT.into(),
            note: Some(note(kind, &unreadable.error)),
            action: "Decode".into(),
            secondary: None,
        };
        let recorder = recorder.clone();
        tokio::spawn(async move {
            if let Err(err) = recorder.publish(&event, &reference).await {
                tracing::warn!(%err, "could not publish the UnreadableObject event");
            }
        });
    })
}

/// The Event note: what is wrong and what to do; bounded (Event notes hold at most 1 kB).
fn note(kind: &str, error: &str) -> String {
    let error: String = error.chars().take(600).collect();
    format!(
        "sip-operator cannot read this {kind} ({error}) and skips it until it changes; \
         re-apply it with fields matching the CRD (kubectl explain {})",
        kind.to_lowercase()
    )
}
