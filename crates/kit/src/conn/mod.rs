//! Connection hygiene for every server a process runs (gRPC, the REST gateway, the admin port):
//! a cap on open client connections, a deadline for a new connection to say what it wants, a
//! bound on what unfinished requests may hold, and an accept loop that survives running out of
//! file descriptors.
//!
//! Without these, twenty thousand connections that each send half a request line hold every file
//! descriptor of the process, and every server in it stops answering. With them:
//! - **Cap**: past [`ConnectionLimits::max_connections`] open connections, a new one takes the
//!   place of the oldest connection still *opening* (no request's headers in yet, no HTTP/2
//!   preface, no TLS handshake: see [`opening`]), which is closed; only when every connection is
//!   serving is the new one closed instead. So half-open connections cannot lock out a client
//!   that is about to send a request, and the ones serving keep working.
//! - **Memory**: what opening connections hold is charged to one budget for the process
//!   ([`opening::BUDGET_BYTES`]); over it, the oldest are evicted. One request's head is at most
//!   [`MAX_HEADER_BYTES`] (HTTP/1.1: 431 beyond; HTTP/2: the header list size announced).
//! - **Header timeout**: an HTTP/1.1 connection must send a request's headers within
//!   [`ConnectionLimits::header_timeout`] (hyper's own header-read timeout, which also bounds how
//!   long a keep-alive connection may sit idle between requests); an HTTP/2 (gRPC) connection must
//!   send its 24-byte preface within it. Afterwards HTTP/2 keepalive pings find dead peers.
//! - **Descriptors**: [`raise_fd_limit`] lifts the soft limit to the hard one at start; when
//!   `accept` still fails (EMFILE), the loop pauses briefly instead of spinning.
//!
//!   Once a flood of them is over, the allocator's free pages go back to the system (`reclaim`).
//! - **Framing**: an HTTP/1.1 head framed by both `Content-Length` and `Transfer-Encoding` is
//!   marked for the server to refuse ([`framing`]).
//!
//! Each of these logs (at most once a second per listener) and counts
//! `orderly_connections_closed_total{listener, reason}`; `orderly_connections_open{listener}`
//! gauges what is open.
//!
//! Written here because neither tonic nor axum has a connection cap, an HTTP/2 preface timeout or
//! eviction of half-open connections, and tower's limits count requests, not connections.

pub mod framing;
pub mod opening;
mod reclaim;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use self::framing::HeadScan;
use self::opening::{Registry, State};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_stream::wrappers::ReceiverStream;

/// The HTTP/2 client preface every gRPC connection starts with, in bytes.
const H2_PREFACE_BYTES: usize = 24;

/// The most bytes one request's head may take: HTTP/1.1 headers (a larger head is answered 431)
/// and an HTTP/2 header list (announced to clients, refused beyond). Far above what a request
/// with a bearer token sends, far below hyper's default of about 400 KB per connection.
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// How long the accept loop pauses when `accept` fails (out of descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// Limits on the client connections of one server.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// The most connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers (HTTP/1.1), or its preface
    /// (HTTP/2).
    pub header_timeout: Duration,
    /// How long an HTTP/1.1 request's body may take to arrive once its headers have (the REST
    /// gateway answers a slower one 408 and closes its connection).
    pub body_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a connection was closed by the server before it was served, as in the metric's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The server was at its connection cap.
    Limit,
    /// The client did not send its headers or preface in time.
    HeaderTimeout,
    /// `accept` itself failed (out of file descriptors, say).
    AcceptError,
    /// The TLS handshake failed: no client certificate, one from another CA, plaintext.
    Handshake,
    /// Evicted while opening, to make room at the cap or to keep within the memory budget.
    Evicted,
}

impl Closed {
    fn as_str(self) -> &'static str {
        match self {
            Self::Limit => "limit",
            Self::HeaderTimeout => "header_timeout",
            Self::AcceptError => "accept_error",
            Self::Handshake => "tls_handshake",
            Self::Evicted => "evicted",
        }
    }
}

/// One listener's counts and the rate limit of its log lines; clones share them.
#[derive(Debug, Clone)]
pub struct Watch {
    listener: Arc<str>,
    /// Microseconds since `origin` at the last warning logged.
    last_log: Arc<AtomicU64>,
    origin: Instant,
}

impl Watch {
    /// The watch of the listener at `listener` (its address, as the metrics label).
    pub fn new(listener: &str) -> Self {
        let listener: Arc<str> = Arc::from(listener);
        for reason in [
            Closed::Limit,
            Closed::HeaderTimeout,
            Closed::AcceptError,
            Closed::Handshake,
            Closed::Evicted,
        ] {
            metrics::counter!("orderly_connections_closed_total", "listener" => listener.to_string(), "reason" => reason.as_str())
                .absolute(0);
        }
        metrics::gauge!("orderly_connections_open", "listener" => listener.to_string()).set(0.0);
        Self {
            listener,
            last_log: Arc::new(AtomicU64::new(0)),
            origin: Instant::now(),
        }
    }

    /// Counts a connection closed for `reason`, and logs it unless it logged less than a second
    /// ago (a flood must not become a flood of log lines).
    pub fn closed(&self, reason: Closed, detail: &dyn std::fmt::Display) {
        metrics::counter!("orderly_connections_closed_total", "listener" => self.listener.to_string(), "reason" => reason.as_str())
            .increment(1);
        let now = u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        let last = self.last_log.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 1_000_000)
            && self
                .last_log
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                listener = %self.listener,
                reason = reason.as_str(),
                %detail,
                "closing client connections (logged at most once a second; see orderly_connections_closed_total)"
            );
        }
    }

    fn open(&self, delta: f64) {
        metrics::gauge!("orderly_connections_open", "listener" => self.listener.to_string())
            .increment(delta);
    }
}

/// An accepted connection under the limits: it holds its place under the cap until dropped, can
/// be evicted while it is opening, and, for HTTP/2, fails its reads once the preface is overdue.
#[derive(Debug)]
pub struct Guarded {
    stream: TcpStream,
    preface: Option<Preface>,
    phase: Phase,
    /// The scan of the HTTP/1.1 head being read, and the registry place it is for.
    scan: Option<(u64, HeadScan)>,
}

#[derive(Debug)]
struct Preface {
    remaining: usize,
    deadline: Pin<Box<Sleep>>,
}

/// Where a connection is in its life, for whoever serves it: opening (evictable) or serving. A
/// handle to the connection's state shared with its [`Guarded`] stream.
#[derive(Debug, Clone)]
pub struct Phase {
    state: Arc<State>,
    registry: Arc<Registry>,
    watch: Watch,
}

impl Phase {
    /// The connection is serving a request (HTTP/1.1 headers in, TLS handshake done): it leaves
    /// the opening connections, and is no longer evicted or charged.
    pub fn serving(&self) {
        self.registry.served(&self.state);
    }

    /// The connection is idle again (an HTTP/1.1 keep-alive connection between requests): it is
    /// opening once more, as the newest.
    pub fn idle(&self) {
        let evicted = self.registry.open(&self.state);
        self.evictions(evicted);
    }

    /// Takes the mark that the request head just read was ambiguously framed.
    pub fn take_ambiguous(&self) -> bool {
        self.state.take_ambiguous()
    }

    fn evictions(&self, evicted: usize) {
        for _ in 0..evicted {
            self.watch.closed(
                Closed::Evicted,
                &"over the memory budget of opening connections",
            );
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.phase.registry.closed(&self.phase.state);
        self.phase.watch.open(-1.0);
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let state = &this.phase.state;
        if state.is_opening() {
            state.waker.register(cx.waker());
        }
        if state.evicted() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "evicted while opening",
            )));
        }
        if let Some(preface) = &mut this.preface
            && preface.deadline.as_mut().poll(cx).is_ready()
        {
            this.preface = None;
            this.phase
                .watch
                .closed(Closed::HeaderTimeout, &"no HTTP/2 preface in time");
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no HTTP/2 preface in time",
            )));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &read {
            let new = &buf.filled()[before..];
            if state.is_opening() && !new.is_empty() {
                let evicted = this.phase.registry.charge(state, new.len());
                this.phase.evictions(evicted);
                if let Some((place, scan)) = &mut this.scan {
                    let now = state.place();
                    if *place != now {
                        *place = now;
                        *scan = HeadScan::default();
                    }
                    if scan.feed(new) == Some(true) {
                        state.mark_ambiguous();
                    }
                }
            }
            if let Some(preface) = &mut this.preface {
                preface.remaining = preface.remaining.saturating_sub(new.len());
                if preface.remaining == 0 {
                    this.preface = None;
                    this.phase.serving();
                }
            }
        }
        read
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Guarded {
    /// The address the connection came from.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.stream.peer_addr().ok()
    }

    /// The connection's phase, for its server to say when it serves and when it idles.
    pub fn phase(&self) -> Phase {
        self.phase.clone()
    }
}

/// Which protocol a listener speaks, for what a new connection must send first and when it stops
/// opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/2 (gRPC) in plaintext: the preface is due within the header timeout, and ends the
    /// opening.
    Http2,
    /// TLS, then HTTP/2 inside it: the handshake is due within the header timeout (its acceptor
    /// enforces it) and its end, which the acceptor reports ([`Phase::serving`]), ends the opening.
    Tls,
    /// HTTP/1.1: the server's HTTP/1 header-read timeout applies instead; the server reports when
    /// each request's head is in and when the connection idles again.
    Http1,
}

/// Accepts connections on `listener` under `limits` until the returned stream is dropped: each
/// with TCP_NODELAY (without it, a streamed response's trailers wait ~40 ms for a delayed ACK) and
/// keepalive; at the cap, each new one takes the place of the oldest still opening, or is closed
/// at once when none is.
pub fn incoming(
    listener: TcpListener,
    limits: ConnectionLimits,
    protocol: Protocol,
) -> (ReceiverStream<Guarded>, Watch) {
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let watch = Watch::new(&address);
    reclaim::start();
    let registry = Arc::new(Registry::default());
    let max = limits.max_connections.max(1);
    let (sender, receiver) = mpsc::channel(64);
    let accepting = watch.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = sender.closed() => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    accepting.closed(Closed::AcceptError, &error);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            if registry.open_connections() >= max {
                if registry.evict_oldest() {
                    accepting.closed(Closed::Evicted, &"at the connection cap");
                } else {
                    accepting.closed(Closed::Limit, &"at the connection cap");
                    drop(stream);
                    continue;
                }
            }
            registry.accepted();
            let _ = stream.set_nodelay(true);
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(
                &socket2::TcpKeepalive::new().with_time(Duration::from_secs(60)),
            );
            accepting.open(1.0);
            // A TLS connection's opening ends with its handshake, not with 24 bytes of it.
            let preface = (protocol == Protocol::Http2).then(|| Preface {
                remaining: H2_PREFACE_BYTES,
                deadline: Box::pin(tokio::time::sleep(limits.header_timeout)),
            });
            let phase = Phase {
                state: Arc::new(State::default()),
                registry: registry.clone(),
                watch: accepting.clone(),
            };
            phase.idle();
            let guarded = Guarded {
                stream,
                preface,
                phase,
                scan: (protocol == Protocol::Http1).then(|| (0, HeadScan::default())),
            };
            if sender.send(guarded).await.is_err() {
                return;
            }
        }
    });
    (ReceiverStream::new(receiver), watch)
}

/// Raises this process's soft limit on open files to its hard limit, so that the connection caps,
/// not the operating system's default of 1024, decide how many clients are served. Returns the
/// limit now in force.
pub fn raise_fd_limit() -> io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    }
    Ok(hard.max(soft))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn over_the_cap_connections_are_closed_and_the_open_ones_served() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let limits = ConnectionLimits {
            max_connections: 2,
            ..ConnectionLimits::default()
        };
        let (mut incoming, _) = incoming(listener, limits, Protocol::Http1);
        let mut clients = Vec::new();
        let mut served = Vec::new();
        for _ in 0..2 {
            clients.push(TcpStream::connect(addr).await.expect("connect"));
            let accepted = incoming.next().await.expect("accepted");
            accepted.phase().serving();
            served.push(accepted);
        }
        // Both are serving: the third is closed at once, it reads end-of-stream.
        let mut third = TcpStream::connect(addr).await.expect("connect");
        assert_closed(&mut third).await;
        // One closes; a new one is served again.
        drop(served.pop());
        clients.pop();
        let mut fourth = TcpStream::connect(addr).await.expect("connect");
        let mut accepted = incoming.next().await.expect("accepted");
        fourth.write_all(b"hi").await.expect("write");
        let mut two = [0u8; 2];
        accepted.read_exact(&mut two).await.expect("read");
        assert_eq!(&two, b"hi");
    }

    #[tokio::test]
    async fn at_the_cap_a_new_connection_takes_the_place_of_the_oldest_still_opening() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let limits = ConnectionLimits {
            max_connections: 3,
            ..ConnectionLimits::default()
        };
        let (mut incoming, _) = incoming(listener, limits, Protocol::Http1);
        let mut serving_client = TcpStream::connect(addr).await.expect("connect");
        let mut serving = incoming.next().await.expect("accepted");
        serving.phase().serving();
        let mut clients = Vec::new();
        let mut opening = Vec::new();
        for _ in 0..2 {
            clients.push(TcpStream::connect(addr).await.expect("connect"));
            opening.push(incoming.next().await.expect("accepted"));
        }
        // At the cap, a new client is accepted and the oldest opening connection evicted: its
        // next read fails, and the serving one is untouched.
        let mut newcomer = TcpStream::connect(addr).await.expect("connect");
        let mut accepted = incoming.next().await.expect("accepted");
        let mut byte = [0u8; 1];
        let evicted = opening[0].read(&mut byte).await;
        assert_eq!(
            evicted.expect_err("evicted").kind(),
            io::ErrorKind::ConnectionAborted
        );
        newcomer.write_all(b"h").await.expect("write");
        accepted
            .read_exact(&mut byte)
            .await
            .expect("the newcomer is read");
        serving_client.write_all(b"s").await.expect("write");
        serving.read_exact(&mut byte).await.expect("still served");
    }

    async fn assert_closed(stream: &mut TcpStream) {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("closed promptly");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }

    #[tokio::test]
    async fn an_http2_connection_without_its_preface_is_cut_at_the_header_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let limits = ConnectionLimits {
            max_connections: 10,
            header_timeout: Duration::from_millis(100),
            ..ConnectionLimits::default()
        };
        let (mut incoming, _) = incoming(listener, limits, Protocol::Http2);
        let mut slow = TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"PRI * HTTP/2.0")
            .await
            .expect("part of a preface");
        let mut accepted = incoming.next().await.expect("accepted");
        let mut buf = [0u8; 64];
        let mut read = 0;
        let error = loop {
            match accepted.read(&mut buf).await {
                Ok(0) => panic!("the client did not close"),
                Ok(n) => read += n,
                Err(error) => break error,
            }
        };
        assert_eq!(read, 14);
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);

        // A whole preface in time lifts the deadline.
        let mut quick = TcpStream::connect(addr).await.expect("connect");
        quick
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .expect("preface");
        let mut accepted = incoming.next().await.expect("accepted");
        let mut preface = [0u8; H2_PREFACE_BYTES];
        accepted.read_exact(&mut preface).await.expect("preface");
        tokio::time::sleep(Duration::from_millis(200)).await;
        quick.write_all(b"x").await.expect("more");
        let mut one = [0u8; 1];
        accepted.read_exact(&mut one).await.expect("still served");
    }
}
