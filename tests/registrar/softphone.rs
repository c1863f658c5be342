//! A real softphone configured only from the credentials Secret (issue 13, part 1): Debian's
//! `linphonec` (liblinphone 5.1) loads the Secret's `linphone.xml` as its remote-provisioning
//! document (`[misc] config-uri=file://…`) and REGISTERs against the real Kamailio with the
//! shipped config, with the operator binary and the API server running; the SipUser's status
//! then counts the contact and names Linphone's user agent, and a call to the account's
//! extension (SIPp as a colleague) rings it and is answered. The rc file beside the document
//! only keeps the phone on 127.0.0.1 and its databases in a throwaway home: no account
//! setting comes from anywhere but the Secret.
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use sip_operator::api::SipUser;
use sip_operator::credentials::secret_value;

use crate::setup::{Setup, WAIT};
use crate::support::eventually;
use crate::support::kamailio::Kamailio;

/// `linphonec`; `SIP_OPERATOR_TEST_LINPHONEC` overrides it.
const LINPHONEC: &str = "/usr/bin/linphonec";

/// One running linphonec, stopped by its PID when dropped.
struct Linphone {
    child: Child,
    stdin: Option<ChildStdin>,
    dir: PathBuf,
}

impl Linphone {
    /// Starts linphonec provisioned with `document` (a `linphone.xml` from a Secret).
    fn start(name: &str, document: &str) -> Linphone {
        let dir = std::env::temp_dir().join(format!(
            "sip-operator-linphone-{}-{name}-{}",
            std::process::id(),
            &crate::support::kamailio::random_token()[..8]
        ));
        // liblinphone refuses to start (before provisioning) when it cannot open its
        // database under $HOME/.local/share/linphone.
        std::fs::create_dir_all(dir.join(".local/share/linphone")).expect("linphone home");
        let document_path = dir.join("linphone.xml");
        std::fs::write(&document_path, document).expect("write linphone.xml");
        let rc = dir.join("linphonerc");
        std::fs::write(
            &rc,
            format!(
                "[misc]\nconfig-uri=file://{}\n[sip]\nbind_address=127.0.0.1\nsip_port=-1\nsip_tcp_port=-1\n",
                document_path.display()
            ),
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

    /// What linphonec printed (its console: registration states).
    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout.txt")).unwrap_or_default()
    }

    /// Its liblinphone log (the SIP messages).
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("linphone.log")).unwrap_or_default();
        crate::support::tail(&log, 60)
    }

    /// Waits until liblinphone logs its account registered (the registrar answered 200; its
    /// console does not print registration states when not on a terminal).
    async fn registered(&self) {
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
    fn stop(&mut self) {
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

impl Setup {
    async fn secret_of(&self, user: &str) -> Secret {
        self.secrets
            .get(&format!("{user}-sip-credentials"))
            .await
            .expect("credentials Secret")
    }

    /// Waits until `user`'s status counts `contacts` registered contacts and, when any,
    /// names Linphone as a user agent.
    async fn contacts(&self, user: &str, contacts: i32) -> SipUser {
        eventually(&format!("{user}: CONTACTS {contacts}"), WAIT, || async {
            let u = self.users.get_opt(user).await.ok().flatten()?;
            let r = u.status.as_ref()?.registration.as_ref()?;
            (r.contacts == contacts
                && (contacts == 0 || r.user_agents.iter().any(|a| a.starts_with("Linphone"))))
            .then_some(u)
        })
        .await
    }
}

#[tokio::test]
async fn linphone_provisioned_from_the_secret_registers_as_the_account_and_as_a_device() {
    let kamailio = Kamailio::start();
    let port = kamailio.sip_port();
    let connection =
        format!("  connection:\n    host: 127.0.0.1\n    port: {port}\n    transports: [UDP, TCP]\n");
    let s = Setup::with("e2e-softphone", kamailio, &connection).await;
    s.apply_user(
        "alice",
        "  displayName: \"Alice <Example> & Co\"\n  extension: \"7001\"\n",
        "",
    );
    s.apply_user("bob", "", "");
    s.apply_user("dana", "  devices:\n  - {name: desk}\n", "");
    s.registrar_synced("alice", "True").await;
    s.registrar_synced("bob", "True").await;
    s.registrar_synced("dana", "True").await;

    // The account itself, over UDP (the first transport).
    let secret = s.secret_of("alice").await;
    assert_eq!(
        secret_value(&secret, "registrarUri"),
        Some(format!("sip:127.0.0.1:{port};transport=udp"))
    );
    let document = secret_value(&secret, "linphone.xml").expect("linphone.xml");
    let mut phone = Linphone::start("alice", &document);
    phone.registered().await;
    let alice = s.contacts("alice", 1).await;
    assert_eq!(
        alice
            .status
            .as_ref()
            .and_then(|st| st.registration.as_ref())
            .map(|r| r.contacts),
        Some(1),
        "CONTACTS 1"
    );
    let table = s.ns.kubectl(&["get", "sipuser", "alice"]).ok();
    let rows = crate::support::kubectl::table_by_header(&table);
    assert_eq!(
        rows.first().and_then(|r| r.get("CONTACTS")).map(String::as_str),
        Some("1"),
        "{table}"
    );
    // A colleague dials alice's extension: the softphone rings and (auto-answering) takes it.
    let bob_password = s.password("bob").await;
    let call =
        crate::support::sipp::Call::new(s.kamailio().sip_addr(), "bob", &s.fqdn, &bob_password, "7001").run();
    assert_eq!(
        (call.status, call.hung_up),
        (200, true),
        "the call to 7001 is answered by linphonec and hung up:\n{}",
        phone.log_tail()
    );
    let log = std::fs::read_to_string(phone.dir.join("linphone.log")).unwrap_or_default();
    assert!(
        log.contains("LinphoneCallIncomingReceived"),
        "linphonec saw the incoming call:\n{}",
        phone.log_tail()
    );
    phone.stop();

    // TCP first now: the Secrets are rewritten, and a device's document registers over TCP
    // as `dana#desk` on dana's address.
    let out =
        s.ns.kubectl(&[
            "patch",
            "sipdomain",
            "acme",
            "--type=merge",
            "-p",
            r#"{"spec":{"connection":{"transports":["TCP","UDP"]}}}"#,
        ])
        .output();
    assert!(out.success, "{}", out.stderr);
    let dana_secret = eventually("dana's Secret provisions TCP", WAIT, || async {
        let secret = s.secrets.get_opt("dana-sip-credentials").await.ok().flatten()?;
        (secret_value(&secret, "transport").as_deref() == Some("tcp")).then_some(secret)
    })
    .await;
    let desk = secret_value(&dana_secret, "devices.desk.linphone.xml").expect("the device's document");
    assert!(
        desk.contains(&format!("sip:127.0.0.1:{port};transport=tcp")),
        "{desk}"
    );
    assert!(
        desk.contains("<entry name=\"userid\">dana#desk</entry>"),
        "{desk}"
    );
    let desk_phone = Linphone::start("dana-desk", &desk);
    desk_phone.registered().await;
    let dana = s.contacts("dana", 1).await;
    let devices = &dana.status.as_ref().expect("status").devices;
    assert_eq!(
        devices
            .iter()
            .map(|d| (d.name.as_str(), d.contacts))
            .collect::<Vec<_>>(),
        [("desk", 1)],
        "the contact is the desk phone's"
    );
}
