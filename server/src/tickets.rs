//! Join-ticket verification with single-use enforcement.

use std::collections::HashMap;

use protocol::control::ErrorCode;
use protocol::ticket::{JoinClaims, TicketError, TicketKey};

/// Remembered ticket ids beyond which new tickets are refused rather than
/// letting the table grow (the table empties as tickets expire).
pub const MAX_REMEMBERED_TICKETS: usize = 1_000_000;

/// Verifies tickets for one node and remembers each ticket id until the
/// ticket expires, so a ticket is accepted at most once.
pub struct TicketVerifier {
    keys: Vec<TicketKey>,
    node_id: String,
    seen: HashMap<uuid::Uuid, u64>,
    next_purge: u64,
}

/// A refusal with its stable code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl TicketVerifier {
    pub fn new(keys: Vec<TicketKey>, node_id: String) -> TicketVerifier {
        TicketVerifier { keys, node_id, seen: HashMap::new(), next_purge: 0 }
    }

    /// Verifies `token` at `now` (Unix seconds) and consumes its id.
    pub fn verify(&mut self, token: &str, now: u64) -> Result<JoinClaims, Refusal> {
        let claims = protocol::ticket::verify(token, &self.keys, &self.node_id, now).map_err(|e| {
            let code = match e {
                TicketError::Expired => ErrorCode::TicketExpired,
                TicketError::WrongNode(_) => ErrorCode::WrongNode,
                _ => ErrorCode::BadTicket,
            };
            Refusal { code, message: e.to_string() }
        })?;
        if now >= self.next_purge || self.seen.len() >= MAX_REMEMBERED_TICKETS {
            let horizon = now.saturating_sub(protocol::ticket::CLOCK_SKEW_SECS);
            self.seen.retain(|_, exp| *exp >= horizon);
            self.next_purge = now + 10;
        }
        if self.seen.contains_key(&claims.jti) {
            return Err(Refusal { code: ErrorCode::TicketReused, message: "ticket was already used".into() });
        }
        if self.seen.len() >= MAX_REMEMBERED_TICKETS {
            return Err(Refusal { code: ErrorCode::Internal, message: "node is busy, try again".into() });
        }
        self.seen.insert(claims.jti, claims.exp);
        Ok(claims)
    }

    pub fn remembered(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::control::Cosmetics;
    use protocol::ticket::JoinTarget;

    fn key() -> TicketKey {
        TicketKey::new("k", vec![3u8; 32]).unwrap()
    }

    fn ticket(now: u64, jti: u128) -> String {
        key()
            .mint(&JoinClaims {
                sub: uuid::Uuid::from_u128(9),
                name: "p".into(),
                cosmetics: Cosmetics::default(),
                target: JoinTarget::Mode("deathmatch".into()),
                aud: "n".into(),
                iat: now,
                exp: now + 30,
                jti: uuid::Uuid::from_u128(jti),
            })
            .unwrap()
    }

    #[test]
    fn second_use_is_refused_and_ids_expire() {
        let mut v = TicketVerifier::new(vec![key()], "n".into());
        let t = ticket(100, 1);
        assert!(v.verify(&t, 100).is_ok());
        assert_eq!(v.verify(&t, 101).unwrap_err().code, ErrorCode::TicketReused);
        // A later, different ticket purges the expired id.
        assert!(v.verify(&ticket(200, 2), 200).is_ok());
        assert_eq!(v.remembered(), 1);
    }

    #[test]
    fn maps_errors_to_stable_codes() {
        let mut v = TicketVerifier::new(vec![key()], "other".into());
        assert_eq!(v.verify(&ticket(100, 1), 100).unwrap_err().code, ErrorCode::WrongNode);
        let mut v = TicketVerifier::new(vec![key()], "n".into());
        assert_eq!(v.verify(&ticket(100, 1), 1000).unwrap_err().code, ErrorCode::TicketExpired);
        assert_eq!(v.verify("garbage", 100).unwrap_err().code, ErrorCode::BadTicket);
    }
}
