//! `sessiontrace serve`: config file, then `SESSIONTRACE_*` environment variables and flags on top.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use sessiontrace_server::config::{AuthSetting, ServerConfig, StoreKind};
use tracing_subscriber::EnvFilter;

/// Flags of `serve`; each also reads a `SESSIONTRACE_*` variable.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML config file (fields as in `ServerConfig`).
    #[arg(long, env = "SESSIONTRACE_CONFIG")]
    config: Option<PathBuf>,
    /// Folder of the embedded store [default: ./sessiontrace-data].
    #[arg(long, env = "SESSIONTRACE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// API and UI address [default: 127.0.0.1:8080].
    #[arg(long, env = "SESSIONTRACE_HTTP")]
    http: Option<SocketAddr>,
    /// OTLP/HTTP address [default: 127.0.0.1:4318].
    #[arg(long, env = "SESSIONTRACE_OTLP_HTTP")]
    otlp_http: Option<SocketAddr>,
    /// OTLP/gRPC address [default: 127.0.0.1:4317].
    #[arg(long, env = "SESSIONTRACE_OTLP_GRPC")]
    otlp_grpc: Option<SocketAddr>,
    /// Largest OTLP request body in bytes [default: 16 MiB].
    #[arg(long, env = "SESSIONTRACE_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Share of non-session traces without errors kept, 0.0 to 1.0 [default: 1.0].
    #[arg(long, env = "SESSIONTRACE_SAMPLING_RATIO")]
    sampling_ratio: Option<f64>,
    /// Keep non-session traces slower than this many milliseconds [default: off].
    #[arg(long, env = "SESSIONTRACE_SLOW_TRACE_MS")]
    slow_trace_ms: Option<u64>,
    /// How long a trace the ratio would drop waits for an error or slow root, in ms; 0 = none [default: 5000].
    #[arg(long, env = "SESSIONTRACE_DECISION_WAIT_MS")]
    decision_wait_ms: Option<u64>,
    /// Rolling window of continuous sessions, in seconds [default: 90].
    #[arg(long, env = "SESSIONTRACE_CONTINUOUS_WINDOW_SECS")]
    continuous_window_secs: Option<u64>,
    /// Forward to an upstream OTLP endpoint, repeatable (added to the config file's `[[forward]]`):
    /// URL[,mode=all|non-session|kept][,protocol=http|grpc][,compression=gzip|zstd|none][,header=NAME:VALUE]
    /// [,name=NAME][,concurrency=N]
    /// [,ca=CA.pem][,cert=CLIENT.pem,key=CLIENT.key]; https:// URLs use TLS (system roots or `ca`).
    #[arg(long, env = "SESSIONTRACE_FORWARD", value_delimiter = ' ')]
    forward: Vec<sessiontrace_pipeline::forward::ForwardConfig>,
    /// Built web UI folder served instead of the UI embedded in the binary (for UI development).
    #[arg(long, env = "SESSIONTRACE_UI_DIR")]
    ui_dir: Option<PathBuf>,
    /// Built recorder bundle served instead of the embedded one.
    #[arg(long, env = "SESSIONTRACE_RECORDER_JS")]
    recorder_js: Option<PathBuf>,
    /// Storage backend: sqlite or clickhouse [default: sqlite].
    #[arg(long, env = "SESSIONTRACE_STORE")]
    store: Option<StoreKind>,
    /// ClickHouse HTTP interface, e.g. http://127.0.0.1:8123 (with --store clickhouse).
    #[arg(long, env = "SESSIONTRACE_CLICKHOUSE_URL")]
    clickhouse_url: Option<String>,
    /// ClickHouse database of the store's tables [default: sessiontrace].
    #[arg(long, env = "SESSIONTRACE_CLICKHOUSE_DATABASE")]
    clickhouse_database: Option<String>,
    /// Days of data kept (older data is deleted hourly, or dropped by partition in ClickHouse); 0 keeps
    /// everything [default: 30].
    #[arg(long, env = "SESSIONTRACE_RETENTION_DAYS")]
    retention_days: Option<u32>,
    /// `auto` (on once a key or user exists) or `required` (on even before) [default: auto].
    #[arg(long, env = "SESSIONTRACE_AUTH")]
    auth: Option<AuthSetting>,
    /// Requests per second each project may make (keys may carry their own limits too).
    #[arg(long, env = "SESSIONTRACE_PROJECT_RATE")]
    project_rate: Option<u64>,
    /// Bytes per second each project may send (the burst is at least --max-body-bytes).
    #[arg(long, env = "SESSIONTRACE_PROJECT_BYTES_PER_SECOND")]
    project_bytes_per_second: Option<u64>,
    /// PEM certificate chain: serve HTTPS and gRPC over TLS (with --tls-key).
    #[arg(long, env = "SESSIONTRACE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SESSIONTRACE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Behind a reverse proxy: read the client address and scheme from X-Forwarded-For/-Proto.
    #[arg(long, env = "SESSIONTRACE_TRUST_PROXY")]
    trust_proxy: bool,
}

impl ServeArgs {
    /// The config file's settings with these flags on top.
    pub fn to_config(&self) -> anyhow::Result<ServerConfig> {
        let mut config = ServerConfig::load(self.config.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(address) = self.http {
            config.http = address;
        }
        if let Some(address) = self.otlp_http {
            config.otlp_http = address;
        }
        if let Some(address) = self.otlp_grpc {
            config.otlp_grpc = address;
        }
        if let Some(bytes) = self.max_body_bytes {
            config.max_body_bytes = bytes;
        }
        if let Some(ratio) = self.sampling_ratio {
            config.sampling_ratio = ratio;
        }
        if let Some(ms) = self.slow_trace_ms {
            config.slow_trace_ms = Some(ms);
        }
        if let Some(ms) = self.decision_wait_ms {
            config.decision_wait_ms = ms;
        }
        if let Some(secs) = self.continuous_window_secs {
            config.continuous_window_secs = secs;
        }
        config.forward.extend(self.forward.iter().cloned());
        if let Some(dir) = &self.ui_dir {
            config.ui_dir = Some(dir.clone());
        }
        if let Some(path) = &self.recorder_js {
            config.recorder_js = Some(path.clone());
        }
        if let Some(store) = self.store {
            config.store = store;
        }
        if let Some(url) = &self.clickhouse_url {
            config.clickhouse_url = Some(url.clone());
        }
        if let Some(database) = &self.clickhouse_database {
            config.clickhouse_database = database.clone();
        }
        if let Some(days) = self.retention_days {
            config.retention_days = days;
        }
        if let Some(auth) = self.auth {
            config.auth = auth;
        }
        if let Some(rate) = self.project_rate {
            config.project_requests_per_second = Some(rate);
        }
        if let Some(bytes) = self.project_bytes_per_second {
            config.project_bytes_per_second = Some(bytes);
        }
        if let Some(path) = &self.tls_cert {
            config.tls_cert = Some(path.clone());
        }
        if let Some(path) = &self.tls_key {
            config.tls_key = Some(path.clone());
        }
        config.trust_proxy |= self.trust_proxy;
        config.validate()?;
        Ok(config)
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("SESSIONTRACE_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let config = args.to_config()?;
    sessiontrace_server::run(config).await?;
    Ok(ExitCode::SUCCESS)
}
