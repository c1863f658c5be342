//! The invite's owner reference to its SipUser, so that deleting the user deletes its
//! invites (the garbage collector does it; no finalizer is needed).
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};

use crate::api::{SipUser, SipUserInvite};
use crate::controller::error::{Error, kube_err};
use crate::keys::FIELD_MANAGER;

/// The owner references `invite` should have: its own plus one to `user`, or `None` when it
/// has one to a SipUser already (pure). Never a second: one to another uid is a user of that
/// name deleted since, whose invite must not pass to the new one (it goes with the old user,
/// and its link is dead: see `UserReplaced`).
pub fn wanted(invite: &SipUserInvite, user: &SipUser) -> Option<Vec<OwnerReference>> {
    // A user being deleted adopts nothing: an invite orphaned from it must not be tied to it
    // again (it would then go with it after all).
    if user.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let uid = user.uid()?;
    let mut refs = invite.owner_references().to_vec();
    let kind = SipUser::kind(&());
    let issued_for_another = invite
        .status
        .as_ref()
        .and_then(|s| s.user_uid.as_deref())
        .is_some_and(|issued| issued != uid);
    if issued_for_another || refs.iter().any(|r| r.uid == uid || r.kind == kind) {
        return None;
    }
    // Not the controller: the operator controls the invite; the user only scopes its life.
    refs.push(OwnerReference {
        api_version: SipUser::api_version(&()).into_owned(),
        kind: SipUser::kind(&()).into_owned(),
        name: user.name_any(),
        uid,
        controller: None,
        block_owner_deletion: None,
    });
    Some(refs)
}

/// Writes `refs` as the invite's owner references; the resourceVersion makes it fail rather
/// than drop a reference someone added meanwhile. Returns the stored invite.
pub async fn set(
    api: &Api<SipUserInvite>,
    invite: &SipUserInvite,
    refs: Vec<OwnerReference>,
) -> Result<SipUserInvite, Error> {
    let body = serde_json::json!({
        "metadata": {
            "resourceVersion": invite.resource_version(),
            "ownerReferences": refs,
        }
    });
    api.patch(
        &invite.name_any(),
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        },
        &Patch::Merge(&body),
    )
    .await
    .map_err(kube_err(format!(
        "setting the owner reference of SipUserInvite {}/{}",
        invite.namespace().unwrap_or_default(),
        invite.name_any()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    #[test]
    fn the_user_is_added_once_beside_other_owners() {
        let user = SipUser {
            metadata: ObjectMeta {
                name: Some("alice".into()),
                uid: Some("u-1".into()),
                ..Default::default()
            },
            spec: serde_json::from_value(serde_json::json!({"domainRef": "d"})).expect("spec"),
            status: None,
        };
        let other = OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "x".into(),
            uid: "c-1".into(),
            ..Default::default()
        };
        let mut invite = SipUserInvite::new(
            "inv",
            serde_json::from_value(serde_json::json!({"userRef": "alice"})).expect("spec"),
        );
        invite.metadata.owner_references = Some(vec![other.clone()]);
        let refs = wanted(&invite, &user).expect("missing");
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0], other);
        assert_eq!(
            (refs[1].kind.as_str(), refs[1].name.as_str(), refs[1].uid.as_str()),
            ("SipUser", "alice", "u-1")
        );
        assert_eq!(refs[1].api_version, "sipoperator.io/v1alpha1");
        invite.metadata.owner_references = Some(refs);
        assert_eq!(wanted(&invite, &user), None, "already there");
        let mut recreated = user.clone();
        recreated.metadata.uid = Some("u-2".into());
        assert_eq!(
            wanted(&invite, &recreated),
            None,
            "never a second SipUser owner (a user re-created with the same name)"
        );
        invite.metadata.owner_references = None;
        invite.status = Some(crate::api::SipUserInviteStatus {
            user_uid: Some("u-1".into()),
            ..Default::default()
        });
        assert_eq!(
            wanted(&invite, &recreated),
            None,
            "not adopted by another user of that name even once orphaned"
        );
    }
}
