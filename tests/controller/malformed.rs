//! One object the operator's Rust types cannot read must not stall the watch of its kind. The
//! API server refuses such objects under the real schema, so the test stores one under a
//! looser schema (as an older CRD version might have) and then restores the real one: stored
//! objects are not re-validated, exactly how unreadable objects happen in clusters.
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use sip_operator::api::SipProfile;

use crate::builders::user;
use crate::scenario::Scenario;
use crate::support::operator::metric_value;
use crate::support::{ControlPlane, eventually, repo_path};

const MANAGER: &str = "sip-operator-tests";

/// Re-applies the committed SipProfile CRD when dropped, so a failing test cannot leave the
/// loose schema behind for the other tests.
struct RestoreCrd;

impl Drop for RestoreCrd {
    fn drop(&mut self) {
        ControlPlane::shared()
            .kubectl()
            .run(&[
                "apply",
                "--server-side",
                "--force-conflicts",
                &format!("--field-manager={MANAGER}"),
                "-f",
            ])
            .arg(repo_path("crds/sipprofiles.sipoperator.io.yaml"))
            .ok();
    }
}

fn profile_with_capacity(capacity: Value) -> Value {
    json!({
        "apiVersion": "sipoperator.io/v1alpha1",
        "kind": "SipProfile",
        "metadata": {"name": "unreadable"},
        "spec": {"capacity": capacity}
    })
}

#[tokio::test]
async fn an_unreadable_object_is_reported_and_skipped() {
    let mut sc = Scenario::new("malformed").await;
    let crds: Api<CustomResourceDefinition> = Api::all(sc.client.clone());
    let profiles: Api<kube::api::DynamicObject> = Api::namespaced_with(
        sc.client.clone(),
        sc.namespace(),
        &kube::api::ApiResource::erase::<SipProfile>(&()),
    );

    {
        let _restore = RestoreCrd;
        let mut loose = serde_json::to_value(SipProfile::crd()).expect("CRD to JSON");
        loose["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["capacity"] =
            json!({"x-kubernetes-int-or-string": true});
        crds.patch(
            "sipprofiles.sipoperator.io",
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&loose),
        )
        .await
        .expect("loosen the SipProfile schema");
        // The API server takes a moment to serve the new schema.
        eventually(
            "the loose schema to accept a string capacity",
            Duration::from_secs(30),
            || async {
                let obj = profile_with_capacity(json!("lots"));
                profiles
                    .patch(
                        "unreadable",
                        &PatchParams::apply(MANAGER).force(),
                        &Patch::Apply(&obj),
                    )
                    .await
                    .ok()
            },
        )
        .await;
    }
    eventually("the real schema to be back", Duration::from_secs(30), || async {
        let obj = profile_with_capacity(json!("still lots"));
        profiles
            .patch(
                "unreadable",
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&obj),
            )
            .await
            .err()
    })
    .await;

    // The watch goes on: a new user is reconciled, and the unreadable profile is reported.
    sc.apply(&user("after-watch-event")).await;
    sc.ready("after-watch-event").await;
    let errors = |scrape: &str| {
        metric_value(
            scrape,
            "sip_operator_reconcile_errors_total",
            &[("kind", "SipProfile"), ("error", "invalid_object")],
        )
    };
    eventually(
        "the unreadable profile to be counted",
        Duration::from_secs(30),
        || async { errors(&sc.operator.metrics()).filter(|n| *n >= 1.0) },
    )
    .await;
    let log = sc.operator.log();
    assert!(
        log.lines()
            .any(|l| l.contains("does not match the sip-operator API") && l.contains("unreadable")),
        "the operator log names the unreadable object"
    );
    eventually(
        "a Warning Event on the unreadable profile",
        Duration::from_secs(30),
        || async {
            crate::scenario::namespace_events(&sc)
                .await
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some("UnreadableObject")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("unreadable")
                })
        },
    )
    .await;

    // A fresh operator lists it among the others and still starts.
    sc.restart_operator().await;
    sc.apply(&user("after-list")).await;
    sc.ready("after-list").await;
    sc.ready("after-watch-event").await;
}

/// `{"a":{"a":...}}` nested `depth` levels: the API server prunes it from the spec (an unknown
/// field) but keeps its shape in `metadata.managedFields`.
fn nested(depth: usize) -> Value {
    let mut v = json!({});
    for _ in 0..depth {
        v = json!({ "a": v });
    }
    v
}

/// The `Ready` status of a user read through kubectl (Go decodes any depth; kube-rs in this
/// test would hit the same recursion limit the operator used to).
fn kubectl_ready(ns: &str, name: &str) -> String {
    ControlPlane::shared()
        .kubectl()
        .run_in(ns, &["get", "sipuser", name, "-o"])
        .arg("jsonpath={.status.conditions[?(@.type==\"Ready\")].status}")
        .ok()
}

#[tokio::test]
async fn managed_fields_nested_past_the_decoder_limit_stop_nothing() {
    let mut sc = Scenario::new("deepnest").await;
    sc.apply(&user("before")).await;
    sc.ready("before").await;

    // Applied by kubectl (as a person would): accepted, spec pruned, managedFields deep.
    let deep = json!({
        "apiVersion": "sipoperator.io/v1alpha1",
        "kind": "SipUser",
        "metadata": {"name": "deep"},
        "spec": {"domainRef": crate::builders::DOMAIN, "credentials": {"generated": nested(130)}},
    });
    let applied = ControlPlane::shared()
        .kubectl()
        .run_in(
            sc.namespace(),
            &["apply", "--server-side", "--field-manager=person", "-f", "-"],
        )
        .output_with_stdin(&deep.to_string());
    assert!(applied.success, "kubectl apply: {}", applied.stderr);

    // The watch goes on: a new user is reconciled, and so is the deep one (its spec is valid).
    sc.apply(&user("after-watch-event")).await;
    sc.ready("after-watch-event").await;
    eventually("the deep user to be Ready", Duration::from_secs(60), || async {
        (kubectl_ready(sc.namespace(), "deep") == "True").then_some(())
    })
    .await;

    // A fresh operator lists it among the others and reconciles new users and rotations.
    sc.restart_operator().await;
    sc.apply(&user("after-list")).await;
    sc.ready("after-list").await;
    sc.apply(&user("before").rotate("r1")).await;
    sc.wait_user("before", "the rotation to be handled", |u| {
        u.status.as_ref().and_then(|s| s.last_handled_rotation.as_deref()) == Some("r1")
    })
    .await;
    let log = sc.operator.log();
    assert!(
        !log.contains("recursion limit"),
        "no decoding failure in the operator log:\n{}",
        sc.context()
    );
}
