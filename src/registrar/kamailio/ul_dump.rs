//! Reading `ul.dump` and `ul.lookup` answers, pure: the live contacts of addresses of record.
//! (`ul.dump` is only the fallback for a config without the registration journal: see
//! `journal.rs` for why it does not scale.)
//!
//! Kamailio 5.6 answers `{"Domains":[{"Domain":{"Domain":"location","AoRs":[{"Info":{"AoR":
//! "alice@example.com","Contacts":[{"Contact":{"Address":..,"Expires":..,"User-Agent":..,
//! "Last-Modified":..}}]}}]}}]}`. `Expires` is the seconds left, or the word `permanent`,
//! `expired` or `deleted` (contacts that lapsed stay listed until the usrloc timer purges them).
use serde_json::Value;

use crate::registrar::Contact;

/// The live contacts in a `ul.dump` result; lapsed ones and malformed entries are skipped.
pub fn contacts(dump: &Value) -> Vec<Contact> {
    let mut out = Vec::new();
    let domains = dump
        .get("Domains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for table in domains {
        let records = table
            .pointer("/Domain/AoRs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for record in records {
            let Some(aor) = record.pointer("/Info/AoR").and_then(Value::as_str) else {
                continue;
            };
            if let Some(info) = record.get("Info") {
                out.extend(contacts_of(aor, info).into_iter().map(|(c, _)| c));
            }
        }
    }
    out
}

/// The live contacts of one AoR record: the `Info` of a `ul.dump` entry, or a `ul.lookup`
/// result (`{"AoR":..,"Contacts":[{"Contact":{..}}]}`), each with its Call-ID (which the
/// journal attributes to a digest username).
pub fn contacts_of(aor: &str, record: &Value) -> Vec<(Contact, Option<String>)> {
    record
        .get("Contacts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let c = c.get("Contact")?;
            let call_id = c.get("Call-ID").and_then(Value::as_str).map(str::to_string);
            Some((contact(aor, c)?, call_id))
        })
        .collect()
}

fn contact(aor: &str, c: &Value) -> Option<Contact> {
    let expires_in = match c.get("Expires")? {
        Value::Number(n) => Some(n.as_u64()?),
        Value::String(s) if s == "permanent" => None,
        // "expired", "deleted": no longer registered.
        _ => return None,
    };
    let user_agent = c
        .get("User-Agent")
        .and_then(Value::as_str)
        .filter(|ua| !ua.is_empty() && *ua != "[not set]")
        .map(str::to_string);
    Some(Contact {
        aor: aor.to_string(),
        address: c.get("Address")?.as_str()?.to_string(),
        user_agent,
        expires_in,
        last_modified: c.get("Last-Modified").and_then(Value::as_i64),
        auth_username: None,
        previous_password: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `ul.dump` recorded from Kamailio 5.6.3 (Debian) 15 s after a SIPp REGISTER with Expires 60.
    fn recorded() -> Value {
        let answer: Value =
            serde_json::from_str(include_str!("testdata/ul_dump.json")).expect("recorded ul.dump is JSON");
        answer["result"].clone()
    }

    #[test]
    fn reads_the_recorded_dump() {
        assert_eq!(
            contacts(&recorded()),
            vec![Contact {
                aor: "alice@acme.example.com".into(),
                address: "sip:alice@127.0.0.1:25090;transport=UDP".into(),
                user_agent: Some("sip-operator-tests SIPp".into()),
                expires_in: Some(45),
                last_modified: Some(1795473021),
                auth_username: None,
                previous_password: false,
            }]
        );
    }

    #[test]
    fn lapsed_contacts_are_left_out_and_permanent_ones_kept() {
        let mut dump = recorded();
        let first = dump
            .pointer("/Domains/0/Domain/AoRs/0/Info/Contacts/0")
            .cloned()
            .expect("contact");
        let with = |expires: Value, address: &str| {
            let mut c = first.clone();
            c["Contact"]["Expires"] = expires;
            c["Contact"]["Address"] = json!(address);
            c["Contact"]["User-Agent"] = json!("[not set]");
            c
        };
        let listed = dump
            .pointer_mut("/Domains/0/Domain/AoRs/0/Info/Contacts")
            .and_then(Value::as_array_mut)
            .expect("contacts");
        listed.push(with(json!("expired"), "sip:gone@192.0.2.1"));
        listed.push(with(json!("deleted"), "sip:gone@192.0.2.2"));
        listed.push(with(json!("permanent"), "sip:desk@192.0.2.3"));
        let found = contacts(&dump);
        let addresses: Vec<_> = found.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(
            addresses,
            ["sip:alice@127.0.0.1:25090;transport=UDP", "sip:desk@192.0.2.3"]
        );
        assert_eq!(found[1].expires_in, None);
        assert_eq!(found[1].user_agent, None, "[not set] is no user agent");
    }

    #[test]
    fn an_empty_or_odd_dump_has_no_contacts() {
        let empty = json!({"Domains":[{"Domain":{"Domain":"location","Size":1024,"AoRs":[],
            "Stats":{"Records":0,"Max-Slots":0}}}]});
        assert!(contacts(&empty).is_empty());
        assert!(contacts(&json!({})).is_empty());
        assert!(contacts(&json!({"Domains":[{"Domain":{"AoRs":[{"Info":{}}]}}]})).is_empty());
    }
}
