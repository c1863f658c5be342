//! What a phone or a provisioning system needs to set an account up, built from the same
//! inputs as the credentials Secret, pure: the registrar's address, the account's SIP URI,
//! Linphone's provisioning document and a QR code of it. The credentials Secret holds them
//! (see [`secret_entries`]); an invite page can build the same with [`linphone_document`] and
//! [`qr_code`].
pub mod linphone;
pub mod qr;
pub mod uri;

pub use linphone::{LinphoneAccount, REGISTER_EXPIRES, linphone_xml, transient, xml_escape};
pub use qr::{QrError, qr_png};
pub use uri::{registrar_uri, sip_uri};

use crate::api::{Connection, DigestAlgorithm};
use crate::credentials::{Password, data_keys, ha1};

/// An account as its domain provisions it.
#[derive(Clone, Copy, Debug)]
pub struct Account<'a> {
    /// The SIP username, the user part of the address of record.
    pub username: &'a str,
    /// The SIP domain.
    pub domain: &'a str,
    /// The digest realm.
    pub realm: &'a str,
    /// The SipUser's `displayName`.
    pub display_name: Option<&'a str>,
    /// Where the domain's phones connect.
    pub connection: &'a Connection,
    /// The domain's `digestAlgorithms`.
    pub algorithms: &'a [DigestAlgorithm],
}

impl Account<'_> {
    /// The digest algorithm phones are provisioned with: MD5 where the domain accepts it
    /// (every phone speaks it), else the domain's first.
    pub fn algorithm(&self) -> DigestAlgorithm {
        if self.algorithms.contains(&DigestAlgorithm::Md5) {
            DigestAlgorithm::Md5
        } else {
            self.algorithms.first().copied().unwrap_or(DigestAlgorithm::Md5)
        }
    }
}

/// Linphone's provisioning document for `account` registering with `auth_username` (the
/// username, or a device's `<username>#<device>`) and `password`, which it holds as HA1 only.
pub fn linphone_document(account: &Account<'_>, auth_username: &str, password: &Password) -> String {
    let algorithm = account.algorithm();
    let ha1 = ha1(algorithm, auth_username, account.realm, password);
    linphone_xml(&LinphoneAccount {
        display_name: account.display_name,
        aor_user: account.username,
        domain: account.domain,
        auth_username,
        realm: account.realm,
        ha1: &ha1,
        algorithm,
        connection: account.connection,
    })
}

/// A QR code (PNG) whose text is exactly `document`.
pub fn qr_code(document: &str) -> Result<Vec<u8>, QrError> {
    qr_png(document)
}

/// The provisioning keys of a credentials Secret: where to connect (`server`, `port`,
/// `transport`, `registrarUri`, `outboundProxy` when set), the account's `sipUri`, and one
/// Linphone document with its QR code per set of credentials that registers: the account's
/// own (`linphone.xml`, `qr.png`) while it has no devices, else each device's
/// (`devices.<name>.linphone.xml`, `devices.<name>.qr.png`). A document too large for a QR
/// code (over 2,953 bytes, which the schema's bounds make unlikely) goes without one.
///
/// `current` is the Secret as it is now: where it holds the same document and a QR code, that
/// code is kept rather than encoded again (encoding is nearly all of the cost, and would
/// otherwise be paid for every user at every reconcile).
pub fn secret_entries(
    account: &Account<'_>,
    password: &Password,
    devices: &[(&str, &Password)],
    current: Option<&k8s_openapi::api::core::v1::Secret>,
) -> Vec<(String, Vec<u8>)> {
    let c = account.connection;
    let mut out: Vec<(String, Vec<u8>)> = vec![
        (data_keys::SERVER.into(), c.host.clone().into_bytes()),
        (data_keys::PORT.into(), c.port.to_string().into_bytes()),
        (
            data_keys::TRANSPORT.into(),
            c.preferred().as_param().as_bytes().to_vec(),
        ),
        (data_keys::REGISTRAR_URI.into(), registrar_uri(c).into_bytes()),
        (
            data_keys::SIP_URI.into(),
            sip_uri(account.username, account.domain, c).into_bytes(),
        ),
    ];
    if let Some(proxy) = &c.outbound_proxy {
        out.push((data_keys::OUTBOUND_PROXY.into(), proxy.clone().into_bytes()));
    }
    let mut document = |xml_key: String, qr_key: String, auth_username: &str, password: &Password| {
        let xml = linphone_document(account, auth_username, password);
        let kept = current
            .filter(|c| crate::credentials::secret_bytes(c, &xml_key) == Some(xml.as_bytes()))
            .and_then(|c| crate::credentials::secret_bytes(c, &qr_key))
            .filter(|png| !png.is_empty());
        match kept.map(|png| Ok(png.to_vec())).unwrap_or_else(|| qr_code(&xml)) {
            Ok(png) => out.push((qr_key, png)),
            Err(error) => tracing::warn!(
                user = account.username,
                %error,
                "the provisioning document is too large for a QR code; the Secret holds it without one"
            ),
        }
        out.push((xml_key, xml.into_bytes()));
    };
    if devices.is_empty() {
        document(
            data_keys::LINPHONE_XML.into(),
            data_keys::QR_PNG.into(),
            account.username,
            password,
        );
    }
    for (name, device_password) in devices {
        document(
            data_keys::device_linphone_xml(name),
            data_keys::device_qr_png(name),
            &crate::api::device_auth_username(account.username, name),
            device_password,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Transport;

    fn connection() -> Connection {
        Connection {
            host: "sip.example.net".into(),
            port: 5061,
            transports: vec![Transport::Tls, Transport::Tcp],
            outbound_proxy: Some("sips:edge.example.net;lr".into()),
        }
    }

    fn account<'a>(c: &'a Connection, algorithms: &'a [DigestAlgorithm]) -> Account<'a> {
        Account {
            username: "alice",
            domain: "acme.example.com",
            realm: "acme.example.com",
            display_name: Some("Alice <Example> & \"Co\""),
            connection: c,
            algorithms,
        }
    }

    fn text(entries: &[(String, Vec<u8>)], key: &str) -> Option<String> {
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| String::from_utf8(v.clone()).expect("text"))
    }

    #[test]
    fn the_account_gets_connection_keys_a_document_and_its_qr_code() {
        let c = connection();
        let p = Password::new("Circle Of Life");
        let entries = secret_entries(&account(&c, &[DigestAlgorithm::Md5]), &p, &[], None);
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server",
                "port",
                "transport",
                "registrarUri",
                "sipUri",
                "outboundProxy",
                "qr.png",
                "linphone.xml"
            ]
        );
        assert_eq!(text(&entries, "server").as_deref(), Some("sip.example.net"));
        assert_eq!(text(&entries, "port").as_deref(), Some("5061"));
        assert_eq!(text(&entries, "transport").as_deref(), Some("tls"));
        assert_eq!(
            text(&entries, "registrarUri").as_deref(),
            Some("sips:sip.example.net:5061")
        );
        assert_eq!(
            text(&entries, "sipUri").as_deref(),
            Some("sips:alice@acme.example.com")
        );
        let xml = text(&entries, "linphone.xml").expect("document");
        let ha1 = crate::credentials::ha1(DigestAlgorithm::Md5, "alice", "acme.example.com", &p);
        assert!(
            xml.contains(&format!("<entry name=\"ha1\">{ha1}</entry>")),
            "{xml}"
        );
        assert!(!xml.contains("Circle"), "no password in the document");
        assert!(
            xml.contains("<entry name=\"reg_route\">sips:edge.example.net;lr</entry>"),
            "{xml}"
        );
        let png = &entries.iter().find(|(k, _)| k == "qr.png").expect("qr").1;
        assert_eq!(qr::decode_png(png), xml, "the QR code is of exactly the document");
    }

    #[test]
    fn with_devices_only_their_credentials_get_documents() {
        let c = Connection {
            outbound_proxy: None,
            ..connection()
        };
        let (p, desk) = (Password::new("pw"), Password::new("desk-pw"));
        let entries = secret_entries(
            &account(&c, &[DigestAlgorithm::Sha256]),
            &p,
            &[("desk", &desk)],
            None,
        );
        assert!(text(&entries, "linphone.xml").is_none());
        assert!(text(&entries, "outboundProxy").is_none());
        let xml = text(&entries, "devices.desk.linphone.xml").expect("device document");
        let ha1 = crate::credentials::ha1(DigestAlgorithm::Sha256, "alice#desk", "acme.example.com", &desk);
        assert!(xml.contains("<entry name=\"userid\">alice#desk</entry>"), "{xml}");
        assert!(xml.contains("<entry name=\"username\">alice</entry>"), "{xml}");
        assert!(
            xml.contains(&format!("<entry name=\"ha1\">{ha1}</entry>")),
            "{xml}"
        );
        assert!(xml.contains("<entry name=\"algorithm\">SHA-256</entry>"), "{xml}");
        let png = &entries
            .iter()
            .find(|(k, _)| k == "devices.desk.qr.png")
            .expect("qr")
            .1;
        assert_eq!(qr::decode_png(png), xml);
    }

    #[test]
    fn a_qr_code_of_an_unchanged_document_is_kept_and_a_changed_one_encoded_anew() {
        use k8s_openapi::ByteString;
        let c = connection();
        let p = Password::new("pw");
        let a = account(&c, &[DigestAlgorithm::Md5]);
        let fresh = secret_entries(&a, &p, &[], None);
        let secret = |entries: &[(String, Vec<u8>)], qr: &[u8]| k8s_openapi::api::core::v1::Secret {
            data: Some(
                entries
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            ByteString(if k == "qr.png" { qr.to_vec() } else { v.clone() }),
                        )
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        // A marker instead of the code shows whether it was kept.
        let kept = secret_entries(&a, &p, &[], Some(&secret(&fresh, b"kept")));
        assert_eq!(
            kept.iter()
                .find(|(k, _)| k == "qr.png")
                .map(|(_, v)| v.as_slice()),
            Some(&b"kept"[..])
        );
        let other = Password::new("other");
        let changed = secret_entries(&a, &other, &[], Some(&secret(&fresh, b"kept")));
        let png = &changed.iter().find(|(k, _)| k == "qr.png").expect("qr").1;
        assert_eq!(
            qr::decode_png(png),
            text(&changed, "linphone.xml").expect("document"),
            "a new document gets its own code"
        );
    }

    #[test]
    fn md5_is_preferred_where_the_domain_accepts_it() {
        let c = connection();
        let both = [DigestAlgorithm::Sha256, DigestAlgorithm::Md5];
        assert_eq!(account(&c, &both).algorithm(), DigestAlgorithm::Md5);
        assert_eq!(
            account(&c, &[DigestAlgorithm::Sha256]).algorithm(),
            DigestAlgorithm::Sha256
        );
        assert_eq!(account(&c, &[]).algorithm(), DigestAlgorithm::Md5);
    }

    /// The cost the controller pays per user and reconcile: HA1, document, QR code and PNG.
    /// Printed, not asserted (timings depend on the machine); run with `--nocapture`.
    #[test]
    fn cost_of_provisioning_ten_thousand_users() {
        let c = Connection {
            host: "sip.example.net".into(),
            port: 5060,
            transports: vec![Transport::Udp],
            outbound_proxy: None,
        };
        // 10,000 as the scale target; PROVISIONING_COST_USERS makes the loop shorter.
        let count = std::env::var("PROVISIONING_COST_USERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        let users: Vec<(String, Password)> = (0..count)
            .map(|i| (format!("user{i:05}"), Password::new(format!("{i:032}"))))
            .collect();
        let (mut bytes, mut png_bytes) = (0usize, 0usize);
        let start = std::time::Instant::now();
        for (name, password) in &users {
            let a = Account {
                username: name,
                domain: "acme.example.com",
                realm: "acme.example.com",
                display_name: Some("Some Body"),
                connection: &c,
                algorithms: &[DigestAlgorithm::Md5],
            };
            let entries = secret_entries(&a, password, &[], None);
            bytes += entries.iter().map(|(_, v)| v.len()).sum::<usize>();
            png_bytes += entries
                .iter()
                .find(|(k, _)| k == "qr.png")
                .map_or(0, |(_, v)| v.len());
        }
        let elapsed = start.elapsed();
        println!(
            "provisioning {} users: {:.1} µs/user, {} B of provisioning data/user ({} B PNG)",
            users.len(),
            elapsed.as_secs_f64() * 1e6 / users.len() as f64,
            bytes / users.len(),
            png_bytes / users.len()
        );
        assert!(png_bytes > 0);
    }
}
