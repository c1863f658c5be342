//! The defaults serde applies when the operator reads an object must be the defaults the API
//! server writes from the schema, or the operator would act on another spec than users see.
use kube::CustomResourceExt;
use serde_json::{Value, json};

use super::{SipDomain, SipDomainSpec, SipProfile, SipProfileSpec, SipUser, SipUserSpec};

/// The schema `default` at a `.`-separated path under `spec`.
fn schema_default<K: CustomResourceExt>(path: &str) -> Value {
    let crd = serde_json::to_value(K::crd()).expect("CRD to JSON");
    let mut node = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    for part in path.split('.') {
        node = &node["properties"][part];
    }
    node["default"].clone()
}

#[test]
fn domain_defaults_match_the_schema() {
    let spec: SipDomainSpec =
        serde_json::from_value(json!({"domain": "a.example.com"})).expect("minimal domain");
    let as_json = serde_json::to_value(&spec).expect("to JSON");
    for field in ["passwordPolicy", "digestAlgorithms"] {
        assert_eq!(as_json[field], schema_default::<SipDomain>(field), "{field}");
    }
    assert_eq!(
        as_json["passwordPolicy"],
        json!({"length": 32, "characterSet": "Alphanumeric"})
    );
    assert_eq!(as_json["digestAlgorithms"], json!(["MD5"]));
    assert_eq!(
        spec.realm, None,
        "realm falls back to the domain at use, not in the stored spec"
    );
}

#[test]
fn profile_defaults_match_the_schema() {
    let spec: SipProfileSpec = serde_json::from_value(json!({})).expect("minimal profile");
    assert_eq!(
        json!(spec.max_contacts),
        schema_default::<SipProfile>("maxContacts")
    );
    assert_eq!(spec.max_contacts, super::sip_profile::DEFAULT_MAX_CONTACTS);
    assert_eq!(spec.capacity, None, "no capacity means unlimited");
}

#[test]
fn user_defaults_match_the_schema() {
    let spec: SipUserSpec = serde_json::from_value(json!({"domainRef": "acme"})).expect("minimal user");
    assert_eq!(json!(spec.enabled), schema_default::<SipUser>("enabled"));
    assert!(spec.enabled);
    assert_eq!(
        serde_json::to_value(&spec.credentials).expect("to JSON"),
        schema_default::<SipUser>("credentials")
    );
    assert_eq!(spec.credentials.generated, None);
    assert_eq!(spec.credentials.password_secret_ref, None);
}

#[test]
fn digest_algorithm_names_are_the_rfc_spellings() {
    use super::DigestAlgorithm::*;
    assert_eq!(
        serde_json::to_value([Md5, Sha256]).expect("to JSON"),
        json!(["MD5", "SHA-256"])
    );
}

#[test]
fn device_defaults_match_the_schema() {
    let spec: SipUserSpec =
        serde_json::from_value(json!({"domainRef": "acme", "devices": [{"name": "desk"}]}))
            .expect("user with a device");
    let crd = serde_json::to_value(SipUser::crd()).expect("CRD to JSON");
    let devices = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["devices"];
    assert_eq!(
        json!(spec.devices[0].enabled),
        devices["items"]["properties"]["enabled"]["default"]
    );
    assert!(
        spec.devices[0].enabled,
        "a listed device is enabled unless it says otherwise"
    );
    assert_eq!(devices["x-kubernetes-list-type"], json!("map"));
    assert_eq!(devices["x-kubernetes-list-map-keys"], json!(["name"]));
    assert_eq!(devices["maxItems"], json!(16));
    let none: SipUserSpec = serde_json::from_value(json!({"domainRef": "acme"})).expect("minimal user");
    assert!(none.devices.is_empty());
    assert!(
        serde_json::to_value(&none)
            .expect("to JSON")
            .get("devices")
            .is_none(),
        "an object without devices reads back without them"
    );
}
