//! The check of a password the end user chooses, pure: the domain's `passwordPolicy` read as
//! a rule for people — at least `length` characters, only characters of `characterSet` —
//! and the confirmation must match.
use crate::api::{CharacterSet, PasswordPolicy};
use crate::credentials::{PASSWORD_LENGTHS, Password, SYMBOLS, password_length};

/// Why a chosen password is refused: said on the page, never with the password in it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyRefusal {
    #[error("The two passwords differ. Type the same password twice.")]
    Mismatch,
    #[error("The password is too short: it needs at least {required} characters (it has {actual}).")]
    TooShort { required: usize, actual: usize },
    #[error("The password is too long: at most {max} characters.")]
    TooLong { max: usize },
    #[error("The password may contain only {allowed}.")]
    DisallowedCharacter { allowed: &'static str },
}

/// The longest password accepted (what the policy's length may be at most).
pub const MAX_LENGTH: usize = *PASSWORD_LENGTHS.end();

/// What a policy allows, in words, for the form's hint.
pub fn describe(policy: &PasswordPolicy) -> String {
    format!(
        "at least {} characters; {}",
        required_length(policy),
        allowed(policy.character_set)
    )
}

/// A chosen password is at least as long as a generated one would be.
fn required_length(policy: &PasswordPolicy) -> usize {
    password_length(policy)
}

fn allowed(set: CharacterSet) -> &'static str {
    match set {
        CharacterSet::Alphanumeric => "letters A-Z and a-z and digits 0-9",
        CharacterSet::AlphanumericSymbols => {
            "letters A-Z and a-z, digits 0-9 and the symbols - _ . ! ~ * + ="
        }
    }
}

/// The chosen password if it follows `policy` and equals its confirmation.
pub fn check(password: &str, confirmation: &str, policy: &PasswordPolicy) -> Result<Password, PolicyRefusal> {
    if password != confirmation {
        return Err(PolicyRefusal::Mismatch);
    }
    let actual = password.chars().count();
    let required = required_length(policy);
    if actual < required {
        return Err(PolicyRefusal::TooShort { required, actual });
    }
    if actual > MAX_LENGTH {
        return Err(PolicyRefusal::TooLong { max: MAX_LENGTH });
    }
    let ok = |c: char| {
        c.is_ascii_alphanumeric()
            || (policy.character_set == CharacterSet::AlphanumericSymbols && SYMBOLS.contains(c))
    };
    if !password.chars().all(ok) {
        return Err(PolicyRefusal::DisallowedCharacter {
            allowed: allowed(policy.character_set),
        });
    }
    Ok(Password::new(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(length: i32, character_set: CharacterSet) -> PasswordPolicy {
        PasswordPolicy {
            length,
            character_set,
            ..Default::default()
        }
    }

    #[test]
    fn a_password_of_the_length_and_alphabet_is_accepted() {
        let p = policy(16, CharacterSet::Alphanumeric);
        let pw = "Abcdefgh12345678";
        assert_eq!(check(pw, pw, &p).map(|p| p.expose().to_string()), Ok(pw.into()));
        let longer = "Abcdefgh12345678xyz";
        assert!(check(longer, longer, &p).is_ok(), "at least, not exactly");
        let s = policy(16, CharacterSet::AlphanumericSymbols);
        let sym = "Abc-def_gh.12!~*+=";
        assert!(check(sym, sym, &s).is_ok());
    }

    #[test]
    fn refusals_say_what_to_fix_without_the_password() {
        let p = policy(20, CharacterSet::Alphanumeric);
        assert_eq!(check("a", "b", &p), Err(PolicyRefusal::Mismatch));
        let short = "Short1";
        let e = check(short, short, &p).expect_err("short");
        assert_eq!(
            e,
            PolicyRefusal::TooShort {
                required: 20,
                actual: 6
            }
        );
        assert!(e.to_string().contains("at least 20"), "{e}");
        assert!(!e.to_string().contains(short));
        let symbols = "Abcdefgh12345678-xyz!";
        let e = check(symbols, symbols, &p).expect_err("symbols");
        assert!(matches!(e, PolicyRefusal::DisallowedCharacter { .. }));
        let s = policy(16, CharacterSet::AlphanumericSymbols);
        for bad in [
            "Abcdefgh12345678 x",
            "Abcdefgh12345678\"x",
            "Abcdefgh12345678<x",
            "Abcdefgh12345678é",
        ] {
            assert!(
                matches!(
                    check(bad, bad, &s),
                    Err(PolicyRefusal::DisallowedCharacter { .. })
                ),
                "{bad:?}"
            );
        }
        let huge = "a".repeat(129);
        assert_eq!(
            check(&huge, &huge, &policy(16, CharacterSet::Alphanumeric)),
            Err(PolicyRefusal::TooLong { max: 128 })
        );
    }

    #[test]
    fn a_stored_length_outside_the_schema_bounds_asks_what_a_generated_password_has() {
        // A chosen password is never shorter than the operator itself would generate.
        let p = policy(4, CharacterSet::Alphanumeric);
        assert_eq!(
            check("abcdefgh", "abcdefgh", &p),
            Err(PolicyRefusal::TooShort {
                required: 16,
                actual: 8
            })
        );
        assert!(describe(&policy(500, CharacterSet::Alphanumeric)).starts_with("at least 128 "));
    }

    #[test]
    fn the_hint_names_the_length_and_the_alphabet() {
        assert_eq!(
            describe(&policy(24, CharacterSet::Alphanumeric)),
            "at least 24 characters; letters A-Z and a-z and digits 0-9"
        );
    }
}
