//! Serving an axum router over HTTP/1.1 under the kit's connection hygiene ([`crate::conn`]):
//! a connection cap, hyper's header-read timeout (which also ends keep-alive connections left idle
//! between requests), and a graceful stop that lets requests in flight finish.
//!
//! `axum::serve` sets no timer on hyper, so its header-read timeout never fires: a client that
//! sends half a request line holds its connection forever. Hence this loop.

pub mod client;
pub mod web;

use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;

use crate::conn::{Closed, ConnectionLimits, Protocol, incoming};

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits up to
/// `grace` for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (mut connections, watch) = incoming(listener, limits, Protocol::Http1);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let connection = tokio::select! {
            next = connections.next() => match next {
                Some(connection) => connection,
                None => break,
            },
            () = &mut shutdown => break,
        };
        // Handlers and middleware may ask who called (`ConnectInfo<SocketAddr>`).
        let peer = connection.peer_addr();
        let service = TowerToHyperService::new(tower::util::MapRequest::new(
            router.clone(),
            move |mut request: http::Request<hyper::body::Incoming>| {
                if let Some(peer) = peer {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                }
                request
            },
        ));
        let served = graceful.watch(builder.serve_connection(TokioIo::new(connection), service));
        let watch = watch.clone();
        tokio::spawn(async move {
            if let Err(error) = served.await
                && error.is_timeout()
            {
                watch.closed(Closed::HeaderTimeout, &error);
            }
        });
    }
    drop(connections);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "grace period over: dropping the HTTP requests still running"
        );
    }
}
