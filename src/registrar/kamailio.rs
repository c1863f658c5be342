//! Kamailio over JSON-RPC (jsonrpcs behind xhttp): users live in the htable `users`, keyed
//! `username@domain`, filled only by the operator; contacts live in usrloc (`location`).
//!
//! Kamailio 5.6 answers a batch array with an empty result and applies nothing, so calls go
//! one by one over a keep-alive connection pool, several in flight at once.
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::{Registrar, RegistrarError, UserEntry, UserKey};

/// The htable holding the users (the shipped kamailio.cfg declares it).
pub const USERS_HTABLE: &str = "users";
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
}

impl Kamailio {
    /// A client for `url`; `token` is sent as `Authorization: Bearer <token>`.
    pub fn new(url: &str, token: Option<String>) -> Result<Self, RegistrarError> {
        let parsed: Uri = url.parse().map_err(|e| RegistrarError::Unreachable {
            endpoint: url.to_string(),
            reason: format!("not a valid URL: {e}"),
        })?;
        if parsed.scheme_str() != Some("http") {
            return Err(RegistrarError::Unreachable {
                endpoint: url.to_string(),
                reason: "only http:// JSON-RPC endpoints are supported".into(),
            });
        }
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http();
        Ok(Self {
            url: parsed,
            endpoint: url.to_string(),
            token,
            http,
        })
    }

    /// One JSON-RPC call; the result, or why there is none.
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
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if let Some(error) = answer.get("error") {
            let code = error.get("code").and_then(Value::as_i64).unwrap_or_default();
            let message = error.get("message").and_then(Value::as_str).unwrap_or_default();
            return Err(self.rejected(method, format!("error {code}: {message}")));
        }
        if !status.is_success() {
            return Err(self.rejected(method, format!("HTTP {status}")));
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| self.rejected(method, "the answer has no result".into()))
    }

    fn unreachable(&self, reason: String) -> RegistrarError {
        RegistrarError::Unreachable {
            endpoint: self.endpoint.clone(),
            reason,
        }
    }

    fn rejected(&self, method: &str, reason: String) -> RegistrarError {
        RegistrarError::Rejected {
            endpoint: self.endpoint.clone(),
            method: method.into(),
            reason,
        }
    }

    async fn remove_one(&self, key: String) -> Result<(), RegistrarError> {
        // Removing is idempotent: a key that is already gone (Kamailio answers 404) is done.
        // htable.delete alone leaves registered contacts in place, hence ul.rm as well.
        for (method, table) in [("htable.delete", USERS_HTABLE), ("ul.rm", LOCATION_TABLE)] {
            match self.call(method, json!([table, key])).await {
                Err(RegistrarError::Rejected { reason, .. }) if is_not_found(&reason) => {}
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }
}

impl Registrar for Kamailio {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn sync_marker(&self) -> BoxFuture<'_, Result<Option<String>, RegistrarError>> {
        async move {
            match self
                .call("htable.get", json!([SYNC_HTABLE, SYNC_MARKER_KEY]))
                .await
            {
                Ok(value) => Ok(marker_value(&value)),
                // Kamailio answers a missing key with an error ("Key name doesn't exist").
                Err(RegistrarError::Rejected { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn set_sync_marker<'a>(&'a self, marker: &'a str) -> BoxFuture<'a, Result<(), RegistrarError>> {
        async move {
            self.call("htable.sets", json!([SYNC_HTABLE, SYNC_MARKER_KEY, marker]))
                .await
                .map(drop)
        }
        .boxed()
    }

    fn upsert<'a>(&'a self, users: &'a [UserEntry]) -> BoxFuture<'a, Result<(), RegistrarError>> {
        let calls: Vec<Value> = users
            .iter()
            .map(|u| json!([USERS_HTABLE, u.key.key(), htable_value(u)]))
            .collect();
        async move {
            let results: Vec<_> = futures::stream::iter(calls)
                .map(|params| self.call("htable.sets", params))
                .buffer_unordered(PARALLEL_CALLS)
                .collect()
                .await;
            results.into_iter().try_for_each(|r| r.map(drop))
        }
        .boxed()
    }

    fn remove<'a>(&'a self, users: &'a [UserKey]) -> BoxFuture<'a, Result<(), RegistrarError>> {
        let keys: Vec<String> = users.iter().map(UserKey::key).collect();
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

/// The string value of an `htable.get` result (`{"item": {"name": .., "value": ..}}`).
fn marker_value(result: &Value) -> Option<String> {
    let value = result
        .get("item")
        .and_then(|i| i.get("value"))
        .or_else(|| result.get("value"))
        .unwrap_or(result);
    value.as_str().map(str::to_string)
}

/// Whether a refusal only says the thing to remove is not there.
fn is_not_found(reason: &str) -> bool {
    reason.contains("404") || reason.contains("not found") || reason.contains("doesn't exist")
}

/// The htable value the shipped kamailio.cfg reads with `{param.value,name}`: `name=value`
/// pairs separated by `;`. That transformation parses like SIP header parameters (a value
/// ends at `;`, `,` or white space), so every value is a token: free text is percent-encoded
/// and list items are joined with `.` (each item encoding its own dots).
pub fn htable_value(user: &UserEntry) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    if let Some(h) = &user.ha1_md5 {
        fields.push(("ha1", h.clone()));
    }
    if let Some(h) = &user.ha1_sha256 {
        fields.push(("ha1sha256", h.clone()));
    }
    fields.push(("mc", user.max_contacts.to_string()));
    // Only enabled users are pushed; suspended ones are removed.
    fields.push(("en", "1".into()));
    if let Some(e) = &user.extension {
        fields.push(("ext", encode(e)));
    }
    if !user.aliases.is_empty() {
        fields.push((
            "aliases",
            user.aliases
                .iter()
                .map(|a| encode(a))
                .collect::<Vec<_>>()
                .join("."),
        ));
    }
    if !user.flags.is_empty() {
        fields.push(("flags", user.flags.join(".")));
    }
    if let Some(g) = &user.barge_group {
        fields.push(("barge", g.clone()));
    }
    if let Some(c) = &user.caller_id {
        fields.push(("cid", encode(c)));
    }
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// Percent-encodes everything but letters, digits, `-` and `_`, so a value is a SIP token
/// and `.` stays free as the list separator.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DigestAlgorithm;
    use crate::credentials::Password;
    use crate::registrar::entry::EntrySpec;

    fn entry(algorithms: &[DigestAlgorithm]) -> UserEntry {
        UserEntry::build(&EntrySpec {
            username: "alice",
            domain: "acme.example.com",
            realm: "acme.example.com",
            password: &Password::new("secret"),
            algorithms,
            max_contacts: 2,
            extension: Some("7001"),
            aliases: &["alice;support".to_string(), "a=b".to_string()],
            flags: &["barge".to_string(), "voicemail".to_string()],
            barge_group: Some("floor"),
            caller_id: Some("+49 30 123"),
        })
    }

    #[test]
    fn value_carries_ha1_and_attributes_never_the_password() {
        let value = htable_value(&entry(&[DigestAlgorithm::Md5]));
        let md5 = crate::credentials::ha1(
            DigestAlgorithm::Md5,
            "alice",
            "acme.example.com",
            &Password::new("secret"),
        );
        assert_eq!(
            value,
            format!(
                "ha1={md5};mc=2;en=1;ext=7001;aliases=alice%3Bsupport.a%3Db;flags=barge.voicemail;barge=floor;cid=%2B49%2030%20123"
            )
        );
        assert!(!value.contains("secret"));
    }

    #[test]
    fn sha256_is_pushed_only_when_enabled() {
        assert!(!htable_value(&entry(&[DigestAlgorithm::Md5])).contains("ha1sha256="));
        let both = htable_value(&entry(&[DigestAlgorithm::Md5, DigestAlgorithm::Sha256]));
        let sha = both
            .split(';')
            .find_map(|f| f.strip_prefix("ha1sha256="))
            .expect("sha256 field");
        assert_eq!(sha.len(), 64);
    }

    #[test]
    fn entry_debug_hides_the_digests() {
        let e = entry(&[DigestAlgorithm::Md5, DigestAlgorithm::Sha256]);
        let shown = format!("{e:?}");
        assert!(!shown.contains(e.ha1_md5.as_deref().expect("md5")), "{shown}");
        assert!(shown.contains("alice"));
    }

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(Kamailio::new("http://127.0.0.1:5071/RPC", None).is_ok());
        assert!(Kamailio::new("https://x/RPC", None).is_err());
        assert!(Kamailio::new("not a url", None).is_err());
    }
}
