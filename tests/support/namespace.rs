//! A namespace per test, so tests never see each other's objects and can run in parallel.
use std::sync::atomic::{AtomicU32, Ordering};

use super::{ControlPlane, Kubectl};

pub struct TestNamespace {
    pub name: String,
    kubectl: Kubectl,
}

impl TestNamespace {
    /// Creates `<prefix>-<pid>-<n>` on the shared control plane.
    pub fn create(prefix: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let cp = ControlPlane::shared();
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let kubectl = cp.kubectl();
        kubectl.run(&["create", "namespace", &name]).ok();
        Self { name, kubectl }
    }

    /// kubectl scoped to this namespace.
    pub fn kubectl(&self, args: &[&str]) -> super::kubectl::Run {
        self.kubectl.run_in(&self.name, args)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // The namespace controller empties and removes it in the background.
        let _ = self
            .kubectl
            .run(&["delete", "namespace", &self.name, "--wait=false"])
            .output();
    }
}
