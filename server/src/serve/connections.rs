//! Accepting connections (in place of `axum::serve`, which sets neither of the first two):
//!
//! - `TCP_NODELAY` on every accepted socket, so a response written in several pieces (a streamed
//!   page, a file) is not held back waiting for the client's delayed ACK;
//! - a deadline for a request's line and headers (`--header-timeout`, default 30 s), which also
//!   closes a kept-alive connection idle that long: a client trickling headers, or opening
//!   connections and sending nothing, cannot hold them (slow bodies: `http::slow_body`);
//! - the peer address for `ConnectInfo`, and graceful shutdown: on the signal, idle connections
//!   close, in-flight requests finish, and `serve` returns when the last connection has ended;
//! - under TLS (`tls.rs`), the handshake within the same deadline, then HTTP/2 when ALPN chose
//!   `h2` and HTTP/1.1 otherwise (a client certificate, when tls.yml asks for one, was verified
//!   during the handshake).

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo, http::Request};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tower::ServiceExt;

/// How accepted connections are served.
#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    pub header_timeout: Duration,
    /// HTTPS: every connection starts with a TLS handshake.
    pub tls: Option<Arc<super::tls::Tls>>,
}

/// Serves one connection until it ends, or until `stop` fires and it has closed gracefully.
macro_rules! drive {
    ($connection:expr, $peer:expr, $stop:expr) => {{
        let connection = $connection;
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => log_end($peer, result),
            _ = $stop.changed() => {
                connection.as_mut().graceful_shutdown();
                log_end($peer, connection.await);
            }
        }
    }};
}

/// Serves `router` on `listener` until `shutdown` completes and every connection has finished.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ConnectionOptions,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener) => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Per-connection failures (reset before accept) and running out of file
                    // descriptors are not fatal: wait a moment and go on.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        let options = options.clone();
        tokio::spawn(async move {
            let http1 = || {
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(options.header_timeout);
                builder
            };
            match &options.tls {
                None => drive!(
                    http1()
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                        .with_upgrades(),
                    peer,
                    stop
                ),
                Some(tls) => {
                    let handshake =
                        tokio::time::timeout(options.header_timeout, tls.acceptor().accept(stream));
                    let stream = match handshake.await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let session = stream.get_ref().1;
                    let h2 = session.alpn_protocol() == Some(b"h2".as_slice());
                    // Only certificates the handshake verified are here.
                    let user = if tls.maps_users {
                        session
                            .peer_certificates()
                            .and_then(|chain| chain.first())
                            .and_then(|leaf| super::tls::subject_cn(leaf))
                            .map(super::tls::CertificateUser)
                    } else {
                        None
                    };
                    let service = service.map_request(move |mut request: Request<Incoming>| {
                        if let Some(user) = &user {
                            request.extensions_mut().insert(user.clone());
                        }
                        request
                    });
                    let io = TokioIo::new(stream);
                    if h2 {
                        let mut builder =
                            hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                        builder
                            .timer(TokioTimer::new())
                            .keep_alive_interval(Some(options.header_timeout));
                        drive!(
                            builder.serve_connection(io, TowerToHyperService::new(service)),
                            peer,
                            stop
                        );
                    } else {
                        drive!(
                            http1()
                                .serve_connection(io, TowerToHyperService::new(service))
                                .with_upgrades(),
                            peer,
                            stop
                        );
                    }
                }
            }
            drop(done);
        });
    }
    drop(listener);
    drop(done_rx);
    let _ = stop_tx.send(());
    done_tx.closed().await;
}

/// Accepts one connection, ready to serve: `TCP_NODELAY` set.
async fn accept(listener: &TcpListener) -> std::io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept().await?;
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    Ok((stream, peer))
}

fn log_end(peer: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed step should panic

    use super::*;

    /// Every connection `serve` takes comes through `accept`, which turns Nagle's algorithm off:
    /// otherwise a response written in pieces waits for the client's delayed ACK (up to 40 ms).
    #[tokio::test]
    async fn accepted_connections_do_not_wait_for_delayed_acks() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move { TcpStream::connect(addr).await.unwrap() });
        let (stream, peer) = accept(&listener).await.unwrap();
        let client = client.await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(
            stream.nodelay().unwrap(),
            "TCP_NODELAY is set on the accepted socket"
        );
    }
}
