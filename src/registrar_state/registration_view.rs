//! A SipDomain's live registrations as last read from its registrar endpoints, and the
//! `status.registration` of one user derived from them, pure.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{
    LineStatus, RegistrationStatus, SecurityStatus, SipUser, SipUserStatus, device_auth_username,
};
use crate::registrar::{AuthFailures, Contact, UserFailures, UserKey};

/// One endpoint's contacts and when they were read.
#[derive(Clone, Debug)]
pub struct Dump {
    /// The endpoint it was read from.
    pub endpoint: std::sync::Arc<str>,
    pub read_at: Timestamp,
    pub contacts: std::sync::Arc<Vec<Contact>>,
    /// Its failed authentications, read with the contacts.
    pub auth_failures: std::sync::Arc<AuthFailures>,
}

/// A contact and when it was read (its expiry counts from then).
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    /// The endpoint that reported it.
    pub endpoint: std::sync::Arc<str>,
    pub read_at: Timestamp,
    pub contact: Contact,
}

/// Contacts per address of record (`username@domain`) of one SIP domain, merged across the
/// endpoints of its registrar.
#[derive(Debug, Default)]
pub struct View {
    by_aor: HashMap<String, Vec<Seen>>,
    /// Failed authentications per AOR of the domain (only users with one), merged across
    /// endpoints: counts summed, the latest last failure.
    failures: HashMap<String, UserFailures>,
    /// Source addresses blocked by any of the domain's endpoints.
    blocked: BTreeSet<String>,
}

impl View {
    /// The view of `fqdn` from the dumps of its endpoints: only its AORs are kept.
    pub fn build(fqdn: &str, dumps: &[Dump]) -> Self {
        let suffix = format!("@{fqdn}");
        let mut by_aor: HashMap<String, Vec<Seen>> = HashMap::new();
        let mut failures: HashMap<String, UserFailures> = HashMap::new();
        let mut blocked = BTreeSet::new();
        for dump in dumps {
            let reported = dump.auth_failures.by_aor.iter();
            for (aor, f) in reported.filter(|(aor, _)| aor.ends_with(&suffix)) {
                failures.entry(aor.clone()).or_default().merge(f);
            }
            blocked.extend(dump.auth_failures.blocked.iter().cloned());
            for contact in dump.contacts.iter().filter(|c| c.aor.ends_with(&suffix)) {
                by_aor.entry(contact.aor.clone()).or_default().push(Seen {
                    endpoint: dump.endpoint.clone(),
                    read_at: dump.read_at,
                    contact: contact.clone(),
                });
            }
        }
        Self {
            by_aor,
            failures,
            blocked,
        }
    }

    /// The failed authentications against `aor` (`username@domain`), `None` when it has none.
    pub fn failures(&self, aor: &str) -> Option<&UserFailures> {
        self.failures.get(aor)
    }

    /// Failures in the registrars' current window across the domain's users.
    pub fn failures_total(&self) -> u64 {
        self.failures
            .values()
            .map(|f| f.count)
            .fold(0, u64::saturating_add)
    }

    /// How many source addresses the domain's endpoints block.
    pub fn blocked_sources(&self) -> usize {
        self.blocked.len()
    }

    /// The contacts of `aor` (`username@domain`).
    pub fn seen(&self, aor: &str) -> &[Seen] {
        self.by_aor.get(aor).map_or(&[], Vec::as_slice)
    }

    /// What `user` of SIP domain `fqdn` should show now: `status.registration` over its own
    /// address and its alias lines (see [`summarize`]), and each listed device's contacts,
    /// those on a previous password counted by `graces`.
    pub fn observed(&self, user: &SipUser, fqdn: &str, now: Timestamp, graces: &Graces) -> Observed {
        let current = user.status.as_ref().and_then(|s| s.registration.as_ref());
        let own = self.seen(&UserKey::new(user.username(), fqdn).key());
        let lines: Vec<(&str, &[Seen])> = user
            .spec
            .aliases
            .iter()
            .map(|a| (a.as_str(), self.seen(&UserKey::new(a, fqdn).key())))
            .collect();
        let auth_usernames: Vec<(&str, String)> = user
            .spec
            .devices
            .iter()
            .map(|d| (d.name.as_str(), device_auth_username(user.username(), &d.name)))
            .collect();
        let all = || own.iter().chain(lines.iter().flat_map(|(_, seen)| seen.iter()));
        let on_previous = |c: &Contact| graces.on_previous(c);
        Observed {
            registration: summarize(own, &lines, current, now, &on_previous),
            devices: device_contacts(all(), &auth_usernames, now, &|_| true),
            previous_password_devices: device_contacts(all(), &auth_usernames, now, &on_previous)
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
            failures: self.failures(&UserKey::new(user.username(), fqdn).key()).cloned(),
        }
    }

    /// Whether none of `aors` has a contact (most users, most of the time).
    pub fn none_on(&self, aors: &[String]) -> bool {
        aors.iter().all(|a| self.seen(a).is_empty())
    }

    /// How many AORs have at least one live contact.
    pub fn registered(&self) -> usize {
        self.by_aor.values().filter(|s| !s.is_empty()).count()
    }
}

/// A user's credentials whose grace period runs, by digest username, each with when it
/// changed: what tells a contact on a previous password apart (see
/// [`crate::rotation::on_previous`]). A contact of any other credential is on none: its
/// previous password is refused (and the contact dropped) or there never was one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Graces(HashMap<String, Option<i64>>);

impl Graces {
    /// Records that the previous password of `auth_username` is accepted now, the credential
    /// having changed at Unix second `changed_at` (`None`: not recorded).
    pub fn running(&mut self, auth_username: impl Into<String>, changed_at: Option<i64>) {
        self.0.insert(auth_username.into(), changed_at);
    }

    /// The grace periods `status` shows running at `now`, for when this reconcile has no
    /// passwords of its own (the credentials step did not run) and for the domain's check of
    /// who needs a reconcile: the credentials with a deadline ahead, each changed at its
    /// `passwordChangedAt` (`username`: the account's).
    pub fn in_status(username: &str, status: Option<&SipUserStatus>, now: Timestamp) -> Self {
        let mut graces = Self::default();
        let Some(status) = status else {
            return graces;
        };
        let ahead = |t: &Option<Time>| t.as_ref().is_some_and(|t| t.0 > now);
        let secs = |t: &Option<Time>| t.as_ref().map(|t| t.0.as_second());
        if ahead(&status.previous_password_valid_until) {
            graces.running(username, secs(&status.password_changed_at));
        }
        for d in status
            .devices
            .iter()
            .filter(|d| ahead(&d.previous_password_valid_until))
        {
            graces.running(d.auth_username.clone(), secs(&d.password_changed_at));
        }
        graces
    }

    /// Whether `contact` counts as on a previous password: its credential's grace period runs
    /// and it re-registered with the previous password, or last registered before the change.
    pub fn on_previous(&self, contact: &Contact) -> bool {
        contact
            .auth_username
            .as_deref()
            .and_then(|au| self.0.get(au))
            .is_some_and(|changed| {
                crate::rotation::on_previous(contact.previous_password, contact.last_modified, *changed)
            })
    }
}

/// What a user's status should say about its registrations, from the view.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// `status.registration`.
    pub registration: RegistrationStatus,
    /// Registered contacts per device name, for every device in `spec.devices`.
    pub devices: BTreeMap<String, i32>,
    /// Of those, the ones registered with the device's previous password (only devices with
    /// any).
    pub previous_password_devices: BTreeMap<String, i32>,
    /// Failed authentications against the user's own address, `None` without any.
    pub failures: Option<UserFailures>,
}

impl Observed {
    /// Whether `status` says something else than this (so the user needs a status write).
    pub fn differs_from(&self, status: Option<&SipUserStatus>) -> bool {
        let registration = status.and_then(|s| s.registration.as_ref());
        // Per device as recorded: (contacts, on the previous password); (0, 0) when not listed.
        let recorded = |name: &str| {
            status
                .and_then(|s| s.devices.iter().find(|d| d.name == name))
                .map_or((0, 0), |d| (d.contacts, d.previous_password_contacts))
        };
        let held = status.and_then(|s| s.security.as_ref());
        registration != Some(&self.registration)
            || security(held, self.failures.as_ref()).as_ref() != held
            || self.devices.iter().any(|(name, contacts)| {
                let previous = self.previous_password_devices.get(name).copied().unwrap_or(0);
                recorded(name) != (*contacts, previous)
            })
    }
}

/// `status.security` from what the registrar reports about the user now: the count in its
/// window and the last failure (the previous one stands once the registrar forgot it). A user
/// that never failed has none, so users without failures never get a write for it.
pub fn security(previous: Option<&SecurityStatus>, now: Option<&UserFailures>) -> Option<SecurityStatus> {
    let Some(now) = now else {
        return previous.map(|p| SecurityStatus {
            failures: 0,
            ..p.clone()
        });
    };
    let (last_failure_time, last_failure_source) = match &now.last {
        Some(last) => (
            Timestamp::from_second(last.at).ok().map(Time),
            Some(last.source.clone()),
        ),
        None => (
            previous.and_then(|p| p.last_failure_time.clone()),
            previous.and_then(|p| p.last_failure_source.clone()),
        ),
    };
    Some(SecurityStatus {
        failures: i64::try_from(now.count).unwrap_or(i64::MAX),
        last_failure_time,
        last_failure_source,
    })
}

/// Whether the contact is still registered at `now` (a view can be old: its registrar
/// stopped answering, and what lapsed since is gone).
pub fn is_live(s: &Seen, now: Timestamp) -> bool {
    expiry(s).is_none_or(|t| t > now)
}

/// Each device's live contacts (each address once) that `wanted` takes, by the digest
/// username that registered them; contacts whose registrar does not say who registered them
/// count for no device.
fn device_contacts<'a>(
    seen: impl Iterator<Item = &'a Seen>,
    auth_usernames: &[(&str, String)],
    now: Timestamp,
    wanted: &dyn Fn(&Contact) -> bool,
) -> BTreeMap<String, i32> {
    let mut addresses: HashMap<&str, HashSet<&str>> = HashMap::new();
    for s in seen.filter(|s| is_live(s, now) && wanted(&s.contact)) {
        if let Some(au) = s.contact.auth_username.as_deref() {
            addresses
                .entry(au)
                .or_default()
                .insert(s.contact.address.as_str());
        }
    }
    auth_usernames
        .iter()
        .map(|(name, au)| {
            let n = addresses.get(au.as_str()).map_or(0, HashSet::len);
            (name.to_string(), i32::try_from(n).unwrap_or(i32::MAX))
        })
        .collect()
}

/// The user's `status.registration` from the contacts of its own address (`own`) and of its
/// alias lines (`lines`, by alias).
///
/// Devices refresh their registration well before it lapses, and every refresh moves the
/// expiry and the last-seen time; writing each of those would cost one API write per device
/// per refresh. So while the set of devices is unchanged and the stored expiry still lies
/// ahead, both timestamps carry over from `previous`: a status is written when a device comes
/// or goes, and at most once per registration lifetime otherwise.
///
/// `on_previous` tells the contacts on a previous password (see [`Graces::on_previous`]).
pub fn summarize(
    own: &[Seen],
    lines: &[(&str, &[Seen])],
    previous: Option<&RegistrationStatus>,
    now: Timestamp,
    on_previous: &dyn Fn(&Contact) -> bool,
) -> RegistrationStatus {
    let line_status: Vec<LineStatus> = lines
        .iter()
        .filter_map(|(alias, seen)| {
            let addresses: HashSet<&str> = seen
                .iter()
                .filter(|s| is_live(s, now))
                .map(|s| s.contact.address.as_str())
                .collect();
            (!addresses.is_empty()).then(|| LineStatus {
                alias: alias.to_string(),
                contacts: i32::try_from(addresses.len()).unwrap_or(i32::MAX),
            })
        })
        .collect();
    // The same device on two endpoints (a replicated location table) counts once, with the
    // later expiry; so does a contact address on two lines.
    let mut by_address: HashMap<&str, &Seen> = HashMap::new();
    let every = own.iter().chain(lines.iter().flat_map(|(_, seen)| seen.iter()));
    for s in every.filter(|s| is_live(s, now)) {
        let expiry = expiry(s);
        by_address
            .entry(s.contact.address.as_str())
            .and_modify(|kept| {
                if later(expiry, self::expiry(kept)) {
                    *kept = s;
                }
            })
            .or_insert(s);
    }
    let mut user_agents: Vec<String> = by_address
        .values()
        .filter_map(|s| s.contact.user_agent.clone())
        .collect();
    user_agents.sort();
    user_agents.dedup();
    let contacts = by_address.len() as i32;
    // An address registered with a previous password on any line or endpoint counts once.
    let previous_password_contacts = own
        .iter()
        .chain(lines.iter().flat_map(|(_, seen)| seen.iter()))
        .filter(|s| is_live(s, now) && on_previous(&s.contact))
        .map(|s| s.contact.address.as_str())
        .collect::<HashSet<_>>()
        .len() as i32;

    let unchanged_devices = previous.is_some_and(|p| {
        p.contacts == contacts
            && p.user_agents == user_agents
            && p.lines == line_status
            && p.previous_password_contacts == previous_password_contacts
            && contacts > 0
    });
    let stored_expiry_ahead = previous
        .and_then(|p| p.earliest_expiry.as_ref())
        .is_some_and(|t| t.0 > now);
    if let Some(previous) = previous.filter(|_| unchanged_devices && stored_expiry_ahead) {
        return previous.clone();
    }
    let earliest_expiry = by_address.values().filter_map(|s| expiry(s)).min().map(Time);
    let last_seen = by_address
        .values()
        .filter_map(|s| s.contact.last_modified)
        .max()
        .and_then(|secs| Timestamp::from_second(secs).ok())
        .map(Time)
        // Nobody registered now: when a device was last seen stays useful.
        .or_else(|| previous.and_then(|p| p.last_seen.clone()));
    RegistrationStatus {
        contacts,
        user_agents,
        earliest_expiry,
        last_seen,
        lines: line_status,
        previous_password_contacts,
    }
}

/// When the contact lapses; `None` for a permanent one.
fn expiry(s: &Seen) -> Option<Timestamp> {
    let secs = i64::try_from(s.contact.expires_in?).ok()?;
    s.read_at.checked_add(SignedDuration::from_secs(secs)).ok()
}

/// Whether expiry `a` is later than `b` (permanent is latest).
fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a > b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const T0: i64 = 1_795_473_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(T0 + secs).expect("timestamp")
    }

    /// Contacts on a previous password: those the registrar flagged.
    fn summarize_flagged(
        own: &[Seen],
        lines: &[(&str, &[Seen])],
        previous: Option<&RegistrationStatus>,
        now: Timestamp,
    ) -> RegistrationStatus {
        summarize(own, lines, previous, now, &|c| c.previous_password)
    }

    fn contact(aor: &str, address: &str, ua: &str, expires_in: u64, modified: i64) -> Contact {
        Contact {
            aor: aor.into(),
            address: address.into(),
            user_agent: Some(ua.into()),
            expires_in: Some(expires_in),
            last_modified: Some(T0 + modified),
            auth_username: None,
            previous_password: false,
        }
    }

    fn dump(read: i64, contacts: Vec<Contact>) -> Dump {
        Dump {
            endpoint: "http://a/RPC".into(),
            read_at: at(read),
            contacts: Arc::new(contacts),
            auth_failures: Arc::default(),
        }
    }

    #[test]
    fn a_view_merges_failed_authentications_of_its_domain_across_endpoints() {
        use crate::registrar::LastFailure;
        let failures = |count, at, source: &str, blocked: &[&str]| {
            let mut f = AuthFailures::default();
            for aor in ["alice@acme.example", "bob@other.example"] {
                f.by_aor.insert(
                    aor.into(),
                    UserFailures {
                        count,
                        last: Some(LastFailure {
                            at,
                            source: source.into(),
                        }),
                    },
                );
            }
            f.blocked = blocked.iter().map(|s| s.to_string()).collect();
            Arc::new(f)
        };
        let mut a = dump(0, vec![]);
        a.auth_failures = failures(3, 100, "192.0.2.7", &["192.0.2.7"]);
        let mut b = dump(0, vec![]);
        b.auth_failures = failures(2, 90, "192.0.2.8", &["192.0.2.7", "192.0.2.8"]);
        let view = View::build("acme.example", &[a, b]);
        let alice = view.failures("alice@acme.example").expect("alice failed");
        assert_eq!(alice.count, 5);
        assert_eq!(
            alice.last.as_ref().map(|l| (l.at, l.source.as_str())),
            Some((100, "192.0.2.7"))
        );
        assert!(
            view.failures("bob@other.example").is_none(),
            "another domain's user"
        );
        assert_eq!(view.failures_total(), 5);
        assert_eq!(view.blocked_sources(), 2);
        assert_eq!(
            View::build("acme.example", &[dump(0, vec![])]).failures_total(),
            0
        );
    }

    #[test]
    fn a_view_keeps_only_its_domain_and_merges_endpoints() {
        let a = dump(
            0,
            vec![
                contact("alice@acme.example", "sip:a1@192.0.2.1", "Phone", 60, 0),
                contact("bob@other.example", "sip:b@192.0.2.9", "Phone", 60, 0),
                contact("eve@xacme.example", "sip:e@192.0.2.8", "Phone", 60, 0),
            ],
        );
        let b = dump(
            1,
            vec![contact("alice@acme.example", "sip:a2@192.0.2.2", "Soft", 30, 0)],
        );
        let view = View::build("acme.example", &[a, b]);
        assert_eq!(view.seen("alice@acme.example").len(), 2);
        assert!(view.seen("bob@other.example").is_empty());
        assert!(
            view.seen("eve@xacme.example").is_empty(),
            "suffix match is on @domain"
        );
        assert_eq!(view.registered(), 1);
    }

    #[test]
    fn summary_counts_devices_once_and_finds_the_earliest_expiry() {
        let view = View::build(
            "acme.example",
            &[
                dump(
                    0,
                    vec![
                        contact("alice@acme.example", "sip:a1@192.0.2.1", "Phone", 60, -5),
                        contact("alice@acme.example", "sip:a2@192.0.2.2", "Soft", 30, -2),
                    ],
                ),
                // The same device seen on a second endpoint, read a second later.
                dump(
                    1,
                    vec![contact("alice@acme.example", "sip:a1@192.0.2.1", "Phone", 60, -5)],
                ),
            ],
        );
        let s = summarize_flagged(view.seen("alice@acme.example"), &[], None, at(2));
        assert_eq!(s.contacts, 2);
        assert_eq!(s.user_agents, ["Phone", "Soft"]);
        assert_eq!(s.earliest_expiry, Some(Time(at(30))));
        assert_eq!(s.last_seen, Some(Time(at(-2))));
    }

    #[test]
    fn refreshes_are_not_written_while_the_stored_expiry_lies_ahead() {
        let first = summarize_flagged(
            View::build("d", &[dump(0, vec![contact("u@d", "sip:u@h", "P", 60, 0)])]).seen("u@d"),
            &[],
            None,
            at(0),
        );
        // The device refreshed at 30 s: new expiry and last-seen, same device.
        let refreshed = View::build("d", &[dump(31, vec![contact("u@d", "sip:u@h", "P", 59, 30)])]);
        assert_eq!(
            summarize_flagged(refreshed.seen("u@d"), &[], Some(&first), at(31)),
            first
        );
        // Once the stored expiry has passed, the fresh values are written.
        let later = View::build("d", &[dump(61, vec![contact("u@d", "sip:u@h", "P", 29, 30)])]);
        let after = summarize_flagged(later.seen("u@d"), &[], Some(&first), at(61));
        assert_eq!(after.earliest_expiry, Some(Time(at(90))));
        assert_eq!(after.last_seen, Some(Time(at(30))));
    }

    #[test]
    fn a_new_device_is_written_at_once_and_gone_devices_clear_but_keep_last_seen() {
        let one = summarize_flagged(
            View::build("d", &[dump(0, vec![contact("u@d", "sip:u@h", "P", 60, 0)])]).seen("u@d"),
            &[],
            None,
            at(0),
        );
        let two = View::build(
            "d",
            &[dump(
                5,
                vec![
                    contact("u@d", "sip:u@h", "P", 55, 0),
                    contact("u@d", "sip:u@k", "Q", 60, 5),
                ],
            )],
        );
        let s = summarize_flagged(two.seen("u@d"), &[], Some(&one), at(5));
        assert_eq!((s.contacts, s.user_agents.len()), (2, 2));
        let none = summarize_flagged(&[], &[], Some(&s), at(100));
        assert_eq!(none.contacts, 0);
        assert!(none.user_agents.is_empty() && none.earliest_expiry.is_none());
        assert_eq!(none.last_seen, Some(Time(at(5))), "last seen is kept");
        assert_eq!(
            summarize_flagged(&[], &[], Some(&none), at(200)),
            none,
            "stable once empty"
        );
    }

    #[test]
    fn contacts_that_lapsed_since_the_read_are_left_out() {
        let view = View::build("d", &[dump(0, vec![contact("u@d", "sip:u@h", "P", 60, 0)])]);
        assert_eq!(summarize_flagged(view.seen("u@d"), &[], None, at(59)).contacts, 1);
        assert_eq!(summarize_flagged(view.seen("u@d"), &[], None, at(60)).contacts, 0);
    }

    #[test]
    fn a_permanent_contact_has_no_expiry() {
        let mut c = contact("u@d", "sip:u@h", "P", 0, 0);
        c.expires_in = None;
        let s = summarize_flagged(
            View::build("d", &[dump(0, vec![c])]).seen("u@d"),
            &[],
            None,
            at(0),
        );
        assert_eq!((s.contacts, s.earliest_expiry), (1, None));
    }

    fn by(mut c: Contact, auth_username: &str) -> Contact {
        c.auth_username = Some(auth_username.into());
        c
    }

    fn user(name: &str, spec: serde_json::Value) -> SipUser {
        SipUser::new(name, serde_json::from_value(spec).expect("user spec"))
    }

    /// The status that records `o` as it is (what the operator writes after observing it).
    fn recorded(o: &Observed) -> SipUserStatus {
        SipUserStatus {
            registration: Some(o.registration.clone()),
            devices: o
                .devices
                .iter()
                .map(|(name, contacts)| crate::api::DeviceStatus {
                    name: name.clone(),
                    contacts: *contacts,
                    previous_password_contacts: o.previous_password_devices.get(name).copied().unwrap_or(0),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn alice_with_devices() -> SipUser {
        user(
            "alice",
            serde_json::json!({
                "domainRef": "d",
                "aliases": ["alice-support", "alice-sales"],
                "devices": [{"name": "desk"}, {"name": "soft"}, {"name": "mobile"}],
            }),
        )
    }

    #[test]
    fn a_user_counts_its_own_address_and_its_alias_lines_and_each_device() {
        let view = View::build(
            "d",
            &[dump(
                0,
                vec![
                    by(
                        contact("alice@d", "sip:alice@10.0.0.1", "Desk", 60, 0),
                        "alice#desk",
                    ),
                    by(
                        contact("alice@d", "sip:alice@10.0.0.2", "Soft", 60, 0),
                        "alice#soft",
                    ),
                    by(
                        contact("alice-support@d", "sip:alice-support@10.0.0.1", "Desk", 60, 0),
                        "alice#desk",
                    ),
                    // Who registered it is not known: counted, but for no device.
                    contact("alice@d", "sip:alice@10.0.0.9", "Old", 60, 0),
                    by(contact("bob@d", "sip:bob@10.0.0.3", "Bob", 60, 0), "bob"),
                ],
            )],
        );
        let alice = alice_with_devices();
        let o = view.observed(&alice, "d", at(1), &Graces::default());
        assert_eq!(
            o.registration.contacts, 4,
            "own address and lines, each contact once"
        );
        assert_eq!(o.registration.user_agents, ["Desk", "Old", "Soft"]);
        assert_eq!(
            o.registration.lines,
            [LineStatus {
                alias: "alice-support".into(),
                contacts: 1
            }],
            "only lines with registrations"
        );
        assert_eq!(
            o.devices,
            BTreeMap::from([("desk".into(), 2), ("mobile".into(), 0), ("soft".into(), 1)])
        );
        // Lapsed contacts count for nobody.
        let later = view.observed(&alice, "d", at(61), &Graces::default());
        assert_eq!(later.registration.contacts, 0);
        assert!(later.registration.lines.is_empty());
        assert!(later.devices.values().all(|n| *n == 0));
        // A user without devices or aliases: as before, its own address only.
        let bob = user("bob", serde_json::json!({"domainRef": "d"}));
        let o = view.observed(&bob, "d", at(1), &Graces::default());
        assert_eq!((o.registration.contacts, o.devices.len()), (1, 0));
    }

    #[test]
    fn a_device_coming_or_going_differs_and_a_refresh_does_not() {
        let alice = alice_with_devices();
        let registered = |desk: &str| {
            View::build(
                "d",
                &[dump(
                    0,
                    vec![
                        by(contact("alice@d", "sip:alice@10.0.0.1", "P", 60, 0), desk),
                        by(contact("alice@d", "sip:alice@10.0.0.2", "P", 60, 0), "alice#soft"),
                    ],
                )],
            )
        };
        let o = registered("alice#desk").observed(&alice, "d", at(1), &Graces::default());
        let status = recorded(&o);
        assert!(!o.differs_from(Some(&status)));
        assert!(o.differs_from(None));
        // Same number of contacts and user agents, but the desk phone went and the mobile came.
        let swapped = registered("alice#mobile").observed(&alice, "d", at(1), &Graces::default());
        assert_eq!(swapped.registration, o.registration);
        assert!(swapped.differs_from(Some(&status)));
        assert!(view_none_on_checks_every_address());
    }

    #[test]
    fn contacts_on_a_previous_password_are_counted_and_their_change_differs() {
        let alice = alice_with_devices();
        let view = |desk_old: bool| {
            let mut desk = by(contact("alice@d", "sip:alice@10.0.0.1", "P", 60, 0), "alice#desk");
            desk.previous_password = desk_old;
            // The same phone on a line counts once.
            let mut line = by(
                contact("alice-support@d", "sip:alice@10.0.0.1", "P", 60, 0),
                "alice#desk",
            );
            line.previous_password = desk_old;
            let soft = by(contact("alice@d", "sip:alice@10.0.0.2", "P", 60, 0), "alice#soft");
            View::build("d", &[dump(0, vec![desk, line, soft])])
        };
        let mut graces = Graces::default();
        graces.running("alice#desk", None);
        assert_eq!(
            view(true)
                .observed(&alice, "d", at(1), &Graces::default())
                .registration
                .previous_password_contacts,
            0,
            "no grace period runs: its previous password is refused"
        );
        let o = view(true).observed(&alice, "d", at(1), &graces);
        assert_eq!(o.registration.previous_password_contacts, 1);
        assert_eq!(o.previous_password_devices, BTreeMap::from([("desk".into(), 1)]));
        let status = recorded(&o);
        assert!(!o.differs_from(Some(&status)));
        let moved_on = view(false).observed(&alice, "d", at(1), &graces);
        assert_eq!(moved_on.registration.previous_password_contacts, 0);
        assert!(
            moved_on.differs_from(Some(&status)),
            "the phone took the new password: a status write"
        );
        assert_eq!(
            summarize_flagged(view(false).seen("alice@d"), &[], Some(&o.registration), at(2))
                .previous_password_contacts,
            0,
            "not carried over from the previous status"
        );
    }

    #[test]
    fn a_contact_registered_before_the_change_counts_as_on_the_previous_password() {
        let alice = alice_with_devices();
        // Registered at T0 + 5 with what was the desk phone's password, never refreshed since.
        let desk = by(
            contact("alice@d", "sip:alice@10.0.0.1", "P", 600, 5),
            "alice#desk",
        );
        // The soft phone registered after its own change.
        let soft = by(
            contact("alice@d", "sip:alice@10.0.0.2", "P", 600, 20),
            "alice#soft",
        );
        let view = View::build("d", &[dump(0, vec![desk, soft])]);
        let mut graces = Graces::default();
        graces.running("alice#desk", Some(T0 + 10));
        graces.running("alice#soft", Some(T0 + 10));
        let o = view.observed(&alice, "d", at(30), &graces);
        assert_eq!(o.registration.previous_password_contacts, 1);
        assert_eq!(o.previous_password_devices, BTreeMap::from([("desk".into(), 1)]));
        let ended = view.observed(&alice, "d", at(30), &Graces::default());
        assert_eq!(
            ended.registration.previous_password_contacts, 0,
            "its grace period ended"
        );
        assert!(ended.previous_password_devices.is_empty());
    }

    fn view_none_on_checks_every_address() -> bool {
        let view = View::build("d", &[dump(0, vec![contact("l@d", "sip:l@h", "P", 60, 0)])]);
        view.none_on(&["u@d".into()]) && !view.none_on(&["u@d".into(), "l@d".into()])
    }
}
