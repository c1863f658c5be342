use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// The form of `spec.validFor`: hours, minutes and seconds, each optional, in that order
/// (`24h`, `90m`, `1h30m`); the CEL rule bounds the total.
pub const VALID_FOR_PATTERN: &str = "^([0-9]{1,4}h)?([0-9]{1,6}m)?([0-9]{1,8}s)?$";
/// The shortest `spec.validFor`.
pub const MIN_VALID_FOR_SECONDS: u64 = 5 * 60;
/// The longest `spec.validFor` (30 days).
pub const MAX_VALID_FOR_SECONDS: u64 = 720 * 3600;

/// Desired state of an invite: a one-time link that lets the person using a SipUser see its
/// settings or choose its password, without access to the cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "sipoperator.io",
    version = "v1alpha1",
    kind = "SipUserInvite",
    namespaced,
    status = "SipUserInviteStatus",
    shortname = "sipinv",
    category = "sip",
    doc = "An invite for the person using a SipUser: the operator issues a one-time HTTPS link (in status.url) that shows the account's settings and QR code once, or lets them choose their own password, until it is used or expires.",
    printcolumn(
        name = "User",
        type_ = "string",
        json_path = ".spec.userRef",
        description = "The SipUser the invite is for"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Pending, Stalled, Issued, Used or Expired"
    ),
    // A string, not a date: kubectl prints a date column as an age, and a future one as
    // "<invalid>".
    printcolumn(
        name = "Expires",
        type_ = "string",
        json_path = ".status.expiresAt",
        description = "When the link stops working (RFC 3339)"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.url",
        priority = 1,
        description = "The one-time link to hand to the end user"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("spec is immutable: a link is issued once for what the invite says; delete it and create a new SipUserInvite instead"))]
pub struct SipUserInviteSpec {
    /// Name of the SipUser (in this namespace) the invite is for. Deleting that user deletes
    /// its invites (they are owned by it).
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::api::DNS_SUBDOMAIN_PATTERN))]
    pub user_ref: String,

    /// How long the link works once issued: hours, minutes and seconds such as `24h`, `90m`
    /// or `1h30m`, from 5m to 720h (30 days). Defaults to 24h.
    #[serde(default = "default_valid_for")]
    #[schemars(length(min = 2, max = 24), regex(pattern = VALID_FOR_PATTERN))]
    #[x_kube(validation = kube::core::Rule::new("duration(self) >= duration('5m') && duration(self) <= duration('720h')").message("spec.validFor must be from 5m to 720h, e.g. 24h"))]
    pub valid_for: String,

    /// Whether the link also offers to choose a new password (within the domain's
    /// `passwordPolicy`), which then becomes the user's password. Users whose password comes
    /// from `credentials.passwordSecretRef` cannot change it this way (the operator does not
    /// own that Secret); their link only shows the settings. Defaults to true.
    #[serde(default = "default_true")]
    pub allow_password_change: bool,
}

fn default_valid_for() -> String {
    "24h".into()
}

fn default_true() -> bool {
    true
}

/// Where an invite is in its life.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitePhase {
    /// Waiting for the SipUser to be Ready (its credentials written) before a link is issued.
    Pending,
    /// No link can be issued until a person acts (see the Stalled condition).
    Stalled,
    /// The link in `url` works until `expiresAt`.
    Issued,
    /// The link was used (`usedAt`, `usedFor`) and works no more.
    Used,
    /// The link expired unused and works no more.
    Expired,
}

impl InvitePhase {
    /// Used and Expired invites never change again (a new link needs a new invite).
    pub fn is_final(self) -> bool {
        matches!(self, InvitePhase::Used | InvitePhase::Expired)
    }
}

/// What a used link was used for.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum InviteUse {
    /// The end user viewed the account's settings and QR code.
    Viewed,
    /// The end user chose a new password (and then saw the settings).
    PasswordSet,
}

/// Observed state of a SipUserInvite.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SipUserInviteStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` and `Stalled`, kstatus style: Ready is True once the link is issued (and stays
    /// True when it was used or expired: the invite is done).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// `Pending`, `Stalled`, `Issued`, `Used` or `Expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<InvitePhase>,
    /// The one-time link to hand to the end user (`<--invite-url>/invite/<token>`). Anyone
    /// holding it can use it once: share it as you would a password. Dead once the invite is
    /// Used or Expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Hex SHA-256 of the link's token: the key the invite page looks the link up by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hash: Option<String>,
    /// When the link was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<Time>,
    /// The uid of the SipUser the link was issued for. A SipUser deleted and re-created with
    /// the same name is another user: the link is dead for it (Stalled, `UserReplaced`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_uid: Option<String>,
    /// When the link stops working (`issuedAt` + `spec.validFor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// When the link was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<Time>,
    /// What the link was used for: `viewed` (settings shown) or `passwordSet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_for: Option<InviteUse>,
    /// Hex SHA-256 of the provisioning token minted when the link was used. For 10 minutes
    /// after `usedAt`, `<invite-url>/provision/<token>` (and `.../<device>`) serves the
    /// account's Linphone provisioning document: the QR code the settings page shows for a
    /// phone app's scanner holds that URL. The token itself is only ever on that page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_token_hash: Option<String>,
}

// Debug leaves out the link (it holds the token), so a status in a log line or a panic message
// never hands the link on.
impl std::fmt::Debug for SipUserInviteStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipUserInviteStatus")
            .field("observed_generation", &self.observed_generation)
            .field("conditions", &self.conditions)
            .field("phase", &self.phase)
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("token_hash", &self.token_hash)
            .field("issued_at", &self.issued_at)
            .field("user_uid", &self.user_uid)
            .field("expires_at", &self.expires_at)
            .field("used_at", &self.used_at)
            .field("used_for", &self.used_for)
            .field("provisioning_token_hash", &self.provisioning_token_hash)
            .finish()
    }
}

impl SipUserInvite {
    /// The phase, `None` before the operator first wrote status.
    pub fn phase(&self) -> Option<InvitePhase> {
        self.status.as_ref().and_then(|s| s.phase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_stays_out_of_debug_output() {
        let status = SipUserInviteStatus {
            url: Some("https://invites.example.com/invite/SECRET-TOKEN".into()),
            phase: Some(InvitePhase::Issued),
            ..Default::default()
        };
        let shown = format!("{status:?}");
        assert!(
            !shown.contains("SECRET-TOKEN") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert!(shown.contains("Issued"));
    }
}
