//! Which objects to reconcile when another one changes: the mappers behind the watches. They
//! read the caches only, so they are cheap and testable apart from the API server.
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::Stores;
use crate::api::{SipDomain, SipProfile, SipUser};

/// What a user change triggers directly.
pub struct UserTriggers {
    pub domains: Vec<ObjectRef<SipDomain>>,
    pub profiles: Vec<ObjectRef<SipProfile>>,
}

/// A user changed: its domain and profile(s) recount. (Other users it may heal or displace
/// are the ones whose verdict moved in the admission index, swept by `healing`.)
pub fn on_user(user: &SipUser, stores: &Stores) -> UserTriggers {
    let ns = user.namespace().unwrap_or_default();
    let domains = vec![ObjectRef::new(&user.spec.domain_ref).within(&ns)];
    let domain = stores.domain(&ns, &user.spec.domain_ref);
    let mut profiles: Vec<_> = user
        .profile_name(domain.as_deref())
        .into_iter()
        .chain(user.status.as_ref().and_then(|s| s.profile.as_deref()))
        .map(|p| ObjectRef::new(p).within(&ns))
        .collect();
    profiles.dedup();
    UserTriggers { domains, profiles }
}

/// What of a SipDomain or SipProfile its users depend on: the spec (generation) and, for a
/// domain, whether it is stalled and why. Status counters (users, registered users, endpoint
/// states) change with every user and must not re-queue all of them, which would make
/// provisioning N users cost O(N²) reconciles.
pub fn user_relevant<K: kube::Resource>(
    obj: &K,
    stalled_reason: Option<&str>,
) -> (Option<i64>, Option<String>) {
    (obj.meta().generation, stalled_reason.map(str::to_string))
}

/// What of a SipUser its own reconcile reacts to: the spec (generation), its annotations (a
/// rotation request, the cleanup opt-out), its deletion, and our finalizer going away
/// (someone removed it: it is added back). Its status and the finalizer's arrival are written
/// by that reconcile (which goes on after adding the finalizer), so updates of only those must
/// not queue it again: each was another reconcile, with a Secret read, per user.
#[derive(Clone, Copy, Debug)]
pub struct UserTrigger {
    generation: Option<i64>,
    hash: u64,
    finalizer: bool,
}

impl PartialEq for UserTrigger {
    /// "Unchanged" for [`Seen`]: the finalizer arriving is no change, leaving is one.
    fn eq(&self, next: &Self) -> bool {
        self.generation == next.generation && self.hash == next.hash && (next.finalizer || !self.finalizer)
    }
}

/// The [`UserTrigger`] of `user`.
pub fn user_trigger(user: &SipUser) -> UserTrigger {
    use std::hash::{Hash, Hasher};
    let meta = &user.metadata;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meta.annotations.hash(&mut h);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .hash(&mut h);
    UserTrigger {
        generation: meta.generation,
        hash: h.finish(),
        finalizer: user
            .finalizers()
            .iter()
            .any(|f| f == crate::keys::REGISTRAR_CLEANUP_FINALIZER),
    }
}

/// The last state per object UID (e.g. [`user_relevant`]), to tell a change that matters from
/// a status-only update.
pub struct Seen<S = (Option<i64>, Option<String>)>(std::collections::HashMap<String, S>);

impl<S> Default for Seen<S> {
    fn default() -> Self {
        Seen(Default::default())
    }
}

impl<S: PartialEq + Clone> Seen<S> {
    /// Records `state` for `uid`; true when it differs from the last one (or is the first).
    /// `None` (the object is gone from the cache) is always a change, and forgets it.
    pub fn changed(&mut self, uid: &str, state: Option<S>) -> bool {
        match state {
            Some(state) => match self.0.get_mut(uid) {
                Some(known) if *known == state => {
                    *known = state;
                    false
                }
                Some(known) => {
                    *known = state;
                    true
                }
                None => {
                    self.0.insert(uid.to_string(), state);
                    true
                }
            },
            None => {
                self.0.remove(uid);
                true
            }
        }
    }
}

/// A domain changed: all its users, and the other domains claiming the same FQDN.
pub fn on_domain(
    domain: &SipDomain,
    stores: &Stores,
) -> (Vec<ObjectRef<SipUser>>, Vec<ObjectRef<SipDomain>>) {
    let users = stores
        .domain_users(domain, |_| true)
        .iter()
        .map(|u| ObjectRef::from_obj(u.as_ref()))
        .collect();
    let rivals = stores
        .domains
        .state_filter(|d| d.spec.domain == domain.spec.domain && d.uid() != domain.uid())
        .iter()
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect();
    (users, rivals)
}

/// A profile changed: the users it applies to, by spec or as last recorded.
pub fn on_profile(profile: &SipProfile, stores: &Stores) -> Vec<ObjectRef<SipUser>> {
    let ns = profile.namespace().unwrap_or_default();
    let name = profile.name_any();
    stores
        .users
        .state_filter(|u| {
            if u.namespace().as_deref() != Some(ns.as_str()) {
                return false;
            }
            let domain = stores.domain(&ns, &u.spec.domain_ref);
            u.profile_name(domain.as_deref()) == Some(name.as_str())
                || u.status.as_ref().and_then(|s| s.profile.as_deref()) == Some(name.as_str())
        })
        .iter()
        .map(|u| ObjectRef::from_obj(u.as_ref()))
        .collect()
}

/// A Secret that is not ours changed: the users importing their password from it, and the
/// users whose credentials Secret would have that name (refused as `SecretNotOwned` until the
/// foreign Secret is gone).
pub fn on_source_secret(namespace: Option<String>, name: &str, stores: &Stores) -> Vec<ObjectRef<SipUser>> {
    stores
        .users
        .state_filter(|u| {
            let imports_it = u
                .spec
                .credentials
                .password_secret_ref
                .as_ref()
                .is_some_and(|r| r.name == name);
            u.namespace() == namespace && (imports_it || u.secret_name() == name)
        })
        .iter()
        .map(|u| ObjectRef::from_obj(u.as_ref()))
        .collect()
}

/// A Secret that is not ours changed (or appeared, or went): the SipDomains of its namespace
/// that read their registrar token from it, so that one stalled on it heals at once.
pub fn on_token_secret(namespace: Option<String>, name: &str, stores: &Stores) -> Vec<ObjectRef<SipDomain>> {
    stores
        .domains
        .state_filter(|d| {
            let names_it = d
                .spec
                .registrar
                .as_ref()
                .and_then(|r| r.kamailio.token_secret_ref.as_ref())
                .is_some_and(|r| r.name == name);
            d.namespace() == namespace && names_it
        })
        .iter()
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

/// A registrar Service or one of its EndpointSlices changed (or appeared, or went): the
/// SipDomains that name that Service, so that a new endpoint gets its users and a Service
/// created late heals its domains at once.
pub fn on_registrar_service(
    namespace: Option<String>,
    service: &str,
    stores: &Stores,
) -> Vec<ObjectRef<SipDomain>> {
    let namespace = namespace.unwrap_or_default();
    stores
        .domains
        .state_filter(|d| {
            d.spec
                .registrar
                .as_ref()
                .and_then(|r| r.kamailio.service.as_ref())
                .is_some_and(|s| {
                    let svc_ns = s.namespace.clone().or_else(|| d.namespace()).unwrap_or_default();
                    s.name == service && svc_ns == namespace
                })
        })
        .iter()
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::fixtures;

    #[test]
    fn only_spec_stall_and_deletion_changes_concern_users() {
        let mut seen = Seen::default();
        let mut d = fixtures::domain("acme").build();
        d.metadata.generation = Some(1);
        assert!(seen.changed("u1", Some(user_relevant(&d, None))), "first sight");
        assert!(
            !seen.changed("u1", Some(user_relevant(&d, None))),
            "a status-only update"
        );
        assert!(seen.changed("u1", Some(user_relevant(&d, Some("DomainConflict")))));
        d.metadata.generation = Some(2);
        assert!(seen.changed("u1", Some(user_relevant(&d, Some("DomainConflict")))));
        assert!(seen.changed("u1", None), "deleted");
        assert!(
            seen.changed("u1", Some(user_relevant(&d, None))),
            "forgotten after deletion"
        );
    }

    #[test]
    fn a_user_status_write_is_not_a_trigger_but_annotations_and_deletion_are() {
        let mut u = fixtures::user("a").build();
        let first = user_trigger(&u);
        u.status = Some(Default::default());
        assert_eq!(user_trigger(&u), first, "status only");
        u.metadata.annotations = Some([("sipoperator.io/rotate".to_string(), "1".to_string())].into());
        let rotated = user_trigger(&u);
        assert_ne!(rotated, first);
        u.metadata.deletion_timestamp = u.metadata.creation_timestamp.clone();
        assert_ne!(user_trigger(&u), rotated);
        u.metadata.generation = Some(2);
        assert_ne!(user_trigger(&u), first);

        let mut seen = Seen::default();
        let mut u = fixtures::user("b").build();
        assert!(seen.changed("b", Some(user_trigger(&u))), "first sight");
        u.metadata.finalizers = Some(vec![crate::keys::REGISTRAR_CLEANUP_FINALIZER.into()]);
        assert!(
            !seen.changed("b", Some(user_trigger(&u))),
            "our own finalizer arriving"
        );
        u.metadata.finalizers = None;
        assert!(
            seen.changed("b", Some(user_trigger(&u))),
            "our finalizer removed by someone"
        );
    }
}
