//! The names the operator writes onto Kubernetes objects: labels, annotations, the finalizer
//! and the field manager. Users and tooling key on them, so they are part of the API.

/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "sip-operator";

/// `app.kubernetes.io/managed-by` on every Secret the operator creates; the operator's Secret
/// watch is limited to it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "sip-operator";
/// Names the SipUser a credentials Secret belongs to.
pub const USER_LABEL: &str = "sipoperator.io/user";

/// Annotation on a SipUser: a new value rotates its generated password exactly once.
pub const ROTATE_ANNOTATION: &str = "sipoperator.io/rotate";

/// Annotation on a SipUser being deleted: `"true"` lets it go without the registrar cleanup,
/// the escape hatch when a registrar is gone for good.
pub const SKIP_CLEANUP_ANNOTATION: &str = "sipoperator.io/skip-registrar-cleanup";

/// Finalizer on SipUser: the user is removed from every registrar endpoint before it goes.
pub const REGISTRAR_CLEANUP_FINALIZER: &str = "sipoperator.io/registrar-cleanup";

/// The label selector of the Secrets the operator manages.
pub fn managed_secrets_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")
}
