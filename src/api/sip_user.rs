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
    printcolumn(name = "Contacts", type_ = "integer", json_path = ".status.registration.contacts", description = "Registered devices"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
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
    /// extensions and aliases share one namespace per domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = crate::api::SIP_USER_PATTERN))]
    pub username: Option<String>,

    /// Extension other users of the domain dial to reach this user, e.g. `7001`. Letters are
    /// allowed for users that must not be dialled by number. Must match the domain's
    /// `extensionPattern` and be unique in the domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = crate::api::SIP_USER_PATTERN))]
    pub extension: Option<String>,

    /// Extra SIP names that ring this user, e.g. `alice-support` for a second line on a
    /// multi-line phone. Unique in the domain.
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

    /// Devices that may be registered at once; overrides the profile's `maxContacts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_contacts: Option<i32>,

    /// Where the password comes from and which Secret receives the credentials.
    #[serde(default)]
    pub credentials: CredentialsSpec,
}

fn default_enabled() -> bool {
    true
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
    /// generating it; a change of that value flows through to the registrar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<crate::api::SecretKeyRef>,

    /// Name of the Secret the operator writes the credentials to (type
    /// `kubernetes.io/basic-auth` with `username`, `password`, `domain`, `realm`, `aor`).
    /// Defaults to `<metadata.name>-sip-credentials`. An existing Secret of that name that the
    /// operator does not own is never overwritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::api::DNS_SUBDOMAIN_PATTERN))]
    pub secret_name: Option<String>,
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
    /// Devices currently registered, merged across the registrar's endpoints, as last read
    /// (once per registrar check interval). Absent while the domain names no registrar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<RegistrationStatus>,
}

/// Live registrations of a user, merged across registrar endpoints.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationStatus {
    /// Number of registered contacts (devices).
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
