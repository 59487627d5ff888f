#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::codec;
use protocol::datagram::{MAX_SNAPSHOT_BYTES, ServerDatagram};

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<ServerDatagram>(data, MAX_SNAPSHOT_BYTES);
});
