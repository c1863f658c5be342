//! The operator under test, run as it runs in a cluster: the real `sip-operator` binary as a
//! child process, with the restricted `sip-operator` identity of the control plane (its rights
//! come from `operator-rbac.yaml` only), watching one namespace, leading through a Lease there,
//! logging JSON to a file and serving `/healthz`, `/readyz` and `/metrics` on a port of its own.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{ControlPlane, TestNamespace};

/// How long the operator may take to answer `/readyz` with 200 after it was spawned.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the operator may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// One running `sip-operator` process; killed when dropped.
pub struct Operator {
    child: Child,
    namespace: String,
    identity: String,
    addr: SocketAddr,
    log_path: PathBuf,
    exit: Option<ExitStatus>,
}

impl Operator {
    /// Starts an operator for `ns` and waits until `/readyz` answers 200.
    pub async fn start(ns: &TestNamespace) -> Operator {
        Self::start_with(ns, &[]).await
    }

    /// [`Operator::start`] with extra command-line arguments.
    pub async fn start_with(ns: &TestNamespace, extra_args: &[&str]) -> Operator {
        let mut op = Self::spawn(ns, extra_args);
        op.wait_for("/readyz", READY_TIMEOUT).await;
        op
    }

    /// Starts an operator for `ns` and waits only until its HTTP server answers `/healthz`
    /// with 200: for a replica that may legitimately report not-ready (e.g. while it does not
    /// hold the leader Lease).
    pub async fn launch(ns: &TestNamespace, extra_args: &[&str]) -> Operator {
        let mut op = Self::spawn(ns, extra_args);
        op.wait_for("/healthz", READY_TIMEOUT).await;
        op
    }

    /// [`Operator::start_with`] with extra environment variables.
    pub async fn start_with_env(ns: &TestNamespace, extra_args: &[&str], env: &[(&str, &str)]) -> Operator {
        let mut op = Self::spawn_with(ns, extra_args, env, None);
        op.wait_for("/readyz", READY_TIMEOUT).await;
        op
    }

    /// [`Operator::start_with`], the process resolving host names with `hosts` as its
    /// `/etc/hosts` (bind-mounted in a mount namespace of its own; nobody else sees it).
    pub async fn start_with_hosts(ns: &TestNamespace, extra_args: &[&str], hosts: &Path) -> Operator {
        let mut op = Self::spawn_with(ns, extra_args, &[], Some(hosts));
        op.wait_for("/readyz", READY_TIMEOUT).await;
        op
    }

    /// Spawns the binary without waiting for anything.
    pub fn spawn(ns: &TestNamespace, extra_args: &[&str]) -> Operator {
        Self::spawn_with(ns, extra_args, &[], None)
    }

    fn spawn_with(
        ns: &TestNamespace,
        extra_args: &[&str],
        env: &[(&str, &str)],
        hosts: Option<&Path>,
    ) -> Operator {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let cp = ControlPlane::shared();
        let identity = format!("{}-{}-{n}", ns.name, std::process::id());
        let log_path = cp
            .dir()
            .join("logs")
            .join(format!("operator-{}-{n}.log", ns.name));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", log_path.display()));
        let log_err = log.try_clone().expect("clone log file handle");
        let addr = free_local_addr();
        let bin = env!("CARGO_BIN_EXE_sip-operator");
        let mut cmd = match hosts {
            None => Command::new(bin),
            Some(hosts) => {
                // unshare and sh exec in place, so the PID is the operator's. Without root a
                // user namespace makes the mount possible.
                let mut c = Command::new("unshare");
                if !is_root() {
                    c.arg("--map-root-user");
                }
                c.args([
                    "--mount",
                    "sh",
                    "-c",
                    r#"mount --bind "$1" /etc/hosts && shift && exec "$@""#,
                    "sh",
                ])
                .arg(hosts)
                .arg(bin);
                c
            }
        };
        cmd.env("KUBECONFIG", cp.env("OPERATOR_KUBECONFIG"))
            .env(
                "RUST_LOG",
                std::env::var("SIP_OPERATOR_TEST_RUST_LOG")
                    .unwrap_or_else(|_| "info,sip_operator=debug".into()),
            )
            .args(["--namespace", &ns.name])
            // The Lease in the test's namespace, unless the test names its own.
            .args(
                (!extra_args.contains(&"--lease-namespace"))
                    .then_some(["--lease-namespace", &ns.name])
                    .into_iter()
                    .flatten(),
            )
            .args(["--http-addr", &addr.to_string()])
            .args(["--identity", &identity])
            .args(["--log-format", "json"])
            .args(extra_args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
        Operator {
            child,
            namespace: ns.name.clone(),
            identity,
            addr,
            log_path,
            exit: None,
        }
    }

    /// Polls `path` until it answers 200; panics with the log tail on timeout or early exit.
    async fn wait_for(&mut self, path: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                panic!(
                    "sip-operator for {} exited ({status}) before {path} answered 200; log {}:\n{}",
                    self.namespace,
                    self.log_path.display(),
                    self.log_tail(60)
                );
            }
            let last = match self.try_http_get(path) {
                Ok((200, _)) => return,
                Ok((code, body)) => format!("{code} {body}"),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                panic!(
                    "sip-operator for {} did not answer 200 on {path} within {timeout:?} (last: {last}); log {}:\n{}",
                    self.namespace,
                    self.log_path.display(),
                    self.log_tail(60)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The exit status if the process has exited.
    fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait on sip-operator");
        }
        self.exit
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.try_exit().is_none()
    }

    /// SIGTERM, then waits up to [`STOP_TIMEOUT`] for the exit; panics (with the log tail) if
    /// the process outlives it. Returns the exit status.
    pub async fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.try_exit() {
            return status;
        }
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "sip-operator for {} did not exit within {STOP_TIMEOUT:?} of SIGTERM; log {}:\n{}",
                    self.namespace,
                    self.log_path.display(),
                    self.log_tail(60)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The process id (for resource figures such as RSS).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `--identity` this replica was given (the Lease holder when it leads).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The address of its health/metrics server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where its stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        super::read_log(&self.log_path)
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        super::tail(&self.log(), lines)
    }

    /// `GET path` on its HTTP server: (status code, body). Panics when it does not answer.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        self.try_http_get(path)
            .unwrap_or_else(|e| panic!("GET {path} on sip-operator for {}: {e}", self.namespace))
    }

    /// `GET path`, or why it failed.
    pub fn try_http_get(&self, path: &str) -> Result<(u16, String), String> {
        http_get(self.addr, path)
    }

    /// The Prometheus scrape of `/metrics`; panics unless it answers 200.
    pub fn metrics(&self) -> String {
        let (status, body) = self.http_get("/metrics");
        assert_eq!(status, 200, "GET /metrics answered {status}: {body}");
        body
    }

    /// The value of metric `name` summed over the samples whose labels include all of `labels`
    /// (`None` when there is no such sample).
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        metric_value(&self.metrics(), name, labels)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_local_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}

/// A plain HTTP/1.1 `GET` with `Connection: close`: (status code, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write request: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read response: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("malformed HTTP response: {text:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status code in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked { dechunk(body)? } else { body.to_string() };
    Ok((status, body))
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut rest: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("truncated chunk header")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("chunk size {size:?}: {e}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = after.get(..size).ok_or("truncated chunk")?;
        out.push_str(chunk);
        rest = after.get(size..).unwrap_or("").trim_start_matches("\r\n");
    }
}

/// One sample of a Prometheus/OpenMetrics text scrape: name, labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// Parses one sample line; `None` for comments, blank lines and what it cannot read.
pub fn parse_sample(line: &str) -> Option<Sample> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, rest) = match line.find('{') {
        Some(_) => {
            let close = line.rfind('}')?;
            (&line[..close + 1], &line[close + 1..])
        }
        None => line.split_at(line.find(' ')?),
    };
    let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, labels)) => {
            let labels = labels.trim_end_matches('}');
            let mut parsed = Vec::new();
            // Label values in our metrics hold no commas or escaped quotes.
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=')?;
                parsed.push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
            }
            (name.to_string(), parsed)
        }
        None => (series.trim().to_string(), Vec::new()),
    };
    Some((name, labels, value))
}

/// The sum of the samples of `name` whose labels include all of `labels`; `None` if none.
pub fn metric_value(scrape: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for (n, l, v) in scrape.lines().filter_map(parse_sample) {
        if n == name
            && labels
                .iter()
                .all(|(k, want)| l.iter().any(|(lk, lv)| lk == k && lv == want))
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// Whether this process runs as root (effective UID 0).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}
