//! `helm lint`, rendering accepted by the API server, and values.schema.json refusing
//! wrong values with a message that names the value.
use crate::support::{ControlPlane, TestNamespace};
use crate::{chart, helm, template};

#[test]
fn helm_lint_passes_for_every_mode() {
    let chart = chart();
    for sets in [
        vec![],
        vec!["registrar.enabled=true"],
        vec!["watchNamespaces={a,b}"],
        vec!["registrar.enabled=true", "metrics.serviceMonitor.enabled=true"],
    ] {
        let mut args = vec!["lint", chart.as_str(), "--strict"];
        for s in &sets {
            args.extend(["--set", s]);
        }
        let out = helm(&args);
        assert!(out.success, "helm lint {sets:?}:\n{}{}", out.stdout, out.stderr);
    }
}

#[test]
fn rendered_manifests_are_accepted_by_the_api_server() {
    let release_ns = TestNamespace::create("chart-render");
    let (a, b) = (TestNamespace::create("chart-a"), TestNamespace::create("chart-b"));
    let list = format!("watchNamespaces={{{},{}}}", a.name, b.name);
    let with_release = format!("watchNamespaces={{{},{}}}", a.name, release_ns.name);
    for sets in [
        vec![],
        vec!["registrar.enabled=true"],
        vec![list.as_str()],
        vec![
            with_release.as_str(),
            "registrar.enabled=true",
            "registrar.replicas=2",
        ],
        vec![
            "registrar.enabled=true",
            "registrar.service.type=NodePort",
            "replicas=1",
        ],
    ] {
        let rendered = template("dry", &release_ns.name, &sets);
        assert!(rendered.success, "helm template {sets:?}: {}", rendered.stderr);
        assert!(rendered.stdout.contains("kind: Deployment"), "{sets:?}");
        let applied = ControlPlane::shared()
            .kubectl()
            .run(&["apply", "--server-side", "--dry-run=server", "-f", "-"])
            .output_with_stdin(&rendered.stdout);
        assert!(
            applied.success,
            "the API server refused the chart rendered with {sets:?}:\n{}",
            applied.stderr
        );
        assert!(
            !applied.stderr.contains("Warning"),
            "API server warnings for {sets:?}:\n{}",
            applied.stderr
        );
    }
}

#[test]
fn the_rendered_registrar_config_is_the_tested_kamailio_cfg() {
    let rendered = template(
        "cfg",
        "default",
        &[
            "registrar.enabled=true",
            "--show-only=templates/registrar-configmap.yaml",
        ],
    );
    assert!(rendered.success, "{}", rendered.stderr);
    let doc: serde_yaml::Value = serde_yaml::from_str(&rendered.stdout).expect("ConfigMap YAML");
    let shipped = std::fs::read_to_string(crate::support::repo_path(
        "charts/sip-operator/files/kamailio.cfg",
    ))
    .expect("kamailio.cfg");
    let in_chart = doc["data"]["kamailio.cfg"].as_str().unwrap_or_default();
    assert!(
        in_chart == shipped,
        "the ConfigMap differs from files/kamailio.cfg ({} vs {} bytes)",
        in_chart.len(),
        shipped.len()
    );
}

#[test]
fn wrong_values_are_refused_with_the_value_named() {
    for (set, expect) in [
        ("replicas=-1", "replicas"),
        ("registrar.enabled=maybe", "registrar"),
        ("replicaCount=2", "replicaCount"),
        ("logFormat=yaml", "logFormat"),
        ("registrarCheckIntervalSeconds=0", "registrarCheckIntervalSeconds"),
        ("authFailureWarningThreshold=0", "authFailureWarningThreshold"),
        ("watchNamespaces={Not_A_Namespace}", "watchNamespaces"),
    ] {
        let out = template("wrong", "default", &[set]);
        assert!(!out.success, "--set {set} was accepted");
        assert!(
            out.stderr
                .contains("values don't meet the specifications of the schema")
                && out.stderr.contains(expect),
            "--set {set}: the message should name {expect}:\n{}",
            out.stderr
        );
    }
}

#[test]
fn brute_force_values_become_the_configs_defines_and_only_there() {
    let rendered = template(
        "bf",
        "default",
        &[
            "registrar.enabled=true",
            "registrar.bruteForce.failureLimit=5",
            "registrar.bruteForce.blockSeconds=120",
            "--show-only=templates/registrar-deployment.yaml",
        ],
    );
    assert!(rendered.success, "{}", rendered.stderr);
    let doc: serde_yaml::Value = serde_yaml::from_str(&rendered.stdout).expect("Deployment YAML");
    let args: Vec<&str> = doc["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str())
        .collect();
    for define in ["FAIL_LIMIT=5", "FAIL_WINDOW=300", "BLOCK_SECONDS=120"] {
        let at = args.iter().position(|a| *a == define);
        assert!(
            at.is_some_and(|i| i > 0 && args[i - 1] == "-A"),
            "-A {define} in {args:?}"
        );
    }
    let twice = template(
        "bf",
        "default",
        &["registrar.enabled=true", "registrar.extraDefines={FAIL_LIMIT=3}"],
    );
    assert!(
        !twice.success && twice.stderr.contains("bruteForce"),
        "{}",
        twice.stderr
    );
    let zero = template("bf", "default", &["registrar.bruteForce.failureLimit=0"]);
    assert!(
        !zero.success && zero.stderr.contains("failureLimit"),
        "{}",
        zero.stderr
    );
}
