//! Serving over TLS (`--tls-cert`, `--tls-key`): rustls with the `ring` provider, TLS 1.2 and 1.3, ALPN
//! h2 and http/1.1. HTTP listeners accept TCP connections and hand each to a handshake task, so a slow
//! or silent client never holds up the others; finished handshakes queue for axum ([`TlsListener`]).
//! gRPC uses tonic's own TLS with the same files.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::Listener;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The certificate chain and key, read and checked at start.
pub struct TlsFiles {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl TlsFiles {
    pub fn read(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let cert_pem = std::fs::read(cert).with_context(|| format!("cannot read tls_cert {}", cert.display()))?;
        let key_pem = std::fs::read(key).with_context(|| format!("cannot read tls_key {}", key.display()))?;
        let files = TlsFiles { cert_pem, key_pem };
        files.rustls_config().context("tls_cert and tls_key do not make a TLS identity")?;
        Ok(files)
    }

    /// The rustls server config of these files.
    pub fn rustls_config(&self) -> anyhow::Result<rustls::ServerConfig> {
        let certs = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .context("tls_cert is not a PEM certificate chain")?;
        anyhow::ensure!(!certs.is_empty(), "tls_cert holds no certificate");
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem).context("tls_key is not a PEM private key")?;
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// tonic's identity for the gRPC listener.
    pub fn grpc_config(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(&self.cert_pem, &self.key_pem))
    }
}

/// A listener whose connections are TLS streams whose handshake is done.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: rustls::ServerConfig) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (sender, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::debug!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let ready = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = ready.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
                if sender.is_closed() {
                    return;
                }
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accept task only ends when this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The client's socket address, for plain and TLS listeners alike (set by `serve`).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);
