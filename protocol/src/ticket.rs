//! Join tickets: short-lived JWTs (HS256, key id in the header) that tell a
//! game node who a player is and where they want to go.
//!
//! The API (or, in development, `trespasser ticket` and the test helpers)
//! mints them with the node's ticket key; the node verifies signature,
//! algorithm, audience (its node id), expiry and lifetime, and remembers the
//! single-use id (`jti`) until the ticket expires.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::control::{Cosmetics, MAX_ID_BYTES, MAX_NAME_BYTES};
use crate::{AccountId, LobbyId};

/// Longest lifetime (`exp - iat`) a node accepts.
pub const MAX_TICKET_LIFETIME_SECS: u64 = 60;
/// Clock skew tolerated between the minting API and the node.
pub const CLOCK_SKEW_SECS: u64 = 5;
/// Shortest ticket key accepted (HS256 needs at least 256 bits).
pub const MIN_KEY_BYTES: usize = 32;

/// Where the player wants to play.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinTarget {
    /// Find or create a lobby of this mode.
    Mode(String),
    /// Join this lobby (from the lobby browser).
    Lobby(LobbyId),
}

/// The claims of a join ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClaims {
    /// Account id.
    pub sub: AccountId,
    /// Display name.
    pub name: String,
    /// Equipped cosmetics.
    #[serde(default)]
    pub cosmetics: Cosmetics,
    pub target: JoinTarget,
    /// Node id the ticket is valid for.
    pub aud: String,
    /// Issued at and expiry, seconds since the Unix epoch.
    pub iat: u64,
    pub exp: u64,
    /// Single-use id.
    pub jti: uuid::Uuid,
}

/// A symmetric ticket key with its id (the JWT `kid`), so keys can rotate:
/// a node may hold the current and the previous key.
#[derive(Clone)]
pub struct TicketKey {
    pub kid: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketError {
    #[error("ticket key must be at least {MIN_KEY_BYTES} bytes")]
    WeakKey,
    #[error("ticket is malformed or its signature is invalid")]
    Invalid,
    #[error("ticket was signed with an unknown key id")]
    UnknownKey,
    #[error("ticket has expired")]
    Expired,
    #[error("ticket lifetime exceeds {MAX_TICKET_LIFETIME_SECS} seconds")]
    Lifetime,
    #[error("ticket was issued for node {0:?}")]
    WrongNode(String),
    #[error("ticket claims are out of bounds: {0}")]
    Claims(&'static str),
}

impl TicketKey {
    pub fn new(kid: impl Into<String>, secret: impl Into<Vec<u8>>) -> Result<TicketKey, TicketError> {
        let secret = secret.into();
        if secret.len() < MIN_KEY_BYTES {
            return Err(TicketError::WeakKey);
        }
        Ok(TicketKey { kid: kid.into(), secret })
    }

    /// Signs `claims` as a compact JWT.
    pub fn mint(&self, claims: &JoinClaims) -> Result<String, TicketError> {
        check_claims(claims)?;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&self.secret)).map_err(|_| TicketError::Invalid)
    }
}

fn check_claims(c: &JoinClaims) -> Result<(), TicketError> {
    let name_ok = !c.name.trim().is_empty() && c.name.len() <= MAX_NAME_BYTES && !c.name.chars().any(char::is_control);
    if !name_ok {
        return Err(TicketError::Claims("name"));
    }
    let id_ok = |s: &str| !s.is_empty() && s.len() <= MAX_ID_BYTES && !s.chars().any(char::is_control);
    if let JoinTarget::Mode(m) = &c.target
        && !id_ok(m)
    {
        return Err(TicketError::Claims("mode"));
    }
    if c.cosmetics.badge.as_deref().is_some_and(|b| !id_ok(b))
        || c.cosmetics.name_color.as_deref().is_some_and(|b| !id_ok(b))
    {
        return Err(TicketError::Claims("cosmetics"));
    }
    if c.exp < c.iat || c.exp - c.iat > MAX_TICKET_LIFETIME_SECS {
        return Err(TicketError::Lifetime);
    }
    Ok(())
}

/// Verifies a ticket against the node's keys, its id and the current time
/// (seconds since the Unix epoch). Single use is the caller's job: it must
/// remember `jti` until `exp`.
pub fn verify(token: &str, keys: &[TicketKey], node_id: &str, now: u64) -> Result<JoinClaims, TicketError> {
    if token.len() > crate::control::MAX_TICKET_BYTES {
        return Err(TicketError::Invalid);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| TicketError::Invalid)?;
    if header.alg != Algorithm::HS256 {
        return Err(TicketError::Invalid);
    }
    let key = match header.kid.as_deref() {
        Some(kid) => keys.iter().find(|k| k.kid == kid).ok_or(TicketError::UnknownKey)?,
        None => return Err(TicketError::UnknownKey),
    };
    // Time and audience are checked below against the caller's clock, so the
    // checks are deterministic and testable.
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<JoinClaims>(token, &DecodingKey::from_secret(&key.secret), &validation)
        .map_err(|_| TicketError::Invalid)?;
    let claims = data.claims;
    if claims.aud != node_id {
        return Err(TicketError::WrongNode(claims.aud));
    }
    check_claims(&claims)?;
    if claims.iat > now + CLOCK_SKEW_SECS {
        return Err(TicketError::Invalid);
    }
    if claims.exp + CLOCK_SKEW_SECS <= now {
        return Err(TicketError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TicketKey {
        TicketKey::new("k1", vec![7u8; 32]).unwrap()
    }

    fn claims(now: u64) -> JoinClaims {
        JoinClaims {
            sub: uuid::Uuid::from_u128(1),
            name: "alice".into(),
            cosmetics: Cosmetics::default(),
            target: JoinTarget::Mode("deathmatch".into()),
            aud: "node-a".into(),
            iat: now,
            exp: now + 30,
            jti: uuid::Uuid::from_u128(2),
        }
    }

    #[test]
    fn round_trip() {
        let t = key().mint(&claims(1000)).unwrap();
        assert_eq!(verify(&t, &[key()], "node-a", 1010).unwrap(), claims(1000));
    }

    #[test]
    fn refuses_expired_forged_wrong_node_and_unknown_key() {
        let t = key().mint(&claims(1000)).unwrap();
        assert_eq!(verify(&t, &[key()], "node-a", 1040), Err(TicketError::Expired));
        assert_eq!(verify(&t, &[key()], "node-b", 1010), Err(TicketError::WrongNode("node-a".into())));
        let other = TicketKey::new("k1", vec![8u8; 32]).unwrap();
        assert_eq!(verify(&t, &[other], "node-a", 1010), Err(TicketError::Invalid));
        let rotated = TicketKey::new("k2", vec![7u8; 32]).unwrap();
        assert_eq!(verify(&t, &[rotated], "node-a", 1010), Err(TicketError::UnknownKey));
        let mut tampered = t.clone();
        tampered.insert(t.len() / 2, 'x');
        assert!(verify(&tampered, &[key()], "node-a", 1010).is_err());
        assert_eq!(verify("not a jwt", &[key()], "node-a", 1010), Err(TicketError::Invalid));
    }

    #[test]
    fn refuses_long_lived_tickets_and_weak_keys() {
        let mut c = claims(1000);
        c.exp = c.iat + MAX_TICKET_LIFETIME_SECS + 1;
        assert_eq!(key().mint(&c), Err(TicketError::Lifetime));
        assert_eq!(TicketKey::new("k", vec![1u8; 8]).unwrap_err(), TicketError::WeakKey);
    }
}
