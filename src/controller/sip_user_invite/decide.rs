//! The invite's life, pure: from what the invite says and what is known of its user, the
//! status to store, the Event to publish and when to look again. A link is issued once; an
//! issued one expires at `expiresAt`; Used and Expired never change again.
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{InvitePhase, SipUserInviteStatus};
use crate::controller::status::conditions::{self, Status, Want};
use crate::controller::status::reasons::{self, invite, types};
use crate::invite::expiry;

/// How a waiting invite is looked at again without an event from its user (safety net).
const PENDING_RECHECK: Duration = Duration::from_secs(300);

/// What is known of the invited SipUser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserState {
    /// No SipUser of that name in the namespace.
    Missing,
    /// It exists, but its credentials are not in place: why, in words.
    NotReady(String),
    /// Its credentials Secret holds its password (`CredentialsReady` is True).
    Ready,
}

/// The inputs of [`decide`].
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    pub generation: Option<i64>,
    pub namespace: &'a str,
    pub user_ref: &'a str,
    pub valid_for: &'a str,
    pub user: UserState,
    /// The uid of the SipUser named now (none: missing).
    pub user_uid: Option<&'a str>,
    /// `--invite-url`: the invite page's public base URL (none: the page is off).
    pub base_url: Option<&'a str>,
}

/// A link to issue now (its token is drawn by the caller: this module stays pure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What a reconcile is to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The status to store (without the link's url and hash when `issue` is set: the caller
    /// adds them).
    pub status: SipUserInviteStatus,
    pub issue: Option<Issue>,
    /// A Normal Event (reason, note) announcing the transition, if one happened.
    pub event: Option<(&'static str, String)>,
    /// The Stalled reason and message, for a Warning Event when it is new.
    pub stalled: Option<(&'static str, String)>,
    /// When to look again (none: only on a change).
    pub requeue: Option<Duration>,
}

/// The plan for an invite whose stored status is `previous`, at `now`.
pub fn decide(facts: &Facts<'_>, previous: Option<&SipUserInviteStatus>, now: Timestamp) -> Plan {
    let previous = previous.cloned().unwrap_or_default();
    let now_time = Time(now);
    let finish = |status: SipUserInviteStatus, wanted: Vec<Want>| SipUserInviteStatus {
        observed_generation: facts.generation,
        conditions: conditions::merge(&previous.conditions, &wanted, facts.generation, &now_time),
        ..status
    };
    let replaced = matches!(
        (previous.user_uid.as_deref(), facts.user_uid),
        (Some(issued_for), Some(now_named)) if issued_for != now_named
    );
    match previous.phase {
        Some(phase) if phase.is_final() => Plan {
            status: finish(previous.clone(), done(phase, &previous)),
            issue: None,
            event: None,
            stalled: None,
            requeue: None,
        },
        // The user the link was issued for is gone; one of the same name is another user,
        // whose account the link must not show. Never re-issued: a new invite is needed.
        _ if replaced => stalled_plan(
            &previous,
            &finish,
            invite::USER_REPLACED,
            format!(
                "SipUser {} was deleted and re-created since this link was issued, so the link is dead; \
                 delete this invite and create a new one for the new user",
                facts.user_ref
            ),
        ),
        Some(InvitePhase::Issued) => {
            let expires = previous.expires_at.as_ref().map(|t| t.0).unwrap_or(now);
            if now >= expires {
                let status = SipUserInviteStatus {
                    phase: Some(InvitePhase::Expired),
                    ..previous.clone()
                };
                let wanted = done(InvitePhase::Expired, &status);
                Plan {
                    status: finish(status, wanted),
                    issue: None,
                    event: Some((
                        invite::EXPIRED,
                        format!(
                            "the link for SipUser {} expired unused at {expires}",
                            facts.user_ref
                        ),
                    )),
                    stalled: None,
                    requeue: None,
                }
            } else {
                Plan {
                    status: finish(previous.clone(), issued(expires)),
                    issue: None,
                    event: None,
                    stalled: None,
                    // A moment past the deadline, so the check finds it passed.
                    requeue: Some(expiry::remaining(now, expires) + Duration::from_millis(500)),
                }
            }
        }
        _ => before_issue(facts, &previous, now, finish),
    }
}

/// A Stalled plan with `reason` and `message`.
fn stalled_plan(
    previous: &SipUserInviteStatus,
    finish: &impl Fn(SipUserInviteStatus, Vec<Want>) -> SipUserInviteStatus,
    reason: &'static str,
    message: String,
) -> Plan {
    let status = SipUserInviteStatus {
        phase: Some(InvitePhase::Stalled),
        ..previous.clone()
    };
    let wanted = vec![
        Want::new(types::READY, Status::False, reason, message.clone()),
        Want::new(types::STALLED, Status::True, reason, message.clone()),
    ];
    Plan {
        status: finish(status, wanted),
        issue: None,
        event: None,
        stalled: Some((reason, message)),
        requeue: None,
    }
}

/// Not issued yet: stalled, waiting, or issued now.
fn before_issue(
    facts: &Facts<'_>,
    previous: &SipUserInviteStatus,
    now: Timestamp,
    finish: impl Fn(SipUserInviteStatus, Vec<Want>) -> SipUserInviteStatus,
) -> Plan {
    let stalled = |reason: &'static str, message: String| stalled_plan(previous, &finish, reason, message);
    let valid_for = match expiry::parse_valid_for(facts.valid_for) {
        Ok(d) => d,
        Err(e) => {
            return stalled(
                invite::INVALID_VALID_FOR,
                format!("{e}; delete this invite and create one with a valid spec.validFor"),
            );
        }
    };
    if facts.base_url.is_none() {
        return stalled(
            invite::INVITE_PAGE_NOT_CONFIGURED,
            "the operator serves no invite page, so it has no link to issue: start it with \
             --invite-listen, --invite-url and the TLS flags (chart: invites.enabled, invites.url, \
             invites.tlsSecretName)"
                .into(),
        );
    }
    match &facts.user {
        UserState::Missing => stalled(
            invite::USER_NOT_FOUND,
            format!(
                "SipUser {:?} does not exist in namespace {}; create it (the link is issued once its \
                 credentials are ready) or delete this invite and create one naming an existing user",
                facts.user_ref, facts.namespace
            ),
        ),
        UserState::NotReady(why) => {
            let message = format!(
                "waiting for SipUser {:?}: its credentials are not ready yet ({why})",
                facts.user_ref
            );
            let status = SipUserInviteStatus {
                phase: Some(InvitePhase::Pending),
                ..previous.clone()
            };
            let wanted = vec![
                Want::new(types::READY, Status::False, invite::WAITING_FOR_USER, message),
                Want::new(types::STALLED, Status::False, reasons::NOT_STALLED, ""),
            ];
            Plan {
                status: finish(status, wanted),
                issue: None,
                event: None,
                stalled: None,
                requeue: Some(PENDING_RECHECK),
            }
        }
        UserState::Ready => {
            let expires_at = expiry::expires_at(now, valid_for);
            let issued_at = Timestamp::from_second(now.as_second()).unwrap_or(now);
            let status = SipUserInviteStatus {
                phase: Some(InvitePhase::Issued),
                issued_at: Some(Time(issued_at)),
                expires_at: Some(Time(expires_at)),
                user_uid: facts.user_uid.map(str::to_string),
                ..previous.clone()
            };
            Plan {
                status: finish(status, issued(expires_at)),
                issue: Some(Issue {
                    issued_at,
                    expires_at,
                }),
                event: Some((
                    invite::ISSUED,
                    format!(
                        "issued a one-time link for SipUser {}, valid until {expires_at} (status.url)",
                        facts.user_ref
                    ),
                )),
                stalled: None,
                requeue: Some(expiry::remaining(now, expires_at) + Duration::from_millis(500)),
            }
        }
    }
}

fn issued(expires: Timestamp) -> Vec<Want> {
    vec![
        Want::new(
            types::READY,
            Status::True,
            invite::ISSUED,
            format!("the link in status.url works once, until {expires}"),
        ),
        Want::new(types::STALLED, Status::False, reasons::NOT_STALLED, ""),
    ]
}

fn done(phase: InvitePhase, status: &SipUserInviteStatus) -> Vec<Want> {
    let (reason, message) = match phase {
        InvitePhase::Used => (
            invite::USED,
            format!(
                "the link was used at {} and works no more; create a new SipUserInvite for another link",
                status
                    .used_at
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default()
            ),
        ),
        _ => (
            invite::EXPIRED,
            format!(
                "the link expired unused at {}; create a new SipUserInvite for another link",
                status
                    .expires_at
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default()
            ),
        ),
    };
    vec![
        Want::new(types::READY, Status::True, reason, message),
        Want::new(types::STALLED, Status::False, reasons::NOT_STALLED, ""),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::InviteUse;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn facts(user: UserState) -> Facts<'static> {
        Facts {
            generation: Some(1),
            namespace: "voip",
            user_ref: "alice",
            valid_for: "24h",
            user,
            user_uid: Some("u-1"),
            base_url: Some("https://invites.example.com"),
        }
    }

    #[test]
    fn a_link_issued_for_a_user_since_re_created_is_dead_and_never_re_issued() {
        let now = at("2026-12-01T10:00:00Z");
        let issued = decide(&facts(UserState::Ready), None, now).status;
        assert_eq!(
            issued.user_uid.as_deref(),
            Some("u-1"),
            "the user's uid is recorded"
        );
        let replaced = Facts {
            user_uid: Some("u-2"),
            ..facts(UserState::Ready)
        };
        let plan = decide(&replaced, Some(&issued), now);
        assert_eq!(plan.status.phase, Some(InvitePhase::Stalled));
        assert_eq!(
            condition(&plan.status, types::STALLED),
            ("True", invite::USER_REPLACED)
        );
        assert!(plan.issue.is_none());
        let again = decide(&replaced, Some(&plan.status), now);
        assert!(again.issue.is_none(), "never re-issued for the new user");
        assert_eq!(again.status.phase, Some(InvitePhase::Stalled));
        assert_eq!(
            decide(&facts(UserState::Ready), Some(&issued), now).status.phase,
            Some(InvitePhase::Issued),
            "the same user: still issued"
        );
    }

    fn condition<'a>(s: &'a SipUserInviteStatus, t: &str) -> (&'a str, &'a str) {
        let c = conditions::find(&s.conditions, t).expect("condition");
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn a_ready_user_gets_one_link_valid_for_the_duration() {
        let now = at("2026-12-01T10:00:00.300Z");
        let plan = decide(&facts(UserState::Ready), None, now);
        let issue = plan.issue.clone().expect("issued");
        assert_eq!(issue.expires_at, at("2026-12-02T10:00:00Z"));
        assert_eq!(plan.status.phase, Some(InvitePhase::Issued));
        assert_eq!(plan.status.expires_at, Some(Time(issue.expires_at)));
        assert_eq!(condition(&plan.status, "Ready"), ("True", invite::ISSUED));
        assert_eq!(plan.event.as_ref().map(|e| e.0), Some(invite::ISSUED));
        assert!(plan.requeue.expect("at expiry") >= Duration::from_secs(86_399));

        // Looked at again before expiry: nothing new, never a second link.
        let again = decide(
            &facts(UserState::Ready),
            Some(&plan.status),
            at("2026-12-01T12:00:00Z"),
        );
        assert_eq!(again.issue, None);
        assert_eq!(again.event, None);
        assert_eq!(again.status, plan.status);
    }

    #[test]
    fn an_issued_link_expires_at_its_deadline_and_stays_expired() {
        let plan = decide(&facts(UserState::Ready), None, at("2026-12-01T10:00:00Z"));
        let expired = decide(
            &facts(UserState::Ready),
            Some(&plan.status),
            at("2026-12-02T10:00:00Z"),
        );
        assert_eq!(expired.status.phase, Some(InvitePhase::Expired));
        assert_eq!(condition(&expired.status, "Ready"), ("True", invite::EXPIRED));
        assert_eq!(expired.event.as_ref().map(|e| e.0), Some(invite::EXPIRED));
        assert_eq!(expired.requeue, None);
        let later = decide(
            &facts(UserState::Ready),
            Some(&expired.status),
            at("2026-12-05T00:00:00Z"),
        );
        assert_eq!((later.issue, later.event), (None, None), "never re-issued");
        assert_eq!(later.status, expired.status);
    }

    #[test]
    fn a_used_link_is_never_reissued_even_for_a_missing_user() {
        let plan = decide(&facts(UserState::Ready), None, at("2026-12-01T10:00:00Z"));
        let used = SipUserInviteStatus {
            phase: Some(InvitePhase::Used),
            used_at: Some(Time(at("2026-12-01T11:00:00Z"))),
            used_for: Some(InviteUse::Viewed),
            ..plan.status
        };
        let later = decide(
            &facts(UserState::Missing),
            Some(&used),
            at("2026-12-03T00:00:00Z"),
        );
        assert_eq!(later.status.phase, Some(InvitePhase::Used));
        assert_eq!(condition(&later.status, "Ready"), ("True", invite::USED));
        assert_eq!((later.issue, later.event, later.stalled), (None, None, None));
    }

    #[test]
    fn a_missing_user_stalls_and_a_waiting_one_is_pending() {
        let now = at("2026-12-01T10:00:00Z");
        let plan = decide(&facts(UserState::Missing), None, now);
        assert_eq!(plan.status.phase, Some(InvitePhase::Stalled));
        assert_eq!(
            condition(&plan.status, "Stalled"),
            ("True", invite::USER_NOT_FOUND)
        );
        let (_, message) = plan.stalled.expect("stalled");
        assert!(
            message.contains("\"alice\" does not exist in namespace voip"),
            "{message}"
        );
        assert!(plan.issue.is_none());

        let waiting = decide(&facts(UserState::NotReady("no Secret yet".into())), None, now);
        assert_eq!(waiting.status.phase, Some(InvitePhase::Pending));
        assert_eq!(
            condition(&waiting.status, "Ready"),
            ("False", invite::WAITING_FOR_USER)
        );
        assert_eq!(condition(&waiting.status, "Stalled").0, "False");

        // The user appears: issued from there.
        let issued = decide(&facts(UserState::Ready), Some(&plan.status), now);
        assert_eq!(issued.status.phase, Some(InvitePhase::Issued));
        assert_eq!(condition(&issued.status, "Stalled").0, "False");
    }

    #[test]
    fn without_an_invite_page_nothing_is_issued() {
        let mut f = facts(UserState::Ready);
        f.base_url = None;
        let plan = decide(&f, None, at("2026-12-01T10:00:00Z"));
        assert_eq!(
            plan.stalled.as_ref().map(|s| s.0),
            Some(invite::INVITE_PAGE_NOT_CONFIGURED)
        );
        assert!(plan.issue.is_none());
    }
}
