//! Kamailio over JSON-RPC (jsonrpcs behind xhttp): users live in the htable `users`, keyed
//! `username@domain`, filled only by the operator; each domain's digest realm lives in the
//! htable `realms`, keyed by the domain; contacts live in usrloc (`location`).
//!
//! Kamailio 5.6 answers a batch array with an empty result and applies nothing, so calls go
//! one by one over a keep-alive connection pool, several in flight at once.
//!
//! Registrations are read from the shipped config's registration journal (see `journal.rs`
//! for why not `ul.dump`): each client keeps a mirror of the endpoint's usrloc, shared by its
//! clones, and a read brings it up to date with what changed since the last one: two small
//! RPCs when nothing did, two per changed AoR otherwise. A config without the journal is
//! read with `ul.dump`, which works up to a few thousand AoRs.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

mod answer;
mod auth_dump;
mod htable_value;
mod journal;
mod ul_dump;

pub use htable_value::{DEVICES_HTABLE, DIAL_HTABLE, htable_value};

use super::{AuthFailures, Contact, Registrar, RegistrarError, UserEntry, UserKey};

/// The htable holding the users (the shipped kamailio.cfg declares it).
pub const USERS_HTABLE: &str = "users";
/// The htable holding each SIP domain's digest realm, keyed by the lower-case domain: the
/// shipped kamailio.cfg challenges with it before it looks the user up.
pub const REALMS_HTABLE: &str = "realms";
/// The usrloc table of registered contacts.
pub const LOCATION_TABLE: &str = "location";
/// The htable holding the operator's sync marker: empty after a Kamailio restart.
pub const SYNC_HTABLE: &str = "sync";
const SYNC_MARKER_KEY: &str = "epoch";
/// Calls in flight per endpoint.
const PARALLEL_CALLS: usize = 8;
/// How long one call may take before the endpoint counts as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// One Kamailio JSON-RPC endpoint, e.g. `http://10.0.0.7:5071/RPC`.
#[derive(Clone)]
pub struct Kamailio {
    url: Uri,
    endpoint: String,
    token: Option<String>,
    http: Client<HttpConnector, Full<Bytes>>,
    /// The endpoint's usrloc as last read, shared by the clones of this client.
    mirror: Arc<tokio::sync::Mutex<journal::Mirror>>,
}

impl Kamailio {
    /// The URL a client for `url` would call, or why no client can use it (not a URL, not
    /// `http://`). Pure: checking a URL needs no client.
    pub fn parse_url(url: &str) -> Result<Uri, RegistrarError> {
        let unusable = |reason: String| RegistrarError::Unreachable {
            endpoint: redact_userinfo(url),
            reason,
        };
        let parsed: Uri = url
            .parse()
            .map_err(|e| unusable(format!("not a valid URL: {e}")))?;
        if parsed.scheme_str() != Some("http") {
            return Err(unusable("only http:// JSON-RPC endpoints are supported".into()));
        }
        Ok(parsed)
    }

    /// A client for `url`; `token` is sent as `Authorization: Bearer <token>`.
    pub fn new(url: &str, token: Option<String>) -> Result<Self, RegistrarError> {
        let parsed = Self::parse_url(url)?;
        // The endpoint string goes into status, messages and logs: never with credentials.
        let endpoint = redact_userinfo(url);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http();
        Ok(Self {
            url: parsed,
            endpoint,
            token,
            http,
            mirror: Arc::default(),
        })
    }

    /// One JSON-RPC call; the result, or why there is none.
    #[tracing::instrument(level = "debug", name = "rpc", skip_all, fields(endpoint = %self.endpoint, method = method))]
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RegistrarError> {
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(token) = &self.token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| self.unreachable(format!("building the request: {e}")))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| self.unreachable(e.to_string()))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| self.unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, RegistrarError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| self.unreachable(format!("no answer within {CALL_TIMEOUT:?}")))??;
        answer::interpret(&self.endpoint, method, status, &bytes)
    }

    /// One call per item, several in flight; each item with its result, `None` where the
    /// answer was "not found". The first other failure fails all.
    async fn call_each<T: Send>(
        &self,
        items: impl IntoIterator<Item = T>,
        request: impl Fn(&T) -> (&'static str, Value),
    ) -> Result<Vec<(T, Option<Value>)>, RegistrarError> {
        futures::stream::iter(items)
            .map(|item| {
                let (method, params) = request(&item);
                async move {
                    match self.call(method, params).await {
                        Ok(found) => Ok((item, Some(found))),
                        Err(e) if answer::is_not_found(&e) => Ok((item, None)),
                        Err(e) => Err(e),
                    }
                }
            })
            .buffer_unordered(PARALLEL_CALLS)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    fn unreachable(&self, reason: String) -> RegistrarError {
        RegistrarError::Unreachable {
            endpoint: self.endpoint.clone(),
            reason,
        }
    }

    async fn set_realm(&self, domain: String, realm: String) -> Result<(), RegistrarError> {
        match self
            .call("htable.sets", json!([REALMS_HTABLE, domain, realm]))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => missing_realms_table(e, &domain, &realm),
        }
    }

    /// `htable.sets` with each of `calls`' params, several in flight at once.
    async fn sets_all(&self, calls: Vec<Value>) -> Result<(), RegistrarError> {
        let results: Vec<_> = futures::stream::iter(calls)
            .map(|params| self.call("htable.sets", params))
            .buffer_unordered(PARALLEL_CALLS)
            .collect()
            .await;
        results.into_iter().try_for_each(|r| r.map(drop))
    }

    /// Brings `mirror` up to date with the journal whose state is `now`.
    async fn catch_up(&self, mirror: &mut journal::Mirror, now: journal::Head) -> Result<(), RegistrarError> {
        let started = Instant::now();
        let plan = mirror.plan(&now, started);
        let first = if plan.full {
            mirror.clear();
            self.oldest_entry(now.head).await?
        } else {
            plan.after + 1
        };
        let seqs: Vec<u64> = (first..=now.head).collect();
        let entries: Vec<(u64, Option<journal::Entry>)> = self
            .call_each(seqs, |seq| {
                ("htable.get", json!([journal::JOURNAL_HTABLE, seq.to_string()]))
            })
            .await?
            .into_iter()
            .map(|(seq, item)| (seq, item.as_ref().and_then(journal::entry)))
            .collect();
        let aors = mirror.advance(&now, first.saturating_sub(1), &entries);
        let looked_up = self
            .call_each(aors, |aor| ("ul.lookup", json!([LOCATION_TABLE, aor])))
            .await?;
        let read_at = unix_now();
        for (aor, found) in &looked_up {
            mirror.set(aor, found.as_ref(), read_at);
        }
        mirror.touch(started);
        tracing::debug!(
            endpoint = %self.endpoint,
            full = plan.full,
            entries = entries.len(),
            looked_up = looked_up.len(),
            aors = mirror.aors(),
            "registration journal read"
        );
        Ok(())
    }

    /// The sequence number of the oldest journal entry still present (`head + 1` when there
    /// is none): entries expire oldest first, so the present ones are the newest, found by
    /// bisection. The newest [`journal::IN_FLIGHT`] entries are read whatever: one of them
    /// may be missing only because it is being written, which must not look like expiry.
    async fn oldest_entry(&self, head: u64) -> Result<u64, RegistrarError> {
        let (mut lo, mut hi) = (1, head.saturating_sub(journal::IN_FLIGHT) + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let present = match self
                .call("htable.get", json!([journal::JOURNAL_HTABLE, mid.to_string()]))
                .await
            {
                Ok(_) => true,
                Err(e) if answer::is_not_found(&e) => false,
                Err(e) => return Err(e),
            };
            if present { hi = mid } else { lo = mid + 1 }
        }
        Ok(lo)
    }

    /// Removes a user: its `users` entry, its devices' entries, and the contacts of its own
    /// AOR and of each alias line still dialled as its. What it had is read back from its
    /// entry first, so a retry after a partial failure still knows; the entry goes last.
    /// Its `dial` entries stay: inert without the entry, and the name's next owner
    /// overwrites them (deleting them could race that owner's push).
    async fn remove_one(&self, user: UserKey) -> Result<(), RegistrarError> {
        let key = user.key();
        let held = self
            .call("htable.get", json!([USERS_HTABLE, key]))
            .await
            .map(Some)
            .or_else(|e| {
                if answer::is_not_found(&e) {
                    Ok(None)
                } else {
                    Err(e)
                }
            })?;
        let (lines, devices) = held
            .as_ref()
            .and_then(|v| v.pointer("/item/value").and_then(Value::as_str))
            .map(htable_value::lines_and_devices)
            .unwrap_or_default();
        let line_keys: Vec<String> = lines
            .iter()
            .map(|alias| UserKey::new(alias.as_str(), user.domain.as_str()).key())
            .collect();
        let owners = self
            .call_each(line_keys, |line| ("htable.get", json!([DIAL_HTABLE, line])))
            .await
            .or_else(|e| {
                if answer::is_no_such_table(&e) {
                    Ok(Vec::new())
                } else {
                    Err(e)
                }
            })?;
        let mut calls: Vec<(&'static str, &'static str, String)> = owners
            .into_iter()
            .filter(|(_, dial)| {
                dial.as_ref()
                    .and_then(|v| v.pointer("/item/value").and_then(Value::as_str))
                    .and_then(htable_value::dial_owner)
                    .is_some_and(|owner| owner == user.username)
            })
            .map(|(line, _)| ("ul.rm", LOCATION_TABLE, line))
            .collect();
        calls.extend(devices.iter().map(|d| {
            let auth = crate::api::device_auth_username(&user.username, d);
            (
                "htable.delete",
                DEVICES_HTABLE,
                UserKey::new(auth, user.domain.as_str()).key(),
            )
        }));
        // htable.delete alone leaves registered contacts in place, hence ul.rm as well.
        calls.push(("htable.delete", USERS_HTABLE, key.clone()));
        calls.push(("ul.rm", LOCATION_TABLE, key));
        let mut dropped = Vec::new();
        for (method, table, key) in calls {
            // Removing is idempotent: what is already gone (Kamailio answers 404) is done.
            match self.call(method, json!([table, key])).await {
                Err(e) if answer::is_not_found(&e) => {}
                other => {
                    other?;
                }
            }
            if table == LOCATION_TABLE {
                dropped.push(key);
            }
        }
        // ul.rm is not journaled: the mirror learns it here (locked only now, so removals
        // run side by side and do not hold up a registrations read).
        let mut mirror = self.mirror.lock().await;
        for aor in dropped {
            mirror.forget(&aor);
        }
        Ok(())
    }

    /// Drops the contacts the pushed `users` no longer allow on their AORs (see
    /// [`journal::Mirror::revoked`]), as far as this client's mirror knows them.
    async fn drop_revoked(&self, users: &[UserEntry]) -> Result<(), RegistrarError> {
        let revoked: Vec<(String, String)> = {
            let mirror = self.mirror.lock().await;
            users
                .iter()
                .flat_map(|u| {
                    u.aors()
                        .into_iter()
                        .flat_map(|aor| {
                            mirror
                                .revoked(&aor, |au, at, old| u.revokes(au, at, old))
                                .into_iter()
                                .map(move |address| (aor.clone(), address))
                        })
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        if revoked.is_empty() {
            return Ok(());
        }
        let dropped = self
            .call_each(revoked, |(aor, address)| {
                ("ul.rm_contact", json!([LOCATION_TABLE, aor, address]))
            })
            .await?;
        let mut mirror = self.mirror.lock().await;
        for ((aor, address), _) in dropped {
            tracing::info!(endpoint = %self.endpoint, aor = %aor, "dropped a contact its user no longer allows");
            mirror.forget_contact(&aor, &address);
        }
        Ok(())
    }
}

impl Registrar for Kamailio {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn sync_marker<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Option<String>, RegistrarError>> {
        async move {
            match self
                .call("htable.get", json!([SYNC_HTABLE, marker_key(domain)]))
                .await
            {
                Ok(value) => Ok(marker_value(&value)),
                // Kamailio answers a missing key with an error ("Key name doesn't exist").
                Err(e) if answer::is_not_found(&e) => Ok(None),
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn set_sync_marker<'a>(
        &'a self,
        domain: &'a str,
        marker: &'a str,
    ) -> BoxFuture<'a, Result<(), RegistrarError>> {
        async move {
            self.call("htable.sets", json!([SYNC_HTABLE, marker_key(domain), marker]))
                .await
                .map(drop)
        }
        .boxed()
    }

    fn upsert<'a>(&'a self, users: &'a [UserEntry]) -> BoxFuture<'a, Result<(), RegistrarError>> {
        // Built before the future (not lazily inside it) so that it stays Send.
        let realms: Result<Vec<(String, String)>, String> = domain_realms(users).map(|realms| {
            realms
                .into_iter()
                .map(|(domain, realm)| (domain, realm.to_string()))
                .collect()
        });
        let user_calls: Vec<Value> = users
            .iter()
            .map(|u| json!([USERS_HTABLE, u.key.key(), htable_value(u)]))
            .collect();
        let with_devices: Vec<UserKey> = users
            .iter()
            .filter(|u| !u.devices.is_empty())
            .map(|u| u.key.clone())
            .collect();
        let without_devices: Vec<Value> = users
            .iter()
            .filter(|u| u.devices.is_empty())
            .map(|u| json!([USERS_HTABLE, u.key.key(), htable_value(u)]))
            .collect();
        let device_calls: Vec<Value> = users
            .iter()
            .flat_map(|u| {
                u.devices.iter().map(move |d| {
                    json!([
                        DEVICES_HTABLE,
                        htable_value::device_key(u, d),
                        htable_value::device_value(d)
                    ])
                })
            })
            .collect();
        let dial_calls: Vec<Value> = users
            .iter()
            .flat_map(htable_value::dial_entries)
            .map(|(key, value)| json!([DIAL_HTABLE, key, value]))
            .collect();
        async move {
            let realms = realms.map_err(|reason| RegistrarError::Inconsistent {
                endpoint: self.endpoint.clone(),
                reason,
            })?;
            // Realms first, and every time: they are idempotent, and a batch is also how a
            // restarted instance gets everything back, so its realms come with its users.
            let results: Vec<_> = futures::stream::iter(realms)
                .map(|(domain, realm)| self.set_realm(domain, realm))
                .buffer_unordered(PARALLEL_CALLS)
                .collect()
                .await;
            results.into_iter().collect::<Result<(), _>>()?;
            // Devices and dialled names before the users entries that list them: the config
            // follows a device or a name only while its owner's entry holds it, so nothing
            // that entry lists is ever missing.
            let devices = self.sets_all(device_calls).await;
            match self.sets_all(dial_calls).await {
                // A config from before dialling by extension and alias: users still register
                // and call by username there.
                Err(e) if answer::is_no_such_table(&e) => {}
                other => other?,
            }
            match devices {
                Ok(()) => {
                    self.sets_all(user_calls).await?;
                    self.drop_revoked(users).await
                }
                // A config from before devices: the users without devices still get there
                // (a full sync must not leave them out); the batch fails with what to load.
                Err(e) if answer::is_no_such_table(&e) => {
                    self.sets_all(without_devices).await?;
                    Err(RegistrarError::PartlyRejected {
                        users: with_devices,
                        error: Box::new(missing_devices_table(e)),
                    })
                }
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn registrations(&self) -> BoxFuture<'_, Result<Vec<Contact>, RegistrarError>> {
        async move {
            let head = match self.call("htable.dump", json!([journal::SEQ_HTABLE])).await {
                Ok(dump) => journal::head(&dump),
                Err(e) if answer::is_no_such_table(&e) => None,
                Err(e) => return Err(e),
            };
            let Some(head) = head else {
                // A config without the registration journal.
                let dump = self.call("ul.dump", json!([])).await?;
                return Ok(ul_dump::contacts(&dump));
            };
            let mut mirror = self.mirror.lock().await;
            self.catch_up(&mut mirror, head).await?;
            Ok(mirror.contacts(unix_now()))
        }
        .boxed()
    }

    fn auth_failures(&self) -> BoxFuture<'_, Result<AuthFailures, RegistrarError>> {
        async move {
            let dump = |table: &'static str| async move {
                match self.call("htable.dump", json!([table])).await {
                    Ok(dump) => Ok(dump),
                    // A config from before brute-force protection counts nothing.
                    Err(e) if answer::is_no_such_table(&e) => Ok(Value::Null),
                    Err(e) => Err(e),
                }
            };
            let (authfail, authlast, blocked) = futures::try_join!(
                dump(auth_dump::AUTHFAIL_HTABLE),
                dump(auth_dump::AUTHLAST_HTABLE),
                dump(auth_dump::BLOCKED_HTABLE)
            )?;
            Ok(auth_dump::auth_failures(&authfail, &authlast, &blocked))
        }
        .boxed()
    }

    fn remove<'a>(&'a self, users: &'a [UserKey]) -> BoxFuture<'a, Result<(), RegistrarError>> {
        let keys: Vec<UserKey> = users.to_vec();
        async move {
            let results: Vec<_> = futures::stream::iter(keys)
                .map(|key| self.remove_one(key))
                .buffer_unordered(PARALLEL_CALLS)
                .collect()
                .await;
            results.into_iter().collect()
        }
        .boxed()
    }
}

/// The `realms` entries a batch needs: each SIP domain (lower case, as the config looks it up)
/// with its realm, once. Two realms for one domain would leave some users' HA1 unusable, so
/// such a batch is refused whole.
fn domain_realms(users: &[UserEntry]) -> Result<BTreeMap<String, &str>, String> {
    let mut realms: BTreeMap<String, &str> = BTreeMap::new();
    for user in users {
        let domain = user.key.domain.to_ascii_lowercase();
        match realms.get(&domain) {
            Some(realm) if *realm != user.realm => {
                return Err(format!(
                    "users of SIP domain {domain} carry two digest realms ({realm:?} and {:?})",
                    user.realm
                ));
            }
            Some(_) => {}
            None => {
                realms.insert(domain, &user.realm);
            }
        }
    }
    Ok(realms)
}

/// What a failed `realms` write means. A config from before that table existed challenges
/// with the From domain: right for a domain whose realm is the domain (so such a setup keeps
/// working), and reason to refuse the users of any other, who could never register there.
fn missing_realms_table(error: RegistrarError, domain: &str, realm: &str) -> Result<(), RegistrarError> {
    if !answer::is_no_such_table(&error) {
        return Err(error);
    }
    if realm == domain {
        return Ok(());
    }
    let RegistrarError::Rejected { endpoint, method, .. } = error else {
        return Err(error);
    };
    Err(RegistrarError::Rejected {
        endpoint,
        method,
        reason: format!(
            "its config has no htable {REALMS_HTABLE:?}, so it challenges with the From domain, \
             but SIP domain {domain} has the realm {realm:?}: load the {REALMS_HTABLE:?} htable and \
             route[REALM] of the shipped kamailio.cfg"
        ),
    })
}

/// What a failed `devices` write means: a config from before devices cannot hold them, and
/// its devices could never register.
fn missing_devices_table(error: RegistrarError) -> RegistrarError {
    if !answer::is_no_such_table(&error) {
        return error;
    }
    match error {
        RegistrarError::Rejected { endpoint, method, .. } => RegistrarError::Rejected {
            endpoint,
            method,
            reason: format!(
                "its config has no htable {DEVICES_HTABLE:?}, so users with devices cannot register there: \
                     load the {DEVICES_HTABLE:?} and {DIAL_HTABLE:?} htables and the routes of the shipped kamailio.cfg"
            ),
        },
        other => other,
    }
}

/// `url` with any userinfo (`user:password@`) replaced by `***`, for status, messages and logs.
/// Works on the raw string, so that a URL that does not even parse is redacted too; everything
/// up to the last `@` after the scheme counts as userinfo (a password may hold `/`, `?`, `#`),
/// so an `@` later in the path over-redacts, which is harmless.
pub fn redact_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    match url[start..].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_string(),
    }
}

/// Now in Unix seconds (0 before 1970: only lapsed contacts would be affected).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The htable key of a domain's sync marker, `epoch@<domain>`.
fn marker_key(domain: &str) -> String {
    format!("{SYNC_MARKER_KEY}@{domain}")
}

/// The string value of an `htable.get` result (`{"item": {"name": .., "value": ..}}`).
fn marker_value(result: &Value) -> Option<String> {
    let value = result
        .get("item")
        .and_then(|i| i.get("value"))
        .or_else(|| result.get("value"))
        .unwrap_or(result);
    value.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(Kamailio::new("http://127.0.0.1:5071/RPC", None).is_ok());
        assert!(Kamailio::new("https://x/RPC", None).is_err());
        assert!(Kamailio::new("not a url", None).is_err());
    }

    fn user(username: &str, domain: &str, realm: &str) -> UserEntry {
        crate::registrar::fake::entry(username, domain, realm)
    }

    #[test]
    fn a_batch_sets_each_domain_realm_once_exactly_as_given() {
        let batch = [
            user("alice", "acme.example.com", "Custom Realm"),
            user("bob", "acme.example.com", "Custom Realm"),
            user("carol", "beta.example.com", "beta.example.com"),
        ];
        let realms = domain_realms(&batch).expect("consistent");
        assert_eq!(
            realms.into_iter().collect::<Vec<_>>(),
            [
                ("acme.example.com".to_string(), "Custom Realm"),
                ("beta.example.com".to_string(), "beta.example.com"),
            ]
        );
        assert!(domain_realms(&[]).expect("empty").is_empty());
    }

    #[test]
    fn realm_keys_are_lower_case_as_the_config_looks_them_up() {
        let batch = [user("alice", "Acme.Example.com", "R")];
        let realms = domain_realms(&batch).expect("consistent");
        assert_eq!(realms.get("acme.example.com"), Some(&"R"));
    }

    fn no_such_table() -> RegistrarError {
        RegistrarError::Rejected {
            endpoint: "http://127.0.0.1:5071/RPC".into(),
            method: "htable.sets".into(),
            reason: "error 500: No such htable".into(),
        }
    }

    #[test]
    fn a_config_without_realms_still_serves_domains_whose_realm_is_the_domain() {
        assert!(missing_realms_table(no_such_table(), "acme.example.com", "acme.example.com").is_ok());
        let e =
            missing_realms_table(no_such_table(), "acme.example.com", "Custom Realm").expect_err("refused");
        let text = e.to_string();
        assert!(
            text.contains("acme.example.com") && text.contains("Custom Realm"),
            "{text}"
        );
        assert!(
            text.contains("route[REALM]"),
            "the message says what to do: {text}"
        );
        let other = RegistrarError::Unreachable {
            endpoint: "http://127.0.0.1:5071/RPC".into(),
            reason: "connection refused".into(),
        };
        assert!(
            missing_realms_table(other, "acme.example.com", "acme.example.com").is_err(),
            "any other failure stays one"
        );
    }

    #[test]
    fn a_config_without_the_devices_table_is_refused_with_what_to_load() {
        let text = missing_devices_table(no_such_table()).to_string();
        assert!(
            text.contains("\"devices\"") && text.contains("kamailio.cfg"),
            "{text}"
        );
        let other = RegistrarError::Unreachable {
            endpoint: "http://127.0.0.1:5071/RPC".into(),
            reason: "connection refused".into(),
        };
        assert!(matches!(
            missing_devices_table(other),
            RegistrarError::Unreachable { .. }
        ));
    }

    #[test]
    fn two_realms_for_one_domain_are_refused() {
        let batch = [
            user("alice", "acme.example.com", "one"),
            user("bob", "acme.example.com", "two"),
        ];
        let err = domain_realms(&batch).expect_err("inconsistent");
        assert!(err.contains("acme.example.com"), "{err}");
    }

    #[test]
    fn userinfo_never_reaches_the_endpoint_string() {
        assert_eq!(
            redact_userinfo("http://rpc:s3cret@10.0.0.7:5071/RPC"),
            "http://***@10.0.0.7:5071/RPC"
        );
        assert_eq!(
            redact_userinfo("http://10.0.0.7:5071/RPC"),
            "http://10.0.0.7:5071/RPC"
        );
        assert_eq!(redact_userinfo("http://u:pa/ss@h/RPC"), "http://***@h/RPC");
        assert_eq!(redact_userinfo("u:s3cret@h:1/RPC"), "***@h:1/RPC");
        let ok = Kamailio::new("http://rpc:s3cret@127.0.0.1:5071/RPC", None).expect("a client");
        assert_eq!(ok.endpoint(), "http://***@127.0.0.1:5071/RPC");
        for bad in ["https://rpc:s3cret@x/RPC", "http://rpc:s3cret@x y/RPC"] {
            let err = Kamailio::new(bad, None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("***@") && !err.contains("s3cret"), "{err}");
        }
    }
}
