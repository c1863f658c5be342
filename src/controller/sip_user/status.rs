//! The SipUser status as the operator wants it, pure: conditions from the step outcomes, and
//! the fields that carry over from the previous status.
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::credentials::{DeviceOutcome, Outcome, PasswordChange};
use crate::api::{
    DeviceSpec, DeviceStatus, RegistrationStatus, SecurityStatus, SipUserStatus, device_auth_username,
};
use crate::controller::admission::Verdict;
use crate::controller::status::conditions::{self, Status, Want};
use crate::controller::status::reasons::{self, types};
use crate::registrar::UserFailures;
use crate::registrar_state::SyncError;
use crate::registrar_state::registration_view::security;

/// Where the user stands with the registrar.
#[derive(Debug)]
pub enum RegistrarState {
    /// The domain names no registrar: credentials only.
    NotConfigured,
    /// The user is suspended and not held by the registrar.
    Suspended,
    /// The user is not admitted and not held by the registrar.
    NotAdmitted,
    /// Every endpoint holds the user.
    Synced { endpoints: usize },
    /// Some endpoint could not be brought in line; retried with backoff.
    Failed(SyncError),
    /// The credentials step failed for now (the API server did not answer): the registrar is
    /// left as it is, never emptied because a Secret could not be read.
    AwaitingCredentials,
    /// The SipDomain `domain` is Stalled because its `spec.registrar` cannot work as written
    /// (`message` is its Stalled message); not retried until the domain changes.
    DomainInvalid { domain: String, message: String },
}

impl RegistrarState {
    /// The user's Stalled reason and message when its registrar state needs a person.
    fn stalled(&self) -> Option<(&'static str, String)> {
        match self {
            RegistrarState::DomainInvalid { domain, message } => {
                Some((reasons::DOMAIN_REGISTRAR_INVALID, domain_invalid(domain, message)))
            }
            _ => None,
        }
    }
}

/// What a user of a domain whose registrar settings cannot work is told: what is wrong, from
/// the domain, and that nothing is needed on the user itself.
fn domain_invalid(domain: &str, message: &str) -> String {
    format!(
        "SipDomain {domain}: {message}; the user is pushed to the registrar once the SipDomain's spec.registrar is fixed"
    )
}

/// What the steps of one reconcile found.
#[derive(Debug)]
pub struct Facts<'a> {
    pub generation: Option<i64>,
    pub enabled: bool,
    pub username: &'a str,
    /// The effective profile, if any.
    pub profile: Option<&'a str>,
    /// `sip:user@domain` when the domain is known.
    pub aor: Option<String>,
    pub verdict: &'a Verdict,
    /// `None` when the user is not admitted (the step did not run).
    pub credentials: Option<&'a Outcome>,
    pub registrar: RegistrarState,
    /// Live registrations as last read from the registrar; `None` when it was not read yet.
    pub registration: Option<RegistrationStatus>,
    /// The devices in `spec.devices`.
    pub devices: &'a [DeviceSpec],
    /// Registered contacts per device name, read with `registration` (`None` with it).
    pub device_contacts: Option<BTreeMap<String, i32>>,
    /// Of those, the ones registered with the device's previous password (devices with any).
    pub device_previous_contacts: Option<BTreeMap<String, i32>>,
    /// The user's failed authentications, read with `registration`: `None` when not read,
    /// `Some(None)` when the registrar reports none.
    pub failures: Option<Option<UserFailures>>,
}

/// The Stalled reason and message, if the user is stalled.
pub fn stalled(facts: &Facts<'_>) -> Option<(&'static str, String)> {
    match (facts.verdict, facts.credentials) {
        (Verdict::Stalled { reason, message }, _) => Some((reason, message.clone())),
        (Verdict::Admitted, Some(Outcome::Problem { reason, message })) => Some((reason, message.clone())),
        (
            Verdict::Admitted,
            Some(Outcome::Ready {
                grace_problem: Some(message),
                ..
            }),
        ) => Some((reasons::ROTATION_GRACE_PERIOD_INVALID, message.clone())),
        _ => facts.registrar.stalled(),
    }
}

fn wanted(facts: &Facts<'_>, previous: Option<&RegistrationStatus>, devices: &[DeviceStatus]) -> Vec<Want> {
    let credentials = match facts.credentials {
        Some(Outcome::Ready { secret_name, .. }) if !devices.is_empty() => Want::new(
            types::CREDENTIALS_READY,
            Status::True,
            reasons::SECRET_READY,
            format!(
                "the passwords are in Secret {secret_name}: each device's under devices.<name>.username and devices.<name>.password \
                 (the account's own username and password, kept there, do not register while devices are listed)"
            ),
        ),
        Some(Outcome::Ready { secret_name, .. }) => Want::new(
            types::CREDENTIALS_READY,
            Status::True,
            reasons::SECRET_READY,
            format!("the password is in Secret {secret_name} (keys username, password, domain, realm, aor)"),
        ),
        Some(Outcome::Problem { reason, message }) => {
            Want::new(types::CREDENTIALS_READY, Status::False, reason, message.clone())
        }
        Some(Outcome::Failed { message }) => Want::new(
            types::CREDENTIALS_READY,
            Status::False,
            reasons::SECRET_WRITE_FAILED,
            message.clone(),
        ),
        None => Want::new(
            types::CREDENTIALS_READY,
            Status::Unknown,
            reasons::NOT_ADMITTED,
            "credentials are written once the user is admitted; see the Stalled condition",
        ),
    };
    let registrar = match &facts.registrar {
        RegistrarState::NotConfigured => Want::new(
            types::REGISTRAR_SYNCED,
            Status::Unknown,
            reasons::NO_REGISTRAR_CONFIGURED,
            "the SipDomain names no registrar (spec.registrar); only the credentials Secret is managed",
        ),
        RegistrarState::Suspended => Want::new(
            types::REGISTRAR_SYNCED,
            Status::False,
            reasons::SUSPENDED,
            "the user is suspended (spec.enabled: false) and is not pushed to the registrar",
        ),
        RegistrarState::NotAdmitted => Want::new(
            types::REGISTRAR_SYNCED,
            Status::Unknown,
            reasons::NOT_ADMITTED,
            "the user is pushed to the registrar once it is admitted; see the Stalled condition",
        ),
        RegistrarState::Synced { endpoints } => Want::new(
            types::REGISTRAR_SYNCED,
            Status::True,
            reasons::SYNCED,
            format!("the registrar holds the user on {endpoints} endpoint(s)"),
        ),
        RegistrarState::Failed(error) => Want::new(
            types::REGISTRAR_SYNCED,
            Status::False,
            reasons::REGISTRAR_UNREACHABLE,
            format!("{error}; retrying with backoff"),
        ),
        RegistrarState::DomainInvalid { domain, message } => Want::new(
            types::REGISTRAR_SYNCED,
            Status::False,
            reasons::DOMAIN_REGISTRAR_INVALID,
            domain_invalid(domain, message),
        ),
        RegistrarState::AwaitingCredentials => Want::new(
            types::REGISTRAR_SYNCED,
            Status::Unknown,
            reasons::SECRET_WRITE_FAILED,
            "the registrar is left as it was until the credentials step succeeds; see the CredentialsReady condition",
        ),
    };

    // Work in progress that may pass by itself: not Ready, Reconciling, not Stalled.
    let progressing = |reason: &'static str, message: &'static str| {
        (
            Want::new(types::READY, Status::False, reason, message),
            Want::new(types::STALLED, Status::False, reasons::NOT_STALLED, ""),
            Want::new(types::RECONCILING, Status::True, reason, message),
        )
    };
    let (ready, stalled, reconciling) = match stalled(facts) {
        Some((reason, message)) => (
            Want::new(types::READY, Status::False, reason, message.clone()),
            Want::new(types::STALLED, Status::True, reason, message),
            Want::new(types::RECONCILING, Status::False, reasons::NOT_RECONCILING, ""),
        ),
        None if matches!(facts.credentials, Some(Outcome::Failed { .. })) => progressing(
            reasons::SECRET_WRITE_FAILED,
            "the credentials Secret could not be written yet; see the CredentialsReady condition",
        ),
        None if matches!(facts.registrar, RegistrarState::Failed(_)) => progressing(
            reasons::REGISTRAR_UNREACHABLE,
            "waiting for the registrar to take the user; see the RegistrarSynced condition",
        ),
        None => {
            let aor = facts.aor.clone().unwrap_or_default();
            let ready = if facts.enabled {
                Want::new(
                    types::READY,
                    Status::True,
                    reasons::READY,
                    format!("{aor} is provisioned"),
                )
            } else {
                Want::new(
                    types::READY,
                    Status::True,
                    reasons::SUSPENDED,
                    format!(
                        "{aor} is suspended (spec.enabled: false): its Secret is kept, it is not pushed to the registrar"
                    ),
                )
            };
            (
                ready,
                Want::new(types::STALLED, Status::False, reasons::NOT_STALLED, ""),
                Want::new(types::RECONCILING, Status::False, reasons::NOT_RECONCILING, ""),
            )
        }
    };
    vec![
        ready,
        reconciling,
        stalled,
        credentials,
        registrar,
        registered(facts, previous, devices),
    ]
}

/// The `Registered` message for a user with registered contacts: how many, and for a user
/// with devices or registered alias lines, which of them.
fn registered_message(r: &RegistrationStatus, devices: &[DeviceStatus]) -> String {
    let mut message = format!("{} device(s) registered", r.contacts);
    if !devices.is_empty() {
        let on: Vec<&str> = devices
            .iter()
            .filter(|d| d.contacts > 0)
            .map(|d| d.name.as_str())
            .collect();
        message.push_str(&format!("; {} of {} devices", on.len(), devices.len()));
        if !on.is_empty() {
            message.push_str(&format!(" ({})", on.join(", ")));
        }
    }
    if !r.lines.is_empty() {
        let lines: Vec<&str> = r.lines.iter().map(|l| l.alias.as_str()).collect();
        message.push_str(&format!("; alias lines registered: {}", lines.join(", ")));
    }
    message
}

/// The informational `Registered` condition.
fn registered(facts: &Facts<'_>, previous: Option<&RegistrationStatus>, devices: &[DeviceStatus]) -> Want {
    // Not read this time: the last reading stands, for the condition as for the field.
    match (&facts.registrar, facts.registration.as_ref().or(previous)) {
        (RegistrarState::NotConfigured, _) => Want::new(
            types::REGISTERED,
            Status::Unknown,
            reasons::NO_REGISTRAR_CONFIGURED,
            "the SipDomain names no registrar, so registrations are not known",
        ),
        (_, None) => Want::new(
            types::REGISTERED,
            Status::Unknown,
            reasons::REGISTRATIONS_NOT_READ,
            "the registrar's registrations have not been read yet (once per check interval)",
        ),
        (_, Some(r)) if r.contacts > 0 => Want::new(
            types::REGISTERED,
            Status::True,
            reasons::DEVICES_REGISTERED,
            registered_message(r, devices),
        ),
        (_, Some(_)) => Want::new(
            types::REGISTERED,
            Status::False,
            reasons::NO_DEVICES_REGISTERED,
            "no device is registered",
        ),
    }
}

/// The status to store. Fields the reconcile did not learn anew carry over from `previous`.
pub fn build(facts: &Facts<'_>, previous: Option<&SipUserStatus>, now: &Time) -> SipUserStatus {
    let previous = previous.cloned().unwrap_or_default();
    let (secret_name, changed, handled_rotation) = match facts.credentials {
        Some(Outcome::Ready {
            secret_name,
            change,
            handled_rotation,
            ..
        }) => (
            Some(secret_name.clone()),
            change.is_some(),
            handled_rotation
                .clone()
                .or(previous.last_handled_rotation.clone()),
        ),
        _ => (
            previous.secret_name.clone(),
            false,
            previous.last_handled_rotation.clone(),
        ),
    };
    let password_changed_at = if changed || (secret_name.is_some() && previous.password_changed_at.is_none())
    {
        Some(now.clone())
    } else {
        previous.password_changed_at.clone()
    };
    let devices = devices(facts, &previous.devices, now);
    // With devices listed the account's own password does not register: its deadline
    // would only mislead (each device shows its own).
    let previous_password_valid_until = match facts.credentials {
        _ if !facts.devices.is_empty() => None,
        Some(Outcome::Ready {
            previous_valid_until, ..
        }) => deadline(*previous_valid_until),
        _ => previous
            .previous_password_valid_until
            .clone()
            .filter(|t| t.0 > now.0),
    };
    SipUserStatus {
        observed_generation: facts.generation,
        conditions: conditions::merge(
            &previous.conditions,
            &wanted(facts, previous.registration.as_ref(), &devices),
            facts.generation,
            now,
        ),
        username: Some(facts.username.to_string()),
        profile: facts.profile.map(str::to_string),
        aor: facts.aor.clone().or(previous.aor),
        secret_name,
        password_changed_at,
        last_handled_rotation: handled_rotation,
        previous_password_valid_until,
        registration: match facts.registrar {
            RegistrarState::NotConfigured => None,
            _ => facts.registration.clone().or(previous.registration),
        },
        devices,
        security: match facts.failures.as_ref() {
            Some(failures) => security(previous.security.as_ref(), failures.as_ref()),
            None => previous.security,
        },
    }
}

/// The Warning Event's note when the user's failures reach `threshold` from below (once per
/// crossing: not again while they stay at or above it), naming the count and the last source.
pub fn auth_failure_event(
    previous: Option<&SecurityStatus>,
    now: Option<&SecurityStatus>,
    threshold: u64,
) -> Option<String> {
    let threshold = i64::try_from(threshold).unwrap_or(i64::MAX).max(1);
    let before = previous.map_or(0, |s| s.failures);
    let now = now?;
    if before >= threshold || now.failures < threshold {
        return None;
    }
    let source = now.last_failure_source.as_deref().unwrap_or("an unknown address");
    Some(format!(
        "{} failed authentications in the registrar's window (threshold {threshold}), the last from {source}",
        now.failures
    ))
}

/// `status.devices`: one entry per listed device. Its password's history comes from the
/// credentials step (carried over when it did not run), its contacts from the registrations
/// read with `facts.registration` (the last reading stands when there was none).
fn devices(facts: &Facts<'_>, previous: &[DeviceStatus], now: &Time) -> Vec<DeviceStatus> {
    let outcomes: Option<&[DeviceOutcome]> = match facts.credentials {
        Some(Outcome::Ready { devices, .. }) => Some(devices),
        _ => None,
    };
    facts
        .devices
        .iter()
        .map(|d| {
            let before = previous.iter().find(|p| p.name == d.name);
            let outcome = outcomes.and_then(|o| o.iter().find(|o| o.name == d.name));
            // As for the account: a change, or a password in place that no status recorded.
            let password_changed_at = match (outcome, before.and_then(|b| b.password_changed_at.clone())) {
                (Some(o), _) if o.change.is_some() => Some(now.clone()),
                (Some(_), None) => Some(now.clone()),
                (_, recorded) => recorded,
            };
            let contacts = match (&facts.registrar, &facts.device_contacts) {
                (RegistrarState::NotConfigured, _) => 0,
                (_, Some(read)) => read.get(&d.name).copied().unwrap_or(0),
                (_, None) => before.map_or(0, |b| b.contacts),
            };
            let previous_password_contacts = match (&facts.registrar, &facts.device_previous_contacts) {
                (RegistrarState::NotConfigured, _) => 0,
                (_, Some(read)) => read.get(&d.name).copied().unwrap_or(0),
                (_, None) => before.map_or(0, |b| b.previous_password_contacts),
            };
            let previous_password_valid_until = match outcome {
                Some(o) => deadline(o.previous_valid_until),
                None => before
                    .and_then(|b| b.previous_password_valid_until.clone())
                    .filter(|t| t.0 > now.0),
            };
            DeviceStatus {
                name: d.name.clone(),
                auth_username: device_auth_username(facts.username, &d.name),
                enabled: d.enabled,
                contacts,
                password_changed_at,
                last_handled_rotation: outcome
                    .and_then(|o| o.handled_rotation.clone())
                    .or_else(|| before.and_then(|b| b.last_handled_rotation.clone())),
                previous_password_valid_until,
                previous_password_contacts,
            }
        })
        .collect()
}

/// The grace periods' deadlines `status` records (Unix seconds), the account's and each
/// device's: a reconcile must follow each even when the credentials step does not run.
pub fn deadlines_in(status: Option<&SipUserStatus>) -> Vec<i64> {
    status
        .into_iter()
        .flat_map(|s| {
            s.previous_password_valid_until.iter().chain(
                s.devices
                    .iter()
                    .filter_map(|d| d.previous_password_valid_until.as_ref()),
            )
        })
        .map(|t| t.0.as_second())
        .collect()
}

/// A grace period's deadline (Unix seconds) as the status shows it.
fn deadline(unix: Option<i64>) -> Option<Time> {
    unix.and_then(|t| k8s_openapi::jiff::Timestamp::from_second(t).ok())
        .map(Time)
}

/// The Event reason and note for a device's password change.
pub fn device_change_event(
    change: PasswordChange,
    device: &str,
    secret_name: &str,
) -> (&'static str, String) {
    match change {
        PasswordChange::Rotated => (
            reasons::events::DEVICE_CREDENTIALS_ROTATED,
            format!(
                "rotated the password of device {device} in Secret {secret_name} (key devices.{device}.password) as the sipoperator.io/rotate.{device} annotation asked"
            ),
        ),
        // Device passwords are never imported: anything else is a first password.
        PasswordChange::Created | PasswordChange::Imported | PasswordChange::Chosen => (
            reasons::events::DEVICE_CREDENTIALS_CREATED,
            format!(
                "wrote a new password for device {device} to Secret {secret_name} (key devices.{device}.password)"
            ),
        ),
    }
}

/// The Event reason and note for a password change.
pub fn change_event(change: PasswordChange, secret_name: &str) -> (&'static str, String) {
    match change {
        PasswordChange::Created => (
            reasons::events::CREDENTIALS_CREATED,
            format!("wrote a new password to Secret {secret_name}"),
        ),
        PasswordChange::Rotated => (
            reasons::events::PASSWORD_ROTATED,
            format!(
                "rotated the password in Secret {secret_name} as the sipoperator.io/rotate annotation asked"
            ),
        ),
        PasswordChange::Imported => (
            reasons::events::PASSWORD_IMPORTED,
            format!("copied the changed imported password into Secret {secret_name}"),
        ),
        PasswordChange::Chosen => (
            reasons::events::PASSWORD_CHOSEN,
            format!(
                "the end user chose a new password on a SipUserInvite's page; it is in Secret {secret_name} and pushed to the registrar"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn now(s: i64) -> Time {
        Time(Timestamp::from_second(s).expect("time"))
    }

    fn failing(count: u64, at: i64, source: &str) -> Option<Option<UserFailures>> {
        Some(Some(UserFailures {
            count,
            last: Some(crate::registrar::LastFailure {
                at,
                source: source.into(),
            }),
        }))
    }

    #[test]
    fn a_user_without_failures_gets_no_security_status() {
        let verdict = Verdict::Admitted;
        let outcome = ready_outcome(None);
        let mut f = facts(&verdict, Some(&outcome));
        f.failures = Some(None);
        let s = build(&f, None, &now(10));
        assert_eq!(s.security, None);
        assert_eq!(build(&f, Some(&s), &now(20)), s, "nothing to write");
    }

    #[test]
    fn security_shows_failures_in_the_window_and_keeps_the_last_one_after_it() {
        let verdict = Verdict::Admitted;
        let outcome = ready_outcome(None);
        let mut f = facts(&verdict, Some(&outcome));
        f.failures = failing(4, 1_796_150_000, "127.0.0.2");
        let s = build(&f, None, &now(10));
        let security = s.security.clone().expect("security");
        assert_eq!(security.failures, 4);
        assert_eq!(security.last_failure_source.as_deref(), Some("127.0.0.2"));
        assert_eq!(security.last_failure_time, Some(now(1_796_150_000)));
        assert_eq!(build(&f, Some(&s), &now(20)), s, "unchanged: no write");

        // Not read this time: the last reading stands.
        f.failures = None;
        assert_eq!(build(&f, Some(&s), &now(30)).security, s.security);

        // The registrar forgot the user (the window and the last failure passed).
        f.failures = Some(None);
        let after = build(&f, Some(&s), &now(40));
        let after_security = after.security.clone().expect("kept");
        assert_eq!(after_security.failures, 0);
        assert_eq!(after_security.last_failure_source.as_deref(), Some("127.0.0.2"));
        assert_eq!(
            build(&f, Some(&after), &now(50)),
            after,
            "and stays so without writes"
        );
    }

    #[test]
    fn the_warning_goes_out_once_per_crossing_of_the_threshold() {
        let at = |failures: i64| SecurityStatus {
            failures,
            last_failure_time: Some(now(5)),
            last_failure_source: Some("127.0.0.2".into()),
        };
        let note = auth_failure_event(Some(&at(9)), Some(&at(10)), 10).expect("crossed");
        assert!(note.contains("10 failed authentications"), "{note}");
        assert!(note.contains("127.0.0.2"), "{note}");
        assert!(
            auth_failure_event(None, Some(&at(12)), 10).is_some(),
            "first seen above"
        );
        assert_eq!(
            auth_failure_event(Some(&at(10)), Some(&at(14)), 10),
            None,
            "stays above"
        );
        assert_eq!(auth_failure_event(Some(&at(3)), Some(&at(9)), 10), None, "below");
        assert_eq!(auth_failure_event(Some(&at(14)), None, 10), None);
        assert!(
            auth_failure_event(Some(&at(0)), Some(&at(11)), 10).is_some(),
            "again after it fell"
        );
    }

    fn ready_outcome(change: Option<PasswordChange>) -> Outcome {
        Outcome::Ready {
            previous_valid_until: None,
            grace_problem: None,
            discarded_choice: None,
            secret_name: "alice-sip-credentials".into(),
            change,
            handled_rotation: None,
            devices: Vec::new(),
        }
    }

    fn facts<'a>(verdict: &'a Verdict, credentials: Option<&'a Outcome>) -> Facts<'a> {
        Facts {
            generation: Some(3),
            enabled: true,
            username: "alice",
            profile: Some("agent"),
            aor: Some("sip:alice@acme.example.com".into()),
            verdict,
            credentials,
            registrar: RegistrarState::NotConfigured,
            registration: None,
            failures: None,
            devices: &[],
            device_contacts: None,
            device_previous_contacts: None,
        }
    }

    fn cond<'a>(s: &'a SipUserStatus, t: &str) -> (&'a str, &'a str) {
        let c = conditions::find(&s.conditions, t).expect("condition present");
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn a_provisioned_user_is_ready_without_a_registrar() {
        let outcome = ready_outcome(Some(PasswordChange::Created));
        let s = build(&facts(&Verdict::Admitted, Some(&outcome)), None, &now(10));
        assert_eq!(cond(&s, "Ready"), ("True", "Ready"));
        assert_eq!(cond(&s, "Stalled"), ("False", "NotStalled"));
        assert_eq!(cond(&s, "Reconciling"), ("False", "Reconciled"));
        assert_eq!(cond(&s, "CredentialsReady"), ("True", "SecretReady"));
        assert_eq!(cond(&s, "RegistrarSynced"), ("Unknown", "NoRegistrarConfigured"));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(s.password_changed_at, Some(now(10)));
        assert_eq!(s.secret_name.as_deref(), Some("alice-sip-credentials"));
    }

    #[test]
    fn a_second_identical_reconcile_changes_nothing() {
        let created = ready_outcome(Some(PasswordChange::Created));
        let first = build(&facts(&Verdict::Admitted, Some(&created)), None, &now(10));
        let kept = ready_outcome(None);
        let second = build(&facts(&Verdict::Admitted, Some(&kept)), Some(&first), &now(99));
        assert_eq!(first, second);
    }

    #[test]
    fn a_stalled_user_says_why_in_ready_and_stalled() {
        let verdict = Verdict::Stalled {
            reason: reasons::EXTENSION_CONFLICT,
            message: "taken by alice".into(),
        };
        let s = build(&facts(&verdict, None), None, &now(1));
        assert_eq!(cond(&s, "Ready"), ("False", reasons::EXTENSION_CONFLICT));
        assert_eq!(cond(&s, "Stalled"), ("True", reasons::EXTENSION_CONFLICT));
        assert_eq!(cond(&s, "CredentialsReady"), ("Unknown", reasons::NOT_ADMITTED));
        assert_eq!(s.password_changed_at, None);

        let problem = Outcome::Problem {
            reason: reasons::SECRET_NOT_OWNED,
            message: "not ours".into(),
        };
        let s = build(&facts(&Verdict::Admitted, Some(&problem)), None, &now(1));
        assert_eq!(cond(&s, "Stalled"), ("True", reasons::SECRET_NOT_OWNED));
        assert_eq!(cond(&s, "CredentialsReady"), ("False", reasons::SECRET_NOT_OWNED));
    }

    #[test]
    fn a_suspended_user_is_ready_and_not_pushed() {
        let outcome = ready_outcome(None);
        let mut f = facts(&Verdict::Admitted, Some(&outcome));
        f.enabled = false;
        f.registrar = RegistrarState::Suspended;
        let s = build(&f, None, &now(1));
        assert_eq!(cond(&s, "Ready"), ("True", reasons::SUSPENDED));
        assert_eq!(cond(&s, "RegistrarSynced"), ("False", reasons::SUSPENDED));
    }

    #[test]
    fn registered_reports_devices_without_touching_ready() {
        let outcome = ready_outcome(None);
        let mut f = facts(&Verdict::Admitted, Some(&outcome));
        let s = build(&f, None, &now(1));
        assert_eq!(
            cond(&s, "Registered"),
            ("Unknown", reasons::NO_REGISTRAR_CONFIGURED)
        );
        assert_eq!(s.registration, None);

        f.registrar = RegistrarState::Synced { endpoints: 1 };
        let s = build(&f, None, &now(1));
        assert_eq!(
            cond(&s, "Registered"),
            ("Unknown", reasons::REGISTRATIONS_NOT_READ)
        );

        f.registration = Some(RegistrationStatus {
            contacts: 2,
            ..Default::default()
        });
        let s = build(&f, Some(&s), &now(2));
        assert_eq!(cond(&s, "Registered"), ("True", reasons::DEVICES_REGISTERED));
        assert_eq!(s.registration.as_ref().map(|r| r.contacts), Some(2));
        assert_eq!(cond(&s, "Ready"), ("True", reasons::READY));

        // Not read this time: the last reading stands.
        f.registration = None;
        let kept = build(&f, Some(&s), &now(3));
        assert_eq!(kept.registration, s.registration);

        f.registration = Some(RegistrationStatus::default());
        let s = build(&f, Some(&s), &now(4));
        assert_eq!(cond(&s, "Registered"), ("False", reasons::NO_DEVICES_REGISTERED));
        assert_eq!(cond(&s, "Ready"), ("True", reasons::READY), "informational only");
    }

    #[test]
    fn a_secret_write_that_may_pass_is_reconciling_not_stalled() {
        let outcome = Outcome::Failed {
            message: "applying Secret ns/x: etcdserver: request timed out (500 InternalError); retrying with backoff"
                .into(),
        };
        let s = build(&facts(&Verdict::Admitted, Some(&outcome)), None, &now(1));
        assert_eq!(cond(&s, "Ready"), ("False", reasons::SECRET_WRITE_FAILED));
        assert_eq!(cond(&s, "Reconciling"), ("True", reasons::SECRET_WRITE_FAILED));
        assert_eq!(cond(&s, "Stalled"), ("False", reasons::NOT_STALLED));
        assert_eq!(
            cond(&s, "CredentialsReady"),
            ("False", reasons::SECRET_WRITE_FAILED)
        );
    }

    #[test]
    fn a_domain_registrar_that_cannot_work_stalls_the_user_but_not_its_credentials() {
        let outcome = ready_outcome(Some(PasswordChange::Created));
        let mut f = facts(&Verdict::Admitted, Some(&outcome));
        f.registrar = RegistrarState::DomainInvalid {
            domain: "acme".into(),
            message: "the registrar token Secret \"rpc\" ... does not exist; create it".into(),
        };
        let s = build(&f, None, &now(1));
        assert_eq!(cond(&s, "Stalled"), ("True", reasons::DOMAIN_REGISTRAR_INVALID));
        assert_eq!(cond(&s, "Ready"), ("False", reasons::DOMAIN_REGISTRAR_INVALID));
        assert_eq!(cond(&s, "Reconciling"), ("False", reasons::NOT_RECONCILING));
        assert_eq!(cond(&s, "CredentialsReady"), ("True", reasons::SECRET_READY));
        assert_eq!(
            cond(&s, "RegistrarSynced"),
            ("False", reasons::DOMAIN_REGISTRAR_INVALID)
        );
        let message = conditions::find(&s.conditions, "RegistrarSynced").map(|c| c.message.clone());
        assert!(
            message.as_deref().is_some_and(
                |m| m.starts_with("SipDomain acme: the registrar token") && m.contains("spec.registrar")
            ),
            "{message:?}"
        );
        assert_eq!(
            stalled(&f).map(|(r, _)| r),
            Some(reasons::DOMAIN_REGISTRAR_INVALID)
        );
        // An admission stall still comes first.
        let verdict = Verdict::Stalled {
            reason: reasons::USERNAME_CONFLICT,
            message: "taken".into(),
        };
        f.verdict = &verdict;
        assert_eq!(stalled(&f).map(|(r, _)| r), Some(reasons::USERNAME_CONFLICT));
    }

    #[test]
    fn rotation_moves_password_changed_at_and_records_the_request() {
        let created = ready_outcome(Some(PasswordChange::Created));
        let first = build(&facts(&Verdict::Admitted, Some(&created)), None, &now(10));
        let rotated = Outcome::Ready {
            previous_valid_until: None,
            grace_problem: None,
            discarded_choice: None,
            secret_name: "alice-sip-credentials".into(),
            change: Some(PasswordChange::Rotated),
            handled_rotation: Some("2026-11-23".into()),
            devices: Vec::new(),
        };
        let second = build(&facts(&Verdict::Admitted, Some(&rotated)), Some(&first), &now(20));
        assert_eq!(second.password_changed_at, Some(now(20)));
        assert_eq!(second.last_handled_rotation.as_deref(), Some("2026-11-23"));
        // Ready stayed True: its transition time did not move.
        assert_eq!(
            conditions::find(&second.conditions, "Ready").map(|c| c.last_transition_time.clone()),
            Some(now(10))
        );
    }

    #[test]
    fn an_unreadable_grace_period_stalls_the_user_with_its_credentials_ready() {
        let outcome = Outcome::Ready {
            previous_valid_until: None,
            grace_problem: Some("rotationGracePeriod: \"1d\" is not a duration".into()),
            discarded_choice: None,
            secret_name: "alice-sip-credentials".into(),
            change: None,
            handled_rotation: None,
            devices: Vec::new(),
        };
        let f = facts(&Verdict::Admitted, Some(&outcome));
        assert_eq!(
            stalled(&f).map(|(r, _)| r),
            Some(reasons::ROTATION_GRACE_PERIOD_INVALID)
        );
        let status = build(&f, None, &now(10));
        let credentials = conditions::find(&status.conditions, types::CREDENTIALS_READY).expect("condition");
        assert_eq!(credentials.status, "True", "the passwords are in place");
        let stalled_condition = conditions::find(&status.conditions, types::STALLED).expect("condition");
        assert_eq!(
            (
                stalled_condition.status.as_str(),
                stalled_condition.reason.as_str()
            ),
            ("True", reasons::ROTATION_GRACE_PERIOD_INVALID)
        );
        assert!(stalled(&facts(&Verdict::Admitted, Some(&ready_outcome(None)))).is_none());
    }

    #[test]
    fn the_deadlines_recorded_in_the_status_are_the_accounts_and_each_devices() {
        let at = |s| Some(now(s));
        let status = SipUserStatus {
            previous_password_valid_until: at(100),
            devices: vec![
                DeviceStatus {
                    name: "desk".into(),
                    previous_password_valid_until: at(50),
                    ..Default::default()
                },
                DeviceStatus {
                    name: "soft".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(deadlines_in(Some(&status)), [100, 50]);
        assert!(deadlines_in(None).is_empty());
    }

    #[test]
    fn a_grace_periods_deadline_shows_while_it_runs_and_not_after() {
        let created = ready_outcome(Some(PasswordChange::Created));
        let first = build(&facts(&Verdict::Admitted, Some(&created)), None, &now(10));
        assert_eq!(first.previous_password_valid_until, None, "no grace period: none");
        let deadline = now(20).0.as_second() + 60;
        let rotated = Outcome::Ready {
            previous_valid_until: Some(deadline),
            grace_problem: None,
            discarded_choice: None,
            secret_name: "alice-sip-credentials".into(),
            change: Some(PasswordChange::Rotated),
            handled_rotation: Some("r1".into()),
            devices: Vec::new(),
        };
        let second = build(&facts(&Verdict::Admitted, Some(&rotated)), Some(&first), &now(20));
        assert_eq!(
            second
                .previous_password_valid_until
                .as_ref()
                .map(|t| t.0.as_second()),
            Some(deadline)
        );
        // Not admitted meanwhile (the credentials step did not run): kept while ahead only.
        let stalled = Verdict::Stalled {
            reason: reasons::EXTENSION_CONFLICT,
            message: "taken".into(),
        };
        let kept = build(&facts(&stalled, None), Some(&second), &now(30));
        assert!(kept.previous_password_valid_until.is_some());
        let gone = build(&facts(&stalled, None), Some(&second), &now(80));
        assert_eq!(gone.previous_password_valid_until, None);
        let mut with_devices = facts(&Verdict::Admitted, Some(&rotated));
        let listed = [device("desk", true)];
        with_devices.devices = &listed;
        assert_eq!(
            build(&with_devices, Some(&first), &now(20)).previous_password_valid_until,
            None,
            "not shown while devices are listed"
        );
        let ended = ready_outcome(None);
        let after = build(&facts(&Verdict::Admitted, Some(&ended)), Some(&second), &now(81));
        assert_eq!(after.previous_password_valid_until, None);
    }

    fn device(name: &str, enabled: bool) -> DeviceSpec {
        DeviceSpec {
            name: name.into(),
            description: None,
            enabled,
        }
    }

    fn device_outcome(name: &str, change: Option<PasswordChange>, rotation: Option<&str>) -> DeviceOutcome {
        DeviceOutcome {
            previous_valid_until: None,
            name: name.into(),
            change,
            handled_rotation: rotation.map(str::to_string),
        }
    }

    #[test]
    fn devices_show_their_auth_username_contacts_and_password_history() {
        let listed = [device("desk", true), device("soft", false)];
        let created = Outcome::Ready {
            previous_valid_until: None,
            grace_problem: None,
            discarded_choice: None,
            secret_name: "alice-sip-credentials".into(),
            change: Some(PasswordChange::Created),
            handled_rotation: None,
            devices: vec![
                device_outcome("desk", Some(PasswordChange::Created), None),
                device_outcome("soft", Some(PasswordChange::Created), None),
            ],
        };
        let mut f = facts(&Verdict::Admitted, Some(&created));
        f.devices = &listed;
        f.registrar = RegistrarState::Synced { endpoints: 1 };
        f.registration = Some(RegistrationStatus {
            contacts: 1,
            ..Default::default()
        });
        f.device_contacts = Some(BTreeMap::from([("desk".into(), 1), ("soft".into(), 0)]));
        let first = build(&f, None, &now(10));
        let names: Vec<_> = first
            .devices
            .iter()
            .map(|d| (d.name.as_str(), d.auth_username.as_str(), d.enabled, d.contacts))
            .collect();
        assert_eq!(
            names,
            [("desk", "alice#desk", true, 1), ("soft", "alice#soft", false, 0)]
        );
        assert!(
            first
                .devices
                .iter()
                .all(|d| d.password_changed_at == Some(now(10)))
        );
        let message = conditions::find(&first.conditions, "Registered").map(|c| c.message.clone());
        assert_eq!(
            message.as_deref(),
            Some("1 device(s) registered; 1 of 2 devices (desk)")
        );

        // One device rotated: only its time and rotation record move.
        let rotated = Outcome::Ready {
            previous_valid_until: None,
            grace_problem: None,
            discarded_choice: None,
            secret_name: "alice-sip-credentials".into(),
            change: None,
            handled_rotation: None,
            devices: vec![
                device_outcome("desk", None, None),
                device_outcome("soft", Some(PasswordChange::Rotated), Some("r1")),
            ],
        };
        f.credentials = Some(&rotated);
        let second = build(&f, Some(&first), &now(20));
        assert_eq!(second.devices[0], first.devices[0]);
        assert_eq!(second.devices[1].password_changed_at, Some(now(20)));
        assert_eq!(second.devices[1].last_handled_rotation.as_deref(), Some("r1"));
        assert_eq!(second.password_changed_at, first.password_changed_at);

        // Nothing new: the same status (no write).
        let kept = Outcome::Ready {
            previous_valid_until: None,
            grace_problem: None,
            discarded_choice: None,
            secret_name: "alice-sip-credentials".into(),
            change: None,
            handled_rotation: None,
            devices: vec![
                device_outcome("desk", None, None),
                device_outcome("soft", None, None),
            ],
        };
        f.credentials = Some(&kept);
        assert_eq!(build(&f, Some(&second), &now(30)), second);
        // Registrations not read this time: the contacts stand.
        f.device_contacts = None;
        f.registration = None;
        assert_eq!(build(&f, Some(&second), &now(40)), second);

        // A removed device leaves the status.
        let only_desk = [device("desk", true)];
        f.devices = &only_desk;
        let third = build(&f, Some(&second), &now(50));
        assert_eq!(third.devices.len(), 1);
    }

    #[test]
    fn a_user_without_devices_has_no_device_status() {
        let outcome = ready_outcome(Some(PasswordChange::Created));
        let s = build(&facts(&Verdict::Admitted, Some(&outcome)), None, &now(1));
        assert!(s.devices.is_empty());
        let json = serde_json::to_value(&s).expect("json");
        assert!(json.get("devices").is_none(), "not even an empty list: {json}");
    }

    #[test]
    fn registered_names_devices_and_alias_lines() {
        let r = RegistrationStatus {
            contacts: 3,
            lines: vec![crate::api::LineStatus {
                alias: "alice-support".into(),
                contacts: 1,
            }],
            ..Default::default()
        };
        assert_eq!(
            registered_message(&r, &[]),
            "3 device(s) registered; alias lines registered: alice-support"
        );
    }

    #[test]
    fn device_events_name_the_device_and_the_secret_only() {
        let (reason, note) = device_change_event(PasswordChange::Rotated, "desk", "alice-sip-credentials");
        assert_eq!(reason, reasons::events::DEVICE_CREDENTIALS_ROTATED);
        assert!(
            note.contains("desk") && note.contains("alice-sip-credentials"),
            "{note}"
        );
        let (reason, _) = device_change_event(PasswordChange::Created, "desk", "s");
        assert_eq!(reason, reasons::events::DEVICE_CREDENTIALS_CREATED);
    }
}
