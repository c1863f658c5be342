//! Devices, dialling and alias lines end to end: the operator binary against the real API
//! server, pushing to a real Kamailio with the shipped config; phones and callers are SIPp
//! processes using only what the credentials Secret holds.
use std::time::Duration;

use sip_operator::api::{Conditioned, SipUser};
use sip_operator::credentials::secret_value;

use crate::setup::{Setup, WAIT};
use crate::support::eventually;
use crate::support::sipp::{Call, Registration, Sipp};

/// The two users of these tests: alice (7001, alias `alice-support`, a desk phone and a
/// softphone) and bob (no devices: the account registers itself).
const ALICE: &str = "  extension: \"7001\"\n  aliases: [alice-support]\n  devices:\n  - {name: desk, description: front desk}\n  - {name: soft}\n";

impl Setup {
    /// Device `device`'s digest username and password, as its Secret holds them.
    async fn device_credentials(&self, user: &str, device: &str) -> (String, String) {
        let secret = self
            .secrets
            .get(&format!("{user}-sip-credentials"))
            .await
            .expect("credentials Secret");
        let field = |key: &str| {
            secret_value(&secret, &format!("devices.{device}.{key}"))
                .unwrap_or_else(|| panic!("{user}'s Secret has no devices.{device}.{key}"))
        };
        (field("username"), field("password"))
    }

    /// Waits until `user`'s status shows each device's registered contacts as `want`
    /// (name, contacts) and `contacts` in total.
    async fn devices_registered(&self, user: &str, want: &[(&str, i32)], contacts: i32) -> SipUser {
        let want: Vec<(String, i32)> = want.iter().map(|(n, c)| (n.to_string(), *c)).collect();
        eventually(
            &format!("{user}: devices {want:?}, {contacts} contact(s) in all"),
            WAIT,
            || async {
                let u = self.users.get_opt(user).await.ok().flatten()?;
                let status = u.status.as_ref()?;
                let shown: Vec<(String, i32)> = status
                    .devices
                    .iter()
                    .map(|d| (d.name.clone(), d.contacts))
                    .collect();
                let total = status.registration.as_ref().map_or(0, |r| r.contacts);
                (shown == want && total == contacts).then_some(u)
            },
        )
        .await
    }
}

#[tokio::test]
async fn devices_ring_together_and_a_removed_device_is_cut_off() {
    let s = Setup::new("e2e-devices").await;
    s.apply_user("alice", ALICE, "");
    s.apply_user("bob", "", "");
    s.registrar_synced("alice", "True").await;
    s.registrar_synced("bob", "True").await;
    let sip = s.kamailio().sip_addr();
    let (desk_user, desk_password) = s.device_credentials("alice", "desk").await;
    let (soft_user, soft_password) = s.device_credentials("alice", "soft").await;
    assert_eq!(
        (desk_user.as_str(), soft_user.as_str()),
        ("alice#desk", "alice#soft")
    );
    assert_ne!(desk_password, soft_password);
    let account = s.password("alice").await;
    assert_eq!(
        s.register("alice", &account),
        403,
        "with devices listed, the account's own password does not register"
    );

    let phone = |auth: &str, password: &str, aor_user: &str| {
        let port = crate::support::kamailio::free_port(true);
        let registered = Registration::new(aor_user, &s.fqdn, password)
            .auth_username(auth)
            .expires(300)
            .local_port(port)
            .run(sip);
        assert_eq!(registered.status, 200, "{auth} as {aor_user}: {registered:?}");
        port
    };
    let desk_port = phone(&desk_user, &desk_password, "alice");
    let soft_port = phone(&soft_user, &soft_password, "alice");
    let alice = s
        .devices_registered("alice", &[("desk", 1), ("soft", 1)], 2)
        .await;
    assert_eq!(alice.condition_status("Ready"), Some("True"));

    // bob dials 7001: both devices ring, the desk phone answers, the softphone is cancelled.
    let bob_password = s.password("bob").await;
    let desk = Sipp::answer_one_call(desk_port);
    let soft = Sipp::ring_until_cancelled(soft_port);
    let call = Call::new(sip, "bob", &s.fqdn, &bob_password, "7001").run();
    assert_eq!((call.status, call.hung_up), (200, true), "{call:?}");
    assert!(desk.called() && soft.called(), "both devices rang");
    soft.wait_cancelled();
    assert!(desk.wait_answered());

    // Line 2 of the desk phone: the alias, registered with the desk phone's credentials,
    // gets the alias's calls; status counts it.
    let line_port = phone(&desk_user, &desk_password, "alice-support");
    let alice = s
        .devices_registered("alice", &[("desk", 2), ("soft", 1)], 3)
        .await;
    let lines = &alice
        .status
        .as_ref()
        .and_then(|st| st.registration.clone())
        .expect("registration")
        .lines;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!((lines[0].alias.as_str(), lines[0].contacts), ("alice-support", 1));
    let line = Sipp::answer_one_call(line_port);
    let own = Sipp::answer_one_call(desk_port);
    assert_eq!(
        Sipp::call(sip, "bob", &s.fqdn, &bob_password, "alice-support").status,
        200
    );
    assert!(line.wait_answered());
    own.assert_not_called(Duration::from_millis(500));
    // bob's credentials can never register alice's alias.
    let stolen = Registration::new("alice-support", &s.fqdn, &bob_password)
        .auth_username("bob")
        .run(sip);
    assert_eq!(stolen.status, 403, "{stolen:?}");

    // The softphone is removed from the list: its contact goes, its next REGISTER is refused,
    // the desk phone stays registered.
    s.apply_user("alice", &ALICE.replace("  - {name: soft}\n", ""), "");
    s.devices_registered("alice", &[("desk", 2)], 2).await;
    let again = Registration::new("alice", &s.fqdn, &soft_password)
        .auth_username(&soft_user)
        .expires(300)
        .local_port(soft_port)
        .run(sip);
    assert_eq!(again.status, 403, "{again:?}");
    let contacts = s.kamailio().contacts(&format!("alice@{}", s.fqdn));
    assert_eq!(
        contacts.len(),
        1,
        "only the desk phone on alice's own line: {contacts:?}"
    );
    assert!(
        secret_value(
            &s.secrets.get("alice-sip-credentials").await.expect("Secret"),
            "devices.soft.password"
        )
        .is_none(),
        "a removed device's password leaves the Secret"
    );
}

#[tokio::test]
async fn dialled_names_follow_the_spec_and_come_back_after_a_kamailio_restart() {
    let mut s = Setup::new("e2e-dialling").await;
    s.apply_user("alice", "  extension: \"7001\"\n", "");
    s.apply_user("bob", "", "");
    s.apply_user("door", "  extension: lobby\n", "");
    for user in ["alice", "bob", "door"] {
        s.registrar_synced(user, "True").await;
    }
    let sip = s.kamailio().sip_addr();
    let bob = s.password("bob").await;
    let call = |callee: &str| Sipp::call(sip, "bob", &s.fqdn, &bob, callee).status;
    assert_eq!(call("7001"), 480, "alice's number, nobody registered");
    assert_eq!(call("lobby"), 404, "a label is not a number");
    assert_eq!(call("door"), 404, "and its user is not dialable");
    let door = s.password("door").await;
    assert_eq!(s.register("door", &door), 200, "it still registers");

    // A full re-sync after a Kamailio restart brings the number back.
    s.kamailios[0].kill_and_restart();
    let bob_again = bob.clone();
    let fqdn = s.fqdn.clone();
    let sip = s.kamailio().sip_addr();
    eventually("7001 to be routed again after the restart", WAIT, || {
        let (bob, fqdn) = (bob_again.clone(), fqdn.clone());
        async move { (Sipp::call(sip, "bob", &fqdn, &bob, "7001").status == 480).then_some(()) }
    })
    .await;

    // The extension changes: the old number is gone, the new one is alice's.
    s.apply_user("alice", "  extension: \"7002\"\n", "");
    s.registrar_synced("alice", "True").await;
    let call = |callee: &str| Sipp::call(sip, "bob", &fqdn, &bob, callee).status;
    assert_eq!(call("7001"), 404);
    assert_eq!(call("7002"), 480);

    // Suspended: none of alice's names can be called, and she cannot register.
    s.apply_user("alice", "  extension: \"7002\"\n  enabled: false\n", "");
    s.registrar_synced("alice", "False").await;
    assert_eq!(call("7002"), 404);
    assert_eq!(call("alice"), 404);
    let password = s.password("alice").await;
    assert_eq!(s.register("alice", &password), 403);
}
