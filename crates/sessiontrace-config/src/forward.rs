//! An upstream's settings (`[[forward]]` in the config file, `--forward URL,...` on the command line): the
//! endpoint, protocol, mode, headers, compression, queue, retries and TLS files, and their checks. The
//! sending itself is `sessiontrace_pipeline::forward`; these types live here so that reading and checking a
//! config needs neither the pipeline nor a TLS stack.
//!
//! [`ForwardConfig::validate`] reads the TLS files and checks that they hold PEM certificates and a key
//! ([`ForwardConfig::tls_files`]), so a bad path or PEM fails the start, not the first send.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// What an upstream receives.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardMode {
    /// Everything received (session traces included), before sampling.
    #[default]
    All,
    /// Everything but session traces and their logs, before sampling.
    NonSession,
    /// What the routing policy kept (session, error, slow and probability-kept traces).
    Kept,
}

/// How request bodies (gRPC messages) to an upstream are compressed.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ForwardCompression {
    /// What every OTLP receiver accepts (level 1 over HTTP; tonic uses level 6 for gRPC).
    #[default]
    Gzip,
    /// zstd level 1 (HTTP) / tonic's zstd (gRPC): a fraction of gzip's CPU at a better ratio; the
    /// OpenTelemetry Collector and sessiontrace accept it, not every vendor does.
    Zstd,
    None,
}

/// The wire protocol of an upstream.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ForwardProtocol {
    /// OTLP/HTTP with protobuf bodies (`/v1/traces`, `/v1/logs`, `/v1/metrics` appended to the endpoint).
    #[default]
    Http,
    /// OTLP/gRPC.
    Grpc,
}

/// One upstream OTLP endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// Name in metrics and logs [default: the endpoint].
    pub name: String,
    /// Base URL, e.g. `http://127.0.0.1:4318` (HTTP), `http://127.0.0.1:4317` (gRPC) or
    /// `https://otlp.example.com` (TLS).
    pub endpoint: String,
    pub protocol: ForwardProtocol,
    pub mode: ForwardMode,
    /// Extra request headers (gRPC metadata), e.g. `{"x-api-key" = "..."}`.
    pub headers: BTreeMap<String, String>,
    /// Compression of request bodies.
    pub compression: ForwardCompression,
    /// Payloads (requests) waiting for this upstream; over it new payloads are dropped and counted.
    pub queue_capacity: usize,
    /// Retries of one payload after the first attempt, with exponential backoff.
    pub max_retries: u32,
    /// First backoff; doubled on every retry up to `max_backoff_ms`.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Timeout of one attempt.
    pub timeout_ms: u64,
    /// Requests in flight at once to this upstream (sender tasks draining its queue).
    pub concurrency: usize,
    /// PEM file of the CAs to trust for an `https://` endpoint instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for upstreams that require mutual TLS; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            name: String::new(),
            endpoint: String::new(),
            protocol: ForwardProtocol::Http,
            mode: ForwardMode::All,
            headers: BTreeMap::new(),
            compression: ForwardCompression::Gzip,
            queue_capacity: 1_000,
            max_retries: 5,
            initial_backoff_ms: 200,
            max_backoff_ms: 5_000,
            timeout_ms: 10_000,
            concurrency: 4,
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }
}

impl ForwardConfig {
    /// True for an `https://` endpoint.
    pub fn is_tls(&self) -> bool {
        self.endpoint.starts_with("https://")
    }

    /// Checks the endpoint, headers and TLS files; names the upstream after the endpoint when unnamed.
    pub fn validate(&mut self) -> anyhow::Result<()> {
        if !self.endpoint.starts_with("http://") && !self.is_tls() {
            anyhow::bail!("forward endpoint must start with http:// or https://, got {:?}", self.endpoint);
        }
        if self.endpoint.parse::<http::Uri>().is_err() {
            anyhow::bail!("forward endpoint {:?} is not a valid URL", self.endpoint);
        }
        if self.is_tls() {
            self.tls_files().map_err(|e| anyhow::anyhow!("forward endpoint {}: {e}", self.endpoint))?;
        } else if self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some() {
            anyhow::bail!(
                "forward endpoint {}: ca_file, cert_file and key_file are for https:// endpoints",
                self.endpoint
            );
        }
        if self.queue_capacity == 0 {
            anyhow::bail!("forward queue_capacity must be above 0");
        }
        if !(1..=256).contains(&self.concurrency) {
            anyhow::bail!("forward concurrency must be 1 to 256, got {}", self.concurrency);
        }
        for (name, value) in &self.headers {
            let header_ok = http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && http::HeaderValue::from_str(value).is_ok()
                // gRPC metadata: names ending in `-bin` carry binary values, which these are not.
                && !name.to_ascii_lowercase().ends_with("-bin");
            if !header_ok {
                anyhow::bail!("forward header {name:?} is not a valid lowercase header name with an ASCII value");
            }
        }
        self.endpoint = self.endpoint.trim_end_matches('/').to_string();
        if self.name.is_empty() {
            self.name = self.endpoint.clone();
        }
        Ok(())
    }

    /// Reads the TLS files and checks what they hold: the CA certificates of `ca_file` (none: trust the
    /// system's) and the client certificate chain and key of `cert_file` + `key_file`.
    pub fn tls_files(&self) -> anyhow::Result<ForwardTlsFiles> {
        let read = |path: &std::path::Path, what: &str| {
            std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read the {what} {}: {e}", path.display()))
        };
        let ca_pem = self.ca_file.as_deref().map(|path| read(path, "forward ca_file")).transpose()?;
        let ca = match &ca_pem {
            Some(pem) => Some(pem_certificates(pem, "ca_file")?),
            None => None,
        };
        let identity_pem = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some((read(cert, "forward cert_file")?, read(key, "forward key_file")?)),
            (None, None) => None,
            _ => anyhow::bail!("forward cert_file and key_file go together (a client certificate and its key)"),
        };
        let identity = match &identity_pem {
            Some((cert_pem, key_pem)) => {
                let certs = pem_certificates(cert_pem, "cert_file")?;
                let key = PrivateKeyDer::from_pem_slice(key_pem)
                    .map_err(|e| anyhow::anyhow!("forward key_file holds no PEM private key: {e}"))?;
                Some((certs, key))
            }
            None => None,
        };
        Ok(ForwardTlsFiles { ca_pem, ca, identity_pem, identity })
    }
}

/// The certificates in a PEM file, at least one.
fn pem_certificates(pem: &[u8], setting: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("forward {setting} is not PEM certificates: {e}"))?;
    anyhow::ensure!(!certs.is_empty(), "forward {setting} holds no certificate");
    Ok(certs)
}

/// An upstream's TLS files, read and parsed ([`ForwardConfig::tls_files`]): the PEM text (for tonic) and the
/// certificates and key in it (for rustls).
pub struct ForwardTlsFiles {
    pub ca_pem: Option<Vec<u8>>,
    /// The CAs to trust instead of the system's.
    pub ca: Option<Vec<CertificateDer<'static>>>,
    /// The client certificate chain and key, as PEM.
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    pub identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

/// The command-line form: `URL[,mode=all|non-session|kept][,protocol=http|grpc][,compression=gzip|zstd|none]
/// [,header=NAME:VALUE]...[,name=NAME][,queue=N][,retries=N][,concurrency=N][,ca=PEM][,cert=PEM,key=PEM]`.
impl std::str::FromStr for ForwardConfig {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split(',');
        let mut config =
            ForwardConfig { endpoint: parts.next().unwrap_or_default().trim().to_string(), ..Default::default() };
        for part in parts {
            let (key, value) = part.split_once('=').ok_or_else(|| format!("expected key=value, got {part:?}"))?;
            match key.trim() {
                "mode" => {
                    let modes = [
                        ("all", ForwardMode::All),
                        ("non-session", ForwardMode::NonSession),
                        ("kept", ForwardMode::Kept),
                    ];
                    config.mode = choice("mode", value, &modes)?;
                }
                "protocol" => {
                    config.protocol =
                        choice("protocol", value, &[("http", ForwardProtocol::Http), ("grpc", ForwardProtocol::Grpc)])?;
                }
                "compression" => {
                    let kinds = [
                        ("gzip", ForwardCompression::Gzip),
                        ("zstd", ForwardCompression::Zstd),
                        ("none", ForwardCompression::None),
                    ];
                    config.compression = choice("compression", value, &kinds)?;
                }
                // The older spelling of compression=none / gzip.
                "gzip" => {
                    let gzip: bool = value.parse().map_err(|_| format!("gzip must be true or false, got {value:?}"))?;
                    config.compression = if gzip { ForwardCompression::Gzip } else { ForwardCompression::None };
                }
                "header" => {
                    let (name, header_value) =
                        value.split_once(':').ok_or_else(|| format!("header must be NAME:VALUE, got {value:?}"))?;
                    config.headers.insert(name.trim().to_lowercase(), header_value.trim().to_string());
                }
                "name" => config.name = value.to_string(),
                "queue" => config.queue_capacity = value.parse().map_err(|_| format!("bad queue size {value:?}"))?,
                "retries" => config.max_retries = value.parse().map_err(|_| format!("bad retries {value:?}"))?,
                "concurrency" => {
                    config.concurrency = value.parse().map_err(|_| format!("bad concurrency {value:?}"))?
                }
                "ca" => config.ca_file = Some(PathBuf::from(value)),
                "cert" => config.cert_file = Some(PathBuf::from(value)),
                "key" => config.key_file = Some(PathBuf::from(value)),
                other => return Err(format!("unknown forward option {other:?}")),
            }
        }
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
}

/// The option named `value` of a command-line setting, or an error listing the names.
fn choice<T: Copy>(setting: &str, value: &str, options: &[(&str, T)]) -> Result<T, String> {
    if let Some((_, option)) = options.iter().find(|(name, _)| *name == value) {
        return Ok(*option);
    }
    let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
    let (last, rest) = names.split_last().expect("options are listed");
    Err(format!("{setting} must be {} or {last}, got {value:?}", rest.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_form() {
        let config: ForwardConfig =
            "http://127.0.0.1:4317/,mode=non-session,protocol=grpc,header=X-Api-Key:abc,gzip=false".parse().unwrap();
        assert_eq!(config.endpoint, "http://127.0.0.1:4317");
        assert_eq!(
            (config.mode, config.protocol, config.compression),
            (ForwardMode::NonSession, ForwardProtocol::Grpc, ForwardCompression::None)
        );
        let zstd: ForwardConfig = "http://127.0.0.1:4318,compression=zstd".parse().unwrap();
        assert_eq!(zstd.compression, ForwardCompression::Zstd);
        assert!("http://x,compression=lz4".parse::<ForwardConfig>().unwrap_err().contains("gzip, zstd or none"));
        assert_eq!(config.headers["x-api-key"], "abc");
        assert_eq!(config.name, "http://127.0.0.1:4317");
        let error = "https://apm.example.com,ca=/nonexistent.pem".parse::<ForwardConfig>().unwrap_err();
        assert!(error.contains("cannot read the forward ca_file /nonexistent.pem"), "{error}");
        let error = "http://127.0.0.1:4318,ca=/etc/hostname".parse::<ForwardConfig>().unwrap_err();
        assert!(error.contains("are for https:// endpoints"), "{error}");
        let error = "https://apm.example.com,cert=/etc/hostname".parse::<ForwardConfig>().unwrap_err();
        assert!(error.contains("go together"), "{error}");
        assert!("ftp://x".parse::<ForwardConfig>().unwrap_err().contains("must start with http:// or https://"));
        let not_pem = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_pem.path(), "not a certificate").unwrap();
        let error =
            format!("https://apm.example.com,ca={}", not_pem.path().display()).parse::<ForwardConfig>().unwrap_err();
        assert!(error.contains("ca_file holds no certificate"), "{error}");
        let error = format!("https://apm.example.com,cert={0},key={0}", not_pem.path().display())
            .parse::<ForwardConfig>()
            .unwrap_err();
        assert!(error.contains("cert_file holds no certificate"), "{error}");
        assert!("http://x,mode=some".parse::<ForwardConfig>().unwrap_err().contains("mode must be"));
    }
}
