//! Failed authentications as a registrar reports them, pure: per address of record the
//! failures in the registrar's current window and the last failure, and the source addresses
//! it blocks. Never a password or digest: only counts, times and addresses.
use std::collections::{BTreeMap, BTreeSet};

/// The last refused authentication against one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastFailure {
    /// Unix seconds.
    pub at: i64,
    /// The address it came from.
    pub source: String,
}

/// What a registrar knows about one user's failed authentications.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFailures {
    /// Failures in the registrar's current window (0 once the window passed).
    pub count: u64,
    /// The last failure, kept longer than the window.
    pub last: Option<LastFailure>,
}

impl UserFailures {
    /// Adds what another endpoint reports about the same user: counts add up, the later
    /// last failure wins.
    pub fn merge(&mut self, other: &UserFailures) {
        self.count = self.count.saturating_add(other.count);
        let later = match (&self.last, &other.last) {
            (None, Some(_)) => true,
            (Some(mine), Some(theirs)) => theirs.at > mine.at,
            _ => false,
        };
        if later {
            self.last.clone_from(&other.last);
        }
    }
}

/// Failed authentications on one registrar endpoint (or merged across several).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthFailures {
    /// By address of record (`username@domain`); only users with a failure are present.
    pub by_aor: BTreeMap<String, UserFailures>,
    /// Source addresses the registrar currently refuses.
    pub blocked: BTreeSet<String>,
}

impl AuthFailures {
    /// Adds another endpoint's report (see [`UserFailures::merge`]); blocked sets unite.
    pub fn merge(&mut self, other: &AuthFailures) {
        for (aor, failures) in &other.by_aor {
            self.by_aor.entry(aor.clone()).or_default().merge(failures);
        }
        self.blocked.extend(other.blocked.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(at: i64, source: &str) -> Option<LastFailure> {
        Some(LastFailure {
            at,
            source: source.into(),
        })
    }

    #[test]
    fn merging_endpoints_sums_counts_keeps_the_latest_failure_and_unites_blocked_sources() {
        let mut a = AuthFailures::default();
        a.by_aor.insert(
            "alice@acme".into(),
            UserFailures {
                count: 2,
                last: last(100, "10.0.0.1"),
            },
        );
        a.blocked.insert("10.0.0.1".into());
        let mut b = AuthFailures::default();
        b.by_aor.insert(
            "alice@acme".into(),
            UserFailures {
                count: 3,
                last: last(200, "10.0.0.2"),
            },
        );
        b.by_aor.insert(
            "bob@acme".into(),
            UserFailures {
                count: 0,
                last: last(50, "10.0.0.3"),
            },
        );
        b.blocked.insert("10.0.0.2".into());
        a.merge(&b);
        assert_eq!(
            a.by_aor["alice@acme"],
            UserFailures {
                count: 5,
                last: last(200, "10.0.0.2")
            }
        );
        assert_eq!(a.by_aor["bob@acme"].last, last(50, "10.0.0.3"));
        assert_eq!(a.blocked.len(), 2);

        // An older last failure does not replace a newer one.
        let mut c = a.by_aor["alice@acme"].clone();
        c.merge(&UserFailures {
            count: 1,
            last: last(150, "10.0.0.9"),
        });
        assert_eq!(c.count, 6);
        assert_eq!(c.last, last(200, "10.0.0.2"));
    }
}
