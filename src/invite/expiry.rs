//! `spec.validFor` and the moment a link expires, pure.
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{MAX_VALID_FOR_SECONDS, MIN_VALID_FOR_SECONDS};

/// Why a `validFor` cannot be used (the schema refuses these; a stored object predating it
/// could still hold one).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidForError {
    #[error("spec.validFor {0:?} is not hours, minutes and seconds such as 24h, 90m or 1h30m")]
    Malformed(String),
    #[error("spec.validFor {0:?} is outside 5m to 720h")]
    OutOfBounds(String),
}

/// Parses `24h`, `90m`, `1h30m`, `45s` (each unit at most once, in h-m-s order), bounded to
/// 5m..=720h as the schema is.
pub fn parse_valid_for(text: &str) -> Result<Duration, ValidForError> {
    let total = crate::hms::parse(text)
        .ok_or_else(|| ValidForError::Malformed(text.to_string()))?
        .as_secs();
    if !(MIN_VALID_FOR_SECONDS..=MAX_VALID_FOR_SECONDS).contains(&total) {
        return Err(ValidForError::OutOfBounds(text.to_string()));
    }
    Ok(Duration::from_secs(total))
}

/// When a link issued at `issued` for `valid_for` expires. Truncated to whole seconds like
/// the API's timestamps, so the stored value and the one computed agree.
pub fn expires_at(issued: Timestamp, valid_for: Duration) -> Timestamp {
    let issued = Timestamp::from_second(issued.as_second()).unwrap_or(issued);
    issued
        .checked_add(SignedDuration::from_secs(valid_for.as_secs() as i64))
        .unwrap_or(Timestamp::MAX)
}

/// How long until `expires` (zero once it passed): when to look at an issued invite again.
pub fn remaining(now: Timestamp, expires: Timestamp) -> Duration {
    let left = expires.as_millisecond().saturating_sub(now.as_millisecond());
    Duration::from_millis(left.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_for_takes_hours_minutes_and_seconds() {
        let secs = |t| parse_valid_for(t).map(|d| d.as_secs());
        assert_eq!(secs("24h"), Ok(86_400));
        assert_eq!(secs("90m"), Ok(5_400));
        assert_eq!(secs("1h30m"), Ok(5_400));
        assert_eq!(secs("1h0m30s"), Ok(3_630));
        assert_eq!(secs("300s"), Ok(300));
        assert_eq!(secs("720h"), Ok(2_592_000));
    }

    #[test]
    fn malformed_or_unbounded_valid_for_is_refused() {
        for bad in ["", "24", "h", "1d", "30m1h", "1h1h", "-5m", "1.5h", "5 m"] {
            assert!(
                matches!(parse_valid_for(bad), Err(ValidForError::Malformed(_))),
                "{bad:?}"
            );
        }
        for out in ["4m59s", "721h", "99999999h"] {
            assert!(
                matches!(parse_valid_for(out), Err(ValidForError::OutOfBounds(_))),
                "{out:?}"
            );
        }
    }

    #[test]
    fn expiry_is_issue_time_plus_valid_for_in_whole_seconds() {
        let issued: Timestamp = "2026-12-01T10:00:00.750Z".parse().expect("time");
        let at = expires_at(issued, Duration::from_secs(86_400));
        assert_eq!(at.to_string(), "2026-12-02T10:00:00Z");
        assert_eq!(remaining(issued, at).as_secs(), 86_399);
        assert_eq!(remaining(at, at), Duration::ZERO);
        let later: Timestamp = "2026-12-03T00:00:00Z".parse().expect("time");
        assert_eq!(remaining(later, at), Duration::ZERO, "passed");
    }
}
