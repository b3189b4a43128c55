//! What ingest hands to a store and a store hands back: blocks of received spans with their small index,
//! log records, metric points and replay chunks. Spans are not stored one row each: a block keeps the
//! received OTLP protobuf bytes (compressed by the store) and the index says which traces it holds.

/// One received batch of spans, as OTLP `ExportTraceServiceRequest` protobuf bytes (uncompressed), with
/// one index entry per trace it contains.
#[derive(Debug, Clone)]
pub struct TraceBlock {
    pub protobuf: Vec<u8>,
    pub span_count: u32,
    pub traces: Vec<TraceIndexEntry>,
}

/// What the index knows of one trace within one block.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceIndexEntry {
    pub trace_id: [u8; 16],
    /// The session the trace belongs to: its short id (from the trace-id prefix) or the value of a
    /// `session.id` / `multiplayer.session.id` attribute (long id or short id).
    pub session_key: Option<String>,
    /// Service names seen in this block for this trace, sorted, without duplicates.
    pub services: Vec<String>,
    pub start_unix_nano: i64,
    pub end_unix_nano: i64,
    pub span_count: u32,
    pub error_count: u32,
    /// Name and service of the trace's root span when this block holds it.
    pub root: Option<(String, String)>,
}

/// One OTLP log record, flattened for storage.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub time_unix_nano: i64,
    pub trace_id: Option<[u8; 16]>,
    pub span_id: Option<[u8; 8]>,
    pub session_key: Option<String>,
    pub service: String,
    pub severity_number: i32,
    pub severity_text: String,
    /// The body as text: a string body as is, anything else as JSON.
    pub body: String,
    /// Log attributes as a JSON object.
    pub attributes_json: String,
    /// Resource attributes as a JSON object.
    pub resource_json: String,
}

/// One metric data point, flattened for storage.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub time_unix_nano: i64,
    pub service: String,
    pub name: String,
    /// gauge, sum, histogram, exponential_histogram or summary.
    pub kind: String,
    pub unit: String,
    /// The number for gauges and sums; the sum for histograms and summaries.
    pub value: Option<f64>,
    /// Point attributes as a JSON object.
    pub attributes_json: String,
    /// Kind-specific detail (count, buckets, quantiles) as a JSON object.
    pub detail_json: String,
}

/// One chunk of a session's replay events, keyed by (session id, seq).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayChunk {
    /// The session's long id.
    pub session_id: String,
    pub seq: u64,
    pub event_count: u32,
    /// Timestamp of the first and last event, Unix milliseconds.
    pub first_timestamp_ms: i64,
    pub last_timestamp_ms: i64,
    /// The events as a JSON array, uncompressed.
    pub events_json: Vec<u8>,
}

/// Everything one write carries. A store commits it all at once, and only then acknowledges.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub trace_blocks: Vec<TraceBlock>,
    pub logs: Vec<LogRecord>,
    pub metric_points: Vec<MetricPoint>,
}

impl WriteBatch {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.trace_blocks.is_empty() && self.logs.is_empty() && self.metric_points.is_empty()
    }
}
