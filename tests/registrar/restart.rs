//! A restarted Kamailio has lost every user and contact; the operator must notice.
use serde_json::json;

use crate::support::kamailio::Kamailio;
use crate::support::sipp::Sipp;
use crate::{DOMAIN, TestUser};

#[test]
fn restart_forgets_users_and_the_sync_sentinel() {
    let mut kamailio = Kamailio::start();
    let alice = TestUser::new("alice");
    kamailio.set_user(&alice.key(), &alice.entry(1));
    kamailio.rpc_ok("htable.sets", json!(["sync", "epoch", "run-1"]));
    assert_eq!(
        kamailio.rpc_ok("htable.get", json!(["sync", "epoch"]))["item"]["value"],
        "run-1"
    );
    let registered = Sipp::register_for(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 300);
    assert_eq!(registered.status, 200, "{registered:?}");
    let pid = kamailio.pid();

    kamailio.kill_and_restart();
    assert_ne!(kamailio.pid(), pid);

    // The sentinel is gone (even when up_since, with its one-second resolution, is not new).
    let sentinel = kamailio.rpc("htable.get", json!(["sync", "epoch"]));
    assert!(sentinel.get("error").is_some(), "{sentinel}");
    assert!(kamailio.contacts(&alice.key()).is_empty());
    Sipp::register_expect(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 403);

    // Re-pushed, the user works again.
    kamailio.set_user(&alice.key(), &alice.entry(1));
    Sipp::register_expect(kamailio.sip_addr(), "alice", DOMAIN, &alice.password, 200);
}
