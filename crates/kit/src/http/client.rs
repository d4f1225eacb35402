//! A minimal HTTP/1.0 client for one request at a time over plain TCP: container health checks
//! (`orderly check`) and tests that call the gateway and admin ports.
//!
//! Written by hand because the only callers send one small request to a loopback port and read the
//! answer to the end; a general HTTP client (reqwest, hyper-util's) would add a connection pool, TLS
//! choices and their dependencies to the binary for that.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The connection failed or broke.
    #[error("{addr}: {source}")]
    Io {
        /// Where the request went.
        addr: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
    /// No complete answer came in time.
    #[error("{0}: no answer within the timeout")]
    Timeout(SocketAddr),
    /// The answer was not an HTTP response.
    #[error("{0}: not an HTTP response")]
    Malformed(SocketAddr),
}

/// An HTTP response: its status, headers (names lowercased) and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, as text (lossily decoded).
    pub body: String,
}

impl Response {
    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.body)
    }

    /// The first value of header `name` (lowercase), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request: `method` `path` with `headers` and `body` (a `Content-Length` is added when the
/// body is not empty), to `addr`, read to the end within `timeout`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, RequestError> {
    tokio::time::timeout(timeout, exchange(addr, method, path, headers, body))
        .await
        .map_err(|_| RequestError::Timeout(addr))?
}

/// `method path` with `body` as JSON (`Content-Type: application/json`) and more `headers`.
pub async fn request_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<Response, RequestError> {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    request(addr, method, path, &all, &bytes, timeout).await
}

/// `GET path` from `addr`, within five seconds.
pub async fn get(addr: SocketAddr, path: &str) -> Result<Response, RequestError> {
    request(addr, "GET", path, &[], b"", Duration::from_secs(5)).await
}

async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, RequestError> {
    let io = |source| RequestError::Io { addr, source };
    let mut stream = TcpStream::connect(addr).await.map_err(io)?;
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    stream.write_all(body).await.map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.map_err(io)?;
    parse(&raw).ok_or(RequestError::Malformed(addr))
}

fn parse(raw: &[u8]) -> Option<Response> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Some(Response {
        status,
        headers,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn responses_split_into_status_headers_and_body() {
        let response = parse(b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope")
            .expect("parses");
        assert_eq!(response.status, 404);
        assert_eq!(response.header("content-type"), Some("text/plain"));
        assert_eq!(response.body, "nope");
        assert!(parse(b"garbage").is_none());
    }
}
