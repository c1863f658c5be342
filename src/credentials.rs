//! SIP credentials, pure: password generation, HA1 digests, and the credentials Secret as the
//! operator wants it to be. No I/O here; the reconciler reads and applies.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use md5::{Digest, Md5};
use rand::RngExt;
use sha2::Sha256;

use crate::api::{CharacterSet, DigestAlgorithm, PasswordPolicy};
use crate::keys::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, USER_ANNOTATION, USER_LABEL, user_label_value};
use crate::rotation::PreviousDigest;

/// A plaintext SIP password. It has no `Display`, and its `Debug` is redacted, so it cannot
/// reach a log line, an event or a panic message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password that came from elsewhere (an imported Secret, an existing Secret).
    pub fn new(plaintext: impl Into<String>) -> Self {
        Self(plaintext.into())
    }

    /// The plaintext, for the Secret's data and for computing HA1 only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Symbols that need no quoting in SIP headers, XML provisioning files or shell snippets:
/// what `AlphanumericSymbols` adds to letters and digits, generated or chosen.
pub const SYMBOLS: &str = "-_.!~*+=";
/// The shortest and longest password a policy can ask for (the schema's bounds).
pub const PASSWORD_LENGTHS: std::ops::RangeInclusive<usize> = 16..=128;

/// The length `policy` asks for, within [`PASSWORD_LENGTHS`] even if a stored value is not
/// (so a bad value cannot yield an empty or huge password).
pub fn password_length(policy: &PasswordPolicy) -> usize {
    let (min, max) = (*PASSWORD_LENGTHS.start(), *PASSWORD_LENGTHS.end());
    usize::try_from(policy.length).map_or(min, |length| length.clamp(min, max))
}

/// A new password drawn from the operating system's CSPRNG, uniformly over the policy's
/// alphabet (no modulo bias: `random_range` rejects out-of-range draws).
pub fn generate_password(policy: &PasswordPolicy) -> Password {
    let alphabet: Vec<u8> = match policy.character_set {
        CharacterSet::Alphanumeric => ALPHANUMERIC.to_vec(),
        CharacterSet::AlphanumericSymbols => [ALPHANUMERIC, SYMBOLS.as_bytes()].concat(),
    };
    let length = password_length(policy);
    let mut rng = rand::rand_core::UnwrapErr(rand::rngs::SysRng);
    let password = (0..length)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect();
    Password(password)
}

/// HA1 = H(username:realm:password) as lower-case hex (RFC 2617 §3.2.2.2, RFC 8760 §2): what
/// the registrar stores instead of the password.
pub fn ha1(algorithm: DigestAlgorithm, username: &str, realm: &str, password: &Password) -> String {
    let input = format!("{username}:{realm}:{}", password.expose());
    match algorithm {
        DigestAlgorithm::Md5 => hex(&Md5::digest(input.as_bytes())),
        DigestAlgorithm::Sha256 => hex(&Sha256::digest(input.as_bytes())),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The `sip:user@domain` address of record.
pub fn aor(username: &str, domain: &str) -> String {
    format!("sip:{username}@{domain}")
}

/// One device's entry in a credentials Secret.
#[derive(Debug, Clone)]
pub struct DeviceSecret<'a> {
    /// The device's name in `SipUser.spec.devices`.
    pub name: &'a str,
    pub password: &'a Password,
    /// Its previous digest during a grace period after a rotation.
    pub previous: Option<&'a PreviousDigest>,
    /// When it was last rotated under a grace period (Unix seconds), kept after the deadline.
    pub changed_at: Option<i64>,
}

/// Everything a credentials Secret is built from.
#[derive(Debug, Clone)]
pub struct SecretSpec<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    /// The owning SipUser's `metadata.name`.
    pub user_name: &'a str,
    pub owner: OwnerReference,
    pub username: &'a str,
    pub domain: &'a str,
    pub realm: &'a str,
    pub password: &'a Password,
    /// The account's previous digest during a grace period after a change.
    pub previous: Option<&'a PreviousDigest>,
    /// When the account's password last changed under a grace period (Unix seconds), kept
    /// after the deadline.
    pub changed_at: Option<i64>,
    /// Every listed device, enabled or not (a disabled device keeps its password).
    pub devices: &'a [DeviceSecret<'a>],
    /// The SipUser's display name, for the provisioning documents.
    pub display_name: Option<&'a str>,
    /// Where the domain's phones connect.
    pub connection: &'a crate::api::Connection,
    /// The domain's digest algorithms (the documents' HA1 uses one of them).
    pub algorithms: &'a [DigestAlgorithm],
    /// The Secret as it is now, if any: its QR codes of unchanged documents are kept.
    pub current: Option<&'a Secret>,
}

/// Data keys of a credentials Secret (`kubernetes.io/basic-auth` plus SIP details).
pub mod data_keys {
    pub const USERNAME: &str = "username";
    pub const PASSWORD: &str = "password";
    pub const DOMAIN: &str = "domain";
    pub const REALM: &str = "realm";
    pub const AOR: &str = "aor";

    // Provisioning keys (see [`crate::provisioning::secret_entries`]); the invite page
    // relies on these names.
    /// The host phones connect to.
    pub const SERVER: &str = "server";
    /// The port phones connect to.
    pub const PORT: &str = "port";
    /// The preferred transport, `udp`, `tcp` or `tls`.
    pub const TRANSPORT: &str = "transport";
    /// Where phones send REGISTER, as a SIP URI.
    pub const REGISTRAR_URI: &str = "registrarUri";
    /// The domain's outbound proxy (only when it names one).
    pub const OUTBOUND_PROXY: &str = "outboundProxy";
    /// The address of record as a SIP URI with its transport.
    pub const SIP_URI: &str = "sipUri";
    /// The account's Linphone provisioning document (without devices).
    pub const LINPHONE_XML: &str = "linphone.xml";
    /// A QR code (PNG) of that document.
    pub const QR_PNG: &str = "qr.png";

    /// A password the end user chose on an invite's page, waiting for the SipUser controller
    /// to make it the account's (the page never writes `password` itself: the controller is
    /// its single writer, so the change follows the grace period like any other). The
    /// controller removes it in the write that swaps it in.
    pub const CHOSEN_PASSWORD: &str = "chosen.password";

    /// What every key of a device starts with.
    pub const DEVICE_PREFIX: &str = "devices.";

    /// `previous.ha1`, `previous.ha1-sha256`, `previous.valid-until`: during a grace period
    /// after a change, the previous password's HA1s (never the password) and the deadline
    /// (RFC 3339), kept here so that they survive an operator restart.
    pub const PREVIOUS_HA1: &str = "previous.ha1";
    pub const PREVIOUS_HA1_SHA256: &str = "previous.ha1-sha256";
    pub const PREVIOUS_VALID_UNTIL: &str = "previous.valid-until";
    /// `previous.changed-at`: when the password last changed under a grace period (RFC 3339).
    /// It stays after the deadline: a contact whose last REGISTER is older was accepted with
    /// a password no longer accepted, and is dropped.
    pub const PREVIOUS_CHANGED_AT: &str = "previous.changed-at";
    /// The keys of a previous digest, in the order above.
    pub const PREVIOUS: [&str; 4] = [
        PREVIOUS_HA1,
        PREVIOUS_HA1_SHA256,
        PREVIOUS_VALID_UNTIL,
        PREVIOUS_CHANGED_AT,
    ];

    /// The keys a device has, after `devices.<device>.`: the account's own names.
    const DEVICE_KEYS: [&str; 8] = [
        USERNAME,
        PASSWORD,
        LINPHONE_XML,
        QR_PNG,
        PREVIOUS_HA1,
        PREVIOUS_HA1_SHA256,
        PREVIOUS_VALID_UNTIL,
        PREVIOUS_CHANGED_AT,
    ];

    /// `devices.<device>.<key>`: the device's `key` (one of the account's key names).
    pub fn device_key(device: &str, key: &str) -> String {
        format!("{DEVICE_PREFIX}{device}.{key}")
    }

    /// `devices.<device>.linphone.xml`: the device's Linphone provisioning document.
    pub fn device_linphone_xml(device: &str) -> String {
        device_key(device, LINPHONE_XML)
    }

    /// `devices.<device>.qr.png`: a QR code of that document.
    pub fn device_qr_png(device: &str) -> String {
        device_key(device, QR_PNG)
    }

    /// `devices.<device>.username`: the device's digest username, `<username>#<device>`.
    pub fn device_username(device: &str) -> String {
        device_key(device, USERNAME)
    }

    /// `devices.<device>.password`: the device's password.
    pub fn device_password(device: &str) -> String {
        device_key(device, PASSWORD)
    }

    /// The device a data key belongs to, if it is a device key. Device names are DNS labels
    /// (no `.`), so the name is what lies before a known key: `a.linphone.xml` is device `a`,
    /// never `a.linphone` with a key `xml`.
    pub fn device_of(key: &str) -> Option<&str> {
        let rest = key.strip_prefix(DEVICE_PREFIX)?;
        DEVICE_KEYS
            .iter()
            .find_map(|k| rest.strip_suffix(k)?.strip_suffix('.'))
            .filter(|d| !d.is_empty() && !d.contains('.'))
    }

    /// Whether a data key holds a previous digest (the account's or a device's).
    pub fn is_previous(key: &str) -> bool {
        PREVIOUS.contains(&key)
            || device_of(key).is_some_and(|d| PREVIOUS.iter().any(|p| key == device_key(d, p)))
    }
}

/// The credentials Secret as the operator wants it.
pub fn build_secret(spec: &SecretSpec<'_>) -> Secret {
    let data = [
        (data_keys::USERNAME, spec.username.to_string()),
        (data_keys::PASSWORD, spec.password.expose().to_string()),
        (data_keys::DOMAIN, spec.domain.to_string()),
        (data_keys::REALM, spec.realm.to_string()),
        (data_keys::AOR, aor(spec.username, spec.domain)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(spec.devices.iter().flat_map(|d| {
        [
            (
                data_keys::device_username(d.name),
                crate::api::device_auth_username(spec.username, d.name),
            ),
            (
                data_keys::device_password(d.name),
                d.password.expose().to_string(),
            ),
        ]
    }))
    .chain(previous_data(spec.previous, spec.changed_at, |k| k.to_string()))
    .chain(
        spec.devices
            .iter()
            .flat_map(|d| previous_data(d.previous, d.changed_at, |k| data_keys::device_key(d.name, k))),
    )
    .map(|(k, v)| (k, v.into_bytes()))
    .chain(provisioning_entries(spec))
    .map(|(k, v)| (k, ByteString(v)))
    .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(spec.name.to_string()),
            namespace: Some(spec.namespace.to_string()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string()),
                (USER_LABEL.to_string(), user_label_value(spec.user_name)),
            ])),
            // The full name, where the label could only hold a digest of it.
            annotations: (user_label_value(spec.user_name) != spec.user_name)
                .then(|| BTreeMap::from([(USER_ANNOTATION.to_string(), spec.user_name.to_string())])),
            owner_references: Some(vec![spec.owner.clone()]),
            ..Default::default()
        },
        type_: Some("kubernetes.io/basic-auth".into()),
        data: Some(data),
        ..Default::default()
    }
}

/// The data of a previous digest and of the change time under the keys `key` makes of
/// [`data_keys::PREVIOUS`].
fn previous_data(
    previous: Option<&PreviousDigest>,
    changed_at: Option<i64>,
    key: impl Fn(&str) -> String,
) -> Vec<(String, String)> {
    let rfc3339 = |t: i64| {
        k8s_openapi::jiff::Timestamp::from_second(t)
            .map(|t| t.to_string())
            .ok()
    };
    [
        (data_keys::PREVIOUS_HA1, previous.and_then(|p| p.ha1_md5.clone())),
        (
            data_keys::PREVIOUS_HA1_SHA256,
            previous.and_then(|p| p.ha1_sha256.clone()),
        ),
        (
            data_keys::PREVIOUS_VALID_UNTIL,
            previous.and_then(|p| rfc3339(p.valid_until)),
        ),
        (data_keys::PREVIOUS_CHANGED_AT, changed_at.and_then(rfc3339)),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((key(k), v?)))
    .collect()
}

/// The previous digest a Secret holds under the keys `key` makes of [`data_keys::PREVIOUS`]
/// (the account's, or a device's); `None` without a readable deadline or any HA1.
fn read_previous(secret: &Secret, key: impl Fn(&str) -> String) -> Option<PreviousDigest> {
    let hex = |k: &str| {
        secret_value(secret, &key(k)).filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let p = PreviousDigest {
        ha1_md5: hex(data_keys::PREVIOUS_HA1),
        ha1_sha256: hex(data_keys::PREVIOUS_HA1_SHA256),
        valid_until: read_seconds(secret, &key(data_keys::PREVIOUS_VALID_UNTIL))?,
    };
    (p.ha1_md5.is_some() || p.ha1_sha256.is_some()).then_some(p)
}

/// The account's previous digest stored in `secret`, if any.
pub fn previous_digest(secret: &Secret) -> Option<PreviousDigest> {
    read_previous(secret, str::to_string)
}

/// Device `device`'s previous digest stored in `secret`, if any.
pub fn device_previous_digest(secret: &Secret, device: &str) -> Option<PreviousDigest> {
    read_previous(secret, |k| data_keys::device_key(device, k))
}

/// When the account's password last changed under a grace period, as `secret` records it.
pub fn previous_changed_at(secret: &Secret) -> Option<i64> {
    read_seconds(secret, data_keys::PREVIOUS_CHANGED_AT)
}

/// When device `device` was last rotated under a grace period, as `secret` records it.
pub fn device_previous_changed_at(secret: &Secret, device: &str) -> Option<i64> {
    read_seconds(
        secret,
        &data_keys::device_key(device, data_keys::PREVIOUS_CHANGED_AT),
    )
}

/// The RFC 3339 time under `key`, in Unix seconds.
fn read_seconds(secret: &Secret, key: &str) -> Option<i64> {
    let at: k8s_openapi::jiff::Timestamp = secret_value(secret, key)?.parse().ok()?;
    Some(at.as_second())
}

/// The Secret's provisioning keys: connection, URIs, and Linphone documents with QR codes.
fn provisioning_entries(spec: &SecretSpec<'_>) -> Vec<(String, Vec<u8>)> {
    let account = crate::provisioning::Account {
        username: spec.username,
        domain: spec.domain,
        realm: spec.realm,
        display_name: spec.display_name,
        connection: spec.connection,
        algorithms: spec.algorithms,
    };
    let devices: Vec<(&str, &Password)> = spec.devices.iter().map(|d| (d.name, d.password)).collect();
    crate::provisioning::secret_entries(&account, spec.password, &devices, spec.current)
}

/// Whether `existing` already is `desired` in everything the operator sets (labels and owner
/// references it adds; others' additions are left alone), so no write is needed.
pub fn secret_is_current(existing: &Secret, desired: &Secret) -> bool {
    let subset = |want: &Option<BTreeMap<String, String>>, have: &Option<BTreeMap<String, String>>| {
        want.iter()
            .flatten()
            .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
    };
    let labels_ok = subset(&desired.metadata.labels, &existing.metadata.labels)
        && subset(&desired.metadata.annotations, &existing.metadata.annotations);
    let owners_ok = desired.metadata.owner_references.iter().flatten().all(|want| {
        existing.metadata.owner_references.iter().flatten().any(|o| {
            o.uid == want.uid && o.controller == want.controller && o.kind == want.kind && o.name == want.name
        })
    });
    labels_ok && owners_ok && existing.type_ == desired.type_ && existing.data == desired.data
}

/// The devices `existing` holds keys of that `desired` does not (devices removed from the
/// list): their keys must leave the Secret, which a server-side apply cannot do for keys
/// another write (the first one, a create) put there.
pub fn removed_devices(existing: &Secret, desired: &Secret) -> std::collections::BTreeSet<String> {
    let devices = |s: &Secret| -> std::collections::BTreeSet<String> {
        s.data
            .iter()
            .flatten()
            .filter_map(|(k, _)| data_keys::device_of(k))
            .map(str::to_string)
            .collect()
    };
    let wanted = devices(desired);
    devices(existing)
        .into_iter()
        .filter(|d| !wanted.contains(d))
        .collect()
}

/// The keys the operator writes that `existing` holds and `desired` does not: a removed
/// device's, and the account keys it writes only sometimes (`outboundProxy` while the domain
/// names one, `linphone.xml` and `qr.png` while the user has no devices) and the previous
/// digests of a grace period that ended, and a chosen password's request once handled.
/// Others' keys are not among them.
pub fn removed_keys(existing: &Secret, desired: &Secret) -> std::collections::BTreeSet<String> {
    let optional = [
        data_keys::OUTBOUND_PROXY,
        data_keys::LINPHONE_XML,
        data_keys::QR_PNG,
        data_keys::CHOSEN_PASSWORD,
    ];
    let wanted = desired.data.as_ref();
    existing
        .data
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .filter(|k| {
            data_keys::device_of(k).is_some() || optional.contains(&k.as_str()) || data_keys::is_previous(k)
        })
        .filter(|k| wanted.is_none_or(|w| !w.contains_key(*k)))
        .cloned()
        .collect()
}

/// The password of device `device` stored in `secret`, if it is usable text.
pub fn device_password(secret: &Secret, device: &str) -> Option<Password> {
    secret_bytes(secret, &data_keys::device_password(device)).and_then(|b| password_from_bytes(b).ok())
}

/// Whether `secret` is controlled by the object with `owner_uid`.
pub fn is_controlled_by(secret: &Secret, owner_uid: &str) -> bool {
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == owner_uid)
}

/// The raw bytes of `key` in a Secret (`data`, else `stringData`).
pub fn secret_bytes<'a>(secret: &'a Secret, key: &str) -> Option<&'a [u8]> {
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.as_slice());
    data.or_else(|| {
        secret
            .string_data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|s| s.as_bytes())
    })
}

/// Why bytes cannot be a password, without quoting them.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordBytesError {
    #[error("is empty")]
    Empty,
    /// Digest input is text that a person or a phone's keypad enters; changing undecodable
    /// bytes into U+FFFD would make a password no device knows.
    #[error("is not UTF-8 text (an invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error(
        "contains the control character U+{code:04X} at offset {offset} (a trailing newline usually comes from `echo`; \
         use `printf '%s'` or `kubectl create secret --from-literal`)"
    )]
    ControlCharacter { code: u32, offset: usize },
}

/// A password from a Secret's bytes, exactly as they are, or why it cannot be one: it must be
/// non-empty UTF-8 text without control characters (no phone can enter those). Never altered.
pub fn password_from_bytes(bytes: &[u8]) -> Result<Password, PasswordBytesError> {
    if bytes.is_empty() {
        return Err(PasswordBytesError::Empty);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| PasswordBytesError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    if let Some((offset, c)) = text.char_indices().find(|(_, c)| c.is_control()) {
        return Err(PasswordBytesError::ControlCharacter {
            code: c as u32,
            offset,
        });
    }
    Ok(Password::new(text))
}

/// The value of `key` in a Secret, as text (lossy: for values that are not passwords).
pub fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned());
    data.or_else(|| secret.string_data.as_ref().and_then(|d| d.get(key)).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(length: i32, character_set: CharacterSet) -> PasswordPolicy {
        PasswordPolicy {
            length,
            character_set,
            rotation_grace_period: None,
        }
    }

    #[test]
    fn generated_passwords_follow_the_policy() {
        let p = generate_password(&PasswordPolicy::default());
        assert_eq!(p.expose().len(), 32);
        assert!(p.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
        let p = generate_password(&policy(100, CharacterSet::AlphanumericSymbols));
        assert_eq!(p.expose().len(), 100);
        assert!(
            p.expose()
                .bytes()
                .all(|b| ALPHANUMERIC.contains(&b) || SYMBOLS.as_bytes().contains(&b))
        );
    }

    #[test]
    fn generated_passwords_use_the_whole_alphabet_and_differ() {
        // 200 draws of 128 characters cover all 70 symbols with overwhelming probability;
        // a biased or constant generator fails this.
        let mut seen = std::collections::HashSet::new();
        let mut passwords = std::collections::HashSet::new();
        for _ in 0..200 {
            let p = generate_password(&policy(128, CharacterSet::AlphanumericSymbols));
            seen.extend(p.expose().bytes());
            passwords.insert(p.expose().to_string());
        }
        assert_eq!(seen.len(), ALPHANUMERIC.len() + SYMBOLS.len());
        assert_eq!(passwords.len(), 200);
    }

    #[test]
    fn password_debug_is_redacted() {
        let p = Password::new("s3cr3t-value");
        let shown = format!("{p:?} {:?}", Some(&p));
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn md5_ha1_matches_rfc2617_example() {
        // RFC 2617 §3.5: Mufasa / testrealm@host.com / "Circle Of Life".
        let p = Password::new("Circle Of Life");
        assert_eq!(
            ha1(DigestAlgorithm::Md5, "Mufasa", "testrealm@host.com", &p),
            "939e7578ed9e3c518a452acee763bce9"
        );
    }

    /// RFC 2617 / RFC 7616 response = KD(HA1, nonce:nc:cnonce:qop:H(method:uri)).
    fn response(
        alg: DigestAlgorithm,
        ha1: &str,
        nonce: &str,
        cnonce: &str,
        method: &str,
        uri: &str,
    ) -> String {
        let h = |s: String| match alg {
            DigestAlgorithm::Md5 => hex(&Md5::digest(s.as_bytes())),
            DigestAlgorithm::Sha256 => hex(&Sha256::digest(s.as_bytes())),
        };
        let ha2 = h(format!("{method}:{uri}"));
        h(format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"))
    }

    #[test]
    fn ha1_yields_the_rfc7616_example_responses() {
        // RFC 7616 §3.9.1 (the digest scheme RFC 8760 brings to SIP): same user, both algorithms.
        let p = Password::new("Circle of Life");
        let (nonce, cnonce) = (
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        let md5 = ha1(DigestAlgorithm::Md5, "Mufasa", "http-auth@example.org", &p);
        assert_eq!(
            response(
                DigestAlgorithm::Md5,
                &md5,
                nonce,
                cnonce,
                "GET",
                "/dir/index.html"
            ),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        let sha = ha1(DigestAlgorithm::Sha256, "Mufasa", "http-auth@example.org", &p);
        assert_eq!(
            response(
                DigestAlgorithm::Sha256,
                &sha,
                nonce,
                cnonce,
                "GET",
                "/dir/index.html"
            ),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    fn owner(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "sipoperator.io/v1alpha1".into(),
            kind: "SipUser".into(),
            name: "alice".into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn spec<'a>(password: &'a Password) -> SecretSpec<'a> {
        SecretSpec {
            name: "alice-sip-credentials",
            namespace: "ns",
            user_name: "alice",
            owner: owner("uid-1"),
            username: "+4930123",
            domain: "acme.example.com",
            realm: "acme.example.com",
            password,
            previous: None,
            changed_at: None,
            devices: &[],
            display_name: None,
            connection: &CONNECTION,
            algorithms: &[DigestAlgorithm::Md5],
            current: None,
        }
    }

    static CONNECTION: std::sync::LazyLock<crate::api::Connection> =
        std::sync::LazyLock::new(|| crate::api::Connection::resolve(None, "acme.example.com"));

    #[test]
    fn devices_get_keys_of_their_own_and_removed_ones_are_found() {
        let (p, desk, soft) = (Password::new("pw"), Password::new("d"), Password::new("s"));
        let devices = [
            DeviceSecret {
                name: "deskphone",
                password: &desk,
                previous: None,
                changed_at: None,
            },
            DeviceSecret {
                name: "softphone",
                password: &soft,
                previous: None,
                changed_at: None,
            },
        ];
        let both = build_secret(&SecretSpec {
            devices: &devices,
            ..spec(&p)
        });
        let keys: Vec<_> = both.data.as_ref().expect("data").keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "aor",
                "devices.deskphone.linphone.xml",
                "devices.deskphone.password",
                "devices.deskphone.qr.png",
                "devices.deskphone.username",
                "devices.softphone.linphone.xml",
                "devices.softphone.password",
                "devices.softphone.qr.png",
                "devices.softphone.username",
                "domain",
                "password",
                "port",
                "realm",
                "registrarUri",
                "server",
                "sipUri",
                "transport",
                "username"
            ]
        );
        assert_eq!(
            secret_value(&both, "devices.deskphone.username").as_deref(),
            Some("+4930123#deskphone")
        );
        assert_eq!(device_password(&both, "softphone"), Some(soft.clone()));
        assert_eq!(
            secret_value(&both, "password").as_deref(),
            Some("pw"),
            "the account's own keys stay"
        );

        let one = build_secret(&SecretSpec {
            devices: &devices[..1],
            ..spec(&p)
        });
        assert_eq!(
            removed_devices(&both, &one).into_iter().collect::<Vec<_>>(),
            ["softphone"]
        );
        assert!(removed_devices(&one, &both).is_empty(), "added is not removed");
        assert_eq!(
            removed_keys(&both, &one).into_iter().collect::<Vec<_>>(),
            [
                "devices.softphone.linphone.xml",
                "devices.softphone.password",
                "devices.softphone.qr.png",
                "devices.softphone.username"
            ]
        );
        let plain = build_secret(&spec(&p));
        assert_eq!(
            removed_keys(&plain, &one).into_iter().collect::<Vec<_>>(),
            ["linphone.xml", "qr.png"],
            "the account's own document goes once it has devices"
        );
        assert!(removed_keys(&one, &plain).len() == 4 && removed_keys(&one, &one).is_empty());
        let mut foreign = one.clone();
        foreign
            .data
            .get_or_insert_default()
            .insert("note".into(), ByteString(b"x".to_vec()));
        assert!(
            removed_devices(&foreign, &one).is_empty(),
            "only device keys are the operator's to remove"
        );
        assert_eq!(
            removed_devices(&both, &one).len(),
            1,
            "a removed device's provisioning keys name it too"
        );
        assert_eq!(data_keys::device_of("devices.a-1.password"), Some("a-1"));
        assert_eq!(data_keys::device_of("devices.a-1.linphone.xml"), Some("a-1"));
        assert_eq!(data_keys::device_of("devices.a-1.qr.png"), Some("a-1"));
        assert_eq!(
            data_keys::device_of("devices.a.b.qr.png"),
            None,
            "no dots in names"
        );
        assert_eq!(data_keys::device_of("devices..qr.png"), None);
        assert_eq!(data_keys::device_of("linphone.xml"), None);
        assert_eq!(data_keys::device_of("qr.png"), None);
        assert_eq!(data_keys::device_of("devices..password"), None);
        assert_eq!(data_keys::device_of("password"), None);
    }

    #[test]
    fn previous_digests_are_stored_read_back_and_known_as_their_devices_keys() {
        let (p, desk) = (Password::new("pw"), Password::new("d"));
        let previous = PreviousDigest {
            ha1_md5: Some("ab".repeat(16)),
            ha1_sha256: None,
            valid_until: 1_795_473_060,
        };
        let devices = [DeviceSecret {
            name: "desk",
            password: &desk,
            previous: Some(&previous),
            changed_at: Some(1_795_472_000),
        }];
        let s = build_secret(&SecretSpec {
            previous: Some(&previous),
            devices: &devices,
            ..spec(&p)
        });
        assert_eq!(
            secret_value(&s, "previous.valid-until").as_deref(),
            Some("2026-11-23T22:31:00Z")
        );
        assert!(
            secret_value(&s, "previous.ha1-sha256").is_none(),
            "only what was kept"
        );
        assert_eq!(previous_digest(&s), Some(previous.clone()));
        assert_eq!(device_previous_digest(&s, "desk"), Some(previous.clone()));
        assert_eq!(device_previous_digest(&s, "soft"), None);
        assert_eq!(previous_changed_at(&s), None);
        assert_eq!(device_previous_changed_at(&s, "desk"), Some(1_795_472_000));
        assert_eq!(
            data_keys::device_of("devices.desk.previous.changed-at"),
            Some("desk")
        );
        assert!(data_keys::is_previous("previous.changed-at"));
        let ended = build_secret(&SecretSpec {
            changed_at: Some(1_795_472_000),
            ..spec(&p)
        });
        assert_eq!(
            (previous_digest(&ended), previous_changed_at(&ended)),
            (None, Some(1_795_472_000)),
            "the change time outlasts the digest"
        );
        assert_eq!(data_keys::device_of("devices.desk.previous.ha1"), Some("desk"));
        assert_eq!(
            data_keys::device_of("devices.desk.previous.valid-until"),
            Some("desk")
        );
        assert_eq!(data_keys::device_of("devices.a.b.password"), None);
        assert!(data_keys::is_previous("previous.ha1"));
        assert!(data_keys::is_previous("devices.desk.previous.ha1-sha256"));
        assert!(!data_keys::is_previous("devices.desk.password"));
        assert!(!data_keys::is_previous("password"));
        let without = build_secret(&spec(&p));
        assert_eq!(
            removed_devices(&s, &without).into_iter().collect::<Vec<_>>(),
            ["desk"],
            "a removed device's previous digest goes with it"
        );
        let mut broken = s.clone();
        broken
            .data
            .get_or_insert_default()
            .insert("previous.valid-until".into(), ByteString(b"soon".to_vec()));
        assert_eq!(previous_digest(&broken), None, "no readable deadline: none");
    }

    #[test]
    fn secret_is_basic_auth_with_sip_details() {
        let p = Password::new("pw");
        let s = build_secret(&spec(&p));
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        let keys: Vec<_> = s.data.as_ref().expect("data").keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "aor",
                "domain",
                "linphone.xml",
                "password",
                "port",
                "qr.png",
                "realm",
                "registrarUri",
                "server",
                "sipUri",
                "transport",
                "username"
            ]
        );
        assert_eq!(
            secret_value(&s, "registrarUri").as_deref(),
            Some("sip:acme.example.com:5060;transport=udp")
        );
        assert_eq!(
            secret_value(&s, "aor").as_deref(),
            Some("sip:+4930123@acme.example.com")
        );
        assert_eq!(secret_value(&s, "password").as_deref(), Some("pw"));
        assert!(is_controlled_by(&s, "uid-1"));
        assert!(!is_controlled_by(&s, "uid-2"));
    }

    #[test]
    fn password_bytes_are_taken_exactly_or_refused_saying_why() {
        assert_eq!(
            password_from_bytes("pässwörd+1".as_bytes()).map(|p| p.expose().to_string()),
            Ok("pässwörd+1".into())
        );
        assert_eq!(password_from_bytes(b"").err(), Some(PasswordBytesError::Empty));
        assert_eq!(
            password_from_bytes(&[0xff, 0xfe, 0x00, 0x61, 0x62, 0x63, 0x80]).err(),
            Some(PasswordBytesError::NotUtf8 { offset: 0 })
        );
        assert_eq!(
            password_from_bytes(b"secret\n").err(),
            Some(PasswordBytesError::ControlCharacter {
                code: 0x0a,
                offset: 6
            })
        );
        assert_eq!(
            password_from_bytes(b"a\x00b").err(),
            Some(PasswordBytesError::ControlCharacter { code: 0, offset: 1 })
        );
        let message = password_from_bytes(b"hunter2\n")
            .expect_err("newline")
            .to_string();
        assert!(!message.contains("hunter2"), "never quotes the value: {message}");
    }

    #[test]
    fn a_user_name_too_long_for_a_label_is_digested_there_and_kept_in_an_annotation() {
        use kube::ResourceExt;
        let p = Password::new("pw");
        let short = build_secret(&spec(&p));
        assert_eq!(short.labels().get(USER_LABEL).map(String::as_str), Some("alice"));
        assert!(
            short.metadata.annotations.is_none(),
            "no annotation where the label says it all"
        );
        let long_name = "a".repeat(253);
        let long = build_secret(&SecretSpec {
            user_name: &long_name,
            ..spec(&p)
        });
        let label = long.labels().get(USER_LABEL).expect("label");
        assert!(label.len() <= 63 && label.starts_with("sha256-"), "{label}");
        assert_eq!(long.annotations().get(USER_ANNOTATION), Some(&long_name));
        assert!(secret_is_current(&long, &long));
        let mut without = long.clone();
        without.metadata.annotations = None;
        assert!(
            !secret_is_current(&without, &long),
            "a lost annotation is written back"
        );
    }

    #[test]
    fn current_secret_needs_no_write_but_any_drift_does() {
        let p = Password::new("pw");
        let desired = build_secret(&spec(&p));
        let mut existing = desired.clone();
        existing.metadata.resource_version = Some("42".into());
        existing
            .metadata
            .labels
            .get_or_insert_default()
            .insert("team".into(), "voice".into());
        assert!(
            secret_is_current(&existing, &desired),
            "others' labels and server fields are no drift"
        );

        let other = Password::new("other");
        assert!(
            !secret_is_current(&build_secret(&spec(&other)), &desired),
            "password drift"
        );
        let mut no_owner = desired.clone();
        no_owner.metadata.owner_references = None;
        assert!(!secret_is_current(&no_owner, &desired), "owner drift");
        let mut opaque = desired.clone();
        opaque.type_ = Some("Opaque".into());
        assert!(!secret_is_current(&opaque, &desired), "type drift");
    }
}
