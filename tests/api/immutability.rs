//! Immutable fields are enforced by CEL transition rules in the API server: an update through
//! the API (as a controller or `kubectl edit` would send it) is refused with the rule's message.
use kube::api::{Api, PostParams};
use kube::core::Status;
use sip_operator::api::{SipDomain, SipDomainSpec, SipUser, SipUserSpec};

use crate::support::{ControlPlane, TestNamespace};

fn domain_spec(domain: &str, realm: Option<&str>) -> SipDomainSpec {
    serde_json::from_value(serde_json::json!({"domain": domain, "realm": realm})).expect("domain spec")
}

fn user_spec(domain_ref: &str, username: Option<&str>) -> SipUserSpec {
    serde_json::from_value(serde_json::json!({"domainRef": domain_ref, "username": username}))
        .expect("user spec")
}

/// Replaces `name`'s spec with `change(spec)`; returns the API server's refusal, if any.
async fn update<K>(api: &Api<K>, name: &str, change: impl FnOnce(&mut K)) -> Option<Status>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut obj = api.get(name).await.expect("get object to update");
    change(&mut obj);
    match api.replace(name, &PostParams::default(), &obj).await {
        Ok(_) => None,
        Err(kube::Error::Api(status)) => Some(*status),
        Err(other) => panic!("update of {name} failed unexpectedly: {other}"),
    }
}

fn assert_refused(refusal: Option<Status>, field: &str, what: &str) {
    let refusal = refusal.unwrap_or_else(|| panic!("{what}: the update was accepted"));
    assert!(refusal.is_invalid(), "{what}: {refusal:?}");
    assert!(
        refusal.message.contains(field),
        "{what}: message should name {field}: {}",
        refusal.message
    );
    assert!(
        refusal.message.contains("immutable"),
        "{what}: {}",
        refusal.message
    );
}

#[tokio::test]
async fn sipdomain_domain_and_realm_are_immutable() {
    let ns = TestNamespace::create("immutable-domain");
    let api: Api<SipDomain> = Api::namespaced(ControlPlane::shared().client().await, &ns.name);
    let pp = PostParams::default();
    api.create(&pp, &SipDomain::new("d", domain_spec("d.sip.example.com", None)))
        .await
        .expect("create");

    let r = update(&api, "d", |d| d.spec.domain = "other.sip.example.com".into()).await;
    assert_refused(r, "spec.domain", "changing spec.domain");

    // The effective realm is what HA1 depends on: setting it to another value than the domain
    // is a change, spelling out the default is not.
    let r = update(&api, "d", |d| d.spec.realm = Some("another".into())).await;
    assert_refused(r, "spec.realm", "setting spec.realm to another value");
    let r = update(&api, "d", |d| d.spec.realm = Some("d.sip.example.com".into())).await;
    assert!(r.is_none(), "spelling out the default realm is no change: {r:?}");
    let r = update(&api, "d", |d| d.spec.realm = Some("changed".into())).await;
    assert_refused(r, "spec.realm", "changing an explicit spec.realm");

    // Mutable fields still change.
    let r = update(&api, "d", |d| d.spec.max_users = Some(10)).await;
    assert!(r.is_none(), "spec.maxUsers is mutable: {r:?}");
}

#[tokio::test]
async fn sipuser_domainref_and_username_are_immutable() {
    let ns = TestNamespace::create("immutable-user");
    let api: Api<SipUser> = Api::namespaced(ControlPlane::shared().client().await, &ns.name);
    let pp = PostParams::default();
    api.create(&pp, &SipUser::new("alice", user_spec("acme", None)))
        .await
        .expect("create alice");
    api.create(
        &pp,
        &SipUser::new("hotline", user_spec("acme", Some("+4930123456"))),
    )
    .await
    .expect("create hotline");

    let r = update(&api, "alice", |u| u.spec.domain_ref = "other".into()).await;
    assert_refused(r, "spec.domainRef", "changing spec.domainRef");

    // The username defaults to metadata.name: spelling that out is no change, anything else is.
    let r = update(&api, "alice", |u| u.spec.username = Some("bob".into())).await;
    assert_refused(r, "spec.username", "setting spec.username to another name");
    let r = update(&api, "alice", |u| u.spec.username = Some("alice".into())).await;
    assert!(
        r.is_none(),
        "spelling out the default username is no change: {r:?}"
    );

    let r = update(&api, "hotline", |u| u.spec.username = Some("+4930999999".into())).await;
    assert_refused(r, "spec.username", "changing an explicit spec.username");
    let r = update(&api, "hotline", |u| u.spec.username = None).await;
    assert_refused(
        r,
        "spec.username",
        "dropping spec.username (falls back to metadata.name)",
    );

    let r = update(&api, "hotline", |u| u.spec.extension = Some("7009".into())).await;
    assert!(r.is_none(), "spec.extension is mutable: {r:?}");
}
