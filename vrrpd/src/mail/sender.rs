//! The driver: a bounded queue and one task delivering its alerts over TCP.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tracing::{debug, info, warn};

use super::message::{self, Alert};
use super::smtp::{ReplyReader, Session, SmtpError, Step, QUIT};
use keepalived_conf::model::GlobalDefs;

/// Alerts waiting for delivery; more are dropped (and counted).
const QUEUE: usize = 64;

/// Where and how mails go: `global_defs` with keepalived's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    /// `smtp_helo_name` (default: the host name).
    pub helo: String,
    /// `notification_email_from` (default: `USER@HOSTNAME`, as keepalived 2.2.7 does).
    pub from: String,
    pub to: Vec<String>,
    /// `smtp_connect_timeout`: bounds the connection and each reply.
    pub timeout: Duration,
    /// `router_id` (default: the host name), in every subject.
    pub router_id: String,
}

impl Settings {
    /// `None` unless both `notification_email` and `smtp_server` are set (keepalived sends
    /// nothing then, whatever `smtp_alert` says).
    pub fn from_config(g: &GlobalDefs) -> Option<Self> {
        let m = &g.mail;
        let server = m.smtp_server.as_ref()?;
        if m.notification_email.is_empty() {
            return None;
        }
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map_or_else(|| "keepalived".to_string(), |u| u.name);
        Some(Self {
            host: server.host.clone(),
            port: server.port,
            helo: m.smtp_helo_name.clone().unwrap_or_else(|| host.clone()),
            from: m
                .notification_email_from
                .clone()
                .unwrap_or_else(|| format!("{user}@{host}")),
            to: m.notification_email.clone(),
            timeout: m.smtp_connect_timeout,
            router_id: g.router_id.clone().unwrap_or(host),
        })
    }

    /// keepalived's `FMT_SMTP_HOST`.
    fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// Delivery counters, for the status dump.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MailStats {
    /// Accepted by the server.
    pub sent: u64,
    /// Refused, timed out or unreachable.
    pub failed: u64,
    /// Not queued: the queue was full.
    pub dropped: u64,
}

/// Hands alerts to the delivery task. Cheap to clone; the task ends once every clone is gone
/// and the queue is empty.
#[derive(Clone)]
pub struct Mailer {
    tx: mpsc::Sender<(String, String)>,
    router_id: Arc<str>,
    counters: Arc<Counters>,
}

#[derive(Debug, thiserror::Error)]
enum MailError {
    #[error("Timeout {0} SMTP server {1}.")]
    Timeout(&'static str, String),
    #[error("SMTP connection ERROR to {0}: {1}")]
    Io(String, std::io::Error),
    #[error("cannot resolve SMTP server {0}")]
    Resolve(String),
    #[error("Remote SMTP server {0} has closed the connection.")]
    Closed(String),
    #[error("{1} ({0})")]
    Smtp(String, SmtpError),
}

impl Mailer {
    /// Starts the delivery task on the current runtime.
    pub fn start(settings: Settings) -> Self {
        let (tx, rx) = mpsc::channel::<(String, String)>(QUEUE);
        let counters = Arc::new(Counters::default());
        let router_id = Arc::from(settings.router_id.as_str());
        crate::components::spawn(
            "mailer".into(),
            (rx, settings, counters.clone()),
            |(rx, settings, c)| {
                Box::pin(async move {
                    while let Some((subject, body)) = rx.recv().await {
                        fault_inject::point("mailer");
                        match deliver(settings, &subject, &body).await {
                            Ok(()) => {
                                c.sent.fetch_add(1, Ordering::Relaxed);
                                info!(%subject, "SMTP alert successfully sent.");
                            }
                            Err(e) => {
                                c.failed.fetch_add(1, Ordering::Relaxed);
                                warn!(%subject, "SMTP alert not sent: {e}");
                            }
                        }
                    }
                })
            },
        );
        Self {
            tx,
            router_id,
            counters,
        }
    }

    /// Queues `alert` without waiting.
    pub fn send(&self, alert: &Alert) {
        let (Some(subject), Some(body)) = (alert.subject(&self.router_id), alert.body()) else {
            return;
        };
        debug!(%subject, "queueing SMTP alert");
        if self.tx.try_send((subject.clone(), body)).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            warn!(%subject, "SMTP alert dropped: {QUEUE} alerts already waiting");
        }
    }

    pub fn stats(&self) -> MailStats {
        MailStats {
            sent: self.counters.sent.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }
}

/// One message over one connection, every wait bounded by the timeout.
async fn deliver(s: &Settings, subject: &str, body: &str) -> Result<(), MailError> {
    let server = s.server();
    let t = s.timeout;
    let addr = timeout(t, tokio::net::lookup_host((s.host.as_str(), s.port)))
        .await
        .map_err(|_| MailError::Timeout("resolving", server.clone()))?
        .map_err(|e| MailError::Io(server.clone(), e))?
        .next()
        .ok_or_else(|| MailError::Resolve(server.clone()))?;
    let mut stream = timeout(t, TcpStream::connect(addr))
        .await
        .map_err(|_| MailError::Timeout("connecting", server.clone()))?
        .map_err(|e| MailError::Io(server.clone(), e))?;
    let text = message::render(
        &message::date(&message::now()),
        &s.from,
        subject,
        &s.to,
        body,
    );
    let mut session = Session::new(&s.helo, &s.from, &s.to, &text);
    let mut replies = ReplyReader::default();
    let mut buf = [0u8; 2048];
    loop {
        let code = loop {
            if let Some(r) = replies.next_reply() {
                break r.map_err(|e| MailError::Smtp(server.clone(), e))?;
            }
            let n = match timeout(t, stream.read(&mut buf)).await {
                Err(_) => return Err(MailError::Timeout("reading data from", server)),
                Ok(Err(e)) => return Err(MailError::Io(server, e)),
                Ok(Ok(0)) if session.delivered() => return Ok(()),
                Ok(Ok(0)) => return Err(MailError::Closed(server)),
                Ok(Ok(n)) => n,
            };
            replies
                .push(&buf[..n])
                .map_err(|e| MailError::Smtp(server.clone(), e))?;
        };
        match session.on_reply(code) {
            Step::Send(bytes) => match timeout(t, stream.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                _ if session.delivered() => return Ok(()),
                Err(_) => return Err(MailError::Timeout("sending data to", server)),
                Ok(Err(e)) => return Err(MailError::Io(server, e)),
            },
            Step::Finished => return Ok(()),
            Step::Failed(e) => {
                let _ = timeout(t, stream.write_all(QUIT)).await;
                return Err(MailError::Smtp(server, e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::TcpListener;

    fn settings(port: u16, t: Duration) -> Settings {
        Settings {
            host: "127.0.0.1".into(),
            port,
            helo: "h".into(),
            from: "f@h".into(),
            to: vec!["a@b".into()],
            timeout: t,
            router_id: "r".into(),
        }
    }

    async fn wait_for(m: &Mailer, f: impl Fn(MailStats) -> bool) -> MailStats {
        for _ in 0..500 {
            if f(m.stats()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        m.stats()
    }

    /// A minimal server on loopback: what the client wrote arrives, the message is counted.
    #[tokio::test]
    async fn delivers_to_a_server() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r);
            w.write_all(b"220 hi\r\n").await.unwrap();
            let mut seen = String::new();
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                seen.push_str(&line);
                let reply: &[u8] = if in_data {
                    if line != ".\r\n" {
                        continue;
                    }
                    in_data = false;
                    b"250 queued\r\n"
                } else if line.starts_with("DATA") {
                    in_data = true;
                    b"354 go\r\n"
                } else if line.starts_with("QUIT") {
                    w.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                } else {
                    b"250 ok\r\n"
                };
                w.write_all(reply).await.unwrap();
            }
            seen
        });
        let m = Mailer::start(settings(port, Duration::from_secs(5)));
        m.send(&Alert::Instance {
            name: "VI_1".into(),
            state: crate::notify::NotifyState::Master,
        });
        let seen = server.await.unwrap();
        assert!(seen.starts_with("HELO h\r\nMAIL FROM:<f@h>\r\nRCPT TO:<a@b>\r\nDATA\r\n"));
        assert!(seen.contains("Subject: [r] VRRP Instance VI_1 - Entering MASTER state\r\n"));
        assert!(
            seen.ends_with("\r\n=> VRRP Instance is now owning VRRP VIPs <=\r\n\r\n.\r\nQUIT\r\n")
        );
        let st = wait_for(&m, |s| s.sent == 1).await;
        assert_eq!(
            st,
            MailStats {
                sent: 1,
                failed: 0,
                dropped: 0
            }
        );
    }

    /// Nobody listening, or a server that never answers: counted as failed within the
    /// timeout, and `send` never waits.
    #[tokio::test]
    async fn failures_are_counted_not_fatal() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let m = Mailer::start(settings(closed, Duration::from_secs(2)));
        let a = Alert::Group {
            name: "G".into(),
            state: crate::notify::NotifyState::Backup,
        };
        m.send(&a);
        assert_eq!(wait_for(&m, |s| s.failed == 1).await.failed, 1);

        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let m = Mailer::start(settings(port, Duration::from_millis(200)));
        let started = std::time::Instant::now();
        for _ in 0..QUEUE + 10 {
            m.send(&a);
        }
        assert!(started.elapsed() < Duration::from_secs(1), "send waited");
        // One is being delivered, QUEUE wait, the rest are dropped.
        let st = wait_for(&m, |s| s.failed >= 1).await;
        assert!(st.dropped >= 9 && st.dropped <= 10, "{st:?}");
        assert_eq!(st.sent, 0);
        drop(silent);
    }
}
