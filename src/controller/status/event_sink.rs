//! Publishes `events.k8s.io/v1` Events without a cache.
//!
//! kube's `Recorder` keeps every Event it published for six minutes, to count repeats into a
//! series, and walks that whole cache under one write lock on every publish. Provisioning N
//! users publishes N `CredentialsCreated` Events, which made that O(N²) CPU and N Events in
//! memory. The operator publishes an Event only when something changed (and deduplicates the
//! ones that could repeat itself), so it needs no series: each Event is one create.
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};

/// Where Events go, and who they say reported them.
#[derive(Clone)]
pub struct EventSink {
    client: Client,
    reporter: Reporter,
}

impl EventSink {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        EventSink { client, reporter }
    }

    /// Creates one Event regarding `reference`, in its namespace.
    pub async fn publish(&self, event: &Event, reference: &ObjectReference) -> Result<(), kube::Error> {
        let namespace = reference.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        api.create(
            &PostParams::default(),
            &build(&self.reporter, event, reference, Timestamp::now()),
        )
        .await
        .map(|_| ())
    }
}

/// The Event for `event` regarding `reference`, reported by `reporter` at `now`.
fn build(reporter: &Reporter, event: &Event, reference: &ObjectReference, now: Timestamp) -> K8sEvent {
    let controller = &reporter.controller;
    // Unique per object and instant, like the names kubectl and client-go give Events.
    let name = format!(
        "{}.{:x}",
        reference.name.as_deref().unwrap_or(controller),
        now.as_nanosecond()
    );
    K8sEvent {
        metadata: ObjectMeta {
            name: Some(crate::keys::fit(&name, crate::keys::MAX_NAME)),
            namespace: reference.namespace.clone(),
            ..Default::default()
        },
        event_time: Some(MicroTime(now)),
        action: Some(event.action.clone()),
        reason: Some(event.reason.clone()),
        note: event.note.clone(),
        regarding: Some(reference.clone()),
        related: event.secondary.clone(),
        reporting_controller: Some(controller.clone()),
        reporting_instance: Some(reporter.instance.clone().unwrap_or_else(|| controller.clone())),
        type_: Some(
            match event.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_its_object_reporter_and_type_and_fits_any_name() {
        let reporter = Reporter {
            controller: "sip-operator".into(),
            instance: Some("pod-1".into()),
        };
        let reference = ObjectReference {
            name: Some("a".repeat(253)),
            namespace: Some("ns".into()),
            ..Default::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: "UsernameConflict".into(),
            note: Some("why".into()),
            action: "Reconcile".into(),
            secondary: None,
        };
        let built = build(
            &reporter,
            &event,
            &reference,
            Timestamp::from_second(1_700_000_000).expect("time"),
        );
        let name = built.metadata.name.expect("name");
        assert!(name.len() <= 253, "{name}");
        assert_eq!(built.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(built.type_.as_deref(), Some("Warning"));
        assert_eq!(built.reporting_controller.as_deref(), Some("sip-operator"));
        assert_eq!(built.reporting_instance.as_deref(), Some("pod-1"));
        assert_eq!(built.regarding, Some(reference));
        assert!(built.event_time.is_some() && built.series.is_none());
    }
}
