//! Registrar settings that can never work: a token Secret or key that is missing, a Service
//! that does not exist, a URL the client cannot use. The SipDomain is Stalled with a reason
//! naming the field, its users are Stalled pointing at it (their credentials are written all
//! the same), credentials from a URL show nowhere, and creating what is missing or fixing the
//! spec heals both without a poke. Each test has a real Kamailio to heal towards.
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sip_operator::api::SipDomain;

use crate::builders::{DOMAIN, DomainBuilder, PROFILE, domain, profile, secret, user};
use crate::scenario::{Scenario, condition, describe, has_condition, is_current, namespace_events, reasons};
use crate::support::kamailio::{Kamailio, random_token};
use crate::support::operator::Operator;
use crate::support::{ControlPlane, TestNamespace};

const TOKEN_SECRET: &str = "kamailio-rpc";

/// A namespace with the profile [`PROFILE`] and an operator that checks registrars every
/// `interval` seconds (resolving host names through `hosts` when given).
async fn scenario(prefix: &str, interval: &str, hosts: Option<&Path>) -> Scenario {
    let ns = TestNamespace::create(prefix);
    let client = ControlPlane::shared().client().await;
    let args = ["--registrar-check-interval-seconds", interval];
    let operator = match hosts {
        Some(hosts) => Operator::start_with_hosts(&ns, &args, hosts).await,
        None => Operator::start_with(&ns, &args).await,
    };
    let fqdn = format!("{}.sip.example.com", ns.name);
    let sc = Scenario {
        operator,
        client,
        ns,
        fqdn,
    };
    sc.apply(&profile(PROFILE)).await;
    sc
}

fn registrar_domain(sc: &Scenario, kamailio: Value) -> DomainBuilder {
    domain(DOMAIN, &sc.fqdn)
        .default_profile(PROFILE)
        .kamailio(kamailio)
}

fn token_ref() -> Value {
    json!({"name": TOKEN_SECRET, "key": "token"})
}

/// Waits until the domain is Stalled=True and Ready=False with `reason` (not Reconciling);
/// returns the Stalled message.
async fn domain_stalled(sc: &Scenario, reason: &str) -> String {
    let d = sc
        .wait_domain(
            DOMAIN,
            &format!("Stalled=True, Ready=False, reason {reason}"),
            |d| {
                is_current(d)
                    && has_condition(d, reasons::STALLED, "True", reason)
                    && has_condition(d, reasons::READY, "False", reason)
                    && condition(d, reasons::RECONCILING).is_some_and(|(s, _, _)| s == "False")
            },
        )
        .await;
    condition(&d, reasons::STALLED)
        .map(|(_, _, m)| m)
        .unwrap_or_default()
}

/// The user's side of a domain whose registrar cannot work: kstatus Stalled (a person must
/// act; no Reconciling), `RegistrarSynced` False pointing at the domain, and its credentials
/// Secret written anyway.
async fn user_points_at_the_domain(sc: &Scenario, name: &str, domain_message: &str) {
    sc.stalled(name, reasons::DOMAIN_REGISTRAR_INVALID).await;
    let u = sc.user(name).await;
    assert!(
        condition(&u, reasons::RECONCILING).is_some_and(|(s, _, _)| s == "False"),
        "a stalled user is not reconciling: {}",
        describe(&u)
    );
    let (status, reason, message) = condition(&u, reasons::REGISTRAR_SYNCED).expect("RegistrarSynced");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", reasons::DOMAIN_REGISTRAR_INVALID)
    );
    assert!(
        message.starts_with(&format!("SipDomain {DOMAIN}: ")) && message.contains(domain_message),
        "RegistrarSynced points at the domain and says what is wrong: {message}"
    );
    assert!(message.contains("spec.registrar"), "{message}");
    assert!(
        has_condition(&u, reasons::CREDENTIALS_READY, "True", reasons::SECRET_READY),
        "credentials do not depend on the registrar: {}",
        describe(&u)
    );
    sc.secret_appears(&format!("{name}-sip-credentials")).await;
}

/// Waits until the domain is Ready with its registrar answering and the user is Ready and
/// held by the registrar.
async fn both_heal(sc: &Scenario, name: &str) -> SipDomain {
    let d = sc
        .wait_domain(DOMAIN, "Ready=True, Stalled=False, RegistrarReady=True", |d| {
            is_current(d)
                && has_condition(d, reasons::READY, "True", reasons::READY)
                && has_condition(d, reasons::STALLED, "False", reasons::NOT_STALLED)
                && condition(d, reasons::REGISTRAR_READY).is_some_and(|(s, _, _)| s == "True")
        })
        .await;
    sc.wait_user(name, "Ready=True and RegistrarSynced=True", |u| {
        is_current(u)
            && has_condition(u, reasons::READY, "True", reasons::READY)
            && condition(u, reasons::REGISTRAR_SYNCED).is_some_and(|(s, _, _)| s == "True")
    })
    .await;
    d
}

/// `secret` appears in no SipDomain or SipUser status, no Event and no operator log line.
async fn shows_nowhere(sc: &Scenario, secret: &str) {
    let domains = sc
        .domains()
        .list(&Default::default())
        .await
        .expect("list domains");
    let users = sc.users().list(&Default::default()).await.expect("list users");
    let statuses = serde_json::to_string(&(
        domains.items.iter().map(|d| &d.status).collect::<Vec<_>>(),
        users.items.iter().map(|u| &u.status).collect::<Vec<_>>(),
    ))
    .expect("statuses as JSON");
    assert!(
        !statuses.contains(secret),
        "a status holds the secret: {statuses}"
    );
    let events = serde_json::to_string(&namespace_events(sc).await).expect("events as JSON");
    assert!(!events.contains(secret), "an Event holds the secret: {events}");
    assert!(
        !sc.operator.log().contains(secret),
        "the operator log holds the secret"
    );
}

/// Waits for a Warning Event regarding the SipDomain with `reason`.
async fn domain_event(sc: &Scenario, reason: &str) {
    sc.until(
        &format!("a Warning Event {reason} regarding SipDomain {DOMAIN}"),
        crate::scenario::WAIT,
        || async move {
            let events = namespace_events(sc).await;
            let found = events.iter().any(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.type_.as_deref() == Some("Warning")
                    && e.regarding
                        .as_ref()
                        .is_some_and(|r| r.kind.as_deref() == Some("SipDomain"))
            });
            if found {
                Ok(())
            } else {
                Err(crate::scenario::summarize_events(&events))
            }
        },
    )
    .await
}

#[tokio::test]
async fn a_missing_token_secret_stalls_and_its_creation_heals_at_once() {
    let kamailio = Kamailio::start();
    // Checked only every 10 minutes: healing within the wait proves the Secret's appearance
    // re-queues the domain.
    let sc = scenario("regtoken", "600", None).await;
    sc.apply(&registrar_domain(
        &sc,
        json!({"urls": [kamailio.rpc_url()], "tokenSecretRef": token_ref()}),
    ))
    .await;
    sc.apply(&user("alice")).await;

    let message = domain_stalled(&sc, reasons::REGISTRAR_TOKEN_NOT_FOUND).await;
    assert!(
        message.contains(&format!("{TOKEN_SECRET:?}"))
            && message.contains("does not exist")
            && message.contains("spec.registrar.kamailio.tokenSecretRef"),
        "{message}"
    );
    user_points_at_the_domain(&sc, "alice", &message).await;
    domain_event(&sc, reasons::REGISTRAR_TOKEN_NOT_FOUND).await;

    sc.apply(&secret(TOKEN_SECRET).string("token", kamailio.token()))
        .await;
    both_heal(&sc, "alice").await;
    shows_nowhere(&sc, kamailio.token()).await;
}

#[tokio::test]
async fn a_missing_token_key_stalls_and_adding_it_heals() {
    let kamailio = Kamailio::start();
    let sc = scenario("regkey", "1", None).await;
    sc.apply(&secret(TOKEN_SECRET).string("other", "not-the-token"))
        .await;
    sc.apply(&registrar_domain(
        &sc,
        json!({"urls": [kamailio.rpc_url()], "tokenSecretRef": token_ref()}),
    ))
    .await;
    sc.apply(&user("alice")).await;

    let message = domain_stalled(&sc, reasons::REGISTRAR_TOKEN_NOT_FOUND).await;
    assert!(
        message.contains("no key \"token\"") && message.contains("spec.registrar.kamailio.tokenSecretRef"),
        "{message}"
    );
    user_points_at_the_domain(&sc, "alice", &message).await;

    sc.apply(&secret(TOKEN_SECRET).string("token", kamailio.token()))
        .await;
    both_heal(&sc, "alice").await;
    shows_nowhere(&sc, kamailio.token()).await;
}

/// The host name the EndpointSlice gives for Kamailio (slices refuse loopback addresses); the
/// operator alone resolves it to 127.0.0.1 (see tests/registrar/scale_out.rs).
const HOST: &str = "kamailio.sip-test.internal";

#[tokio::test]
async fn a_missing_service_stalls_and_its_creation_heals() {
    let kamailio = Kamailio::start();
    let hosts = std::env::temp_dir().join(format!("sip-operator-hosts-{}", random_token()));
    let system = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    std::fs::write(&hosts, format!("{system}\n127.0.0.1 {HOST}\n")).expect("write the hosts file");
    let _cleanup = RemoveOnDrop(hosts.clone());
    let sc = scenario("regsvc", "1", Some(&hosts)).await;
    sc.apply(&secret(TOKEN_SECRET).string("token", kamailio.token()))
        .await;
    sc.apply(&registrar_domain(
        &sc,
        json!({"service": {"name": "kamailio", "portName": "rpc"}, "tokenSecretRef": token_ref()}),
    ))
    .await;
    sc.apply(&user("alice")).await;

    let message = domain_stalled(&sc, reasons::REGISTRAR_SERVICE_NOT_FOUND).await;
    assert!(
        message.contains(&format!("{}/kamailio", sc.namespace()))
            && message.contains("spec.registrar.kamailio.service"),
        "{message}"
    );
    user_points_at_the_domain(&sc, "alice", &message).await;

    // The Service without endpoints: Kamailio is not ready yet, which passes by itself; the
    // domain and the user are reconciling, not stalled.
    let kubectl_apply = |yaml: String| {
        let out = sc
            .ns
            .kubectl(&["apply", "--server-side", "-f", "-"])
            .output_with_stdin(&yaml);
        assert!(out.success, "apply: {}\n{yaml}", out.stderr);
    };
    kubectl_apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: kamailio}\n\
         spec: {ports: [{name: rpc, port: 5071, protocol: TCP}]}\n"
            .into(),
    );
    sc.wait_domain(DOMAIN, "Reconciling=True, Stalled=False, Ready=False", |d| {
        has_condition(
            d,
            reasons::RECONCILING,
            "True",
            reasons::REGISTRAR_ENDPOINTS_NOT_READY,
        ) && has_condition(d, reasons::STALLED, "False", reasons::NOT_STALLED)
            && has_condition(d, reasons::READY, "False", reasons::REGISTRAR_ENDPOINTS_NOT_READY)
    })
    .await;
    sc.wait_user("alice", "Reconciling=True, Stalled=False", |u| {
        condition(u, reasons::RECONCILING).is_some_and(|(s, _, _)| s == "True")
            && has_condition(u, reasons::STALLED, "False", reasons::NOT_STALLED)
    })
    .await;

    kubectl_apply(format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: kamailio-a\n  \
         labels: {{kubernetes.io/service-name: kamailio}}\naddressType: FQDN\n\
         endpoints: [{{addresses: [{HOST}], conditions: {{ready: true}}}}]\n\
         ports: [{{name: rpc, port: {port}, protocol: TCP}}]\n",
        port = kamailio.rpc_port()
    ));
    both_heal(&sc, "alice").await;
}

#[tokio::test]
async fn an_https_url_stalls_and_an_http_one_heals() {
    let kamailio = Kamailio::start();
    let sc = scenario("reghttps", "1", None).await;
    sc.apply(&secret(TOKEN_SECRET).string("token", kamailio.token()))
        .await;
    let https = kamailio.rpc_url().replacen("http://", "https://", 1);
    sc.apply(&registrar_domain(
        &sc,
        json!({"urls": [https], "tokenSecretRef": token_ref()}),
    ))
    .await;
    sc.apply(&user("alice")).await;

    let message = domain_stalled(&sc, reasons::REGISTRAR_URL_INVALID).await;
    assert!(
        message.contains("spec.registrar.kamailio.urls[0]") && message.contains("only http://"),
        "{message}"
    );
    user_points_at_the_domain(&sc, "alice", &message).await;

    sc.apply(&registrar_domain(
        &sc,
        json!({"urls": [kamailio.rpc_url()], "tokenSecretRef": token_ref()}),
    ))
    .await;
    both_heal(&sc, "alice").await;
}

/// Removes a file when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
