//! An in-memory registrar for unit tests: holds users and markers, records every push and
//! removal call, and fails on demand (the real Kamailio is the end-to-end tier's business).
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{AuthFailures, Contact, EntrySpec, Registrar, RegistrarError, UserEntry, UserKey};
use crate::sync::lock;

/// One call a [`Fake`] received.
#[derive(Clone, Debug)]
pub enum Call {
    Upsert(Vec<String>),
    Remove(Vec<String>),
}

/// An in-memory registrar endpoint.
#[derive(Default)]
pub struct Fake {
    endpoint: String,
    users: Mutex<BTreeMap<String, UserEntry>>,
    markers: Mutex<HashMap<String, String>>,
    calls: Mutex<Vec<Call>>,
    failing: AtomicBool,
    /// Like a config without the `devices` htable: users with devices are refused.
    no_devices: AtomicBool,
    /// What `auth_failures` reports.
    auth_failures: Mutex<AuthFailures>,
}

impl Fake {
    pub fn new(endpoint: &str) -> Arc<Fake> {
        Arc::new(Fake {
            endpoint: endpoint.into(),
            ..Default::default()
        })
    }

    /// Every push or removal call so far.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// The usernames it holds, sorted.
    pub fn users(&self) -> Vec<String> {
        lock(&self.users)
            .values()
            .map(|e| e.key.username.clone())
            .collect()
    }

    /// Makes every later call fail (`true`) or succeed again.
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }

    /// Makes later upserts refuse users with devices (`true`), as a Kamailio whose config has
    /// no `devices` htable does, pushing the others.
    pub fn refuse_devices(&self, refuse: bool) {
        self.no_devices.store(refuse, Ordering::Relaxed);
    }

    /// Makes later `auth_failures` reads report `failures`.
    pub fn set_auth_failures(&self, failures: AuthFailures) {
        *lock(&self.auth_failures) = failures;
    }

    /// Forgets users and markers, like a restarted Kamailio.
    pub fn restart(&self) {
        lock(&self.users).clear();
        lock(&self.markers).clear();
    }

    fn check(&self) -> Result<(), RegistrarError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(RegistrarError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: "the fake is failing".into(),
            });
        }
        Ok(())
    }
}

impl Registrar for Fake {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn upsert<'a>(&'a self, users: &'a [UserEntry]) -> BoxFuture<'a, Result<(), RegistrarError>> {
        async move {
            lock(&self.calls).push(Call::Upsert(
                users.iter().map(|u| u.key.username.clone()).collect(),
            ));
            self.check()?;
            let refuse = self.no_devices.load(Ordering::Relaxed);
            let mut held = lock(&self.users);
            let mut refused = Vec::new();
            for u in users {
                if refuse && !u.devices.is_empty() {
                    refused.push(u.key.clone());
                } else {
                    held.insert(u.key.key(), u.clone());
                }
            }
            if refused.is_empty() {
                return Ok(());
            }
            Err(RegistrarError::PartlyRejected {
                users: refused,
                error: Box::new(RegistrarError::Rejected {
                    endpoint: self.endpoint.clone(),
                    method: "htable.sets".into(),
                    reason: "the fake holds no devices".into(),
                }),
            })
        }
        .boxed()
    }

    fn remove<'a>(&'a self, users: &'a [UserKey]) -> BoxFuture<'a, Result<(), RegistrarError>> {
        async move {
            lock(&self.calls).push(Call::Remove(users.iter().map(|u| u.username.clone()).collect()));
            self.check()?;
            let mut held = lock(&self.users);
            for u in users {
                held.remove(&u.key());
            }
            Ok(())
        }
        .boxed()
    }

    fn sync_marker<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Option<String>, RegistrarError>> {
        async move {
            self.check()?;
            Ok(lock(&self.markers).get(domain).cloned())
        }
        .boxed()
    }

    fn set_sync_marker<'a>(
        &'a self,
        domain: &'a str,
        marker: &'a str,
    ) -> BoxFuture<'a, Result<(), RegistrarError>> {
        async move {
            self.check()?;
            lock(&self.markers).insert(domain.into(), marker.into());
            Ok(())
        }
        .boxed()
    }

    fn registrations(&self) -> BoxFuture<'_, Result<Vec<Contact>, RegistrarError>> {
        async move {
            self.check()?;
            Ok(Vec::new())
        }
        .boxed()
    }

    fn auth_failures(&self) -> BoxFuture<'_, Result<AuthFailures, RegistrarError>> {
        async move {
            self.check()?;
            Ok(lock(&self.auth_failures).clone())
        }
        .boxed()
    }
}

/// A user entry of `user@domain` with `realm` (MD5 only, password "secret").
pub fn entry(user: &str, domain: &str, realm: &str) -> UserEntry {
    build(user, domain, realm, None)
}

/// A user entry of `user@domain` with one device, `device` (MD5 only, password "secret").
pub fn entry_with_device(user: &str, domain: &str, device: &str) -> UserEntry {
    build(user, domain, domain, Some(device))
}

fn build(user: &str, domain: &str, realm: &str, device: Option<&str>) -> UserEntry {
    let password = crate::credentials::Password::new("secret");
    let devices: Vec<crate::registrar::DeviceCredentials<'_>> = device
        .map(|name| crate::registrar::DeviceCredentials {
            name,
            password: &password,
            previous: None,
            changed_at: None,
        })
        .into_iter()
        .collect();
    UserEntry::build(&EntrySpec {
        username: user,
        domain,
        realm,
        password: &password,
        previous: None,
        changed_at: None,
        devices: &devices,
        algorithms: &[crate::api::DigestAlgorithm::Md5],
        max_contacts: 1,
        extension: None,
        aliases: &[],
        flags: &[],
        barge_group: None,
        caller_id: None,
    })
}
