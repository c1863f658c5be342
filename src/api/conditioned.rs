use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::{SipDomain, SipProfile, SipUser, SipUserInvite};

/// The kstatus view shared by the three kinds: their conditions and the generation they
/// describe.
pub trait Conditioned {
    /// The status conditions (empty before the operator first wrote status).
    fn conditions(&self) -> &[Condition];
    /// `status.observedGeneration`.
    fn observed_generation(&self) -> Option<i64>;

    /// The status of condition `type_` ("True", "False", "Unknown"), if present.
    fn condition_status(&self, type_: &str) -> Option<&str> {
        self.conditions()
            .iter()
            .find(|c| c.type_ == type_)
            .map(|c| c.status.as_str())
    }
}

macro_rules! conditioned {
    ($($kind:ty),*) => {$(
        impl Conditioned for $kind {
            fn conditions(&self) -> &[Condition] {
                self.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default()
            }
            fn observed_generation(&self) -> Option<i64> {
                self.status.as_ref().and_then(|s| s.observed_generation)
            }
        }
    )*};
}

conditioned!(SipUser, SipDomain, SipProfile, SipUserInvite);
