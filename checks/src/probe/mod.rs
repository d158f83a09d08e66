//! Probes: the I/O of each checker kind. Every probe's verdict logic is a pure function in its
//! module, tested without sockets; the async part only gathers the facts it judges.

pub mod dns;
pub mod file;
pub mod halfopen;
pub mod http;
pub mod misc;
pub mod net;
pub mod ping;
pub mod smtp;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::sync::Arc;
use std::time::Duration;

use crate::health::Outcome;
use crate::spec::{ProbeSpec, Resolved, Timers};

/// A configuration the probes cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A `regex` that does not compile.
    #[error("url {path}: bad regex: {source}")]
    Regex {
        /// The url's path.
        path: String,
        /// The compile error.
        source: regex::Error,
    },
    /// The `SSL` block could not be loaded.
    #[error("SSL block: {0}")]
    Tls(String),
    /// `user` / group of MISC_CHECK does not exist.
    #[error("unknown user or group {0}")]
    User(String),
    /// `misc_path` is empty.
    #[error("MISC_CHECK without misc_path")]
    EmptyMiscPath,
    /// A keyword value the probe cannot use.
    #[error("invalid value: {0}")]
    Invalid(String),
    /// A checker kind this build does not implement yet.
    #[error("{0} is not implemented")]
    Unsupported(&'static str),
}

/// A probe ready to run: regexes compiled, TLS configuration loaded, once.
#[derive(Clone)]
pub enum Prepared {
    /// TCP_CHECK.
    Tcp(Arc<tcp::TcpProbe>),
    /// HTTP_GET / SSL_GET.
    Http(Arc<http::HttpProbe>),
    /// MISC_CHECK.
    Misc(Arc<misc::MiscProbe>),
    /// FILE_CHECK.
    File(Arc<file::FileProbe>),
    /// TCP_CHECK with `half_open`.
    HalfOpen(Arc<halfopen::HalfOpenProbe>),
    /// UDP_CHECK.
    Udp(Arc<udp::UdpProbe>),
    /// DNS_CHECK.
    Dns(Arc<dns::DnsProbe>),
    /// SMTP_CHECK.
    Smtp(Arc<smtp::SmtpProbe>),
    /// PING_CHECK.
    Ping(Arc<ping::PingProbe>),
}

impl Prepared {
    /// Validate and prepare a resolved checker.
    pub fn new(r: &Resolved) -> Result<Self, PrepareError> {
        Ok(match &r.probe {
            ProbeSpec::TcpCheck(t) if t.half_open => {
                Prepared::HalfOpen(Arc::new(halfopen::HalfOpenProbe::new(t, &r.target)))
            }
            ProbeSpec::TcpCheck(t) => Prepared::Tcp(Arc::new(tcp::TcpProbe::new(t, &r.target))),
            ProbeSpec::HttpGet(h) => {
                Prepared::Http(Arc::new(http::HttpProbe::new(h, &r.target, false)?))
            }
            ProbeSpec::SslGet(h) => {
                Prepared::Http(Arc::new(http::HttpProbe::new(h, &r.target, true)?))
            }
            ProbeSpec::MiscCheck(m) => {
                Prepared::Misc(Arc::new(misc::MiscProbe::new(m, &r.timers, r.weight)?))
            }
            ProbeSpec::FileCheck(f) => Prepared::File(Arc::new(file::FileProbe::new(f, r.weight))),
            ProbeSpec::UdpCheck(u) => Prepared::Udp(Arc::new(udp::UdpProbe::new(u, &r.target))),
            ProbeSpec::DnsCheck(d) => Prepared::Dns(Arc::new(dns::DnsProbe::new(d, &r.target)?)),
            ProbeSpec::SmtpCheck(m) => Prepared::Smtp(Arc::new(smtp::SmtpProbe::new(m, &r.target))),
            ProbeSpec::PingCheck(p) => Prepared::Ping(Arc::new(ping::PingProbe::new(p, &r.target))),
        })
    }

    /// Run once. Network probes are bounded by `connect_timeout`; MISC_CHECK by `misc_timeout`.
    ///
    /// Each kind's future is boxed on its own so that a scheduler task is as small as the probe
    /// it runs (a TCP_CHECK task does not carry room for an HTTP exchange).
    pub fn run(&self, timers: &Timers) -> ProbeFuture {
        let t = timers.connect_timeout;
        match self.clone() {
            Prepared::Tcp(p) => Box::pin(async move { bounded(t, p.run()).await }),
            Prepared::HalfOpen(p) => Box::pin(async move { bounded(t, p.run()).await }),
            Prepared::Http(p) => Box::pin(async move { bounded(t, p.run()).await }),
            Prepared::Smtp(p) => Box::pin(async move { bounded(t, p.run()).await }),
            Prepared::Misc(p) => Box::pin(async move { p.run().await }),
            Prepared::File(p) => Box::pin(async move { p.run().await }),
            // Datagram probes wait for a reply themselves: silence is a verdict for UDP_CHECK.
            Prepared::Udp(p) => Box::pin(async move { p.run(t).await }),
            Prepared::Dns(p) => Box::pin(async move { p.run(t).await }),
            Prepared::Ping(p) => Box::pin(async move { p.run(t).await }),
        }
    }
}

/// A running probe.
pub type ProbeFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>>;

async fn bounded(limit: Duration, fut: impl std::future::Future<Output = Outcome>) -> Outcome {
    match tokio::time::timeout(limit, fut).await {
        Ok(o) => o,
        Err(_) => Outcome::down(format!("timeout after {:.3}s", limit.as_secs_f64())),
    }
}
