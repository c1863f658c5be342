//! Admission kept current from watch events instead of recomputed per reconcile.
//!
//! The rule is the one of [`super`]: users are judged oldest first
//! (creationTimestamp, then name) and an admitted user holds its username, extension and
//! aliases in its domain and a seat in its domain and profile. Judging all users of a
//! namespace is O(n); doing it for every reconcile made provisioning N users O(N²).
//!
//! The index instead keeps, per namespace, every user's admission facts in age order, who
//! holds each name, and the seats taken. Most changes are settled in O(1) (amortised):
//! - a user whose names nobody else claims, in a domain and profile without limits (or that
//!   is the newest user), is judged against the current holders and seats alone — nobody
//!   else's verdict can move;
//! - removing a user that was not admitted changes nothing (losers hold nothing);
//! - removing an admitted user whose names nobody else claims, without limits, frees what
//!   nobody waits for.
//!
//! Anything else (a contested name, a full domain, a spec edit, a domain or profile change)
//! marks the namespace dirty; it is judged again in full, once, when next read or by the
//! healing sweep, and the users whose verdict moved are queued ([`Index::take_moved`]).
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use regex::Regex;

use super::{Verdict, domain_conflicts, domain_problem};
use crate::api::{SipDomain, SipProfile, SipUser};
use crate::controller::status::reasons;
use crate::registrar::canonical_user;

/// Where a user stands in the age order of its namespace: creationTimestamp, then name. An
/// object without a timestamp has not been stored yet: it is the newest.
type Age = (Timestamp, String);

fn age_of(meta: &kube::api::ObjectMeta) -> Age {
    (
        meta.creation_timestamp.as_ref().map_or(Timestamp::MAX, |t| t.0),
        meta.name.clone().unwrap_or_default(),
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// What of a SipUser its admission depends on (status and the rest of the spec do not count,
/// so a status write is no change here).
#[derive(Clone, Debug, PartialEq, Eq)]
struct UserFacts {
    domain: String,
    username: String,
    extension: Option<String>,
    aliases: Vec<String>,
    profile_ref: Option<String>,
}

impl UserFacts {
    fn of(user: &SipUser) -> Self {
        UserFacts {
            domain: user.spec.domain_ref.clone(),
            username: user.username().to_string(),
            extension: user.spec.extension.clone(),
            aliases: user.spec.aliases.clone(),
            profile_ref: user.spec.profile_ref.clone(),
        }
    }

    /// The names claimed in the domain, each once (a user may reuse its own name): the key
    /// they are compared by (the registrar's canonical form, see [`canonical_user`]: `Alice`
    /// and `%61lice` are `alice` there), the name as written, and its field.
    fn claimed(&self) -> Vec<(String, &str, NameKind)> {
        let mut names: Vec<(String, &str, NameKind)> = Vec::with_capacity(2 + self.aliases.len());
        let all = std::iter::once((self.username.as_str(), NameKind::Username))
            .chain(self.extension.as_deref().map(|e| (e, NameKind::Extension)))
            .chain(self.aliases.iter().map(|a| (a.as_str(), NameKind::Alias)));
        for (name, kind) in all {
            let key = canonical_user(name);
            if !names.iter().any(|(k, _, _)| *k == key) {
                names.push((key, name, kind));
            }
        }
        names
    }
}

/// What of a SipDomain admission reads, with its extension pattern compiled once.
#[derive(Clone)]
struct DomainFacts {
    object: Arc<SipDomain>,
    pattern: Option<Regex>,
}

impl DomainFacts {
    fn of(domain: Arc<SipDomain>) -> Self {
        let pattern = domain
            .spec
            .extension_pattern
            .as_deref()
            .and_then(|p| super::extension_pattern::compile(p).ok());
        DomainFacts {
            object: domain,
            pattern,
        }
    }

    /// Whether two versions of a domain admit the same way.
    fn same_admission(&self, other: &SipDomain) -> bool {
        let (a, b) = (&self.object, other);
        a.spec.domain == b.spec.domain
            && a.spec.max_users == b.spec.max_users
            && a.spec.default_profile == b.spec.default_profile
            && a.spec.extension_pattern == b.spec.extension_pattern
            && a.metadata.creation_timestamp == b.metadata.creation_timestamp
    }
}

/// The outcome of judging: verdicts, who holds each name, seats taken.
#[derive(Default)]
struct Holdings {
    verdicts: HashMap<String, Verdict>,
    /// Domain name → claimed name → (holder, the holder's field).
    holders: HashMap<String, HashMap<String, (String, NameKind)>>,
    domain_seats: HashMap<String, i32>,
    profile_seats: HashMap<String, i32>,
}

impl Holdings {
    fn holder(&self, domain: &str, name: &str) -> Option<&(String, NameKind)> {
        self.holders.get(domain).and_then(|names| names.get(name))
    }

    fn take(&mut self, user: &str, facts: &UserFacts, profile: Option<&str>) {
        let names = self.holders.entry(facts.domain.clone()).or_default();
        for (key, _, kind) in facts.claimed() {
            names.insert(key, (user.to_string(), kind));
        }
        *self.domain_seats.entry(facts.domain.clone()).or_default() += 1;
        if let Some(p) = profile {
            *self.profile_seats.entry(p.to_string()).or_default() += 1;
        }
    }

    fn give_back(&mut self, facts: &UserFacts, profile: Option<&str>) {
        if let Some(names) = self.holders.get_mut(&facts.domain) {
            for (key, _, _) in facts.claimed() {
                names.remove(&key);
            }
        }
        if let Some(n) = self.domain_seats.get_mut(&facts.domain) {
            *n -= 1;
        }
        if let Some(n) = profile.and_then(|p| self.profile_seats.get_mut(p)) {
            *n -= 1;
        }
    }
}

/// One namespace: its domains, profiles and users, and their admission.
#[derive(Default)]
struct Namespace {
    domains: HashMap<String, DomainFacts>,
    /// Profile name → capacity (None: unlimited).
    profiles: HashMap<String, Option<i32>>,
    users: BTreeMap<Age, UserFacts>,
    ages: HashMap<String, Age>,
    /// Domain name → claimed name → how many live users claim it (admitted or not).
    claimants: HashMap<String, HashMap<String, u32>>,
    held: Holdings,
    /// The verdicts no longer follow from the facts: judge everyone again.
    dirty: bool,
}

impl Namespace {
    fn profile_of<'a>(&'a self, facts: &'a UserFacts) -> Option<&'a str> {
        facts.profile_ref.as_deref().or_else(|| {
            self.domains
                .get(&facts.domain)
                .and_then(|d| d.object.spec.default_profile.as_deref())
        })
    }

    /// Whether the user's domain or profile limits seats (then its age decides what it gets).
    fn limited(&self, facts: &UserFacts) -> bool {
        let domain_limit = self
            .domains
            .get(&facts.domain)
            .is_some_and(|d| d.object.spec.max_users.is_some());
        let profile_limit = self
            .profile_of(facts)
            .and_then(|p| self.profiles.get(p))
            .is_some_and(Option::is_some);
        domain_limit || profile_limit
    }

    /// Whether another live user claims one of these names in the same domain.
    fn contested(&self, facts: &UserFacts, own: u32) -> bool {
        let Some(counts) = self.claimants.get(&facts.domain) else {
            return false;
        };
        facts
            .claimed()
            .iter()
            .any(|(key, _, _)| counts.get(key).copied().unwrap_or(0) > own)
    }

    fn count_claims(&mut self, facts: &UserFacts, up: bool) {
        let counts = self.claimants.entry(facts.domain.clone()).or_default();
        for (key, _, _) in facts.claimed() {
            if up {
                *counts.entry(key).or_default() += 1;
            } else if let Some(n) = counts.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&key);
                }
            }
        }
        if counts.is_empty() {
            self.claimants.remove(&facts.domain);
        }
    }

    /// Judges one user against what older admitted users hold (`self.held`).
    fn judge(&self, facts: &UserFacts, loser_of: impl Fn(&str) -> Option<String>) -> Verdict {
        let domain_name = facts.domain.as_str();
        let Some(domain) = self.domains.get(domain_name) else {
            return Verdict::stalled(
                reasons::DOMAIN_NOT_FOUND,
                format!(
                    "SipDomain {domain_name:?} does not exist in this namespace; create it or correct spec.domainRef"
                ),
            );
        };
        if let Some((_, problem)) = domain_problem(&domain.object, loser_of(domain_name).as_deref()) {
            return Verdict::stalled(
                reasons::DOMAIN_NOT_READY,
                format!("SipDomain {domain_name:?} cannot take users: {problem}"),
            );
        }
        let profile_name = self.profile_of(facts);
        let capacity = match profile_name {
            Some(p) => match self.profiles.get(p) {
                Some(capacity) => *capacity,
                None => {
                    let from = if facts.profile_ref.is_some() {
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
        if let (Some(extension), Some(pattern)) = (&facts.extension, &domain.pattern)
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
        for (key, name, kind) in facts.claimed() {
            if let Some((winner, their_kind)) = self.held.holder(domain_name, &key) {
                return Verdict::stalled(
                    kind.conflict_reason(),
                    format!(
                        "{} {name:?} is already the {} of the older SipUser {winner} in SipDomain {domain_name:?} \
                         (usernames, extensions and aliases share one namespace per domain, compared as the registrar stores \
                         them: case-insensitive, %HH decoded); choose another {}",
                        kind.field(),
                        their_kind.field(),
                        kind.field()
                    ),
                );
            }
        }
        if let Some(max) = domain.object.spec.max_users
            && self.held.domain_seats.get(domain_name).copied().unwrap_or(0) >= max
        {
            return Verdict::stalled(
                reasons::DOMAIN_USER_LIMIT_REACHED,
                format!(
                    "SipDomain {domain_name:?} admits at most {max} users (spec.maxUsers) and older users fill it; raise maxUsers or remove a user"
                ),
            );
        }
        if let (Some(name), Some(capacity)) = (profile_name, capacity)
            && self.held.profile_seats.get(name).copied().unwrap_or(0) >= capacity
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

    /// Judges every user again, oldest first; returns the users whose verdict moved.
    fn rejudge(&mut self, loser_of: impl Fn(&str) -> Option<String>) -> Vec<String> {
        let before = std::mem::take(&mut self.held);
        for ((_, name), facts) in &self.users {
            let verdict = self.judge(facts, &loser_of);
            if verdict == Verdict::Admitted {
                let profile = self.profile_of(facts).map(str::to_string);
                self.held.take(name, facts, profile.as_deref());
            }
            self.held.verdicts.insert(name.clone(), verdict);
        }
        self.dirty = false;
        self.held
            .verdicts
            .iter()
            .filter(|(name, v)| before.verdicts.get(*name) != Some(*v))
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn upsert_user(&mut self, user: &SipUser, loser_of: impl Fn(&str) -> Option<String>) {
        let name = user.name_any();
        let facts = UserFacts::of(user);
        let age = age_of(&user.metadata);
        if self.ages.get(&name).is_some_and(|known| *known != age) {
            // Deleted and created again under the same name: a new user.
            self.remove_user(&name);
        }
        if self.ages.contains_key(&name) {
            let Some(old) = self.users.get(&age) else {
                return;
            };
            if *old == facts {
                return;
            }
            let old = old.clone();
            self.count_claims(&old, false);
            self.count_claims(&facts, true);
            self.users.insert(age, facts);
            self.dirty = true;
            return;
        }
        let newest = self.users.last_key_value().is_none_or(|(last, _)| *last < age);
        let settled_alone = !self.dirty && !self.contested(&facts, 0) && (newest || !self.limited(&facts));
        self.count_claims(&facts, true);
        self.ages.insert(name.clone(), age.clone());
        if settled_alone {
            let verdict = self.judge(&facts, loser_of);
            if verdict == Verdict::Admitted {
                let profile = self.profile_of(&facts).map(str::to_string);
                self.held.take(&name, &facts, profile.as_deref());
            }
            self.held.verdicts.insert(name, verdict);
        } else {
            self.dirty = true;
        }
        self.users.insert(age, facts);
    }

    fn remove_user(&mut self, name: &str) {
        let Some(age) = self.ages.remove(name) else {
            return;
        };
        let Some(facts) = self.users.remove(&age) else {
            return;
        };
        self.count_claims(&facts, false);
        let verdict = self.held.verdicts.remove(name);
        if self.dirty || verdict != Some(Verdict::Admitted) {
            // Losers hold nothing; a dirty namespace is judged again anyway.
            return;
        }
        if self.contested(&facts, 0) || self.limited(&facts) {
            // Someone may be waiting for what it held.
            self.dirty = true;
            return;
        }
        let profile = self.profile_of(&facts).map(str::to_string);
        self.held.give_back(&facts, profile.as_deref());
    }
}

/// Admission of every watched namespace; see the module docs.
#[derive(Default)]
pub struct Index {
    namespaces: HashMap<String, Namespace>,
    /// SipDomains that lost the cluster-wide claim on their FQDN: (namespace, name) → winner.
    domain_losers: HashMap<(String, String), String>,
    /// Users whose verdict moved in a full judging, not yet queued for reconcile.
    moved: Vec<ObjectRef<SipUser>>,
}

impl Index {
    fn loser_of<'a>(
        losers: &'a HashMap<(String, String), String>,
        ns: &'a str,
    ) -> impl Fn(&str) -> Option<String> + 'a {
        move |domain| losers.get(&(ns.to_string(), domain.to_string())).cloned()
    }

    /// Records a user as the watch (or a reconcile) saw it; a user being deleted leaves.
    pub fn upsert_user(&mut self, user: &SipUser) {
        let ns = user.namespace().unwrap_or_default();
        if user.metadata.deletion_timestamp.is_some() {
            return self.remove_user(&ns, &user.name_any());
        }
        let losers = &self.domain_losers;
        let space = self.namespaces.entry(ns.clone()).or_default();
        space.upsert_user(user, Self::loser_of(losers, &ns));
    }

    /// Forgets a user (deleted, or being deleted: it holds nothing any more).
    pub fn remove_user(&mut self, namespace: &str, name: &str) {
        if let Some(space) = self.namespaces.get_mut(namespace) {
            space.remove_user(name);
        }
    }

    /// Records a SipDomain (`None`: it is gone).
    pub fn set_domain(&mut self, namespace: &str, name: &str, domain: Option<Arc<SipDomain>>) {
        let space = self.namespaces.entry(namespace.to_string()).or_default();
        let same = match (space.domains.get(name), &domain) {
            (Some(old), Some(new)) => old.same_admission(new),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        match domain {
            Some(d) => space.domains.insert(name.to_string(), DomainFacts::of(d)),
            None => space.domains.remove(name),
        };
        space.dirty = true;
        // The FQDN claims are cluster-wide; domains are few, so they are recounted whole.
        let losers = domain_conflicts(
            self.namespaces
                .values()
                .flat_map(|s| s.domains.values().map(|d| d.object.as_ref())),
        );
        for (ns, space) in &mut self.namespaces {
            let moved =
                |(key, winner): (&(String, String), &String)| &key.0 == ns && losers.get(key) != Some(winner);
            let lost = |(key, winner): (&(String, String), &String)| {
                &key.0 == ns && self.domain_losers.get(key) != Some(winner)
            };
            if self.domain_losers.iter().any(moved) || losers.iter().any(lost) {
                space.dirty = true;
            }
        }
        self.domain_losers = losers;
    }

    /// Records a SipProfile (`None`: it is gone).
    pub fn set_profile(&mut self, namespace: &str, name: &str, profile: Option<&SipProfile>) {
        let space = self.namespaces.entry(namespace.to_string()).or_default();
        let capacity = profile.map(|p| p.spec.capacity);
        if space.profiles.get(name).copied() == capacity {
            return;
        }
        match capacity {
            Some(c) => space.profiles.insert(name.to_string(), c),
            None => space.profiles.remove(name),
        };
        space.dirty = true;
    }

    /// Judges dirty namespaces again (all, or only `namespace`), noting who moved.
    fn settle(&mut self, only: Option<&str>) {
        let losers = &self.domain_losers;
        for (ns, space) in &mut self.namespaces {
            if space.dirty && only.is_none_or(|o| o == ns) {
                let moved = space.rejudge(Self::loser_of(losers, ns));
                self.moved
                    .extend(moved.into_iter().map(|name| ObjectRef::new(&name).within(ns)));
            }
        }
    }

    /// The verdict for `user`. One the index does not know (the watch has not delivered it
    /// yet, or it was just deleted) is judged against the current holders without being
    /// recorded: only the watch adds users, so a stale copy cannot leave a ghost holding names.
    pub fn verdict(&mut self, user: &SipUser) -> Verdict {
        let ns = user.namespace().unwrap_or_default();
        let name = user.name_any();
        self.settle(Some(&ns));
        let losers = &self.domain_losers;
        let Some(space) = self.namespaces.get(&ns) else {
            return Namespace::default().judge(&UserFacts::of(user), Self::loser_of(losers, &ns));
        };
        match space.held.verdicts.get(&name) {
            Some(verdict) => verdict.clone(),
            None if user.metadata.deletion_timestamp.is_some() => Verdict::Admitted,
            None => space.judge(&UserFacts::of(user), Self::loser_of(losers, &ns)),
        }
    }

    /// Whether the registrar key `username@domain` of `user` belongs to someone else: another
    /// admitted user of the domain holds that username, or the domain lost its FQDN to an
    /// older SipDomain elsewhere.
    pub fn key_held_by_another(&mut self, user: &SipUser) -> bool {
        let ns = user.namespace().unwrap_or_default();
        let name = user.name_any();
        let domain = &user.spec.domain_ref;
        if self.domain_losers.contains_key(&(ns.clone(), domain.clone())) {
            return true;
        }
        self.settle(Some(&ns));
        self.namespaces
            .get(&ns)
            .and_then(|s| s.held.holder(domain, &canonical_user(user.username())))
            .is_some_and(|(holder, kind)| *kind == NameKind::Username && *holder != name)
    }

    /// Admitted users of a SipDomain.
    pub fn domain_seats(&mut self, namespace: &str, domain: &str) -> i32 {
        self.settle(Some(namespace));
        self.namespaces
            .get(namespace)
            .and_then(|s| s.held.domain_seats.get(domain).copied())
            .unwrap_or(0)
    }

    /// Admitted users of a SipProfile.
    pub fn profile_seats(&mut self, namespace: &str, profile: &str) -> i32 {
        self.settle(Some(namespace));
        self.namespaces
            .get(namespace)
            .and_then(|s| s.held.profile_seats.get(profile).copied())
            .unwrap_or(0)
    }

    /// Judges what is dirty and hands out the users whose verdict moved since the last call.
    pub fn take_moved(&mut self) -> Vec<ObjectRef<SipUser>> {
        self.settle(None);
        std::mem::take(&mut self.moved)
    }
}

/// Verdicts and seats of a from-scratch judging, by user, domain and profile name.
#[cfg(test)]
pub struct Admission {
    pub users: BTreeMap<String, Verdict>,
    pub domain_users: HashMap<String, i32>,
    pub profile_users: HashMap<String, i32>,
}

/// Judges these objects from scratch, every namespace in full (no incremental path): the
/// fixture of the rule's tests and the reference the incremental paths are tested against.
#[cfg(test)]
pub fn admit(domains: &[SipDomain], profiles: &[SipProfile], users: &[SipUser]) -> Admission {
    let mut index = Index::default();
    for d in domains {
        index.set_domain(
            &d.namespace().unwrap_or_default(),
            &d.name_any(),
            Some(Arc::new(d.clone())),
        );
    }
    for p in profiles {
        index.set_profile(&p.namespace().unwrap_or_default(), &p.name_any(), Some(p));
    }
    for u in users {
        let space = index
            .namespaces
            .entry(u.namespace().unwrap_or_default())
            .or_default();
        space.dirty = true;
        index.upsert_user(u);
    }
    index.settle(None);
    let mut admission = Admission {
        users: BTreeMap::new(),
        domain_users: HashMap::new(),
        profile_users: HashMap::new(),
    };
    for space in index.namespaces.into_values() {
        admission.users.extend(space.held.verdicts);
        admission
            .domain_users
            .extend(space.held.domain_seats.into_iter().filter(|(_, n)| *n > 0));
        admission
            .profile_users
            .extend(space.held.profile_seats.into_iter().filter(|(_, n)| *n > 0));
    }
    admission
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::fixtures::{domain, profile, user};

    /// The verdicts a full, from-scratch admission gives (the reference).
    fn reference(
        domains: &[SipDomain],
        profiles: &[SipProfile],
        users: &[SipUser],
    ) -> BTreeMap<String, Verdict> {
        admit(domains, profiles, users).users
    }

    fn verdicts(index: &mut Index, users: &[SipUser]) -> BTreeMap<String, Verdict> {
        users.iter().map(|u| (u.name_any(), index.verdict(u))).collect()
    }

    /// A deterministic xorshift, so a failing sequence can be replayed.
    struct Dice(u64);
    impl Dice {
        fn roll(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    fn random_user(dice: &mut Dice, name: &str) -> SipUser {
        let names = ["a", "b", "c", "7001", "7002"];
        let mut u = user(name).created(dice.roll(4) as i64);
        if dice.roll(2) == 0 {
            u = u.username(names[dice.roll(names.len())]);
        }
        if dice.roll(2) == 0 {
            u = u.extension(names[dice.roll(names.len())]);
        }
        if dice.roll(3) == 0 {
            u = u.alias(names[dice.roll(names.len())]);
        }
        match dice.roll(4) {
            0 => u = u.profile("gold"),
            1 => u = u.profile("free"),
            2 => u = u.domain(["acme", "other", "gone"][dice.roll(3)]),
            _ => {}
        }
        u.build()
    }

    #[test]
    fn incremental_verdicts_equal_a_full_admission_after_every_change() {
        for seed in 1..=400u64 {
            let mut dice = Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut index = Index::default();
            let mut domains = vec![domain("acme").build()];
            let mut profiles = vec![profile("free").build()];
            let mut users: Vec<SipUser> = Vec::new();
            let shared = |d: &SipDomain| Arc::new(d.clone());
            index.set_domain("ns", "acme", Some(shared(&domains[0])));
            index.set_profile("ns", "free", Some(&profiles[0]));
            for step in 0..40 {
                match dice.roll(10) {
                    0..=4 => {
                        let name = format!("u{}", dice.roll(12));
                        let u = random_user(&mut dice, &name);
                        users.retain(|x| x.name_any() != name);
                        users.push(u.clone());
                        index.upsert_user(&u);
                    }
                    5 | 6 => {
                        if !users.is_empty() {
                            let gone = users.remove(dice.roll(users.len()));
                            index.remove_user("ns", &gone.name_any());
                        }
                    }
                    7 => {
                        let d = match dice.roll(3) {
                            0 => domain("other").max_users(2).build(),
                            1 => domain("other").extension_pattern("^7").build(),
                            _ => domain("acme").max_users(dice.roll(4) as i32).build(),
                        };
                        let name = d.name_any();
                        domains.retain(|x| x.name_any() != name);
                        domains.push(d.clone());
                        index.set_domain("ns", &name, Some(shared(&d)));
                    }
                    8 => {
                        let p = if dice.roll(2) == 0 {
                            profile("gold").capacity(dice.roll(3) as i32).build()
                        } else {
                            profile("gold").build()
                        };
                        profiles.retain(|x| x.name_any() != "gold");
                        profiles.push(p.clone());
                        index.set_profile("ns", "gold", Some(&p));
                    }
                    _ => {
                        if dice.roll(2) == 0 {
                            domains.retain(|x| x.name_any() != "other");
                            index.set_domain("ns", "other", None);
                        } else {
                            profiles.retain(|x| x.name_any() != "gold");
                            index.set_profile("ns", "gold", None);
                        }
                    }
                }
                // Reading settles the index: let several changes pile up in between.
                if dice.roll(3) != 0 && step != 39 {
                    continue;
                }
                let want = reference(&domains, &profiles, &users);
                let got = verdicts(&mut index, &users);
                assert_eq!(got, want, "seed {seed}, step {step}");
            }
        }
    }

    #[test]
    fn a_new_uncontested_user_is_settled_without_judging_the_namespace() {
        let mut index = Index::default();
        index.set_domain("ns", "acme", Some(Arc::new(domain("acme").build())));
        index.take_moved();
        for i in 0..100 {
            index.upsert_user(&user(&format!("u{i}")).created(100 - i).build());
        }
        assert!(
            !index.namespaces["ns"].dirty,
            "no contest, no limit: nothing to judge again"
        );
        assert_eq!(index.domain_seats("ns", "acme"), 100);
        index.remove_user("ns", "u3");
        assert!(!index.namespaces["ns"].dirty);
        assert_eq!(index.domain_seats("ns", "acme"), 99);
        assert!(index.take_moved().is_empty());
    }

    #[test]
    fn freeing_a_name_moves_the_user_waiting_for_it() {
        let mut index = Index::default();
        index.set_domain("ns", "acme", Some(Arc::new(domain("acme").build())));
        let old = user("old").created(1).extension("7001").build();
        let new = user("new").created(2).extension("7001").build();
        index.upsert_user(&old);
        index.upsert_user(&new);
        assert_eq!(index.verdict(&new).reason(), Some(reasons::EXTENSION_CONFLICT));
        index.take_moved();
        index.remove_user("ns", "old");
        assert_eq!(index.take_moved(), vec![ObjectRef::new("new").within("ns")]);
        assert_eq!(index.verdict(&new), Verdict::Admitted);
    }

    #[test]
    fn the_registrar_key_is_held_by_the_admitted_user_only() {
        let mut index = Index::default();
        index.set_domain("ns", "acme", Some(Arc::new(domain("acme").build())));
        let winner = user("a").created(1).username("alice").build();
        let loser = user("b").created(2).username("alice").build();
        let other = user("c").created(3).extension("bob").build();
        let bob = user("bob").created(4).build();
        for u in [&winner, &loser, &other, &bob] {
            index.upsert_user(u);
        }
        assert!(!index.key_held_by_another(&winner));
        assert!(index.key_held_by_another(&loser));
        // c holds "bob" as an extension, which is not a registrar key.
        assert!(!index.key_held_by_another(&bob));

        let lost = domain("acme2").fqdn("acme.sip.example.com").created(5).build();
        index.set_domain("ns", "acme2", Some(Arc::new(lost)));
        assert!(index.key_held_by_another(&user("d").domain("acme2").build()));
    }

    #[test]
    fn status_writes_and_other_spec_fields_are_no_change() {
        let mut index = Index::default();
        index.set_domain("ns", "acme", Some(Arc::new(domain("acme").build())));
        let mut u = user("a").extension("1").build();
        index.upsert_user(&u);
        index.take_moved();
        index.upsert_user(&u.clone());
        u.spec.enabled = false;
        index.upsert_user(&u);
        assert!(!index.namespaces["ns"].dirty);
        u.spec.extension = Some("2".into());
        index.upsert_user(&u);
        assert!(index.namespaces["ns"].dirty, "an admission fact changed");
    }
}
