//! One registrar endpoint as reconciles use it: pushes and removals of concurrent reconciles
//! are gathered by a task per endpoint into one `upsert`/`remove` call per batch, instead of a
//! call (and, for a push, a realm write) per user. The task takes what is queued, up to
//! [`MAX_BATCH`], calls the registrar once, and tells each caller how its batch went; while a
//! batch is in flight the next one queues. One batch at a time per endpoint keeps Kamailio's
//! load at the client's own pipelining (a few calls in flight), whatever the reconcile
//! concurrency.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::registrar::{AuthFailures, Contact, Registrar, RegistrarError, UserEntry, UserKey};

/// The most users one batch carries.
pub const MAX_BATCH: usize = 256;
/// Requests waiting per endpoint before callers wait to queue (backpressure).
const QUEUE: usize = 4 * MAX_BATCH;

/// A registrar endpoint with its batching task. Cheap to clone; the task ends once the last
/// clone is dropped and the queue is drained.
#[derive(Clone)]
pub struct Endpoint {
    registrar: Arc<dyn Registrar>,
    queue: mpsc::Sender<Request>,
}

enum Op {
    // Boxed: an entry is far larger than a key, and requests wait in a queue.
    Upsert(Box<UserEntry>),
    Remove(UserKey),
}

struct Request {
    op: Op,
    reply: oneshot::Sender<Result<(), RegistrarError>>,
    /// The caller's span, so that a batch's span can point at each reconcile it serves.
    caller: Option<tracing::Id>,
}

impl Endpoint {
    /// The endpoint `registrar`, with its batching task spawned on the current runtime.
    pub fn new(registrar: Arc<dyn Registrar>) -> Endpoint {
        let (queue, requests) = mpsc::channel(QUEUE);
        tokio::spawn(run(registrar.clone(), requests));
        Endpoint { registrar, queue }
    }

    /// The registrar itself, for calls that are batches already (a full sync) or reads.
    pub fn registrar(&self) -> &dyn Registrar {
        self.registrar.as_ref()
    }

    /// Makes the endpoint hold `entry`, in a batch with whatever else is queued.
    pub async fn queue_upsert(&self, entry: UserEntry) -> Result<(), RegistrarError> {
        self.queue(Op::Upsert(Box::new(entry))).await
    }

    /// Makes the endpoint drop `key`, in a batch with whatever else is queued.
    pub async fn queue_remove(&self, key: UserKey) -> Result<(), RegistrarError> {
        self.queue(Op::Remove(key)).await
    }

    async fn queue(&self, op: Op) -> Result<(), RegistrarError> {
        let (reply, answer) = oneshot::channel();
        let caller = tracing::Span::current().id();
        let stopped = || RegistrarError::Unreachable {
            endpoint: self.registrar.endpoint().to_string(),
            reason: "the operator's queue for this endpoint has stopped".into(),
        };
        self.queue
            .send(Request { op, reply, caller })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Reads and status go straight to the registrar: only pushes and removals are batched.
impl Registrar for Endpoint {
    fn endpoint(&self) -> &str {
        self.registrar.endpoint()
    }
    fn upsert<'a>(&'a self, users: &'a [UserEntry]) -> BoxFuture<'a, Result<(), RegistrarError>> {
        self.registrar.upsert(users)
    }
    fn remove<'a>(&'a self, users: &'a [UserKey]) -> BoxFuture<'a, Result<(), RegistrarError>> {
        self.registrar.remove(users)
    }
    fn sync_marker<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Option<String>, RegistrarError>> {
        self.registrar.sync_marker(domain)
    }
    fn set_sync_marker<'a>(
        &'a self,
        domain: &'a str,
        marker: &'a str,
    ) -> BoxFuture<'a, Result<(), RegistrarError>> {
        self.registrar.set_sync_marker(domain, marker)
    }
    fn registrations(&self) -> BoxFuture<'_, Result<Vec<Contact>, RegistrarError>> {
        self.registrar.registrations()
    }
    fn auth_failures(&self) -> BoxFuture<'_, Result<AuthFailures, RegistrarError>> {
        self.registrar.auth_failures()
    }
}

async fn run(registrar: Arc<dyn Registrar>, mut requests: mpsc::Receiver<Request>) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut queued, MAX_BATCH).await > 0 {
        for run in runs(std::mem::take(&mut queued)) {
            call(registrar.as_ref(), run).await;
        }
    }
}

/// The requests of one registrar call: all upserts or all removals.
struct Run {
    upsert: bool,
    requests: Vec<Request>,
}

/// Splits what was queued into calls, keeping its order where it matters: a run ends when
/// the kind changes (a removal queued after a push must land after it), when a user comes
/// again (one call applies its users in any order), or when a push brings a second realm for
/// a SIP domain (a registrar call refuses that, which must not fail the other callers).
fn runs(requests: Vec<Request>) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    let mut keys: HashSet<String> = HashSet::new();
    let mut realms: HashMap<String, String> = HashMap::new();
    for request in requests {
        let (upsert, key, realm) = match &request.op {
            Op::Upsert(e) => (
                true,
                e.key.key(),
                Some((e.key.domain.to_ascii_lowercase(), &e.realm)),
            ),
            Op::Remove(k) => (false, k.key(), None),
        };
        let fits = out.last().is_some_and(|r| r.upsert == upsert)
            && !keys.contains(&key)
            && realm
                .as_ref()
                .is_none_or(|(d, r)| realms.get(d).is_none_or(|known| known == *r));
        if !fits {
            out.push(Run {
                upsert,
                requests: Vec::new(),
            });
            keys.clear();
            realms.clear();
        }
        keys.insert(key);
        if let Some((domain, realm)) = realm {
            realms.insert(domain, realm.clone());
        }
        if let Some(run) = out.last_mut() {
            run.requests.push(request);
        }
    }
    out
}

async fn call(registrar: &dyn Registrar, run: Run) {
    let (name, users) = (
        if run.upsert {
            "registrar_upsert"
        } else {
            "registrar_remove"
        },
        run.requests.len(),
    );
    let span = tracing::info_span!(
        "registrar_batch",
        call = name,
        endpoint = registrar.endpoint(),
        users
    );
    for caller in run.requests.iter().filter_map(|r| r.caller.clone()) {
        span.follows_from(caller);
    }
    let result = if run.upsert {
        let entries: Vec<UserEntry> = run
            .requests
            .iter()
            .filter_map(|r| match &r.op {
                Op::Upsert(e) => Some(UserEntry::clone(e)),
                Op::Remove(_) => None,
            })
            .collect();
        registrar.upsert(&entries).instrument(span).await
    } else {
        let keys: Vec<UserKey> = run
            .requests
            .iter()
            .filter_map(|r| match &r.op {
                Op::Remove(k) => Some(k.clone()),
                Op::Upsert(_) => None,
            })
            .collect();
        registrar.remove(&keys).instrument(span).await
    };
    for request in run.requests {
        let key = match &request.op {
            Op::Upsert(e) => &e.key,
            Op::Remove(k) => k,
        };
        let outcome = match &result {
            Ok(()) => Ok(()),
            Err(e) => e.for_user(key).map_or(Ok(()), |e| Err(e.clone())),
        };
        // A caller that gave up (its reconcile was dropped) needs no answer.
        let _ = request.reply.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::fake::{Call, Fake};

    fn entry(user: &str, realm: &str) -> UserEntry {
        crate::registrar::fake::entry(user, "acme.example.com", realm)
    }

    #[tokio::test]
    async fn a_batch_refused_for_some_users_fails_only_theirs() {
        let fake = Fake::new("http://a/RPC");
        fake.refuse_devices(true);
        let endpoint = Endpoint::new(fake.clone());
        let with_devices = crate::registrar::fake::entry_with_device("dana", "acme.example.com", "desk");
        let (plain, dana) = futures::future::join(
            endpoint.queue_upsert(entry("alice", "acme.example.com")),
            endpoint.queue_upsert(with_devices),
        )
        .await;
        assert_eq!(fake.calls().len(), 1, "one batch: {:?}", fake.calls());
        assert!(plain.is_ok(), "{plain:?}");
        let err = dana.expect_err("dana's devices cannot be held");
        assert!(err.to_string().contains("no devices"), "{err}");
        assert_eq!(fake.users(), ["alice"]);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_call_and_each_hears_its_outcome() {
        let fake = Fake::new("http://a/RPC");
        let endpoint = Endpoint::new(fake.clone());
        let pushes = (0..20).map(|i| endpoint.queue_upsert(entry(&format!("u{i}"), "acme")));
        let results = futures::future::join_all(pushes).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(fake.calls().len(), 1, "{:?}", fake.calls());
        assert_eq!(fake.users().len(), 20);

        fake.fail(true);
        let pushes = (0..3).map(|i| endpoint.queue_upsert(entry(&format!("v{i}"), "acme")));
        let results = futures::future::join_all(pushes).await;
        assert!(
            results.iter().all(Result::is_err),
            "a failed batch fails each caller"
        );
        assert_eq!(fake.calls().len(), 2);
    }

    #[tokio::test]
    async fn order_kind_repeats_and_realms_split_a_batch() {
        let fake = Fake::new("http://a/RPC");
        let endpoint = Endpoint::new(fake.clone());
        let key = |u: &str| UserKey::new(u, "acme.example.com");
        let (a, b, c, d, e, f) = futures::join!(
            endpoint.queue_upsert(entry("alice", "acme")),
            endpoint.queue_upsert(entry("bob", "acme")),
            endpoint.queue_remove(key("alice")),
            endpoint.queue_upsert(entry("carol", "acme")),
            endpoint.queue_upsert(entry("carol", "acme")),
            endpoint.queue_upsert(entry("dave", "other")),
        );
        for r in [a, b, c, d, e, f] {
            r.expect("pushed");
        }
        let calls = fake.calls();
        let shape: Vec<(bool, usize)> = calls
            .iter()
            .map(|c| match c {
                Call::Upsert(users) => (true, users.len()),
                Call::Remove(keys) => (false, keys.len()),
            })
            .collect();
        assert_eq!(
            shape,
            [(true, 2), (false, 1), (true, 1), (true, 1), (true, 1)],
            "a removal after the push, carol twice in two calls, a second realm alone"
        );
        assert_eq!(fake.users(), ["bob", "carol", "dave"]);
    }
}
