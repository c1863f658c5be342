//! Test harness shared by the integration tests: one real control plane per test run, the
//! CRDs installed once, and a namespace of its own for every test so tests run in parallel.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod audit;
pub mod control_plane;
pub mod kamailio;
pub mod kubectl;
pub mod namespace;
pub mod operator;
pub mod sipp;

pub use control_plane::ControlPlane;
pub use kubectl::Kubectl;
pub use namespace::TestNamespace;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `repo_root()/rel`.
pub fn repo_path(rel: &str) -> PathBuf {
    repo_root().join(rel)
}

/// The YAML files of examples/ (a GitOps repo's content), in apply order.
pub fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo_path("examples"))
        .expect("read examples/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// A log file of a process the tests started (empty until it wrote something).
pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
