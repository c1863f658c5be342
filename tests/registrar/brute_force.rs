//! Guessing passwords, with the shipped config: refused digests are counted per source
//! address and per user (htable `authfail`, the last failure in `authlast`); an address that
//! reaches FAIL_LIMIT gets 403 for BLOCK_SECONDS (htable `blocked`), while the same user's
//! devices at other addresses keep working. (Issue 13's operator-side reporting — status,
//! metrics, Events — builds on these tables.)
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::kamailio::Kamailio;
use crate::support::sipp::{Call, Registration};
use crate::{DOMAIN, TestUser};

/// The attacker's machine: another loopback address (all of 127/8 is local on Linux).
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// The value of `key` in htable `table`, if any.
fn item(kamailio: &Kamailio, table: &str, key: &str) -> Option<Value> {
    let answer = kamailio.rpc("htable.get", json!([table, key]));
    answer.pointer("/result/item/value").cloned()
}

#[test]
fn a_source_guessing_passwords_is_blocked_and_the_users_own_devices_are_not() {
    let kamailio = Kamailio::builder()
        .define("FAIL_LIMIT", "3")
        .define("BLOCK_SECONDS", "4")
        .start();
    let alice = TestUser::new("alice");
    let bob = TestUser::new("bob");
    kamailio.set_user(&alice.key(), &alice.entry(2));
    kamailio.set_user(&bob.key(), &bob.entry(1));
    let sip = kamailio.sip_addr();
    let from_attacker = |password: &str| {
        Registration::new("alice", DOMAIN, password)
            .source(ATTACKER)
            .run(sip)
            .status
    };

    // Two wrong guesses: refused, counted, not blocked yet.
    assert_eq!(from_attacker("guess-1"), 403);
    assert_eq!(from_attacker("guess-2"), 403);
    assert_eq!(item(&kamailio, "authfail", "src:127.0.0.2"), Some(json!(2)));
    assert_eq!(
        item(&kamailio, "authfail", &format!("usr:{}", alice.key())),
        Some(json!(2))
    );
    let last = item(&kamailio, "authlast", &alice.key()).expect("the last failure is kept");
    assert!(
        last.as_str().is_some_and(|l| l.ends_with(" 127.0.0.2")),
        "time and source: {last}"
    );
    assert_eq!(item(&kamailio, "blocked", "127.0.0.2"), None);

    // The third reaches the limit: the address is blocked, even with the right password.
    assert_eq!(from_attacker("guess-3"), 403);
    assert!(item(&kamailio, "blocked", "127.0.0.2").is_some(), "blocked");
    assert_eq!(
        from_attacker(&alice.password),
        403,
        "blocked: even the right password"
    );
    let call = Call::new(sip, "bob", DOMAIN, &bob.password, "alice")
        .source(ATTACKER)
        .run();
    assert_eq!(call.status, 403, "calls from there too: {call:?}");

    // alice's own phone elsewhere (127.0.0.1) keeps registering throughout.
    let phone = Registration::new("alice", DOMAIN, &alice.password).run(sip);
    assert_eq!(phone.status, 200, "the user is never blocked: {phone:?}");
    assert_eq!(
        Registration::new("bob", DOMAIN, &bob.password).run(sip).status,
        200,
        "nor anyone else at another address"
    );

    // After the cooldown the address may register again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while item(&kamailio, "blocked", "127.0.0.2").is_some() {
        assert!(Instant::now() < deadline, "the block did not lapse within 30 s");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(from_attacker(&alice.password), 200, "the cooldown is over");
}
