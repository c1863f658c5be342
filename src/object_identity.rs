//! The identity fields of an object's metadata, read leniently: what a lean cache keys and
//! tells versions apart by, and what names an object that could not be read.
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// `name`, `namespace`, `uid`, `resourceVersion` and `labels` of a `metadata`; every other
/// field (managedFields, annotations, owner references) is skipped by serde without being
/// built, and a missing or mistyped one is left unset.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Identity {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
}

impl Identity {
    /// As `ObjectMeta`, with only the label `keep` (none when `None`).
    pub(crate) fn into_meta(self, keep: Option<&str>) -> ObjectMeta {
        let labels = keep.and_then(|key| {
            let value = self.labels?.remove(key)?;
            Some(BTreeMap::from([(key.to_string(), value)]))
        });
        ObjectMeta {
            name: self.name,
            namespace: self.namespace,
            uid: self.uid,
            resource_version: self.resource_version,
            labels,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_identity_and_only_the_named_label() {
        let id: Identity = serde_json::from_str(
            r#"{"name":"a","namespace":"n","uid":"u","resourceVersion":"7",
                "labels":{"keep":"yes","drop":"no"},"annotations":{"x":"y"}}"#,
        )
        .unwrap();
        let meta = id.into_meta(Some("keep"));
        assert_eq!(meta.name.as_deref(), Some("a"));
        assert_eq!(meta.namespace.as_deref(), Some("n"));
        assert_eq!(meta.uid.as_deref(), Some("u"));
        assert_eq!(meta.resource_version.as_deref(), Some("7"));
        assert_eq!(meta.labels, Some(BTreeMap::from([("keep".into(), "yes".into())])));
        assert_eq!(meta.annotations, None);
    }

    #[test]
    fn no_label_kept_without_a_name_or_when_absent() {
        let id = || serde_json::from_str::<Identity>(r#"{"name":"a","labels":{"keep":"yes"}}"#).unwrap();
        assert_eq!(id().into_meta(None).labels, None);
        assert_eq!(id().into_meta(Some("other")).labels, None);
    }
}
