//! `sessiontrace demo`: the whole idea in one command. Starts the server in this process (API
//! 127.0.0.1:8080, OTLP 4318/4317 by default), the demo shop's services as child processes of this
//! binary (`sessiontrace demo-service <name>`, each with its own telemetry), drives one scripted session
//! through them with an instrumented client, prints where to look, and runs until Ctrl-C.
//!
//! The driver's requests are traced with `sessiontrace-sdk`: the session is active in this process, so
//! each request's client span is the root of a session trace and no stored span has a missing parent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use demo_shop::{Service, Topology};
use serde_json::{Value, json};
use sessiontrace_sdk::TracedClient;
use sessiontrace_server::config::ServerConfig;
use tokio::process::{Child, Command};

/// Flags of `demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder of the demo server's store.
    #[arg(long, default_value = "./sessiontrace-demo-data")]
    data_dir: PathBuf,
    /// API and UI address of the server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// OTLP/HTTP address of the server (the services export here).
    #[arg(long, default_value = "127.0.0.1:4318")]
    otlp_http: SocketAddr,
    /// OTLP/gRPC address of the server.
    #[arg(long, default_value = "127.0.0.1:4317")]
    otlp_grpc: SocketAddr,
    /// Gateway address (the page and the shop's API).
    #[arg(long, default_value = "127.0.0.1:3000")]
    gateway: SocketAddr,
    /// Orders service address (also the W3C harness endpoint `/test`).
    #[arg(long, default_value = "127.0.0.1:3001")]
    orders: SocketAddr,
    /// Inventory service address.
    #[arg(long, default_value = "127.0.0.1:3002")]
    inventory: SocketAddr,
    /// Payment service address.
    #[arg(long, default_value = "127.0.0.1:3003")]
    payment: SocketAddr,
    /// Share of payments that fail at random.
    #[arg(long, default_value_t = 0.2)]
    payment_failure_rate: f64,
    /// Start everything but do not drive the scripted session.
    #[arg(long)]
    no_script: bool,
}

/// Flags of the hidden `demo-service` subcommand `demo` starts its children with.
#[derive(Args, Debug)]
pub struct DemoServiceArgs {
    /// Which service to run.
    service: Service,
    #[command(flatten)]
    topology: Topology,
}

/// Runs one demo service (a child of `sessiontrace demo`, or started by a test).
pub async fn run_service(args: DemoServiceArgs) -> anyhow::Result<ExitCode> {
    let _guard = demo_shop::telemetry::install(args.service.name());
    demo_shop::serve(args.service, args.topology).await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_healthy(client: &reqwest::Client, url: &str, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} did not answer {url}/healthz within 30 s")
}

fn spawn_service(service: Service, topology: &Topology, otlp_http: SocketAddr) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find this binary to start the demo services")?;
    let address = |s: Service| topology.address(s).to_string();
    let mut command = Command::new(exe);
    command
        .arg("demo-service")
        .arg(service.name())
        .args(["--gateway", &address(Service::Gateway)])
        .args(["--orders", &address(Service::Orders)])
        .args(["--inventory", &address(Service::Inventory)])
        .args(["--payment", &address(Service::Payment)])
        .args(["--sessiontrace-api", &topology.sessiontrace_api])
        .args(["--payment-failure-rate", &topology.payment_failure_rate.to_string()])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp_http}"))
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        // Export within half a second, so the result shows up while the person looks.
        .env("OTEL_BSP_SCHEDULE_DELAY", "500")
        .env("OTEL_BLRP_SCHEDULE_DELAY", "500")
        .env("DEMO_LOG", "warn");
    for inherited in [
        "OTEL_SERVICE_NAME",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        "OTEL_LOGS_EXPORTER",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
    ] {
        command.env_remove(inherited);
    }
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit()).kill_on_drop(true);
    command.spawn().with_context(|| format!("cannot start the {} service", service.name()))
}

/// One scripted step: a name, a method and path on the gateway, an optional JSON body.
struct Step {
    name: &'static str,
    method: reqwest::Method,
    path: &'static str,
    body: Option<Value>,
}

fn script() -> Vec<Step> {
    let post = reqwest::Method::POST;
    vec![
        Step { name: "open the shop page", method: reqwest::Method::GET, path: "/", body: None },
        Step {
            name: "log in",
            method: post.clone(),
            path: "/api/login",
            body: Some(json!({"user": "ann", "password": "hunter2"})),
        },
        Step { name: "list products", method: reqwest::Method::GET, path: "/api/products", body: None },
        Step {
            name: "buy 2 tea",
            method: post.clone(),
            path: "/api/checkout",
            body: Some(json!({"sku": "tea", "qty": 2, "card_number": "4242-4242-4242-4242"})),
        },
        Step {
            name: "buy a pot with a declined card",
            method: post,
            path: "/api/checkout",
            body: Some(json!({"sku": "pot", "qty": 1, "card_number": "4000-0000-0000-0002"})),
        },
    ]
}

/// Drives the scripted session; returns the session's id.
async fn drive(api: &str, gateway: &str) -> anyhow::Result<String> {
    let session = sessiontrace_sdk::session::start(
        api,
        json!({"name": "demo: a visit to the shop", "kind": "manual", "user": {"id": "ann"},
               "tags": ["demo"], "capture": {"headers": true, "bodies": true}}),
    )
    .await
    .context("cannot start the demo session")?;
    println!("session {} started: driving the shop", session.short_id);
    let client = TracedClient::new(reqwest::Client::new());
    let steps = script();
    let mut token = String::new();
    for (index, step) in steps.iter().enumerate() {
        let mut request = client.request(step.method.clone(), format!("{gateway}{}", step.path));
        if let Some(body) = &step.body {
            request = request.json(body);
        }
        if !token.is_empty() {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.build()?;
        let span_name = format!("{} {}", step.method, step.path);
        // A new root each time: with the session active, its trace id carries the session.
        let parent = opentelemetry::Context::new();
        let result = client.execute_in(&parent, Some(&span_name), request).await;
        let (status, trace_id, body) = match result {
            Ok(response) => {
                let status = response.status().as_u16().to_string();
                let trace_id =
                    response.headers().get("x-trace-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
                (status, trace_id, response.text().await.unwrap_or_default())
            }
            Err(error) => (format!("failed ({error})"), "-".into(), String::new()),
        };
        if let Ok(answer) = serde_json::from_str::<Value>(&body)
            && let Some(found) = answer["token"].as_str()
        {
            token = found.to_string();
        }
        println!("  [{}/{}] {:<32} {span_name:<20} → {status:<4} trace {trace_id}", index + 1, steps.len(), step.name);
    }
    sessiontrace_sdk::session::stop(api, &session.id).await.context("cannot stop the demo session")?;
    Ok(session.id)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let api = format!("http://{}", args.http);
    let config = ServerConfig {
        data_dir: args.data_dir.clone(),
        http: args.http,
        otlp_http: args.otlp_http,
        otlp_grpc: args.otlp_grpc,
        ..ServerConfig::default()
    };
    config.validate()?;
    let mut server = tokio::spawn(sessiontrace_server::run(config));
    let client = reqwest::Client::new();
    tokio::select! {
        ready = wait_healthy(&client, &api, "the sessiontrace server") => ready?,
        ended = &mut server => {
            ended.context("the server task failed")??;
            bail!("the server stopped during start-up");
        }
    }

    let topology = Topology {
        gateway: args.gateway,
        orders: args.orders,
        inventory: args.inventory,
        payment: args.payment,
        sessiontrace_api: api.clone(),
        payment_failure_rate: args.payment_failure_rate,
    };
    let mut children = Vec::new();
    for service in Service::ALL {
        children.push(spawn_service(service, &topology, args.otlp_http)?);
    }
    for (service, child) in Service::ALL.into_iter().zip(children.iter_mut()) {
        let url = topology.url(service);
        tokio::select! {
            ready = wait_healthy(&client, &url, service.name()) => ready?,
            exited = child.wait() => {
                let status = exited.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                bail!("the {} service exited ({status}); is {} in use?", service.name(), topology.address(service));
            }
        }
        println!("{:<10} {url}", service.name());
    }

    let guard = sessiontrace_sdk::init_with(sessiontrace_sdk::Options {
        service_name: "demo-driver".into(),
        otlp_endpoint: Some(format!("http://{}", args.otlp_http)),
        ..Default::default()
    });
    let session_id = if args.no_script { None } else { Some(drive(&api, &topology.url(Service::Gateway)).await?) };
    guard.flush();

    println!();
    println!("demo page: {}/", topology.url(Service::Gateway));
    println!("W3C trace-context harness endpoint: {}/test", topology.url(Service::Orders));
    match &session_id {
        Some(id) => {
            println!("the scripted session (spans of every service arrive within a second or two):");
            println!("  {api}/sessions/{id}");
            println!("  sessiontrace show {id} --server {api}");
        }
        None => println!("sessions: {api}/"),
    }
    println!("Ctrl-C to stop.");

    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        ended = &mut server => {
            ended.context("the server task failed")??;
        }
    }
    for child in &mut children {
        let _ = child.start_kill();
    }
    for child in &mut children {
        let _ = child.wait().await;
    }
    drop(guard);
    Ok(ExitCode::SUCCESS)
}
