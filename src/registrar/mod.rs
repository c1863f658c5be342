//! The registrar contract: what the reconcilers need from a SIP registrar, narrow enough that
//! an Asterisk or FreeSWITCH backend can be added without touching them. Kubernetes is the
//! source of truth; a registrar is a cache the operator keeps in sync, and it only ever
//! receives HA1 digests, never a password.
pub mod auth_failures;
pub mod contact;
pub mod entry;
#[cfg(test)]
pub mod fake;
pub mod kamailio;

pub use auth_failures::{AuthFailures, LastFailure, UserFailures};
pub use contact::Contact;
pub use entry::{
    DeviceCredentials, DeviceEntry, DialKind, EntrySpec, UserEntry, UserKey, canonical_user, is_dial_number,
};

use futures::future::BoxFuture;

/// What went wrong talking to a registrar endpoint. Messages name the endpoint and never carry
/// credentials. Clone, so that one failed batch can be told to each caller in it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RegistrarError {
    /// No connection or no HTTP answer.
    #[error("registrar endpoint {endpoint} is unreachable: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// The endpoint answered, but not with a successful RPC result.
    #[error("registrar endpoint {endpoint} refused {method}: {reason}")]
    Rejected {
        endpoint: String,
        method: String,
        reason: String,
    },
    /// The operator asked for something no registrar can hold, e.g. two realms for one SIP
    /// domain in one batch; nothing of it was sent.
    #[error("refused to push to registrar endpoint {endpoint}: {reason}")]
    Inconsistent { endpoint: String, reason: String },
    /// The users named could not be pushed, for the reason `error` gives; every other user
    /// of the batch was (e.g. users with devices on a config without the `devices` htable).
    #[error("{error}")]
    PartlyRejected {
        users: Vec<UserKey>,
        error: Box<RegistrarError>,
    },
}

impl RegistrarError {
    /// What this error means for `user` of the batch it came from: nothing when the batch
    /// failed only for others.
    pub fn for_user(&self, user: &UserKey) -> Option<&RegistrarError> {
        match self {
            RegistrarError::PartlyRejected { users, error } => users.contains(user).then_some(error.as_ref()),
            other => Some(other),
        }
    }
}

/// One registrar endpoint.
pub trait Registrar: Send + Sync {
    /// Where it is, for status and messages (no credentials in it).
    fn endpoint(&self) -> &str;

    /// Creates or replaces the users. The realm of each user's SIP domain goes with them:
    /// a registrar that keeps it per domain has it before any user of that domain.
    fn upsert<'a>(&'a self, users: &'a [UserEntry]) -> BoxFuture<'a, Result<(), RegistrarError>>;

    /// Removes the users and drops their registered contacts.
    fn remove<'a>(&'a self, users: &'a [UserKey]) -> BoxFuture<'a, Result<(), RegistrarError>>;

    /// The sync marker the operator left on this endpoint for SIP domain `domain`, `None`
    /// when there is none (a registrar that restarted lost it along with its users). One per
    /// domain, so that domains sharing a registrar each notice its restart.
    fn sync_marker<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, Result<Option<String>, RegistrarError>>;

    /// Leaves a new sync marker for SIP domain `domain`.
    fn set_sync_marker<'a>(
        &'a self,
        domain: &'a str,
        marker: &'a str,
    ) -> BoxFuture<'a, Result<(), RegistrarError>>;

    /// Every live registration on the endpoint, in one bulk read (not one call per user).
    /// Lapsed contacts the registrar has not purged yet are left out.
    fn registrations(&self) -> BoxFuture<'_, Result<Vec<Contact>, RegistrarError>>;

    /// Failed authentications on the endpoint, in one bulk read whose size follows the users
    /// and sources that failed (not all users). A registrar that does not count them reports
    /// none.
    fn auth_failures(&self) -> BoxFuture<'_, Result<AuthFailures, RegistrarError>>;
}
