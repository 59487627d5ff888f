#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::map::Map;

fuzz_target!(|text: &str| {
    let _ = Map::parse(text);
});
