//! Live registrations, end to end: a SIPp registration shows in `status.registration`, the
//! `Registered` condition, the CONTACTS column and the domain's registered-user count, and
//! clears when the registration lapses or the device unregisters.
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use sip_operator::api::{Conditioned, RegistrationStatus, SipUser};

use crate::setup::{Setup, WAIT};
use crate::support::eventually;
use crate::support::kamailio::{Kamailio, free_port};
use crate::support::kubectl::table_by_header;
use crate::support::sipp::Registration;

impl Setup {
    /// Waits until alice's status shows `contacts` devices (with the Registered condition
    /// saying the same) and the domain counts `registered` users.
    async fn registration(&self, user: &str, contacts: i32, registered: i32) -> SipUser {
        let want = if contacts > 0 { "True" } else { "False" };
        let found = eventually(
            &format!("{user}: {contacts} contact(s), Registered={want}; domain: {registered} registered"),
            WAIT,
            || async {
                let u = self.users.get_opt(user).await.ok().flatten()?;
                let shown = u.status.as_ref()?.registration.as_ref()?.contacts;
                let d = self.domains.get_opt("acme").await.ok().flatten()?;
                let counted = d.status.as_ref()?.registered_users?;
                (shown == contacts && u.condition_status("Registered") == Some(want) && counted == registered)
                    .then_some(u)
            },
        )
        .await;
        assert_eq!(
            found.condition_status("Ready"),
            Some("True"),
            "Registered is informational"
        );
        found
    }

    /// The CONTACTS cell of `kubectl get sipusers <user>`.
    fn contacts_column(&self, user: &str) -> String {
        let table = self.ns.kubectl(&["get", "sipusers", user]).ok();
        let rows = table_by_header(&table);
        rows.first()
            .and_then(|row| row.get("CONTACTS").cloned())
            .unwrap_or_else(|| panic!("no CONTACTS cell:\n{table}"))
    }
}

fn registration(u: &SipUser) -> RegistrationStatus {
    u.status
        .as_ref()
        .and_then(|s| s.registration.clone())
        .expect("status.registration")
}

#[tokio::test]
async fn a_registration_shows_in_status_and_clears_when_it_lapses_or_is_removed() {
    // Short registrations are allowed, and lapsed ones purged every second.
    let kamailio = Kamailio::builder()
        .define("MIN_EXPIRES", "1")
        .define("UL_TIMER_INTERVAL", "1")
        .start();
    let s = Setup::with("e2e-live", kamailio, "").await;
    s.apply_user("alice", "", "");
    s.apply_user("bob", "", "");
    s.registrar_synced("alice", "True").await;
    let password = s.password("alice").await;
    s.registration("alice", 0, 0).await;
    assert_eq!(s.contacts_column("alice"), "0");

    let before = Timestamp::now();
    let phone = Registration::new("alice", &s.fqdn, &password).expires(6);
    assert_eq!(phone.run(s.kamailio().sip_addr()).status, 200);
    let alice = s.registration("alice", 1, 1).await;
    let seen = registration(&alice);
    assert_eq!(seen.user_agents, ["sip-operator-tests SIPp"]);
    let expiry = seen.earliest_expiry.clone().expect("earliestExpiry").0;
    assert!(
        expiry > before && expiry <= Timestamp::now() + SignedDuration::from_secs(7),
        "the expiry is about 6 s after the REGISTER: {expiry}"
    );
    let last_seen = seen.last_seen.clone().expect("lastSeen");
    assert!(
        last_seen.0 >= before - SignedDuration::from_secs(1),
        "{last_seen:?}"
    );
    assert_eq!(s.contacts_column("alice"), "1");
    let bob = s.users.get("bob").await.expect("bob");
    assert_eq!(registration(&bob).contacts, 0, "bob has no device");

    // Not refreshed: the registration lapses and the status clears, keeping lastSeen.
    let alice = s.registration("alice", 0, 0).await;
    let cleared = registration(&alice);
    assert!(
        cleared.user_agents.is_empty() && cleared.earliest_expiry.is_none(),
        "{cleared:?}"
    );
    assert_eq!(cleared.last_seen, Some(last_seen));
    assert_eq!(s.contacts_column("alice"), "0");

    // Registered again, then removed by the device (REGISTER with Expires: 0).
    let desk = Registration::new("alice", &s.fqdn, &password)
        .expires(300)
        .local_port(free_port(true));
    assert_eq!(desk.run(s.kamailio().sip_addr()).status, 200);
    s.registration("alice", 1, 1).await;
    assert_eq!(desk.expires(0).run(s.kamailio().sip_addr()).status, 200);
    s.registration("alice", 0, 0).await;
}

#[tokio::test]
async fn a_quiet_registration_causes_no_status_writes() {
    let s = Setup::new("e2e-live-quiet").await;
    s.apply_user("alice", "", "");
    s.registrar_synced("alice", "True").await;
    let password = s.password("alice").await;
    // One device: the same contact address each time.
    let phone = Registration::new("alice", &s.fqdn, &password)
        .expires(300)
        .local_port(free_port(true));
    assert_eq!(phone.run(s.kamailio().sip_addr()).status, 200);
    let first = s.registration("alice", 1, 1).await;
    let domain = s.domains.get("acme").await.expect("domain");
    // The device refreshes: same device, later expiry. The stored expiry still lies ahead,
    // so nothing is written (checks run every second), to the user or to its domain.
    assert_eq!(phone.run(s.kamailio().sip_addr()).status, 200);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = s.users.get("alice").await.expect("alice");
    assert_eq!(
        later.metadata.resource_version, first.metadata.resource_version,
        "a refresh within the stored expiry is not written"
    );
    let domain_later = s.domains.get("acme").await.expect("domain");
    assert_eq!(
        domain_later.metadata.resource_version, domain.metadata.resource_version,
        "the domain's status is not rewritten by its checks"
    );
}
