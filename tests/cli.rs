//! The binary's command line: `--help` documents every flag with its environment variable,
//! `--version` answers, a bad flag value names the flag and exits non-zero, and a cluster
//! without the CRDs gets told how to install them (against a stand-in API server that knows
//! no sip-operator kinds: the one step under test is the start-up check).
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;

fn operator(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sip-operator"))
        .args(args)
        .env_remove("SIP_OPERATOR_NAMESPACE")
        .output()
        .expect("run sip-operator");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_documents_every_flag_with_its_environment_variable() {
    let (code, help, _) = operator(&["--help"]);
    assert_eq!(code, Some(0));
    let documented = [
        ("--namespace", "SIP_OPERATOR_NAMESPACE"),
        ("--http-addr", "SIP_OPERATOR_HTTP_ADDR"),
        ("--lease-name", "SIP_OPERATOR_LEASE_NAME"),
        ("--lease-namespace", "POD_NAMESPACE"),
        ("--lease-duration-seconds", "SIP_OPERATOR_LEASE_DURATION_SECONDS"),
        (
            "--registrar-check-interval-seconds",
            "SIP_OPERATOR_REGISTRAR_CHECK_INTERVAL_SECONDS",
        ),
        (
            "--auth-failure-warning-threshold",
            "SIP_OPERATOR_AUTH_FAILURE_WARNING_THRESHOLD",
        ),
        ("--invite-listen", "SIP_OPERATOR_INVITE_LISTEN"),
        ("--invite-url", "SIP_OPERATOR_INVITE_URL"),
        ("--invite-tls-cert", "SIP_OPERATOR_INVITE_TLS_CERT"),
        ("--invite-tls-key", "SIP_OPERATOR_INVITE_TLS_KEY"),
        ("--identity", "POD_NAME"),
        ("--log-format", "SIP_OPERATOR_LOG_FORMAT"),
        ("--log-level", "SIP_OPERATOR_LOG"),
    ];
    // A new flag must join the list (and get an environment variable).
    for line in help.lines().map(str::trim_start) {
        let flag = line.split_whitespace().next().unwrap_or_default();
        if flag.starts_with("--") && !["--help", "--version"].contains(&flag) {
            assert!(
                documented.iter().any(|(f, _)| *f == flag),
                "{flag} is not checked here"
            );
        }
    }
    for (flag, env) in documented {
        let block: String = help
            .split("\n  -")
            .find(|b| b.contains(&flag[1..]))
            .unwrap_or_else(|| panic!("{flag} is not in --help:\n{help}"))
            .to_string();
        assert!(
            block.contains(&format!("[env: {env}")),
            "{flag} without [env: {env}]:\n{block}"
        );
    }
}

#[test]
fn version_is_printed() {
    let (code, out, _) = operator(&["--version"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), format!("sip-operator {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_bad_value_names_the_flag_and_exits_non_zero() {
    let (code, _, err) = operator(&["--lease-duration-seconds", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--lease-duration-seconds"), "{err}");
    let (code, _, err) = operator(&["--log-format", "yaml"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--log-format"), "{err}");
}

#[test]
fn missing_crds_are_reported_with_how_to_install_them() {
    // A stand-in API server that answers every request 404, as one without the CRDs does for
    // the sip-operator kinds.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"the server could not find the requested resource"}"#;
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let kubeconfig =
        std::env::temp_dir().join(format!("sip-operator-nocrd-{}.kubeconfig", std::process::id()));
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"http://127.0.0.1:{port}\"}}}}]\n\
             users: [{{name: u, user: {{}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"
        ),
    )
    .expect("write kubeconfig");
    let out = Command::new(env!("CARGO_BIN_EXE_sip-operator"))
        .args(["--http-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .expect("run sip-operator");
    let _ = std::fs::remove_file(&kubeconfig);
    let err = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "it must not start without its CRDs:\n{err}"
    );
    assert!(
        err.contains("sipdomains.sipoperator.io is not installed")
            && err.contains("kubectl apply --server-side -f crds/"),
        "{err}"
    );
}
