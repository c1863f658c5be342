//! References: a SipUser naming a SipDomain or SipProfile that does not exist is Stalled with a
//! message naming it, and heals by itself when it appears.
use crate::builders::{DOMAIN, PROFILE, domain, profile, user};
use crate::scenario::{Scenario, describe, has_condition, reasons};

#[tokio::test]
async fn missing_domain_stalls_and_heals_when_it_is_created() {
    let sc = Scenario::new("nodomain").await;
    sc.apply(&user("henry").domain("later")).await;
    let message = sc.stalled("henry", reasons::DOMAIN_NOT_FOUND).await;
    assert!(
        message.contains("later"),
        "the message names the SipDomain: {message}"
    );
    let u = sc.user("henry").await;
    assert!(
        has_condition(&u, reasons::CREDENTIALS_READY, "Unknown", reasons::NOT_ADMITTED),
        "{}",
        describe(&u)
    );
    assert!(
        sc.try_secret("henry-sip-credentials").await.is_none(),
        "credentials are only written for admitted users"
    );

    let fqdn = sc.fqdn_for("later");
    sc.apply(&domain("later", &fqdn).default_profile(PROFILE)).await;
    let u = sc.ready("henry").await;
    assert_eq!(
        u.status.as_ref().and_then(|s| s.aor.clone()),
        Some(format!("sip:henry@{fqdn}"))
    );
    sc.secret_appears("henry-sip-credentials").await;
    sc.domain_ready_with_users("later", 1).await;
}

#[tokio::test]
async fn missing_profile_stalls_and_heals_when_it_is_created() {
    let sc = Scenario::empty("noprofile").await;
    // The domain's default profile does not exist yet either.
    sc.apply(&sc.default_domain()).await;
    sc.apply(&user("ivy").profile("gold")).await;
    sc.apply(&user("jack")).await;

    let message = sc.stalled("ivy", reasons::PROFILE_NOT_FOUND).await;
    assert!(
        message.contains("gold"),
        "the message names the SipProfile: {message}"
    );
    let message = sc.stalled("jack", reasons::PROFILE_NOT_FOUND).await;
    assert!(
        message.contains(PROFILE),
        "the message names the domain's default profile: {message}"
    );

    sc.apply(&profile("gold")).await;
    let ivy = sc.ready("ivy").await;
    assert_eq!(
        ivy.status.as_ref().and_then(|s| s.profile.as_deref()),
        Some("gold")
    );
    sc.stalled("jack", reasons::PROFILE_NOT_FOUND).await;

    sc.apply(&profile(PROFILE)).await;
    let jack = sc.ready("jack").await;
    assert_eq!(
        jack.status.as_ref().and_then(|s| s.profile.as_deref()),
        Some(PROFILE),
        "the effective profile is the domain's default"
    );
    sc.domain_ready_with_users(DOMAIN, 2).await;
    sc.wait_profile("gold", "users 1", |p| {
        p.status.as_ref().and_then(|s| s.users) == Some(1)
    })
    .await;
}
