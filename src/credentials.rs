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
use crate::keys::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, USER_LABEL};

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
/// Symbols that need no quoting in SIP headers, XML provisioning files or shell snippets.
const SYMBOLS: &[u8] = b"-_.!~*+=";

/// A new password drawn from the operating system's CSPRNG, uniformly over the policy's
/// alphabet (no modulo bias: `random_range` rejects out-of-range draws).
pub fn generate_password(policy: &PasswordPolicy) -> Password {
    let alphabet: Vec<u8> = match policy.character_set {
        CharacterSet::Alphanumeric => ALPHANUMERIC.to_vec(),
        CharacterSet::AlphanumericSymbols => [ALPHANUMERIC, SYMBOLS].concat(),
    };
    // The schema bounds length to 16..=128; clamp anyway so a bad stored value cannot yield an
    // empty or huge password.
    let length = policy.length.clamp(16, 128) as usize;
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
}

/// Data keys of a credentials Secret (`kubernetes.io/basic-auth` plus SIP details).
pub mod data_keys {
    pub const USERNAME: &str = "username";
    pub const PASSWORD: &str = "password";
    pub const DOMAIN: &str = "domain";
    pub const REALM: &str = "realm";
    pub const AOR: &str = "aor";
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
    .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
    .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(spec.name.to_string()),
            namespace: Some(spec.namespace.to_string()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string()),
                (USER_LABEL.to_string(), spec.user_name.to_string()),
            ])),
            owner_references: Some(vec![spec.owner.clone()]),
            ..Default::default()
        },
        type_: Some("kubernetes.io/basic-auth".into()),
        data: Some(data),
        ..Default::default()
    }
}

/// Whether `existing` already is `desired` in everything the operator sets (labels and owner
/// references it adds; others' additions are left alone), so no write is needed.
pub fn secret_is_current(existing: &Secret, desired: &Secret) -> bool {
    let labels_ok = desired
        .metadata
        .labels
        .iter()
        .flatten()
        .all(|(k, v)| existing.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v));
    let owners_ok = desired.metadata.owner_references.iter().flatten().all(|want| {
        existing.metadata.owner_references.iter().flatten().any(|o| {
            o.uid == want.uid && o.controller == want.controller && o.kind == want.kind && o.name == want.name
        })
    });
    labels_ok && owners_ok && existing.type_ == desired.type_ && existing.data == desired.data
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

/// The value of `key` in a Secret, as text.
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
                .all(|b| ALPHANUMERIC.contains(&b) || SYMBOLS.contains(&b))
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
        }
    }

    #[test]
    fn secret_is_basic_auth_with_sip_details() {
        let p = Password::new("pw");
        let s = build_secret(&spec(&p));
        assert_eq!(s.type_.as_deref(), Some("kubernetes.io/basic-auth"));
        let keys: Vec<_> = s.data.as_ref().expect("data").keys().cloned().collect();
        assert_eq!(keys, ["aor", "domain", "password", "realm", "username"]);
        assert_eq!(
            secret_value(&s, "aor").as_deref(),
            Some("sip:+4930123@acme.example.com")
        );
        assert_eq!(secret_value(&s, "password").as_deref(), Some("pw"));
        assert!(is_controlled_by(&s, "uid-1"));
        assert!(!is_controlled_by(&s, "uid-2"));
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
