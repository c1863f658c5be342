//! Durations written as hours, minutes and seconds (`24h`, `90m`, `1h30m`, `45s`, `0s`), pure:
//! what the schema's `validFor` and `rotationGracePeriod` take (Go's `time.ParseDuration`
//! without fractions or smaller units, so CEL's `duration()` reads them the same way). Each
//! field bounds the result its own way.
use std::time::Duration;

/// `text` as a duration: each of `h`, `m`, `s` at most once and in that order, each after a
/// number; `None` for anything else (empty, another unit, a sign, a fraction, an overflow).
pub fn parse(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = text;
    for (unit, seconds) in [('h', 3600u64), ('m', 60), ('s', 1)] {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || rest.as_bytes().get(digits) != Some(&(unit as u8)) {
            continue;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        total = n.checked_mul(seconds).and_then(|s| total.checked_add(s))?;
        rest = &rest[digits + 1..];
    }
    rest.is_empty().then(|| Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_minutes_and_seconds_in_that_order_each_once() {
        let secs = |t: &str| parse(t).map(|d| d.as_secs());
        assert_eq!(secs("24h"), Some(86_400));
        assert_eq!(secs("1h0m30s"), Some(3_630));
        assert_eq!(secs("0s"), Some(0));
        for bad in [
            "", "24", "h", "1d", "30m1h", "1h1h", "-5m", "1.5h", "5 m", "1h ", "5ms",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse("99999999999999999999h"), None, "overflow");
    }
}
