//! Linphone's remote-provisioning document (the public `lpconfig` XML format,
//! <http://www.linphone.org/xsds/lpconfig.xsd>): one account (`proxy_0`) and its digest
//! credentials (`auth_info_0`) as HA1, never the password. Linphone loads it from a
//! provisioning URL (`[misc] config-uri`, `file://` included) or a scanned QR code.
use std::fmt::Write as _;

use super::uri::registrar_uri;
use crate::api::{Connection, DigestAlgorithm};

/// How long a registration lasts before the phone refreshes it: the shipped Kamailio
/// config's longest (`MAX_EXPIRES`, 3600 s).
pub const REGISTER_EXPIRES: u32 = 3600;

/// One account as Linphone is to register it.
#[derive(Clone, Copy)]
pub struct LinphoneAccount<'a> {
    /// The SipUser's `displayName`, shown on the phone and sent in From.
    pub display_name: Option<&'a str>,
    /// The address-of-record user (`alice` of `sip:alice@acme.example.com`).
    pub aor_user: &'a str,
    /// The SIP domain.
    pub domain: &'a str,
    /// The digest username: the AOR user, or `<user>#<device>` for a device.
    pub auth_username: &'a str,
    /// The digest realm the registrar challenges with.
    pub realm: &'a str,
    /// H(auth_username:realm:password) with `algorithm`, lower-case hex.
    pub ha1: &'a str,
    /// The algorithm `ha1` was computed with.
    pub algorithm: DigestAlgorithm,
    /// Where the phone registers.
    pub connection: &'a Connection,
}

impl std::fmt::Debug for LinphoneAccount<'_> {
    /// Without the HA1, which authenticates as well as the password does.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinphoneAccount")
            .field("aor_user", &self.aor_user)
            .field("domain", &self.domain)
            .field("auth_username", &self.auth_username)
            .field("ha1", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Escapes text for XML (and HTML) content and quoted attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `name` as a SIP quoted-string display name (RFC 3261 §25.1): `"` and `\` escaped, and
/// control characters (which neither SIP nor XML 1.0 can carry) turned into spaces.
fn quoted_display_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The name Linphone gives a digest algorithm in `auth_info_N/algorithm`.
fn algorithm_name(algorithm: DigestAlgorithm) -> &'static str {
    match algorithm {
        DigestAlgorithm::Md5 => "MD5",
        DigestAlgorithm::Sha256 => "SHA-256",
    }
}

/// The provisioning document of `account`.
pub fn linphone_xml(account: &LinphoneAccount<'_>) -> String {
    let aor = format!("sip:{}@{}", account.aor_user, account.domain);
    let identity = match account.display_name.filter(|n| !n.trim().is_empty()) {
        Some(name) => format!("{} <{aor}>", quoted_display_name(name)),
        None => format!("<{aor}>"),
    };
    let mut proxy = vec![
        ("reg_proxy", registrar_uri(account.connection)),
        ("reg_identity", identity),
        ("reg_expires", REGISTER_EXPIRES.to_string()),
        ("reg_sendregister", "1".to_string()),
        ("realm", account.realm.to_string()),
    ];
    if let Some(route) = &account.connection.outbound_proxy {
        proxy.insert(1, ("reg_route", route.clone()));
    }
    let auth = [
        ("username", account.aor_user),
        ("userid", account.auth_username),
        ("ha1", account.ha1),
        ("algorithm", algorithm_name(account.algorithm)),
        ("realm", account.realm),
        ("domain", account.domain),
    ];
    let mut xml = String::with_capacity(640);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str("<config xmlns=\"http://www.linphone.org/xsds/lpconfig.xsd\">\n");
    section(&mut xml, "proxy_0", proxy.iter().map(|(k, v)| (*k, v.as_str())));
    section(&mut xml, "auth_info_0", auth.into_iter());
    xml.push_str("</config>\n");
    xml
}

/// `xml` (a document of [`linphone_xml`]) as served from a URL that soon stops working:
/// marked `[misc] transient_provisioning`, so Linphone applies it once and forgets the URL
/// instead of fetching it again at every start.
pub fn transient(xml: &str) -> String {
    let mut misc = String::new();
    section(&mut misc, "misc", [("transient_provisioning", "1")].into_iter());
    match xml.rfind("</config>") {
        Some(end) => format!("{}{misc}{}", &xml[..end], &xml[end..]),
        // Not one of ours: served as it is.
        None => xml.to_string(),
    }
}

fn section<'a>(xml: &mut String, name: &str, entries: impl Iterator<Item = (&'a str, &'a str)>) {
    let _ = writeln!(xml, "  <section name=\"{name}\">");
    for (key, value) in entries {
        let _ = writeln!(xml, "    <entry name=\"{key}\">{}</entry>", xml_escape(value));
    }
    xml.push_str("  </section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Transport;

    #[test]
    fn a_transient_document_is_the_same_with_a_misc_section_before_its_end() {
        let xml =
            "<?xml version=\"1.0\"?>\n<config>\n  <section name=\"proxy_0\">\n  </section>\n</config>\n";
        let t = transient(xml);
        assert_eq!(
            t,
            "<?xml version=\"1.0\"?>\n<config>\n  <section name=\"proxy_0\">\n  </section>\n  \
             <section name=\"misc\">\n    <entry name=\"transient_provisioning\">1</entry>\n  </section>\n</config>\n"
        );
        assert_eq!(transient("not xml"), "not xml");
    }

    fn connection(outbound_proxy: Option<&str>) -> Connection {
        Connection {
            host: "sip.example.net".into(),
            port: 5060,
            transports: vec![Transport::Tcp],
            outbound_proxy: outbound_proxy.map(str::to_string),
        }
    }

    fn account<'a>(c: &'a Connection, display_name: Option<&'a str>) -> LinphoneAccount<'a> {
        LinphoneAccount {
            display_name,
            aor_user: "alice",
            domain: "acme.example.com",
            auth_username: "alice#desk",
            realm: "acme.example.com",
            ha1: "939e7578ed9e3c518a452acee763bce9",
            algorithm: DigestAlgorithm::Md5,
            connection: c,
        }
    }

    #[test]
    fn the_document_holds_the_account_and_its_ha1_in_lpconfig_form() {
        let c = connection(None);
        let xml = linphone_xml(&account(&c, Some("Alice Example")));
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?>
<config xmlns="http://www.linphone.org/xsds/lpconfig.xsd">
  <section name="proxy_0">
    <entry name="reg_proxy">sip:sip.example.net:5060;transport=tcp</entry>
    <entry name="reg_identity">&quot;Alice Example&quot; &lt;sip:alice@acme.example.com&gt;</entry>
    <entry name="reg_expires">3600</entry>
    <entry name="reg_sendregister">1</entry>
    <entry name="realm">acme.example.com</entry>
  </section>
  <section name="auth_info_0">
    <entry name="username">alice</entry>
    <entry name="userid">alice#desk</entry>
    <entry name="ha1">939e7578ed9e3c518a452acee763bce9</entry>
    <entry name="algorithm">MD5</entry>
    <entry name="realm">acme.example.com</entry>
    <entry name="domain">acme.example.com</entry>
  </section>
</config>
"#
        );
        assert!(!xml.contains("passwd"), "never a password");
    }

    #[test]
    fn an_outbound_proxy_becomes_the_route_and_no_name_a_bare_address() {
        let c = connection(Some("sip:edge.example.net;lr&x"));
        let xml = linphone_xml(&account(&c, None));
        assert!(
            xml.contains("<entry name=\"reg_route\">sip:edge.example.net;lr&amp;x</entry>"),
            "{xml}"
        );
        assert!(
            xml.contains("<entry name=\"reg_identity\">&lt;sip:alice@acme.example.com&gt;</entry>"),
            "{xml}"
        );
        let without = linphone_xml(&account(&connection(None), None));
        assert!(!without.contains("reg_route"));
    }

    #[test]
    fn display_names_are_escaped_for_sip_and_then_for_xml() {
        let c = connection(None);
        let xml = linphone_xml(&account(&c, Some("A <&\"b\\\n'>")));
        assert!(
            xml.contains(
                "<entry name=\"reg_identity\">&quot;A &lt;&amp;\\&quot;b\\\\ &apos;&gt;&quot; &lt;sip:alice@acme.example.com&gt;</entry>"
            ),
            "{xml}"
        );
        // What an XML parser reads back is the SIP quoted string.
        let raw = xml
            .lines()
            .find(|l| l.contains("reg_identity"))
            .expect("identity line");
        let unescaped = raw
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&");
        assert!(
            unescaped.contains(r#">"A <&\"b\\ '>" <sip:alice@acme.example.com></entry>"#),
            "{unescaped}"
        );
    }

    #[test]
    fn sha256_only_domains_name_their_algorithm_and_debug_hides_the_ha1() {
        let c = connection(None);
        let a = LinphoneAccount {
            algorithm: DigestAlgorithm::Sha256,
            ..account(&c, None)
        };
        assert!(linphone_xml(&a).contains("<entry name=\"algorithm\">SHA-256</entry>"));
        let shown = format!("{a:?}");
        assert!(!shown.contains("939e75"), "{shown}");
    }
}
