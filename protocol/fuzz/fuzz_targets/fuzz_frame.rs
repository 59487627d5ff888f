#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::codec::{self, MAX_CLIENT_FRAME, MAX_SERVER_FRAME};
use protocol::control::{ClientControl, ServerControl};

// Both directions: the node reads client frames, clients read server frames.
fuzz_target!(|data: &[u8]| {
    let _ = codec::decode_frame::<ClientControl>(data, MAX_CLIENT_FRAME);
    let _ = codec::decode_frame::<ServerControl>(data, MAX_SERVER_FRAME);
});
