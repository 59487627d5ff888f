//! The node decodes an input datagram per player 20 times a second: decoding
//! one must not touch the heap. A counting allocator (per thread, so tests
//! running beside this one do not count) checks it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use protocol::codec;
use protocol::datagram::{Buttons, ClientDatagram, InputFrame, InputPacket, MAX_INPUT_BYTES, MAX_INPUT_FRAMES};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a thread-local
// `Cell` with a const initializer, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn packet(frames: usize) -> InputPacket {
    InputPacket {
        ack_tick: 1_000,
        first_seq: 77,
        frames: (0..frames)
            .map(|i| InputFrame {
                buttons: Buttons(Buttons::UP | Buttons::FIRE),
                aim: 40_000 + i as u16,
                view_tick: 998,
            })
            .collect(),
    }
}

#[test]
fn decoding_an_input_datagram_allocates_nothing() {
    for frames in [1, 4, MAX_INPUT_FRAMES] {
        let sent = ClientDatagram::Input(packet(frames));
        let bytes = codec::encode(&sent, MAX_INPUT_BYTES).unwrap();
        let mut decoded = None;
        let n = allocations_in(|| decoded = Some(codec::decode::<ClientDatagram>(&bytes, MAX_INPUT_BYTES).unwrap()));
        assert_eq!(decoded, Some(sent), "{frames} frames round-trip");
        assert_eq!(n, 0, "decoding {frames} frames allocated {n} times");
    }
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let n = allocations_in(|| drop(std::hint::black_box(vec![InputFrame::default(); MAX_INPUT_FRAMES + 1])));
    assert_eq!(n, 1);
}
