//! The SFTP v3 request codec: a request or `BadPacket`, never a panic.
#![no_main]

use gateway::frontends::sftp::protocol::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode(data.to_vec());
});
