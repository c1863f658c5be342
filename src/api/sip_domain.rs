use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Desired state of a SIP domain: the namespace of SIP identities users register in.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "sipoperator.io",
    version = "v1alpha1",
    kind = "SipDomain",
    namespaced,
    status = "SipDomainStatus",
    shortname = "sipd",
    category = "sip",
    doc = "A SIP domain (for example acme.sip.example.com): its digest realm, the registrar its users are pushed to, and the policies every SipUser in it follows.",
    printcolumn(
        name = "Domain",
        type_ = "string",
        json_path = ".spec.domain",
        description = "SIP domain FQDN"
    ),
    printcolumn(
        name = "Users",
        type_ = "integer",
        json_path = ".status.users",
        description = "SipUsers admitted in this domain"
    ),
    printcolumn(
        name = "Registered",
        type_ = "integer",
        json_path = ".status.registeredUsers",
        description = "Users with at least one registered device"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new(
    // Compared only while the domain stays the same: a changed domain is refused on its own.
    "self.domain != oldSelf.domain || (has(self.realm) ? self.realm : self.domain) == (has(oldSelf.realm) ? oldSelf.realm : oldSelf.domain)"
).message("spec.realm is immutable: every stored digest (HA1) depends on it; create a new SipDomain to use another realm").field_path(".realm"))]
pub struct SipDomainSpec {
    /// Fully qualified SIP domain name, e.g. `acme.sip.example.com`; users register as
    /// `sip:<username>@<domain>`. Unique across the cluster (the oldest SipDomain claiming it
    /// wins) and immutable.
    #[schemars(length(min = 3, max = 253), regex(pattern = crate::api::FQDN_PATTERN))]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("spec.domain is immutable: create a new SipDomain for another domain"))]
    #[x_kube(validation = kube::core::Rule::new(crate::api::patterns::FQDN_NOT_NUMERIC_RULE).message("spec.domain must be a DNS name whose last label is not all digits (an IP address such as 999.999.999.999 is not a SIP domain here)"))]
    pub domain: String,

    /// Digest authentication realm (RFC 3261 §22). Defaults to `domain`. Immutable, because the
    /// HA1 digests pushed to the registrar are computed over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r#"^[^"\\\x00-\x1f\x7f]+$"#))]
    pub realm: Option<String>,

    /// The SIP registrar this domain's users are pushed to. Without it the operator only
    /// manages credentials Secrets and the users' `RegistrarSynced` condition reads `Unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrar: Option<RegistrarSpec>,

    /// Where phones connect: host, port, transports and an optional outbound proxy, which
    /// often differ from the SIP domain itself. Every user's credentials Secret carries them
    /// (`server`, `port`, `transport`, `registrarUri`, `sipUri`, `linphone.xml`, `qr.png`);
    /// a change rewrites each user's Secret once. Absent: `spec.domain`, port 5060, UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<crate::api::ConnectionSpec>,

    /// SipProfile (in this namespace) for users that name none in `spec.profileRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::api::DNS_SUBDOMAIN_PATTERN))]
    pub default_profile: Option<String>,

    /// How generated passwords are made.
    #[serde(default)]
    pub password_policy: PasswordPolicy,

    /// Digest algorithms the registrar accepts; one HA1 per algorithm is pushed. `MD5` is what
    /// nearly every phone supports; `SHA-256` (RFC 8760) is offered where devices support it.
    #[serde(default = "default_digest_algorithms")]
    #[schemars(length(min = 1, max = 2))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub digest_algorithms: Vec<DigestAlgorithm>,

    /// Regular expression every `spec.extension` of a user in this domain must match, e.g.
    /// `^7[0-9]{3}$`. Users that do not match are Stalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub extension_pattern: Option<String>,

    /// Maximum number of SipUsers in this domain; the oldest are admitted, the rest Stalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_users: Option<i32>,
}

fn default_digest_algorithms() -> Vec<DigestAlgorithm> {
    vec![DigestAlgorithm::Md5]
}

/// A digest algorithm for SIP authentication.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum DigestAlgorithm {
    /// RFC 2617 / RFC 3261 MD5 digest.
    #[serde(rename = "MD5")]
    Md5,
    /// RFC 8760 SHA-256 digest.
    #[serde(rename = "SHA-256")]
    Sha256,
}

/// How the operator generates passwords for users of the domain.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PasswordPolicy {
    /// Number of characters, 16 to 128.
    #[serde(default = "default_password_length")]
    #[schemars(range(min = 16, max = 128))]
    pub length: i32,
    /// Characters a generated password is drawn from.
    #[serde(default)]
    pub character_set: CharacterSet,
    /// How long the registrar still accepts a user's previous password after a change, for
    /// users that set no `spec.credentials.rotationGracePeriod` of their own, e.g. `24h`,
    /// `90m` or `1h30m` (at most `720h`; `0s` or unset: the previous password is refused at
    /// once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 32), regex(pattern = crate::rotation::GRACE_PERIOD_PATTERN))]
    #[x_kube(validation = kube::core::Rule::new(crate::rotation::GRACE_PERIOD_RULE).message("rotationGracePeriod must be at most 720h (30 days), e.g. 24h, 90m or 1h30m"))]
    pub rotation_grace_period: Option<String>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            length: default_password_length(),
            character_set: CharacterSet::default(),
            rotation_grace_period: None,
        }
    }
}

fn default_password_length() -> i32 {
    32
}

/// The alphabet of generated passwords.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CharacterSet {
    /// `A-Z`, `a-z`, `0-9`: safe for every phone's configuration screen and provisioning file.
    #[default]
    Alphanumeric,
    /// Alphanumeric plus `-_.!~*+=` , symbols that need no quoting in SIP or XML.
    AlphanumericSymbols,
}

/// The registrar the domain's users are pushed to. Exactly one backend.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistrarSpec {
    /// A Kamailio registrar reached through its JSON-RPC (jsonrpcs over xhttp) endpoint.
    pub kamailio: KamailioRegistrar,
}

/// Where Kamailio's JSON-RPC endpoints are: a Service (every ready endpoint gets every user) or
/// a fixed list of URLs. Exactly one of `service` and `urls`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.service) != has(self.urls)").message("spec.registrar.kamailio: set exactly one of service or urls"))]
pub struct KamailioRegistrar {
    /// A Service whose ready endpoints (from its EndpointSlices) each receive every user of
    /// the domain, so a scaled-out Kamailio stays consistent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,
    /// Fixed JSON-RPC URLs, e.g. `http://kamailio.voip.svc:5071/RPC`; each gets every user.
    /// Each must parse as a URL with a host, a port of 1 to 65535 if it names one, and no
    /// `user:password@` (the token goes in `tokenSecretRef`, so it never shows in status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 16),
        inner(length(max = 2048), regex(pattern = "^https?://[^\\s\\x00-\\x1f\\x7f]+$"))
    )]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    #[x_kube(validation = kube::core::Rule::new("self.all(u, isURL(u))").message("spec.registrar.kamailio.urls: every entry must be a valid URL, e.g. http://kamailio.voip.svc:5071/RPC (check brackets around IPv6 addresses and % escapes)"))]
    #[x_kube(validation = kube::core::Rule::new(format!("self.all(u, !isURL(u) || u.matches('{}'))", crate::api::patterns::URL_AUTHORITY_PATTERN)).message("spec.registrar.kamailio.urls: every entry must be scheme://host[:port]/path with a host name or a [bracketed] IPv6 address and a port from 1 to 65535"))]
    #[x_kube(validation = kube::core::Rule::new("self.all(u, !u.matches('^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@'))").message("spec.registrar.kamailio.urls: must not carry user:password@; put the RPC token in tokenSecretRef, which never appears in status"))]
    pub urls: Option<Vec<String>>,
    /// Secret key holding a bearer token the operator sends on every RPC call and the
    /// registrar's config checks, so the RPC port is not open to the whole pod network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<crate::api::SecretKeyRef>,
}

/// A Service that fronts the registrar's JSON-RPC port.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRef {
    /// Name of the Service.
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// Namespace of the Service; defaults to the SipDomain's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub namespace: Option<String>,
    /// Name of the Service port that serves JSON-RPC (`spec.ports[].name`). Each endpoint is
    /// called on the port its EndpointSlice lists under this name, so a `targetPort` that
    /// differs from the Service port works. A Service with a single unnamed port uses that one.
    #[serde(default = "default_rpc_port_name")]
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub port_name: String,
    /// HTTP path of the JSON-RPC handler.
    #[serde(default = "default_rpc_path")]
    #[schemars(length(min = 1, max = 256), regex(pattern = "^/"))]
    pub path: String,
}

fn default_rpc_port_name() -> String {
    "rpc".into()
}

fn default_rpc_path() -> String {
    "/RPC".into()
}

/// Observed state of a SipDomain.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SipDomainStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling`, `Stalled` and detail conditions, kstatus style.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Number of SipUsers admitted in this domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<i32>,
    /// Number of users with at least one registered contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_users: Option<i32>,
    /// One entry per registrar endpoint the domain's users are pushed to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["address".into()]))]
    pub registrars: Vec<RegistrarEndpointStatus>,
}

/// Sync state of one registrar endpoint.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistrarEndpointStatus {
    /// The endpoint's JSON-RPC URL.
    pub address: String,
    /// Number of users currently pushed to this endpoint.
    #[serde(default)]
    pub synced_users: i32,
    /// When every user of the domain was last pushed to this endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full_sync: Option<Time>,
    /// The last error talking to this endpoint, cleared on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl SipDomain {
    /// The digest realm: `spec.realm`, else `spec.domain`.
    pub fn realm(&self) -> &str {
        self.spec.realm.as_deref().unwrap_or(&self.spec.domain)
    }

    /// Where phones connect, with the defaults applied.
    pub fn connection(&self) -> crate::api::Connection {
        crate::api::Connection::resolve(self.spec.connection.as_ref(), &self.spec.domain)
    }
}
