//! A span block's stored form, for every backend: `sessiontrace-spanblock` (the request split into columns,
//! then zstd) with its errors as [`StoreError`].

use crate::StoreError;

/// zstd level of a block's columns: higher levels gained 2–5% of bytes for 2× the time or more
/// (`cargo bench -p sessiontrace-spanblock`).
const BLOCK_ZSTD_LEVEL: i32 = 1;

/// The stored form of a block's request bytes.
pub fn encode_block(request: &[u8]) -> Result<Vec<u8>, StoreError> {
    sessiontrace_spanblock::encode(request, BLOCK_ZSTD_LEVEL).map_err(|e| StoreError::Internal(format!("zstd: {e}")))
}

/// The request bytes a stored block was made from (either stored form, see `sessiontrace_spanblock`).
pub fn decode_block(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    sessiontrace_spanblock::decode(bytes).map_err(|e| StoreError::Internal(e.to_string()))
}
