//! `kubectl` against the test control plane: what users type is what the tests run, so the
//! messages and tables asserted on are the ones a person would see.
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};

#[derive(Clone)]
pub struct Kubectl {
    kubeconfig: PathBuf,
}

/// One kubectl invocation being built.
pub struct Run {
    cmd: Command,
    desc: String,
}

/// What a finished kubectl run printed.
pub struct Outcome {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    pub fn new(kubeconfig: PathBuf) -> Self {
        Self { kubeconfig }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", &self.kubeconfig).args(args);
        Run {
            cmd,
            desc: format!("kubectl {}", args.join(" ")),
        }
    }

    /// `kubectl ARGS -n NAMESPACE`.
    pub fn run_in(&self, namespace: &str, args: &[&str]) -> Run {
        self.run(&["-n", namespace]).args(args)
    }
}

impl Run {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.desc
            .push_str(&format!(" {}", arg.as_ref().to_string_lossy()));
        self.cmd.arg(arg);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    /// Feeds `input` on stdin (for `-f -`).
    pub fn output_with_stdin(mut self, input: &str) -> Outcome {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.desc));
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        Outcome::from(child.wait_with_output().expect("kubectl output"))
    }

    pub fn output(mut self) -> Outcome {
        let out = self
            .cmd
            .output()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.desc));
        Outcome::from(out)
    }

    /// Runs and panics with kubectl's stderr unless it succeeded; returns stdout.
    pub fn ok(self) -> String {
        let desc = self.desc.clone();
        let out = self.output();
        assert!(out.success, "{desc} failed:\n{}", out.stderr);
        out.stdout
    }
}

impl From<Output> for Outcome {
    fn from(out: Output) -> Self {
        Self {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A `kubectl get` table as rows of header -> cell, cut at the header's column offsets (cells
/// may be blank, so splitting on whitespace could shift them).
pub fn table_by_header(out: &str) -> Vec<HashMap<String, String>> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().expect("table header");
    let mut starts: Vec<(usize, String)> = Vec::new();
    let mut prev_space = true;
    for (i, c) in header.char_indices() {
        if !c.is_whitespace() && prev_space {
            let name: String = header[i..].chars().take_while(|c| !c.is_whitespace()).collect();
            starts.push((i, name));
        }
        prev_space = c.is_whitespace();
    }
    lines
        .map(|line| {
            let mut row = HashMap::new();
            for (n, (start, name)) in starts.iter().enumerate() {
                let end = starts.get(n + 1).map(|(s, _)| *s).unwrap_or(line.len());
                let cell = line
                    .get(*start..end.min(line.len()))
                    .unwrap_or("")
                    .trim()
                    .to_string();
                row.insert(name.clone(), cell);
            }
            row
        })
        .collect()
}
