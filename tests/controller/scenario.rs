//! One test's world: a namespace, an admin client, a running operator for that namespace, the
//! default SipDomain/SipProfile, and the waits and lookups the tests are written in. Every wait
//! polls through `support::eventually` and, on timeout, shows what it last observed plus the
//! tail of the operator's log.
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use sip_operator::api::{SipDomain, SipProfile, SipUser};

use crate::builders::{DOMAIN, Manifest, PROFILE, domain, profile};
use crate::support::operator::Operator;
use crate::support::{ControlPlane, TestNamespace, eventually};

/// Default deadline of a wait for the operator to act.
pub const WAIT: Duration = Duration::from_secs(60);
/// Deadline for the garbage collector (it may first have to discover the SipUser kind).
pub const GC_WAIT: Duration = Duration::from_secs(120);
/// The field manager the tests apply with.
pub const TEST_MANAGER: &str = "sip-operator-tests";

/// Condition types and reasons of the contract, spelled out here on purpose: they pin the API
/// (alerts and scripts key on them), and `reasons_match_the_library` proves the library agrees.
pub mod reasons {
    pub const READY: &str = "Ready";
    pub const RECONCILING: &str = "Reconciling";
    pub const STALLED: &str = "Stalled";
    pub const CREDENTIALS_READY: &str = "CredentialsReady";
    pub const REGISTRAR_SYNCED: &str = "RegistrarSynced";

    pub const SUSPENDED: &str = "Suspended";
    pub const SECRET_READY: &str = "SecretReady";
    pub const NO_REGISTRAR_CONFIGURED: &str = "NoRegistrarConfigured";
    pub const NOT_ADMITTED: &str = "NotAdmitted";

    pub const DOMAIN_NOT_FOUND: &str = "DomainNotFound";
    pub const DOMAIN_NOT_READY: &str = "DomainNotReady";
    pub const PROFILE_NOT_FOUND: &str = "ProfileNotFound";
    pub const DOMAIN_CONFLICT: &str = "DomainConflict";
    pub const USERNAME_CONFLICT: &str = "UsernameConflict";
    pub const EXTENSION_CONFLICT: &str = "ExtensionConflict";
    pub const ALIAS_CONFLICT: &str = "AliasConflict";
    pub const EXTENSION_PATTERN_MISMATCH: &str = "ExtensionPatternMismatch";
    pub const DOMAIN_USER_LIMIT_REACHED: &str = "DomainUserLimitReached";
    pub const PROFILE_CAPACITY_EXCEEDED: &str = "ProfileCapacityExceeded";
    pub const PASSWORD_SOURCE_INVALID: &str = "PasswordSourceInvalid";
    pub const SECRET_NOT_OWNED: &str = "SecretNotOwned";
    pub const SECRET_REJECTED: &str = "SecretRejected";

    /// A SipDomain's registrar settings: Stalled reasons, the detail condition, and the
    /// reasons of its users meanwhile.
    pub const REGISTRAR_READY: &str = "RegistrarReady";
    pub const REGISTRAR_TOKEN_NOT_FOUND: &str = "RegistrarTokenNotFound";
    pub const REGISTRAR_SERVICE_NOT_FOUND: &str = "RegistrarServiceNotFound";
    pub const REGISTRAR_URL_INVALID: &str = "RegistrarURLInvalid";
    pub const REGISTRAR_ENDPOINTS_NOT_READY: &str = "RegistrarEndpointsNotReady";
    pub const DOMAIN_REGISTRAR_INVALID: &str = "DomainRegistrarInvalid";
    pub const NOT_STALLED: &str = "NotStalled";

    /// Event reasons.
    pub const CREDENTIALS_CREATED: &str = "CredentialsCreated";
    pub const PASSWORD_ROTATED: &str = "PasswordRotated";
}

/// The literals above pin the API: they must equal the library's constants.
#[test]
fn reasons_match_the_library() {
    use sip_operator::controller::reasons as lib;
    let pairs = [
        (reasons::READY, lib::types::READY),
        (reasons::RECONCILING, lib::types::RECONCILING),
        (reasons::STALLED, lib::types::STALLED),
        (reasons::CREDENTIALS_READY, lib::types::CREDENTIALS_READY),
        (reasons::REGISTRAR_SYNCED, lib::types::REGISTRAR_SYNCED),
        (reasons::READY, lib::READY),
        (reasons::SUSPENDED, lib::SUSPENDED),
        (reasons::SECRET_READY, lib::SECRET_READY),
        (reasons::NO_REGISTRAR_CONFIGURED, lib::NO_REGISTRAR_CONFIGURED),
        (reasons::NOT_ADMITTED, lib::NOT_ADMITTED),
        (reasons::DOMAIN_NOT_FOUND, lib::DOMAIN_NOT_FOUND),
        (reasons::DOMAIN_NOT_READY, lib::DOMAIN_NOT_READY),
        (reasons::PROFILE_NOT_FOUND, lib::PROFILE_NOT_FOUND),
        (reasons::DOMAIN_CONFLICT, lib::DOMAIN_CONFLICT),
        (reasons::USERNAME_CONFLICT, lib::USERNAME_CONFLICT),
        (reasons::EXTENSION_CONFLICT, lib::EXTENSION_CONFLICT),
        (reasons::ALIAS_CONFLICT, lib::ALIAS_CONFLICT),
        (
            reasons::EXTENSION_PATTERN_MISMATCH,
            lib::EXTENSION_PATTERN_MISMATCH,
        ),
        (reasons::DOMAIN_USER_LIMIT_REACHED, lib::DOMAIN_USER_LIMIT_REACHED),
        (reasons::PROFILE_CAPACITY_EXCEEDED, lib::PROFILE_CAPACITY_EXCEEDED),
        (reasons::PASSWORD_SOURCE_INVALID, lib::PASSWORD_SOURCE_INVALID),
        (reasons::SECRET_NOT_OWNED, lib::SECRET_NOT_OWNED),
        (reasons::SECRET_REJECTED, lib::SECRET_REJECTED),
        (reasons::REGISTRAR_READY, lib::types::REGISTRAR_READY),
        (reasons::REGISTRAR_TOKEN_NOT_FOUND, lib::REGISTRAR_TOKEN_NOT_FOUND),
        (
            reasons::REGISTRAR_SERVICE_NOT_FOUND,
            lib::REGISTRAR_SERVICE_NOT_FOUND,
        ),
        (reasons::REGISTRAR_URL_INVALID, lib::REGISTRAR_URL_INVALID),
        (
            reasons::REGISTRAR_ENDPOINTS_NOT_READY,
            lib::REGISTRAR_ENDPOINTS_NOT_READY,
        ),
        (reasons::DOMAIN_REGISTRAR_INVALID, lib::DOMAIN_REGISTRAR_INVALID),
        (reasons::NOT_STALLED, lib::NOT_STALLED),
        (reasons::CREDENTIALS_CREATED, lib::events::CREDENTIALS_CREATED),
        (reasons::PASSWORD_ROTATED, lib::events::PASSWORD_ROTATED),
    ];
    for (ours, theirs) in pairs {
        assert_eq!(ours, theirs);
    }
}

/// Objects with kstatus conditions (the library's view).
pub use sip_operator::api::Conditioned as HasConditions;

/// `(status, reason, message)` of the condition `type_`, if present.
pub fn condition<K: HasConditions>(obj: &K, type_: &str) -> Option<(String, String, String)> {
    obj.conditions()
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Whether condition `type_` has `status` and `reason`.
pub fn has_condition<K: HasConditions>(obj: &K, type_: &str, status: &str, reason: &str) -> bool {
    condition(obj, type_).is_some_and(|(s, r, _)| s == status && r == reason)
}

/// Whether the status describes the current generation.
pub fn is_current<K: HasConditions + Resource>(obj: &K) -> bool {
    obj.meta().generation.is_some() && obj.observed_generation() == obj.meta().generation
}

/// A one-line picture of an object's status, for failure messages.
pub fn describe<K: HasConditions + Resource>(obj: &K) -> String {
    let conditions: Vec<String> = obj
        .conditions()
        .iter()
        .map(|c| format!("{}={} ({}: {})", c.type_, c.status, c.reason, c.message))
        .collect();
    format!(
        "{} generation={:?} observedGeneration={:?} conditions=[{}]",
        obj.meta().name.as_deref().unwrap_or_default(),
        obj.meta().generation,
        obj.observed_generation(),
        conditions.join("; ")
    )
}

/// A Secret's value of `key` as UTF-8.
pub fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    let data = secret.data.as_ref()?;
    let bytes = data.get(key)?;
    Some(String::from_utf8(bytes.0.clone()).expect("secret value is UTF-8"))
}

/// The `password` of a credentials Secret.
pub fn password(secret: &Secret) -> String {
    secret_value(secret, "password").unwrap_or_else(|| panic!("Secret {} has no password", name_of(secret)))
}

/// Every `data` entry of a Secret, decoded, for byte-for-byte comparisons.
pub fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

pub fn name_of<K: Resource>(obj: &K) -> String {
    obj.meta().name.clone().unwrap_or_default()
}

/// Polls `check` until it returns `Ok`, through [`eventually`]; on timeout the panic message
/// also shows the last `Err` (what was observed) and `context()`.
pub async fn until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    context: impl FnOnce() -> String,
    mut check: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let last = Arc::new(Mutex::new(String::from("(nothing observed yet)")));
    let seen = last.clone();
    let outcome = AssertUnwindSafe(eventually(what, timeout, || {
        let attempt = check();
        let seen = seen.clone();
        async move {
            match attempt.await {
                Ok(v) => Some(v),
                Err(observed) => {
                    *seen.lock().unwrap_or_else(|e| e.into_inner()) = observed;
                    None
                }
            }
        }
    }))
    .catch_unwind()
    .await;
    match outcome {
        Ok(v) => v,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let observed = last.lock().unwrap_or_else(|e| e.into_inner()).clone();
            panic!("{message}\n  last observed: {observed}\n{}", context())
        }
    }
}

/// One test's namespace, client and operator.
pub struct Scenario {
    // Dropped first: the operator stops before its namespace goes.
    pub operator: Operator,
    pub client: Client,
    pub ns: TestNamespace,
    /// The SIP domain of the default SipDomain: `<namespace>.sip.example.com`, unique per test.
    pub fqdn: String,
}

impl Scenario {
    /// A namespace (`<prefix>-<pid>-<n>`) with a running operator and nothing else.
    pub async fn empty(prefix: &str) -> Scenario {
        Self::empty_with(prefix, &[]).await
    }

    /// [`Scenario::empty`] with extra operator flags.
    pub async fn empty_with(prefix: &str, operator_args: &[&str]) -> Scenario {
        let ns = TestNamespace::create(prefix);
        let client = ControlPlane::shared().client().await;
        let operator = Operator::start_with(&ns, operator_args).await;
        let fqdn = format!("{}.sip.example.com", ns.name);
        Scenario {
            operator,
            client,
            ns,
            fqdn,
        }
    }

    /// [`Scenario::empty`] plus the SipDomain [`DOMAIN`] (claiming [`Scenario::fqdn`], default
    /// profile [`PROFILE`]) and the unlimited SipProfile [`PROFILE`].
    pub async fn new(prefix: &str) -> Scenario {
        Self::new_with(prefix, &[]).await
    }

    /// [`Scenario::new`] with extra operator flags.
    pub async fn new_with(prefix: &str, operator_args: &[&str]) -> Scenario {
        let sc = Self::empty_with(prefix, operator_args).await;
        sc.apply(&profile(PROFILE)).await;
        sc.apply(&sc.default_domain()).await;
        sc
    }

    /// The builder of the default SipDomain, to re-apply it with changes.
    pub fn default_domain(&self) -> crate::builders::DomainBuilder {
        domain(DOMAIN, &self.fqdn).default_profile(PROFILE)
    }

    /// A further SIP domain name unique to this test: `<label>.<namespace>.sip.example.com`.
    pub fn fqdn_for(&self, label: &str) -> String {
        format!("{label}.{}", self.fqdn)
    }

    pub fn namespace(&self) -> &str {
        &self.ns.name
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    pub fn users(&self) -> Api<SipUser> {
        self.api()
    }
    pub fn domains(&self) -> Api<SipDomain> {
        self.api()
    }
    pub fn profiles(&self) -> Api<SipProfile> {
        self.api()
    }
    pub fn secrets(&self) -> Api<Secret> {
        self.api()
    }
    pub fn events(&self) -> Api<Event> {
        self.api()
    }

    /// The operator's log tail, for failure messages.
    pub fn context(&self) -> String {
        format!(
            "operator log {} (tail):\n{}",
            self.operator.log_path().display(),
            self.operator.log_tail(30)
        )
    }

    /// Server-side applies `obj` as the tests' field manager.
    pub async fn apply(&self, obj: &impl Manifest) {
        let manifest = obj.manifest();
        let kind = manifest["kind"].as_str().expect("manifest has a kind");
        let name = manifest["metadata"]["name"]
            .as_str()
            .expect("manifest has a name");
        let resource = match kind {
            "SipUser" => ApiResource::erase::<SipUser>(&()),
            "SipDomain" => ApiResource::erase::<SipDomain>(&()),
            "SipProfile" => ApiResource::erase::<SipProfile>(&()),
            "SipUserInvite" => ApiResource::erase::<sip_operator::api::SipUserInvite>(&()),
            "Secret" => ApiResource::erase::<Secret>(&()),
            other => panic!("the scenario cannot apply a {other}"),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &self.ns.name, &resource);
        api.patch(
            name,
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(&manifest),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}\n{manifest:#}"));
    }

    /// Deletes `name` (foreground of nothing: the default propagation of its kind).
    pub async fn delete<K>(&self, name: &str)
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        self.api::<K>()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {} {name}: {e}", K::kind(&())));
    }

    pub async fn try_user(&self, name: &str) -> Option<SipUser> {
        self.users().get_opt(name).await.expect("get SipUser")
    }

    pub async fn user(&self, name: &str) -> SipUser {
        self.try_user(name)
            .await
            .unwrap_or_else(|| panic!("SipUser {name} does not exist"))
    }

    pub async fn try_secret(&self, name: &str) -> Option<Secret> {
        self.secrets().get_opt(name).await.expect("get Secret")
    }

    pub async fn secret(&self, name: &str) -> Secret {
        self.try_secret(name)
            .await
            .unwrap_or_else(|| panic!("Secret {name} does not exist"))
    }

    /// Polls `check` with this scenario's operator log as failure context.
    pub async fn until<T, F, Fut>(&self, what: &str, timeout: Duration, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        until(what, timeout, || self.context(), check).await
    }

    /// Waits until SipUser `name` satisfies `pred`; returns it.
    pub async fn wait_user(&self, name: &str, what: &str, pred: impl Fn(&SipUser) -> bool) -> SipUser {
        let what = format!("SipUser {name}: {what}");
        let pred = &pred;
        self.until(&what, WAIT, || async move {
            match self.try_user(name).await {
                Some(u) if pred(&u) => Ok(u),
                Some(u) => Err(describe(&u)),
                None => Err("the SipUser does not exist".into()),
            }
        })
        .await
    }

    /// Waits until the user's status describes its current generation and Ready=True with
    /// `reason` (`Ready`, or `Suspended`).
    pub async fn ready_as(&self, name: &str, reason: &str) -> SipUser {
        self.wait_user(
            name,
            &format!("Ready=True reason {reason} for the current generation"),
            |u| is_current(u) && has_condition(u, reasons::READY, "True", reason),
        )
        .await
    }

    /// Waits until the user is Ready=True reason `Ready` for its current generation.
    pub async fn ready(&self, name: &str) -> SipUser {
        self.ready_as(name, reasons::READY).await
    }

    /// Waits until the user is Stalled=True with `reason` and Ready=False with the same reason,
    /// for its current generation; returns the Stalled message (after checking that Ready
    /// carries it too).
    pub async fn stalled(&self, name: &str, reason: &str) -> String {
        let user = self
            .wait_user(
                name,
                &format!("Stalled=True and Ready=False, both reason {reason}"),
                |u| {
                    is_current(u)
                        && has_condition(u, reasons::STALLED, "True", reason)
                        && has_condition(u, reasons::READY, "False", reason)
                },
            )
            .await;
        let (_, _, message) = condition(&user, reasons::STALLED).expect("Stalled condition");
        assert!(
            !message.is_empty(),
            "a Stalled condition must say what to do: {}",
            describe(&user)
        );
        message
    }

    /// Waits until the status describes the current generation (whatever it says).
    pub async fn settled(&self, name: &str) -> SipUser {
        self.wait_user(
            name,
            "status.observedGeneration == metadata.generation",
            is_current,
        )
        .await
    }

    /// Waits until Secret `name` exists and satisfies `pred`.
    pub async fn wait_secret(&self, name: &str, what: &str, pred: impl Fn(&Secret) -> bool) -> Secret {
        let what = format!("Secret {name}: {what}");
        let pred = &pred;
        self.until(&what, WAIT, || async move {
            match self.try_secret(name).await {
                Some(s) if pred(&s) => Ok(s),
                Some(s) => Err(format!(
                    "resourceVersion {:?}, keys {:?}, ownerReferences {:?}",
                    s.metadata.resource_version,
                    secret_data(&s).keys().collect::<Vec<_>>(),
                    s.metadata.owner_references
                )),
                None => Err("the Secret does not exist".into()),
            }
        })
        .await
    }

    /// Waits until Secret `name` exists.
    pub async fn secret_appears(&self, name: &str) -> Secret {
        self.wait_secret(name, "exists", |_| true).await
    }

    /// Waits until Secret `name` is gone (within `timeout`).
    pub async fn secret_gone(&self, name: &str, timeout: Duration) {
        let what = format!("Secret {name} to be deleted");
        self.until(&what, timeout, || async move {
            match self.try_secret(name).await {
                None => Ok(()),
                Some(s) => Err(format!(
                    "still there: resourceVersion {:?}, ownerReferences {:?}, deletionTimestamp {:?}",
                    s.metadata.resource_version, s.metadata.owner_references, s.metadata.deletion_timestamp
                )),
            }
        })
        .await
    }

    /// Waits until SipDomain `name` satisfies `pred`.
    pub async fn wait_domain(&self, name: &str, what: &str, pred: impl Fn(&SipDomain) -> bool) -> SipDomain {
        let what = format!("SipDomain {name}: {what}");
        let pred = &pred;
        self.until(&what, WAIT, || async move {
            match self.domains().get_opt(name).await.expect("get SipDomain") {
                Some(d) if pred(&d) => Ok(d),
                Some(d) => Err(format!(
                    "{} users={:?}",
                    describe(&d),
                    d.status.as_ref().and_then(|s| s.users)
                )),
                None => Err("the SipDomain does not exist".into()),
            }
        })
        .await
    }

    /// Waits until SipProfile `name` satisfies `pred`.
    pub async fn wait_profile(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&SipProfile) -> bool,
    ) -> SipProfile {
        let what = format!("SipProfile {name}: {what}");
        let pred = &pred;
        self.until(&what, WAIT, || async move {
            match self.profiles().get_opt(name).await.expect("get SipProfile") {
                Some(p) if pred(&p) => Ok(p),
                Some(p) => Err(format!(
                    "{} users={:?} capacity={:?}",
                    describe(&p),
                    p.status.as_ref().and_then(|s| s.users),
                    p.status.as_ref().and_then(|s| s.capacity)
                )),
                None => Err("the SipProfile does not exist".into()),
            }
        })
        .await
    }

    /// Waits until SipDomain `name` is Ready=True for its current generation with
    /// `status.users == users`.
    pub async fn domain_ready_with_users(&self, name: &str, users: i32) -> SipDomain {
        self.wait_domain(name, &format!("Ready=True and status.users == {users}"), |d| {
            is_current(d)
                && condition(d, reasons::READY).is_some_and(|(s, _, _)| s == "True")
                && d.status.as_ref().and_then(|s| s.users) == Some(users)
        })
        .await
    }

    /// The events.k8s.io Events regarding the SipUser `name`.
    pub async fn user_events(&self, name: &str) -> Vec<Event> {
        let all = self
            .events()
            .list(&Default::default())
            .await
            .expect("list events");
        all.items
            .into_iter()
            .filter(|e| {
                e.regarding
                    .as_ref()
                    .is_some_and(|r| r.kind.as_deref() == Some("SipUser") && r.name.as_deref() == Some(name))
            })
            .collect()
    }

    /// Waits until at least one Event with `reason` regards SipUser `name`; returns all of them.
    pub async fn wait_event(&self, name: &str, reason: &str) -> Vec<Event> {
        let what = format!("an Event with reason {reason} regarding SipUser {name}");
        self.until(&what, WAIT, || async move {
            let events = self.user_events(name).await;
            let matching: Vec<Event> = events
                .iter()
                .filter(|e| e.reason.as_deref() == Some(reason))
                .cloned()
                .collect();
            if matching.is_empty() {
                Err(format!("events: {}", summarize_events(&events)))
            } else {
                Ok(matching)
            }
        })
        .await
    }

    /// Waits for the restarted operator to have reconciled: its SipUser reconcile counter
    /// reaches `at_least` and then every reconcile counter stays put for two seconds.
    pub async fn operator_settled(&self, at_least: f64) {
        settle_reconciles(&self.operator, at_least, WAIT, &self.context()).await;
    }

    /// Stops the operator (SIGTERM) and starts a fresh one on the same namespace.
    pub async fn restart_operator(&mut self) {
        let status = self.operator.stop().await;
        assert!(
            status.success(),
            "the operator should exit cleanly on SIGTERM, got {status}; log:\n{}",
            self.operator.log_tail(30)
        );
        self.operator = Operator::start(&self.ns).await;
    }
}

/// `reason/type: note` per Event, for failure messages.
pub fn summarize_events(events: &[Event]) -> String {
    let lines: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {} {:?} (series {:?})",
                e.type_.as_deref().unwrap_or("?"),
                e.reason.as_deref().unwrap_or("?"),
                e.note.as_deref().unwrap_or(""),
                e.series.as_ref().map(|s| s.count)
            )
        })
        .collect();
    format!("[{}]", lines.join("; "))
}

/// The MD5 HA1 of `username:realm:password`, as the operator stores it.
pub fn md5(username: &str, realm: &str, password: &str) -> String {
    sip_operator::credentials::ha1(
        sip_operator::api::DigestAlgorithm::Md5,
        username,
        realm,
        &sip_operator::credentials::Password::new(password),
    )
}

/// The sum of every `sip_operator_reconciles_total` sample (all kinds).
pub fn all_reconciles(scrape: &str) -> f64 {
    crate::support::operator::metric_value(scrape, "sip_operator_reconciles_total", &[]).unwrap_or(0.0)
}

/// Waits until `op` counted at least `at_least` SipUser reconciles and its reconcile counters
/// (all kinds) have not moved for two seconds.
pub async fn settle_reconciles(op: &Operator, at_least: f64, timeout: Duration, context: &str) {
    let stable_since: Mutex<Option<(f64, std::time::Instant)>> = Mutex::new(None);
    let stable_since = &stable_since;
    let what = format!("the operator to count >= {at_least} SipUser reconciles and then go quiet");
    until(
        &what,
        timeout,
        || context.to_string(),
        || async move {
            let scrape = op.metrics();
            let users = crate::support::operator::metric_value(
                &scrape,
                "sip_operator_reconciles_total",
                &[("kind", "SipUser")],
            )
            .unwrap_or(0.0);
            let total = all_reconciles(&scrape);
            let mut since = stable_since.lock().unwrap_or_else(|e| e.into_inner());
            if users < at_least {
                *since = None;
                return Err(format!("SipUser reconciles {users}, all kinds {total}"));
            }
            match *since {
                Some((seen, at)) if seen == total => {
                    if at.elapsed() >= Duration::from_secs(2) {
                        Ok(())
                    } else {
                        Err(format!(
                            "SipUser reconciles {users}; all kinds {total} unchanged for {:?}",
                            at.elapsed()
                        ))
                    }
                }
                _ => {
                    *since = Some((total, std::time::Instant::now()));
                    Err(format!("SipUser reconciles {users}; all kinds moved to {total}"))
                }
            }
        },
    )
    .await
}

/// The events.k8s.io Events of a whole namespace.
pub async fn namespace_events(sc: &Scenario) -> Vec<Event> {
    sc.events()
        .list(&Default::default())
        .await
        .expect("list events")
        .items
}
