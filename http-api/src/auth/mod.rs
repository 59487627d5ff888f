//! Accounts' credentials and sessions, free of HTTP and storage so every rule is unit-tested here.
//!
//! - [`password`]: argon2id hashing (parameters documented there), run off the async runtime.
//! - [`tokens`]: short-lived HS256 JWT access tokens with key ids, so signing keys can rotate.
//! - [`refresh`]: opaque refresh tokens; the store keeps only their SHA-256 hashes.
//! - [`validate`]: usernames, display names and passwords, with stable error codes for the API.
//!
//! The HTTP layer maps [`AuthError`] and [`ValidationError`] to responses; nothing here knows about
//! axum or the store.

pub mod password;
pub mod refresh;
pub mod tokens;
pub mod validate;

pub use password::{
    PASSWORD_HASH_PARAMS, dummy_verify, dummy_verify_async, hash_password, hash_password_async, needs_rehash,
    verify_password, verify_password_async,
};
pub use refresh::{
    REFRESH_TOKEN_PREFIX, RefreshToken, hash_refresh_token, looks_like_refresh_token, new_refresh_token,
};
pub use tokens::{AUDIENCE, AccessClaims, AccessKeys, DEFAULT_ACCESS_TTL, ISSUER, LEEWAY_SECS, MAX_TOKEN_LEN};
pub use validate::{ValidationError, normalize_username, validate_display_name, validate_password, validate_username};

/// Failures of hashing, signing and token verification.
///
/// `Expired` and `Invalid` are deliberately coarse: the client learns that it must refresh (expired)
/// or log in again (invalid), never which check an invalid token failed. The reason is logged at
/// debug level instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A well-formed, correctly signed access token whose `exp` has passed.
    #[error("access token expired")]
    Expired,
    /// Anything else wrong with a token: malformed, bad signature, unknown key id, wrong algorithm,
    /// issuer or audience, oversized.
    #[error("access token invalid")]
    Invalid,
    /// A configuration mistake: a signing secret that is too short, a bad key id, a zero lifetime.
    #[error("auth configuration: {0}")]
    Config(&'static str),
    /// Hashing or signing failed, or the blocking task that ran it died. Never caused by user input
    /// alone, so the API answers 500.
    #[error("auth internal error: {0}")]
    Internal(String),
}

impl AuthError {
    /// A stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Expired => "token_expired",
            AuthError::Invalid => "token_invalid",
            AuthError::Config(_) => "auth_config",
            AuthError::Internal(_) => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(AuthError::Expired.code(), "token_expired");
        assert_eq!(AuthError::Invalid.code(), "token_invalid");
        assert_eq!(AuthError::Config("x").code(), "auth_config");
        assert_eq!(AuthError::Internal("x".into()).code(), "internal");
        // Display never carries token contents, only the category.
        assert_eq!(AuthError::Invalid.to_string(), "access token invalid");
    }
}
