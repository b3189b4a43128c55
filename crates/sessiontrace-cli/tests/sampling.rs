//! End-to-end tests of issue 7 against the real binary: routing and sampling (session traces always
//! whole, error traces whole, the rest by a consistent probability), forwarding to upstream OTLP
//! endpoints (second sessiontrace instances) in every mode, through an outage and over TLS, and continuous
//! sessions (a rolling window saved by an error, an attribute or the API; nothing persisted without a
//! trigger). Spans are built by hand where the test needs exact timestamps or ids; the mixed-traffic
//! test uses the real Python OpenTelemetry SDK (`SESSIONTRACE_PYTHON`, skipped with a reason when unset).

mod support;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Kind};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::{Value, json};
use support::{RunningServer, free_port};

fn kv(key: &str, value: Kind) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

/// A deterministic stream of ids (xorshift), so failures replay.
struct Ids(u64);

impl Ids {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn trace_id(&mut self, prefix: &[u8]) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        id[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        id[..prefix.len()].copy_from_slice(prefix);
        id
    }
}

fn span(trace_id: [u8; 16], id: u64, parent: Option<u64>, start_ns: u64, end_ns: u64, error: bool) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: id.to_be_bytes().to_vec(),
        parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
        name: if parent.is_none() { "GET /root".into() } else { "child".into() },
        start_time_unix_nano: start_ns,
        end_time_unix_nano: end_ns,
        status: error.then(|| Status { code: StatusCode::Error as i32, message: "boom".into() }),
        ..Default::default()
    }
}

fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", Kind::StringValue(service.into()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn post(url: &str, body: Vec<u8>) {
    let response = reqwest::blocking::Client::new()
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .unwrap();
    assert!(response.status().is_success(), "POST {url} answered {}", response.status());
}

fn post_traces(otlp_http: &str, request: ExportTraceServiceRequest) {
    post(&format!("{otlp_http}/v1/traces"), request.encode_to_vec());
}

/// An INFO log record with a text body, in a trace or not.
fn log_record(trace_id: Option<[u8; 16]>, at_ns: u64, body: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: at_ns,
        severity_number: 9,
        body: Some(AnyValue { value: Some(Kind::StringValue(body.into())) }),
        trace_id: trace_id.map(|t| t.to_vec()).unwrap_or_default(),
        ..Default::default()
    }
}

fn post_logs(otlp_http: &str, log_records: Vec<LogRecord>) {
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records, ..Default::default() }],
            ..Default::default()
        }],
    };
    post(&format!("{otlp_http}/v1/logs"), request.encode_to_vec());
}

fn get(url: &str) -> Value {
    let response = reqwest::blocking::get(url).unwrap();
    assert!(response.status().is_success(), "GET {url} answered {}", response.status());
    response.json().unwrap()
}

/// Span count of a stored trace, `None` when nothing of it is stored.
fn stored_spans(api: &str, trace_id: &[u8; 16]) -> Option<usize> {
    let response = reqwest::blocking::get(format!("{api}/api/traces/{}", hex::encode(trace_id))).unwrap();
    if response.status() == 404 {
        return None;
    }
    assert!(response.status().is_success());
    Some(response.json::<Value>().unwrap()["spans"].as_array().unwrap().len())
}

/// `/metrics` as `name{labels}` → value.
fn metrics(api: &str) -> HashMap<String, u64> {
    let text = reqwest::blocking::get(format!("{api}/metrics")).unwrap().text().unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(name, value)| (name.to_string(), value.parse().unwrap()))
        .collect()
}

fn metric(api: &str, name: &str) -> u64 {
    metrics(api).get(name).copied().unwrap_or_else(|| panic!("no metric {name}"))
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn start_session(api: &str, kind: &str) -> Value {
    let response = reqwest::blocking::Client::new()
        .post(format!("{api}/api/sessions"))
        .json(&json!({"kind": kind}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().unwrap()
}

fn session_prefix(session: &Value) -> Vec<u8> {
    hex::decode(session["trace_id_prefix"].as_str().unwrap()).unwrap()
}

/// Ratio 0.0 and the Python SDK sending session, error and plain traces concurrently over OTLP/HTTP and
/// OTLP/gRPC: every session span is stored, every error trace whole, no plain span.
#[test]
fn ratio_zero_keeps_sessions_and_whole_error_traces_from_the_python_sdk() {
    let Some(python) = support::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start_with(dir.path(), &["--sampling-ratio", "0.0", "--decision-wait-ms", "3000"]);
    let session = start_session(&server.api, "manual");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sampling_load.py");
    let started = Instant::now();
    let output = Command::new(python)
        .arg(script)
        .args(["--http", &server.otlp_http, "--grpc", &server.otlp_grpc])
        .args(["--prefix", session["trace_id_prefix"].as_str().unwrap()])
        .args(["--sessions", "1000", "--others", "10000", "--error-every", "10"])
        .output()
        .expect("run the python load");
    assert!(output.status.success(), "python load failed: {}", String::from_utf8_lossy(&output.stderr));
    let sent: Value = serde_json::from_slice(&output.stdout).unwrap();
    let count = |kind: &str| -> (usize, u64) {
        let traces = sent[kind].as_object().unwrap();
        (traces.len(), traces.values().map(|v| v.as_u64().unwrap()).sum())
    };
    let ((session_traces, session_spans), (error_traces, error_spans), (plain_traces, plain_spans)) =
        (count("session"), count("error"), count("plain"));
    assert_eq!((session_traces, error_traces, plain_traces), (1000, 1000, 9000));
    eprintln!("python sent {} spans in {:?}", session_spans + error_spans + plain_spans, started.elapsed());

    let received = session_spans + error_spans + plain_spans;
    wait_for("every span received", Duration::from_secs(30), || {
        metric(&server.api, "sessiontrace_spans_received_total") == received
    });
    // Plain traces are held for the decision wait, then dropped; nothing may stay pending.
    wait_for("the tail buffer to drain", Duration::from_secs(30), || {
        metric(&server.api, "sessiontrace_tail_pending_traces") == 0
    });
    let counters = metrics(&server.api);
    assert_eq!(counters["sessiontrace_spans_kept_total{reason=\"session\"}"], session_spans);
    assert_eq!(counters["sessiontrace_spans_kept_total{reason=\"error\"}"], error_spans);
    assert_eq!(counters["sessiontrace_spans_dropped_total{reason=\"probability\"}"], plain_spans);
    assert_eq!(counters["sessiontrace_spans_dropped_total{reason=\"early\"}"], 0);
    assert_eq!(counters["sessiontrace_spans_stored_total"], session_spans + error_spans);

    let shown = get(&format!("{}/api/sessions/{}", server.api, session["id"].as_str().unwrap()));
    assert_eq!(shown["counts"]["spans"].as_u64().unwrap(), session_spans, "every session span is stored");
    for (trace_id, spans) in sent["error"].as_object().unwrap() {
        let id: [u8; 16] = hex::decode(trace_id).unwrap().try_into().unwrap();
        assert_eq!(stored_spans(&server.api, &id), Some(spans.as_u64().unwrap() as usize), "error trace {trace_id}");
    }
    for trace_id in sent["plain"].as_object().unwrap().keys().take(300) {
        let id: [u8; 16] = hex::decode(trace_id).unwrap().try_into().unwrap();
        assert_eq!(stored_spans(&server.api, &id), None, "plain trace {trace_id} was stored");
    }
}

/// Two replicas with the same ratio keep exactly the same trace ids.
#[test]
fn two_instances_with_the_same_ratio_keep_the_same_traces() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let flags = ["--sampling-ratio", "0.3", "--decision-wait-ms", "0"];
    let (a, b) = (RunningServer::start_with(dir_a.path(), &flags), RunningServer::start_with(dir_b.path(), &flags));
    let mut ids = Ids(0x5eed_1234_abcd_0001);
    let traces: Vec<[u8; 16]> = (0..1_000).map(|_| ids.trace_id(&[])).collect();
    let t0 = now_ns();
    for chunk in traces.chunks(100) {
        let spans: Vec<Span> = chunk
            .iter()
            .enumerate()
            .flat_map(|(n, id)| {
                let root = n as u64 * 2 + 1;
                [span(*id, root, None, t0, t0 + 1_000, false), span(*id, root + 1, Some(root), t0, t0 + 500, false)]
            })
            .collect();
        let request = request("replica-test", spans);
        post_traces(&a.otlp_http, request.clone());
        post_traces(&b.otlp_http, request);
    }
    let kept = |server: &RunningServer| -> BTreeSet<[u8; 16]> {
        traces.iter().filter(|id| stored_spans(&server.api, id).is_some()).copied().collect()
    };
    let (kept_a, kept_b) = (kept(&a), kept(&b));
    assert_eq!(kept_a, kept_b, "replicas decided differently");
    assert!((200..400).contains(&kept_a.len()), "ratio 0.3 kept {} of 1000", kept_a.len());
    for id in &kept_a {
        assert_eq!(stored_spans(&a.api, id), Some(2), "a kept trace is whole");
    }
    assert_eq!(metric(&a.api, "sessiontrace_spans_stored_total"), kept_a.len() as u64 * 2);
}

/// Forwarding in the three modes to upstream instances over HTTP and gRPC, one upstream that is down
/// and comes back, and one that stays down: the counts add up and local storage is unaffected.
#[test]
fn forwarding_modes_and_an_upstream_outage() {
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let up_all = RunningServer::start(dirs[0].path());
    let up_non_session = RunningServer::start(dirs[1].path());
    let up_kept = RunningServer::start(dirs[2].path());
    let (late_http, late_otlp_http, late_grpc) = (free_port(), free_port(), free_port());
    let down_port = free_port();
    let forwards = [
        format!("{},mode=all,name=all,compression=zstd", up_all.otlp_http),
        format!(
            "{},mode=non-session,protocol=grpc,name=non-session,header=x-api-key:secret,compression=zstd",
            up_non_session.otlp_grpc
        ),
        format!("{},mode=kept,name=kept,gzip=false", up_kept.otlp_http),
        format!("http://127.0.0.1:{late_otlp_http},mode=kept,name=late,retries=40"),
        format!("http://127.0.0.1:{down_port},mode=kept,name=down,retries=1,queue=4"),
    ];
    let mut flags = vec!["--sampling-ratio", "0.0", "--decision-wait-ms", "0"];
    for forward in &forwards {
        flags.extend(["--forward", forward.as_str()]);
    }
    let downstream = RunningServer::start_with(dirs[3].path(), &flags);

    let mut ids = Ids(0xf0f0_1234_5678_9abc);
    let session_prefix = [0xde, 0xbd, 0xeb, 0x0a, 0x0b, 0x0c, 0x0d];
    let t0 = now_ns();
    let (mut session_spans, mut plain_spans, mut error_spans) = (0u64, 0u64, 0u64);
    for _ in 0..20 {
        let mut spans = Vec::new();
        for _ in 0..5 {
            let id = ids.trace_id(&session_prefix);
            spans.extend((1..=3).map(|n| span(id, n, (n > 1).then_some(1), t0, t0 + 1_000, false)));
            session_spans += 3;
        }
        for _ in 0..10 {
            let id = ids.trace_id(&[]);
            spans.extend([span(id, 1, None, t0, t0 + 1_000, false), span(id, 2, Some(1), t0, t0 + 10, false)]);
            plain_spans += 2;
        }
        for _ in 0..2 {
            let id = ids.trace_id(&[]);
            spans.extend([span(id, 1, None, t0, t0 + 1_000, false), span(id, 2, Some(1), t0, t0 + 10, true)]);
            error_spans += 2;
        }
        post_traces(&downstream.otlp_http, request("forwarded", spans));
    }
    let session_trace = ids.trace_id(&session_prefix);
    let plain_trace = ids.trace_id(&[]);
    post_logs(
        &downstream.otlp_http,
        vec![
            log_record(Some(session_trace), t0, "session"),
            log_record(Some(plain_trace), t0, "plain"),
            log_record(None, t0, "untraced"),
        ],
    );

    let kept_spans = session_spans + error_spans;
    let everything = kept_spans + plain_spans;
    // Local storage first: the downstream kept what the policy says, whatever the upstreams do.
    let local = metrics(&downstream.api);
    assert_eq!(local["sessiontrace_spans_stored_total"], kept_spans);
    assert_eq!(local["sessiontrace_logs_stored_total"], 2);

    let received = |server: &str, signal: &str| metric(server, &format!("sessiontrace_{signal}_received_total"));
    let expectations = [
        (&up_all.api, everything, 3),
        (&up_non_session.api, plain_spans + error_spans, 2),
        (&up_kept.api, kept_spans, 2),
    ];
    for (api, spans, logs) in expectations {
        wait_for("an upstream to receive its share", Duration::from_secs(30), || {
            received(api, "spans") == spans && received(api, "logs") == logs
        });
    }
    // The non-session upstream got no session span; the kept upstream no plain span.
    assert_eq!(metric(&up_non_session.api, "sessiontrace_spans_kept_total{reason=\"session\"}"), 0);
    assert_eq!(metric(&up_kept.api, "sessiontrace_spans_kept_total{reason=\"session\"}"), session_spans);

    let forward = |name: &str, upstream: &str| {
        metric(&downstream.api, &format!("sessiontrace_forward_{name}{{upstream=\"{upstream}\",signal=\"traces\"}}"))
    };
    // The upstream that stays down: everything offered is counted as failed or as not queued.
    wait_for("the down upstream to give up", Duration::from_secs(30), || {
        forward("failed_total", "down") == forward("enqueued_total", "down")
    });
    assert_eq!(forward("enqueued_total", "down") + forward("queue_full_total", "down"), kept_spans);
    assert!(forward("failed_total", "down") > 0);
    assert_eq!(forward("sent_total", "down"), 0);

    // The late upstream comes up after its first attempts failed, and gets everything from its queue.
    std::thread::sleep(Duration::from_secs(1));
    assert!(metric(&downstream.api, "sessiontrace_forward_retries_total{upstream=\"late\",signal=\"traces\"}") > 0);
    let late = RunningServer::start_on(dirs[4].path(), (late_http, late_otlp_http, late_grpc), &[]);
    wait_for("the late upstream to catch up", Duration::from_secs(60), || {
        metric(&late.api, "sessiontrace_spans_received_total") == kept_spans
    });
    // The upstream counts a request before it answers; the sender counts it after the answer.
    wait_for("the sender to count it", Duration::from_secs(10), || forward("sent_total", "late") == kept_spans);
    assert_eq!(forward("failed_total", "late") + forward("queue_full_total", "late"), 0);
    for upstream in ["all", "non-session", "kept"] {
        assert_eq!(forward("sent_total", upstream), forward("enqueued_total", upstream), "{upstream}");
    }
    assert_eq!(forward("sent_total", "all"), everything);
}

/// `kept` mode with a tail decision: a plain trace's log and spans are held; when its error span arrives
/// they are stored and forwarded, logs included. A log arriving after its trace was kept, and a log
/// without a trace, are forwarded at once; a held trace that is never kept is neither stored nor
/// forwarded.
#[test]
fn kept_mode_forwards_logs_released_by_a_tail_decision() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let upstream = RunningServer::start(dirs[0].path());
    let forward = format!("{},mode=kept,name=kept", upstream.otlp_http);
    let flags = ["--sampling-ratio", "0.0", "--decision-wait-ms", "60000", "--forward", forward.as_str()];
    let downstream = RunningServer::start_with(dirs[1].path(), &flags);
    let mut ids = Ids(0x0bad_cafe_0000_0007);
    let (late, early, never) = (ids.trace_id(&[]), ids.trace_id(&[]), ids.trace_id(&[]));
    let t0 = now_ns();

    // `late`: a log and two spans, held; then an error span keeps the trace.
    post_logs(&downstream.otlp_http, vec![log_record(Some(late), t0, "held until the error")]);
    post_traces(
        &downstream.otlp_http,
        request("api", vec![span(late, 1, None, t0, t0 + 1_000, false), span(late, 2, Some(1), t0, t0 + 10, false)]),
    );
    post_logs(&downstream.otlp_http, vec![log_record(Some(never), t0, "never kept")]);
    assert_eq!(metric(&downstream.api, "sessiontrace_tail_pending_traces"), 2);
    post_traces(&downstream.otlp_http, request("api", vec![span(late, 3, Some(1), t0, t0 + 10, true)]));
    // `early`: kept by its error span first; its log comes after.
    post_traces(&downstream.otlp_http, request("api", vec![span(early, 1, None, t0, t0 + 10, true)]));
    post_logs(
        &downstream.otlp_http,
        vec![log_record(Some(early), t0, "after the trace was kept"), log_record(None, t0, "no trace")],
    );

    assert_eq!(stored_spans(&downstream.api, &late), Some(3));
    assert_eq!(metric(&downstream.api, "sessiontrace_logs_stored_total"), 3);
    wait_for("the upstream to get the kept spans and logs", Duration::from_secs(30), || {
        metric(&upstream.api, "sessiontrace_spans_received_total") == 4
            && metric(&upstream.api, "sessiontrace_logs_received_total") == 3
    });
    assert_eq!(stored_spans(&upstream.api, &late), Some(3), "the released spans were forwarded whole");
    assert_eq!(stored_spans(&upstream.api, &never), None);
    let bodies: BTreeSet<String> = get(&format!("{}/api/logs?limit=100", upstream.api))["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|log| log["body"].as_str().unwrap().to_string())
        .collect();
    let expected = ["held until the error", "after the trace was kept", "no trace"];
    assert_eq!(bodies, expected.iter().map(|b| b.to_string()).collect());
    wait_for("the sender to count the three logs", Duration::from_secs(10), || {
        metric(&downstream.api, "sessiontrace_forward_sent_total{upstream=\"kept\",signal=\"logs\"}") == 3
    });
}

/// Test certificates as PEM files: a CA, a server certificate for `localhost` and 127.0.0.1 and a client
/// certificate signed by it, and a second CA that signed nothing here.
struct TestPki {
    ca: PathBuf,
    other_ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
}

impl TestPki {
    fn write(dir: &Path) -> Self {
        let new_ca = |name: &str| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
            let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
            let path = dir.join(format!("{name}.pem"));
            std::fs::write(&path, ca.pem()).unwrap();
            (ca, path)
        };
        let (ca, ca_path) = new_ca("test-ca");
        let (_, other_ca) = new_ca("other-ca");
        let leaf = |name: &str, subject_alt_names: &[&str]| {
            let key = rcgen::KeyPair::generate().unwrap();
            let names: Vec<String> = subject_alt_names.iter().map(|n| n.to_string()).collect();
            let cert = rcgen::CertificateParams::new(names).unwrap().signed_by(&key, &ca).unwrap();
            let paths = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
            std::fs::write(&paths.0, cert.pem()).unwrap();
            std::fs::write(&paths.1, key.serialize_pem()).unwrap();
            paths
        };
        let server = leaf("server", &["localhost", "127.0.0.1"]);
        let client = leaf("client", &["client.test"]);
        TestPki { ca: ca_path, other_ca, server, client }
    }
}

/// A TLS-terminating proxy in front of a plain port, as a load balancer in front of an APM would be: it
/// requires a client certificate signed by the test CA, offers h2 and http/1.1, and copies bytes both
/// ways. Returns its port.
fn start_tls_proxy(runtime: &tokio::runtime::Runtime, pki: &TestPki, target: String) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(&pki.ca).unwrap()).unwrap();
    let client_verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone()).build().unwrap();
    let certs = CertificateDer::pem_file_iter(&pki.server.0).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(&pki.server.1).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, target) = (acceptor.clone(), target.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&target).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

/// Forwarding to `https://` upstreams over OTLP/HTTP and OTLP/gRPC through TLS proxies that require a
/// client certificate: with the private CA in `ca_file` and the client certificate every span and log
/// arrives; an upstream whose certificate the configured CA did not sign, and one reached without a
/// client certificate, count every item as failed; local storage is the same either way.
#[test]
fn forwarding_over_tls_with_a_private_ca_and_a_client_certificate() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::write(pki_dir.path());
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let up_http = RunningServer::start(dirs[0].path());
    let up_grpc = RunningServer::start(dirs[1].path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let address = |url: &str| url.trim_start_matches("http://").to_string();
    let http_proxy = start_tls_proxy(&runtime, &pki, address(&up_http.otlp_http));
    let grpc_proxy = start_tls_proxy(&runtime, &pki, address(&up_grpc.otlp_grpc));
    let path = |p: &PathBuf| p.to_str().unwrap().to_string();
    let identity = format!("cert={},key={}", path(&pki.client.0), path(&pki.client.1));
    let forwards = [
        format!("https://localhost:{http_proxy},name=tls-http,ca={},{identity}", path(&pki.ca)),
        format!("https://127.0.0.1:{grpc_proxy},protocol=grpc,name=tls-grpc,ca={},{identity}", path(&pki.ca)),
        format!("https://localhost:{http_proxy},name=untrusted,retries=0,ca={},{identity}", path(&pki.other_ca)),
        format!("https://127.0.0.1:{grpc_proxy},protocol=grpc,name=no-client-cert,retries=0,ca={}", path(&pki.ca)),
    ];
    let mut flags = Vec::new();
    for forward in &forwards {
        flags.extend(["--forward", forward.as_str()]);
    }
    let downstream = RunningServer::start_with(dirs[2].path(), &flags);

    let mut ids = Ids(0x7153_7153_0000_0001);
    let t0 = now_ns();
    let mut sent_spans = 0u64;
    let mut trace_ids = Vec::new();
    for _ in 0..10 {
        let mut spans = Vec::new();
        for _ in 0..5 {
            let id = ids.trace_id(&[]);
            spans.extend((1..=3).map(|n| span(id, n, (n > 1).then_some(1), t0, t0 + 1_000, false)));
            sent_spans += 3;
            trace_ids.push(id);
        }
        post_traces(&downstream.otlp_http, request("over-tls", spans));
    }
    post_logs(&downstream.otlp_http, vec![log_record(Some(trace_ids[0]), t0, "over tls")]);
    assert_eq!(metric(&downstream.api, "sessiontrace_spans_stored_total"), sent_spans);

    for upstream in [&up_http, &up_grpc] {
        wait_for("an upstream behind TLS to receive everything", Duration::from_secs(30), || {
            metric(&upstream.api, "sessiontrace_spans_received_total") == sent_spans
                && metric(&upstream.api, "sessiontrace_logs_received_total") == 1
        });
        for id in &trace_ids {
            assert_eq!(stored_spans(&upstream.api, id), Some(3), "a forwarded trace arrives whole");
        }
    }
    let forward = |name: &str, upstream: &str, signal: &str| {
        metric(&downstream.api, &format!("sessiontrace_forward_{name}{{upstream=\"{upstream}\",signal=\"{signal}\"}}"))
    };
    for upstream in ["tls-http", "tls-grpc"] {
        // The upstream counts a request before it answers; the sender counts it after the answer.
        wait_for("the sender to count what the upstream got", Duration::from_secs(10), || {
            forward("sent_total", upstream, "traces") == sent_spans && forward("sent_total", upstream, "logs") == 1
        });
        assert_eq!(forward("failed_total", upstream, "traces"), 0, "{upstream}");
    }
    for upstream in ["untrusted", "no-client-cert"] {
        wait_for("a refused upstream to give up", Duration::from_secs(30), || {
            forward("failed_total", upstream, "traces") + forward("queue_full_total", upstream, "traces") == sent_spans
        });
        assert!(forward("failed_total", upstream, "traces") > 0, "{upstream}");
        assert_eq!(forward("sent_total", upstream, "traces"), 0, "{upstream}");
    }
}

fn continuous_span(
    trace_id: [u8; 16],
    at_ns: u64,
    error: bool,
    attributes: Vec<KeyValue>,
) -> ExportTraceServiceRequest {
    let mut root = span(trace_id, 1, None, at_ns - 5_000_000, at_ns, error);
    root.attributes = attributes;
    request("continuous-test", vec![root])
}

fn counts(api: &str, session: &Value) -> (u64, u64, usize) {
    let id = session["id"].as_str().unwrap();
    let shown = get(&format!("{api}/api/sessions/{id}"));
    let events = get(&format!("{api}/api/sessions/{id}/events"));
    (
        shown["counts"]["spans"].as_u64().unwrap(),
        shown["counts"]["logs"].as_u64().unwrap(),
        events["events"].as_array().unwrap().len(),
    )
}

fn replay(api: &str, session: &Value, seq: u64, at_ms: u64) {
    let body = json!({"seq": seq, "events": [{"type": 3, "timestamp": at_ms, "data": {}}, {"type": 3, "timestamp": at_ms + 5, "data": {}}]});
    let id = session["id"].as_str().unwrap();
    let response =
        reqwest::blocking::Client::new().post(format!("{api}/api/sessions/{id}/events")).json(&body).send().unwrap();
    assert!(response.status().is_success());
}

fn continuous_log(otlp_http: &str, trace_id: [u8; 16], at_ns: u64) {
    post_logs(otlp_http, vec![log_record(Some(trace_id), at_ns, "in the window")]);
}

/// Continuous sessions with a 90 s window, on the data's own clock: an error 60 s in saves what came
/// before (spans, a log, replay) but not what left the window; later data is written through; a session
/// without a trigger persists nothing; an auto-save attribute and the save API save too.
#[test]
fn continuous_sessions_are_saved_by_a_trigger_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start_with(dir.path(), &["--continuous-window-secs", "90"]);
    let (api, otlp) = (server.api.as_str(), server.otlp_http.as_str());
    let mut ids = Ids(0xc0c0_7777_1234_0001);
    let t0 = now_ns() - 600 * 1_000_000_000;
    let s = |secs: i64| (t0 as i64 + secs * 1_000_000_000) as u64;

    let saved_by_error = start_session(api, "continuous");
    let untriggered = start_session(api, "continuous");
    for session in [&saved_by_error, &untriggered] {
        let prefix = session_prefix(session);
        // 100 s before the error: out of the 90 s window when the error comes.
        post_traces(otlp, continuous_span(ids.trace_id(&prefix), s(-40), false, vec![]));
        for secs in [0, 20, 40] {
            post_traces(otlp, continuous_span(ids.trace_id(&prefix), s(secs), false, vec![]));
        }
        continuous_log(otlp, ids.trace_id(&prefix), s(30));
        replay(api, session, 0, s(10) / 1_000_000);
    }
    assert_eq!(counts(api, &saved_by_error), (0, 0, 0), "held, not stored, before a trigger");
    assert_eq!(metric(api, "sessiontrace_continuous_held_total{signal=\"spans\"}"), 8);

    post_traces(otlp, continuous_span(ids.trace_id(&session_prefix(&saved_by_error)), s(60), true, vec![]));
    assert_eq!(counts(api, &saved_by_error), (4, 1, 2), "the error span and the 3 spans, log and replay before it");
    let shown = get(&format!("{api}/api/sessions/{}", saved_by_error["id"].as_str().unwrap()));
    assert!(shown["saved_at_ms"].is_i64(), "{shown}");
    // After the trigger the session is written through.
    post_traces(otlp, continuous_span(ids.trace_id(&session_prefix(&saved_by_error)), s(70), false, vec![]));
    replay(api, &saved_by_error, 1, s(71) / 1_000_000);
    assert_eq!(counts(api, &saved_by_error), (5, 1, 4));

    // No trigger: nothing persisted.
    post_traces(otlp, continuous_span(ids.trace_id(&session_prefix(&untriggered)), s(60), false, vec![]));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(counts(api, &untriggered), (0, 0, 0));
    let shown = get(&format!("{api}/api/sessions/{}", untriggered["id"].as_str().unwrap()));
    assert!(shown["saved_at_ms"].is_null());
    // The span 100 s before the newest left each session's window.
    assert_eq!(metric(api, "sessiontrace_continuous_expired_total{signal=\"spans\"}"), 2);

    // The auto-save attribute, in either spelling, saves like an error.
    for key in ["session.auto_save", "multiplayer.session.auto-save"] {
        let session = start_session(api, "continuous");
        let prefix = session_prefix(&session);
        post_traces(otlp, continuous_span(ids.trace_id(&prefix), s(0), false, vec![]));
        let attribute =
            if key == "session.auto_save" { Kind::BoolValue(true) } else { Kind::StringValue("true".into()) };
        post_traces(otlp, continuous_span(ids.trace_id(&prefix), s(5), false, vec![kv(key, attribute)]));
        assert_eq!(counts(api, &session).0, 2, "{key}");
    }

    // The save API writes the window.
    let saved_by_api = start_session(api, "continuous");
    post_traces(otlp, continuous_span(ids.trace_id(&session_prefix(&saved_by_api)), s(0), false, vec![]));
    replay(api, &saved_by_api, 0, s(1) / 1_000_000);
    assert_eq!(counts(api, &saved_by_api), (0, 0, 0));
    let id = saved_by_api["id"].as_str().unwrap();
    let response = reqwest::blocking::Client::new().post(format!("{api}/api/sessions/{id}/save")).send().unwrap();
    assert!(response.status().is_success());
    assert_eq!(counts(api, &saved_by_api), (1, 0, 2));
    assert_eq!(metric(api, "sessiontrace_continuous_saves_total"), 4);
}
