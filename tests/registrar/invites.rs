//! The invite page as an end user meets it (issue 13, part 2): a real operator serving HTTPS,
//! a real API server, a real Kamailio, a real headless Chromium driven over WebDriver
//! (chromedriver + fantoccini), and SIPp as the phone. The user opens the link, reads the
//! settings (and the QR code when the Secret has one), chooses a password on another link and
//! registers a phone with it; then the refusals: reuse, expiry, wrong and truncated tokens, a
//! password the policy refuses, and a password that is not the operator's to change.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use sip_operator::api::{InvitePhase, InviteUse, SipUser, SipUserInvite};
use sip_operator::credentials::secret_bytes;

use crate::setup::{Setup, WAIT};
use crate::support::eventually;
use crate::support::kamailio::Kamailio;
use crate::support::sipp::Registration;

/// A port free on 127.0.0.1 just now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A self-signed certificate for 127.0.0.1 (the browser is told to accept it), made with openssl.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        // Also as a DNS name: liblinphone's TLS (mbedtls) matches the host it connects to
        // against DNS names only; a real page has a DNS name anyway.
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// chromedriver on 127.0.0.1, stopped (by its PID) on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    async fn start() -> Driver {
        let port = free_port();
        use std::os::unix::process::CommandExt as _;
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            // A group of its own: the Chromium it starts is stopped with it.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/bin/chromedriver (chromium-driver)");
        let driver = Driver { child, port };
        eventually("chromedriver to listen", WAIT, || async {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        })
        .await;
        driver
    }

    /// A headless Chromium session that accepts the test's self-signed certificate.
    async fn browser(&self) -> Client {
        let caps = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            },
        });
        let caps = caps.as_object().cloned().expect("capabilities");
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver and the browsers it started, by its process group (its PID).
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// The HTTP status and headers of `url`, fetched by curl (the browser does not tell).
fn curl_head(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-k",
            "-s",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-w",
            "%{http_code}",
            url,
        ])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let code = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (code, text.to_lowercase())
}

/// The status code of a form post of `fields` to `url` (as the page's forms send it).
fn curl_post(url: &str, fields: &[&str]) -> u16 {
    let mut args = vec!["-k", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"];
    if fields.is_empty() {
        args.extend(["--data", ""]);
    }
    for field in fields {
        args.extend(["--data-urlencode", field]);
    }
    args.push(url);
    let out = Command::new("curl").args(&args).output().expect("run curl");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

/// The status code and body of a GET of `url`.
fn curl_get(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-k", "-s", "-w", "\n%{http_code}", url])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The PNG an `<img>` of the page shows as a `data:` URL.
async fn img_png(browser: &Client, css: &str) -> Vec<u8> {
    let imgs = browser.find_all(Locator::Css(css)).await.expect("find the image");
    assert_eq!(imgs.len(), 1, "one {css} on the page");
    let src = imgs[0].attr("src").await.expect("src").unwrap_or_default();
    png_of_data_url(&src)
}

fn png_of_data_url(src: &str) -> Vec<u8> {
    use base64::Engine as _;
    let data = src
        .strip_prefix("data:image/png;base64,")
        .unwrap_or_else(|| panic!("a PNG data URL: {src:.40}"));
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64")
}

/// The text of the QR code in `png`, as a phone's camera would read it (zbarimg).
fn decode_qr(dir: &Path, png: &[u8]) -> String {
    let file = dir.join("decode.png");
    std::fs::write(&file, png).expect("write the QR code");
    let out = Command::new("zbarimg")
        .args(["-q", "--raw"])
        .arg(&file)
        .output()
        .expect("zbarimg");
    assert!(out.status.success(), "the QR code decodes");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The page at `url` (a GET, or an empty form post with `post`).
fn curl_body(url: &str, post: bool) -> String {
    let mut args = vec!["-k", "-s"];
    if post {
        args.extend(["-X", "POST", "--data", ""]);
    }
    args.push(url);
    let out = Command::new("curl").args(&args).output().expect("run curl");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn invite_yaml(name: &str, user: &str, extra: &str) -> String {
    format!(
        "apiVersion: sipoperator.io/v1alpha1\nkind: SipUserInvite\nmetadata: {{name: {name}}}\nspec:\n  userRef: {user}\n{extra}"
    )
}

async fn issued(invites: &Api<SipUserInvite>, name: &str) -> String {
    eventually(&format!("invite {name} issued"), WAIT, || async {
        let i = invites.get_opt(name).await.ok().flatten()?;
        (i.phase() == Some(InvitePhase::Issued)).then(|| i.status?.url)?
    })
    .await
}

async fn used(invites: &Api<SipUserInvite>, name: &str) -> SipUserInvite {
    invites.get(name).await.expect("get invite")
}

/// The text of the element `css`, waiting for it to appear (a submitted form loads a page).
async fn text(browser: &Client, css: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css} not on the page: {}",
            browser.source().await.unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Clicks the button `css` and waits until the page it submits to replaced the current one.
async fn submit(browser: &Client, css: &str) {
    let old = browser
        .find(Locator::Css("html"))
        .await
        .expect("the current page");
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
    let deadline = std::time::Instant::now() + WAIT;
    while old.tag_name().await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "{css} loaded no new page");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The reason a dead link's page gives (`NotValid`, `Used`, `Expired`).
async fn dead_reason(browser: &Client, url: &str) -> String {
    browser.goto(url).await.expect("open the link");
    browser
        .find(Locator::Css("#dead"))
        .await
        .expect("a dead link's page")
        .attr("data-why")
        .await
        .expect("data-why")
        .unwrap_or_default()
}

/// An operator serving the invite page at `https://127.0.0.1:<port>` with a certificate made in
/// `dir`, a Kamailio, and a domain whose password policy asks for 16 characters and whose
/// phones connect to that Kamailio.
async fn invite_setup(prefix: &str, dir: &Path) -> (Setup, String) {
    let (cert, key) = certificate(dir);
    invite_setup_with(prefix, &cert, &key).await
}

/// [`invite_setup`] with the page's certificate and key at `cert` and `key` as they are.
async fn invite_setup_with(prefix: &str, cert: &Path, key: &Path) -> (Setup, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("https://127.0.0.1:{port}");
    let kamailio = Kamailio::start();
    let target = format!("      urls: [\"{}\"]\n", kamailio.rpc_url());
    // Phones provisioned from the page (linphonec) connect to this Kamailio.
    let domain_spec = format!(
        "  passwordPolicy: {{length: 16}}\n  connection: {{host: 127.0.0.1, port: {}}}\n",
        kamailio.sip_port()
    );
    let setup = Setup::with_operator_args(
        prefix,
        vec![kamailio],
        &target,
        &domain_spec,
        |_| {},
        None,
        &[
            "--invite-listen",
            &listen,
            "--invite-url",
            &base,
            "--invite-tls-cert",
            cert.to_str().expect("path"),
            "--invite-tls-key",
            key.to_str().expect("path"),
        ],
    )
    .await;
    (setup, base)
}

#[tokio::test]
async fn an_end_user_reads_their_settings_chooses_a_password_and_registers_a_phone() {
    let dir = tempdir();
    let (setup, base) = invite_setup("invite", &dir).await;
    let client = crate::support::ControlPlane::shared().client().await;
    let invites: Api<SipUserInvite> = Api::namespaced(client.clone(), &setup.ns.name);
    setup.apply_user("alice", "  displayName: Alice Example\n", "");
    setup.registrar_synced("alice", "True").await;
    let first_password = setup.password("alice").await;
    let changed_before = setup
        .users
        .get("alice")
        .await
        .expect("alice")
        .status
        .and_then(|s| s.password_changed_at)
        .expect("passwordChangedAt once the password is generated");
    setup.apply(&invite_yaml("alice-view", "alice", ""));
    setup.apply(&invite_yaml("alice-password", "alice", ""));
    setup.apply(&invite_yaml("alice-late", "alice", "  validFor: 5m\n"));
    let view_url = issued(&invites, "alice-view").await;
    let password_url = issued(&invites, "alice-password").await;
    let late_url = issued(&invites, "alice-late").await;
    assert!(view_url.starts_with(&format!("{base}/invite/")), "{view_url}");

    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // 1. Open the link: the account and the two choices.
    browser.goto(&view_url).await.expect("open the link");
    let landing = browser.source().await.expect("page source");
    assert!(landing.contains("Alice Example"), "{landing}");
    assert!(landing.contains(&format!("alice@{}", setup.fqdn)), "{landing}");
    browser
        .find(Locator::Css("#choose-password"))
        .await
        .expect("the password form");
    let (code, headers) = curl_head(&view_url);
    assert_eq!(code, 200, "{headers}");
    for header in [
        "content-security-policy: default-src 'none'",
        "cache-control: no-store",
        "referrer-policy: no-referrer",
        "x-content-type-options: nosniff",
        "strict-transport-security: max-age=31536000",
    ] {
        assert!(headers.contains(header), "{header} in {headers}");
    }

    // 2. Show my settings: what the Secret holds, once.
    submit(&browser, "#show-settings").await;
    assert_eq!(text(&browser, "#username").await, "alice");
    assert_eq!(text(&browser, "#password").await, first_password);
    assert_eq!(text(&browser, "#domain").await, setup.fqdn);
    let secret = setup
        .secrets
        .get("alice-sip-credentials")
        .await
        .expect("credentials Secret");
    // Every connection key is in the Secret (the domain's connection defaults to its own
    // name, port 5060, UDP) and the page shows each as the Secret has it.
    for (key, id) in [
        ("sipUri", "#sip-uri"),
        ("server", "#server"),
        ("port", "#port"),
        ("transport", "#transport"),
    ] {
        let value = sip_operator::credentials::secret_value(&secret, key)
            .unwrap_or_else(|| panic!("{key} in the credentials Secret"));
        assert_eq!(text(&browser, id).await, value, "{key}");
    }
    assert_eq!(
        text(&browser, "#sip-uri").await,
        format!("sip:alice@{};transport=udp", setup.fqdn)
    );
    let png = secret_bytes(&secret, "qr.png").expect("qr.png in the credentials Secret");
    let shown = img_png(&browser, "img#qr").await;
    assert_eq!(shown, png, "the Secret's QR code, as it is");
    let xml = sip_operator::credentials::secret_value(&secret, "linphone.xml").expect("linphone.xml");
    assert_eq!(
        decode_qr(&dir, &shown).trim_end(),
        xml.trim_end(),
        "the QR code holds the Secret's linphone.xml"
    );
    // The scanner's code holds a provisioning URL that serves that document, marked to be
    // applied once; a wrong token gets nothing.
    let scanner_url = decode_qr(&dir, &img_png(&browser, "img#scanner-qr").await);
    let scanner_url = scanner_url.trim_end().to_string();
    assert!(
        scanner_url.starts_with(&format!("{base}/provision/")),
        "{scanner_url}"
    );
    let (code, served) = curl_get(&scanner_url);
    assert_eq!(code, 200, "{served}");
    assert_eq!(served, sip_operator::provisioning::transient(&xml));
    assert!(served.contains("<entry name=\"transient_provisioning\">1</entry>"));
    let wrong = format!(
        "{}{}",
        &scanner_url[..scanner_url.len() - 1],
        if scanner_url.ends_with('A') { 'B' } else { 'A' }
    );
    assert_eq!(curl_get(&wrong).0, 404);
    let view = used(&invites, "alice-view").await;
    let status = view.status.clone().expect("status");
    assert_eq!(status.phase, Some(InvitePhase::Used));
    assert_eq!(status.used_for, Some(InviteUse::Viewed));
    assert!(status.used_at.is_some());

    // The operator's controller records it in the conditions, and the page an Event.
    eventually("alice-view: Ready reason Used and a Used Event", WAIT, || async {
        let i = invites.get("alice-view").await.ok()?;
        let ready = i.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
        let events: Api<Event> = Api::namespaced(client.clone(), &setup.ns.name);
        let used_event = events
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .any(|e| {
                e.reason.as_deref() == Some("Used")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("alice-view")
            });
        (ready.reason == "Used" && ready.status == "True" && used_event).then_some(())
    })
    .await;

    // 3. The same link again: used, for reading and for choosing a password.
    assert_eq!(dead_reason(&browser, &view_url).await, "Used");
    assert_eq!(curl_head(&view_url).0, 410);
    assert_eq!(
        curl_post(
            &format!("{view_url}/password"),
            &["password=Abcdefgh12345678", "confirmation=Abcdefgh12345678"]
        ),
        410,
        "a viewed link cannot set a password"
    );
    let again = browser.source().await.expect("source");
    assert!(
        !again.contains(&first_password) && !again.contains("alice@"),
        "{again}"
    );

    // 4. Choose my password: first one the policy refuses (too short), then a mismatch; the
    // link stays usable.
    browser.goto(&password_url).await.expect("open the password link");
    let fill = |password: &'static str, confirmation: &'static str| {
        let browser = browser.clone();
        async move {
            browser
                .find(Locator::Css("#password"))
                .await
                .expect("password field")
                .send_keys(password)
                .await
                .expect("type");
            browser
                .find(Locator::Css("#confirmation"))
                .await
                .expect("confirmation field")
                .send_keys(confirmation)
                .await
                .expect("type");
            submit(&browser, "#choose-password").await;
        }
    };
    fill("Short1", "Short1").await;
    let refusal = text(&browser, "#refusal").await;
    assert!(
        refusal.contains("too short") && refusal.contains("at least 16"),
        "{refusal}"
    );
    fill("Only-Alphanumeric-1", "Only-Alphanumeric-1").await;
    let refusal = text(&browser, "#refusal").await;
    assert!(refusal.contains("may contain only"), "{refusal}");
    fill("Abcdefgh12345678", "Abcdefgh12345679").await;
    assert!(text(&browser, "#refusal").await.contains("differ"));
    assert_eq!(
        used(&invites, "alice-password").await.phase(),
        Some(InvitePhase::Issued),
        "a refused password leaves the link usable"
    );
    let chosen = "MyOwnPassword2026";
    fill(chosen, chosen).await;
    assert_eq!(text(&browser, "#password").await, chosen);
    assert!(text(&browser, "#note").await.contains("new password is in place"));
    // The scanner's document is read when fetched: it carries the chosen password's HA1.
    let chosen_url = decode_qr(&dir, &img_png(&browser, "img#scanner-qr").await);
    let (code, document) = curl_get(chosen_url.trim_end());
    let chosen_ha1 = sip_operator::credentials::ha1(
        sip_operator::api::DigestAlgorithm::Md5,
        "alice",
        &setup.fqdn,
        &sip_operator::credentials::Password::new(chosen),
    );
    assert_eq!(code, 200);
    assert!(
        document.contains(&format!("<entry name=\"ha1\">{chosen_ha1}</entry>")),
        "{document}"
    );
    let after = used(&invites, "alice-password").await.status.expect("status");
    assert_eq!(
        (after.phase, after.used_for),
        (Some(InvitePhase::Used), Some(InviteUse::PasswordSet))
    );
    assert_eq!(
        setup.password("alice").await,
        chosen,
        "the Secret holds the chosen password"
    );

    // 5. The operator records the change once and pushes it: a phone registers with it.
    let user: SipUser = eventually("alice: the PasswordChosen Event", WAIT, || async {
        let events: Api<Event> = Api::namespaced(client.clone(), &setup.ns.name);
        let list = events.list(&Default::default()).await.ok()?;
        let chosen_events: Vec<_> = list
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("PasswordChosen"))
            .collect();
        if chosen_events.is_empty() {
            return None;
        }
        assert_eq!(chosen_events.len(), 1, "one PasswordChosen Event");
        assert!(!chosen_events[0].note.clone().unwrap_or_default().contains(chosen));
        setup.users.get("alice").await.ok()
    })
    .await;
    let changed_at = user.status.as_ref().and_then(|s| s.password_changed_at.clone());
    assert!(
        changed_at.as_ref().is_some_and(|t| t.0 > changed_before.0),
        "passwordChangedAt moved: {changed_before:?} -> {changed_at:?}"
    );
    let status = eventually("a phone registers with the chosen password", WAIT, || async {
        let code = setup.register("alice", chosen);
        (code == 200).then_some(code)
    })
    .await;
    assert_eq!(status, 200);
    // The phone stays registered: it shows in the user's status.
    let phone = Registration::new("alice", &setup.fqdn, chosen)
        .expires(300)
        .run(setup.kamailio().sip_addr());
    assert_eq!(phone.status, 200);
    let aor = format!("alice@{}", setup.fqdn);
    assert_eq!(
        setup.kamailio().contacts(&aor).len(),
        1,
        "registered at the registrar"
    );
    assert_ne!(
        setup.register("alice", &first_password),
        200,
        "the old password no longer works"
    );
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let u = setup.users.get("alice").await.expect("alice");
        if u.status
            .as_ref()
            .and_then(|s| s.registration.as_ref())
            .map(|r| r.contacts)
            == Some(1)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alice: status.registration.contacts == 1; kamailio has {} contact(s); status: {:?}\n{}",
            setup.kamailio().contacts(&aor).len(),
            u.status,
            setup.operator().log_tail(20)
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        setup.password("alice").await,
        chosen,
        "the operator kept the chosen password"
    );

    // 6. Expiry: the deadline passes (moved into the past, as five minutes are long for a test).
    let past = (Timestamp::now() - SignedDuration::from_secs(1)).to_string();
    invites
        .patch_status(
            "alice-late",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"expiresAt": past}})),
        )
        .await
        .expect("move expiresAt");
    eventually("the page to see the expiry", WAIT, || async {
        (curl_head(&late_url).0 == 410).then_some(())
    })
    .await;
    assert_eq!(dead_reason(&browser, &late_url).await, "Expired");
    // The provisioning URL is gone once the link's use is 10 minutes back (the boundary
    // itself: claim.rs's unit test).
    let long_ago = (Timestamp::now() - SignedDuration::from_secs(601)).to_string();
    invites
        .patch_status(
            "alice-view",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"usedAt": long_ago}})),
        )
        .await
        .expect("move usedAt");
    eventually("the provisioning URL to be gone", WAIT, || async {
        (curl_get(&scanner_url).0 == 410).then_some(())
    })
    .await;

    // 7. Wrong and truncated tokens: not valid, naming no account.
    let token = late_url.rsplit('/').next().expect("token").to_string();
    let flipped = format!(
        "{base}/invite/{}{}",
        &token[..42],
        if token.ends_with('A') { 'B' } else { 'A' }
    );
    for url in [
        flipped,
        format!("{base}/invite/{}", &token[..30]),
        format!("{base}/invite/"),
    ] {
        assert_eq!(dead_reason(&browser, &url).await, "NotValid", "{url}");
        assert_eq!(curl_head(&url).0, 404, "{url}");
        assert!(!browser.source().await.expect("source").contains("alice"));
    }

    // 8. A password the operator does not own cannot be changed here.
    setup.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: bob-password}\nstringData: {password: BobsOwnPassword99}\n",
    );
    setup.apply_user(
        "bob",
        "  credentials:\n    passwordSecretRef: {name: bob-password, key: password}\n",
        "",
    );
    setup.registrar_synced("bob", "True").await;
    setup.apply(&invite_yaml("bob-welcome", "bob", ""));
    let bob_url = issued(&invites, "bob-welcome").await;
    browser.goto(&bob_url).await.expect("open bob's link");
    assert!(
        text(&browser, "#no-password-change")
            .await
            .contains("managed by your administrator")
    );
    assert!(
        browser
            .find_all(Locator::Css("#choose-password"))
            .await
            .expect("find")
            .is_empty()
    );
    assert_eq!(
        used(&invites, "bob-welcome").await.phase(),
        Some(InvitePhase::Issued)
    );

    // Still one PasswordChosen Event: nothing after the choice changed the password again.
    let events: Api<Event> = Api::namespaced(client.clone(), &setup.ns.name);
    let chosen_events = events
        .list(&Default::default())
        .await
        .expect("list Events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("PasswordChosen"))
        .count();
    assert_eq!(chosen_events, 1, "one PasswordChosen Event at the end");

    // Nothing secret reached the operator's log.
    let log = setup.operator().log();
    for secret in [chosen, first_password.as_str(), token.as_str()] {
        assert!(!log.contains(secret), "a secret in the operator's log");
    }
    for url in [&view_url, &password_url, &bob_url] {
        let t = url.rsplit('/').next().expect("token");
        assert!(!log.contains(t), "a token in the operator's log");
    }
    assert!(log.contains("invite page request"), "the access log runs");

    browser.close().await.expect("close the browser");
    drop(driver);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The SHA-256 fingerprint of the certificate the page at `base` serves.
fn served_fingerprint(base: &str) -> String {
    let host = base.trim_start_matches("https://");
    let script = format!(
        "openssl s_client -connect {host} -servername 127.0.0.1 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("openssl s_client");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn file_fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl x509");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn concurrent_uses_get_a_link_once_and_a_renewed_certificate_is_served() {
    let dir = tempdir();
    let (setup, base) = invite_setup("invite-race", &dir).await;
    let client = crate::support::ControlPlane::shared().client().await;
    let invites: Api<SipUserInvite> = Api::namespaced(client, &setup.ns.name);
    setup.apply_user("erin", "", "");
    setup.registrar_synced("erin", "True").await;

    // Eight requests at once for one link: exactly one shows the settings.
    setup.apply(&invite_yaml("erin-race", "erin", ""));
    let url = issued(&invites, "erin-race").await;
    let settings = format!("{url}/settings");
    let codes: Vec<u16> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| curl_post(&settings, &[])))
            .collect();
        runs.into_iter().map(|r| r.join().expect("curl thread")).collect()
    });
    assert_eq!(
        codes.iter().filter(|c| **c == 200).count(),
        1,
        "one winner: {codes:?}"
    );
    assert!(
        codes.iter().all(|c| *c == 200 || *c == 410),
        "the others are told it is used: {codes:?}"
    );
    let status = invites
        .get("erin-race")
        .await
        .expect("invite")
        .status
        .expect("status");
    assert_eq!(
        (status.phase, status.used_for),
        (Some(InvitePhase::Used), Some(InviteUse::Viewed))
    );

    // A user with devices gets each enabled device's sign-in and QR code, not the account's,
    // and no password form (only device credentials register).
    setup.apply_user(
        "dora",
        "  devices:\n    - {name: desk}\n    - {name: spare, enabled: false}\n",
        "",
    );
    setup.registrar_synced("dora", "True").await;
    setup.apply(&invite_yaml("dora-welcome", "dora", ""));
    let dora_url = issued(&invites, "dora-welcome").await;
    let landing = curl_body(&dora_url, false);
    assert!(
        landing.contains("sign in as devices") && !landing.contains("id=\"choose-password\""),
        "{landing}"
    );
    let shown = curl_body(&format!("{dora_url}/settings"), true);
    let secret = setup
        .secrets
        .get("dora-sip-credentials")
        .await
        .expect("dora's Secret");
    let value =
        |key: &str| sip_operator::credentials::secret_value(&secret, key).unwrap_or_else(|| panic!("{key}"));
    assert!(
        shown.contains(&format!(
            "id=\"device-0-password\">{}<",
            value("devices.desk.password")
        )) && shown.contains("id=\"device-0-qr\""),
        "{shown}"
    );
    assert!(
        !shown.contains(&value("password")) && !shown.contains("device-1-"),
        "neither the account's password nor the disabled device: {shown}"
    );
    // The desk phone's scanner code: Linphone fetches its document from the URL over HTTPS
    // (trusting the page's certificate) and registers as dora#desk.
    let marker =
        "id=\"device-0-scanner-qr\" alt=\"QR code with the address of your phone's settings\" src=\"";
    let src = shown
        .split_once(marker)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(src, _)| src)
        .unwrap_or_else(|| panic!("the desk phone's scanner code: {shown}"));
    let desk_url = decode_qr(&dir, &png_of_data_url(src)).trim_end().to_string();
    assert!(
        desk_url.starts_with(&format!("{base}/provision/")) && desk_url.ends_with("/desk"),
        "{desk_url}"
    );
    let account_url = desk_url.trim_end_matches("/desk");
    assert_eq!(
        curl_get(&format!("{account_url}/spare")).0,
        404,
        "a disabled device's document is not served"
    );
    assert_eq!(
        curl_get(account_url).0,
        404,
        "nor the account's while devices are listed"
    );
    let link_token = dora_url.rsplit('/').next().expect("token");
    assert_eq!(
        curl_get(&format!("{base}/provision/{link_token}")).0,
        404,
        "the link's own token is not a provisioning token"
    );
    let mut desk = crate::linphone::Linphone::start_from_url("dora-desk", &desk_url, &dir.join("tls.crt"));
    desk.registered().await;
    eventually("dora's desk phone counted", WAIT, || async {
        let u = setup.users.get_opt("dora").await.ok().flatten()?;
        let d = u.status?.devices;
        (d.iter().find(|d| d.name == "desk")?.contacts == 1).then_some(())
    })
    .await;
    desk.stop();
    assert!(
        !desk.config().contains("config-uri=https"),
        "applied once: the saved configuration no longer names the URL:\n{}",
        desk.config()
    );

    // A link issued for a user since deleted (the invite orphaned, so it outlives it) and
    // re-created under the same name opens nothing of the new user's.
    setup.apply_user("gus", "", "");
    setup.registrar_synced("gus", "True").await;
    setup.apply(&invite_yaml("gus-old", "gus", ""));
    let gus_url = issued(&invites, "gus-old").await;
    let orphan = kube::api::DeleteParams {
        propagation_policy: Some(kube::api::PropagationPolicy::Orphan),
        ..Default::default()
    };
    setup.users.delete("gus", &orphan).await.expect("delete gus");
    eventually("gus to be gone", WAIT, || async {
        setup.users.get_opt("gus").await.ok()?.is_none().then_some(())
    })
    .await;
    setup
        .secrets
        .delete("gus-sip-credentials", &Default::default())
        .await
        .expect("delete gus's orphaned Secret");
    eventually("gus's Secret to be gone", WAIT, || async {
        setup
            .secrets
            .get_opt("gus-sip-credentials")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    setup.apply_user("gus", "", "");
    setup.registrar_synced("gus", "True").await;
    let new_password = setup.password("gus").await;
    let (code, _) = curl_head(&gus_url);
    let shown = curl_body(&format!("{gus_url}/settings"), true);
    assert!(
        code == 404 || code == 410,
        "the old link is dead for the new gus: {code}"
    );
    assert!(
        !shown.contains(&new_password) && !shown.contains("gus@"),
        "{shown}"
    );

    // A renewed certificate (as cert-manager writes it into the mounted Secret) is served
    // without a restart.
    let before = served_fingerprint(&base);
    assert_eq!(
        before,
        file_fingerprint(&dir.join("tls.crt")),
        "the first certificate is served"
    );
    let renewed = dir.join("renewed");
    std::fs::create_dir_all(&renewed).expect("dir");
    let (cert, key) = certificate(&renewed);
    std::fs::copy(&key, dir.join("tls.key")).expect("copy key");
    std::fs::copy(&cert, dir.join("tls.crt")).expect("copy cert");
    let after = file_fingerprint(&cert);
    assert_ne!(before, after);
    eventually("the renewed certificate to be served", WAIT, || async {
        (served_fingerprint(&base) == after).then_some(())
    })
    .await;
    assert_eq!(curl_head(&format!("{base}/healthz")).0, 200, "still serving");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_unusable_certificate_stops_only_the_page_until_it_is_fixed() {
    let dir = tempdir();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, "not a certificate\n").expect("write");
    std::fs::write(&key, "not a key\n").expect("write");
    let (setup, base) = invite_setup_with("invite-badcert", &cert, &key).await;
    let client = crate::support::ControlPlane::shared().client().await;
    let invites: Api<SipUserInvite> = Api::namespaced(client, &setup.ns.name);

    // The controllers run: the user reaches the registrar and its invite gets a link.
    setup.apply_user("frank", "", "");
    setup.registrar_synced("frank", "True").await;
    setup.apply(&invite_yaml("frank-welcome", "frank", ""));
    let url = issued(&invites, "frank-welcome").await;
    // The page refuses handshakes (curl reports no HTTP status) and the log says why.
    let refused = Command::new("curl")
        .args(["-k", "-s", "-o", "/dev/null", &format!("{base}/healthz")])
        .status()
        .expect("run curl");
    // 35: the TLS handshake failed (the port is open; 7 would be a refused connection).
    assert_eq!(refused.code(), Some(35), "no TLS without a certificate");
    let log = setup.operator().log();
    assert!(
        log.contains("the TLS certificate cannot be used") && log.contains("tls.crt"),
        "{}",
        setup.operator().log_tail(20)
    );

    // A usable certificate arrives (a Secret mounted late): the page serves, the link works.
    let made = dir.join("made");
    std::fs::create_dir_all(&made).expect("dir");
    let (good_cert, good_key) = certificate(&made);
    std::fs::copy(&good_key, &key).expect("copy key");
    std::fs::copy(&good_cert, &cert).expect("copy cert");
    eventually(
        "the page to serve once the certificate is usable",
        WAIT,
        || async { (curl_head(&format!("{base}/healthz")).0 == 200).then_some(()) },
    )
    .await;
    assert_eq!(served_fingerprint(&base), file_fingerprint(&good_cert));
    assert_eq!(curl_head(&url).0, 200, "the link opens");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sip-operator-invite-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
