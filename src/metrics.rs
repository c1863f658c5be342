//! Prometheus metrics of the operator.
//!
//! One [`Metrics`] value is created at start-up, shared through an `Arc` by the controllers and the
//! HTTP server, and rendered in OpenMetrics text format on every scrape.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Labels of the per-kind reconcile counter and duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Labels of the reconcile error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
    error: &'static str,
}

/// Labels of the object condition gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    kind: &'static str,
    condition: &'static str,
    status: &'static str,
}

/// Labels of the per-SIP-domain gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DomainLabels {
    domain: String,
}

/// Condition statuses recorded for one object, already normalised to a bounded set of values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ObjectSummary {
    ready: &'static str,
    stalled: &'static str,
}

impl ObjectSummary {
    /// The `(condition, status)` pairs this object contributes to the objects gauge.
    fn conditions(self) -> [(&'static str, &'static str); 2] {
        [("Ready", self.ready), ("Stalled", self.stalled)]
    }
}

/// Maps a condition status to one of the three values Kubernetes allows, so that a buggy caller
/// cannot blow up the label cardinality of the objects gauge.
fn normalise_status(status: &str) -> &'static str {
    match status {
        "True" => "True",
        "False" => "False",
        _ => "Unknown",
    }
}

/// Histogram constructor for the reconcile duration family.
///
/// Doubling buckets from 1ms give readable bucket bounds (0.001, 0.002, ..., 16.384) and cover both
/// no-op reconciles and ones that wait on slow API calls.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The operator's Prometheus registry together with handles on every metric family in it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    durations: Family<KindLabels, Histogram, fn() -> Histogram>,
    objects: Family<ObjectLabels, Gauge>,
    leader: Gauge,
    auth_failures: Family<DomainLabels, Gauge>,
    blocked_sources: Family<DomainLabels, Gauge>,
    /// Last recorded summary per `(kind, "namespace/name")`; the objects gauge is derived from it,
    /// and updated under this lock so that both never disagree.
    tracked: Mutex<HashMap<(&'static str, String), ObjectSummary>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the registry and registers every metric family under the `sip_operator` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sip_operator");
        let reconciles = Family::<KindLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let durations: Family<KindLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let objects = Family::<ObjectLabels, Gauge>::default();
        let leader = Gauge::default();
        let auth_failures = Family::<DomainLabels, Gauge>::default();
        let blocked_sources = Family::<DomainLabels, Gauge>::default();

        // Counter names are given without `_total`: prometheus-client appends it when encoding.
        registry.register(
            "reconciles",
            "Number of reconciles run, by resource kind",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Number of failed reconciles, by resource kind and error kind",
            errors.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Duration of reconciles, by resource kind",
            Unit::Seconds,
            durations.clone(),
        );
        registry.register(
            "objects",
            "Number of objects per resource kind whose condition has the given status",
            objects.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader lease, else 0",
            leader.clone(),
        );
        registry.register(
            "auth_failures",
            "Failed authentications in the registrar's current window across a SIP domain's users",
            auth_failures.clone(),
        );
        registry.register(
            "blocked_sources",
            "Source addresses the SIP domain's registrar endpoints currently block",
            blocked_sources.clone(),
        );

        Self {
            registry,
            reconciles,
            errors,
            durations,
            objects,
            leader,
            auth_failures,
            blocked_sources,
            tracked: Mutex::new(HashMap::new()),
        }
    }

    /// Starts timing one reconcile of `kind` ("SipUser", "SipDomain", "SipProfile").
    ///
    /// The reconcile is counted and its duration observed when the returned timer is dropped, so it
    /// is recorded on every exit path of the reconciler, including early returns with `?`.
    pub fn reconcile_started(&self, kind: &'static str) -> ReconcileTimer {
        let labels = KindLabels { kind };
        ReconcileTimer {
            start: Instant::now(),
            count: self.reconciles.get_or_create_owned(&labels),
            duration: self.durations.get_or_create_owned(&labels),
        }
    }

    /// Counts a failed reconcile of `kind` by error kind, a short snake_case label such as
    /// `kube_api` or `secret_not_owned`.
    pub fn reconcile_failed(&self, kind: &'static str, error: &'static str) {
        self.errors.get_or_create(&ErrorLabels { kind, error }).inc();
    }

    /// Remembers the current condition summary of one object (`key` = "namespace/name"), replacing
    /// what was recorded for it before.
    ///
    /// `ready` and `stalled` are the statuses of the `Ready` and `Stalled` conditions ("True",
    /// "False" or "Unknown"; anything else is counted as "Unknown").
    pub fn record_object(&self, kind: &'static str, key: &str, ready: &str, stalled: &str) {
        let summary = ObjectSummary {
            ready: normalise_status(ready),
            stalled: normalise_status(stalled),
        };
        let mut tracked = self.lock_tracked();
        let previous = tracked.insert((kind, key.to_owned()), summary);
        if previous == Some(summary) {
            return;
        }
        if let Some(previous) = previous {
            self.adjust_objects(kind, previous, -1);
        }
        self.adjust_objects(kind, summary, 1);
    }

    /// Forgets an object that was deleted, so it no longer counts in the objects gauge.
    pub fn forget_object(&self, kind: &'static str, key: &str) {
        let mut tracked = self.lock_tracked();
        if let Some(previous) = tracked.remove(&(kind, key.to_owned())) {
            self.adjust_objects(kind, previous, -1);
        }
    }

    /// Sets the leader gauge: 1 while this replica holds the leader Lease, else 0.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Sets the failed-authentication gauges of SIP domain `domain` (its FQDN) from its last
    /// registrar read.
    pub fn record_auth_failures(&self, domain: &str, failures: u64, blocked_sources: usize) {
        let labels = DomainLabels {
            domain: domain.to_owned(),
        };
        self.auth_failures
            .get_or_create(&labels)
            .set(i64::try_from(failures).unwrap_or(i64::MAX));
        self.blocked_sources
            .get_or_create(&labels)
            .set(i64::try_from(blocked_sources).unwrap_or(i64::MAX));
    }

    /// Drops the gauges of a SIP domain that went away.
    pub fn forget_domain(&self, domain: &str) {
        let labels = DomainLabels {
            domain: domain.to_owned(),
        };
        self.auth_failures.remove(&labels);
        self.blocked_sources.remove(&labels);
    }

    /// Renders the whole registry in OpenMetrics text format (terminated by `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail, so an error here means a metric could not be encoded;
        // a scrape must still get an answer, hence log and serve what was produced.
        if let Err(error) = encode(&mut out, &self.registry) {
            tracing::error!(%error, "failed to encode metrics");
        }
        out
    }

    /// Locks the object map; a poisoned lock only means another thread panicked between two
    /// consistent states of the map (every update is a single insert/remove), so it is still usable.
    fn lock_tracked(&self) -> MutexGuard<'_, HashMap<(&'static str, String), ObjectSummary>> {
        self.tracked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `delta` to every objects gauge series `summary` contributes to.
    fn adjust_objects(&self, kind: &'static str, summary: ObjectSummary, delta: i64) {
        for (condition, status) in summary.conditions() {
            self.objects
                .get_or_create(&ObjectLabels {
                    kind,
                    condition,
                    status,
                })
                .inc_by(delta);
        }
    }
}

/// Times one reconcile; created by [`Metrics::reconcile_started`].
///
/// On drop it increments `sip_operator_reconciles_total{kind}` and observes the elapsed time in
/// `sip_operator_reconcile_duration_seconds{kind}`.
#[derive(Debug)]
#[must_use = "the reconcile is recorded when the timer is dropped; binding it to `_` drops it at once"]
pub struct ReconcileTimer {
    start: Instant,
    count: Counter,
    duration: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.count.inc();
        self.duration.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Value of the sample line starting with `series` (name plus labels), if present.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map(|value| value.parse().expect("sample value is a number"))
    }

    fn objects(text: &str, kind: &str, condition: &str, status: &str) -> f64 {
        let series =
            format!("sip_operator_objects{{kind=\"{kind}\",condition=\"{condition}\",status=\"{status}\"}}");
        sample(text, &series).unwrap_or(0.0)
    }

    #[test]
    fn auth_failure_gauges_are_set_per_domain_and_forgotten() {
        let m = Metrics::new();
        m.record_auth_failures("acme.example", 7, 1);
        let text = m.encode();
        assert_eq!(
            sample(&text, "sip_operator_auth_failures{domain=\"acme.example\"}"),
            Some(7.0)
        );
        assert_eq!(
            sample(&text, "sip_operator_blocked_sources{domain=\"acme.example\"}"),
            Some(1.0)
        );
        m.record_auth_failures("acme.example", 0, 0);
        assert_eq!(
            sample(&m.encode(), "sip_operator_auth_failures{domain=\"acme.example\"}"),
            Some(0.0)
        );
        m.forget_domain("acme.example");
        assert_eq!(
            sample(&m.encode(), "sip_operator_auth_failures{domain=\"acme.example\"}"),
            None
        );
    }

    #[test]
    fn metrics_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Metrics>();
        assert_send_sync::<ReconcileTimer>();
    }

    #[test]
    fn encode_contains_names_and_labels() {
        let metrics = Metrics::new();
        drop(metrics.reconcile_started("SipUser"));
        drop(metrics.reconcile_started("SipUser"));
        metrics.reconcile_failed("SipUser", "kube_api");
        metrics.record_object("SipDomain", "ns/example", "True", "False");
        metrics.set_leader(true);

        let text = metrics.encode();
        assert_eq!(
            sample(&text, "sip_operator_reconciles_total{kind=\"SipUser\"}"),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                "sip_operator_reconcile_errors_total{kind=\"SipUser\",error=\"kube_api\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "sip_operator_reconcile_duration_seconds_count{kind=\"SipUser\"}"
            ),
            Some(2.0)
        );
        assert!(
            text.contains("sip_operator_reconcile_duration_seconds_bucket{le=\"0.001\",kind=\"SipUser\"}")
        );
        assert!(text.contains("# TYPE sip_operator_reconcile_duration_seconds histogram"));
        assert_eq!(objects(&text, "SipDomain", "Ready", "True"), 1.0);
        assert_eq!(objects(&text, "SipDomain", "Stalled", "False"), 1.0);
        assert_eq!(sample(&text, "sip_operator_leader"), Some(1.0));
        assert!(!text.contains("_total_total"));
        assert!(text.ends_with("# EOF\n"));

        metrics.set_leader(false);
        assert_eq!(sample(&metrics.encode(), "sip_operator_leader"), Some(0.0));
    }

    #[test]
    fn objects_gauge_follows_record_replace_forget() {
        let metrics = Metrics::new();
        metrics.record_object("SipUser", "ns/a", "False", "Unknown");
        metrics.record_object("SipUser", "ns/b", "False", "False");
        metrics.record_object("SipProfile", "ns/a", "True", "False");
        let text = metrics.encode();
        assert_eq!(objects(&text, "SipUser", "Ready", "False"), 2.0);
        assert_eq!(objects(&text, "SipUser", "Stalled", "Unknown"), 1.0);
        assert_eq!(objects(&text, "SipUser", "Stalled", "False"), 1.0);
        assert_eq!(objects(&text, "SipProfile", "Ready", "True"), 1.0);

        // Recording the same summary again must not count the object twice.
        metrics.record_object("SipUser", "ns/a", "False", "Unknown");
        let text = metrics.encode();
        assert_eq!(objects(&text, "SipUser", "Ready", "False"), 2.0);
        assert_eq!(objects(&text, "SipUser", "Stalled", "Unknown"), 1.0);

        // Replacing moves the object from its old series to the new ones.
        metrics.record_object("SipUser", "ns/a", "True", "False");
        let text = metrics.encode();
        assert_eq!(objects(&text, "SipUser", "Ready", "False"), 1.0);
        assert_eq!(objects(&text, "SipUser", "Ready", "True"), 1.0);
        assert_eq!(objects(&text, "SipUser", "Stalled", "Unknown"), 0.0);
        assert_eq!(objects(&text, "SipUser", "Stalled", "False"), 2.0);

        metrics.forget_object("SipUser", "ns/a");
        // Forgetting an unknown object, or one of another kind, changes nothing.
        metrics.forget_object("SipUser", "ns/missing");
        metrics.forget_object("SipDomain", "ns/b");
        let text = metrics.encode();
        assert_eq!(objects(&text, "SipUser", "Ready", "True"), 0.0);
        assert_eq!(objects(&text, "SipUser", "Ready", "False"), 1.0);
        assert_eq!(objects(&text, "SipUser", "Stalled", "False"), 1.0);
        assert_eq!(objects(&text, "SipProfile", "Ready", "True"), 1.0);

        metrics.forget_object("SipUser", "ns/b");
        metrics.forget_object("SipProfile", "ns/a");
        let text = metrics.encode();
        for kind in ["SipUser", "SipProfile"] {
            for condition in ["Ready", "Stalled"] {
                for status in ["True", "False", "Unknown"] {
                    assert_eq!(
                        objects(&text, kind, condition, status),
                        0.0,
                        "{kind} {condition} {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn unexpected_status_counts_as_unknown() {
        let metrics = Metrics::new();
        metrics.record_object("SipUser", "ns/a", "", "bogus");
        let text = metrics.encode();
        assert_eq!(objects(&text, "SipUser", "Ready", "Unknown"), 1.0);
        assert_eq!(objects(&text, "SipUser", "Stalled", "Unknown"), 1.0);
        assert!(!text.contains("bogus"));
    }
}
