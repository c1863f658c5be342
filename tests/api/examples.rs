use kube::Api;
use serde_json::Value;
use sip_operator::api::{SipDomain, SipProfile, SipUser};

use crate::support::TestNamespace;

/// The YAML files a GitOps repo would hold, in apply order.
pub fn example_files() -> Vec<std::path::PathBuf> {
    let files = crate::support::example_files();
    assert!(
        files.len() >= 6,
        "examples/ should hold a domain, two profiles and several users"
    );
    files
}

/// Applies every example into `ns` with server-side apply, as `kubectl apply --server-side` would.
pub fn apply_examples(ns: &TestNamespace) {
    for file in example_files() {
        ns.kubectl(&["apply", "--server-side", "--field-manager=gitops", "-f"])
            .arg(&file)
            .ok();
    }
}

/// Every field a document sets must read back with the same value (the server may add defaults).
fn assert_subset(path: &str, want: &Value, got: &Value) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, v) in w {
                let child = format!("{path}.{k}");
                assert_subset(
                    &child,
                    v,
                    g.get(k).unwrap_or_else(|| panic!("{child} missing after apply")),
                );
            }
        }
        // List items get the server's defaults too (e.g. a device's `enabled`).
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (w, g)) in w.iter().zip(g).enumerate() {
                assert_subset(&format!("{path}[{i}]"), w, g);
            }
        }
        _ => assert_eq!(want, got, "{path} read back differently"),
    }
}

#[tokio::test]
async fn every_example_applies_and_reads_back() {
    let ns = TestNamespace::create("examples");
    apply_examples(&ns);

    for file in example_files() {
        let text = std::fs::read_to_string(&file).expect("read example");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let doc = Value::deserialize(doc).expect("example is YAML");
            let kind = doc["kind"].as_str().expect("kind").to_lowercase();
            let name = doc["metadata"]["name"].as_str().expect("name");
            let json = ns.kubectl(&["get", &kind, name, "-o", "json"]).ok();
            let got: Value = serde_json::from_str(&json).expect("kubectl get -o json");
            let section = if kind == "secret" { "stringData" } else { "spec" };
            if section == "spec" {
                assert_subset(
                    &format!("{}/{name}.spec", file.display()),
                    &doc["spec"],
                    &got["spec"],
                );
            }
        }
    }

    // The Rust types read what the API server stores, defaults included.
    let client = crate::support::ControlPlane::shared().client().await;
    let users: Api<SipUser> = Api::namespaced(client.clone(), &ns.name);
    let alice = users.get("alice").await.expect("get alice");
    assert!(alice.spec.enabled, "enabled defaults to true");
    assert_eq!(alice.spec.extension.as_deref(), Some("7001"));
    let hotline = users.get("berlin-hotline").await.expect("get berlin-hotline");
    assert_eq!(hotline.spec.username.as_deref(), Some("+4930123456"));
    assert!(!users.get("bob").await.expect("get bob").spec.enabled);
    let carol = users.get("carol").await.expect("get carol");
    let source = carol
        .spec
        .credentials
        .password_secret_ref
        .expect("carol imports her password");
    assert_eq!(
        (source.name.as_str(), source.key.as_str()),
        ("carol-password", "password")
    );

    let dana = users.get("dana").await.expect("get dana");
    let devices: Vec<(&str, bool)> = dana
        .spec
        .devices
        .iter()
        .map(|d| (d.name.as_str(), d.enabled))
        .collect();
    assert_eq!(
        devices,
        [("deskphone", true), ("softphone", true)],
        "devices read back, enabled by default"
    );

    let domain = Api::<SipDomain>::namespaced(client.clone(), &ns.name)
        .get("acme")
        .await
        .expect("get acme");
    assert_eq!(
        domain.spec.digest_algorithms,
        vec![sip_operator::api::DigestAlgorithm::Md5]
    );
    assert_eq!(domain.spec.password_policy.length, 32);

    let supervisor = Api::<SipProfile>::namespaced(client, &ns.name)
        .get("supervisor")
        .await
        .expect("get supervisor");
    assert!(supervisor.spec.flags.iter().any(|f| f == "barge"));
    assert_eq!(supervisor.spec.barge_group.as_deref(), Some("support_floor"));
}

#[tokio::test]
async fn server_fills_schema_defaults() {
    let ns = TestNamespace::create("defaults");
    let out = ns
        .kubectl(&["apply", "--server-side", "-f", "-", "-o", "json"])
        .output_with_stdin(
            "apiVersion: sipoperator.io/v1alpha1\nkind: SipDomain\nmetadata: {name: minimal}\nspec: {domain: minimal.sip.example.com}\n\
             ---\napiVersion: sipoperator.io/v1alpha1\nkind: SipProfile\nmetadata: {name: minimal}\nspec: {}\n\
             ---\napiVersion: sipoperator.io/v1alpha1\nkind: SipUser\nmetadata: {name: minimal}\nspec: {domainRef: minimal}\n",
        );
    assert!(out.success, "minimal objects must apply: {}", out.stderr);
    let get = |kind: &str| -> Value {
        serde_json::from_str(&ns.kubectl(&["get", kind, "minimal", "-o", "json"]).ok()).expect("json")
    };
    let domain = get("sipdomain");
    assert_eq!(domain["spec"]["digestAlgorithms"], serde_json::json!(["MD5"]));
    assert_eq!(
        domain["spec"]["passwordPolicy"],
        serde_json::json!({"length": 32, "characterSet": "Alphanumeric"})
    );
    assert_eq!(get("sipprofile")["spec"]["maxContacts"], 3);
    let user = get("sipuser");
    assert_eq!(user["spec"]["enabled"], true);
    assert_eq!(user["spec"]["credentials"], serde_json::json!({}));
}

use serde::Deserialize as _;
