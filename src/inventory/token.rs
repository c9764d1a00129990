//! Install tokens and API bearer tokens: making them (from the OS's random source) and
//! checking them.
//!
//! API tokens are `sixboot_{id}_{secret}`: 8 hex characters that name the token (to
//! list and revoke it) and 64 hex characters (256 random bits) of secret. Only the
//! SHA-256 of the whole text is stored. A plain hash is enough here, unlike for
//! passwords: argon2 and friends slow down guessing a low-entropy secret, but nobody
//! can enumerate 2^256 secrets however fast the hash is, so the cost would only slow
//! down every API request. Install tokens are 128 random bits in hex: long enough that
//! another machine on the link cannot guess one in a host's install window.

use sha2::{Digest, Sha256};

use super::ApiToken;

const PREFIX: &str = "sixboot_";

/// `n` random bytes in hex, from `getrandom` (the kernel's CSPRNG).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).expect("the kernel's random source is available");
    hex::encode(bytes)
}

/// A new per-install token (128 bits, 32 hex characters).
pub fn install_token() -> String {
    random_hex(16)
}

/// A new API token: the text to give the operator once, and the record to store.
pub fn new_api_token(name: &str, now: super::UnixMillis) -> (String, ApiToken) {
    let id = random_hex(4);
    let text = format!("{PREFIX}{id}_{}", random_hex(32));
    let record = ApiToken {
        id,
        name: name.to_owned(),
        hash: hash(&text),
        created_at: now,
        revoked_at: None,
    };
    (text, record)
}

/// Hex SHA-256 of a token's text.
pub fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The id part of a token's text, if it has our shape.
pub fn token_id(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 8 && secret.len() == 64).then_some(id)
}

/// The live (not revoked) token this bearer text is, if any. Compares hashes in
/// constant time.
pub fn check<'a>(tokens: &'a [ApiToken], text: &str) -> Option<&'a ApiToken> {
    let id = token_id(text)?;
    let presented = hash(text);
    tokens.iter().find(|t| {
        t.id == id
            && t.revoked_at.is_none()
            && constant_time_eq(t.hash.as_bytes(), presented.as_bytes())
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_checks_and_only_its_hash_is_kept() {
        let (text, record) = new_api_token("ci", 5);
        assert!(text.starts_with("sixboot_"));
        assert!(!record.hash.contains(&text[17..]));
        let tokens = vec![record.clone()];
        assert_eq!(check(&tokens, &text), Some(&record));
        let mut wrong = text.clone();
        wrong.pop();
        wrong.push(if text.ends_with('0') { '1' } else { '0' });
        assert!(check(&tokens, &wrong).is_none());
        let revoked = vec![ApiToken {
            revoked_at: Some(6),
            ..record
        }];
        assert!(check(&revoked, &text).is_none());
        assert!(check(&tokens, "Bearer nonsense").is_none());
    }

    #[test]
    fn install_tokens_are_128_bits_of_hex_and_differ() {
        let (a, b) = (install_token(), install_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
