//! The password changes only when asked: a new value of the `sipoperator.io/rotate`
//! annotation rotates it exactly once, a deleted Secret is regenerated with a new password,
//! and nothing else (spec changes, re-reconciles) touches it.
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use sip_operator::api::SipUser;

use crate::builders::user;
use crate::scenario::{Scenario, has_condition, is_current, md5, password, reasons, summarize_events};
use crate::support::eventually;

fn changed_at(u: &SipUser) -> Option<Time> {
    u.status.as_ref().and_then(|s| s.password_changed_at.clone())
}

fn handled_rotation(u: &SipUser) -> Option<String> {
    u.status.as_ref().and_then(|s| s.last_handled_rotation.clone())
}

/// Waits until the wall clock is past `t` by more than a second, so that a timestamp written
/// from now on (1 s resolution) is later than `t`.
pub async fn let_a_second_pass(t: &Time) {
    let after = t.0 + SignedDuration::from_millis(1100);
    eventually("a second to pass", Duration::from_secs(5), || async move {
        (Timestamp::now() > after).then_some(())
    })
    .await
}

#[tokio::test]
async fn rotate_annotation_rotates_exactly_once() {
    let sc = Scenario::new("rotation").await;
    let erin = user("erin").extension("7010");
    sc.apply(&erin).await;
    let u = sc.ready("erin").await;
    let secret_name = "erin-sip-credentials";
    let p0 = password(&sc.secret_appears(secret_name).await);
    let t0 = changed_at(&u).expect("passwordChangedAt after creation");
    let_a_second_pass(&t0).await;

    sc.apply(&erin.clone().rotate("2024-01-01")).await;
    let u = sc
        .wait_user("erin", "lastHandledRotation == 2024-01-01 and Ready", |u| {
            handled_rotation(u).as_deref() == Some("2024-01-01")
                && is_current(u)
                && has_condition(u, reasons::READY, "True", reasons::READY)
        })
        .await;
    let p1 = password(&sc.secret(secret_name).await);
    assert_ne!(p1, p0, "the rotate annotation must change the password");
    assert_eq!(p1.len(), 32);
    let t1 = changed_at(&u).expect("passwordChangedAt");
    assert!(
        t1 > t0,
        "passwordChangedAt must move on rotation: {t0:?} -> {t1:?}"
    );
    let rotated = sc.wait_event("erin", reasons::PASSWORD_ROTATED).await;
    assert_eq!(
        rotated.len(),
        1,
        "one PasswordRotated event: {}",
        summarize_events(&rotated)
    );

    // Further reconciles with the same annotation value do not rotate again.
    let_a_second_pass(&t1).await;
    sc.apply(&erin.clone().rotate("2024-01-01").display_name("Erin Example"))
        .await;
    let u = sc.settled("erin").await;
    sc.ready("erin").await;
    let secret = sc.secret(secret_name).await;
    assert_eq!(
        password(&secret),
        p1,
        "a spec change must not rotate the password again"
    );
    assert_eq!(
        changed_at(&u),
        Some(t1.clone()),
        "passwordChangedAt must not move without a rotation"
    );
    assert_eq!(handled_rotation(&u).as_deref(), Some("2024-01-01"));
    let rv = secret.metadata.resource_version.clone();
    // And a restarted operator (a full resync) does not either.
    let mut sc = sc;
    sc.restart_operator().await;
    sc.operator_settled(1.0).await;
    let secret = sc.secret(secret_name).await;
    assert_eq!(
        password(&secret),
        p1,
        "a restart must not rotate the password again"
    );
    assert_eq!(
        secret.metadata.resource_version, rv,
        "a restart must not rewrite the Secret"
    );
    let rotated = sc.user_events("erin").await;
    let count = rotated
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reasons::PASSWORD_ROTATED))
        .count();
    assert_eq!(
        count,
        1,
        "still one PasswordRotated event: {}",
        summarize_events(&rotated)
    );

    // A new value rotates once more.
    sc.apply(&erin.clone().rotate("2024-02-01").display_name("Erin Example"))
        .await;
    sc.wait_user("erin", "lastHandledRotation == 2024-02-01", |u| {
        handled_rotation(u).as_deref() == Some("2024-02-01")
            && has_condition(u, reasons::READY, "True", reasons::READY)
    })
    .await;
    let p2 = password(&sc.secret(secret_name).await);
    assert_ne!(p2, p1, "a second rotation value must change the password again");
    assert_ne!(p2, p0);
}

#[tokio::test]
async fn deleted_secret_is_recreated_with_a_new_password() {
    let sc = Scenario::new("regenerate").await;
    sc.apply(&user("frank")).await;
    let u = sc.ready("frank").await;
    let name = "frank-sip-credentials";
    let old = sc.secret_appears(name).await;
    let old_password = password(&old);
    let t0 = changed_at(&u).expect("passwordChangedAt");
    let_a_second_pass(&t0).await;

    sc.delete::<Secret>(name).await;
    let new = sc
        .wait_secret(name, "recreated (a new uid)", |s| {
            s.metadata.uid != old.metadata.uid
        })
        .await;
    let u = sc
        .wait_user("frank", "Ready with passwordChangedAt moved", |u| {
            has_condition(u, reasons::READY, "True", reasons::READY) && changed_at(u).is_some_and(|t| t > t0)
        })
        .await;
    crate::credentials::assert_credentials_secret(&new, &u, "frank", &sc.fqdn, &sc.fqdn);
    assert_ne!(
        password(&new),
        old_password,
        "a regenerated Secret gets a NEW password"
    );
}

#[tokio::test]
async fn a_huge_rotate_value_rotates_once_and_is_stored_bounded() {
    let sc = Scenario::new("hugerotate").await;
    sc.apply(&user("hugo")).await;
    sc.ready("hugo").await;
    let p0 = password(&sc.secret_appears("hugo-sip-credentials").await);

    let huge = "r".repeat(200 * 1024);
    sc.apply(&user("hugo").rotate(&huge)).await;
    let u = sc
        .wait_user("hugo", "the rotation handled", |u| {
            is_current(u) && handled_rotation(u).is_some()
        })
        .await;
    let stored = handled_rotation(&u).unwrap_or_default();
    assert!(stored.len() <= 253, "status holds {} bytes", stored.len());
    let secret = sc.secret("hugo-sip-credentials").await;
    let p1 = password(&secret);
    assert_ne!(p1, p0, "rotated");
    let annotation = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(sip_operator::controller::ROTATION_HANDLED_ANNOTATION))
        .cloned()
        .unwrap_or_default();
    assert!(
        annotation.len() <= 253,
        "the Secret annotation holds {} bytes",
        annotation.len()
    );

    // Once: another reconcile (a spec change) leaves the password alone.
    sc.apply(&user("hugo").rotate(&huge).display_name("Hugo")).await;
    sc.wait_user("hugo", "the display name change reconciled", is_current)
        .await;
    assert_eq!(password(&sc.secret("hugo-sip-credentials").await), p1);
}

fn valid_until(u: &SipUser) -> Option<Time> {
    u.status
        .as_ref()
        .and_then(|s| s.previous_password_valid_until.clone())
}

fn device_valid_until(u: &SipUser, device: &str) -> Option<Time> {
    u.status
        .as_ref()
        .and_then(|s| s.devices.iter().find(|d| d.name == device))
        .and_then(|d| d.previous_password_valid_until.clone())
}

/// The previous digest keys `prefix` + `previous.*` of a Secret: (MD5 HA1, deadline).
fn previous_keys(secret: &Secret, prefix: &str) -> (Option<String>, Option<String>) {
    let value = |k: &str| crate::scenario::secret_value(secret, &format!("{prefix}{k}"));
    (value("previous.ha1"), value("previous.valid-until"))
}

/// The desk phone's deadline as the Secret holds it.
fn desk_deadline(secret: &Secret) -> Option<String> {
    previous_keys(secret, "devices.desk.").1
}

/// A grace period: a rotation keeps the previous password's HA1 (never the password) and its
/// deadline in the Secret and shows the deadline in status (a device's; the account's not
/// while devices are listed); the user's grace period wins over the domain's; at the deadline
/// both go without anything else happening (the reconcile is requeued for it), the time of
/// the change stays. The same for a device's rotation.
#[tokio::test]
async fn a_grace_period_keeps_the_previous_digest_until_its_deadline() {
    let sc = Scenario::new("grace").await;
    sc.apply(&sc.default_domain().grace_period("1h")).await;
    let grace = user("gina")
        .grace_period("8s")
        .devices(serde_json::json!([{"name": "desk"}]));
    sc.apply(&grace).await;
    sc.ready("gina").await;
    let name = "gina-sip-credentials";
    let before = sc.secret_appears(name).await;
    let (p0, desk0) = (
        password(&before),
        crate::scenario::secret_value(&before, "devices.desk.password").expect("desk password"),
    );
    assert_eq!(
        previous_keys(&before, ""),
        (None, None),
        "nothing before a change"
    );

    let rotated_at = Timestamp::now();
    sc.apply(&grace.clone().rotate("r1").rotate_device("desk", "d1"))
        .await;
    let u = sc
        .wait_user("gina", "both rotations handled with deadlines", |u| {
            handled_rotation(u).as_deref() == Some("r1") && device_valid_until(u, "desk").is_some()
        })
        .await;
    assert_eq!(
        valid_until(&u),
        None,
        "the account's deadline is not shown while devices are listed"
    );
    let secret = sc.secret(name).await;
    assert_ne!(password(&secret), p0);
    let (ha1, until) = previous_keys(&secret, "");
    assert_eq!(
        ha1,
        Some(md5("gina", &sc.fqdn, &p0)),
        "the previous password's HA1"
    );
    let deadline = Time(until.as_deref().expect("deadline").parse().expect("RFC 3339"));
    assert_eq!(
        desk_deadline(&secret),
        device_valid_until(&u, "desk").map(|t| t.0.to_string()),
        "the Secret holds the deadline the status shows"
    );
    let ahead = deadline.0.duration_since(rotated_at).as_secs();
    assert!(
        (6..=10).contains(&ahead),
        "the user's 8s wins over the domain's 1h: {ahead}s"
    );
    let (desk_ha1, desk_until) = previous_keys(&secret, "devices.desk.");
    assert_eq!(desk_ha1, Some(md5("gina#desk", &sc.fqdn, &desk0)));
    assert!(desk_until.is_some());
    let values: Vec<String> = secret
        .data
        .iter()
        .flatten()
        .map(|(_, v)| String::from_utf8_lossy(&v.0).into_owned())
        .collect();
    assert!(
        !values.contains(&p0) && !values.contains(&desk0),
        "never the previous password itself"
    );

    // At the deadline both go, with no change to the user.
    let u = eventually(
        "the deadlines to pass and the previous digests to go",
        Duration::from_secs(40),
        || async {
            let u = sc.try_user("gina").await?;
            let secret = sc.secret(name).await;
            let gone = previous_keys(&secret, "") == (None, None)
                && previous_keys(&secret, "devices.desk.") == (None, None);
            (device_valid_until(&u, "desk").is_none() && gone).then_some(u)
        },
    )
    .await;
    assert!(
        Timestamp::now() >= deadline.0,
        "not before the deadline {deadline:?}"
    );
    let secret = sc.secret(name).await;
    let previous: Vec<&str> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.contains("previous."))
        .collect();
    assert_eq!(
        previous,
        ["devices.desk.previous.changed-at", "previous.changed-at"],
        "only the times of the changes stay in the Secret"
    );
    assert_eq!(handled_rotation(&u).as_deref(), Some("r1"));
}

/// Without a grace period (none set, or the user's `0s` over the domain's) a rotation keeps
/// nothing of the previous password, as before; an imported password's change is a change
/// like a rotation.
#[tokio::test]
async fn without_a_grace_period_nothing_of_the_previous_password_is_kept() {
    let sc = Scenario::new("nograce").await;
    sc.apply(&user("nina")).await;
    sc.ready("nina").await;
    let p0 = password(&sc.secret_appears("nina-sip-credentials").await);
    sc.apply(&user("nina").rotate("r1")).await;
    let u = sc
        .wait_user("nina", "rotated", |u| {
            handled_rotation(u).as_deref() == Some("r1") && is_current(u)
        })
        .await;
    let secret = sc.secret("nina-sip-credentials").await;
    assert_ne!(password(&secret), p0);
    assert_eq!(previous_keys(&secret, ""), (None, None));
    assert_eq!(valid_until(&u), None);

    // The domain's grace period, opted out of with 0s.
    sc.apply(&sc.default_domain().grace_period("1h")).await;
    sc.apply(&user("nina").rotate("r2").grace_period("0s")).await;
    let u = sc
        .wait_user("nina", "rotated again", |u| {
            handled_rotation(u).as_deref() == Some("r2") && is_current(u)
        })
        .await;
    assert_eq!(
        previous_keys(&sc.secret("nina-sip-credentials").await, ""),
        (None, None)
    );
    assert_eq!(valid_until(&u), None);

    // An imported password that changes, with the domain's grace period.
    let source = crate::builders::secret("nina-source").string("pw", "first-Imported-pw-1");
    sc.apply(&source).await;
    sc.apply(&user("ivan").import("nina-source", "pw")).await;
    sc.ready("ivan").await;
    sc.apply(&crate::builders::secret("nina-source").string("pw", "second-Imported-pw-2"))
        .await;
    let u = sc
        .wait_user("ivan", "the imported change with a deadline", |u| {
            valid_until(u).is_some()
        })
        .await;
    let secret = sc.secret("ivan-sip-credentials").await;
    assert_eq!(password(&secret), "second-Imported-pw-2");
    assert_eq!(
        previous_keys(&secret, "").0,
        Some(md5("ivan", &sc.fqdn, "first-Imported-pw-1"))
    );
    let ahead = valid_until(&u)
        .expect("deadline")
        .0
        .duration_since(Timestamp::now())
        .as_secs();
    assert!((3000..=3600).contains(&ahead), "the domain's 1h: {ahead}s");
}
