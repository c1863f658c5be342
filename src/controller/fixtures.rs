//! Fluent test fixtures for the pure controller steps.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;

use crate::api::{SipDomain, SipProfile, SipUser};

fn meta(name: &str, namespace: &str, created: i64) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        uid: Some(format!("uid-{namespace}-{name}")),
        generation: Some(1),
        creation_timestamp: Some(Time(
            Timestamp::from_second(1_700_000_000 + created).expect("time"),
        )),
        ..Default::default()
    }
}

/// A SipUser `name` in namespace `ns`, domain `acme`, created at t=0.
pub fn user(name: &str) -> UserBuilder {
    let spec = serde_json::from_value(serde_json::json!({"domainRef": "acme"})).expect("user spec");
    UserBuilder(SipUser {
        metadata: meta(name, "ns", 0),
        spec,
        status: None,
    })
}

pub struct UserBuilder(SipUser);

impl UserBuilder {
    pub fn domain(mut self, d: &str) -> Self {
        self.0.spec.domain_ref = d.into();
        self
    }
    pub fn username(mut self, u: &str) -> Self {
        self.0.spec.username = Some(u.into());
        self
    }
    pub fn extension(mut self, e: &str) -> Self {
        self.0.spec.extension = Some(e.into());
        self
    }
    pub fn alias(mut self, a: &str) -> Self {
        self.0.spec.aliases.push(a.into());
        self
    }
    pub fn profile(mut self, p: &str) -> Self {
        self.0.spec.profile_ref = Some(p.into());
        self
    }
    pub fn disabled(mut self) -> Self {
        self.0.spec.enabled = false;
        self
    }
    pub fn created(mut self, secs: i64) -> Self {
        let ns = self.0.metadata.namespace.clone().unwrap_or_default();
        self.0.metadata = meta(self.0.metadata.name.as_deref().unwrap_or_default(), &ns, secs);
        self
    }
    pub fn namespace(mut self, ns: &str) -> Self {
        self.0.metadata.namespace = Some(ns.into());
        self
    }
    pub fn build(self) -> SipUser {
        self.0
    }
}

/// A SipDomain `name` in namespace `ns` for `<name>.sip.example.com`.
pub fn domain(name: &str) -> DomainBuilder {
    let spec = serde_json::from_value(serde_json::json!({"domain": format!("{name}.sip.example.com")}))
        .expect("domain spec");
    DomainBuilder(SipDomain {
        metadata: meta(name, "ns", 0),
        spec,
        status: None,
    })
}

pub struct DomainBuilder(SipDomain);

impl DomainBuilder {
    pub fn fqdn(mut self, f: &str) -> Self {
        self.0.spec.domain = f.into();
        self
    }
    pub fn namespace(mut self, ns: &str) -> Self {
        self.0.metadata.namespace = Some(ns.into());
        self
    }
    pub fn created(mut self, secs: i64) -> Self {
        let ns = self.0.metadata.namespace.clone().unwrap_or_default();
        self.0.metadata = meta(self.0.metadata.name.as_deref().unwrap_or_default(), &ns, secs);
        self
    }
    pub fn default_profile(mut self, p: &str) -> Self {
        self.0.spec.default_profile = Some(p.into());
        self
    }
    pub fn extension_pattern(mut self, p: &str) -> Self {
        self.0.spec.extension_pattern = Some(p.into());
        self
    }
    pub fn max_users(mut self, n: i32) -> Self {
        self.0.spec.max_users = Some(n);
        self
    }
    pub fn build(self) -> SipDomain {
        self.0
    }
}

impl From<DomainBuilder> for SipDomain {
    fn from(b: DomainBuilder) -> Self {
        b.0
    }
}

/// A SipProfile `name` in namespace `ns`.
pub fn profile(name: &str) -> ProfileBuilder {
    let spec = serde_json::from_value(serde_json::json!({})).expect("profile spec");
    ProfileBuilder(SipProfile {
        metadata: meta(name, "ns", 0),
        spec,
        status: None,
    })
}

pub struct ProfileBuilder(SipProfile);

impl ProfileBuilder {
    pub fn capacity(mut self, c: i32) -> Self {
        self.0.spec.capacity = Some(c);
        self
    }
    pub fn build(self) -> SipProfile {
        self.0
    }
}
