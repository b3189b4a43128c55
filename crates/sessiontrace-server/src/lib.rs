//! The sessiontrace collector's network side: the OTLP receivers, the session, replay and query API,
//! health and metrics, and the browser assets; its config and the wiring of store, pipeline and
//! listeners. What happens to data between a receiver and its acknowledgement is `sessiontrace_pipeline`.
//!
//! # The part of a span's path this crate owns
//! 1. An SDK exports a batch: OTLP/HTTP `POST /v1/traces` ([`endpoints::otlp_http`], port 4318, and the
//!    API port for browsers) or OTLP/gRPC `TraceService/Export` ([`endpoints::otlp_grpc`], port 4317).
//!    The receiver checks the content type and size limit and undoes gzip/zstd/deflate; both hand the
//!    received bytes, undecoded, with the request's context to [`endpoints::export`], one generic export
//!    for the three signals.
//! 2. `Pipeline::accept_traces` (ingest, tail, continuous, the durable store write, forward) returns once
//!    what the request keeps is committed.
//! 3. Only then does the receiver answer 200 / OK (or the export response with partial success), so an
//!    acknowledged span survives a crash; pipeline errors become 4xx/5xx and gRPC statuses in [`error`].
//! 4. Reads (`/api/traces/{id}`, a session's timeline) go to the store directly and are shaped by
//!    `sessiontrace_query`.

pub mod access;
pub mod admission;
pub use sessiontrace_config as config;
pub mod endpoints;
pub mod error;
pub mod limits;
pub mod lock;
pub mod serve;
pub mod state;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use sessiontrace_auth::limits::{Limits, Rates};
use sessiontrace_auth::{AuthMode, Authenticator, LoginSettings};
use sessiontrace_ingest::route::RoutingPolicy;
use sessiontrace_pipeline::clock::now_ms;
use sessiontrace_pipeline::telemetry::Counters;
use sessiontrace_pipeline::{Pipeline, PipelineSettings};
use sessiontrace_store::Store;
use sessiontrace_store::sqlite::SqliteStore;
use sessiontrace_store_clickhouse::{ClickHouseConfig, ClickHouseStore};
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::config::{AuthSetting, ServerConfig, StoreKind};
use crate::state::AppState;

/// Opens the embedded SQLite store and builds the shared state (sync, for tests and tools; a config with
/// `store = "clickhouse"` needs [`open_state`]).
pub fn build_state(config: ServerConfig) -> anyhow::Result<AppState> {
    config.validate()?;
    if config.store == StoreKind::Clickhouse {
        anyhow::bail!("the clickhouse store is opened with `open_state` (async), not `build_state`");
    }
    let path = config.database_path();
    let store = SqliteStore::open(&path).with_context(|| format!("cannot open the store at {}", path.display()))?;
    Ok(state_with_store(config, Arc::new(store)))
}

/// Opens the configured store (SQLite or ClickHouse) and builds the shared state.
pub async fn open_state(config: ServerConfig) -> anyhow::Result<AppState> {
    let state = open_store_state(config).await?;
    state.auth.refresh().await.context("cannot read the credentials from the store")?;
    Ok(state)
}

async fn open_store_state(config: ServerConfig) -> anyhow::Result<AppState> {
    let store = open_store(&config).await?;
    Ok(state_with_store(config, store))
}

/// Opens the configured store alone (the CLI's `keys`, `projects` and `users` commands use it).
pub async fn open_store(config: &ServerConfig) -> anyhow::Result<Arc<dyn Store>> {
    config.validate()?;
    if config.store == StoreKind::Sqlite {
        let path = config.database_path();
        let store = SqliteStore::open(&path).with_context(|| format!("cannot open the store at {}", path.display()))?;
        return Ok(Arc::new(store));
    }
    let url = config.clickhouse_url.clone().unwrap_or_default();
    let mut clickhouse = ClickHouseConfig::new(&url, &config.clickhouse_database);
    clickhouse.retention_days = config.retention_days;
    clickhouse.min_group_interval = config.clickhouse_min_insert_interval();
    let store = ClickHouseStore::open(clickhouse).await.with_context(|| {
        format!("cannot open the clickhouse store at {url} (database {})", config.clickhouse_database)
    })?;
    Ok(Arc::new(store))
}

/// The pipeline's settings from the server's config.
pub fn pipeline_settings(config: &ServerConfig) -> PipelineSettings {
    config.pipeline_settings()
}

/// The shared state around an open store: the pipeline with its timers, and the retention task (both
/// on the current tokio runtime, when there is one).
pub fn state_with_store(config: ServerConfig, store: Arc<dyn Store>) -> AppState {
    let pipeline =
        Arc::new(Pipeline::new(pipeline_settings(&config), store.clone()).expect("forward config was validated"));
    let counters = pipeline.counters().clone();
    let mode = match config.auth {
        AuthSetting::Auto => AuthMode::Auto,
        AuthSetting::Required => AuthMode::Required,
    };
    let login = LoginSettings { idle: config.login_idle(), absolute: config.login_max() };
    let rates = Rates {
        requests_per_second: config.project_requests_per_second,
        bytes_per_second: config.project_bytes_per_second,
    };
    let limits = Limits::new(rates, config.max_body_bytes as u64);
    let auth = Arc::new(Authenticator::new(store.clone(), mode, login, limits));
    if tokio::runtime::Handle::try_current().is_ok() {
        auth.start_refresh();
        pipeline.start_timers();
        if config.retention_days > 0 {
            tokio::spawn(retention(Arc::downgrade(&store), config.retention_days, counters.clone()));
        }
    }
    let admission = Arc::new(admission::Admission::new(config.max_in_flight_bytes));
    AppState { store, pipeline, counters, config: Arc::new(config), auth, auth_counters: Default::default(), admission }
}

/// The routing policy of a config: ratio, slow rule, and whether dropped traces are handed back (for the
/// tail buffer, or for upstreams that take more than what is kept).
pub fn routing_policy(config: &ServerConfig) -> RoutingPolicy {
    config.routing_policy()
}

/// Deletes what is older than `retention_days` shortly after start and then every hour, until the store
/// is dropped (the ClickHouse store drops its old partitions itself; this asks the embedded one).
async fn retention(store: std::sync::Weak<dyn Store>, days: u32, counters: Arc<Counters>) {
    const FIRST_PASS_AFTER: Duration = Duration::from_secs(10);
    const EVERY: Duration = Duration::from_secs(3600);
    tokio::time::sleep(FIRST_PASS_AFTER).await;
    loop {
        let Some(store) = store.upgrade() else { return };
        let cutoff_ms = now_ms() - i64::from(days) * 86_400_000;
        match store.expire_before(cutoff_ms).await {
            Ok(expired) => {
                Counters::add(&counters.retention_spans_deleted, expired.spans);
                Counters::add(&counters.retention_logs_deleted, expired.logs);
                Counters::add(&counters.retention_metric_points_deleted, expired.metric_points);
                Counters::add(&counters.retention_sessions_deleted, expired.sessions);
                if expired != sessiontrace_store::Totals::default() {
                    tracing::info!(days, ?expired, "retention: deleted data older than the cutoff");
                }
            }
            Err(error) => tracing::warn!(%error, "retention pass failed; trying again in an hour"),
        }
        drop(store);
        tokio::time::sleep(EVERY).await;
    }
}

/// CORS for browsers on other origins (the recorder on a team's pages). Preflights carry no credential,
/// so an origin passes when the config lists it, when some ingest key allows it (authentication on), or
/// when it is a loopback origin (authentication off); the request itself is then checked against its
/// own key's origins. Answers reflect exactly the request's origin.
fn cors(state: &AppState) -> CorsLayer {
    let allowed = state.config.cors_origins.clone();
    let auth = state.auth.clone();
    let origin_allowed = move |origin: &HeaderValue, _: &axum::http::request::Parts| {
        let Ok(origin) = origin.to_str() else { return false };
        if allowed.iter().any(|a| a == origin) {
            return true;
        }
        if auth.enabled() {
            return auth.origin_allowed_by_some_key(origin);
        }
        if !allowed.is_empty() {
            return false;
        }
        let host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(host, _)| host);
        host == "127.0.0.1" || host == "localhost" || host == "[::1]"
    };
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(origin_allowed))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("traceparent"),
            HeaderName::from_static("tracestate"),
        ])
        .expose_headers([HeaderName::from_static("x-trace-id")])
        .max_age(Duration::from_secs(600))
}

/// The router of the API port: sessions, queries, replay events, OTLP/HTTP, health and browser assets.
pub fn api_router(state: AppState) -> Router {
    let ui_dir = state.config.ui_dir.clone();
    let recorder_js = state.config.recorder_js.clone();
    if ui_dir.is_none() && !endpoints::assets::ui_embedded() {
        tracing::warn!(
            "this binary was built with SESSIONTRACE_SKIP_UI=1: it serves a placeholder instead of the web UI"
        );
    }
    let api = Router::new()
        .merge(endpoints::auth::routes())
        .merge(endpoints::sessions::routes())
        .merge(endpoints::query::routes())
        .merge(endpoints::session_export::routes())
        .merge(endpoints::trace_search::routes())
        .merge(endpoints::tempo::routes())
        .merge(endpoints::jaeger::routes())
        .merge(endpoints::correlate::routes())
        .merge(endpoints::events::routes())
        .merge(endpoints::otlp_http::routes())
        .merge(endpoints::health::routes())
        .merge(endpoints::assets::routes(ui_dir.as_deref(), recorder_js.as_deref()))
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::authorize))
        .layer(cors(&state))
        .with_state(state.clone());
    // The MCP tools call `api` in process with the caller's credential; `/mcp` has the same access check.
    let mcp = endpoints::mcp::routes(api.clone(), !state.auth.enabled())
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::authorize));
    mcp.merge(api)
}

/// The router of the OTLP/HTTP port.
pub fn otlp_http_router(state: AppState) -> Router {
    Router::new()
        .merge(endpoints::otlp_http::routes())
        .merge(endpoints::health::routes())
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::authorize))
        .layer(cors(&state))
        .with_state(state)
}

/// Starts every listener and serves until Ctrl-C or SIGTERM.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    // Held until the process ends: a second server on this folder refuses to start.
    let _lock = match config.store {
        StoreKind::Sqlite => Some(lock::DataDirLock::acquire(&config.data_dir)?),
        StoreKind::Clickhouse => None,
    };
    let state = open_state(config).await?;
    let config = state.config.clone();
    let exposed = config.non_loopback_listeners();
    if !exposed.is_empty() && !state.auth.enabled() {
        let (name, address) = exposed[0];
        anyhow::bail!(
            "{name} = {address} is not a loopback address, and authentication is off (no API key and no user \
             yet): anyone who reaches it could read what users typed. Create a key first, e.g. \
             `sessiontrace keys create --project default --kind ingest --data-dir {}` (and a user with \
             `sessiontrace users add NAME --role admin`), or start with `--auth required`",
            config.data_dir.display()
        );
    }
    tracing::info!(authentication = if state.auth.enabled() { "on" } else { "off (loopback only)" }, "access");
    let bind = |address| async move {
        TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))
    };
    let http_listener = bind(config.http).await?;
    let otlp_http_listener = bind(config.otlp_http).await?;
    let grpc_listener = bind(config.otlp_grpc).await?;
    let scheme = if config.tls_cert.is_some() { "https" } else { "http" };
    println!(
        "sessiontrace listening: api+ui {scheme}://{}  otlp/http {scheme}://{}  otlp/grpc {}  data {}",
        http_listener.local_addr()?,
        otlp_http_listener.local_addr()?,
        grpc_listener.local_addr()?,
        match config.store {
            StoreKind::Sqlite => config.database_path().display().to_string(),
            StoreKind::Clickhouse => format!(
                "clickhouse {} database {}",
                config.clickhouse_url.as_deref().unwrap_or_default(),
                config.clickhouse_database
            ),
        }
    );
    tracing::info!(http = %config.http, otlp_http = %config.otlp_http, otlp_grpc = %config.otlp_grpc, "server started");

    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let wait_stop = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::TlsFiles::read(cert, key)?),
        _ => None,
    };
    type Serving = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>>;
    let limits = serve::ConnectionLimits {
        header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
        max_connections: config.max_connections,
    };
    let serve_http = |listener: TcpListener, router: Router| -> anyhow::Result<Serving> {
        // A body with no frame for this long fails (a total deadline is in `endpoints::read_body`).
        let router = router.layer(RequestBodyTimeoutLayer::new(config.body_read_timeout()));
        Ok(match &tls {
            Some(files) => {
                let listener = tls::TlsListener::new(listener, files.rustls_config()?)?;
                Box::pin(serve::serve(listener, router, limits, wait_stop(stop.clone())))
            }
            None => Box::pin(serve::serve(listener, router, limits, wait_stop(stop.clone()))),
        })
    };
    let api = serve_http(http_listener, api_router(state.clone()))?;
    let otlp_http = serve_http(otlp_http_listener, otlp_http_router(state.clone()))?;
    let grpc_incoming = serve::grpc_incoming(grpc_listener, limits);
    // A gRPC request (its body included) gets the body deadline; silent HTTP/2 connections are pinged.
    let mut grpc_server = tonic::transport::Server::builder()
        .timeout(config.body_read_timeout())
        .http2_keepalive_interval(Some(limits.header_read_timeout))
        .http2_keepalive_timeout(Some(limits.header_read_timeout));
    if let Some(files) = &tls {
        grpc_server = grpc_server.tls_config(files.grpc_config()).context("gRPC TLS")?;
    }
    let grpc = grpc_server
        .add_routes(endpoints::otlp_grpc::router(state.clone()))
        .serve_with_incoming_shutdown(grpc_incoming, wait_stop(stop.clone()));

    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_sender.send(true);
    });
    let (api, otlp_http, grpc) = tokio::join!(api, otlp_http, grpc);
    close(&state).await;
    api.context("api server failed")?;
    otlp_http.context("otlp/http server failed")?;
    grpc.context("otlp/grpc server failed")?;
    Ok(())
}

/// After the listeners stopped: give the forwarders a few seconds to deliver their queues, then let the
/// store finish its queued writes and background work.
async fn close(state: &AppState) {
    const FORWARD_GRACE: Duration = Duration::from_secs(5);
    state.pipeline.close(FORWARD_GRACE).await;
    match state.store.close().await {
        Ok(()) => tracing::info!("store closed: every acknowledged write is committed and indexed"),
        Err(error) => tracing::error!(%error, "closing the store failed"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
