//! WebTransport over HTTP/3 (draft-ietf-webtrans-http3), as much of it as
//! one session per connection carrying the same application as a native
//! connection needs: SETTINGS on an HTTP/3 control stream, the extended
//! CONNECT on the first bidirectional stream, one WebTransport
//! bidirectional stream as the control stream, and HTTP datagrams prefixed
//! with the session's quarter stream id. No IO here: the driver feeds
//! stream bytes in and writes what these functions return.
//!
//! QPACK runs without a dynamic table (we advertise none), so the peer's
//! encoder and decoder streams carry nothing we need and are read and
//! dropped, never stopped (closing a critical stream is a connection error).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use web_transport_proto::{Capsule, ConnectRequest, ConnectResponse, Frame, Settings, StreamUni, VarInt};

/// The ALPN of HTTP/3, which browsers offer for WebTransport.
pub const ALPN: &[u8] = b"h3";

/// The signal value opening a WebTransport bidirectional stream.
const BIDI_SIGNAL: u64 = 0x41;
/// Most bytes of a CONNECT request, response or capsule buffered before the
/// peer is cut off (a request with every header browsers send is ~1 KiB).
pub(crate) const MAX_CONNECT_BYTES: usize = 16 * 1024;

/// HTTP/3 error codes (RFC 9114 §8.1) used at the QUIC layer.
pub mod h3_code {
    pub const NO_ERROR: u32 = 0x100;
    pub const GENERAL_PROTOCOL_ERROR: u32 = 0x101;
    pub const STREAM_CREATION_ERROR: u32 = 0x103;
    pub const EXCESSIVE_LOAD: u32 = 0x107;
    pub const REQUEST_REJECTED: u32 = 0x10b;
    pub const MESSAGE_ERROR: u32 = 0x10e;
}

/// Why a WebTransport exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WtError {
    #[error("malformed WebTransport stream header")]
    BadStreamHeader,
    #[error("the stream belongs to another session ({0})")]
    OtherSession(u64),
    #[error("malformed CONNECT request: {0}")]
    BadRequest(String),
    #[error("the server refused the WebTransport session: {0}")]
    Refused(String),
    #[error("the CONNECT exchange is larger than {MAX_CONNECT_BYTES} bytes")]
    TooLarge,
}

/// What a parse of buffered bytes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// More bytes are needed.
    Incomplete,
    /// A value and how many bytes it took.
    Done(T, usize),
}

fn varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut b = buf;
    let v = VarInt::decode(&mut b).ok()?;
    Some((v.into_inner(), buf.len() - b.len()))
}

fn put_varint(out: &mut BytesMut, v: u64) {
    // Session ids and codes here are stream ids: below 2^62.
    VarInt::from_u64(v).expect("below 2^62").encode(out);
}

/// The header that opens a WebTransport bidirectional stream of `session`.
pub fn stream_header(session: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(10);
    put_varint(&mut out, BIDI_SIGNAL);
    put_varint(&mut out, session);
    out.freeze()
}

/// Parses a bidirectional stream's header: the WebTransport signal and the
/// session it belongs to.
pub fn parse_stream_header(buf: &[u8]) -> Result<Parsed<u64>, WtError> {
    let Some((signal, n)) = varint(buf) else { return Ok(Parsed::Incomplete) };
    if signal != BIDI_SIGNAL {
        return Err(WtError::BadStreamHeader);
    }
    let Some((session, m)) = varint(&buf[n..]) else { return Ok(Parsed::Incomplete) };
    Ok(Parsed::Done(session, n + m))
}

/// Parses the stream type that starts a unidirectional stream.
pub fn parse_uni_type(buf: &[u8]) -> Parsed<u64> {
    match varint(buf) {
        Some((t, n)) => Parsed::Done(t, n),
        None => Parsed::Incomplete,
    }
}

/// Whether a peer's unidirectional stream of this type is read (and its
/// bytes dropped) rather than stopped.
pub fn keep_uni(stream_type: u64) -> bool {
    [StreamUni::CONTROL, StreamUni::QPACK_ENCODER, StreamUni::QPACK_DECODER]
        .iter()
        .any(|t| t.0.into_inner() == stream_type)
}

/// The prefix of every HTTP datagram of `session`: its quarter stream id.
pub fn datagram_prefix(session: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(8);
    put_varint(&mut out, session / 4);
    out.freeze()
}

/// The payload of an HTTP datagram if it belongs to `session`.
pub fn strip_datagram(datagram: &Bytes, session: u64) -> Option<Bytes> {
    let (quarter, n) = varint(datagram)?;
    (quarter.checked_mul(4) == Some(session)).then(|| datagram.slice(n..))
}

/// Prepends `prefix` to a datagram.
pub fn prefix_datagram(prefix: &[u8], payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(prefix.len() + payload.len());
    out.put_slice(prefix);
    out.put_slice(payload);
    out.freeze()
}

/// Our HTTP/3 control stream's opening: its type and SETTINGS enabling
/// extended CONNECT, HTTP datagrams and one WebTransport session.
pub fn control_stream_opening() -> Bytes {
    let mut settings = Settings::default();
    settings.enable_webtransport(1);
    let mut out = BytesMut::new();
    settings.encode(&mut out);
    out.freeze()
}

/// The extended CONNECT a client sends to open a session at `url`.
pub fn connect_request(url: &str) -> Result<Bytes, WtError> {
    let url = url::Url::parse(url).map_err(|e| WtError::BadRequest(e.to_string()))?;
    let mut out = BytesMut::new();
    ConnectRequest::new(url).encode(&mut out).map_err(|e| WtError::BadRequest(e.to_string()))?;
    Ok(out.freeze())
}

/// Parses a CONNECT request; returns its path.
pub fn parse_connect_request(buf: &[u8]) -> Result<Parsed<String>, WtError> {
    let mut b = buf;
    match ConnectRequest::decode(&mut b) {
        Ok(req) => Ok(Parsed::Done(req.url.path().to_string(), buf.len() - b.len())),
        Err(web_transport_proto::ConnectError::UnexpectedEnd) if buf.len() < MAX_CONNECT_BYTES => {
            Ok(Parsed::Incomplete)
        }
        Err(web_transport_proto::ConnectError::UnexpectedEnd) => Err(WtError::TooLarge),
        Err(e) => Err(WtError::BadRequest(e.to_string())),
    }
}

/// The response to a CONNECT request.
pub fn connect_response(status: u16) -> Bytes {
    let status = web_transport_proto::http::StatusCode::from_u16(status)
        .unwrap_or(web_transport_proto::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = BytesMut::new();
    // Encoding a status and fixed headers cannot fail.
    let _ = ConnectResponse::new(status).encode(&mut out);
    out.freeze()
}

/// Parses the server's answer to CONNECT: Ok once a 2xx arrived.
pub fn parse_connect_response(buf: &[u8]) -> Result<Parsed<()>, WtError> {
    let mut b = buf;
    match ConnectResponse::decode(&mut b) {
        Ok(_) => Ok(Parsed::Done((), buf.len() - b.len())),
        Err(web_transport_proto::ConnectError::UnexpectedEnd) if buf.len() < MAX_CONNECT_BYTES => {
            Ok(Parsed::Incomplete)
        }
        Err(web_transport_proto::ConnectError::UnexpectedEnd) => Err(WtError::TooLarge),
        Err(web_transport_proto::ConnectError::WrongStatus(Some(s))) => Err(WtError::Refused(s.to_string())),
        Err(e) => Err(WtError::Refused(e.to_string())),
    }
}

/// What the rest of a CONNECT stream said, after the request and response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionMessage {
    /// The peer closed the session with an application code and reason.
    Close { code: u32, reason: String },
}

/// Reads the HTTP/3 frames following the request or response on a CONNECT
/// stream: DATA frames carry capsules, of which only
/// CLOSE_WEBTRANSPORT_SESSION matters; anything else is skipped. Consumes
/// whole frames from `buf`, leaving a partial one.
pub fn read_session_frames(buf: &mut BytesMut, capsules: &mut BytesMut) -> Result<Option<SessionMessage>, WtError> {
    loop {
        let mut b = &buf[..];
        let Ok(typ) = Frame::decode(&mut b) else { break };
        let Ok(len) = VarInt::decode(&mut b) else { break };
        let len = usize::try_from(len.into_inner()).map_err(|_| WtError::TooLarge)?;
        if b.len() < len {
            if len > MAX_CONNECT_BYTES {
                return Err(WtError::TooLarge);
            }
            break;
        }
        let head = buf.len() - b.len();
        if typ == Frame::DATA {
            if capsules.len() + len > MAX_CONNECT_BYTES {
                return Err(WtError::TooLarge);
            }
            capsules.extend_from_slice(&b[..len]);
        }
        buf.advance(head + len);
    }
    loop {
        let mut c = &capsules[..];
        match Capsule::decode(&mut c) {
            Ok(capsule) => {
                let used = capsules.len() - c.len();
                capsules.advance(used);
                if let Capsule::CloseWebTransportSession { code, reason } = capsule {
                    return Ok(Some(SessionMessage::Close { code, reason }));
                }
            }
            Err(web_transport_proto::CapsuleError::UnexpectedEnd)
            | Err(web_transport_proto::CapsuleError::VarInt(_)) => return Ok(None),
            Err(_) => return Err(WtError::BadStreamHeader),
        }
    }
}

/// A CLOSE_WEBTRANSPORT_SESSION capsule in a DATA frame.
pub fn close_session_frame(code: u32, reason: &str) -> Bytes {
    let mut capsule = BytesMut::new();
    // The draft caps the reason at 1024 bytes; cut on a char boundary.
    let mut end = reason.len().min(1024);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Capsule::CloseWebTransportSession { code, reason: reason[..end].to_string() }.encode(&mut capsule);
    let mut out = BytesMut::new();
    Frame::DATA.encode(&mut out);
    put_varint(&mut out, capsule.len() as u64);
    out.put_slice(&capsule);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_stream_header_round_trips_and_waits_for_its_bytes() {
        let h = stream_header(0);
        assert_eq!(&h[..], &[0x40, 0x41, 0x00]);
        assert_eq!(parse_stream_header(&h), Ok(Parsed::Done(0, 3)));
        assert_eq!(parse_stream_header(&h[..2]), Ok(Parsed::Incomplete));
        assert_eq!(parse_stream_header(&[]), Ok(Parsed::Incomplete));
        assert_eq!(parse_stream_header(&[0x01, 0x00]), Err(WtError::BadStreamHeader));
        let far = stream_header(1 << 40);
        assert_eq!(parse_stream_header(&far), Ok(Parsed::Done(1 << 40, far.len())));
    }

    #[test]
    fn datagrams_carry_the_quarter_stream_id() {
        let p = datagram_prefix(0);
        let d = prefix_datagram(&p, b"snap");
        assert_eq!(&d[..], b"\x00snap");
        assert_eq!(strip_datagram(&d, 0).as_deref(), Some(&b"snap"[..]));
        assert_eq!(strip_datagram(&d, 4), None, "another session's datagram");
        let p8 = datagram_prefix(8);
        assert_eq!(&p8[..], &[0x02]);
        assert_eq!(strip_datagram(&Bytes::new(), 0), None);
    }

    #[test]
    fn connect_request_and_response_round_trip() {
        let req = connect_request("https://localhost:4433/trespasser").unwrap();
        assert_eq!(parse_connect_request(&req), Ok(Parsed::Done("/trespasser".to_string(), req.len())));
        for cut in 0..req.len() {
            assert_eq!(parse_connect_request(&req[..cut]), Ok(Parsed::Incomplete), "cut at {cut}");
        }
        let ok = connect_response(200);
        assert_eq!(parse_connect_response(&ok), Ok(Parsed::Done((), ok.len())));
        assert_eq!(parse_connect_response(&ok[..ok.len() - 1]), Ok(Parsed::Incomplete));
        let nf = connect_response(404);
        assert!(matches!(parse_connect_response(&nf), Err(WtError::Refused(s)) if s.contains("404")));
    }

    #[test]
    fn a_close_capsule_is_found_after_other_frames() {
        let mut buf = BytesMut::new();
        // An unknown frame type (reserved 0x21) with 3 bytes, then the close.
        buf.put_slice(&[0x21, 0x03, 1, 2, 3]);
        buf.put_slice(&close_session_frame(7, "bye"));
        let mut caps = BytesMut::new();
        for cut in 0..buf.len() {
            let mut part = BytesMut::from(&buf[..cut]);
            let mut c = BytesMut::new();
            assert_eq!(read_session_frames(&mut part, &mut c), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            read_session_frames(&mut buf, &mut caps),
            Ok(Some(SessionMessage::Close { code: 7, reason: "bye".to_string() }))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn settings_enable_webtransport() {
        let mut b = &control_stream_opening()[..];
        let s = Settings::decode(&mut b).unwrap();
        assert_eq!(s.supports_webtransport(), 1);
        assert!(keep_uni(0) && keep_uni(2) && keep_uni(3) && !keep_uni(0x54) && !keep_uni(1));
    }

    proptest! {
        #[test]
        fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_stream_header(&bytes);
            let _ = parse_uni_type(&bytes);
            let _ = strip_datagram(&Bytes::from(bytes.clone()), 0);
            let _ = parse_connect_request(&bytes);
            let _ = parse_connect_response(&bytes);
            let mut buf = BytesMut::from(&bytes[..]);
            let mut caps = BytesMut::new();
            let _ = read_session_frames(&mut buf, &mut caps);
        }

        #[test]
        fn stream_headers_round_trip(session in 0u64..(1 << 62)) {
            let h = stream_header(session);
            prop_assert_eq!(parse_stream_header(&h), Ok(Parsed::Done(session, h.len())));
        }

        #[test]
        fn datagram_prefixes_round_trip(quarter in 0u64..(1 << 60), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let session = quarter * 4;
            let d = prefix_datagram(&datagram_prefix(session), &payload);
            let stripped = strip_datagram(&d, session);
            prop_assert_eq!(stripped.as_deref(), Some(&payload[..]));
        }
    }
}
