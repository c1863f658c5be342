//! Events say what happened once per change — credentials created, password rotated, each new
//! stalled reason — not once per reconcile; and no password (or HA1) ever shows in the
//! operator's log, an Event or a status.
use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;

use crate::builders::{domain, profile, secret, user};
use crate::rotation::let_a_second_pass;
use crate::scenario::{
    Scenario, has_condition, namespace_events, password, reasons, secret_value, summarize_events,
};

/// The Events regarding `name` with `reason`, asserting there is exactly one and that it was
/// not repeated (a repeated publish turns into an event series).
async fn assert_one_event(sc: &Scenario, name: &str, reason: &str, type_: &str) -> Event {
    let all = sc.user_events(name).await;
    let matching: Vec<&Event> = all
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "exactly one {reason} Event regarding SipUser {name}: {}",
        summarize_events(&all)
    );
    let event = matching[0];
    assert!(
        event.series.as_ref().is_none_or(|s| s.count <= 1),
        "the {reason} Event regarding {name} was published repeatedly: {}",
        summarize_events(&all)
    );
    assert_eq!(event.type_.as_deref(), Some(type_), "{}", summarize_events(&all));
    assert!(
        event.note.as_deref().is_some_and(|n| !n.is_empty()),
        "an Event says what happened: {}",
        summarize_events(&all)
    );
    event.clone()
}

#[tokio::test]
async fn events_record_credentials_rotation_and_each_new_stall_once() {
    let sc = Scenario::empty("events").await;
    let mia = user("mia").domain("later");
    sc.apply(&mia).await;
    sc.stalled("mia", reasons::DOMAIN_NOT_FOUND).await;
    sc.wait_event("mia", reasons::DOMAIN_NOT_FOUND).await;

    // More reconciles of the same stalled state publish nothing new.
    for n in 1..=3 {
        sc.apply(&mia.clone().display_name(&format!("Mia {n}"))).await;
        sc.settled("mia").await;
    }
    sc.stalled("mia", reasons::DOMAIN_NOT_FOUND).await;
    assert_one_event(&sc, "mia", reasons::DOMAIN_NOT_FOUND, "Warning").await;

    // A new stalled reason gets an Event of its own.
    sc.apply(&domain("later", &sc.fqdn).default_profile("gold")).await;
    sc.stalled("mia", reasons::PROFILE_NOT_FOUND).await;
    sc.wait_event("mia", reasons::PROFILE_NOT_FOUND).await;
    assert_one_event(&sc, "mia", reasons::PROFILE_NOT_FOUND, "Warning").await;

    // Admitted: the first password is generated.
    sc.apply(&profile("gold")).await;
    sc.ready("mia").await;
    sc.wait_event("mia", reasons::CREDENTIALS_CREATED).await;
    for n in 4..=5 {
        sc.apply(&mia.clone().display_name(&format!("Mia {n}"))).await;
        sc.settled("mia").await;
    }
    sc.ready("mia").await;
    assert_one_event(&sc, "mia", reasons::CREDENTIALS_CREATED, "Normal").await;
    assert_one_event(&sc, "mia", reasons::DOMAIN_NOT_FOUND, "Warning").await;
    assert_one_event(&sc, "mia", reasons::PROFILE_NOT_FOUND, "Warning").await;

    // Rotation.
    sc.apply(&mia.clone().display_name("Mia 5").rotate("r1")).await;
    sc.wait_event("mia", reasons::PASSWORD_ROTATED).await;
    sc.ready("mia").await;
    assert_one_event(&sc, "mia", reasons::PASSWORD_ROTATED, "Normal").await;
    assert_one_event(&sc, "mia", reasons::CREDENTIALS_CREATED, "Normal").await;

    // Every Event is about mia, regarding the SipUser.
    for e in sc.user_events("mia").await {
        let regarding = e.regarding.as_ref().expect("regarding");
        assert_eq!(regarding.api_version.as_deref(), Some("sipoperator.io/v1alpha1"));
        assert_eq!(regarding.namespace.as_deref(), Some(sc.namespace()));
    }
}

/// A value no log line contains by chance.
fn random_token(prefix: &str) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{prefix}{:016x}Zq", h.finish())
}

/// MD5 HA1 = MD5(username:realm:password), hex, as a registrar would receive it.
fn ha1_md5(username: &str, realm: &str, password: &str) -> String {
    use md5::Digest;
    let digest = md5::Md5::digest(format!("{username}:{realm}:{password}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn no_password_or_ha1_in_logs_events_or_status() {
    let sc = Scenario::new("secrecy").await;
    let mut secrets_seen: BTreeSet<String> = BTreeSet::new();

    // Generated, then rotated.
    sc.apply(&user("alpha").extension("7001")).await;
    let alpha = sc.ready("alpha").await;
    let first = password(&sc.secret_appears("alpha-sip-credentials").await);
    secrets_seen.insert(first.clone());
    let t = alpha
        .status
        .as_ref()
        .and_then(|s| s.password_changed_at.clone())
        .expect("passwordChangedAt");
    let_a_second_pass(&t).await;
    sc.apply(&user("alpha").extension("7001").rotate("r1")).await;
    let rotated = sc
        .wait_secret("alpha-sip-credentials", "rotated", |s| {
            secret_value(s, "password").as_deref() != Some(first.as_str())
        })
        .await;
    secrets_seen.insert(password(&rotated));

    // Imported, then the source changes.
    let v1 = random_token("Imp1");
    let v2 = random_token("Imp2");
    secrets_seen.insert(v1.clone());
    secrets_seen.insert(v2.clone());
    sc.apply(&secret("beta-source").string("password", &v1)).await;
    sc.apply(&user("beta").import("beta-source", "password")).await;
    sc.ready("beta").await;
    sc.wait_secret("beta-sip-credentials", "imported", |s| {
        secret_value(s, "password").as_deref() == Some(v1.as_str())
    })
    .await;
    sc.apply(&secret("beta-source").string("password", &v2)).await;
    sc.wait_secret("beta-sip-credentials", "re-imported", |s| {
        secret_value(s, "password").as_deref() == Some(v2.as_str())
    })
    .await;

    // Stalled: an invalid source key next to a real value, and a name clash.
    let v3 = random_token("Imp3");
    secrets_seen.insert(v3.clone());
    sc.apply(&secret("gamma-source").string("not-the-key", &v3)).await;
    sc.apply(&user("gamma").import("gamma-source", "password")).await;
    sc.stalled("gamma", reasons::PASSWORD_SOURCE_INVALID).await;
    sc.apply(&user("delta").username("alpha")).await;
    sc.stalled("delta", reasons::USERNAME_CONFLICT).await;

    // Suspended, then its Secret is deleted and regenerated.
    sc.apply(&user("epsilon").enabled(false)).await;
    sc.ready_as("epsilon", reasons::SUSPENDED).await;
    let old = sc.secret_appears("epsilon-sip-credentials").await;
    secrets_seen.insert(password(&old));
    sc.delete::<Secret>("epsilon-sip-credentials").await;
    let new = sc
        .wait_secret("epsilon-sip-credentials", "regenerated", |s| {
            s.metadata.uid != old.metadata.uid
        })
        .await;
    secrets_seen.insert(password(&new));
    sc.ready_as("epsilon", reasons::SUSPENDED).await;
    sc.wait_event("alpha", reasons::PASSWORD_ROTATED).await;

    // Every password any Secret of the namespace holds now, and their HA1s.
    let mut ha1s = BTreeSet::new();
    for s in sc
        .secrets()
        .list(&Default::default())
        .await
        .expect("list secrets")
        .items
    {
        for (key, value) in crate::scenario::secret_data(&s) {
            let value = String::from_utf8_lossy(&value).into_owned();
            if key == "password" || key == "not-the-key" {
                secrets_seen.insert(value);
            }
        }
        if let (Some(u), Some(r), Some(p)) = (
            secret_value(&s, "username"),
            secret_value(&s, "realm"),
            secret_value(&s, "password"),
        ) {
            ha1s.insert(ha1_md5(&u, &r, &p));
        }
    }
    secrets_seen.retain(|p| !p.is_empty());
    assert!(
        secrets_seen.len() >= 7,
        "the scenario saw its passwords: {} of them",
        secrets_seen.len()
    );
    assert!(
        secrets_seen.iter().all(|p| p.len() >= 16),
        "every password is long enough to search for"
    );
    assert!(ha1s.len() >= 3, "HA1s computed: {}", ha1s.len());

    let log = sc.operator.log();
    assert!(!log.trim().is_empty(), "the operator logged nothing at all");
    let events = namespace_events(&sc).await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some(reasons::PASSWORD_ROTATED)),
        "the scenario produced events: {}",
        summarize_events(&events)
    );
    let events_json = serde_json::to_string(&events).expect("events to JSON");
    let users_json = serde_json::to_string(
        &sc.users()
            .list(&Default::default())
            .await
            .expect("list users")
            .items,
    )
    .expect("users to JSON");
    let statuses_json = format!(
        "{}{}",
        serde_json::to_string(&sc.domains().list(&Default::default()).await.expect("list").items)
            .expect("json"),
        serde_json::to_string(&sc.profiles().list(&Default::default()).await.expect("list").items)
            .expect("json"),
    );
    let gamma = sc.user("gamma").await;
    assert!(has_condition(
        &gamma,
        reasons::STALLED,
        "True",
        reasons::PASSWORD_SOURCE_INVALID
    ));

    for (what, text) in [
        ("the operator log", log.as_str()),
        ("an Event", events_json.as_str()),
        ("a SipUser", users_json.as_str()),
        ("a SipDomain/SipProfile", statuses_json.as_str()),
    ] {
        for (n, secret) in secrets_seen.iter().enumerate() {
            if let Some(at) = text.find(secret.as_str()) {
                let line = text[..at].rsplit('\n').next().unwrap_or_default();
                let before: String = line
                    .chars()
                    .rev()
                    .take(200)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                panic!(
                    "password #{n} ({} characters) appears in {what}, after: {before:?}",
                    secret.len()
                );
            }
        }
        for ha1 in &ha1s {
            assert!(!text.contains(ha1.as_str()), "an HA1 appears in {what}");
        }
    }
}
