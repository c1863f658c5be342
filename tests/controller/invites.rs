//! SipUserInvite against the real API server: a link is issued once for a ready user (url,
//! token hash, times, owner reference, Event), expires when its deadline passes, a missing
//! user stalls it with a message saying what to do, the spec cannot change, and deleting the
//! user deletes its invites.
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use sha2::Digest;
use sip_operator::api::{InvitePhase, SipUser, SipUserInvite};

use crate::builders::user;
use crate::scenario::{Scenario, condition, describe, md5, summarize_events};

const WAIT: Duration = Duration::from_secs(60);
const BASE_URL: &str = "https://invites.example.com";

fn invite(name: &str, user_ref: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({ "userRef": user_ref });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    json!({
        "apiVersion": "sipoperator.io/v1alpha1",
        "kind": "SipUserInvite",
        "metadata": { "name": name },
        "spec": spec,
    })
}

async fn scenario(prefix: &str) -> Scenario {
    Scenario::new_with(prefix, &["--invite-url", BASE_URL]).await
}

fn invites(sc: &Scenario) -> Api<SipUserInvite> {
    Api::namespaced(sc.client.clone(), sc.namespace())
}

/// Waits until kube-controller-manager's garbage collector watches SipUserInvites: it finds
/// new resource types by discovery every 30 s, and until then it cannot orphan an invite
/// whose owner is deleted with `propagationPolicy: Orphan` (it deletes it later, as dangling).
/// The probe: an invite whose owner never existed is deleted once the collector sees it.
async fn garbage_collector_watches_invites(sc: &Scenario) {
    let mut probe = invite("gc-probe", "nobody", json!({}));
    probe["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "sipoperator.io/v1alpha1",
        "kind": "SipUser",
        "name": "nobody",
        "uid": "00000000-0000-0000-0000-000000000000",
    }]);
    invites(sc)
        .create(
            &Default::default(),
            &serde_json::from_value(probe).expect("probe invite"),
        )
        .await
        .expect("create the probe invite");
    sc.until(
        "the garbage collector to delete an invite with a dangling owner",
        WAIT,
        || async {
            match invites(sc).get_opt("gc-probe").await.expect("get") {
                None => Ok(()),
                Some(_) => Err("the probe invite is still there".into()),
            }
        },
    )
    .await;
}

async fn wait_invite(
    sc: &Scenario,
    name: &str,
    what: &str,
    pred: impl Fn(&SipUserInvite) -> bool,
) -> SipUserInvite {
    let what = format!("SipUserInvite {name}: {what}");
    let pred = &pred;
    sc.until(&what, WAIT, || async move {
        match invites(sc).get_opt(name).await.expect("get SipUserInvite") {
            Some(i) if pred(&i) => Ok(i),
            Some(i) => Err(format!("{} status={:?}", describe(&i), i.status)),
            None => Err("the SipUserInvite does not exist".into()),
        }
    })
    .await
}

async fn invite_events(sc: &Scenario, name: &str) -> Vec<k8s_openapi::api::events::v1::Event> {
    sc.events()
        .list(&Default::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("SipUserInvite") && r.name.as_deref() == Some(name)
            })
        })
        .collect()
}

#[tokio::test]
async fn a_ready_user_gets_one_link_with_its_expiry_owned_by_the_user() {
    let sc = scenario("invite-issue").await;
    sc.apply(&user("alice").extension("7001")).await;
    let alice: SipUser = sc.ready("alice").await;
    sc.apply(&invite("alice-welcome", "alice", json!({}))).await;
    let issued = wait_invite(&sc, "alice-welcome", "Issued", |i| {
        i.phase() == Some(InvitePhase::Issued)
    })
    .await;
    let status = issued.status.clone().expect("status");
    let url = status.url.clone().expect("status.url");
    let token = url
        .strip_prefix(&format!("{BASE_URL}/invite/"))
        .unwrap_or_else(|| panic!("url under the base URL: {url}"));
    assert_eq!(token.len(), 43, "{url}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let hash: String = sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(status.token_hash.as_deref(), Some(hash.as_str()));
    let (issued_at, expires_at) = (
        status.issued_at.expect("issuedAt").0,
        status.expires_at.expect("expiresAt").0,
    );
    assert_eq!(
        expires_at.duration_since(issued_at),
        SignedDuration::from_hours(24),
        "default 24h"
    );
    assert!(issued_at <= Timestamp::now() && issued_at > Timestamp::now() - SignedDuration::from_mins(2));
    assert_eq!(status.observed_generation, issued.metadata.generation);
    let ready = condition(&issued, "Ready").expect("Ready");
    assert_eq!(
        (ready.0.as_str(), ready.1.as_str()),
        ("True", "Issued"),
        "{ready:?}"
    );
    let owners = issued.metadata.owner_references.clone().unwrap_or_default();
    assert!(
        owners
            .iter()
            .any(|o| o.kind == "SipUser" && o.name == "alice" && Some(&o.uid) == alice.metadata.uid.as_ref()),
        "owner reference to the SipUser: {owners:?}"
    );
    let events = sc
        .until("an Issued Event on the invite", WAIT, || async {
            let events = invite_events(&sc, "alice-welcome").await;
            if events.iter().any(|e| e.reason.as_deref() == Some("Issued")) {
                Ok(events)
            } else {
                Err(summarize_events(&events))
            }
        })
        .await;
    for e in &events {
        assert!(
            !e.note.clone().unwrap_or_default().contains(token),
            "no token in an Event"
        );
    }
    assert!(
        !sc.operator.log().contains(token),
        "no token in the operator's log"
    );

    // The spec is immutable: the API server refuses a change.
    let changed = invites(&sc)
        .patch(
            "alice-welcome",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"validFor": "48h"}})),
        )
        .await
        .expect_err("spec change refused");
    assert!(changed.to_string().contains("spec is immutable"), "{changed}");
    // Out of bounds validFor is refused at apply time too.
    let err = invites(&sc)
        .create(
            &Default::default(),
            &serde_json::from_value(invite("too-long", "alice", json!({"validFor": "721h"})))
                .expect("invite"),
        )
        .await
        .expect_err("721h refused");
    assert!(err.to_string().contains("5m to 720h"), "{err}");

    // Nothing re-issues it: the same link after a user change the invite controller has seen
    // (each user event reconciles the user's invites; the invite was settled before, so the
    // next finished invite reconcile is one that saw the changed user).
    let invite_reconciles = || {
        sc.operator
            .metric("sip_operator_reconciles_total", &[("kind", "SipUserInvite")])
            .unwrap_or(0.0)
    };
    let before = invite_reconciles();
    sc.apply(&user("alice").extension("7001").display_name("Alice Example"))
        .await;
    sc.ready("alice").await;
    sc.until("an invite reconcile after the user change", WAIT, || async {
        let now = invite_reconciles();
        if now > before {
            Ok(())
        } else {
            Err(format!("SipUserInvite reconciles still {now}"))
        }
    })
    .await;
    let again = invites(&sc).get("alice-welcome").await.expect("get");
    assert_eq!(
        again.status.and_then(|s| s.url),
        Some(url.clone()),
        "one link, never re-issued"
    );

    // Deleting the user deletes its invites (garbage collector, through the owner reference).
    sc.delete::<SipUser>("alice").await;
    sc.until(
        "the invite to be garbage-collected with its user",
        WAIT,
        || async {
            match invites(&sc).get_opt("alice-welcome").await.expect("get") {
                None => Ok(()),
                Some(i) => Err(describe(&i)),
            }
        },
    )
    .await;
}

#[tokio::test]
async fn an_issued_link_expires_when_its_deadline_passes() {
    let sc = scenario("invite-expiry").await;
    sc.apply(&user("bob")).await;
    sc.ready("bob").await;
    sc.apply(&invite("bob-welcome", "bob", json!({"validFor": "5m"})))
        .await;
    let issued = wait_invite(&sc, "bob-welcome", "Issued", |i| {
        i.phase() == Some(InvitePhase::Issued)
    })
    .await;
    let status = issued.status.clone().expect("status");
    assert_eq!(
        status
            .expires_at
            .clone()
            .expect("expiresAt")
            .0
            .duration_since(status.issued_at.clone().expect("issuedAt").0),
        SignedDuration::from_mins(5)
    );
    // Five minutes are long for a test: the deadline is moved into the past, as if they had
    // passed; the operator sees the change and expires the link.
    let past = (Timestamp::now() - SignedDuration::from_secs(1)).to_string();
    invites(&sc)
        .patch_status(
            "bob-welcome",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"expiresAt": past}})),
        )
        .await
        .expect("move expiresAt");
    let expired = wait_invite(&sc, "bob-welcome", "Expired", |i| {
        i.phase() == Some(InvitePhase::Expired)
    })
    .await;
    let ready = condition(&expired, "Ready").expect("Ready");
    assert_eq!(ready.1, "Expired", "{ready:?}");
    assert!(ready.2.contains("create a new SipUserInvite"), "{ready:?}");
    let st = expired.status.expect("status");
    assert_eq!(st.url, status.url, "the dead link stays recorded, never replaced");
    assert!(st.used_at.is_none());
    sc.until("an Expired Event", WAIT, || async {
        let events = invite_events(&sc, "bob-welcome").await;
        if events.iter().any(|e| e.reason.as_deref() == Some("Expired")) {
            Ok(())
        } else {
            Err(summarize_events(&events))
        }
    })
    .await;
}

#[tokio::test]
async fn a_missing_user_stalls_the_invite_until_it_exists() {
    let sc = scenario("invite-missing").await;
    sc.apply(&invite("carol-welcome", "carol", json!({}))).await;
    let stalled = wait_invite(&sc, "carol-welcome", "Stalled", |i| {
        i.phase() == Some(InvitePhase::Stalled)
    })
    .await;
    let (status, reason, message) = condition(&stalled, "Stalled").expect("Stalled");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "UserNotFound"));
    assert!(
        message.contains("SipUser \"carol\" does not exist") && message.contains("create it"),
        "{message}"
    );
    let st = stalled.status.expect("status");
    assert!(
        st.url.is_none() && st.token_hash.is_none() && st.issued_at.is_none(),
        "{st:?}"
    );

    sc.apply(&user("carol")).await;
    let issued = wait_invite(&sc, "carol-welcome", "Issued once the user exists", |i| {
        i.phase() == Some(InvitePhase::Issued)
    })
    .await;
    assert_eq!(condition(&issued, "Stalled").map(|c| c.0), Some("False".into()));
    assert!(issued.status.and_then(|s| s.url).is_some());
}

#[tokio::test]
async fn a_user_without_credentials_keeps_the_invite_pending() {
    let sc = scenario("invite-pending").await;
    // A user of a domain that does not exist: not admitted, so no credentials.
    sc.apply(&json!({
        "apiVersion": "sipoperator.io/v1alpha1",
        "kind": "SipUser",
        "metadata": { "name": "frank" },
        "spec": { "domainRef": "no-such-domain" },
    }))
    .await;
    sc.apply(&invite("frank-welcome", "frank", json!({}))).await;
    let pending = wait_invite(&sc, "frank-welcome", "Pending", |i| {
        i.phase() == Some(InvitePhase::Pending)
    })
    .await;
    let (status, reason, message) = condition(&pending, "Ready").expect("Ready");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "WaitingForUser"));
    assert!(message.contains("waiting for SipUser \"frank\""), "{message}");
    assert_eq!(condition(&pending, "Stalled").map(|c| c.0), Some("False".into()));
    assert!(
        pending.status.and_then(|s| s.url).is_none(),
        "no link before the credentials"
    );
    // Owned by the user already, so it goes with it.
    assert!(
        pending
            .metadata
            .owner_references
            .unwrap_or_default()
            .iter()
            .any(|o| o.name == "frank")
    );
}

#[tokio::test]
async fn without_an_invite_url_no_link_is_issued() {
    let sc = Scenario::new("invite-off").await;
    sc.apply(&user("dave")).await;
    sc.ready("dave").await;
    sc.apply(&invite("dave-welcome", "dave", json!({}))).await;
    let stalled = wait_invite(&sc, "dave-welcome", "Stalled", |i| {
        i.phase() == Some(InvitePhase::Stalled)
    })
    .await;
    let (_, reason, message) = condition(&stalled, "Stalled").expect("Stalled");
    assert_eq!(reason, "InvitePageNotConfigured");
    assert!(message.contains("--invite-url"), "{message}");
}

/// The invite page only asks for a chosen password (`chosen.password`, as its
/// `request_password` writes it); the SipUser controller swaps it in as a change from the
/// password in force: with a grace period running after a rotation P0→P1, choosing P2 keeps
/// P1 (the password just replaced, not P0) valid with a new deadline, removes the request in
/// the same write, records it as handled and announces it once.
#[tokio::test]
async fn a_chosen_password_is_swapped_in_by_the_controller_under_the_grace_period() {
    use crate::scenario::{password, secret_value};
    let sc = Scenario::new("invite-grace").await;
    let gina = user("gina").grace_period("1h");
    sc.apply(&gina).await;
    sc.ready("gina").await;
    let name = "gina-sip-credentials";
    let p0 = password(&sc.secret_appears(name).await);
    sc.apply(&gina.clone().rotate("r1")).await;
    let secret = sc
        .wait_secret(name, "rotated to P1 with P0's digest kept", |s| {
            password(s) != p0 && secret_value(s, "previous.ha1").is_some()
        })
        .await;
    let p1 = password(&secret);
    assert_eq!(
        secret_value(&secret, "previous.ha1"),
        Some(md5("gina", &sc.fqdn, &p0))
    );
    let before = sc.settled("gina").await;
    let changed_before = before.status.as_ref().and_then(|s| s.password_changed_at.clone());
    crate::rotation::let_a_second_pass(changed_before.as_ref().expect("passwordChangedAt")).await;

    let p2 = "Chosen-By-Gina-2026";
    let requested = sip_operator::invite::claim::request_password(
        &sc.client,
        &secret,
        &sip_operator::credentials::Password::new(p2),
    )
    .await
    .expect("the page's request");
    assert_eq!(
        password(&requested),
        p1,
        "the page never writes the password itself"
    );
    let stale = sip_operator::invite::claim::request_password(
        &sc.client,
        &secret,
        &sip_operator::credentials::Password::new("Another-Choice-2026"),
    )
    .await
    .expect_err("a request on a stale read is refused");
    assert!(
        stale.to_string().contains("409") || stale.to_string().to_lowercase().contains("conflict"),
        "{stale}"
    );

    let swapped = sc
        .wait_secret(name, "P2 swapped in and the request removed", |s| {
            password(s) == p2 && secret_value(s, "chosen.password").is_none()
        })
        .await;
    assert_eq!(
        secret_value(&swapped, "previous.ha1"),
        Some(md5("gina", &sc.fqdn, &p1)),
        "the password just replaced (P1) stays valid, not the one before it"
    );
    let until: Timestamp = secret_value(&swapped, "previous.valid-until")
        .expect("deadline")
        .parse()
        .expect("RFC 3339");
    let ahead = until.duration_since(Timestamp::now()).as_secs();
    assert!((3500..=3600).contains(&ahead), "a new 1h deadline: {ahead}s");
    let label = swapped
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(sip_operator::keys::PASSWORD_CHOSEN_ANNOTATION))
        .cloned();
    assert!(label.is_some());
    assert_eq!(
        swapped
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(sip_operator::keys::PASSWORD_CHOSEN_HANDLED_ANNOTATION))
            .cloned(),
        label,
        "the request is recorded as handled"
    );
    let u = sc
        .wait_user("gina", "passwordChangedAt moved", |u| {
            u.status.as_ref().and_then(|s| s.password_changed_at.clone()) != changed_before
        })
        .await;
    assert!(
        u.status
            .as_ref()
            .and_then(|s| s.previous_password_valid_until.clone())
            .is_some()
    );
    let chosen = sc.wait_event("gina", "PasswordChosen").await;
    // Nothing further happens with it: re-reconciles keep P2 and announce nothing again.
    sc.apply(&gina.clone().rotate("r1").display_name("Gina")).await;
    sc.settled("gina").await;
    assert_eq!(password(&sc.secret(name).await), p2);
    let again: Vec<_> = sc
        .user_events("gina")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("PasswordChosen"))
        .collect();
    assert_eq!((chosen.len(), again.len()), (1, 1), "one PasswordChosen Event");
    for e in &again {
        let note = e.note.clone().unwrap_or_default();
        assert!(!note.contains(p2) && !note.contains(&p1));
    }
    assert!(!sc.operator.log().contains(p2), "never in the log");
}

/// The link is used before the page writes its request: a Secret changed since the page read
/// it (a 409) is read again and the request written on it, as long as it is still the user's;
/// one that is no longer the user's is never written.
#[tokio::test]
async fn a_password_request_on_a_changed_secret_is_retried_only_while_it_is_the_users() {
    use crate::scenario::{password, secret_value};
    use sip_operator::credentials::Password;
    use sip_operator::invite::claim::{RequestError, request_with_retries};
    let sc = Scenario::new("invite-retry").await;
    sc.apply(&user("rita")).await;
    let rita = sc.ready("rita").await;
    let uid = rita.metadata.uid.clone().expect("uid");
    let name = "rita-sip-credentials";
    let read = sc.secret_appears(name).await;
    // Someone (here: the test; in life the controller) writes the Secret after the page read it.
    sc.secrets()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .expect("a write in between");
    let stored = request_with_retries(&sc.client, &uid, &read, &Password::new("Rita-Chooses-2026"))
        .await
        .expect("retried on the fresh Secret");
    assert_eq!(
        secret_value(&stored, "chosen.password").as_deref(),
        Some("Rita-Chooses-2026")
    );
    sc.wait_secret(name, "the request swapped in", |s| {
        password(s) == "Rita-Chooses-2026"
    })
    .await;

    // Not the user's (another uid): read again, refused, nothing written.
    let read = sc.secret(name).await;
    sc.secrets()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "again"}}})),
        )
        .await
        .expect("a write in between");
    let refused = request_with_retries(
        &sc.client,
        "another-uid",
        &read,
        &Password::new("Not-Written-2026"),
    )
    .await
    .expect_err("not the user's");
    assert!(matches!(refused, RequestError::NotOurs), "{refused}");
    let after = sc.secret(name).await;
    assert_eq!(secret_value(&after, "chosen.password"), None);
    assert_eq!(password(&after), "Rita-Chooses-2026");
}

/// A SipUser deleted (its invite orphaned, so it outlives it) and re-created with the same name
/// is another user: the invite records the uid it was issued for, is Stalled `UserReplaced`
/// (its link dead), and is never adopted by the new user.
#[tokio::test]
async fn a_link_issued_for_a_user_since_re_created_is_dead() {
    let sc = scenario("invite-replaced").await;
    sc.apply(&user("alice")).await;
    let first = sc.ready("alice").await;
    sc.apply(&invite("alice-old", "alice", json!({}))).await;
    let issued = wait_invite(&sc, "alice-old", "Issued", |i| {
        i.phase() == Some(InvitePhase::Issued)
    })
    .await;
    assert_eq!(
        issued.status.as_ref().and_then(|s| s.user_uid.clone()),
        first.metadata.uid.clone(),
        "the user's uid is recorded at issue"
    );
    garbage_collector_watches_invites(&sc).await;
    sc.users()
        .delete(
            "alice",
            &kube::api::DeleteParams {
                propagation_policy: Some(kube::api::PropagationPolicy::Orphan),
                ..Default::default()
            },
        )
        .await
        .expect("delete alice, orphaning the invite");
    sc.until("alice to be gone", WAIT, || async {
        match sc.try_user("alice").await {
            None => Ok(()),
            Some(u) => Err(describe(&u)),
        }
    })
    .await;
    // The orphaned credentials Secret would stall the new user (not its own): gone with it.
    sc.secrets()
        .delete("alice-sip-credentials", &Default::default())
        .await
        .expect("delete the orphaned Secret");
    sc.secret_gone("alice-sip-credentials", WAIT).await;
    sc.apply(&user("alice")).await;
    let second = sc.ready("alice").await;
    assert_ne!(second.metadata.uid, first.metadata.uid);
    let dead = wait_invite(&sc, "alice-old", "Stalled UserReplaced", |i| {
        i.phase() == Some(InvitePhase::Stalled)
            && condition(i, "Stalled").is_some_and(|c| c.0 == "True" && c.1 == "UserReplaced")
    })
    .await;
    let owners = dead.metadata.owner_references.clone().unwrap_or_default();
    assert!(
        owners
            .iter()
            .all(|o| Some(&o.uid) != second.metadata.uid.as_ref()),
        "not adopted by the new user: {owners:?}"
    );
    assert_eq!(
        dead.status.and_then(|s| s.url),
        issued.status.and_then(|s| s.url),
        "no new link for the new user"
    );
}

/// A chosen password's request that a rotation overrides (both made while the operator was
/// down, so one reconcile sees both) is not swapped in: the rotation wins, the request leaves
/// the Secret in the same write, and a Warning Event tells the administrator — the page had
/// told the end user it would take effect.
#[tokio::test]
async fn a_chosen_password_overridden_by_a_rotation_is_discarded_with_a_warning() {
    use crate::scenario::{password, secret_value};
    let mut sc = Scenario::new("invite-discard").await;
    let hana = user("hana");
    sc.apply(&hana).await;
    sc.ready("hana").await;
    let name = "hana-sip-credentials";
    let secret = sc.secret_appears(name).await;
    let p0 = password(&secret);

    sc.operator.stop().await;
    let chosen = "Chosen-By-Hana-2026";
    sip_operator::invite::claim::request_password(
        &sc.client,
        &secret,
        &sip_operator::credentials::Password::new(chosen),
    )
    .await
    .expect("the page's request");
    sc.apply(&hana.clone().rotate("r1")).await;
    sc.operator = crate::support::operator::Operator::start(&sc.ns).await;

    let rotated = sc
        .wait_secret(name, "rotated, the request removed", |s| {
            password(s) != p0 && secret_value(s, "chosen.password").is_none()
        })
        .await;
    assert_ne!(password(&rotated), chosen, "the rotation wins");
    let warning = sc.wait_event("hana", "ChosenPasswordDiscarded").await;
    let note = warning[0].note.clone().unwrap_or_default();
    assert_eq!(warning[0].type_.as_deref(), Some("Warning"));
    assert!(note.contains("rotation") && note.contains(name), "{note}");
    assert!(!note.contains(chosen) && !note.contains(&p0));
    sc.wait_event("hana", "PasswordRotated").await;
    // Nothing further: the request is gone, so no second warning.
    sc.apply(&hana.clone().rotate("r1").display_name("Hana")).await;
    sc.settled("hana").await;
    let warnings = sc
        .user_events("hana")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("ChosenPasswordDiscarded"))
        .count();
    assert_eq!(warnings, 1);
    assert!(!sc.operator.log().contains(chosen), "never in the log");
}
