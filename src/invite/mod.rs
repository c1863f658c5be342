//! Invites for end users: the one-time token of a SipUserInvite's link, its expiry, the check
//! of a password the end user chooses, and the HTTPS page that serves the link.
pub mod expiry;
pub mod policy;
pub mod token;
