//! `x-trace-id` (32 hex) + `x-span-id` (16 hex), for systems that read or write plain id headers
//! (shared/DESIGN.md section 3). There is no flag: a context read from these headers is taken as sampled.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

fn parse<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    if text.len() != N * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
    }
    (out != [0u8; N]).then_some(out)
}

/// Reads the two headers; `None` unless both are well-formed and non-zero.
pub fn extract(trace_id: &str, span_id: &str) -> Option<SpanContext> {
    let trace = TraceId::from_bytes(parse::<16>(trace_id)?);
    let span = SpanId::from_bytes(parse::<8>(span_id)?);
    Some(SpanContext::new(trace, span, TraceFlags::SAMPLED, true, TraceState::NONE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_both_headers_or_nothing() {
        let context = extract("0AF7651916CD43DD8448EB211C80319C", "b7ad6b7169203331").unwrap();
        assert_eq!(context.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert!(extract("0af7651916cd43dd8448eb211c80319c", "").is_none());
        assert!(extract("00000000000000000000000000000000", "b7ad6b7169203331").is_none());
        assert!(extract("0af7651916cd43dd8448eb211c80319", "b7ad6b7169203331").is_none());
        assert!(extract("0af7651916cd43dd8448eb211c80319g", "b7ad6b7169203331").is_none());
    }

    proptest! {
        #[test]
        fn round_trips(trace in any::<[u8; 16]>(), span in any::<[u8; 8]>()) {
            prop_assume!(trace != [0; 16] && span != [0; 8]);
            let (trace_id, span_id) = (TraceId::from_bytes(trace), SpanId::from_bytes(span));
            let context = extract(&trace_id.to_string(), &span_id.to_string()).unwrap();
            prop_assert_eq!((context.trace_id(), context.span_id()), (trace_id, span_id));
        }
    }
}
