//! Serving an axum router over HTTP/1.1 under the kit's connection hygiene ([`crate::conn`]):
//! a connection cap that evicts the oldest connection still opening, hyper's header-read timeout
//! (which also ends keep-alive connections left idle between requests), heads of at most
//! [`crate::conn::MAX_HEADER_BYTES`], and a graceful stop that lets requests in flight finish.
//! Each connection tells the cap when a request's head is in (it is serving, and no longer
//! evicted) and when its response is over (it idles, and may be evicted again); a head framed two
//! ways reaches the router marked [`crate::conn::framing::AmbiguousFraming`].
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

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body as HttpBody, Frame, SizeHint};

use crate::conn::framing::AmbiguousFraming;
use crate::conn::{Closed, ConnectionLimits, MAX_HEADER_BYTES, Phase, Protocol, incoming};

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
        .max_buf_size(MAX_HEADER_BYTES)
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
        let phase = connection.phase();
        let service = tower::util::MapResponse::new(
            tower::util::MapRequest::new(router.clone(), {
                let phase = phase.clone();
                move |mut request: http::Request<hyper::body::Incoming>| {
                    phase.serving();
                    if phase.take_ambiguous() {
                        request.extensions_mut().insert(AmbiguousFraming);
                    }
                    if let Some(peer) = peer {
                        request
                            .extensions_mut()
                            .insert(axum::extract::ConnectInfo(peer));
                    }
                    request
                }
            }),
            move |response: axum::response::Response| {
                let phase = phase.clone();
                response.map(|body| axum::body::Body::new(IdleAtEnd { body, phase }))
            },
        );
        let service = TowerToHyperService::new(service);
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

/// A response body that, once written or dropped, says the connection is idle again.
struct IdleAtEnd {
    body: axum::body::Body,
    phase: Phase,
}

impl Drop for IdleAtEnd {
    fn drop(&mut self) {
        self.phase.idle();
    }
}

impl HttpBody for IdleAtEnd {
    type Data = <axum::body::Body as HttpBody>::Data;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
