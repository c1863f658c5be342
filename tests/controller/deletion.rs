//! Deletion: every SipUser carries the `sipoperator.io/registrar-cleanup` finalizer; deleting
//! the user runs the cleanup, releases the finalizer, and the garbage collector takes the
//! Secret with its owner.
use std::time::Duration;

use sip_operator::api::SipUser;
use sip_operator::keys::REGISTRAR_CLEANUP_FINALIZER;

use crate::builders::user;
use crate::scenario::{GC_WAIT, Scenario, WAIT, describe, reasons};

fn has_finalizer(u: &SipUser) -> bool {
    u.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == REGISTRAR_CLEANUP_FINALIZER))
}

async fn wait_gone(sc: &Scenario, name: &str, timeout: Duration) {
    let what = format!("SipUser {name} to be gone");
    sc.until(&what, timeout, || async move {
        match sc.try_user(name).await {
            None => Ok(()),
            Some(u) => Err(format!(
                "still there: deletionTimestamp {:?} finalizers {:?}; {}",
                u.metadata.deletion_timestamp,
                u.metadata.finalizers,
                describe(&u)
            )),
        }
    })
    .await
}

#[tokio::test]
async fn deleting_a_user_releases_the_finalizer_and_collects_the_secret() {
    let sc = Scenario::new("deletion").await;
    sc.apply(&user("kate").extension("7001")).await;
    let kate = sc.ready("kate").await;
    assert!(
        has_finalizer(&kate),
        "finalizer {REGISTRAR_CLEANUP_FINALIZER} missing: {:?}",
        kate.metadata.finalizers
    );
    let secret = sc.secret_appears("kate-sip-credentials").await;
    assert_eq!(
        secret
            .metadata
            .owner_references
            .as_ref()
            .map(|o| o[0].uid.clone()),
        kate.metadata.uid.clone()
    );

    sc.delete::<SipUser>("kate").await;
    wait_gone(&sc, "kate", WAIT).await;
    sc.secret_gone("kate-sip-credentials", GC_WAIT).await;

    // A new user of the same name starts afresh (new uid, new Secret).
    sc.apply(&user("kate").extension("7001")).await;
    let again = sc.ready("kate").await;
    assert_ne!(again.metadata.uid, kate.metadata.uid);
    let fresh = sc.secret_appears("kate-sip-credentials").await;
    assert_eq!(
        fresh.metadata.owner_references.as_ref().map(|o| o[0].uid.clone()),
        again.metadata.uid.clone()
    );
}

#[tokio::test]
async fn a_user_that_was_never_admitted_deletes_cleanly() {
    let sc = Scenario::new("deletestalled").await;
    sc.apply(&user("liam").domain("missing")).await;
    sc.stalled("liam", reasons::DOMAIN_NOT_FOUND).await;
    let liam = sc.wait_user("liam", "carries the finalizer", has_finalizer).await;
    assert!(has_finalizer(&liam));

    sc.delete::<SipUser>("liam").await;
    wait_gone(&sc, "liam", WAIT).await;
}
