//! The operator and the registrar together, end to end: a real operator process pushes users
//! to a real Kamailio running the shipped config, and a real SIP client (SIPp) registers with
//! the password read from the generated Secret, as a device provisioning tool would.
use kube::api::DeleteParams;
use sip_operator::api::{Conditioned, SipDomain};

use crate::setup::{Setup, WAIT};
use crate::support::eventually;
use crate::support::kamailio::Kamailio;
use crate::support::sipp::Registration;

#[tokio::test]
async fn a_phone_registers_with_the_password_from_the_secret() {
    let s = Setup::new("e2e-auth").await;
    s.apply_user("alice", "", "");
    s.apply_user("bob", "", "");
    let alice = s.registrar_synced("alice", "True").await;
    assert_eq!(alice.condition_status("Ready"), Some("True"));
    s.registrar_synced("bob", "True").await;
    let password = s.password("alice").await;

    let right = Registration::new("alice", &s.fqdn, &password).run(s.kamailio().sip_addr());
    assert!(right.challenged, "the first REGISTER is challenged");
    assert_eq!(right.status, 200, "the Secret's password registers alice");
    assert_eq!(s.register("alice", "not-the-password"), 403);
    assert_eq!(
        s.register("bob", &password),
        403,
        "alice's password does not register bob"
    );
    // The registrar holds digests only.
    let entry = s.kamailio().rpc(
        "htable.get",
        serde_json::json!(["users", format!("alice@{}", s.fqdn)]),
    );
    assert!(
        !entry.to_string().contains(&password),
        "the registrar must never see the password"
    );
}

#[tokio::test]
async fn suspended_and_deleted_users_are_refused_and_their_contacts_dropped() {
    let s = Setup::new("e2e-remove").await;
    s.apply_user("alice", "", "");
    s.registrar_synced("alice", "True").await;
    let password = s.password("alice").await;
    let aor = format!("alice@{}", s.fqdn);
    let kept = Registration::new("alice", &s.fqdn, &password)
        .expires(300)
        .run(s.kamailio().sip_addr());
    assert_eq!(kept.status, 200);
    assert_eq!(s.kamailio().contacts(&aor).len(), 1, "a registered contact");

    s.apply_user("alice", "  enabled: false\n", "");
    s.registrar_synced("alice", "False").await;
    assert!(
        s.kamailio().contacts(&aor).is_empty(),
        "suspension drops the contacts"
    );
    assert_eq!(s.register("alice", &password), 403, "a suspended user is refused");
    assert_eq!(
        s.password("alice").await,
        password,
        "suspension keeps the password"
    );

    s.apply_user("alice", "  enabled: true\n", "");
    s.registrar_synced("alice", "True").await;
    assert_eq!(
        s.register("alice", &password),
        200,
        "re-enabled, the same password works again"
    );

    let again = Registration::new("alice", &s.fqdn, &password)
        .expires(300)
        .run(s.kamailio().sip_addr());
    assert_eq!(again.status, 200);
    s.users
        .delete("alice", &DeleteParams::default())
        .await
        .expect("delete alice");
    s.gone("alice").await;
    assert!(
        s.kamailio().contacts(&aor).is_empty(),
        "deletion drops the contacts"
    );
    assert_eq!(s.register("alice", &password), 403, "a deleted user is refused");
}

#[tokio::test]
async fn rotation_swaps_the_password_at_the_registrar() {
    let s = Setup::new("e2e-rotate").await;
    s.apply_user("alice", "", "");
    s.registrar_synced("alice", "True").await;
    let old = s.password("alice").await;
    assert_eq!(s.register("alice", &old), 200);

    // As the README says to.
    let out =
        s.ns.kubectl(&[
            "annotate",
            "sipuser",
            "alice",
            "sipoperator.io/rotate=1",
            "--overwrite",
        ])
        .output();
    assert!(out.success, "{}", out.stderr);
    let new = eventually("a rotated password", WAIT, || async {
        let u = s.users.get_opt("alice").await.ok().flatten()?;
        let handled = u.status.as_ref()?.last_handled_rotation.as_deref() == Some("1");
        let new = s.password("alice").await;
        (handled && new != old && u.condition_status("RegistrarSynced") == Some("True")).then_some(new)
    })
    .await;
    assert_eq!(s.register("alice", &old), 403, "the old password is refused");
    assert_eq!(
        s.register("alice", &new),
        200,
        "the new password is accepted, no manual step"
    );
}

#[tokio::test]
async fn a_user_that_was_never_pushed_is_not_a_registrar_failure() {
    let s = Setup::new("e2e-stalled").await;
    // Its profile does not exist: stalled, never pushed, and removing it is a no-op.
    s.apply_user("carol", "  profileRef: missing\n", "");
    let carol = s.registrar_synced("carol", "Unknown").await;
    assert_eq!(carol.condition_status("Stalled"), Some("True"));
    let reason = carol
        .conditions()
        .iter()
        .find(|c| c.type_ == "RegistrarSynced")
        .map(|c| c.reason.clone());
    assert_eq!(reason.as_deref(), Some("NotAdmitted"));
}

#[tokio::test]
async fn an_unreachable_registrar_keeps_the_user_reconciling() {
    let s = Setup::new("e2e-unreachable").await;
    // A second domain whose registrar port has nothing listening.
    let closed = crate::support::kamailio::free_port(false);
    let yaml = format!(
        "apiVersion: sipoperator.io/v1alpha1\nkind: SipDomain\nmetadata: {{name: gone}}\nspec:\n  domain: gone.{}\n  \
         registrar:\n    kamailio:\n      urls: [\"http://127.0.0.1:{closed}/RPC\"]\n",
        s.fqdn
    );
    s.apply(&yaml);
    s.apply_user("dave", "", "");
    let yaml = "apiVersion: sipoperator.io/v1alpha1\nkind: SipUser\nmetadata: {name: erin}\nspec: {domainRef: gone}\n";
    s.apply(yaml);
    let erin = s.registrar_synced("erin", "False").await;
    assert_eq!(erin.condition_status("Ready"), Some("False"));
    assert_eq!(erin.condition_status("Reconciling"), Some("True"));
    let message = erin
        .conditions()
        .iter()
        .find(|c| c.type_ == "RegistrarSynced")
        .map(|c| c.message.clone());
    assert!(
        message.is_some_and(|m| m.contains(&closed.to_string())),
        "the message names the endpoint"
    );
    // The reachable domain is not held up by the other one.
    s.registrar_synced("dave", "True").await;

    // Deleting erin waits for the registrar cleanup, which cannot succeed; the escape hatch
    // annotation lets the deletion through.
    s.users
        .delete("erin", &DeleteParams::default())
        .await
        .expect("delete erin");
    let stuck = s.users.get("erin").await.expect("erin waits for its finalizer");
    assert!(stuck.metadata.deletion_timestamp.is_some());
    let out =
        s.ns.kubectl(&[
            "annotate",
            "sipuser",
            "erin",
            "sipoperator.io/skip-registrar-cleanup=true",
        ])
        .output();
    assert!(out.success, "{}", out.stderr);
    s.gone("erin").await;
}

#[tokio::test]
async fn a_restarted_kamailio_gets_its_users_back() {
    let mut s = Setup::new("e2e-restart").await;
    s.apply_user("alice", "", "");
    s.registrar_synced("alice", "True").await;
    let password = s.password("alice").await;
    assert_eq!(s.register("alice", &password), 200);
    let domains = &s.domains;
    let full_sync = |d: &SipDomain| {
        d.status
            .as_ref()
            .and_then(|st| st.registrars.first())
            .and_then(|r| r.last_full_sync.clone())
    };
    let first = eventually("the domain to record its first full sync", WAIT, || async {
        full_sync(&domains.get("acme").await.ok()?)
    })
    .await;

    // A crash: Kamailio's memory (users, contacts, the sync marker) is gone.
    s.kamailios[0].kill_and_restart();
    eventually("alice to register again after the restart", WAIT, || async {
        (s.register("alice", &password) == 200).then_some(())
    })
    .await;
    let domain = domains.get("acme").await.expect("domain");
    let endpoint = &domain.status.as_ref().expect("status").registrars[0];
    assert_eq!(endpoint.address, s.kamailio().rpc_url());
    assert!(
        endpoint.last_full_sync.as_ref().is_some_and(|t| *t != first),
        "the re-sync is recorded: {endpoint:?}"
    );
    assert_eq!(endpoint.last_error, None);
}

#[tokio::test]
async fn max_contacts_come_from_the_profile_and_a_user_override() {
    let s = Setup::new("e2e-contacts").await;
    let profile = "apiVersion: sipoperator.io/v1alpha1\nkind: SipProfile\nmetadata: {name: single}\nspec: {maxContacts: 1}\n";
    s.apply(profile);
    s.apply_user("alice", "  profileRef: single\n", "");
    s.apply_user("bob", "  profileRef: single\n  maxContacts: 2\n", "");
    s.registrar_synced("alice", "True").await;
    s.registrar_synced("bob", "True").await;

    let device = |user: &str, password: &str| {
        Registration::new(user, &s.fqdn, password)
            .expires(300)
            .run(s.kamailio().sip_addr())
            .status
    };
    let alice = s.password("alice").await;
    assert_eq!(device("alice", &alice), 200, "the profile allows one device");
    assert_ne!(
        device("alice", &alice),
        200,
        "a second device is past the profile's maxContacts"
    );
    let bob = s.password("bob").await;
    assert_eq!(device("bob", &bob), 200);
    assert_eq!(device("bob", &bob), 200, "bob's override allows two devices");
    assert_ne!(device("bob", &bob), 200, "a third is past bob's maxContacts");
    assert_eq!(s.kamailio().contacts(&format!("bob@{}", s.fqdn)).len(), 2);
}

#[tokio::test]
async fn a_sha256_domain_registers_with_an_rfc8760_digest() {
    let kamailio = Kamailio::builder().define("WITH_SHA256", "").start();
    let s = Setup::with("e2e-sha256", kamailio, "  digestAlgorithms: [MD5, SHA-256]\n").await;
    s.apply_user("alice", "", "");
    s.registrar_synced("alice", "True").await;
    let password = s.password("alice").await;
    let ok = crate::digest::register(
        s.kamailio().sip_addr(),
        "alice",
        &s.fqdn,
        &password,
        crate::digest::Algorithm::Sha256,
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.challenges[0].contains("algorithm=SHA-256"), "{ok:?}");
    let wrong = crate::digest::register(
        s.kamailio().sip_addr(),
        "alice",
        &s.fqdn,
        "wrong",
        crate::digest::Algorithm::Sha256,
    );
    assert_eq!(wrong.status, 403, "{wrong:?}");
}

#[tokio::test]
async fn a_username_conflict_loser_never_removes_the_winner_from_the_registrar() {
    let s = Setup::new("e2e-conflict").await;
    s.apply_user("alice", "", "");
    s.registrar_synced("alice", "True").await;
    let password = s.password("alice").await;
    // bob claims alice's username: the older alice keeps it, bob is stalled and not pushed.
    s.apply_user("bob", "  username: alice\n", "");
    let bob = s.registrar_synced("bob", "Unknown").await;
    assert_eq!(bob.condition_status("Stalled"), Some("True"));
    assert_eq!(
        s.register("alice", &password),
        200,
        "alice is still held by the registrar"
    );
    // Deleting the loser must not take the winner's entry either.
    s.users
        .delete("bob", &DeleteParams::default())
        .await
        .expect("delete bob");
    s.gone("bob").await;
    assert_eq!(
        s.register("alice", &password),
        200,
        "alice survives the loser's deletion"
    );
}

#[tokio::test]
async fn domains_sharing_a_kamailio_all_get_their_users_back_after_a_restart() {
    let mut s = Setup::new("e2e-shared").await;
    let beta = format!("beta.{}", s.fqdn);
    s.apply(&format!(
        "apiVersion: sipoperator.io/v1alpha1\nkind: SipDomain\nmetadata: {{name: beta}}\nspec:\n  domain: {beta}\n  \
         registrar:\n    kamailio:\n      urls: [\"{url}\"]\n      tokenSecretRef: {{name: kamailio-rpc, key: token}}\n---\n\
         apiVersion: sipoperator.io/v1alpha1\nkind: SipUser\nmetadata: {{name: bob}}\nspec: {{domainRef: beta}}\n",
        url = s.kamailio().rpc_url()
    ));
    s.apply_user("alice", "", "");
    s.registrar_synced("alice", "True").await;
    s.registrar_synced("bob", "True").await;
    let (alice, bob) = (s.password("alice").await, s.password("bob").await);
    let register = |s: &Setup, user: &str, domain: &str, pw: &str| {
        Registration::new(user, domain, pw)
            .run(s.kamailio().sip_addr())
            .status
    };
    assert_eq!(register(&s, "bob", &beta, &bob), 200);

    s.kamailios[0].kill_and_restart();
    // Each domain has its own marker on the shared instance, so each notices the restart.
    eventually(
        "alice and bob to register again after the restart",
        WAIT,
        || async {
            (register(&s, "alice", &s.fqdn, &alice) == 200 && register(&s, "bob", &beta, &bob) == 200)
                .then_some(())
        },
    )
    .await;
}
