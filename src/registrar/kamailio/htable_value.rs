//! The htable value of a user, pure: what the shipped kamailio.cfg parses per user.
use crate::registrar::UserEntry;

/// The htable value the shipped kamailio.cfg reads with `{param.value,name}`: `name=value`
/// pairs separated by `;`. That transformation parses like SIP header parameters (a value
/// ends at `;`, `,` or white space), so every value is a token: free text is percent-encoded
/// and list items are joined with `.` (each item encoding its own dots).
pub fn htable_value(user: &UserEntry) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    if let Some(h) = &user.ha1_md5 {
        fields.push(("ha1", h.clone()));
    }
    if let Some(h) = &user.ha1_sha256 {
        fields.push(("ha1sha256", h.clone()));
    }
    fields.push(("mc", user.max_contacts.to_string()));
    // Only enabled users are pushed; suspended ones are removed.
    fields.push(("en", "1".into()));
    if let Some(e) = &user.extension {
        fields.push(("ext", encode(e)));
    }
    if !user.aliases.is_empty() {
        fields.push((
            "aliases",
            user.aliases
                .iter()
                .map(|a| encode(a))
                .collect::<Vec<_>>()
                .join("."),
        ));
    }
    if !user.flags.is_empty() {
        fields.push(("flags", user.flags.join(".")));
    }
    if let Some(g) = &user.barge_group {
        fields.push(("barge", g.clone()));
    }
    if let Some(c) = &user.caller_id {
        fields.push(("cid", encode(c)));
    }
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// Percent-encodes everything but letters, digits, `-` and `_`, so a value is a SIP token
/// and `.` stays free as the list separator.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DigestAlgorithm;
    use crate::credentials::Password;
    use crate::registrar::entry::EntrySpec;

    fn entry(algorithms: &[DigestAlgorithm]) -> UserEntry {
        UserEntry::build(&EntrySpec {
            username: "alice",
            domain: "acme.example.com",
            realm: "acme.example.com",
            password: &Password::new("secret"),
            devices: &[],
            algorithms,
            max_contacts: 2,
            extension: Some("7001"),
            aliases: &["alice;support".to_string(), "a=b".to_string()],
            flags: &["barge".to_string(), "voicemail".to_string()],
            barge_group: Some("floor"),
            caller_id: Some("+49 30 123"),
        })
    }

    #[test]
    fn value_carries_ha1_and_attributes_never_the_password() {
        let value = htable_value(&entry(&[DigestAlgorithm::Md5]));
        let md5 = crate::credentials::ha1(
            DigestAlgorithm::Md5,
            "alice",
            "acme.example.com",
            &Password::new("secret"),
        );
        assert_eq!(
            value,
            format!(
                "ha1={md5};mc=2;en=1;ext=7001;aliases=alice%3Bsupport.a%3Db;flags=barge.voicemail;barge=floor;cid=%2B49%2030%20123"
            )
        );
        assert!(!value.contains("secret"));
    }

    #[test]
    fn sha256_is_pushed_only_when_enabled() {
        assert!(!htable_value(&entry(&[DigestAlgorithm::Md5])).contains("ha1sha256="));
        let both = htable_value(&entry(&[DigestAlgorithm::Md5, DigestAlgorithm::Sha256]));
        let sha = both
            .split(';')
            .find_map(|f| f.strip_prefix("ha1sha256="))
            .expect("sha256 field");
        assert_eq!(sha.len(), 64);
    }

    #[test]
    fn entry_debug_hides_the_digests() {
        let e = entry(&[DigestAlgorithm::Md5, DigestAlgorithm::Sha256]);
        let shown = format!("{e:?}");
        assert!(!shown.contains(e.ha1_md5.as_deref().expect("md5")), "{shown}");
        assert!(shown.contains("alice"));
    }
}
