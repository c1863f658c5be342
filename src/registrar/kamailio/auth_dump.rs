//! The shipped config's failed-authentication htables (see "Failed authentications" at the
//! top of kamailio.cfg), parsed from `htable.dump` answers, pure. Each table holds only the
//! users and sources that failed recently, so the reads grow with failures, not with users.
use serde_json::Value;

use super::answer::htable_items as items;
use crate::registrar::{AuthFailures, LastFailure};

/// Failure counts: `src:<ip>` and `usr:<aor>`, each dropped FAIL_WINDOW s after its last failure.
pub const AUTHFAIL_HTABLE: &str = "authfail";
/// `<aor>` = `"<unix time> <ip>"` of the user's last failure.
pub const AUTHLAST_HTABLE: &str = "authlast";
/// `<ip>` of each blocked source address.
pub const BLOCKED_HTABLE: &str = "blocked";

/// A count as the dump shows it: an int, or a string holding one.
fn count(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// `"<unix time> <ip>"`.
fn last_failure(value: &Value) -> Option<LastFailure> {
    let (at, source) = value.as_str()?.trim().split_once(' ')?;
    let source = source.trim();
    if source.is_empty() {
        return None;
    }
    Some(LastFailure {
        at: at.parse().ok()?,
        source: source.to_string(),
    })
}

/// The endpoint's failures from the dumps of its three tables (`Value::Null` for a table the
/// config does not declare). Source counts are not reported (the blocked set says what the
/// registrar does about them); malformed items are skipped.
pub fn auth_failures(authfail: &Value, authlast: &Value, blocked: &Value) -> AuthFailures {
    let mut out = AuthFailures::default();
    for (name, value) in items(authfail) {
        if let (Some(aor), Some(n)) = (name.strip_prefix("usr:"), count(value))
            && !aor.is_empty()
        {
            out.by_aor.entry(aor.to_string()).or_default().count = n;
        }
    }
    for (aor, value) in items(authlast) {
        if let Some(last) = last_failure(value)
            && !aor.is_empty()
        {
            out.by_aor.entry(aor.to_string()).or_default().last = Some(last);
        }
    }
    out.blocked = items(blocked)
        .map(|(ip, _)| ip.to_string())
        .filter(|ip| !ip.is_empty())
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registrar::UserFailures;

    // Built like the recorded dumps below, with the cases they lack (a count as a string,
    // several users, a user whose count expired, a malformed last failure).
    fn authfail() -> Value {
        json!([
            {"entry": 3, "size": 2, "slot": [
                {"name": "src:127.0.0.2", "value": 4, "type": "int"},
                {"name": "usr:alice@acme.test", "value": 4, "type": "int"}
            ]},
            {"entry": 7, "size": 1, "slot": [
                {"name": "usr:bob@acme.test", "value": "2", "type": "str"}
            ]}
        ])
    }
    fn authlast() -> Value {
        json!([
            {"entry": 1, "size": 2, "slot": [
                {"name": "alice@acme.test", "value": "1796150000 127.0.0.2", "type": "str"},
                {"name": "carol@acme.test", "value": "1796140000 10.1.2.3", "type": "str"},
                {"name": "broken@acme.test", "value": "not a time", "type": "str"}
            ]}
        ])
    }

    #[test]
    fn counts_per_user_last_failures_and_blocked_sources_are_read_from_the_dumps() {
        let blocked =
            json!([{"entry": 0, "size": 1, "slot": [{"name": "127.0.0.2", "value": 1, "type": "int"}]}]);
        let f = auth_failures(&authfail(), &authlast(), &blocked);
        assert_eq!(
            f.by_aor["alice@acme.test"],
            UserFailures {
                count: 4,
                last: Some(LastFailure {
                    at: 1_796_150_000,
                    source: "127.0.0.2".into()
                })
            }
        );
        assert_eq!(f.by_aor["bob@acme.test"].count, 2);
        assert_eq!(f.by_aor["bob@acme.test"].last, None);
        // The window passed for carol: no count, but the last failure is still known.
        assert_eq!(f.by_aor["carol@acme.test"].count, 0);
        assert!(f.by_aor["carol@acme.test"].last.is_some());
        assert!(!f.by_aor.contains_key("broken@acme.test"));
        assert!(
            !f.by_aor.keys().any(|k| k.starts_with("src:")),
            "sources are not users"
        );
        assert_eq!(f.blocked.iter().collect::<Vec<_>>(), ["127.0.0.2"]);
    }

    // Results recorded from Kamailio 5.6 (Debian) running the shipped kamailio.cfg with
    // FAIL_LIMIT 2, after two wrong passwords for alice from 127.0.0.2; an empty table's dump.
    const AUTHFAIL: &str = r#"[{"entry":877,"size":1,"slot":[{"name":"usr:alice@acme.sip.example.com","type":"int","value":2}]},{"entry":977,"size":1,"slot":[{"name":"src:127.0.0.2","type":"int","value":2}]}]"#;
    const AUTHLAST: &str = r#"[{"entry":876,"size":1,"slot":[{"name":"alice@acme.sip.example.com","type":"str","value":"1796147600 127.0.0.2"}]}]"#;
    const BLOCKED: &str = r#"[{"entry":20,"size":1,"slot":[{"name":"127.0.0.2","type":"int","value":1}]}]"#;
    const EMPTY: &str = "[]";

    #[test]
    fn recorded_dumps_are_read() {
        let parse = |s: &str| serde_json::from_str::<Value>(s).expect("json");
        let f = auth_failures(&parse(AUTHFAIL), &parse(AUTHLAST), &parse(BLOCKED));
        assert_eq!(f.by_aor.len(), 1);
        assert_eq!(
            f.by_aor["alice@acme.sip.example.com"],
            UserFailures {
                count: 2,
                last: Some(LastFailure {
                    at: 1_796_147_600,
                    source: "127.0.0.2".into()
                })
            }
        );
        assert!(f.blocked.contains("127.0.0.2"));
        let none = auth_failures(&parse(EMPTY), &parse(EMPTY), &parse(EMPTY));
        assert_eq!(none, AuthFailures::default());
    }

    #[test]
    fn empty_or_missing_tables_report_no_failures() {
        assert_eq!(
            auth_failures(&json!([]), &json!([]), &json!([])),
            AuthFailures::default()
        );
        assert_eq!(
            auth_failures(&Value::Null, &Value::Null, &Value::Null),
            AuthFailures::default()
        );
    }
}
