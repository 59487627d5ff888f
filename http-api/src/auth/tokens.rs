//! Short-lived JWT access tokens.
//!
//! HS256 with a shared secret: the API both issues and verifies these tokens, so nothing else needs a
//! public key. The header carries a key id (`kid`) so the secret can rotate: [`AccessKeys`] signs with
//! its current key and still accepts tokens from previous keys until they expire (keep a previous key
//! for at least one access-token lifetime after rotating).
//!
//! Verification never trusts the header beyond picking the key: the algorithm is pinned to HS256
//! (so `alg: none`, HS384/HS512 and RS256-signed-with-the-HMAC-secret confusion all fail), the `kid`
//! must name a configured key, and issuer, audience and expiry are checked against the caller's clock.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AuthError;

/// `iss` of every access token.
pub const ISSUER: &str = "trespasser";
/// `aud` of every access token.
pub const AUDIENCE: &str = "trespasser-api";
/// Default access-token lifetime (the issue's 15 minutes).
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Clock skew tolerated when checking `exp`, in seconds.
pub const LEEWAY_SECS: i64 = 5;
/// Longest token accepted for verification. Real tokens are ~450 bytes; the bound keeps hostile
/// headers from costing base64 and JSON work.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Shortest accepted HMAC secret: 256 bits, the output size of SHA-256 (RFC 7518 §3.2).
pub const MIN_SECRET_LEN: usize = 32;
const MAX_KID_LEN: usize = 64;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Account id.
    pub sub: Uuid,
    /// Display name at issue time (informational; the store stays the truth).
    pub name: String,
    /// Account role, e.g. "player" or "admin".
    pub role: String,
    /// Refresh-session family id, so logout and reuse detection can name the session.
    pub sid: Uuid,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
    /// Always [`ISSUER`].
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// Unique token id (for audit logs).
    pub jti: Uuid,
}

#[derive(Clone)]
struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Key {
    fn new(kid: String, secret: &[u8]) -> Result<Self, AuthError> {
        if kid.is_empty() || kid.len() > MAX_KID_LEN {
            return Err(AuthError::Config("key id must be 1 to 64 characters"));
        }
        if !kid.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return Err(AuthError::Config("key id may contain only ASCII letters, digits, '.', '_' and '-'"));
        }
        if secret.len() < MIN_SECRET_LEN {
            return Err(AuthError::Config("access-token secret must be at least 32 bytes"));
        }
        Ok(Key { kid, encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) })
    }
}

/// The signing key and the verification-only keys of previous rotations.
#[derive(Clone)]
pub struct AccessKeys {
    current: Key,
    previous: Vec<Key>,
    validation: Validation,
}

// Secrets must never reach logs, so Debug shows key ids only.
impl fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKeys")
            .field("current", &self.current.kid)
            .field("previous", &self.previous.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

impl AccessKeys {
    /// Keys that sign with `secret` under key id `kid` (1 to 64 of `[A-Za-z0-9._-]`). The secret
    /// must be at least [`MIN_SECRET_LEN`] bytes; [`AccessKeys::generate_secret`] makes one.
    pub fn new(kid: impl Into<String>, secret: &[u8]) -> Result<Self, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // `exp` is checked in `verify` against the caller's `now` (testable, one clock for the
        // API); the library would read the system clock itself.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        Ok(AccessKeys { current: Key::new(kid.into(), secret)?, previous: Vec::new(), validation })
    }

    /// Adds a verification-only key from an earlier rotation. Key ids must be distinct.
    pub fn with_previous(mut self, kid: impl Into<String>, secret: &[u8]) -> Result<Self, AuthError> {
        let key = Key::new(kid.into(), secret)?;
        if self.find(&key.kid).is_some() {
            return Err(AuthError::Config("duplicate access-token key id"));
        }
        self.previous.push(key);
        Ok(self)
    }

    /// A fresh random 32-byte secret, for development setups that have none configured.
    pub fn generate_secret() -> [u8; 32] {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        secret
    }

    /// The key id new tokens are signed with.
    pub fn current_kid(&self) -> &str {
        &self.current.kid
    }

    fn find(&self, kid: &str) -> Option<&Key> {
        std::iter::once(&self.current).chain(&self.previous).find(|k| k.kid == kid)
    }

    /// Signs a token for account `sub` in session family `sid`, valid from `now` (Unix seconds) for
    /// `ttl` (whole seconds, at least one).
    pub fn issue(
        &self,
        sub: Uuid,
        name: &str,
        role: &str,
        sid: Uuid,
        ttl: Duration,
        now: i64,
    ) -> Result<(String, AccessClaims), AuthError> {
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        if ttl == 0 {
            return Err(AuthError::Config("access-token lifetime must be at least one second"));
        }
        let exp = now.checked_add(ttl).ok_or(AuthError::Config("access-token lifetime overflows"))?;
        let claims = AccessClaims {
            sub,
            name: name.to_owned(),
            role: role.to_owned(),
            sid,
            iat: now,
            exp,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current.kid.clone());
        let token = encode(&header, &claims, &self.current.encoding)
            .map_err(|e| AuthError::Internal(format!("signing access token: {e}")))?;
        Ok((token, claims))
    }

    /// Checks a token's signature, key id, algorithm, issuer, audience and expiry at `now` (Unix
    /// seconds, with [`LEEWAY_SECS`] of leeway). `Expired` is returned only for tokens that are
    /// otherwise valid, so it is safe to tell the client to refresh.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid("token too long"));
        }
        let header = decode_header(token).map_err(|e| invalid_because("header", &e))?;
        // `decode` pins the algorithm too; checking first keeps the reason in the debug log clear.
        if header.alg != Algorithm::HS256 {
            return Err(invalid("algorithm is not HS256"));
        }
        // RFC 7515 §4.1.11: a recipient must refuse critical extensions it does not understand.
        if header.crit.is_some() {
            return Err(invalid("critical header extensions"));
        }
        let kid = header.kid.as_deref().ok_or_else(|| invalid("no key id"))?;
        let key = self.find(kid).ok_or_else(|| invalid("unknown key id"))?;
        let data = decode::<AccessClaims>(token, &key.decoding, &self.validation)
            .map_err(|e| invalid_because("claims", &e))?;
        let claims = data.claims;
        if now > claims.exp.saturating_add(LEEWAY_SECS) {
            return Err(AuthError::Expired);
        }
        Ok(claims)
    }
}

fn invalid(reason: &'static str) -> AuthError {
    tracing::debug!(reason, "access token refused");
    AuthError::Invalid
}

fn invalid_because(part: &'static str, error: &jsonwebtoken::errors::Error) -> AuthError {
    tracing::debug!(part, %error, "access token refused");
    AuthError::Invalid
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;
    use serde_json::json;
    use sha2::{Digest, Sha256};

    use super::*;

    const SECRET_A: &[u8] = b"0123456789abcdef0123456789abcdef";
    const SECRET_B: &[u8] = b"fedcba9876543210fedcba9876543210";
    const NOW: i64 = 1_700_000_000;

    fn keys() -> AccessKeys {
        AccessKeys::new("k1", SECRET_A).unwrap()
    }

    fn issue(keys: &AccessKeys, now: i64) -> (String, AccessClaims) {
        keys.issue(Uuid::new_v4(), "Alice", "player", Uuid::new_v4(), DEFAULT_ACCESS_TTL, now).unwrap()
    }

    // HMAC-SHA256 (RFC 2104) by hand, so tests can sign arbitrary headers the library would refuse
    // to produce, and prove that the refusals come from the checks and not from a bad signature.
    fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::new().chain_update(&ipad).chain_update(msg).finalize();
        Sha256::new().chain_update(&opad).chain_update(inner).finalize().to_vec()
    }

    fn craft(header: serde_json::Value, claims: serde_json::Value, secret: &[u8]) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{h}.{c}");
        let sig = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, signing_input.as_bytes()));
        format!("{signing_input}.{sig}")
    }

    fn good_claims() -> serde_json::Value {
        json!({
            "sub": Uuid::new_v4(), "name": "Mallory", "role": "admin", "sid": Uuid::new_v4(),
            "iat": NOW, "exp": NOW + 900, "iss": ISSUER, "aud": AUDIENCE, "jti": Uuid::new_v4(),
        })
    }

    #[test]
    fn round_trip() {
        let keys = keys();
        let (token, claims) = issue(&keys, NOW);
        assert!(token.len() < MAX_TOKEN_LEN);
        assert_eq!(claims.iss, ISSUER);
        assert_eq!(claims.aud, AUDIENCE);
        assert_eq!(claims.exp - claims.iat, 15 * 60);
        assert_eq!(keys.verify(&token, NOW).unwrap(), claims);
        let header = decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.kid.as_deref(), Some("k1"));
    }

    #[test]
    fn expiry_uses_callers_clock_with_small_leeway() {
        let keys = keys();
        let (token, claims) =
            keys.issue(Uuid::new_v4(), "a", "player", Uuid::new_v4(), Duration::from_secs(60), NOW).unwrap();
        assert_eq!(claims.exp, NOW + 60);
        assert!(keys.verify(&token, NOW + 60).is_ok());
        assert!(keys.verify(&token, NOW + 60 + LEEWAY_SECS).is_ok());
        assert_eq!(keys.verify(&token, NOW + 61 + LEEWAY_SECS), Err(AuthError::Expired));
        assert_eq!(keys.verify(&token, i64::MAX), Err(AuthError::Expired));
    }

    #[test]
    fn expired_is_only_reported_for_genuine_tokens() {
        let mut claims = good_claims();
        claims["exp"] = json!(NOW - 3600);
        let forged = craft(json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}), claims, SECRET_B);
        assert_eq!(keys().verify(&forged, NOW), Err(AuthError::Invalid));
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let keys = keys();
        let (token, _) = issue(&keys, NOW);
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["role"] = json!("admin");
        let forged_payload = URL_SAFE_NO_PAD.encode(payload.to_string());
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(keys.verify(&forged, NOW), Err(AuthError::Invalid));

        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[0] ^= 1;
        let bad_sig = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(keys.verify(&bad_sig, NOW), Err(AuthError::Invalid));

        for garbage in ["", ".", "..", "a.b.c", "a.b", &token[..token.len() - 1], &format!("{token}.x")] {
            assert_eq!(keys.verify(garbage, NOW), Err(AuthError::Invalid), "{garbage:?}");
        }
        assert_eq!(keys.verify(&"a".repeat(MAX_TOKEN_LEN + 1), NOW), Err(AuthError::Invalid));
    }

    #[test]
    fn hand_crafted_hs256_control_verifies() {
        // Guards the tests below: a crafted token with the right algorithm, key and claims passes.
        let token = craft(json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}), good_claims(), SECRET_A);
        assert!(keys().verify(&token, NOW).is_ok());
    }

    #[test]
    fn wrong_algorithms_are_refused() {
        let keys = keys();
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": "k1"}).to_string()),
            URL_SAFE_NO_PAD.encode(good_claims().to_string())
        );
        assert_eq!(keys.verify(&unsigned, NOW), Err(AuthError::Invalid));
        for alg in ["none", "None", "NONE", "HS384", "HS512", "RS256", "ES256", "PS256", "EdDSA"] {
            // Signed with the real secret: only the algorithm is wrong.
            let token = craft(json!({"alg": alg, "typ": "JWT", "kid": "k1"}), good_claims(), SECRET_A);
            assert_eq!(keys.verify(&token, NOW), Err(AuthError::Invalid), "{alg}");
        }

        // A genuine HS512 token made by the library with the right secret and kid.
        let mut header = Header::new(Algorithm::HS512);
        header.kid = Some("k1".into());
        let claims: AccessClaims = serde_json::from_value(good_claims()).unwrap();
        let hs512 = encode(&header, &claims, &EncodingKey::from_secret(SECRET_A)).unwrap();
        assert_eq!(keys.verify(&hs512, NOW), Err(AuthError::Invalid));
    }

    #[test]
    fn critical_header_extensions_are_refused() {
        let token = craft(json!({"alg": "HS256", "kid": "k1", "crit": ["exp"]}), good_claims(), SECRET_A);
        assert_eq!(keys().verify(&token, NOW), Err(AuthError::Invalid));
    }

    #[test]
    fn wrong_or_missing_kid_is_refused() {
        let keys = keys();
        let other = AccessKeys::new("k9", SECRET_A).unwrap();
        let (token, _) = issue(&other, NOW);
        assert_eq!(keys.verify(&token, NOW), Err(AuthError::Invalid));
        let no_kid = craft(json!({"alg": "HS256", "typ": "JWT"}), good_claims(), SECRET_A);
        assert_eq!(keys.verify(&no_kid, NOW), Err(AuthError::Invalid));
        // A known kid with another key's signature.
        let wrong_secret = craft(json!({"alg": "HS256", "kid": "k1"}), good_claims(), SECRET_B);
        assert_eq!(keys.verify(&wrong_secret, NOW), Err(AuthError::Invalid));
    }

    #[test]
    fn wrong_audience_or_issuer_is_refused() {
        let keys = keys();
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": "k1"});
        for (field, value) in [
            ("aud", json!("someone-else")),
            ("aud", json!(["someone-else"])),
            ("iss", json!("evil")),
            ("iss", json!([ISSUER, "evil"])),
            ("sub", json!("not-a-uuid")),
            ("exp", json!("soon")),
        ] {
            let mut claims = good_claims();
            claims[field] = value.clone();
            let token = craft(header.clone(), claims, SECRET_A);
            assert_eq!(keys.verify(&token, NOW), Err(AuthError::Invalid), "{field}={value}");
        }
        for missing in ["aud", "iss", "exp", "sub", "sid", "jti"] {
            let mut claims = good_claims();
            claims.as_object_mut().unwrap().remove(missing);
            let token = craft(header.clone(), claims, SECRET_A);
            assert_eq!(keys.verify(&token, NOW), Err(AuthError::Invalid), "missing {missing}");
        }
    }

    #[test]
    fn rotation_keeps_previous_keys_verifying() {
        let old = AccessKeys::new("2024-01", SECRET_A).unwrap();
        let (old_token, old_claims) = issue(&old, NOW);

        let rotated = AccessKeys::new("2024-02", SECRET_B).unwrap().with_previous("2024-01", SECRET_A).unwrap();
        assert_eq!(rotated.current_kid(), "2024-02");
        assert_eq!(rotated.verify(&old_token, NOW).unwrap(), old_claims);

        let (new_token, _) = issue(&rotated, NOW);
        assert_eq!(decode_header(&new_token).unwrap().kid.as_deref(), Some("2024-02"));
        assert!(rotated.verify(&new_token, NOW).is_ok());
        // Instances not yet rotated refuse tokens from the new key rather than misverify them.
        assert_eq!(old.verify(&new_token, NOW), Err(AuthError::Invalid));

        // Once the previous key is dropped, its tokens stop verifying.
        let dropped = AccessKeys::new("2024-02", SECRET_B).unwrap();
        assert_eq!(dropped.verify(&old_token, NOW), Err(AuthError::Invalid));
    }

    #[test]
    fn configuration_mistakes_are_refused() {
        assert_eq!(
            AccessKeys::new("k1", b"short").unwrap_err(),
            AuthError::Config("access-token secret must be at least 32 bytes")
        );
        assert!(matches!(AccessKeys::new("", SECRET_A), Err(AuthError::Config(_))));
        assert!(matches!(AccessKeys::new("a b", SECRET_A), Err(AuthError::Config(_))));
        assert!(matches!(AccessKeys::new("k".repeat(65), SECRET_A), Err(AuthError::Config(_))));
        assert!(matches!(keys().with_previous("k1", SECRET_B), Err(AuthError::Config(_))));
        assert!(matches!(
            keys().issue(Uuid::nil(), "a", "player", Uuid::nil(), Duration::from_millis(500), NOW),
            Err(AuthError::Config(_))
        ));
        assert!(matches!(
            keys().issue(Uuid::nil(), "a", "player", Uuid::nil(), Duration::from_secs(10), i64::MAX),
            Err(AuthError::Config(_))
        ));
        let generated = AccessKeys::generate_secret();
        assert_ne!(generated, AccessKeys::generate_secret());
        assert!(AccessKeys::new("dev", &generated).is_ok());
    }

    #[test]
    fn debug_does_not_leak_secrets() {
        let keys = keys().with_previous("k0", SECRET_B).unwrap();
        let shown = format!("{keys:?}");
        assert!(shown.contains("k1") && shown.contains("k0"));
        assert!(!shown.contains("0123456789abcdef") && !shown.contains("fedcba"));
    }

    proptest! {
        #[test]
        fn verify_never_panics(token in "\\PC{0,600}") {
            prop_assert_eq!(keys().verify(&token, NOW), Err(AuthError::Invalid));
        }

        #[test]
        fn verify_never_panics_on_jwt_shaped_input(h in "[A-Za-z0-9_-]{0,80}", c in "[A-Za-z0-9_-]{0,200}", s in "[A-Za-z0-9_-]{0,60}") {
            let token = format!("{h}.{c}.{s}");
            prop_assert_eq!(keys().verify(&token, NOW), Err(AuthError::Invalid));
        }
    }
}
