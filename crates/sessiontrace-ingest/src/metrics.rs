//! OTLP metric requests to flat [`MetricPoint`]s, one per data point, so that the points of the services a
//! session touched can be read back over the session's window.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value as Number};
use serde_json::json;
use sessiontrace_model::records::MetricPoint;

use crate::anyvalue::attributes_to_json_string;
use crate::decode::{from_json, from_protobuf};
use crate::traces::service_name;
use crate::{IngestConfig, IngestError};

/// A metrics request as it arrived.
pub enum MetricInput {
    Protobuf(Vec<u8>),
    Json(Vec<u8>),
    Decoded(ExportMetricsServiceRequest),
}

fn number(value: Option<Number>) -> Option<f64> {
    match value? {
        Number::AsDouble(v) => Some(v),
        Number::AsInt(v) => Some(v as f64),
    }
}

/// Decodes one metrics request into points.
pub fn prepare(input: MetricInput, _config: &IngestConfig) -> Result<Vec<MetricPoint>, IngestError> {
    let request = match input {
        MetricInput::Protobuf(bytes) => from_protobuf::<ExportMetricsServiceRequest>(&bytes, "metrics")?,
        MetricInput::Json(bytes) => from_json::<ExportMetricsServiceRequest>(&bytes, "resourceMetrics")?,
        MetricInput::Decoded(request) => request,
    };
    let mut points = Vec::new();
    for resource_metrics in request.resource_metrics {
        let service = service_name(resource_metrics.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or(&[]));
        for metric in resource_metrics.scope_metrics.into_iter().flat_map(|s| s.metrics) {
            let mut push = |time: u64, kind: &str, value: Option<f64>, attributes: &[_], detail: serde_json::Value| {
                points.push(MetricPoint {
                    time_unix_nano: time as i64,
                    service: service.clone(),
                    name: metric.name.clone(),
                    kind: kind.to_string(),
                    unit: metric.unit.clone(),
                    value,
                    attributes_json: attributes_to_json_string(attributes),
                    detail_json: detail.to_string(),
                });
            };
            match &metric.data {
                Some(Data::Gauge(gauge)) => {
                    for p in &gauge.data_points {
                        push(p.time_unix_nano, "gauge", number(p.value), &p.attributes, json!({}));
                    }
                }
                Some(Data::Sum(sum)) => {
                    for p in &sum.data_points {
                        let detail = json!({"monotonic": sum.is_monotonic, "temporality": sum.aggregation_temporality});
                        push(p.time_unix_nano, "sum", number(p.value), &p.attributes, detail);
                    }
                }
                Some(Data::Histogram(histogram)) => {
                    for p in &histogram.data_points {
                        let detail = json!({"count": p.count, "bucket_counts": p.bucket_counts,
                            "explicit_bounds": p.explicit_bounds, "min": p.min, "max": p.max});
                        push(p.time_unix_nano, "histogram", p.sum, &p.attributes, detail);
                    }
                }
                Some(Data::ExponentialHistogram(histogram)) => {
                    for p in &histogram.data_points {
                        let detail = json!({"count": p.count, "scale": p.scale, "zero_count": p.zero_count,
                            "min": p.min, "max": p.max});
                        push(p.time_unix_nano, "exponential_histogram", p.sum, &p.attributes, detail);
                    }
                }
                Some(Data::Summary(summary)) => {
                    for p in &summary.data_points {
                        let quantiles: Vec<_> = p
                            .quantile_values
                            .iter()
                            .map(|q| json!({"quantile": q.quantile, "value": q.value}))
                            .collect();
                        push(
                            p.time_unix_nano,
                            "summary",
                            Some(p.sum),
                            &p.attributes,
                            json!({"count": p.count, "quantiles": quantiles}),
                        );
                    }
                }
                None => {}
            }
        }
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_gauge_and_sum_points() {
        let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
          "scopeMetrics":[{"metrics":[{"name":"queue","unit":"1","gauge":{"dataPoints":[{"timeUnixNano":"5","asInt":"42"}]}},
          {"name":"requests","sum":{"isMonotonic":true,"aggregationTemporality":2,"dataPoints":[{"timeUnixNano":"6","asDouble":1.5}]}}]}]}]}"#;
        let points = prepare(MetricInput::Json(body.to_vec()), &IngestConfig::default()).unwrap();
        let summary: Vec<_> =
            points.iter().map(|p| (p.name.as_str(), p.kind.as_str(), p.value, p.time_unix_nano)).collect();
        assert_eq!(summary, vec![("queue", "gauge", Some(42.0), 5), ("requests", "sum", Some(1.5), 6)]);
        assert_eq!(points[0].service, "api");
    }
}
