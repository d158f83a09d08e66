//! An SMTP sink inside a lab host: accepts every message (`HELO`/`EHLO`, `MAIL`, `RCPT`,
//! `DATA`, `QUIT`) and keeps what each client said, so tests can compare the alerts of
//! vrrpd and keepalived. One thread per connection; stopped (and joined) on drop.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

use crate::error::{LabError, Result};
use crate::lab::Host;

/// One message as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The client's address.
    pub peer: IpAddr,
    /// `HELO NAME` / `EHLO NAME` as sent.
    pub helo: String,
    /// The `MAIL FROM:<…>` address and every `RCPT TO:<…>` one.
    pub from: String,
    pub rcpt: Vec<String>,
    /// Everything between `DATA` and the final dot, dot-stuffing undone, CRLFs kept.
    pub data: String,
}

impl Mail {
    /// The value of header `name` (first match, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let head = self.data.split("\r\n\r\n").next()?;
        head.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The header names in order.
    pub fn header_names(&self) -> Vec<&str> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        head.split("\r\n")
            .filter_map(|l| l.split_once(':').map(|(k, _)| k))
            .collect()
    }

    /// What follows the empty line after the headers.
    pub fn body(&self) -> &str {
        self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }
}

/// The running sink.
pub struct SmtpSink {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    /// Connections opened, whether or not they brought a message.
    connections: Arc<Mutex<u32>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Listens on `addr:port` inside `host`'s namespace (`addr` must be one of its addresses).
    pub fn start(host: &Host, addr: IpAddr, port: u16) -> Result<Self> {
        let ns = File::open(host.netns_path())?;
        let addr = SocketAddr::new(addr, port);
        let mails = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (m, c, s) = (mails.clone(), connections.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // setns affects only this thread (and the connection threads it starts, which
            // inherit nothing: they only use the accepted sockets).
            let listener = setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)
                .and_then(|_| TcpListener::bind(addr))
                .and_then(|l| l.set_nonblocking(true).map(|_| l));
            let listener = match listener {
                Ok(l) => {
                    let _ = tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let mut workers = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        *c.lock().unwrap() += 1;
                        let (m, s) = (m.clone(), s.clone());
                        workers.push(std::thread::spawn(move || {
                            let _ = serve(stream, peer.ip(), &m, &s);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        rx.recv_timeout(Duration::from_secs(5))
            .map_err(|_| LabError::Other("smtp sink did not start".into()))??;
        Ok(Self {
            addr,
            mails,
            connections,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every message received so far, in the order they completed.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u32 {
        *self.connections.lock().unwrap()
    }

    /// Forgets what was received.
    pub fn clear(&self) {
        self.mails.lock().unwrap().clear();
        *self.connections.lock().unwrap() = 0;
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One connection: a permissive server that accepts whatever comes, as long as it is SMTP.
fn serve(
    stream: TcpStream,
    peer: IpAddr,
    mails: &Mutex<Vec<Mail>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    w.write_all(b"220 sink.example ESMTP lab sink\r\n")?;
    let mut mail = Mail {
        peer,
        helo: String::new(),
        from: String::new(),
        rcpt: Vec::new(),
        data: String::new(),
    };
    let mut in_data = false;
    let mut line = String::new();
    // Bounded: a client quiet for 30 s is dropped.
    let mut idle = 0;
    loop {
        if stop.load(Ordering::Relaxed) || idle > 300 {
            return Ok(());
        }
        match r.read_line(&mut line) {
            Ok(0) => return Ok(()),
            Ok(_) if !line.ends_with('\n') => continue,
            Ok(_) => idle = 0,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                idle += 1;
                continue;
            }
            Err(e) => return Err(e),
        }
        let l = std::mem::take(&mut line);
        if in_data {
            if l == ".\r\n" {
                in_data = false;
                mails.lock().unwrap().push(mail.clone());
                w.write_all(b"250 2.0.0 queued\r\n")?;
            } else {
                mail.data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            continue;
        }
        let cmd = l.trim_end();
        let upper = cmd.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("HELO ") || upper.starts_with("EHLO ") {
            mail.helo = cmd.to_string();
            b"250 sink.example\r\n"
        } else if let Some(a) = upper.strip_prefix("MAIL FROM:") {
            mail.from = addr_of(&cmd[cmd.len() - a.len()..]);
            mail.rcpt.clear();
            mail.data.clear();
            b"250 2.1.0 ok\r\n"
        } else if let Some(a) = upper.strip_prefix("RCPT TO:") {
            mail.rcpt.push(addr_of(&cmd[cmd.len() - a.len()..]));
            b"250 2.1.5 ok\r\n"
        } else if upper == "DATA" {
            in_data = true;
            b"354 end with <CRLF>.<CRLF>\r\n"
        } else if upper == "QUIT" {
            w.write_all(b"221 2.0.0 bye\r\n")?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 ok\r\n"
        } else {
            b"502 5.5.2 not implemented\r\n"
        };
        w.write_all(reply)?;
    }
}

/// `<a@b>` → `a@b`.
fn addr_of(s: &str) -> String {
    s.trim()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_parts() {
        let m = Mail {
            peer: "192.0.2.1".parse().unwrap(),
            helo: "HELO vm".into(),
            from: "a@b".into(),
            rcpt: vec!["c@d".into()],
            data: "Date: x\r\nSubject: [r] hi\r\nTo: c@d\r\n\r\nbody\r\n\r\n".into(),
        };
        assert_eq!(m.header("subject"), Some("[r] hi"));
        assert_eq!(m.header_names(), ["Date", "Subject", "To"]);
        assert_eq!(m.body(), "body\r\n\r\n");
        assert_eq!(addr_of(" <x@y> SIZE=10"), "x@y");
    }
}
