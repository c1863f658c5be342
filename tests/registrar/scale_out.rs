//! A scaled-out registrar: several Kamailio instances behind one Service (EndpointSlices the
//! test writes, as the EndpointSlice controller would for pods). Every ready endpoint holds
//! every user, an endpoint that appears gets a full sync, and registrations are merged.
use serde_json::json;

use crate::setup::Setup;
use crate::support::TestNamespace;
use crate::support::eventually;
use crate::support::kamailio::{Kamailio, random_token};
use crate::support::sipp::Registration;

/// The name the EndpointSlices give for the Kamailio instances. The API server refuses
/// loopback IPs in EndpointSlices ("may not be in the loopback range"; IPv4-mapped and
/// unspecified addresses too) and the test's servers listen on 127.0.0.1 only, so the slices
/// use addressType FQDN with this name, which the operator alone resolves to 127.0.0.1: it runs
/// with a hosts file of its own bind-mounted on /etc/hosts in a private mount namespace.
/// (nss_wrapper, preloaded instead, crashed the multi-threaded operator with "double free or
/// corruption" in about half the runs.)
const HOST: &str = "kamailio.sip-test.internal";

/// An EndpointSlice of Service `kamailio` with one ready endpoint whose port `rpc` is
/// `kamailio`'s RPC port.
fn slice(name: &str, kamailio: &Kamailio) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  \
         labels: {{kubernetes.io/service-name: kamailio}}\naddressType: FQDN\n\
         endpoints: [{{addresses: [{HOST}], conditions: {{ready: true}}}}]\n\
         ports: [{{name: rpc, port: {port}, protocol: TCP}}]\n",
        port = kamailio.rpc_port()
    )
}

fn holds(kamailio: &Kamailio, key: &str) -> bool {
    kamailio
        .rpc("htable.get", json!(["users", key]))
        .get("result")
        .is_some()
}

#[tokio::test]
async fn every_endpoint_behind_a_service_holds_every_user() {
    let token = random_token();
    let a = Kamailio::builder().token(&token).start();
    let b = Kamailio::builder().token(&token).start();
    let slices = format!("{}---\n{}", slice("kamailio-a", &a), slice("kamailio-b", &b));
    let service = "apiVersion: v1\nkind: Service\nmetadata: {name: kamailio}\n\
                   spec: {ports: [{name: rpc, port: 5071, protocol: TCP}]}\n";
    let hosts = std::env::temp_dir().join(format!("sip-operator-hosts-{}", random_token()));
    let system = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    std::fs::write(&hosts, format!("{system}\n127.0.0.1 {HOST}\n")).expect("write the hosts file");
    let s = Setup::with_registrar(
        "e2e-scale-out",
        vec![a, b],
        "      service: {name: kamailio, portName: rpc}\n",
        "",
        |ns: &TestNamespace| {
            let out = ns
                .kubectl(&["apply", "--server-side", "-f", "-"])
                .output_with_stdin(&format!("{service}---\n{slices}"));
            assert!(out.success, "Service and EndpointSlices: {}", out.stderr);
        },
        Some(&hosts),
    )
    .await;
    s.apply_user("alice", "", "");
    s.apply_user("bob", "", "");
    let alice = s.registrar_synced("alice", "True").await;
    s.registrar_synced("bob", "True").await;
    let synced = alice
        .status
        .as_ref()
        .and_then(|st| st.conditions.iter().find(|c| c.type_ == "RegistrarSynced"))
        .map(|c| c.message.clone());
    assert_eq!(
        synced.as_deref(),
        Some("the registrar holds the user on 2 endpoint(s)")
    );
    for k in &s.kamailios {
        for user in ["alice", "bob"] {
            assert!(
                holds(k, &format!("{user}@{}", s.fqdn)),
                "{user} on {}",
                k.rpc_url()
            );
        }
    }
    // A phone may land on either instance; the status merges what both report.
    let (alice_pw, bob_pw) = (s.password("alice").await, s.password("bob").await);
    let on = |k: &Kamailio, user: &str, pw: &str| {
        Registration::new(user, &s.fqdn, pw)
            .expires(300)
            .run(k.sip_addr())
            .status
    };
    assert_eq!(on(&s.kamailios[0], "alice", &alice_pw), 200);
    assert_eq!(on(&s.kamailios[1], "bob", &bob_pw), 200);
    eventually(
        "the domain to count both registered users",
        crate::setup::WAIT,
        || async {
            let d = s.domains.get("acme").await.ok()?;
            let st = d.status?;
            (st.registered_users == Some(2) && st.registrars.len() == 2).then_some(())
        },
    )
    .await;

    // The Service scales out: the new endpoint gets every user without any object changing.
    let c = Kamailio::builder().token(&token).start();
    s.apply(&slice("kamailio-c", &c));
    eventually(
        "the new endpoint to hold every user",
        crate::setup::WAIT,
        || async {
            ["alice", "bob"]
                .iter()
                .all(|u| holds(&c, &format!("{u}@{}", s.fqdn)))
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        on(&c, "alice", &alice_pw),
        200,
        "alice registers on the new instance"
    );
}
