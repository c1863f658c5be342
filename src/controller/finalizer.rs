//! The registrar-cleanup finalizer: added before a user is first pushed, removed once its
//! cleanup ran. kube's `finalizer()` helper decodes the patched object as the reconciled type,
//! which fails for an object whose managedFields nest past the decoder's limit; these patches
//! are decoded as [`Lean`] instead. Each patch tests the list it changes, so a stale cached copy
//! or another controller's finalizer is never overwritten.
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::cache::Lean;

/// Where an object stands with one finalizer.
#[derive(Debug, PartialEq, Eq)]
pub enum Phase {
    /// Live, finalizer in place.
    Live,
    /// Live, finalizer not yet added.
    Unclaimed,
    /// Being deleted with the finalizer still in place: clean up, then release.
    Cleanup,
    /// Being deleted and already released.
    Released,
}

/// The phase of `obj` with respect to `finalizer`, pure.
pub fn phase<K: Resource>(obj: &K, finalizer: &str) -> Phase {
    let has = obj.finalizers().iter().any(|f| f == finalizer);
    match (obj.meta().deletion_timestamp.is_some(), has) {
        (false, true) => Phase::Live,
        (false, false) => Phase::Unclaimed,
        (true, true) => Phase::Cleanup,
        (true, false) => Phase::Released,
    }
}

/// The JSON patch adding `finalizer` to `current` (the finalizers as read), pure.
fn add_patch(current: &[String], finalizer: &str) -> serde_json::Value {
    if current.is_empty() {
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [finalizer]},
        ])
    } else {
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "add", "path": "/metadata/finalizers/-", "value": finalizer},
        ])
    }
}

/// The JSON patch removing `finalizer` from `current`, pure; `None` when it is not there.
fn remove_patch(current: &[String], finalizer: &str) -> Option<serde_json::Value> {
    let index = current.iter().position(|f| f == finalizer)?;
    let path = format!("/metadata/finalizers/{index}");
    Some(json!([
        {"op": "test", "path": path, "value": finalizer},
        {"op": "remove", "path": path},
    ]))
}

/// Whether a patch failed because its test did not hold: the finalizers on the server differ
/// from the (cached, possibly stale) copy it was made from. Retry on a fresh copy.
pub fn is_stale_copy(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.is_invalid() || status.is_conflict())
}

/// Adds `finalizer` to `obj` on the server.
pub async fn add<K>(api: &Api<Lean<K>>, obj: &K, finalizer: &str) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    patch(api, obj, add_patch(obj.finalizers(), finalizer)).await
}

/// Removes `finalizer` from `obj` on the server (nothing to do when it is not there).
pub async fn remove<K>(api: &Api<Lean<K>>, obj: &K, finalizer: &str) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match remove_patch(obj.finalizers(), finalizer) {
        Some(p) => patch(api, obj, p).await,
        None => Ok(()),
    }
}

async fn patch<K>(api: &Api<Lean<K>>, obj: &K, ops: serde_json::Value) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let ops: json_patch::Patch = serde_json::from_value(ops).map_err(kube::Error::SerdeError)?;
    api.patch(&obj.name_any(), &PatchParams::default(), &Patch::Json::<()>(ops))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SipUser;

    const F: &str = "sipoperator.io/registrar-cleanup";

    fn user(finalizers: &[&str], deleting: bool) -> SipUser {
        let mut u = crate::controller::fixtures::user("u").build();
        u.metadata.finalizers = Some(finalizers.iter().map(|f| f.to_string()).collect());
        if deleting {
            u.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        }
        u
    }

    #[test]
    fn phases() {
        assert_eq!(phase(&user(&[F], false), F), Phase::Live);
        assert_eq!(phase(&user(&["other"], false), F), Phase::Unclaimed);
        assert_eq!(phase(&user(&["other", F], true), F), Phase::Cleanup);
        assert_eq!(phase(&user(&[], true), F), Phase::Released);
    }

    #[test]
    fn patches_test_what_they_change() {
        assert_eq!(add_patch(&[], F)[0]["value"], serde_json::Value::Null);
        let other = ["other".to_string()];
        let p = add_patch(&other, F);
        assert_eq!(p[0]["value"], json!(["other"]));
        assert_eq!(p[1]["path"], "/metadata/finalizers/-");
        let both = ["other".to_string(), F.to_string()];
        let p = remove_patch(&both, F).expect("present");
        assert_eq!(
            p[0],
            json!({"op": "test", "path": "/metadata/finalizers/1", "value": F})
        );
        assert!(remove_patch(&other, F).is_none());
        for p in [add_patch(&other, F), remove_patch(&both, F).expect("present")] {
            serde_json::from_value::<json_patch::Patch>(p).expect("a valid JSON patch");
        }
    }
}
