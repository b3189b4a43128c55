//! B3 propagation (Zipkin): the single `b3` header (`{traceid}-{spanid}[-{sampling}[-{parentspanid}]]`)
//! and the multi-header form (`X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled`, `X-B3-Flags`).
//! 64-bit trace ids are widened to 128 bits with leading zeros. Hex of either case is read; ids are
//! written in lowercase. Debug (`d` / `X-B3-Flags: 1`) counts as sampled. An absent sampling state is
//! taken as sampled (B3 defers to the receiver; the receiver here keeps what it joins).

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

fn parse_hex_id(text: &str, widths: &[usize]) -> Option<u128> {
    if !widths.contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(text, 16).ok().filter(|value| *value != 0)
}

fn context(trace: &str, span: &str, sampled: bool) -> Option<SpanContext> {
    let trace_id = TraceId::from(parse_hex_id(trace, &[16, 32])?);
    let span_id = SpanId::from(u64::try_from(parse_hex_id(span, &[16])?).ok()?);
    let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
    Some(SpanContext::new(trace_id, span_id, flags, true, TraceState::NONE))
}

/// Reads the single `b3` header. `b3: 0` / `b3: d` alone carry no ids and give `None`.
pub fn extract_single(value: &str) -> Option<SpanContext> {
    let parts: Vec<&str> = value.trim().split('-').collect();
    let sampled = match parts.get(2).copied() {
        None => true,
        Some("1" | "d") => true,
        Some("0") => false,
        Some(_) => return None,
    };
    if parts.len() < 2 || parts.len() > 4 {
        return None;
    }
    if let Some(parent) = parts.get(3) {
        parse_hex_id(parent, &[16])?;
    }
    context(parts[0], parts[1], sampled)
}

/// Reads the `X-B3-*` headers.
pub fn extract_multi(trace: &str, span: &str, sampled: Option<&str>, flags: Option<&str>) -> Option<SpanContext> {
    let debug = flags.is_some_and(|f| f.trim() == "1");
    let sampled = match sampled.map(str::trim) {
        None => true,
        Some("1" | "true") => true,
        Some("0" | "false") => debug,
        Some(_) => return None,
    };
    context(trace.trim(), span.trim(), sampled)
}

/// The single `b3` header value of a span context.
pub fn format_single(context: &SpanContext) -> String {
    let sampled = if context.is_sampled() { "1" } else { "0" };
    format!("{}-{}-{sampled}", context.trace_id(), context.span_id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn single_header_forms() {
        let full = extract_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90").unwrap();
        assert_eq!(full.trace_id().to_string(), "80f198ee56343ba864fe8b2a57d3eff7");
        assert!(full.is_sampled());
        let short = extract_single("64fe8b2a57d3eff7-e457b5a2e4d86bd1-0").unwrap();
        assert_eq!(short.trace_id().to_string(), "000000000000000064fe8b2a57d3eff7");
        assert!(!short.is_sampled());
        assert!(extract_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d").unwrap().is_sampled());
        assert!(extract_single("80F198EE56343BA864FE8B2A57D3EFF7-E457B5A2E4D86BD1").unwrap().is_sampled());
        for bad in [
            "0",
            "d",
            "",
            "80f198ee-e457b5a2e4d86bd1",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-x",
            "00000000000000000000000000000000-e457b5a2e4d86bd1",
            "80f198ee56343ba864fe8b2a57d3eff7-0000000000000000",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3-x",
        ] {
            assert!(extract_single(bad).is_none(), "{bad:?} accepted");
        }
    }

    #[test]
    fn multi_header_forms() {
        let trace = "80f198ee56343ba864fe8b2a57d3eff7";
        assert!(extract_multi(trace, "e457b5a2e4d86bd1", Some("1"), None).unwrap().is_sampled());
        assert!(!extract_multi(trace, "e457b5a2e4d86bd1", Some("0"), None).unwrap().is_sampled());
        assert!(extract_multi(trace, "e457b5a2e4d86bd1", Some("0"), Some("1")).unwrap().is_sampled());
        assert!(extract_multi(trace, "e457b5a2e4d86bd1", Some("maybe"), None).is_none());
        assert!(extract_multi(trace, "e457", None, None).is_none());
    }

    proptest! {
        #[test]
        fn single_round_trips(trace in any::<u128>(), span in any::<u64>(), sampled in any::<bool>()) {
            prop_assume!(trace != 0 && span != 0);
            let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
            let context = SpanContext::new(TraceId::from(trace), SpanId::from(span), flags, true, TraceState::NONE);
            prop_assert_eq!(extract_single(&format_single(&context)), Some(context));
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,80}") {
            let _ = extract_single(&text);
            let _ = extract_multi(&text, &text, Some(&text), Some(&text));
        }
    }
}
