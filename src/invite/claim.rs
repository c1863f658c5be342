//! The page's writes: marking an invite used (its status, with the resourceVersion it was
//! read at as precondition, so of concurrent requests on any replicas exactly one wins) and
//! asking for a chosen password in the operator's credentials Secret (its `chosen.password`
//! key: the SipUser controller, the single writer of `password`, swaps it in).
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

use super::pages::Dead;
use super::token::Token;
use crate::api::{InvitePhase, InviteUse, SipUserInvite};
use crate::credentials::{Password, data_keys};
use crate::keys::PASSWORD_CHOSEN_ANNOTATION;

/// Field manager of the page's writes (apart from the controller's).
pub const FIELD_MANAGER: &str = "sip-operator-invites";

/// Why a claim did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Someone else used the link first, or it expired meanwhile.
    #[error("the link is no longer live ({0:?})")]
    Lost(Dead),
    /// The invite changed under every attempt: the link is still live, try again later.
    #[error("the invite kept changing while marking it used ({CLAIM_ATTEMPTS} attempts)")]
    Contended,
    #[error("writing the invite's status: {0}")]
    Api(#[from] kube::Error),
}

/// Why a link read at some version is dead now, if it is (pure).
pub fn dead_reason(invite: &SipUserInvite, now: Timestamp) -> Option<Dead> {
    let status = invite.status.as_ref();
    match invite.phase() {
        Some(InvitePhase::Used) => Some(Dead::Used),
        Some(InvitePhase::Expired) => Some(Dead::Expired),
        Some(InvitePhase::Issued) => match status.and_then(|s| s.expires_at.as_ref()) {
            Some(expires) if now < expires.0 => None,
            _ => Some(Dead::Expired),
        },
        _ => Some(Dead::NotValid),
    }
}

/// How long after a link's use its provisioning URL serves the phone's document: enough to
/// scan the code and let the app fetch it, short enough that a photographed screen is soon
/// worth nothing.
pub const PROVISIONING_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// Whether `invite`'s provisioning URL works at `now` (pure): used, and within
/// [`PROVISIONING_WINDOW`] of `usedAt`. `Err` names why not (as the page says it).
pub fn provisioning_live(invite: &SipUserInvite, now: Timestamp) -> Result<(), Dead> {
    let status = invite.status.as_ref().ok_or(Dead::NotValid)?;
    if invite.phase() != Some(InvitePhase::Used) {
        return Err(Dead::NotValid);
    }
    let used_at = status.used_at.as_ref().ok_or(Dead::NotValid)?;
    let window =
        k8s_openapi::jiff::SignedDuration::try_from(PROVISIONING_WINDOW).map_err(|_| Dead::Expired)?;
    match used_at.0.checked_add(window) {
        Ok(until) if now < until => Ok(()),
        _ => Err(Dead::Expired),
    }
}

/// `invite` marked used for `usage` at `now`, with the hash of the provisioning token minted
/// for it (pure).
pub fn used(invite: &SipUserInvite, usage: InviteUse, now: Timestamp, provisioning: &Token) -> SipUserInvite {
    let mut body = invite.clone();
    // Omitted, the server keeps the managed fields; sent, they would replace them.
    body.metadata.managed_fields = None;
    let status = body.status.get_or_insert_default();
    status.phase = Some(InvitePhase::Used);
    status.used_at = Some(Time(Timestamp::from_second(now.as_second()).unwrap_or(now)));
    status.used_for = Some(usage);
    status.provisioning_token_hash = Some(provisioning.hash());
    body
}

/// How many times a claim is tried when the invite changed (e.g. the controller wrote its
/// conditions) between the read and the write.
pub const CLAIM_ATTEMPTS: usize = 3;

/// Whether a conflict on `read` may be retried on `fresh` (pure): only on the same object
/// (uid) carrying the same link (token hash), still live. A deleted and re-created invite of
/// the same name, or a re-issued link, is not the link the end user holds.
pub fn same_live_link(read: &SipUserInvite, fresh: &SipUserInvite, now: Timestamp) -> bool {
    let hash = |i: &SipUserInvite| i.status.as_ref().and_then(|s| s.token_hash.clone());
    read.metadata.uid.is_some()
        && read.metadata.uid == fresh.metadata.uid
        && hash(read).is_some()
        && hash(read) == hash(fresh)
        && dead_reason(fresh, now).is_none()
}

/// Marks `invite` used, only if it is still the version read. Returns the stored invite; a
/// conflict reads it again and tries again on the same link (at most [`CLAIM_ATTEMPTS`]
/// times), else says why it is dead.
pub async fn claim(
    client: &Client,
    invite: &SipUserInvite,
    usage: InviteUse,
    provisioning: &Token,
) -> Result<SipUserInvite, ClaimError> {
    if let Some(dead) = dead_reason(invite, Timestamp::now()) {
        return Err(ClaimError::Lost(dead));
    }
    let api: Api<SipUserInvite> = Api::namespaced(client.clone(), &invite.namespace().unwrap_or_default());
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let mut current = invite.clone();
    for _ in 0..CLAIM_ATTEMPTS {
        match api
            .replace_status(
                &current.name_any(),
                &params,
                &used(&current, usage, Timestamp::now(), provisioning),
            )
            .await
        {
            Ok(stored) => return Ok(stored),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let Some(fresh) = api.get_opt(&invite.name_any()).await? else {
                    return Err(ClaimError::Lost(Dead::NotValid));
                };
                let now = Timestamp::now();
                if !same_live_link(invite, &fresh, now) {
                    return Err(ClaimError::Lost(
                        dead_reason(&fresh, now).unwrap_or(Dead::NotValid),
                    ));
                }
                current = fresh;
            }
            Err(kube::Error::Api(s)) if s.is_not_found() => return Err(ClaimError::Lost(Dead::NotValid)),
            Err(e) => return Err(e.into()),
        }
    }
    // Still live as far as we know: not "used", which would send the person away from a
    // working link.
    Err(ClaimError::Contended)
}

/// The merge patch that asks for `password` in a credentials Secret read at
/// `resource_version`: the `chosen.password` key and a label of the request (when it was
/// made, only a label: the controller records it as handled, it compares no clocks). Never
/// `password` itself.
pub fn password_patch(resource_version: &str, password: &Password, now: Timestamp) -> serde_json::Value {
    serde_json::json!({
        "metadata": {
            "resourceVersion": resource_version,
            "annotations": { PASSWORD_CHOSEN_ANNOTATION: now.to_string() },
        },
        "data": {
            data_keys::CHOSEN_PASSWORD: base64::engine::general_purpose::STANDARD.encode(password.expose()),
        },
    })
}

/// Asks for `password` in `secret` (read just before; its resourceVersion is the
/// precondition, so a write the controller made meanwhile makes this fail with 409).
pub async fn request_password(
    client: &Client,
    secret: &Secret,
    password: &Password,
) -> Result<Secret, kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &secret.namespace().unwrap_or_default());
    let patch = password_patch(
        &secret.resource_version().unwrap_or_default(),
        password,
        Timestamp::now(),
    );
    api.patch(
        &secret.name_any(),
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        },
        &Patch::Merge(&patch),
    )
    .await
}

/// How many times the page writes its request when the Secret keeps changing under it.
pub const REQUEST_ATTEMPTS: usize = 3;

/// Why a chosen password could not be requested.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("the credentials Secret kept changing ({REQUEST_ATTEMPTS} attempts)")]
    KeptChanging,
    #[error("the credentials Secret is gone or no longer the user's")]
    NotOurs,
    #[error(transparent)]
    Api(#[from] kube::Error),
}

impl RequestError {
    /// A short, secret-free word for the Event.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::KeptChanging => "the credentials Secret kept changing",
            RequestError::NotOurs => "the credentials Secret is gone or no longer the user's",
            RequestError::Api(_) => "the API server refused or failed the write",
        }
    }
}

/// Writes the request on `secret`; on a conflict (the controller wrote it meanwhile) reads it
/// again, checks it is still the user's own, and tries again, at most [`REQUEST_ATTEMPTS`]
/// times (`user_uid`: the SipUser's, which must control it). The link is used by now: giving up at the first conflict would burn it for nothing.
pub async fn request_with_retries(
    client: &Client,
    user_uid: &str,
    secret: &Secret,
    password: &Password,
) -> Result<Secret, RequestError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &secret.namespace().unwrap_or_default());
    let mut current = secret.clone();
    for attempt in 1..=REQUEST_ATTEMPTS {
        match request_password(client, &current, password).await {
            Ok(stored) => return Ok(stored),
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < REQUEST_ATTEMPTS => {
                current = secrets
                    .get_opt(&secret.name_any())
                    .await?
                    .filter(|s| crate::credentials::is_controlled_by(s, user_uid))
                    .ok_or(RequestError::NotOurs)?;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => return Err(RequestError::KeptChanging),
            Err(e) => return Err(e.into()),
        }
    }
    Err(RequestError::KeptChanging)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SipUserInviteStatus;

    fn invite(phase: Option<InvitePhase>, expires: Option<&str>) -> SipUserInvite {
        let mut i = SipUserInvite::new(
            "inv",
            serde_json::from_value(serde_json::json!({"userRef": "alice"})).expect("spec"),
        );
        i.status = Some(SipUserInviteStatus {
            phase,
            expires_at: expires.map(|e| Time(e.parse().expect("time"))),
            ..Default::default()
        });
        i
    }

    #[test]
    fn only_an_issued_link_before_its_deadline_is_live() {
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().expect("time");
        let live = invite(Some(InvitePhase::Issued), Some("2026-12-01T10:00:01Z"));
        assert_eq!(dead_reason(&live, now), None);
        let past = invite(Some(InvitePhase::Issued), Some("2026-12-01T10:00:00Z"));
        assert_eq!(
            dead_reason(&past, now),
            Some(Dead::Expired),
            "expired at the deadline even before the controller says so"
        );
        assert_eq!(
            dead_reason(&invite(Some(InvitePhase::Used), None), now),
            Some(Dead::Used)
        );
        assert_eq!(
            dead_reason(&invite(Some(InvitePhase::Expired), None), now),
            Some(Dead::Expired)
        );
        assert_eq!(
            dead_reason(&invite(Some(InvitePhase::Pending), None), now),
            Some(Dead::NotValid)
        );
        assert_eq!(dead_reason(&invite(None, None), now), Some(Dead::NotValid));
    }

    #[test]
    fn a_conflict_is_retried_only_on_the_same_object_with_the_same_link() {
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().expect("time");
        let with = |uid: &str, hash: &str, phase| {
            let mut i = invite(Some(phase), Some("2026-12-02T00:00:00Z"));
            i.metadata.uid = Some(uid.into());
            if let Some(s) = i.status.as_mut() {
                s.token_hash = Some(hash.into());
            }
            i
        };
        let read = with("u1", "h1", InvitePhase::Issued);
        assert!(same_live_link(&read, &with("u1", "h1", InvitePhase::Issued), now));
        assert!(
            !same_live_link(&read, &with("u2", "h1", InvitePhase::Issued), now),
            "deleted and re-created under the same name"
        );
        assert!(
            !same_live_link(&read, &with("u1", "h2", InvitePhase::Issued), now),
            "another link"
        );
        assert!(
            !same_live_link(&read, &with("u1", "h1", InvitePhase::Used), now),
            "used meanwhile"
        );
        let mut no_uid = read.clone();
        no_uid.metadata.uid = None;
        assert!(!same_live_link(&no_uid, &no_uid, now));
    }

    #[test]
    fn the_provisioning_url_works_for_ten_minutes_after_use_only() {
        let used_at: Timestamp = "2026-12-01T10:00:00Z".parse().expect("time");
        let provisioning = Token::generate().expect("CSPRNG");
        let i = invite(Some(InvitePhase::Issued), Some("2026-12-02T00:00:00Z"));
        assert_eq!(
            provisioning_live(&i, used_at),
            Err(Dead::NotValid),
            "not used yet"
        );
        let u = used(&i, InviteUse::Viewed, used_at, &provisioning);
        let at = |s: &str| -> Timestamp { s.parse().expect("time") };
        assert_eq!(provisioning_live(&u, at("2026-12-01T10:09:59Z")), Ok(()));
        assert_eq!(
            provisioning_live(&u, at("2026-12-01T10:10:00Z")),
            Err(Dead::Expired)
        );
    }

    #[test]
    fn a_used_invite_records_when_and_what_for() {
        let now: Timestamp = "2026-12-01T10:00:00.900Z".parse().expect("time");
        let mut i = invite(Some(InvitePhase::Issued), Some("2026-12-02T00:00:00Z"));
        i.metadata.resource_version = Some("42".into());
        i.metadata.managed_fields = Some(vec![Default::default()]);
        let provisioning = Token::generate().expect("CSPRNG");
        let u = used(&i, InviteUse::PasswordSet, now, &provisioning);
        let s = u.status.as_ref().expect("status");
        assert_eq!(s.provisioning_token_hash, Some(provisioning.hash()));
        assert_eq!(s.phase, Some(InvitePhase::Used));
        assert_eq!(s.used_for, Some(InviteUse::PasswordSet));
        assert_eq!(
            s.used_at.as_ref().map(|t| t.0.to_string()).as_deref(),
            Some("2026-12-01T10:00:00Z")
        );
        assert_eq!(
            u.metadata.resource_version.as_deref(),
            Some("42"),
            "the precondition"
        );
        assert!(u.metadata.managed_fields.is_none());
    }

    #[test]
    fn the_password_patch_is_a_conditional_request_that_never_writes_the_password() {
        let now: Timestamp = "2026-12-01T10:00:00.900Z".parse().expect("time");
        let p = password_patch("7", &Password::new("Secret123"), now);
        assert_eq!(p["metadata"]["resourceVersion"], "7");
        assert_eq!(
            p["metadata"]["annotations"][PASSWORD_CHOSEN_ANNOTATION],
            "2026-12-01T10:00:00.9Z"
        );
        assert_eq!(p["data"]["chosen.password"], "U2VjcmV0MTIz");
        assert!(
            p["data"].get("password").is_none(),
            "the controller is the single writer of the password"
        );
    }
}
