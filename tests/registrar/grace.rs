//! Rotation without downtime, with the shipped config and the operator's own registrar
//! client: after a password change pushed with the previous digest and a deadline a few
//! seconds ahead, a phone on the old password keeps refreshing until the deadline and is
//! refused after it (the config checks `$TS`, before the operator pushes anything), a new
//! phone registers with the new password at once, the journal says which contacts are on
//! the old password, and the push after the deadline drops them. Without a grace period the
//! old password is refused at once, as before.
use std::time::{Duration, Instant};

use sip_operator::api::DigestAlgorithm;
use sip_operator::credentials::{Password, ha1};
use sip_operator::registrar::kamailio::Kamailio as Client;
use sip_operator::registrar::{DeviceCredentials, EntrySpec, Registrar as _, UserEntry};
use sip_operator::rotation::PreviousDigest;

use crate::DOMAIN;
use crate::support::kamailio::{Kamailio, free_port, random_token};
use crate::support::sipp::Registration;

/// Seconds of grace in these tests: long enough for a few SIPp exchanges, short for CI.
const GRACE: i64 = 8;

fn password(tag: &str) -> Password {
    Password::new(format!("{tag}-{}", &random_token()[..12]))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The previous digest of `old` for digest username `auth`, valid until `until`.
fn previous(auth: &str, old: &Password, until: i64) -> PreviousDigest {
    PreviousDigest {
        ha1_md5: Some(ha1(DigestAlgorithm::Md5, auth, DOMAIN, old)),
        ha1_sha256: None,
        valid_until: until,
    }
}

/// alice's entry: the account with `account` (and its previous digest), or, with `device`,
/// a device `desk` with that password instead.
fn entry(account: &Password, previous: Option<&PreviousDigest>, device: bool) -> UserEntry {
    let devices = [DeviceCredentials {
        name: "desk",
        password: account,
        previous,
        changed_at: None,
    }];
    UserEntry::build(&EntrySpec {
        username: "alice",
        domain: DOMAIN,
        realm: DOMAIN,
        password: account,
        previous: if device { None } else { previous },
        changed_at: None,
        devices: if device { &devices } else { &[] },
        algorithms: &[DigestAlgorithm::Md5],
        max_contacts: 2,
        extension: None,
        aliases: &[],
        flags: &[],
        barge_group: None,
        caller_id: None,
    })
}

struct Phones {
    kamailio: Kamailio,
    client: Client,
    auth: &'static str,
}

impl Phones {
    fn start(device: bool) -> Self {
        let kamailio = Kamailio::start();
        let client = Client::new(&kamailio.rpc_url(), Some(kamailio.token().to_string())).expect("client");
        let auth = if device { "alice#desk" } else { "alice" };
        Self {
            kamailio,
            client,
            auth,
        }
    }

    /// A phone of alice on `port` with `password` (Expires 300): the final status.
    fn register(&self, port: u16, password: &Password) -> u16 {
        Registration::new("alice", DOMAIN, password.expose())
            .auth_username(self.auth)
            .expires(300)
            .local_port(port)
            .run(self.kamailio.sip_addr())
            .status
    }

    async fn push(&self, entry: UserEntry) {
        self.client.upsert(&[entry]).await.expect("upsert");
    }

    /// alice's contacts as the operator reads them: (address's port, on the old password).
    async fn contacts(&self) -> Vec<(u16, bool)> {
        let mut seen: Vec<(u16, bool)> = self
            .client
            .registrations()
            .await
            .expect("registrations")
            .into_iter()
            .filter(|c| c.aor == format!("alice@{DOMAIN}"))
            .map(|c| {
                let port = c
                    .address
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.split(';').next())
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                (port, c.previous_password)
            })
            .collect();
        seen.sort();
        seen
    }
}

/// The whole grace period for the account (`device` false) or a device (`device` true).
async fn old_password_works_until_the_deadline_then_only_the_new_one(device: bool) {
    let r = Phones::start(device);
    let (old, new) = (password("old"), password("new"));
    r.push(entry(&old, None, device)).await;
    let (old_port, new_port) = (free_port(true), free_port(true));
    assert_eq!(r.register(old_port, &old), 200, "before the rotation");

    let deadline = unix_now() + GRACE;
    r.push(entry(&new, Some(&previous(r.auth, &old, deadline)), device))
        .await;
    assert_eq!(
        r.register(new_port, &new),
        200,
        "a new phone, the new password at once"
    );
    assert_eq!(r.register(old_port, &old), 200, "the old phone refreshes");
    let mut both = vec![(old_port, true), (new_port, false)];
    both.sort();
    // The config journals a REGISTER right after save() replied: a read just after the 200
    // may not see it yet, the next one does.
    crate::support::eventually(
        "the journal to say which contact is on the old password",
        Duration::from_secs(5),
        || async { (r.contacts().await == both).then_some(()) },
    )
    .await;
    assert_eq!(
        r.register(free_port(true), &password("wrong")),
        403,
        "a wrong password is still wrong"
    );

    // Refresh with the old password until it is refused: never before the deadline, and
    // within a few seconds after it (the config compares its clock, nothing was pushed).
    let give_up = Instant::now() + Duration::from_secs(GRACE as u64 + 10);
    let refused_at = loop {
        let before = unix_now();
        let status = r.register(old_port, &old);
        if status != 200 {
            assert_eq!(status, 403, "refused as a wrong password");
            break before;
        }
        assert!(
            before < deadline,
            "accepted at {before}, after the deadline {deadline}"
        );
        assert!(Instant::now() < give_up, "the old password was never refused");
        tokio::time::sleep(Duration::from_millis(700)).await;
    };
    assert!(
        refused_at >= deadline - 1,
        "refused at {refused_at}, before the deadline {deadline}"
    );
    assert_eq!(r.register(new_port, &new), 200, "the new password still works");
    assert_eq!(r.contacts().await.len(), 2, "the old contact is still registered");

    // The operator's push after the deadline (without the previous digest) drops the
    // contact that is still on the old password; the new one stays.
    r.push(entry(&new, None, device)).await;
    assert_eq!(r.contacts().await, [(new_port, false)]);
}

#[tokio::test]
async fn an_accounts_old_password_works_until_the_deadline_then_only_the_new_one() {
    old_password_works_until_the_deadline_then_only_the_new_one(false).await;
}

#[tokio::test]
async fn a_devices_old_password_works_until_the_deadline_then_only_the_new_one() {
    old_password_works_until_the_deadline_then_only_the_new_one(true).await;
}

#[tokio::test]
async fn without_a_grace_period_the_old_password_is_refused_at_once() {
    let r = Phones::start(false);
    let (old, new) = (password("old"), password("new"));
    r.push(entry(&old, None, false)).await;
    let port = free_port(true);
    assert_eq!(r.register(port, &old), 200);
    r.push(entry(&new, None, false)).await;
    assert_eq!(r.register(port, &old), 403, "refused right after the change");
    assert_eq!(r.register(free_port(true), &new), 200);

    // A previous digest whose deadline has passed is refused too, pushed or not.
    let r = Phones::start(false);
    r.push(entry(&new, Some(&previous("alice", &old, unix_now() - 1)), false))
        .await;
    assert_eq!(r.register(free_port(true), &old), 403, "past the deadline");
    assert_eq!(r.register(free_port(true), &new), 200);
}

/// End to end: the operator binary against the real API server and a real Kamailio. A
/// rotation with a grace period shows its deadline and, once the registrations are read, the
/// contact still on the old password; that phone keeps refreshing while a new phone uses the
/// new password; after the deadline the status clears, the old contact is dropped, and the
/// old password is refused.
#[tokio::test]
async fn the_operator_shows_the_deadline_and_the_old_password_contact_then_clears_them() {
    use crate::setup::{Setup, WAIT};
    use crate::support::eventually;
    use sip_operator::api::SipUser;

    let s = Setup::new("e2e-grace").await;
    let spec = "  credentials: {rotationGracePeriod: 15s}\n";
    s.apply_user("alice", spec, "");
    s.registrar_synced("alice", "True").await;
    let sip = s.kamailio().sip_addr();
    let old = s.password("alice").await;
    let phone = |password: &str, port: u16| {
        Registration::new("alice", &s.fqdn, password)
            .expires(300)
            .local_port(port)
            .run(sip)
            .status
    };
    let (old_port, new_port) = (free_port(true), free_port(true));
    assert_eq!(phone(&old, old_port), 200);

    s.apply_user("alice", spec, "sipoperator.io/rotate: \"r1\"");
    let deadline = |u: &SipUser| {
        u.status
            .as_ref()
            .and_then(|st| st.previous_password_valid_until.clone())
    };
    let rotated = eventually("alice rotated with a deadline", WAIT, || async {
        let u = s.users.get_opt("alice").await.ok().flatten()?;
        let until = deadline(&u)?;
        let new = s.password("alice").await;
        (new != old).then_some((new, until))
    })
    .await;
    let (new, until) = rotated;
    assert_eq!(phone(&old, old_port), 200, "the old phone refreshes");
    assert_eq!(
        phone(&new, new_port),
        200,
        "a new phone, the new password at once"
    );
    let registration = |u: &SipUser| {
        u.status
            .as_ref()
            .and_then(|st| st.registration.as_ref())
            .map(|r| (r.contacts, r.previous_password_contacts))
    };
    eventually("two contacts, one on the old password", WAIT, || async {
        let u = s.users.get_opt("alice").await.ok().flatten()?;
        (registration(&u) == Some((2, 1))).then_some(())
    })
    .await;
    assert!(
        k8s_openapi::jiff::Timestamp::now() < until.0,
        "shown before the deadline {until:?}"
    );

    let u = eventually("the deadline to pass and the old contact to go", WAIT, || async {
        let u = s.users.get_opt("alice").await.ok().flatten()?;
        (deadline(&u).is_none() && registration(&u) == Some((1, 0))).then_some(u)
    })
    .await;
    assert!(k8s_openapi::jiff::Timestamp::now() >= until.0);
    assert_eq!(
        u.status
            .as_ref()
            .and_then(|st| st.registration.as_ref())
            .map(|r| r.contacts),
        Some(1),
        "only the new phone"
    );
    assert_eq!(phone(&old, old_port), 403, "the old password is refused");
    assert_eq!(phone(&new, new_port), 200);
}

/// A WITH_SHA256 instance checks the previous SHA-256 HA1 (`pha1sha256`) the same way, and
/// never the previous MD5 one.
#[tokio::test]
async fn a_sha256_instance_accepts_the_previous_sha256_digest_until_the_deadline() {
    use crate::digest::{Algorithm, register};
    let kamailio = Kamailio::builder().define("WITH_SHA256", "").start();
    let client = Client::new(&kamailio.rpc_url(), Some(kamailio.token().to_string())).expect("client");
    let (old, new) = (password("old"), password("new"));
    let both = [DigestAlgorithm::Md5, DigestAlgorithm::Sha256];
    let push = |previous: Option<PreviousDigest>| {
        UserEntry::build(&EntrySpec {
            username: "alice",
            domain: DOMAIN,
            realm: DOMAIN,
            password: &new,
            previous: previous.as_ref(),
            changed_at: None,
            devices: &[],
            algorithms: &both,
            max_contacts: 1,
            extension: None,
            aliases: &[],
            flags: &[],
            barge_group: None,
            caller_id: None,
        })
    };
    let sha = |p: &Password| ha1(DigestAlgorithm::Sha256, "alice", DOMAIN, p);
    let status = |p: &Password| {
        register(
            kamailio.sip_addr(),
            "alice",
            DOMAIN,
            p.expose(),
            Algorithm::Sha256,
        )
        .status
    };

    let ahead = unix_now() + 60;
    client
        .upsert(&[push(Some(PreviousDigest {
            ha1_md5: Some(ha1(DigestAlgorithm::Md5, "alice", DOMAIN, &old)),
            ha1_sha256: Some(sha(&old)),
            valid_until: ahead,
        }))])
        .await
        .expect("upsert");
    assert_eq!(status(&new), 200);
    assert_eq!(
        status(&old),
        200,
        "the previous SHA-256 digest in its grace period"
    );

    // Only an MD5 previous digest: nothing for this instance to accept.
    client
        .upsert(&[push(Some(PreviousDigest {
            ha1_md5: Some(ha1(DigestAlgorithm::Md5, "alice", DOMAIN, &old)),
            ha1_sha256: None,
            valid_until: ahead,
        }))])
        .await
        .expect("upsert");
    assert_eq!(status(&old), 403);

    // Past the deadline.
    client
        .upsert(&[push(Some(PreviousDigest {
            ha1_md5: None,
            ha1_sha256: Some(sha(&old)),
            valid_until: unix_now() - 1,
        }))])
        .await
        .expect("upsert");
    assert_eq!(status(&old), 403);
    assert_eq!(status(&new), 200);
}

/// The same end to end for a device: `status.devices[]` shows its deadline and its contact on
/// the old password, both clear after the deadline and the old contact is dropped.
#[tokio::test]
async fn the_operator_shows_a_devices_deadline_and_old_password_contact_then_clears_them() {
    use crate::setup::{Setup, WAIT};
    use crate::support::eventually;
    use sip_operator::api::{DeviceStatus, SipUser};
    use sip_operator::credentials::secret_value;

    let s = Setup::new("e2e-grace-dev").await;
    let spec = "  credentials: {rotationGracePeriod: 15s}\n  devices: [{name: desk}]\n";
    s.apply_user("alice", spec, "");
    s.registrar_synced("alice", "True").await;
    let sip = s.kamailio().sip_addr();
    let desk_password = || async {
        let secret = s
            .secrets
            .get("alice-sip-credentials")
            .await
            .expect("credentials Secret");
        secret_value(&secret, "devices.desk.password").expect("desk password")
    };
    let old = desk_password().await;
    let phone = |password: &str, port: u16| {
        Registration::new("alice", &s.fqdn, password)
            .auth_username("alice#desk")
            .expires(300)
            .local_port(port)
            .run(sip)
            .status
    };
    let (old_port, new_port) = (free_port(true), free_port(true));
    assert_eq!(phone(&old, old_port), 200);

    s.apply_user("alice", spec, "sipoperator.io/rotate.desk: \"d1\"");
    let desk = |u: &SipUser| -> Option<DeviceStatus> {
        u.status
            .as_ref()?
            .devices
            .iter()
            .find(|d| d.name == "desk")
            .cloned()
    };
    let (new, until) = eventually("the desk phone rotated with a deadline", WAIT, || async {
        let u = s.users.get_opt("alice").await.ok().flatten()?;
        let until = desk(&u)?.previous_password_valid_until?;
        let new = desk_password().await;
        (new != old).then_some((new, until))
    })
    .await;
    assert_eq!(phone(&old, old_port), 200, "the old desk phone refreshes");
    assert_eq!(phone(&new, new_port), 200, "a phone with the new password");
    eventually(
        "the desk's two contacts, one on the old password",
        WAIT,
        || async {
            let u = s.users.get_opt("alice").await.ok().flatten()?;
            let d = desk(&u)?;
            (d.contacts == 2 && d.previous_password_contacts == 1).then_some(())
        },
    )
    .await;
    assert!(k8s_openapi::jiff::Timestamp::now() < until.0);

    eventually(
        "the device's deadline to pass and its old contact to go",
        WAIT,
        || async {
            let u = s.users.get_opt("alice").await.ok().flatten()?;
            let d = desk(&u)?;
            (d.previous_password_valid_until.is_none()
                && d.contacts == 1
                && d.previous_password_contacts == 0)
                .then_some(())
        },
    )
    .await;
    assert!(k8s_openapi::jiff::Timestamp::now() >= until.0);
    assert_eq!(phone(&old, old_port), 403);
    assert_eq!(phone(&new, new_port), 200);
}

/// A phone registered before the rotation, with what is then the current password, and not
/// refreshed since (its refresh interval is longer than the grace period): it is on the
/// previous password from the change on, so the status counts it while the grace period
/// runs and the push after the deadline drops it, though it never re-registered with the
/// old password. For the account (`device: false`) or a device `desk`.
async fn a_phone_registered_before_the_rotation_counts_and_goes_at_the_deadline(device: bool) {
    use crate::setup::{Setup, WAIT};
    use crate::support::eventually;
    use sip_operator::api::SipUser;
    use sip_operator::credentials::secret_value;

    let s = Setup::new(if device {
        "e2e-grace-before-dev"
    } else {
        "e2e-grace-before"
    })
    .await;
    let devices = if device { "  devices: [{name: desk}]\n" } else { "" };
    let spec = format!("  credentials: {{rotationGracePeriod: 15s}}\n{devices}");
    s.apply_user("alice", &spec, "");
    s.registrar_synced("alice", "True").await;
    let (key, auth, rotate) = if device {
        (
            "devices.desk.password",
            "alice#desk",
            "sipoperator.io/rotate.desk: \"b1\"",
        )
    } else {
        ("password", "alice", "sipoperator.io/rotate: \"b1\"")
    };
    let current = || async {
        let secret = s
            .secrets
            .get("alice-sip-credentials")
            .await
            .expect("credentials Secret");
        secret_value(&secret, key).expect("password")
    };
    let old = current().await;
    let sip = s.kamailio().sip_addr();
    let registered = Registration::new("alice", &s.fqdn, &old)
        .auth_username(auth)
        .expires(300)
        .local_port(free_port(true))
        .run(sip)
        .status;
    assert_eq!(registered, 200);
    // usrloc and the Secret record whole seconds: the change must fall in a later second
    // than the REGISTER for "registered before the change" to be decidable.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    s.apply_user("alice", &spec, rotate);
    // (deadline, contacts, of which on the previous password), the account's or the desk's.
    let seen = |u: &SipUser| {
        let st = u.status.as_ref()?;
        if device {
            let d = st.devices.iter().find(|d| d.name == "desk")?;
            Some((
                d.previous_password_valid_until.clone(),
                d.contacts,
                d.previous_password_contacts,
            ))
        } else {
            let r = st.registration.as_ref()?;
            Some((
                st.previous_password_valid_until.clone(),
                r.contacts,
                r.previous_password_contacts,
            ))
        }
    };
    let until = eventually(
        "the rotation, and the phone counted on the previous password",
        WAIT,
        || async {
            let u = s.users.get_opt("alice").await.ok().flatten()?;
            let (until, contacts, previous) = seen(&u)?;
            let until = until?;
            (current().await != old && contacts == 1 && previous == 1).then_some(until)
        },
    )
    .await;
    assert!(
        k8s_openapi::jiff::Timestamp::now() < until.0,
        "counted before the deadline {until:?}"
    );
    let regs = s.kamailio().contacts(&format!("alice@{}", s.fqdn)).len();
    assert_eq!(regs, 1, "still registered during the grace period");

    eventually(
        "the deadline to pass and the phone's contact to go",
        WAIT,
        || async {
            let u = s.users.get_opt("alice").await.ok().flatten()?;
            let gone = s.kamailio().contacts(&format!("alice@{}", s.fqdn)).is_empty();
            (seen(&u)? == (None, 0, 0) && gone).then_some(())
        },
    )
    .await;
    assert!(k8s_openapi::jiff::Timestamp::now() >= until.0);
}

#[tokio::test]
async fn an_account_phone_registered_before_the_rotation_counts_and_goes_at_the_deadline() {
    a_phone_registered_before_the_rotation_counts_and_goes_at_the_deadline(false).await;
}

#[tokio::test]
async fn a_device_registered_before_the_rotation_counts_and_goes_at_the_deadline() {
    a_phone_registered_before_the_rotation_counts_and_goes_at_the_deadline(true).await;
}
