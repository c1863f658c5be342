//! The registrar step of a SipUser reconcile: push an admitted, enabled user (HA1 only) to
//! every endpoint of its domain's registrar; remove a suspended or no longer admitted one.
//! An endpoint known to hold the user's current entry already is not called; the others get
//! the change in a batch with those of concurrent reconciles (`registrar_state::batcher`).
use kube::ResourceExt;
use tracing::Instrument;

use super::status::RegistrarState;
use crate::api::{DEFAULT_MAX_CONTACTS, SipDomain, SipProfile, SipUser};
use crate::controller::Context;
use crate::controller::status::registrar as registrar_status;
use crate::credentials::Password;
use crate::registrar::{EntrySpec, Registrar, RegistrarError, UserEntry, UserKey};
use crate::registrar_state::{Endpoint, Memory, Source, SyncError};

/// What the step should do for the user.
pub enum Intent<'a> {
    /// Admitted and enabled: make the registrar hold it.
    Push {
        password: &'a Password,
        profile: Option<&'a SipProfile>,
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
        Intent::Push { password, profile } => {
            let entry = entry(user, domain, password, *profile);
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
                .filter(|e| !memory.holds(&entry, e.endpoint()))
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

fn entry(user: &SipUser, domain: &SipDomain, password: &Password, profile: Option<&SipProfile>) -> UserEntry {
    let empty = Vec::new();
    UserEntry::build(&EntrySpec {
        username: user.username(),
        domain: &domain.spec.domain,
        realm: domain.realm(),
        password,
        devices: &[],
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
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::FutureExt;
    use futures::future::BoxFuture;

    use super::*;
    use crate::controller::fixtures;
    use crate::registrar::fake::{Call, Fake};
    use crate::registrar_state::endpoints::ResolveError;

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
        let password = Password::new(password);
        let intent = Intent::Push {
            password: &password,
            profile: None,
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
