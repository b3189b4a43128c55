//! ClickHouse's `RowBinary` format, the few types the schema uses: inserts are encoded with [`RowWriter`]
//! (no text escaping, blobs as they are) and `SELECT ... FORMAT RowBinary` answers are read with
//! [`RowReader`]. Integers are little endian; strings and arrays carry a LEB128 length; `Nullable(T)` is a
//! flag byte (1 = NULL) and then T when not NULL.

use sessiontrace_store::StoreError;

/// Appends values of one or more rows, column by column, in table order.
#[derive(Default)]
pub(crate) struct RowWriter {
    pub(crate) bytes: Vec<u8>,
}

impl RowWriter {
    fn varint(&mut self, mut value: u64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.bytes.push(byte);
                return;
            }
            self.bytes.push(byte | 0x80);
        }
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }
    /// `Date`: days since 1970-01-01.
    pub(crate) fn date(&mut self, days: u16) {
        self.bytes.extend_from_slice(&days.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub(crate) fn i32(&mut self, value: i32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub(crate) fn string(&mut self, value: &[u8]) {
        self.varint(value.len() as u64);
        self.bytes.extend_from_slice(value);
    }
    pub(crate) fn fixed(&mut self, value: &[u8]) {
        self.bytes.extend_from_slice(value);
    }
    pub(crate) fn strings(&mut self, values: &[String]) {
        self.varint(values.len() as u64);
        for value in values {
            self.string(value.as_bytes());
        }
    }
    pub(crate) fn u32s(&mut self, values: &[u32]) {
        self.varint(values.len() as u64);
        for value in values {
            self.u32(*value);
        }
    }
    pub(crate) fn nullable<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            None => self.u8(1),
            Some(value) => {
                self.u8(0);
                write(self, value);
            }
        }
    }
}

/// Reads values of an answer in column order; every read checks the length first.
pub(crate) struct RowReader<'a> {
    bytes: &'a [u8],
}

fn truncated() -> StoreError {
    StoreError::Internal("clickhouse answer is truncated (RowBinary)".into())
}

impl<'a> RowReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        RowReader { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < n {
            return Err(truncated());
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(StoreError::Internal("clickhouse answer has a bad length (RowBinary)".into()))
    }

    pub(crate) fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| truncated())?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| truncated())?))
    }
    pub(crate) fn i32(&mut self) -> Result<i32, StoreError> {
        Ok(i32::from_le_bytes(self.take(4)?.try_into().map_err(|_| truncated())?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().map_err(|_| truncated())?))
    }
    pub(crate) fn f64(&mut self) -> Result<f64, StoreError> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().map_err(|_| truncated())?))
    }
    pub(crate) fn bytes(&mut self) -> Result<Vec<u8>, StoreError> {
        let length = self.varint()? as usize;
        Ok(self.take(length)?.to_vec())
    }
    pub(crate) fn string(&mut self) -> Result<String, StoreError> {
        let length = self.varint()? as usize;
        Ok(String::from_utf8_lossy(self.take(length)?).into_owned())
    }
    pub(crate) fn fixed<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        self.take(N)?.try_into().map_err(|_| truncated())
    }
    pub(crate) fn strings(&mut self) -> Result<Vec<String>, StoreError> {
        let count = self.varint()? as usize;
        (0..count).map(|_| self.string()).collect()
    }
    pub(crate) fn nullable<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        if self.u8()? == 1 { Ok(None) } else { read(self).map(Some) }
    }
}

/// A ClickHouse string literal: quoted, with backslashes, quotes and control bytes escaped.
pub(crate) fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for character in text.chars() {
        match character {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("\\'"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\0' => quoted.push_str("\\0"),
            other => quoted.push(other),
        }
    }
    quoted.push('\'');
    quoted
}

/// A `FixedString` literal from bytes: `unhex('...')`, which needs no escaping at all.
pub(crate) fn unhex(bytes: &[u8]) -> String {
    format!("unhex('{}')", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_written() {
        let mut writer = RowWriter::default();
        writer.string(&[7u8; 300]);
        writer.nullable(Some(-5i64), |w, v| w.i64(v));
        writer.nullable(None::<i64>, |w, v| w.i64(v));
        writer.strings(&["a".into(), "bé".into()]);
        writer.u32(42);
        let mut reader = RowReader::new(&writer.bytes);
        assert_eq!(reader.bytes().unwrap(), vec![7u8; 300]);
        assert_eq!(reader.nullable(|r| r.i64()).unwrap(), Some(-5));
        assert_eq!(reader.nullable(|r| r.i64()).unwrap(), None);
        assert_eq!(reader.strings().unwrap(), vec!["a".to_string(), "bé".to_string()]);
        assert_eq!(reader.u32().unwrap(), 42);
        assert!(reader.is_empty());
        assert!(reader.u8().is_err(), "reading past the end is an error, not a panic");
    }

    #[test]
    fn literals_are_escaped() {
        assert_eq!(quote(r"it's a \ test"), r"'it\'s a \\ test'");
        assert_eq!(quote("a\nb"), r"'a\nb'");
        assert_eq!(unhex(&[0xde, 0xbd]), "unhex('debd')");
    }
}
