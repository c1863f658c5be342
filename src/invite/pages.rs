//! The invite page's HTML, pure: plain forms, no script, every value escaped.
use std::fmt::Write as _;

/// `text` safe inside HTML text and double-quoted attribute values: the XML escaping of the
/// provisioning document (`&apos;` is an HTML5 entity as well).
pub use crate::provisioning::xml_escape as escape;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}\
table{border-collapse:collapse}td,th{padding:.3rem .8rem;text-align:left;border-bottom:1px solid #ddd}\
code{font-size:1.05em}.refusal{color:#a00;font-weight:bold}form{margin:1.5rem 0}\
input{display:block;margin:.3rem 0 .8rem;padding:.3rem;width:20rem}button{padding:.4rem 1rem}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n<h1>{}</h1>\n{body}\n</body></html>\n",
        escape(title),
        escape(title)
    )
}

/// What the landing page shows of the account (no `Debug`: its path holds the token).
#[derive(Clone)]
pub struct Landing<'a> {
    /// The link's own path (`/invite/<token>`), the forms post below it.
    pub path: &'a str,
    pub display_name: Option<&'a str>,
    /// `username@domain`.
    pub account: &'a str,
    /// The password form, with the policy's hint; `Err(why)` when the password cannot be
    /// chosen here.
    pub password: Result<String, String>,
    /// A refusal of the previous attempt to choose a password.
    pub refusal: Option<&'a str>,
}

/// The page a link opens: the account and the two choices.
pub fn landing(l: &Landing<'_>) -> String {
    let mut body = String::new();
    let who = match l.display_name {
        Some(name) => format!("{} (<code>{}</code>)", escape(name), escape(l.account)),
        None => format!("<code>{}</code>", escape(l.account)),
    };
    let _ = writeln!(
        body,
        "<p>This link sets up the SIP account {who} on your phone. It works <strong>once</strong>: \
         choose one of the two below.</p>"
    );
    if let Some(refusal) = l.refusal {
        let _ = writeln!(
            body,
            "<p class=\"refusal\" id=\"refusal\">{}</p>",
            escape(refusal)
        );
    }
    let _ = writeln!(
        body,
        "<form method=\"post\" action=\"{}/settings\"><h2>Show my settings</h2>\
         <p>Shows the server, your username and password and a QR code to scan with your phone, once.</p>\
         <button type=\"submit\" id=\"show-settings\">Show my settings</button></form>",
        escape(l.path)
    );
    match &l.password {
        Ok(hint) => {
            let _ = writeln!(
                body,
                "<form method=\"post\" action=\"{}/password\"><h2>Choose my password</h2>\
                 <p>Your password: {}.</p>\
                 <label for=\"password\">New password</label>\
                 <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"new-password\" required>\
                 <label for=\"confirmation\">The same password again</label>\
                 <input type=\"password\" id=\"confirmation\" name=\"confirmation\" autocomplete=\"new-password\" required>\
                 <button type=\"submit\" id=\"choose-password\">Choose my password</button></form>",
                escape(l.path),
                escape(hint)
            );
        }
        Err(why) => {
            let _ = writeln!(
                body,
                "<h2>Choose my password</h2><p id=\"no-password-change\">{}</p>",
                escape(why)
            );
        }
    }
    page("Your phone account", &body)
}

/// One account setting to show: its label, its element id and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub label: &'static str,
    pub id: &'static str,
    pub value: String,
}

/// The settings page: what to enter in a phone, the QR code of its provisioning document (a
/// PNG) when there is one, and the QR code of its provisioning URL for a phone app's scanner.
pub fn settings(
    settings: &[Setting],
    qr_png_base64: Option<&str>,
    note: Option<&str>,
    scanner_png_base64: Option<&str>,
) -> String {
    settings_with_devices(settings, qr_png_base64, note, scanner_png_base64, &[])
}

/// The part that offers a phone app's scanner the provisioning URL, with its element `id`.
fn scanner_section(id: &str, png: &str) -> String {
    format!(
        "<p>In Linphone: <em>Assistant → Fetch remote configuration → Scan QR code</em>. This code \
         works for 10 minutes.</p><p><img id=\"{id}\" alt=\"QR code with the address of your phone's settings\" \
         src=\"data:image/png;base64,{}\"></p>\n",
        escape(png)
    )
}

/// The settings page with the devices' sign-ins (none: as [`settings`]).
pub fn settings_with_devices(
    settings: &[Setting],
    qr_png_base64: Option<&str>,
    note: Option<&str>,
    scanner_png_base64: Option<&str>,
    devices: &[DeviceSettings],
) -> String {
    let mut body = String::from(
        "<p>Enter these in your phone or softphone. This page is shown <strong>once</strong>: \
         note them now; the link works no more.</p>\n<table>\n",
    );
    for s in settings {
        let _ = writeln!(
            body,
            "<tr><th>{}</th><td><code id=\"{}\">{}</code></td></tr>",
            escape(s.label),
            s.id,
            escape(&s.value)
        );
    }
    body.push_str("</table>\n");
    if let Some(note) = note {
        let _ = writeln!(body, "<p id=\"note\">{}</p>", escape(note));
    }
    if let Some(png) = qr_png_base64 {
        let _ = writeln!(
            body,
            "<h2>Scan with your phone</h2><p><img id=\"qr\" alt=\"QR code with your account's settings\" \
             src=\"data:image/png;base64,{}\"></p>",
            escape(png)
        );
    }
    if let Some(png) = scanner_png_base64 {
        body.push_str("<h2>Set up your phone app by scanning</h2>\n");
        body.push_str(&scanner_section("scanner-qr", png));
    }
    if !devices.is_empty() {
        body.push_str(&devices_section(devices));
    }
    page("Your phone settings", &body)
}

/// One device's sign-in, for a user whose phones register as devices (`spec.devices`).
pub struct DeviceSettings {
    /// The device's name in `spec.devices`.
    pub name: String,
    /// Its digest username (`<username>#<device>`).
    pub username: String,
    pub password: String,
    /// A QR code (PNG, base64) of its provisioning document, when the Secret holds one.
    pub qr_png_base64: Option<String>,
    /// A QR code (PNG, base64) of its provisioning URL, for a phone app's scanner.
    pub scanner_png_base64: Option<String>,
}

/// The devices' part of the settings page: per device its username, password and QR code.
/// The element ids are `device-<n>-username`, `device-<n>-password`, `device-<n>-qr` and
/// `device-<n>-scanner-qr` (n from 0, so that no device name needs escaping in an attribute).
pub fn devices_section(devices: &[DeviceSettings]) -> String {
    let mut body = String::from(
        "<h2>Your devices</h2>\n<p id=\"devices-note\">Each of your phones signs in with its own username and \
         password below (your account's own password is not used by any phone).</p>\n",
    );
    for (n, d) in devices.iter().enumerate() {
        let _ = writeln!(
            body,
            "<h3>{}</h3><table><tr><th>Username</th><td><code id=\"device-{n}-username\">{}</code></td></tr>\
             <tr><th>Password</th><td><code id=\"device-{n}-password\">{}</code></td></tr></table>",
            escape(&d.name),
            escape(&d.username),
            escape(&d.password)
        );
        if let Some(png) = &d.qr_png_base64 {
            let _ = writeln!(
                body,
                "<p><img id=\"device-{n}-qr\" alt=\"QR code with this device's settings\" src=\"data:image/png;base64,{}\"></p>",
                escape(png)
            );
        }
        if let Some(png) = &d.scanner_png_base64 {
            body.push_str(&scanner_section(&format!("device-{n}-scanner-qr"), png));
        }
    }
    body
}

/// Why a link does not work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dead {
    /// Unknown, malformed or truncated: nothing is said about any account.
    NotValid,
    Used,
    Expired,
}

/// The page for a link that does not work.
pub fn dead(why: Dead) -> String {
    let text = match why {
        Dead::NotValid => {
            "This link is not valid. Check that you copied all of it, or ask your administrator for a new one."
        }
        Dead::Used => {
            "This link was already used and works no more. Ask your administrator for a new invite if you need your settings again."
        }
        Dead::Expired => "This link has expired. Ask your administrator for a new invite.",
    };
    page(
        "This link does not work",
        &format!("<p id=\"dead\" data-why=\"{why:?}\">{}</p>", escape(text)),
    )
}

/// A page for a failure on our side, saying what the end user can do.
pub fn failure(text: &str) -> String {
    page(
        "Something went wrong",
        &format!("<p id=\"failure\">{}</p>", escape(text)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &apos;y&apos;&lt;/script&gt;"
        );
        assert_eq!(escape("alice@example.com"), "alice@example.com");
    }

    #[test]
    fn the_landing_page_escapes_what_users_wrote_and_offers_both_choices() {
        let html = landing(&Landing {
            path: "/invite/abc",
            display_name: Some("<b>Mallory</b>"),
            account: "mallory@example.com",
            password: Ok("at least 16 characters".into()),
            refusal: Some("The two passwords differ."),
        });
        assert!(html.contains("&lt;b&gt;Mallory&lt;/b&gt;") && !html.contains("<b>Mallory"));
        assert!(html.contains("action=\"/invite/abc/settings\""));
        assert!(html.contains("action=\"/invite/abc/password\""));
        assert!(html.contains("id=\"refusal\""));
        assert!(!html.contains("<script"));
        let without = landing(&Landing {
            password: Err("managed elsewhere".into()),
            refusal: None,
            ..Landing {
                path: "/invite/abc",
                display_name: None,
                account: "a@b",
                password: Ok(String::new()),
                refusal: None,
            }
        });
        assert!(!without.contains("/password\"") && without.contains("managed elsewhere"));
    }

    #[test]
    fn settings_show_each_value_and_the_qr_code_as_a_data_url() {
        let html = settings(
            &[Setting {
                label: "Password",
                id: "password",
                value: "a<b".into(),
            }],
            Some("iVBORw0KGgo="),
            None,
            Some("c2Nhbm5lcg=="),
        );
        assert!(html.contains("<code id=\"password\">a&lt;b</code>"));
        assert!(html.contains("src=\"data:image/png;base64,iVBORw0KGgo=\""));
        assert!(html.contains("id=\"scanner-qr\"") && html.contains("c2Nhbm5lcg=="));
        assert!(!settings(&[], None, None, None).contains("<img"));
    }

    #[test]
    fn a_dead_link_names_no_account() {
        for why in [Dead::NotValid, Dead::Used, Dead::Expired] {
            let html = dead(why);
            assert!(html.contains("id=\"dead\""), "{html}");
            assert!(!html.contains('@'));
        }
        assert!(dead(Dead::Used).contains("already used"));
        assert!(dead(Dead::Expired).contains("expired"));
        assert!(dead(Dead::NotValid).contains("not valid"));
    }
}
