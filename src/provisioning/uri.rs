//! SIP URIs of an account and its registrar (RFC 3261 §19.1), pure.
use crate::api::{Connection, Transport};

/// `host` as a URI host: an IPv6 address in brackets (RFC 3261 §25.1 `IPv6reference`).
pub fn uri_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The URI scheme a transport calls for: `sips:` for TLS (RFC 3261 §19.1.2), else `sip:`.
fn scheme(transport: Transport) -> &'static str {
    match transport {
        Transport::Tls => "sips",
        Transport::Udp | Transport::Tcp => "sip",
    }
}

/// The `;transport=` parameter of a URI: none for `sips:` (TLS over TCP is what it means;
/// RFC 5630 §3.2 deprecates `transport=tls`).
fn transport_param(transport: Transport) -> String {
    match transport {
        Transport::Tls => String::new(),
        other => format!(";transport={}", other.as_param()),
    }
}

/// Where phones send REGISTER, with the preferred transport: e.g.
/// `sip:sip.example.net:5060;transport=tcp`, `sips:sip.example.net:5061`.
pub fn registrar_uri(connection: &Connection) -> String {
    let t = connection.preferred();
    format!(
        "{}:{}:{}{}",
        scheme(t),
        uri_host(&connection.host),
        connection.port,
        transport_param(t)
    )
}

/// The account's address of record as a SIP URI with its transport, e.g.
/// `sip:alice@acme.example.com;transport=tcp` or `sips:alice@acme.example.com` for TLS. The
/// user part is already RFC 3261 `user` text (the SipUser schema admits nothing else).
pub fn sip_uri(username: &str, domain: &str, connection: &Connection) -> String {
    let t = connection.preferred();
    format!("{}:{username}@{domain}{}", scheme(t), transport_param(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(host: &str, port: u16, transports: &[Transport]) -> Connection {
        Connection {
            host: host.into(),
            port,
            transports: transports.to_vec(),
            outbound_proxy: None,
        }
    }

    #[test]
    fn registrar_and_account_uris_follow_the_preferred_transport() {
        let udp = connection("sip.example.net", 5060, &[Transport::Udp, Transport::Tcp]);
        assert_eq!(registrar_uri(&udp), "sip:sip.example.net:5060;transport=udp");
        assert_eq!(
            sip_uri("alice", "acme.example.com", &udp),
            "sip:alice@acme.example.com;transport=udp"
        );
        let tcp = connection("sip.example.net", 5060, &[Transport::Tcp]);
        assert_eq!(registrar_uri(&tcp), "sip:sip.example.net:5060;transport=tcp");
        assert_eq!(
            sip_uri("+4930123", "acme.example.com", &tcp),
            "sip:+4930123@acme.example.com;transport=tcp"
        );
        let tls = connection("sip.example.net", 5061, &[Transport::Tls, Transport::Tcp]);
        assert_eq!(registrar_uri(&tls), "sips:sip.example.net:5061");
        assert_eq!(
            sip_uri("alice", "acme.example.com", &tls),
            "sips:alice@acme.example.com"
        );
    }

    #[test]
    fn ipv6_hosts_are_bracketed_once() {
        let v6 = connection("2001:db8::10", 5060, &[Transport::Udp]);
        assert_eq!(registrar_uri(&v6), "sip:[2001:db8::10]:5060;transport=udp");
        assert_eq!(uri_host("[2001:db8::10]"), "[2001:db8::10]");
        assert_eq!(uri_host("192.0.2.1"), "192.0.2.1");
    }
}
