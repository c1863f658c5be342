//! Imported passwords (`spec.credentials.passwordSecretRef`): copied into the credentials
//! Secret, followed when the source changes, and refused with a clear condition when the
//! source is missing, lacks the key or holds an empty value.
use crate::builders::{secret, user};
use crate::credentials::assert_credentials_secret;
use crate::scenario::{Scenario, describe, has_condition, is_current, password, reasons};

#[tokio::test]
async fn imported_password_is_copied_and_follows_the_source() {
    let sc = Scenario::new("import").await;
    let first = format!("imported-{}-One", sc.namespace());
    sc.apply(&secret("carol-password").string("password", &first))
        .await;
    sc.apply(
        &user("carol")
            .extension("7003")
            .import("carol-password", "password")
            .secret_name("carol-sip-account"),
    )
    .await;

    let carol = sc.ready("carol").await;
    let out = sc.secret_appears("carol-sip-account").await;
    assert_credentials_secret(&out, &carol, "carol", &sc.fqdn, &sc.fqdn);
    assert_eq!(password(&out), first, "the imported value is copied as is");
    let changed_at = carol.status.as_ref().and_then(|s| s.password_changed_at.clone());
    assert!(changed_at.is_some(), "{:?}", carol.status);

    // The source changes: the credentials follow without touching the SipUser.
    let second = format!("imported-{}-Two", sc.namespace());
    sc.apply(&secret("carol-password").string("password", &second))
        .await;
    sc.wait_secret("carol-sip-account", "password == the new imported value", |s| {
        crate::scenario::secret_value(s, "password").as_deref() == Some(second.as_str())
    })
    .await;
    let carol = sc
        .wait_user("carol", "passwordChangedAt set again and Ready", |u| {
            has_condition(u, reasons::READY, "True", reasons::READY)
                && u.status.as_ref().and_then(|s| s.password_changed_at.clone()) >= changed_at
        })
        .await;
    assert!(
        has_condition(&carol, reasons::CREDENTIALS_READY, "True", reasons::SECRET_READY),
        "{}",
        describe(&carol)
    );
    let out = sc.secret("carol-sip-account").await;
    assert_credentials_secret(&out, &carol, "carol", &sc.fqdn, &sc.fqdn);
}

#[tokio::test]
async fn invalid_password_sources_stall_naming_secret_and_key_then_heal() {
    let sc = Scenario::new("badsource").await;
    // Three broken sources: missing Secret, missing key, empty value.
    sc.apply(&secret("has-other-key").string("not-it", "whatever-Value-1"))
        .await;
    sc.apply(&secret("has-empty-value").string("password", "")).await;
    sc.apply(&user("nosecret").import("absent-secret", "password"))
        .await;
    sc.apply(&user("nokey").import("has-other-key", "password")).await;
    sc.apply(&user("emptyvalue").import("has-empty-value", "password"))
        .await;

    for (name, secret_name, key) in [
        ("nosecret", "absent-secret", "password"),
        ("nokey", "has-other-key", "password"),
        ("emptyvalue", "has-empty-value", "password"),
    ] {
        let message = sc.stalled(name, reasons::PASSWORD_SOURCE_INVALID).await;
        assert!(
            message.contains(secret_name) && message.contains(key),
            "the message of {name} names Secret {secret_name} and key {key}: {message}"
        );
        let u = sc.user(name).await;
        assert!(
            has_condition(
                &u,
                reasons::CREDENTIALS_READY,
                "False",
                reasons::PASSWORD_SOURCE_INVALID
            ),
            "a credentials failure shows in CredentialsReady: {}",
            describe(&u)
        );
        if let Some(out) = sc.try_secret(&format!("{name}-sip-credentials")).await {
            let pw = crate::scenario::secret_value(&out, "password").unwrap_or_default();
            assert!(
                !pw.is_empty(),
                "{name}: a credentials Secret without a password was written"
            );
        }
    }

    // Fix each source; every user heals by itself and carries the imported value.
    let values = [
        ("nosecret", "absent-secret", "Fixed-Value-absent-1"),
        ("nokey", "has-other-key", "Fixed-Value-key-2"),
        ("emptyvalue", "has-empty-value", "Fixed-Value-empty-3"),
    ];
    for (_, secret_name, value) in values {
        sc.apply(&secret(secret_name).string("password", value)).await;
    }
    for (name, _, value) in values {
        let u = sc
            .wait_user(name, "Ready after its source was fixed", |u| {
                is_current(u) && has_condition(u, reasons::READY, "True", reasons::READY)
            })
            .await;
        let out = sc
            .wait_secret(
                &format!("{name}-sip-credentials"),
                "holds the imported value",
                |s| crate::scenario::secret_value(s, "password").as_deref() == Some(value),
            )
            .await;
        assert_credentials_secret(&out, &u, name, &sc.fqdn, &sc.fqdn);
    }
}

#[tokio::test]
async fn a_password_that_is_not_text_is_refused_never_altered() {
    let sc = Scenario::new("binarypw").await;
    // ff fe 00 61 62 63 80: not UTF-8. And a value with the newline `echo` leaves.
    for (name, base64) in [
        ("binary-source", "//4AYWJjgA=="),
        ("newline-source", "c2VjcmV0LVZhbHVlLTEK"),
    ] {
        sc.apply(&serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name},
            "data": {"password": base64},
        }))
        .await;
    }
    sc.apply(&user("binary").import("binary-source", "password"))
        .await;
    sc.apply(&user("newline").import("newline-source", "password"))
        .await;

    let message = sc.stalled("binary", reasons::PASSWORD_SOURCE_INVALID).await;
    assert!(
        message.contains("binary-source") && message.contains("not UTF-8"),
        "{message}"
    );
    let message = sc.stalled("newline", reasons::PASSWORD_SOURCE_INVALID).await;
    assert!(
        message.contains("newline-source")
            && message.contains("U+000A")
            && !message.contains("secret-Value-1"),
        "names the character, never the value: {message}"
    );
    for name in ["binary", "newline"] {
        assert!(
            sc.try_secret(&format!("{name}-sip-credentials")).await.is_none(),
            "{name}: no credentials Secret with an altered password"
        );
    }

    // The source fixed: the exact value arrives.
    sc.apply(&secret("binary-source").string("password", "Fixed-Välue-1"))
        .await;
    sc.ready("binary").await;
    let out = sc.secret_appears("binary-sip-credentials").await;
    assert_eq!(password(&out), "Fixed-Välue-1");
}
