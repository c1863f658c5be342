//! The real control plane the tests talk to: etcd + kube-apiserver + kube-controller-manager
//! built from the Kubernetes Go modules (tests/control-plane/). The test command starts one
//! for the whole run and names it in `SIP_OPERATOR_TEST_CONTROL_PLANE`; a plain `cargo test`
//! starts one per test binary, which a reaper stops when the binary exits.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{Kubectl, repo_path};

/// Names the state directory of a running control plane (written by `start.sh`) to reuse.
pub const REUSE_ENV: &str = "SIP_OPERATOR_TEST_CONTROL_PLANE";

pub struct ControlPlane {
    dir: PathBuf,
    env: HashMap<String, String>,
}

impl ControlPlane {
    /// The control plane of this test run, started (and the CRDs installed) on first use.
    pub fn shared() -> &'static ControlPlane {
        static CP: OnceLock<ControlPlane> = OnceLock::new();
        CP.get_or_init(|| {
            let cp = match std::env::var(REUSE_ENV) {
                Ok(dir) if !dir.is_empty() => Self::open(PathBuf::from(dir)),
                _ => Self::start(),
            };
            cp.install_crds();
            cp.install_operator_rbac();
            cp
        })
    }

    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("sip-operator-cp-{}", std::process::id()));
        let status = Command::new(repo_path("tests/control-plane/start.sh"))
            .arg(&dir)
            .arg("--owner-pid")
            .arg(std::process::id().to_string())
            // A throwaway directory: gone with the binary, or every plain `cargo test` leaks one.
            .arg("--purge-with-owner")
            .status()
            .expect("run tests/control-plane/start.sh");
        assert!(status.success(), "tests/control-plane/start.sh failed: {status}");
        Self::open(dir)
    }

    fn open(dir: PathBuf) -> Self {
        let env_file = dir.join("env");
        let text = std::fs::read_to_string(&env_file)
            .unwrap_or_else(|e| panic!("{REUSE_ENV}: cannot read {}: {e}", env_file.display()));
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self { dir, env }
    }

    /// The admin kubeconfig (system:masters via a static token).
    pub fn kubeconfig(&self) -> PathBuf {
        PathBuf::from(&self.env["KUBECONFIG"])
    }

    /// The state directory: logs, audit log, PKI.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A value from the control plane's `env` file (KUBE_API_URL, AUDIT_LOG, KUBE_VERSION, ...).
    pub fn env(&self, key: &str) -> &str {
        &self.env[key]
    }

    /// A kube client with admin rights; one per test, since a client is bound to the tokio
    /// runtime it was first used on and every `#[tokio::test]` has its own.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(self.kubeconfig()).expect("read kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kubeconfig to client config");
        kube::Client::try_from(config).expect("kube client")
    }

    pub fn kubectl(&self) -> Kubectl {
        Kubectl::new(self.kubeconfig())
    }

    /// Binds the operator's test identity (group `sip-operator:test`) to the least-privilege
    /// ClusterRole in `tests/support/operator-rbac.yaml`; without it the operator may do nothing.
    fn install_operator_rbac(&self) {
        self.apply_file("tests/support/operator-rbac.yaml");
    }

    /// `kubectl apply --server-side` of a file or folder of the repository, as the tests' manager.
    fn apply_file(&self, rel: &str) {
        self.kubectl()
            .run(&[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=sip-operator-tests",
                "-f",
            ])
            .arg(repo_path(rel))
            .ok();
    }

    /// Server-side applies `crds/` and waits until the API server serves them.
    fn install_crds(&self) {
        self.apply_file("crds");
        self.kubectl()
            .run(&["wait", "--for=condition=Established", "--timeout=60s"])
            .args(
                sip_operator::crds::all()
                    .iter()
                    .map(|crd| format!("crd/{}", crd.metadata.name.as_deref().unwrap_or_default())),
            )
            .ok();
    }
}
