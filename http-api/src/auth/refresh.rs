//! Opaque refresh tokens.
//!
//! A refresh token is 32 random bytes (256 bits), base64url-encoded behind a recognizable prefix.
//! The store keeps only the SHA-256 of the token: a database leak yields no usable tokens, and since
//! the tokens are uniformly random a fast unsalted hash is enough (there is nothing to brute-force,
//! unlike passwords). Lookups are by hash, so comparing secrets in constant time is not needed either.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of every refresh token, so a leaked one is recognizable in logs and by secret scanners.
pub const REFRESH_TOKEN_PREFIX: &str = "rt_";
const RANDOM_BYTES: usize = 32;
/// Length of a well-formed token: the prefix and 43 base64url characters.
pub const REFRESH_TOKEN_LEN: usize = REFRESH_TOKEN_PREFIX.len() + (RANDOM_BYTES * 4).div_ceil(3);
/// At most this many bytes of a presented token are hashed. No real token comes near it, so a
/// longer input cannot match one; the bound keeps hostile input from costing hashing time.
pub const MAX_HASHED_LEN: usize = 256;

/// A new refresh token: `token` goes to the client once, `hash` into the store.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// The secret handed to the client.
    pub token: String,
    /// Lower-case hex SHA-256 of `token`, as [`hash_refresh_token`] computes it.
    pub hash: String,
}

// The token is a bearer secret; keep it out of debug logs.
impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken").field("token", &"<redacted>").field("hash", &self.hash).finish()
    }
}

/// Makes a fresh random refresh token and its hash.
pub fn new_refresh_token() -> RefreshToken {
    let mut bytes = [0u8; RANDOM_BYTES];
    // ThreadRng is a CSPRNG seeded from the OS.
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{REFRESH_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_refresh_token(&token);
    RefreshToken { token, hash }
}

/// The store key of a presented token: lower-case hex SHA-256 of (at most [`MAX_HASHED_LEN`] bytes
/// of) it. Any input hashes, malformed or not; a malformed token simply finds no session.
pub fn hash_refresh_token(token: &str) -> String {
    let bytes = &token.as_bytes()[..token.len().min(MAX_HASHED_LEN)];
    to_hex(&Sha256::digest(bytes))
}

/// Whether `token` has the shape of a refresh token, for a clear error before any lookup.
pub fn looks_like_refresh_token(token: &str) -> bool {
    token.len() == REFRESH_TOKEN_LEN
        && token.strip_prefix(REFRESH_TOKEN_PREFIX).is_some_and(|body| {
            body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && URL_SAFE_NO_PAD.decode(body).is_ok_and(|raw| raw.len() == RANDOM_BYTES)
        })
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_well_formed() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let rt = new_refresh_token();
            assert!(rt.token.starts_with(REFRESH_TOKEN_PREFIX));
            assert_eq!(rt.token.len(), REFRESH_TOKEN_LEN);
            assert_eq!(REFRESH_TOKEN_LEN, 46);
            assert!(looks_like_refresh_token(&rt.token), "{}", rt.token);
            assert!(seen.insert(rt.token));
        }
    }

    #[test]
    fn hash_is_deterministic_hex_sha256() {
        let rt = new_refresh_token();
        assert_eq!(rt.hash, hash_refresh_token(&rt.token));
        assert_eq!(rt.hash.len(), 64);
        assert!(rt.hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(rt.hash, hash_refresh_token(&new_refresh_token().token));
        // Known answer: SHA-256("abc").
        assert_eq!(hash_refresh_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn malformed_tokens_hash_and_are_recognized() {
        for bad in [
            "",
            "rt_",
            "rt_short",
            "xx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
        ] {
            assert_eq!(hash_refresh_token(bad).len(), 64);
            assert!(!looks_like_refresh_token(bad), "{bad}");
        }
        let huge = "rt_".repeat(100_000);
        assert_eq!(hash_refresh_token(&huge), hash_refresh_token(&huge[..MAX_HASHED_LEN]));
        // A real token followed by junk does not hash like the real token.
        let rt = new_refresh_token();
        assert_ne!(hash_refresh_token(&format!("{}x", rt.token)), rt.hash);
    }

    #[test]
    fn debug_redacts_the_token() {
        let rt = new_refresh_token();
        assert!(!format!("{rt:?}").contains(&rt.token));
    }

    proptest! {
        #[test]
        fn hashing_and_shape_check_never_panic(s in "\\PC{0,400}") {
            prop_assert_eq!(hash_refresh_token(&s).len(), 64);
            let _ = looks_like_refresh_token(&s);
        }
    }
}
