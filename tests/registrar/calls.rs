//! Calls between registered users of one domain, routed by username.
use std::time::Duration;

use crate::support::kamailio::{Kamailio, free_port};
use crate::support::sipp::{Call, CallOutcome, Registration, Sipp};
use crate::{DOMAIN, TestUser};

/// bob's phone registers from a port and listens there; alice calls bob: 200 after a
/// challenge, answered and hung up.
pub fn alice_calls_registered_bob(kamailio: &Kamailio, alice: &TestUser, bob: &TestUser) {
    // bob's phone registers from a port, then listens there for the call.
    let port = free_port(true);
    let registered = Registration::new("bob", DOMAIN, &bob.password)
        .expires(300)
        .local_port(port)
        .run(kamailio.sip_addr());
    assert_eq!(registered.status, 200, "{registered:?}");
    let phone = Sipp::answer_one_call(port);

    let call = Sipp::call(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, "bob");
    assert_eq!(
        call,
        CallOutcome {
            status: 200,
            challenged: true,
            hung_up: true
        }
    );
    assert!(phone.wait_answered());
}

#[test]
fn registered_users_of_one_domain_can_call_each_other() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    let bob = TestUser::new("bob");
    kamailio.set_user(&alice.key(), &alice.entry(1));
    kamailio.set_user(&bob.key(), &bob.entry(1));

    alice_calls_registered_bob(&kamailio, &alice, &bob);
}

#[test]
fn calls_need_credentials_and_a_registered_callee() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    let bob = TestUser::new("bob");
    kamailio.set_user(&alice.key(), &alice.entry(1));
    kamailio.set_user(&bob.key(), &bob.entry(1));
    let call =
        |password: &str, callee: &str| Sipp::call(kamailio.sip_addr(), "alice", DOMAIN, password, callee);

    let wrong = call("wrong-password", "bob");
    assert_eq!((wrong.challenged, wrong.status), (true, 403), "{wrong:?}");
    // bob exists but has no device registered; carol does not exist.
    assert_eq!(call(&alice.password, "bob").status, 480);
    assert_eq!(call(&alice.password, "carol").status, 404);
    // An unknown caller is challenged, then refused.
    let unknown = Sipp::call(kamailio.sip_addr(), "mallory", DOMAIN, "guess", "bob");
    assert_eq!((unknown.challenged, unknown.status), (true, 403), "{unknown:?}");
}

/// Registers a contact of `user` from a fresh local port and returns the port.
fn register_phone(kamailio: &Kamailio, user: &TestUser) -> u16 {
    let port = free_port(true);
    let registered = Registration::new(&user.username, DOMAIN, &user.password)
        .expires(300)
        .local_port(port)
        .run(kamailio.sip_addr());
    assert_eq!(registered.status, 200, "{registered:?}");
    port
}

/// bob has two phones (two contacts, mc=2): alice's call is forked to both, they both ring,
/// the desk phone answers and the registrar cancels the mobile; carol's phone does not ring.
/// Also the harness's own checks: a listening phone tells whether an INVITE reached it, and a
/// digest username other than the From user is what SIPp sends.
#[test]
fn a_call_rings_every_phone_of_the_callee_and_cancels_the_others_when_one_answers() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    let bob = TestUser::new("bob");
    let carol = TestUser::new("carol");
    kamailio.set_user(&alice.key(), &alice.entry(1));
    kamailio.set_user(&bob.key(), &bob.entry(2));
    kamailio.set_user(&carol.key(), &carol.entry(1));
    let (desk_port, mobile_port) = (register_phone(&kamailio, &bob), register_phone(&kamailio, &bob));
    let carol_port = register_phone(&kamailio, &carol);
    assert_eq!(kamailio.contacts(&bob.key()).len(), 2);
    let desk = Sipp::answer_one_call(desk_port);
    let mobile = Sipp::ring_until_cancelled(mobile_port);
    let carols_phone = Sipp::answer_one_call(carol_port);

    let call = Call::new(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, "bob").run();
    assert_eq!(
        call,
        CallOutcome {
            status: 200,
            challenged: true,
            hung_up: true
        }
    );
    assert!(desk.called() && mobile.called(), "both of bob's phones rang");
    mobile.wait_cancelled();
    assert!(desk.wait_answered());
    carols_phone.assert_not_called(Duration::from_millis(500));

    // With the digest username "alice#desk" the digest no longer matches alice's HA1 (nor is
    // there a device entry for it): refused after the challenge, where `-au alice` got 200.
    // run() itself checks that SIPp sent username="alice#desk".
    let device = Call::new(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, "bob")
        .auth_username("alice#desk")
        .run();
    assert_eq!((device.challenged, device.status), (true, 403), "{device:?}");
}
