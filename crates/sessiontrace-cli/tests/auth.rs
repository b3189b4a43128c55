//! Running it for a team (issue 14), end to end against the real binary: keys made with the real CLI,
//! requests over OTLP/HTTP, OTLP/gRPC (tonic) and the API.
//!
//! - two projects never see each other's sessions, traces, logs, metric points or replay, even by exact id;
//! - ingest keys only write (and only from their allowed origins), read keys only read, a revoked key is
//!   refused within seconds, no credential is a 401 with `WWW-Authenticate`;
//! - a key over its rate gets 429 + `Retry-After` (HTTP) and RESOURCE_EXHAUSTED with RetryInfo (gRPC);
//! - the UI login: cookie flags, CSRF, logout;
//! - the real Python SDK configured by `OTEL_EXPORTER_OTLP_HEADERS` lands every span in its key's project
//!   through a tight rate limit (it retries);
//! - no key or password in clear in the data folder, the server's log or `/metrics`;
//! - a non-loopback address without authentication is refused at start.
//!
//! Runs with `SESSIONTRACE_TEST_STORE=clickhouse` too (the CI's ClickHouse pass), except where it reads
//! the SQLite file.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::Span;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use support::{RunningServer, free_port, test_store_flags};

fn cli(data_dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sessiontrace"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(test_store_flags(data_dir))
        .output()
        .expect("run sessiontrace");
    assert!(output.status.success(), "sessiontrace {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// `sessiontrace keys create ...`: the secret, printed alone on the first line.
fn create_key(data_dir: &Path, project: &str, kind: &str, extra: &[&str]) -> String {
    let mut args = vec!["keys", "create", "--project", project, "--kind", kind];
    args.extend_from_slice(extra);
    let out = cli(data_dir, &args);
    out.lines().next().unwrap().trim().to_string()
}

fn spans(trace_id: [u8; 16], service: &str, count: usize) -> Vec<u8> {
    let spans = (0..count)
        .map(|i| Span {
            trace_id: trace_id.to_vec(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("op {i}"),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_100_000_000,
            ..Default::default()
        })
        .collect();
    support::export_body(service, spans)
}

/// A project's data, written with its ingest key: a session with a session trace, a log and replay.
struct Written {
    session_id: String,
    short_id: String,
    trace_id: String,
}

fn write_project(server: &RunningServer, ingest: &str, service: &str) -> Written {
    let client = Client::new();
    let response = client
        .post(format!("{}/api/sessions", server.api))
        .bearer_auth(ingest)
        .json(&json!({"name": service}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
    let session: Value = response.json().unwrap();
    let prefix = session["trace_id_prefix"].as_str().unwrap().to_string();
    let trace_hex = format!("{prefix}{}", "7".repeat(32 - prefix.len()));
    let mut trace_id = [0u8; 16];
    hex::decode_to_slice(&trace_hex, &mut trace_id).unwrap();
    let response = client
        .post(format!("{}/v1/traces", server.otlp_http))
        .header("x-api-key", ingest)
        .header("content-type", "application/x-protobuf")
        .body(spans(trace_id, service, 3))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let log = json!({"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": "1700000000050000000", "traceId": trace_hex, "body": {"stringValue": format!("{service} log")}}]}]}]});
    let response =
        client.post(format!("{}/v1/logs", server.otlp_http)).header("authorization", ingest).json(&log).send().unwrap();
    assert_eq!(response.status(), 200);
    let id = session["id"].as_str().unwrap().to_string();
    let events =
        json!({"seq": 0, "events": [{"type": 4, "timestamp": 1_700_000_000_000u64, "data": {"href": "https://shop"}}]});
    let response = client
        .post(format!("{}/api/sessions/{id}/events", server.api))
        .bearer_auth(ingest)
        .json(&events)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());
    let response = client.post(format!("{}/api/sessions/{id}/stop", server.api)).bearer_auth(ingest).send().unwrap();
    assert_eq!(response.status(), 200);
    Written { session_id: id, short_id: session["short_id"].as_str().unwrap().into(), trace_id: trace_hex }
}

fn get(client: &Client, url: &str, key: &str) -> (StatusCode, Value) {
    let response = client.get(url).bearer_auth(key).send().unwrap();
    let status = response.status();
    (status, response.json().unwrap_or(Value::Null))
}

/// Every read of project data, by the ids of `written`.
fn reads(api: &str, written: &Written) -> Vec<String> {
    let (id, short, trace) = (&written.session_id, &written.short_id, &written.trace_id);
    vec![
        format!("{api}/api/sessions/{id}"),
        format!("{api}/api/sessions/{short}"),
        format!("{api}/api/sessions/{id}/timeline"),
        format!("{api}/api/sessions/{id}/traces"),
        format!("{api}/api/sessions/{id}/logs"),
        format!("{api}/api/sessions/{id}/events"),
        format!("{api}/api/traces/{trace}"),
        format!("{api}/api/metrics?session={id}"),
    ]
}

#[test]
fn projects_never_see_each_other_and_keys_only_do_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let shop_ingest = create_key(dir.path(), "shop", "ingest", &[]);
    let shop_read = create_key(dir.path(), "shop", "read", &[]);
    let blog_ingest = create_key(dir.path(), "blog", "ingest", &[]);
    let blog_read = create_key(dir.path(), "blog", "read", &[]);
    let log = dir.path().join("server.log");
    let server = RunningServer::start_logged(dir.path(), (free_port(), free_port(), free_port()), &[], Some(&log));
    let client = Client::new();

    let shop = write_project(&server, &shop_ingest, "shop-api");
    let blog = write_project(&server, &blog_ingest, "blog-api");

    for url in reads(&server.api, &shop) {
        let (status, body) = get(&client, &url, &shop_read);
        assert_eq!(status, 200, "{url} with its own project's read key: {body}");
        let (status, body) = get(&client, &url, &blog_read);
        let empty_metrics = url.contains("/api/metrics") && status == 404;
        assert!(status == 404 || empty_metrics, "{url} with another project's key answered {status}: {body}");
        let (status, _) = get(&client, &url, &shop_ingest);
        assert_eq!(status, 403, "{url}: an ingest key cannot read");
    }
    let (_, shop_trace) = get(&client, &format!("{}/api/traces/{}", server.api, shop.trace_id), &shop_read);
    assert_eq!(shop_trace["spans"].as_array().unwrap().len(), 3);
    assert_eq!(shop_trace["session_id"], shop.session_id.as_str());
    for (key, own, other) in [(&shop_read, &shop, &blog), (&blog_read, &blog, &shop)] {
        let (status, list) = get(&client, &format!("{}/api/sessions", server.api), key);
        assert_eq!(status, 200);
        let ids: Vec<&str> = list["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec![own.session_id.as_str()], "the list shows only the key's project");
        let (_, found) = get(&client, &format!("{}/api/sessions?q={}", server.api, other.short_id), key);
        assert_eq!(found["total"], 0, "search never finds another project's session");
        let (_, logs) = get(&client, &format!("{}/api/logs?trace_id={}", server.api, other.trace_id), key);
        assert_eq!(logs["logs"].as_array().unwrap().len(), 0);
        let (_, stats) = get(&client, &format!("{}/api/stats", server.api), key);
        assert_eq!((stats["sessions"].as_u64(), stats["spans"].as_u64()), (Some(1), Some(3)), "{stats}");
    }
    // A key names its project; naming another is refused.
    let response = client
        .get(format!("{}/api/sessions", server.api))
        .bearer_auth(&shop_read)
        .header("x-sessiontrace-project", "blog")
        .send()
        .unwrap();
    assert_eq!(response.status(), 403);

    // A read key cannot write, over HTTP or the session API.
    let response = client
        .post(format!("{}/v1/traces", server.otlp_http))
        .bearer_auth(&shop_read)
        .header("content-type", "application/x-protobuf")
        .body(spans([9; 16], "x", 1))
        .send()
        .unwrap();
    assert_eq!(response.status(), 403);
    let response =
        client.post(format!("{}/api/sessions", server.api)).bearer_auth(&shop_read).json(&json!({})).send().unwrap();
    assert_eq!(response.status(), 403);

    // No credential, or one we do not know: 401 with a challenge.
    let response = client.get(format!("{}/api/sessions", server.api)).send().unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"sessiontrace\"");
    let body: Value = response.json().unwrap();
    assert!(body["error"].as_str().unwrap().contains("Authorization: Bearer"), "{body}");
    let unknown = format!("st_read_{}", "0".repeat(64));
    assert_eq!(get(&client, &format!("{}/api/sessions", server.api), &unknown).0, 401);
    let response = client
        .post(format!("{}/v1/traces", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(spans([9; 16], "x", 1))
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
    // Health stays open.
    assert_eq!(client.get(format!("{}/healthz", server.api)).send().unwrap().status(), 200);

    // A revoked key is refused within seconds.
    let listed = cli(dir.path(), &["keys", "list", "--project", "blog"]);
    let blog_read_id =
        listed.lines().find(|l| l.contains(" read ")).unwrap().split_whitespace().next().unwrap().to_string();
    assert!(!listed.contains(&blog_read), "keys list never shows a secret");
    cli(dir.path(), &["keys", "revoke", &blog_read_id]);
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let status = get(&client, &format!("{}/api/sessions", server.api), &blog_read).0;
        if status == 403 {
            break;
        }
        assert!(Instant::now() < deadline, "a revoked key was still accepted after 6 s (answered {status})");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Refusals are counted by reason on /metrics (a read).
    let (_, _) = get(&client, &format!("{}/api/sessions", server.api), &shop_ingest);
    let metrics = client.get(format!("{}/metrics", server.api)).bearer_auth(&shop_read).send().unwrap().text().unwrap();
    for reason in ["missing", "unknown_key", "revoked", "scope"] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("sessiontrace_auth_refused_total{{reason=\"{reason}\"}}")))
            .unwrap();
        assert!(!line.ends_with(" 0"), "{line}");
    }

    // No secret in clear anywhere: data folder, server log, /metrics.
    drop(server);
    let secrets = [&shop_ingest, &shop_read, &blog_ingest, &blog_read];
    let files: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    assert!(files.iter().any(|f| f.ends_with("sessiontrace.db")) || support::uses_clickhouse());
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for secret in secrets {
            let random_part = &secret[secret.len() - 64..];
            assert!(
                !bytes.windows(random_part.len()).any(|w| w == random_part.as_bytes()),
                "a key is in clear in {}",
                file.display()
            );
        }
    }
    for secret in secrets {
        assert!(!metrics.contains(&secret[secret.len() - 64..]));
    }
}

#[test]
fn ingest_keys_are_held_to_their_origins_and_rates() {
    let dir = tempfile::tempdir().unwrap();
    let browser = create_key(dir.path(), "shop", "ingest", &["--allowed-origin", "http://127.0.0.1:3000"]);
    let limited = create_key(dir.path(), "shop", "ingest", &["--rate", "2"]);
    let read = create_key(dir.path(), "shop", "read", &[]);
    let server = RunningServer::start(dir.path());
    let client = Client::new();
    let start = |key: &str, origin: Option<&str>| {
        let mut request = client.post(format!("{}/api/sessions", server.api)).bearer_auth(key).json(&json!({}));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send().unwrap()
    };
    // The allowed origin passes, with CORS naming exactly it; another origin is refused.
    let response = start(&browser, Some("http://127.0.0.1:3000"));
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["access-control-allow-origin"], "http://127.0.0.1:3000");
    let response = start(&browser, Some("http://evil.example"));
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("access-control-allow-origin").is_none());
    assert!(response.text().unwrap().contains("http://evil.example is not allowed"));
    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("{}/v1/traces", server.api))
        .header("origin", "http://127.0.0.1:3000")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .unwrap();
    assert_eq!(preflight.headers()["access-control-allow-origin"], "http://127.0.0.1:3000");
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    // A key with no allowed origin is for servers only: a browser's Origin is refused.
    assert_eq!(start(&limited, Some("http://127.0.0.1:3000")).status(), 403);

    // Over the key's rate: 429 with Retry-After, and the request is not stored.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for n in 0..6u8 {
        let response = client
            .post(format!("{}/v1/traces", server.otlp_http))
            .bearer_auth(&limited)
            .header("content-type", "application/x-protobuf")
            .body(spans([n + 1; 16], "limited", 1))
            .send()
            .unwrap();
        if response.status() == 429 {
            retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        }
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    for (n, status) in statuses.iter().enumerate() {
        let (found, _) = get(&client, &format!("{}/api/traces/{}", server.api, hex::encode([n as u8 + 1; 16])), &read);
        assert_eq!(found == 200, *status == 200, "trace {n}: stored iff acknowledged ({statuses:?})");
    }

    // gRPC: the key in metadata; none → UNAUTHENTICATED, a read key → PERMISSION_DENIED, over the rate →
    // RESOURCE_EXHAUSTED with RetryInfo.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let channel =
            tonic::transport::Channel::from_shared(server.otlp_grpc.clone()).unwrap().connect().await.unwrap();
        let export = |key: Option<String>, trace: u8| {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            async move {
                grpc.ready().await.unwrap();
                let mut request = tonic::Request::new(spans([trace; 16], "grpc", 1));
                if let Some(key) = key {
                    request.metadata_mut().insert("authorization", format!("Bearer {key}").parse().unwrap());
                }
                let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export".parse().unwrap();
                grpc.unary(request, path, sessiontrace_pipeline::codec::PassThrough).await
            }
        };
        assert_eq!(export(None, 50).await.unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(export(Some(read.clone()), 51).await.unwrap_err().code(), tonic::Code::PermissionDenied);
        assert!(export(Some(browser.clone()), 52).await.is_ok(), "no Origin over gRPC: an ingest key works");
        let mut exhausted = None;
        for trace in 60..66 {
            if let Err(status) = export(Some(limited.clone()), trace).await {
                exhausted = Some(status);
            }
        }
        let status = exhausted.expect("the limited key was refused over gRPC");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.metadata().get_bin("google.rpc.retryinfo-bin").is_some());
        use tonic_types::StatusExt;
        assert!(status.get_details_retry_info().is_some(), "RetryInfo in grpc-status-details-bin");
    });
}

#[test]
fn the_ui_login_sets_a_safe_cookie_and_checks_csrf() {
    let dir = tempfile::tempdir().unwrap();
    let add = Command::new(env!("CARGO_BIN_EXE_sessiontrace"))
        .args(["users", "add", "alice", "--role", "admin", "--password-stdin", "--data-dir"])
        .arg(dir.path())
        .args(test_store_flags(dir.path()))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"correct horse battery\n")?;
            child.wait()
        })
        .unwrap();
    assert!(add.success());
    let log = dir.path().join("server.log");
    let server = RunningServer::start_logged(dir.path(), (free_port(), free_port(), free_port()), &[], Some(&log));
    let client = Client::new();
    let api = &server.api;
    let login = |password: &str| {
        client
            .post(format!("{api}/api/auth/login"))
            .json(&json!({"name": "alice", "password": password}))
            .send()
            .unwrap()
    };
    assert_eq!(client.get(format!("{api}/api/auth/me")).send().unwrap().status(), 401);
    let wrong = login("wrong password");
    assert_eq!(wrong.status(), 401);
    let right = login("correct horse battery");
    assert_eq!(right.status(), 200);
    let cookie = right.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let me: Value = right.json().unwrap();
    assert_eq!(me["user"]["name"], "alice");
    let csrf = me["csrf_token"].as_str().unwrap().to_string();
    let host = api.trim_start_matches("http://").to_string();

    let list = client.get(format!("{api}/api/sessions")).header("cookie", &pair).send().unwrap();
    assert_eq!(list.status(), 200);
    let post = |origin: &str, token: Option<&str>| {
        let mut request = client
            .post(format!("{api}/api/sessions"))
            .header("cookie", &pair)
            .header("origin", origin)
            .json(&json!({}));
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        request.send().unwrap().status()
    };
    assert_eq!(post(&format!("http://{host}"), None), 403, "no CSRF token");
    assert_eq!(post("http://evil.example", Some(&csrf)), 403, "another origin");
    assert_eq!(post(&format!("http://{host}"), Some(&csrf)), 201);
    let logout = client
        .post(format!("{api}/api/auth/logout"))
        .header("cookie", &pair)
        .header("origin", format!("http://{host}"))
        .header("x-csrf-token", &csrf)
        .send()
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert!(logout.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(client.get(format!("{api}/api/sessions")).header("cookie", &pair).send().unwrap().status(), 401);

    // Failed logins from one address are throttled.
    let statuses: Vec<u16> = (0..12).map(|_| login("wrong again").status().as_u16()).collect();
    assert!(statuses.contains(&429), "{statuses:?}");

    drop(server);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains("correct horse") && !log.contains(&csrf), "the password or a token is in the log");
    assert!(log.contains("logged in"), "logins are logged (without secrets)");
    if !support::uses_clickhouse() {
        let db = std::fs::read(dir.path().join("sessiontrace.db")).unwrap();
        assert!(!db.windows(14).any(|w| w == b"correct horse "), "the password is in the data file");
        let token = pair.split('=').nth(1).unwrap();
        assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()), "the login token is in the data file");
    }
}

#[test]
fn the_python_sdk_lands_in_its_keys_project_through_a_tight_limit() {
    let Some(python) = support::python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ingest = create_key(dir.path(), "shop", "ingest", &["--rate", "2"]);
    let read = create_key(dir.path(), "shop", "read", &[]);
    let other_read = create_key(dir.path(), "blog", "read", &[]);
    let server = RunningServer::start(dir.path());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/keyed_export.py");
    let client = Client::new();
    for (protocol, endpoint) in [("http/protobuf", &server.otlp_http), ("grpc", &server.otlp_grpc)] {
        let output = Command::new(&python)
            .arg(script)
            .args(["--spans", "6", "--service", &format!("py-{protocol}")])
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .env("OTEL_EXPORTER_OTLP_INSECURE", "true")
            .env("OTEL_EXPORTER_OTLP_HEADERS", format!("Authorization={ingest}"))
            .output()
            .expect("run the python exporter");
        assert!(output.status.success(), "{protocol}: {}", String::from_utf8_lossy(&output.stderr));
        let sent: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert!(sent["exported"].as_array().unwrap().iter().all(|ok| ok == true), "{protocol}: {sent}");
        for trace in sent["trace_ids"].as_array().unwrap() {
            let url = format!("{}/api/traces/{}", server.api, trace.as_str().unwrap());
            assert_eq!(get(&client, &url, &read).0, 200, "{protocol}: span of {trace} in the key's project");
            assert_eq!(get(&client, &url, &other_read).0, 404, "{protocol}: and not in another");
        }
    }
    let metrics = client.get(format!("{}/metrics", server.api)).bearer_auth(&read).send().unwrap().text().unwrap();
    let limited =
        metrics.lines().find(|l| l.starts_with("sessiontrace_auth_refused_total{reason=\"rate_limit\"}")).unwrap();
    assert!(!limited.ends_with(" 0"), "the limit refused some exports, which the SDK retried: {limited}");
}

#[test]
fn a_public_address_needs_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let output = Command::new(env!("CARGO_BIN_EXE_sessiontrace"))
        .args(["serve", "--http", &format!("0.0.0.0:{port}"), "--data-dir"])
        .arg(dir.path())
        .args(test_store_flags(dir.path()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a loopback address") && stderr.contains("sessiontrace keys create"), "{stderr}");
}

/// A private CA and a server certificate it signed for 127.0.0.1 and localhost: (ca.pem, cert.pem, key.pem).
fn test_pki(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "sessiontrace test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let cert = rcgen::CertificateParams::new(names).unwrap().signed_by(&key, &ca).unwrap();
    let paths = (dir.join("ca.pem"), dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// One HTTP/1.1 request over TLS trusting `ca`: the status code and the body.
fn https(port: u16, ca: &Path, request: &str) -> std::io::Result<(u16, String)> {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from_pem_file(ca).unwrap()).unwrap();
        let config =
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        let text = String::from_utf8_lossy(&answer).to_string();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        Ok((status, body))
    })
}

#[test]
fn tls_serves_https_and_grpc_to_real_clients() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki(dir.path());
    let data = dir.path().join("a");
    let (http, otlp_http, otlp_grpc) = (free_port(), free_port(), free_port());
    let cert_arg = cert.to_str().unwrap();
    let ca_arg = ca.to_str().unwrap();
    let _server = RunningServer::start_on(
        &data,
        (http, otlp_http, otlp_grpc),
        &["--tls-cert", cert_arg, "--tls-key", key.to_str().unwrap()],
    );
    let get =
        |path: &str| https(http, &ca, &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(get("/healthz"), Ok((200, _))) {
        assert!(Instant::now() < deadline, "the TLS server did not answer /healthz");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Plain HTTP to a TLS port gets no HTTP answer.
    let plain = Client::new().get(format!("http://127.0.0.1:{http}/healthz")).send();
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));

    // Another sessiontrace forwards to it over HTTPS (OTLP/HTTP) and gRPC over TLS, trusting the cert.
    let forwarder_dir = dir.path().join("b");
    let forwarder = RunningServer::start_with(
        &forwarder_dir,
        &[
            "--forward",
            &format!("https://127.0.0.1:{otlp_http},ca={ca_arg},name=https"),
            "--forward",
            &format!("https://127.0.0.1:{otlp_grpc},protocol=grpc,ca={ca_arg},name=grpcs"),
        ],
    );
    let response = Client::new()
        .post(format!("{}/v1/traces", forwarder.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(spans([0x5a; 16], "tls", 4))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(&format!("/api/traces/{}", hex::encode([0x5a; 16]))).unwrap();
        // Both upstream copies arrive: the same 4 spans twice (HTTPS and gRPC over TLS).
        if status == 200 && serde_json::from_str::<Value>(&body).unwrap()["spans"].as_array().unwrap().len() == 8 {
            break;
        }
        assert!(Instant::now() < deadline, "forwarded spans did not arrive over TLS: {status} {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
