//! "Prove it does not fall over" (issue 17), end to end against the real binary:
//! - every field of `POST /api/sessions` is bounded: over a limit is a 400 naming the field and the limit,
//!   a body over 64 KiB is a 413, and nothing over a limit is stored;
//! - a second `serve` on a data directory refuses to start, naming it; a SIGKILL releases the lock;
//! - slow clients cannot hold the server: headers sent a byte at a time are cut at the header read
//!   timeout, a body that stops or trickles gets 408 at the body timeout, idle connections beyond the
//!   connection limit wait only until the timeout frees a slot, and other requests are served meanwhile;
//! - the gRPC listener has the same bounds: silent connections are closed at the header timeout, and
//!   beyond `max_connections` open gRPC channels the next one waits until a slot frees.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use support::RunningServer;

fn start_session(client: &Client, server: &RunningServer, body: &Value) -> (StatusCode, Value) {
    let response = client.post(format!("{}/api/sessions", server.api)).json(body).send().unwrap();
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn session_fields_are_bounded() {
    let data = tempfile::tempdir().unwrap();
    let server = RunningServer::start(data.path());
    let client = Client::new();

    let at_the_limits = json!({
        "name": "n".repeat(1024),
        "user": {"id": "u".repeat(1024)},
        "attributes": (0..64).map(|i| (format!("k{i}"), json!(i))).collect::<serde_json::Map<_, _>>(),
        "tags": (0..64).map(|i| format!("t{i}")).collect::<Vec<_>>(),
    });
    let (status, session) = start_session(&client, &server, &at_the_limits);
    assert_eq!(status, StatusCode::CREATED, "{session}");

    let over = [
        (json!({"name": "n".repeat(1025)}), "name", 1024, "bytes"),
        (json!({"user": {"email": "e".repeat(1025)}}), "user.email", 1024, "bytes"),
        (json!({"user": "u".repeat(2000)}), "user", 1024, "bytes"),
        (json!({"tags": (0..65).map(|i| format!("t{i}")).collect::<Vec<_>>()}), "tags", 64, "entries"),
        (json!({"tags": ["ok", "t".repeat(1025)]}), "tags[1]", 1024, "bytes"),
        (
            json!({"attributes": (0..65).map(|i| (format!("k{i}"), json!(i))).collect::<serde_json::Map<_, _>>()}),
            "attributes",
            64,
            "entries",
        ),
        (json!({"attributes": {"plan": "p".repeat(1025)}}), "attributes.plan", 1024, "bytes"),
        (json!({"attributes": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}), "attributes.a.b.c.d.e", 4, "depth"),
    ];
    for (body, field, limit, unit) in over {
        let (status, error) = start_session(&client, &server, &body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {error}");
        assert_eq!(error["field"], field, "{error}");
        assert_eq!(error["limit"], limit, "{error}");
        assert_eq!(error["unit"], unit, "{error}");
        let message = error["error"].as_str().unwrap();
        assert!(message.starts_with(field) && message.contains(&limit.to_string()), "{message}");
    }

    // The case: a 5 MB name is refused before it is parsed.
    let huge = json!({"name": "n".repeat(5 * 1024 * 1024)});
    let (status, error) = start_session(&client, &server, &huge);
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert!(error["error"].as_str().unwrap().contains("65536 bytes"), "{error}");

    // Only the session at the limits was stored.
    let list: Value = client.get(format!("{}/api/sessions", server.api)).send().unwrap().json().unwrap();
    assert_eq!(list["total"], 1, "{list}");
}

/// `sessiontrace serve` on `data_dir` and free ports, its stderr captured, not waited for.
fn spawn_serve(data_dir: &std::path::Path) -> std::process::Child {
    let address = || format!("127.0.0.1:{}", support::free_port());
    std::process::Command::new(env!("CARGO_BIN_EXE_sessiontrace"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--http", &address(), "--otlp-http", &address(), "--otlp-grpc", &address()])
        .env("SESSIONTRACE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sessiontrace serve")
}

#[test]
fn a_second_server_on_one_data_directory_refuses_to_start() {
    if support::uses_clickhouse() {
        eprintln!("skipped: the lock guards the SQLite data directory");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let mut first = RunningServer::start(&data_dir);

    let started = Instant::now();
    let second = spawn_serve(&data_dir).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the second server ran: {stderr}");
    assert!(stderr.contains(&data_dir.display().to_string()), "the message names the directory: {stderr}");
    assert!(stderr.contains("already serving"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "refused at once");
    // The admin commands still open the store beside the running server.
    let keys = std::process::Command::new(env!("CARGO_BIN_EXE_sessiontrace"))
        .args(["keys", "create", "--project", "default", "--kind", "read", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(keys.status.success(), "{}", String::from_utf8_lossy(&keys.stderr));

    // A crash releases the lock: a new server starts on the same folder.
    first.kill();
    let mut after_crash = RunningServer::start_with(&data_dir, &["--auth", "required"]);
    let status = Client::new().get(format!("{}/healthz", after_crash.api)).send().unwrap().status();
    assert!(status.is_success());
    after_crash.terminate();
}

/// Bounds small enough for a test: 1 s for headers, 2 s for a body, 8 connections.
fn bounded_server(data: &std::path::Path) -> RunningServer {
    let config = data.join("bounds.toml");
    std::fs::write(&config, "header_read_timeout_ms = 1000\nbody_read_timeout_ms = 2000\nmax_connections = 8\n")
        .unwrap();
    RunningServer::start_with(&data.join("data"), &["--config", config.to_str().unwrap()])
}

fn connect(server: &RunningServer) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(server.api.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    stream
}

/// Sends `bytes` one at a time, `gap` apart, on a thread, until the server closes the connection.
fn trickle(stream: &std::net::TcpStream, bytes: &'static [u8], gap: Duration) -> std::thread::JoinHandle<()> {
    let mut writer = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        for byte in bytes {
            if writer.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(gap);
        }
    })
}

/// Reads until the server answers or closes: what it sent, and when.
fn wait_for_close(stream: &mut std::net::TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
    (String::from_utf8_lossy(&received).into_owned(), started.elapsed())
}

/// Every request of a normal client during `for_how_long` succeeds, each in under a second.
fn others_are_served(server: &RunningServer, for_how_long: Duration) -> usize {
    let client = Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let until = Instant::now() + for_how_long;
    let mut served = 0;
    while Instant::now() < until {
        let started = Instant::now();
        let status =
            client.post(format!("{}/api/sessions", server.api)).json(&json!({"name": "x"})).send().unwrap().status();
        assert_eq!(status, StatusCode::CREATED);
        assert!(started.elapsed() < Duration::from_secs(1), "a normal request took {:?}", started.elapsed());
        served += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    served
}

#[test]
fn slow_clients_cannot_hold_the_server() {
    let data = tempfile::tempdir().unwrap();
    let server = bounded_server(data.path());

    // Slowloris: a header byte every 200 ms is cut at the 1 s header read timeout.
    let mut slow_headers = connect(&server);
    let started = Instant::now();
    let writer = trickle(
        &slow_headers,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
        Duration::from_millis(200),
    );
    let served = others_are_served(&server, Duration::from_millis(800));
    let (answer, _) = wait_for_close(&mut slow_headers);
    let after = started.elapsed();
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(after >= Duration::from_millis(900), "closed before the timeout: {after:?}");
    assert!(after < Duration::from_secs(3), "the slowloris connection was held {after:?}");
    writer.join().unwrap();
    eprintln!("slowloris headers closed after {after:?} (timeout 1 s); {served} other requests served meanwhile");

    // A body that stops: 408 at the body timeout.
    let mut stopped_body = connect(&server);
    stopped_body
        .write_all(b"POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\"")
        .unwrap();
    let started = Instant::now();
    let served = others_are_served(&server, Duration::from_millis(500));
    let (answer, _) = wait_for_close(&mut stopped_body);
    let after = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(after < Duration::from_secs(4), "a stopped body was held {after:?}");
    eprintln!("stopped body answered 408 after {after:?} (timeout 2 s); {served} other requests served meanwhile");

    // A body that trickles a byte every 200 ms never pauses long, but the total deadline ends it.
    let mut trickled_body = connect(&server);
    trickled_body
        .write_all(
            b"POST /api/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        )
        .unwrap();
    let started = Instant::now();
    let writer = trickle(&trickled_body, &[b' '; 100], Duration::from_millis(200));
    let (answer, _) = wait_for_close(&mut trickled_body);
    let after = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(after < Duration::from_secs(4), "a trickled body was held {after:?}");
    writer.join().unwrap();
    eprintln!("trickled body answered 408 after {after:?} (deadline 2 s)");

    // Eight silent connections fill the limit; the next client waits only until the header timeout
    // closes them.
    let silent: Vec<_> = (0..8).map(|_| connect(&server)).collect();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let status = Client::new().get(format!("{}/healthz", server.api)).send().unwrap().status();
    let waited = started.elapsed();
    assert!(status.is_success());
    assert!(waited < Duration::from_secs(3), "waited {waited:?} for a connection slot");
    for mut connection in silent {
        let (_, after) = wait_for_close(&mut connection);
        assert!(after < Duration::from_secs(2), "a silent connection stayed open");
    }
    eprintln!("with 8 silent connections open (limit 8) a new client was served after {waited:?}");
}

#[test]
fn grpc_connections_are_bounded() {
    let data = tempfile::tempdir().unwrap();
    let server = bounded_server(data.path());
    let address = server.otlp_grpc.trim_start_matches("http://").to_string();

    // Connections that send nothing are closed at the 1 s header read timeout, before tonic sees them.
    let silent: Vec<_> = (0..3)
        .map(|_| {
            let stream = std::net::TcpStream::connect(&address).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            stream
        })
        .collect();
    for mut connection in silent {
        let (_, after) = wait_for_close(&mut connection);
        assert!(after < Duration::from_millis(2500), "a silent gRPC connection stayed open {after:?}");
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let endpoint = tonic::transport::Endpoint::from_shared(server.otlp_grpc.clone()).unwrap();
        let export = |channel: tonic::transport::Channel| async move {
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export".parse().unwrap();
            grpc.unary(tonic::Request::new(Vec::new()), path, sessiontrace_pipeline::codec::PassThrough).await
        };
        // Eight channels (the limit) each hold a connection, answered.
        let mut held = Vec::new();
        for _ in 0..8 {
            let channel = endpoint.connect().await.unwrap();
            export(channel.clone()).await.unwrap();
            held.push(channel);
        }
        // A ninth waits in the listen backlog, unanswered, while they are open (and answering pings)...
        let ninth = tokio::spawn(export(endpoint.connect_lazy()));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!ninth.is_finished(), "a ninth connection was served beyond max_connections = 8");
        // ...and is served once one of them closes.
        let started = Instant::now();
        drop(held.pop());
        let answer = tokio::time::timeout(Duration::from_secs(10), ninth).await.expect("served after a slot freed");
        answer.unwrap().expect("the ninth export succeeded");
        eprintln!(
            "gRPC: 8 channels open (limit 8), a ninth waited 2.5 s unanswered, served {:?} after one closed",
            started.elapsed()
        );
        // The others still work.
        for channel in held {
            export(channel).await.unwrap();
        }
    });
}
