//! The SipUserInvite reconciler: find the user (cache) → owner reference → decide (pure, see
//! decide.rs) → draw the token when a link is issued → status (with the resourceVersion as
//! precondition) → Events.
//!
//! Every status write names the resourceVersion it was computed from, so a write from a stale
//! cached copy fails instead of overwriting a newer one: a second link is never issued over
//! the first, and an invite the page marked Used is never turned Expired or Issued again.
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

mod decide;
mod owner;

use self::decide::{Facts, UserState};
use super::status::conditions::true_reason;
use super::status::reasons::types;
use super::status::{conditions, events};
use super::{Context, Error};
use crate::api::{SipUser, SipUserInvite};
use crate::invite::token::{self, Token};

/// Retry after a precondition failed on a stale cached copy.
const STALE_CACHE_RETRY: Duration = Duration::from_millis(500);

/// Reconciles one SipUserInvite (see the module docs).
#[tracing::instrument(
    name = "reconcile_invite",
    skip_all,
    fields(namespace = invite.namespace().unwrap_or_default(), name = invite.name_any(), user = invite.spec.user_ref)
)]
pub async fn reconcile(invite: Arc<SipUserInvite>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started("SipUserInvite");
    let ns = invite
        .namespace()
        .ok_or_else(|| Error::NotNamespaced(invite.name_any()))?;
    ctx.stores.ready().await?;
    let api: Api<SipUserInvite> = Api::namespaced(ctx.client.clone(), &ns);
    let user = ctx
        .stores
        .users
        .get(&ObjectRef::new(&invite.spec.user_ref).within(&ns));

    let mut current = (*invite).clone();
    if let Some(refs) = user.as_deref().and_then(|u| owner::wanted(&current, u)) {
        match owner::set(&api, &current, refs).await {
            Ok(stored) => current = stored,
            Err(e) if is_conflict(&e) => return Ok(Action::requeue(STALE_CACHE_RETRY)),
            Err(e) => return Err(e),
        }
    }

    let facts = Facts {
        generation: current.meta().generation,
        namespace: &ns,
        user_ref: &invite.spec.user_ref,
        valid_for: &invite.spec.valid_for,
        user: user_state(user.as_deref()),
        user_uid: user.as_deref().and_then(|u| u.metadata.uid.as_deref()),
        base_url: ctx.settings.invite_url.as_deref(),
    };
    let previous = current.status.clone();
    let mut plan = decide::decide(&facts, previous.as_ref(), k8s_openapi::jiff::Timestamp::now());
    if plan.issue.is_some() {
        let token = Token::generate().map_err(|e| Error::Random(e.to_string()))?;
        plan.status.token_hash = Some(token.hash());
        plan.status.url = facts.base_url.map(|base| token::link(base, &token));
    }

    let previous_stalled = previous
        .as_ref()
        .and_then(|s| true_reason(&s.conditions, types::STALLED));
    events::on_stalled(
        &ctx,
        invite.as_ref(),
        previous_stalled,
        plan.stalled.as_ref().map(|(r, m)| (*r, m.as_str())),
    )
    .await;
    if previous.as_ref() != Some(&plan.status) {
        let body = SipUserInvite {
            status: Some(plan.status.clone()),
            ..current.clone()
        };
        match api
            .replace_status(&invite.name_any(), &PostParams::default(), &body)
            .await
        {
            Ok(_) => {}
            // A newer version exists (our own write not cached yet, or the page marked the
            // link used): decide again on it.
            Err(kube::Error::Api(s)) if s.code == 409 => return Ok(Action::requeue(STALE_CACHE_RETRY)),
            Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(Action::await_change()),
            Err(source) => {
                return Err(Error::Kube {
                    action: format!("writing status of SipUserInvite {ns}/{}", invite.name_any()),
                    source,
                });
            }
        }
        // Announced after the write, not before: an issue that lost its race to a newer
        // version did not happen and must not be announced.
        if let Some((reason, note)) = plan.event {
            events::publish(&ctx, invite.as_ref(), EventType::Normal, reason, note).await;
        }
    }
    let phase = plan.status.phase.map(|p| format!("{p:?}")).unwrap_or_default();
    tracing::debug!(%phase, "invite reconciled");
    Ok(plan.requeue.map_or_else(Action::await_change, Action::requeue))
}

/// What the invite needs of its user: its credentials in place.
fn user_state(user: Option<&SipUser>) -> UserState {
    let Some(user) = user else {
        return UserState::Missing;
    };
    let status = user.status.as_ref();
    let credentials = status.and_then(|s| conditions::find(&s.conditions, types::CREDENTIALS_READY));
    match credentials {
        Some(c) if c.status == "True" && status.is_some_and(|s| s.secret_name.is_some()) => UserState::Ready,
        Some(c) => UserState::NotReady(format!("CredentialsReady is {}: {}", c.status, c.message)),
        None => UserState::NotReady("the operator has not reported on it yet".into()),
    }
}

fn is_conflict(e: &Error) -> bool {
    matches!(e, Error::Kube { source: kube::Error::Api(s), .. } if s.code == 409)
}

/// Queues the invites of `user` (its namespace, its name) from the invite cache: a user that
/// appears or gets its credentials lets a waiting invite be issued.
pub fn of_user(
    invites: &kube::runtime::reflector::Store<SipUserInvite>,
    user: &SipUser,
) -> Vec<ObjectRef<SipUserInvite>> {
    let ns = user.namespace();
    let name = user.name_any();
    invites
        .state_filter(|i| {
            i.namespace() == ns && i.spec.user_ref == name && !i.phase().is_some_and(|p| p.is_final())
        })
        .iter()
        .map(|i| ObjectRef::from_obj(i.as_ref()))
        .collect()
}
