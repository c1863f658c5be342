//! Command-line flags; each has an environment-variable equivalent for Deployments.
use std::net::SocketAddr;

use clap::{Parser, ValueEnum};

/// Kubernetes operator that manages SIP domains, profiles and users as custom resources:
/// credentials in Secrets, users pushed to the SIP registrar, status on every object.
#[derive(Parser, Debug, Clone)]
#[command(name = "sip-operator", version, about)]
pub struct Args {
    /// Watch only these namespaces, comma-separated or repeated (default: all namespaces).
    /// Namespaced RBAC (a Role per namespace) is then enough.
    #[arg(
        long = "namespace",
        env = "SIP_OPERATOR_NAMESPACE",
        value_delimiter = ',',
        value_name = "NAMESPACE"
    )]
    pub namespaces: Vec<String>,

    /// Address of the HTTP server for /healthz, /readyz and /metrics.
    #[arg(long, env = "SIP_OPERATOR_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Name of the coordination.k8s.io Lease used for leader election.
    #[arg(long, env = "SIP_OPERATOR_LEASE_NAME", default_value = "sip-operator")]
    pub lease_name: String,

    /// Namespace of the Lease (default: the first --namespace, else "default"); in a cluster, the
    /// operator's own namespace via the downward API.
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Seconds a leader's Lease stays valid without renewal; a standby takes over after it.
    #[arg(long, env = "SIP_OPERATOR_LEASE_DURATION_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=300))]
    pub lease_duration_seconds: u64,

    /// Seconds between checks of each registrar endpoint: for a restart (a restarted registrar
    /// lost its users and gets all of them again) and for registration changes, which reach
    /// `status.registration` within about this long. A check with nothing new is two small
    /// RPCs per endpoint (Kamailio's registration journal), so the default is short.
    #[arg(long, env = "SIP_OPERATOR_REGISTRAR_CHECK_INTERVAL_SECONDS", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub registrar_check_interval_seconds: u64,

    /// Failed authentications against one user, in the registrar's current window, that raise
    /// one Warning Event (`AuthenticationFailures`) on the SipUser; again only after the count
    /// fell below and reached it anew.
    #[arg(long, env = "SIP_OPERATOR_AUTH_FAILURE_WARNING_THRESHOLD", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub auth_failure_warning_threshold: u64,

    /// Address the invite page listens on over HTTPS, e.g. `0.0.0.0:8443` (off when unset).
    /// Every replica serves it, leader or not. Needs `--invite-tls-cert` and `--invite-tls-key`.
    #[arg(long, env = "SIP_OPERATOR_INVITE_LISTEN", requires_all = ["invite_tls_cert", "invite_tls_key"])]
    pub invite_listen: Option<SocketAddr>,

    /// The invite page's public base URL, written into each SipUserInvite's `status.url`
    /// (`<url>/invite/<token>`), e.g. `https://invites.example.com`. Without it no link is issued.
    #[arg(long, env = "SIP_OPERATOR_INVITE_URL", value_parser = parse_https_url)]
    pub invite_url: Option<String>,

    /// PEM file of the invite page's certificate chain (e.g. `tls.crt` of a cert-manager
    /// Secret); read again when it changes, so a renewal applies without a restart.
    #[arg(long, env = "SIP_OPERATOR_INVITE_TLS_CERT", requires = "invite_tls_key")]
    pub invite_tls_cert: Option<std::path::PathBuf>,

    /// PEM file of the invite page's private key (e.g. `tls.key`); read again when it changes.
    #[arg(long, env = "SIP_OPERATOR_INVITE_TLS_KEY", requires = "invite_tls_cert")]
    pub invite_tls_key: Option<std::path::PathBuf>,

    /// This replica's identity in the Lease and in Events (default: hostname and PID).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// Log line format.
    #[arg(long, env = "SIP_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter in tracing's EnvFilter syntax, e.g. `info` or `info,sip_operator=debug`.
    #[arg(long, env = "SIP_OPERATOR_LOG", default_value = "info")]
    pub log_level: String,
}

/// How log lines are written.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// An `https://` URL with a host and no query or fragment (links are appended to it).
fn parse_https_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .ok_or("must start with https:// (the page serves HTTPS only)")?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err("must name a host, without user:password@".into());
    }
    if text.contains(['?', '#']) || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must have no query, fragment or spaces".into());
    }
    Ok(text.trim_end_matches('/').to_string())
}

impl Args {
    pub fn lease_namespace(&self) -> String {
        self.lease_namespace
            .clone()
            .or_else(|| self.namespaces.first().cloned())
            .unwrap_or_else(|| "default".into())
    }

    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME")
                .ok()
                .or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|h| h.trim().to_string())
                })
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "sip-operator".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_derived_values() {
        let args = Args::try_parse_from(["sip-operator"]).expect("defaults parse");
        assert_eq!(args.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(args.lease_namespace(), "default");
        let args = Args::try_parse_from(["sip-operator", "--namespace", "voip"]).expect("parse");
        assert_eq!(args.lease_namespace(), "voip");
    }

    #[test]
    fn namespaces_are_a_comma_separated_or_repeated_list() {
        let args =
            Args::try_parse_from(["sip-operator", "--namespace", "a,b", "--namespace", "c"]).expect("parse");
        assert_eq!(args.namespaces, ["a", "b", "c"]);
        assert_eq!(args.lease_namespace(), "a");
    }

    #[test]
    fn the_invite_page_needs_its_certificate_and_an_https_url() {
        let args = Args::try_parse_from([
            "sip-operator",
            "--invite-listen",
            "0.0.0.0:8443",
            "--invite-url",
            "https://invites.example.com/",
            "--invite-tls-cert",
            "/tls/tls.crt",
            "--invite-tls-key",
            "/tls/tls.key",
        ])
        .expect("parse");
        assert_eq!(args.invite_url.as_deref(), Some("https://invites.example.com"));
        let err =
            Args::try_parse_from(["sip-operator", "--invite-listen", "0.0.0.0:8443"]).expect_err("no TLS");
        assert!(err.to_string().contains("--invite-tls-cert"), "{err}");
        for bad in ["http://x.example", "https://", "https://a:b@x", "https://x/?t=1"] {
            let err = Args::try_parse_from(["sip-operator", "--invite-url", bad]).expect_err(bad);
            assert!(err.to_string().contains("--invite-url"), "{err}");
        }
        let off = Args::try_parse_from(["sip-operator"]).expect("parse");
        assert!(off.invite_listen.is_none() && off.invite_url.is_none());
    }

    #[test]
    fn a_bad_value_names_the_flag() {
        let err = Args::try_parse_from(["sip-operator", "--http-addr", "nonsense"]).expect_err("refused");
        assert!(err.to_string().contains("--http-addr"), "{err}");
        let err =
            Args::try_parse_from(["sip-operator", "--lease-duration-seconds", "1"]).expect_err("refused");
        assert!(err.to_string().contains("--lease-duration-seconds"), "{err}");
    }
}
