//! Keeps registrar endpoints whole: each check reads the operator's sync marker on every
//! endpoint of a domain; an endpoint without it (a restarted Kamailio lost its memory) or with
//! another one gets a new marker and every user of the domain is reconciled, which pushes it
//! again. One cheap RPC per endpoint per interval; no API write unless the status changes.
use futures::future::join_all;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use rand::RngExt;

use super::Context;
use super::registrar_endpoints;
use crate::api::{Conditioned, RegistrarEndpointStatus, SipDomain};
use crate::registrar::Registrar;

/// Checks every endpoint of `domain`'s registrar; the status entry of each.
pub async fn check(
    domain: &SipDomain,
    previous: &[RegistrarEndpointStatus],
    ctx: &Context,
) -> Vec<RegistrarEndpointStatus> {
    let endpoints = match registrar_endpoints::resolve(domain, &ctx.client, &ctx.registrars).await {
        Ok(None) => return Vec::new(),
        Ok(Some(endpoints)) => endpoints,
        Err(message) => {
            return vec![RegistrarEndpointStatus {
                address: "(unresolved)".into(),
                last_error: Some(message),
                ..Default::default()
            }];
        }
    };
    let ns = domain.namespace().unwrap_or_default();
    let name = domain.name_any();
    let synced_users = ctx
        .stores
        .users
        .state_filter(|u| {
            u.namespace().as_deref() == Some(ns.as_str())
                && u.spec.domain_ref == name
                && u.condition_status(super::reasons::types::REGISTRAR_SYNCED) == Some("True")
        })
        .len() as i32;
    let (ns, name) = (&ns, &name);
    let checks = endpoints.iter().map(|endpoint| async move {
        let before = previous.iter().find(|p| p.address == endpoint.endpoint());
        let mut status = RegistrarEndpointStatus {
            address: endpoint.endpoint().to_string(),
            synced_users,
            last_full_sync: before.and_then(|b| b.last_full_sync.clone()),
            last_error: None,
        };
        match endpoint.sync_marker().await {
            Ok(Some(marker))
                if ctx.registrars.marker(endpoint.endpoint()).as_deref() == Some(marker.as_str()) => {}
            Ok(found) => match full_sync(domain, endpoint, ctx).await {
                Ok(()) => {
                    tracing::info!(
                        endpoint = endpoint.endpoint(),
                        domain = %format!("{ns}/{name}"),
                        restarted = found.is_none(),
                        "registrar endpoint needs every user again; re-pushing"
                    );
                    status.last_full_sync = Some(Time(k8s_openapi::jiff::Timestamp::now()));
                }
                Err(e) => status.last_error = Some(e.to_string()),
            },
            Err(e) => status.last_error = Some(e.to_string()),
        }
        status
    });
    join_all(checks).await
}

/// Leaves a new marker on the endpoint and queues every user of the domain, whose reconcile
/// pushes it (the marker goes first: a restart during the re-push is noticed next time).
async fn full_sync(
    domain: &SipDomain,
    endpoint: &crate::registrar::kamailio::Kamailio,
    ctx: &Context,
) -> Result<(), crate::registrar::RegistrarError> {
    let marker: String = {
        let mut rng = rand::rng();
        (0..16)
            .map(|_| format!("{:x}", rng.random_range(0..16u8)))
            .collect()
    };
    endpoint.set_sync_marker(&marker).await?;
    ctx.registrars.set_marker(endpoint.endpoint(), marker);
    let ns = domain.namespace();
    let name = domain.name_any();
    for user in ctx
        .stores
        .users
        .state_filter(|u| u.namespace() == ns && u.spec.domain_ref == name)
    {
        let _ = ctx
            .resync_users
            .unbounded_send(ObjectRef::from_obj(user.as_ref()));
    }
    Ok(())
}
