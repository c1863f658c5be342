//! A real softphone configured only from the credentials Secret (issue 13, part 1): Debian's
//! `linphonec` (liblinphone 5.1) loads the Secret's `linphone.xml` as its remote-provisioning
//! document (`[misc] config-uri=file://…`) and REGISTERs against the real Kamailio with the
//! shipped config, with the operator binary and the API server running; the SipUser's status
//! then counts the contact and names Linphone's user agent, and a call to the account's
//! extension (SIPp as a colleague) rings it and is answered. The rc file beside the document
//! only keeps the phone on 127.0.0.1 and its databases in a throwaway home: no account
//! setting comes from anywhere but the Secret.
use k8s_openapi::api::core::v1::Secret;
use sip_operator::api::SipUser;
use sip_operator::credentials::secret_value;

use crate::linphone::Linphone;
use crate::setup::{Setup, WAIT};
use crate::support::eventually;
use crate::support::kamailio::Kamailio;

impl Setup {
    async fn secret_of(&self, user: &str) -> Secret {
        self.secrets
            .get(&format!("{user}-sip-credentials"))
            .await
            .expect("credentials Secret")
    }

    /// Waits until `user`'s status counts `contacts` registered contacts and, when any,
    /// names Linphone as a user agent.
    async fn contacts(&self, user: &str, contacts: i32) -> SipUser {
        eventually(&format!("{user}: CONTACTS {contacts}"), WAIT, || async {
            let u = self.users.get_opt(user).await.ok().flatten()?;
            let r = u.status.as_ref()?.registration.as_ref()?;
            (r.contacts == contacts
                && (contacts == 0 || r.user_agents.iter().any(|a| a.starts_with("Linphone"))))
            .then_some(u)
        })
        .await
    }
}

#[tokio::test]
async fn linphone_provisioned_from_the_secret_registers_as_the_account_and_as_a_device() {
    let kamailio = Kamailio::start();
    let port = kamailio.sip_port();
    let connection =
        format!("  connection:\n    host: 127.0.0.1\n    port: {port}\n    transports: [UDP, TCP]\n");
    let s = Setup::with("e2e-softphone", kamailio, &connection).await;
    s.apply_user(
        "alice",
        "  displayName: \"Alice <Example> & Co\"\n  extension: \"7001\"\n",
        "",
    );
    s.apply_user("bob", "", "");
    s.apply_user("dana", "  devices:\n  - {name: desk}\n", "");
    s.registrar_synced("alice", "True").await;
    s.registrar_synced("bob", "True").await;
    s.registrar_synced("dana", "True").await;

    // The account itself, over UDP (the first transport).
    let secret = s.secret_of("alice").await;
    assert_eq!(
        secret_value(&secret, "registrarUri"),
        Some(format!("sip:127.0.0.1:{port};transport=udp"))
    );
    let document = secret_value(&secret, "linphone.xml").expect("linphone.xml");
    let mut phone = Linphone::start("alice", &document);
    phone.registered().await;
    let alice = s.contacts("alice", 1).await;
    assert_eq!(
        alice
            .status
            .as_ref()
            .and_then(|st| st.registration.as_ref())
            .map(|r| r.contacts),
        Some(1),
        "CONTACTS 1"
    );
    let table = s.ns.kubectl(&["get", "sipuser", "alice"]).ok();
    let rows = crate::support::kubectl::table_by_header(&table);
    assert_eq!(
        rows.first().and_then(|r| r.get("CONTACTS")).map(String::as_str),
        Some("1"),
        "{table}"
    );
    // A colleague dials alice's extension: the softphone rings and (auto-answering) takes it.
    let bob_password = s.password("bob").await;
    let call =
        crate::support::sipp::Call::new(s.kamailio().sip_addr(), "bob", &s.fqdn, &bob_password, "7001").run();
    assert_eq!(
        (call.status, call.hung_up),
        (200, true),
        "the call to 7001 is answered by linphonec and hung up:\n{}",
        phone.log_tail()
    );
    let log = phone.log();
    assert!(
        log.contains("LinphoneCallIncomingReceived"),
        "linphonec saw the incoming call:\n{}",
        phone.log_tail()
    );
    phone.stop();

    // TCP first now: the Secrets are rewritten, and a device's document registers over TCP
    // as `dana#desk` on dana's address.
    let out =
        s.ns.kubectl(&[
            "patch",
            "sipdomain",
            "acme",
            "--type=merge",
            "-p",
            r#"{"spec":{"connection":{"transports":["TCP","UDP"]}}}"#,
        ])
        .output();
    assert!(out.success, "{}", out.stderr);
    let dana_secret = eventually("dana's Secret provisions TCP", WAIT, || async {
        let secret = s.secrets.get_opt("dana-sip-credentials").await.ok().flatten()?;
        (secret_value(&secret, "transport").as_deref() == Some("tcp")).then_some(secret)
    })
    .await;
    let desk = secret_value(&dana_secret, "devices.desk.linphone.xml").expect("the device's document");
    assert!(
        desk.contains(&format!("sip:127.0.0.1:{port};transport=tcp")),
        "{desk}"
    );
    assert!(
        desk.contains("<entry name=\"userid\">dana#desk</entry>"),
        "{desk}"
    );
    let desk_phone = Linphone::start("dana-desk", &desk);
    desk_phone.registered().await;
    let dana = s.contacts("dana", 1).await;
    let devices = &dana.status.as_ref().expect("status").devices;
    assert_eq!(
        devices
            .iter()
            .map(|d| (d.name.as_str(), d.contacts))
            .collect::<Vec<_>>(),
        [("desk", 1)],
        "the contact is the desk phone's"
    );
}
