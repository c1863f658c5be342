//! The Helm chart (`charts/sip-operator/`) against the real control plane: `helm lint`, the
//! rendered manifests accepted by the API server (server-side dry run) for several value sets,
//! wrong values refused by values.schema.json, and the chart's RBAC proven sufficient by
//! running the operator under the chart's ServiceAccount token through a whole scenario, and
//! proven narrow in namespaced mode. `helm` is built from the Go module proxy and cached
//! (tests/tools/helm/build.sh); `scripts/test.sh` passes its path in `SIP_OPERATOR_TEST_HELM`.
#[path = "../support/mod.rs"]
mod support;

mod rbac;
mod render;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use support::repo_path;

/// The chart directory.
pub fn chart() -> String {
    repo_path("charts/sip-operator").display().to_string()
}

/// The helm binary: `SIP_OPERATOR_TEST_HELM`, else built (once, cached) by build.sh.
pub fn helm_bin() -> &'static PathBuf {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        if let Ok(path) = std::env::var("SIP_OPERATOR_TEST_HELM")
            && !path.is_empty()
        {
            return PathBuf::from(path);
        }
        let out = Command::new(repo_path("tests/tools/helm/build.sh"))
            .output()
            .expect("run tests/tools/helm/build.sh");
        assert!(
            out.status.success(),
            "tests/tools/helm/build.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// What a helm run printed, and whether it succeeded.
pub struct Helm {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs helm with `args` (and the control plane's admin kubeconfig, for `lookup`).
pub fn helm(args: &[&str]) -> Helm {
    let out = Command::new(helm_bin())
        .args(args)
        .env("KUBECONFIG", support::ControlPlane::shared().kubeconfig())
        // Helm's own caches and config stay out of $HOME.
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("sip-operator-helm/cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("sip-operator-helm/config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("sip-operator-helm/data"),
        )
        .output()
        .expect("run helm");
    Helm {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `helm template` of the chart as release `release` in `namespace` with `--set` values (and
/// helm flags, which start with `--`).
pub fn template(release: &str, namespace: &str, sets: &[&str]) -> Helm {
    let chart = chart();
    let mut args = vec!["template", release, chart.as_str(), "--namespace", namespace];
    for set in sets {
        // Plain helm flags pass through; everything else is a value.
        if set.starts_with("--") {
            args.push(set);
        } else {
            args.extend(["--set", set]);
        }
    }
    helm(&args)
}
