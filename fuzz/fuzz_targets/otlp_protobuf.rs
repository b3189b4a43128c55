//! OTLP/HTTP protobuf trace requests through `ingest::scan` (the fast path) and prost (the full decode):
//! whatever the scan vouches for, prost must decode, with the same span count; and `prepare` never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use sessiontrace_ingest::IngestConfig;
use sessiontrace_ingest::scan::scan_traces;
use sessiontrace_ingest::traces::{TraceInput, prepare};

fuzz_target!(|data: &[u8]| {
    let config = IngestConfig::default();
    let decoded = ExportTraceServiceRequest::decode(data);
    if let Some((_, span_count)) = scan_traces(data, &config) {
        let request = decoded.expect("the scan accepted what prost refuses");
        let spans: usize = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
        assert_eq!(span_count, spans as u64, "the scan and prost count different spans");
    }
    let _ = prepare(TraceInput::Protobuf(data.to_vec()), &config);
});
