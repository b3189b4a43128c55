//! The few protobuf wire-format reads and writes the columns need: varints, and fields located by byte
//! offsets in the whole request (no decoding of values).

/// One field: where it lies in the whole buffer and, for length-delimited ones, where its payload lies.
pub(crate) struct Field {
    pub number: u64,
    pub start: usize,
    pub end: usize,
    /// Bytes of tag (and length, for length-delimited fields) before the value.
    pub header: usize,
    pub payload: Option<(usize, usize)>,
}

/// Reads `buf[position..end]`, reporting offsets into all of `buf`. Holds `buf` cut at `end`, so each
/// read is one bounds check.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, position: 0 }
    }

    /// Reads `buf[from..to]`; panics if `to` is past the end of `buf`.
    pub fn at(buf: &'a [u8], (from, to): (usize, usize)) -> Self {
        Reader { buf: &buf[..to], position: from }
    }

    pub fn is_empty(&self) -> bool {
        self.position >= self.buf.len()
    }

    #[inline]
    pub fn varint(&mut self) -> Option<u64> {
        // One byte is the common case (tags, lengths of short fields).
        let first = *self.buf.get(self.position)?;
        if first < 0x80 {
            self.position += 1;
            return Some(u64::from(first));
        }
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.position)?;
            self.position += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    #[inline]
    pub fn byte(&mut self) -> Option<u8> {
        let byte = *self.buf.get(self.position)?;
        self.position += 1;
        Some(byte)
    }

    #[inline]
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.buf.get(self.position..self.position.checked_add(n)?)?;
        self.position += n;
        Some(bytes)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let bytes = self.buf.get(self.position..).unwrap_or_default();
        self.position = self.buf.len();
        bytes
    }

    /// The next field; `Some(None)` at the end, `None` if the bytes are not well-formed.
    #[inline]
    pub fn field(&mut self) -> Option<Option<Field>> {
        if self.is_empty() {
            return Some(None);
        }
        let start = self.position;
        let tag = self.varint()?;
        let tag_end = self.position;
        let number = tag >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return None;
        }
        let mut payload = None;
        match tag & 7 {
            0 => {
                self.varint()?;
            }
            1 => {
                self.take(8)?;
            }
            5 => {
                self.take(4)?;
            }
            2 => {
                let length = usize::try_from(self.varint()?).ok()?;
                let from = self.position;
                self.take(length)?;
                payload = Some((from, self.position));
            }
            _ => return None,
        }
        let header = payload.map_or(tag_end, |(from, _)| from) - start;
        Some(Some(Field { number, start, end: self.position, header, payload }))
    }

    /// The next whole field's bytes.
    pub fn raw_field(&mut self) -> Option<&'a [u8]> {
        let field = self.field()??;
        Some(&self.buf[field.start..field.end])
    }
}

/// The shortest varint of `value`: its bytes and how many of them are used.
pub(crate) fn varint_bytes(mut value: u64) -> ([u8; 10], usize) {
    let mut bytes = [0u8; 10];
    let mut size = 0;
    while value >= 0x80 {
        bytes[size] = (value as u8) | 0x80;
        value >>= 7;
        size += 1;
    }
    bytes[size] = value as u8;
    (bytes, size + 1)
}

#[inline(always)]
pub(crate) fn put_varint(out: &mut Vec<u8>, value: u64) {
    // One byte is the common case (token numbers, parent references, small deltas).
    if value < 0x80 {
        out.push(value as u8);
        return;
    }
    let (bytes, size) = varint_bytes(value);
    out.extend_from_slice(&bytes[..size]);
}

pub(crate) fn zigzag(value: u64) -> u64 {
    let signed = value as i64;
    ((signed << 1) ^ (signed >> 63)) as u64
}

pub(crate) fn unzigzag(value: u64) -> u64 {
    (value >> 1) ^ (value & 1).wrapping_neg()
}
