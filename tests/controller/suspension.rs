//! Suspension (`spec.enabled: false`): the user is Ready as Suspended, keeps (or gets) its
//! Secret and password, is not pushed, and still holds its names and its seats.
use crate::builders::{profile, user};
use crate::scenario::{Scenario, condition, describe, has_condition, password, reasons};

#[tokio::test]
async fn suspended_user_keeps_its_secret_and_password() {
    let sc = Scenario::new("suspend").await;
    let bob = user("bob").extension("7002").enabled(false);
    sc.apply(&bob).await;

    let u = sc.ready_as("bob", reasons::SUSPENDED).await;
    assert!(
        has_condition(&u, reasons::REGISTRAR_SYNCED, "False", reasons::SUSPENDED),
        "{}",
        describe(&u)
    );
    assert_eq!(
        condition(&u, reasons::STALLED).map(|(s, _, _)| s).as_deref(),
        Some("False"),
        "{}",
        describe(&u)
    );
    let secret = sc.secret_appears("bob-sip-credentials").await;
    crate::credentials::assert_credentials_secret(&secret, &u, "bob", &sc.fqdn, &sc.fqdn);
    let pw = password(&secret);

    // Enabling: Ready as Ready, same password.
    sc.apply(&bob.clone().enabled(true)).await;
    let u = sc.ready("bob").await;
    assert!(
        has_condition(
            &u,
            reasons::REGISTRAR_SYNCED,
            "Unknown",
            reasons::NO_REGISTRAR_CONFIGURED
        ),
        "{}",
        describe(&u)
    );
    assert_eq!(password(&sc.secret("bob-sip-credentials").await), pw);

    // Suspending again keeps the Secret as it is.
    let before = sc.secret("bob-sip-credentials").await;
    sc.apply(&bob).await;
    sc.ready_as("bob", reasons::SUSPENDED).await;
    let after = sc.secret("bob-sip-credentials").await;
    assert_eq!(password(&after), pw, "suspension must not change the password");
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "suspension must not rewrite the Secret"
    );
}

#[tokio::test]
async fn suspended_users_hold_their_names_and_seats() {
    let sc = Scenario::new("suspendseat").await;
    sc.apply(&profile("solo").capacity(1)).await;
    sc.apply(&sc.default_domain().max_users(2)).await;
    sc.apply(&user("a-sleeper").extension("7001").profile("solo").enabled(false))
        .await;
    sc.ready_as("a-sleeper", reasons::SUSPENDED).await;

    // Its extension is still taken.
    sc.apply(&user("b-ext").extension("7001")).await;
    let message = sc.stalled("b-ext", reasons::EXTENSION_CONFLICT).await;
    assert!(message.contains("a-sleeper"), "{message}");
    // Its profile seat is still taken.
    sc.apply(&user("c-seat").profile("solo")).await;
    sc.stalled("c-seat", reasons::PROFILE_CAPACITY_EXCEEDED).await;
    // It counts toward maxUsers: fill the second seat, the next one waits.
    sc.apply(&user("d-fills")).await;
    sc.ready("d-fills").await;
    sc.apply(&user("e-over")).await;
    sc.stalled("e-over", reasons::DOMAIN_USER_LIMIT_REACHED).await;
    sc.domain_ready_with_users(crate::builders::DOMAIN, 2).await;
    sc.wait_profile("solo", "users 1 (the suspended user)", |p| {
        p.status.as_ref().and_then(|s| s.users) == Some(1)
    })
    .await;
}
