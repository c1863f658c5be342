//! The registrar step of a SipUser reconcile: push an admitted, enabled user (HA1 only) to
//! every endpoint of its domain's registrar; remove a suspended or no longer admitted one.
use kube::ResourceExt;
use tracing::Instrument;

use super::status::RegistrarState;
use crate::api::{DEFAULT_MAX_CONTACTS, SipDomain, SipProfile, SipUser};
use crate::controller::Context;
use crate::controller::status::registrar as registrar_status;
use crate::credentials::Password;
use crate::registrar::{EntrySpec, Registrar, RegistrarError, UserEntry, UserKey};
use crate::registrar_state::SyncError;
use crate::registrar_state::endpoints as registrar_endpoints;

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
}

/// Runs the step and says where the user stands with the registrar.
pub async fn sync(user: &SipUser, domain: &SipDomain, intent: Intent<'_>, ctx: &Context) -> RegistrarState {
    if matches!(intent, Intent::Leave) {
        return if user.spec.enabled {
            RegistrarState::NotAdmitted
        } else {
            RegistrarState::Suspended
        };
    }
    let key = UserKey::new(user.username(), &domain.spec.domain);
    if matches!(intent, Intent::Remove) {
        // Forgotten first, even if the registrar cannot be reached now: a full sync must
        // never bring back a user being removed.
        ctx.registrars.forget(&key);
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
    let endpoints = match registrar_endpoints::resolve(domain, &ctx.client, &ctx.registrars).await {
        Ok(None) => return RegistrarState::NotConfigured,
        Ok(Some(endpoints)) => endpoints,
        Err(e) => return RegistrarState::Failed(e.into()),
    };
    let result = match &intent {
        Intent::Push { password, profile } => {
            let entry = entry(user, domain, password, *profile);
            let pushed = push_all(&endpoints, "registrar_upsert", |r| {
                r.upsert(std::slice::from_ref(&entry))
            })
            .await;
            match &pushed {
                Ok(()) => ctx.registrars.remember(&entry),
                // Some endpoint may hold an older entry: nothing is replayed from memory
                // until a push succeeds again.
                Err(_) => ctx.registrars.forget(&key),
            }
            pushed
        }
        Intent::Remove => {
            push_all(&endpoints, "registrar_remove", |r| {
                r.remove(std::slice::from_ref(&key))
            })
            .await
        }
        Intent::Leave => Ok(()),
    };
    match (result, intent) {
        (Err(errors), _) => RegistrarState::Failed(SyncError::Endpoints(errors)),
        (Ok(()), Intent::Push { .. }) => RegistrarState::Synced {
            endpoints: endpoints.len(),
        },
        (Ok(()), Intent::Remove | Intent::Leave) if !user.spec.enabled => RegistrarState::Suspended,
        (Ok(()), Intent::Remove | Intent::Leave) => RegistrarState::NotAdmitted,
    }
}

/// Runs `op` against every endpoint, each in a span named `call` carrying its endpoint (the
/// reconcile's span above carries the user and its domain); the failures, each naming its
/// endpoint.
async fn push_all<'a, R, F>(endpoints: &'a [R], call: &'static str, op: F) -> Result<(), Vec<RegistrarError>>
where
    R: Registrar,
    F: Fn(&'a R) -> futures::future::BoxFuture<'a, Result<(), RegistrarError>>,
{
    let calls = endpoints.iter().map(|r| {
        op(r).instrument(tracing::info_span!(
            "registrar_call",
            call,
            endpoint = r.endpoint()
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
