//! Writes a status subresource with server-side apply, only when it differs from what is stored.
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::controller::cache::Lean;
use crate::controller::cache::echoes::{Written, fingerprint};
use crate::controller::error::{Error, kube_err};
use crate::keys::FIELD_MANAGER;

/// Applies `desired` as the status of `obj` unless the server holds it already: `current`
/// (the cached one), or our own last write while the cache does not show it yet. Returns
/// whether a write happened. The answer is decoded as [`Lean`], so an object whose
/// managedFields nest deeper than the decoder's limit can still be written.
pub async fn apply_if_changed<K, S>(
    client: &kube::Client,
    written: &Written,
    obj: &K,
    current: Option<&S>,
    desired: &S,
) -> Result<bool, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    // The cached copy may not show our last write yet: then that write, not the cache, is
    // what the server holds.
    // (Fingerprinted only when it is needed: a no-op reconcile compares with the cache.)
    let uid = obj.uid().unwrap_or_default();
    let pending = written.pending(&uid);
    if pending.is_none() && current == Some(desired) {
        return Ok(false);
    }
    let fingerprint = fingerprint(desired);
    if pending == Some(fingerprint) {
        return Ok(false);
    }
    // Server-side apply of a subresource needs apiVersion and kind in the body.
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": desired,
    });
    let name = obj.name_any();
    let api: Api<Lean<K>> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    written.sending(&uid, fingerprint);
    let stored = api
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await;
    // A status change by someone else meanwhile queues nothing (statuses are ours alone).
    written.answered(
        &uid,
        stored
            .as_ref()
            .ok()
            .and_then(|s| s.meta().resource_version.clone()),
    );
    stored.map_err(kube_err(format!(
        "writing status of {} {}/{name}",
        K::kind(&()),
        obj.namespace().unwrap_or_default()
    )))?;
    Ok(true)
}
