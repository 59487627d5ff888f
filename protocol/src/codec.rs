//! postcard encoding with hard size limits, and control-stream framing.
//!
//! A control frame is a big-endian `u16` length followed by that many bytes of
//! postcard. Decoders look at the length before allocating anything and refuse
//! frames above the per-direction limit, so a hostile peer can make us buffer
//! at most [`MAX_SERVER_FRAME`] bytes per connection.

use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// Largest control frame a client may send (a join ticket is the biggest).
pub const MAX_CLIENT_FRAME: usize = 4 * 1024;
/// Largest control frame the node sends (roster and scoreboard of a full lobby).
pub const MAX_SERVER_FRAME: usize = 16 * 1024;
/// Bytes of the length prefix.
pub const FRAME_HEADER: usize = 2;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("trailing bytes after message")]
    Trailing,
    #[error("message violates a field limit: {0}")]
    Invalid(&'static str),
}

/// Types that check their own field limits after decoding (lengths of
/// strings and vectors), so a decoded value is always within bounds.
pub trait Bounded {
    fn validate(&self) -> Result<(), &'static str>;
}

/// Encodes `msg`, refusing results above `max` bytes.
pub fn encode<T: Serialize>(msg: &T, max: usize) -> Result<Vec<u8>, CodecError> {
    let bytes = postcard::to_stdvec(msg).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if bytes.len() > max {
        return Err(CodecError::TooLarge { len: bytes.len(), max });
    }
    Ok(bytes)
}

/// Encodes `msg` into `buf` (cleared first), reusing its allocation.
pub fn encode_into<T: Serialize>(msg: &T, buf: &mut Vec<u8>, max: usize) -> Result<(), CodecError> {
    buf.clear();
    let taken = std::mem::take(buf);
    let out = postcard::to_extend(msg, taken).map_err(|e| CodecError::Malformed(e.to_string()))?;
    *buf = out;
    if buf.len() > max {
        let len = buf.len();
        buf.clear();
        return Err(CodecError::TooLarge { len, max });
    }
    Ok(())
}

/// Decodes one whole message of at most `max` bytes and checks its field limits.
pub fn decode<T: DeserializeOwned + Bounded>(bytes: &[u8], max: usize) -> Result<T, CodecError> {
    if bytes.len() > max {
        return Err(CodecError::TooLarge { len: bytes.len(), max });
    }
    let (msg, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::Trailing);
    }
    msg.validate().map_err(CodecError::Invalid)?;
    Ok(msg)
}

/// Encodes `msg` as one length-prefixed control frame.
pub fn encode_frame<T: Serialize>(msg: &T, max: usize) -> Result<Vec<u8>, CodecError> {
    let body = encode(msg, max.min(u16::MAX as usize))?;
    let mut out = Vec::with_capacity(FRAME_HEADER + body.len());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads the length prefix of a frame and checks it against `max` before
/// the body is read, so a hostile length never causes an allocation.
pub fn frame_len(header: [u8; FRAME_HEADER], max: usize) -> Result<usize, CodecError> {
    let len = u16::from_be_bytes(header) as usize;
    if len > max {
        return Err(CodecError::TooLarge { len, max });
    }
    if len == 0 {
        return Err(CodecError::Malformed("empty frame".into()));
    }
    Ok(len)
}

/// Splits complete frames off the front of a byte buffer (for clients that
/// read the stream in arbitrary chunks). Returns the decoded message and how
/// many bytes it used, or `Ok(None)` when more bytes are needed.
pub fn decode_frame<T: DeserializeOwned + Bounded>(buf: &[u8], max: usize) -> Result<Option<(T, usize)>, CodecError> {
    if buf.len() < FRAME_HEADER {
        return Ok(None);
    }
    let len = frame_len([buf[0], buf[1]], max)?;
    if buf.len() < FRAME_HEADER + len {
        return Ok(None);
    }
    let msg = decode(&buf[FRAME_HEADER..FRAME_HEADER + len], max)?;
    Ok(Some((msg, FRAME_HEADER + len)))
}

/// Checks a bounded string: length in bytes and no control characters.
pub(crate) fn check_text(s: &str, max_bytes: usize, what: &'static str) -> Result<(), &'static str> {
    if s.len() > max_bytes || s.chars().any(char::is_control) {
        return Err(what);
    }
    Ok(())
}

/// `deserialize_with` for vectors of at most `MAX` elements.
///
/// serde's own `Vec` impl preallocates the length a hostile prefix claims
/// (bounded only by the bytes left times the element size, up to 1 MiB), so a
/// 16 KiB frame could make the decoder allocate ~100 times its size before
/// failing. This caps the preallocation at `MAX` and stops reading at the first
/// element past it, so a decode allocates at most `MAX` elements per vector.
/// The encoding is unchanged.
pub(crate) fn bounded_vec<'de, D, T, const MAX: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T, const MAX: usize>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for Bounded<T, MAX> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a sequence of at most {MAX} elements")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let hint = seq.size_hint().unwrap_or(0);
            if hint > MAX {
                return Err(de::Error::invalid_length(hint, &self));
            }
            let mut out = Vec::with_capacity(hint);
            while let Some(item) = seq.next_element()? {
                if out.len() == MAX {
                    return Err(de::Error::invalid_length(MAX + 1, &self));
                }
                out.push(item);
            }
            Ok(out)
        }
    }

    d.deserialize_seq(Bounded::<T, MAX>(std::marker::PhantomData))
}
