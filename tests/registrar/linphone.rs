//! Debian's `linphonec` (liblinphone 5.1) as a test's softphone: provisioned from a document
//! (`[misc] config-uri=file://…`) or from a URL (as a scanned QR code gives it), kept on
//! 127.0.0.1 with its databases in a throwaway home, stopped by its PID.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::setup::WAIT;

/// `linphonec`; `SIP_OPERATOR_TEST_LINPHONEC` overrides it.
const LINPHONEC: &str = "/usr/bin/linphonec";

/// One running linphonec, stopped by its PID when dropped.
pub struct Linphone {
    child: Child,
    stdin: Option<ChildStdin>,
    dir: PathBuf,
}

impl Linphone {
    /// Starts linphonec provisioned with `document` (a `linphone.xml` from a Secret).
    pub fn start(name: &str, document: &str) -> Linphone {
        let dir = home(name);
        let document_path = dir.join("linphone.xml");
        std::fs::write(&document_path, document).expect("write linphone.xml");
        Self::launch(
            dir,
            &format!("config-uri=file://{}\n", document_path.display()),
            "",
        )
    }

    /// Starts linphonec provisioned from `url` (HTTPS, as a phone app's scanner gets it from
    /// a QR code), trusting the certificate in `root_ca`.
    pub fn start_from_url(name: &str, url: &str, root_ca: &Path) -> Linphone {
        Self::launch(
            home(name),
            &format!("config-uri={url}\n"),
            &format!("root_ca={}\n", root_ca.display()),
        )
    }

    /// Runs linphonec in `dir` with `misc` and `sip` lines added to its rc file: nothing but
    /// the loopback address, and no databases outside `dir`.
    fn launch(dir: PathBuf, misc: &str, sip: &str) -> Linphone {
        let rc = dir.join("linphonerc");
        std::fs::write(
            &rc,
            format!("[misc]\n{misc}[sip]\n{sip}bind_address=127.0.0.1\nsip_port=-1\nsip_tcp_port=-1\n"),
        )
        .expect("write linphonerc");
        let out = std::fs::File::create(dir.join("stdout.txt")).expect("stdout file");
        let log = dir.join("linphone.log");
        let bin = std::env::var("SIP_OPERATOR_TEST_LINPHONEC").unwrap_or_else(|_| LINPHONEC.into());
        let mut child = Command::new(bin)
            .arg("-c")
            .arg(&rc)
            // -a: answer incoming calls, so a call that rang it ends with its 200.
            .args(["-a", "-d", "5", "-l"])
            .arg(&log)
            .env("HOME", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out.try_clone().expect("clone")))
            .stderr(Stdio::from(out))
            .spawn()
            .expect(
                "start linphonec (Debian's linphone-cli; tests/control-plane/install-deps.sh installs it)",
            );
        let stdin = child.stdin.take();
        Linphone { child, stdin, dir }
    }

    /// Its liblinphone log, whole.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("linphone.log")).unwrap_or_default()
    }

    /// Its configuration file as liblinphone left it (after [`Linphone::stop`]: as saved).
    pub fn config(&self) -> String {
        std::fs::read_to_string(self.dir.join("linphonerc")).unwrap_or_default()
    }

    /// What linphonec printed (its console: registration states).
    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout.txt")).unwrap_or_default()
    }

    /// The end of its liblinphone log (the SIP messages).
    pub fn log_tail(&self) -> String {
        crate::support::tail(&self.log(), 60)
    }

    /// Waits until liblinphone logs its account registered (the registrar answered 200; its
    /// console does not print registration states when not on a terminal).
    pub async fn registered(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = std::fs::read_to_string(self.dir.join("linphone.log")).unwrap_or_default();
            if log.contains("to [LinphoneRegistrationOk]") {
                assert!(log.contains("SIP/2.0 200 OK"), "{}", self.log_tail());
                return;
            }
            assert!(
                !log.contains("to [LinphoneRegistrationFailed]"),
                "linphonec's registration failed:\n{}\n{}",
                self.output(),
                self.log_tail()
            );
            assert!(
                Instant::now() < deadline,
                "linphonec did not register within {WAIT:?}:\n{}\n{}",
                self.output(),
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops linphonec: `quit` on its console, then SIGKILL to its PID after 5 s.
    pub fn stop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"quit\n");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A throwaway home for one linphonec: liblinphone refuses to start (before provisioning)
/// when it cannot open its database under `$HOME/.local/share/linphone`.
fn home(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sip-operator-linphone-{}-{name}-{}",
        std::process::id(),
        &crate::support::kamailio::random_token()[..8]
    ));
    std::fs::create_dir_all(dir.join(".local/share/linphone")).expect("linphone home");
    dir
}

impl Drop for Linphone {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("linphonec files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
