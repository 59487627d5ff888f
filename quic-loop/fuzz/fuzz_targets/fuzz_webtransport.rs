#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use quic_loop::webtransport as wt;

// Everything a peer's bytes reach before the application: stream headers,
// unidirectional stream types, datagram prefixes, the CONNECT request and
// response, and the capsules after them.
fuzz_target!(|data: &[u8]| {
    let _ = wt::parse_stream_header(data);
    let _ = wt::parse_uni_type(data);
    let _ = wt::strip_datagram(&Bytes::copy_from_slice(data), 0);
    let _ = wt::parse_connect_request(data);
    let _ = wt::parse_connect_response(data);
    let mut buf = BytesMut::from(data);
    let mut capsules = BytesMut::new();
    let _ = wt::read_session_frames(&mut buf, &mut capsules);
});
