#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::codec::{self, MAX_CLIENT_FRAME};
use protocol::control::ClientControl;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode::<ClientControl>(data, MAX_CLIENT_FRAME);
});
