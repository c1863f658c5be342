//! Which SipUsers of a namespace are admitted, pure and deterministic: the oldest valid user
//! (creationTimestamp, then name) wins every contest — a username, extension or alias in its
//! domain, a seat under the domain's `maxUsers`, a seat in its profile's `capacity`; deleting
//! a winner heals the losers. [`index`] keeps it current from watch events.
use std::collections::HashMap;

use super::status::reasons;
use crate::api::SipDomain;

pub mod extension_pattern;
pub mod healing;
pub mod index;

/// The outcome for one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Admitted,
    /// Not admitted until a person changes something; `reason` is a Stalled reason.
    Stalled {
        reason: &'static str,
        message: String,
    },
}

impl Verdict {
    pub fn stalled(reason: &'static str, message: String) -> Self {
        Verdict::Stalled { reason, message }
    }

    /// The Stalled reason, `None` when admitted.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Verdict::Admitted => None,
            Verdict::Stalled { reason, .. } => Some(reason),
        }
    }
}

/// Why a SipDomain cannot take users, if it cannot.
pub fn domain_problem(domain: &SipDomain, conflict_winner: Option<&str>) -> Option<(&'static str, String)> {
    if let Some(winner) = conflict_winner {
        return Some((
            reasons::DOMAIN_CONFLICT,
            format!(
                "domain {} is already claimed by the older SipDomain {winner}; delete one of them or use another domain",
                domain.spec.domain
            ),
        ));
    }
    if let Some(pattern) = &domain.spec.extension_pattern
        && let Err(err) = extension_pattern::compile(pattern)
    {
        return Some((
            reasons::INVALID_EXTENSION_PATTERN,
            format!("spec.extensionPattern is not a valid regular expression: {err}"),
        ));
    }
    None
}

/// The older of two objects by creationTimestamp, then namespace/name: the winner of contests.
pub fn age_key<K: kube::Resource>(obj: &K) -> (Option<k8s_openapi::jiff::Timestamp>, String, String) {
    let meta = obj.meta();
    (
        // An object without a timestamp has not been stored yet: it is the newest.
        meta.creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(Some(k8s_openapi::jiff::Timestamp::MAX)),
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// For every SipDomain that loses a claim on its `spec.domain`, the winner as `namespace/name`.
pub fn domain_conflicts<'a>(
    domains: impl IntoIterator<Item = &'a SipDomain>,
) -> HashMap<(String, String), String> {
    let mut by_fqdn: HashMap<&str, Vec<&SipDomain>> = HashMap::new();
    for d in domains {
        by_fqdn.entry(d.spec.domain.as_str()).or_default().push(d);
    }
    let mut losers = HashMap::new();
    for mut claimants in by_fqdn.into_values() {
        claimants.sort_by_key(|d| age_key(*d));
        let winner = format!(
            "{}/{}",
            claimants[0].metadata.namespace.as_deref().unwrap_or_default(),
            claimants[0].metadata.name.as_deref().unwrap_or_default()
        );
        for loser in &claimants[1..] {
            let key = (
                loser.metadata.namespace.clone().unwrap_or_default(),
                loser.metadata.name.clone().unwrap_or_default(),
            );
            losers.insert(key, winner.clone());
        }
    }
    losers
}

#[cfg(test)]
mod tests {
    use super::index::{Admission, admit as run};
    use super::*;
    use crate::controller::fixtures::{domain, profile, user};

    fn reason(a: &Admission, user: &str) -> Option<&'static str> {
        a.users[user].reason()
    }

    fn message(a: &Admission, user: &str) -> String {
        match &a.users[user] {
            Verdict::Stalled { message, .. } => message.clone(),
            Verdict::Admitted => String::new(),
        }
    }

    #[test]
    fn missing_domain_and_profile_are_named() {
        let a = run(
            &[domain("acme").build()],
            &[],
            &[
                user("a").domain("nope").build(),
                user("b").profile("gold").build(),
            ],
        );
        assert_eq!(reason(&a, "a"), Some(reasons::DOMAIN_NOT_FOUND));
        assert!(message(&a, "a").contains("\"nope\""));
        assert_eq!(reason(&a, "b"), Some(reasons::PROFILE_NOT_FOUND));
        assert!(message(&a, "b").contains("\"gold\"") && message(&a, "b").contains("spec.profileRef"));
    }

    #[test]
    fn default_profile_applies_and_must_exist() {
        let d = domain("acme").default_profile("agent").build();
        let a = run(std::slice::from_ref(&d), &[], &[user("a").build()]);
        assert_eq!(reason(&a, "a"), Some(reasons::PROFILE_NOT_FOUND));
        assert!(message(&a, "a").contains("defaultProfile"));
        let a = run(&[d], &[profile("agent").build()], &[user("a").build()]);
        assert_eq!(a.users["a"], Verdict::Admitted);
        assert_eq!(a.profile_users["agent"], 1);
    }

    #[test]
    fn oldest_user_keeps_a_name_across_username_extension_and_alias() {
        let users = [
            user("zed").created(1).extension("7001").build(),
            user("amy").created(2).extension("7001").build(),
            user("bob").created(3).alias("zed").build(),
            user("cat").created(4).username("7001").build(),
            user("dan").created(5).alias("amy").build(),
        ];
        let a = run(&[domain("acme").build()], &[], &users);
        assert_eq!(a.users["zed"], Verdict::Admitted);
        assert_eq!(reason(&a, "amy"), Some(reasons::EXTENSION_CONFLICT));
        assert!(
            message(&a, "amy").contains("SipUser zed"),
            "{}",
            message(&a, "amy")
        );
        assert_eq!(reason(&a, "bob"), Some(reasons::ALIAS_CONFLICT));
        assert_eq!(reason(&a, "cat"), Some(reasons::USERNAME_CONFLICT));
        // amy lost, so her username is free for dan's alias.
        assert_eq!(a.users["dan"], Verdict::Admitted);
        assert_eq!(a.domain_users["acme"], 2);
    }

    #[test]
    fn same_timestamp_falls_back_to_name_order() {
        let a = run(
            &[domain("acme").build()],
            &[],
            &[user("b").extension("1").build(), user("a").extension("1").build()],
        );
        assert_eq!(a.users["a"], Verdict::Admitted);
        assert_eq!(reason(&a, "b"), Some(reasons::EXTENSION_CONFLICT));
    }

    #[test]
    fn names_the_registrar_stores_as_one_address_conflict() {
        // Kamailio saves To: sip:Alice@.. and sip:%61lice@.. as alice@..: an alias that
        // differs from another user's username only by case or escapes would take over its
        // registrations.
        let users = [
            user("alice").created(1).build(),
            user("mallory").created(2).alias("Alice").build(),
            user("eve").created(3).alias("%61lice").build(),
            user("bob").created(4).extension("7001").build(),
        ];
        let a = run(&[domain("acme").build()], &[], &users);
        assert_eq!(a.users["alice"], Verdict::Admitted);
        assert_eq!(a.users["bob"], Verdict::Admitted);
        for loser in ["mallory", "eve"] {
            let Verdict::Stalled { reason, message } = &a.users[loser] else {
                panic!("{loser}: {:?}", a.users[loser]);
            };
            assert_eq!(*reason, reasons::ALIAS_CONFLICT);
            assert!(
                message.contains("alice") && message.contains("case-insensitive"),
                "{message}"
            );
        }
    }

    #[test]
    fn names_are_per_domain_and_a_user_may_repeat_its_own() {
        let users = [
            user("a").extension("a").alias("a").build(),
            user("b").domain("other").username("a").build(),
        ];
        let a = run(&[domain("acme").build(), domain("other").build()], &[], &users);
        assert_eq!(a.users["a"], Verdict::Admitted);
        assert_eq!(a.users["b"], Verdict::Admitted);
    }

    #[test]
    fn extension_pattern_is_enforced_and_an_invalid_pattern_blocks_the_domain() {
        let d = domain("acme").extension_pattern("^7[0-9]{3}$").build();
        let a = run(
            &[d],
            &[],
            &[
                user("a").extension("8001").build(),
                user("b").extension("7002").build(),
            ],
        );
        assert_eq!(reason(&a, "a"), Some(reasons::EXTENSION_PATTERN_MISMATCH));
        assert_eq!(a.users["b"], Verdict::Admitted);

        let bad = domain("acme").extension_pattern("([").build();
        assert!(domain_problem(&bad, None).is_some_and(|(r, _)| r == reasons::INVALID_EXTENSION_PATTERN));
        let a = run(&[bad], &[], &[user("a").build()]);
        assert_eq!(reason(&a, "a"), Some(reasons::DOMAIN_NOT_READY));
    }

    #[test]
    fn max_users_and_capacity_admit_the_oldest() {
        let d = domain("acme").max_users(2).build();
        let p = profile("agent").capacity(1).build();
        let users = [
            user("u1").created(1).profile("agent").build(),
            user("u2").created(2).profile("agent").build(),
            user("u3").created(3).build(),
            user("u4").created(4).build(),
        ];
        let a = run(&[d], &[p], &users);
        assert_eq!(a.users["u1"], Verdict::Admitted);
        assert_eq!(reason(&a, "u2"), Some(reasons::PROFILE_CAPACITY_EXCEEDED));
        assert_eq!(a.users["u3"], Verdict::Admitted);
        assert_eq!(reason(&a, "u4"), Some(reasons::DOMAIN_USER_LIMIT_REACHED));
        assert_eq!((a.domain_users["acme"], a.profile_users["agent"]), (2, 1));

        // Room frees up: u1 goes, u2 is admitted.
        let a = run(
            &[domain("acme").max_users(2).build()],
            &[profile("agent").capacity(1).build()],
            &users[1..],
        );
        assert_eq!(a.users["u2"], Verdict::Admitted);
    }

    #[test]
    fn suspended_users_keep_their_names_and_seats() {
        let p = profile("agent").capacity(1).build();
        let users = [
            user("old")
                .created(1)
                .extension("7001")
                .profile("agent")
                .disabled()
                .build(),
            user("new").created(2).extension("7001").build(),
            user("newer").created(3).profile("agent").build(),
        ];
        let a = run(&[domain("acme").build()], &[p], &users);
        assert_eq!(a.users["old"], Verdict::Admitted);
        assert_eq!(reason(&a, "new"), Some(reasons::EXTENSION_CONFLICT));
        assert_eq!(reason(&a, "newer"), Some(reasons::PROFILE_CAPACITY_EXCEEDED));
    }

    #[test]
    fn oldest_domain_keeps_an_fqdn_cluster_wide() {
        let winner = domain("acme").namespace("a").created(1).build();
        let loser = domain("acme2")
            .namespace("b")
            .fqdn("acme.sip.example.com")
            .created(2)
            .build();
        let other = domain("x").namespace("b").fqdn("x.example.com").build();
        let losers = domain_conflicts([&winner, &loser, &other]);
        assert_eq!(losers.len(), 1);
        assert_eq!(losers[&("b".to_string(), "acme2".to_string())], "a/acme");
        let (reason, message) = domain_problem(&loser, Some("a/acme")).expect("a problem");
        assert_eq!(reason, reasons::DOMAIN_CONFLICT);
        assert!(message.contains("a/acme"));

        let u = user("u").domain("acme2").namespace("b").build();
        let a = run(&[winner, loser], &[], &[u]);
        assert_eq!(a.users["u"].reason(), Some(reasons::DOMAIN_NOT_READY));
    }
}
