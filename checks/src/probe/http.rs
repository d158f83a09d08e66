//! HTTP_GET / SSL_GET: one GET per `url` block over a fresh connection (hyper's HTTP/1 client),
//! judged by status code, MD5 digest of the body and regex.

mod tap;

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use regex::bytes::Regex;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::health::Outcome;
use crate::probe::{net, tls, PrepareError};
use crate::spec::{Connect, HttpCheck, HttpProtocol, Target, UrlSpec};
use tap::HeadTap;

/// Largest body read for digest/regex; keepalived reads it all, we bound memory.
pub const MAX_BODY: usize = 4 << 20;

/// How [`HttpProbe::get`] runs one GET.
#[derive(Debug, Clone, Copy, Default)]
pub struct GetOptions {
    /// Bound on each step (connect, TLS handshake, response head, body), as genhash's `-t`.
    /// None: the caller bounds the whole exchange (the checker, by `connect_timeout`).
    pub step_timeout: Option<Duration>,
    /// Keep the response head as received, for genhash's verbose dump.
    pub capture_head: bool,
}

/// What one GET returned.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Status line and headers as received, blank line included (with `capture_head`).
    pub head: Option<Bytes>,
    /// The body (de-chunked, at most [`MAX_BODY`] bytes).
    pub body: Bytes,
}

/// Why a GET failed, by step: the checker logs it, genhash prints keepalived's words for it.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The TCP connection failed.
    #[error("connect {addr}: {source}")]
    Connect {
        /// Destination.
        addr: SocketAddr,
        /// The connect error.
        source: std::io::Error,
    },
    /// The TCP connection did not complete within the step timeout.
    #[error("connect {0}: timed out")]
    ConnectTimeout(SocketAddr),
    /// The TLS handshake failed.
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    /// The TLS handshake did not complete within the step timeout.
    #[error("TLS handshake: timed out")]
    TlsTimeout,
    /// hyper refused the connection (not expected: its handshake does no I/O).
    #[error("handshake: {0}")]
    Handshake(hyper::Error),
    /// The request could not be built (a path or virtualhost that is not valid HTTP).
    #[error("bad request: {0}")]
    BadRequest(http::Error),
    /// Sending the request or reading the response head failed.
    #[error("request: {0}")]
    Request(hyper::Error),
    /// No response head within the step timeout.
    #[error("request: timed out waiting for the response")]
    ResponseTimeout,
    /// Reading the body failed (or it exceeded [`MAX_BODY`]).
    #[error("body: {0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
    /// The body did not arrive within the step timeout.
    #[error("body: timed out")]
    BodyTimeout,
}

impl FetchError {
    /// The server closed the connection before any response head.
    pub fn is_no_response(&self) -> bool {
        matches!(self, FetchError::Request(e) if e.is_incomplete_message())
    }
}

/// `fut`, bounded by `limit` when there is one; None when it ran out.
async fn step<T>(limit: Option<Duration>, fut: impl Future<Output = T>) -> Option<T> {
    match limit {
        Some(d) => tokio::time::timeout(d, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// A `url` block with its regex compiled.
pub struct CompiledUrl {
    /// The block.
    pub spec: UrlSpec,
    /// Its compiled `regex`.
    pub regex: Option<Regex>,
}

impl CompiledUrl {
    /// Compile the regex.
    pub fn new(spec: UrlSpec) -> Result<Self, PrepareError> {
        let regex = match &spec.regex {
            Some(r) => Some(Regex::new(r).map_err(|source| PrepareError::Regex {
                path: spec.path.clone(),
                source,
            })?),
            None => None,
        };
        Ok(Self { spec, regex })
    }
}

/// MD5 of a response body: what `digest` is compared with and what genhash prints.
pub fn md5(body: &[u8]) -> [u8; 16] {
    Md5::digest(body).into()
}

/// Lowercase hex MD5, as keepalived's genhash prints it.
pub fn md5_hex(body: &[u8]) -> String {
    let mut s = String::with_capacity(32);
    for b in md5(body) {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Judge one response: status, then digest, then regex. `Err` carries the failure reason.
pub fn judge(url: &CompiledUrl, status: u16, body: &[u8]) -> Result<(), String> {
    let spec = &url.spec;
    if !spec.status_ok(status) {
        return Err(format!("{}: status {status} not accepted", spec.path));
    }
    if let Some(want) = &spec.digest {
        let got = md5_hex(body);
        if !got.eq_ignore_ascii_case(want.trim()) {
            return Err(format!("{}: digest {got} != {want}", spec.path));
        }
    }
    if let Some(re) = &url.regex {
        let min = spec.regex_min_offset.unwrap_or(0).min(body.len());
        let found = re.find(&body[min..]).is_some_and(|m| {
            spec.regex_max_offset
                .is_none_or(|max| min + m.start() < max)
        });
        if found == spec.regex_no_match {
            let what = if spec.regex_no_match {
                "matches"
            } else {
                "does not match"
            };
            return Err(format!("{}: body {what} regex", spec.path));
        }
    }
    Ok(())
}

/// A prepared HTTP_GET or SSL_GET.
pub struct HttpProbe {
    connect: Connect,
    dest: SocketAddr,
    urls: Vec<CompiledUrl>,
    virtualhost: Option<String>,
    protocol: HttpProtocol,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl HttpProbe {
    /// Prepare: compile regexes, load the SSL block for SSL_GET.
    pub fn new(spec: &HttpCheck, target: &Target, ssl: bool) -> Result<Self, PrepareError> {
        let dest = spec.connect.destination(target, if ssl { 443 } else { 80 });
        let mut urls = spec
            .urls
            .iter()
            .cloned()
            .map(CompiledUrl::new)
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            urls.push(CompiledUrl::new(UrlSpec::default())?);
        }
        let tls = if ssl {
            let config = tls::client_config(spec.tls.as_ref())?;
            let name = tls::server_name(spec, dest.ip())?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Self {
            connect: spec.connect.clone(),
            dest,
            urls,
            virtualhost: spec.virtualhost.clone(),
            protocol: spec.http_protocol,
            tls,
        })
    }

    /// Fetch every url; the first failure decides.
    pub async fn run(&self) -> Outcome {
        for url in &self.urls {
            let resp = match self.get(&url.spec, GetOptions::default()).await {
                Ok(r) => r,
                Err(e) => return Outcome::down(format!("{}: {e}", url.spec.path)),
            };
            if let Err(reason) = judge(url, resp.status, &resp.body) {
                return Outcome::down(reason);
            }
        }
        Outcome::up(format!("{} url(s) ok", self.urls.len()))
    }

    /// One GET of `url` over a fresh connection (TLS for SSL_GET): the checker's exchange,
    /// also what `vrrpd -T` (genhash) prints the digest of.
    pub async fn get(&self, url: &UrlSpec, opts: GetOptions) -> Result<Response, FetchError> {
        let limit = opts.step_timeout;
        let dest = self.dest;
        let tcp = step(limit, net::connect(&self.connect, dest))
            .await
            .ok_or(FetchError::ConnectTimeout(dest))?
            .map_err(|source| FetchError::Connect { addr: dest, source })?;
        match &self.tls {
            None => self.exchange(tcp, url, opts).await,
            Some((connector, name)) => {
                let stream = step(limit, connector.connect(name.clone(), tcp))
                    .await
                    .ok_or(FetchError::TlsTimeout)?
                    .map_err(FetchError::Tls)?;
                self.exchange(stream, url, opts).await
            }
        }
    }

    /// One GET on an already connected stream `io` (plain TCP, TLS, or, for the fuzz target,
    /// scripted server bytes): the request, hyper's parse of the response, the head capture
    /// and the bounded body read.
    pub async fn exchange<S>(
        &self,
        io: S,
        url: &UrlSpec,
        opts: GetOptions,
    ) -> Result<Response, FetchError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let limit = opts.step_timeout;
        let tap = HeadTap::new(io, opts.capture_head);
        let head = tap.head();
        let (mut sender, conn) = http1::handshake(TokioIo::new(tap))
            .await
            .map_err(FetchError::Handshake)?;
        let driver = tokio::spawn(conn);
        let result = async {
            let req = self.request(url).map_err(FetchError::BadRequest)?;
            let resp = step(limit, sender.send_request(req))
                .await
                .ok_or(FetchError::ResponseTimeout)?
                .map_err(FetchError::Request)?;
            let status = resp.status().as_u16();
            let body = step(limit, Limited::new(resp.into_body(), MAX_BODY).collect())
                .await
                .ok_or(FetchError::BodyTimeout)?
                .map_err(FetchError::Body)?
                .to_bytes();
            Ok(Response {
                status,
                head: head.and_then(|h| h.take()),
                body,
            })
        }
        .await;
        driver.abort();
        result
    }

    fn request(&self, url: &UrlSpec) -> Result<hyper::Request<Empty<Bytes>>, http::Error> {
        let host = url
            .virtualhost
            .clone()
            .or_else(|| self.virtualhost.clone())
            .unwrap_or_else(|| {
                let default_port = if self.tls.is_some() { 443 } else { 80 };
                match (self.dest.ip(), self.dest.port()) {
                    (ip, p) if p == default_port => bracket(ip),
                    (ip, p) => format!("{}:{p}", bracket(ip)),
                }
            });
        let mut b = hyper::Request::get(url.path.as_str())
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "vrrpd-checks");
        b = match self.protocol {
            HttpProtocol::Http10 => b.version(hyper::Version::HTTP_10),
            HttpProtocol::Http10C => b
                .version(hyper::Version::HTTP_10)
                .header(hyper::header::CONNECTION, "close"),
            HttpProtocol::Http11 => b
                .version(hyper::Version::HTTP_11)
                .header(hyper::header::CONNECTION, "close"),
        };
        b.body(Empty::new())
    }
}

fn bracket(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::StatusRange;

    fn url(f: impl FnOnce(&mut UrlSpec)) -> CompiledUrl {
        let mut s = UrlSpec::default();
        f(&mut s);
        CompiledUrl::new(s).unwrap()
    }

    #[test]
    fn md5_matches_known_vector() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"hello\n"), "b1946ac92492d2347c6235b4d2611184");
    }

    #[test]
    fn status_codes() {
        assert!(judge(&url(|_| {}), 204, b"").is_ok());
        assert!(judge(&url(|_| {}), 500, b"")
            .unwrap_err()
            .contains("status 500"));
        let u = url(|u| u.status_code = vec![StatusRange { lo: 300, hi: 302 }]);
        assert!(judge(&u, 301, b"").is_ok() && judge(&u, 200, b"").is_err());
    }

    #[test]
    fn digest_case_insensitive_and_mismatch() {
        let u = url(|u| u.digest = Some("B1946AC92492D2347C6235B4D2611184".into()));
        assert!(judge(&u, 200, b"hello\n").is_ok());
        assert!(judge(&u, 200, b"hello").unwrap_err().contains("digest"));
    }

    #[test]
    fn regex_match_no_match_and_offsets() {
        let u = url(|u| u.regex = Some("status: (ok|fine)".into()));
        assert!(judge(&u, 200, b"x status: ok").is_ok());
        assert!(judge(&u, 200, b"status: bad").is_err());
        let n = url(|u| {
            u.regex = Some("ERROR".into());
            u.regex_no_match = true;
        });
        assert!(judge(&n, 200, b"all good").is_ok());
        assert!(judge(&n, 200, b"an ERROR").unwrap_err().contains("matches"));
        let off = url(|u| {
            u.regex = Some("ok".into());
            u.regex_min_offset = Some(3);
            u.regex_max_offset = Some(6);
        });
        assert!(judge(&off, 200, b"ok ok").is_ok(), "match at 3");
        assert!(
            judge(&off, 200, b"ok xxxxxx ok").is_err(),
            "before min / after max"
        );
    }

    #[test]
    fn bad_regex_is_a_prepare_error() {
        let s = UrlSpec {
            regex: Some("(".into()),
            ..Default::default()
        };
        assert!(matches!(
            CompiledUrl::new(s),
            Err(PrepareError::Regex { .. })
        ));
    }
}
