//! A user as a registrar holds it, pure: the key and the attributes, HA1 instead of password.
use crate::api::DigestAlgorithm;
use crate::credentials::{Password, ha1};

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

/// Everything the registrar config needs about one user.
#[derive(Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub key: UserKey,
    /// The digest realm the HA1s were computed with: the SIP domain's realm, the same for
    /// every user of the domain. Not secret; a registrar must challenge with it, or no
    /// password matches its HA1.
    pub realm: String,
    /// MD5 HA1, always present (nearly every phone speaks MD5 digest).
    pub ha1_md5: Option<String>,
    /// SHA-256 HA1 when the domain enables it (RFC 8760).
    pub ha1_sha256: Option<String>,
    pub max_contacts: i32,
    pub extension: Option<String>,
    pub aliases: Vec<String>,
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
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

/// What a user entry is built from.
pub struct EntrySpec<'a> {
    pub username: &'a str,
    pub domain: &'a str,
    pub realm: &'a str,
    pub password: &'a Password,
    pub algorithms: &'a [DigestAlgorithm],
    pub max_contacts: i32,
    pub extension: Option<&'a str>,
    pub aliases: &'a [String],
    pub flags: &'a [String],
    pub barge_group: Option<&'a str>,
    pub caller_id: Option<&'a str>,
}

impl UserEntry {
    /// Builds the entry, hashing the password into one HA1 per enabled algorithm.
    pub fn build(spec: &EntrySpec<'_>) -> Self {
        let digest = |alg| {
            spec.algorithms
                .contains(&alg)
                .then(|| ha1(alg, spec.username, spec.realm, spec.password))
        };
        Self {
            key: UserKey::new(spec.username, spec.domain),
            realm: spec.realm.to_string(),
            ha1_md5: digest(DigestAlgorithm::Md5),
            ha1_sha256: digest(DigestAlgorithm::Sha256),
            max_contacts: spec.max_contacts,
            extension: spec.extension.map(str::to_string),
            aliases: spec.aliases.to_vec(),
            flags: spec.flags.to_vec(),
            barge_group: spec.barge_group.map(str::to_string),
            caller_id: spec.caller_id.map(str::to_string),
        }
    }
}
