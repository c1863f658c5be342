//! Digest algorithms: MD5 by default, RFC 8760 SHA-256 on an instance started WITH_SHA256
//! (Kamailio 5.6's auth algorithm is global to an instance).
use crate::digest::{Algorithm, register};
use crate::support::kamailio::Kamailio;
use crate::{DOMAIN, TestUser};

#[test]
fn default_instance_challenges_with_md5() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &alice.entry(1));

    let outcome = register(
        kamailio.sip_addr(),
        "alice",
        DOMAIN,
        &alice.password,
        Algorithm::Md5,
    );
    assert_eq!(outcome.status, 200, "{outcome:?}");
    assert_eq!(outcome.challenges.len(), 1, "{outcome:?}");
    assert!(!outcome.challenges[0].contains("SHA-256"), "{outcome:?}");
    assert!(
        outcome.challenges[0].contains(&format!("realm=\"{DOMAIN}\"")),
        "{outcome:?}"
    );

    let wrong = register(kamailio.sip_addr(), "alice", DOMAIN, "wrong", Algorithm::Md5);
    assert_eq!(wrong.status, 403, "{wrong:?}");
}

#[test]
fn sha256_instance_accepts_an_rfc8760_digest() {
    let kamailio = Kamailio::builder().define("WITH_SHA256", "").start();
    let alice = TestUser::new("alice");
    kamailio.set_user(
        &alice.key(),
        &format!("ha1={};ha1sha256={};mc=1;en=1", alice.ha1(), alice.ha1_sha256()),
    );

    let outcome = register(
        kamailio.sip_addr(),
        "alice",
        DOMAIN,
        &alice.password,
        Algorithm::Sha256,
    );
    assert_eq!(outcome.status, 200, "{outcome:?}");
    assert!(outcome.challenges[0].contains("algorithm=SHA-256"), "{outcome:?}");

    let wrong = register(kamailio.sip_addr(), "alice", DOMAIN, "wrong", Algorithm::Sha256);
    assert_eq!(wrong.status, 403, "{wrong:?}");

    // A user pushed without a SHA-256 HA1 cannot register on such an instance.
    let bob = TestUser::new("bob");
    kamailio.set_user(&bob.key(), &bob.entry(1));
    let outcome = register(
        kamailio.sip_addr(),
        "bob",
        DOMAIN,
        &bob.password,
        Algorithm::Sha256,
    );
    assert_eq!(outcome.status, 403, "{outcome:?}");
}
