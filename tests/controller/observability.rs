//! What people and tools see: `kubectl wait` and the printer columns once the examples are
//! reconciled, domain and profile counts, the health and metrics endpoints, JSON logs.
use sip_operator::api::SipUser;

use crate::builders::user;
use crate::scenario::WAIT;
use crate::scenario::{Scenario, is_current, reasons};
use crate::support::kubectl::table_by_header;
use crate::support::operator::metric_value;
use crate::support::{eventually, example_files};

/// Applies examples/ into the scenario's namespace, with the example SIP domain replaced by
/// the scenario's own (SIP domains are unique across the cluster, and other tests apply the
/// examples too).
fn apply_examples(sc: &Scenario) {
    for file in example_files() {
        let text = std::fs::read_to_string(&file).expect("read example");
        let text = text.replace("acme.sip.example.com", &sc.fqdn);
        let out = sc
            .ns
            .kubectl(&["apply", "--server-side", "--field-manager=gitops", "-f", "-"])
            .output_with_stdin(&text);
        assert!(out.success, "apply {}: {}", file.display(), out.stderr);
    }
}

#[tokio::test]
async fn examples_go_ready_for_kubectl_wait_and_fill_the_printer_columns() {
    let sc = Scenario::empty("examples").await;
    apply_examples(&sc);

    let out = sc
        .ns
        .kubectl(&["wait", "--for=condition=Ready", "--timeout=60s"])
        .args([
            "sipuser/alice",
            "sipuser/berlin-hotline",
            "sipuser/bob",
            "sipuser/carol",
            "sipuser/dana",
        ])
        .output();
    assert!(
        out.success,
        "kubectl wait --for=condition=Ready failed:\n{}{}\n{}",
        out.stdout,
        out.stderr,
        sc.context()
    );
    for name in ["alice", "berlin-hotline", "carol", "dana"] {
        sc.ready(name).await;
    }
    sc.ready_as("bob", reasons::SUSPENDED).await;

    let rows = table_by_header(&sc.ns.kubectl(&["get", "sipusers"]).ok());
    let cells = |name: &str| -> (String, String, String) {
        let row = rows
            .iter()
            .find(|r| r.get("NAME").map(String::as_str) == Some(name))
            .unwrap_or_else(|| panic!("no row for {name} in {rows:?}"));
        (
            row["USERNAME"].clone(),
            row["PROFILE"].clone(),
            row["READY"].clone(),
        )
    };
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(cells("alice"), s("alice", "agent", "True"));
    assert_eq!(cells("berlin-hotline"), s("+4930123456", "agent", "True"));
    assert_eq!(cells("bob"), s("bob", "supervisor", "True"));
    assert_eq!(cells("carol"), s("carol", "supervisor", "True"));
    assert_eq!(cells("dana"), s("dana", "agent", "True"));

    // Domain and profiles count the admitted users (suspended bob included).
    sc.domain_ready_with_users("acme", 5).await;
    for (name, users, capacity) in [("agent", 3, 50), ("supervisor", 2, 5)] {
        sc.wait_profile(name, &format!("Ready, users {users}, capacity {capacity}"), |p| {
            is_current(p)
                && crate::scenario::condition(p, reasons::READY).is_some_and(|(s, _, _)| s == "True")
                && p.status
                    .as_ref()
                    .is_some_and(|s| s.users == Some(users) && s.capacity == Some(capacity))
        })
        .await;
    }
    // carol's password is the imported one, in the Secret her spec names.
    let carol = sc.secret_appears("carol-sip-account").await;
    assert_eq!(crate::scenario::password(&carol), "imported-Example-Passw0rd-123");
}

#[tokio::test]
async fn health_readiness_metrics_and_json_logs() {
    let sc = Scenario::new("metrics").await;
    sc.apply(&user("good")).await;
    sc.apply(&user("stuck").domain("missing")).await;
    sc.ready("good").await;
    sc.stalled("stuck", reasons::DOMAIN_NOT_FOUND).await;

    assert_eq!(sc.operator.http_get("/healthz").0, 200, "/healthz");
    assert_eq!(sc.operator.http_get("/readyz").0, 200, "/readyz");

    let op = &sc.operator;
    let scrape = sc
        .until(
            "metrics to count the two users",
            crate::scenario::WAIT,
            || async move {
                let scrape = op.metrics();
                let ready = metric_value(
                    &scrape,
                    "sip_operator_objects",
                    &[("kind", "SipUser"), ("condition", "Ready"), ("status", "True")],
                );
                let stalled = metric_value(
                    &scrape,
                    "sip_operator_objects",
                    &[("kind", "SipUser"), ("condition", "Stalled"), ("status", "True")],
                );
                if ready == Some(1.0) && stalled == Some(1.0) {
                    Ok(scrape)
                } else {
                    Err(format!("objects Ready=True {ready:?}, Stalled=True {stalled:?}"))
                }
            },
        )
        .await;
    let reconciles = metric_value(&scrape, "sip_operator_reconciles_total", &[("kind", "SipUser")]);
    assert!(
        reconciles.is_some_and(|n| n >= 2.0),
        "reconciles_total{{kind=SipUser}} = {reconciles:?}"
    );
    let durations = metric_value(
        &scrape,
        "sip_operator_reconcile_duration_seconds_count",
        &[("kind", "SipUser")],
    );
    assert!(
        durations.is_some_and(|n| n >= 2.0),
        "reconcile_duration_seconds_count = {durations:?}"
    );
    assert!(
        scrape.contains("sip_operator_reconcile_duration_seconds_bucket{"),
        "the duration is a histogram:\n{scrape}"
    );
    // The error counter has samples only once a reconcile failed (a family without samples
    // is not rendered); when it has, each names the kind and the error kind.
    for (name, labels, _) in scrape.lines().filter_map(crate::support::operator::parse_sample) {
        if name == "sip_operator_reconcile_errors_total" {
            assert!(
                labels.iter().any(|(k, _)| k == "kind") && labels.iter().any(|(k, _)| k == "error"),
                "reconcile_errors_total sample without kind/error labels: {labels:?}"
            );
        }
    }
    assert_eq!(
        metric_value(&scrape, "sip_operator_leader", &[]),
        Some(1.0),
        "a lone replica leads"
    );

    // A deleted user leaves the objects gauge.
    sc.delete::<SipUser>("stuck").await;
    sc.until(
        "the stalled user to leave the objects gauge",
        crate::scenario::WAIT,
        || async move {
            let stalled = metric_value(
                &op.metrics(),
                "sip_operator_objects",
                &[("kind", "SipUser"), ("condition", "Stalled"), ("status", "True")],
            );
            if stalled.unwrap_or(0.0) == 0.0 {
                Ok(())
            } else {
                Err(format!("Stalled=True {stalled:?}"))
            }
        },
    )
    .await;

    // `--log-format json`: one JSON object per line.
    let log = sc.operator.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the operator logged nothing");
    for line in lines {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        assert!(
            parsed.as_ref().is_ok_and(|v| v.is_object()),
            "a log line that is not a JSON object: {line}"
        );
    }
}

/// GitOps health (Flux, Argo CD and `kubectl wait` read the same kstatus conditions): waiting
/// for Ready returns for a ready object and times out for a stalled one, whose Stalled
/// condition a tool can wait for instead.
#[tokio::test]
async fn kubectl_wait_returns_for_ready_and_times_out_for_stalled() {
    let sc = Scenario::new("wait-health").await;
    sc.apply(&user("ready-user")).await;
    sc.apply(&user("orphan").domain("no-such-domain")).await;
    sc.ready("ready-user").await;
    sc.stalled("orphan", reasons::DOMAIN_NOT_FOUND).await;

    let wait = |target: &str, condition: &str, timeout: &str| {
        sc.ns
            .kubectl(&[
                "wait",
                &format!("--for=condition={condition}"),
                &format!("--timeout={timeout}"),
                target,
            ])
            .output()
    };
    let ready = wait("sipuser/ready-user", "Ready", "30s");
    assert!(ready.success, "{}{}", ready.stdout, ready.stderr);
    assert!(ready.stdout.contains("condition met"), "{}", ready.stdout);

    let stalled = wait("sipuser/orphan", "Ready", "3s");
    assert!(
        !stalled.success,
        "waiting for a stalled user to be Ready must fail"
    );
    assert!(stalled.stderr.contains("timed out"), "{}", stalled.stderr);

    let health = wait("sipuser/orphan", "Stalled", "30s");
    assert!(health.success, "a tool can wait for Stalled: {}", health.stderr);
}

#[tokio::test]
async fn deleted_objects_leave_the_object_gauge() {
    let sc = Scenario::new("gauge").await;
    sc.apply(&crate::builders::profile("extra")).await;
    sc.apply(&user("counted")).await;
    sc.ready("counted").await;
    let count = |scrape: &str, kind: &str| {
        metric_value(
            scrape,
            "sip_operator_objects",
            &[("kind", kind), ("condition", "Ready"), ("status", "True")],
        )
        .unwrap_or(0.0)
    };
    let op = &sc.operator;
    eventually(
        "domain, both profiles and the user counted",
        WAIT,
        || async move {
            let s = op.metrics();
            (count(&s, "SipDomain") == 1.0 && count(&s, "SipProfile") == 2.0 && count(&s, "SipUser") == 1.0)
                .then_some(())
        },
    )
    .await;
    sc.delete::<SipUser>("counted").await;
    sc.delete::<sip_operator::api::SipProfile>("extra").await;
    sc.delete::<sip_operator::api::SipDomain>(crate::builders::DOMAIN)
        .await;
    eventually("deleted objects no longer counted", WAIT, || async move {
        let s = op.metrics();
        (count(&s, "SipDomain") == 0.0 && count(&s, "SipProfile") == 1.0 && count(&s, "SipUser") == 0.0)
            .then_some(())
    })
    .await;
}
