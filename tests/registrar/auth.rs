//! Digest authentication of REGISTER against the HA1 in the `users` htable.
use crate::support::kamailio::Kamailio;
use crate::support::sipp::{Registration, Sipp};
use crate::{DOMAIN, TestUser};

#[test]
fn right_password_is_challenged_then_accepted() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &alice.entry(2));

    let outcome = Sipp::register_expect(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 200);
    assert!(outcome.challenged);
}

#[test]
fn registration_over_tcp_is_accepted() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &alice.entry(2));

    let outcome = Registration::new("alice", DOMAIN, &alice.password)
        .tcp()
        .run(kamailio.sip_addr());
    assert_eq!((outcome.challenged, outcome.status), (true, 200), "{outcome:?}");
}

#[test]
fn wrong_password_is_refused_with_403() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &alice.entry(2));

    Sipp::register_expect(kamailio.sip_addr(), "alice", DOMAIN, "not-the-password", 403);
    assert!(
        kamailio.contacts(&alice.key()).is_empty(),
        "a refused REGISTER must not leave a contact"
    );
}

#[test]
fn unknown_user_is_challenged_like_a_known_one_then_refused() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &alice.entry(2));

    // Challenged before credentials are sent, exactly like alice: no user enumeration.
    let outcome = Sipp::register_expect(kamailio.sip_addr(), "mallory", DOMAIN, "guess", 403);
    assert!(outcome.challenged);
    // Nor is a known user of another domain a user of this one.
    Sipp::register_expect(
        kamailio.sip_addr(),
        "alice",
        "other.example.com",
        &alice.password,
        403,
    );
}

#[test]
fn another_users_password_is_refused() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    let bob = TestUser::new("bob");
    kamailio.set_user(&alice.key(), &alice.entry(2));
    kamailio.set_user(&bob.key(), &bob.entry(2));

    // bob's AOR with alice's password.
    Sipp::register_expect(kamailio.sip_addr(), "bob", DOMAIN, &alice.password, 403);
    // bob's AOR with alice's complete credentials (auth username alice): the auth user must
    // be the user being registered.
    let outcome = Registration::new("bob", DOMAIN, &alice.password)
        .auth_username("alice")
        .run(kamailio.sip_addr());
    assert_eq!(outcome.status, 403, "{outcome:?}");
    // Both still work with their own.
    Sipp::register_expect(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 200);
    Sipp::register_expect(kamailio.sip_addr(), "bob", DOMAIN, &bob.password, 200);
}

#[test]
fn disabled_or_incomplete_entries_are_refused() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");

    for (why, value) in [
        ("en=0", format!("ha1={};mc=1;en=0", alice.ha1())),
        ("no en", format!("ha1={};mc=1", alice.ha1())),
        ("no ha1", "mc=1;en=1".to_string()),
        ("empty ha1", "ha1=;mc=1;en=1".to_string()),
    ] {
        kamailio.set_user(&alice.key(), &value);
        let outcome = Registration::new("alice", DOMAIN, &alice.password).run(kamailio.sip_addr());
        assert_eq!(
            (outcome.challenged, outcome.status),
            (true, 403),
            "entry with {why}: {outcome:?}"
        );
    }

    // Field order and unknown fields do not matter.
    kamailio.set_user(
        &alice.key(),
        &format!(
            "fl=agent.supervisor;cid=%2B4930123;en=1;ha1={};mc=1;bg=sales",
            alice.ha1()
        ),
    );
    Sipp::register_expect(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 200);
}

#[test]
fn password_change_takes_effect_with_the_next_htable_write() {
    let kamailio = Kamailio::start();
    let old = TestUser::new("alice");
    kamailio.set_user(&old.key(), &old.entry(1));
    Sipp::register_expect(kamailio.sip_addr(), "alice", DOMAIN, &old.password, 200);

    let new = TestUser::new("alice");
    kamailio.set_user(&new.key(), &new.entry(1));
    Sipp::register_expect(kamailio.sip_addr(), "alice", DOMAIN, &old.password, 403);
    Sipp::register_expect(kamailio.sip_addr(), "alice", DOMAIN, &new.password, 200);
}

#[test]
fn the_log_has_no_ha1_or_password() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &alice.entry(1));
    Sipp::register_expect(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 200);
    Sipp::register_expect(kamailio.sip_addr(), "alice", DOMAIN, "wrong-password", 403);

    let log = kamailio.log();
    assert!(log.contains("refused"), "the refusal is logged:\n{log}");
    assert!(!log.contains(&alice.ha1()), "HA1 in the Kamailio log");
    assert!(!log.contains(&alice.password), "password in the Kamailio log");
}
