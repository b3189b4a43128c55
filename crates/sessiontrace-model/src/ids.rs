//! Trace and span ids, and the session encoding inside a trace id:
//! `<prefix, 6 hex><short_id, 8 hex><random, 18 hex>`, with prefix `debdeb` for manual and backend
//! sessions and `cdbcdb` for continuous ones. A trace is a session trace by its id alone, so any
//! component can tell without shared state.

use std::fmt;

use rand::Rng;

/// Prefix bytes of a manual or backend session's trace ids (`debdeb`).
pub const SESSION_PREFIX: [u8; 3] = [0xde, 0xbd, 0xeb];
/// Prefix bytes of a continuous session's trace ids (`cdbcdb`).
pub const CONTINUOUS_PREFIX: [u8; 3] = [0xcd, 0xbc, 0xdb];

/// Which kind of session a trace id's prefix names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionTraceKind {
    /// `debdeb`: a manual or backend session.
    Recorded,
    /// `cdbcdb`: a continuous session.
    Continuous,
}

impl SessionTraceKind {
    /// The three prefix bytes of this kind.
    pub fn prefix(self) -> [u8; 3] {
        match self {
            SessionTraceKind::Recorded => SESSION_PREFIX,
            SessionTraceKind::Continuous => CONTINUOUS_PREFIX,
        }
    }

    /// The prefix as 6 lowercase hex characters.
    pub fn prefix_hex(self) -> &'static str {
        match self {
            SessionTraceKind::Recorded => "debdeb",
            SessionTraceKind::Continuous => "cdbcdb",
        }
    }
}

/// Why an id could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must be {expected} bytes, got {got}")]
    WrongLength { what: &'static str, expected: usize, got: usize },
    #[error("{what} must not be all zeros")]
    AllZero { what: &'static str },
    #[error("{what} must be {expected} lowercase hex characters")]
    NotHex { what: &'static str, expected: usize },
}

/// A W3C trace id: 16 bytes, never all zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

/// A W3C span id: 8 bytes, never all zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

fn parse_hex<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N], IdError> {
    let is_lower_hex = text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if text.len() != N * 2 || !is_lower_hex {
        return Err(IdError::NotHex { what, expected: N * 2 });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| IdError::NotHex { what, expected: N * 2 })?;
    if out == [0u8; N] {
        return Err(IdError::AllZero { what });
    }
    Ok(out)
}

fn from_bytes<const N: usize>(bytes: &[u8], what: &'static str) -> Result<[u8; N], IdError> {
    let array: [u8; N] = bytes.try_into().map_err(|_| IdError::WrongLength { what, expected: N, got: bytes.len() })?;
    if array == [0u8; N] {
        return Err(IdError::AllZero { what });
    }
    Ok(array)
}

impl TraceId {
    /// Reads 32 lowercase hex characters.
    pub fn from_hex(text: &str) -> Result<Self, IdError> {
        parse_hex(text, "trace id").map(TraceId)
    }

    /// Reads the 16 raw bytes of an OTLP `trace_id` field.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
        from_bytes(bytes, "trace id").map(TraceId)
    }

    /// A random trace id that carries no session.
    pub fn random() -> Self {
        let mut rng = rand::rng();
        loop {
            let bytes: [u8; 16] = rng.random();
            if bytes != [0; 16] && session_of_trace_id(&bytes).is_none() {
                return TraceId(bytes);
            }
        }
    }

    /// A random trace id of the session whose short id is `short_id`.
    pub fn for_session(kind: SessionTraceKind, short_id: ShortId) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..3].copy_from_slice(&kind.prefix());
        bytes[3..7].copy_from_slice(&short_id.0);
        // 18 hex characters = 9 random bytes.
        let random: [u8; 9] = rand::rng().random();
        bytes[7..].copy_from_slice(&random);
        TraceId(bytes)
    }

    /// The session this trace id names, if it carries a session prefix.
    pub fn session(&self) -> Option<(SessionTraceKind, ShortId)> {
        session_of_trace_id(&self.0)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl SpanId {
    /// Reads 16 lowercase hex characters.
    pub fn from_hex(text: &str) -> Result<Self, IdError> {
        parse_hex(text, "span id").map(SpanId)
    }

    /// Reads the 8 raw bytes of an OTLP `span_id` field.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
        from_bytes(bytes, "span id").map(SpanId)
    }

    /// A random, non-zero span id.
    pub fn random() -> Self {
        let mut rng = rand::rng();
        loop {
            let bytes: [u8; 8] = rng.random();
            if bytes != [0; 8] {
                return SpanId(bytes);
            }
        }
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}
impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// A session's short id: 4 bytes, shown as 8 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortId(pub [u8; 4]);

impl ShortId {
    /// A random short id.
    pub fn random() -> Self {
        ShortId(rand::rng().random())
    }

    /// Reads 8 lowercase hex characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        let is_lower_hex = text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if text.len() != 8 || !is_lower_hex {
            return None;
        }
        let mut out = [0u8; 4];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(ShortId(out))
    }

    /// 8 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShortId({self})")
    }
}

/// The session named by the first 7 bytes of a raw trace id, if it has a session prefix.
pub fn session_of_trace_id(trace_id: &[u8]) -> Option<(SessionTraceKind, ShortId)> {
    if trace_id.len() != 16 {
        return None;
    }
    let kind = if trace_id[..3] == SESSION_PREFIX {
        SessionTraceKind::Recorded
    } else if trace_id[..3] == CONTINUOUS_PREFIX {
        SessionTraceKind::Continuous
    } else {
        return None;
    };
    let short: [u8; 4] = trace_id[3..7].try_into().ok()?;
    Some((kind, ShortId(short)))
}

/// A W3C `traceparent` value with the sampled flag set.
pub fn sampled_traceparent(trace_id: TraceId, span_id: SpanId) -> String {
    format!("00-{trace_id}-{span_id}-01")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn session_trace_id_has_prefix_and_short_id() {
        let short = ShortId::from_hex("1a2b3c4d").unwrap();
        let id = TraceId::for_session(SessionTraceKind::Recorded, short);
        assert!(id.to_hex().starts_with("debdeb1a2b3c4d"));
        assert_eq!(id.session(), Some((SessionTraceKind::Recorded, short)));
        let continuous = TraceId::for_session(SessionTraceKind::Continuous, short);
        assert!(continuous.to_hex().starts_with("cdbcdb1a2b3c4d"));
    }

    #[test]
    fn random_trace_ids_carry_no_session() {
        for _ in 0..1000 {
            assert_eq!(TraceId::random().session(), None);
        }
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(TraceId::from_bytes(&[0; 16]), Err(IdError::AllZero { what: "trace id" }));
        assert!(matches!(TraceId::from_bytes(&[1; 3]), Err(IdError::WrongLength { got: 3, .. })));
        assert!(TraceId::from_hex("DEBDEB00000000000000000000000001").is_err());
        assert!(TraceId::from_hex("00000000000000000000000000000000").is_err());
        assert!(SpanId::from_hex("00f067aa0ba902b7").is_ok());
        assert!(SpanId::from_hex("00f067aa0ba902b").is_err());
    }

    proptest! {
        #[test]
        fn session_encoding_round_trips(short in any::<[u8; 4]>(), continuous in any::<bool>()) {
            let kind = if continuous { SessionTraceKind::Continuous } else { SessionTraceKind::Recorded };
            let id = TraceId::for_session(kind, ShortId(short));
            prop_assert_eq!(id.session(), Some((kind, ShortId(short))));
            prop_assert_eq!(TraceId::from_hex(&id.to_hex()).unwrap(), id);
            prop_assert!(id.to_hex().starts_with(kind.prefix_hex()));
        }

        #[test]
        fn hex_round_trips(bytes in any::<[u8; 16]>()) {
            prop_assume!(bytes != [0; 16]);
            let id = TraceId(bytes);
            prop_assert_eq!(TraceId::from_hex(&id.to_hex()).unwrap(), id);
        }
    }
}
