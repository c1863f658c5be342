//! Invite tokens, pure: 32 random bytes from the OS CSPRNG, base64url without padding (43
//! characters, safe in a URL path), and the SHA-256 that status stores as the lookup key.
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRng as _;
use sha2::{Digest, Sha256};

/// Random bytes per token: 256 bits, beyond any guessing.
const TOKEN_BYTES: usize = 32;
/// Characters of an encoded token.
pub const TOKEN_LEN: usize = 43;

/// A link's secret. No `Display`, and its `Debug` is redacted, so it cannot reach a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A new token from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, rand::rngs::SysError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rngs::SysRng.try_fill_bytes(&mut bytes)?;
        Ok(Token(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A token as it came in a request path, if it has the form of one (43 base64url
    /// characters); a wrong or truncated one is refused before any lookup.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == TOKEN_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Token(text.to_string()))
    }

    /// The encoded token, for the link only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Hex SHA-256 of the token: what status stores beside the link and the page looks up.
    pub fn hash(&self) -> String {
        Sha256::digest(self.0.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The link for `token` under the page's public base URL (`--invite-url`).
pub fn link(base_url: &str, token: &Token) -> String {
    format!("{}/invite/{}", base_url.trim_end_matches('/'), token.expose())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters_and_differ() {
        let a = Token::generate().expect("CSPRNG");
        let b = Token::generate().expect("CSPRNG");
        assert_eq!(a.expose().len(), TOKEN_LEN);
        assert_ne!(a, b);
        assert_eq!(Token::parse(a.expose()), Some(a.clone()));
        assert!(!format!("{a:?}").contains(a.expose()), "redacted");
    }

    #[test]
    fn wrong_and_truncated_tokens_are_refused() {
        let t = Token::generate().expect("CSPRNG");
        assert!(Token::parse(&t.expose()[..42]).is_none(), "truncated");
        assert!(Token::parse(&format!("{}A", t.expose())).is_none(), "too long");
        assert!(
            Token::parse(&format!("{}=", &t.expose()[..42])).is_none(),
            "padding"
        );
        assert!(
            Token::parse(&format!("{}/", &t.expose()[..42])).is_none(),
            "slash"
        );
        assert!(Token::parse("").is_none());
    }

    #[test]
    fn the_hash_is_the_sha256_hex_of_the_encoded_token() {
        // sha256("abc"): FIPS 180-2 example.
        let t = Token("abc".into());
        assert_eq!(
            t.hash(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let u = Token::generate().expect("CSPRNG");
        assert_eq!(u.hash().len(), 64);
        assert_ne!(u.hash(), Token::generate().expect("CSPRNG").hash());
    }

    #[test]
    fn links_join_the_base_url_without_a_double_slash() {
        let t = Token("x".repeat(43));
        assert_eq!(
            link("https://invites.example.com/", &t),
            format!("https://invites.example.com/invite/{}", "x".repeat(43))
        );
        assert_eq!(
            link("https://example.com/sip", &t),
            format!("https://example.com/sip/invite/{}", "x".repeat(43))
        );
    }
}
