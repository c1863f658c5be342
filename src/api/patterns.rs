//! Regular expressions shared by the schemas (OpenAPI `pattern`, ECMA-262 dialect as the API
//! server evaluates it) and by the unit tests that pin what they accept.

/// RFC 3261 §25.1 `user`: unreserved, user-unreserved and `%HH` escapes. It admits `+4930123456`
/// and `first.last`, which are not valid object names, and refuses `@`, `:` and spaces, which
/// would break the `user@domain` key the registrar stores. Narrower than the RFC where a
/// registrar or a phone cannot cope: at least one letter or digit (so not `.`, `..` or `/`),
/// and an escape must encode a visible ASCII character (`%21`..`%7E`: no NUL, no control
/// characters, no space, no bytes of a multi-byte character).
pub const SIP_USER_PATTERN: &str = concat!(
    r"^([A-Za-z0-9\-_.!~*'()&=+$,;?/]|%(2[1-9A-Fa-f]|[3-6][0-9A-Fa-f]|7[0-9A-Ea-e]))*",
    r"[A-Za-z0-9]",
    r"([A-Za-z0-9\-_.!~*'()&=+$,;?/]|%(2[1-9A-Fa-f]|[3-6][0-9A-Fa-f]|7[0-9A-Ea-e]))*$"
);

/// Scheme, host and optional port of a registrar URL as a CEL regex (inside a single-quoted
/// CEL string, so backslashes are doubled): a host name or a bracketed IPv6 address — never
/// empty, never `user:password@` — and a port from 1 to 65535. (`url(u).getPort()` parsed as
/// an int costs more than the API server's CEL budget allows for a list of URLs.)
pub const URL_AUTHORITY_PATTERN: &str = concat!(
    r"^[A-Za-z][A-Za-z0-9+.-]*://",
    r"([A-Za-z0-9._~-]+|\\[[0-9A-Fa-f:.]+\\])",
    r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"([/?#].*)?$"
);

/// The CEL rule that refuses a domain whose last label is all digits (an IPv4 literal such as
/// `999.999.999.999`, or `123.456`): RFC 1123 §2.1 keeps top-level domains alphabetic, so a
/// SIP domain here is always a DNS name.
pub const FQDN_NOT_NUMERIC_RULE: &str = r"!self.matches('\\.[0-9]+$')";

/// A fully qualified domain name: dot-separated DNS labels, lower case, at least two labels.
pub const FQDN_PATTERN: &str = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

/// Profile flags and barge groups: lower-case words, as the registrar config matches them.
pub const FEATURE_NAME_PATTERN: &str = "^[a-z_0-9]+$";

/// A device name in `SipUser.spec.devices`: a DNS label (lower-case letters, digits and `-`,
/// starting and ending with a letter or digit). It becomes part of Secret keys
/// (`devices.<name>.password`), of an annotation key (`sipoperator.io/rotate.<name>`) and of
/// the device's digest username (`<username>#<name>`), and it is valid in all three.
pub const DEVICE_NAME_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// One line of free text: no control characters (a description shows in `kubectl` output).
pub const ONE_LINE_TEXT_PATTERN: &str = r"^[^\x00-\x1f\x7f]+$";

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
            "a.",
            "%7Ea1",
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
            ".",
            "..",
            "/",
            "+",
            "a%00b",
            "a%1fb",
            "a%20b",
            "a%7fb",
            "a%C3%A9",
        ] {
            assert!(!matches(SIP_USER_PATTERN, bad), "{bad:?} must be refused");
        }
    }

    #[test]
    fn registrar_urls_need_a_host_and_a_port_in_range() {
        // The pattern as the API server's regex engine sees it, after CEL unescaping.
        let pattern = URL_AUTHORITY_PATTERN.replace(r"\\", r"\");
        for ok in [
            "http://kamailio.voip.svc:5071/RPC",
            "http://10.0.0.7:65535/RPC",
            "http://[fd00::7]:5071/RPC",
            "http://kamailio/RPC",
            "http://kamailio:1",
        ] {
            assert!(matches(&pattern, ok), "{ok} should be accepted");
        }
        for bad in [
            "http://:80/RPC",
            "http://127.0.0.1:99999/RPC",
            "http://127.0.0.1:0/RPC",
            "http://127.0.0.1:65536/RPC",
            "http://%zz/RPC",
            "http://[::1/RPC",
            "http://user:secret@host/RPC",
            "http:///RPC",
        ] {
            assert!(!matches(&pattern, bad), "{bad} must be refused");
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
    fn device_names_are_dns_labels() {
        for ok in ["deskphone", "softphone", "a", "0", "yealink-t54w", "x1-2"] {
            assert!(
                matches(DEVICE_NAME_PATTERN, ok),
                "{ok} should be a valid device name"
            );
        }
        for bad in [
            "",
            "Desk",
            "-desk",
            "desk-",
            "desk_phone",
            "desk.phone",
            "desk#1",
            "desk phone",
            "ä",
        ] {
            assert!(!matches(DEVICE_NAME_PATTERN, bad), "{bad:?} must be refused");
        }
    }

    #[test]
    fn one_line_text_refuses_control_characters() {
        assert!(matches(ONE_LINE_TEXT_PATTERN, "Yealink T54W at the front desk"));
        assert!(matches(ONE_LINE_TEXT_PATTERN, "Büro 2 (ünten)"));
        for bad in ["", "a\nb", "tab\there", "del\u{7f}"] {
            assert!(!matches(ONE_LINE_TEXT_PATTERN, bad), "{bad:?} must be refused");
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
