//! A read tap that keeps a response's head (status line, headers, blank line) as received:
//! hyper parses it away, and genhash's verbose mode dumps it byte for byte as keepalived does.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest head kept (hyper refuses much smaller heads anyway).
const MAX_HEAD: usize = 64 << 10;

/// The bytes read so far, until the end of the head.
#[derive(Debug, Default)]
struct Capture {
    buf: Vec<u8>,
    /// Length of the head once its blank line was seen.
    end: Option<usize>,
}

impl Capture {
    fn done(&self) -> bool {
        self.end.is_some() || self.buf.len() >= MAX_HEAD
    }

    fn feed(&mut self, data: &[u8]) {
        if self.done() {
            return;
        }
        // The blank line may straddle two reads: look again at the last two bytes.
        let from = self.buf.len().saturating_sub(2);
        let room = MAX_HEAD - self.buf.len();
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
        self.end = head_end(&self.buf[from..]).map(|e| from + e);
        if let Some(e) = self.end {
            self.buf.truncate(e);
        }
    }
}

/// Where the head ends in `b` (after its blank line, CRLF or bare LF as hyper accepts).
fn head_end(b: &[u8]) -> Option<usize> {
    (0..b.len()).find_map(|i| match (b[i], b.get(i + 1), b.get(i + 2)) {
        (b'\n', Some(b'\n'), _) => Some(i + 2),
        (b'\n', Some(b'\r'), Some(b'\n')) => Some(i + 3),
        _ => None,
    })
}

/// The head a [`HeadTap`] captured.
#[derive(Debug, Clone)]
pub(super) struct HeadHandle(Arc<Mutex<Capture>>);

impl HeadHandle {
    /// The complete head, if its blank line was read.
    pub(super) fn take(&self) -> Option<Bytes> {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        c.end?;
        Some(Bytes::from(std::mem::take(&mut c.buf)))
    }
}

/// Passes reads and writes through; when capturing, copies what is read until the head ends.
pub(super) struct HeadTap<S> {
    inner: S,
    capture: Option<Arc<Mutex<Capture>>>,
}

impl<S> HeadTap<S> {
    pub(super) fn new(inner: S, capture: bool) -> Self {
        Self {
            inner,
            capture: capture.then(Default::default),
        }
    }

    /// Where the head will be, when capturing.
    pub(super) fn head(&self) -> Option<HeadHandle> {
        self.capture.clone().map(HeadHandle)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadTap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(c)) = (&polled, &self.capture) {
            let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
            c.feed(&buf.filled()[before..]);
            if c.done() {
                drop(c);
                self.capture = None;
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadTap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(chunks: &[&[u8]]) -> Option<Vec<u8>> {
        let mut c = Capture::default();
        for ch in chunks {
            c.feed(ch);
        }
        c.end.map(|_| c.buf)
    }

    #[test]
    fn head_ends_at_the_blank_line_even_across_reads() {
        let want = b"HTTP/1.0 200 OK\r\nA: b\r\n\r\n".to_vec();
        assert_eq!(
            captured(&[b"HTTP/1.0 200 OK\r\nA: b\r\n\r\nbody"]),
            Some(want.clone())
        );
        assert_eq!(
            captured(&[b"HTTP/1.0 200 OK\r\nA: b\r", b"\n", b"\r\nbody"]),
            Some(want)
        );
        assert_eq!(
            captured(&[b"HTTP/1.0 200 OK\nA: b\n\nbody"]),
            Some(b"HTTP/1.0 200 OK\nA: b\n\n".to_vec())
        );
        assert_eq!(captured(&[b"HTTP/1.0 200 OK\r\nA: b\r\n"]), None);
    }

    #[test]
    fn head_capture_is_bounded() {
        let mut c = Capture::default();
        c.feed(&vec![b'x'; MAX_HEAD + 10]);
        assert!(c.done() && c.end.is_none() && c.buf.len() == MAX_HEAD);
    }
}
