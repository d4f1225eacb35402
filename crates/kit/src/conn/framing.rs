//! Watches an HTTP/1.1 request head as it arrives for one shape hyper accepts but hides: a body
//! framed by both `Content-Length` and `Transfer-Encoding`. hyper follows RFC 9112 (chunked wins,
//! the connection closes after the answer) and drops `Content-Length` from the headers it hands
//! on, so the handler cannot see that the request was ambiguous; a proxy in front that read the
//! other header would have framed a different request (request smuggling). The server refuses
//! such a request instead ([`AmbiguousFraming`]).
//!
//! Only header names are looked at, a byte at a time, with no allocation; the request line and
//! every value are skipped.

/// Put in the extensions of a request whose head carried both `Content-Length` and
/// `Transfer-Encoding`, for the server to refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmbiguousFraming;

const CONTENT_LENGTH: &[u8] = b"content-length";
const TRANSFER_ENCODING: &[u8] = b"transfer-encoding";
/// Longer names than this are neither of the two.
const NAME_MAX: usize = 17;

/// Where in the head the scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Somewhere in a line whose rest does not matter (the request line, a value).
    Skipping,
    /// At the start of a line: a header name, or the empty line that ends the head.
    LineStart,
    /// After a CR at the start of a line.
    EndingHead,
    /// In a header name, this many bytes of it kept.
    Name(usize),
    /// Past the end of the head.
    Done,
}

/// The scan of one request head.
#[derive(Debug, Clone)]
pub(super) struct HeadScan {
    at: At,
    name: [u8; NAME_MAX],
    content_length: bool,
    transfer_encoding: bool,
}

impl Default for HeadScan {
    fn default() -> Self {
        Self {
            at: At::Skipping,
            name: [0; NAME_MAX],
            content_length: false,
            transfer_encoding: false,
        }
    }
}

impl HeadScan {
    /// Reads `bytes`, the next of the head; returns `Some(ambiguous)` once the head has ended.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Option<bool> {
        for &byte in bytes {
            self.at = match (self.at, byte) {
                (At::Done, _) => break,
                (At::Skipping, b'\n') => At::LineStart,
                (At::Skipping, _) => At::Skipping,
                (At::LineStart, b'\r') => At::EndingHead,
                (At::LineStart | At::EndingHead, b'\n') => At::Done,
                (At::EndingHead, _) => At::Skipping,
                (At::LineStart, _) => self.name_byte(0, byte),
                (At::Name(kept), b':') => {
                    let name = &self.name[..kept];
                    self.content_length |= name == CONTENT_LENGTH;
                    self.transfer_encoding |= name == TRANSFER_ENCODING;
                    At::Skipping
                }
                (At::Name(_), b'\n') => At::LineStart,
                (At::Name(kept), _) => self.name_byte(kept, byte),
            };
        }
        (self.at == At::Done).then_some(self.content_length && self.transfer_encoding)
    }

    fn name_byte(&mut self, kept: usize, byte: u8) -> At {
        if kept < NAME_MAX {
            self.name[kept] = byte.to_ascii_lowercase();
            At::Name(kept + 1)
        } else {
            // Too long to be either name: skip to its value.
            At::Name(NAME_MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(head: &[u8], split: usize) -> Option<bool> {
        let mut scan = HeadScan::default();
        let (a, b) = head.split_at(split.min(head.len()));
        scan.feed(a).or_else(|| scan.feed(b))
    }

    #[test]
    fn both_framings_in_one_head_are_ambiguous_however_the_bytes_arrive() {
        let smuggled = b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\
                         TRANSFER-encoding: chunked\r\n\r\n0\r\n\r\n";
        let plain = b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        let chunked = b"POST /v1/users HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        // A value naming the other header is a value, not a header.
        let in_value =
            b"GET / HTTP/1.1\r\nX-Note: content-length:\r\nTransfer-Encoding: chunked\r\n\r\n";
        for split in 0..smuggled.len() {
            assert_eq!(scan(smuggled, split), Some(true), "split at {split}");
            assert_eq!(scan(plain, split), Some(false), "split at {split}");
            assert_eq!(scan(chunked, split), Some(false), "split at {split}");
            assert_eq!(scan(in_value, split), Some(false), "split at {split}");
        }
        assert_eq!(scan(b"GET / HTTP/1.1\r\nHost: x\r\n", 5), None, "not ended");
    }
}
