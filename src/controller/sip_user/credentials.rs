//! The credentials step of a SipUser reconcile: read the target Secret, the imported source
//! and (after a rename) the previous Secret; decide the password (pure); apply the Secret only
//! when it differs; remove the previous Secret.
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};

use crate::api::{SipDomain, SipUser};
use crate::controller::error::kube_err;
use crate::controller::status::reasons;
use crate::controller::{Context, Error};
use crate::credentials::{self, Password, SecretSpec, data_keys};
use crate::keys::{
    FIELD_MANAGER, PASSWORD_CHOSEN_ANNOTATION, PASSWORD_CHOSEN_HANDLED_ANNOTATION, ROTATE_ANNOTATION,
};
use crate::rotation::PreviousDigest;

/// Annotation on a credentials Secret: the rotation request its password answers, so a
/// rotation happens once even if the status write after it fails.
pub const ROTATION_HANDLED_ANNOTATION: &str = "sipoperator.io/rotation-handled";

/// How the password changed in this reconcile (for `passwordChangedAt` and Events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordChange {
    /// Generated because there was none (new user, or its Secret was deleted).
    Created,
    /// Generated anew because the rotate annotation asked for it.
    Rotated,
    /// Copied from a new or changed imported value.
    Imported,
    /// Chosen by the end user on an invite's page, which asked for it in the Secret's
    /// `chosen.password` key; swapped in by the controller like a rotation.
    Chosen,
}

/// How one device's password changed in this reconcile, and the rotation request it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceOutcome {
    /// The device's name in `spec.devices`.
    pub name: String,
    /// `Created` (first appearance, or its keys were lost) or `Rotated`; `None`: kept.
    pub change: Option<PasswordChange>,
    /// The value of its `sipoperator.io/rotate.<name>` annotation, answered (now or before).
    pub handled_rotation: Option<String>,
    /// Until when (Unix seconds) its previous password is still accepted; `None`: it is not.
    pub previous_valid_until: Option<i64>,
}

/// The passwords in force once the step is done, for the registrar step (which hashes them).
#[derive(Clone, Debug)]
pub struct Passwords {
    /// The account's own password (the Secret's `password`).
    pub account: Password,
    /// Every listed device's password (enabled or not), in `spec.devices` order.
    pub devices: Vec<(String, Password)>,
    /// The account's previous digest while a grace period runs.
    pub account_previous: Option<PreviousDigest>,
    /// Each device's previous digest while a grace period runs (only those with one).
    pub device_previous: Vec<(String, PreviousDigest)>,
    /// When the account's password last changed under a grace period (Unix seconds): its
    /// contacts last registered before then are on an older password.
    pub account_changed_at: Option<i64>,
    /// The same per device (only those rotated under a grace period).
    pub device_changed_at: Vec<(String, i64)>,
}

impl Passwords {
    /// Passwords of an account without devices.
    #[cfg(test)]
    pub fn account_only(account: Password) -> Self {
        Passwords {
            account,
            devices: Vec::new(),
            account_previous: None,
            device_previous: Vec::new(),
            account_changed_at: None,
            device_changed_at: Vec::new(),
        }
    }

    /// The password of device `name`, if it is listed.
    pub fn device(&self, name: &str) -> Option<&Password> {
        self.devices.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }

    /// The previous digest of device `name`, while a grace period runs.
    pub fn device_previous(&self, name: &str) -> Option<&PreviousDigest> {
        self.device_previous
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
    }

    /// When device `name` was last rotated under a grace period.
    pub fn device_changed_at(&self, name: &str) -> Option<i64> {
        self.device_changed_at
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
    }

    /// The credentials whose grace period runs, for telling contacts on a previous password
    /// apart (`username`: the account's).
    pub fn graces(&self, username: &str) -> crate::registrar_state::registration_view::Graces {
        let mut graces = crate::registrar_state::registration_view::Graces::default();
        // With devices listed the account's own password registers nothing (as the status,
        // which the domain's check reads, shows no deadline for it then).
        if self.account_previous.is_some() && self.devices.is_empty() {
            graces.running(username, self.account_changed_at);
        }
        for (name, _) in &self.device_previous {
            graces.running(
                crate::api::device_auth_username(username, name),
                self.device_changed_at(name),
            );
        }
        graces
    }

    /// Every grace period's deadline (Unix seconds): the reconcile after the earliest one
    /// takes the previous digest away.
    pub fn deadlines(&self) -> impl Iterator<Item = i64> + '_ {
        self.account_previous
            .iter()
            .chain(self.device_previous.iter().map(|(_, p)| p))
            .map(|p| p.valid_until)
    }
}

/// The result of the credentials step.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ready {
        secret_name: String,
        change: Option<PasswordChange>,
        handled_rotation: Option<String>,
        /// Until when (Unix seconds) the account's previous password is still accepted.
        previous_valid_until: Option<i64>,
        /// One per listed device, in `spec.devices` order.
        devices: Vec<DeviceOutcome>,
        /// The grace period written cannot be read: none applies, and this says what to fix
        /// (a Stalled condition; the passwords stay in force).
        grace_problem: Option<String>,
        /// Why a password the end user chose on an invite's page was removed unused (a
        /// Warning Event: the page told them it would take effect).
        discarded_choice: Option<&'static str>,
    },
    /// A person must act; `reason` is a Stalled reason.
    Problem { reason: &'static str, message: String },
    /// Reading or writing a Secret failed in a way that may pass (retried with backoff).
    Failed { message: String },
}

impl Outcome {
    /// Whether the step should run again later without any change (backing off): a failure
    /// that may pass, or a refusal whose fix (RBAC, a quota) the operator does not watch.
    pub fn retry(&self) -> bool {
        match self {
            Outcome::Failed { .. } => true,
            Outcome::Problem { reason, .. } => *reason == reasons::SECRET_REJECTED,
            Outcome::Ready { .. } => false,
        }
    }
}

/// Where the password comes from, as read.
#[derive(Debug)]
pub enum Source {
    Generated { rotate: bool },
    Imported(Result<Password, String>),
}

/// Picks the password, pure. `existing` is the password in the user's Secret now; `moved`
/// the one in the Secret it had under a previous name.
pub fn choose_password(
    source: Source,
    existing: Option<Password>,
    moved: Option<Password>,
    policy: &crate::api::PasswordPolicy,
) -> Result<(Password, Option<PasswordChange>), String> {
    let existing = existing.filter(|p| !p.is_empty());
    let kept = existing.or(moved.filter(|p| !p.is_empty()));
    match source {
        Source::Imported(Err(problem)) => Err(problem),
        Source::Imported(Ok(value)) => {
            let change = match &kept {
                None => Some(PasswordChange::Created),
                Some(p) if *p != value => Some(PasswordChange::Imported),
                Some(_) => None,
            };
            Ok((value, change))
        }
        Source::Generated { rotate: true } => Ok((
            credentials::generate_password(policy),
            Some(PasswordChange::Rotated),
        )),
        Source::Generated { rotate: false } => match kept {
            Some(p) => Ok((p, None)),
            None => Ok((
                credentials::generate_password(policy),
                Some(PasswordChange::Created),
            )),
        },
    }
}

/// Picks a device's password, pure. Device passwords are always generated (never imported):
/// once when the device first appears (`existing` and `moved` empty), anew when `rotate`.
/// A device that had none is `Created` even if a rotation was asked for with it.
pub fn choose_device_password(
    existing: Option<Password>,
    moved: Option<Password>,
    rotate: bool,
    policy: &crate::api::PasswordPolicy,
) -> (Password, Option<PasswordChange>) {
    let kept = existing.or(moved).filter(|p| !p.is_empty());
    match kept {
        None => (
            credentials::generate_password(policy),
            Some(PasswordChange::Created),
        ),
        Some(_) if rotate => (
            credentials::generate_password(policy),
            Some(PasswordChange::Rotated),
        ),
        Some(p) => (p, None),
    }
}

/// The annotation on a credentials Secret recording the rotation request of device `device`
/// its password answers (as [`ROTATION_HANDLED_ANNOTATION`] does for the account's).
pub fn device_rotation_handled_annotation(device: &str) -> String {
    format!("{ROTATION_HANDLED_ANNOTATION}.{device}")
}

/// The rotation request of device `device` on `user` (bounded: it is copied into the Secret's
/// annotations and the status).
fn device_rotate_request(user: &SipUser, device: &str) -> Option<String> {
    user.annotations()
        .get(&crate::api::device_rotate_annotation(device))
        .map(|v| crate::keys::fit(v, crate::keys::MAX_NAME))
}

/// One listed device as the Secret is to hold it.
struct DeviceChoice {
    name: String,
    password: Password,
    change: Option<PasswordChange>,
    rotate_request: Option<String>,
    /// Its previous digest while a grace period runs.
    previous: Option<PreviousDigest>,
    /// When it was last rotated under a grace period.
    changed_at: Option<i64>,
}

impl DeviceChoice {
    fn outcome(&self) -> DeviceOutcome {
        DeviceOutcome {
            name: self.name.clone(),
            change: self.change,
            handled_rotation: self.rotate_request.clone(),
            previous_valid_until: self.previous.as_ref().map(|p| p.valid_until),
        }
    }
}

/// The passwords in force and the previous digests, for the registrar step.
fn passwords(account: Password, grace: AccountGrace, devices: Vec<DeviceChoice>) -> Passwords {
    let device_previous = devices
        .iter()
        .filter_map(|d| Some((d.name.clone(), d.previous.clone()?)))
        .collect();
    let device_changed_at = devices
        .iter()
        .filter_map(|d| Some((d.name.clone(), d.changed_at?)))
        .collect();
    Passwords {
        account,
        devices: devices.into_iter().map(|d| (d.name, d.password)).collect(),
        account_previous: grace.previous,
        device_previous,
        account_changed_at: grace.changed_at,
        device_changed_at,
    }
}

/// The account's previous digest and change time after this reconcile.
#[derive(Clone, Default)]
struct AccountGrace {
    previous: Option<PreviousDigest>,
    changed_at: Option<i64>,
}

/// What one credentials Secret is to hold, beside what the user and the domain say.
struct SecretContent<'a> {
    /// The Secret's name.
    name: &'a str,
    password: &'a Password,
    grace: &'a AccountGrace,
    /// The rotation request the password answers, recorded on the Secret as handled.
    rotate_request: &'a Option<String>,
    devices: &'a [DeviceChoice],
    /// The Secret as it is now (its QR codes of unchanged documents are kept).
    current: Option<&'a Secret>,
}

/// The credentials Secret of `user` holding `content`; the rotation requests it answers are
/// recorded on it as handled.
fn desired_secret(user: &SipUser, domain: &SipDomain, content: &SecretContent<'_>) -> Result<Secret, Error> {
    let SecretContent {
        name,
        password,
        grace,
        rotate_request,
        devices,
        current,
    } = *content;
    let owner = user
        .controller_owner_ref(&())
        .ok_or_else(|| Error::NotNamespaced(user.name_any()))?;
    let device_secrets: Vec<credentials::DeviceSecret<'_>> = devices
        .iter()
        .map(|d| credentials::DeviceSecret {
            name: &d.name,
            password: &d.password,
            previous: d.previous.as_ref(),
            changed_at: d.changed_at,
        })
        .collect();
    let connection = domain.connection();
    let mut secret = credentials::build_secret(&SecretSpec {
        name,
        namespace: &user.namespace().unwrap_or_default(),
        user_name: &user.name_any(),
        owner,
        username: user.username(),
        domain: &domain.spec.domain,
        realm: domain.realm(),
        password,
        previous: grace.previous.as_ref(),
        changed_at: grace.changed_at,
        devices: &device_secrets,
        display_name: user.spec.display_name.as_deref(),
        connection: &connection,
        algorithms: &domain.spec.digest_algorithms,
        current,
    });
    if let Some(value) = rotate_request {
        secret
            .annotations_mut()
            .insert(ROTATION_HANDLED_ANNOTATION.into(), value.clone());
    }
    for d in devices {
        if let Some(value) = &d.rotate_request {
            secret
                .annotations_mut()
                .insert(device_rotation_handled_annotation(&d.name), value.clone());
        }
    }
    Ok(secret)
}

/// `existing` with what `desired` sets, and without the keys (and rotation records) of the
/// devices in `removed` and the previous digests `desired` no longer has (a grace period that
/// ended): the body of the one write that removes them. Everything others
/// added (labels, annotations, keys) stays; the resourceVersion makes it fail rather than
/// overwrite a change made since `existing` was read.
fn without_removed_devices(
    existing: &Secret,
    desired: &Secret,
    removed: &std::collections::BTreeSet<String>,
    stale_keys: &std::collections::BTreeSet<String>,
) -> Secret {
    let mut body = existing.clone();
    // Omitted, the server keeps (and updates) the managed fields; sent, they would replace them.
    body.metadata.managed_fields = None;
    let data = body.data.get_or_insert_default();
    data.retain(|k, _| {
        !stale_keys.contains(k) && data_keys::device_of(k).is_none_or(|d| !removed.contains(d))
    });
    data.extend(desired.data.clone().unwrap_or_default());
    let labels = desired.metadata.labels.clone().unwrap_or_default();
    body.metadata.labels.get_or_insert_default().extend(labels);
    let annotations = body.metadata.annotations.get_or_insert_default();
    annotations.retain(|k, _| {
        !removed
            .iter()
            .any(|d| *k == device_rotation_handled_annotation(d))
    });
    annotations.extend(desired.metadata.annotations.clone().unwrap_or_default());
    if body.metadata.owner_references.as_ref().is_none_or(Vec::is_empty) {
        body.metadata.owner_references = desired.metadata.owner_references.clone();
    }
    body.type_ = desired.type_.clone();
    body
}

/// A user provisioned for the first time (its status names no Secret yet) with a generated
/// password: its Secret is created in one request, without reading first. `None` when a Secret
/// of that name exists already (ours from a process that stopped before its status write, or
/// someone else's): the reading path decides then.
async fn create_first(
    user: &SipUser,
    domain: &SipDomain,
    ctx: &Context,
    secrets: &Api<Secret>,
    name: &str,
    rotate_request: &Option<String>,
) -> Result<Option<(Outcome, Option<Passwords>)>, Error> {
    let provisioned = user.status.as_ref().is_some_and(|s| s.secret_name.is_some());
    if provisioned || user.spec.credentials.password_secret_ref.is_some() {
        return Ok(None);
    }
    let policy = &domain.spec.password_policy;
    let password = credentials::generate_password(policy);
    let devices: Vec<DeviceChoice> = user
        .spec
        .devices
        .iter()
        .map(|d| DeviceChoice {
            name: d.name.clone(),
            password: credentials::generate_password(policy),
            change: Some(PasswordChange::Created),
            rotate_request: device_rotate_request(user, &d.name),
            previous: None,
            changed_at: None,
        })
        .collect();
    let desired = desired_secret(
        user,
        domain,
        &SecretContent {
            name,
            password: &password,
            grace: &AccountGrace::default(),
            rotate_request,
            devices: &devices,
            current: None,
        },
    )?;
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let key = format!("{}/{name}", user.namespace().unwrap_or_default());
    ctx.secret_echoes.sending(&key, ());
    let created = secrets.create(&params, &desired).await;
    let rv = created
        .as_ref()
        .ok()
        .and_then(|c| c.metadata.resource_version.clone());
    look_again_if_changed_meanwhile(user, ctx, &key, rv);
    match created {
        Ok(_) => Ok(Some((
            Outcome::Ready {
                secret_name: name.to_string(),
                change: Some(PasswordChange::Created),
                handled_rotation: rotate_request.clone(),
                previous_valid_until: None,
                devices: devices.iter().map(DeviceChoice::outcome).collect(),
                grace_problem: grace_period(user, domain).1,
                discarded_choice: None,
            },
            Some(passwords(password, AccountGrace::default(), devices)),
        ))),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(None),
        Err(e) => Err(kube_err(format!(
            "creating Secret {}/{name}",
            user.namespace().unwrap_or_default()
        ))(e)),
    }
}

/// Settles our write of Secret `key`; if the watch delivered someone else's change of it
/// meanwhile (dropped as our echo), the user is queued to look at it.
fn look_again_if_changed_meanwhile(user: &SipUser, ctx: &Context, key: &str, rv: Option<String>) {
    if ctx.secret_echoes.answered(key, rv) {
        let _ = ctx
            .resync_users
            .unbounded_send(kube::runtime::reflector::ObjectRef::from_obj(user));
    }
}

/// The change to announce with an Event. Our Secret existing while the status never recorded
/// a password means the process that wrote it stopped before its status write, and so maybe
/// before its `CredentialsCreated` Event: it is announced (again) rather than possibly never.
fn to_announce(
    change: Option<PasswordChange>,
    secret_exists: bool,
    recorded: bool,
) -> Option<PasswordChange> {
    match change {
        None if secret_exists && !recorded => Some(PasswordChange::Created),
        other => other,
    }
}

/// A chosen password waiting in `secret` (the `chosen.password` key an invite's page wrote)
/// and the label of its request, pure: `None` when there is none, when it is not usable text,
/// or when its request is the one already handled (recorded in
/// [`PASSWORD_CHOSEN_HANDLED_ANNOTATION`]; no clocks are compared).
fn chosen_request(secret: Option<&Secret>) -> Option<(Password, Option<String>)> {
    let secret = secret?;
    let password = credentials::secret_bytes(secret, data_keys::CHOSEN_PASSWORD)
        .and_then(|b| credentials::password_from_bytes(b).ok())
        .filter(|p| !p.is_empty())?;
    let label = secret
        .annotations()
        .get(PASSWORD_CHOSEN_ANNOTATION)
        .map(|v| crate::keys::fit(v, crate::keys::MAX_NAME));
    let handled = secret.annotations().get(PASSWORD_CHOSEN_HANDLED_ANNOTATION);
    if label.is_some() && label.as_ref() == handled {
        return None;
    }
    Some((password, label))
}

/// Reads the imported password, or says what is wrong with its source (naming Secret and key).
fn imported_password(source: Option<&Secret>, name: &str, key: &str) -> Result<Password, String> {
    let Some(secret) = source else {
        return Err(format!(
            "spec.credentials.passwordSecretRef names Secret {name:?}, which does not exist in this namespace; create it or correct the reference"
        ));
    };
    let Some(bytes) = credentials::secret_bytes(secret, key) else {
        return Err(format!(
            "Secret {name:?} (spec.credentials.passwordSecretRef) has no key {key:?}; add it or correct the key"
        ));
    };
    credentials::password_from_bytes(bytes).map_err(|problem| {
        format!(
            "key {key:?} of Secret {name:?} (spec.credentials.passwordSecretRef) {problem}; \
             put the password there exactly as devices will enter it (the operator never alters it)"
        )
    })
}

/// What a failed API call in this step means for the user's status, pure: a request the API
/// server refuses for good (invalid, forbidden — e.g. RBAC or a ResourceQuota) needs a person
/// and is Stalled with the API's message; anything else is retried.
fn failure_outcome(error: &Error) -> Outcome {
    match error {
        // The API's own words, without kube's debug dump of the whole Status.
        Error::Kube {
            action,
            source: kube::Error::Api(status),
        } => {
            let answer = format!("{action}: {} ({} {})", status.message, status.code, status.reason);
            if status.is_invalid() || status.is_forbidden() {
                Outcome::Problem {
                    reason: reasons::SECRET_REJECTED,
                    message: format!(
                        "{answer}; the API server refuses the credentials Secret, fix what it names"
                    ),
                }
            } else {
                Outcome::Failed {
                    message: format!("{answer}; retrying with backoff"),
                }
            }
        }
        other => Outcome::Failed {
            message: format!("{other}; retrying with backoff"),
        },
    }
}

/// Runs the credentials step for an admitted user; with the outcome, the passwords in force
/// (for the registrar step, which hashes them). A failed API call is an outcome too, so that
/// it shows in status instead of only in the log.
pub async fn sync(user: &SipUser, domain: &SipDomain, ctx: &Context) -> (Outcome, Option<Passwords>) {
    match sync_secret(user, domain, ctx).await {
        Ok(done) => done,
        Err(error) => {
            tracing::warn!(user = %user.name_any(), %error, "credentials step failed");
            (failure_outcome(&error), None)
        }
    }
}

async fn sync_secret(
    user: &SipUser,
    domain: &SipDomain,
    ctx: &Context,
) -> Result<(Outcome, Option<Passwords>), Error> {
    let ns = user.namespace().unwrap_or_default();
    let uid = user.uid().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let name = user.secret_name();
    // Bounded: the value is copied into the Secret's annotations and the status.
    let rotate_request = user
        .annotations()
        .get(ROTATE_ANNOTATION)
        .map(|v| crate::keys::fit(v, crate::keys::MAX_NAME));

    if let Some(created) = create_first(user, domain, ctx, &secrets, &name, &rotate_request).await? {
        return Ok(created);
    }
    let existing = secrets
        .get_opt(&name)
        .await
        .map_err(kube_err(format!("reading Secret {ns}/{name}")))?;
    if let Some(secret) = &existing
        && !credentials::is_controlled_by(secret, &uid)
    {
        return Ok((
            Outcome::Problem {
                reason: reasons::SECRET_NOT_OWNED,
                message: format!(
                    "Secret {name:?} already exists and is not controlled by this SipUser, so the operator will not overwrite it; \
                 delete or rename that Secret, or set spec.credentials.secretName to another name"
                ),
            },
            None,
        ));
    }

    let status = user.status.as_ref();
    let previous_name = status.and_then(|s| s.secret_name.clone()).filter(|p| *p != name);
    let moved_from = match &previous_name {
        Some(prev) => secrets
            .get_opt(prev)
            .await
            .map_err(kube_err(format!("reading previous Secret {ns}/{prev}")))?
            .filter(|s| credentials::is_controlled_by(s, &uid)),
        None => None,
    };

    let already_handled = |value: &String| {
        status.and_then(|s| s.last_handled_rotation.as_ref()) == Some(value)
            || existing
                .as_ref()
                .and_then(|s| s.annotations().get(ROTATION_HANDLED_ANNOTATION))
                == Some(value)
    };
    let source = match &user.spec.credentials.password_secret_ref {
        Some(r) => {
            let source = secrets
                .get_opt(&r.name)
                .await
                .map_err(kube_err(format!("reading Secret {ns}/{}", r.name)))?;
            Source::Imported(imported_password(source.as_ref(), &r.name, &r.key))
        }
        None => Source::Generated {
            rotate: rotate_request.as_ref().is_some_and(|v| !already_handled(v)),
        },
    };
    // A stored password that is no longer usable text counts as none (a new one is made).
    let current = |s: &Option<Secret>| {
        s.as_ref()
            .and_then(|s| credentials::secret_bytes(s, data_keys::PASSWORD))
            .and_then(|b| credentials::password_from_bytes(b).ok())
    };
    let (grace, grace_problem) = grace_period(user, domain);
    let before = current(&existing).or_else(|| current(&moved_from));
    let pending_choice = chosen_request(existing.as_ref());
    // An imported password is the administrator's; a rotation asked for meanwhile wins.
    let overridden_by = match &source {
        Source::Generated { rotate: false } => None,
        Source::Generated { rotate: true } => {
            Some("a rotation (sipoperator.io/rotate) was asked for at the same time")
        }
        Source::Imported(_) => Some("the password is imported from spec.credentials.passwordSecretRef now"),
    };
    let chosen = pending_choice.clone().filter(|_| overridden_by.is_none());
    let (password, change) = match choose_password(
        source,
        current(&existing),
        current(&moved_from),
        &domain.spec.password_policy,
    ) {
        Ok(chosen) => chosen,
        Err(message) => {
            return Ok((
                Outcome::Problem {
                    reason: reasons::PASSWORD_SOURCE_INVALID,
                    message,
                },
                None,
            ));
        }
    };

    // The end user's choice is swapped in as a change whose previous password is known, so a
    // grace period, the previous HA1s and the provisioning documents follow as for a rotation.
    let (password, change) = match (chosen.as_ref(), change) {
        (Some((p, _)), None) => (p.clone(), Some(PasswordChange::Chosen)),
        (_, change) => (password, change),
    };
    // A request not swapped in leaves the Secret with this write.
    let discarded_choice = (pending_choice.is_some() && change != Some(PasswordChange::Chosen)).then(|| {
        overridden_by.unwrap_or("the stored password could not be kept (it was missing or unreadable)")
    });
    let now = crate::clock::now().as_second();
    let replaced = matches!(
        change,
        Some(PasswordChange::Rotated | PasswordChange::Imported | PasswordChange::Chosen)
    )
    .then_some(before.as_ref())
    .flatten();
    let stored_secret = existing.as_ref().or(moved_from.as_ref());
    let account_change = crate::rotation::Change {
        replaced,
        current: &password,
        stored: stored_secret.and_then(credentials::previous_digest),
        stored_changed_at: stored_secret.and_then(credentials::previous_changed_at),
        grace,
        username: user.username(),
        realm: domain.realm(),
        algorithms: &domain.spec.digest_algorithms,
        now,
    };
    let account_grace = AccountGrace {
        previous: crate::rotation::previous_after(&account_change),
        changed_at: crate::rotation::changed_at_after(&account_change),
    };
    let change = to_announce(
        change,
        existing.is_some(),
        status.is_some_and(|s| s.password_changed_at.is_some()),
    );
    let grace_now = Grace { period: grace, now };
    let devices = choose_devices(user, domain, existing.as_ref(), moved_from.as_ref(), grace_now);
    let mut desired = desired_secret(
        user,
        domain,
        &SecretContent {
            name: &name,
            password: &password,
            grace: &account_grace,
            rotate_request: &rotate_request,
            devices: &devices,
            current: existing.as_ref(),
        },
    )?;
    // The request handled now, or the one handled before (kept, so that it stays handled).
    let chosen_handled = match &chosen {
        Some((_, label)) if change == Some(PasswordChange::Chosen) => label.clone(),
        _ => existing
            .as_ref()
            .and_then(|s| s.annotations().get(PASSWORD_CHOSEN_HANDLED_ANNOTATION).cloned()),
    };
    if let Some(label) = chosen_handled {
        desired
            .annotations_mut()
            .insert(PASSWORD_CHOSEN_HANDLED_ANNOTATION.into(), label);
    }
    let handled_annotation_current = rotate_request.as_ref().is_none_or(|v| {
        existing
            .as_ref()
            .and_then(|s| s.annotations().get(ROTATION_HANDLED_ANNOTATION))
            == Some(v)
    });
    let up_to_date = existing
        .as_ref()
        .is_some_and(|e| credentials::secret_is_current(e, &desired) && handled_annotation_current);
    if !up_to_date {
        let key = format!("{ns}/{name}");
        let removed = existing
            .as_ref()
            .map(|e| credentials::removed_devices(e, &desired))
            .unwrap_or_default();
        let stale_keys = existing
            .as_ref()
            .map(|e| credentials::removed_keys(e, &desired))
            .unwrap_or_default();
        ctx.secret_echoes.sending(&key, ());
        let written = match existing
            .as_ref()
            .filter(|_| !removed.is_empty() || !stale_keys.is_empty())
        {
            // An apply leaves keys another write put there (the create of a new user's Secret
            // is not an apply): removing a device or a key the operator no longer writes (an
            // outbound proxy dropped, the account's document once devices are listed)
            // replaces the Secret, still in one write.
            Some(existing) => {
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                let body = without_removed_devices(existing, &desired, &removed, &stale_keys);
                secrets.replace(&name, &params, &body).await
            }
            None => {
                secrets
                    .patch(
                        &name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&desired),
                    )
                    .await
            }
        };
        let rv = written
            .as_ref()
            .ok()
            .and_then(|w| w.metadata.resource_version.clone());
        look_again_if_changed_meanwhile(user, ctx, &key, rv);
        written.map_err(kube_err(format!("applying Secret {ns}/{name}")))?;
        for device in &removed {
            ctx.announced.forget_device(&uid, device);
        }
    }
    if let Some(old) = moved_from {
        let old_name = old.name_any();
        let precondition = kube::api::Preconditions {
            uid: old.uid(),
            resource_version: None,
        };
        secrets
            .delete(
                &old_name,
                &DeleteParams {
                    preconditions: Some(precondition),
                    ..Default::default()
                },
            )
            .await
            .map_err(kube_err(format!("deleting previous Secret {ns}/{old_name}")))?;
    }
    Ok((
        Outcome::Ready {
            secret_name: name,
            change,
            handled_rotation: rotate_request,
            previous_valid_until: account_grace.previous.as_ref().map(|p| p.valid_until),
            devices: devices.iter().map(DeviceChoice::outcome).collect(),
            grace_problem,
            discarded_choice,
        },
        Some(passwords(password, account_grace, devices)),
    ))
}

/// The grace period that applies and the Unix second of this reconcile.
#[derive(Clone, Copy)]
struct Grace {
    period: Option<std::time::Duration>,
    now: i64,
}

/// Each listed device's password: kept from the user's Secret (or the one it had under a
/// previous name), generated when it has none, rotated when its annotation asks anew.
fn choose_devices(
    user: &SipUser,
    domain: &SipDomain,
    existing: Option<&Secret>,
    moved_from: Option<&Secret>,
    grace: Grace,
) -> Vec<DeviceChoice> {
    let recorded = |device: &str| {
        user.status
            .as_ref()
            .and_then(|s| s.devices.iter().find(|d| d.name == device))
    };
    user.spec
        .devices
        .iter()
        .map(|d| {
            let rotate_request = device_rotate_request(user, &d.name);
            let handled_on_secret = existing.and_then(|s| {
                s.annotations()
                    .get(&device_rotation_handled_annotation(&d.name))
                    .cloned()
            });
            let rotate = rotate_request.as_ref().is_some_and(|v| {
                recorded(&d.name).and_then(|r| r.last_handled_rotation.as_ref()) != Some(v)
                    && handled_on_secret.as_ref() != Some(v)
            });
            let stored = existing.and_then(|s| credentials::device_password(s, &d.name));
            let had_keys = stored.is_some();
            let moved = moved_from.and_then(|s| credentials::device_password(s, &d.name));
            let before = stored.clone().or_else(|| moved.clone());
            let (password, change) =
                choose_device_password(stored, moved, rotate, &domain.spec.password_policy);
            let stored_secret = existing.or(moved_from);
            let auth_username = crate::api::device_auth_username(user.username(), &d.name);
            let device_change = crate::rotation::Change {
                replaced: (change == Some(PasswordChange::Rotated))
                    .then_some(before.as_ref())
                    .flatten(),
                current: &password,
                stored: stored_secret.and_then(|s| credentials::device_previous_digest(s, &d.name)),
                stored_changed_at: stored_secret
                    .and_then(|s| credentials::device_previous_changed_at(s, &d.name)),
                grace: grace.period,
                username: &auth_username,
                realm: domain.realm(),
                algorithms: &domain.spec.digest_algorithms,
                now: grace.now,
            };
            let previous = crate::rotation::previous_after(&device_change);
            let changed_at = crate::rotation::changed_at_after(&device_change);
            let change = to_announce(
                change,
                had_keys,
                recorded(&d.name).is_some_and(|r| r.password_changed_at.is_some()),
            );
            DeviceChoice {
                name: d.name.clone(),
                password,
                change,
                rotate_request,
                previous,
                changed_at,
            }
        })
        .collect()
}

/// The grace period that applies, and what to tell the user when the one written cannot be
/// read (the schema refuses such values; an object stored before it could hold one). Then
/// no grace period applies: the passwords themselves are known and stay pushed (removing the
/// user, or at domain level every user, from the registrar for a bad grace period would be
/// out of all proportion), a running grace period ends, and the Stalled condition says what
/// to fix.
fn grace_period(user: &SipUser, domain: &SipDomain) -> (Option<std::time::Duration>, Option<String>) {
    match crate::rotation::effective_grace_period(
        user.spec.credentials.rotation_grace_period.as_deref(),
        domain.spec.password_policy.rotation_grace_period.as_deref(),
    ) {
        Ok(grace) => (grace, None),
        Err(problem) => (
            None,
            Some(format!(
                "rotationGracePeriod (spec.credentials, else the SipDomain's spec.passwordPolicy): {problem}; \
                 write it as hours, minutes and seconds, e.g. 24h, 90m or 1h30m. Until then no grace period \
                 applies: a previous password is refused at once"
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PasswordPolicy;

    fn api_error(code: u16, reason: &str) -> Error {
        Error::Kube {
            action: "applying Secret ns/x".into(),
            source: kube::Error::Api(Box::new(
                kube::core::Status::failure("metadata.labels: Invalid value", reason).with_code(code),
            )),
        }
    }

    #[test]
    fn graces_name_the_credentials_whose_grace_period_runs_with_their_change_time() {
        let digest = PreviousDigest {
            ha1_md5: Some("ab".repeat(16)),
            ha1_sha256: None,
            valid_until: 2000,
        };
        let contact = |au: &str, last_modified| crate::registrar::Contact {
            aor: "alice@acme.example.com".into(),
            address: "sip:alice@192.0.2.1".into(),
            user_agent: None,
            expires_in: Some(60),
            last_modified: Some(last_modified),
            auth_username: Some(au.into()),
            previous_password: false,
        };
        let mut p = Passwords::account_only(Password::new("a"));
        p.account_previous = Some(digest.clone());
        p.account_changed_at = Some(1000);
        let graces = p.graces("alice");
        assert!(graces.on_previous(&contact("alice", 900)));
        assert!(!graces.on_previous(&contact("alice", 1000)));
        p.devices = vec![("desk".into(), Password::new("d"))];
        p.device_previous = vec![("desk".into(), digest)];
        p.device_changed_at = vec![("desk".into(), 1500)];
        let graces = p.graces("alice");
        assert!(graces.on_previous(&contact("alice#desk", 1400)));
        assert!(
            !graces.on_previous(&contact("alice", 900)),
            "the account's own registers nothing while devices are listed"
        );
    }

    #[test]
    fn an_unreadable_grace_period_means_none_and_says_so_without_taking_the_passwords_away() {
        use crate::controller::fixtures;
        let mut user = fixtures::user("alice").build();
        let mut domain = fixtures::domain("acme").build();
        assert_eq!(grace_period(&user, &domain), (None, None));
        domain.spec.password_policy.rotation_grace_period = Some("24h".into());
        assert_eq!(
            grace_period(&user, &domain).0,
            Some(std::time::Duration::from_secs(86_400))
        );
        // Stored before the schema refused it (e.g. written by an older CRD).
        domain.spec.password_policy.rotation_grace_period = Some("1d".into());
        let (grace, problem) = grace_period(&user, &domain);
        assert_eq!(grace, None, "no grace period rather than no passwords");
        let problem = problem.expect("reported");
        assert!(problem.contains("\"1d\"") && problem.contains("24h"), "{problem}");
        user.spec.credentials.rotation_grace_period = Some("10m".into());
        assert_eq!(
            grace_period(&user, &domain),
            (Some(std::time::Duration::from_secs(600)), None),
            "the user's own wins, the domain's is not read"
        );
    }

    #[test]
    fn a_secret_written_before_a_crash_is_announced_once_its_status_records_it() {
        assert_eq!(to_announce(None, true, false), Some(PasswordChange::Created));
        assert_eq!(to_announce(None, true, true), None);
        assert_eq!(to_announce(None, false, false), None);
        assert_eq!(
            to_announce(Some(PasswordChange::Rotated), true, true),
            Some(PasswordChange::Rotated)
        );
    }

    #[test]
    fn refused_secrets_stall_and_other_failures_retry() {
        for (code, reason) in [(422, "Invalid"), (403, "Forbidden")] {
            match failure_outcome(&api_error(code, reason)) {
                Outcome::Problem { reason, message } => {
                    assert_eq!(reason, reasons::SECRET_REJECTED);
                    assert!(message.contains("metadata.labels: Invalid value"), "{message}");
                    assert!(!message.contains("Status {"), "no debug dump: {message}");
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        assert!(matches!(
            failure_outcome(&api_error(500, "InternalError")),
            Outcome::Failed { .. }
        ));
    }

    fn pw(s: &str) -> Option<Password> {
        Some(Password::new(s))
    }

    #[test]
    fn a_device_password_is_made_once_kept_and_rotated_only_when_asked() {
        let policy = PasswordPolicy::default();
        let (p, change) = choose_device_password(None, None, false, &policy);
        assert_eq!((p.expose().len(), change), (32, Some(PasswordChange::Created)));
        let (_, change) = choose_device_password(None, None, true, &policy);
        assert_eq!(
            change,
            Some(PasswordChange::Created),
            "a new device is created, not rotated"
        );
        let (p, change) = choose_device_password(pw("keep"), None, false, &policy);
        assert_eq!((p.expose(), change), ("keep", None));
        let (p, change) = choose_device_password(None, pw("moved"), false, &policy);
        assert_eq!((p.expose(), change), ("moved", None), "carried over on a rename");
        let (p, change) = choose_device_password(pw("keep"), None, true, &policy);
        assert_ne!(p.expose(), "keep");
        assert_eq!(change, Some(PasswordChange::Rotated));
        let (_, change) = choose_device_password(pw(""), None, false, &policy);
        assert_eq!(
            change,
            Some(PasswordChange::Created),
            "an empty one counts as none"
        );
    }

    #[test]
    fn removing_a_device_keeps_everything_else_of_the_secret() {
        use std::collections::BTreeMap;
        let bytes = |s: &str| k8s_openapi::ByteString(s.as_bytes().to_vec());
        let existing = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("alice-sip-credentials".into()),
                resource_version: Some("7".into()),
                labels: Some(BTreeMap::from([("team".into(), "voice".into())])),
                annotations: Some(BTreeMap::from([
                    (device_rotation_handled_annotation("soft"), "r1".into()),
                    (device_rotation_handled_annotation("desk"), "r2".into()),
                ])),
                managed_fields: Some(vec![Default::default()]),
                ..Default::default()
            },
            data: Some(BTreeMap::from([
                ("password".into(), bytes("pw")),
                ("devices.desk.password".into(), bytes("d")),
                ("devices.soft.password".into(), bytes("s")),
                ("devices.soft.username".into(), bytes("alice#soft")),
                ("note".into(), bytes("someone else's")),
            ])),
            ..Default::default()
        };
        let desired = Secret {
            metadata: kube::api::ObjectMeta {
                labels: Some(BTreeMap::from([("managed".into(), "yes".into())])),
                ..Default::default()
            },
            type_: Some("kubernetes.io/basic-auth".into()),
            data: Some(BTreeMap::from([
                ("password".into(), bytes("pw")),
                ("devices.desk.password".into(), bytes("d2")),
            ])),
            ..Default::default()
        };
        let removed = credentials::removed_devices(&existing, &desired);
        let stale = credentials::removed_keys(&existing, &desired);
        let body = without_removed_devices(&existing, &desired, &removed, &stale);
        let keys: Vec<_> = body.data.as_ref().expect("data").keys().cloned().collect();
        assert_eq!(keys, ["devices.desk.password", "note", "password"]);
        assert_eq!(
            credentials::secret_value(&body, "devices.desk.password").as_deref(),
            Some("d2")
        );
        assert_eq!(body.metadata.resource_version.as_deref(), Some("7"), "optimistic");
        assert!(body.metadata.managed_fields.is_none());
        let annotations: Vec<_> = body.annotations().keys().cloned().collect();
        assert_eq!(annotations, [device_rotation_handled_annotation("desk")]);
        assert_eq!(body.labels().len(), 2, "{:?}", body.labels());
    }

    #[test]
    fn an_ended_grace_period_takes_the_previous_digest_out_of_the_secret() {
        use std::collections::BTreeMap;
        let bytes = |s: &str| k8s_openapi::ByteString(s.as_bytes().to_vec());
        let existing = Secret {
            data: Some(BTreeMap::from([
                ("password".into(), bytes("pw")),
                ("previous.ha1".into(), bytes("ab")),
                ("previous.valid-until".into(), bytes("2026-11-23T18:31:00Z")),
                ("devices.desk.previous.ha1".into(), bytes("cd")),
                ("devices.desk.password".into(), bytes("d")),
            ])),
            ..Default::default()
        };
        let desired = Secret {
            data: Some(BTreeMap::from([
                ("password".into(), bytes("pw")),
                ("devices.desk.password".into(), bytes("d")),
                ("devices.desk.previous.ha1".into(), bytes("cd")),
            ])),
            ..Default::default()
        };
        let stale = credentials::removed_keys(&existing, &desired);
        let body = without_removed_devices(&existing, &desired, &Default::default(), &stale);
        let keys: Vec<_> = body.data.as_ref().expect("data").keys().cloned().collect();
        assert_eq!(
            keys,
            ["devices.desk.password", "devices.desk.previous.ha1", "password"],
            "the account's ended, the device's still runs"
        );
    }

    #[test]
    fn a_chosen_password_request_is_pending_until_its_label_is_recorded_as_handled() {
        let secret = |key: Option<&str>, label: Option<&str>, handled: Option<&str>| {
            let mut annotations = std::collections::BTreeMap::new();
            if let Some(l) = label {
                annotations.insert(PASSWORD_CHOSEN_ANNOTATION.to_string(), l.to_string());
            }
            if let Some(h) = handled {
                annotations.insert(PASSWORD_CHOSEN_HANDLED_ANNOTATION.to_string(), h.to_string());
            }
            Secret {
                metadata: kube::api::ObjectMeta {
                    annotations: Some(annotations),
                    ..Default::default()
                },
                data: key.map(|k| {
                    [(
                        data_keys::CHOSEN_PASSWORD.to_string(),
                        k8s_openapi::ByteString(k.as_bytes().to_vec()),
                    )]
                    .into()
                }),
                ..Default::default()
            }
        };
        let pending = chosen_request(Some(&secret(Some("Chosen-2026!"), Some("t2"), Some("t1"))))
            .expect("a new request");
        assert_eq!(
            (pending.0.expose(), pending.1.as_deref()),
            ("Chosen-2026!", Some("t2"))
        );
        assert!(
            chosen_request(Some(&secret(Some("Chosen-2026!"), Some("t2"), Some("t2")))).is_none(),
            "handled already"
        );
        assert!(
            chosen_request(Some(&secret(Some("Chosen-2026!"), None, Some("t2")))).is_some(),
            "a request without a label is still a request"
        );
        assert!(chosen_request(Some(&secret(None, Some("t3"), Some("t2")))).is_none());
        assert!(chosen_request(Some(&secret(Some(""), Some("t3"), None))).is_none());
        assert!(chosen_request(None).is_none());
    }

    #[test]
    fn a_generated_password_is_kept_until_rotation() {
        let policy = PasswordPolicy::default();
        let (p, change) =
            choose_password(Source::Generated { rotate: false }, pw("keep"), None, &policy).expect("ok");
        assert_eq!((p.expose(), change), ("keep", None));
        let (p, change) =
            choose_password(Source::Generated { rotate: true }, pw("keep"), None, &policy).expect("ok");
        assert_ne!(p.expose(), "keep");
        assert_eq!(change, Some(PasswordChange::Rotated));
    }

    #[test]
    fn a_missing_or_empty_password_is_generated_and_a_moved_one_carried_over() {
        let policy = PasswordPolicy::default();
        let (p, change) =
            choose_password(Source::Generated { rotate: false }, None, None, &policy).expect("ok");
        assert_eq!((p.expose().len(), change), (32, Some(PasswordChange::Created)));
        let (_, change) =
            choose_password(Source::Generated { rotate: false }, pw(""), None, &policy).expect("ok");
        assert_eq!(change, Some(PasswordChange::Created));
        let (p, change) =
            choose_password(Source::Generated { rotate: false }, None, pw("old"), &policy).expect("ok");
        assert_eq!((p.expose(), change), ("old", None));
    }

    #[test]
    fn an_imported_password_follows_its_source() {
        let policy = PasswordPolicy::default();
        let imported = |v: &str| Source::Imported(Ok(Password::new(v)));
        let (_, change) = choose_password(imported("a"), None, None, &policy).expect("ok");
        assert_eq!(change, Some(PasswordChange::Created));
        let (_, change) = choose_password(imported("a"), pw("a"), None, &policy).expect("ok");
        assert_eq!(change, None);
        let (p, change) = choose_password(imported("b"), pw("a"), None, &policy).expect("ok");
        assert_eq!((p.expose(), change), ("b", Some(PasswordChange::Imported)));
        let err = choose_password(Source::Imported(Err("broken".into())), pw("a"), None, &policy);
        assert_eq!(err.err().as_deref(), Some("broken"));
    }

    #[test]
    fn imported_source_problems_name_the_secret_and_key() {
        let missing = imported_password(None, "src", "pw").expect_err("missing");
        assert!(
            missing.contains("\"src\"") && missing.contains("does not exist"),
            "{missing}"
        );
        let secret = |k: &str, v: &str| Secret {
            string_data: Some([(k.to_string(), v.to_string())].into()),
            ..Default::default()
        };
        let no_key = imported_password(Some(&secret("other", "x")), "src", "pw").expect_err("no key");
        assert!(
            no_key.contains("\"src\"") && no_key.contains("\"pw\""),
            "{no_key}"
        );
        let empty = imported_password(Some(&secret("pw", "")), "src", "pw").expect_err("empty");
        assert!(empty.contains("empty"), "{empty}");
        let binary = Secret {
            data: Some(
                [(
                    "pw".to_string(),
                    k8s_openapi::ByteString(vec![0xff, 0xfe, 0x00, 0x61, 0x62, 0x63, 0x80]),
                )]
                .into(),
            ),
            ..Default::default()
        };
        let not_text = imported_password(Some(&binary), "src", "pw").expect_err("not UTF-8");
        assert!(
            not_text.contains("not UTF-8") && not_text.contains("\"src\""),
            "{not_text}"
        );
        assert_eq!(
            imported_password(Some(&secret("pw", "x")), "src", "pw").map(|p| p.expose().to_string()),
            Ok("x".into())
        );
    }
}
