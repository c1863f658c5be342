//! The chart's RBAC, proven with the chart's own ServiceAccount: the operator runs a whole
//! scenario (credentials, imported password, suspension, registrar push, Events, status,
//! deletion with registrar cleanup) under a token of that ServiceAccount, in cluster mode and
//! in namespaced mode; namespaced, it cannot read a Secret outside its namespaces.
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use sip_operator::api::{Conditioned, SipUser};
use sip_operator::credentials::secret_value;

use crate::support::kamailio::Kamailio;
use crate::support::operator::Operator;
use crate::support::sipp::Registration;
use crate::support::{ControlPlane, TestNamespace, eventually};
use crate::template;

const WAIT: Duration = Duration::from_secs(60);

/// The chart installed (for real) as release `fullname` in `release`, and a kubeconfig that
/// authenticates as its ServiceAccount. Cluster-scoped objects are deleted on drop.
struct Install {
    fullname: String,
    release: String,
    kubeconfig: std::path::PathBuf,
}

impl Install {
    fn new(release: &TestNamespace, sets: &[&str]) -> Install {
        let fullname = format!("sipop-{}", release.name);
        let full = format!("fullnameOverride={fullname}");
        let mut all = vec![full.as_str()];
        all.extend_from_slice(sets);
        let rendered = template("sip-operator", &release.name, &all);
        assert!(rendered.success, "helm template: {}", rendered.stderr);
        // Roles land in the watched namespaces too: no default namespace for this apply.
        let applied = ControlPlane::shared()
            .kubectl()
            .run(&["apply", "--server-side", "-f", "-"])
            .output_with_stdin(&rendered.stdout);
        assert!(applied.success, "install the chart: {}", applied.stderr);

        let token = release
            .kubectl(&["create", "token", &fullname, "--duration", "1h"])
            .ok();
        let admin = ControlPlane::shared()
            .kubectl()
            .run(&["config", "view", "--raw", "--minify", "-o", "json"])
            .ok();
        let admin: serde_json::Value = serde_json::from_str(&admin).expect("kubeconfig JSON");
        let kubeconfig = serde_json::json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": admin["clusters"],
            "users": [{"name": "chart-sa", "user": {"token": token.trim()}}],
            "contexts": [{"name": "chart-sa", "context": {
                "cluster": admin["clusters"][0]["name"], "user": "chart-sa"}}],
            "current-context": "chart-sa",
        });
        let path = std::env::temp_dir().join(format!("sip-operator-{fullname}.kubeconfig"));
        std::fs::write(&path, kubeconfig.to_string()).expect("write the ServiceAccount kubeconfig");
        Install {
            fullname,
            release: release.name.clone(),
            kubeconfig: path,
        }
    }

    /// `kubectl auth can-i` as the chart's ServiceAccount.
    fn can_i(&self, args: &[&str]) -> bool {
        let who = format!("system:serviceaccount:{}:{}", self.release, self.fullname);
        let mut all = vec!["auth", "can-i", "--as", who.as_str()];
        all.extend_from_slice(args);
        let out = ControlPlane::shared().kubectl().run(&all).output();
        out.stdout.trim() == "yes"
    }

    /// The operator for `watched`, authenticated as the chart's ServiceAccount, with its Lease
    /// where the chart's Role allows it.
    async fn operator(&self, watched: &TestNamespace) -> Operator {
        let kubeconfig = self.kubeconfig.display().to_string();
        Operator::start_with_env(
            watched,
            &[
                "--lease-namespace",
                &self.release,
                "--lease-name",
                &self.fullname,
                "--registrar-check-interval-seconds",
                "1",
            ],
            &[("KUBECONFIG", kubeconfig.as_str())],
        )
        .await
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        let _ = ControlPlane::shared()
            .kubectl()
            .run(&[
                "delete",
                "clusterrole,clusterrolebinding",
                &self.fullname,
                "--ignore-not-found",
            ])
            .output();
        let _ = std::fs::remove_file(&self.kubeconfig);
    }
}

/// Everything the operator does, in `ns`, with a Kamailio registrar; fails on any refusal.
async fn whole_scenario(ns: &TestNamespace, operator: &Operator) {
    let kamailio = Kamailio::start();
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: kamailio-rpc}}\nstringData: {{token: {token}}}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: carol-password}}\nstringData: {{password: carol-imported-password-1}}\n---\n\
         apiVersion: sipoperator.io/v1alpha1\nkind: SipDomain\nmetadata: {{name: acme}}\nspec:\n  domain: {ns}.sip.example.com\n  \
         defaultProfile: agent\n  registrar:\n    kamailio:\n      urls: [\"{url}\"]\n      tokenSecretRef: {{name: kamailio-rpc, key: token}}\n---\n\
         apiVersion: sipoperator.io/v1alpha1\nkind: SipProfile\nmetadata: {{name: agent}}\nspec: {{capacity: 10}}\n---\n\
         apiVersion: sipoperator.io/v1alpha1\nkind: SipUser\nmetadata: {{name: alice}}\nspec: {{domainRef: acme}}\n---\n\
         apiVersion: sipoperator.io/v1alpha1\nkind: SipUser\nmetadata: {{name: bob}}\nspec: {{domainRef: acme, enabled: false}}\n---\n\
         apiVersion: sipoperator.io/v1alpha1\nkind: SipUser\nmetadata: {{name: carol}}\nspec:\n  domainRef: acme\n  \
         credentials: {{passwordSecretRef: {{name: carol-password, key: password}}}}\n",
        token = kamailio.token(),
        url = kamailio.rpc_url(),
        ns = ns.name,
    );
    let out = ns
        .kubectl(&["apply", "--server-side", "-f", "-"])
        .output_with_stdin(&yaml);
    assert!(out.success, "apply the scenario: {}", out.stderr);
    let client = ControlPlane::shared().client().await;
    let users: Api<SipUser> = Api::namespaced(client.clone(), &ns.name);
    for (name, synced) in [("alice", "True"), ("bob", "False"), ("carol", "True")] {
        eventually(
            &format!("{name} Ready, RegistrarSynced={synced}"),
            WAIT,
            || async {
                let u = users.get_opt(name).await.ok().flatten()?;
                (u.condition_status("Ready") == Some("True")
                    && u.condition_status("RegistrarSynced") == Some(synced))
                .then_some(())
            },
        )
        .await;
    }
    let secrets: Api<Secret> = Api::namespaced(client, &ns.name);
    let alice = secrets
        .get("alice-sip-credentials")
        .await
        .expect("alice's Secret");
    let password = secret_value(&alice, "password").expect("password");
    let registered = Registration::new("alice", &format!("{}.sip.example.com", ns.name), &password)
        .run(kamailio.sip_addr());
    assert_eq!(
        registered.status, 200,
        "alice registers with the pushed credentials"
    );
    let events = ns.kubectl(&["get", "events"]).ok();
    assert!(
        events.contains("CredentialsCreated"),
        "Events are recorded:\n{events}"
    );

    users
        .delete("alice", &DeleteParams::default())
        .await
        .expect("delete alice");
    eventually("alice deleted after the registrar cleanup", WAIT, || async {
        users.get_opt("alice").await.ok()?.is_none().then_some(())
    })
    .await;
    let log = operator.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the operator was refused something:\n{}",
        operator.log_tail(40)
    );
}

#[tokio::test]
async fn namespaced_mode_is_enough_and_reads_no_secret_elsewhere() {
    let release = TestNamespace::create("chart-rel");
    let watched = TestNamespace::create("chart-watched");
    let elsewhere = TestNamespace::create("chart-other");
    let list = format!("watchNamespaces={{{}}}", watched.name);
    let install = Install::new(&release, &[list.as_str()]);

    assert!(install.can_i(&["get", "secrets", "-n", &watched.name]));
    assert!(!install.can_i(&["get", "secrets", "-n", &elsewhere.name]));
    assert!(!install.can_i(&["list", "secrets", "--all-namespaces"]));
    assert!(!install.can_i(&["list", "sipusers", "--all-namespaces"]));
    assert!(!install.can_i(&["get", "secrets", "-n", &release.name]));
    // Not just a policy answer: a real request with the token is refused.
    let out = elsewhere
        .kubectl(&["create", "secret", "generic", "private", "--from-literal=k=v"])
        .output();
    assert!(out.success, "{}", out.stderr);
    let read = ControlPlane::shared()
        .kubectl()
        .run(&["get", "secret", "private", "-n", &elsewhere.name])
        .arg("--kubeconfig")
        .arg(&install.kubeconfig)
        .output();
    assert!(
        !read.success && read.stderr.contains("Forbidden"),
        "{}",
        read.stderr
    );

    let operator = install.operator(&watched).await;
    whole_scenario(&watched, &operator).await;
}

#[tokio::test]
async fn cluster_mode_is_enough() {
    let release = TestNamespace::create("chart-rel");
    let watched = TestNamespace::create("chart-all");
    let install = Install::new(&release, &[]);
    assert!(install.can_i(&["list", "sipusers", "--all-namespaces"]));
    assert!(install.can_i(&["list", "secrets", "--all-namespaces"]));
    // Leases only in the release namespace.
    assert!(!install.can_i(&["create", "leases", "-n", &watched.name]));
    // The operator watches one namespace here: a cluster-wide one would reconcile the objects
    // of every other test sharing this control plane. The rights it uses are the same.
    let operator = install.operator(&watched).await;
    whole_scenario(&watched, &operator).await;
}
