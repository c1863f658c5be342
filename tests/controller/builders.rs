//! Small fluent builders for the objects a test applies: `user("alice").extension("7001")`.
//! Each produces the YAML-equivalent JSON a person would `kubectl apply --server-side`; the
//! scenario applies it with one field manager, so re-applying a changed builder also removes
//! the fields it no longer sets.
use serde_json::{Map, Value, json};

/// The SipDomain every scenario creates (see `Scenario::new`) and users refer to by default.
pub const DOMAIN: &str = "acme";
/// The SipProfile every scenario creates and the default domain names as `defaultProfile`.
pub const PROFILE: &str = "agent";

/// Anything the scenario can apply.
pub trait Manifest {
    /// The full object: apiVersion, kind, metadata (name at least), and the rest.
    fn manifest(&self) -> Value;
}

impl Manifest for Value {
    fn manifest(&self) -> Value {
        self.clone()
    }
}

fn sip_object(kind: &str, name: &str, annotations: &Map<String, Value>, spec: &Map<String, Value>) -> Value {
    let mut metadata = json!({ "name": name });
    if !annotations.is_empty() {
        metadata["annotations"] = Value::Object(annotations.clone());
    }
    json!({
        "apiVersion": "sipoperator.io/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
    })
}

/// A SipUser; `domainRef` is [`DOMAIN`] unless `.domain(..)` says otherwise.
#[derive(Clone, Debug)]
pub struct UserBuilder {
    name: String,
    annotations: Map<String, Value>,
    spec: Map<String, Value>,
}

pub fn user(name: &str) -> UserBuilder {
    let mut spec = Map::new();
    spec.insert("domainRef".into(), json!(DOMAIN));
    UserBuilder {
        name: name.to_string(),
        annotations: Map::new(),
        spec,
    }
}

impl UserBuilder {
    fn set(mut self, key: &str, value: Value) -> Self {
        self.spec.insert(key.to_string(), value);
        self
    }

    fn credential(mut self, key: &str, value: Value) -> Self {
        let credentials = self.spec.entry("credentials").or_insert_with(|| json!({}));
        credentials[key] = value;
        self
    }

    pub fn domain(self, domain: &str) -> Self {
        self.set("domainRef", json!(domain))
    }

    pub fn username(self, username: &str) -> Self {
        self.set("username", json!(username))
    }

    pub fn extension(self, extension: &str) -> Self {
        self.set("extension", json!(extension))
    }

    pub fn aliases(self, aliases: &[&str]) -> Self {
        self.set("aliases", json!(aliases))
    }

    pub fn profile(self, profile: &str) -> Self {
        self.set("profileRef", json!(profile))
    }

    pub fn enabled(self, enabled: bool) -> Self {
        self.set("enabled", json!(enabled))
    }

    /// `spec.devices` as given, e.g. `[{"name": "deskphone"}, {"name": "softphone", "enabled": false}]`.
    pub fn devices(self, devices: Value) -> Self {
        self.set("devices", devices)
    }

    /// The `sipoperator.io/rotate.<device>` annotation.
    pub fn rotate_device(self, device: &str, value: &str) -> Self {
        self.annotation(&sip_operator::api::device_rotate_annotation(device), value)
    }

    pub fn display_name(self, display_name: &str) -> Self {
        self.set("displayName", json!(display_name))
    }

    /// `spec.credentials.secretName`.
    pub fn secret_name(self, secret: &str) -> Self {
        self.credential("secretName", json!(secret))
    }

    /// `spec.credentials.rotationGracePeriod`, e.g. `6s` or `1h30m`.
    pub fn grace_period(self, period: &str) -> Self {
        self.credential("rotationGracePeriod", json!(period))
    }

    /// `spec.credentials.passwordSecretRef`.
    pub fn import(self, secret: &str, key: &str) -> Self {
        self.credential("passwordSecretRef", json!({ "name": secret, "key": key }))
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), json!(value));
        self
    }

    /// The `sipoperator.io/rotate` annotation.
    pub fn rotate(self, value: &str) -> Self {
        self.annotation(sip_operator::keys::ROTATE_ANNOTATION, value)
    }
}

impl Manifest for UserBuilder {
    fn manifest(&self) -> Value {
        sip_object("SipUser", &self.name, &self.annotations, &self.spec)
    }
}

/// A SipDomain claiming `fqdn`.
#[derive(Clone, Debug)]
pub struct DomainBuilder {
    name: String,
    spec: Map<String, Value>,
}

pub fn domain(name: &str, fqdn: &str) -> DomainBuilder {
    let mut spec = Map::new();
    spec.insert("domain".into(), json!(fqdn));
    DomainBuilder {
        name: name.to_string(),
        spec,
    }
}

impl DomainBuilder {
    fn set(mut self, key: &str, value: Value) -> Self {
        self.spec.insert(key.to_string(), value);
        self
    }

    pub fn realm(self, realm: &str) -> Self {
        self.set("realm", json!(realm))
    }

    pub fn default_profile(self, profile: &str) -> Self {
        self.set("defaultProfile", json!(profile))
    }

    /// `passwordPolicy`; `character_set` is `Alphanumeric` or `AlphanumericSymbols`.
    pub fn password_policy(self, length: i32, character_set: &str) -> Self {
        self.set(
            "passwordPolicy",
            json!({ "length": length, "characterSet": character_set }),
        )
    }

    /// `passwordPolicy.rotationGracePeriod` (the rest of the policy as set before, or defaults).
    pub fn grace_period(mut self, period: &str) -> Self {
        let policy = self.spec.entry("passwordPolicy").or_insert_with(|| json!({}));
        policy["rotationGracePeriod"] = json!(period);
        self
    }

    pub fn extension_pattern(self, pattern: &str) -> Self {
        self.set("extensionPattern", json!(pattern))
    }

    pub fn max_users(self, max: i32) -> Self {
        self.set("maxUsers", json!(max))
    }

    /// `spec.connection` as given (`host`, `port`, `transports`, `outboundProxy`).
    pub fn connection(self, connection: Value) -> Self {
        self.set("connection", connection)
    }

    /// `spec.registrar.kamailio` as given (`urls` or `service`, `tokenSecretRef`).
    pub fn kamailio(self, kamailio: Value) -> Self {
        self.set("registrar", json!({ "kamailio": kamailio }))
    }
}

impl Manifest for DomainBuilder {
    fn manifest(&self) -> Value {
        sip_object("SipDomain", &self.name, &Map::new(), &self.spec)
    }
}

/// A SipProfile; unlimited unless `.capacity(..)`.
#[derive(Clone, Debug)]
pub struct ProfileBuilder {
    name: String,
    spec: Map<String, Value>,
}

pub fn profile(name: &str) -> ProfileBuilder {
    ProfileBuilder {
        name: name.to_string(),
        spec: Map::new(),
    }
}

impl ProfileBuilder {
    pub fn capacity(mut self, capacity: i32) -> Self {
        self.spec.insert("capacity".into(), json!(capacity));
        self
    }

    pub fn flags(mut self, flags: &[&str]) -> Self {
        self.spec.insert("flags".into(), json!(flags));
        self
    }
}

impl Manifest for ProfileBuilder {
    fn manifest(&self) -> Value {
        sip_object("SipProfile", &self.name, &Map::new(), &self.spec)
    }
}

/// An `Opaque` Secret, e.g. the source of an imported password.
#[derive(Clone, Debug)]
pub struct SecretBuilder {
    name: String,
    string_data: Map<String, Value>,
}

pub fn secret(name: &str) -> SecretBuilder {
    SecretBuilder {
        name: name.to_string(),
        string_data: Map::new(),
    }
}

impl SecretBuilder {
    pub fn string(mut self, key: &str, value: &str) -> Self {
        self.string_data.insert(key.to_string(), json!(value));
        self
    }
}

impl Manifest for SecretBuilder {
    fn manifest(&self) -> Value {
        // `data` rather than `stringData`: server-side apply then owns exactly these keys, so
        // re-applying with a key left out removes it.
        let data: Map<String, Value> = self
            .string_data
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!(base64(v.as_str().unwrap_or_default().as_bytes())),
                )
            })
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": self.name },
            "type": "Opaque",
            "data": data,
        })
    }
}

/// Standard base64 with padding (no new crate for it).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
}
