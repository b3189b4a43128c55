//! The stored span-block format (`sessiontrace-spanblock`). Even first byte: the rest is a request body,
//! which must come back byte for byte from `decode(encode(body))`, whatever it is (an OTLP request is
//! split into columns, anything else stored plain). Odd first byte: the rest is taken as the joined
//! columns of a damaged block (wrapped in a valid zstd frame behind the column format byte), which must
//! decode to an error or to bytes, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiontrace_spanblock::{Encoder, decode};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let block = Encoder::new(1).expect("zstd context").encode(body).expect("encode");
        assert_eq!(decode(&block).expect("decode what was encoded"), body);
    } else {
        let mut damaged = vec![0x01];
        damaged.extend(zstd::bulk::compress(body, 1).expect("zstd"));
        let _ = decode(&damaged);
    }
});
