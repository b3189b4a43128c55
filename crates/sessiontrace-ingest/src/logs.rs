//! OTLP log requests to [`LogRecord`]s: trace context checked, attributes masked like span attributes,
//! the session found from the trace id or a `session.id` attribute. Logs follow their trace's routing
//! decision (a log of a dropped trace is dropped, an error log keeps its trace); logs without a trace are
//! kept. With [`hold_dropped`](crate::route::RoutingPolicy::hold_dropped) the dropped records are handed
//! back in [`PreparedLogs::held`], so the server can keep them when their trace's tail decision is keep.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use sessiontrace_model::records::LogRecord;

use crate::anyvalue::{attributes_to_json_string, body_text};
use crate::decode::{from_json, from_protobuf};
use crate::normalize::{check_id, normalize_attributes, session_attribute, session_key};
use crate::route::{Decision, TraceFacts};
use crate::traces::service_name;
use crate::{IngestConfig, IngestError};

/// A log request as it arrived.
pub enum LogInput {
    Protobuf(Vec<u8>),
    Json(Vec<u8>),
    Decoded(ExportLogsServiceRequest),
}

/// The outcome of one request.
#[derive(Debug, Default)]
pub struct PreparedLogs {
    pub records: Vec<LogRecord>,
    pub received: u64,
    pub rejected: u64,
    pub rejection_message: Option<String>,
    /// Records the policy dropped (counted in `dropped`).
    pub dropped: u64,
    /// The dropped records, when the policy holds them for a tail decision; empty otherwise.
    pub held: Vec<LogRecord>,
}

/// Decodes, checks, masks and routes one log request.
pub fn prepare(input: LogInput, config: &IngestConfig) -> Result<PreparedLogs, IngestError> {
    let request = match input {
        LogInput::Protobuf(bytes) => from_protobuf::<ExportLogsServiceRequest>(&bytes, "logs")?,
        LogInput::Json(bytes) => from_json::<ExportLogsServiceRequest>(&bytes, "resourceLogs")?,
        LogInput::Decoded(request) => request,
    };
    let mut outcome = PreparedLogs::default();
    for resource_logs in request.resource_logs {
        let resource_attributes = resource_logs.resource.map(|r| r.attributes).unwrap_or_default();
        let service = service_name(&resource_attributes);
        let resource_session = session_attribute(&resource_attributes).map(str::to_string);
        let resource_json = attributes_to_json_string(&resource_attributes);
        for scope_logs in resource_logs.scope_logs {
            for mut log in scope_logs.log_records {
                outcome.received += 1;
                let ids_ok = check_id(&log.trace_id, 16, "trace_id", true)
                    .and_then(|_| check_id(&log.span_id, 8, "span_id", true));
                if let Err(message) = ids_ok {
                    outcome.rejected += 1;
                    outcome.rejection_message.get_or_insert(format!("log record: {message}"));
                    continue;
                }
                normalize_attributes(&mut log.attributes, &config.masking, config.max_attribute_value_bytes);
                let trace_id: Option<[u8; 16]> = log.trace_id.as_slice().try_into().ok();
                let session = session_key(&log.trace_id, &log.attributes, resource_session.as_deref());
                let mut dropped = false;
                if let Some(trace_id) = &trace_id {
                    let has_error = log.severity_number >= 17;
                    let facts = TraceFacts { trace_id, is_session: session.is_some(), has_error, duration_ns: 0 };
                    dropped = config.routing.decide(facts) == Decision::Drop;
                }
                if dropped {
                    outcome.dropped += 1;
                    if !config.routing.hold_dropped {
                        continue;
                    }
                }
                let time = if log.time_unix_nano != 0 { log.time_unix_nano } else { log.observed_time_unix_nano };
                let mut body = body_text(log.body.as_ref());
                if let Some(masked) = config.masking.mask_body(&body) {
                    body = masked;
                }
                let target = if dropped { &mut outcome.held } else { &mut outcome.records };
                target.push(LogRecord {
                    time_unix_nano: time as i64,
                    trace_id,
                    span_id: log.span_id.as_slice().try_into().ok(),
                    session_key: session,
                    service: service.clone(),
                    severity_number: log.severity_number,
                    severity_text: log.severity_text,
                    body,
                    attributes_json: attributes_to_json_string(&log.attributes),
                    resource_json: resource_json.clone(),
                });
            }
        }
    }
    if outcome.received > 0 && outcome.rejected == outcome.received {
        let message = outcome.rejection_message.take().unwrap_or_default();
        return Err(IngestError::InvalidRequest(format!("every log record was rejected; first: {message}")));
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_logs_are_linked_and_masked() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"orders"}}]},
          "scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000","severityNumber":9,"severityText":"INFO",
          "body":{"stringValue":"{\"password\":\"x\",\"ok\":1}"},"traceId":"debdeb0102030405060708090a0b0c0d","spanId":"0102030405060708",
          "attributes":[{"key":"http.request.header.cookie","value":{"stringValue":"a=b"}}]}]}]}]}"#;
        let outcome = prepare(LogInput::Json(body.to_vec()), &IngestConfig::default()).unwrap();
        let record = &outcome.records[0];
        assert_eq!(record.session_key.as_deref(), Some("01020304"));
        assert_eq!(record.service, "orders");
        assert_eq!(record.body, r#"{"password":"***MASKED***","ok":1}"#);
        assert_eq!(record.attributes_json, r#"{"http.request.header.cookie":"***MASKED***"}"#);
        assert_eq!(record.time_unix_nano, 1_700_000_000_000_000_000);
    }

    #[test]
    fn bad_trace_ids_are_refused() {
        let body =
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"0102","body":{"stringValue":"x"}}]}]}]}"#;
        let error = prepare(LogInput::Json(body.to_vec()), &IngestConfig::default()).unwrap_err();
        assert!(error.to_string().contains("trace_id must be 16 bytes"), "{error}");
    }

    #[test]
    fn logs_follow_the_trace_decision_and_can_be_held() {
        let body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
          {"traceId":"05050505050505050505050505050505","severityNumber":9,"body":{"stringValue":"dropped"}},
          {"traceId":"06060606060606060606060606060606","severityNumber":17,"body":{"stringValue":"error"}},
          {"traceId":"debdeb0102030405060708090a0b0c0d","severityNumber":9,"body":{"stringValue":"session"}},
          {"severityNumber":9,"body":{"stringValue":"no trace"}}]}]}]}"#;
        let mut config = IngestConfig { routing: crate::route::RoutingPolicy::with_ratio(0.0), ..Default::default() };
        let outcome = prepare(LogInput::Json(body.to_vec()), &config).unwrap();
        let bodies: Vec<_> = outcome.records.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(bodies, vec!["error", "session", "no trace"]);
        assert_eq!((outcome.dropped, outcome.held.len()), (1, 0));
        config.routing.hold_dropped = true;
        let outcome = prepare(LogInput::Json(body.to_vec()), &config).unwrap();
        assert_eq!((outcome.records.len(), outcome.dropped, outcome.held[0].body.as_str()), (3, 1, "dropped"));
    }
}
