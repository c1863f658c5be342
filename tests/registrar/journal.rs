//! Reading registrations through the registration journal (htables `ulseq`/`uljournal` of
//! the shipped config), as the operator does with `Registrar::registrations()`: contacts of
//! SIPp phones show up, refreshes keep one contact, unregistered and lapsed contacts go, a
//! fresh client (an operator restart) and a Kamailio restart read everything again. The
//! large-scale figures are in `scale_ul.rs` (ignored by default).
use std::time::Duration;

use serde_json::json;
use sip_operator::registrar::kamailio::Kamailio as Client;
use sip_operator::registrar::{Contact, Registrar, UserKey};

use crate::support::kamailio::{Kamailio, free_port};
use crate::support::sipp::Registration;
use crate::{DOMAIN, TestUser};

fn client(kamailio: &Kamailio) -> Client {
    Client::new(&kamailio.rpc_url(), Some(kamailio.token().to_string())).expect("client")
}

async fn read(client: &Client) -> Vec<Contact> {
    let mut contacts = client.registrations().await.expect("registrations");
    contacts.sort_by(|a, b| (&a.aor, &a.address).cmp(&(&b.aor, &b.address)));
    contacts
}

/// The journal's head (the number of changes journaled since Kamailio started).
fn head(kamailio: &Kamailio) -> u64 {
    let dump = kamailio.rpc_ok("htable.dump", json!(["ulseq"]));
    dump.as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["slot"].as_array().cloned().unwrap_or_default())
        .find(|i| i["name"] == "head")
        .and_then(|i| i["value"].as_u64())
        .expect("ulseq has a head")
}

#[tokio::test]
async fn registered_refreshed_and_unregistered_contacts_are_read_through_the_journal() {
    let kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    let bob = TestUser::new("bob");
    kamailio.set_user(&alice.key(), &alice.entry(2));
    kamailio.set_user(&bob.key(), &bob.entry(1));
    let operator = client(&kamailio);
    assert!(read(&operator).await.is_empty());
    assert_eq!(head(&kamailio), 0);

    let phone = Registration::new("alice", DOMAIN, &alice.password)
        .expires(300)
        .local_port(free_port(true));
    let registered = phone.run(kamailio.sip_addr());
    assert_eq!(registered.status, 200, "{registered:?}");
    let seen = read(&operator).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].aor, alice.key());
    assert_eq!(seen[0].address, registered.contact);
    assert_eq!(seen[0].user_agent.as_deref(), Some("sip-operator-tests SIPp"));
    assert!(
        seen[0].expires_in.is_some_and(|s| (290..=300).contains(&s)),
        "{seen:?}"
    );
    assert!(seen[0].last_modified.is_some());

    // A refresh is the same contact; a second device and another user add to it.
    assert_eq!(phone.run(kamailio.sip_addr()).status, 200);
    let desk = Registration::new("alice", DOMAIN, &alice.password)
        .expires(300)
        .local_port(free_port(true));
    assert_eq!(desk.run(kamailio.sip_addr()).status, 200);
    assert_eq!(
        Registration::new("bob", DOMAIN, &bob.password)
            .expires(300)
            .run(kamailio.sip_addr())
            .status,
        200
    );
    let seen = read(&operator).await;
    let aors: Vec<&str> = seen.iter().map(|c| c.aor.as_str()).collect();
    assert_eq!(aors, [alice.key(), alice.key(), bob.key()], "{seen:?}");

    // A client that never read (the operator restarted) sees the same from the journal (the
    // seconds left may have ticked on since).
    let fresh = read(&client(&kamailio)).await;
    let without_expiry = |contacts: &[Contact]| -> Vec<Contact> {
        contacts
            .iter()
            .map(|c| Contact {
                expires_in: None,
                ..c.clone()
            })
            .collect()
    };
    assert_eq!(without_expiry(&fresh), without_expiry(&seen));
    for (later, earlier) in fresh.iter().zip(&seen) {
        let (later, earlier) = (later.expires_in.unwrap_or(0), earlier.expires_in.unwrap_or(0));
        assert!(later <= earlier && earlier - later <= 2, "{fresh:?} vs {seen:?}");
    }

    // The device unregisters (Expires: 0): gone, the other stays.
    assert_eq!(phone.expires(0).run(kamailio.sip_addr()).status, 200);
    let seen = read(&operator).await;
    let addresses: Vec<&str> = seen.iter().map(|c| c.address.as_str()).collect();
    assert!(
        !addresses.contains(&registered.contact.as_str()) && seen.len() == 2,
        "{seen:?}"
    );

    // The operator removes bob (htable.delete + ul.rm, which is not journaled).
    operator
        .remove(&[UserKey::new("bob", DOMAIN)])
        .await
        .expect("remove bob");
    let seen = read(&operator).await;
    assert!(seen.iter().all(|c| c.aor == alice.key()), "{seen:?}");
    assert_eq!(seen.len(), 1);
}

#[tokio::test]
async fn a_lapsed_contact_disappears_and_its_expiry_is_journaled() {
    let kamailio = Kamailio::builder()
        .define("MIN_EXPIRES", "1")
        .define("UL_TIMER_INTERVAL", "1")
        .start();
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &alice.entry(1));
    let operator = client(&kamailio);
    let outcome = Registration::new("alice", DOMAIN, &alice.password)
        .expires(2)
        .run(kamailio.sip_addr());
    assert_eq!(outcome.status, 200, "{outcome:?}");
    assert_eq!(read(&operator).await.len(), 1);
    let after_register = head(&kamailio);

    // The usrloc timer removes it within a second or two of lapsing.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while head(&kamailio) == after_register {
        assert!(
            std::time::Instant::now() < deadline,
            "the expiry was not journaled; log:\n{}",
            kamailio.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(kamailio.contacts(&alice.key()).is_empty());
    assert!(read(&operator).await.is_empty());
    assert!(read(&client(&kamailio)).await.is_empty());
}

#[tokio::test]
async fn a_restarted_kamailio_is_read_from_scratch() {
    let mut kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &alice.entry(1));
    let operator = client(&kamailio);
    let outcome = Registration::new("alice", DOMAIN, &alice.password)
        .expires(300)
        .run(kamailio.sip_addr());
    assert_eq!(outcome.status, 200, "{outcome:?}");
    assert_eq!(read(&operator).await.len(), 1);

    // Its memory is gone, the journal starts again: the old mirror must not survive.
    kamailio.kill_and_restart();
    // The first call may meet the pooled connection the killed instance dropped (an error
    // the operator's next check recovers from).
    let _ = operator.registrations().await;
    assert!(read(&operator).await.is_empty());
    kamailio.set_user(&alice.key(), &alice.entry(1));
    let again = Registration::new("alice", DOMAIN, &alice.password)
        .expires(300)
        .run(kamailio.sip_addr());
    assert_eq!(again.status, 200, "{again:?}");
    let seen = read(&operator).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].address, again.contact);
}
