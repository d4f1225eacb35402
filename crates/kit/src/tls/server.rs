//! The server side of mutual TLS: each accepted connection's handshake, run beside the accept loop
//! (a slow handshake holds up no other connection) within the header timeout, and the identity of
//! the service at the other end, which every call on the connection carries ([`Peer`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_stream::{Stream, StreamExt as _};

use super::{Identity, identity};
use crate::conn::{Closed, Guarded, Watch};

/// Who is at the other end of a call's connection, in every call's request extensions.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The address the connection came from.
    pub remote_addr: Option<SocketAddr>,
    /// Whether the connection is mutual TLS (and `service` therefore checked).
    pub tls: bool,
    /// The calling service, from its certificate's SPIFFE id; `None` on plaintext, or for a
    /// certificate of the CA that names no Orderly service (an operator's, say).
    pub service: Option<Arc<str>>,
    /// The calling program outside the suite, from its certificate's client SPIFFE id (see
    /// [`super::outside_id`]): known, but trusted with nothing a service is.
    pub outside: Option<Arc<str>>,
}

impl Peer {
    /// The peer of `request`, as the server recorded it.
    pub fn of<B>(request: &http::Request<B>) -> Option<&Self> {
        request.extensions().get::<Self>()
    }

    /// The caller as the rule tables name it: the service, or [`crate::auth::rules::OUTSIDE`]
    /// for any program outside the suite; `None` for a certificate that names neither.
    pub fn caller(&self) -> Option<&str> {
        self.service.as_deref().or(self
            .outside
            .is_some()
            .then_some(crate::auth::rules::OUTSIDE))
    }
}

/// An accepted connection, plaintext or after its TLS handshake.
#[derive(Debug)]
pub enum Accepted {
    /// Plaintext (`--insecure-plaintext`).
    Plain(Guarded),
    /// Mutual TLS, with the peer its certificate names.
    Tls(Box<TlsStream<Guarded>>, Peer),
}

/// The connections of `incoming` as the server serves them: with `identity`, each after a TLS
/// handshake that must complete within `timeout` (failures are counted and logged on `watch`);
/// without, as they are.
pub fn accept(
    incoming: impl Stream<Item = Guarded> + Send + Unpin + 'static,
    identity: Option<Identity>,
    timeout: Duration,
    watch: Watch,
) -> Pin<Box<dyn Stream<Item = Accepted> + Send>> {
    let Some(identity) = identity else {
        return Box::pin(incoming.map(Accepted::Plain));
    };
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut incoming = incoming;
        loop {
            let guarded = tokio::select! {
                next = incoming.next() => next,
                () = sender.closed() => None,
            };
            let Some(guarded) = guarded else { return };
            let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config());
            let (sender, watch) = (sender.clone(), watch.clone());
            tokio::spawn(async move {
                let remote_addr = guarded.peer_addr();
                match tokio::time::timeout(timeout, acceptor.accept(guarded)).await {
                    Ok(Ok(stream)) => {
                        // Handshaken: no longer opening, so no longer evicted to make room.
                        stream.get_ref().0.phase().serving();
                        let leaf = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| chain.first());
                        let peer = Peer {
                            remote_addr,
                            tls: true,
                            service: leaf.and_then(|leaf| identity::service(leaf)).map(Arc::from),
                            outside: leaf.and_then(|leaf| identity::outside(leaf)).map(Arc::from),
                        };
                        let _ = sender.send(Accepted::Tls(Box::new(stream), peer)).await;
                    }
                    Ok(Err(error)) => watch.closed(Closed::Handshake, &error),
                    Err(_) => watch.closed(Closed::HeaderTimeout, &"no TLS handshake in time"),
                }
            });
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
}

impl tonic::transport::server::Connected for Accepted {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        match self {
            Self::Plain(guarded) => Peer {
                remote_addr: guarded.peer_addr(),
                tls: false,
                service: None,
                outside: None,
            },
            Self::Tls(_, peer) => peer.clone(),
        }
    }
}

impl AsyncRead for Accepted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream, _) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Tls(stream, _) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Self::Tls(stream, _) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(stream) => stream.is_write_vectored(),
            Self::Tls(stream, _) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Self::Tls(stream, _) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Tls(stream, _) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}
