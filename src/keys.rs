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

/// Annotation on a credentials Secret: names the request of an end user who chose a password
/// on a SipUserInvite's page (the page sets it, RFC 3339 of its own clock, with the
/// `chosen.password` key). Only a label for the request: no clock is compared with it.
pub const PASSWORD_CHOSEN_ANNOTATION: &str = "sipoperator.io/password-chosen-at";

/// Annotation on a credentials Secret: the chosen-password request (the value of
/// [`PASSWORD_CHOSEN_ANNOTATION`]) the SipUser controller has swapped in, so that a request is
/// handled once.
pub const PASSWORD_CHOSEN_HANDLED_ANNOTATION: &str = "sipoperator.io/password-chosen-handled";

/// Annotation on a SipUser being deleted: `"true"` lets it go without the registrar cleanup,
/// the escape hatch when a registrar is gone for good.
pub const SKIP_CLEANUP_ANNOTATION: &str = "sipoperator.io/skip-registrar-cleanup";

/// Finalizer on SipUser: the user is removed from every registrar endpoint before it goes.
pub const REGISTRAR_CLEANUP_FINALIZER: &str = "sipoperator.io/registrar-cleanup";

/// The label selector of the Secrets the operator manages.
pub fn managed_secrets_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")
}

/// Annotation on a credentials Secret: the owning SipUser's full `metadata.name` (the
/// [`USER_LABEL`] value is a digest of it when the name is longer than a label value may be).
pub const USER_ANNOTATION: &str = "sipoperator.io/user";

/// The longest label value Kubernetes accepts.
pub const MAX_LABEL_VALUE: usize = 63;

/// The longest object name (an RFC 1123 subdomain).
pub const MAX_NAME: usize = 253;

/// `value` itself when it is at most `max` bytes long, else `sha256-` and as much of the hex
/// SHA-256 of `value` as fits (at least 128 bits for every `max` used here), so a long name or
/// annotation value always fits a bounded field and still identifies the original.
pub fn fit(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_string();
    }
    let digest = hex_sha256(value);
    let room = max.saturating_sub("sha256-".len()).min(digest.len());
    format!("sha256-{}", &digest[..room])
}

/// The value of [`USER_LABEL`] for the SipUser `name`: the name when it is a valid label value
/// (every object name of up to 63 characters is), else a digest of it.
pub fn user_label_value(name: &str) -> String {
    fit(name, MAX_LABEL_VALUE)
}

/// `<name><suffix>`, shortened so that it stays a valid object name of at most 253
/// characters: a name too long keeps its start, then `-` and 10 hex of its SHA-256 (so two
/// long names sharing a prefix still differ), then the suffix. `suffix` starts with `-`.
pub fn name_with_suffix(name: &str, suffix: &str) -> String {
    let whole = format!("{name}{suffix}");
    if whole.len() <= MAX_NAME {
        return whole;
    }
    let digest = &hex_sha256(name)[..10];
    let keep = MAX_NAME - suffix.len() - digest.len() - 1;
    // Object names are ASCII; cut where a label may end (not after '-' or '.').
    let prefix = name[..keep.min(name.len())].trim_end_matches(['-', '.']);
    format!("{prefix}-{digest}{suffix}")
}

fn hex_sha256(value: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_kept_and_long_ones_digested_to_fit() {
        assert_eq!(fit("alice", 63), "alice");
        let long = "a".repeat(64);
        let label = fit(&long, 63);
        assert_eq!(label.len(), 63);
        assert!(label.starts_with("sha256-"), "{label}");
        assert_ne!(
            fit(&"b".repeat(64), 63),
            label,
            "different names, different values"
        );
        assert_eq!(
            fit(&"x".repeat(200_000), 253).len(),
            7 + 64,
            "a digest is never padded"
        );
        assert_eq!(user_label_value(&"a".repeat(63)), "a".repeat(63));
    }

    #[test]
    fn secret_names_stay_valid_object_names() {
        assert_eq!(
            name_with_suffix("alice", "-sip-credentials"),
            "alice-sip-credentials"
        );
        let at_limit = "a".repeat(MAX_NAME - 16);
        assert_eq!(
            name_with_suffix(&at_limit, "-sip-credentials").len(),
            MAX_NAME,
            "the longest name that fits is unchanged"
        );
        let dns = regex::Regex::new(crate::api::DNS_SUBDOMAIN_PATTERN).expect("pattern");
        for name in [
            "a".repeat(253),
            format!("{}.{}", "a".repeat(226), "b".repeat(26)),
            format!("{}-{}", "a".repeat(225), "b".repeat(27)),
            format!("{}.-x", "a".repeat(240)),
        ] {
            let s = name_with_suffix(&name, "-sip-credentials");
            assert!(s.len() <= MAX_NAME, "{} chars", s.len());
            assert!(dns.is_match(&s), "{s} must be an object name");
            assert!(s.ends_with("-sip-credentials"));
        }
        let one = name_with_suffix(&format!("{}1", "a".repeat(252)), "-sip-credentials");
        let two = name_with_suffix(&format!("{}2", "a".repeat(252)), "-sip-credentials");
        assert_ne!(
            one, two,
            "names differing past the cut still get different Secrets"
        );
    }
}
