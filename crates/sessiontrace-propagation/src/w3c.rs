//! W3C Trace Context (`traceparent` + `tracestate`), Level 2 (<https://www.w3.org/TR/trace-context-2/>):
//! - `traceparent` = `version-traceid-parentid-flags`, lowercase hex only; version `ff` is invalid;
//!   version `00` has exactly these four fields (55 characters); a higher version may carry more fields
//!   after a `-`, which are ignored; an all-zero trace id or parent id is invalid; spaces and tabs around
//!   the value are allowed; a header sent twice is invalid.
//! - Flags: `sampled` (0x01) and Level 2's `random` (0x02) are read and written; other bits are zeroed.
//!   `random` describes the trace id, so it leaves exactly as it arrived on every outgoing header of the
//!   same trace (the caller in `propagation` keeps it even when the local span was dropped).
//! - A malformed `traceparent` is ignored as a whole (with its `tracestate`): a new trace starts.
//! - `tracestate` is passed on: members keep their order, several header lines are joined, empty members
//!   are skipped. Keys follow Level 2's grammar: `(lcalpha / DIGIT) 0*255(keychar)`, keychar = lcalpha /
//!   DIGIT / `_` `-` `*` `/` `@` (so `foo@`, `a@b@c` and a 256-character key with `@` are valid). Values
//!   are 1 to 256 printable ASCII characters without `,` and `=`, not ending in a space.
//! - A duplicated key is the sender's mistake, not a reason to lose the list (the spec makes uniqueness the
//!   sender's duty): the first (leftmost, most recent) member of a key is kept, later ones are dropped.
//! - A member with a bad key or value, or more than 32 members received, makes the whole `tracestate`
//!   invalid, and it is dropped (the `traceparent` still holds).
//! - Injection writes version `00`.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// Most `tracestate` list members (W3C).
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// Longest `tracestate` key and value (W3C).
const MAX_KEY_OR_VALUE_LEN: usize = 256;

/// Level 2's `random` trace flag: the right 7 bytes of the trace id are random.
pub const RANDOM: TraceFlags = TraceFlags::new(0x02);

/// The flags this propagator knows and passes on; the others are zeroed.
const KNOWN_FLAGS: TraceFlags = TraceFlags::new(0x03);

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses one `traceparent` header value; `None` when it is malformed. The flags keep `sampled` and
/// `random`.
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
    Some((trace_id, span_id, TraceFlags::new(flags) & KNOWN_FLAGS))
}

fn is_key_char(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"_-*/@".contains(&byte)
}

/// A `tracestate` key by Level 2's grammar (the old `tenant@system` form is a special case of it).
pub fn valid_tracestate_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    let Some(&first) = bytes.first() else { return false };
    (first.is_ascii_lowercase() || first.is_ascii_digit())
        && bytes.len() <= MAX_KEY_OR_VALUE_LEN
        && bytes[1..].iter().all(|&b| is_key_char(b))
}

/// A `tracestate` value: 1 to 256 printable ASCII characters without `,` and `=`, not ending in a space.
pub fn valid_tracestate_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_KEY_OR_VALUE_LEN
        && value.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && !value.ends_with(' ')
}

/// A received `tracestate`: its members in order, each key once. It carries every member Level 2 allows,
/// including keys OpenTelemetry's [`TraceState`] refuses (that type still checks Level 1's `tenant@system`
/// form); [`TraceStateList::to_trace_state`] is the part a [`SpanContext`] can hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceStateList {
    members: Vec<(String, String)>,
}

impl TraceStateList {
    /// The members, in order.
    pub fn members(&self) -> impl Iterator<Item = (&str, &str)> {
        self.members.iter().map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// The header value (`key=value,...`, empty for no members).
    pub fn header(&self) -> String {
        let mut header = String::new();
        for (index, (key, value)) in self.members.iter().enumerate() {
            if index > 0 {
                header.push(',');
            }
            header.push_str(key);
            header.push('=');
            header.push_str(value);
        }
        header
    }

    /// The members OpenTelemetry's [`TraceState`] accepts, in order (samplers and the span read these).
    pub fn to_trace_state(&self) -> TraceState {
        let representable = self.members().filter(|(key, value)| TraceState::NONE.insert(*key, *value).is_ok());
        TraceState::from_key_value(representable).unwrap_or_default()
    }
}

/// Parses the `tracestate` header lines (joined in order); `None` when the list is invalid.
pub fn parse_tracestate(lines: &[&str]) -> Option<TraceStateList> {
    let mut members: Vec<(String, String)> = Vec::new();
    let mut received = 0usize;
    for member in lines.iter().flat_map(|line| line.split(',')) {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        received += 1;
        if received > MAX_TRACESTATE_MEMBERS {
            return None;
        }
        let (key, value) = member.split_once('=')?;
        if !valid_tracestate_key(key) || !valid_tracestate_value(value) {
            return None;
        }
        if members.iter().any(|(seen, _)| seen == key) {
            continue;
        }
        members.push((key.to_string(), value.to_string()));
    }
    Some(TraceStateList { members })
}

/// What a `traceparent` (+ `tracestate`) carried.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The remote span context; its trace state holds [`TraceStateList::to_trace_state`].
    pub span_context: SpanContext,
    /// Every valid `tracestate` member (empty when there was none or it was invalid).
    pub tracestate: TraceStateList,
}

/// Reads a remote span context from the header lines of `traceparent` and `tracestate`.
pub fn extract(traceparent: &[&str], tracestate: &[&str]) -> Option<Received> {
    let [single] = traceparent else { return None };
    let (trace_id, span_id, flags) = parse_traceparent(single)?;
    let tracestate = parse_tracestate(tracestate).unwrap_or_default();
    let span_context = SpanContext::new(trace_id, span_id, flags, true, tracestate.to_trace_state());
    Some(Received { span_context, tracestate })
}

/// The `traceparent` value of a span context (version 00, flags `sampled` and `random` as the context has
/// them).
pub fn format_traceparent(context: &SpanContext) -> String {
    format_traceparent_with_flags(context, context.trace_flags())
}

/// The `traceparent` value of a span context with the given flags (unknown bits are zeroed).
pub fn format_traceparent_with_flags(context: &SpanContext, flags: TraceFlags) -> String {
    let flags = flags & KNOWN_FLAGS;
    format!("00-{}-{}-{:02x}", context.trace_id(), context.span_id(), flags.to_u8())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn reads_a_valid_header_and_writes_it_back() {
        let context = extract(&[VALID], &["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]).unwrap().span_context;
        assert!(context.is_sampled() && context.is_remote());
        assert_eq!(format_traceparent(&context), VALID);
        assert_eq!(context.trace_state().header(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        let unsampled = extract(&["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"], &[]).unwrap();
        assert!(!unsampled.span_context.is_sampled());
        // Unknown flag bits are not passed on; sampled and random are.
        let other_flags = extract(&["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff"], &[]).unwrap();
        assert!(format_traceparent(&other_flags.span_context).ends_with("-03"));
        let unknown_only = extract(&["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-fc"], &[]).unwrap();
        assert!(format_traceparent(&unknown_only.span_context).ends_with("-00"));
    }

    #[test]
    fn the_random_flag_is_read_and_written() {
        for (flags, sampled, random) in
            [("00", false, false), ("01", true, false), ("02", false, true), ("03", true, true)]
        {
            let header = format!("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-{flags}");
            let context = extract(&[&header], &[]).unwrap().span_context;
            assert_eq!(context.is_sampled(), sampled, "{flags}");
            assert_eq!(context.trace_flags() & RANDOM == RANDOM, random, "{flags}");
            assert_eq!(format_traceparent(&context), header);
        }
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
        assert_eq!(ok(&["a=1,a=2"]).as_deref(), Some("a=1"), "duplicated key: the first is kept");
        assert_eq!(ok(&["a=1", "b=2"]).as_deref(), Some("a=1,b=2"));
        assert_eq!(ok(&["a=1,, ,b=2"]).as_deref(), Some("a=1,b=2"));
        assert_eq!(ok(&["tenant1@vendor=x"]).as_deref(), Some("tenant1@vendor=x"));
        assert_eq!(ok(&[""]).as_deref(), Some(""));
        assert_eq!(ok(&["A=1"]), None, "uppercase key");
        assert_eq!(ok(&["a=1=2"]), None, "= in value");
        assert_eq!(ok(&["a="]), None, "empty value");
        assert_eq!(ok(&["a"]), None, "no =");
        assert_eq!(ok(&["1a=1"]).as_deref(), Some("1a=1"), "key starts with a digit (Level 2)");
        assert_eq!(ok(&["_a=1"]), None, "key starts with _");
        assert_eq!(ok(&["@a=1"]), None, "key starts with @");
        assert_eq!(ok(&[&format!("{}=v", "k".repeat(257))]), None, "key too long");
        let thirty_two: Vec<String> = (0..32).map(|i| format!("k{i}=v{i}")).collect();
        let header = thirty_two.join(",");
        assert_eq!(ok(&[&header]).as_deref(), Some(header.as_str()), "32 members kept in order");
        let thirty_three = format!("{header},k32=v32");
        assert_eq!(ok(&[&thirty_three]), None, "33 members");
        // A bad tracestate is dropped but the traceparent holds.
        let received = extract(&[VALID], &["a=1,B=2"]).unwrap();
        assert_eq!(received.span_context.trace_state().header(), "");
        assert_eq!(received.tracestate.header(), "");
    }

    #[test]
    fn duplicated_keys_keep_the_list() {
        let header = |line: &str| parse_tracestate(&[line]).map(|list| list.header());
        assert_eq!(header("foo=1,foo=1").as_deref(), Some("foo=1"));
        assert_eq!(header("foo=1,foo=2").as_deref(), Some("foo=1"));
        assert_eq!(header("bar=0,foo=1,baz=2,foo=2").as_deref(), Some("bar=0,foo=1,baz=2"));
        // Across header lines too.
        assert_eq!(parse_tracestate(&["foo=1", "foo=2,bar=3"]).map(|l| l.header()).as_deref(), Some("foo=1,bar=3"));
        let received = extract(&[VALID], &["foo=1,foo=2"]).unwrap();
        assert_eq!(received.span_context.trace_state().header(), "foo=1");
    }

    #[test]
    fn level_2_key_grammar() {
        let key_256_with_at = format!("{}@{}", "t".repeat(200), "v".repeat(55));
        assert_eq!(key_256_with_at.len(), 256);
        let key_257 = format!("{}@{}", "t".repeat(200), "v".repeat(56));
        let valid = ["foo@", "foo@@bar", "a@b@c", "1@x", "0", "a-_*/@", "tenant@-vendor", key_256_with_at.as_str()];
        for key in valid {
            assert!(valid_tracestate_key(key), "{key:?} refused");
            let line = format!("{key}=1");
            assert_eq!(parse_tracestate(&[&line]).map(|l| l.header()), Some(line.clone()), "{key:?} not kept");
        }
        let invalid =
            ["", "Foo", "foo bar", "foo.bar", "-foo", "*foo", "/foo", "@foo", "foo!", "foö", key_257.as_str()];
        for key in invalid {
            assert!(!valid_tracestate_key(key), "{key:?} accepted");
        }
        // A key OpenTelemetry's TraceState refuses is still carried, and the others stay readable.
        let received = extract(&[VALID], &[&format!("a=1,{key_256_with_at}=2,b=3")]).unwrap();
        assert_eq!(received.tracestate.header(), format!("a=1,{key_256_with_at}=2,b=3"));
        assert_eq!(received.span_context.trace_state().get("b"), Some("3"));
    }

    #[test]
    fn value_grammar() {
        let valid = ["1", " x", "a b", "!\"#$%&'()*+-./0123456789:;<>?@ABCXYZ[\\]^_`abcxyz{|}~", &"v".repeat(256)];
        for value in valid {
            assert!(valid_tracestate_value(value), "{value:?} refused");
        }
        let long = "v".repeat(257);
        let invalid = ["", "x ", "a,b", "a=b", "tab\there", "é", long.as_str()];
        for value in invalid {
            assert!(!valid_tracestate_value(value), "{value:?} accepted");
        }
        // Spaces and tabs around a member are not part of it.
        assert_eq!(parse_tracestate(&[" a=1 \t, b=2\t"]).map(|l| l.header()).as_deref(), Some("a=1,b=2"));
    }

    #[test]
    fn the_member_limit_counts_received_members() {
        let members: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        assert_eq!(parse_tracestate(&[&members.join(",")]).map(|l| l.members().count()), Some(32));
        // Empty members do not count.
        assert!(parse_tracestate(&[&format!("{},,,", members.join(","))]).is_some());
        // 33 members are too many, even over two lines and even when one repeats a key.
        assert_eq!(parse_tracestate(&[&members.join(","), "k99=v"]), None);
        assert_eq!(parse_tracestate(&[&members.join(","), "k0=v"]), None);
    }

    proptest! {
        #[test]
        fn traceparent_round_trips(trace in any::<[u8; 16]>(), span in any::<[u8; 8]>(), sampled in any::<bool>()) {
            prop_assume!(trace != [0; 16] && span != [0; 8]);
            let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
            let context = SpanContext::new(TraceId::from_bytes(trace), SpanId::from_bytes(span), flags, true, TraceState::NONE);
            let header = format_traceparent(&context);
            prop_assert_eq!(header.len(), 55);
            prop_assert_eq!(extract(&[&header], &[]).map(|received| received.span_context), Some(context));
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
