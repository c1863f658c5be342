//! A real Kamailio (Debian's `kamailio` package) running the config the chart ships
//! (`charts/sip-operator/files/kamailio.cfg`), on 127.0.0.1 with free ports, a throwaway run
//! directory and a random RPC token; one per test, stopped when dropped.
//!
//! The test talks to it as the operator does, with JSON-RPC over HTTP (`Kamailio::rpc`), and as
//! phones do, with SIP (see `super::sipp`).
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::repo_path;

/// The Kamailio binary; `SIP_OPERATOR_TEST_KAMAILIO` overrides it.
pub const KAMAILIO_BIN: &str = "/usr/sbin/kamailio";
/// The config under test: the one the Helm chart mounts.
pub const CONFIG: &str = "charts/sip-operator/files/kamailio.cfg";
/// How long Kamailio may take to answer `core.uptime` after it was spawned.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long Kamailio may take to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one HTTP exchange with the RPC port may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Start attempts: the free ports are picked before Kamailio binds them, so a parallel test
/// may take one in between; Kamailio then exits and is started again on other ports.
const START_ATTEMPTS: u32 = 3;

/// An HTTP response from the RPC port (or any port of Kamailio's).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics (showing the response) when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {} {}\n{}",
                self.status, self.reason, self.body
            )
        })
    }
}

/// Options for [`Kamailio`]; start with [`Kamailio::builder`].
#[derive(Debug, Clone, Default)]
pub struct KamailioBuilder {
    defines: Vec<(String, String)>,
    token_in_env: bool,
    token: Option<String>,
    shared_memory_mib: Option<u32>,
}

impl KamailioBuilder {
    /// Shared memory (`-m`) in MiB instead of the tests' 48 (every contact and htable entry
    /// lives there: scale runs need more).
    pub fn shared_memory_mib(mut self, mib: u32) -> Self {
        self.shared_memory_mib = Some(mib);
        self
    }

    /// Adds a config define (`-A NAME=value`), e.g. `("MIN_EXPIRES", "1")` or
    /// `("WITH_SHA256", "")` for a bare define. String values need their quotes:
    /// `("AUTH_SECRET", "\"s\"")`.
    pub fn define(mut self, name: &str, value: &str) -> Self {
        self.defines.push((name.to_string(), value.to_string()));
        self
    }

    /// Passes the RPC token in the environment (`SIP_OPERATOR_RPC_TOKEN`) instead of as the
    /// `RPC_TOKEN` define, as a Kubernetes pod would from a Secret.
    pub fn token_in_env(mut self) -> Self {
        self.token_in_env = true;
        self
    }

    /// Uses this RPC token instead of a random one (instances behind one Service share one).
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    /// Starts Kamailio and waits until its RPC port answers `core.uptime`.
    pub fn start(self) -> Kamailio {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sip-operator-kamailio-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let mut last_failure = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let mut kamailio = Kamailio {
                child: None,
                reaper: None,
                sip_port: free_port(true),
                rpc_port: free_port(false),
                token: self.token.clone().unwrap_or_else(random_token),
                dir: dir.clone(),
                log_path: dir.join(format!("kamailio-{attempt}.log")),
                options: self.clone(),
            };
            match kamailio.spawn_and_wait() {
                Ok(()) => return kamailio,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("Kamailio did not start in {START_ATTEMPTS} attempts; last: {last_failure}");
    }
}

/// One running Kamailio; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Kamailio {
    child: Option<Child>,
    /// A shell that stops Kamailio if the test process dies without running `Drop`.
    reaper: Option<Child>,
    sip_port: u16,
    rpc_port: u16,
    token: String,
    dir: PathBuf,
    log_path: PathBuf,
    options: KamailioBuilder,
}

impl Kamailio {
    /// Starts Kamailio with the shipped config and default options.
    pub fn start() -> Kamailio {
        Self::builder().start()
    }

    /// Options: extra defines, the token in the environment.
    pub fn builder() -> KamailioBuilder {
        KamailioBuilder::default()
    }

    /// The JSON-RPC endpoint, e.g. `http://127.0.0.1:40123/RPC`.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}/RPC", self.rpc_port)
    }

    /// The bearer token the RPC port wants.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The SIP port (UDP and TCP) on 127.0.0.1.
    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }

    /// The SIP address, `127.0.0.1:<sip_port>`.
    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.sip_port))
    }

    /// The JSON-RPC port (TCP) on 127.0.0.1.
    pub fn rpc_port(&self) -> u16 {
        self.rpc_port
    }

    /// The main process id (the process group of all Kamailio processes of this instance).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("Kamailio is running").id()
    }

    /// Where Kamailio's stderr (its log, `-E`) goes.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything Kamailio logged so far.
    pub fn log(&self) -> String {
        super::read_log(&self.log_path)
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        super::tail(&self.log(), lines)
    }

    /// Calls `method` with `params` (a JSON array) and returns the whole JSON-RPC response
    /// document (`{"result": ..}` or `{"error": {"code", "message"}}`). Panics when the
    /// answer is not JSON.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        self.rpc_response(method, params).json()
    }

    /// Calls `method` and returns its `result`; panics on a JSON-RPC error.
    pub fn rpc_ok(&self, method: &str, params: Value) -> Value {
        let doc = self.rpc(method, params.clone());
        match doc.get("result") {
            Some(result) if doc.get("error").is_none() => result.clone(),
            _ => panic!("RPC {method} {params} failed: {doc}"),
        }
    }

    /// Calls `method` and returns the HTTP response as it came (status, headers, body).
    pub fn rpc_response(&self, method: &str, params: Value) -> HttpResponse {
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).to_string();
        self.try_http(self.rpc_port, "POST", "/RPC", Some(&self.token), &body)
            .unwrap_or_else(|e| {
                panic!(
                    "RPC {method} to {}: {e}\nKamailio log:\n{}",
                    self.rpc_url(),
                    self.log_tail(40)
                )
            })
    }

    /// One raw HTTP/1.1 exchange with `Connection: close` to a port of this Kamailio (the RPC
    /// port, or the SIP port to prove it refuses RPC): `bearer` adds `Authorization: Bearer`.
    /// Errors on connect/read failure or when no answer came within [`HTTP_TIMEOUT`].
    pub fn try_http(
        &self,
        port: u16,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: &str,
    ) -> Result<HttpResponse, String> {
        http_exchange(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            method,
            path,
            bearer,
            body,
        )
    }

    /// Runs `calls` (method, params) over `connections` keep-alive connections, each with up
    /// to 64 requests pipelined, and returns how many answers were JSON-RPC errors. For
    /// filling Kamailio quickly (e.g. `ul.add` for scale runs); panics on I/O failure.
    pub fn pipeline(&self, calls: &[(&str, Value)], connections: usize) -> usize {
        let chunk = calls.len().div_ceil(connections.max(1)).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = calls
                .chunks(chunk)
                .map(|part| scope.spawn(move || self.pipeline_one(part)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("pipeline worker"))
                .sum()
        })
    }

    fn pipeline_one(&self, calls: &[(&str, Value)]) -> usize {
        const WINDOW: usize = 64;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.rpc_port));
        let mut stream = TcpStream::connect(addr).expect("connect to the RPC port");
        stream.set_read_timeout(Some(HTTP_TIMEOUT)).expect("read timeout");
        let (mut sent, mut answered, mut errors) = (0, 0, 0);
        let mut raw: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 65536];
        while answered < calls.len() {
            let mut out = Vec::new();
            while sent < calls.len() && sent - answered < WINDOW {
                let (method, params) = &calls[sent];
                let body =
                    json!({"jsonrpc": "2.0", "method": method, "params": params, "id": sent}).to_string();
                out.extend_from_slice(
                    format!(
                        "POST /RPC HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        self.token,
                        body.len()
                    )
                    .as_bytes(),
                );
                sent += 1;
            }
            if !out.is_empty() {
                stream.write_all(&out).expect("send pipelined requests");
            }
            let n = stream.read(&mut buf).expect("read pipelined answers");
            assert!(n > 0, "Kamailio closed a pipelined connection");
            raw.extend_from_slice(&buf[..n]);
            // Take every complete answer off the front.
            while let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if raw.len() < end + 4 + length {
                    break;
                }
                if raw[end + 4..end + 4 + length]
                    .windows(8)
                    .any(|w| w == b"\"error\"")
                {
                    errors += 1;
                }
                raw.drain(..end + 4 + length);
                answered += 1;
            }
        }
        errors
    }

    /// The proportional set size (PSS, shared memory split between the processes that map
    /// it) of all processes of this instance, in KiB: what it really costs in RAM.
    pub fn pss_kib(&self) -> u64 {
        let pgid = self.pid();
        let mut total = 0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Field 5 (after the parenthesized name) is the process group.
            let group = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(2))
                .and_then(|g| g.parse::<u32>().ok());
            if group != Some(pgid) {
                continue;
            }
            let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
            total += rollup
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
        total
    }

    /// Sets a user entry in the `users` htable (as the operator does).
    pub fn set_user(&self, key: &str, value: &str) {
        self.rpc_ok("htable.sets", json!(["users", key, value]));
    }

    /// Removes a user entry and drops its contacts (as the operator does for a deleted user).
    pub fn remove_user(&self, key: &str) {
        // 404 (no such key) is fine: removal is idempotent.
        let _ = self.rpc("htable.delete", json!(["users", key]));
        self.rpc_ok("ul.rm", json!(["location", key]));
    }

    /// The contact addresses registered for `aor` (`user@domain`), from `ul.dump`.
    pub fn contacts(&self, aor: &str) -> Vec<String> {
        let dump = self.rpc_ok("ul.dump", json!([]));
        let mut contacts = Vec::new();
        for domain in dump["Domains"].as_array().into_iter().flatten() {
            for record in domain["Domain"]["AoRs"].as_array().into_iter().flatten() {
                if record["Info"]["AoR"].as_str() == Some(aor) {
                    for c in record["Info"]["Contacts"].as_array().into_iter().flatten() {
                        if let Some(address) = c["Contact"]["Address"].as_str() {
                            contacts.push(address.to_string());
                        }
                    }
                }
            }
        }
        contacts
    }

    /// Kills Kamailio (SIGKILL, as a crash or an OOM kill would) and starts it again on the
    /// same ports, token and run directory; waits until it answers. Its memory (users and
    /// contacts) is gone, and `core.uptime` → `up_since` is new.
    pub fn kill_and_restart(&mut self) {
        self.stop_with("-KILL");
        self.log_path = self.dir.join(format!("kamailio-restart-{}.log", random_token()));
        // The ports were just released: another test could take one, but only within the
        // ephemeral range's reuse cycle; fail loudly rather than move ports under the test.
        if let Err(failure) = self.spawn_and_wait() {
            panic!("Kamailio did not restart on the same ports: {failure}");
        }
    }

    /// Stops Kamailio: SIGTERM, then SIGKILL to its process group after [`STOP_TIMEOUT`].
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.stop_with("-TERM")
    }

    /// Signals are sent to a process group only while its leader is not yet reaped, so that
    /// its id cannot have been recycled.
    fn stop_with(&mut self, signal: &str) -> Option<ExitStatus> {
        // The reaper first, so that it cannot act on a recycled pid later.
        if let Some(mut reaper) = self.reaper.take() {
            let _ = reaper.kill();
            let _ = reaper.wait();
        }
        let mut child = self.child.take()?;
        let pid = child.id();
        if signal == "-KILL" {
            // The workers too: a killed main process cannot stop them.
            kill_group(pid, "-KILL");
            return child.wait().ok();
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        // On SIGTERM the main process stops its workers itself.
        let _ = Command::new("kill").args([signal, &pid.to_string()]).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                kill_group(pid, "-KILL");
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let bin = std::env::var("SIP_OPERATOR_TEST_KAMAILIO").unwrap_or_else(|_| KAMAILIO_BIN.to_string());
        assert!(
            Path::new(&bin).exists(),
            "{bin} not found: run tests/control-plane/install-deps.sh (Debian package kamailio)"
        );
        let log = std::fs::File::create(&self.log_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", self.log_path.display()));
        let mut cmd = Command::new(&bin);
        cmd.args(["-DD", "-E", "-f"])
            .arg(repo_path(CONFIG))
            // Few processes and little memory: every test runs one of these.
            .args(["-n", "2", "-N", "2", "-M", "8"])
            .args(["-m", &self.options.shared_memory_mib.unwrap_or(48).to_string()])
            .args(["-A", &format!("SIP_PORT={}", self.sip_port)])
            .args(["-A", &format!("RPC_PORT={}", self.rpc_port)])
            .args(["-A", &format!("RUN_DIR=\"{}\"", self.dir.join("run").display())])
            .args(["-w", &self.dir.display().to_string()]);
        if self.options.token_in_env {
            cmd.env("SIP_OPERATOR_RPC_TOKEN", &self.token);
        } else {
            cmd.args(["-A", &format!("RPC_TOKEN=\"{}\"", self.token)]);
        }
        for (name, value) in &self.options.defines {
            let define = if value.is_empty() {
                name.clone()
            } else {
                format!("{name}={value}")
            };
            cmd.args(["-A", &define]);
        }
        // Its own process group, so that workers orphaned by a SIGKILL can be found.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let log_err = log.try_clone().expect("clone log file handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
        let pid = child.id();
        self.child = Some(child);
        self.reaper = Some(spawn_reaper(pid));

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                let failure = format!(
                    "Kamailio exited ({status}) before answering core.uptime; log {}:\n{}",
                    self.log_path.display(),
                    self.log_tail(30)
                );
                self.stop();
                return Err(failure);
            }
            let body = json!({"jsonrpc": "2.0", "method": "core.uptime", "id": 1}).to_string();
            let last = match self.try_http(self.rpc_port, "POST", "/RPC", Some(&self.token), &body) {
                Ok(r) if r.status == 200 && r.json()["result"]["up_since"].is_string() => return Ok(()),
                Ok(r) => format!("{} {} {}", r.status, r.reason, r.body),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                let failure = format!(
                    "Kamailio did not answer core.uptime within {READY_TIMEOUT:?} (last: {last}); log {}:\n{}",
                    self.log_path.display(),
                    self.log_tail(30)
                );
                self.stop();
                return Err(failure);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.stop();
        // Keep the log of a failed test for the person reading its output.
        if std::thread::panicking() {
            eprintln!("Kamailio logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Sends `signal` to the process group `pgid` (Kamailio's main process and its workers).
fn kill_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// A shell that waits for this test process to end and then stops Kamailio `pid`, for when
/// the test binary is killed and `Drop` never runs. `Drop` kills it first.
fn spawn_reaper(pid: u32) -> Child {
    let owner = std::process::id();
    let script = format!(
        "while kill -0 {owner} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         kill -0 {pid} 2>/dev/null || exit 0; kill -TERM {pid} 2>/dev/null; sleep 3; kill -KILL -- -{pid} 2>/dev/null"
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the Kamailio reaper shell")
}

/// A port on 127.0.0.1 that is free for TCP (and for UDP too when `udp`), as the kernel
/// hands out ephemeral ports.
pub fn free_port(udp: bool) -> u16 {
    for _ in 0..50 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if !udp || UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP on 127.0.0.1");
}

/// 32 hex characters from the kernel's CSPRNG.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One HTTP/1.1 request with `Connection: close`; reads the answer to its end.
pub fn http_exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> Result<HttpResponse, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(HTTP_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(HTTP_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = bearer {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    // Read until the server closes, or until a complete response is there (some servers keep
    // the connection open despite `Connection: close`).
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if let Some(response) = parse_response(&raw, true) {
                    return Ok(response);
                }
            }
            Err(e) if raw.is_empty() => {
                return Err(format!("no answer from {addr} within {HTTP_TIMEOUT:?}: {e}"));
            }
            Err(_) => break,
        }
    }
    parse_response(&raw, false).ok_or_else(|| {
        format!(
            "incomplete or no HTTP response from {addr}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Parses one HTTP response; with `need_complete`, `None` until the body is all there.
fn parse_response(raw: &[u8], need_complete: bool) -> Option<HttpResponse> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next()?;
    let status: u16 = parts.next()?.parse().ok()?;
    let reason = parts.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let body = match length {
        Some(n) if body.len() >= n => body[..n].to_string(),
        Some(_) if need_complete => return None,
        None if need_complete => return None,
        _ => body.to_string(),
    };
    Some(HttpResponse {
        status,
        reason,
        headers,
        body,
    })
}
