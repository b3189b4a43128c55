//! Server settings: defaults in one place ([`ServerConfig::default`]), then a TOML file (`--config`), then
//! `SESSIONTRACE_*` environment variables and command-line flags (applied by the CLI). A bad file fails
//! at start with the field's path and what was expected. The settings every part of the server derives
//! from it (the pipeline's, the routing policy, login session lengths) are methods here too, so that a
//! config that passes [`ServerConfig::from_toml`] is known to produce them (the `config` fuzz target).
//!
//! Its own crate, re-exported as `sessiontrace_server::config`, so that it builds without the server's
//! listeners, stores and embedded UI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use sessiontrace_ingest::IngestConfig;
use sessiontrace_ingest::route::RoutingPolicy;
use sessiontrace_model::masking::MaskingRules;

pub mod forward;
pub mod pipeline;

use forward::{ForwardConfig, ForwardMode};
use pipeline::{ContinuousSettings, PipelineSettings, TailSettings};

/// The longest login lengths [`ServerConfig::validate`] accepts: 10 years. Longer ones overflowed, either
/// the seconds (a panic in debug builds, an arbitrary length in release) or the auth crate's `i64`
/// milliseconds (every login ended at once).
pub const MAX_LOGIN_IDLE_MINUTES: u64 = 10 * 365 * 24 * 60;
pub const MAX_LOGIN_HOURS: u64 = 10 * 365 * 24;

/// Everything the server needs to start.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Folder of the embedded store (`sessiontrace.db` inside it).
    pub data_dir: PathBuf,
    /// OTLP/gRPC listen address.
    pub otlp_grpc: SocketAddr,
    /// OTLP/HTTP listen address (`/v1/traces`, `/v1/logs`, `/v1/metrics`).
    pub otlp_http: SocketAddr,
    /// HTTP API and UI listen address (the OTLP/HTTP paths are served here too, for browsers).
    pub http: SocketAddr,
    /// Largest OTLP request body, compressed or not, in bytes.
    pub max_body_bytes: usize,
    /// Largest replay-events request body, in bytes.
    pub max_replay_chunk_bytes: usize,
    /// Most rrweb events in one replay chunk.
    pub max_events_per_chunk: usize,
    /// Largest attribute string value kept; longer values are cut.
    pub max_attribute_value_bytes: usize,
    /// Share of non-session traces without errors that is kept, 0.0 to 1.0.
    pub sampling_ratio: f64,
    /// Page origins allowed to call the API and OTLP/HTTP from a browser; empty means any
    /// `http://127.0.0.1:*` or `http://localhost:*` origin.
    pub cors_origins: Vec<String>,
    /// Header names masked in addition to the defaults of DESIGN.md section 5.
    pub masked_headers: Vec<String>,
    /// JSON body keys masked in addition to the defaults.
    pub masked_body_keys: Vec<String>,
    /// Built web UI folder (`ui/dist`) served instead of the UI embedded in the binary (UI development).
    pub ui_dir: Option<PathBuf>,
    /// Built recorder bundle (`recorder/dist/recorder.js`) served instead of the embedded one.
    pub recorder_js: Option<PathBuf>,
    /// Storage backend: `sqlite` (embedded, in `data_dir`) or `clickhouse` (`clickhouse_url`).
    pub store: StoreKind,
    /// Base URL of ClickHouse's HTTP interface, for `store = "clickhouse"`.
    pub clickhouse_url: Option<String>,
    /// ClickHouse database of the store's tables (created when missing).
    pub clickhouse_database: String,
    /// Least time between two inserts into a ClickHouse table, in milliseconds (group commit: the writes
    /// that arrive meanwhile share the next insert; a write that finds the writer idle goes at once). 0: the
    /// insert round trip alone spaces them. Higher is more latency and fewer parts for ClickHouse to merge.
    pub clickhouse_min_insert_interval_ms: u64,
    /// Days of data kept (the embedded store deletes older data hourly; the ClickHouse store drops older
    /// daily partitions); 0 keeps everything.
    pub retention_days: u32,
    /// Non-session traces lasting longer than this (the root's duration once seen) are kept; unset
    /// disables the rule (docs/sampling.md).
    pub slow_trace_ms: Option<u64>,
    /// How long a non-session trace the ratio would drop is held in memory, in case a later span shows an
    /// error or a slow root; 0 decides every request on its own. Only used when `sampling_ratio` < 1.
    pub decision_wait_ms: u64,
    /// Memory budget of the traces held for a tail decision; when full, the oldest are decided early.
    pub decision_max_bytes: usize,
    /// Length of a continuous session's rolling window, in seconds.
    pub continuous_window_secs: u64,
    /// Memory budget of one continuous session's window, and of all windows together.
    pub continuous_max_bytes_per_session: usize,
    pub continuous_max_bytes: usize,
    /// Upstream OTLP endpoints fed with a copy of the data (`[[forward]]` tables, docs/sampling.md).
    pub forward: Vec<ForwardConfig>,
    /// `auto`: authentication is on once a key or user exists; `required`: always on.
    pub auth: AuthSetting,
    /// Limits of every project (each key may carry its own too); unset is unlimited.
    pub project_requests_per_second: Option<u64>,
    pub project_bytes_per_second: Option<u64>,
    /// PEM certificate chain and private key: HTTPS and gRPC over TLS on every listener.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Behind a reverse proxy: take the client address and scheme from `X-Forwarded-For` /
    /// `X-Forwarded-Proto` (only set this when the proxy is the only way in).
    pub trust_proxy: bool,
    /// A login session unused this long ends (minutes), and one ends this long after login (hours).
    pub login_idle_minutes: u64,
    pub login_max_hours: u64,
    /// An HTTP request's headers must arrive within this many milliseconds, or the connection is closed
    /// (slow clients); HTTP/2 connections that do not answer a ping within it are closed too.
    pub header_read_timeout_ms: u64,
    /// A request body must arrive within this many milliseconds in total (and no gap between two of its
    /// frames may be longer), or the request fails with 408; gRPC requests get it as their deadline.
    pub body_read_timeout_ms: u64,
    /// Most connections open at once on each HTTP listener; more wait until one closes.
    pub max_connections: usize,
    /// Admission control: most bytes of OTLP requests each receiver (HTTP, gRPC) holds at once, from body
    /// read to answer; a request that does not fit is refused with 503 / `UNAVAILABLE` (retried by
    /// exporters).
    pub max_in_flight_bytes: usize,
}

/// When authentication applies (shared/DESIGN.md section 8).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthSetting {
    /// Off (loopback only) until a key or a user exists, then on.
    #[default]
    Auto,
    /// On from the start, even with no key or user.
    Required,
}

impl std::str::FromStr for AuthSetting {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "auto" => Ok(AuthSetting::Auto),
            "required" => Ok(AuthSetting::Required),
            other => Err(format!("unknown auth setting {other:?}: expected auto or required")),
        }
    }
}

/// Which storage backend the server uses.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The embedded SQLite file (the default).
    #[default]
    Sqlite,
    /// A ClickHouse server or cluster, for several collector replicas.
    Clickhouse,
}

impl std::str::FromStr for StoreKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "sqlite" => Ok(StoreKind::Sqlite),
            "clickhouse" => Ok(StoreKind::Clickhouse),
            other => Err(format!("unknown store {other:?}: expected sqlite or clickhouse")),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("./sessiontrace-data"),
            otlp_grpc: "127.0.0.1:4317".parse().expect("valid address"),
            otlp_http: "127.0.0.1:4318".parse().expect("valid address"),
            http: "127.0.0.1:8080".parse().expect("valid address"),
            max_body_bytes: 16 * 1024 * 1024,
            max_replay_chunk_bytes: 8 * 1024 * 1024,
            max_events_per_chunk: 20_000,
            max_attribute_value_bytes: 256 * 1024,
            sampling_ratio: 1.0,
            cors_origins: Vec::new(),
            masked_headers: Vec::new(),
            masked_body_keys: Vec::new(),
            ui_dir: None,
            recorder_js: None,
            store: StoreKind::Sqlite,
            clickhouse_url: None,
            clickhouse_database: "sessiontrace".into(),
            clickhouse_min_insert_interval_ms: 0,
            retention_days: 30,
            slow_trace_ms: None,
            decision_wait_ms: 5_000,
            decision_max_bytes: 64 * 1024 * 1024,
            continuous_window_secs: 90,
            continuous_max_bytes_per_session: 32 * 1024 * 1024,
            continuous_max_bytes: 256 * 1024 * 1024,
            forward: Vec::new(),
            auth: AuthSetting::Auto,
            project_requests_per_second: None,
            project_bytes_per_second: None,
            tls_cert: None,
            tls_key: None,
            trust_proxy: false,
            login_idle_minutes: 12 * 60,
            login_max_hours: 7 * 24,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 60_000,
            max_connections: 512,
            max_in_flight_bytes: 64 * 1024 * 1024,
        }
    }
}

impl ServerConfig {
    /// The defaults, overlaid with the TOML file at `path` when given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(ServerConfig::default()) };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Parses TOML text over the defaults.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let mut config: ServerConfig = toml::from_str(text)?;
        for (number, forward) in config.forward.iter_mut().enumerate() {
            forward.validate().with_context(|| format!("forward[{number}]"))?;
        }
        config.validate()?;
        Ok(config)
    }

    /// The ClickHouse writer's least time between inserts.
    pub fn clickhouse_min_insert_interval(&self) -> Duration {
        Duration::from_millis(self.clickhouse_min_insert_interval_ms)
    }

    /// The listeners that are not on a loopback address (allowed only with authentication on).
    pub fn non_loopback_listeners(&self) -> Vec<(&'static str, SocketAddr)> {
        [("http", self.http), ("otlp_http", self.otlp_http), ("otlp_grpc", self.otlp_grpc)]
            .into_iter()
            .filter(|(_, address)| !address.ip().is_loopback())
            .collect()
    }

    /// Checks values that types cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            anyhow::bail!("sampling_ratio must be between 0.0 and 1.0, got {}", self.sampling_ratio);
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            anyhow::bail!("tls_cert and tls_key go together: set both (PEM files) or neither");
        }
        if self.continuous_window_secs == 0 {
            anyhow::bail!("continuous_window_secs must be above 0");
        }
        if self.clickhouse_min_insert_interval_ms > 10_000 {
            anyhow::bail!(
                "clickhouse_min_insert_interval_ms must be at most 10000 (every write waits up to that long), got {}",
                self.clickhouse_min_insert_interval_ms
            );
        }
        if self.header_read_timeout_ms == 0
            || self.body_read_timeout_ms == 0
            || self.max_connections == 0
            || self.max_in_flight_bytes == 0
        {
            anyhow::bail!(
                "header_read_timeout_ms, body_read_timeout_ms, max_connections and max_in_flight_bytes must be above 0"
            );
        }
        if self.max_body_bytes == 0 {
            anyhow::bail!("max_body_bytes must be above 0");
        }
        if self.login_idle_minutes > MAX_LOGIN_IDLE_MINUTES || self.login_max_hours > MAX_LOGIN_HOURS {
            anyhow::bail!(
                "login_idle_minutes and login_max_hours must be at most 10 years ({MAX_LOGIN_IDLE_MINUTES} minutes, {MAX_LOGIN_HOURS} hours)"
            );
        }
        if self.store == StoreKind::Clickhouse && self.clickhouse_url.as_deref().is_none_or(str::is_empty) {
            anyhow::bail!("store = \"clickhouse\" needs clickhouse_url (e.g. http://127.0.0.1:8123)");
        }
        Ok(())
    }

    /// The total time a request body may take to arrive.
    pub fn body_read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.body_read_timeout_ms)
    }

    /// The SQLite file inside the data folder.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("sessiontrace.db")
    }

    /// How long an unused login session lasts (at least a minute).
    pub fn login_idle(&self) -> Duration {
        Duration::from_secs(self.login_idle_minutes.clamp(1, MAX_LOGIN_IDLE_MINUTES) * 60)
    }

    /// How long a login session lasts at most (at least an hour); also the login cookie's `Max-Age`.
    pub fn login_max(&self) -> Duration {
        Duration::from_secs(self.login_max_hours.clamp(1, MAX_LOGIN_HOURS) * 3600)
    }

    /// The pipeline's settings.
    pub fn pipeline_settings(&self) -> PipelineSettings {
        let ingest = IngestConfig {
            max_body_bytes: self.max_body_bytes,
            max_attribute_value_bytes: self.max_attribute_value_bytes,
            masking: MaskingRules::with_extra(&self.masked_headers, &self.masked_body_keys),
            routing: self.routing_policy(),
        };
        let tail = (ingest.routing.sampling_ratio < 1.0 && self.decision_wait_ms > 0).then(|| TailSettings {
            decision_wait: Duration::from_millis(self.decision_wait_ms),
            max_bytes: self.decision_max_bytes,
            remember_kept: Duration::from_millis(self.decision_wait_ms.saturating_mul(4).max(60_000)),
        });
        let continuous = ContinuousSettings {
            window: Duration::from_secs(self.continuous_window_secs),
            max_bytes_per_session: self.continuous_max_bytes_per_session,
            max_bytes_total: self.continuous_max_bytes,
        };
        PipelineSettings { ingest, tail, continuous, forward: self.forward.clone() }
    }

    /// The routing policy: ratio, slow rule, and whether dropped traces are handed back (for the tail
    /// buffer, or for upstreams that take more than what is kept).
    pub fn routing_policy(&self) -> RoutingPolicy {
        let tail = self.sampling_ratio < 1.0 && self.decision_wait_ms > 0;
        let forwards_dropped = self.forward.iter().any(|f| f.mode != ForwardMode::Kept);
        RoutingPolicy {
            sampling_ratio: self.sampling_ratio,
            slow_trace_ns: self.slow_trace_ms.map(|ms| ms.saturating_mul(1_000_000)),
            hold_dropped: self.sampling_ratio < 1.0 && (tail || forwards_dropped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_example_config_is_the_defaults() {
        let example = include_str!("../../../packaging/sessiontrace.toml");
        assert_eq!(ServerConfig::from_toml(example).unwrap(), ServerConfig::default());
    }

    #[test]
    fn file_overrides_defaults_and_unknown_fields_fail() {
        let config = ServerConfig::from_toml("http = \"127.0.0.1:9000\"\nsampling_ratio = 0.5\n").unwrap();
        assert_eq!(config.http.port(), 9000);
        assert_eq!(config.otlp_grpc.port(), 4317);
        let error = ServerConfig::from_toml("htp = \"127.0.0.1:9000\"").unwrap_err();
        assert!(format!("{error:#}").contains("unknown field `htp`"), "{error:#}");
        let error = ServerConfig::from_toml("sampling_ratio = 2.0").unwrap_err();
        assert!(error.to_string().contains("sampling_ratio"), "{error}");
        let error = ServerConfig::from_toml("tls_cert = \"/x.pem\"").unwrap_err();
        assert!(error.to_string().contains("tls_key"), "{error}");
        let config =
            ServerConfig::from_toml("store = \"clickhouse\"\nclickhouse_url = \"http://127.0.0.1:8123\"").unwrap();
        assert_eq!((config.store, config.clickhouse_database.as_str()), (StoreKind::Clickhouse, "sessiontrace"));
        let error = ServerConfig::from_toml("store = \"clickhouse\"").unwrap_err();
        assert!(error.to_string().contains("clickhouse_url"), "{error}");
        let error = ServerConfig::from_toml("store = \"postgres\"").unwrap_err();
        assert!(format!("{error:#}").contains("unknown variant"), "{error:#}");
        let config = ServerConfig::from_toml(
            "sampling_ratio = 0.1\nslow_trace_ms = 2000\n[[forward]]\nendpoint = \"http://127.0.0.1:4318/\"\nmode = \"non-session\"\nheaders = { x-api-key = \"k\" }\n",
        )
        .unwrap();
        assert_eq!((config.slow_trace_ms, config.forward[0].endpoint.as_str()), (Some(2000), "http://127.0.0.1:4318"));
        assert_eq!(config.forward[0].mode, ForwardMode::NonSession);
        let error =
            ServerConfig::from_toml("[[forward]]\nendpoint = \"https://apm\"\nca_file = \"/nonexistent/ca.pem\"")
                .unwrap_err();
        let expected = "forward[0]: forward endpoint https://apm: cannot read the forward ca_file /nonexistent/ca.pem";
        assert!(format!("{error:#}").contains(expected), "{error:#}");
    }

    /// Found while writing the `config` fuzz target (it checks that the lengths fit `i64` milliseconds):
    /// `login_idle_minutes * 60` and `login_max_hours * 3600` overflowed for values a file may hold.
    #[test]
    fn login_lengths_are_bounded_and_never_overflow() {
        let error = ServerConfig::from_toml("login_idle_minutes = 400000000000000000").unwrap_err();
        assert!(error.to_string().contains("login_idle_minutes"), "{error}");
        let error = ServerConfig::from_toml("login_max_hours = 5200000000000000").unwrap_err();
        assert!(error.to_string().contains("login_max_hours"), "{error}");
        let config = ServerConfig::from_toml("login_idle_minutes = 5256000\nlogin_max_hours = 0").unwrap();
        assert_eq!(config.login_idle(), Duration::from_secs(MAX_LOGIN_IDLE_MINUTES * 60));
        assert_eq!(config.login_max(), Duration::from_secs(3600));
        let unchecked = ServerConfig { login_idle_minutes: u64::MAX, login_max_hours: u64::MAX, ..Default::default() };
        assert_eq!(unchecked.login_idle(), Duration::from_secs(MAX_LOGIN_IDLE_MINUTES * 60));
        assert_eq!(unchecked.login_max(), Duration::from_secs(MAX_LOGIN_HOURS * 3600));
    }
}
