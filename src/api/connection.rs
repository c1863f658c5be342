//! Where phones connect to a SipDomain's registrar: a host, a port, transports and an optional
//! outbound proxy, apart from the SIP domain itself (`sip.example.net` often serves
//! `acme.example.com`). What the credentials Secret's provisioning keys are built from.
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A host name (lower case, one or more DNS labels) or an IPv4 or IPv6 address (IPv6 without
/// brackets), as a CEL rule: `isIP` needs the `ip` CEL library (Kubernetes 1.30 and later).
const HOST_RULE: &str = r"isIP(self) || self.matches('^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$') && !self.matches('^[0-9.]+$')";

/// A SIP or SIPS URI of a proxy: `sip:` or `sips:`, a host name or an IPv4 address or a
/// [bracketed] IPv6 address, an optional port from 1 to 65535, and `;name` or `;name=value`
/// parameters. No user part and no headers: an outbound proxy is a server, not an account.
pub const OUTBOUND_PROXY_PATTERN: &str = concat!(
    r"^sips?:",
    r"([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])",
    r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?",
    r"(;[A-Za-z0-9\-_.!~*']+(=[A-Za-z0-9\-_.!~*'\[\]:]+)?)*$"
);

/// Where the domain's phones connect. Every field has a default, so `connection: {}` is the
/// same as leaving it out: the domain's own name, port 5060, UDP.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSpec {
    /// Host name or IP address phones send REGISTER to, e.g. `sip.example.net` or
    /// `192.0.2.10` (an IPv6 address without brackets). Defaults to `spec.domain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = kube::core::Rule::new(HOST_RULE).message("spec.connection.host must be a DNS name (lower-case labels, e.g. sip.example.net) or an IP address (IPv6 without brackets)"))]
    pub host: Option<String>,

    /// Port phones connect to, 1 to 65535. Defaults to 5060, or 5061 when the first transport
    /// is `TLS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,

    /// Transports the registrar accepts on that host and port, most preferred first; phones
    /// are provisioned with the first. Each at most once.
    #[serde(default = "default_transports")]
    #[schemars(length(min = 1, max = 3))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Set)]
    pub transports: Vec<Transport>,

    /// SIP URI of an outbound proxy phones send every request through (RFC 3261 §8.1.2), e.g.
    /// `sip:edge.example.net:5060;lr;transport=tcp`: `sip:` or `sips:`, a host and optional
    /// port and parameters, no user part. Linphone gets it as its route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 5, max = 256), regex(pattern = OUTBOUND_PROXY_PATTERN))]
    pub outbound_proxy: Option<String>,
}

fn default_transports() -> Vec<Transport> {
    vec![Transport::Udp]
}

/// A SIP transport.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum Transport {
    /// SIP over UDP (RFC 3261), what nearly every phone speaks.
    #[serde(rename = "UDP")]
    Udp,
    /// SIP over TCP (RFC 3261).
    #[serde(rename = "TCP")]
    Tcp,
    /// SIP over TLS (RFC 3261 §26, `sips:` URIs); the default port becomes 5061.
    #[serde(rename = "TLS")]
    Tls,
}

impl Transport {
    /// The lower-case name of URI `transport=` parameters and the Secret's `transport` key.
    pub fn as_param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// A SipDomain's connection with its defaults applied: what phones are provisioned with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// 1 to 65535.
    pub port: u16,
    /// At least one, each once, most preferred first.
    pub transports: Vec<Transport>,
    /// The outbound proxy's SIP URI, if the domain names one.
    pub outbound_proxy: Option<String>,
}

impl Connection {
    /// `spec` (absent: every default) of a domain named `domain`, resolved.
    pub fn resolve(spec: Option<&ConnectionSpec>, domain: &str) -> Connection {
        let spec = spec.cloned().unwrap_or_else(|| ConnectionSpec {
            transports: default_transports(),
            ..Default::default()
        });
        // The API server keeps a set free of duplicates; an empty list cannot pass the schema
        // either, but a resolved connection always has a transport.
        let mut transports: Vec<Transport> = Vec::new();
        for t in spec.transports {
            if !transports.contains(&t) {
                transports.push(t);
            }
        }
        if transports.is_empty() {
            transports = default_transports();
        }
        let default_port = if transports[0] == Transport::Tls {
            5061
        } else {
            5060
        };
        Connection {
            host: spec
                .host
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| domain.to_string()),
            port: spec
                .port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .unwrap_or(default_port),
            transports,
            outbound_proxy: spec.outbound_proxy.filter(|p| !p.is_empty()),
        }
    }

    /// The transport phones are provisioned with: the first.
    pub fn preferred(&self) -> Transport {
        self.transports.first().copied().unwrap_or(Transport::Udp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_domain_port_5060_and_udp() {
        let c = Connection::resolve(None, "acme.example.com");
        assert_eq!(
            c,
            Connection {
                host: "acme.example.com".into(),
                port: 5060,
                transports: vec![Transport::Udp],
                outbound_proxy: None,
            }
        );
        let empty: ConnectionSpec = serde_json::from_str("{}").expect("parses");
        assert_eq!(Connection::resolve(Some(&empty), "acme.example.com"), c);
    }

    #[test]
    fn tls_first_moves_the_default_port_to_5061_and_an_explicit_port_wins() {
        let spec = |json: &str| serde_json::from_str::<ConnectionSpec>(json).expect("parses");
        let tls = Connection::resolve(Some(&spec(r#"{"transports":["TLS","TCP"]}"#)), "d.example");
        assert_eq!((tls.port, tls.preferred()), (5061, Transport::Tls));
        let tcp_then_tls = Connection::resolve(Some(&spec(r#"{"transports":["TCP","TLS"]}"#)), "d.example");
        assert_eq!(
            (tcp_then_tls.port, tcp_then_tls.preferred()),
            (5060, Transport::Tcp)
        );
        let explicit = Connection::resolve(
            Some(&spec(
                r#"{"host":"sip.example.net","port":15060,"transports":["TLS"],"outboundProxy":"sip:edge.example.net;lr"}"#,
            )),
            "d.example",
        );
        assert_eq!(explicit.host, "sip.example.net");
        assert_eq!(explicit.port, 15060);
        assert_eq!(
            explicit.outbound_proxy.as_deref(),
            Some("sip:edge.example.net;lr")
        );
    }

    #[test]
    fn outbound_proxy_pattern_takes_proxy_uris_only() {
        let re = regex::Regex::new(OUTBOUND_PROXY_PATTERN).expect("valid");
        for ok in [
            "sip:edge.example.net",
            "sip:edge.example.net:5060;lr",
            "sips:edge.example.net:5061;lr;transport=tcp",
            "sip:192.0.2.1:5070;transport=udp",
            "sip:[2001:db8::1]:5060;lr",
        ] {
            assert!(re.is_match(ok), "{ok} should pass");
        }
        for bad in [
            "edge.example.net",
            "http://edge.example.net",
            "sip:alice@edge.example.net",
            "sip:edge.example.net:0",
            "sip:edge.example.net:65536",
            "sip:edge.example.net?x=y",
            "sip:edge example.net",
            "sip:",
        ] {
            assert!(!re.is_match(bad), "{bad} should be refused");
        }
    }
}
