//! Starts the real `sessiontrace` binary on free loopback ports for end-to-end tests, and stops it with
//! SIGKILL when the test is done (or when a test wants a crash).
//!
//! With `SESSIONTRACE_TEST_STORE=clickhouse` (and `SESSIONTRACE_CLICKHOUSE_URL`, which the binary reads
//! too) every server uses the ClickHouse store, one database per data folder, unless the test passes
//! its own `--store`.

#![allow(dead_code)]

use std::net::TcpListener;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Kind};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process.
pub struct RunningServer {
    child: Child,
    pub api: String,
    pub otlp_http: String,
    pub otlp_grpc: String,
}

/// A string attribute.
pub fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Kind::StringValue(value.into())) }),
        ..Default::default()
    }
}

/// An OTLP protobuf export body (`/v1/traces`): `spans` of one service.
pub fn export_body(service: &str, spans: Vec<Span>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attribute("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// The Python of the virtual environment `.ci/run` builds (`SESSIONTRACE_PYTHON`: opentelemetry-sdk and
/// the OTLP exporters), or `None` after saying that the test is skipped.
pub fn python() -> Option<String> {
    let python = std::env::var("SESSIONTRACE_PYTHON").ok();
    if python.is_none() {
        eprintln!("skipped: SESSIONTRACE_PYTHON is not set (.ci/run sets it to a venv with opentelemetry-sdk)");
    }
    python
}

/// A port that was free a moment ago and that this test process has not handed out before (the kernel
/// may return a just-closed port again; two servers of one test given the same port would not start).
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut handed_out = HANDED_OUT.lock().unwrap();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// Whether the test servers use ClickHouse (`SESSIONTRACE_TEST_STORE=clickhouse`).
pub fn uses_clickhouse() -> bool {
    std::env::var("SESSIONTRACE_TEST_STORE").as_deref() == Ok("clickhouse")
}

/// `--store clickhouse --clickhouse-database <one per data folder>` when `SESSIONTRACE_TEST_STORE=clickhouse`.
pub fn test_store_flags(data_dir: &Path) -> Vec<String> {
    if std::env::var("SESSIONTRACE_TEST_STORE").as_deref() != Ok("clickhouse") {
        return Vec::new();
    }
    assert!(
        std::env::var("SESSIONTRACE_CLICKHOUSE_URL").is_ok_and(|url| !url.is_empty()),
        "SESSIONTRACE_TEST_STORE=clickhouse needs SESSIONTRACE_CLICKHOUSE_URL"
    );
    // FNV-1a of the folder: a restarted server (the crash test) finds its data again.
    let hash = data_dir
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
    vec!["--store".into(), "clickhouse".into(), "--clickhouse-database".into(), format!("st_e2e_{hash:016x}")]
}

impl RunningServer {
    /// Starts `sessiontrace serve` on the data folder and waits until it answers `/healthz`.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// Like [`start`](Self::start), with extra `serve` flags.
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_on(data_dir, (free_port(), free_port(), free_port()), extra)
    }

    /// Like [`start_with`](Self::start_with), on the given API, OTLP/HTTP and OTLP/gRPC ports (a server
    /// that must come back on the same address).
    pub fn start_on(data_dir: &Path, ports: (u16, u16, u16), extra: &[&str]) -> Self {
        Self::start_logged(data_dir, ports, extra, None)
    }

    /// Like [`start_on`](Self::start_on), writing the server's log (at debug level) to `log` when given. A
    /// server started with `--tls-cert` is not waited for: the caller checks readiness over TLS.
    pub fn start_logged(data_dir: &Path, ports: (u16, u16, u16), extra: &[&str], log: Option<&Path>) -> Self {
        Self::start_program(Path::new(env!("CARGO_BIN_EXE_sessiontrace")), None, data_dir, ports, extra, log)
    }

    /// Like [`start_logged`](Self::start_logged), running `program` (a copy of the binary) in the working
    /// directory `cwd` when given.
    pub fn start_program(
        program: &Path,
        cwd: Option<&Path>,
        data_dir: &Path,
        (http, otlp_http, otlp_grpc): (u16, u16, u16),
        extra: &[&str],
        log: Option<&Path>,
    ) -> Self {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create the log file")),
            None => Stdio::inherit(),
        };
        let mut command = Command::new(program);
        if let Some(dir) = cwd {
            command.current_dir(dir);
        }
        let child = command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--http", &format!("127.0.0.1:{http}")])
            .args(["--otlp-http", &format!("127.0.0.1:{otlp_http}")])
            .args(["--otlp-grpc", &format!("127.0.0.1:{otlp_grpc}")])
            .args(extra)
            .args(if extra.contains(&"--store") { Vec::new() } else { test_store_flags(data_dir) })
            .env("SESSIONTRACE_LOG", if log.is_some() { "debug" } else { "warn" })
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start sessiontrace serve");
        let server = RunningServer {
            child,
            api: format!("http://127.0.0.1:{http}"),
            otlp_http: format!("http://127.0.0.1:{otlp_http}"),
            otlp_grpc: format!("http://127.0.0.1:{otlp_grpc}"),
        };
        if !extra.contains(&"--tls-cert") {
            server.wait_ready();
        }
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::blocking::Client::new();
        while Instant::now() < deadline {
            let api = client.get(format!("{}/healthz", self.api)).send().is_ok_and(|r| r.status().is_success());
            let otlp = client.get(format!("{}/healthz", self.otlp_http)).send().is_ok_and(|r| r.status().is_success());
            let grpc_port = self.otlp_grpc.rsplit(':').next().unwrap();
            let grpc = std::net::TcpStream::connect(format!("127.0.0.1:{grpc_port}")).is_ok();
            if api && otlp && grpc {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sessiontrace serve did not become ready within 30 s");
    }

    /// Stops the process with SIGTERM, as a service manager would, and returns its exit status
    /// (`None` if it had not exited within 30 s; it is then killed).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait for sessiontrace") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.kill();
    }
}
