//! A domain's `spec.extensionPattern`, compiled once per distinct pattern rather than on every
//! admission (which runs for each user and domain reconcile), and with a compiled-size limit,
//! so that one domain with a pattern like `(?:a{1000}){1000}` is refused quickly instead of
//! costing every reconcile in the namespace a large compile.
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::{Regex, RegexBuilder};

use crate::sync::lock;

/// The largest compiled program an extension pattern may take (bytes). Real patterns
/// (`^7[0-9]{3}$`) take a few KiB.
const SIZE_LIMIT: usize = 256 * 1024;
/// Distinct patterns remembered; past this the memory starts over (patterns rarely change).
const REMEMBERED: usize = 1024;

static COMPILED: LazyLock<Mutex<HashMap<String, Result<Regex, String>>>> = LazyLock::new(Default::default);

/// `pattern` compiled, or why it cannot be (the regex crate's message).
pub fn compile(pattern: &str) -> Result<Regex, String> {
    if let Some(known) = lock(&COMPILED).get(pattern) {
        return known.clone();
    }
    let compiled = RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string());
    let mut memo = lock(&COMPILED);
    if memo.len() >= REMEMBERED {
        memo.clear();
    }
    memo.insert(pattern.to_string(), compiled.clone());
    compiled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_compile_once_and_oversized_ones_are_refused() {
        let ok = compile("^7[0-9]{3}$").expect("valid");
        assert!(ok.is_match("7001") && !ok.is_match("8001"));
        assert!(compile("^7[0-9]{3}$").is_ok(), "from memory");
        let err = compile("(?:a{1000}){1000}").expect_err("too large");
        assert!(err.contains("size limit"), "{err}");
        assert!(compile("(").is_err());
    }
}
