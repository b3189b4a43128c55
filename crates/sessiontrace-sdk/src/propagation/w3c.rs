//! W3C Trace Context (`traceparent` + `tracestate`), following the specification's parsing rules exactly:
//! - `traceparent` = `version-traceid-parentid-flags`, lowercase hex only; version `ff` is invalid;
//!   version `00` has exactly these four fields (55 characters); a higher version may carry more fields
//!   after a `-`, which are ignored; an all-zero trace id or parent id is invalid; spaces and tabs around
//!   the value are allowed; a header sent twice is invalid.
//! - A malformed `traceparent` is ignored as a whole (with its `tracestate`): a new trace starts.
//! - `tracestate` is passed on unchanged: members keep their order, several header lines are joined,
//!   empty members are skipped; a member with a bad key or value, a duplicated key, or more than 32
//!   members makes the whole `tracestate` invalid, and it is dropped (the `traceparent` still holds).
//! - Injection writes version `00` and only the `sampled` flag.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// Most `tracestate` list members (W3C).
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses one `traceparent` header value; `None` when it is malformed.
pub fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let value = value.trim_matches([' ', '\t']);
    if value.len() < 55 || !value.is_ascii() {
        return None;
    }
    let version = &value[..2];
    if !is_lower_hex(version) || version == "ff" {
        return None;
    }
    if version == "00" && value.len() != 55 {
        return None;
    }
    if value.len() > 55 && value.as_bytes()[55] != b'-' {
        return None;
    }
    let bytes = value.as_bytes();
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return None;
    }
    let (trace_hex, span_hex, flags_hex) = (&value[3..35], &value[36..52], &value[53..55]);
    if !is_lower_hex(trace_hex) || !is_lower_hex(span_hex) || !is_lower_hex(flags_hex) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_hex).ok()?;
    let span_id = SpanId::from_hex(span_hex).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = u8::from_str_radix(flags_hex, 16).ok()?;
    Some((trace_id, span_id, TraceFlags::new(flags) & TraceFlags::SAMPLED))
}

fn valid_key_part(part: &str, first_may_be_digit: bool, max: usize) -> bool {
    let bytes = part.as_bytes();
    let Some(&first) = bytes.first() else { return false };
    let first_ok = first.is_ascii_lowercase() || (first_may_be_digit && first.is_ascii_digit());
    first_ok
        && bytes.len() <= max
        && bytes[1..].iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/".contains(&b))
}

/// A `tracestate` key: `simple-key` or `tenant@system` (W3C Trace Context Level 1, section 3.3.1.3.1).
pub fn valid_tracestate_key(key: &str) -> bool {
    match key.split_once('@') {
        None => valid_key_part(key, false, 256),
        Some((tenant, system)) => valid_key_part(tenant, true, 241) && valid_key_part(system, false, 14),
    }
}

/// A `tracestate` value: 1 to 256 printable ASCII characters without `,` and `=`, not ending in a space.
pub fn valid_tracestate_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && !value.ends_with(' ')
}

/// Parses the `tracestate` header lines (joined in order); `None` when the list is invalid.
pub fn parse_tracestate(lines: &[&str]) -> Option<TraceState> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    for member in lines.iter().flat_map(|line| line.split(',')) {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !valid_tracestate_key(key) || !valid_tracestate_value(value) {
            return None;
        }
        if members.iter().any(|(seen, _)| *seen == key) {
            return None;
        }
        members.push((key, value));
        if members.len() > MAX_TRACESTATE_MEMBERS {
            return None;
        }
    }
    if members.is_empty() {
        return Some(TraceState::NONE);
    }
    TraceState::from_key_value(members).ok()
}

/// Reads a remote span context from the header lines of `traceparent` and `tracestate`.
pub fn extract(traceparent: &[&str], tracestate: &[&str]) -> Option<SpanContext> {
    let [single] = traceparent else { return None };
    let (trace_id, span_id, flags) = parse_traceparent(single)?;
    let state = parse_tracestate(tracestate).unwrap_or_default();
    Some(SpanContext::new(trace_id, span_id, flags, true, state))
}

/// The `traceparent` value of a span context (version 00).
pub fn format_traceparent(context: &SpanContext) -> String {
    let flags = context.trace_flags() & TraceFlags::SAMPLED;
    format!("00-{}-{}-{:02x}", context.trace_id(), context.span_id(), flags.to_u8())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn reads_a_valid_header_and_writes_it_back() {
        let context = extract(&[VALID], &["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]).unwrap();
        assert!(context.is_sampled() && context.is_remote());
        assert_eq!(format_traceparent(&context), VALID);
        assert_eq!(context.trace_state().header(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        let unsampled = extract(&["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"], &[]).unwrap();
        assert!(!unsampled.is_sampled());
        // Unknown flag bits are not passed on.
        let other_flags = extract(&["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff"], &[]).unwrap();
        assert!(format_traceparent(&other_flags).ends_with("-01"));
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        let bad = [
            "",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", // version ff
            "0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  // short version
            "0g-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", // not hex
            "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01", // uppercase
            "00-0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-01", // uppercase span
            "00-00000000000000000000000000000000-b7ad6b7169203331-01", // zero trace id
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", // zero span id
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",  // short trace id
            "00-0af7651916cd43dd8448eb211c80319c0-b7ad6b7169203331-01", // long trace id
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",  // short span id
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",  // short flags
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-", // extra for 00
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01", // wrong separators
            "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01.what", // future, no dash
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x",
        ];
        for header in bad {
            assert_eq!(parse_traceparent(header), None, "{header:?} accepted");
        }
        // A header sent twice is invalid.
        assert!(extract(&[VALID, VALID], &[]).is_none());
    }

    #[test]
    fn future_versions_and_whitespace_are_accepted() {
        let future = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-holds";
        assert!(parse_traceparent(future).is_some());
        assert!(parse_traceparent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").is_some());
        assert!(parse_traceparent(&format!(" \t{VALID}\t ")).is_some());
    }

    #[test]
    fn tracestate_rules() {
        let ok = |lines: &[&str]| parse_tracestate(lines).map(|s| s.header());
        assert_eq!(ok(&["a=1", "b=2"]).as_deref(), Some("a=1,b=2"));
        assert_eq!(ok(&["a=1,, ,b=2"]).as_deref(), Some("a=1,b=2"));
        assert_eq!(ok(&["tenant1@vendor=x"]).as_deref(), Some("tenant1@vendor=x"));
        assert_eq!(ok(&[""]).as_deref(), Some(""));
        assert_eq!(ok(&["a=1,a=2"]), None, "duplicated key");
        assert_eq!(ok(&["A=1"]), None, "uppercase key");
        assert_eq!(ok(&["a=1=2"]), None, "= in value");
        assert_eq!(ok(&["a="]), None, "empty value");
        assert_eq!(ok(&["a"]), None, "no =");
        assert_eq!(ok(&["1a=1"]), None, "key starts with a digit");
        assert_eq!(ok(&[&format!("{}=v", "k".repeat(257))]), None, "key too long");
        let thirty_two: Vec<String> = (0..32).map(|i| format!("k{i}=v{i}")).collect();
        let header = thirty_two.join(",");
        assert_eq!(ok(&[&header]).as_deref(), Some(header.as_str()), "32 members kept in order");
        let thirty_three = format!("{header},k32=v32");
        assert_eq!(ok(&[&thirty_three]), None, "33 members");
        // A bad tracestate is dropped but the traceparent holds.
        let context = extract(&[VALID], &["a=1,a=2"]).unwrap();
        assert_eq!(context.trace_state().header(), "");
    }

    proptest! {
        #[test]
        fn traceparent_round_trips(trace in any::<[u8; 16]>(), span in any::<[u8; 8]>(), sampled in any::<bool>()) {
            prop_assume!(trace != [0; 16] && span != [0; 8]);
            let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
            let context = SpanContext::new(TraceId::from_bytes(trace), SpanId::from_bytes(span), flags, true, TraceState::NONE);
            let header = format_traceparent(&context);
            prop_assert_eq!(header.len(), 55);
            prop_assert_eq!(extract(&[&header], &[]), Some(context));
        }

        #[test]
        fn uppercase_anywhere_is_rejected(index in 3usize..55) {
            let mut header = VALID.as_bytes().to_vec();
            prop_assume!(header[index].is_ascii_lowercase());
            header[index] = header[index].to_ascii_uppercase();
            prop_assert_eq!(parse_traceparent(std::str::from_utf8(&header).unwrap()), None);
        }

        #[test]
        fn wrong_lengths_of_version_00_are_rejected(cut in 0usize..55, extra in "[a-z0-9-]{1,10}") {
            prop_assert_eq!(parse_traceparent(&VALID[..cut]), None);
            prop_assert_eq!(parse_traceparent(&format!("{VALID}{extra}")), None);
        }

        #[test]
        fn non_hex_anywhere_in_the_ids_is_rejected(index in 3usize..55, bad in "[g-zG-Z_.+ ]") {
            prop_assume!(![2usize, 35, 52].contains(&index));
            let mut header = VALID.to_string();
            header.replace_range(index..index + 1, &bad);
            prop_assert_eq!(parse_traceparent(&header), None);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,80}") {
            let _ = parse_traceparent(&text);
            let _ = parse_tracestate(&[&text]);
        }

        #[test]
        fn tracestate_keeps_valid_lists_in_order(n in 1usize..=32) {
            let members: Vec<String> = (0..n).map(|i| format!("v{i}=x{i}")).collect();
            let header = members.join(",");
            prop_assert_eq!(parse_tracestate(&[&header]).map(|s| s.header()), Some(header));
        }
    }
}
