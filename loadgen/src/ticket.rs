//! Join tickets minted locally with the node's development key, standing in
//! for the HTTP API until it exists.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use protocol::AccountId;
use protocol::control::Cosmetics;
use protocol::defaults::{DEV_KEY_ID, TICKET_KEY_FILE, from_hex};
use protocol::ticket::{JoinClaims, JoinTarget, TicketError, TicketKey};

/// Lifetime of minted tickets: long enough for a slow handshake under load,
/// well inside the node's 60 s maximum.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(30);

/// Mints join tickets for one node with its ticket key.
#[derive(Debug, Clone)]
pub struct DevTicketMinter {
    key: TicketKey,
    node_id: String,
}

impl DevTicketMinter {
    pub fn new(key: TicketKey, node_id: impl Into<String>) -> DevTicketMinter {
        DevTicketMinter { key, node_id: node_id.into() }
    }

    /// Uses the development key a local node generated in its data dir
    /// (`<data_dir>/ticket-key`, hex).
    pub fn from_data_dir(data_dir: &Path, node_id: impl Into<String>) -> anyhow::Result<DevTicketMinter> {
        let path = data_dir.join(TICKET_KEY_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the ticket key {} (has the node started once?)", path.display()))?;
        DevTicketMinter::from_hex_key(DEV_KEY_ID, &text, node_id).with_context(|| format!("in {}", path.display()))
    }

    /// Uses a hex-encoded key with key id `kid` (the node's `--ticket-key-id`).
    pub fn from_hex_key(kid: &str, hex: &str, node_id: impl Into<String>) -> anyhow::Result<DevTicketMinter> {
        let secret = from_hex(hex).context("the ticket key is not hex")?;
        let key = TicketKey::new(kid, secret)?;
        Ok(DevTicketMinter::new(key, node_id))
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn key(&self) -> &TicketKey {
        &self.key
    }

    /// Claims for a fresh ticket issued now: default cosmetics, a new
    /// single-use id, valid for [`TICKET_LIFETIME`]. Tests adjust them to
    /// build expired or otherwise bad tickets, then [`DevTicketMinter::sign`].
    pub fn claims(&self, account: AccountId, name: &str, target: JoinTarget) -> JoinClaims {
        let iat = unix_now();
        JoinClaims {
            sub: account,
            name: name.to_owned(),
            cosmetics: Cosmetics::default(),
            target,
            aud: self.node_id.clone(),
            iat,
            exp: iat + TICKET_LIFETIME.as_secs(),
            jti: uuid::Uuid::new_v4(),
        }
    }

    pub fn sign(&self, claims: &JoinClaims) -> Result<String, TicketError> {
        self.key.mint(claims)
    }

    /// A fresh single-use ticket. A reconnect needs another one.
    pub fn mint(&self, account: AccountId, name: &str, target: JoinTarget) -> Result<String, TicketError> {
        self.sign(&self.claims(account, name, target))
    }
}

/// Seconds since the Unix epoch, as ticket claims count time.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ticket::verify;

    fn minter() -> DevTicketMinter {
        DevTicketMinter::from_hex_key(DEV_KEY_ID, &"ab".repeat(32), "local").unwrap()
    }

    #[test]
    fn minted_tickets_verify_with_the_node_key() {
        let m = minter();
        let account = uuid::Uuid::new_v4();
        let target = JoinTarget::Mode("deathmatch".into());
        let t = m.mint(account, "bot-17", target.clone()).unwrap();
        let claims = verify(&t, &[m.key().clone()], "local", unix_now()).unwrap();
        assert_eq!((claims.sub, claims.name.as_str(), claims.target), (account, "bot-17", target));
        assert_eq!(claims.exp - claims.iat, TICKET_LIFETIME.as_secs());
        assert_eq!(claims.cosmetics, Cosmetics::default());

        // Each ticket is single use, so each gets its own id.
        let again = m.mint(account, "bot-17", JoinTarget::Lobby(7)).unwrap();
        let claims2 = verify(&again, &[m.key().clone()], "local", unix_now()).unwrap();
        assert_ne!(claims.jti, claims2.jti);
        assert!(verify(&t, &[m.key().clone()], "other-node", unix_now()).is_err());
    }

    #[test]
    fn loads_the_key_from_a_data_dir() {
        let dir = std::env::temp_dir().join(format!("loadgen-ticket-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(DevTicketMinter::from_data_dir(&dir, "local").is_err());
        std::fs::write(dir.join(TICKET_KEY_FILE), format!("{}\n", "0f".repeat(32))).unwrap();
        let m = DevTicketMinter::from_data_dir(&dir, "local").unwrap();
        assert_eq!(m.key().kid, DEV_KEY_ID);
        std::fs::write(dir.join(TICKET_KEY_FILE), "0f0f").unwrap();
        assert!(DevTicketMinter::from_data_dir(&dir, "local").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
