//! The README's local-run command works on this machine: it starts its own control plane,
//! applies examples/ and shows them, and `down` stops it again.
use std::process::Command;

#[test]
fn run_local_applies_the_examples_and_stops_cleanly() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let state = std::env::temp_dir().join(format!("sip-operator-local-{}", std::process::id()));
    let run = |arg: Option<&str>| {
        let out = Command::new(root.join("scripts/run-local.sh"))
            .args(arg)
            .env("SIP_OPERATOR_LOCAL_DIR", &state)
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
    // Idempotent: a second run reuses the control plane.
    run(None);
    assert_eq!(
        std::fs::read_to_string(state.join("control-plane/pids")).expect("pids file"),
        pids
    );

    drop(down_guard);
    for line in pids.lines() {
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
