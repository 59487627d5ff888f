//! The driver's side of a WebTransport connection: which stream is which,
//! the CONNECT exchange, and mapping the session's WebTransport stream onto
//! the connection's control stream. The wire formats live in
//! [`crate::webtransport`]; here they meet quinn-proto's streams.

use bytes::{Bytes, BytesMut};
use quinn_proto::{ApplicationClose, ConnectionError, Dir, StreamId, VarInt};

use crate::driver::{Entry, mark_closed, open_client_stream, read_control};
use crate::webtransport::{self as wt, Parsed, SessionMessage, WtError, h3_code};

/// Most bidirectional streams a server holds while reading their header.
const MAX_PENDING_STREAMS: usize = 4;
/// Most peer unidirectional streams kept open (control, QPACK encoder and
/// decoder are all a peer needs).
const MAX_UNI_STREAMS: usize = 8;
/// Most bytes a peer may send on its unidirectional streams in a session.
const MAX_UNI_BYTES: usize = 64 * 1024;
/// How long a session we closed keeps its connection up after the peer
/// acknowledged our CLOSE_WEBTRANSPORT_SESSION, unless the peer closes the
/// connection first. Neither the acknowledgement nor the peer's answer on
/// the CONNECT stream says the page was told: Chromium hands the close to
/// the page a moment later, and a CONNECTION_CLOSE overtaking it turns the
/// page's close code and reason into "Connection lost".
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) struct WtConn {
    /// The client's session URL; None on the server.
    url: Option<String>,
    /// The server's session path (None: any).
    path: Option<String>,
    /// The CONNECT stream, whose id is the session id.
    session: Option<StreamId>,
    /// The CONNECT was answered with 2xx.
    pub(crate) open: bool,
    /// Bytes read from the CONNECT stream not consumed yet.
    connect_in: BytesMut,
    capsules: BytesMut,
    /// Server: bidirectional streams whose WebTransport header is incomplete.
    pending_bi: Vec<(StreamId, BytesMut)>,
    /// The peer's unidirectional streams: bytes until the type is known,
    /// then None (read and dropped).
    uni_in: Vec<(StreamId, Option<BytesMut>)>,
    /// Writes waiting for stream credit, and whether to finish after.
    out: Vec<(StreamId, Bytes, bool)>,
    /// The datagram prefix of the session.
    pub(crate) prefix: Bytes,
    /// We sent CLOSE_WEBTRANSPORT_SESSION: what the peer sends on the
    /// CONNECT stream from now on is dropped.
    closing: bool,
    /// Set once the peer acknowledged our close: when the connection
    /// closes unless the peer closed it first ([`CLOSE_GRACE`]).
    close_by: Option<std::time::Instant>,
    /// Bytes read (and dropped) from the peer's unidirectional streams.
    uni_bytes: usize,
}

impl WtConn {
    pub(crate) fn client(url: String) -> WtConn {
        WtConn::new(Some(url), None)
    }

    pub(crate) fn server(path: Option<String>) -> WtConn {
        WtConn::new(None, path)
    }

    fn new(url: Option<String>, path: Option<String>) -> WtConn {
        WtConn {
            url,
            path,
            session: None,
            open: false,
            connect_in: BytesMut::new(),
            capsules: BytesMut::new(),
            pending_bi: Vec::new(),
            uni_in: Vec::new(),
            out: Vec::new(),
            prefix: Bytes::new(),
            closing: false,
            close_by: None,
            uni_bytes: 0,
        }
    }

    /// The WebTransport stream header the client's control stream starts with.
    pub(crate) fn control_header(&self) -> Option<Bytes> {
        self.session.map(|s| wt::stream_header(s.into()))
    }

    /// A received datagram's payload, if it belongs to the open session.
    pub(crate) fn strip(&self, d: &Bytes) -> Option<Bytes> {
        let session = self.session.filter(|_| self.open)?;
        wt::strip_datagram(d, session.into())
    }
}

/// The handshake completed: open our HTTP/3 control stream, and (client)
/// send the CONNECT.
pub(crate) fn start(e: &mut Entry) {
    let Some(w) = e.wt.as_mut() else { return };
    if let Some(id) = e.conn.streams().open(Dir::Uni) {
        w.out.push((id, wt::control_stream_opening(), false));
    }
    if let Some(url) = w.url.clone() {
        match (wt::connect_request(&url), e.conn.streams().open(Dir::Bi)) {
            (Ok(req), Some(id)) => {
                w.session = Some(id);
                w.prefix = wt::datagram_prefix(id.into());
                w.out.push((id, req, false));
            }
            (Err(err), _) => fail(e, h3_code::REQUEST_REJECTED, &err.to_string()),
            (Ok(_), None) => fail(e, h3_code::GENERAL_PROTOCOL_ERROR, "the server allows no bidirectional stream"),
        }
    }
    flush(e);
}

/// Writes what waits for stream credit, in order per stream.
pub(crate) fn flush(e: &mut Entry) {
    let Some(w) = e.wt.as_mut() else { return };
    // A later write to a blocked stream must not overtake the earlier one.
    let mut blocked: Vec<StreamId> = Vec::new();
    w.out.retain_mut(|(id, data, finish)| {
        if blocked.contains(id) {
            return true;
        }
        let mut send = e.conn.send_stream(*id);
        while !data.is_empty() {
            match send.write(data) {
                Ok(n) => {
                    let _ = data.split_to(n);
                }
                Err(quinn_proto::WriteError::Blocked) => {
                    blocked.push(*id);
                    return true;
                }
                Err(_) => return false,
            }
        }
        if *finish {
            let _ = send.finish();
        }
        false
    });
}

/// The peer opened bidirectional streams.
pub(crate) fn accept_bi(e: &mut Entry) -> bool {
    let mut woke = false;
    while let Some(id) = e.conn.streams().accept(Dir::Bi) {
        let Some(w) = e.wt.as_mut() else { return woke };
        if w.url.is_some() {
            // Servers open no streams of their own in this application.
            let _ = e.conn.recv_stream(id).stop(VarInt::from_u32(h3_code::STREAM_CREATION_ERROR));
        } else if w.session.is_none() {
            w.session = Some(id);
            w.prefix = wt::datagram_prefix(id.into());
            woke |= read_connect(e, id);
        } else if e.control.is_none() && w.pending_bi.len() < MAX_PENDING_STREAMS {
            w.pending_bi.push((id, BytesMut::new()));
            woke |= read_pending(e, id);
        } else {
            let _ = e.conn.recv_stream(id).stop(VarInt::from_u32(h3_code::STREAM_CREATION_ERROR));
        }
    }
    woke
}

/// The peer opened unidirectional streams.
pub(crate) fn accept_uni(e: &mut Entry) {
    while let Some(id) = e.conn.streams().accept(Dir::Uni) {
        let Some(w) = e.wt.as_mut() else { return };
        if w.uni_in.len() >= MAX_UNI_STREAMS {
            let _ = e.conn.recv_stream(id).stop(VarInt::from_u32(h3_code::STREAM_CREATION_ERROR));
            continue;
        }
        w.uni_in.push((id, Some(BytesMut::new())));
        read_uni(e, id);
    }
}

/// A stream other than the control stream has bytes; returns whether the
/// application should wake.
pub(crate) fn readable(e: &mut Entry, id: StreamId) -> bool {
    let Some(w) = e.wt.as_ref() else { return false };
    if w.session == Some(id) {
        read_connect(e, id)
    } else if w.pending_bi.iter().any(|(s, _)| *s == id) {
        read_pending(e, id)
    } else if w.uni_in.iter().any(|(s, _)| *s == id) {
        read_uni(e, id);
        false
    } else {
        false
    }
}

/// Everything readable on `id` now: whether the stream ended, and how many
/// bytes came. `into` None drops the bytes.
fn read_all(e: &mut Entry, id: StreamId, mut into: Option<&mut BytesMut>, limit: usize) -> Result<(bool, usize), ()> {
    let mut recv = e.conn.recv_stream(id);
    let Ok(mut chunks) = recv.read(true) else { return Err(()) };
    let mut ended = false;
    let mut read = 0;
    loop {
        match chunks.next(usize::MAX) {
            Ok(Some(chunk)) => {
                read += chunk.bytes.len();
                let Some(into) = into.as_deref_mut() else { continue };
                if into.len() + chunk.bytes.len() > limit {
                    let _ = chunks.finalize();
                    return Err(());
                }
                into.extend_from_slice(&chunk.bytes);
            }
            Ok(None) => {
                ended = true;
                break;
            }
            Err(quinn_proto::ReadError::Blocked) => break,
            Err(quinn_proto::ReadError::Reset(_)) => {
                ended = true;
                break;
            }
        }
    }
    let _ = chunks.finalize();
    Ok((ended, read))
}

/// The session is up: the application may use it, and its datagrams now
/// carry the session prefix.
fn session_open(e: &mut Entry) {
    let max = crate::driver::max_datagram(e);
    let mut st = e.shared.lock();
    st.established = true;
    st.max_datagram = max;
}

/// The CONNECT stream: the request (server) or response (client), then
/// capsules until the session ends.
fn read_connect(e: &mut Entry, id: StreamId) -> bool {
    let mut buf = std::mem::take(&mut e.wt.as_mut().expect("wt").connect_in);
    let read = read_all(e, id, Some(&mut buf), wt::MAX_CONNECT_BYTES);
    let w = e.wt.as_mut().expect("wt");
    w.connect_in = buf;
    let ended = match read {
        Ok((ended, _)) => ended,
        Err(()) => {
            fail(e, h3_code::MESSAGE_ERROR, &WtError::TooLarge.to_string());
            return true;
        }
    };
    let mut woke = false;
    if !w.open {
        if w.url.is_some() {
            match wt::parse_connect_response(&w.connect_in) {
                Ok(Parsed::Incomplete) => {}
                Ok(Parsed::Done((), n)) => {
                    let _ = w.connect_in.split_to(n);
                    w.open = true;
                    session_open(e);
                    open_client_stream(e);
                    crate::driver::flush_control(e);
                    woke = true;
                }
                Err(err) => {
                    fail(e, h3_code::REQUEST_REJECTED, &err.to_string());
                    return true;
                }
            }
        } else {
            match wt::parse_connect_request(&w.connect_in) {
                Ok(Parsed::Incomplete) => {}
                Ok(Parsed::Done(path, n)) => {
                    let _ = w.connect_in.split_to(n);
                    if w.path.as_deref().is_none_or(|p| p == path) {
                        w.open = true;
                        w.out.push((id, wt::connect_response(200), false));
                        session_open(e);
                        woke = true;
                    } else {
                        // Answered, then left to the application's handshake
                        // timeout, like a connection that never says hello.
                        w.out.push((id, wt::connect_response(404), true));
                    }
                    flush(e);
                }
                Err(_) => {
                    w.out.push((id, wt::connect_response(400), true));
                    flush(e);
                }
            }
        }
    }
    let w = e.wt.as_mut().expect("wt");
    if w.open && w.closing {
        // The peer's answer to our close (its own capsule, the end of its
        // side) is not the signal to hang up: Chromium sends it before the
        // page has been told, and a CONNECTION_CLOSE right behind it turns
        // the page's close code into "Connection lost". The connection ends
        // when the peer closes it or when the grace runs out.
        w.connect_in.clear();
    } else if w.open {
        let mut buf = std::mem::take(&mut w.connect_in);
        let message = wt::read_session_frames(&mut buf, &mut w.capsules);
        w.connect_in = buf;
        match message {
            Ok(Some(SessionMessage::Close { code, reason })) => {
                end_session(e, code, reason.as_bytes());
                return true;
            }
            Ok(None) if ended => {
                end_session(e, 0, b"webtransport session ended");
                return true;
            }
            Ok(None) => {}
            Err(err) => {
                fail(e, h3_code::MESSAGE_ERROR, &err.to_string());
                return true;
            }
        }
    } else if ended && w.url.is_some() {
        fail(e, h3_code::REQUEST_REJECTED, "the server ended the CONNECT stream without an answer");
        return true;
    }
    woke
}

/// A bidirectional stream whose WebTransport header is not complete yet.
fn read_pending(e: &mut Entry, id: StreamId) -> bool {
    let w = e.wt.as_mut().expect("wt");
    let Some(pos) = w.pending_bi.iter().position(|(s, _)| *s == id) else { return false };
    let (_, mut buf) = w.pending_bi.swap_remove(pos);
    let ended = match read_all(e, id, Some(&mut buf), 64 * 1024) {
        Ok((ended, _)) => ended,
        Err(()) => return false,
    };
    let session = e.wt.as_ref().and_then(|w| w.session).map(u64::from);
    match wt::parse_stream_header(&buf) {
        Ok(Parsed::Incomplete) if !ended => {
            e.wt.as_mut().expect("wt").pending_bi.push((id, buf));
            false
        }
        Ok(Parsed::Done(s, n)) if Some(s) == session && e.control.is_none() => {
            let rest = buf.split_off(n).freeze();
            e.control = Some(id);
            let mut woke = false;
            {
                let mut st = e.shared.lock();
                if !rest.is_empty() {
                    st.in_control_bytes += rest.len();
                    st.in_control.push_back(rest);
                    woke = true;
                }
                if ended {
                    st.control_end = Some(crate::ConnEvent::ControlFinished);
                    woke = true;
                }
            }
            crate::driver::flush_control(e);
            woke | read_control(e)
        }
        _ => {
            let _ = e.conn.recv_stream(id).stop(VarInt::from_u32(h3_code::STREAM_CREATION_ERROR));
            false
        }
    }
}

/// The peer's unidirectional streams: the type, then bytes dropped.
fn read_uni(e: &mut Entry, id: StreamId) {
    let w = e.wt.as_mut().expect("wt");
    let Some(pos) = w.uni_in.iter().position(|(s, _)| *s == id) else { return };
    let mut head = w.uni_in[pos].1.take();
    // Until the type is known, up to a varint's worth matters.
    let (ended, read) = read_all(e, id, head.as_mut(), 64 * 1024).unwrap_or((true, 0));
    let w = e.wt.as_mut().expect("wt");
    w.uni_bytes += read;
    if w.uni_bytes > MAX_UNI_BYTES {
        // Control and QPACK streams carry a few hundred bytes in a session
        // without a dynamic table; a peer streaming more is abusing them.
        fail(e, h3_code::EXCESSIVE_LOAD, "too much data on HTTP/3 control and QPACK streams");
        return;
    }
    let Some(pos) = w.uni_in.iter().position(|(s, _)| *s == id) else { return };
    if let Some(buf) = head {
        match wt::parse_uni_type(&buf) {
            Parsed::Done(t, _) if !wt::keep_uni(t) => {
                w.uni_in.swap_remove(pos);
                let _ = e.conn.recv_stream(id).stop(VarInt::from_u32(h3_code::STREAM_CREATION_ERROR));
                return;
            }
            Parsed::Done(..) => {}
            Parsed::Incomplete => w.uni_in[pos].1 = Some(buf),
        }
    }
    if ended {
        w.uni_in.swap_remove(pos);
    }
}

/// Ends an open session as the application asked: its code and reason go
/// in a CLOSE_WEBTRANSPORT_SESSION capsule on the CONNECT stream (browsers
/// hand them to the page as `closeCode` and `reason`), and the connection
/// closes once the peer acknowledged it (see [`finished`]) or hung up.
/// Returns false when there is no open session to close this way.
pub(crate) fn close_session(e: &mut Entry, code: VarInt, reason: &[u8]) -> bool {
    let Some(w) = e.wt.as_mut() else { return false };
    let (Some(id), true) = (w.session, w.open) else { return false };
    let code = u32::try_from(code.into_inner()).unwrap_or(u32::MAX);
    w.out.push((id, wt::close_session_frame(code, &String::from_utf8_lossy(reason)), true));
    w.closing = true;
    flush(e);
    true
}

/// Our side of `id` was acknowledged in full. For the CONNECT stream of a
/// session we closed, the peer has the capsule: the connection stays up for
/// [`CLOSE_GRACE`] so the peer can hand it to the page and hang up itself.
pub(crate) fn finished(e: &mut Entry, id: StreamId, now: std::time::Instant) {
    if let Some(w) = e.wt.as_mut().filter(|w| w.closing && w.session == Some(id)) {
        w.close_by = Some(now + CLOSE_GRACE);
    }
}

/// When [`on_timeout`] has work for this connection.
pub(crate) fn deadline(e: &Entry) -> Option<std::time::Instant> {
    e.wt.as_ref().and_then(|w| w.close_by)
}

/// A closing session's grace ran out: close the connection.
pub(crate) fn on_timeout(e: &mut Entry, now: std::time::Instant) {
    let Some(w) = e.wt.as_mut() else { return };
    if w.close_by.is_some_and(|t| t <= now) {
        w.close_by = None;
        e.conn.close(now, VarInt::from_u32(h3_code::NO_ERROR), Bytes::new());
    }
}

/// The peer ended the session: close the connection, reporting the peer's
/// code and reason to the application.
fn end_session(e: &mut Entry, code: u32, reason: &[u8]) {
    let now = std::time::Instant::now();
    e.conn.close(now, VarInt::from_u32(h3_code::NO_ERROR), Bytes::new());
    mark_closed(
        e,
        ConnectionError::ApplicationClosed(ApplicationClose {
            error_code: VarInt::from_u32(code),
            reason: Bytes::copy_from_slice(reason),
        }),
    );
}

/// A protocol failure: close with an HTTP/3 code; the application sees the
/// reason.
fn fail(e: &mut Entry, code: u32, reason: &str) {
    let now = std::time::Instant::now();
    e.conn.close(now, VarInt::from_u32(code), Bytes::copy_from_slice(reason.as_bytes()));
    mark_closed(
        e,
        ConnectionError::ApplicationClosed(ApplicationClose {
            error_code: VarInt::from_u32(code),
            reason: Bytes::copy_from_slice(reason.as_bytes()),
        }),
    );
}
