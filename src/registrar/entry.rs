//! A user as a registrar holds it, pure: the key and the attributes, HA1 instead of password.
use crate::api::DigestAlgorithm;
use crate::credentials::{Password, ha1};
use crate::rotation::PreviousDigest;

/// `username@domain`: how the registrar knows a user.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserKey {
    pub username: String,
    pub domain: String,
}

impl UserKey {
    pub fn new(username: impl Into<String>, domain: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            domain: domain.into(),
        }
    }

    /// The registrar's key, `username@domain` (also the AOR without `sip:`).
    pub fn key(&self) -> String {
        format!("{}@{}", self.username, self.domain)
    }
}

/// One device's credentials as the registrar holds them: its own digest username and HA1s.
/// The device registers to its user's AOR (and the user's alias lines) with them.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    /// The device's name in `SipUser.spec.devices`.
    pub name: String,
    /// Its digest username, `<username>#<device>` (see [`crate::api::device_auth_username`]).
    pub auth_username: String,
    /// MD5 HA1 = md5(auth username:realm:password).
    pub ha1_md5: Option<String>,
    /// SHA-256 HA1 when the domain enables it.
    pub ha1_sha256: Option<String>,
    /// The previous password's HA1s and their deadline, during a grace period after a
    /// rotation: accepted besides the current ones until then.
    pub previous: Option<PreviousDigest>,
    /// When it was last rotated under a grace period (Unix seconds; kept after the deadline):
    /// its contacts last registered before then are on an older password.
    pub changed_at: Option<i64>,
}

impl std::fmt::Debug for DeviceEntry {
    // HA1 is as good as the password for the realm: keep it out of any debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceEntry")
            .field("name", &self.name)
            .field("auth_username", &self.auth_username)
            .finish_non_exhaustive()
    }
}

/// Everything the registrar config needs about one user.
#[derive(Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub key: UserKey,
    /// The digest realm the HA1s were computed with: the SIP domain's realm, the same for
    /// every user of the domain. Not secret; a registrar must challenge with it, or no
    /// password matches its HA1.
    pub realm: String,
    /// MD5 HA1 of the account's own credentials (username and the Secret's `password`);
    /// `None` when the user lists devices: then only the devices' credentials register.
    pub ha1_md5: Option<String>,
    /// SHA-256 HA1 when the domain enables it (RFC 8760); `None` as `ha1_md5` is.
    pub ha1_sha256: Option<String>,
    /// The account's previous HA1s and their deadline during a grace period after a change;
    /// `None` as `ha1_md5` is, and when no grace period runs.
    pub previous: Option<PreviousDigest>,
    /// When the account's password last changed under a grace period (Unix seconds; kept
    /// after the deadline): its contacts last registered before then are on an older one.
    pub changed_at: Option<i64>,
    /// Registrations allowed per address of record (the user's, and each alias line's):
    /// the user's `maxContacts` once per device (once when it lists none).
    pub max_contacts: i32,
    pub extension: Option<String>,
    pub aliases: Vec<String>,
    /// The enabled devices; empty when the user lists none (the account registers itself).
    pub devices: Vec<DeviceEntry>,
    /// Whether other users may call it (by username, extension or alias): false when its
    /// extension is not a number (see [`is_dial_number`]).
    pub dialable: bool,
    pub flags: Vec<String>,
    pub barge_group: Option<String>,
    pub caller_id: Option<String>,
}

impl std::fmt::Debug for UserEntry {
    // HA1 is as good as the password for the realm: keep it out of any debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserEntry")
            .field("key", &self.key)
            .field("realm", &self.realm)
            .field("max_contacts", &self.max_contacts)
            .field("extension", &self.extension)
            .field("aliases", &self.aliases)
            .field("devices", &self.devices)
            .field("dialable", &self.dialable)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

/// A device's name and password, for [`EntrySpec::devices`].
pub struct DeviceCredentials<'a> {
    pub name: &'a str,
    pub password: &'a Password,
    /// Its previous digest while a grace period runs.
    pub previous: Option<&'a PreviousDigest>,
    /// When it was last rotated under a grace period.
    pub changed_at: Option<i64>,
}

/// What a user entry is built from.
pub struct EntrySpec<'a> {
    pub username: &'a str,
    pub domain: &'a str,
    pub realm: &'a str,
    /// The account's own password (pushed only when `devices` is empty).
    pub password: &'a Password,
    /// The account's previous digest while a grace period runs (pushed with the password).
    pub previous: Option<&'a PreviousDigest>,
    /// When the account's password last changed under a grace period.
    pub changed_at: Option<i64>,
    /// The enabled devices with their passwords.
    pub devices: &'a [DeviceCredentials<'a>],
    pub algorithms: &'a [DigestAlgorithm],
    /// Registrations allowed; multiplied by the enabled devices (see [`UserEntry::max_contacts`]).
    pub max_contacts: i32,
    pub extension: Option<&'a str>,
    pub aliases: &'a [String],
    pub flags: &'a [String],
    pub barge_group: Option<&'a str>,
    pub caller_id: Option<&'a str>,
}

/// A user part as the registrar stores an address of record: `%HH` escapes decoded and ASCII
/// letters lower-cased (Kamailio's registrar does both before saving a contact). Two names
/// with the same canonical form are one address there, so they must never belong to two
/// users.
pub fn canonical_user(name: &str) -> String {
    percent_decode(name).to_ascii_lowercase()
}

/// `value` with every `%HH` escape decoded; a malformed escape is kept as it is.
pub fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether an extension is a number another user can dial: digits, `*` and `+` only (what a
/// keypad sends). Any other extension (e.g. `lobby`) is a label, and marks its user as one
/// that cannot be called from within the domain.
pub fn is_dial_number(extension: &str) -> bool {
    !extension.is_empty()
        && extension
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'+')
}

impl UserEntry {
    /// Builds the entry, hashing each password into one HA1 per enabled algorithm.
    pub fn build(spec: &EntrySpec<'_>) -> Self {
        let digests = |username: &str, password: &Password| {
            let digest = |alg| {
                spec.algorithms
                    .contains(&alg)
                    .then(|| ha1(alg, username, spec.realm, password))
            };
            (digest(DigestAlgorithm::Md5), digest(DigestAlgorithm::Sha256))
        };
        let devices: Vec<DeviceEntry> = spec
            .devices
            .iter()
            .map(|d| {
                let auth_username = crate::api::device_auth_username(spec.username, d.name);
                let (ha1_md5, ha1_sha256) = digests(&auth_username, d.password);
                DeviceEntry {
                    name: d.name.to_string(),
                    auth_username,
                    ha1_md5,
                    ha1_sha256,
                    previous: previous_for(d.previous, spec.algorithms),
                    changed_at: d.changed_at,
                }
            })
            .collect();
        let (ha1_md5, ha1_sha256, previous) = if devices.is_empty() {
            let (md5, sha256) = digests(spec.username, spec.password);
            (md5, sha256, previous_for(spec.previous, spec.algorithms))
        } else {
            (None, None, None)
        };
        let per_device = i32::try_from(devices.len().max(1)).unwrap_or(i32::MAX);
        Self {
            key: UserKey::new(spec.username, spec.domain),
            realm: spec.realm.to_string(),
            ha1_md5,
            ha1_sha256,
            previous,
            changed_at: spec.changed_at,
            max_contacts: spec.max_contacts.saturating_mul(per_device),
            extension: spec.extension.map(str::to_string),
            aliases: spec.aliases.to_vec(),
            devices,
            dialable: spec.extension.is_none_or(is_dial_number),
            flags: spec.flags.to_vec(),
            barge_group: spec.barge_group.map(str::to_string),
            caller_id: spec.caller_id.map(str::to_string),
        }
    }

    /// The digest usernames whose registrations are valid for this user now: the username
    /// itself while the account's own digest is pushed (it lists no devices), and each
    /// enabled device's. None when every listed device is disabled.
    pub fn auth_usernames(&self) -> Vec<&str> {
        let account =
            (self.ha1_md5.is_some() || self.ha1_sha256.is_some()).then_some(self.key.username.as_str());
        account
            .into_iter()
            .chain(self.devices.iter().map(|d| d.auth_username.as_str()))
            .collect()
    }

    /// The digest usernames whose previous password is still accepted (a grace period runs
    /// for them): contacts registered with a previous password of any other are dropped.
    pub fn previous_auth_usernames(&self) -> Vec<&str> {
        let account = self
            .previous
            .as_ref()
            .filter(|_| self.ha1_md5.is_some() || self.ha1_sha256.is_some())
            .map(|_| self.key.username.as_str());
        account
            .into_iter()
            .chain(
                self.devices
                    .iter()
                    .filter(|d| d.previous.is_some())
                    .map(|d| d.auth_username.as_str()),
            )
            .collect()
    }

    /// Whether a contact on one of the entry's addresses, registered by `auth_username` with
    /// its last REGISTER at `last_modified` (`flagged`: the registrar says it used a previous
    /// password), must be dropped: its digest username is not valid any more (a removed or
    /// disabled device's, the account's own after devices were listed, another user's), or
    /// it is on a previous password (see [`crate::rotation::on_previous`]) whose grace period
    /// ended.
    pub fn revokes(&self, auth_username: &str, last_modified: Option<i64>, flagged: bool) -> bool {
        if !self.auth_usernames().contains(&auth_username) {
            return true;
        }
        let changed_at = if auth_username == self.key.username {
            self.changed_at
        } else {
            self.devices
                .iter()
                .find(|d| d.auth_username == auth_username)
                .and_then(|d| d.changed_at)
        };
        crate::rotation::on_previous(flagged, last_modified, changed_at)
            && !self.previous_auth_usernames().contains(&auth_username)
    }

    /// The addresses of record the user's devices register to: its own (`username@domain`)
    /// and one line per alias.
    pub fn aors(&self) -> Vec<String> {
        std::iter::once(self.key.key())
            .chain(
                self.aliases
                    .iter()
                    .map(|a| UserKey::new(a.as_str(), self.key.domain.as_str()).key()),
            )
            .collect()
    }

    /// The names other users dial, besides the username: the extension when it is a number,
    /// and the aliases.
    pub fn dial_names(&self) -> Vec<(DialKind, &str)> {
        self.extension
            .as_deref()
            .filter(|e| is_dial_number(e))
            .map(|e| (DialKind::Extension, e))
            .into_iter()
            .chain(self.aliases.iter().map(|a| (DialKind::Alias, a.as_str())))
            .collect()
    }
}

/// The part of a previous digest the domain's algorithms use now; `None` when none is left.
fn previous_for(previous: Option<&PreviousDigest>, algorithms: &[DigestAlgorithm]) -> Option<PreviousDigest> {
    let p = previous?;
    let p = PreviousDigest {
        ha1_md5: p
            .ha1_md5
            .clone()
            .filter(|_| algorithms.contains(&DigestAlgorithm::Md5)),
        ha1_sha256: p
            .ha1_sha256
            .clone()
            .filter(|_| algorithms.contains(&DigestAlgorithm::Sha256)),
        valid_until: p.valid_until,
    };
    (p.ha1_md5.is_some() || p.ha1_sha256.is_some()).then_some(p)
}

/// What a dialled name other than the username is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialKind {
    /// The user's extension: rings the user's devices.
    Extension,
    /// An alias: a line of its own (its registrations ring), else the user's devices.
    Alias,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(devices: &'a [DeviceCredentials<'a>], extension: Option<&'a str>) -> EntrySpec<'a> {
        static PASSWORD: std::sync::LazyLock<Password> = std::sync::LazyLock::new(|| Password::new("pw"));
        EntrySpec {
            username: "alice",
            domain: "acme.example.com",
            realm: "acme.example.com",
            password: &PASSWORD,
            previous: None,
            changed_at: None,
            devices,
            algorithms: &[DigestAlgorithm::Md5],
            max_contacts: 2,
            extension,
            aliases: &[],
            flags: &[],
            barge_group: None,
            caller_id: None,
        }
    }

    #[test]
    fn a_contact_on_a_previous_password_goes_once_its_grace_period_ended() {
        let desk = Password::new("d");
        let previous = PreviousDigest {
            ha1_md5: Some("ab".repeat(16)),
            ha1_sha256: None,
            valid_until: 2000,
        };
        let device = |previous| {
            [DeviceCredentials {
                name: "desk",
                password: &desk,
                previous,
                changed_at: Some(1000),
            }]
        };
        let during = device(Some(&previous));
        let during = UserEntry::build(&spec(&during, None));
        // Registered at 900, before the change at 1000, never refreshed: on the previous
        // password, kept while its grace period runs.
        assert!(!during.revokes("alice#desk", Some(900), false));
        let after = device(None);
        let after = UserEntry::build(&spec(&after, None));
        assert!(after.revokes("alice#desk", Some(900), false), "dropped after it");
        assert!(
            after.revokes("alice#desk", Some(1500), true),
            "re-registered with it"
        );
        assert!(
            !after.revokes("alice#desk", Some(1000), false),
            "registered with the new one"
        );
        assert!(
            !after.revokes("alice#desk", None, false),
            "the registrar does not say when"
        );
        assert!(
            after.revokes("alice#soft", Some(1500), false),
            "not a device of alice's"
        );
        assert!(
            after.revokes("alice", Some(1500), false),
            "the account's, with devices listed"
        );
        let account = UserEntry::build(&EntrySpec {
            changed_at: Some(1000),
            ..spec(&[], None)
        });
        assert!(
            account.revokes("alice", Some(900), false),
            "the account's own, likewise"
        );
        assert!(!account.revokes("alice", Some(1100), false));
    }

    #[test]
    fn without_devices_the_account_registers_itself() {
        let e = UserEntry::build(&spec(&[], Some("7001")));
        assert!(e.ha1_md5.is_some());
        assert_eq!(e.auth_usernames(), ["alice"]);
        assert_eq!(e.max_contacts, 2);
        assert!(e.dialable);
        assert_eq!(e.dial_names(), [(DialKind::Extension, "7001")]);
    }

    #[test]
    fn with_devices_only_the_devices_register_each_with_its_own_digest() {
        let (desk, soft) = (Password::new("d"), Password::new("s"));
        let devices = [
            DeviceCredentials {
                name: "desk",
                password: &desk,
                previous: None,
                changed_at: None,
            },
            DeviceCredentials {
                name: "soft",
                password: &soft,
                previous: None,
                changed_at: None,
            },
        ];
        let e = UserEntry::build(&spec(&devices, None));
        assert_eq!(e.ha1_md5, None, "the account's own password is not pushed");
        assert_eq!(e.auth_usernames(), ["alice#desk", "alice#soft"]);
        let mut all_disabled = UserEntry::build(&spec(&[], None));
        (all_disabled.ha1_md5, all_disabled.ha1_sha256) = (None, None);
        assert!(
            all_disabled.auth_usernames().is_empty(),
            "every listed device disabled: nobody may register"
        );
        assert_eq!(
            e.devices[0].ha1_md5.as_deref(),
            Some(ha1(DigestAlgorithm::Md5, "alice#desk", "acme.example.com", &desk).as_str())
        );
        assert_ne!(e.devices[0].ha1_md5, e.devices[1].ha1_md5);
        assert_eq!(e.max_contacts, 4, "maxContacts is multiplied by the devices");
        let shown = format!("{e:?}");
        assert!(
            !shown.contains(e.devices[0].ha1_md5.as_deref().unwrap_or("?")),
            "{shown}"
        );
    }

    #[test]
    fn canonical_names_are_what_the_registrar_stores() {
        assert_eq!(canonical_user("Alice"), "alice");
        assert_eq!(canonical_user("%62ob"), "bob");
        assert_eq!(canonical_user("%41lice"), "alice");
        assert_eq!(canonical_user("+4930123"), "+4930123");
        assert_eq!(canonical_user("a%2"), "a%2", "a broken escape stays");
    }

    #[test]
    fn an_extension_that_is_not_a_number_makes_the_user_not_dialable() {
        for number in ["7001", "+4930123", "*97"] {
            assert!(is_dial_number(number), "{number}");
        }
        for label in ["lobby", "70a1", "", "7.1"] {
            assert!(!is_dial_number(label), "{label}");
        }
        let mut aliased = spec(&[], Some("lobby"));
        let aliases = ["alice-support".to_string()];
        aliased.aliases = &aliases;
        let e = UserEntry::build(&aliased);
        assert!(!e.dialable);
        assert_eq!(
            e.dial_names(),
            [(DialKind::Alias, "alice-support")],
            "a label is not indexed"
        );
        assert_eq!(
            e.aors(),
            ["alice@acme.example.com", "alice-support@acme.example.com"]
        );
    }
}
