//! Rotation without downtime, pure: the optional grace period after a password change during
//! which the registrar still accepts the previous password, and the previous digest kept for
//! it (HA1 only, never the old password) with its deadline.
//!
//! One rule for every credential (the account's own password, whether rotated with
//! `sipoperator.io/rotate` or changed through `passwordSecretRef`, and each device's, rotated
//! with `sipoperator.io/rotate.<device>`): whenever its HA1 changes from a known previous one
//! and a grace period applies, the previous HA1 stays valid until the deadline, then only the
//! new one. Only one previous digest is kept: a second change within the grace period replaces
//! it (the password before last is refused at once) and starts a new deadline.
use std::time::Duration;

use crate::api::DigestAlgorithm;
use crate::credentials::{Password, ha1};

/// The longest grace period accepted: 30 days (`720h`). Longer, and a leaked password would
/// stay usable for longer than most rotation policies allow.
pub const MAX_GRACE_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);

/// The schema pattern of a grace period: hours, minutes and seconds, each optional but in that
/// order, e.g. `24h`, `90m`, `1h30m`, `45s` (Go's `time.ParseDuration` without fractions or
/// smaller units, so CEL's `duration()` reads it the same way).
pub const GRACE_PERIOD_PATTERN: &str = "^([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,8}s)?$";

/// The CEL rule bounding a grace period (the pattern makes `duration()` never fail).
pub const GRACE_PERIOD_RULE: &str = "self != '' && duration(self) <= duration('720h')";

/// Why a grace period cannot be used (the schema refuses these; a stored object from before
/// the schema could still hold one).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum GracePeriodError {
    #[error("{0:?} is not a duration of hours, minutes and seconds such as 24h, 90m or 1h30m")]
    Malformed(String),
    #[error("{0:?} is longer than 720h (30 days)")]
    TooLong(String),
}

/// Parses a grace period such as `24h`, `90m`, `1h30m` or `0s` (no grace period).
pub fn parse_grace_period(text: &str) -> Result<Duration, GracePeriodError> {
    let period = crate::hms::parse(text).ok_or_else(|| GracePeriodError::Malformed(text.to_string()))?;
    if period > MAX_GRACE_PERIOD {
        return Err(GracePeriodError::TooLong(text.to_string()));
    }
    Ok(period)
}

/// The grace period that applies: the user's (`spec.credentials.rotationGracePeriod`) wins
/// over the domain's (`spec.passwordPolicy.rotationGracePeriod`); `0s` or none is no grace
/// period.
pub fn effective_grace_period(
    user: Option<&str>,
    domain: Option<&str>,
) -> Result<Option<Duration>, GracePeriodError> {
    match user.or(domain) {
        None => Ok(None),
        Some(text) => Ok(Some(parse_grace_period(text)?).filter(|d| !d.is_zero())),
    }
}

/// The previous HA1s of a credential and until when the registrar accepts them.
#[derive(Clone, PartialEq, Eq)]
pub struct PreviousDigest {
    /// MD5 HA1 of the previous password, when the domain enabled MD5 at the change.
    pub ha1_md5: Option<String>,
    /// SHA-256 HA1 of the previous password, when the domain enabled SHA-256 at the change.
    pub ha1_sha256: Option<String>,
    /// The deadline, Unix seconds: accepted while the registrar's clock is before it.
    pub valid_until: i64,
}

impl std::fmt::Debug for PreviousDigest {
    // An HA1 is as good as the password for the realm: only the deadline is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviousDigest")
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

impl PreviousDigest {
    /// Whether the registrar still accepts it at Unix second `now`.
    pub fn in_force(&self, now: i64) -> bool {
        now < self.valid_until
    }
}

/// What [`previous_after`] decides from.
pub struct Change<'a> {
    /// The password that was in force before this reconcile changed it; `None` when it did
    /// not change, or when nothing was there before (a new credential, or a Secret that was
    /// deleted, whose password nobody knows any more).
    pub replaced: Option<&'a Password>,
    /// The password in force from now on.
    pub current: &'a Password,
    /// The previous digest the Secret holds now.
    pub stored: Option<PreviousDigest>,
    /// When the credential last changed under a grace period, as the Secret holds it (Unix
    /// seconds); `None` when it never did, or in a Secret written before this was recorded.
    pub stored_changed_at: Option<i64>,
    /// The grace period that applies (`None`: none).
    pub grace: Option<Duration>,
    /// The digest username and realm the HA1s are computed with.
    pub username: &'a str,
    pub realm: &'a str,
    /// The domain's digest algorithms: one HA1 each.
    pub algorithms: &'a [DigestAlgorithm],
    /// This reconcile's Unix second.
    pub now: i64,
}

/// A credential's previous digest after this reconcile, pure. No grace period: none (today's
/// behaviour, also when a grace period is removed while one runs). A change: the replaced
/// password's digests until `now + grace`. Otherwise the stored one while it is in force, its
/// deadline never later than the change plus the grace period that applies now (a grace
/// period shortened while one runs shortens it too) nor than the change plus
/// [`MAX_GRACE_PERIOD`].
pub fn previous_after(change: &Change<'_>) -> Option<PreviousDigest> {
    let grace = change.grace?;
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    match replaced(change) {
        Some(old) => {
            let digest = |alg| {
                change
                    .algorithms
                    .contains(&alg)
                    .then(|| ha1(alg, change.username, change.realm, old))
            };
            Some(PreviousDigest {
                ha1_md5: digest(DigestAlgorithm::Md5),
                ha1_sha256: digest(DigestAlgorithm::Sha256),
                valid_until: change.now.saturating_add(secs(grace)),
            })
        }
        None => {
            let stored = change.stored.clone()?;
            let bounded = match change.stored_changed_at {
                Some(at) => stored
                    .valid_until
                    .min(at.saturating_add(secs(grace)))
                    .min(at.saturating_add(secs(MAX_GRACE_PERIOD))),
                // Written before the change time was recorded: the deadline as stored.
                None => stored.valid_until,
            };
            Some(PreviousDigest {
                valid_until: bounded,
                ..stored
            })
            .filter(|p| p.in_force(change.now))
        }
    }
}

/// The password this reconcile replaced, if it is a change.
fn replaced<'a>(change: &Change<'a>) -> Option<&'a Password> {
    change.replaced.filter(|old| *old != change.current)
}

/// When the credential last changed under a grace period, after this reconcile (Unix
/// seconds), pure: `now` for a change while a grace period applies, else what was stored
/// (kept after the deadline: a contact whose last REGISTER is older than it used a password
/// that is no longer accepted). A previous digest stored without it (written before it was
/// recorded) counts as changed a grace period before its deadline. A change without a grace
/// period keeps the stored one: without a grace period, contacts are left to refresh as
/// before.
pub fn changed_at_after(change: &Change<'_>) -> Option<i64> {
    if change.grace.is_some() && replaced(change).is_some() {
        return Some(change.now);
    }
    change.stored_changed_at.or_else(|| {
        let (stored, grace) = (change.stored.as_ref()?, change.grace?);
        Some(
            stored
                .valid_until
                .saturating_sub(i64::try_from(grace.as_secs()).unwrap_or(i64::MAX)),
        )
    })
}

/// Whether a contact is on a credential's previous password (or an older one): the registrar
/// marked it so (it re-registered with the previous password), or its last REGISTER
/// (`last_modified`, Unix seconds) is older than the credential's change under a grace period
/// (`changed_at`): it was accepted with a password that was current then. Pure.
pub fn on_previous(flagged: bool, last_modified: Option<i64>, changed_at: Option<i64>) -> bool {
    flagged || matches!((last_modified, changed_at), (Some(at), Some(changed)) if at < changed)
}

/// How long until the earliest of `deadlines` (Unix seconds) passes, counted from `now`, plus
/// a second so that the reconcile then runs after it; `None` without any.
pub fn until_earliest(deadlines: impl IntoIterator<Item = i64>, now: i64) -> Option<Duration> {
    deadlines
        .into_iter()
        .min()
        .map(|t| Duration::from_secs(u64::try_from(t.saturating_sub(now)).unwrap_or(0) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_periods_parse_like_go_durations_of_hours_minutes_seconds() {
        let secs = |s: &str| parse_grace_period(s).map(|d| d.as_secs());
        assert_eq!(secs("24h"), Ok(86_400));
        assert_eq!(secs("90m"), Ok(5_400));
        assert_eq!(secs("1h30m"), Ok(5_400));
        assert_eq!(secs("1h30m15s"), Ok(5_415));
        assert_eq!(secs("45s"), Ok(45));
        assert_eq!(secs("0s"), Ok(0));
        assert_eq!(secs("720h"), Ok(2_592_000));
        for bad in ["", "1d", "h", "30m1h", "1.5h", "1h1h", "-1h", "10", "1h ", "5ms"] {
            assert!(
                matches!(parse_grace_period(bad), Err(GracePeriodError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_grace_period("721h"),
            Err(GracePeriodError::TooLong(_))
        ));
        assert!(matches!(
            parse_grace_period("719h61m"),
            Err(GracePeriodError::TooLong(_))
        ));
        let pattern = regex::Regex::new(GRACE_PERIOD_PATTERN).expect("pattern");
        for ok in ["24h", "1h30m", "45s", "0s"] {
            assert!(pattern.is_match(ok) && parse_grace_period(ok).is_ok(), "{ok}");
        }
        for bad in ["1d", "1.5h", "30m1h"] {
            assert!(!pattern.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn the_users_grace_period_wins_and_zero_is_none() {
        let g = |u, d| effective_grace_period(u, d).map(|o| o.map(|d| d.as_secs()));
        assert_eq!(g(None, None), Ok(None));
        assert_eq!(g(None, Some("1h")), Ok(Some(3600)));
        assert_eq!(g(Some("10m"), Some("1h")), Ok(Some(600)));
        assert_eq!(g(Some("0s"), Some("1h")), Ok(None), "the user opts out");
        assert!(g(Some("1d"), None).is_err());
    }

    fn change<'a>(
        replaced: Option<&'a Password>,
        current: &'a Password,
        stored: Option<PreviousDigest>,
        grace: Option<u64>,
    ) -> Change<'a> {
        Change {
            replaced,
            current,
            stored,
            stored_changed_at: None,
            grace: grace.map(Duration::from_secs),
            username: "alice",
            realm: "acme.example.com",
            algorithms: &[DigestAlgorithm::Md5],
            now: 1000,
        }
    }

    #[test]
    fn a_change_keeps_the_replaced_digest_until_the_deadline_and_no_grace_keeps_nothing() {
        let (old, new) = (Password::new("old"), Password::new("new"));
        let p = previous_after(&change(Some(&old), &new, None, Some(60))).expect("kept");
        assert_eq!(
            p.ha1_md5.as_deref(),
            Some(ha1(DigestAlgorithm::Md5, "alice", "acme.example.com", &old).as_str())
        );
        assert_eq!((p.ha1_sha256.as_deref(), p.valid_until), (None, 1060));
        assert!(p.in_force(1059) && !p.in_force(1060));
        let shown = format!("{:?}", previous_after(&change(Some(&old), &new, None, Some(60))));
        assert!(!shown.contains(&ha1(DigestAlgorithm::Md5, "alice", "acme.example.com", &old)));

        assert_eq!(
            previous_after(&change(Some(&old), &new, None, None)),
            None,
            "no grace period: today's behaviour"
        );
        assert_eq!(
            previous_after(&change(None, &new, None, Some(60))),
            None,
            "nothing replaced"
        );
        assert_eq!(
            previous_after(&change(Some(&new), &new, None, Some(60))),
            None,
            "the same password is no change"
        );
        let stored = |until| PreviousDigest {
            ha1_md5: Some("x".into()),
            ha1_sha256: None,
            valid_until: until,
        };
        assert_eq!(
            previous_after(&change(None, &new, Some(stored(1001)), Some(60))),
            Some(stored(1001)),
            "kept while in force"
        );
        assert_eq!(
            previous_after(&change(None, &new, Some(stored(1000)), Some(60))),
            None,
            "dropped at the deadline"
        );
        assert_eq!(
            previous_after(&change(None, &new, Some(stored(1001)), None)),
            None,
            "a grace period removed ends the one running"
        );
        let again = previous_after(&change(Some(&old), &new, Some(stored(1001)), Some(60))).expect("kept");
        assert_eq!(
            again.valid_until, 1060,
            "a second change replaces the previous one"
        );
    }

    #[test]
    fn a_shortened_grace_period_shortens_the_one_running_and_none_outlasts_the_maximum() {
        let new = Password::new("new");
        let stored = |until| PreviousDigest {
            ha1_md5: Some("x".into()),
            ha1_sha256: None,
            valid_until: until,
        };
        // Changed at 900 with 24h; the grace period is now 1h: it ends at 900 + 3600.
        let mut c = change(None, &new, Some(stored(900 + 86_400)), Some(3600));
        c.stored_changed_at = Some(900);
        assert_eq!(previous_after(&c).map(|p| p.valid_until), Some(4500));
        // Lengthened: the stored deadline stands (the change was announced with it).
        c.grace = Some(Duration::from_secs(2 * 86_400));
        assert_eq!(previous_after(&c).map(|p| p.valid_until), Some(900 + 86_400));
        // A deadline beyond 720h after the change (a hand-edited Secret) is cut there.
        let far = 900 + 10 * MAX_GRACE_PERIOD.as_secs() as i64;
        let mut c = change(None, &new, Some(stored(far)), Some(MAX_GRACE_PERIOD.as_secs()));
        c.stored_changed_at = Some(900);
        assert_eq!(
            previous_after(&c).map(|p| p.valid_until),
            Some(900 + MAX_GRACE_PERIOD.as_secs() as i64)
        );
        // Shortened so that it already ended: gone.
        let mut c = change(None, &new, Some(stored(900 + 86_400)), Some(60));
        c.stored_changed_at = Some(900);
        assert_eq!(previous_after(&c), None);
    }

    #[test]
    fn the_change_time_is_recorded_with_a_grace_period_and_kept_after_it() {
        let (old, new) = (Password::new("old"), Password::new("new"));
        let stored = PreviousDigest {
            ha1_md5: Some("x".into()),
            ha1_sha256: None,
            valid_until: 1060,
        };
        assert_eq!(
            changed_at_after(&change(Some(&old), &new, None, Some(60))),
            Some(1000)
        );
        assert_eq!(
            changed_at_after(&change(Some(&old), &new, None, None)),
            None,
            "no grace period: not recorded"
        );
        let mut kept = change(None, &new, None, Some(60));
        kept.stored_changed_at = Some(500);
        assert_eq!(changed_at_after(&kept), Some(500), "kept after its deadline");
        kept.grace = None;
        assert_eq!(
            changed_at_after(&kept),
            Some(500),
            "and once the grace period is removed"
        );
        assert_eq!(
            changed_at_after(&change(None, &new, Some(stored), Some(60))),
            Some(1000),
            "a digest stored without it: a grace period before its deadline"
        );
    }

    #[test]
    fn a_contact_registered_before_the_change_is_on_the_previous_password() {
        assert!(
            on_previous(true, Some(2000), Some(1000)),
            "marked by the registrar"
        );
        assert!(
            on_previous(false, Some(999), Some(1000)),
            "registered before the change"
        );
        assert!(!on_previous(false, Some(1000), Some(1000)));
        assert!(
            !on_previous(false, Some(999), None),
            "no change under a grace period"
        );
        assert!(
            !on_previous(false, None, Some(1000)),
            "the registrar does not say when"
        );
    }

    #[test]
    fn the_reconcile_after_the_earliest_deadline_is_a_second_past_it() {
        assert_eq!(until_earliest([1060, 1030], 1000), Some(Duration::from_secs(31)));
        assert_eq!(until_earliest([990], 1000), Some(Duration::from_secs(1)));
        assert_eq!(until_earliest([], 1000), None);
    }
}
