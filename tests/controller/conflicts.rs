//! Conflicts, oldest wins: usernames, extensions and aliases share one namespace per domain;
//! two SipDomains may not claim one FQDN; extensions must match the domain's pattern. The
//! loser is Stalled naming the winner and heals by itself once the conflict is gone.
//!
//! "Older" is made deterministic by creating the winner first and waiting for it to be Ready,
//! and by naming it alphabetically first (creationTimestamp has a 1 s resolution and ties fall
//! back to the name).
use sip_operator::api::{SipDomain, SipUser};

use crate::builders::{PROFILE, domain, user};
use crate::scenario::{Scenario, condition, describe, has_condition, is_current, reasons};

/// Asserts that a user that is not admitted has no credentials yet (CredentialsReady Unknown,
/// reason NotAdmitted).
async fn assert_not_admitted(sc: &Scenario, name: &str) {
    let u = sc.user(name).await;
    assert!(
        has_condition(&u, reasons::CREDENTIALS_READY, "Unknown", reasons::NOT_ADMITTED),
        "{}",
        describe(&u)
    );
}

#[tokio::test]
async fn each_name_clash_stalls_the_younger_user_naming_the_winner() {
    let sc = Scenario::new("nameclash").await;
    // The winner holds username frontdesk, extension 7005 and alias helpdesk.
    sc.apply(
        &user("a-winner")
            .username("frontdesk")
            .extension("7005")
            .aliases(&["helpdesk"]),
    )
    .await;
    sc.ready("a-winner").await;

    // Each loser clashes through exactly one of its own fields, against a different field of
    // the winner: the reason names the loser's field.
    sc.apply(&user("b-username").username("helpdesk")).await;
    sc.apply(&user("c-extension").extension("frontdesk")).await;
    sc.apply(&user("d-alias").aliases(&["7005"])).await;
    for (loser, reason) in [
        ("b-username", reasons::USERNAME_CONFLICT),
        ("c-extension", reasons::EXTENSION_CONFLICT),
        ("d-alias", reasons::ALIAS_CONFLICT),
    ] {
        let message = sc.stalled(loser, reason).await;
        assert!(
            message.contains("a-winner"),
            "{loser}: the message names the older winner: {message}"
        );
        assert_not_admitted(&sc, loser).await;
    }
    // The winner is unaffected.
    let winner = sc.ready("a-winner").await;
    assert_eq!(
        condition(&winner, reasons::STALLED).map(|(s, _, _)| s).as_deref(),
        Some("False"),
        "{}",
        describe(&winner)
    );

    // Deleting the winner heals every loser without a poke.
    sc.delete::<SipUser>("a-winner").await;
    for loser in ["b-username", "c-extension", "d-alias"] {
        sc.ready(loser).await;
        sc.secret_appears(&format!("{loser}-sip-credentials")).await;
    }
}

#[tokio::test]
async fn same_field_clashes_stall_and_heal_when_the_loser_changes() {
    let sc = Scenario::new("samefield").await;
    sc.apply(&user("a-first").extension("7001").aliases(&["support"]))
        .await;
    sc.ready("a-first").await;

    // Same username (spec.username of the one, metadata.name of the other), same extension,
    // same alias.
    sc.apply(&user("a-named").username("a-first")).await;
    let b_ext = user("b-ext").extension("7001");
    sc.apply(&b_ext).await;
    let c_alias = user("c-alias").aliases(&["support"]);
    sc.apply(&c_alias).await;
    for (loser, reason) in [
        ("a-named", reasons::USERNAME_CONFLICT),
        ("b-ext", reasons::EXTENSION_CONFLICT),
        ("c-alias", reasons::ALIAS_CONFLICT),
    ] {
        let message = sc.stalled(loser, reason).await;
        assert!(
            message.contains("a-first"),
            "{loser}: the message names the older winner: {message}"
        );
    }

    // Fixing the clash on the loser's side heals it; the winner keeps its names.
    sc.apply(&b_ext.clone().extension("7002")).await;
    sc.apply(&c_alias.clone().aliases(&["support-2"])).await;
    sc.ready("b-ext").await;
    sc.ready("c-alias").await;
    sc.ready("a-first").await;
    sc.stalled("a-named", reasons::USERNAME_CONFLICT).await;
}

#[tokio::test]
async fn duplicate_domain_stalls_the_newer_domain_and_its_users() {
    let sc = Scenario::new("domainclash").await;
    let fqdn = sc.fqdn_for("shared");
    sc.apply(&domain("a-first", &fqdn).default_profile(PROFILE)).await;
    sc.apply(&user("one").domain("a-first")).await;
    sc.ready("one").await;
    sc.domain_ready_with_users("a-first", 1).await;

    sc.apply(&domain("b-second", &fqdn).default_profile(PROFILE))
        .await;
    sc.apply(&user("two").domain("b-second")).await;
    let loser = sc
        .wait_domain("b-second", "Stalled=True reason DomainConflict", |d| {
            is_current(d)
                && has_condition(d, reasons::STALLED, "True", reasons::DOMAIN_CONFLICT)
                && condition(d, reasons::READY).is_some_and(|(s, _, _)| s == "False")
        })
        .await;
    let (_, _, message) = condition(&loser, reasons::STALLED).expect("Stalled");
    let winner = format!("{}/a-first", sc.namespace());
    assert!(message.contains(&winner), "the message names {winner}: {message}");
    sc.stalled("two", reasons::DOMAIN_NOT_READY).await;
    assert_not_admitted(&sc, "two").await;
    // The winner and its user are untouched.
    sc.ready("one").await;
    sc.domain_ready_with_users("a-first", 1).await;

    // Deleting the winner heals the loser domain and its user.
    sc.delete::<SipDomain>("a-first").await;
    sc.domain_ready_with_users("b-second", 1).await;
    let two = sc.ready("two").await;
    assert_eq!(
        two.status.as_ref().and_then(|s| s.aor.clone()),
        Some(format!("sip:two@{fqdn}"))
    );
    // The user of the deleted domain is now the one without a domain.
    let message = sc.stalled("one", reasons::DOMAIN_NOT_FOUND).await;
    assert!(message.contains("a-first"), "{message}");
}

#[tokio::test]
async fn extension_pattern_mismatch_stalls_until_the_extension_matches() {
    let sc = Scenario::new("pattern").await;
    sc.apply(&sc.default_domain().extension_pattern("^7[0-9]{3}$"))
        .await;
    let gina = user("gina").extension("8001");
    sc.apply(&gina).await;
    let message = sc.stalled("gina", reasons::EXTENSION_PATTERN_MISMATCH).await;
    assert!(
        message.contains("8001"),
        "the message names the extension: {message}"
    );
    assert_not_admitted(&sc, "gina").await;

    sc.apply(&gina.clone().extension("7001")).await;
    sc.ready("gina").await;

    // Tightening the pattern stalls an admitted user; loosening it heals again.
    sc.apply(&sc.default_domain().extension_pattern("^9[0-9]{3}$"))
        .await;
    sc.stalled("gina", reasons::EXTENSION_PATTERN_MISMATCH).await;
    sc.apply(&sc.default_domain()).await;
    sc.ready("gina").await;
}
