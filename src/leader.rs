//! Leader election through a coordination.k8s.io Lease (kube-lease-manager): one replica
//! reconciles, the others wait; the leader releases the Lease on shutdown so a standby takes
//! over at once instead of after the Lease expires.
use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running election: `is_leader` follows this replica's state.
pub struct Election {
    pub is_leader: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Election {
    /// Joins the election for `name` in `namespace` (the Lease is created if missing).
    pub async fn join(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration_seconds: u64,
    ) -> Result<Self, LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client, name)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(duration_seconds)
            // Renew when a third of the term is left: tolerates a slow API server.
            .with_grace((duration_seconds / 3).max(1))
            .with_field_manager(format!("sip-operator-{identity}"))
            .build()
            .await?;
        let (is_leader, task) = manager.watch().await;
        Ok(Self { is_leader, task })
    }

    /// Waits until this replica leads. `false` when the election ended (closed channel).
    pub async fn acquired(&mut self) -> bool {
        self.is_leader.wait_for(|leading| *leading).await.is_ok()
    }

    /// Resolves when leadership is lost.
    pub async fn lost(&mut self) {
        let _ = self.is_leader.wait_for(|leading| !*leading).await;
    }

    /// Leaves the election, releasing the Lease if held.
    pub async fn leave(self) -> Result<(), String> {
        drop(self.is_leader);
        match self.task.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("releasing the Lease: {e}")),
            Err(e) => Err(format!("lease task: {e}")),
        }
    }
}
