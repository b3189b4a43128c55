//! Serving the HTTP routers (API and OTLP/HTTP, plain or TLS) so that slow or idle clients cannot hold
//! the server: a request's headers must arrive within `header_read_timeout_ms` (hyper's header read
//! timeout, and before it a deadline of our own for the first request, while hyper still waits for the
//! bytes that tell HTTP/1 from HTTP/2: a slowloris client sending a byte a second is closed), a listener keeps at most
//! `max_connections` connections open (the next client waits in the kernel's backlog until one closes),
//! and stopping waits for the open connections to finish. Bodies are bounded in time by the routers:
//! tower-http's `RequestBodyTimeoutLayer` (no frame for `body_read_timeout_ms`) and a total deadline in
//! `endpoints::read_body`. Connections then go to the router, with the client's address as
//! `ConnectInfo<ClientAddr>`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Notify, Semaphore};
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
