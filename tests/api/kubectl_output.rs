//! What a person sees: `kubectl get` tables with the printer columns, `kubectl get sip` over
//! the category, short names, and `kubectl explain` built from the field docs.
use crate::examples::apply_examples;
use crate::support::{ControlPlane, TestNamespace};

/// The table's header cells and rows, split on runs of spaces (cells never contain two).
fn table(out: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .expect("table header")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    (header, rows)
}

#[tokio::test]
async fn kubectl_get_shows_printer_columns() {
    let ns = TestNamespace::create("columns");
    apply_examples(&ns);

    let (header, _) = table(&ns.kubectl(&["get", "sipusers"]).ok());
    assert_eq!(
        header,
        [
            "NAME",
            "USERNAME",
            "DOMAIN",
            "EXTENSION",
            "PROFILE",
            "READY",
            "CONTACTS",
            "AGE"
        ]
    );
    // Spec-derived cells are there from the start; USERNAME/PROFILE/READY/CONTACTS come from
    // status, which the controller writes. Read them by column so blanks cannot shift cells.
    let cols = "custom-columns=NAME:.metadata.name,DOMAIN:.spec.domainRef,EXTENSION:.spec.extension";
    let (_, rows) = table(
        &ns.kubectl(&["get", "sipusers", "-o", cols, "--sort-by=.metadata.name"])
            .ok(),
    );
    assert!(
        rows.contains(&vec!["alice".into(), "acme".into(), "7001".into()]),
        "{rows:?}"
    );
    assert!(
        rows.contains(&vec!["berlin-hotline".into(), "acme".into(), "<none>".into()]),
        "{rows:?}"
    );
    // The server-side table (what `kubectl get` prints) carries the spec cells too.
    let wide = ns.kubectl(&["get", "sipuser", "alice", "--no-headers"]).ok();
    assert!(wide.contains("acme") && wide.contains("7001"), "{wide}");

    let (header, rows) = table(&ns.kubectl(&["get", "sipd"]).ok());
    assert_eq!(header, ["NAME", "DOMAIN", "USERS", "REGISTERED", "READY", "AGE"]);
    assert_eq!(
        rows[0][..2],
        ["acme".to_string(), "acme.sip.example.com".to_string()]
    );

    let (header, rows) = table(&ns.kubectl(&["get", "sipp", "--sort-by=.metadata.name"]).ok());
    assert_eq!(header, ["NAME", "USERS", "CAPACITY", "READY", "AGE"]);
    assert_eq!(
        rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["agent", "supervisor"]
    );
    let (header, _) = table(&ns.kubectl(&["get", "sipp", "-o", "wide"]).ok());
    assert!(
        header.contains(&"FLAGS".to_string()),
        "FLAGS shows with -o wide: {header:?}"
    );

    // The category lists all three kinds.
    let all = ns.kubectl(&["get", "sip", "-o", "name"]).ok();
    for want in [
        "sipdomain.sipoperator.io/acme",
        "sipprofile.sipoperator.io/agent",
        "sipuser.sipoperator.io/alice",
    ] {
        assert!(
            all.lines().any(|l| l == want),
            "kubectl get sip lacks {want}:\n{all}"
        );
    }
    let short = ns.kubectl(&["get", "sipu", "-o", "name"]).ok();
    assert_eq!(
        short.lines().count(),
        5,
        "five example users via the short name:\n{short}"
    );
}

#[tokio::test]
async fn kubectl_explain_reads_the_field_docs() {
    let kubectl = ControlPlane::shared().kubectl();
    let explain = |what: &str| kubectl.run(&["explain", what]).ok();

    let user = explain("sipuser");
    assert!(user.contains("A SIP user (SIP account)"), "{user}");
    let credentials = explain("sipuser.spec.credentials");
    for want in [
        "Where the password comes from",
        "passwordSecretRef",
        "secretName",
        "generated",
    ] {
        assert!(
            credentials.contains(want),
            "explain sipuser.spec.credentials lacks {want:?}:\n{credentials}"
        );
    }
    let username = explain("sipuser.spec.username");
    assert!(
        username.contains("RFC 3261") && username.contains("Immutable"),
        "{username}"
    );
    let domain = explain("sipdomain.spec.passwordPolicy");
    assert!(
        domain.contains("characterSet") && domain.contains("16 to 128"),
        "{domain}"
    );
    let profile = explain("sipprofile.spec.capacity");
    assert!(profile.contains("ProfileCapacityExceeded"), "{profile}");
}

#[tokio::test]
async fn crds_install_without_api_server_warnings() {
    let out = ControlPlane::shared()
        .kubectl()
        .run(&[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--force-conflicts",
            "-f",
        ])
        .arg(crate::support::repo_path("crds"))
        .output();
    assert!(out.success, "{}", out.stderr);
    assert!(
        !out.stderr.contains("Warning"),
        "the API server warned about the CRDs:\n{}",
        out.stderr
    );
}
