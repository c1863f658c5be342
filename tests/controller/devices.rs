//! Devices: each entry of `spec.devices` gets credentials of its own in the user's Secret
//! (`devices.<name>.username` = `<username>#<name>`, `devices.<name>.password`), generated
//! once, rotated alone by `sipoperator.io/rotate.<name>`, kept while the device is disabled
//! and removed with it; `status.devices` reports each one. A user without devices keeps
//! exactly today's Secret. The API server refuses bad and duplicate device names.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use sip_operator::api::{DeviceStatus, SipUser};

use crate::builders::{Manifest, secret, user};
use crate::scenario::{
    Scenario, TEST_MANAGER, condition, has_condition, is_current, password, reasons, secret_data,
    secret_value, summarize_events,
};
use crate::support::audit::{AuditEvent, AuditLog};
use crate::support::kubectl::table_by_header;

/// The keys of a credentials Secret that every user's has, devices or not.
const ACCOUNT_KEYS: [&str; 10] = [
    "aor",
    "domain",
    "password",
    "port",
    "realm",
    "registrarUri",
    "server",
    "sipUri",
    "transport",
    "username",
];

const DEVICE_CREATED: &str = "DeviceCredentialsCreated";
const DEVICE_ROTATED: &str = "DeviceCredentialsRotated";

fn devices(names: &[&str]) -> serde_json::Value {
    json!(names.iter().map(|n| json!({ "name": n })).collect::<Vec<_>>())
}

fn device<'a>(u: &'a SipUser, name: &str) -> Option<&'a DeviceStatus> {
    u.status.as_ref()?.devices.iter().find(|d| d.name == name)
}

fn device_names(u: &SipUser) -> Vec<String> {
    u.status
        .as_ref()
        .map(|s| s.devices.iter().map(|d| d.name.clone()).collect())
        .unwrap_or_default()
}

fn keys(secret: &Secret) -> BTreeSet<String> {
    secret_data(secret).into_keys().collect()
}

/// The account keys plus the four keys of each device in `names`; without devices, the
/// account's own provisioning document and QR code.
fn expected_keys(names: &[&str]) -> BTreeSet<String> {
    let own: &[&str] = if names.is_empty() {
        &["linphone.xml", "qr.png"]
    } else {
        &[]
    };
    ACCOUNT_KEYS
        .iter()
        .chain(own)
        .map(|k| k.to_string())
        .chain(names.iter().flat_map(|n| {
            ["username", "password", "linphone.xml", "qr.png"].map(|k| format!("devices.{n}.{k}"))
        }))
        .collect()
}

fn device_password(secret: &Secret, name: &str) -> String {
    secret_value(secret, &format!("devices.{name}.password"))
        .unwrap_or_else(|| panic!("no password of device {name}: keys {:?}", keys(secret)))
}

/// Every data entry but `except`'s keys.
fn data_without(secret: &Secret, except: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let mut data = secret_data(secret);
    data.retain(|k, _| !except.iter().any(|d| k.starts_with(&format!("devices.{d}."))));
    data
}

/// Waits until the operator made no write in the namespace for three seconds; returns its
/// writes to Secret `name` since `audit`'s mark.
pub async fn secret_writes_until_quiet(sc: &Scenario, audit: &mut AuditLog, name: &str) -> Vec<String> {
    let state = Mutex::new((audit, Instant::now(), Vec::<String>::new()));
    let state = &state;
    let ns = sc.namespace();
    sc.until(
        "the operator to stop writing (3 s without a write)",
        Duration::from_secs(60),
        || async move {
            let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
            let (audit, since, secret_writes) = &mut *guard;
            let new: Vec<AuditEvent> = audit
                .read_new()
                .into_iter()
                .filter(|e| e.is_operator_write_in(ns))
                .collect();
            if !new.is_empty() {
                *since = Instant::now();
                secret_writes.extend(
                    new.iter()
                        .filter(|e| {
                            e.object_ref
                                .as_ref()
                                .is_some_and(|o| o.resource == "secrets" && o.name.as_deref() == Some(name))
                        })
                        .map(AuditEvent::summary),
                );
                return Err(format!("writing; Secret writes so far {secret_writes:?}"));
            }
            if since.elapsed() >= Duration::from_secs(3) {
                Ok(secret_writes.clone())
            } else {
                Err(format!("quiet for {:?}", since.elapsed()))
            }
        },
    )
    .await
}

#[tokio::test]
async fn each_device_gets_credentials_of_its_own_and_a_user_without_devices_keeps_todays_secret() {
    let sc = Scenario::new("devices").await;
    sc.apply(
        &user("alice")
            .extension("7001")
            .aliases(&["alice-support"])
            .devices(devices(&["deskphone", "softphone"])),
    )
    .await;
    sc.apply(&user("bob")).await;

    let alice = sc
        .wait_user("alice", "Ready with both devices in status", |u| {
            is_current(u)
                && has_condition(u, reasons::READY, "True", reasons::READY)
                && device_names(u) == ["deskphone", "softphone"]
        })
        .await;
    let secret = sc.secret_appears("alice-sip-credentials").await;
    assert_eq!(keys(&secret), expected_keys(&["deskphone", "softphone"]));
    for name in ["deskphone", "softphone"] {
        assert_eq!(
            secret_value(&secret, &format!("devices.{name}.username")),
            Some(format!("alice#{name}")),
            "the device's digest username"
        );
        let p = device_password(&secret, name);
        assert_eq!(p.chars().count(), 32, "the domain's password policy");
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
        let d = device(&alice, name).expect("device status");
        assert_eq!(d.auth_username, format!("alice#{name}"));
        assert!(d.enabled, "enabled by default");
        assert_eq!(d.contacts, 0);
        assert!(d.password_changed_at.is_some(), "{d:?}");
        assert_eq!(d.last_handled_rotation, None);
    }
    let all = [
        password(&secret),
        device_password(&secret, "deskphone"),
        device_password(&secret, "softphone"),
    ];
    assert_eq!(
        all.iter().collect::<BTreeSet<_>>().len(),
        3,
        "every device and the account have a password of their own"
    );
    assert_eq!(secret_value(&secret, "username").as_deref(), Some("alice"));
    let (_, _, message) = condition(&alice, reasons::CREDENTIALS_READY).expect("CredentialsReady");
    assert!(message.contains("devices.<name>.password"), "{message}");

    // One Event per device, naming it and the Secret, never a password.
    let created = sc
        .until(
            "two DeviceCredentialsCreated Events",
            crate::scenario::WAIT,
            || async {
                let events: Vec<_> = sc
                    .user_events("alice")
                    .await
                    .into_iter()
                    .filter(|e| e.reason.as_deref() == Some(DEVICE_CREATED))
                    .collect();
                if events.len() >= 2 {
                    Ok(events)
                } else {
                    Err(summarize_events(&events))
                }
            },
        )
        .await;
    assert_eq!(created.len(), 2, "{}", summarize_events(&created));
    for name in ["deskphone", "softphone"] {
        assert!(
            created.iter().any(|e| e
                .note
                .as_deref()
                .is_some_and(|n| n.contains(name) && n.contains("alice-sip-credentials"))),
            "an Event names {name}: {}",
            summarize_events(&created)
        );
    }
    for event in sc.user_events("alice").await {
        let note = event.note.unwrap_or_default();
        for p in &all {
            assert!(!note.contains(p.as_str()), "an Event shows a password: {note}");
        }
    }

    // A user without devices: exactly today's keys and no device status.
    let bob = sc.ready("bob").await;
    let bob_secret = sc.secret_appears("bob-sip-credentials").await;
    assert_eq!(keys(&bob_secret), expected_keys(&[]));
    assert!(device_names(&bob).is_empty());
    let raw = sc
        .ns
        .kubectl(&["get", "sipuser", "bob", "-o", "jsonpath={.status}"])
        .ok();
    let raw: serde_json::Value = serde_json::from_str(&raw).expect("status as JSON");
    assert!(raw.get("devices").is_none(), "no devices in bob's status: {raw}");

    // `kubectl get` fits a terminal; `-o wide` adds the devices and aliases.
    let plain = table_by_header(&sc.ns.kubectl(&["get", "sipusers"]).ok());
    assert!(
        plain
            .iter()
            .all(|r| !r.contains_key("DEVICES") && !r.contains_key("ALIASES")),
        "{plain:?}"
    );
    let wide = table_by_header(&sc.ns.kubectl(&["get", "sipusers", "-o", "wide"]).ok());
    let row = wide
        .iter()
        .find(|r| r.get("NAME").map(String::as_str) == Some("alice"))
        .unwrap_or_else(|| panic!("no row for alice: {wide:?}"));
    // The API server's table prints the first value of a list path.
    assert_eq!(
        row.get("DEVICES").map(String::as_str),
        Some("deskphone"),
        "{row:?}"
    );
    let listed = sc
        .ns
        .kubectl(&[
            "get",
            "sipuser",
            "alice",
            "-o",
            "jsonpath={.spec.devices[*].name}",
        ])
        .ok();
    assert_eq!(listed.trim(), "deskphone softphone");
    assert!(
        row.get("ALIASES").is_some_and(|a| a.contains("alice-support")),
        "{row:?}"
    );

    // kubectl explain documents the field from a user's point of view.
    let explain = |what: &str| sc.ns.kubectl(&["explain", what]).ok();
    let spec = explain("sipuser.spec.devices");
    for want in [
        "<username>#<name>",
        "devices.<name>.password",
        "rings every registered device",
    ] {
        assert!(
            spec.contains(want),
            "explain sipuser.spec.devices lacks {want:?}:\n{spec}"
        );
    }
    let name = explain("sipuser.spec.devices.name");
    assert!(
        name.contains("sipoperator.io/rotate.<name>") && name.contains("never imported"),
        "{name}"
    );
    let enabled = explain("sipuser.spec.devices.enabled");
    assert!(enabled.contains("revokes"), "{enabled}");
    let status = explain("sipuser.status.devices");
    assert!(
        status.contains("authUsername") && status.contains("lastHandledRotation"),
        "{status}"
    );
    let lines = explain("sipuser.status.registration.lines");
    assert!(lines.contains("alias"), "{lines}");
}

#[tokio::test]
async fn rotating_one_device_changes_only_its_password_in_one_write() {
    let sc = Scenario::new("devrotate").await;
    let carla = user("carla").devices(devices(&["deskphone", "softphone"]));
    sc.apply(&carla).await;
    sc.wait_user("carla", "Ready with both devices", |u| {
        is_current(u)
            && has_condition(u, reasons::READY, "True", reasons::READY)
            && device_names(u).len() == 2
    })
    .await;
    let name = "carla-sip-credentials";
    let before = sc.secret_appears(name).await;
    let before_changed = sc.user("carla").await;
    let t0 = device(&before_changed, "softphone")
        .and_then(|d| d.password_changed_at.clone())
        .expect("passwordChangedAt");
    crate::rotation::let_a_second_pass(&t0).await;

    let mut audit = AuditLog::mark();
    sc.apply(&carla.clone().rotate_device("softphone", "2026-12-01"))
        .await;
    let u = sc
        .wait_user("carla", "softphone's lastHandledRotation == 2026-12-01", |u| {
            is_current(u)
                && device(u, "softphone").and_then(|d| d.last_handled_rotation.as_deref())
                    == Some("2026-12-01")
        })
        .await;
    let writes = secret_writes_until_quiet(&sc, &mut audit, name).await;
    assert_eq!(writes.len(), 1, "one Secret write for the rotation: {writes:?}");
    let after = sc.secret(name).await;
    assert_ne!(
        after.metadata.resource_version, before.metadata.resource_version,
        "the Secret was written"
    );
    assert_ne!(
        device_password(&after, "softphone"),
        device_password(&before, "softphone"),
        "the rotated device has a new password"
    );
    assert_eq!(
        data_without(&after, &["softphone"]),
        data_without(&before, &["softphone"]),
        "the other device's and the account's keys are byte-identical"
    );
    assert_eq!(
        secret_value(&after, "devices.softphone.username").as_deref(),
        Some("carla#softphone")
    );
    let soft = device(&u, "softphone").expect("softphone");
    assert!(
        soft.password_changed_at.as_ref().is_some_and(|t| *t > t0),
        "passwordChangedAt moved: {soft:?}"
    );
    assert_eq!(
        device(&u, "deskphone").and_then(|d| d.password_changed_at.clone()),
        device(&before_changed, "deskphone").and_then(|d| d.password_changed_at.clone()),
        "the other device's passwordChangedAt did not move"
    );
    assert_eq!(
        u.status.as_ref().and_then(|s| s.password_changed_at.clone()),
        before_changed
            .status
            .as_ref()
            .and_then(|s| s.password_changed_at.clone()),
        "the account's passwordChangedAt did not move"
    );
    let rotated = sc.wait_event("carla", DEVICE_ROTATED).await;
    assert_eq!(rotated.len(), 1, "{}", summarize_events(&rotated));
    assert!(
        rotated[0]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("softphone") && !n.contains(&device_password(&after, "softphone"))),
        "{}",
        summarize_events(&rotated)
    );
    let account_rotations = sc
        .user_events("carla")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reasons::PASSWORD_ROTATED))
        .count();
    assert_eq!(account_rotations, 0, "the account's password was not rotated");

    // The same value again (another spec change, one the Secret does not show) does not
    // rotate again.
    let rv = after.metadata.resource_version.clone();
    sc.apply(
        &carla
            .clone()
            .rotate_device("softphone", "2026-12-01")
            .extension("7123"),
    )
    .await;
    sc.settled("carla").await;
    let writes = secret_writes_until_quiet(&sc, &mut audit, name).await;
    assert!(writes.is_empty(), "no Secret write: {writes:?}");
    assert_eq!(sc.secret(name).await.metadata.resource_version, rv);
}

#[tokio::test]
async fn disabling_keeps_a_devices_keys_and_removing_it_removes_them() {
    let sc = Scenario::new("devremove").await;
    let both = json!([{ "name": "deskphone" }, { "name": "softphone" }]);
    sc.apply(&user("dora").devices(both)).await;
    sc.wait_user("dora", "Ready with both devices", |u| {
        is_current(u)
            && has_condition(u, reasons::READY, "True", reasons::READY)
            && device_names(u).len() == 2
    })
    .await;
    let name = "dora-sip-credentials";
    let original = sc.secret_appears(name).await;

    // Disabled: the keys stay (the Secret is not even written), the status says so.
    let mut audit = AuditLog::mark();
    let disabled = json!([{ "name": "deskphone" }, { "name": "softphone", "enabled": false }]);
    sc.apply(&user("dora").devices(disabled)).await;
    sc.wait_user("dora", "softphone disabled in status", |u| {
        is_current(u)
            && has_condition(u, reasons::READY, "True", reasons::READY)
            && device(u, "softphone").is_some_and(|d| !d.enabled)
    })
    .await;
    let writes = secret_writes_until_quiet(&sc, &mut audit, name).await;
    assert!(writes.is_empty(), "disabling writes no Secret: {writes:?}");
    let kept = sc.secret(name).await;
    assert_eq!(secret_data(&kept), secret_data(&original), "byte-identical");

    // Removed: its two keys go, in one write; everything else stays byte-identical.
    let only_soft = json!([{ "name": "softphone", "enabled": false }]);
    sc.apply(&user("dora").devices(only_soft)).await;
    let removed = sc
        .wait_secret(name, "without deskphone's keys", |s| {
            keys(s) == expected_keys(&["softphone"])
        })
        .await;
    assert_eq!(
        data_without(&removed, &[]),
        data_without(&original, &["deskphone"])
    );
    sc.wait_user("dora", "only softphone in status", |u| {
        is_current(u) && device_names(u) == ["softphone"]
    })
    .await;
    let writes = secret_writes_until_quiet(&sc, &mut audit, name).await;
    assert_eq!(writes.len(), 1, "one Secret write for the removal: {writes:?}");

    // Added again: a new password (the old one was revoked for good).
    let again = json!([{ "name": "softphone", "enabled": false }, { "name": "deskphone" }]);
    sc.apply(&user("dora").devices(again)).await;
    let readded = sc
        .wait_secret(name, "deskphone's keys back", |s| {
            keys(s) == expected_keys(&["deskphone", "softphone"])
        })
        .await;
    assert_ne!(
        device_password(&readded, "deskphone"),
        device_password(&original, "deskphone"),
        "a re-added device gets a new password"
    );

    // No devices any more: exactly the account's keys, its password unchanged throughout.
    sc.apply(&user("dora")).await;
    let plain = sc
        .wait_secret(name, "the account's keys only", |s| keys(s) == expected_keys(&[]))
        .await;
    assert_eq!(password(&plain), password(&original));
    // The account's own document and QR code are back; the rest is as it was.
    let mut plain_data = data_without(&plain, &[]);
    plain_data.retain(|k, _| k != "linphone.xml" && k != "qr.png");
    assert_eq!(plain_data, data_without(&original, &["deskphone", "softphone"]));
    let u = sc
        .wait_user("dora", "no device status", |u| {
            is_current(u) && device_names(u).is_empty()
        })
        .await;
    assert!(has_condition(&u, reasons::READY, "True", reasons::READY));
}

#[tokio::test]
async fn an_imported_password_is_the_accounts_only() {
    let sc = Scenario::new("devimport").await;
    sc.apply(&secret("erik-password").string("pw", "Imported-Passw0rd-for-erik"))
        .await;
    sc.apply(
        &user("erik")
            .import("erik-password", "pw")
            .devices(devices(&["mobile"])),
    )
    .await;
    sc.wait_user("erik", "Ready with its device", |u| {
        is_current(u)
            && has_condition(u, reasons::READY, "True", reasons::READY)
            && device_names(u) == ["mobile"]
    })
    .await;
    let s = sc.secret_appears("erik-sip-credentials").await;
    assert_eq!(password(&s), "Imported-Passw0rd-for-erik");
    let mobile = device_password(&s, "mobile");
    assert_eq!(mobile.chars().count(), 32, "generated, not imported");
    assert_ne!(mobile, password(&s));
}

#[tokio::test]
async fn the_api_server_refuses_bad_and_duplicate_device_names() {
    let sc = Scenario::empty("devrefused").await;
    let api = sc.users();
    let refusal = |result: Result<SipUser, kube::Error>| match result {
        Ok(_) => None,
        Err(kube::Error::Api(status)) => Some(*status),
        Err(other) => panic!("unexpected error: {other}"),
    };
    let with_devices = |name: &str, devices: serde_json::Value| {
        let manifest = user(name).devices(devices).manifest();
        serde_json::from_value::<SipUser>(manifest).expect("a SipUser")
    };
    let create = |u: SipUser| {
        let api = api.clone();
        async move { api.create(&PostParams::default(), &u).await }
    };

    for (bad, field) in [
        ("Desk_Phone", "spec.devices[0].name"),
        ("desk.phone", "spec.devices[0].name"),
        ("-desk", "spec.devices[0].name"),
    ] {
        let status = refusal(create(with_devices("bad", json!([{ "name": bad }]))).await)
            .unwrap_or_else(|| panic!("device name {bad:?} was accepted"));
        assert!(
            status.is_invalid() && status.message.contains(field),
            "{bad:?}: {}",
            status.message
        );
    }
    let long = "a".repeat(33);
    let status = refusal(create(with_devices("long", json!([{ "name": long }]))).await)
        .expect("a 33-character name is refused");
    assert!(
        status.message.contains("spec.devices[0].name"),
        "{}",
        status.message
    );
    let status = refusal(
        create(with_devices(
            "desc",
            json!([{ "name": "desk", "description": "line one\nline two" }]),
        ))
        .await,
    )
    .expect("a description with a newline is refused");
    assert!(
        status.message.contains("spec.devices[0].description"),
        "{}",
        status.message
    );
    let seventeen: Vec<String> = (0..17).map(|i| format!("d{i}")).collect();
    let status = refusal(
        create(with_devices(
            "many",
            devices(&seventeen.iter().map(String::as_str).collect::<Vec<_>>()),
        ))
        .await,
    )
    .expect("17 devices are refused");
    assert!(status.message.contains("spec.devices"), "{}", status.message);

    // A duplicate name: refused by a create, and by a server-side apply.
    let duplicate = json!([{ "name": "desk" }, { "name": "desk", "enabled": false }]);
    let status = refusal(create(with_devices("dup", duplicate.clone())).await)
        .expect("a duplicate device name is refused");
    assert!(
        status.message.contains("spec.devices[1]") && status.message.contains("Duplicate"),
        "{}",
        status.message
    );
    let applied = api
        .patch(
            "dup",
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(&user("dup").devices(duplicate).manifest()),
        )
        .await;
    let status = refusal(applied).expect("a duplicate device name is refused by an apply");
    assert!(
        status.message.contains("desk") && status.message.to_lowercase().contains("duplicate"),
        "{}",
        status.message
    );

    // Still valid: no devices, and devices merged by name under server-side apply.
    sc.apply(&user("merge").devices(devices(&["desk"]))).await;
    let other = json!({
        "apiVersion": "sipoperator.io/v1alpha1",
        "kind": "SipUser",
        "metadata": { "name": "merge" },
        "spec": { "domainRef": "acme", "devices": [{ "name": "mobile" }] },
    });
    api.patch(
        "merge",
        &PatchParams::apply("another-team").force(),
        &Patch::Apply(&other),
    )
    .await
    .expect("a second manager adds a device");
    let merged = api.get("merge").await.expect("get merge");
    let names: Vec<&str> = merged.spec.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["desk", "mobile"], "merged by name, not replaced");
}
