//! Decoding an object the way the caches and the writes need it, pure: without the fields no
//! reconcile reads, and with a failure confined to the one object that caused it.
//!
//! Two reasons this is not a plain `K` (or kube's `DeserializeGuard<K>`, which buffers the
//! whole object first):
//! - The API server prunes unknown fields from a custom resource's spec but keeps them in
//!   `metadata.managedFields`, so an accepted object can carry JSON nested deeper than
//!   serde_json's recursion limit (128). Decoding it failed the whole list or watch page, and
//!   with it every object of the kind in the namespace. `managedFields` is skipped here with
//!   `IgnoredAny`, which serde_json walks without recursion, so no nesting depth breaks it.
//! - `managedFields` and `kubectl.kubernetes.io/last-applied-configuration` (a whole copy of the
//!   object that client-side `kubectl apply` and GitOps tools leave) are most of a cached
//!   object's memory and are never read.
//!
//! Each object is first captured as raw JSON text (also without recursion), so anything else
//! wrong with it becomes an [`Unreadable`] naming the object instead of a failed page.
use std::borrow::Cow;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::object_identity::Identity;

/// The annotation client-side `kubectl apply` writes: the whole last applied object.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// An object of kind `K` as read from the API server: decoded without `managedFields` and the
/// last-applied annotation, or why it could not be.
#[derive(Clone, Debug)]
pub struct Lean<K>(pub Result<K, Unreadable>);

/// An object that does not decode as its kind, with the identity it could still be read with.
#[derive(Clone, Debug)]
pub struct Unreadable {
    /// Name, namespace, uid and resourceVersion as far as they could be read (boxed: the
    /// error path should not make every decoded object's `Result` larger).
    pub metadata: Box<ObjectMeta>,
    /// What the decoder said (a type or shape problem; never the object's content).
    pub error: String,
}

impl<K> Lean<K> {
    /// The decoded object, or why it could not be decoded.
    pub fn into_result(self) -> Result<K, Unreadable> {
        self.0
    }
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Lean<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Only a failure to even delimit the value fails the page: that is malformed JSON,
        // which the API server never sends.
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Lean(decode(raw.get())))
    }
}

/// Decodes one object's JSON text as `K` (see the module docs for what is left out).
pub fn decode<K: DeserializeOwned>(json: &str) -> Result<K, Unreadable> {
    let unreadable = |error: serde_json::Error| Unreadable {
        metadata: Box::new(identity(json)),
        error: error.to_string(),
    };
    let Stripped(object) = serde_json::from_str(json).map_err(unreadable)?;
    serde_json::from_value(Value::Object(object)).map_err(unreadable)
}

/// The identity fields of an object, read leniently (everything else ignored).
fn identity(json: &str) -> ObjectMeta {
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        metadata: Option<Identity>,
    }
    let id = serde_json::from_str::<Head>(json)
        .ok()
        .and_then(|h| h.metadata)
        .unwrap_or_default();
    id.into_meta(None)
}

/// A top-level object whose `metadata` lost `managedFields` and the last-applied annotation.
struct Stripped(Map<String, Value>);

impl<'de> Deserialize<'de> for Stripped {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor).map(Stripped)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = if key == "metadata" {
                Value::Object(map.next_value::<Metadata>()?.0)
            } else {
                map.next_value::<Value>()?
            };
            out.insert(key, value);
        }
        Ok(out)
    }
}

struct Metadata(Map<String, Value>);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MetadataVisitor).map(Metadata)
    }
}

struct MetadataVisitor;

impl<'de> Visitor<'de> for MetadataVisitor {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("object metadata")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "managedFields" => {
                    map.next_value::<IgnoredAny>()?;
                }
                "annotations" => {
                    let mut annotations = map.next_value::<Map<String, Value>>()?;
                    annotations.remove(LAST_APPLIED_ANNOTATION);
                    out.insert(key, Value::Object(annotations));
                }
                _ => {
                    out.insert(key, map.next_value::<Value>()?);
                }
            }
        }
        Ok(out)
    }
}

impl<K: Resource> Resource for Lean<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        match &self.0 {
            Ok(obj) => obj.meta(),
            Err(unreadable) => &unreadable.metadata,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match &mut self.0 {
            Ok(obj) => obj.meta_mut(),
            Err(unreadable) => &mut unreadable.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SipUser;
    use kube::ResourceExt;

    fn nested(depth: usize) -> String {
        let mut s = String::from("{}");
        for _ in 0..depth {
            s = format!("{{\"f:a\":{s}}}");
        }
        s
    }

    fn user_json(managed_fields_depth: usize, annotations: &str) -> String {
        format!(
            r#"{{"apiVersion":"sipoperator.io/v1alpha1","kind":"SipUser",
              "metadata":{{"name":"deep","namespace":"t","uid":"u1","resourceVersion":"7",
                "annotations":{annotations},
                "managedFields":[{{"manager":"kubectl","operation":"Apply","fieldsType":"FieldsV1",
                  "fieldsV1":{fields}}}]}},
              "spec":{{"domainRef":"acme"}}}}"#,
            fields = nested(managed_fields_depth)
        )
    }

    #[test]
    fn managed_fields_of_any_depth_are_skipped() {
        // Far past serde_json's recursion limit of 128.
        let json = user_json(5_000, "{}");
        assert!(
            serde_json::from_str::<SipUser>(&json).is_err(),
            "plain decoding fails"
        );
        let user: SipUser = decode(&json).expect("decodes without managedFields");
        assert_eq!(user.name_any(), "deep");
        assert!(user.managed_fields().is_empty());
        assert_eq!(user.spec.domain_ref, "acme");
    }

    #[test]
    fn the_last_applied_copy_is_dropped_and_other_annotations_kept() {
        let json = user_json(
            1,
            r#"{"kubectl.kubernetes.io/last-applied-configuration":"{\"big\":1}","sipoperator.io/rotate":"r1"}"#,
        );
        let user: SipUser = decode(&json).expect("decodes");
        assert_eq!(
            user.annotations().keys().collect::<Vec<_>>(),
            ["sipoperator.io/rotate"]
        );
    }

    #[test]
    fn a_bad_object_is_named_and_the_list_around_it_still_decodes() {
        let bad = r#"{"apiVersion":"sipoperator.io/v1alpha1","kind":"SipUser",
            "metadata":{"name":"bad","namespace":"t","uid":"u2","resourceVersion":"9"},
            "spec":{"domainRef":7}}"#;
        let list = format!("[{}, {bad}]", user_json(300, "{}"));
        let items: Vec<Lean<SipUser>> = serde_json::from_str(&list).expect("the list decodes");
        assert!(items[0].0.is_ok());
        let err = items[1].0.as_ref().expect_err("bad spec");
        assert_eq!(err.metadata.name.as_deref(), Some("bad"));
        assert_eq!(err.metadata.uid.as_deref(), Some("u2"));
        assert_eq!(items[1].name_any(), "bad", "Resource::meta names it too");
        assert!(
            err.error.contains("domainRef") || err.error.contains("invalid type"),
            "{}",
            err.error
        );
    }

    #[test]
    fn deep_nesting_outside_managed_fields_is_one_unreadable_object() {
        let deep_status = format!(
            r#"{{"metadata":{{"name":"x","namespace":"t"}},"spec":{{"domainRef":"d"}},"status":{}}}"#,
            nested(200)
        );
        let list = format!("[{deep_status}, {}]", user_json(1, "{}"));
        let items: Vec<Lean<SipUser>> = serde_json::from_str(&list).expect("the list decodes");
        let err = items[0].0.as_ref().expect_err("too deep");
        assert_eq!(err.metadata.name.as_deref(), Some("x"));
        assert!(items[1].0.is_ok());
    }
}
