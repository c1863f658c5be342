//! The custom resources of `sipoperator.io/v1alpha1`: one file per kind, plus the small types
//! they share. Everything the API server can check (patterns, bounds, immutability, "exactly one
//! of") lives in the schema here, so bad input is refused at `kubectl apply` time.

mod conditioned;
mod connection;
mod patterns;
mod secret_key_ref;
// Several `printcolumn(..)` entries repeat `type_ = ".."`, which clippy mistakes for a
// duplicated attribute.
#[allow(clippy::duplicated_attributes)]
mod sip_domain;
#[allow(clippy::duplicated_attributes)]
mod sip_profile;
#[allow(clippy::duplicated_attributes)]
mod sip_user;
#[allow(clippy::duplicated_attributes)]
mod sip_user_invite;

#[cfg(test)]
mod defaults_tests;

pub use conditioned::Conditioned;
pub use connection::{Connection, ConnectionSpec, OUTBOUND_PROXY_PATTERN, Transport};
pub use patterns::{
    DEVICE_NAME_PATTERN, DNS_SUBDOMAIN_PATTERN, FEATURE_NAME_PATTERN, FQDN_PATTERN, ONE_LINE_TEXT_PATTERN,
    SIP_USER_PATTERN,
};
pub use secret_key_ref::SecretKeyRef;
pub use sip_domain::{
    CharacterSet, DigestAlgorithm, KamailioRegistrar, PasswordPolicy, RegistrarEndpointStatus, RegistrarSpec,
    ServiceRef, SipDomain, SipDomainSpec, SipDomainStatus,
};
pub use sip_profile::{DEFAULT_MAX_CONTACTS, SipProfile, SipProfileSpec, SipProfileStatus};
pub use sip_user::{
    CredentialsSpec, DEVICE_AUTH_SEPARATOR, DeviceSpec, DeviceStatus, GeneratedPassword, LineStatus,
    RegistrationStatus, SecurityStatus, SipUser, SipUserSpec, SipUserStatus, device_auth_username,
    device_rotate_annotation,
};
pub use sip_user_invite::{
    InvitePhase, InviteUse, MAX_VALID_FOR_SECONDS, MIN_VALID_FOR_SECONDS, SipUserInvite, SipUserInviteSpec,
    SipUserInviteStatus, VALID_FOR_PATTERN,
};

/// The API group of every kind this operator serves.
pub const GROUP: &str = "sipoperator.io";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `kubectl get sip` lists every kind.
pub const CATEGORY: &str = "sip";
