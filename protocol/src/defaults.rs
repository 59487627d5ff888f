//! Defaults shared by the node, the dev tooling and the client library, so the
//! embedded mode works with no flags on either side.

/// Node id of a node started without `--node-id` (the `aud` of its tickets).
pub const DEFAULT_NODE_ID: &str = "local";
pub const DEFAULT_QUIC_ADDR: &str = "127.0.0.1:4433";
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "data";
/// Under the data dir: the generated development ticket key (hex, one line).
pub const TICKET_KEY_FILE: &str = "ticket-key";
/// Key id of the generated development ticket key.
pub const DEV_KEY_ID: &str = "dev";
/// Under the data dir: the self-signed development certificate (DER), which
/// clients of a local node trust.
pub const DEV_CERT_FILE: &str = "dev-cert.der";
/// Default game mode.
pub const DEFAULT_MODE: &str = "deathmatch";

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses hex (surrounding whitespace ignored).
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    if t.len() % 2 != 0 {
        return None;
    }
    (0..t.len()).step_by(2).map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_round_trip() {
        let b = [0u8, 1, 0xab, 0xff];
        assert_eq!(super::from_hex(&super::to_hex(&b)).unwrap(), b);
        assert!(super::from_hex("abc").is_none());
        assert!(super::from_hex("zz").is_none());
    }
}
