//! Calls between registered users of one domain, routed by username.
use crate::support::kamailio::{Kamailio, free_port};
use crate::support::sipp::{CallOutcome, Registration, Sipp};
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
