//! The registrar step of a SipUser reconcile: push an admitted, enabled user (HA1 only) to
//! every endpoint of its domain's registrar; remove a suspended or no longer admitted one.
//! An endpoint known to hold the user's current entry already is not called; the others get
//! the change in a batch with those of concurrent reconciles (`registrar_state::batcher`).
use kube::ResourceExt;
use tracing::Instrument;

use k8s_openapi::jiff::Timestamp;

use super::credentials::Passwords;
use super::status::RegistrarState;
use crate::api::{DEFAULT_MAX_CONTACTS, SipDomain, SipProfile, SipUser};
use crate::controller::Context;
use crate::controller::status::registrar as registrar_status;
use crate::registrar::{DeviceCredentials, EntrySpec, Registrar, RegistrarError, UserEntry, UserKey};
use crate::registrar_state::registration_view::{View, is_live};
use crate::registrar_state::{Endpoint, Memory, Source, SyncError};

/// What the step should do for the user.
pub enum Intent<'a> {
    /// Admitted and enabled: make the registrar hold it.
    Push {
        /// The account's and the devices' passwords, as the credentials step left them.
        passwords: &'a Passwords,
        profile: Option<&'a SipProfile>,
        /// The domain's live registrations as last read, and when this reconcile runs: a
        /// contact registered with credentials the entry no longer has is dropped by a push.
        registrations: Option<(&'a View, Timestamp)>,
    },
    /// Suspended, not admitted or being deleted: make sure the registrar does not hold it.
    Remove,
    /// Not admitted, and its key belongs to another user: leave the registrar alone.
    Leave,
    /// Admitted and enabled, but its credentials could not be read or written just now:
    /// leave the registrar as it is until they can.
    Keep,
}

/// What the step needs of the registrar side: the Context's, or a fake's in unit tests.
#[derive(Clone, Copy)]
pub struct Registrars<'a> {
    pub endpoints: &'a dyn Source,
    pub memory: &'a Memory,
}

impl<'a> Registrars<'a> {
    /// The registrar side of the Context.
    pub fn of(ctx: &'a Context) -> Self {
        Registrars {
            endpoints: ctx.endpoints.as_ref(),
            memory: &ctx.memory,
        }
    }
}

/// Runs the step and says where the user stands with the registrar.
pub async fn sync(
    user: &SipUser,
    domain: &SipDomain,
    intent: Intent<'_>,
    registrars: Registrars<'_>,
) -> RegistrarState {
    if matches!(intent, Intent::Keep) {
        return RegistrarState::AwaitingCredentials;
    }
    if matches!(intent, Intent::Leave) {
        return if user.spec.enabled {
            RegistrarState::NotAdmitted
        } else {
            RegistrarState::Suspended
        };
    }
    let memory = registrars.memory;
    let key = UserKey::new(user.username(), &domain.spec.domain);
    if matches!(intent, Intent::Remove) {
        // Forgotten first, even if the registrar cannot be reached now: a full sync must
        // never bring back a user being removed.
        memory.forget(&key);
    }
    // The domain's check says whether its registrar settings can work at all; while they
    // cannot, retrying per user is pointless. A deletion still tries (and waits) as before.
    if user.metadata.deletion_timestamp.is_none()
        && let Some(message) = registrar_status::recorded_registrar_problem(domain)
    {
        return RegistrarState::DomainInvalid {
            domain: domain.name_any(),
            message: message.to_string(),
        };
    }
    let endpoints = match registrars.endpoints.resolve(domain).await {
        Ok(None) => return RegistrarState::NotConfigured,
        Ok(Some(endpoints)) => endpoints,
        Err(e) => return RegistrarState::Failed(e.into()),
    };
    let result = match &intent {
        Intent::Push {
            passwords,
            profile,
            registrations,
        } => {
            let entry = entry(user, domain, passwords, *profile);
            // A registrar drops the contacts of revoked credentials when it takes the entry
            // again, even one it holds already.
            let revoked =
                registrations.map_or_else(Default::default, |(view, now)| revoked_on(&entry, view, now));
            // Read before the push: a marker that moves meanwhile makes the next reconcile
            // push again rather than trust a state this push may not have reached.
            let held: Vec<(String, Option<String>)> = endpoints
                .iter()
                .map(|e| {
                    (
                        e.endpoint().to_string(),
                        memory.marker(e.endpoint(), &domain.spec.domain),
                    )
                })
                .collect();
            let stale: Vec<&Endpoint> = endpoints
                .iter()
                .filter(|e| revoked.contains(e.endpoint()) || !memory.holds(&entry, e.endpoint()))
                .collect();
            let pushed = on_each(user, &stale, "registrar_upsert", |e| {
                e.queue_upsert(entry.clone())
            })
            .await;
            match &pushed {
                Ok(()) => memory.remember(&entry, held),
                // Some endpoint may hold an older entry: nothing is replayed from memory
                // until a push succeeds again.
                Err(_) => memory.forget(&key),
            }
            pushed
        }
        Intent::Remove => {
            let all: Vec<&Endpoint> = endpoints.iter().collect();
            on_each(user, &all, "registrar_remove", |e| e.queue_remove(key.clone())).await
        }
        Intent::Leave | Intent::Keep => Ok(()),
    };
    match (result, intent) {
        (Err(errors), _) => RegistrarState::Failed(SyncError::Endpoints(errors)),
        (Ok(()), Intent::Push { .. }) => RegistrarState::Synced {
            endpoints: endpoints.len(),
        },
        (Ok(()), Intent::Keep) => RegistrarState::AwaitingCredentials,
        (Ok(()), Intent::Remove | Intent::Leave) if !user.spec.enabled => RegistrarState::Suspended,
        (Ok(()), Intent::Remove | Intent::Leave) => RegistrarState::NotAdmitted,
    }
}

/// Runs `op` against every endpoint at once, each in a span carrying the user and the
/// endpoint; the failures, each naming its endpoint.
async fn on_each<'a, F, Fut>(
    user: &SipUser,
    endpoints: &[&'a Endpoint],
    call: &'static str,
    op: F,
) -> Result<(), Vec<RegistrarError>>
where
    F: Fn(&'a Endpoint) -> Fut,
    Fut: std::future::Future<Output = Result<(), RegistrarError>>,
{
    let (namespace, name) = (user.namespace().unwrap_or_default(), user.name_any());
    let calls = endpoints.iter().map(|e| {
        op(e).instrument(tracing::info_span!(
            "registrar_call",
            call,
            namespace = %namespace,
            name = %name,
            endpoint = e.endpoint()
        ))
    });
    let results = futures::future::join_all(calls).await;
    let errors: Vec<RegistrarError> = results.into_iter().filter_map(|r| r.err()).collect();
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// The endpoints whose view shows a live contact on one of the entry's addresses (the user's
/// own and its alias lines) that the entry revokes (see [`UserEntry::revokes`]: a digest
/// username it does not carry, or a previous password whose grace period ended, whether the
/// contact re-registered with it or last registered before the change). Pure. Contacts whose
/// registrar does not say who registered them are left alone.
pub fn revoked_on(
    entry: &UserEntry,
    view: &View,
    now: Timestamp,
) -> std::collections::BTreeSet<std::sync::Arc<str>> {
    entry
        .aors()
        .iter()
        .flat_map(|aor| view.seen(aor))
        .filter(|s| {
            is_live(s, now)
                && s.contact
                    .auth_username
                    .as_deref()
                    .is_some_and(|au| entry.revokes(au, s.contact.last_modified, s.contact.previous_password))
        })
        .map(|s| s.endpoint.clone())
        .collect()
}

/// The registrar entry of `user`: with devices listed, the enabled ones' credentials only.
fn entry(
    user: &SipUser,
    domain: &SipDomain,
    passwords: &Passwords,
    profile: Option<&SipProfile>,
) -> UserEntry {
    let empty = Vec::new();
    let devices: Vec<DeviceCredentials<'_>> = user
        .spec
        .devices
        .iter()
        .filter(|d| d.enabled)
        .filter_map(|d| {
            Some(DeviceCredentials {
                name: &d.name,
                password: passwords.device(&d.name)?,
                previous: passwords.device_previous(&d.name),
                changed_at: passwords.device_changed_at(&d.name),
            })
        })
        .collect();
    let mut entry = UserEntry::build(&EntrySpec {
        username: user.username(),
        domain: &domain.spec.domain,
        realm: domain.realm(),
        password: &passwords.account,
        previous: passwords.account_previous.as_ref(),
        changed_at: passwords.account_changed_at,
        devices: &devices,
        algorithms: &domain.spec.digest_algorithms,
        max_contacts: user
            .spec
            .max_contacts
            .or(profile.map(|p| p.spec.max_contacts))
            .unwrap_or(DEFAULT_MAX_CONTACTS),
        extension: user.spec.extension.as_deref(),
        aliases: &user.spec.aliases,
        flags: profile.map_or(&empty, |p| &p.spec.flags),
        barge_group: profile.and_then(|p| p.spec.barge_group.as_deref()),
        caller_id: user.spec.caller_id.as_deref(),
    });
    // Every listed device disabled: nothing may register, not the account's own credentials
    // either (they do only while no device is listed).
    if devices.is_empty() && !user.spec.devices.is_empty() {
        entry.ha1_md5 = None;
        entry.ha1_sha256 = None;
        entry.previous = None;
    }
    entry
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::FutureExt;
    use futures::future::BoxFuture;

    use super::*;
    use crate::api::DeviceSpec;
    use crate::controller::fixtures;
    use crate::credentials::Password;
    use crate::registrar::Contact;
    use crate::registrar::fake::{Call, Fake};
    use crate::registrar_state::endpoints::ResolveError;
    use crate::registrar_state::registration_view::Dump;

    const T0: i64 = 1_795_473_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(T0 + secs).expect("timestamp")
    }

    fn device(name: &str, enabled: bool) -> DeviceSpec {
        DeviceSpec {
            name: name.into(),
            description: None,
            enabled,
        }
    }

    /// alice with `devices`, and passwords for each of them.
    fn alice_with(devices: Vec<DeviceSpec>) -> (SipUser, Passwords) {
        let mut alice = fixtures::user("alice").alias("alice-support").build();
        let passwords = Passwords {
            account: Password::new("account"),
            devices: devices
                .iter()
                .map(|d| (d.name.clone(), Password::new(format!("pw-{}", d.name))))
                .collect(),
            account_previous: None,
            device_previous: Vec::new(),
            account_changed_at: None,
            device_changed_at: Vec::new(),
        };
        alice.spec.devices = devices;
        (alice, passwords)
    }

    /// A view of the domain with one contact on `aor` registered by `auth_username`.
    fn view_with(aor: &str, auth_username: Option<&str>, expires_in: u64) -> View {
        let contact = Contact {
            aor: aor.into(),
            address: format!("sip:{aor}"),
            user_agent: None,
            expires_in: Some(expires_in),
            last_modified: None,
            auth_username: auth_username.map(str::to_string),
            previous_password: false,
        };
        View::build(
            "acme.sip.example.com",
            &[Dump {
                endpoint: "http://0/RPC".into(),
                read_at: at(0),
                contacts: Arc::new(vec![contact]),
                auth_failures: Arc::default(),
            }],
        )
    }

    /// Resolves every domain to the same fake endpoints.
    struct Fixed(Vec<Endpoint>);

    impl Source for Fixed {
        fn resolve<'a>(
            &'a self,
            _: &'a SipDomain,
        ) -> BoxFuture<'a, Result<Option<Vec<Endpoint>>, ResolveError>> {
            async move { Ok(Some(self.0.clone())) }.boxed()
        }
    }

    fn domain() -> SipDomain {
        let mut d = fixtures::domain("acme").build();
        d.spec.registrar = Some(
            serde_json::from_value(serde_json::json!({"kamailio": {"urls": ["http://a/RPC"]}}))
                .expect("registrar"),
        );
        d
    }

    fn fakes(n: usize) -> (Vec<Arc<Fake>>, Fixed) {
        let fakes: Vec<Arc<Fake>> = (0..n).map(|i| Fake::new(&format!("http://{i}/RPC"))).collect();
        let endpoints = fakes.iter().map(|f| Endpoint::new(f.clone())).collect();
        (fakes, Fixed(endpoints))
    }

    async fn push(user: &SipUser, source: &Fixed, memory: &Memory, password: &str) -> RegistrarState {
        let passwords = Passwords::account_only(Password::new(password));
        push_with(user, source, memory, &passwords, None).await
    }

    async fn push_with(
        user: &SipUser,
        source: &Fixed,
        memory: &Memory,
        passwords: &Passwords,
        view: Option<&View>,
    ) -> RegistrarState {
        let intent = Intent::Push {
            passwords,
            profile: None,
            registrations: view.map(|v| (v, at(0))),
        };
        let registrars = Registrars {
            endpoints: source,
            memory,
        };
        sync(user, &domain(), intent, registrars).await
    }

    #[tokio::test]
    async fn a_user_is_pushed_once_and_an_unchanged_one_is_not_pushed_again() {
        let (fakes, source) = fakes(2);
        let memory = Memory::default();
        let alice = fixtures::user("alice").build();
        let state = push(&alice, &source, &memory, "pw1").await;
        assert!(
            matches!(state, RegistrarState::Synced { endpoints: 2 }),
            "{state:?}"
        );
        for f in &fakes {
            assert_eq!(f.users(), ["alice"]);
            assert_eq!(f.calls().len(), 1);
        }

        let state = push(&alice, &source, &memory, "pw1").await;
        assert!(
            matches!(state, RegistrarState::Synced { endpoints: 2 }),
            "{state:?}"
        );
        assert_eq!(fakes[0].calls().len(), 1, "unchanged: no call");

        push(&alice, &source, &memory, "pw2").await;
        assert_eq!(fakes[0].calls().len(), 2, "a new password is a new entry");

        // The check left a new marker on one endpoint (a restart, a full sync): only that
        // endpoint is called again.
        memory.set_marker("http://1/RPC", "acme.sip.example.com", Some("m2".into()));
        push(&alice, &source, &memory, "pw2").await;
        assert_eq!(fakes[0].calls().len(), 2);
        assert_eq!(fakes[1].calls().len(), 3);
    }

    #[tokio::test]
    async fn a_restarted_operator_pushes_each_user_once() {
        let (fakes, source) = fakes(1);
        let alice = fixtures::user("alice").build();
        push(&alice, &source, &Memory::default(), "pw").await;
        let restarted = Memory::default();
        push(&alice, &source, &restarted, "pw").await;
        push(&alice, &source, &restarted, "pw").await;
        assert_eq!(fakes[0].calls().len(), 2, "once per process");
    }

    #[tokio::test]
    async fn a_suspended_user_is_removed_and_pushed_again_when_enabled() {
        let (fakes, source) = fakes(1);
        let memory = Memory::default();
        let alice = fixtures::user("alice").build();
        push(&alice, &source, &memory, "pw").await;
        let suspended = fixtures::user("alice").disabled().build();
        let registrars = Registrars {
            endpoints: &source,
            memory: &memory,
        };
        let state = sync(&suspended, &domain(), Intent::Remove, registrars).await;
        assert!(matches!(state, RegistrarState::Suspended), "{state:?}");
        assert!(fakes[0].users().is_empty());
        assert!(matches!(fakes[0].calls().last(), Some(Call::Remove(k)) if k == &["alice"]));

        push(&alice, &source, &memory, "pw").await;
        assert_eq!(fakes[0].users(), ["alice"], "the removal made memory forget it");
    }

    #[tokio::test]
    async fn a_failing_endpoint_fails_the_user_and_the_next_reconcile_pushes_again() {
        let (fakes, source) = fakes(2);
        let memory = Memory::default();
        let alice = fixtures::user("alice").build();
        fakes[1].fail(true);
        let state = push(&alice, &source, &memory, "pw").await;
        let RegistrarState::Failed(SyncError::Endpoints(errors)) = &state else {
            panic!("{state:?}");
        };
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("http://1/RPC"), "{}", errors[0]);
        assert_eq!(fakes[0].users(), ["alice"], "the other endpoint holds it");

        fakes[1].fail(false);
        let state = push(&alice, &source, &memory, "pw").await;
        assert!(
            matches!(state, RegistrarState::Synced { endpoints: 2 }),
            "{state:?}"
        );
        assert_eq!(fakes[1].users(), ["alice"]);
        assert_eq!(
            fakes[0].calls().len(),
            2,
            "nothing was remembered after the failure"
        );
    }

    #[test]
    fn contacts_of_credentials_the_entry_lacks_are_revoked() {
        let (alice, passwords) = alice_with(vec![device("desk", true), device("soft", false)]);
        let e = entry(&alice, &domain(), &passwords, None);
        assert_eq!(
            e.auth_usernames(),
            ["alice#desk"],
            "a disabled device is not pushed"
        );
        let own = "alice@acme.sip.example.com";
        let line = "alice-support@acme.sip.example.com";
        let revoked = |aor, au, expires| !revoked_on(&e, &view_with(aor, au, expires), at(1)).is_empty();
        assert!(!revoked(own, Some("alice#desk"), 60), "an enabled device");
        assert!(revoked(own, Some("alice#soft"), 60), "a disabled device");
        assert!(
            revoked(line, Some("alice#gone"), 60),
            "a removed device, on a line"
        );
        assert!(
            revoked(own, Some("alice"), 60),
            "the account's own, once devices are listed"
        );
        assert!(!revoked(own, None, 60), "unknown: left alone");
        assert!(!revoked(own, Some("alice#soft"), 1), "lapsed already");
        assert!(
            !revoked("bob@acme.sip.example.com", Some("bob"), 60),
            "another user's address"
        );

        let (plain, passwords) = alice_with(vec![]);
        let e = entry(&plain, &domain(), &passwords, None);
        assert!(revoked_on(&e, &view_with(own, Some("alice"), 60), at(1)).is_empty());
        assert_eq!(
            revoked_on(&e, &view_with(own, Some("alice#desk"), 60), at(1))
                .into_iter()
                .collect::<Vec<_>>(),
            ["http://0/RPC".into()] as [std::sync::Arc<str>; 1],
            "only the endpoint that shows the contact"
        );
    }

    #[test]
    fn devices_replace_the_accounts_credentials_even_when_all_are_disabled() {
        let (alice, passwords) = alice_with(vec![device("desk", true), device("soft", true)]);
        let e = entry(&alice, &domain(), &passwords, None);
        assert_eq!(e.ha1_md5, None);
        assert_eq!(e.auth_usernames(), ["alice#desk", "alice#soft"]);
        let (alice, passwords) = alice_with(vec![device("desk", false)]);
        let e = entry(&alice, &domain(), &passwords, None);
        assert!(e.devices.is_empty() && e.ha1_md5.is_none() && e.ha1_sha256.is_none());
        let (alice, passwords) = alice_with(vec![]);
        assert!(entry(&alice, &domain(), &passwords, None).ha1_md5.is_some());
    }

    #[tokio::test]
    async fn a_revoked_contact_makes_a_held_entry_go_out_again() {
        // Two endpoints; the view's contacts come from the first (http://0/RPC).
        let (fakes, source) = fakes(2);
        let memory = Memory::default();
        let (alice, passwords) = alice_with(vec![device("desk", true)]);
        push_with(&alice, &source, &memory, &passwords, None).await;
        let own = "alice@acme.sip.example.com";
        let current = view_with(own, Some("alice#desk"), 60);
        push_with(&alice, &source, &memory, &passwords, Some(&current)).await;
        assert_eq!(fakes[0].calls().len(), 1, "held, and nothing to drop: no call");

        let stale = view_with(own, Some("alice#soft"), 60);
        let state = push_with(&alice, &source, &memory, &passwords, Some(&stale)).await;
        assert!(matches!(state, RegistrarState::Synced { .. }), "{state:?}");
        assert_eq!(
            fakes[0].calls().len(),
            2,
            "pushed again, so the registrar drops it"
        );
        assert_eq!(
            fakes[1].calls().len(),
            1,
            "not to an endpoint that does not show the contact"
        );
    }

    #[tokio::test]
    async fn enabled_devices_are_pushed_with_their_own_passwords() {
        let (fakes, source) = fakes(1);
        let memory = Memory::default();
        let (alice, passwords) = alice_with(vec![device("desk", true), device("soft", true)]);
        push_with(&alice, &source, &memory, &passwords, None).await;
        assert_eq!(fakes[0].users(), ["alice"]);
        // Disabling one is a new entry: pushed.
        let (disabled, _) = alice_with(vec![device("desk", true), device("soft", false)]);
        push_with(&disabled, &source, &memory, &passwords, None).await;
        assert_eq!(fakes[0].calls().len(), 2);
        // A rotated device password is a new entry too.
        let mut rotated = passwords.clone();
        rotated.devices[0].1 = Password::new("new");
        push_with(&disabled, &source, &memory, &rotated, None).await;
        assert_eq!(fakes[0].calls().len(), 3);
        push_with(&disabled, &source, &memory, &rotated, None).await;
        assert_eq!(fakes[0].calls().len(), 3, "unchanged: no call");
    }

    #[tokio::test]
    async fn concurrent_reconciles_share_one_call_per_endpoint() {
        let (fakes, source) = fakes(2);
        let memory = Memory::default();
        let users: Vec<SipUser> = (0..50)
            .map(|i| fixtures::user(&format!("u{i:02}")).build())
            .collect();
        let states = futures::future::join_all(users.iter().map(|u| push(u, &source, &memory, "pw"))).await;
        assert!(states.iter().all(|s| matches!(s, RegistrarState::Synced { .. })));
        for f in &fakes {
            assert_eq!(f.calls().len(), 1, "{:?}", f.calls());
            assert_eq!(f.users().len(), 50);
        }
    }
}
