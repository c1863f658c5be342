//! Which SipUsers of a namespace are admitted, pure and deterministic: the oldest valid user
//! (creationTimestamp, then name) wins every contest — a username, extension or alias in its
//! domain, a seat under the domain's `maxUsers`, a seat in its profile's `capacity`. Every
//! reconcile recomputes it from the caches, so deleting a winner heals the losers.
use std::collections::{BTreeMap, HashMap, HashSet};

use regex::Regex;

use super::status::reasons;

pub mod extension_pattern;
pub mod healing;
use crate::api::{SipDomain, SipProfile, SipUser};

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
    fn stalled(reason: &'static str, message: String) -> Self {
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

/// Whether a Stalled reason comes from admission (rather than from a later step).
pub fn is_admission_reason(reason: &str) -> bool {
    [
        reasons::DOMAIN_NOT_FOUND,
        reasons::DOMAIN_NOT_READY,
        reasons::PROFILE_NOT_FOUND,
        reasons::EXTENSION_PATTERN_MISMATCH,
        reasons::USERNAME_CONFLICT,
        reasons::EXTENSION_CONFLICT,
        reasons::ALIAS_CONFLICT,
        reasons::DOMAIN_USER_LIMIT_REACHED,
        reasons::PROFILE_CAPACITY_EXCEEDED,
    ]
    .contains(&reason)
}

/// Admission for one namespace.
#[derive(Clone, Debug, Default)]
pub struct Admission {
    /// By SipUser name.
    pub users: BTreeMap<String, Verdict>,
    /// Admitted users per SipDomain name.
    pub domain_users: HashMap<String, i32>,
    /// Admitted users per SipProfile name.
    pub profile_users: HashMap<String, i32>,
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

#[derive(Clone, Copy)]
enum NameKind {
    Username,
    Extension,
    Alias,
}

impl NameKind {
    fn field(self) -> &'static str {
        match self {
            NameKind::Username => "username",
            NameKind::Extension => "extension",
            NameKind::Alias => "alias",
        }
    }

    fn conflict_reason(self) -> &'static str {
        match self {
            NameKind::Username => reasons::USERNAME_CONFLICT,
            NameKind::Extension => reasons::EXTENSION_CONFLICT,
            NameKind::Alias => reasons::ALIAS_CONFLICT,
        }
    }
}

/// The names a user claims in its domain, each once (a user may reuse its own name).
fn claimed_names(user: &SipUser) -> Vec<(&str, NameKind)> {
    let mut seen = HashSet::new();
    std::iter::once((user.username(), NameKind::Username))
        .chain(user.spec.extension.as_deref().map(|e| (e, NameKind::Extension)))
        .chain(user.spec.aliases.iter().map(|a| (a.as_str(), NameKind::Alias)))
        .filter(|(name, _)| seen.insert(*name))
        .collect()
}

/// Admits the users of one namespace. `domains`, `profiles` and `users` are that namespace's
/// objects; `domain_losers` names the domains (by name) that lost a cluster-wide claim on
/// their FQDN, with the winner.
pub fn admit(
    domains: &[&SipDomain],
    profiles: &[&SipProfile],
    users: &[&SipUser],
    domain_losers: &HashMap<String, String>,
) -> Admission {
    let domains: HashMap<&str, &SipDomain> = domains
        .iter()
        .map(|d| (d.metadata.name.as_deref().unwrap_or_default(), *d))
        .collect();
    let profiles: HashMap<&str, &SipProfile> = profiles
        .iter()
        .map(|p| (p.metadata.name.as_deref().unwrap_or_default(), *p))
        .collect();
    let patterns: HashMap<&str, Option<Regex>> = domains
        .iter()
        .map(|(name, d)| {
            (
                *name,
                d.spec
                    .extension_pattern
                    .as_deref()
                    .and_then(|p| extension_pattern::compile(p).ok()),
            )
        })
        .collect();

    let mut ordered: Vec<&SipUser> = users.to_vec();
    ordered.sort_by_key(|u| age_key(*u));

    let mut admission = Admission::default();
    // (domain name, claimed name) -> (winner user name, the winner's field)
    let mut claims: HashMap<(&str, &str), (&str, NameKind)> = HashMap::new();
    for user in ordered {
        let name = user.metadata.name.as_deref().unwrap_or_default();
        let verdict = judge(
            user,
            &domains,
            &profiles,
            &patterns,
            domain_losers,
            &claims,
            &admission,
        );
        if verdict == Verdict::Admitted {
            let domain = user.spec.domain_ref.as_str();
            for (claimed, kind) in claimed_names(user) {
                claims.insert((domain, claimed), (name, kind));
            }
            *admission.domain_users.entry(domain.to_string()).or_default() += 1;
            if let Some(profile) = user.profile_name(domains.get(domain).copied()) {
                *admission.profile_users.entry(profile.to_string()).or_default() += 1;
            }
        }
        admission.users.insert(name.to_string(), verdict);
    }
    admission
}

fn judge(
    user: &SipUser,
    domains: &HashMap<&str, &SipDomain>,
    profiles: &HashMap<&str, &SipProfile>,
    patterns: &HashMap<&str, Option<Regex>>,
    domain_losers: &HashMap<String, String>,
    claims: &HashMap<(&str, &str), (&str, NameKind)>,
    admitted: &Admission,
) -> Verdict {
    let domain_name = user.spec.domain_ref.as_str();
    let Some(domain) = domains.get(domain_name).copied() else {
        return Verdict::stalled(
            reasons::DOMAIN_NOT_FOUND,
            format!(
                "SipDomain {domain_name:?} does not exist in this namespace; create it or correct spec.domainRef"
            ),
        );
    };
    if let Some((_, problem)) = domain_problem(domain, domain_losers.get(domain_name).map(String::as_str)) {
        return Verdict::stalled(
            reasons::DOMAIN_NOT_READY,
            format!("SipDomain {domain_name:?} cannot take users: {problem}"),
        );
    }
    let profile_name = user.profile_name(Some(domain));
    let profile = match profile_name {
        Some(p) => match profiles.get(p) {
            Some(profile) => Some(*profile),
            None => {
                let from = if user.spec.profile_ref.is_some() {
                    "spec.profileRef"
                } else {
                    "the domain's spec.defaultProfile"
                };
                return Verdict::stalled(
                    reasons::PROFILE_NOT_FOUND,
                    format!(
                        "SipProfile {p:?} (named by {from}) does not exist in this namespace; create it or correct {from}"
                    ),
                );
            }
        },
        None => None,
    };
    if let (Some(extension), Some(Some(pattern))) = (&user.spec.extension, patterns.get(domain_name))
        && !pattern.is_match(extension)
    {
        return Verdict::stalled(
            reasons::EXTENSION_PATTERN_MISMATCH,
            format!(
                "extension {extension:?} does not match the extensionPattern {:?} of SipDomain {domain_name:?}; choose a matching extension",
                pattern.as_str()
            ),
        );
    }
    for (name, kind) in claimed_names(user) {
        if let Some((winner, their_kind)) = claims.get(&(domain_name, name)) {
            return Verdict::stalled(
                kind.conflict_reason(),
                format!(
                    "{} {name:?} is already the {} of the older SipUser {winner} in SipDomain {domain_name:?} \
                     (usernames, extensions and aliases share one namespace per domain); choose another {}",
                    kind.field(),
                    their_kind.field(),
                    kind.field()
                ),
            );
        }
    }
    if let Some(max) = domain.spec.max_users
        && admitted.domain_users.get(domain_name).copied().unwrap_or(0) >= max
    {
        return Verdict::stalled(
            reasons::DOMAIN_USER_LIMIT_REACHED,
            format!(
                "SipDomain {domain_name:?} admits at most {max} users (spec.maxUsers) and older users fill it; raise maxUsers or remove a user"
            ),
        );
    }
    if let (Some(profile), Some(name)) = (profile, profile_name)
        && let Some(capacity) = profile.spec.capacity
        && admitted.profile_users.get(name).copied().unwrap_or(0) >= capacity
    {
        return Verdict::stalled(
            reasons::PROFILE_CAPACITY_EXCEEDED,
            format!(
                "SipProfile {name:?} is full: its capacity of {capacity} is taken by older users; raise spec.capacity or move this user to another profile"
            ),
        );
    }
    Verdict::Admitted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::fixtures::{domain, profile, user};

    fn run(domains: &[SipDomain], profiles: &[SipProfile], users: &[SipUser]) -> Admission {
        let d: Vec<_> = domains.iter().collect();
        let p: Vec<_> = profiles.iter().collect();
        let u: Vec<_> = users.iter().collect();
        admit(&d, &p, &u, &HashMap::new())
    }

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

        let u = user("u").domain("acme2").build();
        let a = admit(
            &[&loser],
            &[],
            &[&u],
            &HashMap::from([("acme2".to_string(), "a/acme".to_string())]),
        );
        assert_eq!(a.users["u"].reason(), Some(reasons::DOMAIN_NOT_READY));
    }
}
