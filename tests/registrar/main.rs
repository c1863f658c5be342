//! The shipped Kamailio config (`charts/sip-operator/files/kamailio.cfg`) on its own, proven
//! with real parts: a real Kamailio from Debian's packages, real SIP clients (SIPp), and user
//! entries pushed over JSON-RPC exactly as the operator pushes them (`htable.sets users
//! <username@domain> "ha1=..;mc=..;en=1"`), with HA1 from the operator's own library code.
//! Every test has its own Kamailio, so they run in parallel.
//!
//! Also covered: calls between registered users (INVITE routing by username), SHA-256 digest
//! (with the small client in `digest.rs`, as SIPp 3.6 speaks only MD5), the RPC endpoint's
//! guards and answers, and what a restart loses.
#[path = "../support/mod.rs"]
mod support;

mod auth;
mod auth_failures;
mod brute_force;
mod calls;
mod contacts;
mod devices;
mod dialling;
mod digest;
mod grace;
mod invites;
mod journal;
mod linphone;
mod live_registrations;
mod operator;
mod realm;
mod restart;
mod rpc;
mod scale_out;
mod scale_ul;
mod setup;
mod sha256;
mod softphone;

use sip_operator::api::DigestAlgorithm;
use sip_operator::credentials::{Password, ha1};

/// The domain (and realm) the tests register in.
pub const DOMAIN: &str = "acme.sip.example.com";

/// A user as the tests push it: the entry's key and value, and the password a phone would use.
pub struct TestUser {
    pub username: String,
    pub domain: String,
    pub password: String,
}

impl TestUser {
    /// `username@DOMAIN` with a password of its own.
    pub fn new(username: &str) -> Self {
        Self {
            username: username.to_string(),
            domain: DOMAIN.to_string(),
            password: format!("{username}-Pw-{}", &support::kamailio::random_token()[..12]),
        }
    }

    /// The htable key, `username@domain`.
    pub fn key(&self) -> String {
        format!("{}@{}", self.username, self.domain)
    }

    /// The MD5 HA1 with realm = domain, as the operator computes it.
    pub fn ha1(&self) -> String {
        ha1(
            DigestAlgorithm::Md5,
            &self.username,
            &self.domain,
            &Password::new(self.password.clone()),
        )
    }

    /// The SHA-256 HA1 (RFC 8760) with realm = domain.
    pub fn ha1_sha256(&self) -> String {
        ha1(
            DigestAlgorithm::Sha256,
            &self.username,
            &self.domain,
            &Password::new(self.password.clone()),
        )
    }

    /// The htable value for an enabled user with `max_contacts`.
    pub fn entry(&self, max_contacts: u32) -> String {
        format!("ha1={};mc={max_contacts};ext=7001;en=1", self.ha1())
    }
}
