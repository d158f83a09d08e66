//! What genhash prints for an outcome, as keepalived 2.2.7 prints it: the digest alone, or with
//! `-v` the response head, body and digest as hex dumps; on failure keepalived's message for
//! the step that failed. Pure: the caller writes the pieces in order.

use std::fmt::Write as _;
use std::time::Duration;

use checks::probe::http::{md5, md5_hex, FetchError, Response};

/// Output, in order, with the stream it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Standard output.
    Out(Vec<u8>),
    /// Standard error.
    Err(Vec<u8>),
}

const HTTP_HEADER_HEXA: &str =
    "-----------------------[    HTTP Header Buffer    ]-----------------------\n";
const HTTP_HEADER_ASCII: &str =
    "-----------------------[ HTTP Header Ascii Buffer ]-----------------------\n";
const HTML_HEADER_HEXA: &str =
    "-----------------------[        HTML Buffer        ]-----------------------\n";
const HTML_HASH: &str =
    "-----------------------[    HTML hash resulting    ]-----------------------\n";
const HTML_HASH_FINAL: &str =
    "-----------------------[ HTML hash final resulting ]-----------------------\n";

/// keepalived's hex dump: 16 bytes a line, decimal offset, a `-` after 8 bytes, printable
/// ASCII at the end, the last line padded.
pub fn hex_dump(buf: &[u8]) -> String {
    let mut s = String::with_capacity(buf.len().div_ceil(16) * 76);
    for (n, line) in buf.chunks(16).enumerate() {
        let _ = write!(s, "{:04} ", (n * 16) & 0xffff);
        for i in 0..16 {
            match line.get(i) {
                Some(b) => {
                    let _ = write!(s, " {b:02x}");
                }
                None => s.push_str("   "),
            }
            if i == 7 {
                s.push_str(" -");
            }
        }
        s.push_str("   ");
        s.extend((0..16).map(|i| match line.get(i) {
            Some(&b) if (0x20..=0x7e).contains(&b) => b as char,
            Some(_) => '.',
            None => ' ',
        }));
        s.push('\n');
    }
    s
}

/// keepalived's words for the step that failed (its checker's log messages, which genhash
/// prints to stdout).
pub fn failure(e: &FetchError, ssl: bool) -> &'static str {
    match e {
        FetchError::Connect { source, .. } => match source.raw_os_error() {
            Some(libc::ENETUNREACH | libc::EHOSTUNREACH) => "HTTP_CHECK - network unreachable",
            Some(libc::ETIMEDOUT) => "Timeout connecting",
            _ => "Connection failed",
        },
        FetchError::ConnectTimeout(_) | FetchError::TlsTimeout => "Timeout connecting",
        FetchError::Tls(_) | FetchError::Handshake(_) => {
            "SSL handshake/communication error connecting to"
        }
        FetchError::BadRequest(_) => "Cannot send get request to",
        FetchError::ResponseTimeout => "Timeout WEB read",
        FetchError::BodyTimeout => "Timeout HTTP read",
        FetchError::Request(_) | FetchError::Body(_) if ssl => "SSL read error from",
        FetchError::Request(_) | FetchError::Body(_) => "Read error with",
    }
}

/// Everything genhash prints for `result`, fetched from `path` in `elapsed`.
pub fn render(
    verbose: bool,
    ssl: bool,
    path: &str,
    result: &Result<Response, FetchError>,
    elapsed: Duration,
) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut pieces = Vec::new();
    match result {
        Ok(resp) => {
            if verbose {
                if let Some(head) = &resp.head {
                    out.extend_from_slice(HTTP_HEADER_HEXA.as_bytes());
                    out.extend_from_slice(hex_dump(head).as_bytes());
                    out.extend_from_slice(HTTP_HEADER_ASCII.as_bytes());
                    out.extend_from_slice(head);
                    out.push(b'\n');
                }
                if !resp.body.is_empty() {
                    out.extend_from_slice(HTML_HEADER_HEXA.as_bytes());
                    out.extend_from_slice(hex_dump(&resp.body).as_bytes());
                }
                digest_dump(&mut out, &resp.body);
            }
            out.extend_from_slice(md5_hex(&resp.body).as_bytes());
            out.push(b'\n');
        }
        // The connection closed before a response: the (empty) digest is dumped, not printed.
        Err(e) if e.is_no_response() => {
            if verbose {
                digest_dump(&mut out, b"");
            }
            pieces.push(Piece::Out(std::mem::take(&mut out)));
            pieces.push(Piece::Err(
                b"no data received from remote webserver\n".to_vec(),
            ));
        }
        Err(e) => {
            out.extend_from_slice(failure(e, ssl).as_bytes());
            out.push(b'\n');
        }
    }
    if verbose {
        let _ = write!(
            StrBuf(&mut out),
            "\nGlobal response time for [{path}] = {} usecs\n",
            elapsed.as_micros()
        );
    }
    pieces.push(Piece::Out(out));
    pieces.retain(|p| !matches!(p, Piece::Out(b) if b.is_empty()));
    pieces
}

/// The digest's own dump, which precedes the digest line in verbose mode.
fn digest_dump(out: &mut Vec<u8>, body: &[u8]) {
    out.push(b'\n');
    out.extend_from_slice(HTML_HASH.as_bytes());
    out.extend_from_slice(hex_dump(&md5(body)).as_bytes());
    out.extend_from_slice(HTML_HASH_FINAL.as_bytes());
}

/// `write!` into a byte buffer.
struct StrBuf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for StrBuf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn out_text(pieces: &[Piece]) -> (String, String) {
        let (mut o, mut e) = (String::new(), String::new());
        for p in pieces {
            match p {
                Piece::Out(b) => o.push_str(&String::from_utf8_lossy(b)),
                Piece::Err(b) => e.push_str(&String::from_utf8_lossy(b)),
            }
        }
        (o, e)
    }

    /// Lines copied from `keepalived -T -v` 2.2.7 output.
    #[test]
    fn hex_dump_matches_keepalived() {
        let head = b"HTTP/1.0 200 ok\r\nContent-type: text/html\r\n\r\n";
        assert_eq!(
            hex_dump(head),
            "0000  48 54 54 50 2f 31 2e 30 - 20 32 30 30 20 6f 6b 0d   HTTP/1.0 200 ok.\n\
             0016  0a 43 6f 6e 74 65 6e 74 - 2d 74 79 70 65 3a 20 74   .Content-type: t\n\
             0032  65 78 74 2f 68 74 6d 6c - 0d 0a 0d 0a               ext/html....    \n"
        );
        assert_eq!(
            hex_dump(b"hello genhash\n"),
            "0000  68 65 6c 6c 6f 20 67 65 - 6e 68 61 73 68 0a         hello genhash.  \n"
        );
        assert_eq!(
            hex_dump(&md5(b"hello genhash\n")),
            "0000  b0 de 18 19 3e 22 44 fa - ad bb 22 b1 cc 77 04 90   ....>\"D...\"..w..\n"
        );
        assert_eq!(hex_dump(b""), "");
        assert_eq!(
            hex_dump(b"0123456789").lines().next().unwrap().len(),
            hex_dump(b"0123456789abcdef").lines().next().unwrap().len()
        );
    }

    #[test]
    fn plain_output_is_the_digest_line() {
        let r = Ok(Response {
            status: 404,
            head: None,
            body: Bytes::from_static(b"hello genhash\n"),
        });
        let p = render(false, false, "/x", &r, Duration::from_micros(5));
        assert_eq!(
            p,
            vec![Piece::Out(b"b0de18193e2244faadbb22b1cc770490\n".to_vec())]
        );
    }

    #[test]
    fn verbose_output_has_keepalived_sections() {
        let r = Ok(Response {
            status: 200,
            head: Some(Bytes::from_static(b"HTTP/1.0 200 ok\r\n\r\n")),
            body: Bytes::from_static(b"hello genhash\n"),
        });
        let (o, e) = out_text(&render(true, false, "/i", &r, Duration::from_micros(5897)));
        assert!(e.is_empty());
        let want_tail = format!(
            "{HTML_HEADER_HEXA}0000  68 65 6c 6c 6f 20 67 65 - 6e 68 61 73 68 0a         hello genhash.  \n\
             \n{HTML_HASH}0000  b0 de 18 19 3e 22 44 fa - ad bb 22 b1 cc 77 04 90   ....>\"D...\"..w..\n\
             {HTML_HASH_FINAL}b0de18193e2244faadbb22b1cc770490\n\
             \nGlobal response time for [/i] = 5897 usecs\n"
        );
        assert!(o.starts_with(HTTP_HEADER_HEXA), "{o}");
        assert!(
            o.contains(&format!("{HTTP_HEADER_ASCII}HTTP/1.0 200 ok\r\n\r\n\n")),
            "{o}"
        );
        assert!(o.ends_with(&want_tail), "{o}");
    }

    #[test]
    fn failures_print_keepalived_messages() {
        let refused = Err(FetchError::Connect {
            addr: "192.0.2.10:81".parse().unwrap(),
            source: std::io::Error::from_raw_os_error(libc::ECONNREFUSED),
        });
        assert_eq!(
            out_text(&render(false, false, "/", &refused, Duration::ZERO)),
            ("Connection failed\n".into(), String::new())
        );
        assert_eq!(
            out_text(&render(
                true,
                false,
                "/i",
                &refused,
                Duration::from_micros(65)
            ))
            .0,
            "Connection failed\n\nGlobal response time for [/i] = 65 usecs\n"
        );
        let unreachable = Err(FetchError::Connect {
            addr: "198.51.100.1:80".parse().unwrap(),
            source: std::io::Error::from_raw_os_error(libc::ENETUNREACH),
        });
        assert_eq!(
            out_text(&render(false, false, "/", &unreachable, Duration::ZERO)).0,
            "HTTP_CHECK - network unreachable\n"
        );
        for (e, want) in [
            (
                FetchError::ConnectTimeout("192.0.2.1:80".parse().unwrap()),
                "Timeout connecting",
            ),
            (FetchError::ResponseTimeout, "Timeout WEB read"),
            (FetchError::BodyTimeout, "Timeout HTTP read"),
            (
                FetchError::Tls(std::io::Error::other("bad record")),
                "SSL handshake/communication error connecting to",
            ),
        ] {
            assert_eq!(failure(&e, true), want);
        }
    }
}
