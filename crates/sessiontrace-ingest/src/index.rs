//! Builds the per-trace index of one block, span by span. Both the full decode path and the fast
//! protobuf scan feed it, so the index is the same whichever path read the request.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use sessiontrace_model::records::TraceIndexEntry;

/// One span, as the index sees it.
pub struct SpanFacts<'a> {
    pub trace_id: [u8; 16],
    pub session_key: Option<String>,
    pub service: &'a str,
    /// UTF-8, checked by the reader; kept as bytes because only a root span's name is made a `String`.
    pub name: &'a [u8],
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub has_error: bool,
    pub is_true_root: bool,
}

/// Per-trace index entries in first-seen order.
#[derive(Default)]
pub struct IndexBuilder {
    entries: Vec<TraceIndexEntry>,
    has_true_root: Vec<bool>,
    position: HashMap<[u8; 16], usize, RandomState>,
    /// The slot of the last span's trace: spans of one trace mostly come together.
    last: Option<([u8; 16], usize)>,
}

impl IndexBuilder {
    /// Adds one span to its trace's entry.
    pub fn add(&mut self, span: SpanFacts<'_>) {
        let slot = match self.last {
            Some((trace_id, slot)) if trace_id == span.trace_id => slot,
            _ => self.slot(span.trace_id),
        };
        self.last = Some((span.trace_id, slot));
        let entry = &mut self.entries[slot];
        if entry.session_key.is_none() {
            entry.session_key = span.session_key;
        }
        if !entry.services.iter().any(|s| s == span.service) {
            entry.services.push(span.service.to_string());
        }
        // The root is the parentless span; a trace continued from a browser or another process has none
        // here, so its earliest span stands in until a parentless one comes.
        let start = span.start_unix_nano as i64;
        let earliest = start <= entry.start_unix_nano;
        if span.is_true_root || (earliest && !self.has_true_root[slot]) {
            entry.root = Some((String::from_utf8_lossy(span.name).into_owned(), span.service.to_string()));
            self.has_true_root[slot] |= span.is_true_root;
        }
        entry.start_unix_nano = entry.start_unix_nano.min(start);
        entry.end_unix_nano = entry.end_unix_nano.max(span.end_unix_nano.max(span.start_unix_nano) as i64);
        entry.span_count += 1;
        entry.error_count += span.has_error as u32;
    }

    /// The entry of `trace_id`, added if new.
    fn slot(&mut self, trace_id: [u8; 16]) -> usize {
        *self.position.entry(trace_id).or_insert_with(|| {
            self.entries.push(TraceIndexEntry {
                trace_id,
                session_key: None,
                services: Vec::new(),
                start_unix_nano: i64::MAX,
                end_unix_nano: i64::MIN,
                span_count: 0,
                error_count: 0,
                root: None,
            });
            self.has_true_root.push(false);
            self.entries.len() - 1
        })
    }

    /// The entries, services sorted.
    pub fn finish(mut self) -> Vec<TraceIndexEntry> {
        for entry in &mut self.entries {
            entry.services.sort();
        }
        self.entries
    }
}
