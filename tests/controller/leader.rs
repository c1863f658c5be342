//! Leader election: two replicas on one namespace, exactly one leads through the Lease
//! `sip-operator`; SIGTERM on the leader hands over to the other, which keeps reconciling.
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

use crate::builders::user;
use crate::scenario::{Scenario, describe, has_condition, is_current, reasons, until};
use crate::support::operator::Operator;

/// `sip_operator_leader` of a replica, or why it could not be read.
fn leader_gauge(op: &Operator) -> Result<f64, String> {
    let (status, body) = op.try_http_get("/metrics")?;
    if status != 200 {
        return Err(format!("/metrics answered {status}"));
    }
    crate::support::operator::metric_value(&body, "sip_operator_leader", &[])
        .ok_or_else(|| "no sip_operator_leader sample".to_string())
}

async fn lease_holder(sc: &Scenario) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(sc.client.clone(), sc.namespace());
    leases
        .get_opt("sip-operator")
        .await
        .expect("get Lease")
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

#[tokio::test]
async fn one_of_two_replicas_leads_and_hands_over_on_sigterm() {
    let mut sc = Scenario::new("leader").await;
    // The second replica may report not-ready while it follows: wait for its server only.
    let mut second = Operator::launch(&sc.ns, &[]).await;

    // Exactly one leads.
    let (a, b) = (&sc.operator, &second);
    let first_leads = until(
        "exactly one of two replicas to report sip_operator_leader 1",
        Duration::from_secs(30),
        || format!("first log:\n{}\nsecond log:\n{}", a.log_tail(20), b.log_tail(20)),
        || async move {
            match (leader_gauge(a), leader_gauge(b)) {
                (Ok(a), Ok(b)) if a == 1.0 && b == 0.0 => Ok(true),
                (Ok(a), Ok(b)) if a == 0.0 && b == 1.0 => Ok(false),
                other => Err(format!("leader gauges (first, second): {other:?}")),
            }
        },
    )
    .await;
    let (leader, follower) = if first_leads {
        (&sc.operator, &second)
    } else {
        (&second, &sc.operator)
    };
    assert_eq!(
        lease_holder(&sc).await.as_deref(),
        Some(leader.identity()),
        "the Lease sip-operator names the leader"
    );

    // The leader reconciles; the follower does not.
    sc.apply(&user("first")).await;
    sc.ready("first").await;
    let follower_reconciles = crate::support::operator::metric_value(
        &follower.metrics(),
        "sip_operator_reconciles_total",
        &[("kind", "SipUser")],
    )
    .unwrap_or(0.0);
    assert_eq!(
        follower_reconciles, 0.0,
        "the follower must not reconcile while it does not lead"
    );
    assert_eq!(leader_gauge(follower), Ok(0.0), "still exactly one leader");

    // SIGTERM the leader: it exits cleanly, releasing the Lease, and the follower, which
    // watches the Lease, takes it at once — well within the 15 s term it waited for before.
    let leader = if first_leads {
        &mut sc.operator
    } else {
        &mut second
    };
    let status = leader.stop().await;
    assert!(
        status.success(),
        "the leader should exit cleanly on SIGTERM: {status}\n{}",
        leader.log_tail(20)
    );
    let follower = if first_leads { &second } else { &sc.operator };
    until(
        "the follower to lead after the leader's SIGTERM (it watches the Lease for the release)",
        Duration::from_secs(5),
        || format!("follower log:\n{}", follower.log_tail(30)),
        || async move {
            leader_gauge(follower).and_then(|g| {
                if g == 1.0 {
                    Ok(())
                } else {
                    Err(format!("gauge {g}"))
                }
            })
        },
    )
    .await;
    assert_eq!(
        lease_holder(&sc).await.as_deref(),
        Some(follower.identity()),
        "the Lease names the new leader"
    );

    // It keeps reconciling: a new user becomes Ready, an old one stays so.
    sc.apply(&user("second")).await;
    let scr = &sc;
    until(
        "SipUser second to become Ready under the new leader",
        crate::scenario::WAIT,
        || format!("new leader's log:\n{}", follower.log_tail(30)),
        || async move {
            match scr.try_user("second").await {
                Some(u) if is_current(&u) && has_condition(&u, reasons::READY, "True", reasons::READY) => {
                    Ok(())
                }
                Some(u) => Err(describe(&u)),
                None => Err("the SipUser does not exist".into()),
            }
        },
    )
    .await;
    sc.ready("first").await;
}
