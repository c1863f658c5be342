//! What the settings page shows, pure: the credentials Secret's keys a person enters in a
//! phone, in that order, skipping those the Secret does not hold.
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;

use super::pages::Setting;
use crate::credentials::{data_keys, secret_bytes, secret_value};

/// The Secret keys shown, their labels and element ids. `sipUri` falls back to `aor`.
const SHOWN: &[(&str, &str, &str)] = &[
    ("server", "Server", "server"),
    ("port", "Port", "port"),
    ("transport", "Transport", "transport"),
    (data_keys::USERNAME, "Username", "username"),
    (data_keys::PASSWORD, "Password", "password"),
    (data_keys::DOMAIN, "Domain", "domain"),
    ("sipUri", "SIP URI", "sip-uri"),
    ("registrarUri", "Registrar URI", "registrar-uri"),
];

/// The Secret key of the QR code (a PNG of the account's provisioning).
pub const QR_KEY: &str = "qr.png";

/// The settings in `secret`; `password` replaces the stored one (just chosen, or `None`: the
/// stored one).
pub fn from_secret(secret: &Secret, password: Option<&str>) -> Vec<Setting> {
    SHOWN
        .iter()
        .filter_map(|(key, label, id)| {
            let value = match *key {
                data_keys::PASSWORD if password.is_some() => password.map(str::to_string),
                "sipUri" => secret_value(secret, key).or_else(|| secret_value(secret, data_keys::AOR)),
                _ => secret_value(secret, key),
            }?;
            Some(Setting { label, id, value })
        })
        .collect()
}

/// The settings shared by a user's devices: those of [`from_secret`] without the account's
/// own username and password (no device signs in with them).
pub fn shared_with_devices(secret: &Secret) -> Vec<Setting> {
    from_secret(secret, None)
        .into_iter()
        .filter(|s| s.id != "username" && s.id != "password")
        .collect()
}

/// The sign-in of each of `devices` (names, in order) that the Secret holds keys of.
pub fn devices_from_secret(secret: &Secret, devices: &[&str]) -> Vec<super::pages::DeviceSettings> {
    devices
        .iter()
        .filter_map(|name| {
            Some(super::pages::DeviceSettings {
                name: name.to_string(),
                username: secret_value(secret, &data_keys::device_username(name))?,
                password: secret_value(secret, &data_keys::device_password(name))?,
                qr_png_base64: png_base64(secret, &data_keys::device_qr_png(name)),
                scanner_png_base64: None,
            })
        })
        .collect()
}

fn png_base64(secret: &Secret, key: &str) -> Option<String> {
    let png = secret_bytes(secret, key)?;
    png.starts_with(b"\x89PNG\r\n\x1a\n")
        .then(|| base64::engine::general_purpose::STANDARD.encode(png))
}

/// The QR code as base64, for a `data:` URL, if the Secret holds a PNG under [`QR_KEY`].
pub fn qr_code(secret: &Secret) -> Option<String> {
    png_base64(secret, QR_KEY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(pairs: &[(&str, &[u8])]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn each_listed_device_shows_its_own_sign_in_and_the_account_password_is_left_out() {
        let s = secret(&[
            ("server", b"sip.example.com"),
            ("username", b"alice"),
            ("password", b"account-pw"),
            ("devices.desk.username", b"alice#desk"),
            ("devices.desk.password", b"desk-pw"),
            ("devices.desk.qr.png", b"\x89PNG\r\n\x1a\nrest"),
            ("devices.old.username", b"alice#old"),
            ("devices.old.password", b"old-pw"),
        ]);
        let shared: Vec<_> = shared_with_devices(&s).into_iter().map(|s| s.id).collect();
        assert_eq!(shared, ["server"]);
        let mut d = devices_from_secret(&s, &["desk", "missing"]);
        assert_eq!(d.len(), 1, "only listed devices the Secret holds");
        assert_eq!(
            (d[0].username.as_str(), d[0].password.as_str()),
            ("alice#desk", "desk-pw")
        );
        assert!(d[0].qr_png_base64.is_some());
        let html = super::super::pages::devices_section(&d);
        assert!(html.contains("id=\"device-0-password\">desk-pw<") && html.contains("id=\"device-0-qr\""));
        assert!(!html.contains("old-pw") && !html.contains("account-pw"));
        assert!(
            !html.contains("scanner-qr"),
            "no scanner code without a provisioning URL"
        );
        d[0].scanner_png_base64 = Some("c2Nhbg==".into());
        let html = super::super::pages::devices_section(&d);
        assert!(html.contains("id=\"device-0-scanner-qr\"") && html.contains("c2Nhbg=="));
    }

    #[test]
    fn present_keys_are_shown_in_order_and_missing_ones_skipped() {
        let s = secret(&[
            ("username", b"alice"),
            ("password", b"pw"),
            ("domain", b"example.com"),
            ("aor", b"sip:alice@example.com"),
            ("server", b"sip.example.com"),
        ]);
        let shown: Vec<(&str, String)> = from_secret(&s, None)
            .into_iter()
            .map(|s| (s.id, s.value))
            .collect();
        assert_eq!(
            shown,
            [
                ("server", "sip.example.com".into()),
                ("username", "alice".into()),
                ("password", "pw".into()),
                ("domain", "example.com".into()),
                ("sip-uri", "sip:alice@example.com".into()),
            ]
        );
        let chosen = from_secret(&s, Some("new"));
        assert_eq!(
            chosen
                .iter()
                .find(|s| s.id == "password")
                .map(|s| s.value.as_str()),
            Some("new")
        );
    }

    #[test]
    fn only_a_png_is_shown_as_the_qr_code() {
        assert_eq!(
            qr_code(&secret(&[("qr.png", b"\x89PNG\r\n\x1a\nrest")])).as_deref(),
            Some("iVBORw0KGgpyZXN0")
        );
        assert_eq!(qr_code(&secret(&[("qr.png", b"GIF89a")])), None);
        assert_eq!(qr_code(&secret(&[])), None);
    }
}
