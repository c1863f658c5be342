//! Regular expressions shared by the schemas (OpenAPI `pattern`, ECMA-262 dialect as the API
//! server evaluates it) and by the unit tests that pin what they accept.

/// RFC 3261 §25.1 `user`: unreserved, user-unreserved and `%HH` escapes. It admits `+4930123456`
/// and `first.last`, which are not valid object names, and refuses `@`, `:` and spaces, which
/// would break the `user@domain` key the registrar stores.
pub const SIP_USER_PATTERN: &str = r"^([A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+$";

/// A fully qualified domain name: dot-separated DNS labels, lower case, at least two labels.
pub const FQDN_PATTERN: &str = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

/// Profile flags and barge groups: lower-case words, as the registrar config matches them.
pub const FEATURE_NAME_PATTERN: &str = "^[a-z_0-9]+$";

/// A Kubernetes object name (RFC 1123 subdomain), for the Secret names a user may choose.
pub const DNS_SUBDOMAIN_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

#[cfg(test)]
mod tests {
    use super::*;

    // The API server evaluates these as ECMA-262 regexes; for these simple patterns (no
    // look-around, no back-references) the `regex` crate agrees with it.
    fn matches(pattern: &str, s: &str) -> bool {
        regex::Regex::new(pattern).expect("valid pattern").is_match(s)
    }

    #[test]
    fn sip_user_accepts_rfc3261_user_characters() {
        for ok in [
            "alice",
            "first.last",
            "+4930123456",
            "7001",
            "a-b_c!~*'()",
            "x&y=z$,;?/",
            "%40x",
        ] {
            assert!(matches(SIP_USER_PATTERN, ok), "{ok} should be a valid SIP user");
        }
    }

    #[test]
    fn sip_user_refuses_what_breaks_a_uri_or_the_registrar_key() {
        for bad in [
            "",
            "alice@acme",
            "sip:alice",
            "al ice",
            "alice%4",
            "al\"ice",
            "a<b>",
            "a#b",
        ] {
            assert!(!matches(SIP_USER_PATTERN, bad), "{bad:?} must be refused");
        }
    }

    #[test]
    fn fqdn_needs_two_lower_case_labels() {
        assert!(matches(FQDN_PATTERN, "acme.sip.example.com"));
        assert!(matches(FQDN_PATTERN, "a.b"));
        for bad in [
            "localhost",
            "Acme.example.com",
            "-a.example.com",
            "a_b.example.com",
            "a..b",
            "a.b.",
        ] {
            assert!(!matches(FQDN_PATTERN, bad), "{bad:?} must be refused");
        }
    }

    #[test]
    fn feature_names_are_lower_case_words() {
        assert!(matches(FEATURE_NAME_PATTERN, "call_recording"));
        assert!(matches(FEATURE_NAME_PATTERN, "barge2"));
        for bad in ["Barge", "barge-in", "barge in", ""] {
            assert!(!matches(FEATURE_NAME_PATTERN, bad), "{bad:?} must be refused");
        }
    }

    #[test]
    fn secret_names_are_dns_subdomains() {
        assert!(matches(DNS_SUBDOMAIN_PATTERN, "alice-sip-credentials"));
        assert!(matches(DNS_SUBDOMAIN_PATTERN, "a.b-c"));
        for bad in ["Alice", "-a", "a-", "a_b", ""] {
            assert!(!matches(DNS_SUBDOMAIN_PATTERN, bad), "{bad:?} must be refused");
        }
    }
}
