//! The demo shop: four small HTTP services instrumented with `sessiontrace-sdk`, for `sessiontrace demo`
//! and the end-to-end tests.
//!
//! ```text
//! browser page / driver ──► gateway :3000 ──► orders :3001 ──► inventory :3002 (SQLite)
//!                              │                 └───────────► payment :3003 (sometimes fails)
//!                              └──────────────────────────────► inventory (product list)
//! ```
//! - [`gateway`]: the page (with the browser recorder), `POST /api/login` (a password in its JSON body),
//!   `GET /api/products`, `POST /api/checkout`, `GET /api/forecast` (fails slowly, via inventory).
//! - [`orders`]: `POST /orders` (reserve stock, then pay) and the W3C Trace Context test harness endpoint
//!   `POST /test`.
//! - [`inventory`]: products in SQLite; each query is a `db` client span; a forecast that fails slowly.
//! - [`payment`]: declines card numbers ending in `0002`, and fails at random at a configurable rate.
//!
//! Every service exports spans and `tracing` logs over OTLP ([`telemetry`]); run one with
//! [`serve`] (each in its own process, so each has its own `service.name`).

pub mod gateway;
pub mod inventory;
pub mod orders;
pub mod page;
pub mod payment;
pub mod telemetry;

use std::net::SocketAddr;

use anyhow::Context as _;

/// One of the demo's services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    Gateway,
    Orders,
    Inventory,
    Payment,
}

impl Service {
    /// Every service, in start order (downstream first).
    pub const ALL: [Service; 4] = [Service::Inventory, Service::Payment, Service::Orders, Service::Gateway];

    /// The `service.name` of its telemetry.
    pub fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Orders => "orders",
            Service::Inventory => "inventory",
            Service::Payment => "payment",
        }
    }
}

/// Where every service listens, and the sessiontrace API the page loads the recorder from.
#[derive(Debug, Clone, clap::Args)]
pub struct Topology {
    /// Gateway address (the page and the public API).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub gateway: SocketAddr,
    /// Orders service address (also serves the W3C harness endpoint `POST /test`).
    #[arg(long, default_value = "127.0.0.1:3001")]
    pub orders: SocketAddr,
    /// Inventory service address.
    #[arg(long, default_value = "127.0.0.1:3002")]
    pub inventory: SocketAddr,
    /// Payment service address.
    #[arg(long, default_value = "127.0.0.1:3003")]
    pub payment: SocketAddr,
    /// The sessiontrace API the page loads `/recorder.js` from and records to.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub sessiontrace_api: String,
    /// Share of payments that fail at random (0.0 to 1.0).
    #[arg(long, default_value_t = 0.2)]
    pub payment_failure_rate: f64,
}

impl Topology {
    /// The address of `service`.
    pub fn address(&self, service: Service) -> SocketAddr {
        match service {
            Service::Gateway => self.gateway,
            Service::Orders => self.orders,
            Service::Inventory => self.inventory,
            Service::Payment => self.payment,
        }
    }

    /// `http://<address>` of `service`.
    pub fn url(&self, service: Service) -> String {
        format!("http://{}", self.address(service))
    }
}

/// Runs `service` until Ctrl-C or SIGTERM. Telemetry must be set up first ([`telemetry::install`]).
pub async fn serve(service: Service, topology: Topology) -> anyhow::Result<()> {
    let address = topology.address(service);
    if !address.ip().is_loopback() {
        anyhow::bail!("the demo services bind loopback only, not {address}");
    }
    let router = match service {
        Service::Gateway => gateway::router(&topology),
        Service::Orders => orders::router(&topology),
        Service::Inventory => inventory::router()?,
        Service::Payment => payment::router(topology.payment_failure_rate),
    };
    let listener =
        tokio::net::TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!(service = service.name(), %address, "demo service listening");
    axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let Ok(mut terminate) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// A JSON error answer.
pub(crate) fn error_json(status: axum::http::StatusCode, message: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (status, axum::Json(serde_json::json!({"error": message}))).into_response()
}

/// `GET /healthz` → `ok` and an empty `/favicon.ico`, on every service, untraced.
pub(crate) fn health_routes() -> axum::Router {
    axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/favicon.ico", axum::routing::get(|| async { axum::http::StatusCode::NO_CONTENT }))
}
