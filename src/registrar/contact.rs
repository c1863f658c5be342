//! A registered device as a registrar reports it, registrar-agnostic.

/// One registered contact (a device) of an address of record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// `username@domain`, the address of record without `sip:` (the same as [`super::UserKey::key`]);
    /// for an alias line, `alias@domain`.
    pub aor: String,
    /// The Contact URI the device registered, e.g. `sip:alice@192.0.2.7:5060;transport=udp`.
    pub address: String,
    /// The device's User-Agent header, if it sent one.
    pub user_agent: Option<String>,
    /// Seconds until the registration lapses, counted from when the registrar was read; `None`
    /// for a permanent contact.
    pub expires_in: Option<u64>,
    /// When the device last registered or refreshed, in Unix seconds, if the registrar says.
    pub last_modified: Option<i64>,
    /// The digest username the contact was registered with (the username itself, or a
    /// device's `<username>#<device>`), when the registrar says.
    pub auth_username: Option<String>,
    /// Whether it authenticated with its credential's previous password (during a grace
    /// period after a rotation), as the registrar says; `false` when it does not say.
    pub previous_password: bool,
}
