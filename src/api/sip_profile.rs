use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Desired state of a SIP profile: features and limits shared by a group of users.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "sipoperator.io",
    version = "v1alpha1",
    kind = "SipProfile",
    namespaced,
    status = "SipProfileStatus",
    shortname = "sipp",
    category = "sip",
    doc = "A SIP profile: a group of SipUsers sharing feature flags, a barge group and registration limits, with a capacity that caps how many users may use it.",
    printcolumn(
        name = "Users",
        type_ = "integer",
        json_path = ".status.users",
        description = "SipUsers admitted to the profile"
    ),
    printcolumn(
        name = "Capacity",
        type_ = "integer",
        json_path = ".spec.capacity",
        description = "Maximum number of users (empty: unlimited)"
    ),
    printcolumn(name = "Flags", type_ = "string", json_path = ".spec.flags", priority = 1),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct SipProfileSpec {
    /// Maximum number of SipUsers that may use this profile. Users are admitted oldest first
    /// (creationTimestamp, then name); the others are Stalled with reason
    /// `ProfileCapacityExceeded` until room frees up. Unset means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub capacity: Option<i32>,

    /// Features the profile's users may access, pushed to the registrar as user attributes,
    /// e.g. `barge`, `call_recording`. Lower-case letters, digits and `_`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 63), regex(pattern = crate::api::FEATURE_NAME_PATTERN)))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub flags: Vec<String>,

    /// Barge group: users with the `barge` flag may barge into calls of users in the same group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = crate::api::FEATURE_NAME_PATTERN))]
    pub barge_group: Option<String>,

    /// Devices that may be registered at once per user (a desk phone, a softphone and a
    /// mobile app make three); for a user that lists `spec.devices`, multiplied by its enabled
    /// devices and shared by them. A user's `spec.maxContacts` overrides it.
    #[serde(default = "default_max_contacts")]
    #[schemars(range(min = 1, max = 100))]
    pub max_contacts: i32,
}

/// Registrations allowed per user when neither the profile nor the user says otherwise.
pub const DEFAULT_MAX_CONTACTS: i32 = 3;

fn default_max_contacts() -> i32 {
    DEFAULT_MAX_CONTACTS
}

/// Observed state of a SipProfile.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SipProfileStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling`, `Stalled` and detail conditions, kstatus style.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Number of SipUsers admitted to the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<i32>,
    /// The capacity the admission was computed against (unset: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i32>,
}
