//! The CustomResourceDefinitions as the API server receives them, rendered to YAML for
//! `crds/` (and later the Helm chart).
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::api::{SipDomain, SipProfile, SipUser, SipUserInvite};

/// The CRDs, in the order they are best applied.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        SipDomain::crd(),
        SipProfile::crd(),
        SipUser::crd(),
        SipUserInvite::crd(),
    ]
}

/// One `(file name, YAML)` per CRD, named after the CRD (`sipusers.sipoperator.io.yaml`).
pub fn files() -> Result<Vec<(String, String)>, serde_yaml::Error> {
    all()
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            Ok((format!("{name}.yaml"), serde_yaml::to_string(&crd)?))
        })
        .collect()
}

/// All CRDs as one multi-document YAML stream.
pub fn all_yaml() -> Result<String, serde_yaml::Error> {
    Ok(files()?
        .into_iter()
        .map(|(_, yaml)| format!("---\n{yaml}"))
        .collect())
}
