//! The sending side of one upstream: OTLP/HTTP protobuf over hyper (plain or rustls) or OTLP/gRPC over
//! tonic, with the configured headers, compression (gzip, zstd or none), a timeout per attempt, and TLS
//! for `https://` endpoints.
//!
//! TLS uses rustls with the `ring` crypto provider. The trusted roots are the system's (`/etc/ssl/certs`
//! through rustls-native-certs) or, when `ca_file` is set, only the CAs in that PEM file (a private CA or
//! a self-signed upstream). `cert_file` + `key_file` add a client certificate for upstreams that require
//! mutual TLS. The same files configure both protocols; they are read and checked when the config is
//! validated (`sessiontrace_config::forward`), and given to rustls when the forwarder starts, so a bad path,
//! PEM or key fails the start, not the first send.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sessiontrace_config::forward::ForwardTlsFiles;

use super::{ForwardCompression, ForwardConfig, ForwardProtocol, Payload};
use crate::codec::PassThrough;

/// The PEM files of an upstream's TLS settings, read and parsed once.
pub(super) struct TlsFiles(ForwardTlsFiles);

impl TlsFiles {
    /// Reads the configured files ([`ForwardConfig::tls_files`]) and checks that rustls takes them.
    pub(super) fn load(config: &ForwardConfig) -> anyhow::Result<Self> {
        let files = TlsFiles(config.tls_files()?);
        files.rustls_config()?;
        Ok(files)
    }

    /// A rustls client config: ring, TLS 1.2 and 1.3, the configured or system roots, the client
    /// certificate if any.
    fn rustls_config(&self) -> anyhow::Result<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.0.ca {
            Some(certs) => {
                for cert in certs {
                    roots
                        .add(cert.clone())
                        .map_err(|e| anyhow::anyhow!("forward ca_file holds a bad certificate: {e}"))?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                let (added, _ignored) = roots.add_parsable_certificates(native.certs);
                if added == 0 {
                    anyhow::bail!(
                        "no trusted CA certificates in the system store ({:?}); install ca-certificates or set the \
                         forward's ca_file",
                        native.errors
                    );
                }
            }
        }
        let identity = self.0.identity.as_ref().map(|(certs, key)| (certs.clone(), key.clone_key()));
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        Ok(match identity {
            Some((certs, key)) => builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| anyhow::anyhow!("forward cert_file and key_file do not make a client identity: {e}"))?,
            None => builder.with_no_client_auth(),
        })
    }

    fn tonic_config(&self) -> tonic::transport::ClientTlsConfig {
        let mut tls = tonic::transport::ClientTlsConfig::new();
        tls = match &self.0.ca_pem {
            Some(pem) => tls.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
            None => tls.with_native_roots(),
        };
        if let Some((cert, key)) = &self.0.identity_pem {
            tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        tls
    }
}

/// The sending side of one upstream.
pub(super) enum Client {
    Http { client: Box<HttpClient>, headers: http::HeaderMap },
    Grpc { channel: tonic::transport::Channel, metadata: Vec<GrpcHeader> },
}

type HttpClient = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One configured header as gRPC metadata.
type GrpcHeader =
    (tonic::metadata::MetadataKey<tonic::metadata::Ascii>, tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

/// Why one attempt failed.
pub(super) enum Failure {
    Retry(String),
    Permanent(String),
}

/// zstd level 1 with a compression context kept per thread (making one costs about as much as
/// compressing a 100 KB payload).
fn zstd_compress(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Compressor::new(1)?);
        }
        slot.as_mut().expect("set above").compress(bytes)
    })
}

/// An error with its sources, e.g. "client error (Connect): invalid peer certificate: UnknownIssuer".
fn with_sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Client {
    pub(super) fn new(config: &ForwardConfig) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let tls = config
            .is_tls()
            .then(|| TlsFiles::load(config))
            .transpose()
            .map_err(|e| anyhow::anyhow!("forward endpoint {}: {e}", config.endpoint))?;
        Ok(match config.protocol {
            ForwardProtocol::Http => {
                let mut headers = http::HeaderMap::new();
                for (name, value) in &config.headers {
                    headers.insert(http::HeaderName::from_bytes(name.as_bytes())?, http::HeaderValue::from_str(value)?);
                }
                let mut tcp = HttpConnector::new();
                tcp.enforce_http(false);
                tcp.set_nodelay(true);
                tcp.set_connect_timeout(Some(timeout));
                // Plain endpoints never use the TLS config; an empty root store keeps them from reading the
                // system's certificates for nothing.
                let tls_config = match &tls {
                    Some(tls) => tls.rustls_config()?,
                    None => {
                        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                            .with_safe_default_protocol_versions()?
                            .with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth()
                    }
                };
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls_config)
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(tcp);
                let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
                Client::Http { client: Box::new(client), headers }
            }
            ForwardProtocol::Grpc => {
                let mut endpoint = tonic::transport::Endpoint::from_shared(config.endpoint.clone())?
                    .timeout(timeout)
                    .connect_timeout(timeout);
                if let Some(tls) = &tls {
                    endpoint = endpoint.tls_config(tls.tonic_config())?;
                }
                let mut metadata = Vec::new();
                for (name, value) in &config.headers {
                    metadata.push((name.parse()?, value.parse()?));
                }
                Client::Grpc { channel: endpoint.connect_lazy(), metadata }
            }
        })
    }

    pub(super) async fn send(&self, config: &ForwardConfig, payload: &Payload) -> Result<(), Failure> {
        match self {
            Client::Http { client, headers } => {
                let mut request = http::Request::post(format!("{}{}", config.endpoint, payload.signal.http_path()))
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf");
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                let body = match config.compression {
                    ForwardCompression::Gzip => {
                        use std::io::Write;
                        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                        encoder.write_all(&payload.protobuf).map_err(|e| Failure::Permanent(e.to_string()))?;
                        request = request.header(http::header::CONTENT_ENCODING, "gzip");
                        encoder.finish().map_err(|e| Failure::Permanent(e.to_string()))?
                    }
                    ForwardCompression::Zstd => {
                        request = request.header(http::header::CONTENT_ENCODING, "zstd");
                        zstd_compress(&payload.protobuf).map_err(|e| Failure::Permanent(e.to_string()))?
                    }
                    ForwardCompression::None => payload.protobuf.clone(),
                };
                let request =
                    request.body(Full::new(Bytes::from(body))).map_err(|e| Failure::Permanent(e.to_string()))?;
                let timeout = Duration::from_millis(config.timeout_ms);
                let exchange = async {
                    let response = client.request(request).await.map_err(|e| Failure::Retry(with_sources(&e)))?;
                    let status = response.status();
                    let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    Ok((status, body))
                };
                let (status, body) = tokio::time::timeout(timeout, exchange)
                    .await
                    .map_err(|_| Failure::Retry(format!("no answer within {timeout:?}")))??;
                if status.is_success() {
                    return Ok(());
                }
                let shown = &body[..body.len().min(512)];
                let message = format!("{status}: {}", String::from_utf8_lossy(shown));
                if status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408 {
                    Err(Failure::Retry(message))
                } else {
                    Err(Failure::Permanent(message))
                }
            }
            Client::Grpc { channel, metadata } => {
                // The payload is sent as the protobuf it already is (no decode and re-encode).
                let mut grpc = tonic::client::Grpc::new(channel.clone());
                match config.compression {
                    ForwardCompression::Gzip => grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip),
                    ForwardCompression::Zstd => grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Zstd),
                    ForwardCompression::None => {}
                }
                let mut request = tonic::Request::new(payload.protobuf.clone());
                for (key, value) in metadata {
                    request.metadata_mut().insert(key.clone(), value.clone());
                }
                let path = http::uri::PathAndQuery::from_static(payload.signal.grpc_path());
                let result = match grpc.ready().await {
                    Ok(()) => grpc.unary(request, path, PassThrough).await.map(|_| ()),
                    Err(error) => Err(tonic::Status::unavailable(with_sources(&error))),
                };
                result.map_err(|status| {
                    use tonic::Code;
                    let message = match std::error::Error::source(&status) {
                        Some(cause) => format!("{:?}: {}: {}", status.code(), status.message(), with_sources(cause)),
                        None => format!("{:?}: {}", status.code(), status.message()),
                    };
                    match status.code() {
                        Code::InvalidArgument
                        | Code::Unimplemented
                        | Code::Unauthenticated
                        | Code::PermissionDenied => Failure::Permanent(message),
                        _ => Failure::Retry(message),
                    }
                })
            }
        }
    }
}
