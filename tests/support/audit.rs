//! The API server's audit log (metadata level, every write): who wrote what, for tests and
//! benchmarks that count the operator's writes.
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use serde::Deserialize;

use super::ControlPlane;

/// The user name the operator authenticates as (tests/control-plane/start.sh).
pub const OPERATOR_USER: &str = "sip-operator";
pub const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// The fields of an audit.k8s.io/v1 Event the test looks at.
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub verb: String,
    pub user: AuditUser,
    #[serde(default)]
    pub object_ref: Option<AuditObjectRef>,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default, rename = "requestURI")]
    pub request_uri: Option<String>,
    #[serde(default)]
    pub response_status: Option<AuditStatus>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct AuditUser {
    #[serde(default)]
    pub username: String,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct AuditObjectRef {
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub subresource: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct AuditStatus {
    #[serde(default)]
    pub code: Option<i32>,
}

impl AuditEvent {
    /// A write by the operator in `namespace`, other than to its leader-election Lease.
    pub fn is_operator_write_in(&self, namespace: &str) -> bool {
        let Some(obj) = &self.object_ref else { return false };
        self.user.username == OPERATOR_USER
            && WRITE_VERBS.contains(&self.verb.as_str())
            && obj.namespace.as_deref() == Some(namespace)
            && obj.resource != "leases"
    }

    pub fn summary(&self) -> String {
        let obj = self.object_ref.clone().unwrap_or_default();
        format!(
            "{} {}{} {} ({:?}, code {:?}, {})",
            self.verb,
            obj.resource,
            obj.subresource.map(|s| format!("/{s}")).unwrap_or_default(),
            obj.name.unwrap_or_default(),
            self.stage,
            self.response_status.as_ref().and_then(|s| s.code),
            self.request_uri.as_deref().unwrap_or_default()
        )
    }
}

/// Reads the audit log from a mark onwards, a complete line at a time.
pub struct AuditLog {
    path: PathBuf,
    offset: u64,
    pub lines: usize,
}

impl AuditLog {
    /// Marks the current end of the audit log (and counts its lines).
    pub fn mark() -> AuditLog {
        let path = PathBuf::from(ControlPlane::shared().env("AUDIT_LOG"));
        let mut log = AuditLog {
            path,
            offset: 0,
            lines: 0,
        };
        let existing = log.read_new().len();
        log.lines = existing;
        log
    }

    /// Audit events appended since the last read.
    pub fn read_new(&mut self) -> Vec<AuditEvent> {
        let mut file = std::fs::File::open(&self.path)
            .unwrap_or_else(|e| panic!("open audit log {}: {e}", self.path.display()));
        let len = file.metadata().expect("audit log metadata").len();
        assert!(
            len >= self.offset,
            "the audit log {} shrank (rotated?) from {} to {len} bytes; the count would be wrong",
            self.path.display(),
            self.offset
        );
        file.seek(SeekFrom::Start(self.offset)).expect("seek audit log");
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).expect("read audit log");
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.offset += complete as u64;
        let text = String::from_utf8_lossy(&bytes[..complete]);
        let events: Vec<AuditEvent> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("audit line is not an audit Event ({e}): {l}"))
            })
            .collect();
        self.lines += events.len();
        events
    }
}
