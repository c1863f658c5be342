//! At start, the operator checks that the API server serves its kinds, and says how to
//! install them if not (instead of failing later with an opaque 404 in a watch).
use kube::Client;
use kube::api::{Api, ListParams};

use crate::api::{SipDomain, SipProfile, SipUser, SipUserInvite};

pub async fn ensure_installed(client: &Client) -> Result<(), String> {
    async fn probe<K>(client: &Client, plural: &str) -> Result<(), String>
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        match Api::<K>::all(client.clone())
            .list_metadata(&ListParams::default().limit(1))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.is_not_found() => Err(format!(
                "the CustomResourceDefinition {plural}.sipoperator.io is not installed; install the CRDs with \
                 `kubectl apply --server-side -f crds/` (or the Helm chart) and start the operator again"
            )),
            // Forbidden with a namespace-scoped role is fine: the kind exists.
            Err(kube::Error::Api(status)) if status.is_forbidden() => Ok(()),
            Err(e) => Err(format!("checking that {plural}.sipoperator.io is served: {e}")),
        }
    }
    probe::<SipDomain>(client, "sipdomains").await?;
    probe::<SipProfile>(client, "sipprofiles").await?;
    probe::<SipUser>(client, "sipusers").await?;
    probe::<SipUserInvite>(client, "sipuserinvites").await
}
