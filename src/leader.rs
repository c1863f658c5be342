//! Leader election through a coordination.k8s.io Lease (kube-lease-manager): one replica
//! reconciles, the others wait; the leader releases the Lease on shutdown, and a standby that
//! sees the release (it watches the Lease) tries to take it at once instead of after the
//! Lease's term.
//!
//! Why the watch: kube-lease-manager's standby sleeps until the holder's term ends and only
//! then reads the Lease again, so a released Lease waited up to a whole term for it — and went
//! to whichever replica looked first, typically the leader's replacement pod just starting
//! (seen on a real node: the replacement led 0.9 s after the deletion, the standby never).
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Who this replica is in which Lease: what a lease manager is (re)built from.
struct Params {
    client: Client,
    namespace: String,
    name: String,
    identity: String,
    duration_seconds: u64,
}

type ManagerTask = JoinHandle<Result<LeaseManager, LeaseManagerError>>;

/// A running election: `is_leader` follows this replica's state.
pub struct Election {
    params: Params,
    is_leader: watch::Receiver<bool>,
    task: ManagerTask,
    /// The Lease's holder (`None`: free or gone), from a watch of that one Lease.
    holders: BoxStream<'static, Option<String>>,
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
        let params = Params {
            client,
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            duration_seconds,
        };
        let (is_leader, task) = start(&params).await?;
        let holders = holders(&params);
        Ok(Self {
            params,
            is_leader,
            task,
            holders,
        })
    }

    /// Waits until this replica leads. `false` when the election ended (closed channel, or the
    /// lease manager could not be restarted).
    pub async fn acquired(&mut self) -> bool {
        loop {
            tokio::select! {
                // Leading first: a release seen together with our own win restarts nothing.
                biased;
                leading = self.is_leader.wait_for(|leading| *leading) => return leading.is_ok(),
                () = next_release(&mut self.holders, &self.params.identity) => {}
            }
            // Released by its holder: a new manager reads the Lease now and takes it if free.
            tracing::info!(lease = %self.params.name, "the leader released the Lease; trying to take it");
            match start(&self.params).await {
                Ok((is_leader, task)) => {
                    let old = std::mem::replace(&mut self.task, task);
                    // Dropping the old receiver stops the old manager (it holds nothing).
                    self.is_leader = is_leader;
                    let _ = old.await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not restart leader election after a release");
                    return false;
                }
            }
        }
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

async fn start(p: &Params) -> Result<(watch::Receiver<bool>, ManagerTask), LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(p.client.clone(), &p.name)
        .with_namespace(&p.namespace)
        .with_identity(&p.identity)
        .with_duration(p.duration_seconds)
        // Renew when a third of the term is left: tolerates a slow API server.
        .with_grace((p.duration_seconds / 3).max(1))
        .with_field_manager(format!("sip-operator-{}", p.identity))
        .build()
        .await?;
    Ok(manager.watch().await)
}

/// The holder of the Lease after every change, from a watch of that one object (RBAC may
/// name it: the field selector lets `resourceNames` cover list and watch). Watch errors are
/// retried with backoff and yield nothing.
fn holders(p: &Params) -> BoxStream<'static, Option<String>> {
    let leases: Api<Lease> = Api::namespaced(p.client.clone(), &p.namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", p.name));
    watcher(leases, config)
        .default_backoff()
        .filter_map(|event| async move {
            match event {
                Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease)) => Some(holder(&lease)),
                Ok(watcher::Event::Delete(_)) => Some(None),
                _ => None,
            }
        })
        .boxed()
}

/// The Lease's holder; an empty identity (how a release is written) counts as none.
fn holder(lease: &Lease) -> Option<String> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .clone()
        .filter(|h| !h.is_empty())
}

/// Resolves when the Lease goes from held by another replica to free: edge-triggered, so a
/// Lease that is free when this starts (the manager takes it by itself) wakes nothing.
async fn next_release(holders: &mut BoxStream<'static, Option<String>>, me: &str) {
    let mut held_by_other = false;
    while let Some(h) = holders.next().await {
        if released(&mut held_by_other, h.as_deref(), me) {
            return;
        }
    }
    // The watch ended (it never does with backoff): wait for the manager alone.
    std::future::pending::<()>().await;
}

/// One step of `next_release`: `true` when `holder` frees a Lease another replica held.
fn released(held_by_other: &mut bool, holder: Option<&str>, me: &str) -> bool {
    match holder {
        Some(h) => {
            *held_by_other = h != me;
            false
        }
        None => std::mem::take(held_by_other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;

    fn steps(holders: &[Option<&str>]) -> Vec<bool> {
        let mut held_by_other = false;
        holders
            .iter()
            .map(|h| released(&mut held_by_other, *h, "me"))
            .collect()
    }

    #[test]
    fn a_release_by_another_replica_wakes_the_standby_once() {
        assert_eq!(
            steps(&[Some("a"), Some("a"), None, None]),
            [false, false, true, false]
        );
    }

    #[test]
    fn a_lease_free_from_the_start_or_released_by_this_replica_wakes_nothing() {
        assert_eq!(steps(&[None, None]), [false, false]);
        assert_eq!(steps(&[Some("me"), None]), [false, false]);
        assert_eq!(
            steps(&[Some("a"), Some("me"), None, Some("b"), None]),
            [false, false, false, false, true]
        );
    }

    #[test]
    fn an_empty_holder_identity_is_a_release() {
        let lease = |h: Option<&str>| Lease {
            spec: Some(LeaseSpec {
                holder_identity: h.map(String::from),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        };
        assert_eq!(holder(&lease(Some("a"))), Some("a".to_string()));
        assert_eq!(holder(&lease(Some(""))), None);
        assert_eq!(holder(&lease(None)), None);
        assert_eq!(holder(&Lease::default()), None);
    }
}
