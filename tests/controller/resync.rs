//! No write when nothing changed: a restarted operator leaves Secrets byte-identical, and a
//! no-op resync of 1,000 Ready users makes zero API writes, counted in the API server's audit
//! log (every write is audited with the writer's user name; the operator runs as
//! `sip-operator`).
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::builders::{DOMAIN, PROFILE, user};
use crate::scenario::{
    Scenario, has_condition, password, reasons, secret_data, settle_reconciles, summarize_events,
};
use crate::support::audit::{AuditEvent, AuditLog, OPERATOR_USER};
use crate::support::operator::metric_value;

/// Waits until the operator made no write in the scenario's namespace for three seconds;
/// returns how many writes it saw until then.
async fn wait_until_operator_is_quiet(sc: &Scenario, audit: &mut AuditLog, timeout: Duration) -> usize {
    let state = Mutex::new((audit, Instant::now(), 0usize));
    let state = &state;
    let ns = sc.namespace();
    sc.until(
        "the operator to stop writing (3 s without a write)",
        timeout,
        || async move {
            let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
            let (audit, since, total) = &mut *guard;
            let new: Vec<AuditEvent> = audit
                .read_new()
                .into_iter()
                .filter(|e| e.is_operator_write_in(ns))
                .collect();
            if !new.is_empty() {
                *total += new.len();
                *since = Instant::now();
                let last: Vec<String> = new.iter().rev().take(5).map(AuditEvent::summary).collect();
                return Err(format!("{} writes so far; latest: {last:?}", total));
            }
            if since.elapsed() >= Duration::from_secs(3) {
                Ok(*total)
            } else {
                Err(format!(
                    "{} writes so far; quiet for {:?}",
                    total,
                    since.elapsed()
                ))
            }
        },
    )
    .await
}

const USERS: usize = 1000;
const SCALE_WAIT: Duration = Duration::from_secs(300);

#[tokio::test]
async fn a_no_op_resync_of_1000_ready_users_makes_no_writes() {
    let mut sc = Scenario::new("resync").await;
    let mut audit = AuditLog::mark();

    // Each with an extension too, so that every name index of the domain is exercised.
    let users: Vec<_> = (0..USERS)
        .map(|i| user(&format!("u{i:04}")).extension(&format!("{}", 10_000 + i)))
        .collect();
    let scr = &sc;
    let applied = futures::stream::iter(users.iter())
        .map(|u| async move { scr.apply(u).await })
        .buffer_unordered(8)
        .count()
        .await;
    assert_eq!(applied, USERS);

    // All admitted (cheap to poll), then all Ready (a full list, at most every two seconds).
    let domain = sc
        .until(
            &format!("SipDomain {DOMAIN} to count {USERS} users"),
            SCALE_WAIT,
            || async move {
                let d = scr.domains().get(DOMAIN).await.expect("get domain");
                let users = d.status.as_ref().and_then(|s| s.users);
                if users == Some(USERS as i32) {
                    Ok(d)
                } else {
                    Err(format!("status.users {users:?}"))
                }
            },
        )
        .await;
    assert!(domain.status.is_some());
    let last_list: Mutex<Option<Instant>> = Mutex::new(None);
    let last_list = &last_list;
    sc.until(
        &format!("all {USERS} SipUsers to be Ready"),
        SCALE_WAIT,
        || async move {
            {
                let mut last = last_list.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_some_and(|t| t.elapsed() < Duration::from_secs(2)) {
                    return Err("(waiting between lists)".into());
                }
                *last = Some(Instant::now());
            }
            let users = scr
                .users()
                .list(&Default::default())
                .await
                .expect("list users")
                .items;
            let not_ready: Vec<String> = users
                .iter()
                .filter(|u| {
                    !(crate::scenario::is_current(*u)
                        && has_condition(*u, reasons::READY, "True", reasons::READY))
                })
                .map(crate::scenario::describe)
                .collect();
            if users.len() == USERS && not_ready.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} users listed, {} not Ready, e.g. {:?}",
                    users.len(),
                    not_ready.len(),
                    not_ready.first()
                ))
            }
        },
    )
    .await;
    sc.wait_profile(PROFILE, "users == 1000", |p| {
        p.status.as_ref().and_then(|s| s.users) == Some(USERS as i32)
    })
    .await;
    let writes = wait_until_operator_is_quiet(&sc, &mut audit, Duration::from_secs(120)).await;
    // Proves the audit filter sees the operator's writes: at least a Secret per user.
    assert!(
        writes >= USERS,
        "the audit log shows only {writes} writes by {OPERATOR_USER} in {} while {USERS} users got Secrets",
        sc.namespace()
    );

    // Stop it, mark the audit log, start a new operator: it resyncs every user.
    let status = sc.operator.stop().await;
    assert!(
        status.success(),
        "the operator should exit cleanly on SIGTERM: {status}"
    );
    let mut after = AuditLog::mark();
    let lines_before = after.lines;
    sc.operator = crate::support::operator::Operator::start(&sc.ns).await;
    settle_reconciles(&sc.operator, USERS as f64, SCALE_WAIT, &sc.context()).await;
    let scrape = sc.operator.metrics();
    let ready = metric_value(
        &scrape,
        "sip_operator_objects",
        &[("kind", "SipUser"), ("condition", "Ready"), ("status", "True")],
    );
    assert_eq!(ready, Some(USERS as f64), "the new operator evaluated every user");

    let writes: Vec<AuditEvent> = after
        .read_new()
        .into_iter()
        .filter(|e| e.is_operator_write_in(sc.namespace()))
        .collect();
    assert!(
        writes.is_empty(),
        "a no-op resync of {USERS} Ready users made {} writes (audit log lines after #{lines_before}), e.g.:\n{}",
        writes.len(),
        writes
            .iter()
            .take(20)
            .map(AuditEvent::summary)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn a_restarted_operator_leaves_the_secret_byte_identical() {
    let mut sc = Scenario::new("restart").await;
    sc.apply(&user("nina").extension("7001")).await;
    sc.ready("nina").await;
    sc.secret_appears("nina-sip-credentials").await;
    sc.wait_event("nina", reasons::CREDENTIALS_CREATED).await;
    // Let the first operator finish whatever it does before taking the picture.
    sc.operator_settled(1.0).await;
    let before_user = sc.ready("nina").await;
    let before = sc.secret("nina-sip-credentials").await;

    sc.restart_operator().await;
    sc.operator_settled(1.0).await;
    let after_user = sc.ready("nina").await;
    let after = sc.secret("nina-sip-credentials").await;
    assert_eq!(
        after.metadata.uid, before.metadata.uid,
        "the Secret was recreated"
    );
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "the restarted operator rewrote the Secret"
    );
    assert_eq!(
        secret_data(&after),
        secret_data(&before),
        "the Secret's data changed"
    );
    assert_eq!(password(&after), password(&before));
    assert_eq!(
        after_user.metadata.resource_version, before_user.metadata.resource_version,
        "the restarted operator rewrote the SipUser (status or metadata)"
    );
    let events = sc.user_events("nina").await;
    let created = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reasons::CREDENTIALS_CREATED))
        .count();
    assert_eq!(
        created,
        1,
        "a restart must not report new credentials: {}",
        summarize_events(&events)
    );
}
