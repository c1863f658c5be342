//! The one table a run ends with, in the columns of issue 10's table.
use std::collections::BTreeMap;
use std::time::Duration;

use crate::measure;

pub struct Figures {
    pub users: usize,
    pub namespaces: usize,
    pub faults: String,
    /// `None` when not every user became Ready.
    pub all_ready: Option<Duration>,
    pub ready_at_end: usize,
    pub floor: Duration,
    pub writes: BTreeMap<String, usize>,
    pub cpu: f64,
    pub peak_rss: f64,
    pub restart: Option<Duration>,
    pub restart_writes: usize,
    pub resync_rate: Option<f64>,
    pub raw_push_rate: f64,
}

pub fn print(f: &Figures) {
    let n = f.users;
    let all_ready = match f.all_ready {
        Some(d) => format!("{:.1} s", d.as_secs_f64()),
        None => format!("not all: {} of {n}", f.ready_at_end),
    };
    let users_per_s = f
        .all_ready
        .map_or("-".into(), |d| format!("{:.0}", n as f64 / d.as_secs_f64()));
    let ratio = f.all_ready.map_or("-".into(), |d| {
        format!("{:.1}×", d.as_secs_f64() / f.floor.as_secs_f64())
    });
    let writes = format!(
        "{:.2} ({})",
        measure::total(&f.writes) as f64 / n as f64,
        measure::by_resource(n, &f.writes)
    );
    let restart = f.restart.map_or("-".into(), |d| {
        format!("{:.1} s, {} writes", d.as_secs_f64(), f.restart_writes)
    });
    let resync = f.resync_rate.map_or("-".into(), |r| format!("{r:.0}"));
    println!();
    println!(
        "| users | namespaces | faults | all Ready | users/s | floor | ratio | operator API writes/user (by resource) | operator CPU s | peak RSS | no-op restart (time, writes) | registrar re-sync users/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {all_ready} | {users_per_s} | {:.1} s | {ratio} | {writes} | {:.1} | {:.0} MiB | {restart} | {resync} |",
        thousands(n),
        f.namespaces,
        if f.faults.is_empty() { "none" } else { &f.faults },
        f.floor.as_secs_f64(),
        f.cpu,
        f.peak_rss,
    );
    println!(
        "(registrar client alone: 10,000 users pushed into one Kamailio at {:.0} users/s)",
        f.raw_push_rate
    );
}

/// `10000` → `10,000`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
