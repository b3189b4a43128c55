//! Serving the HTTP routers (API and OTLP/HTTP, plain or TLS) so that slow or idle clients cannot hold
//! the server: a request's headers must arrive within `header_read_timeout_ms` (hyper's header read
//! timeout, and before it a deadline of our own for the first request, while hyper still waits for the
//! bytes that tell HTTP/1 from HTTP/2: a slowloris client sending a byte a second is closed), a listener keeps at most
//! `max_connections` connections open (the next client waits in the kernel's backlog until one closes),
//! and stopping waits for the open connections to finish. Bodies are bounded in time by the routers:
//! tower-http's `RequestBodyTimeoutLayer` (no frame for `body_read_timeout_ms`) and a total deadline in
//! `endpoints::read_body`. Connections then go to the router, with the client's address as
//! `ConnectInfo<ClientAddr>`.
//!
//! The gRPC listener gets the same bounds through [`grpc_incoming`], the stream of connections tonic
//! serves: at most `max_connections` open (a connection's slot is given back when tonic drops it), and a
//! connection whose first bytes do not arrive within `header_read_timeout_ms` is closed before tonic sees
//! it. HTTP/2 keep-alive pings (set on tonic's builder) then close connections whose peer went silent.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tower::ServiceExt;

use crate::tls::ClientAddr;

/// How long and how many: the bounds of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request's headers must be complete within this (HTTP/1; HTTP/2 pings idle connections).
    pub header_read_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `stop` completes, then waits for the open connections to end.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut stop => break,
        };
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        // hyper's timeout starts once it knows the protocol, and finding that out waits for the client's
        // first bytes: until the first request's headers are in, this task's own deadline holds.
        let first_request = Arc::new(Notify::new());
        let seen = first_request.clone();
        let service = router.clone().map_request(move |mut request: axum::http::Request<Incoming>| {
            seen.notify_one();
            request.extensions_mut().insert(ConnectInfo(ClientAddr(peer)));
            request
        });
        let connection =
            builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service)).into_owned();
        let connection = graceful.watch(connection);
        let header_read_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let mut connection = std::pin::pin!(connection);
            let early = tokio::select! {
                result = connection.as_mut() => Some(result),
                () = first_request.notified() => None,
                () = tokio::time::sleep(header_read_timeout) => {
                    tracing::debug!(%peer, "no request within the header read timeout: connection closed");
                    return;
                }
            };
            let result = match early {
                Some(result) => result,
                None => connection.await,
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A gRPC connection holding one of its listener's `max_connections` slots until tonic drops it.
pub struct LimitedConnection {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
}

/// The connections `listener` accepts, for tonic's `serve_with_incoming`, within `limits`: at most
/// `max_connections` at once (the listener stops accepting while all are taken), each only once its
/// first bytes arrived within `header_read_timeout`. Accepting stops when tonic drops the stream.
pub fn grpc_incoming(
    listener: TcpListener,
    limits: ConnectionLimits,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<LimitedConnection>> {
    let (sender, receiver) = mpsc::channel(limits.max_connections.max(1));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = sender.closed() => return,
                accepted = async {
                    let slot = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
                    (slot, listener.accept().await)
                } => accepted,
            };
            let (slot, stream, peer) = match accepted {
                (slot, Ok((stream, peer))) => (slot, stream, peer),
                (_, Err(error)) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "accepting a gRPC connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let sender = sender.clone();
            tokio::spawn(async move {
                // `peek` waits for a byte that is really there (`readable` may wake spuriously).
                match tokio::time::timeout(limits.header_read_timeout, stream.peek(&mut [0u8; 1])).await {
                    Ok(Ok(1..)) => {
                        let _ = sender.send(Ok(LimitedConnection { stream, _slot: slot })).await;
                    }
                    _ => tracing::debug!(%peer, "no gRPC bytes within the header read timeout: connection closed"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}

impl tonic::transport::server::Connected for LimitedConnection {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::Connected::connect_info(&self.stream)
    }
}

impl AsyncRead for LimitedConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
