use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Desired state of a SIP user (SIP account): one identity inside a SipDomain.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "sipoperator.io",
    version = "v1alpha1",
    kind = "SipUser",
    namespaced,
    status = "SipUserStatus",
    shortname = "sipu",
    category = "sip",
    doc = "A SIP user (SIP account): an identity in a SipDomain whose password the operator keeps in a Secret and whose HA1 it pushes to the domain's registrar so devices can REGISTER.",
    printcolumn(name = "Username", type_ = "string", json_path = ".status.username", description = "Effective SIP username (spec.username, else metadata.name)"),
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domainRef", description = "The SipDomain the user belongs to"),
    printcolumn(name = "Extension", type_ = "string", json_path = ".spec.extension"),
    printcolumn(name = "Profile", type_ = "string", json_path = ".status.profile", description = "Effective SipProfile (spec.profileRef, else the domain's default)"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Contacts", type_ = "integer", json_path = ".status.registration.contacts", description = "Registered contacts of all the user's devices, on its own address and its alias lines"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Devices", type_ = "string", json_path = ".spec.devices[*].name", priority = 1, description = "The first device of spec.devices (the API server's table shows one value of a list path; -o jsonpath='{.spec.devices[*].name}' lists all)"),
    printcolumn(name = "Aliases", type_ = "string", json_path = ".spec.aliases", priority = 1, description = "Extra names that ring the user; each can be a line of its own"),
    validation = kube::core::Rule::new(
        "(has(self.spec.username) ? self.spec.username : self.metadata.name) == (has(oldSelf.spec.username) ? oldSelf.spec.username : oldSelf.metadata.name)"
    ).message("spec.username is immutable: devices and the registrar know the user by it; create a new SipUser instead").field_path(".spec.username")
)]
#[serde(rename_all = "camelCase")]
pub struct SipUserSpec {
    /// Name of the SipDomain (in this namespace) the user belongs to. Immutable.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::api::DNS_SUBDOMAIN_PATTERN))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("spec.domainRef is immutable: create a new SipUser to move a user to another domain"))]
    pub domain_ref: String,

    /// SIP user part and digest auth username, e.g. `alice`, `first.last` or `+4930123456`
    /// (RFC 3261 user characters). Defaults to `metadata.name`. Immutable. Usernames,
    /// extensions and aliases share one namespace per domain, compared as the registrar
    /// stores addresses (case-insensitive, `%HH` decoded: `Alice` and `%61lice` are `alice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = crate::api::SIP_USER_PATTERN))]
    pub username: Option<String>,

    /// Extension other users of the domain dial to reach this user, e.g. `7001`; a call to it
    /// rings every registered device of the user. An extension that is not a number (digits,
    /// `*` and `+` only), e.g. `lobby`, makes the user one that cannot be called from within
    /// the domain (404), while it still registers and calls out. Must match the domain's
    /// `extensionPattern` and be unique in the domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = crate::api::SIP_USER_PATTERN))]
    pub extension: Option<String>,

    /// Extra SIP names that ring this user, e.g. `alice-support` for a second line on a
    /// multi-line phone. Unique in the domain. A call to an alias rings the devices registered
    /// on that line (`sip:<alias>@<domain>`, registered by one of this user's devices with
    /// its own credentials), else every registered device of the user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 128), regex(pattern = crate::api::SIP_USER_PATTERN)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub aliases: Vec<String>,

    /// Human-readable name shown on phones, e.g. `Alice Example`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub display_name: Option<String>,

    /// Contact e-mail address of the person using the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(email, length(max = 254))]
    pub email: Option<String>,

    /// Caller ID presented on outgoing calls, e.g. `+4930123456`; pushed to the registrar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r#"^[^"\\\x00-\x1f\x7f<>]+$"#))]
    pub caller_id: Option<String>,

    /// Name of the SipProfile (in this namespace) the user belongs to; defaults to the
    /// domain's `defaultProfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::api::DNS_SUBDOMAIN_PATTERN))]
    pub profile_ref: Option<String>,

    /// `false` suspends the account: it is removed from the registrar and its devices'
    /// registrations are dropped, but its Secret and password are kept for re-enabling.
    #[serde(default = "default_enabled")]
    pub enabled: bool,

    /// Registrations allowed at once; overrides the profile's `maxContacts`. With `devices`,
    /// multiplied by the number of enabled devices: the user's address (and each alias line)
    /// then admits that many registrations in all, shared by its devices (the registrar
    /// counts per address, not per device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_contacts: Option<i32>,

    /// The user's devices (desk phone, softphone, mobile app), each with credentials of its
    /// own: digest username `<username>#<name>` and a generated password, both in the user's
    /// credentials Secret under `devices.<name>.username` and `devices.<name>.password`. Every
    /// device registers to the user's address (`sip:<username>@<domain>`) and its alias
    /// lines, and a call to the user rings every registered device at once. Once devices are
    /// listed only their credentials register and call; the account's own `username` and
    /// `password` stay in the Secret, unchanged, and register again when the list is emptied.
    /// Empty (the default): the account itself is the one device, as without this field.
    /// Removing a device revokes it for good (its keys leave the Secret; added again, it gets
    /// a new password). Merged by `name` under server-side apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["name".into()]))]
    pub devices: Vec<DeviceSpec>,

    /// Where the password comes from and which Secret receives the credentials.
    #[serde(default)]
    pub credentials: CredentialsSpec,
}

fn default_enabled() -> bool {
    true
}

/// One device of a user: a name, a description, and whether it may register.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeviceSpec {
    /// The device's name, unique within the user: a DNS label of up to 32 characters, e.g.
    /// `deskphone`. Its digest username is `<username>#<name>` (`#` appears in no username,
    /// extension or alias, so it never collides with another name); its password is in the
    /// Secret's `devices.<name>.password`, generated once with the domain's `passwordPolicy`
    /// (device passwords are never imported, whatever `credentials.passwordSecretRef` says).
    /// Rotate it with the annotation `sipoperator.io/rotate.<name>` (each new value rotates
    /// once, recorded in `status.devices[].lastHandledRotation`).
    #[schemars(length(min = 1, max = 32), regex(pattern = crate::api::DEVICE_NAME_PATTERN))]
    pub name: String,

    /// What the device is, for people, e.g. `Yealink T54W at the front desk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = crate::api::ONE_LINE_TEXT_PATTERN))]
    pub description: Option<String>,

    /// `false` revokes the device: its credentials are no longer pushed to the registrar and
    /// its registrations are dropped, but its password stays in the Secret for re-enabling.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
}

/// The password source (at most one of `generated` and `passwordSecretRef`; neither means
/// generated) and the Secret the credentials are written to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("!(has(self.generated) && has(self.passwordSecretRef))").message("spec.credentials: set exactly one password source, generated or passwordSecretRef (omit both to have the password generated)"))]
pub struct CredentialsSpec {
    /// Generate the password (the default): from the OS CSPRNG, with the domain's
    /// `passwordPolicy`. It changes only when rotation is asked for with the
    /// `sipoperator.io/rotate` annotation or when the credentials Secret is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated: Option<GeneratedPassword>,

    /// Import the password from a key of an existing Secret in this namespace instead of
    /// generating it; a change of that value flows through to the registrar. It is the
    /// account's own password only: device passwords (`spec.devices`) are always generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<crate::api::SecretKeyRef>,

    /// Name of the Secret the operator writes the credentials to (type
    /// `kubernetes.io/basic-auth` with `username`, `password`, `domain`, `realm`, `aor`, and
    /// `devices.<name>.username` and `devices.<name>.password` per listed device).
    /// After a change under a grace period it also holds `previous.changed-at` (when), and
    /// until the deadline `previous.ha1`, `previous.ha1-sha256` and `previous.valid-until`
    /// (the previous password's HA1s, never the password; `devices.<name>.previous.*` for a
    /// device). Defaults to `<metadata.name>-sip-credentials`. An existing Secret of that name that the
    /// operator does not own is never overwritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::api::DNS_SUBDOMAIN_PATTERN))]
    pub secret_name: Option<String>,

    /// How long the registrar still accepts the previous password after a change, e.g.
    /// `24h`, `90m` or `1h30m` (hours, minutes, seconds; at most `720h`, 30 days; `0s` is
    /// none). Overrides the domain's `passwordPolicy.rotationGracePeriod`. It applies to every
    /// password change whose previous password is known: a rotation (`sipoperator.io/rotate`,
    /// `sipoperator.io/rotate.<device>`) and a changed `passwordSecretRef` value. Devices
    /// registered with the previous password keep refreshing until the deadline
    /// (`status.previousPasswordValidUntil`, per device in `status.devices`); then only the
    /// new one is accepted and contacts still registered with the previous one are dropped.
    /// Unset (and no domain default): the previous password is refused at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 32), regex(pattern = crate::rotation::GRACE_PERIOD_PATTERN))]
    #[x_kube(validation = kube::core::Rule::new(crate::rotation::GRACE_PERIOD_RULE).message("rotationGracePeriod must be at most 720h (30 days), e.g. 24h, 90m or 1h30m"))]
    pub rotation_grace_period: Option<String>,
}

/// Marker for a generated password; the domain's `passwordPolicy` says how.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct GeneratedPassword {}

/// Observed state of a SipUser.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SipUserStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling`, `Stalled` and the detail conditions `CredentialsReady`,
    /// `RegistrarSynced` and `Registered`, kstatus style.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Effective SIP username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Effective SipProfile name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Address of record, `sip:<username>@<domain>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aor: Option<String>,
    /// The Secret holding the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// When the password last changed (generated, rotated or re-imported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_changed_at: Option<Time>,
    /// The last value of the `sipoperator.io/rotate` annotation that was acted on, so each new
    /// value rotates the password exactly once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_rotation: Option<String>,
    /// Until when the registrar still accepts the account's previous password (a grace
    /// period after a change, see `spec.credentials.rotationGracePeriod`); absent when it
    /// accepts only the current one, and while `spec.devices` lists devices (the account's
    /// own password does not register then; see `devices[].previousPasswordValidUntil`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_password_valid_until: Option<Time>,
    /// Devices currently registered, merged across the registrar's endpoints, as last read
    /// (once per registrar check interval). Absent while the domain names no registrar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<RegistrationStatus>,
    /// One entry per device in `spec.devices`: its digest username, whether it is enabled,
    /// its registered contacts and its password's history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["name".into()]))]
    pub devices: Vec<DeviceStatus>,
    /// Failed authentications against this user, as last read from the registrar (once per
    /// check interval). Absent until the registrar reports a failure for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityStatus>,
}

/// Failed authentications against a user (wrong passwords or credentials), merged across the
/// registrar's endpoints. Never holds a password or digest.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecurityStatus {
    /// Failed authentications in the registrar's current window (the shipped Kamailio config
    /// forgets a count `registrar.bruteForce.windowSeconds` after its last failure), summed
    /// across endpoints; 0 once the window passed.
    pub failures: i64,
    /// When the last failed authentication happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,
    /// The source address the last failed authentication came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_source: Option<String>,
}

/// Observed state of one device of a user.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeviceStatus {
    /// The device's name in `spec.devices`.
    pub name: String,
    /// The digest username the device registers with: `<username>#<name>`.
    pub auth_username: String,
    /// Whether the device may register (`spec.devices[].enabled`).
    pub enabled: bool,
    /// Registered contacts of this device, on the user's address and its alias lines, as
    /// last read from the registrar.
    pub contacts: i32,
    /// When the device's password was last generated (first appearance or rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_changed_at: Option<Time>,
    /// The last value of the annotation `sipoperator.io/rotate.<name>` that was acted on, so
    /// each new value rotates the device's password exactly once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_rotation: Option<String>,
    /// Until when the registrar still accepts the device's previous password (a grace period
    /// after a rotation); absent when it accepts only the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_password_valid_until: Option<Time>,
    /// Registered contacts of this device on its previous password during the grace period:
    /// registered with it again, or last registered before the rotation (with what was the
    /// current password then) and not since. Give them the new password before the
    /// deadline: they are dropped then.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub previous_password_contacts: i32,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// Live registrations of a user, merged across registrar endpoints.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationStatus {
    /// Number of registered contacts of all the user's devices, on its own address and its
    /// alias lines (each contact address counted once).
    pub contacts: i32,
    /// User-Agent headers of the registered devices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_agents: Vec<String>,
    /// The soonest moment a registration lapses unless its device refreshes it. To keep API
    /// writes down, refreshes are written only once this moment has passed (or when a device
    /// comes or goes), so it can lag one refresh behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_expiry: Option<Time>,
    /// When a device of this user last registered or refreshed, as the registrar reports it;
    /// kept after the devices are gone. Updated together with `earliestExpiry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Time>,
    /// The alias lines that have registrations (`sip:<alias>@<domain>`), each with its
    /// contacts; a call to such an alias rings them instead of the user's devices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["alias".into()]))]
    pub lines: Vec<LineStatus>,
    /// Registered contacts (of the account or any device) on a previous password during a
    /// grace period: registered with it again, or last registered before the change (with
    /// what was the current password then) and not since. They are dropped at the deadline
    /// unless their device registers with the new password first.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub previous_password_contacts: i32,
}

/// The registrations of one alias line.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LineStatus {
    /// The alias (an entry of `spec.aliases`).
    pub alias: String,
    /// Registered contacts on the line.
    pub contacts: i32,
}

/// What joins a username and a device name into the device's digest username. Usernames,
/// extensions and aliases cannot contain it (RFC 3261 user characters exclude `#`), nor can
/// device names, so a device's auth username never equals another user's name or device.
pub const DEVICE_AUTH_SEPARATOR: char = '#';

/// The digest (auth) username of device `device` of user `username`: `<username>#<device>`,
/// e.g. `alice#deskphone`. The device registers to the user's AOR (`sip:alice@domain`) with it.
pub fn device_auth_username(username: &str, device: &str) -> String {
    format!("{username}{DEVICE_AUTH_SEPARATOR}{device}")
}

/// The annotation that rotates the password of device `device`: `sipoperator.io/rotate.<device>`.
pub fn device_rotate_annotation(device: &str) -> String {
    format!("{}.{device}", crate::keys::ROTATE_ANNOTATION)
}

impl SipUser {
    /// The SIP username: `spec.username`, else `metadata.name`.
    pub fn username(&self) -> &str {
        self.spec
            .username
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }

    /// The credentials Secret's name: `spec.credentials.secretName`, else
    /// `<name>-sip-credentials` (for a name longer than 237 characters, its start, a digest
    /// and the suffix, so that it stays a valid name of at most 253).
    pub fn secret_name(&self) -> String {
        match &self.spec.credentials.secret_name {
            Some(name) => name.clone(),
            None => crate::keys::name_with_suffix(
                self.metadata.name.as_deref().unwrap_or_default(),
                "-sip-credentials",
            ),
        }
    }

    /// The SipProfile that applies: `spec.profileRef`, else the domain's `defaultProfile`.
    pub fn profile_name<'a>(&'a self, domain: Option<&'a super::SipDomain>) -> Option<&'a str> {
        self.spec
            .profile_ref
            .as_deref()
            .or_else(|| domain.and_then(|d| d.spec.default_profile.as_deref()))
    }
}
