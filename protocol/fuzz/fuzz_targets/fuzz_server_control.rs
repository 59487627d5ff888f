#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::codec::{self, MAX_SERVER_FRAME};
use protocol::control::ServerControl;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<ServerControl>(data, MAX_SERVER_FRAME);
});
