//! Server settings: defaults in one place ([`ServerConfig::default`]), then a TOML file (`--config`), then
//! `SESSIONTRACE_*` environment variables and command-line flags (applied by the CLI). A bad file fails
//! at start with the field's path and what was expected.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

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
    /// Built web UI folder (`ui/dist`); found next to the working directory or the binary when unset.
    pub ui_dir: Option<PathBuf>,
    /// Built recorder bundle (`recorder/dist/recorder.js`); found like `ui_dir` when unset.
    pub recorder_js: Option<PathBuf>,
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
        let config: ServerConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that types cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            anyhow::bail!("sampling_ratio must be between 0.0 and 1.0, got {}", self.sampling_ratio);
        }
        for (name, address) in [("http", self.http), ("otlp_http", self.otlp_http), ("otlp_grpc", self.otlp_grpc)] {
            if !address.ip().is_loopback() {
                anyhow::bail!(
                    "{name} = {address}: sessiontrace binds loopback addresses only until API keys are configured \
                     (shared/DESIGN.md section 8); put a proxy with authentication in front of it"
                );
            }
        }
        if self.max_body_bytes == 0 {
            anyhow::bail!("max_body_bytes must be above 0");
        }
        Ok(())
    }

    /// The SQLite file inside the data folder.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("sessiontrace.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_unknown_fields_fail() {
        let config = ServerConfig::from_toml("http = \"127.0.0.1:9000\"\nsampling_ratio = 0.5\n").unwrap();
        assert_eq!(config.http.port(), 9000);
        assert_eq!(config.otlp_grpc.port(), 4317);
        let error = ServerConfig::from_toml("htp = \"127.0.0.1:9000\"").unwrap_err();
        assert!(format!("{error:#}").contains("unknown field `htp`"), "{error:#}");
        let error = ServerConfig::from_toml("sampling_ratio = 2.0").unwrap_err();
        assert!(error.to_string().contains("sampling_ratio"), "{error}");
        let error = ServerConfig::from_toml("http = \"0.0.0.0:8080\"").unwrap_err();
        assert!(error.to_string().contains("loopback"), "{error}");
    }
}
