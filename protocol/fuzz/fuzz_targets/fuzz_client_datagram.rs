#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::codec;
use protocol::datagram::{ClientDatagram, MAX_INPUT_BYTES};

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<ClientDatagram>(data, MAX_INPUT_BYTES);
});
