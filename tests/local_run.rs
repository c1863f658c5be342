//! The README's local-run command works on this machine: it starts its own control plane and
//! Kamailio, applies examples/, registers alice's phone and shows it, and `down` stops it all.
use std::process::Command;

#[test]
fn run_local_applies_the_examples_and_stops_cleanly() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let state = std::env::temp_dir().join(format!("sip-operator-local-{}", std::process::id()));
    // Ports nobody else uses right now (the other tests run Kamailios of their own).
    let (sip_port, rpc_port, invite_port) = (free_port(), free_port(), free_port());
    let run = |arg: Option<&str>| {
        let out = Command::new(root.join("scripts/run-local.sh"))
            .args(arg)
            .env("SIP_OPERATOR_LOCAL_DIR", &state)
            .env("SIP_OPERATOR_LOCAL_SIP_PORT", sip_port.to_string())
            .env("SIP_OPERATOR_LOCAL_RPC_PORT", rpc_port.to_string())
            .env("SIP_OPERATOR_LOCAL_INVITE_PORT", invite_port.to_string())
            .output()
            .expect("run scripts/run-local.sh");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "run-local.sh {arg:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let up = run(None);
    let pids = std::fs::read_to_string(state.join("control-plane/pids")).expect("pids file");
    let kamailio = std::fs::read_to_string(state.join("kamailio.pid")).expect("kamailio.pid");
    let down_guard = scopeguard(|| {
        let _ = Command::new(root.join("scripts/run-local.sh"))
            .arg("down")
            .env("SIP_OPERATOR_LOCAL_DIR", &state)
            .status();
    });
    // The operator ran and every example user went Ready (the READY column says True).
    for user in ["alice", "berlin-hotline", "bob", "carol"] {
        let row = up
            .lines()
            // The table row (apply and wait print lines with the same prefix).
            .find(|l| l.starts_with(&format!("sipuser.sipoperator.io/{user} ")) && l.contains(" acme "))
            .unwrap_or_else(|| panic!("no row for {user}:\n{up}"));
        assert!(
            row.split_whitespace().any(|cell| cell == "True"),
            "{user} is not Ready: {row}"
        );
    }
    for want in [
        "sipdomain.sipoperator.io/acme",
        "sipprofile.sipoperator.io/supervisor",
        "sipuser.sipoperator.io/alice",
        "sipuser.sipoperator.io/berlin-hotline",
    ] {
        assert!(up.contains(want), "run-local output lacks {want}:\n{up}");
    }
    // examples/25's invite got its link on the local invite page.
    let invite = up
        .lines()
        // The table row (USER alice), not the line of the apply.
        .find(|l| {
            l.starts_with("sipuserinvite.sipoperator.io/alice-welcome ")
                && l.split_whitespace().nth(1) == Some("alice")
        })
        .unwrap_or_else(|| panic!("no row for the invite alice-welcome:\n{up}"));
    assert!(
        invite.split_whitespace().any(|cell| cell == "Issued"),
        "alice-welcome is not Issued: {invite}"
    );
    // EXPIRES is when the link dies (a future time kubectl prints as it is, not "<invalid>").
    assert!(
        invite
            .split_whitespace()
            .any(|cell| cell.starts_with("20") && cell.ends_with('Z') && cell.contains('T')),
        "alice-welcome's EXPIRES is not a timestamp: {invite}"
    );
    // alice's phone registered with the password from her Secret, and her status shows it.
    assert!(
        up.contains(&format!(
            "run-local: alice REGISTER at 127.0.0.1:{sip_port}: final=200"
        )),
        "no successful registration in:\n{up}"
    );
    let header = up
        .lines()
        .find(|l| l.starts_with("NAME") && l.contains("CONTACTS"))
        .unwrap_or_else(|| panic!("no sipusers table:\n{up}"));
    let alice = up
        .lines()
        .find(|l| l.starts_with("sipuser.sipoperator.io/alice ") && l.contains(" acme "))
        .expect("alice's row");
    let at = header.find("CONTACTS").expect("CONTACTS column");
    assert_eq!(
        alice.get(at..).and_then(|r| r.split_whitespace().next()),
        Some("1"),
        "alice's CONTACTS:\n{header}\n{alice}"
    );
    // Idempotent: a second run reuses the control plane.
    run(None);
    assert_eq!(
        std::fs::read_to_string(state.join("control-plane/pids")).expect("pids file"),
        pids
    );
    assert_eq!(
        std::fs::read_to_string(state.join("kamailio.pid")).expect("kamailio.pid"),
        kamailio,
        "the running Kamailio is reused"
    );

    drop(down_guard);
    let kamailio_pid = format!("kamailio {}", kamailio.trim());
    for line in pids.lines().chain([kamailio_pid.as_str()]) {
        let pid = line.split_whitespace().nth(1).expect("pid");
        // Gone, or a zombie waiting for its reaper: either way no longer running.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(") ")
            .next()
            .and_then(|rest| rest.split_whitespace().next());
        assert!(
            matches!(state, None | Some("Z") | Some("X")),
            "process {line} still runs after down: {stat}"
        );
    }
}

/// Runs `f` when dropped, so a failed assertion still stops the control plane.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// A port free for both UDP and TCP on 127.0.0.1 right now.
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
        let port = udp.local_addr().expect("local address").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
