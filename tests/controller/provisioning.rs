//! Provisioning output against the real API server: the credentials Secret carries where
//! phones connect (`spec.connection` of the domain), the account's URIs, a Linphone document
//! and a QR code of it; a change of the connection rewrites each user's Secret once, and a
//! domain change that does not touch it writes none.
use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;
use serde_json::json;
use sip_operator::api::DigestAlgorithm;
use sip_operator::credentials::{Password, ha1};

use crate::builders::user;
use crate::devices::secret_writes_until_quiet;
use crate::scenario::{Scenario, password, secret_data, secret_value};
use crate::support::audit::AuditLog;
use crate::support::operator::metric_value;

/// The text of the QR code in a PNG, as a scanner reads it.
fn scan(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut buf).expect("a frame");
    let (w, h, line) = (frame.width as usize, frame.height as usize, frame.line_size);
    assert_eq!(frame.bit_depth, png::BitDepth::One, "1-bit grayscale");
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        if buf[y * line + x / 8] & (0x80 >> (x % 8)) != 0 {
            255
        } else {
            0
        }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().expect("the QR code decodes").1
}

fn keys(secret: &Secret) -> BTreeSet<String> {
    secret_data(secret).into_keys().collect()
}

fn value(secret: &Secret, key: &str) -> String {
    secret_value(secret, key).unwrap_or_else(|| panic!("no {key}: keys {:?}", keys(secret)))
}

fn bytes(secret: &Secret, key: &str) -> Vec<u8> {
    secret_data(secret)
        .remove(key)
        .unwrap_or_else(|| panic!("no {key}: keys {:?}", keys(secret)))
}

#[tokio::test]
async fn the_secret_provisions_a_phone_and_follows_the_domains_connection() {
    let sc = Scenario::new("provisioning").await;
    let connection = json!({
        "host": "sip.example.net",
        "port": 5080,
        "transports": ["TCP", "UDP"],
        "outboundProxy": "sip:edge.example.net;lr",
    });
    sc.apply(&sc.default_domain().connection(connection)).await;
    sc.apply(&user("alice").display_name("Alice <&\"Example\">"))
        .await;
    sc.apply(&user("dana").devices(json!([{ "name": "desk" }]))).await;
    sc.ready("alice").await;
    sc.ready("dana").await;

    let alice = sc
        .wait_secret("alice-sip-credentials", "with the domain's connection", |s| {
            secret_value(s, "port").as_deref() == Some("5080")
        })
        .await;
    let fixed = [
        "aor",
        "domain",
        "password",
        "realm",
        "username",
        "server",
        "port",
        "transport",
        "registrarUri",
        "sipUri",
        "outboundProxy",
    ];
    let want: BTreeSet<String> = fixed
        .iter()
        .chain(&["linphone.xml", "qr.png"])
        .map(|k| k.to_string())
        .collect();
    assert_eq!(keys(&alice), want);
    assert_eq!(value(&alice, "server"), "sip.example.net");
    assert_eq!(value(&alice, "transport"), "tcp");
    assert_eq!(
        value(&alice, "registrarUri"),
        "sip:sip.example.net:5080;transport=tcp"
    );
    assert_eq!(
        value(&alice, "sipUri"),
        format!("sip:alice@{};transport=tcp", sc.fqdn)
    );
    assert_eq!(value(&alice, "outboundProxy"), "sip:edge.example.net;lr");
    let xml = value(&alice, "linphone.xml");
    let alice_ha1 = ha1(
        DigestAlgorithm::Md5,
        "alice",
        &sc.fqdn,
        &Password::new(password(&alice)),
    );
    for entry in [
        "<entry name=\"reg_proxy\">sip:sip.example.net:5080;transport=tcp</entry>".to_string(),
        "<entry name=\"reg_route\">sip:edge.example.net;lr</entry>".to_string(),
        format!(
            "<entry name=\"reg_identity\">&quot;Alice &lt;&amp;\\&quot;Example\\&quot;&gt;&quot; &lt;sip:alice@{}&gt;</entry>",
            sc.fqdn
        ),
        format!("<entry name=\"ha1\">{alice_ha1}</entry>"),
        "<entry name=\"userid\">alice</entry>".to_string(),
    ] {
        assert!(xml.contains(&entry), "{entry} missing from\n{xml}");
    }
    assert!(
        !xml.contains(&password(&alice)),
        "the document holds HA1, not the password"
    );
    assert_eq!(scan(&bytes(&alice, "qr.png")), xml, "the QR code is the document");

    // With devices, each device has a document of its own and the account none.
    let dana = sc.secret("dana-sip-credentials").await;
    let dana_keys = keys(&dana);
    assert!(!dana_keys.contains("linphone.xml") && !dana_keys.contains("qr.png"));
    let desk_xml = value(&dana, "devices.desk.linphone.xml");
    let desk_ha1 = ha1(
        DigestAlgorithm::Md5,
        "dana#desk",
        &sc.fqdn,
        &Password::new(value(&dana, "devices.desk.password")),
    );
    assert!(
        desk_xml.contains(&format!("<entry name=\"ha1\">{desk_ha1}</entry>")),
        "{desk_xml}"
    );
    assert!(
        desk_xml.contains("<entry name=\"userid\">dana#desk</entry>"),
        "{desk_xml}"
    );
    assert!(
        desk_xml.contains("<entry name=\"username\">dana</entry>"),
        "{desk_xml}"
    );
    assert_eq!(scan(&bytes(&dana, "devices.desk.qr.png")), desk_xml);

    // The connection changes: every user's Secret is rewritten once, passwords kept.
    // One mark per Secret: each count reads the log from its own mark.
    let mut audits = [AuditLog::mark(), AuditLog::mark()];
    sc.apply(
        &sc.default_domain()
            .connection(json!({ "host": "192.0.2.10", "transports": ["TLS"] })),
    )
    .await;
    let moved = sc
        .wait_secret("alice-sip-credentials", "on the new connection", |s| {
            secret_value(s, "server").as_deref() == Some("192.0.2.10")
        })
        .await;
    sc.wait_secret("dana-sip-credentials", "on the new connection", |s| {
        secret_value(s, "server").as_deref() == Some("192.0.2.10")
    })
    .await;
    for (audit, name) in audits
        .iter_mut()
        .zip(["alice-sip-credentials", "dana-sip-credentials"])
    {
        let writes = secret_writes_until_quiet(&sc, audit, name).await;
        assert_eq!(
            writes.len(),
            1,
            "{name}: one write for the new connection: {writes:?}"
        );
    }
    assert_eq!(value(&moved, "port"), "5061", "TLS first: port 5061");
    assert_eq!(value(&moved, "transport"), "tls");
    assert_eq!(value(&moved, "registrarUri"), "sips:192.0.2.10:5061");
    assert_eq!(value(&moved, "sipUri"), format!("sips:alice@{}", sc.fqdn));
    assert!(!keys(&moved).contains("outboundProxy"), "no proxy, no key");
    assert_eq!(password(&moved), password(&alice), "the password stays");
    let moved_xml = value(&moved, "linphone.xml");
    assert!(moved_xml.contains("<entry name=\"reg_proxy\">sips:192.0.2.10:5061</entry>"));
    assert!(!moved_xml.contains("reg_route"));
    assert_eq!(scan(&bytes(&moved, "qr.png")), moved_xml);

    // A domain change the Secrets do not show: every user reconciles, no Secret is written.
    let rv = moved.metadata.resource_version.clone();
    let mut audits = [AuditLog::mark(), AuditLog::mark()];
    let user_reconciles = || {
        metric_value(
            &sc.operator.metrics(),
            "sip_operator_reconciles_total",
            &[("kind", "SipUser")],
        )
        .unwrap_or(0.0)
    };
    let before = user_reconciles();
    sc.apply(
        &sc.default_domain()
            .connection(json!({ "host": "192.0.2.10", "transports": ["TLS"] }))
            .max_users(100),
    )
    .await;
    // Both users were reconciled again (so "no write" is not for want of looking).
    sc.operator_settled(before + 2.0).await;
    for (audit, name) in audits
        .iter_mut()
        .zip(["alice-sip-credentials", "dana-sip-credentials"])
    {
        let writes = secret_writes_until_quiet(&sc, audit, name).await;
        assert!(writes.is_empty(), "{name}: no write: {writes:?}");
    }
    assert_eq!(
        sc.secret("alice-sip-credentials").await.metadata.resource_version,
        rv
    );
}
