//! Dialling by extension and alias, alias lines and devices, with the shipped config and the
//! operator's own registrar client: entries are built with `UserEntry::build` and pushed with
//! `Registrar::upsert`/`remove` exactly as the operator does, phones are SIPp processes.
use sip_operator::api::{DigestAlgorithm, device_auth_username};
use sip_operator::credentials::Password;
use sip_operator::registrar::kamailio::Kamailio as Client;
use sip_operator::registrar::{DeviceCredentials, EntrySpec, Registrar as _, UserEntry, UserKey};

use std::time::Duration;

use crate::DOMAIN;
use crate::support::kamailio::{Kamailio, free_port, random_token};
use crate::support::sipp::{Call, Registration, Sipp};

/// A user as the operator would push it: its spec's dialling fields and its passwords.
#[derive(Clone)]
struct Person {
    username: String,
    password: Password,
    extension: Option<String>,
    aliases: Vec<String>,
    /// Enabled devices with their passwords.
    devices: Vec<(String, Password)>,
}

impl Person {
    fn new(username: &str) -> Self {
        Self {
            username: username.into(),
            password: Password::new(format!("{username}-{}", &random_token()[..12])),
            extension: None,
            aliases: Vec::new(),
            devices: Vec::new(),
        }
    }

    fn extension(mut self, extension: &str) -> Self {
        self.extension = Some(extension.into());
        self
    }

    fn alias(mut self, alias: &str) -> Self {
        self.aliases.push(alias.into());
        self
    }

    fn device(mut self, name: &str) -> Self {
        let password = Password::new(format!("{name}-{}", &random_token()[..12]));
        self.devices.push((name.into(), password));
        self
    }

    fn without_device(mut self, name: &str) -> Self {
        self.devices.retain(|(n, _)| n != name);
        self
    }

    fn device_password(&self, name: &str) -> &str {
        self.devices
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.expose())
            .unwrap_or_else(|| panic!("{} has no device {name}", self.username))
    }

    fn entry(&self) -> UserEntry {
        let devices: Vec<DeviceCredentials<'_>> = self
            .devices
            .iter()
            .map(|(name, password)| DeviceCredentials {
                name,
                password,
                previous: None,
                changed_at: None,
            })
            .collect();
        UserEntry::build(&EntrySpec {
            username: &self.username,
            domain: DOMAIN,
            realm: DOMAIN,
            password: &self.password,
            previous: None,
            changed_at: None,
            devices: &devices,
            algorithms: &[DigestAlgorithm::Md5],
            max_contacts: 2,
            extension: self.extension.as_deref(),
            aliases: &self.aliases,
            flags: &[],
            barge_group: None,
            caller_id: None,
        })
    }

    fn aor(&self) -> String {
        format!("{}@{DOMAIN}", self.username)
    }
}

/// A Kamailio with the shipped config and the operator's client for it.
struct Registrar {
    kamailio: Kamailio,
    client: Client,
}

impl Registrar {
    fn start() -> Self {
        let kamailio = Kamailio::start();
        let client = Client::new(&kamailio.rpc_url(), Some(kamailio.token().to_string())).expect("client");
        Self { kamailio, client }
    }

    async fn push(&self, people: &[&Person]) {
        let entries: Vec<UserEntry> = people.iter().map(|p| p.entry()).collect();
        self.client.upsert(&entries).await.expect("upsert");
    }

    async fn remove(&self, person: &Person) {
        self.client
            .remove(&[UserKey::new(person.username.as_str(), DOMAIN)])
            .await
            .expect("remove");
    }

    /// The operator's periodic read of the registrations (its client learns who registered
    /// which contact from it).
    async fn read_registrations(&self) {
        self.client.registrations().await.expect("registrations");
    }

    /// `from` (with its own password) calls `name`: the final status, with nobody answering.
    fn call_status(&self, from: &Person, name: &str) -> u16 {
        Sipp::call(
            self.kamailio.sip_addr(),
            &from.username,
            DOMAIN,
            from.password.expose(),
            name,
        )
        .status
    }

    /// `from` calls `name` while a phone registered as `registration` waits on its port:
    /// asserts that the call is answered there. The phone unregisters afterwards.
    fn call_answered_by(&self, from: &Person, name: &str, registration: Registration) {
        let port = free_port(true);
        let registration = registration.local_port(port);
        let registered = registration.clone().expires(300).run(self.kamailio.sip_addr());
        assert_eq!(registered.status, 200, "{registered:?}");
        let phone = Sipp::answer_one_call(port);
        let call = Sipp::call(
            self.kamailio.sip_addr(),
            &from.username,
            DOMAIN,
            from.password.expose(),
            name,
        );
        assert_eq!(call.status, 200, "{} calls {name}: {call:?}", from.username);
        assert!(phone.wait_answered());
        let unregistered = registration.expires(0).run(self.kamailio.sip_addr());
        assert_eq!(unregistered.status, 200, "{unregistered:?}");
    }
}

#[tokio::test]
async fn a_user_is_called_by_username_numeric_extension_and_alias() {
    let r = Registrar::start();
    let alice = Person::new("alice");
    let bob = Person::new("bob").extension("7002").alias("bob-support");
    r.push(&[&alice, &bob]).await;

    // Nobody registered yet: every name of bob is known (480), other names are not (404).
    for name in ["bob", "7002", "bob-support"] {
        assert_eq!(r.call_status(&alice, name), 480, "{name}");
    }
    assert_eq!(r.call_status(&alice, "7999"), 404);
    assert_eq!(r.call_status(&alice, "bob-sales"), 404);

    // bob's phone rings for each of his names (the alias has no line: bob's devices ring).
    for name in ["bob", "7002", "bob-support"] {
        r.call_answered_by(
            &alice,
            name,
            Registration::new("bob", DOMAIN, bob.password.expose()),
        );
    }
}

#[tokio::test]
async fn an_extension_change_moves_the_number_and_removal_or_suspension_ends_all_names() {
    let r = Registrar::start();
    let alice = Person::new("alice");
    let bob = Person::new("bob").extension("7002").alias("bob-support");
    r.push(&[&alice, &bob]).await;
    assert_eq!(r.call_status(&alice, "7002"), 480);

    let moved = Person {
        extension: Some("7003".into()),
        aliases: vec![],
        ..bob.clone()
    };
    r.push(&[&moved]).await;
    assert_eq!(r.call_status(&alice, "7002"), 404, "the old number is gone");
    assert_eq!(r.call_status(&alice, "bob-support"), 404, "the dropped alias too");
    assert_eq!(r.call_status(&alice, "7003"), 480, "the new number is bob's");

    // The number goes to carol: hers now, and it stays hers whatever bob's old entry said.
    let carol = Person::new("carol").extension("7002");
    r.push(&[&carol]).await;
    r.call_answered_by(
        &alice,
        "7002",
        Registration::new("carol", DOMAIN, carol.password.expose()),
    );

    // Suspension and deletion both remove the user: none of its names can be called.
    r.remove(&moved).await;
    for name in ["bob", "7003"] {
        assert_eq!(r.call_status(&alice, name), 404, "{name}");
    }
    let refused = Registration::new("bob", DOMAIN, bob.password.expose()).run(r.kamailio.sip_addr());
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(r.call_status(&bob, "alice"), 403, "nor can it call");
}

#[tokio::test]
async fn a_user_whose_extension_is_a_label_cannot_be_called_but_registers_and_calls_out() {
    let r = Registrar::start();
    let alice = Person::new("alice");
    let lobby = Person::new("lobby-phone").extension("lobby").alias("front-desk");
    r.push(&[&alice, &lobby]).await;
    let port = free_port(true);
    let registered = Registration::new("lobby-phone", DOMAIN, lobby.password.expose())
        .expires(300)
        .local_port(port)
        .run(r.kamailio.sip_addr());
    assert_eq!(registered.status, 200, "it registers");
    for name in ["lobby-phone", "lobby", "front-desk"] {
        assert_eq!(r.call_status(&alice, name), 404, "{name} is not dialable");
    }
    // It calls out.
    r.call_answered_by(
        &lobby,
        "alice",
        Registration::new("alice", DOMAIN, alice.password.expose()),
    );
}

#[tokio::test]
async fn devices_register_with_their_own_credentials_and_a_removed_one_is_cut_off() {
    let r = Registrar::start();
    let alice = Person::new("alice");
    let bob = Person::new("bob").device("desk").device("soft");
    r.push(&[&alice, &bob]).await;
    let sip = r.kamailio.sip_addr();
    let (desk_auth, soft_auth) = (
        device_auth_username("bob", "desk"),
        device_auth_username("bob", "soft"),
    );

    // Each device registers to bob's AOR with its own digest username and password.
    let desk = Registration::new("bob", DOMAIN, bob.device_password("desk"))
        .auth_username(&desk_auth)
        .expires(300)
        .run(sip);
    assert_eq!(desk.status, 200, "{desk:?}");
    let soft = Registration::new("bob", DOMAIN, bob.device_password("soft"))
        .auth_username(&soft_auth)
        .expires(300)
        .run(sip);
    assert_eq!(soft.status, 200, "{soft:?}");
    let mut both = vec![desk.contact.clone(), soft.contact.clone()];
    both.sort();
    let mut held = r.kamailio.contacts(&bob.aor());
    held.sort();
    assert_eq!(held, both);

    // What does not register: the account's own password once devices are listed, a device
    // password with another device's name, a device of bob's as alice, a made-up device.
    let refused = |reg: Registration| reg.run(sip).status;
    assert_eq!(
        refused(Registration::new("bob", DOMAIN, bob.password.expose())),
        403
    );
    assert_eq!(
        refused(Registration::new("bob", DOMAIN, bob.device_password("desk")).auth_username(&soft_auth)),
        403
    );
    assert_eq!(
        refused(Registration::new("alice", DOMAIN, bob.device_password("desk")).auth_username(&desk_auth)),
        403
    );
    assert_eq!(
        refused(Registration::new("bob", DOMAIN, bob.device_password("desk")).auth_username("bob#phone")),
        403
    );

    // The desk phone is removed: its contact goes, the softphone's stays, and the desk
    // phone's next REGISTER is refused.
    r.read_registrations().await;
    r.push(&[&bob.clone().without_device("desk")]).await;
    assert_eq!(
        r.kamailio.contacts(&bob.aor()),
        std::slice::from_ref(&soft.contact)
    );
    let again = Registration::new("bob", DOMAIN, bob.device_password("desk"))
        .auth_username(&desk_auth)
        .expires(300)
        .local_port(desk.local_port)
        .run(sip);
    assert_eq!(again.status, 403, "{again:?}");
    let refreshed = Registration::new("bob", DOMAIN, bob.device_password("soft"))
        .auth_username(&soft_auth)
        .expires(300)
        .local_port(soft.local_port)
        .run(sip);
    assert_eq!(refreshed.status, 200, "the softphone keeps refreshing");
    assert_eq!(r.kamailio.contacts(&bob.aor()), [soft.contact]);
}

#[tokio::test]
async fn an_alias_line_registered_by_its_owner_gets_the_alias_calls() {
    let r = Registrar::start();
    let alice = Person::new("alice");
    let bob = Person::new("bob").alias("bob-support").device("desk");
    let mallory = Person::new("mallory");
    r.push(&[&alice, &bob, &mallory]).await;
    let sip = r.kamailio.sip_addr();
    let desk_auth = device_auth_username("bob", "desk");

    // Another user's credentials can never register bob's alias line.
    let stolen = Registration::new("bob-support", DOMAIN, mallory.password.expose())
        .auth_username("mallory")
        .run(sip);
    assert_eq!(stolen.status, 403, "{stolen:?}");
    assert!(r.kamailio.contacts(&format!("bob-support@{DOMAIN}")).is_empty());

    // Line 1 of bob's desk phone is bob's own AOR, line 2 the alias AOR, both registered with
    // the desk phone's credentials. A call to the alias rings line 2 only.
    let desk = |aor_user: &str| {
        let port = free_port(true);
        let registered = Registration::new(aor_user, DOMAIN, bob.device_password("desk"))
            .auth_username(&desk_auth)
            .expires(300)
            .local_port(port)
            .run(sip);
        assert_eq!(registered.status, 200, "{registered:?}");
        (port, registered.contact)
    };
    let (line1, _) = desk("bob");
    let (line2, line2_contact) = desk("bob-support");
    assert_eq!(
        r.kamailio.contacts(&format!("bob-support@{DOMAIN}")),
        [line2_contact],
        "stored under the alias"
    );
    let (own, line) = (Sipp::answer_one_call(line1), Sipp::answer_one_call(line2));
    assert_eq!(r.call_status(&alice, "bob-support"), 200);
    assert!(line.wait_answered());
    own.assert_not_called(Duration::from_millis(500));

    // A call to bob rings line 1 only.
    let (own, line) = (Sipp::answer_one_call(line1), Sipp::answer_one_call(line2));
    assert_eq!(r.call_status(&alice, "bob"), 200);
    assert!(own.wait_answered());
    line.assert_not_called(Duration::from_millis(500));

    // Removing bob drops the line's contacts too.
    r.remove(&bob).await;
    assert!(r.kamailio.contacts(&format!("bob-support@{DOMAIN}")).is_empty());
    assert!(r.kamailio.contacts(&bob.aor()).is_empty());
}

#[tokio::test]
async fn a_call_to_the_extension_rings_every_device_and_the_first_to_answer_takes_it() {
    let r = Registrar::start();
    let alice = Person::new("alice").device("mobile");
    let bob = Person::new("bob").extension("7002").device("desk").device("soft");
    let carol = Person::new("carol");
    r.push(&[&alice, &bob, &carol]).await;
    let sip = r.kamailio.sip_addr();
    let phone = |person: &Person, device: &str| {
        let port = free_port(true);
        let registered = Registration::new(&person.username, DOMAIN, person.device_password(device))
            .auth_username(&device_auth_username(&person.username, device))
            .expires(300)
            .local_port(port)
            .run(sip);
        assert_eq!(registered.status, 200, "{registered:?}");
        port
    };
    let desk = Sipp::answer_one_call(phone(&bob, "desk"));
    let soft = Sipp::ring_until_cancelled(phone(&bob, "soft"));
    let carol_port = free_port(true);
    let registered = Registration::new("carol", DOMAIN, carol.password.expose())
        .expires(300)
        .local_port(carol_port)
        .run(sip);
    assert_eq!(registered.status, 200);
    let carols_phone = Sipp::answer_one_call(carol_port);

    // alice calls from her mobile, as the device (digest username alice#mobile).
    let call = Call::new(sip, "alice", DOMAIN, alice.device_password("mobile"), "7002")
        .auth_username(&device_auth_username("alice", "mobile"))
        .run();
    assert_eq!(
        (call.challenged, call.status, call.hung_up),
        (true, 200, true),
        "{call:?}"
    );
    assert!(desk.called() && soft.called(), "both of bob's devices rang");
    soft.wait_cancelled();
    assert!(desk.wait_answered());
    carols_phone.assert_not_called(Duration::from_millis(500));

    // alice's account password does not call: she lists devices.
    let account = Call::new(sip, "alice", DOMAIN, alice.password.expose(), "carol").run();
    assert_eq!((account.challenged, account.status), (true, 403), "{account:?}");
}

#[tokio::test]
async fn an_alias_that_moves_to_another_user_takes_the_line_away_from_the_old_owner() {
    let r = Registrar::start();
    let alice = Person::new("alice");
    let bob = Person::new("bob").alias("support");
    let carol = Person::new("carol");
    r.push(&[&alice, &bob, &carol]).await;
    let sip = r.kamailio.sip_addr();
    let line = format!("support@{DOMAIN}");
    let bobs_line_port = free_port(true);
    let registered = Registration::new("support", DOMAIN, bob.password.expose())
        .auth_username("bob")
        .expires(300)
        .local_port(bobs_line_port)
        .run(sip);
    assert_eq!(registered.status, 200, "{registered:?}");
    assert_eq!(r.kamailio.contacts(&line).len(), 1);

    // The alias moves from bob to carol; the operator reads who registered what, then pushes.
    r.read_registrations().await;
    let bob = Person {
        aliases: vec![],
        ..bob
    };
    let carol = carol.alias("support");
    r.push(&[&bob, &carol]).await;
    assert!(
        r.kamailio.contacts(&line).is_empty(),
        "bob's registration of the line is dropped: it is carol's now"
    );
    // A call to the alias now rings carol's devices, never bob's old line.
    let bobs_old_line = Sipp::answer_one_call(bobs_line_port);
    r.call_answered_by(
        &alice,
        "support",
        Registration::new("carol", DOMAIN, carol.password.expose()),
    );
    bobs_old_line.assert_not_called(Duration::from_millis(500));
    let again = Registration::new("support", DOMAIN, bob.password.expose())
        .auth_username("bob")
        .run(sip);
    assert_eq!(
        again.status, 403,
        "bob can no longer register the line: {again:?}"
    );
}
