//! Registrations (usrloc): contacts that stay, removal with the user, max contacts per user.
use crate::support::kamailio::Kamailio;
use crate::support::sipp::{Registration, Sipp};
use crate::{DOMAIN, TestUser};

#[test]
fn registration_with_expires_shows_in_ul_dump() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &alice.entry(2));

    let outcome = Sipp::register_for(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 300);
    assert_eq!(outcome.status, 200, "{outcome:?}");
    assert_eq!(kamailio.contacts(&alice.key()), vec![outcome.contact.clone()]);

    let lookup = kamailio.rpc_ok("ul.lookup", serde_json::json!(["location", alice.key()]));
    let contact = &lookup["Contacts"][0]["Contact"];
    assert_eq!(contact["Address"], outcome.contact.as_str());
    assert_eq!(contact["User-Agent"], "sip-operator-tests SIPp");
    let expires = contact["Expires"].as_i64().expect("Expires is a number");
    assert!((250..=300).contains(&expires), "expires in {expires} s");
}

#[test]
fn deleted_user_is_refused_and_its_contacts_are_gone() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    let bob = TestUser::new("bob");
    kamailio.set_user(&alice.key(), &alice.entry(2));
    kamailio.set_user(&bob.key(), &bob.entry(2));
    let registered = Sipp::register_for(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 300);
    assert_eq!(registered.status, 200, "{registered:?}");
    assert_eq!(
        Sipp::register_for(kamailio.sip_addr(), "bob", DOMAIN, &bob.password, 300).status,
        200
    );

    // htable.delete alone leaves the contact registered...
    kamailio.rpc_ok("htable.delete", serde_json::json!(["users", alice.key()]));
    assert_eq!(kamailio.contacts(&alice.key()), vec![registered.contact]);
    // ...ul.rm drops it.
    kamailio.rpc_ok("ul.rm", serde_json::json!(["location", alice.key()]));
    assert!(kamailio.contacts(&alice.key()).is_empty());
    Sipp::register_expect(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 403);
    assert!(
        kamailio.contacts(&alice.key()).is_empty(),
        "a refused REGISTER adds no contact"
    );

    // Removal is idempotent (the operator retries), and bob is untouched.
    kamailio.remove_user(&alice.key());
    assert_eq!(kamailio.contacts(&bob.key()).len(), 1);
    Sipp::register_expect(kamailio.sip_addr(), "bob", DOMAIN, &bob.password, 200);
}

#[test]
fn max_contacts_refuses_a_new_contact_past_the_limit() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &alice.entry(1));

    let first = Sipp::register_for(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 300);
    assert_eq!(first.status, 200, "{first:?}");
    // A second device (another Contact) is refused by the registrar: 503 (Kamailio's
    // "Too many registered contacts"), and the first stays.
    let second = Sipp::register_for(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 300);
    assert_eq!(second.status, 503, "{second:?}");
    assert_eq!(kamailio.contacts(&alice.key()), vec![first.contact.clone()]);
    // The first device refreshing its own contact is not a new contact.
    let refresh = Registration::new("alice", DOMAIN, &alice.password)
        .expires(300)
        .local_port(first.local_port)
        .run(kamailio.sip_addr());
    assert_eq!(refresh.status, 200, "{refresh:?}");

    // Raising the limit (a new htable value) lets the second device in, and no further.
    kamailio.set_user(&alice.key(), &alice.entry(2));
    let second = Sipp::register_for(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 300);
    assert_eq!(second.status, 200, "{second:?}");
    let third = Sipp::register_for(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 300);
    assert_eq!(third.status, 503, "{third:?}");
    let mut contacts = kamailio.contacts(&alice.key());
    contacts.sort();
    let mut expected = vec![first.contact, second.contact];
    expected.sort();
    assert_eq!(contacts, expected);
}

#[test]
fn unregister_with_expires_zero_removes_the_contact() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &alice.entry(1));
    let first = Sipp::register_for(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 300);
    assert_eq!(first.status, 200, "{first:?}");

    let gone = Registration::new("alice", DOMAIN, &alice.password)
        .local_port(first.local_port)
        .run(kamailio.sip_addr());
    assert_eq!(gone.status, 200, "{gone:?}");
    assert!(kamailio.contacts(&alice.key()).is_empty());
}
