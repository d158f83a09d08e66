//! Where the daemon's log goes, as keepalived decides it: syslog (facility `daemon`, or
//! `local0`-`local7` with `-S`) unless `-G`, the console as well with `-l`, a file as well with
//! `-g FILE`. With no syslog socket (a container without /dev/log) and no `-l`, the console
//! stands in, so nothing is lost silently.
//!
//! The console is stderr. Under systemd (`StandardError=journal`, which sets `JOURNAL_STREAM`
//! to stderr's device and inode) each line starts with its syslog priority, `<3>` to `<7>`,
//! as sd-daemon(3) describes, so `journalctl -p err` finds the errors; the journal adds the
//! time. Colours are for terminals only: a file, a pipe or the journal gets plain text.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The local syslog socket.
pub const SYSLOG_SOCKET: &str = "/dev/log";

/// `LOG_DAEMON`, keepalived's default facility.
pub const FACILITY_DAEMON: u8 = 3;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTargets {
    pub console: bool,
    /// The syslog facility, or `None` for `-G`.
    pub syslog: Option<u8>,
    pub file: Option<PathBuf>,
    /// `-D`: debug detail.
    pub detail: bool,
}

/// The facility code of a `-S` value (0-7 and local0-7 are `LOG_LOCALn`; `user`, `daemon`).
pub fn facility(s: &str) -> Option<u8> {
    match s {
        "user" => Some(1),
        "daemon" => Some(FACILITY_DAEMON),
        _ => {
            let n: u8 = s.strip_prefix("local").unwrap_or(s).parse().ok()?;
            (n <= 7).then_some(16 + n)
        }
    }
}

/// The syslog severity of a tracing level (RFC 5424 §6.2.1).
pub fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// A datagram socket to the syslog daemon; every event is one `<PRI>vrrpd[PID]: message`
/// datagram (the daemon adds the time and host).
#[derive(Debug, Clone)]
pub struct Syslog {
    sock: Arc<UnixDatagram>,
    path: PathBuf,
    facility: u8,
}

impl Syslog {
    pub fn connect(path: &Path, facility: u8) -> io::Result<Self> {
        let sock = UnixDatagram::unbound()?;
        sock.connect(path)?;
        Ok(Self {
            sock: Arc::new(sock),
            path: path.to_path_buf(),
            facility,
        })
    }

    fn send(&self, severity: u8, msg: &[u8]) {
        // The pid of the process logging (the supervisor's child logs through the connection
        // its parent made).
        let pid = std::process::id();
        let mut line = format!("<{}>vrrpd[{pid}]: ", self.facility * 8 + severity).into_bytes();
        line.extend_from_slice(msg.strip_suffix(b"\n").unwrap_or(msg));
        // A restarted syslog daemon has a new socket at the same path: connect again once.
        if self.sock.send(&line).is_err() && self.sock.connect(&self.path).is_ok() {
            let _ = self.sock.send(&line);
        }
    }
}

/// One event's text, sent when the formatter drops it.
pub struct SyslogEvent<'a> {
    syslog: &'a Syslog,
    severity: u8,
    buf: Vec<u8>,
}

impl Write for SyslogEvent<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogEvent<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.syslog.send(self.severity, &self.buf);
        }
    }
}

impl Syslog {
    fn event(&self, severity: u8) -> SyslogEvent<'_> {
        SyslogEvent {
            syslog: self,
            severity,
            buf: Vec::new(),
        }
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogEvent<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        self.event(severity(&Level::INFO))
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        self.event(severity(meta.level()))
    }
}

/// The log file (`-g`): appended to, one write per event, so nothing waits in a buffer.
#[derive(Debug, Clone)]
struct LogFile(Arc<Mutex<File>>);

impl Write for &LogFile {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = &'a LogFile;
    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// Whether stderr is the journal's stream: `JOURNAL_STREAM` (`DEVICE:INODE`, set by systemd)
/// names the file stderr is. A child that inherits the variable but not the stream (a
/// redirected stderr) does not match.
pub fn stderr_is_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    match nix::sys::stat::fstat(std::io::stderr()) {
        Ok(st) => st.st_dev == dev && st.st_ino == ino,
        Err(_) => false,
    }
}

/// stderr with each event prefixed by its `<N>` syslog severity (sd-daemon(3)); one write per
/// event, so lines of concurrent threads never interleave.
#[derive(Debug, Clone, Copy)]
pub struct Prefixed<W> {
    out: W,
}

/// One event's text, written with its prefix when the formatter drops it.
pub struct PrefixedEvent<W: Write> {
    out: W,
    severity: u8,
    buf: Vec<u8>,
}

impl<W: Write> Write for PrefixedEvent<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for PrefixedEvent<W> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        // A multi-line message keeps its priority on every line (the journal reads lines).
        let mut out = Vec::with_capacity(self.buf.len() + 8);
        for line in self
            .buf
            .strip_suffix(b"\n")
            .unwrap_or(&self.buf)
            .split(|&b| b == b'\n')
        {
            out.extend_from_slice(format!("<{}>", self.severity).as_bytes());
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        let _ = self.out.write_all(&out);
    }
}

impl<'a, W> MakeWriter<'a> for Prefixed<W>
where
    W: MakeWriter<'a>,
    W::Writer: Write,
{
    type Writer = PrefixedEvent<W::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        PrefixedEvent {
            out: self.out.make_writer(),
            severity: severity(&Level::INFO),
            buf: Vec::new(),
        }
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        PrefixedEvent {
            out: self.out.make_writer(),
            severity: severity(meta.level()),
            buf: Vec::new(),
        }
    }
}

/// The journal's layer: `<N>` per line instead of a level word, no time (the journal has
/// it), no colours: the lines read as keepalived's do in the journal.
pub fn journal_layer<S, W>(out: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'s> tracing_subscriber::registry::LookupSpan<'s>,
    W: for<'w> MakeWriter<'w, Writer: Write> + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(Prefixed { out })
        .with_ansi(false)
        .with_target(false)
        .with_level(false)
        .without_time()
}

/// The syslog layer, for [`init`] and for tests that point it at their own socket.
pub fn syslog_layer<S>(syslog: Syslog) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'s> tracing_subscriber::registry::LookupSpan<'s>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(syslog)
        .with_ansi(false)
        .with_target(false)
        .with_level(false)
        .without_time()
}

/// Installs the global subscriber. Problems opening a target are returned as text to log
/// once logging works (the daemon runs on without that target). `RUST_LOG` overrides `-D`.
pub fn init(t: &LogTargets) -> Vec<String> {
    let mut problems = Vec::new();
    let default = if t.detail { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let syslog = t.syslog.and_then(|f| {
        Syslog::connect(Path::new(SYSLOG_SOCKET), f)
            .map_err(|e| {
                problems.push(format!(
                    "no syslog ({SYSLOG_SOCKET}: {e}): logging to the console"
                ))
            })
            .ok()
    });
    let file = t.file.as_ref().and_then(|p| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map(|f| LogFile(Arc::new(Mutex::new(f))))
            .map_err(|e| problems.push(format!("cannot open log file {}: {e}", p.display())))
            .ok()
    });
    let want_console = t.console || (t.syslog.is_some() && syslog.is_none());
    let journal = want_console && stderr_is_journal();
    let console = (want_console && !journal).then(|| {
        use std::io::IsTerminal;
        tracing_subscriber::fmt::layer()
            .with_writer(io::stderr)
            .with_ansi(io::stderr().is_terminal())
            .with_target(false)
    });
    let journal = journal.then(|| journal_layer(io::stderr));
    let file = file.map(|f| {
        tracing_subscriber::fmt::layer()
            .with_writer(f)
            .with_ansi(false)
            .with_target(false)
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(console)
        .with(journal)
        .with(syslog.map(syslog_layer))
        .with(file)
        .try_init();
    problems
}

/// keepalived's start-up lines: the version, the kernel, the command line (each argument
/// quoted), the configuration file.
pub fn banner(args: &[String], config: &Path) -> Vec<String> {
    let uts = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uts.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    vec![
        format!(
            "Starting vrrpd v{} (keepalived 2.2.7 compatible)",
            env!("CARGO_PKG_VERSION")
        ),
        format!(
            "Running on {} {} {}",
            field(|u| u.sysname()),
            field(|u| u.release()),
            field(|u| u.version())
        ),
        format!("Command line: {}", quoted.join(" ")),
        format!("Opening file '{}'.", config.display()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// What the unit's stderr carries to the journal: a `<N>` priority per line, the level's
    /// severity, no escape codes, no time stamp.
    #[test]
    fn journal_lines_carry_priorities_and_no_escapes() {
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let out = sink.clone();
        let subscriber = tracing_subscriber::registry().with(journal_layer(move || out.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("reload failed:\nline 2");
            tracing::warn!("no syslog");
            tracing::info!("(VI_1) Entering MASTER STATE");
            tracing::debug!("not shown by the daemon at its default level; no filter here");
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "<3>reload failed:");
        assert_eq!(lines[1], "<3>line 2");
        assert_eq!(lines[2], "<4>no syslog");
        assert_eq!(lines[3], "<6>(VI_1) Entering MASTER STATE");
        assert!(lines[4].starts_with("<7>not shown"));
        assert!(!text.contains('\x1b'), "{text:?}");
    }

    #[test]
    fn banner_as_keepalived() {
        let b = banner(
            &[
                "/usr/sbin/vrrpd".into(),
                "-n".into(),
                "-f".into(),
                "/a b.conf".into(),
            ],
            Path::new("/a b.conf"),
        );
        assert!(b[0].starts_with("Starting vrrpd v"));
        assert!(b[1].starts_with("Running on Linux "));
        assert_eq!(
            b[2],
            "Command line: '/usr/sbin/vrrpd' '-n' '-f' '/a b.conf'"
        );
        assert_eq!(b[3], "Opening file '/a b.conf'.");
    }

    #[test]
    fn facilities() {
        assert_eq!(facility("daemon"), Some(3));
        assert_eq!(facility("user"), Some(1));
        assert_eq!(facility("0"), Some(16));
        assert_eq!(facility("local7"), Some(23));
        assert_eq!(facility("8"), None);
        assert_eq!(facility("kern"), None);
    }

    /// Events reach a syslog socket as one datagram each, with the facility and the level's
    /// severity in the priority and our tag.
    #[test]
    fn events_become_syslog_datagrams() {
        let dir = std::env::temp_dir().join(format!("vrrpd-syslog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let syslog = Syslog::connect(&path, facility("local3").unwrap()).unwrap();
        let subscriber = tracing_subscriber::registry().with(syslog_layer(syslog));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("instance", name = "VI_1");
            let _g = span.enter();
            tracing::info!("(VI_1) Entering MASTER STATE");
            tracing::warn!(error = "boom", "sending advert failed");
        });
        let mut buf = [0u8; 512];
        let recv = |buf: &mut [u8]| {
            let n = server.recv(buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        let pid = std::process::id();
        // local3 = 19: 19 * 8 + 6 (info) = 158, + 4 (warning) = 156.
        assert_eq!(
            recv(&mut buf),
            format!("<158>vrrpd[{pid}]: instance{{name=\"VI_1\"}}: (VI_1) Entering MASTER STATE")
        );
        assert_eq!(
            recv(&mut buf),
            format!("<156>vrrpd[{pid}]: instance{{name=\"VI_1\"}}: sending advert failed error=\"boom\"")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
