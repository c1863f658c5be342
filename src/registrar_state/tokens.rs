//! Registrar tokens, read from their Secrets once per Secret version. The operator does not
//! watch Secrets with their data (that would cache every Secret of every watched namespace);
//! its metadata-only watch tells [`Tokens::invalidate`] when one changes, and the next resolve
//! reads that Secret again.
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::Secret;

use crate::credentials::secret_value;
use crate::sync::lock;

/// What a token Secret held for one key when it was last read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    /// The Secret does not exist.
    NoSecret,
    /// The Secret exists without the key.
    NoKey,
    /// The key's value (possibly empty).
    Value(String),
}

impl Held {
    /// What `secret` (if it exists) holds under `key`.
    pub fn of(secret: Option<&Secret>, key: &str) -> Held {
        match secret {
            None => Held::NoSecret,
            Some(s) => secret_value(s, key).map_or(Held::NoKey, Held::Value),
        }
    }
}

/// Tokens by (namespace, Secret name, key), as last read.
#[derive(Default)]
pub struct Tokens {
    held: Mutex<HashMap<(String, String, String), Held>>,
    /// Bumped by every invalidation: a read that raced one is used but not kept, so a value
    /// older than the change the watch reported is never cached.
    epoch: AtomicU64,
}

impl Tokens {
    /// What Secret `namespace/name` holds under `key`: cached, else read with `read` (a GET)
    /// and kept until the Secret changes.
    pub async fn get<F, E>(&self, namespace: &str, name: &str, key: &str, read: F) -> Result<Held, E>
    where
        F: Future<Output = Result<Option<Secret>, E>>,
    {
        let id = (namespace.to_string(), name.to_string(), key.to_string());
        if let Some(held) = lock(&self.held).get(&id) {
            return Ok(held.clone());
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let held = Held::of(read.await?.as_ref(), key);
        let mut cached = lock(&self.held);
        if self.epoch.load(Ordering::Acquire) == epoch {
            cached.insert(id, held.clone());
        }
        Ok(held)
    }

    /// Secret `namespace/name` changed (or appeared, or went): read it again when next needed.
    pub fn invalidate(&self, namespace: &str, name: &str) {
        let mut cached = lock(&self.held);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        cached.retain(|(ns, n, _), _| !(ns == namespace && n == name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn secret(value: &str) -> Secret {
        Secret {
            data: Some(
                [(
                    "token".to_string(),
                    k8s_openapi::ByteString(value.as_bytes().to_vec()),
                )]
                .into_iter()
                .collect(),
            ),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_secret_is_read_once_until_the_watch_says_it_changed() {
        let tokens = Tokens::default();
        let reads = AtomicUsize::new(0);
        // Counted when awaited: a cached answer never awaits the read.
        let read = |value: &'static str| {
            let reads = &reads;
            async move {
                reads.fetch_add(1, Ordering::Relaxed);
                Ok::<_, ()>(Some(secret(value)))
            }
        };
        for _ in 0..3 {
            let held = tokens.get("ns", "rpc", "token", read("t1")).await;
            assert_eq!(held, Ok(Held::Value("t1".into())));
        }
        assert_eq!(reads.load(Ordering::Relaxed), 1);
        tokens.invalidate("ns", "other");
        assert_eq!(
            tokens.get("ns", "rpc", "token", read("t1")).await,
            Ok(Held::Value("t1".into()))
        );
        assert_eq!(reads.load(Ordering::Relaxed), 1, "another Secret changed");
        tokens.invalidate("ns", "rpc");
        assert_eq!(
            tokens.get("ns", "rpc", "token", read("t2")).await,
            Ok(Held::Value("t2".into()))
        );
        assert_eq!(reads.load(Ordering::Relaxed), 2);
        let missing = tokens
            .get("ns", "gone", "token", async { Ok::<_, ()>(None) })
            .await;
        assert_eq!(
            missing,
            Ok(Held::NoSecret),
            "absence is cached too, until it is created"
        );
        let failed = tokens
            .get("ns", "x", "token", async { Err::<Option<Secret>, _>("io") })
            .await;
        assert_eq!(failed, Err("io"), "failures are not cached");
    }

    #[tokio::test]
    async fn a_read_that_raced_a_change_is_not_kept() {
        let tokens = Tokens::default();
        let held = tokens
            .get("ns", "rpc", "token", async {
                // The watch reports a change while the GET is in flight.
                tokens.invalidate("ns", "rpc");
                Ok::<_, ()>(Some(secret("old")))
            })
            .await;
        assert_eq!(held, Ok(Held::Value("old".into())));
        let again = tokens
            .get("ns", "rpc", "token", async { Ok::<_, ()>(Some(secret("new"))) })
            .await;
        assert_eq!(again, Ok(Held::Value("new".into())));
    }
}
