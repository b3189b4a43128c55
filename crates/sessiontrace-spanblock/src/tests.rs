//! Round trips (realistic requests, generated requests, odd encodings, arbitrary bytes), the old plain
//! format, corrupt blocks, and that the columns are smaller than zstd of the protobuf.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span::Event};
use proptest::prelude::*;
use prost::Message;

use super::*;

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn request(resources: Vec<(String, Vec<Span>)>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: resources
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![attribute("service.name", &service)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope { name: "test".into(), ..Default::default() }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
    .encode_to_vec()
}

/// A pseudo-random generator, so the realistic block needs no extra dependency.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// 200 spans in traces of 20, shaped like what instrumented HTTP services send.
fn realistic(seed: u64) -> Vec<u8> {
    let mut rng = Lcg(seed);
    let mut spans = Vec::new();
    let base = 1_764_000_000_000_000_000u64;
    for trace in 0..10u64 {
        let trace_id = rng.bytes(16);
        let root = rng.bytes(8);
        for index in 0..20u64 {
            let start = base + trace * 1_000_000 + rng.next() % 50_000_000;
            spans.push(Span {
                trace_id: trace_id.clone(),
                span_id: if index == 0 { root.clone() } else { rng.bytes(8) },
                parent_span_id: if index == 0 { vec![] } else { root.clone() },
                name: format!("orders step {index}"),
                kind: 1 + (index % 3) as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 100_000 + rng.next() % 20_000_000,
                attributes: vec![
                    attribute("http.request.method", if index % 4 == 0 { "POST" } else { "GET" }),
                    attribute("url.path", &format!("/api/orders/{}", 1000 + rng.next() % 9000)),
                    attribute("http.route", "/api/orders/{id}"),
                    attribute("server.address", "orders.internal"),
                    attribute("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"),
                    attribute("thread.name", &format!("worker-{}", index % 8)),
                ],
                events: if index % 10 == 5 {
                    vec![Event {
                        time_unix_nano: start + 1000,
                        name: "cache.miss".into(),
                        attributes: vec![attribute("cache.key", &format!("sku:{}", rng.next() % 100_000))],
                        ..Default::default()
                    }]
                } else {
                    vec![]
                },
                ..Default::default()
            });
        }
    }
    request(vec![("orders".into(), spans)])
}

fn round_trip(request: &[u8]) -> Vec<u8> {
    let block = Encoder::new(1).unwrap().encode(request).unwrap();
    assert_eq!(decode(&block).unwrap(), request, "restored bytes differ");
    block
}

#[test]
fn a_realistic_block_is_split_restored_exactly_and_smaller_than_zstd_alone() {
    for seed in 1..5 {
        let bytes = realistic(seed);
        let block = round_trip(&bytes);
        assert_eq!(format(&block), Some(Format::Columns));
        let plain = zstd::bulk::compress(&bytes, 1).unwrap();
        assert!(
            block.len() * 100 < plain.len() * 90,
            "columns {} bytes, zstd of the protobuf {} bytes: expected at least 10% smaller",
            block.len(),
            plain.len()
        );
    }
}

#[test]
fn blocks_stored_before_the_column_format_still_decode() {
    let bytes = realistic(9);
    let plain = zstd::bulk::compress(&bytes, 1).unwrap();
    assert_eq!(format(&plain), Some(Format::Plain));
    assert_eq!(decode(&plain).unwrap(), bytes);
}

#[test]
fn bytes_that_are_not_a_request_are_stored_plain_and_restored() {
    for bytes in [b"not protobuf at all \xff\xff\xff".to_vec(), vec![0x0b, 0x01], vec![]] {
        let block = Encoder::new(1).unwrap().encode(&bytes).unwrap();
        if !bytes.is_empty() {
            assert_eq!(format(&block), Some(Format::Plain), "{bytes:?}");
        }
        assert_eq!(decode(&block).unwrap(), bytes);
    }
}

/// Encodes one field by hand: `tag` as given (canonical or not), then the value bytes.
fn field(tag: &[u8], value: &[u8]) -> Vec<u8> {
    [tag, value].concat()
}

fn length_delimited(tag: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    wire::put_varint(&mut out, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

/// A request of hand-written span bodies, each wrapped in ScopeSpans and ResourceSpans headers.
fn request_of_spans(spans: &[Vec<u8>]) -> Vec<u8> {
    let scope: Vec<u8> = spans.iter().flat_map(|span| length_delimited(&[0x12], span)).collect();
    let resource = length_delimited(&[0x12], &scope);
    length_delimited(&[0x0a], &resource)
}

#[test]
fn odd_but_valid_encodings_are_restored_byte_for_byte() {
    let trace = [7u8; 16];
    let id = [1u8; 8];
    let spans = vec![
        // Fields in reverse order, the parent before any span id, a duplicated trace id.
        [
            field(&[0x41], &9u64.to_le_bytes()),
            field(&[0x39], &5u64.to_le_bytes()),
            length_delimited(&[0x22], &id),
            length_delimited(&[0x12], &id),
            length_delimited(&[0x0a], &trace),
            length_delimited(&[0x0a], &[8u8; 16]),
        ]
        .concat(),
        // Non-canonical tags and lengths, ids of other sizes, an end before its start, unknown fields.
        [
            length_delimited(&[0x8a, 0x00], &trace),
            [vec![0x12, 0x88, 0x00], id.to_vec()].concat(),
            length_delimited(&[0x12], &[1, 2, 3]),
            length_delimited(&[0x0a], &[]),
            length_delimited(&[0x22], &id),
            field(&[0x41], &1u64.to_le_bytes()),
            field(&[0x39], &u64::MAX.to_le_bytes()),
            field(&[0xf8, 0x07], &[0x96, 0x01]),
            field(&[0x9d, 0x10], &[1, 2, 3, 4]),
        ]
        .concat(),
        // An empty span, and one with 300 fields (a field count of more than one byte).
        vec![],
        (0..300).flat_map(|n: u32| length_delimited(&[0x4a], &n.to_le_bytes())).collect(),
    ];
    let bytes = request_of_spans(&spans);
    assert_eq!(format(&round_trip(&bytes)), Some(Format::Columns));

    // A span whose own header has a non-canonical length (kept in the skeleton), beside a canonical one.
    let body = [length_delimited(&[0x0a], &trace), length_delimited(&[0x12], &id)].concat();
    let odd_header = [vec![0x12, 0x80 | body.len() as u8, 0x00], body.clone()].concat();
    let scope = [odd_header, length_delimited(&[0x12], &body)].concat();
    let bytes = length_delimited(&[0x0a], &length_delimited(&[0x12], &scope));
    assert_eq!(format(&round_trip(&bytes)), Some(Format::Columns));
}

#[test]
fn corrupt_column_blocks_are_errors_not_panics() {
    let block = Encoder::new(1).unwrap().encode(&realistic(3)).unwrap();
    assert!(decode(&[0x02, 1, 2]).is_err());
    assert!(decode(&block[..block.len() / 2]).is_err());
    // Valid zstd around columns that do not add up.
    let joined = zstd::stream::decode_all(&block[1..]).unwrap();
    for cut in [1, joined.len() / 3, joined.len() - 1] {
        let mut bad = vec![COLUMNS];
        bad.extend(zstd::bulk::compress(&joined[..cut], 1).unwrap());
        assert!(decode(&bad).is_err(), "cut at {cut}");
    }
}

#[test]
fn a_parent_reference_to_no_earlier_span_is_an_error() {
    // Joined columns by hand: length, then 10 sized columns; one span of one field, a parent reference.
    for back in [0u8, 1, 2] {
        let columns: [&[u8]; 10] = [&[], &[0], &[2, PARENT_REF], &[], &[], &[], &[back], &[], &[], &[]];
        let mut joined = vec![10];
        for column in columns {
            joined.push(column.len() as u8);
            joined.extend_from_slice(column);
        }
        let mut block = vec![COLUMNS];
        block.extend(zstd::bulk::compress(&joined, 1).unwrap());
        assert_eq!(decode(&block), Err(DecodeError::Corrupt("parent")), "back {back}");
    }
}

fn span_strategy() -> impl Strategy<Value = Span> {
    let id = |sizes: Vec<usize>| {
        prop::sample::select(sizes)
            .prop_flat_map(|n| prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 255]), n))
    };
    (
        id(vec![16, 16, 16, 0, 5]),
        id(vec![8, 8, 8, 0, 3]),
        id(vec![8, 8, 0]),
        any::<u64>(),
        prop_oneof![any::<u64>(), 0u64..1000],
        prop::collection::vec(
            (prop::sample::select(vec!["a", "http.route", "k"]), prop::sample::select(vec!["x", "/api", ""])),
            0..6,
        ),
        prop::sample::select(vec!["", "GET /", "step"]),
        0i32..6,
    )
        .prop_map(|(trace_id, span_id, parent_span_id, start, duration, attributes, name, kind)| Span {
            trace_id,
            span_id,
            parent_span_id,
            name: name.into(),
            kind,
            start_time_unix_nano: start,
            end_time_unix_nano: start.wrapping_add(duration),
            attributes: attributes.into_iter().map(|(k, v)| attribute(k, v)).collect(),
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn generated_requests_round_trip(
        resources in prop::collection::vec(
            (prop::sample::select(vec!["a", "b"]).prop_map(String::from), prop::collection::vec(span_strategy(), 0..40)),
            0..4,
        )
    ) {
        let bytes = request(resources);
        let block = Encoder::new(1).unwrap().encode(&bytes).unwrap();
        prop_assert_eq!(decode(&block).unwrap(), bytes);
    }

    #[test]
    fn arbitrary_bytes_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let block = Encoder::new(1).unwrap().encode(&bytes).unwrap();
        prop_assert_eq!(decode(&block).unwrap(), bytes);
    }

    #[test]
    fn damaged_blocks_never_panic(seed in 1u64..1000, flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let block = Encoder::new(1).unwrap().encode(&realistic(seed % 7 + 1)).unwrap();
        let mut joined = zstd::stream::decode_all(&block[1..]).unwrap();
        for (at, value) in flips {
            let at = at % joined.len();
            joined[at] ^= value | 1;
        }
        let mut damaged = vec![COLUMNS];
        damaged.extend(zstd::bulk::compress(&joined, 1).unwrap());
        let _ = decode(&damaged);
    }
}
