//! Issue 9, hardening: no input stops, fools or leaks through the operator. A seeded,
//! time-bounded property test generates malformed and edge-case manifests of all three kinds
//! from valid templates plus mutation classes, each carrying the outcome it must end in, and
//! applies them through the real API server while the operator runs:
//!
//! - schema violations and immutable-field changes (a second apply) must be refused by the API
//!   server with a message naming the field;
//! - problems the schema cannot express (dangling references, name clashes, limits, bad
//!   imported passwords, foreign Secrets, a broken extension pattern, a missing registrar
//!   token or Service) must end `Stalled=True` with a reason and a message, never Ready;
//! - valid edge cases (long names, unicode, unusual usernames, unknown and deeply nested
//!   fields, large annotations, bounds) must end `Ready=True`.
//!
//! Throughout, a control user keeps rotating its password and new control users keep going
//! Ready; the operator stays up, is restarted once and must still do both. Secrets the operator
//! does not own never change, and no password shows in its log, an Event or a status.
//!
//! `SIP_FUZZ_SEED` (decimal or 0x-hex, printed at the start) reproduces a run;
//! `SIP_FUZZ_SECONDS` bounds the generation (default 60), `SIP_FUZZ_CASES` caps the number of
//! cases (the run prints how many it made: pass that number to replay exactly the same cases),
//! `SIP_FUZZ_SETTLE_SECONDS` bounds the wait for final states (default 60) and
//! `SIP_FUZZ_SKIP` / `SIP_FUZZ_ONLY` (comma-separated substrings of class names) leave classes
//! out / keep only those, and `SIP_FUZZ_WORK_PER_10S` paces the cases that give the operator
//! work (default 10 per 10 s; the refused ones are not paced).
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Client, Resource};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sip_operator::api::{SipDomain, SipProfile, SipUser};

use crate::builders::{Manifest, PROFILE, base64, domain, profile, secret, user};
use crate::scenario::{
    HasConditions, Scenario, TEST_MANAGER, condition, describe, is_current, namespace_events, reasons,
    secret_data,
};
use crate::support::operator::{Operator, READY_TIMEOUT};

const DEFAULT_SEED: u64 = 0x5199_0009;
const DEFAULT_SECONDS: u64 = 60;
const DEFAULT_SETTLE_SECONDS: u64 = 60;
/// Cases applied at once.
const PARALLEL: usize = 4;
/// Cases that give the operator work (anything not refused by the API server), per 10 s.
const DEFAULT_WORK_PER_10S: u64 = 10;
/// How many of those may start at once at the beginning.
const WORK_BURST: f64 = 5.0;
/// How long one control pass (rotation followed, new user Ready) may take.
const CONTROL_WAIT: Duration = Duration::from_secs(45);
/// How long the checks that held before the restart may take to hold again after it.
const AFTER_RESTART_WAIT: Duration = Duration::from_secs(40);

/// Shared Secrets the operator does not own: a collision target and import sources.
const FOREIGN_TAKEN: &str = "foreign-taken";
const FOREIGN_SOURCE: &str = "foreign-source";
const FOREIGN_BINARY: &str = "foreign-binary";
const FOREIGN_NO_KEY: &str = "foreign-no-key";
const FOREIGN_EMPTY: &str = "foreign-empty";
/// An imported password that is not UTF-8.
const NOT_UTF8: &[u8] = &[0xff, 0xfe, 0x00, 0x61, 0x62, 0x63, 0x80];
/// A registrar URL nothing listens on (the domain itself must not depend on reaching it).
const DEAD_RPC: &str = "http://127.0.0.1:1/RPC";
/// The SipDomain's stalled reason for an extensionPattern that is no regular expression (the
/// README's table; not among the SipUser reasons `scenario::reasons` pins).
const INVALID_EXTENSION_PATTERN: &str = "InvalidExtensionPattern";
/// How long a case waits for an object it builds on to be Ready before the next apply.
const SETUP_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    User,
    Domain,
    Profile,
    Secret,
}

impl Kind {
    fn of(body: &Value) -> Kind {
        match body["kind"].as_str() {
            Some("SipUser") => Kind::User,
            Some("SipDomain") => Kind::Domain,
            Some("SipProfile") => Kind::Profile,
            Some("Secret") => Kind::Secret,
            other => panic!("the fuzz test cannot apply a {other:?}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::User => "SipUser",
            Kind::Domain => "SipDomain",
            Kind::Profile => "SipProfile",
            Kind::Secret => "Secret",
        }
    }

    fn url_path(self, ns: &str) -> String {
        match self {
            Kind::User => SipUser::url_path(&(), Some(ns)),
            Kind::Domain => SipDomain::url_path(&(), Some(ns)),
            Kind::Profile => SipProfile::url_path(&(), Some(ns)),
            Kind::Secret => Secret::url_path(&(), Some(ns)),
        }
    }
}

/// One apply of a case, and whether the API server must refuse it (naming `field`).
struct Step {
    body: Value,
    refuse: Option<String>,
    /// A SipUser that must be Ready before this apply (when who comes first is not decided by
    /// creation order but by who writes first).
    after_ready: Option<String>,
    /// Create with a plain POST instead of server-side apply: the API server then prunes
    /// unknown fields (with a warning) where server-side apply refuses them.
    create: bool,
}

/// The final state an object must reach.
#[derive(Clone, Debug)]
enum Want {
    Ready,
    /// Stalled=True, Ready not True, a message; the reason if it is pinned.
    Stalled(Option<&'static str>),
}

#[derive(Clone, Debug)]
struct Check {
    kind: Kind,
    name: String,
    want: Want,
}

/// One generated case: Secrets to create first (foreign to the operator), applies in order,
/// then the final states to reach.
struct Case {
    id: usize,
    class: String,
    secrets: Vec<Value>,
    steps: Vec<Step>,
    checks: Vec<Check>,
    /// Values that must never show in a log, an Event or a status.
    secret_values: Vec<String>,
}

impl Case {
    fn new(id: usize, class: impl Into<String>) -> Case {
        Case {
            id,
            class: class.into(),
            secrets: Vec::new(),
            steps: Vec::new(),
            checks: Vec::new(),
            secret_values: Vec::new(),
        }
    }

    fn accept(mut self, body: Value) -> Case {
        self.steps.push(Step {
            body,
            refuse: None,
            after_ready: None,
            create: false,
        });
        self
    }

    /// [`Case::accept`] through a plain create (POST) rather than server-side apply.
    fn create(mut self, body: Value) -> Case {
        self.steps.push(Step {
            body,
            refuse: None,
            after_ready: None,
            create: true,
        });
        self
    }

    /// [`Case::accept`] once SipUser `first` is Ready.
    fn accept_after_ready(mut self, first: &Value, body: Value) -> Case {
        self.steps.push(Step {
            body,
            refuse: None,
            after_ready: Some(name_of(first)),
            create: false,
        });
        self
    }

    fn refuse(mut self, body: Value, field: &str) -> Case {
        self.steps.push(Step {
            body,
            refuse: Some(field.to_string()),
            after_ready: None,
            create: false,
        });
        self
    }

    fn check(mut self, body: &Value, want: Want) -> Case {
        self.checks.push(Check {
            kind: Kind::of(body),
            name: name_of(body),
            want,
        });
        self
    }

    fn ready(self, body: &Value) -> Case {
        self.check(body, Want::Ready)
    }

    fn stalled(self, body: &Value, reason: &'static str) -> Case {
        self.check(body, Want::Stalled(Some(reason)))
    }

    fn with_secret(mut self, body: Value) -> Case {
        self.secrets.push(body);
        self
    }

    /// What the case must end in, for the table.
    fn expected(&self) -> String {
        if self.steps.last().is_some_and(|s| s.refuse.is_some()) {
            return "refused".into();
        }
        match self.checks.first() {
            Some(c) => match &c.want {
                Want::Ready => format!("ready {}", c.kind.name()),
                Want::Stalled(Some(r)) => format!("stalled {} {r}", c.kind.name()),
                Want::Stalled(None) => format!("stalled {} (any reason)", c.kind.name()),
            },
            None => "accepted".into(),
        }
    }
}

fn name_of(body: &Value) -> String {
    body["metadata"]["name"]
        .as_str()
        .expect("a manifest has a name")
        .to_string()
}

/// Sets `path` in `v`, creating objects on the way (replacing non-objects).
fn set(v: &mut Value, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().expect("a non-empty path");
    let mut at = v;
    for key in parents {
        if !at.is_object() {
            *at = json!({});
        }
        at = at
            .as_object_mut()
            .expect("an object")
            .entry(key.to_string())
            .or_insert_with(|| json!({}));
    }
    if !at.is_object() {
        *at = json!({});
    }
    at.as_object_mut()
        .expect("an object")
        .insert(last.to_string(), value);
}

fn remove(v: &mut Value, path: &[&str]) {
    let (last, parents) = path.split_last().expect("a non-empty path");
    let mut at = v;
    for key in parents {
        match at.get_mut(*key) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(o) = at.as_object_mut() {
        o.remove(*last);
    }
}

fn with(mut v: Value, path: &[&str], value: Value) -> Value {
    set(&mut v, path, value);
    v
}

/// `{"a":{"a":...{}}}`, `depth` levels.
fn nested(depth: usize) -> Value {
    let mut v = json!({});
    for _ in 0..depth {
        v = json!({ "a": v });
    }
    v
}

/// An Opaque Secret with raw bytes under `key`.
fn raw_secret(name: &str, key: &str, bytes: &[u8]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "data": {key: base64(bytes)},
    })
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    items.choose(rng).expect("a non-empty list")
}

/// [`pick`] of string slices (the borrow of the slice itself ends here).
fn pick_str<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().expect("a non-empty list")
}

/// A random alphanumeric value that no log line contains by chance.
fn token(rng: &mut StdRng, len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// A valid object name of exactly `len` characters starting with `prefix`.
fn long_name(prefix: &str, len: usize) -> String {
    let mut name = format!("{prefix}-");
    while name.len() < len {
        name.push(if name.len() % 10 == 9 { '.' } else { 'x' });
    }
    name.truncate(len);
    if name.ends_with('.') || name.ends_with('-') {
        name.pop();
        name.push('z');
    }
    name
}

/// Unicode and odd-but-valid display names (no pattern on displayName; 128 characters max).
fn display_names() -> Vec<String> {
    vec![
        "Zoë Ådne-Łukasz".into(),
        "山田 太郎".into(),
        "Ωμέγα Δέλτα".into(),
        "مرحبا بالعالم".into(),
        "שלום עולם".into(),
        "🎧 Support Desk ☎".into(),
        "A\u{301}ngstro\u{308}m".into(),
        "\u{202E}txet desrever".into(),
        "Ｆｕｌｌｗｉｄｔｈ".into(),
        "non\u{a0}breaking\u{200b}space".into(),
        "line one\nline two".into(),
        "tab\there".into(),
        "nul\u{0}byte".into(),
        "\"quoted\" <angle> \\back".into(),
        "☎".repeat(128),
        "é".repeat(128),
    ]
}

/// The test's view of the namespace it fuzzes.
struct World {
    /// `<namespace>.sip.example.com`: every case's own FQDN is `c<id>.<fqdn>`.
    fqdn: String,
}

impl World {
    fn fqdn(&self, id: usize, label: &str) -> String {
        format!("{label}{id}.{}", self.fqdn)
    }
}

/// A schema mutation: set (or remove) `path`; the refusal must name `field`.
struct Mutation {
    label: String,
    path: Vec<&'static str>,
    value: Option<Value>,
    field: &'static str,
}

fn m(label: impl Into<String>, path: &[&'static str], value: Value, field: &'static str) -> Mutation {
    Mutation {
        label: label.into(),
        path: path.to_vec(),
        value: Some(value),
        field,
    }
}

fn rm(label: impl Into<String>, path: &[&'static str], field: &'static str) -> Mutation {
    Mutation {
        label: label.into(),
        path: path.to_vec(),
        value: None,
        field,
    }
}

fn apply_mutation(mut body: Value, mutation: &Mutation) -> Value {
    match &mutation.value {
        Some(v) => set(&mut body, &mutation.path, v.clone()),
        None => remove(&mut body, &mutation.path),
    }
    body
}

/// Mutations of metadata every kind shares.
fn metadata_mutations(id: usize) -> Vec<Mutation> {
    const NAME: &[&str] = &["metadata", "name"];
    vec![
        m("name-upper-case", NAME, json!(format!("C{id}")), "metadata.name"),
        m(
            "name-underscore",
            NAME,
            json!(format!("c{id}_x")),
            "metadata.name",
        ),
        m(
            "name-leading-dash",
            NAME,
            json!(format!("-c{id}")),
            "metadata.name",
        ),
        m(
            "name-trailing-dash",
            NAME,
            json!(format!("c{id}-")),
            "metadata.name",
        ),
        m(
            "name-double-dot",
            NAME,
            json!(format!("c{id}..x")),
            "metadata.name",
        ),
        m(
            "name-254",
            NAME,
            json!(long_name(&format!("c{id}"), 254)),
            "metadata.name",
        ),
        m(
            "label-value-too-long",
            &["metadata", "labels", "fuzz"],
            json!("v".repeat(64)),
            "metadata.labels",
        ),
        m(
            "label-value-space",
            &["metadata", "labels", "fuzz"],
            json!("a b"),
            "metadata.labels",
        ),
        m(
            "annotation-key-space",
            &["metadata", "annotations", "bad key"],
            json!("x"),
            "metadata.annotations",
        ),
        m(
            "unknown-spec-field-by-apply",
            &["spec", "fuzzUnknown"],
            json!({"x": 1}),
            "spec.fuzzUnknown",
        ),
        m(
            "unknown-top-level-field-by-apply",
            &["extraTopLevel"],
            json!(true),
            "extraTopLevel",
        ),
        m(
            "annotations-over-256k",
            &["metadata", "annotations", "fuzz.sipoperator.io/blob"],
            json!("b".repeat(262_145)),
            "metadata.annotations",
        ),
    ]
}

fn user_mutations(id: usize) -> Vec<Mutation> {
    const U: &[&str] = &["spec", "username"];
    const EXT: &[&str] = &["spec", "extension"];
    const AL: &[&str] = &["spec", "aliases"];
    const DN: &[&str] = &["spec", "displayName"];
    const CID: &[&str] = &["spec", "callerId"];
    const MC: &[&str] = &["spec", "maxContacts"];
    const CR: &[&str] = &["spec", "credentials"];
    let mut list = vec![
        m("username-at", U, json!("al@ce"), "spec.username"),
        m("username-space", U, json!("al ice"), "spec.username"),
        m("username-control-char", U, json!("a\u{1}b"), "spec.username"),
        m("username-newline", U, json!("a\nb"), "spec.username"),
        m("username-tab", U, json!("a\tb"), "spec.username"),
        m("username-del", U, json!("del\u{7f}"), "spec.username"),
        m("username-nul", U, json!("a\u{0}b"), "spec.username"),
        m("username-dot", U, json!("."), "spec.username"),
        m("username-dotdot", U, json!(".."), "spec.username"),
        m("username-slash", U, json!("/"), "spec.username"),
        m("username-escaped-nul", U, json!("a%00b"), "spec.username"),
        m("username-empty", U, json!(""), "spec.username"),
        m("username-129", U, json!("u".repeat(129)), "spec.username"),
        m("username-number", U, json!(42), "spec.username"),
        m("username-bool", U, json!(true), "spec.username"),
        m("username-list", U, json!(["a"]), "spec.username"),
        m("username-object", U, json!({"a": 1}), "spec.username"),
        m("username-sip-uri", U, json!("sip:alice"), "spec.username"),
        m("username-hash", U, json!("a#b"), "spec.username"),
        m("username-angle", U, json!("a<b>"), "spec.username"),
        m("username-non-ascii", U, json!("jürgen"), "spec.username"),
        m("username-bad-escape", U, json!("alice%4"), "spec.username"),
        m("extension-space", EXT, json!("70 01"), "spec.extension"),
        m("extension-at", EXT, json!("7001@x"), "spec.extension"),
        m("extension-empty", EXT, json!(""), "spec.extension"),
        m("extension-65", EXT, json!("7".repeat(65)), "spec.extension"),
        m("extension-number", EXT, json!(7001), "spec.extension"),
        m("extension-nul", EXT, json!("7\u{0}01"), "spec.extension"),
        m(
            "aliases-bad-item",
            AL,
            json!([format!("ok{id}"), "b@d"]),
            "spec.aliases",
        ),
        m("aliases-not-a-list", AL, json!("single"), "spec.aliases"),
        m(
            "aliases-33",
            AL,
            json!((0..33).map(|k| format!("a{id}-{k}")).collect::<Vec<_>>()),
            "spec.aliases",
        ),
        m("aliases-duplicate", AL, json!(["dup", "dup"]), "spec.aliases"),
        m("aliases-empty-item", AL, json!([""]), "spec.aliases"),
        m("aliases-number-item", AL, json!([1]), "spec.aliases"),
        m("display-name-empty", DN, json!(""), "spec.displayName"),
        m("display-name-129", DN, json!("é".repeat(129)), "spec.displayName"),
        m("display-name-number", DN, json!(5), "spec.displayName"),
        m("display-name-object", DN, json!({"x": 1}), "spec.displayName"),
        m("caller-id-quote", CID, json!("\"quoted\""), "spec.callerId"),
        m("caller-id-angle", CID, json!("<sip:x@y>"), "spec.callerId"),
        m("caller-id-nul", CID, json!("a\u{0}b"), "spec.callerId"),
        m("caller-id-escape-seq", CID, json!("a\u{1b}[31m"), "spec.callerId"),
        m("caller-id-backslash", CID, json!("back\\slash"), "spec.callerId"),
        m("caller-id-65", CID, json!("1".repeat(65)), "spec.callerId"),
        m("caller-id-empty", CID, json!(""), "spec.callerId"),
        m(
            "email-255",
            &["spec", "email"],
            json!(format!("{}@example.com", "a".repeat(243))),
            "spec.email",
        ),
        m("email-number", &["spec", "email"], json!(1), "spec.email"),
        m("max-contacts-0", MC, json!(0), "spec.maxContacts"),
        m("max-contacts-101", MC, json!(101), "spec.maxContacts"),
        m("max-contacts-negative", MC, json!(-1), "spec.maxContacts"),
        m("max-contacts-string", MC, json!("3"), "spec.maxContacts"),
        m("max-contacts-float", MC, json!(2.5), "spec.maxContacts"),
        m(
            "max-contacts-huge",
            MC,
            json!(1_000_000_000_000_i64),
            "spec.maxContacts",
        ),
        m(
            "enabled-string",
            &["spec", "enabled"],
            json!("yes"),
            "spec.enabled",
        ),
        m("enabled-number", &["spec", "enabled"], json!(1), "spec.enabled"),
        m(
            "domain-ref-upper-case",
            &["spec", "domainRef"],
            json!("Acme"),
            "spec.domainRef",
        ),
        m(
            "domain-ref-empty",
            &["spec", "domainRef"],
            json!(""),
            "spec.domainRef",
        ),
        m(
            "domain-ref-underscore",
            &["spec", "domainRef"],
            json!("a_b"),
            "spec.domainRef",
        ),
        m(
            "domain-ref-number",
            &["spec", "domainRef"],
            json!(3),
            "spec.domainRef",
        ),
        rm("domain-ref-missing", &["spec", "domainRef"], "spec.domainRef"),
        m(
            "profile-ref-upper-case",
            &["spec", "profileRef"],
            json!("Gold"),
            "spec.profileRef",
        ),
        m(
            "profile-ref-space",
            &["spec", "profileRef"],
            json!("a b"),
            "spec.profileRef",
        ),
        m(
            "profile-ref-empty",
            &["spec", "profileRef"],
            json!(""),
            "spec.profileRef",
        ),
        m(
            "two-password-sources",
            CR,
            json!({"generated": {}, "passwordSecretRef": {"name": FOREIGN_SOURCE, "key": "password"}}),
            "spec.credentials",
        ),
        m(
            "password-ref-no-key",
            CR,
            json!({"passwordSecretRef": {"name": FOREIGN_SOURCE}}),
            "spec.credentials.passwordSecretRef.key",
        ),
        m(
            "password-ref-no-name",
            CR,
            json!({"passwordSecretRef": {"key": "password"}}),
            "spec.credentials.passwordSecretRef.name",
        ),
        m(
            "password-ref-key-space",
            CR,
            json!({"passwordSecretRef": {"name": FOREIGN_SOURCE, "key": "bad key"}}),
            "spec.credentials.passwordSecretRef.key",
        ),
        m(
            "password-ref-name-upper-case",
            CR,
            json!({"passwordSecretRef": {"name": "Foreign", "key": "password"}}),
            "spec.credentials.passwordSecretRef.name",
        ),
        m(
            "secret-name-underscore",
            CR,
            json!({"secretName": "Bad_Name"}),
            "spec.credentials.secretName",
        ),
        m(
            "secret-name-empty",
            CR,
            json!({"secretName": ""}),
            "spec.credentials.secretName",
        ),
        m(
            "secret-name-254",
            CR,
            json!({"secretName": long_name("s", 254)}),
            "spec.credentials.secretName",
        ),
        m("credentials-string", CR, json!("text"), "spec.credentials"),
        m(
            "generated-string",
            CR,
            json!({"generated": "x"}),
            "spec.credentials.generated",
        ),
        m(
            "generated-list",
            CR,
            json!({"generated": []}),
            "spec.credentials.generated",
        ),
        m("spec-string", &["spec"], json!("text"), "spec"),
        m("spec-list", &["spec"], json!([]), "spec"),
    ];
    list.extend(metadata_mutations(id));
    list
}

fn domain_mutations(id: usize) -> Vec<Mutation> {
    const D: &[&str] = &["spec", "domain"];
    const R: &[&str] = &["spec", "realm"];
    const DA: &[&str] = &["spec", "digestAlgorithms"];
    const PL: &[&str] = &["spec", "passwordPolicy", "length"];
    const PC: &[&str] = &["spec", "passwordPolicy", "characterSet"];
    const REG: &[&str] = &["spec", "registrar"];
    const URLS: &str = "spec.registrar.kamailio.urls";
    let url = |u: String| json!({"kamailio": {"urls": [u]}});
    let service = |extra: Value| {
        let mut s = json!({"name": "kamailio"});
        for (k, v) in extra.as_object().expect("an object") {
            s[k] = v.clone();
        }
        json!({"kamailio": {"service": s}})
    };
    let mut list = vec![
        m("domain-upper-case", D, json!("Acme.example.com"), "spec.domain"),
        m(
            "domain-dotted-quad-999",
            D,
            json!("999.999.999.999"),
            "spec.domain",
        ),
        m("domain-all-numeric", D, json!("123.456"), "spec.domain"),
        m("domain-single-label", D, json!("localhost"), "spec.domain"),
        m("domain-empty-label", D, json!("a..b.example.com"), "spec.domain"),
        m("domain-trailing-dot", D, json!("a.b."), "spec.domain"),
        m("domain-leading-dash", D, json!("-a.example.com"), "spec.domain"),
        m("domain-underscore", D, json!("a_b.example.com"), "spec.domain"),
        m("domain-space", D, json!("ex ample.com"), "spec.domain"),
        m("domain-non-ascii", D, json!("bücher.example"), "spec.domain"),
        m("domain-nul", D, json!("a.b\u{0}c"), "spec.domain"),
        m(
            "domain-254",
            D,
            json!(format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(62))),
            "spec.domain",
        ),
        m(
            "domain-label-64",
            D,
            json!(format!("{}.example.com", "a".repeat(64))),
            "spec.domain",
        ),
        m("domain-number", D, json!(1), "spec.domain"),
        rm("domain-missing", D, "spec.domain"),
        m("realm-quote", R, json!("a\"b"), "spec.realm"),
        m("realm-backslash", R, json!("a\\b"), "spec.realm"),
        m("realm-control-char", R, json!("a\u{1}b"), "spec.realm"),
        m("realm-del", R, json!("a\u{7f}"), "spec.realm"),
        m("realm-empty", R, json!(""), "spec.realm"),
        m("realm-254", R, json!("r".repeat(254)), "spec.realm"),
        m(
            "default-profile-upper-case",
            &["spec", "defaultProfile"],
            json!("Agent"),
            "spec.defaultProfile",
        ),
        m(
            "default-profile-empty",
            &["spec", "defaultProfile"],
            json!(""),
            "spec.defaultProfile",
        ),
        m("digest-none", DA, json!([]), "spec.digestAlgorithms"),
        m(
            "digest-three",
            DA,
            json!(["MD5", "SHA-256", "MD5"]),
            "spec.digestAlgorithms",
        ),
        m("digest-sha1", DA, json!(["SHA-1"]), "spec.digestAlgorithms"),
        m("digest-lower-case", DA, json!(["md5"]), "spec.digestAlgorithms"),
        m(
            "digest-duplicate",
            DA,
            json!(["MD5", "MD5"]),
            "spec.digestAlgorithms",
        ),
        m("digest-string", DA, json!("MD5"), "spec.digestAlgorithms"),
        m("password-length-15", PL, json!(15), "spec.passwordPolicy.length"),
        m(
            "password-length-129",
            PL,
            json!(129),
            "spec.passwordPolicy.length",
        ),
        m("password-length-0", PL, json!(0), "spec.passwordPolicy.length"),
        m(
            "password-length-negative",
            PL,
            json!(-1),
            "spec.passwordPolicy.length",
        ),
        m(
            "password-length-string",
            PL,
            json!("32"),
            "spec.passwordPolicy.length",
        ),
        m(
            "password-length-float",
            PL,
            json!(32.5),
            "spec.passwordPolicy.length",
        ),
        m(
            "charset-unknown",
            PC,
            json!("Hex"),
            "spec.passwordPolicy.characterSet",
        ),
        m(
            "charset-lower-case",
            PC,
            json!("alphanumeric"),
            "spec.passwordPolicy.characterSet",
        ),
        m(
            "password-policy-string",
            &["spec", "passwordPolicy"],
            json!("strong"),
            "spec.passwordPolicy",
        ),
        m(
            "max-users-negative",
            &["spec", "maxUsers"],
            json!(-1),
            "spec.maxUsers",
        ),
        m(
            "max-users-string",
            &["spec", "maxUsers"],
            json!("10"),
            "spec.maxUsers",
        ),
        m(
            "max-users-float",
            &["spec", "maxUsers"],
            json!(1.5),
            "spec.maxUsers",
        ),
        m(
            "extension-pattern-empty",
            &["spec", "extensionPattern"],
            json!(""),
            "spec.extensionPattern",
        ),
        m(
            "extension-pattern-257",
            &["spec", "extensionPattern"],
            json!("x".repeat(257)),
            "spec.extensionPattern",
        ),
        m(
            "extension-pattern-number",
            &["spec", "extensionPattern"],
            json!(7),
            "spec.extensionPattern",
        ),
        m("registrar-empty", REG, json!({}), "spec.registrar.kamailio"),
        m(
            "registrar-kamailio-empty",
            REG,
            json!({"kamailio": {}}),
            "spec.registrar.kamailio",
        ),
        m(
            "registrar-service-and-urls",
            REG,
            json!({"kamailio": {"urls": [DEAD_RPC], "service": {"name": "kamailio"}}}),
            "spec.registrar.kamailio",
        ),
        m(
            "registrar-urls-empty",
            REG,
            json!({"kamailio": {"urls": []}}),
            URLS,
        ),
        m(
            "registrar-urls-17",
            REG,
            json!({"kamailio": {"urls": (0..17).map(|k| format!("http://127.0.0.1:{}/RPC", k + 1)).collect::<Vec<_>>()}}),
            URLS,
        ),
        m("registrar-url-ftp", REG, url("ftp://x/RPC".into()), URLS),
        m(
            "registrar-url-space",
            REG,
            url("http://has space/RPC".into()),
            URLS,
        ),
        m(
            "registrar-url-open-bracket",
            REG,
            url("http://[::1/RPC".into()),
            URLS,
        ),
        m(
            "registrar-url-port-99999",
            REG,
            url("http://127.0.0.1:99999/RPC".into()),
            URLS,
        ),
        m(
            "registrar-url-bad-escape",
            REG,
            url("http://%zz/RPC".into()),
            URLS,
        ),
        m("registrar-url-no-host", REG, url("http://:80/RPC".into()), URLS),
        m("registrar-url-scheme-only", REG, url("http://".into()), URLS),
        m(
            "registrar-url-userinfo",
            REG,
            url(format!(
                "http://rpcuser:{}@127.0.0.1:1/RPC",
                userinfo_password(id)
            )),
            URLS,
        ),
        m("registrar-url-empty", REG, url(String::new()), URLS),
        m(
            "registrar-url-control-char",
            REG,
            url("http://127.0.0.1:1/R\u{1}PC".into()),
            URLS,
        ),
        m(
            "registrar-url-2049",
            REG,
            url(format!("http://127.0.0.1:1/{}", "p".repeat(2049 - 20))),
            URLS,
        ),
        m(
            "registrar-service-name-upper-case",
            REG,
            service(json!({"name": "Kamailio"})),
            "spec.registrar.kamailio.service.name",
        ),
        m(
            "registrar-service-name-digit",
            REG,
            service(json!({"name": "1kamailio"})),
            "spec.registrar.kamailio.service.name",
        ),
        m(
            "registrar-service-name-empty",
            REG,
            service(json!({"name": ""})),
            "spec.registrar.kamailio.service.name",
        ),
        m(
            "registrar-service-namespace-underscore",
            REG,
            service(json!({"namespace": "bad_ns"})),
            "spec.registrar.kamailio.service.namespace",
        ),
        m(
            "registrar-service-path-relative",
            REG,
            service(json!({"path": "RPC"})),
            "spec.registrar.kamailio.service.path",
        ),
        m(
            "registrar-service-port-name-upper-case",
            REG,
            service(json!({"portName": "Rpc"})),
            "spec.registrar.kamailio.service.portName",
        ),
        m(
            "registrar-token-key-space",
            REG,
            json!({"kamailio": {"urls": [DEAD_RPC], "tokenSecretRef": {"name": "t", "key": "bad key"}}}),
            "spec.registrar.kamailio.tokenSecretRef.key",
        ),
        m(
            "registrar-token-no-name",
            REG,
            json!({"kamailio": {"urls": [DEAD_RPC], "tokenSecretRef": {"key": "token"}}}),
            "spec.registrar.kamailio.tokenSecretRef.name",
        ),
    ];
    list.extend(metadata_mutations(id));
    list
}

fn profile_mutations(id: usize) -> Vec<Mutation> {
    const CAP: &[&str] = &["spec", "capacity"];
    const FL: &[&str] = &["spec", "flags"];
    const BG: &[&str] = &["spec", "bargeGroup"];
    const MC: &[&str] = &["spec", "maxContacts"];
    let mut list = vec![
        m("capacity-negative", CAP, json!(-1), "spec.capacity"),
        m("capacity-string", CAP, json!("10"), "spec.capacity"),
        m("capacity-float", CAP, json!(1.5), "spec.capacity"),
        m("capacity-list", CAP, json!([1]), "spec.capacity"),
        m("flag-upper-case", FL, json!(["Barge"]), "spec.flags"),
        m("flag-dash", FL, json!(["barge-in"]), "spec.flags"),
        m("flag-empty", FL, json!([""]), "spec.flags"),
        m("flag-space", FL, json!(["a b"]), "spec.flags"),
        m("flag-unicode", FL, json!(["flägg"]), "spec.flags"),
        m(
            "flags-65",
            FL,
            json!((0..65).map(|k| format!("f{k}")).collect::<Vec<_>>()),
            "spec.flags",
        ),
        m("flags-duplicate", FL, json!(["barge", "barge"]), "spec.flags"),
        m("flags-string", FL, json!("barge"), "spec.flags"),
        m("flags-number-item", FL, json!([1]), "spec.flags"),
        m("barge-group-upper-case", BG, json!("Support"), "spec.bargeGroup"),
        m("barge-group-empty", BG, json!(""), "spec.bargeGroup"),
        m("barge-group-64", BG, json!("g".repeat(64)), "spec.bargeGroup"),
        m("barge-group-dash", BG, json!("a-b"), "spec.bargeGroup"),
        m("max-contacts-0", MC, json!(0), "spec.maxContacts"),
        m("max-contacts-101", MC, json!(101), "spec.maxContacts"),
        m("max-contacts-string", MC, json!("3"), "spec.maxContacts"),
        m("spec-string", &["spec"], json!("x"), "spec"),
    ];
    list.extend(metadata_mutations(id));
    list
}

/// Schema violations: a valid template with one mutation; refused naming the field.
fn schema_case(rng: &mut StdRng, w: &World, id: usize) -> Case {
    let name = format!("c{id}");
    let (kind, base, mutations) = match rng.random_range(0..10) {
        0..=4 => ("user", valid_user_body(rng, id, &name), user_mutations(id)),
        5..=7 => (
            "domain",
            domain(&name, &w.fqdn(id, "c"))
                .default_profile(PROFILE)
                .manifest(),
            domain_mutations(id),
        ),
        _ => ("profile", profile(&name).manifest(), profile_mutations(id)),
    };
    let mutation = pick(rng, &mutations);
    let body = apply_mutation(base, mutation);
    let mut case = Case::new(id, format!("{kind}.schema/{}", mutation.label)).refuse(body, mutation.field);
    if mutation.label == "registrar-url-userinfo" {
        // Should the URL be accepted, its password must still show nowhere.
        case.secret_values.push(userinfo_password(id));
    }
    case
}

/// The password in the userinfo of a registrar URL case.
fn userinfo_password(id: usize) -> String {
    format!("UiPw{id}Zq7Kp3Lm")
}

/// A valid SipUser body with a few random valid optional fields.
fn valid_user_body(rng: &mut StdRng, id: usize, name: &str) -> Value {
    let mut u = user(name);
    if rng.random_bool(0.3) {
        u = u.extension(&format!("9{id:05}"));
    }
    if rng.random_bool(0.2) {
        let aliases: Vec<String> = (0..rng.random_range(1..4))
            .map(|k| format!("al{id}-{k}"))
            .collect();
        let aliases: Vec<&str> = aliases.iter().map(String::as_str).collect();
        u = u.aliases(&aliases);
    }
    if rng.random_bool(0.3) {
        u = u.display_name(pick(rng, &display_names()).as_str());
    }
    u.manifest()
}

/// Immutable fields changed by a second apply: refused naming the field; the first object
/// stays as it was (Ready). Also the second applies that only spell out the default.
fn immutable_case(rng: &mut StdRng, w: &World, id: usize) -> Case {
    let name = format!("c{id}");
    let fqdn = w.fqdn(id, "c");
    match rng.random_range(0..8) {
        0 => {
            let first = domain(&name, &fqdn).default_profile(PROFILE).manifest();
            let second = domain(&name, &w.fqdn(id, "moved"))
                .default_profile(PROFILE)
                .manifest();
            Case::new(id, "domain.immutable/spec.domain")
                .accept(first.clone())
                .refuse(second, "spec.domain")
                .ready(&first)
        }
        1 => {
            let first = domain(&name, &fqdn)
                .default_profile(PROFILE)
                .realm("realm-one")
                .manifest();
            let second = domain(&name, &fqdn)
                .default_profile(PROFILE)
                .realm("realm-two")
                .manifest();
            Case::new(id, "domain.immutable/spec.realm")
                .accept(first.clone())
                .refuse(second, "spec.realm")
                .ready(&first)
        }
        2 => {
            let first = domain(&name, &fqdn).default_profile(PROFILE).manifest();
            let second = domain(&name, &fqdn)
                .default_profile(PROFILE)
                .realm("another realm")
                .manifest();
            Case::new(id, "domain.immutable/spec.realm-set-later")
                .accept(first.clone())
                .refuse(second, "spec.realm")
                .ready(&first)
        }
        3 => {
            // Spelling out the default realm changes nothing: accepted.
            let first = domain(&name, &fqdn).default_profile(PROFILE).manifest();
            let second = domain(&name, &fqdn)
                .default_profile(PROFILE)
                .realm(&fqdn)
                .manifest();
            Case::new(id, "domain.edge/realm-set-to-its-default")
                .accept(first)
                .accept(second.clone())
                .ready(&second)
        }
        4 => {
            let first = user(&name).manifest();
            let second = user(&name).domain("elsewhere").manifest();
            Case::new(id, "user.immutable/spec.domainRef")
                .accept(first.clone())
                .refuse(second, "spec.domainRef")
                .ready(&first)
        }
        5 => {
            let first = user(&name).username(&format!("first{id}")).manifest();
            let second = user(&name).username(&format!("second{id}")).manifest();
            Case::new(id, "user.immutable/spec.username")
                .accept(first.clone())
                .refuse(second, "spec.username")
                .ready(&first)
        }
        6 => {
            let first = user(&name).username(&format!("first{id}")).manifest();
            let second = user(&name).manifest();
            Case::new(id, "user.immutable/spec.username-removed")
                .accept(first.clone())
                .refuse(second, "spec.username")
                .ready(&first)
        }
        _ => {
            if rng.random_bool(0.5) {
                let first = user(&name).manifest();
                let second = user(&name).username(&format!("later{id}")).manifest();
                Case::new(id, "user.immutable/spec.username-set-later")
                    .accept(first.clone())
                    .refuse(second, "spec.username")
                    .ready(&first)
            } else {
                // Spelling out the default username (the object name) is no change.
                let first = user(&name).manifest();
                let second = user(&name).username(&name).manifest();
                Case::new(id, "user.edge/username-set-to-its-default")
                    .accept(first)
                    .accept(second.clone())
                    .ready(&second)
            }
        }
    }
}

/// Problems only the operator can see: accepted by the API server, then Stalled.
fn semantic_case(rng: &mut StdRng, w: &World, id: usize) -> Case {
    let name = format!("c{id}");
    let winner = format!("c{id}-a");
    let loser = format!("c{id}-b");
    let fqdn = w.fqdn(id, "c");
    let own_domain = format!("c{id}-d");
    match rng.random_range(0..22) {
        0 => {
            let u = user(&name).domain(&format!("c{id}-missing")).manifest();
            Case::new(id, "semantic/dangling-domainRef")
                .accept(u.clone())
                .stalled(&u, reasons::DOMAIN_NOT_FOUND)
        }
        1 => {
            let u = user(&name).profile(&format!("c{id}-missing")).manifest();
            Case::new(id, "semantic/dangling-profileRef")
                .accept(u.clone())
                .stalled(&u, reasons::PROFILE_NOT_FOUND)
        }
        2 => {
            let d = domain(&own_domain, &fqdn)
                .default_profile(&format!("c{id}-missing"))
                .manifest();
            let u = user(&name).domain(&own_domain).manifest();
            Case::new(id, "semantic/dangling-defaultProfile")
                .accept(d)
                .accept(u.clone())
                .stalled(&u, reasons::PROFILE_NOT_FOUND)
        }
        3..=5 => {
            // One namespace of names per domain, oldest wins: the winner is applied first and
            // sorts first by name, so it is older or ties and wins on the name.
            let (w_user, w_ext, w_alias) = (format!("w{id}"), format!("8{id:05}"), format!("wa{id}"));
            let win = user(&winner)
                .username(&w_user)
                .extension(&w_ext)
                .aliases(&[&w_alias])
                .manifest();
            let taken = [w_user.as_str(), w_ext.as_str(), w_alias.as_str()];
            let clash = pick(rng, &taken).to_string();
            let (lose, reason, field) = match rng.random_range(0..3) {
                0 => (
                    user(&loser).username(&clash),
                    reasons::USERNAME_CONFLICT,
                    "username",
                ),
                1 => (
                    user(&loser).extension(&clash),
                    reasons::EXTENSION_CONFLICT,
                    "extension",
                ),
                _ => (user(&loser).aliases(&[&clash]), reasons::ALIAS_CONFLICT, "alias"),
            };
            let lose = lose.manifest();
            Case::new(id, format!("semantic/duplicate-{field}"))
                .accept(win.clone())
                .accept(lose.clone())
                .stalled(&lose, reason)
                .ready(&win)
        }
        6 => {
            let p = profile(&format!("c{id}-p")).capacity(0).manifest();
            let u = user(&name).profile(&format!("c{id}-p")).manifest();
            Case::new(id, "semantic/capacity-0")
                .accept(p)
                .accept(u.clone())
                .stalled(&u, reasons::PROFILE_CAPACITY_EXCEEDED)
        }
        7 => {
            let p = profile(&format!("c{id}-p")).capacity(1).manifest();
            let win = user(&winner).profile(&format!("c{id}-p")).manifest();
            let lose = user(&loser).profile(&format!("c{id}-p")).manifest();
            Case::new(id, "semantic/capacity-exceeded")
                .accept(p)
                .accept(win.clone())
                .accept(lose.clone())
                .stalled(&lose, reasons::PROFILE_CAPACITY_EXCEEDED)
                .ready(&win)
        }
        8 => {
            let max = rng.random_range(0..2);
            let d = domain(&own_domain, &fqdn)
                .default_profile(PROFILE)
                .max_users(max)
                .manifest();
            let win = user(&winner).domain(&own_domain).manifest();
            let lose = user(&loser).domain(&own_domain).manifest();
            let mut case = Case::new(id, format!("semantic/max-users-{max}")).accept(d);
            if max == 1 {
                case = case.accept(win.clone());
            }
            case = case
                .accept(lose.clone())
                .stalled(&lose, reasons::DOMAIN_USER_LIMIT_REACHED);
            if max == 1 {
                case = case.ready(&win);
            }
            case
        }
        9 => {
            let d = domain(&own_domain, &fqdn)
                .default_profile(PROFILE)
                .extension_pattern("^7[0-9]{3}$")
                .manifest();
            let bad = pick(rng, &["8001", "70011", "7abc", "x7001", "700"]).to_string();
            let u = user(&name).domain(&own_domain).extension(&bad).manifest();
            Case::new(id, "semantic/extension-pattern-mismatch")
                .accept(d)
                .accept(u.clone())
                .stalled(&u, reasons::EXTENSION_PATTERN_MISMATCH)
        }
        10 | 11 => {
            let pattern = pick(
                rng,
                &["^7[0-9", "(", "a{2,1}", "*x", "[z-a]", "\\", "(?:a{1000}){1000}"],
            )
            .to_string();
            let d = domain(&own_domain, &fqdn)
                .default_profile(PROFILE)
                .extension_pattern(&pattern)
                .manifest();
            let u = user(&name).domain(&own_domain).extension("7001").manifest();
            // A pattern that parses but compiles past the regex size limit gets a class of its
            // own: it is also a cost every admission in the namespace pays.
            let class = if pattern.contains("{1000}") {
                "semantic/oversized-extensionPattern"
            } else {
                "semantic/invalid-extensionPattern"
            };
            Case::new(id, class)
                .accept(d.clone())
                .accept(u.clone())
                .check(&d, Want::Stalled(Some(INVALID_EXTENSION_PATTERN)))
                .stalled(&u, reasons::DOMAIN_NOT_READY)
        }
        12 => {
            let first = domain(&winner, &fqdn).default_profile(PROFILE).manifest();
            let second = domain(&loser, &fqdn).default_profile(PROFILE).manifest();
            let u = user(&name).domain(&loser).manifest();
            Case::new(id, "semantic/duplicate-domain-fqdn")
                .accept(first.clone())
                .accept(second.clone())
                .accept(u.clone())
                .stalled(&second, reasons::DOMAIN_CONFLICT)
                .ready(&first)
                .stalled(&u, reasons::DOMAIN_NOT_READY)
        }
        13 => {
            let (source, key, class) = *pick(
                rng,
                &[
                    ("absent-secret", "password", "missing-Secret"),
                    (FOREIGN_NO_KEY, "password", "missing-key"),
                    (FOREIGN_EMPTY, "password", "empty-value"),
                ],
            );
            let source = if source == "absent-secret" {
                format!("c{id}-absent")
            } else {
                source.to_string()
            };
            let u = user(&name).import(&source, key).manifest();
            Case::new(id, format!("semantic/import-{class}"))
                .accept(u.clone())
                .stalled(&u, reasons::PASSWORD_SOURCE_INVALID)
        }
        14 => {
            let u = if rng.random_bool(0.5) {
                user(&name).import(FOREIGN_BINARY, "password").manifest()
            } else {
                user(&name).import(&format!("c{id}-bin"), "pw").manifest()
            };
            Case::new(id, "semantic/import-not-utf8")
                .with_secret(raw_secret(&format!("c{id}-bin"), "pw", NOT_UTF8))
                .accept(u.clone())
                .stalled(&u, reasons::PASSWORD_SOURCE_INVALID)
        }
        15 => {
            let u = user(&name).secret_name(FOREIGN_TAKEN).manifest();
            Case::new(id, "semantic/secretName-foreign")
                .accept(u.clone())
                .stalled(&u, reasons::SECRET_NOT_OWNED)
        }
        16 => {
            let value = token(rng, 24);
            let foreign = secret(&format!("{name}-sip-credentials"))
                .string("password", &value)
                .manifest();
            let u = user(&name).manifest();
            let mut case = Case::new(id, "semantic/default-secretName-foreign")
                .with_secret(foreign)
                .accept(u.clone())
                .stalled(&u, reasons::SECRET_NOT_OWNED);
            case.secret_values.push(value);
            case
        }
        17 => {
            // Importing from a Secret and writing the credentials into that same Secret.
            let u = user(&name)
                .import(FOREIGN_SOURCE, "password")
                .secret_name(FOREIGN_SOURCE)
                .manifest();
            Case::new(id, "semantic/secretName-is-the-import-source")
                .accept(u.clone())
                .stalled(&u, reasons::SECRET_NOT_OWNED)
        }
        18 => {
            // Another user's credentials Secret is operator-managed but not this user's.
            let win = user(&winner).manifest();
            let lose = user(&loser)
                .secret_name(&format!("{winner}-sip-credentials"))
                .manifest();
            Case::new(id, "semantic/secretName-of-another-user")
                .accept(win.clone())
                .accept_after_ready(&win, lose.clone())
                .stalled(&lose, reasons::SECRET_NOT_OWNED)
                .ready(&win)
        }
        19 => {
            let d = with(
                domain(&own_domain, &fqdn).default_profile(PROFILE).manifest(),
                &["spec", "registrar"],
                json!({"kamailio": {"urls": [DEAD_RPC], "tokenSecretRef": {"name": format!("c{id}-missing"), "key": "token"}}}),
            );
            Case::new(id, "semantic/registrar-token-Secret-missing")
                .accept(d.clone())
                .check(&d, Want::Stalled(None))
        }
        20 => {
            let value = token(rng, 24);
            let tok = secret(&format!("c{id}-token")).string("other", &value).manifest();
            let d = with(
                domain(&own_domain, &fqdn).default_profile(PROFILE).manifest(),
                &["spec", "registrar"],
                json!({"kamailio": {"urls": [DEAD_RPC], "tokenSecretRef": {"name": format!("c{id}-token"), "key": "token"}}}),
            );
            let mut case = Case::new(id, "semantic/registrar-token-key-missing")
                .with_secret(tok)
                .accept(d.clone())
                .check(&d, Want::Stalled(None));
            case.secret_values.push(value);
            case
        }
        _ => {
            let d = with(
                domain(&own_domain, &fqdn).default_profile(PROFILE).manifest(),
                &["spec", "registrar"],
                json!({"kamailio": {"service": {"name": format!("c{id}-missing")}}}),
            );
            Case::new(id, "semantic/registrar-Service-missing")
                .accept(d.clone())
                .check(&d, Want::Stalled(None))
        }
    }
}

/// Valid edge cases: must end Ready.
fn valid_case(rng: &mut StdRng, w: &World, id: usize) -> Case {
    match rng.random_range(0..10) {
        0..=5 => valid_user_case(rng, id),
        6..=7 => valid_domain_case(rng, w, id),
        _ => valid_profile_case(rng, id),
    }
}

fn valid_user_case(rng: &mut StdRng, id: usize) -> Case {
    let mut tags: Vec<&str> = Vec::new();
    let base = format!("c{id}");
    let (name, needs_secret_name) = match rng.random_range(0..10) {
        0 => {
            tags.push("long-name");
            (long_name(&base, rng.random_range(64..=237)), false)
        }
        1 => {
            tags.push("253-name");
            (long_name(&base, 253), true)
        }
        _ => (base.clone(), false),
    };
    let mut u = user(&name);
    let mut case_secrets = Vec::new();
    let mut values = Vec::new();
    let mut setup = Vec::new();
    match rng.random_range(0..6) {
        0 => {
            tags.push("e164-username");
            u = u.username(&format!("+4930123{id}"));
        }
        1 => {
            tags.push("dotted-username");
            u = u.username(&format!("first.last{id}"));
        }
        2 => u = u.username(&format!("U{id}_mixed-Case!~*'()")),
        _ => {}
    }
    if rng.random_bool(0.4) {
        u = u.extension(&format!("9{id:05}"));
    }
    if rng.random_bool(0.3) {
        let n = if rng.random_bool(0.2) {
            32
        } else {
            rng.random_range(1..4)
        };
        let aliases: Vec<String> = (0..n).map(|k| format!("al{id}-{k}")).collect();
        let aliases: Vec<&str> = aliases.iter().map(String::as_str).collect();
        u = u.aliases(&aliases);
    }
    if rng.random_bool(0.6) {
        u = u.display_name(pick(rng, &display_names()).as_str());
    }
    if rng.random_bool(0.2) {
        tags.push("suspended");
        u = u.enabled(false);
    }
    match rng.random_range(0..8) {
        0 => {
            tags.push("import");
            u = u.import(FOREIGN_SOURCE, "password");
        }
        1 => {
            tags.push("import");
            let value = format!(
                "{}{}",
                token(rng, 20),
                pick(rng, &["", "☎ü", " spaced ", "!#$%&"])
            );
            case_secrets.push(secret(&format!("c{id}-src")).string("pw", &value).manifest());
            values.push(value);
            u = u.import(&format!("c{id}-src"), "pw");
        }
        2 => {
            let p = format!("c{id}-p");
            setup.push(
                profile(&p)
                    .capacity(rng.random_range(1..1000))
                    .flags(&["barge", "call_recording"])
                    .manifest(),
            );
            u = u.profile(&p);
        }
        3 => u = u.profile(PROFILE),
        _ => {}
    }
    if needs_secret_name || rng.random_bool(0.15) {
        u = u.secret_name(&format!("c{id}-creds"));
    }
    if rng.random_bool(0.2) {
        u = u.rotate(pick_str(
            rng,
            &["2026-11-23", "☎ rotate me", "with spaces and \"quotes\"", "r"],
        ));
    }
    if rng.random_bool(0.1) {
        u = u.annotation(sip_operator::keys::SKIP_CLEANUP_ANNOTATION, "maybe");
    }
    let mut body = u.manifest();
    if rng.random_bool(0.3) {
        let mut spec = body["spec"].clone();
        set(
            &mut spec,
            &["callerId"],
            json!(pick(rng, &["+4930123456", "Hotline ☎", "a".repeat(64).as_str()]).to_string()),
        );
        set(&mut spec, &["email"], json!(format!("c{id}@example.com")));
        set(&mut spec, &["maxContacts"], json!(pick(rng, &[1, 3, 100])));
        body["spec"] = spec;
    }
    let create = add_valid_extras(
        rng,
        &mut body,
        &mut tags,
        Some(&["spec", "credentials", "generated"]),
    );
    let mut case = Case::new(id, class_with_tags("valid/user", &tags));
    for s in case_secrets {
        case = case.with_secret(s);
    }
    for s in &setup {
        case = case.accept(s.clone());
    }
    case.secret_values.extend(values);
    let mut case = accept_by(case, &body, create).ready(&body);
    for s in &setup {
        case = case.ready(s);
    }
    case
}

fn valid_domain_case(rng: &mut StdRng, w: &World, id: usize) -> Case {
    let mut tags: Vec<&str> = Vec::new();
    let name = if rng.random_bool(0.2) {
        tags.push("253-name");
        long_name(&format!("c{id}"), 253)
    } else {
        format!("c{id}")
    };
    let fqdn = if rng.random_bool(0.2) {
        // Numeric labels are fine as long as the top-level label is not all digits.
        format!("7.0{id}.{}", w.fqdn)
    } else {
        w.fqdn(id, "c")
    };
    let mut d = domain(&name, &fqdn).default_profile(PROFILE);
    if rng.random_bool(0.3) {
        d = d.realm(pick_str(
            rng,
            &["Réalm ☎ with spaces", "r", "ACME Corp", "x".repeat(253).as_str()],
        ));
    }
    if rng.random_bool(0.4) {
        d = d.password_policy(
            *pick(rng, &[16, 32, 128]),
            pick_str(rng, &["Alphanumeric", "AlphanumericSymbols"]),
        );
    }
    if rng.random_bool(0.3) {
        d = d.extension_pattern(pick_str(rng, &["^7[0-9]{3}$", "^[0-9]+$", ".*", "^(?:a|b|9)"]));
    }
    if rng.random_bool(0.2) {
        d = d.max_users(pick(rng, &[0, 1000, i32::MAX]).to_owned());
    }
    let mut body = d.manifest();
    if rng.random_bool(0.3) {
        set(
            &mut body,
            &["spec", "digestAlgorithms"],
            json!(pick(rng, &[vec!["MD5"], vec!["SHA-256"], vec!["SHA-256", "MD5"]])),
        );
    }
    let create = add_valid_extras(rng, &mut body, &mut tags, None);
    let mut case = accept_by(
        Case::new(id, class_with_tags("valid/domain", &tags)),
        &body,
        create,
    )
    .ready(&body);
    let max_users = body["spec"]["maxUsers"].as_i64();
    let pattern = body["spec"]["extensionPattern"].as_str().map(str::to_string);
    if rng.random_bool(0.5) && max_users != Some(0) {
        // A user of the domain (SHA-256, symbols, bounds): Ready as well.
        let mut u = user(&format!("c{id}-u")).domain(&name);
        if let Some(p) = pattern.as_deref() {
            u = u.extension(match p {
                "^7[0-9]{3}$" => "7001",
                "^(?:a|b|9)" => "9x",
                _ => "42",
            });
        }
        let u = u.manifest();
        case = case.accept(u.clone()).ready(&u);
    }
    case
}

fn valid_profile_case(rng: &mut StdRng, id: usize) -> Case {
    let mut tags: Vec<&str> = Vec::new();
    let name = if rng.random_bool(0.2) {
        tags.push("253-name");
        long_name(&format!("c{id}"), 253)
    } else {
        format!("c{id}")
    };
    let mut body = profile(&name).manifest();
    if rng.random_bool(0.5) {
        set(
            &mut body,
            &["spec", "capacity"],
            json!(pick(rng, &[0, 1, 1000, i32::MAX])),
        );
    }
    if rng.random_bool(0.5) {
        let n = *pick(rng, &[0, 1, 64]);
        let flags: Vec<String> = (0..n).map(|k| format!("f_{k}")).collect();
        set(&mut body, &["spec", "flags"], json!(flags));
    }
    if rng.random_bool(0.4) {
        set(
            &mut body,
            &["spec", "bargeGroup"],
            json!(pick(rng, &["g", "support_floor_2", "g".repeat(63).as_str()]).to_string()),
        );
    }
    if rng.random_bool(0.4) {
        set(&mut body, &["spec", "maxContacts"], json!(pick(rng, &[1, 100])));
    }
    let create = add_valid_extras(rng, &mut body, &mut tags, None);
    let mut case = accept_by(
        Case::new(id, class_with_tags("valid/profile", &tags)),
        &body,
        create,
    )
    .ready(&body);
    if body["spec"]["capacity"].as_i64() != Some(0) && rng.random_bool(0.4) {
        let u = user(&format!("c{id}-u")).profile(&name).manifest();
        case = case.accept(u.clone()).ready(&u);
    }
    case
}

/// Unknown fields (pruned), deep nesting of unknown fields at `deep_at`, labels and large or
/// unicode annotations: none of it changes what the object means.
///
/// Returns whether the body must be created with a plain POST: server-side apply refuses
/// unknown fields (a case of its own among the schema mutations), a create prunes them. Deep
/// nesting goes through server-side apply where the schema has an object without properties
/// (`deep_by_apply`; it is pruned from spec but kept in managedFields), else through a create.
fn add_valid_extras(
    rng: &mut StdRng,
    body: &mut Value,
    tags: &mut Vec<&str>,
    deep_by_apply: Option<&[&str]>,
) -> bool {
    let mut create = false;
    if rng.random_bool(0.25) {
        create = true;
        tags.push("unknown-fields");
        set(body, &["spec", "fuzzUnknown"], json!({"x": [1, "two", null]}));
        set(body, &["status", "fuzzUnknown"], json!({"y": 1}));
        set(body, &["extraTopLevel"], json!(true));
    }
    if rng.random_bool(0.05) {
        match deep_by_apply {
            Some(path) if !create => {
                tags.push("deep-nesting-by-apply");
                set(body, path, nested(130));
            }
            _ => {
                tags.push("deep-nesting-by-create");
                create = true;
                set(body, &["spec", "fuzzDeep"], nested(130));
            }
        }
    }
    if rng.random_bool(0.15) {
        set(
            body,
            &["metadata", "labels", "fuzz.sipoperator.io/kind"],
            json!("edge-case_1.x"),
        );
        set(
            body,
            &["metadata", "annotations", "fuzz.sipoperator.io/note"],
            json!("ünïcødé ☎ \u{0} \n end"),
        );
    }
    if rng.random_bool(0.04) {
        tags.push("big-annotation");
        set(
            body,
            &["metadata", "annotations", "fuzz.sipoperator.io/blob"],
            json!("b".repeat(rng.random_range(100_000..200_000))),
        );
    }
    create
}

/// Accepts `body` through server-side apply, or through a create when `create`.
fn accept_by(case: Case, body: &Value, create: bool) -> Case {
    if create {
        case.create(body.clone())
    } else {
        case.accept(body.clone())
    }
}

fn class_with_tags(class: &str, tags: &[&str]) -> String {
    let mut out = class.to_string();
    for t in tags {
        out.push('+');
        out.push_str(t);
    }
    out
}

/// One case from the seeded generator, by class weight.
fn generate(rng: &mut StdRng, w: &World, id: usize) -> Case {
    match rng.random_range(0..100) {
        0..=39 => schema_case(rng, w, id),
        40..=49 => immutable_case(rng, w, id),
        50..=74 => semantic_case(rng, w, id),
        _ => valid_case(rng, w, id),
    }
}

/// JSON text in which every character YAML does not allow raw (DEL, C1 controls, ...) is
/// escaped: an apply body is read as YAML, which refuses them before any validation runs, so
/// a raw one would test the transport instead of the schema.
fn yaml_safe_json(body: &Value) -> Vec<u8> {
    let text = serde_json::to_string(body).expect("a manifest serializes");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let printable = matches!(c,
            '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
        if printable {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{:04x}", c as u32));
        }
    }
    out.into_bytes()
}

/// Server-side apply (or, with `create`, a plain POST) of a raw body, returning the response
/// text unparsed: an accepted object with deeply nested managedFields is more than serde_json
/// reads by default.
async fn try_apply_with(
    client: &Client,
    ns: &str,
    body: &Value,
    create: bool,
) -> Result<String, kube::Error> {
    let kind = Kind::of(body);
    let name = name_of(body);
    let bytes = yaml_safe_json(body);
    let request = kube::core::Request::new(kind.url_path(ns));
    let request = if create {
        request.create(&Default::default(), bytes)
    } else {
        request
            .patch(
                &name,
                &PatchParams::apply(TEST_MANAGER).force(),
                &Patch::Apply(&Value::Null),
            )
            .map(|r| r.map(|_| bytes))
    }
    .map_err(kube::Error::BuildRequest)?;
    client.request_text(request).await
}

async fn try_apply(client: &Client, ns: &str, body: &Value) -> Result<String, kube::Error> {
    try_apply_with(client, ns, body, false).await
}

/// What the test created and the operator must never change: resourceVersion and data.
type Foreign = BTreeMap<String, (Option<String>, BTreeMap<String, Vec<u8>>)>;

struct Run<'a> {
    client: &'a Client,
    ns: &'a str,
    foreign: Mutex<Foreign>,
    secret_values: Mutex<Vec<String>>,
}

impl Run<'_> {
    /// Waits until SipUser `name` is Ready for its current generation.
    async fn wait_ready(&self, name: &str) -> Result<(), String> {
        let api: kube::Api<SipUser> = kube::Api::namespaced(self.client.clone(), self.ns);
        let deadline = Instant::now() + SETUP_WAIT;
        loop {
            let user = api.get_opt(name).await.ok().flatten();
            if user.as_ref().is_some_and(ready_now) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "SipUser {} (set-up) not Ready within {SETUP_WAIT:?}: {}",
                    short(name),
                    user.map_or("absent".into(), |u| short(&describe(&u)))
                ));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn create_foreign(&self, body: &Value) -> Result<(), String> {
        let name = name_of(body);
        let text = try_apply(self.client, self.ns, body)
            .await
            .map_err(|e| format!("creating foreign Secret {name}: {e}"))?;
        let s: Secret = serde_json::from_str(&text).map_err(|e| format!("reading Secret {name}: {e}"))?;
        self.foreign
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, (s.metadata.resource_version.clone(), secret_data(&s)));
        Ok(())
    }
}

/// How the apply phase of a case went.
enum Applied {
    /// Refused as it must be (with this HTTP status): done.
    Refused(u16),
    /// Accepted as it must be: the checks are pending.
    Pending,
    Mismatch(String),
}

async fn run_case(run: &Run<'_>, case: &Case) -> Applied {
    for s in &case.secrets {
        if let Err(e) = run.create_foreign(s).await {
            return Applied::Mismatch(e);
        }
    }
    run.secret_values
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(case.secret_values.iter().cloned());
    let mut refused: Option<u16> = None;
    for (n, step) in case.steps.iter().enumerate() {
        let what = format!(
            "apply #{} ({} {})",
            n + 1,
            Kind::of(&step.body).name(),
            short(&name_of(&step.body))
        );
        if let Some(first) = &step.after_ready
            && let Err(e) = run.wait_ready(first).await
        {
            return Applied::Mismatch(e);
        }
        let result = try_apply_with(run.client, run.ns, &step.body, step.create).await;
        match (&step.refuse, result) {
            (None, Ok(_)) => {}
            (None, Err(e)) => {
                return Applied::Mismatch(format!(
                    "{what} refused, must be accepted: {}",
                    short(&e.to_string())
                ));
            }
            (Some(field), Ok(_)) => {
                return Applied::Mismatch(format!("{what} accepted, must be refused naming {field}"));
            }
            (Some(field), Err(kube::Error::Api(status)))
                if (400..600).contains(&status.code) && status.message.contains(field.as_str()) =>
            {
                refused = Some(status.code);
            }
            (Some(field), Err(e)) => {
                return Applied::Mismatch(format!(
                    "{what} refused, but not naming {field}: {}",
                    short(&e.to_string())
                ));
            }
        }
    }
    match refused {
        Some(code) if case.checks.is_empty() => Applied::Refused(code),
        _ => Applied::Pending,
    }
}

/// At most 200 characters of `s`, on one line.
fn short(s: &str) -> String {
    let one_line = s.replace('\n', "\\n");
    if one_line.chars().count() <= 200 {
        one_line
    } else {
        format!("{}…", one_line.chars().take(200).collect::<String>())
    }
}

/// Every SipUser, SipDomain and SipProfile of the namespace, read through kubectl (which drops
/// managedFields, so deeply nested ones cannot break the read), by (kind, name).
async fn snapshot(sc: &Scenario) -> HashMap<(Kind, String), Value> {
    let run = sc
        .ns
        .kubectl(&["get", "sipusers,sipdomains,sipprofiles", "-o", "json"]);
    let out = tokio::task::spawn_blocking(move || run.output())
        .await
        .expect("kubectl get");
    let mut objects = HashMap::new();
    if !out.success {
        eprintln!("fuzz: kubectl get failed (will retry): {}", short(&out.stderr));
        return objects;
    }
    let list: Value = serde_json::from_str(&out.stdout).expect("kubectl get -o json is JSON");
    for item in list["items"].as_array().cloned().unwrap_or_default() {
        objects.insert((Kind::of(&item), name_of(&item)), item);
    }
    objects
}

fn judge_typed<K: HasConditions + Resource + DeserializeOwned>(
    v: &Value,
    want: &Want,
) -> Result<String, String> {
    let obj: K = serde_json::from_value(v.clone()).map_err(|e| format!("unreadable: {e}"))?;
    let shown = || short(&describe(&obj));
    if !is_current(&obj) {
        return Err(format!("no status for the current generation: {}", shown()));
    }
    let ready = condition(&obj, reasons::READY);
    let ready_true = ready.as_ref().is_some_and(|(s, _, _)| s == "True");
    match want {
        Want::Ready if ready_true => Ok("ready".into()),
        Want::Ready => Err(format!("not Ready: {}", shown())),
        Want::Stalled(pinned) => match condition(&obj, reasons::STALLED) {
            Some((s, reason, message))
                if s == "True"
                    && !reason.is_empty()
                    && !message.is_empty()
                    && !ready_true
                    && pinned.is_none_or(|p| p == reason) =>
            {
                Ok(format!("stalled {reason}"))
            }
            _ => Err(format!("not Stalled as it must be: {}", shown())),
        },
    }
}

fn judge(check: &Check, objects: &HashMap<(Kind, String), Value>) -> Result<String, String> {
    let who = format!("{} {}", check.kind.name(), short(&check.name));
    let Some(v) = objects.get(&(check.kind, check.name.clone())) else {
        return Err(format!("{who} does not exist"));
    };
    let verdict = match check.kind {
        Kind::User => judge_typed::<SipUser>(v, &check.want),
        Kind::Domain => judge_typed::<SipDomain>(v, &check.want),
        Kind::Profile => judge_typed::<SipProfile>(v, &check.want),
        Kind::Secret => unreachable!("Secrets are not checked for conditions"),
    };
    verdict
        .map(|label| format!("{label} {}", check.kind.name()))
        .map_err(|e| format!("{who}: {e}; spec {}", short(&v["spec"].to_string())))
}

/// All checks of a case: the first one's label, or the first failure.
fn judge_case(checks: &[Check], objects: &HashMap<(Kind, String), Value>) -> Result<String, String> {
    let mut label = None;
    for c in checks {
        let l = judge(c, objects)?;
        label.get_or_insert(l);
    }
    Ok(label.unwrap_or_else(|| "accepted".into()))
}

/// The result of one case.
struct Outcome {
    id: usize,
    class: String,
    expected: String,
    /// The observed label when it matched, or what went wrong.
    observed: Result<String, String>,
}

/// Waits until every pending case's checks hold, or `timeout`; returns their outcomes.
async fn settle(
    sc: &Scenario,
    pending: Vec<(usize, String, String, Vec<Check>)>,
    timeout: Duration,
) -> Vec<Outcome> {
    let deadline = Instant::now() + timeout;
    let mut open = pending;
    let mut done = Vec::new();
    loop {
        let objects = snapshot(sc).await;
        let mut still = Vec::new();
        for (id, class, expected, checks) in open {
            match judge_case(&checks, &objects) {
                Ok(label) => done.push(Outcome {
                    id,
                    class,
                    expected,
                    observed: Ok(label),
                }),
                Err(e) if Instant::now() >= deadline => done.push(Outcome {
                    id,
                    class,
                    expected,
                    observed: Err(e),
                }),
                Err(_) => still.push((id, class, expected, checks)),
            }
        }
        open = still;
        if open.is_empty() {
            return done;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Whether the operator process lives and answers `/healthz`.
fn operator_alive(op: &Operator) -> Result<(), String> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", op.pid()))
        .map_err(|e| format!("the operator process is gone: {e}"))?;
    let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
    if matches!(state, Some('Z' | 'X')) {
        return Err("the operator process has exited".into());
    }
    match op.try_http_get("/healthz") {
        Ok((200, _)) => Ok(()),
        Ok((code, body)) => Err(format!("/healthz answered {code}: {}", short(&body))),
        Err(e) => Err(format!("/healthz did not answer: {e}")),
    }
}

fn handled_rotation(u: &SipUser) -> Option<&str> {
    u.status.as_ref().and_then(|s| s.last_handled_rotation.as_deref())
}

fn ready_now(u: &SipUser) -> bool {
    is_current(u) && condition(u, reasons::READY).is_some_and(|(s, _, _)| s == "True")
}

/// One control pass: rotate `control-0` to `r<n>` and create `control-<n>`; both must be
/// handled within [`CONTROL_WAIT`]. Returns how long it took.
async fn control_pass(sc: &Scenario, n: usize) -> Result<Duration, String> {
    let started = Instant::now();
    let rotation = format!("r{n}");
    sc.apply(&user("control-0").rotate(&rotation)).await;
    let fresh = format!("control-{n}");
    sc.apply(&user(&fresh).display_name(&format!("Control {n}")))
        .await;
    let deadline = started + CONTROL_WAIT;
    loop {
        let c0 = sc.try_user("control-0").await;
        let cn = sc.try_user(&fresh).await;
        let rotated = c0
            .as_ref()
            .is_some_and(|u| handled_rotation(u) == Some(rotation.as_str()) && ready_now(u));
        let created = cn.as_ref().is_some_and(ready_now);
        if rotated && created {
            return Ok(started.elapsed());
        }
        if Instant::now() >= deadline {
            let show = |u: &Option<SipUser>| {
                u.as_ref().map_or("absent".to_string(), |u| {
                    format!(
                        "{} lastHandledRotation={:?}",
                        short(&describe(u)),
                        handled_rotation(u)
                    )
                })
            };
            return Err(format!(
                "control pass {n} not done within {CONTROL_WAIT:?}: control-0 rotated to {rotation}: {rotated} ({}); {fresh} Ready: {created} ({})",
                show(&c0),
                show(&cn)
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Control passes every few seconds until `stop`; failures and liveness problems go to
/// `failures`. Returns (passes, slowest pass).
async fn keep_controlling(
    sc: &Scenario,
    stop: &AtomicBool,
    failures: &Mutex<Vec<String>>,
) -> (usize, Duration) {
    let mut n = 0;
    let mut slowest = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        match control_pass(sc, n).await {
            Ok(took) => slowest = slowest.max(took),
            Err(e) => failures.lock().unwrap_or_else(|e| e.into_inner()).push(e),
        }
        if let Err(e) = operator_alive(&sc.operator) {
            failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("during the run: {e}"));
        }
        for _ in 0..10 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    (n, slowest)
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("{name}={v}: {e}"))
        }
        _ => default,
    }
}

/// The table of counts by outcome and the mismatches by class.
fn report(outcomes: &[Outcome]) -> (String, usize) {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut mismatches: BTreeMap<String, Vec<&Outcome>> = BTreeMap::new();
    for o in outcomes {
        match &o.observed {
            Ok(label) => counts.entry(label.clone()).or_default().0 += 1,
            Err(_) => {
                counts.entry(o.expected.clone()).or_default().1 += 1;
                mismatches.entry(o.class.clone()).or_default().push(o);
            }
        }
    }
    let mut out = String::from("  outcome                                    as expected  mismatched\n");
    for (label, (ok, bad)) in &counts {
        out.push_str(&format!("  {label:<42} {ok:>11} {bad:>11}\n"));
    }
    let total_bad: usize = counts.values().map(|(_, b)| b).sum();
    out.push_str(&format!(
        "  {:<42} {:>11} {:>11}\n",
        "total",
        outcomes.len() - total_bad,
        total_bad
    ));
    if !mismatches.is_empty() {
        out.push_str("mismatches by class (count, expected, first cases):\n");
        for (class, list) in &mismatches {
            let ids: Vec<String> = list.iter().take(5).map(|o| o.id.to_string()).collect();
            out.push_str(&format!(
                "  {class}: {} (expected {}; cases {})\n      e.g. case {}: {}\n",
                list.len(),
                list[0].expected,
                ids.join(", "),
                list[0].id,
                list[0]
                    .observed
                    .as_ref()
                    .err()
                    .map(String::as_str)
                    .unwrap_or_default()
            ));
        }
    }
    (out, total_bad)
}

/// Where a needle shows in a haystack, for a leak report (without the value itself).
fn leaks(values: &BTreeSet<String>, places: &[(&str, &str)]) -> Vec<String> {
    let mut found = Vec::new();
    for (n, v) in values.iter().enumerate() {
        for (place, text) in places {
            if let Some(at) = text.find(v.as_str()) {
                let before: String = text[..at]
                    .chars()
                    .rev()
                    .take(120)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                found.push(format!(
                    "secret value #{n} ({} characters) appears in {place}, after {:?}",
                    v.len(),
                    short(&before)
                ));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_manifests_end_refused_stalled_or_ready() {
    let seed = env_u64("SIP_FUZZ_SEED", DEFAULT_SEED);
    let budget = Duration::from_secs(env_u64("SIP_FUZZ_SECONDS", DEFAULT_SECONDS));
    let max_cases = env_u64("SIP_FUZZ_CASES", u64::MAX) as usize;
    let settle_budget = Duration::from_secs(env_u64("SIP_FUZZ_SETTLE_SECONDS", DEFAULT_SETTLE_SECONDS));
    let classes = |var: &str| -> Vec<String> {
        std::env::var(var)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let skip = classes("SIP_FUZZ_SKIP");
    let only = classes("SIP_FUZZ_ONLY");
    let work_rate = env_u64("SIP_FUZZ_WORK_PER_10S", DEFAULT_WORK_PER_10S) as f64 / 10.0;
    println!(
        "fuzz: seed {seed:#x} (SIP_FUZZ_SEED), generation budget {budget:?} (SIP_FUZZ_SECONDS), \
         case cap {} (SIP_FUZZ_CASES), skipping classes {skip:?} (SIP_FUZZ_SKIP), only {only:?} \
         (SIP_FUZZ_ONLY), {work_rate}/s cases for the operator (SIP_FUZZ_WORK_PER_10S / 10)",
        if max_cases == usize::MAX {
            "none".to_string()
        } else {
            max_cases.to_string()
        }
    );
    let started = Instant::now();
    let mut sc = Scenario::new("fuzz").await;
    let world = World {
        fqdn: sc.fqdn.clone(),
    };
    let run = Run {
        client: &sc.client,
        ns: &sc.ns.name,
        foreign: Mutex::new(BTreeMap::new()),
        secret_values: Mutex::new(Vec::new()),
    };

    // Secrets the operator does not own.
    let source_value = format!("Foreign-{}", seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let source_value = format!("{source_value}-{}", token(&mut rng, 20));
    let taken_value = token(&mut rng, 24);
    for body in [
        secret(FOREIGN_TAKEN).string("password", &taken_value).manifest(),
        secret(FOREIGN_SOURCE)
            .string("password", &source_value)
            .manifest(),
        raw_secret(FOREIGN_BINARY, "password", NOT_UTF8),
        secret(FOREIGN_NO_KEY)
            .string("not-the-key", &token(&mut rng, 24))
            .manifest(),
        secret(FOREIGN_EMPTY).string("password", "").manifest(),
    ] {
        run.create_foreign(&body).await.unwrap_or_else(|e| panic!("{e}"));
    }
    run.secret_values
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend([source_value.clone(), taken_value.clone()]);

    // The control user.
    sc.apply(&user("control-0")).await;
    sc.ready("control-0").await;

    // Generate and apply until the budget is spent, while the control loop runs.
    let stop = AtomicBool::new(false);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let generation_started = Instant::now();
    let mut next_id = 0usize;
    let mut skipped = 0usize;
    let work = AtomicUsize::new(0);
    let cases = std::iter::from_fn(|| {
        if next_id >= max_cases || generation_started.elapsed() >= budget {
            return None;
        }
        loop {
            let case = generate(&mut rng, &world, next_id);
            next_id += 1;
            if skip.iter().any(|s| case.class.contains(s.as_str()))
                || (!only.is_empty() && !only.iter().any(|s| case.class.contains(s.as_str())))
            {
                skipped += 1;
                continue;
            }
            return Some(case);
        }
    });
    let applying = async {
        let applied: Vec<(Case, Applied)> = futures::stream::iter(cases)
            .map(|case| {
                let run = &run;
                let work = &work;
                async move {
                    // Cases that give the operator work start at most `work_rate` a second
                    // (after a small burst): this is a test of inputs, not of throughput.
                    if !case.checks.is_empty() {
                        let n = work.fetch_add(1, Ordering::Relaxed) as f64;
                        let due = generation_started
                            + Duration::from_secs_f64((n - WORK_BURST).max(0.0) / work_rate);
                        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
                    }
                    let result = run_case(run, &case).await;
                    (case, result)
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        stop.store(true, Ordering::Relaxed);
        applied
    };
    let (applied, (passes, slowest)) = tokio::join!(applying, keep_controlling(&sc, &stop, &failures));
    let generation_took = generation_started.elapsed();
    let generated = applied.len();
    println!(
        "fuzz: {generated} cases applied in {generation_took:.1?} ({skipped} skipped; replay: \
         SIP_FUZZ_SEED={seed:#x} SIP_FUZZ_CASES={next_id}); {passes} control passes, slowest {slowest:.1?}"
    );

    let mut outcomes = Vec::new();
    let mut pending = Vec::new();
    for (case, result) in applied {
        let expected = case.expected();
        match result {
            Applied::Refused(code) => outcomes.push(Outcome {
                id: case.id,
                class: case.class,
                expected,
                // Server-side apply reports a wrong type or an unknown field as a 500 ("failed
                // to create typed patch object"), naming the field: an API server habit, shown
                // apart so that it stays visible.
                observed: Ok(if code == 500 {
                    "refused (HTTP 500 from server-side apply's type check)".into()
                } else {
                    format!("refused (HTTP {code})")
                }),
            }),
            Applied::Mismatch(e) => outcomes.push(Outcome {
                id: case.id,
                class: case.class,
                expected,
                observed: Err(e),
            }),
            Applied::Pending => pending.push((case.id, case.class, expected, case.checks)),
        }
    }
    let pending_checks: Vec<(usize, Vec<Check>)> =
        pending.iter().map(|(id, _, _, c)| (*id, c.clone())).collect();
    outcomes.extend(settle(&sc, pending, settle_budget).await);
    outcomes.sort_by_key(|o| o.id);
    let (table, mismatched) = report(&outcomes);
    println!(
        "fuzz: outcomes of {} cases (seed {seed:#x}) after {:.1?}:\n{table}",
        outcomes.len(),
        started.elapsed()
    );

    // A final control pass, then the restart: the fresh operator must take over.
    if let Err(e) = control_pass(&sc, passes + 1).await {
        failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("before the restart: {e}"));
    }
    if let Err(e) = operator_alive(&sc.operator) {
        failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("before the restart: {e}"));
    }
    let status = sc.operator.stop().await;
    if !status.success() {
        failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("the operator did not exit cleanly on SIGTERM: {status}"));
    }
    let first_log = sc.operator.log();
    sc.operator = Operator::launch(&sc.ns, &[]).await;
    let ready_deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match sc.operator.try_http_get("/readyz") {
            Ok((200, _)) => break,
            last if Instant::now() >= ready_deadline => {
                failures.lock().unwrap_or_else(|e| e.into_inner()).push(format!(
                    "the restarted operator was not ready within {READY_TIMEOUT:?}: {last:?}"
                ));
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    if let Err(e) = control_pass(&sc, passes + 2).await {
        failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("after the restart: {e}"));
    }
    // What held before the restart holds after it.
    let held: BTreeSet<usize> = outcomes
        .iter()
        .filter(|o| o.observed.is_ok())
        .map(|o| o.id)
        .collect();
    let recheck: Vec<(usize, String, String, Vec<Check>)> = pending_checks
        .into_iter()
        .filter(|(id, _)| held.contains(id))
        .map(|(id, checks)| (id, String::new(), String::new(), checks))
        .collect();
    let rechecked = recheck.len();
    let regressions: Vec<String> = settle(&sc, recheck, AFTER_RESTART_WAIT)
        .await
        .into_iter()
        .filter_map(|o| {
            o.observed
                .err()
                .map(|e| format!("case {} after the restart: {e}", o.id))
        })
        .collect();
    if let Err(e) = operator_alive(&sc.operator) {
        failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("after the restart: {e}"));
    }

    // Secrets the operator does not own are untouched.
    let secrets = sc
        .secrets()
        .list(&Default::default())
        .await
        .expect("list Secrets")
        .items;
    let by_name: BTreeMap<String, &Secret> = secrets
        .iter()
        .map(|s| (s.metadata.name.clone().unwrap_or_default(), s))
        .collect();
    let foreign = run.foreign.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (name, (rv, data)) in &foreign {
        match by_name.get(name) {
            None => failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("foreign Secret {name} was deleted")),
            Some(s) if s.metadata.resource_version != *rv || secret_data(s) != *data => {
                failures.lock().unwrap_or_else(|e| e.into_inner()).push(format!(
                    "foreign Secret {name} changed: resourceVersion {rv:?} -> {:?}, ownerReferences {:?}, keys {:?}",
                    s.metadata.resource_version,
                    s.metadata.owner_references,
                    secret_data(s).keys().collect::<Vec<_>>()
                ))
            }
            Some(_) => {}
        }
    }

    // No password in a log line, an Event or a status.
    let mut values: BTreeSet<String> = run
        .secret_values
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    let mut owned = 0;
    for s in &secrets {
        let managed = s
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "SipUser");
        if managed && let Some(pw) = secret_data(s).get("password") {
            owned += 1;
            values.insert(String::from_utf8_lossy(pw).into_owned());
        }
    }
    values.retain(|v| v.chars().count() >= 12);
    let second_log = sc.operator.log();
    let events = serde_json::to_string(&namespace_events(&sc).await).expect("Events to JSON");
    let statuses: String = snapshot(&sc)
        .await
        .values()
        .map(|v| v["status"].to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let leaked = leaks(
        &values,
        &[
            ("the operator log", first_log.as_str()),
            ("the restarted operator's log", second_log.as_str()),
            ("an Event", events.as_str()),
            ("a status", statuses.as_str()),
        ],
    );
    println!(
        "fuzz: {} foreign Secrets unchanged-checked, {} secret values ({owned} operator-written passwords) \
         searched in logs, Events and statuses; {rechecked} cases re-checked after the restart; total {:.1?}",
        foreign.len(),
        values.len(),
        started.elapsed()
    );

    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut problems = Vec::new();
    if mismatched > 0 {
        problems.push(format!(
            "{mismatched} of {} cases did not end as they must:\n{table}",
            outcomes.len()
        ));
    }
    for (what, list) in [
        ("liveness", &failures),
        ("after the restart", &regressions),
        ("secrecy", &leaked),
    ] {
        if !list.is_empty() {
            problems.push(format!("{what}:\n  {}", list.join("\n  ")));
        }
    }
    assert!(
        problems.is_empty(),
        "fuzz (seed {seed:#x}, replay with SIP_FUZZ_SEED={seed:#x} SIP_FUZZ_CASES={next_id}):\n{}\n{}",
        problems.join("\n"),
        sc.context()
    );
}
