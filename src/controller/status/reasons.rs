//! Condition types and reasons: CamelCase, stable, part of the API (alerts and scripts key on
//! them). Messages carry the detail and say what to do.

/// Condition types.
pub mod types {
    /// The summary: True when everything the spec asks for is in place.
    pub const READY: &str = "Ready";
    /// True while the operator is still working towards the spec.
    pub const RECONCILING: &str = "Reconciling";
    /// True when the spec cannot be fulfilled without a change by a person.
    pub const STALLED: &str = "Stalled";
    /// The credentials Secret holds the user's current password.
    pub const CREDENTIALS_READY: &str = "CredentialsReady";
    /// The registrar holds the user as the spec says.
    pub const REGISTRAR_SYNCED: &str = "RegistrarSynced";
    /// At least one device is registered (informational: it does not gate Ready).
    pub const REGISTERED: &str = "Registered";
    /// SipDomain: its registrar endpoints are resolved and answered the last check.
    pub const REGISTRAR_READY: &str = "RegistrarReady";
}

// Healthy states.
pub const READY: &str = "Ready";
pub const SUSPENDED: &str = "Suspended";
pub const SECRET_READY: &str = "SecretReady";
pub const NO_REGISTRAR_CONFIGURED: &str = "NoRegistrarConfigured";
pub const SYNCED: &str = "Synced";
/// The registrar could not be brought in line (unreachable, refused, misconfigured).
pub const REGISTRAR_UNREACHABLE: &str = "RegistrarUnreachable";
/// Registered: devices are registered / none is / the registrar was not read yet.
pub const DEVICES_REGISTERED: &str = "DevicesRegistered";
pub const NO_DEVICES_REGISTERED: &str = "NoDevicesRegistered";
pub const REGISTRATIONS_NOT_READ: &str = "RegistrationsNotReadYet";
/// SipDomain `RegistrarReady`: every endpoint answered the last check.
pub const REGISTRAR_ENDPOINTS_READY: &str = "EndpointsReady";
/// SipDomain: its registrar Service exists but has no ready endpoint on the named port yet
/// (Kamailio starting or scaled to zero); passes by itself, so not Stalled.
pub const REGISTRAR_ENDPOINTS_NOT_READY: &str = "RegistrarEndpointsNotReady";
/// SipDomain `RegistrarReady`: not checked while the domain is stalled for another reason.
pub const REGISTRAR_NOT_CHECKED: &str = "NotChecked";
/// The False/Unknown reason of Stalled and Reconciling when they do not apply.
pub const NOT_STALLED: &str = "NotStalled";
pub const NOT_RECONCILING: &str = "Reconciled";
pub const PROGRESSING: &str = "Progressing";

// Stalled reasons: a person has to change something.
pub const DOMAIN_NOT_FOUND: &str = "DomainNotFound";
pub const DOMAIN_NOT_READY: &str = "DomainNotReady";
pub const PROFILE_NOT_FOUND: &str = "ProfileNotFound";
pub const DOMAIN_CONFLICT: &str = "DomainConflict";
pub const INVALID_EXTENSION_PATTERN: &str = "InvalidExtensionPattern";
pub const USERNAME_CONFLICT: &str = "UsernameConflict";
pub const EXTENSION_CONFLICT: &str = "ExtensionConflict";
pub const ALIAS_CONFLICT: &str = "AliasConflict";
pub const EXTENSION_PATTERN_MISMATCH: &str = "ExtensionPatternMismatch";
pub const DOMAIN_USER_LIMIT_REACHED: &str = "DomainUserLimitReached";
pub const PROFILE_CAPACITY_EXCEEDED: &str = "ProfileCapacityExceeded";
pub const PASSWORD_SOURCE_INVALID: &str = "PasswordSourceInvalid";
/// A `rotationGracePeriod` (the user's or its domain's) that cannot be read; the schema
/// refuses these, so only an object stored before it can hold one.
pub const ROTATION_GRACE_PERIOD_INVALID: &str = "RotationGracePeriodInvalid";
pub const SECRET_NOT_OWNED: &str = "SecretNotOwned";
/// The API server refuses the credentials Secret (invalid, or forbidden by RBAC or a quota).
pub const SECRET_REJECTED: &str = "SecretRejected";
/// Reading or writing the credentials Secret failed for a reason that may pass (retried).
pub const SECRET_WRITE_FAILED: &str = "SecretWriteFailed";
// Stalled reasons of a SipDomain whose `spec.registrar` cannot work as written; its users are
// Stalled with DOMAIN_REGISTRAR_INVALID meanwhile.
/// `spec.registrar.kamailio.tokenSecretRef` names a Secret that does not exist, or a key that
/// is missing or empty in it.
pub const REGISTRAR_TOKEN_NOT_FOUND: &str = "RegistrarTokenNotFound";
/// `spec.registrar.kamailio.service` names a Service that does not exist.
pub const REGISTRAR_SERVICE_NOT_FOUND: &str = "RegistrarServiceNotFound";
/// The registrar Service has no port named `spec.registrar.kamailio.service.portName`.
pub const REGISTRAR_SERVICE_PORT_NOT_FOUND: &str = "RegistrarServicePortNotFound";
/// A registrar URL (`spec.registrar.kamailio.urls[i]`, or one made from `service.path`) is
/// one the client cannot use: not parseable, or not `http://`.
pub const REGISTRAR_URL_INVALID: &str = "RegistrarURLInvalid";
/// SipUser: its SipDomain's `spec.registrar` cannot work as written (the domain is Stalled
/// with one of the `Registrar*` reasons above); the user is pushed once it is fixed.
pub const DOMAIN_REGISTRAR_INVALID: &str = "DomainRegistrarInvalid";
/// Credentials are not written for a user that is not admitted (see the Stalled reason).
pub const NOT_ADMITTED: &str = "NotAdmitted";

/// Event reasons (Normal, except where said); other Warning events use the Stalled reason.
pub mod events {
    /// Warning: a user's failed authentications in the registrar's window reached
    /// `--auth-failure-warning-threshold` (once per crossing).
    pub const AUTHENTICATION_FAILURES: &str = "AuthenticationFailures";
    /// A first password was written (new user, or its Secret was deleted).
    pub const CREDENTIALS_CREATED: &str = "CredentialsCreated";
    /// The password was rotated as the `sipoperator.io/rotate` annotation asked.
    pub const PASSWORD_ROTATED: &str = "PasswordRotated";
    /// A changed imported password was copied into the credentials Secret.
    pub const PASSWORD_IMPORTED: &str = "PasswordImported";
    /// The end user chose the password on a SipUserInvite's page (it is in the Secret).
    pub const PASSWORD_CHOSEN: &str = "PasswordChosen";
    /// Warning: a password the end user chose on an invite's page was removed unused (a
    /// rotation asked for at the same time, or the password is imported now).
    pub const CHOSEN_PASSWORD_DISCARDED: &str = "ChosenPasswordDiscarded";
    /// A device's first password was written (the device was added, or its keys were lost).
    pub const DEVICE_CREDENTIALS_CREATED: &str = "DeviceCredentialsCreated";
    /// A device's password was rotated as its `sipoperator.io/rotate.<device>` annotation asked.
    pub const DEVICE_CREDENTIALS_ROTATED: &str = "DeviceCredentialsRotated";
}

/// SipUserInvite reasons: its `Ready`/`Stalled` conditions and Events.
pub mod invite {
    /// Ready: the link in `status.url` works until `status.expiresAt`.
    pub const ISSUED: &str = "Issued";
    /// Ready: the link was used (settings viewed or password set) and works no more.
    pub const USED: &str = "Used";
    /// Ready: the link expired unused.
    pub const EXPIRED: &str = "Expired";
    /// Not Ready yet: the SipUser's credentials are not in place (passes by itself).
    pub const WAITING_FOR_USER: &str = "WaitingForUser";
    /// Stalled: `spec.userRef` names no SipUser in the namespace.
    pub const USER_NOT_FOUND: &str = "UserNotFound";
    /// Stalled: the operator runs without `--invite-url`, so it has no link to issue.
    pub const INVITE_PAGE_NOT_CONFIGURED: &str = "InvitePageNotConfigured";
    /// Stalled: `spec.validFor` cannot be read (only an object stored before the schema).
    pub const INVALID_VALID_FOR: &str = "InvalidValidFor";
    /// Stalled: the SipUser was deleted and re-created since the link was issued (another
    /// uid); the link is dead, a new invite is needed.
    pub const USER_REPLACED: &str = "UserReplaced";
    /// Warning Event: the link was used to choose a password, but the request could not be
    /// written to the credentials Secret (it kept changing, or failed); the previous password
    /// stays, and the end user needs a new invite.
    pub const PASSWORD_NOT_SAVED: &str = "PasswordNotSaved";
}
