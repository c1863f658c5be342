//! Seats: a SipProfile's `capacity` and a SipDomain's `maxUsers` admit the oldest users; the
//! rest are Stalled and get in by themselves when a seat frees up. Domain and profile status
//! count the admitted users.
use sip_operator::api::SipUser;

use crate::builders::{profile, user};
use crate::scenario::{Scenario, condition, describe, has_condition, is_current, reasons};

/// Creates `names` one after the other, each Ready before the next, so that they are ordered
/// by age as they are listed (names are alphabetical too).
async fn create_in_order(
    sc: &Scenario,
    names: &[&str],
    build: impl Fn(&str) -> crate::builders::UserBuilder,
) {
    for name in names {
        sc.apply(&build(name)).await;
        sc.ready(name).await;
    }
}

#[tokio::test]
async fn profile_capacity_admits_the_oldest_and_releases_seats() {
    let sc = Scenario::new("capacity").await;
    sc.apply(&profile("gold").capacity(2).flags(&["voicemail"])).await;
    create_in_order(&sc, &["u1", "u2"], |n| user(n).profile("gold")).await;
    sc.apply(&user("u3").profile("gold")).await;
    let message = sc.stalled("u3", reasons::PROFILE_CAPACITY_EXCEEDED).await;
    assert!(
        message.contains("gold"),
        "the message names the profile: {message}"
    );
    let u3 = sc.user("u3").await;
    assert!(
        has_condition(&u3, reasons::CREDENTIALS_READY, "Unknown", reasons::NOT_ADMITTED),
        "{}",
        describe(&u3)
    );

    let gold = sc
        .wait_profile("gold", "Ready, users 2, capacity 2", |p| {
            is_current(p)
                && condition(p, reasons::READY).is_some_and(|(s, _, _)| s == "True")
                && p.status
                    .as_ref()
                    .is_some_and(|s| s.users == Some(2) && s.capacity == Some(2))
        })
        .await;
    assert!(is_current(&gold));
    // The other users are not in the profile, so they do not count.
    sc.apply(&user("other")).await;
    sc.ready("other").await;
    sc.wait_profile(crate::builders::PROFILE, "users 1", |p| {
        p.status.as_ref().and_then(|s| s.users) == Some(1)
    })
    .await;

    // A seat frees up: the waiting user is admitted by itself.
    sc.delete::<SipUser>("u1").await;
    sc.ready("u3").await;
    sc.secret_appears("u3-sip-credentials").await;
    sc.wait_profile("gold", "users 2 after the release", |p| {
        p.status
            .as_ref()
            .is_some_and(|s| s.users == Some(2) && s.capacity == Some(2))
    })
    .await;

    // Raising the capacity admits more.
    sc.apply(&user("u4").profile("gold")).await;
    sc.stalled("u4", reasons::PROFILE_CAPACITY_EXCEEDED).await;
    sc.apply(&profile("gold").capacity(3).flags(&["voicemail"])).await;
    sc.ready("u4").await;
    sc.wait_profile("gold", "users 3 of capacity 3", |p| {
        p.status
            .as_ref()
            .is_some_and(|s| s.users == Some(3) && s.capacity == Some(3))
    })
    .await;
}

#[tokio::test]
async fn domain_max_users_admits_the_oldest() {
    let sc = Scenario::new("maxusers").await;
    sc.apply(&sc.default_domain().max_users(2)).await;
    create_in_order(&sc, &["u1", "u2"], user).await;
    sc.apply(&user("u3")).await;
    let message = sc.stalled("u3", reasons::DOMAIN_USER_LIMIT_REACHED).await;
    assert!(
        message.contains(crate::builders::DOMAIN),
        "the message names the domain: {message}"
    );
    sc.domain_ready_with_users(crate::builders::DOMAIN, 2).await;

    sc.apply(&sc.default_domain().max_users(3)).await;
    sc.ready("u3").await;
    sc.domain_ready_with_users(crate::builders::DOMAIN, 3).await;

    // Lowering the limit below the admitted count keeps the oldest.
    sc.apply(&sc.default_domain().max_users(1)).await;
    for name in ["u2", "u3"] {
        sc.stalled(name, reasons::DOMAIN_USER_LIMIT_REACHED).await;
    }
    sc.ready("u1").await;
    sc.domain_ready_with_users(crate::builders::DOMAIN, 1).await;
}
