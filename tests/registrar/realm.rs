//! A SipDomain's own digest realm (`spec.realm` other than the domain): the operator computes
//! HA1 with it, so the registrar must challenge and check with it too. The operator keeps it in
//! the htable `realms` (key: the lower-case domain, value: the realm as is); without an entry
//! the config falls back to the From domain, as it always did.
use sip_operator::api::{Conditioned, DigestAlgorithm};
use sip_operator::credentials::{Password, ha1};

use crate::digest::{Algorithm, Outcome, register};
use crate::setup::{Setup, WAIT};
use crate::support::eventually;
use crate::support::kamailio::Kamailio;
use crate::support::sipp::{Registration, Sipp};
use crate::{DOMAIN, TestUser};

/// The realm of the issue: not the domain, and with a space in it.
const REALM: &str = "Custom Realm";

/// Sets the realm of `domain` as the operator does.
fn set_realm(kamailio: &Kamailio, domain: &str, realm: &str) {
    kamailio.rpc_ok("htable.sets", serde_json::json!(["realms", domain, realm]));
}

/// `user`'s entry with both HA1s computed over `realm`.
fn entry_in_realm(user: &TestUser, realm: &str) -> String {
    let password = Password::new(user.password.clone());
    format!(
        "ha1={};ha1sha256={};mc=1;en=1",
        ha1(DigestAlgorithm::Md5, &user.username, realm, &password),
        ha1(DigestAlgorithm::Sha256, &user.username, realm, &password)
    )
}

fn challenged_in(outcome: &Outcome, realm: &str) -> bool {
    outcome
        .challenges
        .first()
        .is_some_and(|c| c.contains(&format!("realm=\"{realm}\"")))
}

/// A realm entry for the domain: challenged with it, right password 200, wrong 403, and an
/// HA1 over the domain (what the old config expected) no longer matches.
fn custom_realm_is_challenged_and_checked(kamailio: &Kamailio, algorithm: Algorithm) {
    set_realm(kamailio, DOMAIN, REALM);
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &entry_in_realm(&alice, REALM));

    let ok = register(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, algorithm);
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(challenged_in(&ok, REALM), "{ok:?}");
    let wrong = register(kamailio.sip_addr(), "alice", DOMAIN, "wrong", algorithm);
    assert_eq!(wrong.status, 403, "{wrong:?}");

    let bob = TestUser::new("bob");
    kamailio.set_user(&bob.key(), &entry_in_realm(&bob, DOMAIN));
    let old = register(kamailio.sip_addr(), "bob", DOMAIN, &bob.password, algorithm);
    assert_eq!(
        old.status, 403,
        "an HA1 over another realm does not match: {old:?}"
    );
}

#[test]
fn a_domain_realm_is_the_md5_challenge_and_check_realm() {
    let kamailio = Kamailio::start();
    custom_realm_is_challenged_and_checked(&kamailio, Algorithm::Md5);
    // And with SIPp, a client that reads the realm from the challenge as phones do.
    let carol = TestUser::new("carol");
    kamailio.set_user(&carol.key(), &entry_in_realm(&carol, REALM));
    Sipp::register_expect(kamailio.sip_addr(), "carol", DOMAIN, &carol.password, 200);
    Sipp::register_expect(kamailio.sip_addr(), "carol", DOMAIN, "wrong", 403);
}

#[test]
fn a_domain_realm_is_the_sha256_challenge_and_check_realm() {
    let kamailio = Kamailio::builder().define("WITH_SHA256", "").start();
    custom_realm_is_challenged_and_checked(&kamailio, Algorithm::Sha256);
}

#[test]
fn without_a_realm_entry_the_from_domain_is_the_realm() {
    let kamailio = Kamailio::start();
    // Another domain's realm changes nothing here.
    set_realm(&kamailio, &format!("other.{DOMAIN}"), REALM);
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &alice.entry(1));

    let ok = register(
        kamailio.sip_addr(),
        "alice",
        DOMAIN,
        &alice.password,
        Algorithm::Md5,
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(challenged_in(&ok, DOMAIN), "{ok:?}");
    let wrong = register(kamailio.sip_addr(), "alice", DOMAIN, "wrong", Algorithm::Md5);
    assert_eq!(wrong.status, 403, "{wrong:?}");
}

#[test]
fn the_realm_is_found_whatever_the_case_of_the_from_domain() {
    let kamailio = Kamailio::start();
    set_realm(&kamailio, DOMAIN, REALM);
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &entry_in_realm(&alice, REALM));
    let shouted = DOMAIN.to_ascii_uppercase();
    let ok = register(
        kamailio.sip_addr(),
        "alice",
        &shouted,
        &alice.password,
        Algorithm::Md5,
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(challenged_in(&ok, REALM), "{ok:?}");
}

#[test]
fn every_realm_the_schema_admits_is_safe_in_the_challenge() {
    // The schema refuses only '"', '\' and control characters: everything else may reach the
    // quoted realm parameter of the challenge, including what means something to a SIP parser
    // or to Kamailio's config language, non-ASCII text, and the longest allowed realm.
    let realms = [
        "Acme, Inc.; realm=evil, nonce=x".to_string(),
        "$fd $(ru) $var(ha1) %s %n {s.tolower} <sip:x@y> 'single' =".to_string(),
        "Zürich Büro – 東京".to_string(),
        "é".repeat(253),
        " leading and trailing spaces ".to_string(),
    ];
    let kamailio = Kamailio::start();
    for (i, realm) in realms.iter().enumerate() {
        let domain = format!("d{i}.{DOMAIN}");
        set_realm(&kamailio, &domain, realm);
        let user = TestUser::new("alice");
        kamailio.set_user(&format!("alice@{domain}"), &entry_in_realm(&user, realm));
        let ok = register(
            kamailio.sip_addr(),
            "alice",
            &domain,
            &user.password,
            Algorithm::Md5,
        );
        assert_eq!(ok.status, 200, "realm {realm:?}: {ok:?}");
        assert!(challenged_in(&ok, realm), "realm {realm:?}: {ok:?}");
        let wrong = register(kamailio.sip_addr(), "alice", &domain, "wrong", Algorithm::Md5);
        assert_eq!(wrong.status, 403, "realm {realm:?}: {wrong:?}");
    }
}

#[test]
fn calls_are_challenged_and_checked_in_the_callers_domain_realm() {
    let kamailio = Kamailio::start();
    set_realm(&kamailio, DOMAIN, REALM);
    let alice = TestUser::new("alice");
    let bob = TestUser::new("bob");
    kamailio.set_user(&alice.key(), &entry_in_realm(&alice, REALM));
    kamailio.set_user(&bob.key(), &entry_in_realm(&bob, REALM));

    crate::calls::alice_calls_registered_bob(&kamailio, &alice, &bob);

    let wrong = Sipp::call(kamailio.sip_addr(), "alice", DOMAIN, "wrong", "bob");
    assert_eq!((wrong.challenged, wrong.status), (true, 403), "{wrong:?}");
}

// End to end: the operator pushes the realm along with the users.

#[tokio::test]
async fn operator_custom_realm_md5_user_registers_and_survives_a_restart() {
    let mut s = Setup::with("e2e-realm", Kamailio::start(), "  realm: \"Custom Realm\"\n").await;
    s.apply_user("alice", "", "");
    let alice = s.registrar_synced("alice", "True").await;
    assert_eq!(alice.condition_status("Ready"), Some("True"));
    let password = s.password("alice").await;

    let right = Registration::new("alice", &s.fqdn, &password).run(s.kamailio().sip_addr());
    assert!(right.challenged, "the first REGISTER is challenged");
    assert_eq!(
        right.status, 200,
        "the Secret's password registers alice in realm {REALM:?}"
    );
    let digest = register(
        s.kamailio().sip_addr(),
        "alice",
        &s.fqdn,
        &password,
        Algorithm::Md5,
    );
    assert!(challenged_in(&digest, REALM), "{digest:?}");
    assert_eq!(digest.status, 200, "{digest:?}");
    assert_eq!(s.register("alice", "not-the-password"), 403);

    // A crash loses the realm with the users; the re-sync brings both back.
    s.kamailios[0].kill_and_restart();
    eventually("alice to register again after the restart", WAIT, || async {
        (s.register("alice", &password) == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn operator_custom_realm_sha256_user_registers() {
    let kamailio = Kamailio::builder().define("WITH_SHA256", "").start();
    let s = Setup::with(
        "e2e-realm-sha",
        kamailio,
        "  realm: \"Custom Realm\"\n  digestAlgorithms: [SHA-256]\n",
    )
    .await;
    s.apply_user("alice", "", "");
    s.registrar_synced("alice", "True").await;
    let password = s.password("alice").await;
    let ok = register(
        s.kamailio().sip_addr(),
        "alice",
        &s.fqdn,
        &password,
        Algorithm::Sha256,
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(challenged_in(&ok, REALM), "{ok:?}");
    assert!(ok.challenges[0].contains("algorithm=SHA-256"), "{ok:?}");
    let wrong = register(
        s.kamailio().sip_addr(),
        "alice",
        &s.fqdn,
        "wrong",
        Algorithm::Sha256,
    );
    assert_eq!(wrong.status, 403, "{wrong:?}");
}
