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
    /// `None` only while `restart` replaces it.
    task: Option<ManagerTask>,
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
            task: Some(task),
            holders,
        })
    }

    /// Waits until this replica leads. `false` when the election ended (its lease manager
    /// stopped).
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
            self.restart().await;
        }
    }

    /// Replaces the lease manager with a new one. The old one is stopped first (closing its
    /// channel makes it release the Lease if it happens to hold it, and exit): two managers of
    /// one identity must never race each other's writes. A new one that cannot be built (the
    /// API server unreachable) is retried with backoff: this replica stays a candidate.
    async fn restart(&mut self) {
        // The old manager's only receiver: replaced by one of a channel nobody sends on.
        let (_, standing_in) = watch::channel(false);
        drop(std::mem::replace(&mut self.is_leader, standing_in));
        if let Some(old) = self.task.take() {
            stop(old).await;
        }
        let mut delay = std::time::Duration::from_millis(200);
        loop {
            match start(&self.params).await {
                Ok((is_leader, task)) => {
                    self.is_leader = is_leader;
                    self.task = Some(task);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "could not restart leader election after a release");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(10));
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
        let Some(task) = self.task else {
            return Ok(());
        };
        match task.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("releasing the Lease: {e}")),
            Err(e) => Err(format!("lease task: {e}")),
        }
    }
}

/// Waits for a lease manager whose channel was closed to release and exit; one stuck in its
/// error backoff (up to 30 s) is aborted after 5 s instead.
async fn stop(mut task: ManagerTask) {
    if tokio::time::timeout(std::time::Duration::from_secs(5), &mut task)
        .await
        .is_err()
    {
        task.abort();
        let _ = task.await;
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
/// logged, retried with backoff and yield nothing.
fn holders(p: &Params) -> BoxStream<'static, Option<String>> {
    let leases: Api<Lease> = Api::namespaced(p.client.clone(), &p.namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", p.name));
    let name = p.name.clone();
    watcher(leases, config)
        .default_backoff()
        .filter_map(move |event| {
            let name = name.clone();
            async move {
                match event {
                    Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease)) => Some(holder(&lease)),
                    Ok(watcher::Event::Delete(_)) => Some(None),
                    Ok(_) => None,
                    Err(e) => {
                        // E.g. RBAC without list/watch on the Lease: a standby then waits out
                        // the holder's term, as before.
                        tracing::warn!(lease = %name, error = %e, "cannot watch the leader Lease; a released Lease is noticed only when its term ends");
                        None
                    }
                }
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
