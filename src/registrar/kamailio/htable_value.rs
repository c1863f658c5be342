//! The htable values of a user, pure: what the shipped kamailio.cfg parses per user (`users`),
//! per device (`devices`) and per dialled name (`dial`).
use crate::registrar::entry::percent_decode as decode;
use crate::registrar::{DeviceEntry, DialKind, UserEntry, UserKey};

/// The htable holding each device's credentials, keyed `<username>#<device>@<domain>`.
pub const DEVICES_HTABLE: &str = "devices";
/// The htable mapping each dialled name other than a username (a numeric extension, an
/// alias) to its owner, keyed `<name>@<domain>`.
pub const DIAL_HTABLE: &str = "dial";

/// The `users` value the shipped kamailio.cfg reads with `{param.value,name}`: `name=value`
/// pairs separated by `;`. That transformation parses like SIP header parameters (a value
/// ends at `;`, `,` or white space), so every value is a token: free text is percent-encoded
/// and list items are joined with `.` (each item encoding its own dots).
pub fn htable_value(user: &UserEntry) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    push_digests(&mut fields, user.ha1_md5.as_ref(), user.ha1_sha256.as_ref());
    push_previous(&mut fields, user.previous.as_ref());
    fields.push(("mc", user.max_contacts.to_string()));
    // Only enabled users are pushed; suspended ones are removed.
    fields.push(("en", "1".into()));
    if !user.dialable {
        fields.push(("dial", "0".into()));
    }
    if let Some(e) = &user.extension {
        fields.push(("ext", encode(e)));
    }
    if !user.aliases.is_empty() {
        fields.push(("aliases", encode_list(user.aliases.iter().map(String::as_str))));
    }
    if !user.devices.is_empty() {
        // Device names are DNS labels: no encoding needed, none holds a `.`.
        fields.push(("devs", encode_list(user.devices.iter().map(|d| d.name.as_str()))));
    }
    if !user.flags.is_empty() {
        fields.push(("flags", user.flags.join(".")));
    }
    if let Some(g) = &user.barge_group {
        fields.push(("barge", g.clone()));
    }
    if let Some(c) = &user.caller_id {
        fields.push(("cid", encode(c)));
    }
    join(&fields)
}

/// The `devices` key of a device: its digest username at the user's domain.
pub fn device_key(user: &UserEntry, device: &DeviceEntry) -> String {
    UserKey::new(device.auth_username.as_str(), user.key.domain.as_str()).key()
}

/// The `devices` value of a device: its HA1s and its name. The config accepts it only for
/// an AOR of the user whose `users` entry lists the name in `devs`, so an entry left behind
/// by a removed device is inert.
pub fn device_value(device: &DeviceEntry) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    push_digests(&mut fields, device.ha1_md5.as_ref(), device.ha1_sha256.as_ref());
    push_previous(&mut fields, device.previous.as_ref());
    fields.push(("dev", device.name.clone()));
    join(&fields)
}

/// The `dial` entries of a user: `<name>@<domain>` and a value naming the owner, the kind
/// and the name (encoded as the owner's `users` value holds it). The config follows one only
/// while the owner's `users` entry still holds that name, so an entry left behind by an
/// extension or alias change (or a deleted user) is inert, and the next owner of the name
/// simply overwrites it.
pub fn dial_entries(user: &UserEntry) -> Vec<(String, String)> {
    user.dial_names()
        .into_iter()
        .map(|(kind, name)| {
            let kind = match kind {
                DialKind::Extension => "ext",
                DialKind::Alias => "alias",
            };
            (
                UserKey::new(name, user.key.domain.as_str()).key(),
                join(&[
                    ("own", encode(&user.key.username)),
                    ("kind", kind.to_string()),
                    ("name", encode(name)),
                ]),
            )
        })
        .collect()
}

/// What a `users` value says the user had besides its own AOR: its alias lines and its
/// devices' names (decoded), so that removing the user can clean them up.
pub fn lines_and_devices(value: &str) -> (Vec<String>, Vec<String>) {
    let list = |name: &str| -> Vec<String> {
        field(value, name)
            .map(|items| items.split('.').filter(|i| !i.is_empty()).map(decode).collect())
            .unwrap_or_default()
    };
    (list("aliases"), list("devs"))
}

/// The owner's username (decoded) of a `dial` value.
pub fn dial_owner(value: &str) -> Option<String> {
    field(value, "own").map(decode)
}

/// The value of field `name` of a `name=value;...` string.
fn field<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value
        .split(';')
        .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
}

fn push_digests(fields: &mut Vec<(&str, String)>, md5: Option<&String>, sha256: Option<&String>) {
    if let Some(h) = md5 {
        fields.push(("ha1", h.clone()));
    }
    if let Some(h) = sha256 {
        fields.push(("ha1sha256", h.clone()));
    }
}

/// The previous password's HA1s during a grace period (`pha1`, `pha1sha256`) and its
/// deadline in Unix seconds (`puntil`): the config accepts them only while its clock is
/// before the deadline, so they stop working then even before the operator pushes the entry
/// without them.
fn push_previous(fields: &mut Vec<(&str, String)>, previous: Option<&crate::rotation::PreviousDigest>) {
    let Some(p) = previous else {
        return;
    };
    if let Some(h) = &p.ha1_md5 {
        fields.push(("pha1", h.clone()));
    }
    if let Some(h) = &p.ha1_sha256 {
        fields.push(("pha1sha256", h.clone()));
    }
    fields.push(("puntil", p.valid_until.to_string()));
}

fn join(fields: &[(&str, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

fn encode_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.map(encode).collect::<Vec<_>>().join(".")
}

/// Percent-encodes everything but letters, digits, `-` and `_`, so a value is a SIP token
/// and `.` stays free as the list separator. (The config decodes an owner's name with
/// `{s.unescape.user}`.)
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DigestAlgorithm;
    use crate::credentials::Password;
    use crate::registrar::entry::{DeviceCredentials, EntrySpec};

    fn entry(
        algorithms: &[DigestAlgorithm],
        devices: &[DeviceCredentials<'_>],
        extension: &str,
    ) -> UserEntry {
        UserEntry::build(&EntrySpec {
            username: "alice",
            domain: "acme.example.com",
            realm: "acme.example.com",
            password: &Password::new("secret"),
            previous: None,
            changed_at: None,
            devices,
            algorithms,
            max_contacts: 2,
            extension: Some(extension),
            aliases: &["alice;support".to_string(), "a=b".to_string()],
            flags: &["barge".to_string(), "voicemail".to_string()],
            barge_group: Some("floor"),
            caller_id: Some("+49 30 123"),
        })
    }

    #[test]
    fn value_carries_ha1_and_attributes_never_the_password() {
        let value = htable_value(&entry(&[DigestAlgorithm::Md5], &[], "7001"));
        let md5 = crate::credentials::ha1(
            DigestAlgorithm::Md5,
            "alice",
            "acme.example.com",
            &Password::new("secret"),
        );
        assert_eq!(
            value,
            format!(
                "ha1={md5};mc=2;en=1;ext=7001;aliases=alice%3Bsupport.a%3Db;flags=barge.voicemail;barge=floor;cid=%2B49%2030%20123"
            )
        );
        assert!(!value.contains("secret"));
    }

    #[test]
    fn sha256_is_pushed_only_when_enabled() {
        assert!(!htable_value(&entry(&[DigestAlgorithm::Md5], &[], "7001")).contains("ha1sha256="));
        let both = htable_value(&entry(
            &[DigestAlgorithm::Md5, DigestAlgorithm::Sha256],
            &[],
            "7001",
        ));
        let sha = both
            .split(';')
            .find_map(|f| f.strip_prefix("ha1sha256="))
            .expect("sha256 field");
        assert_eq!(sha.len(), 64);
    }

    #[test]
    fn a_user_with_devices_lists_them_and_each_device_carries_its_own_digest() {
        let (desk, soft) = (Password::new("d"), Password::new("s"));
        let devices = [
            DeviceCredentials {
                name: "desk",
                password: &desk,
                previous: None,
                changed_at: None,
            },
            DeviceCredentials {
                name: "soft-1",
                password: &soft,
                previous: None,
                changed_at: None,
            },
        ];
        let user = entry(&[DigestAlgorithm::Md5], &devices, "7001");
        let value = htable_value(&user);
        assert!(
            !value.contains("ha1="),
            "the account's own digest is not pushed: {value}"
        );
        assert!(value.contains(";devs=desk.soft-1;"), "{value}");
        assert!(value.contains("mc=4;"), "{value}");
        assert_eq!(
            device_key(&user, &user.devices[1]),
            "alice#soft-1@acme.example.com"
        );
        let md5 = crate::credentials::ha1(DigestAlgorithm::Md5, "alice#desk", "acme.example.com", &desk);
        assert_eq!(device_value(&user.devices[0]), format!("ha1={md5};dev=desk"));
    }

    #[test]
    fn dial_entries_name_the_owner_and_what_was_dialled() {
        let user = entry(&[DigestAlgorithm::Md5], &[], "7001");
        assert_eq!(
            dial_entries(&user),
            [
                (
                    "7001@acme.example.com".to_string(),
                    "own=alice;kind=ext;name=7001".to_string()
                ),
                (
                    "alice;support@acme.example.com".to_string(),
                    "own=alice;kind=alias;name=alice%3Bsupport".to_string()
                ),
                (
                    "a=b@acme.example.com".to_string(),
                    "own=alice;kind=alias;name=a%3Db".to_string()
                ),
            ]
        );
        let label = entry(&[DigestAlgorithm::Md5], &[], "lobby");
        let value = htable_value(&label);
        assert!(value.contains(";dial=0;"), "{value}");
        assert_eq!(dial_entries(&label).len(), 2, "a label extension is not dialled");
    }

    #[test]
    fn a_removal_reads_back_the_lines_devices_and_owners_it_pushed() {
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
        let user = entry(&[DigestAlgorithm::Md5], &devices, "7001");
        let (lines, devs) = lines_and_devices(&htable_value(&user));
        assert_eq!(lines, ["alice;support", "a=b"]);
        assert_eq!(devs, ["desk", "soft"]);
        assert_eq!(lines_and_devices("ha1=x;mc=1;en=1"), (vec![], vec![]));
        let (_, value) = &dial_entries(&user)[0];
        assert_eq!(dial_owner(value).as_deref(), Some("alice"));
        assert_eq!(
            decode("first%2Elast%2"),
            "first.last%2",
            "a broken escape is kept"
        );
        assert_eq!(decode(&encode("+49 30;x=%41")), "+49 30;x=%41");
    }

    #[test]
    fn a_previous_digest_goes_with_its_deadline_for_the_account_and_each_device() {
        let previous = crate::rotation::PreviousDigest {
            ha1_md5: Some("0".repeat(32)),
            ha1_sha256: Some("1".repeat(64)),
            valid_until: 1_795_473_060,
        };
        let mut user = entry(&[DigestAlgorithm::Md5], &[], "7001");
        user.previous = Some(previous.clone());
        let value = htable_value(&user);
        assert!(
            value.starts_with(&format!(
                "ha1={};pha1={};pha1sha256={};puntil=1795473060;mc=2;",
                user.ha1_md5.as_deref().unwrap_or_default(),
                "0".repeat(32),
                "1".repeat(64)
            )),
            "{value}"
        );
        let desk = Password::new("d");
        let devices = [DeviceCredentials {
            name: "desk",
            password: &desk,
            previous: Some(&previous),
            changed_at: None,
        }];
        let with_device = entry(&[DigestAlgorithm::Md5], &devices, "7001");
        let device = device_value(&with_device.devices[0]);
        assert!(
            device.ends_with(&format!(";pha1={};puntil=1795473060;dev=desk", "0".repeat(32))),
            "only the algorithms in use: {device}"
        );
        assert_eq!(with_device.previous_auth_usernames(), ["alice#desk"]);
        assert!(
            !format!("{:?}", with_device).contains(&"0".repeat(32)),
            "debug hides it"
        );
        let plain = entry(&[DigestAlgorithm::Md5], &[], "7001");
        assert!(
            !htable_value(&plain).contains("puntil"),
            "no grace period: as before"
        );
    }

    #[test]
    fn entry_debug_hides_the_digests() {
        let e = entry(&[DigestAlgorithm::Md5, DigestAlgorithm::Sha256], &[], "7001");
        let shown = format!("{e:?}");
        assert!(!shown.contains(e.ha1_md5.as_deref().expect("md5")), "{shown}");
        assert!(shown.contains("alice"));
    }
}
