//! The credentials Secret: its shape, where its values come from, that it is never written over
//! someone else's Secret, and that it moves when `spec.credentials.secretName` changes.
use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;
use sip_operator::api::SipUser;
use sip_operator::keys::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, USER_ANNOTATION, USER_LABEL, user_label_value};

use crate::builders::{PROFILE, domain, secret, user};
use crate::scenario::{
    Scenario, condition, describe, has_condition, password, reasons, secret_data, secret_value,
};

/// The keys a credentials Secret holds, exactly.
const KEYS: [&str; 12] = [
    "aor",
    "domain",
    "linphone.xml",
    "password",
    "port",
    "qr.png",
    "realm",
    "registrarUri",
    "server",
    "sipUri",
    "transport",
    "username",
];

/// Asserts everything the contract says about `user`'s credentials Secret; returns it.
pub fn assert_credentials_secret(secret: &Secret, user: &SipUser, username: &str, fqdn: &str, realm: &str) {
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    assert_eq!(
        secret.type_.as_deref(),
        Some("kubernetes.io/basic-auth"),
        "Secret {name} type"
    );
    let keys: BTreeSet<String> = secret_data(secret).into_keys().collect();
    assert_eq!(
        keys,
        KEYS.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>(),
        "Secret {name} data keys"
    );
    assert_eq!(
        secret_value(secret, "username").as_deref(),
        Some(username),
        "Secret {name} username"
    );
    assert_eq!(
        secret_value(secret, "domain").as_deref(),
        Some(fqdn),
        "Secret {name} domain"
    );
    assert_eq!(
        secret_value(secret, "realm").as_deref(),
        Some(realm),
        "Secret {name} realm"
    );
    assert_eq!(
        secret_value(secret, "aor"),
        Some(format!("sip:{username}@{fqdn}")),
        "Secret {name} aor"
    );

    let labels = secret.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get(MANAGED_BY_LABEL).map(String::as_str),
        Some(MANAGED_BY_VALUE),
        "Secret {name} labels {labels:?}"
    );
    assert_eq!(
        labels.get(USER_LABEL).cloned(),
        user.metadata.name.as_deref().map(user_label_value),
        "Secret {name} labels {labels:?}"
    );

    let owners = secret.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(
        owners.len(),
        1,
        "Secret {name} has exactly one ownerReference: {owners:?}"
    );
    let owner = &owners[0];
    assert_eq!(owner.kind, "SipUser", "{owner:?}");
    assert_eq!(owner.api_version, "sipoperator.io/v1alpha1", "{owner:?}");
    assert_eq!(Some(&owner.name), user.metadata.name.as_ref(), "{owner:?}");
    assert_eq!(owner.controller, Some(true), "{owner:?}");
    assert_eq!(Some(&owner.uid), user.metadata.uid.as_ref(), "{owner:?}");
}

fn assert_alphanumeric(password: &str, len: usize) {
    assert_eq!(password.chars().count(), len, "generated password length");
    assert!(
        password.chars().all(|c| c.is_ascii_alphanumeric()),
        "generated password must be alphanumeric by default (got {} characters, some not)",
        password.len()
    );
}

#[tokio::test]
async fn generated_secret_has_the_contract_shape_and_status() {
    let sc = Scenario::new("credentials").await;
    sc.apply(&user("alice").extension("7001").aliases(&["alice-support"]))
        .await;
    sc.apply(&user("hotline").username("+4930123456")).await;

    let alice = sc.ready("alice").await;
    let status = alice.status.clone().expect("status");
    assert_eq!(status.observed_generation, alice.metadata.generation);
    assert_eq!(status.username.as_deref(), Some("alice"), "{status:?}");
    assert_eq!(
        status.profile.as_deref(),
        Some(PROFILE),
        "effective profile falls back to the domain's default"
    );
    assert_eq!(status.aor, Some(format!("sip:alice@{}", sc.fqdn)));
    assert_eq!(status.secret_name.as_deref(), Some("alice-sip-credentials"));
    assert!(
        status.password_changed_at.is_some(),
        "passwordChangedAt: {status:?}"
    );

    for type_ in [
        reasons::READY,
        reasons::RECONCILING,
        reasons::STALLED,
        reasons::CREDENTIALS_READY,
        reasons::REGISTRAR_SYNCED,
    ] {
        assert!(
            condition(&alice, type_).is_some(),
            "condition {type_} missing: {}",
            describe(&alice)
        );
    }
    for (type_, status, reason) in [
        (reasons::READY, "True", Some(reasons::READY)),
        (reasons::STALLED, "False", None),
        (reasons::RECONCILING, "False", None),
        (reasons::CREDENTIALS_READY, "True", Some(reasons::SECRET_READY)),
        (
            reasons::REGISTRAR_SYNCED,
            "Unknown",
            Some(reasons::NO_REGISTRAR_CONFIGURED),
        ),
    ] {
        let (s, r, _) = condition(&alice, type_).expect("condition");
        assert_eq!(s, status, "{type_}: {}", describe(&alice));
        if let Some(reason) = reason {
            assert_eq!(r, reason, "{type_}: {}", describe(&alice));
        }
    }
    for c in &alice.status.as_ref().expect("status").conditions {
        assert_eq!(
            c.observed_generation, alice.metadata.generation,
            "condition {} observedGeneration",
            c.type_
        );
    }

    let secret = sc.secret_appears("alice-sip-credentials").await;
    assert_credentials_secret(&secret, &alice, "alice", &sc.fqdn, &sc.fqdn);
    assert_alphanumeric(&password(&secret), 32);

    // spec.username, not metadata.name, is the SIP identity.
    let hotline = sc.ready("hotline").await;
    let hs = hotline.status.clone().expect("status");
    assert_eq!(hs.username.as_deref(), Some("+4930123456"));
    assert_eq!(hs.aor, Some(format!("sip:+4930123456@{}", sc.fqdn)));
    let secret = sc.secret_appears("hotline-sip-credentials").await;
    assert_credentials_secret(&secret, &hotline, "+4930123456", &sc.fqdn, &sc.fqdn);
    assert_ne!(
        password(&secret),
        password(&sc.secret("alice-sip-credentials").await),
        "every user gets a password of its own"
    );
}

#[tokio::test]
async fn password_policy_and_realm_come_from_the_domain() {
    let sc = Scenario::new("policy").await;
    let fqdn = sc.fqdn_for("symbols");
    let realm = format!("Realm of {fqdn}");
    sc.apply(
        &domain("symbols", &fqdn)
            .realm(&realm)
            .default_profile(PROFILE)
            .password_policy(24, "AlphanumericSymbols"),
    )
    .await;
    let names = ["u1", "u2", "u3", "u4", "u5"];
    for name in names {
        sc.apply(&user(name).domain("symbols")).await;
    }
    let mut passwords = Vec::new();
    for name in names {
        let u = sc.ready(name).await;
        let secret = sc.secret_appears(&format!("{name}-sip-credentials")).await;
        assert_credentials_secret(&secret, &u, name, &fqdn, &realm);
        let p = password(&secret);
        assert_eq!(p.chars().count(), 24, "passwordPolicy.length is honoured");
        assert!(
            p.chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\' && c != '@' && c != ':'),
            "generated passwords need no quoting in SIP or XML"
        );
        passwords.push(p);
    }
    // 120 characters from 62 letters/digits plus symbols: with symbols allowed, at least one
    // appears unless the character set is ignored (chance of none is below 1e-6).
    assert!(
        passwords
            .iter()
            .any(|p| p.chars().any(|c| !c.is_ascii_alphanumeric())),
        "characterSet AlphanumericSymbols produced no symbol in {} passwords",
        passwords.len()
    );
    let distinct: BTreeSet<&String> = passwords.iter().collect();
    assert_eq!(distinct.len(), passwords.len(), "passwords repeat");
}

#[tokio::test]
async fn a_secret_the_operator_does_not_own_is_refused_and_left_untouched() {
    let sc = Scenario::new("notowned").await;
    sc.apply(&secret("mallory-sip-credentials").string("password", "someone-elses-value"))
        .await;
    let before = sc.secret("mallory-sip-credentials").await;

    let mallory = user("mallory").extension("7009");
    sc.apply(&mallory).await;
    let message = sc.stalled("mallory", reasons::SECRET_NOT_OWNED).await;
    assert!(
        message.contains("mallory-sip-credentials"),
        "the message names the Secret: {message}"
    );
    let u = sc.user("mallory").await;
    assert!(
        has_condition(&u, reasons::CREDENTIALS_READY, "False", reasons::SECRET_NOT_OWNED),
        "a credentials failure shows in CredentialsReady: {}",
        describe(&u)
    );

    // More reconciles (a spec change) still leave the foreign Secret alone.
    sc.apply(&mallory.clone().display_name("Mallory")).await;
    sc.settled("mallory").await;
    sc.stalled("mallory", reasons::SECRET_NOT_OWNED).await;
    let after = sc.secret("mallory-sip-credentials").await;
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "the foreign Secret was written to"
    );
    assert_eq!(secret_data(&after), secret_data(&before));
    assert_eq!(after.type_, before.type_);
    assert_eq!(after.metadata.labels, before.metadata.labels);
    assert_eq!(after.metadata.owner_references, before.metadata.owner_references);

    // Once the foreign Secret is gone the user heals by itself.
    sc.delete::<Secret>("mallory-sip-credentials").await;
    let u = sc.ready("mallory").await;
    let secret = sc
        .wait_secret("mallory-sip-credentials", "owned by the SipUser", |s| {
            s.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| !o.is_empty())
        })
        .await;
    assert_credentials_secret(&secret, &u, "mallory", &sc.fqdn, &sc.fqdn);
    assert_ne!(password(&secret), "someone-elses-value");
}

#[tokio::test]
async fn changing_secret_name_moves_the_credentials() {
    let sc = Scenario::new("secretname").await;
    let dave = user("dave").secret_name("dave-phone");
    sc.apply(&dave).await;
    let u = sc.ready("dave").await;
    assert_eq!(
        u.status.as_ref().and_then(|s| s.secret_name.as_deref()),
        Some("dave-phone")
    );
    let first = sc.secret_appears("dave-phone").await;
    assert_credentials_secret(&first, &u, "dave", &sc.fqdn, &sc.fqdn);
    assert!(
        sc.try_secret("dave-sip-credentials").await.is_none(),
        "no Secret under the default name"
    );
    let pw = password(&first);

    sc.apply(&dave.clone().secret_name("dave-softphone")).await;
    let u = sc
        .wait_user("dave", "status.secretName == dave-softphone and Ready", |u| {
            u.status.as_ref().and_then(|s| s.secret_name.as_deref()) == Some("dave-softphone")
                && has_condition(u, reasons::READY, "True", reasons::READY)
        })
        .await;
    let moved = sc.secret_appears("dave-softphone").await;
    assert_credentials_secret(&moved, &u, "dave", &sc.fqdn, &sc.fqdn);
    assert_eq!(password(&moved), pw, "moving the Secret keeps the password");
    sc.secret_gone("dave-phone", crate::scenario::WAIT).await;
}

#[tokio::test]
async fn every_name_the_api_server_accepts_gets_credentials() {
    let sc = Scenario::new("longnames").await;
    // 63 fits a label; 64 does not; 238 makes `<name>-sip-credentials` longer than 253.
    let names: Vec<String> = [63, 64, 238, 253]
        .iter()
        .map(|n| format!("{}{}", "u".repeat(n - 2), n % 10 * 11))
        .collect();
    for name in &names {
        sc.apply(&user(name)).await;
    }
    for name in &names {
        let u = sc.ready(name).await;
        let secret_name = u
            .status
            .as_ref()
            .and_then(|s| s.secret_name.clone())
            .expect("status.secretName");
        assert!(secret_name.len() <= 253, "{secret_name}");
        let out = sc.secret(&secret_name).await;
        assert_credentials_secret(&out, &u, name, &sc.fqdn, &sc.fqdn);
        let label = out
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(USER_LABEL))
            .cloned();
        let annotation = out
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(USER_ANNOTATION))
            .cloned();
        if name.len() <= 63 {
            assert_eq!(
                label.as_deref(),
                Some(name.as_str()),
                "a short name is the label as is"
            );
        } else {
            assert!(label.is_some_and(|l| l.len() <= 63), "the label fits");
            assert_eq!(
                annotation.as_deref(),
                Some(name.as_str()),
                "the full name is annotated"
            );
        }
    }
}

#[tokio::test]
async fn a_secret_the_api_server_refuses_shows_in_status_and_heals() {
    let sc = Scenario::new("quota").await;
    // No Secret may be created in the namespace: the API server refuses the credentials
    // Secret (403, exceeded quota) — the user must say so instead of retrying in silence.
    let quota = serde_json::json!({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "no-secrets"},
        "spec": {"hard": {"count/secrets": "0"}},
    });
    let applied = crate::support::ControlPlane::shared()
        .kubectl()
        .run_in(sc.namespace(), &["apply", "-f", "-"])
        .output_with_stdin(&quota.to_string());
    assert!(applied.success, "{}", applied.stderr);
    // The test control plane runs no quota controller: write the usage it would compute.
    crate::support::ControlPlane::shared()
        .kubectl()
        .run_in(
            sc.namespace(),
            &[
                "patch",
                "resourcequota",
                "no-secrets",
                "--subresource=status",
                "--type=merge",
                "-p",
            ],
        )
        .arg(r#"{"status":{"hard":{"count/secrets":"0"},"used":{"count/secrets":"0"}}}"#)
        .ok();
    sc.apply(&user("quota-bound")).await;
    let message = sc.stalled("quota-bound", reasons::SECRET_REJECTED).await;
    assert!(
        message.contains("quota") && message.contains("quota-bound-sip-credentials"),
        "the message carries the API server's answer and names the Secret: {message}"
    );
    let u = sc.user("quota-bound").await;
    assert!(
        has_condition(&u, reasons::CREDENTIALS_READY, "False", reasons::SECRET_REJECTED),
        "{}",
        describe(&u)
    );

    crate::support::ControlPlane::shared()
        .kubectl()
        .run_in(sc.namespace(), &["delete", "resourcequota", "no-secrets"])
        .ok();
    sc.ready("quota-bound").await;
    sc.secret_appears("quota-bound-sip-credentials").await;
}
