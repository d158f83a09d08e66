//! Health-check specifications as written in keepalived.conf.
//!
//! The config layer fills these types; the scheduler consumes the [`Resolved`] form produced by
//! [`resolve`], which applies keepalived's inheritance: checker → real server → virtual server →
//! the checker kind's default. Upper levels therefore carry `Option`s ([`TimerOverrides`]), and
//! only the resolved [`Timers`] carry concrete values.
//!
//! Durations serialize as (fractional) seconds, as keepalived accepts them.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One real server to check (`real_server <address> <port>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    /// Stable identifier used in events and status (e.g. `"192.0.2.10:80"` or `"vs1/rs2"`).
    pub id: String,
    /// `real_server` address.
    pub address: IpAddr,
    /// `real_server` port (0 for fwmark services without a port).
    pub port: u16,
}

impl Target {
    /// A target whose id is `address:port`.
    pub fn new(address: IpAddr, port: u16) -> Self {
        Self {
            id: SocketAddr::new(address, port).to_string(),
            address,
            port,
        }
    }
}

/// Concrete timers of one checker after inheritance (see [`resolve`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timers {
    /// `delay_loop`: interval between checks of a healthy target. keepalived default 60 s.
    #[serde(with = "secs")]
    pub delay_loop: Duration,
    /// `connect_timeout`: bound on one probe (connect + exchange). keepalived default 5 s.
    #[serde(with = "secs")]
    pub connect_timeout: Duration,
    /// `retry` (`nb_get_retry` for HTTP_GET/SSL_GET): extra attempts after a failure before an
    /// up target is declared down. Default 1 (MISC_CHECK 0, DNS_CHECK 3).
    pub retry: u32,
    /// `delay_before_retry`: pause between those attempts. Default 1 s (HTTP_GET/SSL_GET 3 s,
    /// DNS_CHECK `delay_loop`).
    #[serde(with = "secs")]
    pub delay_before_retry: Duration,
    /// `warmup`: the first check starts after a random delay in `[0, warmup]`, spreading load.
    /// Default `delay_loop`.
    #[serde(with = "secs")]
    pub warmup: Duration,
    /// `alpha`: the target starts down and needs a success to come up. Default off (start up).
    pub alpha: bool,
    /// `omega`: on shutdown, report every up target down (keepalived runs notify_down and
    /// quorum_down). Default off.
    pub omega: bool,
    /// `rise` (our extension, HAProxy-style): consecutive successes needed to bring a down
    /// target up. keepalived behaves as 1. The fall side is keepalived's: `retry + 1`
    /// consecutive failures take an up target down.
    pub rise: u32,
    /// `dead_interval` (our extension): pace of checks while the target is down, so a flapping
    /// server is not hammered. Default `delay_loop` (keepalived's behaviour).
    #[serde(with = "secs")]
    pub dead_interval: Duration,
}

/// keepalived's default `delay_loop`.
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
/// keepalived's default `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for Timers {
    fn default() -> Self {
        Self {
            delay_loop: DEFAULT_DELAY_LOOP,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry: 1,
            delay_before_retry: Duration::from_secs(1),
            warmup: DEFAULT_DELAY_LOOP,
            alpha: false,
            omega: false,
            rise: 1,
            dead_interval: DEFAULT_DELAY_LOOP,
        }
    }
}

impl Timers {
    /// Consecutive failed probes that take an up target down (keepalived: `retry + 1`).
    pub fn fall(&self) -> u32 {
        self.retry.saturating_add(1)
    }
}

/// Timer keywords that may appear at the virtual server, real server or checker level; `None`
/// means "inherit".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimerOverrides {
    /// `delay_loop`.
    #[serde(with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub delay_loop: Option<Duration>,
    /// `connect_timeout` (keepalived refuses 0: at least 1 µs, at most 4294.967295 s).
    #[serde(with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// `retry` / `nb_get_retry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<u32>,
    /// `delay_before_retry`.
    #[serde(with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub delay_before_retry: Option<Duration>,
    /// `warmup`.
    #[serde(with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Duration>,
    /// `alpha` (`no_alpha` sets `Some(false)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<bool>,
    /// `omega` (`no_omega` sets `Some(false)`); meaningful at the virtual server level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omega: Option<bool>,
    /// `rise` (our extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rise: Option<u32>,
    /// `dead_interval` (our extension).
    #[serde(with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub dead_interval: Option<Duration>,
}

/// Connection options shared by the socket-based checkers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Connect {
    /// `connect_ip`: probe this address instead of the real server's.
    pub connect_ip: Option<IpAddr>,
    /// `connect_port`: probe this port instead of the real server's.
    pub connect_port: Option<u16>,
    /// `bindto`: source address.
    pub bindto: Option<IpAddr>,
    /// `bind_port`: source port.
    pub bind_port: Option<u16>,
    /// `bind_if`: interface to bind to (SO_BINDTODEVICE; needed for link-local IPv6).
    pub bind_if: Option<String>,
    /// `fwmark`: SO_MARK on the probe socket.
    pub fwmark: Option<u32>,
}

impl Connect {
    /// The probe's destination: `connect_ip`/`connect_port` or the target's (or `default_port`
    /// when the target has none, e.g. DNS 53, SMTP 25).
    pub fn destination(&self, target: &Target, default_port: u16) -> SocketAddr {
        let port = self.connect_port.unwrap_or(if target.port == 0 {
            default_port
        } else {
            target.port
        });
        SocketAddr::new(self.connect_ip.unwrap_or(target.address), port)
    }

    /// The probe's source, when `bindto` or `bind_port` is set.
    pub fn source(&self, dest: &SocketAddr) -> Option<SocketAddr> {
        if self.bindto.is_none() && self.bind_port.is_none() {
            return None;
        }
        let unspecified: IpAddr = if dest.is_ipv4() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        Some(SocketAddr::new(
            self.bindto.unwrap_or(unspecified),
            self.bind_port.unwrap_or(0),
        ))
    }
}

/// One checker block inside a `real_server`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    /// The checker kind and its own keywords.
    pub probe: ProbeSpec,
    /// Timer keywords given inside the checker block.
    #[serde(default)]
    pub timers: TimerOverrides,
    /// `log_all_failures`: log every failed attempt, not only state changes.
    #[serde(default)]
    pub log_all_failures: bool,
}

impl CheckSpec {
    /// A checker with no timer keywords of its own.
    pub fn new(probe: ProbeSpec) -> Self {
        Self {
            probe,
            timers: TimerOverrides::default(),
            log_all_failures: false,
        }
    }
}

/// The checker kinds (keepalived block names in the variant docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProbeSpec {
    /// `TCP_CHECK`.
    TcpCheck(TcpCheck),
    /// `HTTP_GET`.
    HttpGet(HttpCheck),
    /// `SSL_GET`.
    SslGet(HttpCheck),
    /// `MISC_CHECK`.
    MiscCheck(MiscCheck),
    /// `PING_CHECK`.
    PingCheck(PingCheck),
    /// `UDP_CHECK`.
    UdpCheck(UdpCheck),
    /// `DNS_CHECK`.
    DnsCheck(DnsCheck),
    /// `SMTP_CHECK`.
    SmtpCheck(SmtpCheck),
    /// `FILE_CHECK`.
    FileCheck(FileCheck),
}

impl ProbeSpec {
    /// keepalived's block name.
    pub fn keyword(&self) -> &'static str {
        match self {
            ProbeSpec::TcpCheck(_) => "TCP_CHECK",
            ProbeSpec::HttpGet(_) => "HTTP_GET",
            ProbeSpec::SslGet(_) => "SSL_GET",
            ProbeSpec::MiscCheck(_) => "MISC_CHECK",
            ProbeSpec::PingCheck(_) => "PING_CHECK",
            ProbeSpec::UdpCheck(_) => "UDP_CHECK",
            ProbeSpec::DnsCheck(_) => "DNS_CHECK",
            ProbeSpec::SmtpCheck(_) => "SMTP_CHECK",
            ProbeSpec::FileCheck(_) => "FILE_CHECK",
        }
    }

    /// keepalived's per-kind default for `retry`.
    pub fn default_retry(&self) -> u32 {
        match self {
            ProbeSpec::MiscCheck(_) => 0,
            ProbeSpec::DnsCheck(_) => 3,
            _ => 1,
        }
    }

    /// keepalived's per-kind default for `delay_before_retry` (`None`: use `delay_loop`).
    pub fn default_delay_before_retry(&self) -> Option<Duration> {
        match self {
            ProbeSpec::HttpGet(_) | ProbeSpec::SslGet(_) => Some(Duration::from_secs(3)),
            ProbeSpec::DnsCheck(_) => None,
            _ => Some(Duration::from_secs(1)),
        }
    }
}

/// `TCP_CHECK` keywords.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TcpCheck {
    /// Connection options.
    pub connect: Connect,
    /// `half_open` (our extension): SYN → SYN/ACK → RST over a raw socket, so the server's
    /// application never sees a connection.
    pub half_open: bool,
    /// `reset_close` (our extension): close a successful connect with an RST (SO_LINGER 0), as
    /// HAProxy's checks do: no FIN exchange and no TIME_WAIT on the checker, but some servers
    /// log the reset. keepalived 2.2.7 (SO_LINGER {1, 5} in `socket_bind_connect`) and so the
    /// default close with FIN.
    pub reset_close: bool,
}

/// `http_protocol` of HTTP_GET/SSL_GET.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpProtocol {
    /// `1.0` (keepalived's default).
    #[default]
    #[serde(rename = "1.0")]
    Http10,
    /// `1.0C`: HTTP/1.0 with `Connection: close`.
    #[serde(rename = "1.0C")]
    Http10C,
    /// `1.1`: HTTP/1.1 (with `Connection: close`, one request per connection).
    #[serde(rename = "1.1")]
    Http11,
}

/// An inclusive `status_code` range (`200`, `200-299`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRange {
    /// Lowest accepted code.
    pub lo: u16,
    /// Highest accepted code.
    pub hi: u16,
}

impl StatusRange {
    /// A single code.
    pub fn one(code: u16) -> Self {
        Self { lo: code, hi: code }
    }
}

/// A `url { }` block of HTTP_GET/SSL_GET.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UrlSpec {
    /// `path`: request target. Default `/`.
    pub path: String,
    /// `status_code`: accepted codes; empty means keepalived's default 200-299.
    pub status_code: Vec<StatusRange>,
    /// `digest`: expected MD5 of the body, lowercase hex (as keepalived's genhash prints).
    pub digest: Option<String>,
    /// `regex`: the body must match (or, with `regex_no_match`, must not match).
    pub regex: Option<String>,
    /// `regex_no_match`: invert `regex`.
    pub regex_no_match: bool,
    /// `regex_min_offset`: the match must start at or after this body offset.
    pub regex_min_offset: Option<usize>,
    /// `regex_max_offset`: the match must start before this body offset.
    pub regex_max_offset: Option<usize>,
    /// `virtualhost`: Host header for this URL (overrides the checker's).
    pub virtualhost: Option<String>,
}

impl Default for UrlSpec {
    fn default() -> Self {
        Self {
            path: "/".into(),
            status_code: Vec::new(),
            digest: None,
            regex: None,
            regex_no_match: false,
            regex_min_offset: None,
            regex_max_offset: None,
            virtualhost: None,
        }
    }
}

impl UrlSpec {
    /// Whether `code` is accepted (default 200-299).
    pub fn status_ok(&self, code: u16) -> bool {
        if self.status_code.is_empty() {
            return (200..=299).contains(&code);
        }
        self.status_code
            .iter()
            .any(|r| (r.lo..=r.hi).contains(&code))
    }
}

/// `HTTP_GET` / `SSL_GET` keywords.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpCheck {
    /// Connection options.
    pub connect: Connect,
    /// `url` blocks; all must pass. Empty is treated as one `url { path / }`.
    pub urls: Vec<UrlSpec>,
    /// `virtualhost` of the checker; the config layer fills in the real server's, else the
    /// virtual server's. A url's own `virtualhost` wins over it.
    pub virtualhost: Option<String>,
    /// `http_protocol`.
    pub http_protocol: HttpProtocol,
    /// `enable_sni` (SSL_GET): send SNI (`sni_name`, else the virtualhost).
    pub enable_sni: bool,
    /// `sni_name` (SSL_GET).
    pub sni_name: Option<String>,
    /// The global `SSL { }` block (SSL_GET); the config layer copies it here.
    pub tls: Option<TlsSpec>,
}

/// The `SSL { }` block: client identity and, when `ca` is set, server verification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsSpec {
    /// `ca`: PEM bundle; when set the server certificate is verified against it. Unset: no
    /// verification (keepalived's default).
    pub ca: Option<PathBuf>,
    /// `certificate`: client certificate chain (PEM).
    pub certificate: Option<PathBuf>,
    /// `key`: client private key (PEM).
    pub key: Option<PathBuf>,
    /// `password`: key passphrase (encrypted keys are not supported by rustls; kept for
    /// compatibility and reported as a configuration error when needed).
    pub password: Option<String>,
}

/// `MISC_CHECK` keywords.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MiscCheck {
    /// `misc_path`: the script and its arguments (quoted in keepalived.conf), split by
    /// [`MiscCheck::argv`] without a shell.
    pub misc_path: String,
    /// `misc_timeout`: the script's process group is killed after this. Default `delay_loop`.
    #[serde(with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub misc_timeout: Option<Duration>,
    /// `misc_dynamic`: exit 0 up, 1 down, 2..=255 up with weight `code - 2`.
    pub misc_dynamic: bool,
    /// `user USER [GROUP]`: run the script as this user (default `script_user`).
    pub user: Option<String>,
    /// Group from `user USER GROUP`.
    pub group: Option<String>,
}

impl MiscCheck {
    /// `misc_path` split into argv, as keepalived splits every script line
    /// ([`crate::script::words`]).
    pub fn argv(&self) -> Result<Vec<String>, crate::script::LineError> {
        crate::script::words(&self.misc_path)
    }
}

/// `PING_CHECK` keywords (ICMP/ICMPv6 echo).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PingCheck {
    /// Connection options (`connect_ip`, `bindto`, `bind_if`).
    pub connect: Connect,
}

/// `UDP_CHECK` keywords.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UdpCheck {
    /// Connection options.
    pub connect: Connect,
    /// `payload`: datagram to send (hex in keepalived.conf). Empty by default.
    pub payload: Vec<u8>,
    /// `require_reply [DATA]`: a reply is needed; without it only an ICMP unreachable fails.
    pub require_reply: bool,
    /// Data the reply must start with (the optional argument of `require_reply`).
    pub reply_data: Option<Vec<u8>>,
    /// `min_reply_length`.
    pub min_reply_length: Option<usize>,
    /// `max_reply_length`.
    pub max_reply_length: Option<usize>,
}

/// `DNS_CHECK` keywords.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsCheck {
    /// Connection options (default port 53, UDP).
    pub connect: Connect,
    /// `type`: query type (A, NS, CNAME, SOA, MX, TXT, AAAA). Default SOA.
    pub qtype: String,
    /// `name`: query name. Default `.`.
    pub name: String,
}

impl Default for DnsCheck {
    fn default() -> Self {
        Self {
            connect: Connect::default(),
            qtype: "SOA".into(),
            name: ".".into(),
        }
    }
}

/// `SMTP_CHECK` keywords.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SmtpCheck {
    /// Connection options (default port 25).
    pub connect: Connect,
    /// `helo_name`: argument of HELO. Default the local host name.
    pub helo_name: Option<String>,
}

/// `FILE_CHECK` keywords (with the `track_file` it names resolved to its path).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileCheck {
    /// `track_file`'s `file`: holds an integer.
    pub file: PathBuf,
    /// `weight W`: 0 means the value is a status (0 up, non-zero down); otherwise the weight is
    /// `value × W`, and a resulting weight ≤ -254 means down.
    pub weight: i32,
    /// `weight W reverse`: negate the value.
    pub reverse: bool,
}

/// A checker with everything inherited and defaulted: what the scheduler runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    /// The real server.
    pub target: Target,
    /// The real server's configured `weight` (reported in up events unless a probe sets one).
    pub weight: u32,
    /// Concrete timers.
    pub timers: Timers,
    /// The probe.
    pub probe: ProbeSpec,
    /// `log_all_failures`.
    pub log_all_failures: bool,
}

/// Apply keepalived's inheritance: each timer comes from the checker, else the real server,
/// else the virtual server, else the kind's default. `warmup` defaults to the resolved
/// `delay_loop`, as does `dead_interval`; DNS_CHECK's `delay_before_retry` defaults to
/// `delay_loop`; MISC_CHECK's `misc_timeout` is left to the probe (default `delay_loop`).
pub fn resolve(
    vs: &TimerOverrides,
    rs: &TimerOverrides,
    check: &CheckSpec,
    target: Target,
    weight: u32,
) -> Resolved {
    let c = &check.timers;
    macro_rules! pick {
        ($f:ident) => {
            c.$f.or(rs.$f).or(vs.$f)
        };
    }
    let delay_loop = pick!(delay_loop).unwrap_or(DEFAULT_DELAY_LOOP);
    let timers = Timers {
        delay_loop,
        connect_timeout: pick!(connect_timeout).unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        retry: pick!(retry).unwrap_or_else(|| check.probe.default_retry()),
        delay_before_retry: pick!(delay_before_retry)
            .or_else(|| check.probe.default_delay_before_retry())
            .unwrap_or(delay_loop),
        warmup: pick!(warmup).unwrap_or(delay_loop),
        alpha: pick!(alpha).unwrap_or(false),
        omega: pick!(omega).unwrap_or(false),
        rise: pick!(rise).unwrap_or(1).max(1),
        dead_interval: pick!(dead_interval).unwrap_or(delay_loop),
    };
    Resolved {
        target,
        weight,
        timers,
        probe: check.probe.clone(),
        log_all_failures: check.log_all_failures,
    }
}

/// `Duration` as fractional seconds (keepalived's TIMER values), for JSON and TOML; the
/// `serde(with = …)` helper of every spec and config model that holds a duration.
pub mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

/// `Option<Duration>` as fractional seconds.
pub mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            Some(v) => Duration::try_from_secs_f64(v)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::new("192.0.2.10".parse().unwrap(), 80)
    }

    #[test]
    fn checker_overrides_real_server_overrides_virtual_server() {
        let vs = TimerOverrides {
            delay_loop: Some(Duration::from_secs(10)),
            retry: Some(5),
            connect_timeout: Some(Duration::from_secs(7)),
            ..Default::default()
        };
        let rs = TimerOverrides {
            retry: Some(4),
            ..Default::default()
        };
        let mut check = CheckSpec::new(ProbeSpec::TcpCheck(TcpCheck::default()));
        check.timers.connect_timeout = Some(Duration::from_secs(2));
        let r = resolve(&vs, &rs, &check, target(), 1);
        assert_eq!(r.timers.delay_loop, Duration::from_secs(10));
        assert_eq!(r.timers.retry, 4);
        assert_eq!(r.timers.connect_timeout, Duration::from_secs(2));
        assert_eq!(
            r.timers.warmup,
            Duration::from_secs(10),
            "warmup follows delay_loop"
        );
        assert_eq!(r.timers.delay_before_retry, Duration::from_secs(1));
        assert_eq!(r.timers.dead_interval, Duration::from_secs(10));
    }

    #[test]
    fn per_kind_defaults() {
        let none = TimerOverrides::default();
        let r = |p| resolve(&none, &none, &CheckSpec::new(p), target(), 1).timers;
        let http = r(ProbeSpec::HttpGet(HttpCheck::default()));
        assert_eq!(
            (http.retry, http.delay_before_retry),
            (1, Duration::from_secs(3))
        );
        assert_eq!(r(ProbeSpec::MiscCheck(MiscCheck::default())).retry, 0);
        let dns = r(ProbeSpec::DnsCheck(DnsCheck::default()));
        assert_eq!((dns.retry, dns.delay_before_retry), (3, DEFAULT_DELAY_LOOP));
        assert_eq!(http.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(
            r(ProbeSpec::TcpCheck(TcpCheck::default())),
            Timers::default()
        );
    }

    #[test]
    fn status_code_default_and_ranges() {
        let mut u = UrlSpec::default();
        assert!(u.status_ok(200) && u.status_ok(299) && !u.status_ok(301) && !u.status_ok(500));
        u.status_code = vec![StatusRange::one(301), StatusRange { lo: 500, hi: 503 }];
        assert!(u.status_ok(301) && u.status_ok(502) && !u.status_ok(200) && !u.status_ok(504));
    }

    #[test]
    fn connect_destination_and_source() {
        let c = Connect {
            connect_port: Some(8080),
            bind_port: Some(4000),
            ..Default::default()
        };
        let d = c.destination(&target(), 53);
        assert_eq!(d, "192.0.2.10:8080".parse().unwrap());
        assert_eq!(c.source(&d), Some("0.0.0.0:4000".parse().unwrap()));
        assert_eq!(Connect::default().source(&d), None);
        let t0 = Target::new("192.0.2.1".parse().unwrap(), 0);
        assert_eq!(Connect::default().destination(&t0, 53).port(), 53);
    }

    #[test]
    fn json_round_trip() {
        let mut check = CheckSpec::new(ProbeSpec::HttpGet(HttpCheck {
            urls: vec![UrlSpec {
                digest: Some("abc".into()),
                ..Default::default()
            }],
            ..Default::default()
        }));
        check.timers.delay_loop = Some(Duration::from_millis(200));
        let json = serde_json::to_string(&check).unwrap();
        assert!(
            json.contains("\"type\":\"HTTP_GET\"") && json.contains("\"delay_loop\":0.2"),
            "{json}"
        );
        let back: CheckSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, check);
    }
}
