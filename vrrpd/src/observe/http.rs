//! The Prometheus endpoint: `GET /metrics` over HTTP/1.1 on the address of `--metrics` (or
//! `global_defs { vrrpd_metrics_listen ADDR:PORT }`), off by default. One response per
//! connection (`Connection: close`), as small servers of the exposition format do; anything
//! but `GET /metrics` (or `/`) is answered 404 or 405.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{control, metrics, Query, Request};

/// Longest request head read.
const MAX_HEAD: usize = 8192;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The running endpoint; stops when dropped.
pub struct MetricsServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MetricsServer {
    pub async fn bind(addr: SocketAddr, to_daemon: mpsc::Sender<Request>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        info!("metrics on http://{addr}/metrics");
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((s, _)) => {
                        tokio::spawn(serve(s, to_daemon.clone()));
                    }
                    Err(e) => {
                        warn!("metrics endpoint: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(Self { addr, task })
    }
}

/// The request line's method and path, once the head is complete.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let text = std::str::from_utf8(head).ok()?;
    let line = text.lines().next()?;
    let mut w = line.split(' ');
    let (method, path) = (w.next()?, w.next()?);
    Some((method, path.split('?').next().unwrap_or(path)))
}

async fn serve(mut s: TcpStream, to_daemon: mpsc::Sender<Request>) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = tokio::time::timeout(READ_TIMEOUT, async {
        while head.len() < MAX_HEAD && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await
    .unwrap_or(false);
    if !complete {
        return;
    }
    let (status, ctype, body) = match request_line(&head) {
        Some(("GET", "/metrics" | "/")) => match control::ask(&to_daemon, Query::Metrics).await {
            Ok(b) => ("200 OK", metrics::CONTENT_TYPE, b),
            Err(e) => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                e + "\n",
            ),
        },
        Some(("GET", _)) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found\n".into(),
        ),
        Some(_) => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET\n".into(),
        ),
        None => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            String::new(),
        ),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            request_line(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            request_line(b"POST / HTTP/1.1\r\n\r\n"),
            Some(("POST", "/"))
        );
        assert_eq!(request_line(b"\xff\r\n\r\n"), None);
    }

    /// A scrape over real TCP reaches the daemon's loop and comes back as HTTP.
    #[tokio::test]
    async fn scrape_over_tcp() {
        let (tx, mut rx) = mpsc::channel::<Request>(4);
        let srv = MetricsServer::bind("127.0.0.1:0".parse().unwrap(), tx)
            .await
            .unwrap();
        tokio::spawn(async move {
            while let Some(r) = rx.recv().await {
                assert_eq!(r.query, Query::Metrics);
                let _ = r.reply.send(Ok("keepalived_up 1\n".into()));
            }
        });
        let mut c = TcpStream::connect(srv.addr).await.unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("Content-Type: text/plain; version=0.0.4"));
        assert!(out.ends_with("\r\n\r\nkeepalived_up 1\n"), "{out}");
    }
}
