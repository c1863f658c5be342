//! Failed authentications reported by the operator (issue 13, part 4, operator side): SIPp
//! guesses a user's password from 127.0.0.2; the user's `status.security` shows the failures
//! and the source, one Warning Event `AuthenticationFailures` is recorded, the domain's gauges
//! count them, and the right password from 127.0.0.1 still registers.
use std::net::Ipv4Addr;

use sip_operator::api::SipUser;

use crate::setup::{Setup, WAIT};
use crate::support::eventually;
use crate::support::kamailio::Kamailio;
use crate::support::sipp::Registration;

const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// The value of the sample `series` (name and labels) in a scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn guessed_passwords_show_in_status_events_and_metrics_and_the_right_one_still_registers() {
    // FAIL_LIMIT 3 blocks 127.0.0.2 at the third guess (the fourth is refused uncounted);
    // Setup runs the operator with --auth-failure-warning-threshold 3.
    let setup = Setup::with(
        "authfail",
        Kamailio::builder().define("FAIL_LIMIT", "3").start(),
        "",
    )
    .await;
    setup.apply_user("alice", "", "");
    setup.registrar_synced("alice", "True").await;
    let password = setup.password("alice").await;

    for guess in ["guess-1", "guess-2", "guess-3", "guess-4"] {
        let status = Registration::new("alice", &setup.fqdn, guess)
            .source(ATTACKER)
            .run(setup.kamailio().sip_addr())
            .status;
        assert_eq!(status, 403, "{guess}");
    }

    let user: SipUser = eventually("alice: status.security with the failures", WAIT, || async {
        let u = setup.users.get_opt("alice").await.ok().flatten()?;
        let s = u.status.as_ref()?.security.as_ref()?;
        (s.failures >= 3).then_some(u.clone())
    })
    .await;
    let security = user.status.and_then(|s| s.security).expect("security");
    assert_eq!(security.last_failure_source.as_deref(), Some("127.0.0.2"));
    assert!(security.last_failure_time.is_some());

    let fqdn = setup.fqdn.clone();
    eventually("the domain's gauges", WAIT, || async {
        let scrape = setup.operator().metrics();
        let failures = sample(
            &scrape,
            &format!("sip_operator_auth_failures{{domain=\"{fqdn}\"}}"),
        )?;
        let blocked = sample(
            &scrape,
            &format!("sip_operator_blocked_sources{{domain=\"{fqdn}\"}}"),
        )?;
        (failures >= 3.0 && blocked == 1.0).then_some(())
    })
    .await;

    // One Warning Event, naming the count and the source, and not repeated while the
    // failures stay at the threshold (a few check intervals later).
    let warnings = || {
        let out = setup
            .ns
            .kubectl(&[
                "get",
                "events",
                "--field-selector",
                "reason=AuthenticationFailures,involvedObject.name=alice",
                "-o",
                "jsonpath={range .items[*]}{.type}|{.message}{\"\\n\"}{end}",
            ])
            .ok();
        out.lines().map(str::to_string).collect::<Vec<_>>()
    };
    let first = eventually("the AuthenticationFailures Event", WAIT, || async {
        let w = warnings();
        (!w.is_empty()).then_some(w)
    })
    .await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0].starts_with("Warning|3 failed authentications"),
        "{first:?}"
    );
    assert!(first[0].contains("127.0.0.2"), "{first:?}");
    assert!(!first[0].contains(&password), "no password in the Event");
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(warnings(), first, "not repeated");

    // The right password from another address still registers.
    assert_eq!(setup.register("alice", &password), 200);
}
