//! Real SIP clients for the registrar tests: SIPp (Debian package `sip-tester`) running the
//! scenarios in `tests/support/sipp/`:
//! - `register.xml` REGISTERs as a phone does (REGISTER, 401 challenge, REGISTER with digest
//!   credentials) and reports the final status code ([`Registration`], [`Sipp::register_expect`],
//!   [`Sipp::register_for`]);
//! - `answer.xml` is a registered phone answering one call ([`Sipp::answer_one_call`]);
//! - `ring.xml` is a registered phone that rings and is cancelled, as the phones that did not
//!   answer a forked call are ([`Sipp::ring_until_cancelled`]);
//! - `call.xml` calls another user through the registrar, with the 407 challenge
//!   ([`Call`], [`Sipp::call`]).
//!
//! A listening phone ([`Answerer`], [`Ringer`]) also tells whether an INVITE reached it, for
//! "this phone must not ring" ([`Answerer::assert_not_called`]).
//!
//! Every run is one short SIPp process on 127.0.0.1 with a local port of its own, so tests
//! can run in parallel; its logs go to a temporary directory that is kept only on failure.
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::kamailio::free_port;
use super::repo_path;

/// The SIPp binary; `SIP_OPERATOR_TEST_SIPP` overrides it.
pub const SIPP_BIN: &str = "sipp";
/// The REGISTER scenario.
pub const REGISTER_SCENARIO: &str = "tests/support/sipp/register.xml";
/// A phone answering one call (server mode).
pub const ANSWER_SCENARIO: &str = "tests/support/sipp/answer.xml";
/// A phone that rings until its call is cancelled (server mode).
pub const RING_SCENARIO: &str = "tests/support/sipp/ring.xml";
/// A phone calling another user through the registrar.
pub const CALL_SCENARIO: &str = "tests/support/sipp/call.xml";
/// SIPp's own global timeout for one registration or call (it retransmits over UDP
/// meanwhile).
pub const SIPP_TIMEOUT: Duration = Duration::from_secs(10);
/// SIPp's global timeout for a listening phone: from the moment it listens, through the
/// registrations and calls of the test, to the end of its call (or of
/// [`Answerer::assert_not_called`]'s window).
pub const PHONE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a listening phone may take to bind its port.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Hard limit on one SIPp process, after which it is killed.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);
/// SIPp's exit code when it could not bind its socket (the port was taken meanwhile).
const EXIT_BIND_FAILED: i32 = 254;

/// The SIP transport SIPp uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What a registration attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOutcome {
    /// The final status code of the exchange: 200, 403, 503 (too many contacts), ...
    pub status: u16,
    /// Whether the first REGISTER was challenged with 401 before credentials were sent.
    pub challenged: bool,
    /// The local SIP port SIPp used.
    pub local_port: u16,
    /// The Contact SIPp registered, as Kamailio's `ul.dump` shows it.
    pub contact: String,
}

/// One REGISTER exchange to run with SIPp; [`Registration::run`] runs it.
#[derive(Clone)]
pub struct Registration {
    username: String,
    domain: String,
    auth_username: Option<String>,
    password: String,
    expires: u32,
    local_port: Option<u16>,
    transport: Transport,
    source: Ipv4Addr,
}

impl std::fmt::Debug for Registration {
    // The password stays out of test output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("username", &self.username)
            .field("domain", &self.domain)
            .field("auth_username", &self.auth_username)
            .field("expires", &self.expires)
            .field("local_port", &self.local_port)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// `sip:username@domain` with `password`, over UDP, `Expires: 0` (nothing stays
    /// registered: a pure credentials check) from a fresh local port.
    pub fn new(username: &str, domain: &str, password: &str) -> Self {
        Self {
            username: username.to_string(),
            domain: domain.to_string(),
            auth_username: None,
            password: password.to_string(),
            expires: 0,
            local_port: None,
            transport: Transport::Udp,
            source: Ipv4Addr::LOCALHOST,
        }
    }

    /// Sends from another loopback address (e.g. 127.0.0.2), as a second machine would.
    pub fn source(mut self, address: Ipv4Addr) -> Self {
        self.source = address;
        self
    }

    /// The digest username, when it differs from the AOR's user (default: the same).
    pub fn auth_username(mut self, name: &str) -> Self {
        self.auth_username = Some(name.to_string());
        self
    }

    /// The Expires asked for: the contact stays registered that long.
    pub fn expires(mut self, seconds: u32) -> Self {
        self.expires = seconds;
        self
    }

    /// A fixed local port, so that the Contact is the same as in an earlier registration
    /// (a refresh rather than a new contact).
    pub fn local_port(mut self, port: u16) -> Self {
        self.local_port = Some(port);
        self
    }

    /// SIP over TCP instead of UDP.
    pub fn tcp(mut self) -> Self {
        self.transport = Transport::Tcp;
        self
    }

    /// Runs SIPp against the registrar at `registrar` and returns what it got. Panics (with
    /// SIPp's logs) when the exchange did not end with a final status.
    pub fn run(&self, registrar: SocketAddr) -> RegisterOutcome {
        let mut last_failure = String::new();
        for _ in 0..3 {
            let port = self.local_port.unwrap_or_else(|| free_port(true));
            match self.run_once(registrar, port) {
                Ok(outcome) => return outcome,
                Err((retry, failure)) => {
                    last_failure = failure;
                    if !retry || self.local_port.is_some() {
                        break;
                    }
                }
            }
        }
        panic!("SIPp REGISTER {self:?} to {registrar}: {last_failure}");
    }

    /// One SIPp process; `Err((retry, why))`.
    fn run_once(&self, registrar: SocketAddr, port: u16) -> Result<RegisterOutcome, (bool, String)> {
        // The injection file carries the AOR and Expires; see the scenario for why the
        // credentials are given with -au/-ap.
        let csv = format!(
            "SEQUENTIAL\n{};{};{};\n",
            self.username, self.domain, self.expires
        );
        let auth_username = self.auth_username.as_deref().unwrap_or(&self.username);
        let mut sipp = SippProcess::spawn(
            REGISTER_SCENARIO,
            Some(registrar),
            Some(&csv),
            &["-au", auth_username, "-ap", &self.password],
            Local {
                ip: self.source,
                port,
                transport: self.transport,
            },
            SIPP_TIMEOUT,
        );
        let status = sipp.wait();
        let actions = sipp.actions();
        match last_code(&actions, "final=") {
            Some(status) => {
                sipp.clean_up();
                let transport = if self.transport == Transport::Tcp {
                    "TCP"
                } else {
                    "UDP"
                };
                Ok(RegisterOutcome {
                    status,
                    challenged: actions.lines().any(|l| l.trim() == "challenge=401"),
                    local_port: port,
                    contact: format!(
                        "sip:{}@{}:{port};transport={transport}",
                        self.username, self.source
                    ),
                })
            }
            None => {
                let retry = status.and_then(|s| s.code()) == Some(EXIT_BIND_FAILED);
                Err((
                    retry,
                    sipp.failure(&format!("no final status (SIPp exit {status:?})")),
                ))
            }
        }
    }
}

/// One SIPp process on 127.0.0.1 in a scratch directory of its own (kept only on failure).
struct SippProcess {
    child: Option<std::process::Child>,
    dir: PathBuf,
    status: Option<ExitStatus>,
}

/// Where a SIPp process sends from (and listens on).
#[derive(Clone, Copy)]
struct Local {
    ip: Ipv4Addr,
    port: u16,
    transport: Transport,
}

impl SippProcess {
    /// Starts SIPp with `scenario` against `remote` (none: server mode), the injection file
    /// `csv`, `extra` arguments, at `local`; SIPp gives up after `timeout`.
    fn spawn(
        scenario: &str,
        remote: Option<SocketAddr>,
        csv: Option<&str>,
        extra: &[&str],
        local: Local,
        timeout: Duration,
    ) -> SippProcess {
        let Local {
            ip: local_ip,
            port,
            transport,
        } = local;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sip-operator-sipp-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let path = |name: &str| dir.join(name).display().to_string();
        let bin = std::env::var("SIP_OPERATOR_TEST_SIPP").unwrap_or_else(|_| SIPP_BIN.to_string());
        let stdout = std::fs::File::create(dir.join("stdout.txt")).expect("create SIPp stdout file");
        let mut cmd = Command::new(&bin);
        if let Some(remote) = remote {
            cmd.arg(remote.to_string());
        }
        cmd.args(["-sf", &repo_path(scenario).display().to_string()]);
        if let Some(csv) = csv {
            std::fs::write(dir.join("injection.csv"), csv).expect("write the SIPp injection file");
            cmd.args(["-inf", &path("injection.csv")]);
        }
        let transport = if transport == Transport::Tcp { "t1" } else { "u1" };
        cmd.args(extra)
            .args(["-m", "1", "-t", transport])
            // Everything on the loopback interface: SIP, and the control and media sockets
            // SIPp opens anyway (it moves to the next port when one is taken).
            .args([
                "-i",
                &local_ip.to_string(),
                "-bind_local",
                "-p",
                &port.to_string(),
            ])
            .args(["-ci", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-timeout", &format!("{}s", timeout.as_secs()), "-timeout_error"])
            .args(["-nostdin"])
            .args(["-trace_logs", "-log_file", &path("actions.log")])
            .args(["-trace_err", "-error_file", &path("errors.log")])
            .args(["-trace_msg", "-message_file", &path("messages.log")])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(stdout.try_clone().expect("clone SIPp stdout file"))
            .stderr(stdout);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("spawn {bin}: {e} (run tests/control-plane/install-deps.sh: Debian package sip-tester)")
        });
        SippProcess {
            child: Some(child),
            dir,
            status: None,
        }
    }

    /// Waits for SIPp to exit (killing it after [`PROCESS_TIMEOUT`]); `None` if it was killed.
    fn wait(&mut self) -> Option<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return self.status;
        };
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        self.status = loop {
            if let Some(status) = child.try_wait().expect("wait for SIPp") {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.status
    }

    /// Starts SIPp in server mode with `scenario` on local `port` (over UDP) and returns once
    /// it listens there.
    fn listen(scenario: &str, port: u16) -> SippProcess {
        let mut sipp = SippProcess::spawn(
            scenario,
            None,
            None,
            &[],
            Local {
                ip: Ipv4Addr::LOCALHOST,
                port,
                transport: Transport::Udp,
            },
            PHONE_TIMEOUT,
        );
        // Listening means the port is taken: poll until it is (with a deadline).
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        while UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            if let Some(status) = sipp.exited() {
                panic!(
                    "{}",
                    sipp.failure(&format!(
                        "SIPp exited ({status}) before listening on 127.0.0.1:{port}"
                    ))
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}",
                sipp.failure(&format!(
                    "SIPp did not listen on 127.0.0.1:{port} within {LISTEN_TIMEOUT:?}"
                ))
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sipp
    }

    /// The exit status if SIPp has exited, without waiting.
    fn exited(&mut self) -> Option<ExitStatus> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait().expect("wait for SIPp")
        {
            self.child = None;
            self.status = Some(status);
        }
        self.status
    }

    /// Kills SIPp if it still runs. Its logs stay complete: SIPp flushes every line it traces.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            self.status = child.wait().ok();
        }
    }

    /// What the scenario's <log> actions wrote.
    fn actions(&self) -> String {
        std::fs::read_to_string(self.dir.join("actions.log")).unwrap_or_default()
    }

    /// Every SIP message SIPp sent and received so far (`-trace_msg`).
    fn messages(&self) -> String {
        std::fs::read_to_string(self.dir.join("messages.log")).unwrap_or_default()
    }

    fn clean_up(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// A failure description with SIPp's logs (which hold digest responses, never the
    /// password); the directory is kept for a closer look.
    fn failure(&self, what: &str) -> String {
        let read = |name: &str| -> String {
            let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "{what}; logs kept in {}\n--- actions\n{}\n--- errors\n{}\n--- messages\n{}\n--- output\n{}",
            self.dir.display(),
            read("actions.log"),
            read("errors.log"),
            read("messages.log"),
            read("stdout.txt")
        )
    }
}

impl Drop for SippProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The code of the last `<prefix><code>` line of a scenario's <log> output.
fn last_code(actions: &str, prefix: &str) -> Option<u16> {
    actions
        .lines()
        .filter_map(|l| l.trim().strip_prefix(prefix))
        .filter_map(|code| code.trim().parse::<u16>().ok())
        .next_back()
}

/// How many `method` requests SIPp's message log (`-trace_msg`) shows as received, with
/// retransmissions: every message there follows a line such as `UDP message received [451]
/// bytes :` or `UDP message sent (341 bytes):`, and starts with its request or status line.
fn received_requests(messages: &str, method: &str) -> usize {
    let request_line = format!("{method} ");
    let mut lines = messages.lines();
    let mut count = 0;
    while let Some(line) = lines.next() {
        if !line.contains(" message received ") {
            continue;
        }
        let first = lines.by_ref().map(str::trim).find(|l| !l.is_empty());
        if first.is_some_and(|l| l.starts_with(&request_line)) {
            count += 1;
        }
    }
    count
}

/// A listening phone (SIPp in server mode on the port its contact was registered from), for
/// what [`Answerer`] and [`Ringer`] share.
struct Phone {
    sipp: SippProcess,
    port: u16,
}

impl Phone {
    /// See [`Answerer::called`].
    fn called(&self) -> bool {
        received_requests(&self.sipp.messages(), "INVITE") > 0
    }

    /// See [`Answerer::assert_not_called`].
    fn assert_not_called(mut self, within: Duration) {
        let port = self.port;
        let rang = |phone: &Phone| {
            phone.sipp.failure(&format!(
                "the phone on 127.0.0.1:{port} must not ring, but an INVITE reached it"
            ))
        };
        let deadline = Instant::now() + within;
        loop {
            assert!(!self.called(), "{}", rang(&self));
            if let Some(status) = self.sipp.exited() {
                // A phone that no longer listens proves nothing about the rest of the window.
                panic!(
                    "{}",
                    self.sipp.failure(&format!(
                        "the phone on 127.0.0.1:{port} stopped listening ({status}) before its \
                         {within:?} window was over"
                    ))
                );
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Stopped, its log is final: one last look.
        self.sipp.kill();
        assert!(!self.called(), "{}", rang(&self));
        self.sipp.clean_up();
    }
}

/// A registered phone waiting for one call: SIPp in server mode (`answer.xml`) on the port
/// its contact was registered from. Start it with [`Sipp::answer_one_call`].
pub struct Answerer {
    phone: Phone,
}

impl Answerer {
    /// The local port it listens on.
    pub fn port(&self) -> u16 {
        self.phone.port
    }

    /// Whether an INVITE has reached it so far (SIPp's message log, which it flushes per
    /// message): once the caller got its final answer, this tells whether the call rang here.
    pub fn called(&self) -> bool {
        self.phone.called()
    }

    /// Waits for the call to end; true when it was answered and hung up by the caller.
    /// Panics with SIPp's logs when not.
    pub fn wait_answered(mut self) -> bool {
        let sipp = &mut self.phone.sipp;
        let status = sipp.wait();
        let actions = sipp.actions();
        let answered = actions.lines().any(|l| l.trim() == "answered=200");
        let hung_up = actions.lines().any(|l| l.trim() == "bye=200");
        assert!(
            answered && hung_up,
            "{}",
            sipp.failure(&format!(
                "the call was not answered and hung up (SIPp exit {status:?})"
            ))
        );
        sipp.clean_up();
        true
    }

    /// "This phone must not ring": call it once the call that must not reach this phone has
    /// ended. Keeps listening for `within` more and then stops the phone; panics with SIPp's
    /// logs when an INVITE reached it at any time since it listened, or when it stopped
    /// listening (its [`PHONE_TIMEOUT`]) before the window was over.
    pub fn assert_not_called(self, within: Duration) {
        self.phone.assert_not_called(within);
    }
}

/// A registered phone that rings when called and waits to be cancelled: SIPp in server mode
/// (`ring.xml`) on the port its contact was registered from, answering the INVITE with 180
/// Ringing, the CANCEL with 200 and the INVITE then with 487. This is every phone but the one
/// that answers when a call is forked to several contacts. Start it with
/// [`Sipp::ring_until_cancelled`].
pub struct Ringer {
    phone: Phone,
}

impl Ringer {
    /// The local port it listens on.
    pub fn port(&self) -> u16 {
        self.phone.port
    }

    /// Whether an INVITE has reached it so far (see [`Answerer::called`]).
    pub fn called(&self) -> bool {
        self.phone.called()
    }

    /// Waits for the call to end; panics with SIPp's logs unless the phone rang (180), was
    /// cancelled and got the ACK to its 487 Request Terminated.
    pub fn wait_cancelled(mut self) {
        let sipp = &mut self.phone.sipp;
        let status = sipp.wait();
        let actions = sipp.actions();
        let rang = actions.lines().any(|l| l.trim() == "rang=180");
        let cancelled = actions.lines().any(|l| l.trim() == "cancelled=487");
        assert!(
            rang && cancelled,
            "{}",
            sipp.failure(&format!(
                "the phone did not ring and get cancelled (rang: {rang}, cancelled: {cancelled}, \
                 SIPp exit {status:?})"
            ))
        );
        sipp.clean_up();
    }

    /// "This phone must not ring", as [`Answerer::assert_not_called`].
    pub fn assert_not_called(self, within: Duration) {
        self.phone.assert_not_called(within);
    }
}

/// What a call attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    /// The INVITE's final status: 200, 403 (bad credentials, other domain), 404 (no such
    /// user), 480 (user not registered).
    pub status: u16,
    /// Whether the first INVITE was challenged with 407.
    pub challenged: bool,
    /// Whether the answered call was hung up with a BYE that got its 200.
    pub hung_up: bool,
}

/// One call to run with SIPp (`call.xml`): `caller@domain` calls `callee@domain` through the
/// registrar, answers the 407 challenge with digest credentials and, when answered, ACKs and
/// hangs up. [`Call::run`] runs it; [`Sipp::call`] is the short form.
#[derive(Clone)]
pub struct Call {
    registrar: SocketAddr,
    caller: String,
    domain: String,
    password: String,
    callee: String,
    auth_username: Option<String>,
    source: Ipv4Addr,
}

impl std::fmt::Debug for Call {
    // The password stays out of test output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("registrar", &self.registrar)
            .field("caller", &self.caller)
            .field("domain", &self.domain)
            .field("callee", &self.callee)
            .field("auth_username", &self.auth_username)
            .finish_non_exhaustive()
    }
}

impl Call {
    /// `caller@domain` (From) calls `callee@domain` through `registrar`, with digest
    /// `password` and the digest username `caller` unless [`Call::auth_username`] says
    /// otherwise.
    pub fn new(registrar: SocketAddr, caller: &str, domain: &str, password: &str, callee: &str) -> Self {
        Self {
            registrar,
            caller: caller.to_string(),
            domain: domain.to_string(),
            password: password.to_string(),
            callee: callee.to_string(),
            auth_username: None,
            source: Ipv4Addr::LOCALHOST,
        }
    }

    /// Calls from another loopback address (e.g. 127.0.0.2), as a second machine would.
    pub fn source(mut self, address: Ipv4Addr) -> Self {
        self.source = address;
        self
    }

    /// The digest username, when it differs from the From user: a device's credentials are
    /// `<username>#<device>` (SIPp sends it as given, `#` included).
    pub fn auth_username(mut self, name: &str) -> Self {
        self.auth_username = Some(name.to_string());
        self
    }

    /// Runs SIPp and returns what the call got. Panics with SIPp's logs when the exchange did
    /// not end with a final status, or when the challenged INVITE's Proxy-Authorization did
    /// not carry the digest username exactly.
    pub fn run(&self) -> CallOutcome {
        let mut last_failure = String::new();
        for _ in 0..3 {
            match self.run_once(free_port(true)) {
                Ok(outcome) => return outcome,
                Err((retry, failure)) => {
                    last_failure = failure;
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!("SIPp call {self:?}: {last_failure}");
    }

    /// One SIPp process; `Err((retry, why))`.
    fn run_once(&self, port: u16) -> Result<CallOutcome, (bool, String)> {
        let csv = format!("SEQUENTIAL\n{};{};{};\n", self.caller, self.domain, self.callee);
        let auth_username = self.auth_username.as_deref().unwrap_or(&self.caller);
        let mut sipp = SippProcess::spawn(
            CALL_SCENARIO,
            Some(self.registrar),
            Some(&csv),
            &["-au", auth_username, "-ap", &self.password],
            Local {
                ip: self.source,
                port,
                transport: Transport::Udp,
            },
            SIPP_TIMEOUT,
        );
        let status = sipp.wait();
        let actions = sipp.actions();
        let Some(code) = last_code(&actions, "final=") else {
            let retry = status.and_then(|s| s.code()) == Some(EXIT_BIND_FAILED);
            return Err((
                retry,
                sipp.failure(&format!("no final status (SIPp exit {status:?})")),
            ));
        };
        let outcome = CallOutcome {
            status: code,
            challenged: actions.lines().any(|l| l.trim() == "challenge=407"),
            hung_up: actions.lines().any(|l| l.trim() == "bye=200"),
        };
        if outcome.challenged {
            // SIPp writes `Proxy-Authorization: Digest username="...",realm=...`.
            let sent = format!("username=\"{auth_username}\"");
            let carried = sipp
                .messages()
                .lines()
                .any(|l| l.trim_start().starts_with("Proxy-Authorization:") && l.contains(&sent));
            if !carried {
                return Err((
                    false,
                    sipp.failure(&format!("no Proxy-Authorization sent with {sent}")),
                ));
            }
        }
        sipp.clean_up();
        Ok(outcome)
    }
}

/// Entry points for the common cases.
pub struct Sipp;

impl Sipp {
    /// REGISTERs `username@domain` with `password` (`Expires: 0`, so nothing stays
    /// registered), asserts that the final status is `expected` and that the user agent was
    /// challenged first, and returns the outcome.
    pub fn register_expect(
        registrar: SocketAddr,
        username: &str,
        domain: &str,
        password: &str,
        expected: u16,
    ) -> RegisterOutcome {
        let outcome = Registration::new(username, domain, password).run(registrar);
        assert!(
            outcome.challenged,
            "REGISTER {username}@{domain} was not challenged first: {outcome:?}"
        );
        assert_eq!(
            outcome.status, expected,
            "REGISTER {username}@{domain}: final status {} (expected {expected})",
            outcome.status
        );
        outcome
    }

    /// REGISTERs `username@domain` with `Expires: expires` from a fresh local port, so the
    /// contact stays registered; returns the outcome (status 200 when it was accepted).
    pub fn register_for(
        registrar: SocketAddr,
        username: &str,
        domain: &str,
        password: &str,
        expires: u32,
    ) -> RegisterOutcome {
        Registration::new(username, domain, password)
            .expires(expires)
            .run(registrar)
    }

    /// Starts a phone answering one call on local `port` (where `username` registered its
    /// contact, see [`Registration::local_port`]) and returns once it listens.
    pub fn answer_one_call(port: u16) -> Answerer {
        Answerer {
            phone: Phone {
                sipp: SippProcess::listen(ANSWER_SCENARIO, port),
                port,
            },
        }
    }

    /// Starts a phone on local `port` (where a contact was registered) that rings when called
    /// and waits to be cancelled; returns once it listens.
    pub fn ring_until_cancelled(port: u16) -> Ringer {
        Ringer {
            phone: Phone {
                sipp: SippProcess::listen(RING_SCENARIO, port),
                port,
            },
        }
    }

    /// `caller@domain` (digest username `caller`, `password`) calls `callee@domain` through
    /// `registrar`; when answered, it ACKs and hangs up. Returns what it got. The same as
    /// [`Call::new`]`(..).run()`.
    pub fn call(
        registrar: SocketAddr,
        caller: &str,
        domain: &str,
        password: &str,
        callee: &str,
    ) -> CallOutcome {
        Call::new(registrar, caller, domain, password, callee).run()
    }
}
