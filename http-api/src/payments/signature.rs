//! Stripe webhook signatures (<https://docs.stripe.com/webhooks#verify-manually>).
//!
//! Stripe sends `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=<hex>]`. Each `v1` is
//! HMAC-SHA256, keyed with the endpoint's signing secret (the whole `whsec_...` string, used as raw
//! bytes, not decoded), over `<t>.<raw request body>`. Several `v1` entries appear while Stripe rolls
//! an endpoint secret; `v0` and unknown schemes are ignored. The timestamp is signed too, so checking
//! it against the clock bounds how long a captured request can be replayed.
//!
//! Verification follows Stripe's own libraries: the signature is checked before the timestamp, every
//! candidate is compared in constant time, and any configured secret may match (so the API can accept
//! both the old and the new secret while rotating). Two deliberate strictnesses beyond them: the
//! timestamp must be plain ASCII digits (so the bytes we sign are exactly the bytes Stripe signed) and a
//! timestamp too far in the *future* is refused as well as a stale one.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The tolerance Stripe's libraries use by default: five minutes.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Longest `Stripe-Signature` header we look at. Real headers are under 200 bytes (a timestamp and
/// two or three 64-character signatures); the bound keeps a hostile header from costing more than a
/// handful of HMAC comparisons.
pub const MAX_HEADER_LEN: usize = 2048;

/// Hex digits in one SHA-256 signature.
const SIGNATURE_HEX_LEN: usize = 64;

/// Why a webhook was not accepted. Every variant means "answer 400 and change nothing".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    MissingHeader,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("no v1 signature in the Stripe-Signature header matches the body")]
    NoMatchingSignature,
    #[error("the Stripe-Signature timestamp is outside the tolerance")]
    TimestampOutsideTolerance,
}

/// Verifies `header` (the `Stripe-Signature` value; pass `""` when the request had none) against the raw
/// request body `payload`, trying every secret in `secrets`. `now` is the current Unix time in seconds
/// and `tolerance_secs` the largest accepted |now - t| (normally [`DEFAULT_TOLERANCE_SECS`]).
///
/// Returns the signed timestamp on success. Empty secrets are skipped: an empty HMAC key is one
/// anybody can sign with, so a misconfigured empty secret must never verify anything.
pub fn verify_signature(
    payload: &[u8],
    header: &str,
    secrets: &[String],
    now: i64,
    tolerance_secs: i64,
) -> Result<i64, SignatureError> {
    if header.trim().is_empty() {
        return Err(SignatureError::MissingHeader);
    }
    let parsed = parse_header(header)?;
    if parsed.v1.is_empty() {
        return Err(SignatureError::NoMatchingSignature);
    }

    let mut matched = false;
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let mac = signed_payload_mac(secret, parsed.timestamp_digits, payload);
        for candidate in &parsed.v1 {
            // `verify_slice` compares in constant time. No early exit on a match either, so timing does
            // not reveal which secret or which signature matched (not that it would help an attacker).
            matched |= mac.clone().verify_slice(candidate).is_ok();
        }
    }
    if !matched {
        return Err(SignatureError::NoMatchingSignature);
    }

    // A future timestamp counts too: |now - t|, saturating so absurd values cannot overflow.
    if now.saturating_sub(parsed.timestamp).saturating_abs() > tolerance_secs {
        return Err(SignatureError::TimestampOutsideTolerance);
    }
    Ok(parsed.timestamp)
}

/// Builds a `Stripe-Signature` header for `payload` signed with `secret` at time `t`, exactly as Stripe
/// would send it. For tests and the fake Stripe.
pub fn sign(payload: &[u8], secret: &str, t: i64) -> String {
    let digits = t.to_string();
    let mac = signed_payload_mac(secret, &digits, payload);
    format!("t={digits},v1={}", hex_encode(&mac.finalize().into_bytes()))
}

/// The HMAC state after absorbing `<t>.<payload>`; cloned once per candidate signature.
fn signed_payload_mac(secret: &str, timestamp_digits: &str, payload: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp_digits.as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

struct ParsedHeader<'a> {
    timestamp: i64,
    /// The timestamp exactly as sent; it is what was signed.
    timestamp_digits: &'a str,
    /// Decoded `v1` signatures. Entries that are not 64 hex digits cannot match and are dropped.
    v1: Vec<[u8; 32]>,
}

fn parse_header(header: &str) -> Result<ParsedHeader<'_>, SignatureError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(SignatureError::Malformed);
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some((key, value)) = item.split_once('=') else {
            return Err(SignatureError::Malformed);
        };
        match key.trim() {
            "t" => {
                // Two timestamps would make "what was signed" ambiguous.
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed);
                }
                let digits = value.trim();
                timestamp = Some((parse_timestamp(digits)?, digits));
            }
            "v1" => {
                if let Some(sig) = hex_decode_32(value.trim()) {
                    v1.push(sig);
                }
            }
            // v0 (Stripe's legacy test-mode scheme) and anything newer: ignored, as Stripe documents.
            _ => {}
        }
    }
    let Some((timestamp, timestamp_digits)) = timestamp else {
        return Err(SignatureError::Malformed);
    };
    Ok(ParsedHeader { timestamp, timestamp_digits, v1 })
}

/// Unix seconds as 1 to 18 ASCII digits: no sign, no spaces, no overflow.
fn parse_timestamp(digits: &str) -> Result<i64, SignatureError> {
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed);
    }
    digits.parse().map_err(|_| SignatureError::Malformed)
}

fn hex_decode_32(s: &str) -> Option<[u8; 32]> {
    if s.len() != SIGNATURE_HEX_LEN {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret_0123456789abcdef";
    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"checkout.session.completed"}"#;

    fn secrets(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn v1_of(header: &str) -> &str {
        header.split(',').find_map(|i| i.strip_prefix("v1=")).unwrap()
    }

    /// A vector computed by another implementation (async-stripe's own webhook test; re-checked with
    /// Python's `hmac`), so `sign` and `verify_signature` are not only checked against each other.
    #[test]
    fn matches_an_independently_computed_signature() {
        let payload = concat!(
            "{\n  \"id\": \"evt_123\",\n  \"object\": \"event\",\n  \"account\": \"acct_123\",\n",
            "  \"api_version\": \"2017-05-25\",\n  \"created\": 1533204620,\n  \"data\": {\n    \"object\": {\n",
            "      \"id\": \"ii_123\",\n      \"object\": \"invoiceitem\",\n      \"amount\": 1000,\n",
            "      \"currency\": \"usd\",\n      \"customer\": \"cus_123\",\n      \"date\": 1533204620,\n",
            "      \"description\": \"Test Invoice Item\",\n      \"discountable\": false,\n",
            "      \"invoice\": \"in_123\",\n      \"livemode\": false,\n      \"metadata\": {},\n",
            "      \"period\": {\n        \"start\": 1533204620,\n        \"end\": 1533204620\n      },\n",
            "      \"proration\": false,\n      \"quantity\": 3\n    }\n  },\n  \"livemode\": false,\n",
            "  \"pending_webhooks\": 1,\n  \"request\": {\n    \"id\": \"req_123\",\n",
            "    \"idempotency_key\": \"idempotency-key-123\"\n  },\n  \"type\": \"invoiceitem.created\"\n}\n",
        );
        let header = "t=1533204620,v1=82216eca827bcb7b34b8055eb2d2d9e6bc13b9ac39ded14a61e69f70c565f53a,\
                      v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef";
        let secret = secrets(&["webhook_secret"]);
        assert_eq!(verify_signature(payload.as_bytes(), header, &secret, 1533204620, 300), Ok(1533204620));
        assert_eq!(sign(payload.as_bytes(), "webhook_secret", 1533204620), header.split(",v0").next().unwrap());
    }

    #[test]
    fn accepts_its_own_signature() {
        let header = sign(BODY, SECRET, NOW);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(verify_signature(BODY, &header, &secrets(&[SECRET]), NOW, 300), Ok(NOW));
    }

    #[test]
    fn any_of_several_v1_signatures_may_match_in_any_order() {
        let good = v1_of(&sign(BODY, SECRET, NOW)).to_string();
        let other = v1_of(&sign(BODY, "whsec_old", NOW)).to_string();
        let header = format!("v1={other},v0={good},t={NOW},v1={good},scheme9=zzz");
        assert_eq!(verify_signature(BODY, &header, &secrets(&[SECRET]), NOW, 300), Ok(NOW));
        // v0 alone is never accepted, even when it carries the right digest.
        let header = format!("t={NOW},v0={good}");
        assert_eq!(
            verify_signature(BODY, &header, &secrets(&[SECRET]), NOW, 300),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn any_configured_secret_may_match_for_rotation() {
        let header = sign(BODY, "whsec_new", NOW);
        assert_eq!(verify_signature(BODY, &header, &secrets(&["whsec_old", "whsec_new"]), NOW, 300), Ok(NOW));
        assert_eq!(
            verify_signature(BODY, &header, &secrets(&["whsec_old"]), NOW, 300),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn wrong_secret_and_no_secrets_are_refused() {
        let header = sign(BODY, SECRET, NOW);
        for configured in [secrets(&["whsec_wrong"]), secrets(&[]), secrets(&[""])] {
            assert_eq!(
                verify_signature(BODY, &header, &configured, NOW, 300),
                Err(SignatureError::NoMatchingSignature)
            );
        }
    }

    #[test]
    fn an_empty_secret_never_verifies_even_a_signature_made_with_it() {
        let header = sign(BODY, "", NOW);
        assert_eq!(
            verify_signature(BODY, &header, &secrets(&[""]), NOW, 300),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn tampered_body_is_refused() {
        let header = sign(BODY, SECRET, NOW);
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify_signature(&tampered, &header, &secrets(&[SECRET]), NOW, 300),
            Err(SignatureError::NoMatchingSignature)
        );
        // Appending whitespace changes the bytes too; re-serialized JSON would not verify.
        let mut padded = BODY.to_vec();
        padded.push(b'\n');
        assert!(verify_signature(&padded, &header, &secrets(&[SECRET]), NOW, 300).is_err());
    }

    #[test]
    fn tampered_timestamp_is_refused() {
        let header = sign(BODY, SECRET, NOW);
        let moved = header.replace("t=1700000000", "t=1700000001");
        assert_eq!(
            verify_signature(BODY, &moved, &secrets(&[SECRET]), NOW, 300),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_at_the_boundary() {
        let s = secrets(&[SECRET]);
        let old = sign(BODY, SECRET, NOW - 300);
        assert_eq!(verify_signature(BODY, &old, &s, NOW, 300), Ok(NOW - 300));
        let stale = sign(BODY, SECRET, NOW - 301);
        assert_eq!(verify_signature(BODY, &stale, &s, NOW, 300), Err(SignatureError::TimestampOutsideTolerance));
        let ahead = sign(BODY, SECRET, NOW + 300);
        assert_eq!(verify_signature(BODY, &ahead, &s, NOW, 300), Ok(NOW + 300));
        let future = sign(BODY, SECRET, NOW + 301);
        assert_eq!(verify_signature(BODY, &future, &s, NOW, 300), Err(SignatureError::TimestampOutsideTolerance));
        let ancient = sign(BODY, SECRET, 0);
        assert_eq!(verify_signature(BODY, &ancient, &s, NOW, 300), Err(SignatureError::TimestampOutsideTolerance));
    }

    #[test]
    fn a_forged_stale_header_reports_the_signature_not_the_clock() {
        let header = format!("t={},v1={}", NOW - 10_000, "ab".repeat(32));
        assert_eq!(
            verify_signature(BODY, &header, &secrets(&[SECRET]), NOW, 300),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn garbage_headers_are_refused_with_a_reason() {
        let s = secrets(&[SECRET]);
        let good = v1_of(&sign(BODY, SECRET, NOW)).to_string();
        let check = |header: &str, want: SignatureError| {
            assert_eq!(verify_signature(BODY, header, &s, NOW, 300), Err(want), "header {header:?}");
        };
        check("", SignatureError::MissingHeader);
        check("   ", SignatureError::MissingHeader);
        check("garbage", SignatureError::Malformed);
        check(&format!("v1={good}"), SignatureError::Malformed);
        check(&format!("t=,v1={good}"), SignatureError::Malformed);
        check(&format!("t=-1700000000,v1={good}"), SignatureError::Malformed);
        check(&format!("t=+1700000000,v1={good}"), SignatureError::Malformed);
        check(&format!("t=17e8,v1={good}"), SignatureError::Malformed);
        check(&format!("t=99999999999999999999999,v1={good}"), SignatureError::Malformed);
        check(&format!("t={NOW},t={NOW},v1={good}"), SignatureError::Malformed);
        check(&format!("t={NOW};v1={good}"), SignatureError::Malformed);
        check(&format!("t={NOW}"), SignatureError::NoMatchingSignature);
        check(&format!("t={NOW},v1="), SignatureError::NoMatchingSignature);
        check(&format!("t={NOW},v1={}", &good[..63]), SignatureError::NoMatchingSignature);
        check(&format!("t={NOW},v1={good}00"), SignatureError::NoMatchingSignature);
        check(&format!("t={NOW},v1={}", "zz".repeat(32)), SignatureError::NoMatchingSignature);
        check(&format!("t={NOW},v1={good},{}", "x".repeat(MAX_HEADER_LEN)), SignatureError::Malformed);
    }

    #[test]
    fn uppercase_hex_and_spaces_after_commas_are_tolerated() {
        let good = v1_of(&sign(BODY, SECRET, NOW)).to_ascii_uppercase();
        let header = format!("t={NOW}, v1={good}");
        assert_eq!(verify_signature(BODY, &header, &secrets(&[SECRET]), NOW, 300), Ok(NOW));
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..32).map(|i| i * 7 + 3).collect();
        assert_eq!(hex_decode_32(&hex_encode(&bytes)).unwrap().to_vec(), bytes);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_headers(header in ".{0,300}", body in proptest::collection::vec(0u8.., 0..64),
                                             now in proptest::num::i64::ANY, tol in proptest::num::i64::ANY) {
            let _ = verify_signature(&body, &header, &secrets(&[SECRET, ""]), now, tol);
        }

        #[test]
        fn never_panics_on_header_shaped_input(
            items in proptest::collection::vec(("[tv0-9 ]{0,3}", "[0-9a-fA-F+\\- ]{0,70}"), 0..8),
            now in proptest::num::i64::ANY,
        ) {
            let header: Vec<String> = items.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = verify_signature(BODY, &header.join(","), &secrets(&[SECRET]), now, 300);
        }

        #[test]
        fn signed_payloads_verify_and_any_flipped_bit_does_not(
            body in proptest::collection::vec(0u8.., 1..256), t in 0i64..4_000_000_000, bit in 0usize..2048,
        ) {
            let header = sign(&body, SECRET, t);
            proptest::prop_assert_eq!(verify_signature(&body, &header, &secrets(&[SECRET]), t, 300), Ok(t));
            let mut flipped = body.clone();
            let bit = bit % (flipped.len() * 8);
            flipped[bit / 8] ^= 1 << (bit % 8);
            proptest::prop_assert_eq!(
                verify_signature(&flipped, &header, &secrets(&[SECRET]), t, 300),
                Err(SignatureError::NoMatchingSignature)
            );
        }
    }
}
