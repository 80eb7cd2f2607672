//! The STOW-RS multipart/related reader fed in pieces of every size: events or a typed
//! error, never a panic, and the buffer stays bounded.
#![no_main]

use gateway::frontends::https::dicomweb::multipart::{Reader, related_params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let piece = usize::from(cut).max(1);
    let mut r = Reader::new("b0undary");
    for chunk in body.chunks(piece) {
        r.feed(chunk);
        loop {
            match r.next_event() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(r.buffered() <= (16 << 10) + piece + 64, "unbounded buffer");
    }
    let _ = r.finish();
    let _ = related_params(&String::from_utf8_lossy(body));
});
