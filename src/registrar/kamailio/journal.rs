//! The registration journal of the shipped kamailio.cfg, and the operator's mirror of usrloc
//! built from it, pure: no I/O here (the reads are in the parent module).
//!
//! Why: `ul.dump` does not scale in Kamailio 5.6. It builds the whole answer in the private
//! memory (`-M`) of one process, and appends every AoR by walking the array built so far.
//! With the shipped `-M 8` it gives no answer at all from about 10,000 AoRs on (Kamailio logs
//! `build_res_buf_from_sip_req(): could not allocate private memory from pkg pool`, the
//! client waits for its timeout), and even `ul.dump brief` (AoRs only) takes 13.6 s at 55,000
//! AoRs. Raising `-M` would cost that much memory in every Kamailio process and still leave a
//! quadratic read of tens of megabytes of JSON every check. Debian's Kamailio 5.6 has no
//! paged dump and its base package has no `evapi`; it does have htables, `$shtinc` and the
//! `usrloc:contact-expired` event route. So the config journals every change of an AoR's
//! contacts (`ulseq`/`uljournal`, see the top of kamailio.cfg) and the operator reads only
//! what changed: `htable.dump ulseq` (head and boot number), `htable.get uljournal <seq>` per
//! new entry, then `ul.lookup location <aor>` once per AoR named. Every answer is small.
//!
//! A journal entry lives longer than the longest registration, so the entries present name
//! every AoR with a live contact: a first read (or one after a Kamailio restart, seen as a new
//! boot number) reads them all from the oldest present, found by bisection.
//!
//! Measured (release, 2 shared cores, `tests/registrar/scale_ul.rs`): a first read takes
//! 1.5 s / 6.3 s / 20.8 s (operator CPU 0.5 / 1.7 / 2.9 s) at 10,000 / 40,000 / 100,000 AoRs;
//! a read with nothing new 5 / 22 / 47 ms (CPU under the 10 ms tick). A REGISTER shows in the
//! next read: 9 ms after its 200 OK at 10,000 AoRs, so the registrar check interval bounds
//! the latency. `ul.dump` gave no answer within the 5 s call timeout at all three sizes.
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::registrar::Contact;

/// The htable with the journal's head and the instance's boot number.
pub const SEQ_HTABLE: &str = "ulseq";
/// The htable with the journal entries, keyed by sequence number, valued by AoR.
pub const JOURNAL_HTABLE: &str = "uljournal";
/// Entries this close to the head that are missing may still be being written (the config
/// increments the head, then sets the entry): they are read again next time.
pub const IN_FLIGHT: u64 = 32;
/// A mirror not brought up to date for this long is read again from scratch: the journal's
/// older entries may have expired (the shipped JOURNAL_TTL is 4200 s).
pub const STALE_AFTER: Duration = Duration::from_secs(600);

/// The journal's state as `htable.dump ulseq` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The newest entry's sequence number (0: none yet).
    pub head: u64,
    /// The number the instance drew when it started.
    pub boot: i64,
}

/// The head and boot number in an `htable.dump ulseq` result
/// (`[{"entry":1,"size":1,"slot":[{"name":"head","value":3,"type":"int"}]},..]`); `None` when
/// the boot number is missing (not the shipped config's journal).
pub fn head(dump: &Value) -> Option<Head> {
    let mut head = 0;
    let mut boot = None;
    for (name, value) in super::answer::htable_items(dump) {
        match name {
            "head" => head = value.as_u64().unwrap_or(0),
            "boot" => boot = value.as_i64(),
            _ => {}
        }
    }
    Some(Head { head, boot: boot? })
}

/// One journal entry: the AoR whose contacts changed and, for a REGISTER, who sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub aor: String,
    /// The REGISTER's digest username and Call-ID; `None` for an expiry (or an older config,
    /// whose entries hold the AoR only).
    pub registered_by: Option<Registered>,
}

/// Who registered the contacts of one Call-ID: a device keeps its Call-ID across refreshes
/// (RFC 3261 §10.2), so its contacts are attributed to the digest username it last used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    pub auth_username: String,
    pub call_id: String,
    /// Whether it authenticated with the credential's previous password (a grace period
    /// after a rotation), not the current one.
    pub previous_password: bool,
}

/// What the shipped config appends to the digest username of a REGISTER that matched the
/// previous password. `|` can be in no digest username it journals: only a known user's
/// (`username`, or `username#device`) gets that far, and neither a SIP username (see
/// [`crate::api::SIP_USER_PATTERN`]) nor a device name may hold it. The Call-ID, which may
/// (Kamailio keeps one with spaces, though RFC 3261 forbids them), is the last field, so
/// nothing in it can read as the flag.
pub const PREVIOUS_PASSWORD_FLAG: &str = "|old";

/// The entry of an `htable.get uljournal <seq>` result (`{"item":{"name":..,"value":..}}`):
/// `<aor>`, or `<aor> <auth username> <call-id>` where the auth username ends in
/// [`PREVIOUS_PASSWORD_FLAG`] when the previous password matched. The AoR and the auth
/// username hold no space; the Call-ID is the rest of the line, spaces and all.
pub fn entry(result: &Value) -> Option<Entry> {
    let value = result.pointer("/item/value").and_then(Value::as_str)?;
    let mut fields = value.splitn(3, ' ');
    let aor = fields.next().filter(|a| !a.is_empty())?.to_string();
    let registered_by = match (fields.next(), fields.next()) {
        (Some(auth_username), Some(call_id)) if !auth_username.is_empty() && !call_id.is_empty() => {
            let flagged = auth_username.strip_suffix(PREVIOUS_PASSWORD_FLAG);
            Some(Registered {
                auth_username: flagged.unwrap_or(auth_username).to_string(),
                call_id: call_id.to_string(),
                previous_password: flagged.is_some(),
            })
        }
        _ => None,
    };
    Some(Entry { aor, registered_by })
}

/// What to read from the journal next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Everything again: the mirror is empty, stale, or from another Kamailio instance. The
    /// oldest entry present must be found first.
    pub full: bool,
    /// Entries after this one (up to the head) are new.
    pub after: u64,
}

/// One contact as the mirror holds it: with when it lapses rather than how long it has left.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Held {
    address: String,
    user_agent: Option<String>,
    /// Unix seconds; `None` for a permanent contact.
    expires_at: Option<i64>,
    last_modified: Option<i64>,
    call_id: Option<String>,
}

/// The operator's copy of one Kamailio's usrloc, brought up to date from the journal.
#[derive(Debug, Default)]
pub struct Mirror {
    boot: Option<i64>,
    /// The newest journal entry read and applied.
    applied: u64,
    /// When it was last brought up to date.
    updated: Option<Instant>,
    by_aor: HashMap<String, Vec<Held>>,
    /// Per AoR, the digest username of each Call-ID that registered there, and whether with
    /// its previous password, from the journal.
    registered_by: HashMap<String, HashMap<String, (String, bool)>>,
}

impl Mirror {
    /// What to read, given the journal's state now.
    pub fn plan(&self, now: &Head, at: Instant) -> Plan {
        let fresh = self.updated.is_some_and(|u| at.duration_since(u) < STALE_AFTER);
        if self.boot == Some(now.boot) && fresh && self.applied <= now.head {
            Plan {
                full: false,
                after: self.applied,
            }
        } else {
            Plan { full: true, after: 0 }
        }
    }

    /// Starts over (a full read follows).
    pub fn clear(&mut self) {
        self.by_aor.clear();
        self.registered_by.clear();
        self.applied = 0;
        self.boot = None;
    }

    /// Records how far the journal was read: `entries` are the sequence numbers read after
    /// `after` up to `head`, each with its entry or `None` when it was missing. Returns the
    /// AoRs to look up. A missing entry within [`IN_FLIGHT`] of the head stops the progress
    /// just before it (it may be being written); older missing ones have expired. Who
    /// registered each Call-ID is taken in journal order (the newest REGISTER wins).
    pub fn advance(&mut self, now: &Head, after: u64, entries: &[(u64, Option<Entry>)]) -> BTreeSet<String> {
        let mut applied = now.head.max(after);
        for (seq, entry) in entries {
            if entry.is_none() && now.head.saturating_sub(*seq) < IN_FLIGHT {
                applied = applied.min(seq.saturating_sub(1));
            }
        }
        self.applied = applied;
        self.boot = Some(now.boot);
        let mut in_order: Vec<&(u64, Option<Entry>)> = entries.iter().collect();
        in_order.sort_by_key(|(seq, _)| *seq);
        for entry in in_order.into_iter().filter_map(|(_, e)| e.as_ref()) {
            if let Some(by) = &entry.registered_by {
                self.registered_by.entry(entry.aor.clone()).or_default().insert(
                    by.call_id.clone(),
                    (by.auth_username.clone(), by.previous_password),
                );
            }
        }
        entries
            .iter()
            .filter_map(|(_, e)| e.as_ref().map(|e| e.aor.clone()))
            .collect()
    }

    /// Marks the mirror up to date at `at`.
    pub fn touch(&mut self, at: Instant) {
        self.updated = Some(at);
    }

    /// Sets what `ul.lookup` answered for `aor` (read at Unix second `now`); `None` for an AoR
    /// without contacts (404), which is dropped.
    pub fn set(&mut self, aor: &str, lookup: Option<&Value>, now: i64) {
        let held: Vec<Held> = lookup
            .map(|found| {
                super::ul_dump::contacts_of(aor, found)
                    .into_iter()
                    .map(|(c, call_id)| Held {
                        address: c.address,
                        user_agent: c.user_agent,
                        expires_at: c.expires_in.map(|s| now.saturating_add_unsigned(s)),
                        last_modified: c.last_modified,
                        call_id,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if held.is_empty() {
            self.forget(aor);
            return;
        }
        // Only the Call-IDs still registered need remembering.
        if let Some(by) = self.registered_by.get_mut(aor) {
            by.retain(|call_id, _| held.iter().any(|h| h.call_id.as_deref() == Some(call_id)));
        }
        self.by_aor.insert(aor.to_string(), held);
    }

    /// Forgets the contacts of `aor` (the operator removed them itself).
    pub fn forget(&mut self, aor: &str) {
        self.by_aor.remove(aor);
        self.registered_by.remove(aor);
    }

    /// Forgets one contact of `aor` (the operator removed it itself).
    pub fn forget_contact(&mut self, aor: &str, address: &str) {
        if let Some(held) = self.by_aor.get_mut(aor) {
            held.retain(|h| h.address != address);
            if held.is_empty() {
                self.forget(aor);
            }
        }
    }

    /// The contacts of `aor` that `revokes` refuses, asked with the digest username that
    /// registered each, its last REGISTER (Unix seconds) and whether with a previous password
    /// (see [`crate::registrar::UserEntry::revokes`]): their addresses. Contacts whose
    /// registrant is unknown are left alone.
    pub fn revoked(&self, aor: &str, revokes: impl Fn(&str, Option<i64>, bool) -> bool) -> Vec<String> {
        let (Some(held), Some(by)) = (self.by_aor.get(aor), self.registered_by.get(aor)) else {
            return Vec::new();
        };
        held.iter()
            .filter(|h| {
                h.call_id
                    .as_ref()
                    .and_then(|id| by.get(id))
                    .is_some_and(|(au, old)| revokes(au, h.last_modified, *old))
            })
            .map(|h| h.address.clone())
            .collect()
    }

    /// How many AoRs have contacts.
    pub fn aors(&self) -> usize {
        self.by_aor.len()
    }

    /// The live contacts at Unix second `now`, as a bulk read reports them: lapsed ones are
    /// left out.
    pub fn contacts(&self, now: i64) -> Vec<Contact> {
        let mut out = Vec::with_capacity(self.by_aor.len());
        for (aor, held) in &self.by_aor {
            let registered_by = self.registered_by.get(aor);
            for h in held {
                let expires_in = match h.expires_at {
                    None => None,
                    Some(at) if at > now => u64::try_from(at - now).ok(),
                    Some(_) => continue,
                };
                let by = h.call_id.as_ref().and_then(|id| registered_by?.get(id));
                out.push(Contact {
                    aor: aor.clone(),
                    address: h.address.clone(),
                    user_agent: h.user_agent.clone(),
                    expires_in,
                    last_modified: h.last_modified,
                    auth_username: by.map(|(au, _)| au.clone()),
                    previous_password: by.is_some_and(|(_, old)| *old),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Recorded from Kamailio 5.6.3 (Debian) running the shipped kamailio.cfg.
    const DUMP: &str = r#"[{"entry":1,"size":1,"slot":[{"name":"head","value":3,"type":"int"}]},{"entry":2,"size":1,"slot":[{"name":"boot","value":1618545401,"type":"int"}]}]"#;

    fn lookup(address: &str, expires: Value) -> Value {
        json!({"AoR": "alice@acme.example.com", "Contacts": [{"Contact": {
            "Address": address, "Expires": expires, "User-Agent": "phone",
            "Last-Modified": 1_795_473_021}}]})
    }

    fn changed(aor: &str) -> Entry {
        Entry {
            aor: aor.into(),
            registered_by: None,
        }
    }

    fn registered(aor: &str, auth_username: &str, call_id: &str) -> Entry {
        Entry {
            aor: aor.into(),
            registered_by: Some(Registered {
                auth_username: auth_username.into(),
                call_id: call_id.into(),
                previous_password: false,
            }),
        }
    }

    /// The rule of valid digest usernames and those whose previous password is still accepted.
    fn rule<'a>(
        valid: &'a [&'a str],
        previous_valid: &'a [&'a str],
    ) -> impl Fn(&str, Option<i64>, bool) -> bool + 'a {
        move |au, _, old| !valid.contains(&au) || (old && !previous_valid.contains(&au))
    }

    #[test]
    fn the_rule_is_asked_with_each_contacts_last_register() {
        let mut m = Mirror::default();
        let aor = "alice@acme.example.com";
        m.advance(
            &Head { head: 1, boot: 1 },
            0,
            &[(1, Some(registered(aor, "alice#desk", "c1")))],
        );
        let found = json!({"AoR": aor, "Contacts": [{"Contact": {
            "Address": "sip:a@192.0.2.1", "Expires": 60, "Call-ID": "c1", "Last-Modified": 900}}]});
        m.set(aor, Some(&found), 1000);
        let asked = std::cell::RefCell::new(Vec::new());
        let revoked = m.revoked(aor, |au, at, old| {
            asked.borrow_mut().push((au.to_string(), at, old));
            at.is_some_and(|t| t < 950)
        });
        assert_eq!(revoked, ["sip:a@192.0.2.1"]);
        assert_eq!(asked.into_inner(), [("alice#desk".to_string(), Some(900), false)]);
    }

    #[test]
    fn contacts_on_a_previous_password_are_marked_and_revoked_once_its_grace_ends() {
        let now = Head { head: 3, boot: 1 };
        let mut m = Mirror::default();
        let aor = "alice@acme.example.com";
        let mut old = registered(aor, "alice#desk", "c1");
        if let Some(r) = old.registered_by.as_mut() {
            r.previous_password = true;
        }
        m.advance(
            &now,
            0,
            &[(1, Some(old)), (2, Some(registered(aor, "alice#soft", "c2")))],
        );
        let found = json!({"AoR": aor, "Contacts": [
            {"Contact": {"Address": "sip:a@192.0.2.1", "Expires": 60, "Call-ID": "c1"}},
            {"Contact": {"Address": "sip:a@192.0.2.2", "Expires": 60, "Call-ID": "c2"}}]});
        m.set(aor, Some(&found), 1000);
        let mut seen: Vec<(String, bool)> = m
            .contacts(1000)
            .into_iter()
            .map(|c| (c.address, c.previous_password))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("sip:a@192.0.2.1".to_string(), true),
                ("sip:a@192.0.2.2".to_string(), false)
            ]
        );
        let valid = ["alice#desk", "alice#soft"];
        assert!(
            m.revoked(aor, rule(&valid, &["alice#desk"])).is_empty(),
            "in its grace period"
        );
        assert_eq!(m.revoked(aor, rule(&valid, &[])), ["sip:a@192.0.2.1"], "after it");
        // The device refreshes with the new password: no longer on the old one.
        m.advance(
            &Head { head: 4, boot: 1 },
            3,
            &[(4, Some(registered(aor, "alice#desk", "c1")))],
        );
        assert!(m.revoked(aor, rule(&valid, &[])).is_empty());
    }

    #[test]
    fn contacts_are_attributed_to_who_last_registered_their_call_id() {
        let now = Head { head: 3, boot: 1 };
        let mut m = Mirror::default();
        let aor = "alice@acme.example.com";
        // Out of order, as the parallel reads return them: the newest entry still wins.
        m.advance(
            &now,
            0,
            &[
                (3, Some(registered(aor, "alice#soft", "c1"))),
                (1, Some(registered(aor, "alice#desk", "c1"))),
                (2, Some(registered(aor, "alice#desk", "c2"))),
            ],
        );
        let found = json!({"AoR": aor, "Contacts": [
            {"Contact": {"Address": "sip:a@192.0.2.1", "Expires": 60, "Call-ID": "c1"}},
            {"Contact": {"Address": "sip:a@192.0.2.2", "Expires": 60, "Call-ID": "c2"}},
            {"Contact": {"Address": "sip:a@192.0.2.3", "Expires": 60, "Call-ID": "c3"}}]});
        m.set(aor, Some(&found), 1000);
        let mut seen: Vec<(String, Option<String>)> = m
            .contacts(1000)
            .into_iter()
            .map(|c| (c.address, c.auth_username))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("sip:a@192.0.2.1".to_string(), Some("alice#soft".to_string())),
                ("sip:a@192.0.2.2".to_string(), Some("alice#desk".to_string())),
                ("sip:a@192.0.2.3".to_string(), None),
            ]
        );
        assert_eq!(m.revoked(aor, rule(&["alice#soft"], &[])), ["sip:a@192.0.2.2"]);
        assert!(
            m.revoked(aor, rule(&["alice#soft", "alice#desk"], &[]))
                .is_empty()
        );
        assert!(m.revoked("bob@acme.example.com", rule(&[], &[])).is_empty());
        m.forget_contact(aor, "sip:a@192.0.2.1");
        assert_eq!(m.contacts(1000).len(), 2);
        m.set(aor, None, 1000);
        assert!(
            m.registered_by.is_empty(),
            "nothing kept for an AoR without contacts"
        );
    }

    #[test]
    fn reads_head_and_boot() {
        let dump: Value = serde_json::from_str(DUMP).expect("json");
        assert_eq!(
            head(&dump),
            Some(Head {
                head: 3,
                boot: 1_618_545_401
            })
        );
        assert_eq!(head(&json!([])), None, "no boot number: not the journal");
        assert_eq!(
            entry(&json!({"item": {"name": "3", "value": "bob@b.example"}})),
            Some(Entry {
                aor: "bob@b.example".into(),
                registered_by: None
            })
        );
        assert_eq!(
            entry(&json!({"item": {"name": "4", "value": "bob@b.example bob#desk 1-2@192.0.2.1"}})),
            Some(Entry {
                aor: "bob@b.example".into(),
                registered_by: Some(Registered {
                    auth_username: "bob#desk".into(),
                    call_id: "1-2@192.0.2.1".into(),
                    previous_password: false
                })
            })
        );
        let read = |value: &str| {
            entry(&json!({"item": {"name": "5", "value": value}}))
                .and_then(|e| e.registered_by)
                .map(|r| (r.auth_username, r.call_id, r.previous_password))
        };
        assert_eq!(
            read("bob@b.example bob#desk|old 9@h"),
            Some(("bob#desk".into(), "9@h".into(), true)),
            "the previous password matched"
        );
        assert_eq!(
            read("bob@b.example bob 9 x@h"),
            Some(("bob".into(), "9 x@h".into(), false)),
            "a Call-ID with a space is kept whole"
        );
        assert_eq!(
            read("bob@b.example bob 9@h old"),
            Some(("bob".into(), "9@h old".into(), false)),
            "a Call-ID ending in \" old\" is not the flag"
        );
        assert_eq!(
            read("bob@b.example bob 9@h|old"),
            Some(("bob".into(), "9@h|old".into(), false)),
            "nor one ending in the flag itself"
        );
    }

    #[test]
    fn a_new_mirror_another_boot_or_a_stale_one_reads_everything() {
        let t0 = Instant::now();
        let now = Head { head: 5, boot: 7 };
        let mut m = Mirror::default();
        assert!(m.plan(&now, t0).full);
        m.advance(&now, 0, &[]);
        m.touch(t0);
        assert_eq!(
            m.plan(&now, t0),
            Plan {
                full: false,
                after: 5
            }
        );
        assert!(m.plan(&Head { head: 5, boot: 8 }, t0).full, "Kamailio restarted");
        assert!(m.plan(&Head { head: 2, boot: 7 }, t0).full, "the head went back");
        assert!(m.plan(&now, t0 + STALE_AFTER).full, "entries may have expired");
    }

    #[test]
    fn a_missing_entry_near_the_head_is_read_again_an_old_one_is_skipped() {
        let now = Head { head: 100, boot: 1 };
        let mut m = Mirror::default();
        let aors = m.advance(
            &now,
            0,
            &[
                (1, None),
                (2, Some(changed("a@x"))),
                (98, Some(changed("b@x"))),
                (99, None),
                (100, Some(changed("a@x"))),
            ],
        );
        assert_eq!(aors.into_iter().collect::<Vec<_>>(), ["a@x", "b@x"]);
        assert_eq!(m.applied, 98, "99 may be being written");
        m.advance(
            &now,
            98,
            &[(99, Some(changed("c@x"))), (100, Some(changed("a@x")))],
        );
        assert_eq!(m.applied, 100);
    }

    #[test]
    fn contacts_count_down_lapse_and_go_with_their_aor() {
        let mut m = Mirror::default();
        m.set(
            "alice@acme.example.com",
            Some(&lookup("sip:alice@192.0.2.1", json!(60))),
            1000,
        );
        m.set(
            "desk@acme.example.com",
            Some(&lookup("sip:desk@192.0.2.2", json!("permanent"))),
            1000,
        );
        assert_eq!(m.aors(), 2);
        let mut seen = m.contacts(1015);
        seen.sort_by(|a, b| a.aor.cmp(&b.aor));
        assert_eq!(seen[0].expires_in, Some(45));
        assert_eq!(seen[0].user_agent.as_deref(), Some("phone"));
        assert_eq!(seen[0].last_modified, Some(1_795_473_021));
        assert_eq!(seen[1].expires_in, None, "permanent");
        assert_eq!(m.contacts(1060).len(), 1, "alice lapsed");
        m.set("desk@acme.example.com", None, 1060);
        m.forget("alice@acme.example.com");
        assert!(m.contacts(1000).is_empty());
        m.set(
            "x@acme.example.com",
            Some(&lookup("sip:x@192.0.2.3", json!("expired"))),
            1000,
        );
        assert_eq!(m.aors(), 0, "an AoR with only lapsed contacts is not kept");
    }
}
