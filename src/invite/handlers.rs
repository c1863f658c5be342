//! The invite page's routes: the landing page of a link, "show my settings", "choose my
//! password", and for a short while after a link's use the phone's provisioning document (the
//! URL the settings page's scanner QR code holds). Links are found in the watched [`Index`] by
//! their token's hash; the one write that marks a link used decides, across replicas, which
//! request gets it.
//!
//! Nothing here logs a path, a token or a password: the access log (see [`access_log`]) names
//! the method, the status and the time taken only.
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::events::{Event, EventType};
use kube::{Client, Resource, ResourceExt};

use super::claim::{self, ClaimError};
use super::index::Index;
use super::pages::{self, Dead, Landing};
use super::policy;
use super::settings;
use super::token::Token;
use crate::api::{InviteUse, SipDomain, SipUser, SipUserInvite};
use crate::controller::EventSink;
use crate::credentials::{self, Password};

/// What the handlers share.
#[derive(Clone)]
pub struct Page {
    pub client: Client,
    pub index: Arc<Index>,
    pub events: EventSink,
    /// The page's public base URL (`--invite-url`), for the provisioning URLs the settings
    /// page puts in its scanner QR codes; `None`: no such codes.
    pub base_url: Option<String>,
}

/// Largest form body accepted (two passwords of at most 128 characters, encoded).
const MAX_BODY: usize = 8 * 1024;

/// The page's routes, with the security headers and the access log on every answer.
pub fn router(page: Page) -> Router {
    Router::new()
        .route("/invite/{token}", get(landing))
        .route("/invite/{token}/settings", post(show_settings))
        .route("/invite/{token}/password", post(choose_password))
        .route("/provision/{token}", get(provision_account))
        .route("/provision/{token}/{device}", get(provision_device))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { dead(Dead::NotValid) })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(access_log))
        .with_state(page)
}

/// One line per request, without its path (which holds the token).
async fn access_log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        target: "sip_operator::invite::access",
        %method,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "invite page request"
    );
    response
}

/// No caching (a settings page holds a password), no referrer (the URL holds the token), no
/// script, no framing, and HTTPS only from now on (the page is only ever served over TLS).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A page answering instead of the one asked for (boxed: a Response is large).
type Refusal = Box<Response>;

fn dead(why: Dead) -> Response {
    let code = match why {
        Dead::NotValid => StatusCode::NOT_FOUND,
        Dead::Used | Dead::Expired => StatusCode::GONE,
    };
    (code, Html(pages::dead(why))).into_response()
}

fn failure(code: StatusCode, text: &str) -> Response {
    (code, Html(pages::failure(text))).into_response()
}

/// The live invite a link names, or the page saying why it does not work.
fn find(page: &Page, token: &str) -> Result<(Token, Arc<SipUserInvite>), Refusal> {
    if !page.index.listed() {
        return Err(Box::new(failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "The page is starting. Try again in a moment.",
        )));
    }
    let token = Token::parse(token).ok_or_else(|| Box::new(dead(Dead::NotValid)))?;
    let invite = page
        .index
        .by_token_hash(&token.hash())
        .ok_or_else(|| Box::new(dead(Dead::NotValid)))?;
    match claim::dead_reason(&invite, Timestamp::now()) {
        Some(why) => Err(Box::new(dead(why))),
        None => Ok((token, invite)),
    }
}

/// The invite's user, domain and credentials Secret, read now (not cached: a page is opened
/// rarely, and it must show the current password).
struct Account {
    user: SipUser,
    domain: Option<SipDomain>,
    secret: Option<Secret>,
}

async fn account(page: &Page, invite: &SipUserInvite) -> Result<Account, Refusal> {
    let ns = invite.namespace().unwrap_or_default();
    let unavailable = |what: &str, e: kube::Error| {
        tracing::warn!(invite = %format!("{ns}/{}", invite.name_any()), error = %e, "invite page: reading the {what} failed");
        Box::new(failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "Your account could not be read just now. Try again in a minute; the link still works.",
        ))
    };
    let users: Api<SipUser> = Api::namespaced(page.client.clone(), &ns);
    let user = users
        .get_opt(&invite.spec.user_ref)
        .await
        .map_err(|e| unavailable("SipUser", e))?
        // The user is gone (its invites go with it): the link names nothing any more.
        .ok_or_else(|| Box::new(dead(Dead::NotValid)))?;
    if !issued_for(invite, &user) {
        // Deleted and re-created with the same name: another user, whose account this link
        // must not show.
        return Err(Box::new(dead(Dead::NotValid)));
    }
    let domains: Api<SipDomain> = Api::namespaced(page.client.clone(), &ns);
    let domain = domains
        .get_opt(&user.spec.domain_ref)
        .await
        .map_err(|e| unavailable("SipDomain", e))?;
    let secret_name = user
        .status
        .as_ref()
        .and_then(|s| s.secret_name.clone())
        .unwrap_or_else(|| user.secret_name());
    let secrets: Api<Secret> = Api::namespaced(page.client.clone(), &ns);
    let secret = secrets
        .get_opt(&secret_name)
        .await
        .map_err(|e| unavailable("credentials Secret", e))?
        .filter(|s| {
            user.uid()
                .is_some_and(|uid| credentials::is_controlled_by(s, &uid))
        });
    Ok(Account { user, domain, secret })
}

/// Whether `user` is the one the invite's link was issued for (its uid recorded at issue; an
/// invite issued before that was recorded names its user by name only).
fn issued_for(invite: &SipUserInvite, user: &SipUser) -> bool {
    match invite.status.as_ref().and_then(|s| s.user_uid.as_deref()) {
        Some(uid) => user.uid().as_deref() == Some(uid),
        None => true,
    }
}

/// Why this account's password cannot be chosen on the page, if it cannot.
fn password_refusal(invite: &SipUserInvite, account: &Account) -> Option<&'static str> {
    if !invite.spec.allow_password_change {
        return Some("Choosing a password is not offered with this invite.");
    }
    if !account.user.spec.devices.is_empty() {
        return Some(
            "Your phones sign in as devices, each with its own username and password (shown with your settings), \
             so the account's own password is not used by any phone and is not offered here.",
        );
    }
    if account.user.spec.credentials.password_secret_ref.is_some() {
        return Some(
            "This account's password is managed by your administrator (it comes from a Secret the operator does not own), so it cannot be changed here.",
        );
    }
    if account.secret.is_none() {
        return Some("This account has no password to change yet. Ask your administrator.");
    }
    None
}

fn landing_page(token: &Token, invite: &SipUserInvite, account: &Account, refusal: Option<&str>) -> String {
    let path = format!("/invite/{}", token.expose());
    let account_name = account
        .user
        .status
        .as_ref()
        .and_then(|s| s.aor.as_deref())
        .map(|aor| aor.trim_start_matches("sip:").to_string())
        .unwrap_or_else(|| account.user.username().to_string());
    let policy = account
        .domain
        .as_ref()
        .map(|d| d.spec.password_policy.clone())
        .unwrap_or_default();
    pages::landing(&Landing {
        path: &path,
        display_name: account.user.spec.display_name.as_deref(),
        account: &account_name,
        password: match password_refusal(invite, account) {
            Some(why) => Err(why.to_string()),
            None => Ok(policy::describe(&policy)),
        },
        refusal,
    })
}

/// The link's token, its invite and the account behind it: what every page of a link starts
/// from (or the page saying why not).
async fn opened(page: &Page, token: &str) -> Result<(Token, Arc<SipUserInvite>, Account), Refusal> {
    let (token, invite) = find(page, token)?;
    let account = account(page, &invite).await?;
    Ok((token, invite, account))
}

async fn landing(State(page): State<Page>, Path(token): Path<String>) -> Response {
    let (token, invite, account) = match opened(&page, &token).await {
        Ok(opened) => opened,
        Err(response) => return *response,
    };
    Html(landing_page(&token, &invite, &account, None)).into_response()
}

/// Runs `work` in a task of its own and waits for it. A handler's future is dropped when the
/// client goes away (a closed tab, a double click) or the connection reaches its deadline; the
/// writes of a link's use (the claim, the password request, their Events) must then still
/// happen together, never a used link without the password it was used for.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, Refusal>> + Send + 'static,
) -> Result<T, Refusal> {
    match tokio::spawn(work).await {
        Ok(done) => done,
        Err(e) => {
            tracing::warn!(error = %e, "invite page: a request's task failed");
            Err(Box::new(failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong on our side. Try again in a minute.",
            )))
        }
    }
}

/// Marks the link used (minting its provisioning token in the same write), records it (Event)
/// and returns the provisioning token (`None` if the stored status does not hold its hash), or
/// the page saying why the link is not ours any more.
async fn use_link(page: &Page, invite: &SipUserInvite, usage: InviteUse) -> Result<Option<Token>, Refusal> {
    let provisioning = Token::generate().map_err(|e| {
        tracing::warn!(error = %e, "invite page: no random bytes for a provisioning token");
        Box::new(failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "The link could not be used just now. Try again in a minute; it still works.",
        ))
    })?;
    match claim::claim(&page.client, invite, usage, &provisioning).await {
        Ok(stored) => {
            page.index.observe(stored.clone());
            let note = match usage {
                InviteUse::Viewed => "the link was used: the end user viewed the account's settings",
                InviteUse::PasswordSet => "the link was used: the end user chose a new password",
            };
            let event = Event {
                type_: EventType::Normal,
                reason: crate::controller::reasons::invite::USED.into(),
                note: Some(note.into()),
                action: "Use".into(),
                secondary: None,
            };
            if let Err(err) = page.events.publish(&event, &stored.object_ref(&())).await {
                tracing::warn!(%err, "invite page: could not publish the Used event");
            }
            // A CRD older than the page drops the field: no code whose URL would never work.
            let kept = stored
                .status
                .as_ref()
                .and_then(|s| s.provisioning_token_hash.as_deref())
                == Some(provisioning.hash().as_str());
            if !kept {
                tracing::warn!(invite = %invite.name_any(), "invite page: the API server did not keep status.provisioningTokenHash (apply the current CRDs); no scanner code shown");
            }
            Ok(kept.then_some(provisioning))
        }
        Err(ClaimError::Lost(why)) => Err(Box::new(dead(why))),
        Err(e @ (ClaimError::Api(_) | ClaimError::Contended)) => {
            tracing::warn!(invite = %invite.name_any(), error = %e, "invite page: marking the link used failed");
            Err(Box::new(failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "The link could not be used just now. Try again in a minute; it still works.",
            )))
        }
    }
}

async fn show_settings(State(page): State<Page>, Path(token): Path<String>) -> Response {
    let (_, invite, account) = match opened(&page, &token).await {
        Ok(opened) => opened,
        Err(response) => return *response,
    };
    let Some(secret) = account.secret.as_ref() else {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "Your account's settings are not ready yet. Try again later; the link still works.",
        );
    };
    let devices = &account.user.spec.devices;
    // With devices only their credentials register: each enabled one's, not the account's.
    let enabled: Vec<&str> = devices
        .iter()
        .filter(|d| d.enabled)
        .map(|d| d.name.as_str())
        .collect();
    let mut device_settings = settings::devices_from_secret(secret, &enabled);
    if !devices.is_empty() && (enabled.is_empty() || device_settings.len() < enabled.len()) {
        // Nothing to show yet (every device disabled, or one just added): keep the link.
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "Your phones' sign-in details are not ready yet. Try again later; the link still works.",
        );
    }
    let claimed = {
        let (page, invite) = (page.clone(), invite.clone());
        detached(async move { use_link(&page, &invite, InviteUse::Viewed).await })
    };
    let provisioning = match claimed.await {
        Ok(token) => token,
        Err(response) => return *response,
    };
    let scanner = |device: Option<&str>| {
        provisioning
            .as_ref()
            .and_then(|token| scanner_code(&page, token, device))
    };
    if devices.is_empty() {
        return Html(pages::settings(
            &settings::from_secret(secret, None),
            settings::qr_code(secret).as_deref(),
            None,
            scanner(None).as_deref(),
        ))
        .into_response();
    }
    for device in &mut device_settings {
        device.scanner_png_base64 = scanner(Some(&device.name));
    }
    Html(pages::settings_with_devices(
        &settings::shared_with_devices(secret),
        None,
        None,
        None,
        &device_settings,
    ))
    .into_response()
}

/// The provisioning URL of `device` (or the account) under `provisioning`'s token.
fn provisioning_url(base: &str, provisioning: &Token, device: Option<&str>) -> String {
    let base = base.trim_end_matches('/');
    match device {
        Some(d) => format!("{base}/provision/{}/{d}", provisioning.expose()),
        None => format!("{base}/provision/{}", provisioning.expose()),
    }
}

/// A QR code (PNG, base64) of the provisioning URL, for a phone app's scanner (Linphone's
/// fetches the document from it); `None` without `--invite-url`.
fn scanner_code(page: &Page, provisioning: &Token, device: Option<&str>) -> Option<String> {
    use base64::Engine as _;
    let url = provisioning_url(page.base_url.as_deref()?, provisioning, device);
    match crate::provisioning::qr_png(&url) {
        Ok(png) => Some(base64::engine::general_purpose::STANDARD.encode(png)),
        Err(e) => {
            tracing::warn!(error = %e, "invite page: the scanner QR code could not be drawn");
            None
        }
    }
}

async fn provision_account(State(page): State<Page>, Path(token): Path<String>) -> Response {
    provision(&page, &token, None).await
}

async fn provision_device(
    State(page): State<Page>,
    Path((token, device)): Path<(String, String)>,
) -> Response {
    provision(&page, &token, Some(&device)).await
}

/// The Linphone provisioning document of the account (or of one of its enabled devices) of
/// the invite whose provisioning token this is, while [`claim::provisioning_live`]; read from
/// the credentials Secret now, so a password chosen meanwhile is in it. Marked transient: the
/// phone applies it once and does not fetch the (soon dead) URL again at each start.
async fn provision(page: &Page, token: &str, device: Option<&str>) -> Response {
    if !page.index.listed() {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "The page is starting. Try again in a moment.",
        );
    }
    let Some(invite) = Token::parse(token).and_then(|t| page.index.by_provisioning_hash(&t.hash())) else {
        return dead(Dead::NotValid);
    };
    if let Err(why) = claim::provisioning_live(&invite, Timestamp::now()) {
        return dead(why);
    }
    let account = match account(page, &invite).await {
        Ok(a) => a,
        Err(response) => return *response,
    };
    let user = &account.user.spec;
    let key = match device {
        None if user.devices.is_empty() => credentials::data_keys::LINPHONE_XML.to_string(),
        Some(d) if user.devices.iter().any(|x| x.enabled && x.name == d) => {
            credentials::data_keys::device_linphone_xml(d)
        }
        // The account's document while devices are listed, or a device that is not (enabled).
        _ => return dead(Dead::NotValid),
    };
    match account
        .secret
        .as_ref()
        .and_then(|s| credentials::secret_value(s, &key))
    {
        Some(xml) => (
            [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
            crate::provisioning::transient(&xml),
        )
            .into_response(),
        None => failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "The phone's settings are not ready yet. Try again in a moment.",
        ),
    }
}

/// The `password` and `confirmation` fields of a form body.
fn form_fields(body: &[u8]) -> (String, String) {
    let (mut password, mut confirmation) = (String::new(), String::new());
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "password" => password = v.into_owned(),
            "confirmation" => confirmation = v.into_owned(),
            _ => {}
        }
    }
    (password, confirmation)
}

async fn choose_password(State(page): State<Page>, Path(token): Path<String>, body: Bytes) -> Response {
    let (token, invite, account) = match opened(&page, &token).await {
        Ok(opened) => opened,
        Err(response) => return *response,
    };
    let refused = |code: StatusCode, why: &str| {
        (code, Html(landing_page(&token, &invite, &account, Some(why)))).into_response()
    };
    if let Some(why) = password_refusal(&invite, &account) {
        return refused(StatusCode::FORBIDDEN, why);
    }
    let (typed, confirmation) = form_fields(&body);
    let policy = account
        .domain
        .as_ref()
        .map(|d| d.spec.password_policy.clone())
        .unwrap_or_default();
    let password: Password = match policy::check(&typed, &confirmation, &policy) {
        Ok(p) => p,
        Err(refusal) => return refused(StatusCode::UNPROCESSABLE_ENTITY, &refusal.to_string()),
    };
    let Some(secret) = account.secret.as_ref() else {
        return refused(
            StatusCode::FORBIDDEN,
            "This account has no password to change yet.",
        );
    };
    let stored = {
        let (page, invite, secret, password) =
            (page.clone(), invite.clone(), secret.clone(), password.clone());
        let uid = account.user.uid().unwrap_or_default();
        detached(async move { use_for_password(&page, &invite, &uid, &secret, &password).await })
    };
    let (requested, provisioning) = match stored.await {
        Ok(stored) => stored,
        Err(response) => return *response,
    };
    let swapped = swapped_in(&page, &requested, &password).await;
    let shown = swapped.as_ref().unwrap_or(&requested);
    let note = if swapped.is_some() {
        "Your new password is in place: enter it in your phone with the settings above, or scan the code."
    } else {
        "Your new password takes effect within seconds: enter it in your phone with the settings above. \
         (The QR code is not shown here: it is being rebuilt with your new password.)"
    };
    // The scanner's document is read when the phone fetches it: only once the new password
    // is in the Secret, as for the code of the document itself.
    Html(pages::settings(
        &settings::from_secret(shown, Some(password.expose())),
        swapped.as_ref().and_then(settings::qr_code).as_deref(),
        Some(note),
        swapped
            .as_ref()
            .and(provisioning.as_ref())
            .and_then(|token| scanner_code(&page, token, None))
            .as_deref(),
    ))
    .into_response()
}

/// Marks the link used for a password and asks for `password` in the user's credentials
/// Secret; the Secret as stored with the request and the link's provisioning token, or the
/// page saying what happened (a request that cannot be saved after the link was used is told
/// to the administrator in a Warning Event on the invite).
async fn use_for_password(
    page: &Page,
    invite: &SipUserInvite,
    uid: &str,
    secret: &Secret,
    password: &Password,
) -> Result<(Secret, Option<Token>), Refusal> {
    let provisioning = use_link(page, invite, InviteUse::PasswordSet).await?;
    let why = match claim::request_with_retries(&page.client, uid, secret, password).await {
        Ok(requested) => return Ok((requested, provisioning)),
        Err(why) => why,
    };
    tracing::warn!(invite = %invite.name_any(), error = %why, "invite page: storing the chosen password failed");
    let event = Event {
        type_: EventType::Warning,
        reason: crate::controller::reasons::invite::PASSWORD_NOT_SAVED.into(),
        note: Some(format!(
            "the link was used to choose a password, but it could not be saved ({}); the previous password stays: issue a new invite",
            why.kind()
        )),
        action: "SetPassword".into(),
        secondary: None,
    };
    if let Err(err) = page.events.publish(&event, &invite.object_ref(&())).await {
        tracing::warn!(%err, "invite page: could not publish the PasswordNotSaved event");
    }
    Err(Box::new(failure(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Your password could not be saved, and this link is used up. Your administrator has been told \
         (a warning on the invite); ask them for a new invite. Your previous password still works.",
    )))
}

/// How long the page waits for the controller to swap a chosen password in, to show the QR
/// code rebuilt with it.
const SWAP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The credentials Secret once the SipUser controller has made `password` the account's (its
/// request key gone, its password the chosen one), read again for at most [`SWAP_WAIT`];
/// `None` if it has not by then (the page says it takes effect within seconds).
async fn swapped_in(page: &Page, requested: &Secret, password: &Password) -> Option<Secret> {
    let secrets: Api<Secret> =
        Api::namespaced(page.client.clone(), &requested.namespace().unwrap_or_default());
    let deadline = Instant::now() + SWAP_WAIT;
    while Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let Ok(Some(s)) = secrets.get_opt(&requested.name_any()).await else {
            continue;
        };
        let done = credentials::secret_bytes(&s, credentials::data_keys::CHOSEN_PASSWORD).is_none()
            && credentials::secret_bytes(&s, credentials::data_keys::PASSWORD)
                == Some(password.expose().as_bytes());
        if done {
            return Some(s);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(user: serde_json::Value, secret: bool) -> Account {
        Account {
            user: SipUser {
                metadata: Default::default(),
                spec: serde_json::from_value(user).expect("spec"),
                status: None,
            },
            domain: None,
            secret: secret.then(Secret::default),
        }
    }

    fn invite(allow: bool) -> SipUserInvite {
        SipUserInvite::new(
            "i",
            serde_json::from_value(serde_json::json!({"userRef": "alice", "allowPasswordChange": allow}))
                .expect("spec"),
        )
    }

    #[test]
    fn only_an_operator_owned_password_can_be_chosen_and_only_when_the_invite_allows() {
        let generated = serde_json::json!({"domainRef": "d"});
        let imported = serde_json::json!({"domainRef": "d", "credentials": {"passwordSecretRef": {"name": "s", "key": "k"}}});
        assert_eq!(
            password_refusal(&invite(true), &account(generated.clone(), true)),
            None
        );
        assert!(
            password_refusal(&invite(false), &account(generated.clone(), true))
                .is_some_and(|w| w.contains("not offered"))
        );
        assert!(
            password_refusal(&invite(true), &account(imported, true))
                .is_some_and(|w| w.contains("managed by your administrator"))
        );
        assert!(
            password_refusal(&invite(true), &account(generated, false)).is_some(),
            "no Secret yet"
        );
        let with_devices = serde_json::json!({"domainRef": "d", "devices": [{"name": "desk"}]});
        assert!(
            password_refusal(&invite(true), &account(with_devices, true))
                .is_some_and(|w| w.contains("sign in as devices"))
        );
    }

    #[test]
    fn a_link_shows_only_the_user_it_was_issued_for() {
        let mut user = account(serde_json::json!({"domainRef": "d"}), true).user;
        user.metadata.uid = Some("u-1".into());
        let mut i = invite(true);
        assert!(issued_for(&i, &user), "issued before the uid was recorded");
        i.status = Some(crate::api::SipUserInviteStatus {
            user_uid: Some("u-1".into()),
            ..Default::default()
        });
        assert!(issued_for(&i, &user));
        user.metadata.uid = Some("u-2".into());
        assert!(!issued_for(&i, &user), "re-created with the same name");
    }

    #[test]
    fn form_fields_are_decoded() {
        let (p, c) = form_fields(b"password=a%2Bb+c&confirmation=x&other=1");
        assert_eq!((p.as_str(), c.as_str()), ("a+b c", "x"));
        assert_eq!(form_fields(b""), (String::new(), String::new()));
    }
}
