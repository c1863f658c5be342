//! What the bench reads off processes and the audit log: CPU seconds, memory, API writes.
use std::collections::BTreeMap;

use crate::support::audit::AuditLog;
use crate::support::operator::Operator;

/// VmRSS and VmHWM of a process, in MiB.
pub fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds (user + system) the process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name;
    // Linux reports them in USER_HZ, 100 per second.
    (ticks(11) + ticks(12)) / 100.0
}

/// The operator processes of one phase: the running ones, and the CPU seconds and peak RSS
/// of those already gone (killed by a fault, or stopped), so that figures cover all of them.
#[derive(Default)]
pub struct Fleet {
    pub live: Vec<Operator>,
    gone_cpu: f64,
    gone_peak: f64,
}

impl Fleet {
    pub fn one(op: Operator) -> Fleet {
        Fleet {
            live: vec![op],
            ..Default::default()
        }
    }

    /// Takes `op` out of the fleet after reading its figures; the caller ends it.
    pub fn remove(&mut self, index: usize) -> Operator {
        let op = self.live.remove(index);
        self.gone_cpu += cpu_seconds(op.pid());
        self.gone_peak = self.gone_peak.max(memory_mib(op.pid()).1);
        op
    }

    /// CPU seconds of every process of this fleet, running or gone.
    pub fn cpu(&self) -> f64 {
        self.gone_cpu + self.live.iter().map(|o| cpu_seconds(o.pid())).sum::<f64>()
    }

    /// The highest peak RSS (VmHWM) of any one process of this fleet, in MiB.
    pub fn peak_rss(&self) -> f64 {
        self.live
            .iter()
            .map(|o| memory_mib(o.pid()).1)
            .fold(self.gone_peak, f64::max)
    }

    /// SIGTERMs every running process, keeping their figures.
    pub async fn stop_all(&mut self) {
        while !self.live.is_empty() {
            let mut op = self.remove(0);
            op.stop().await;
        }
    }
}

/// SIGKILL, as an OOM kill or a node loss would; reaped on drop.
pub fn sigkill(op: Operator) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &op.pid().to_string()])
        .status();
    drop(op);
}

/// The operator's writes in `namespaces` since the last read, by "verb resource[/sub]".
pub fn writes(audit: &mut AuditLog, namespaces: &[String]) -> BTreeMap<String, usize> {
    let mut by_kind = BTreeMap::new();
    for e in audit
        .read_new()
        .iter()
        .filter(|e| namespaces.iter().any(|ns| e.is_operator_write_in(ns)))
    {
        let obj = e.object_ref.clone().unwrap_or_default();
        let key = format!(
            "{} {}{}",
            e.verb,
            obj.resource,
            obj.subresource.map(|s| format!("/{s}")).unwrap_or_default()
        );
        *by_kind.entry(key).or_insert(0) += 1;
    }
    by_kind
}

pub fn total(by_kind: &BTreeMap<String, usize>) -> usize {
    by_kind.values().sum()
}

pub fn print_writes(label: &str, n: usize, by_kind: &BTreeMap<String, usize>) {
    println!(
        "{label}: {} API writes = {:.2} per user",
        total(by_kind),
        total(by_kind) as f64 / n as f64
    );
    for (k, v) in by_kind {
        println!("    {k:<28} {v:>7}  ({:.2}/user)", *v as f64 / n as f64);
    }
}

/// Writes per user by resource, compact for the table: `secrets 1.00, sipusers/status 1.02`.
pub fn by_resource(n: usize, by_kind: &BTreeMap<String, usize>) -> String {
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for (k, v) in by_kind {
        let resource = k.split_once(' ').map_or(k.as_str(), |(_, r)| r);
        *per.entry(resource.to_string()).or_insert(0) += v;
    }
    per.iter()
        .map(|(r, v)| format!("{r} {:.2}", *v as f64 / n as f64))
        .collect::<Vec<_>>()
        .join(", ")
}
