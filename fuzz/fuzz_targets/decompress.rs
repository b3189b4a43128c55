//! Request bodies through `ingest::decode::decompress` (what both OTLP/HTTP receivers and the replay
//! endpoint call) in every `Content-Encoding` it names: never a panic, never more than the limit out (a
//! bomb is refused with `TooLarge`, not inflated), identity returned untouched. The first byte picks the
//! encoding; the limit is small so a bomb costs a fuzz run little, the code path is the one of 16 MiB.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiontrace_ingest::IngestError;
use sessiontrace_ingest::decode::decompress;

const LIMIT: usize = 64 * 1024;
const ENCODINGS: [Option<&str>; 8] =
    [None, Some("gzip"), Some("deflate"), Some("zstd"), Some("x-gzip"), Some(" ZSTD "), Some("identity"), Some("br")];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else { return };
    let encoding = ENCODINGS[usize::from(mode) % ENCODINGS.len()];
    match decompress(body.to_vec(), encoding, LIMIT) {
        Ok(out) => {
            assert!(out.len() <= LIMIT, "{} bytes out of {encoding:?}, over the limit", out.len());
            if matches!(encoding, None | Some("identity")) {
                assert_eq!(out, body);
            }
        }
        Err(IngestError::TooLarge { limit }) => assert_eq!(limit, LIMIT),
        Err(IngestError::InvalidRequest(_)) => assert!(encoding.is_some()),
        Err(other) => panic!("unexpected error {other:?}"),
    }
});
