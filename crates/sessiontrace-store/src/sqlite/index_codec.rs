//! A compact binary form of a block's trace index entries, stored with the block itself so the trace index
//! tables can be brought up to date from the blocks after a crash (see `insert.rs`). Compressed with zstd
//! when that pays (ten traces of a 200-span block: 776 bytes to ~355); rows from before are not, and
//! [`decode`] reads both.

use sessiontrace_model::records::TraceIndexEntry;

use crate::StoreError;

fn put_str(out: &mut Vec<u8>, text: &str) {
    let mut end = text.len().min(u16::MAX as usize);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&text.as_bytes()[..end]);
}

/// Below this many bytes the entries are stored as they are: zstd's frame would eat the gain.
const COMPRESS_FROM: usize = 128;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Encodes entries (compressed when that pays).
pub(crate) fn encode(entries: &[TraceIndexEntry]) -> Result<Vec<u8>, StoreError> {
    let raw = encode_raw(entries);
    if raw.len() < COMPRESS_FROM {
        return Ok(raw);
    }
    super::compress(&raw)
}

fn encode_raw(entries: &[TraceIndexEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 96);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for entry in entries {
        out.extend_from_slice(&entry.trace_id);
        let flags = entry.session_key.is_some() as u8 | ((entry.root.is_some() as u8) << 1);
        out.push(flags);
        if let Some(key) = &entry.session_key {
            put_str(&mut out, key);
        }
        out.push(entry.services.len().min(255) as u8);
        for service in entry.services.iter().take(255) {
            put_str(&mut out, service);
        }
        out.extend_from_slice(&entry.start_unix_nano.to_le_bytes());
        out.extend_from_slice(&entry.end_unix_nano.to_le_bytes());
        out.extend_from_slice(&entry.span_count.to_le_bytes());
        out.extend_from_slice(&entry.error_count.to_le_bytes());
        if let Some((name, service)) = &entry.root {
            put_str(&mut out, name);
            put_str(&mut out, service);
        }
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len;
        Some(slice)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn string(&mut self) -> Option<String> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

/// Decodes what [`encode`] wrote; `None` for bytes it did not write. Uncompressed data starts with a
/// little-endian entry count, which never equals zstd's magic number.
pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<TraceIndexEntry>> {
    if bytes.starts_with(&ZSTD_MAGIC) {
        return decode_raw(&super::decompress(bytes).ok()?);
    }
    decode_raw(bytes)
}

fn decode_raw(bytes: &[u8]) -> Option<Vec<TraceIndexEntry>> {
    let mut reader = Reader { bytes, pos: 0 };
    let count = u32::from_le_bytes(reader.array()?) as usize;
    let mut entries = Vec::with_capacity(count.min(65_536));
    for _ in 0..count {
        let trace_id = reader.array::<16>()?;
        let flags = reader.array::<1>()?[0];
        let session_key = if flags & 1 != 0 { Some(reader.string()?) } else { None };
        let service_count = reader.array::<1>()?[0] as usize;
        let services = (0..service_count).map(|_| reader.string()).collect::<Option<Vec<_>>>()?;
        let start_unix_nano = i64::from_le_bytes(reader.array()?);
        let end_unix_nano = i64::from_le_bytes(reader.array()?);
        let span_count = u32::from_le_bytes(reader.array()?);
        let error_count = u32::from_le_bytes(reader.array()?);
        let root = if flags & 2 != 0 { Some((reader.string()?, reader.string()?)) } else { None };
        entries.push(TraceIndexEntry {
            trace_id,
            session_key,
            services,
            start_unix_nano,
            end_unix_nano,
            span_count,
            error_count,
            root,
        });
    }
    (reader.pos == bytes.len()).then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let entries = vec![
            TraceIndexEntry {
                trace_id: [1; 16],
                session_key: Some("0a0b0c0d".into()),
                services: vec!["api".into(), "db".into()],
                start_unix_nano: 5,
                end_unix_nano: 9,
                span_count: 3,
                error_count: 1,
                root: Some(("GET /é".into(), "api".into())),
            },
            TraceIndexEntry {
                trace_id: [2; 16],
                session_key: None,
                services: vec![],
                start_unix_nano: -1,
                end_unix_nano: i64::MAX,
                span_count: 0,
                error_count: 0,
                root: None,
            },
        ];
        assert_eq!(decode(&encode(&entries).unwrap()), Some(entries.clone()));
        assert_eq!(decode(&[1, 0, 0, 0, 7]), None);
        // Ten entries are compressed; rows written before compression (raw) still decode.
        let many: Vec<_> = entries.iter().cycle().take(10).cloned().collect();
        let stored = encode(&many).unwrap();
        assert!(stored.starts_with(&ZSTD_MAGIC) && stored.len() < encode_raw(&many).len());
        assert_eq!(decode(&stored), Some(many.clone()));
        assert_eq!(decode(&encode_raw(&many)), Some(many));
    }
}
