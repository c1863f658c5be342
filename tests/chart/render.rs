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
        vec![
            "invites.enabled=true",
            "invites.url=https://invites.example.com",
            "invites.tlsSecretName=invites-tls",
        ],
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
        vec![
            "invites.enabled=true",
            "invites.url=https://invites.example.com",
            "invites.tlsSecretName=invites-tls",
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
fn the_invite_page_gets_its_url_its_tls_secret_and_a_service_on_8443() {
    let sets = [
        "invites.enabled=true",
        "invites.url=https://invites.example.com",
        "invites.tlsSecretName=invites-tls",
    ];
    let rendered = template("inv", "default", &sets);
    assert!(rendered.success, "{}", rendered.stderr);
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&rendered.stdout)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML"))
        .collect();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} in the chart"))
            .clone()
    };
    let deployment = find("Deployment", "inv-sip-operator");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let env = |name: &str| {
        container["env"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .map(str::to_string)
    };
    assert_eq!(
        env("SIP_OPERATOR_INVITE_URL").as_deref(),
        Some("https://invites.example.com")
    );
    assert_eq!(env("SIP_OPERATOR_INVITE_LISTEN").as_deref(), Some("0.0.0.0:8443"));
    let cert = env("SIP_OPERATOR_INVITE_TLS_CERT").expect("cert path");
    let key = env("SIP_OPERATOR_INVITE_TLS_KEY").expect("key path");
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["name"], "invite-tls");
    let dir = mount["mountPath"].as_str().expect("mountPath");
    assert_eq!(
        (cert.as_str(), key.as_str()),
        (&*format!("{dir}/tls.crt"), &*format!("{dir}/tls.key"))
    );
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "invites-tls");
    assert!(
        container["ports"]
            .as_sequence()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == "https-invites" && p["containerPort"] == 8443)
    );
    let service = find("Service", "inv-sip-operator-invites");
    assert_eq!(service["spec"]["ports"][0]["port"], 8443);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "https-invites");

    // Off by default: no page, no Service, no flags.
    let off = template("inv", "default", &[]);
    assert!(!off.stdout.contains("INVITE") && !off.stdout.contains("-invites"));
    // Enabled without a URL or a TLS Secret, or with a plain-HTTP URL: refused.
    for wrong in [
        vec!["invites.enabled=true", "invites.tlsSecretName=t"],
        vec!["invites.enabled=true", "invites.url=https://x.example.com"],
        vec![
            "invites.enabled=true",
            "invites.url=http://x.example.com",
            "invites.tlsSecretName=t",
        ],
    ] {
        let out = template("inv", "default", &wrong);
        assert!(!out.success, "{wrong:?} was accepted");
        assert!(out.stderr.contains("invites"), "{wrong:?}: {}", out.stderr);
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
