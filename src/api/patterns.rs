//! Regular expressions shared by the schemas (OpenAPI `pattern`, ECMA-262 dialect as the API
//! server evaluates it) and by the unit tests that pin what they accept.

/// RFC 3261 §25.1 `user`: unreserved, user-unreserved and `%HH` escapes. It admits `+4930123456`
/// and `first.last`, which are not valid object names, and refuses `@`, `:` and spaces, which
/// would break the `user@domain` key the registrar stores.
pub const SIP_USER_PATTERN: &str = r"^([A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+$";

/// A fully qualified domain name: dot-separated DNS labels, lower case, at least two labels.
pub const FQDN_PATTERN: &str =
    r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

/// Profile flags and barge groups: lower-case words, as the registrar config matches them.
pub const FEATURE_NAME_PATTERN: &str = "^[a-z_0-9]+$";

/// A Kubernetes object name (RFC 1123 subdomain), for the Secret names a user may choose.
pub const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
