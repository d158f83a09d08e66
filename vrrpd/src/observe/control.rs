//! The control socket: a Unix stream socket next to the pid file (`/run/vrrpd.pid` →
//! `/run/vrrpd.ctl`), mode 0600 and answering only root (or the daemon's own user, checked
//! with SO_PEERCRED), and the client side that `vrrpd ipvsadm ...` / `vrrpd status` use.
//!
//! One request per connection: the client writes one line of words (`ipvsadm -L -n --stats`),
//! the daemon answers `OK` or `ERR <why>` on the first line, then the text, and closes.
//! The socket belongs to the process that holds the state (never a supervising parent).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::{Query, Request};

/// The default pid file's socket.
pub const DEFAULT_SOCKET: &str = "/run/vrrpd.ctl";

/// Longest request line.
const MAX_REQUEST: u64 = 4096;

/// How long a client may take to send its request, and the daemon to answer it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The socket next to `pid_file`.
pub fn socket_path(pid_file: &Path) -> PathBuf {
    pid_file.with_extension("ctl")
}

/// The listening socket; removed when dropped.
pub struct ControlSocket {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl ControlSocket {
    /// Binds `path` (a stale socket left by a dead daemon is replaced) and answers requests
    /// through `to_daemon`.
    pub fn bind(path: &Path, to_daemon: mpsc::Sender<Request>) -> std::io::Result<Self> {
        if let Ok(m) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if m.file_type().is_socket() {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AddrInUse,
                        format!("{} is answered by another daemon", path.display()),
                    ));
                }
                std::fs::remove_file(path)?;
            }
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let task = tokio::spawn(accept(listener, to_daemon));
        Ok(Self {
            path: path.to_path_buf(),
            task,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept(listener: UnixListener, to_daemon: mpsc::Sender<Request>) {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        match stream.peer_cred() {
            Ok(c) if c.uid() == 0 || c.uid() == me => {}
            Ok(c) => {
                warn!("control socket: refused a request from uid {}", c.uid());
                continue;
            }
            Err(e) => {
                warn!("control socket: no peer credentials: {e}");
                continue;
            }
        }
        tokio::spawn(serve(stream, to_daemon.clone()));
    }
}

async fn serve(stream: UnixStream, to_daemon: mpsc::Sender<Request>) {
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    let mut rd = tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(rd, MAX_REQUEST));
    let read = tokio::time::timeout(REQUEST_TIMEOUT, rd.read_line(&mut line)).await;
    let answer = match read {
        Ok(Ok(_)) => {
            let words: Vec<&str> = line.split_whitespace().collect();
            debug!(request = line.trim_end(), "control socket");
            match Query::parse(&words) {
                Ok(query) => ask(&to_daemon, query).await,
                Err(e) => Err(e),
            }
        }
        Ok(Err(e)) => Err(format!("reading the request: {e}")),
        Err(_) => Err("no request within 5 s".into()),
    };
    let text = match answer {
        Ok(body) => format!("OK\n{body}"),
        Err(e) => format!("ERR {e}\n"),
    };
    let _ = wr.write_all(text.as_bytes()).await;
    let _ = wr.shutdown().await;
}

/// Hands `query` to the daemon's main loop and waits for its answer.
pub async fn ask(to_daemon: &mpsc::Sender<Request>, query: Query) -> Result<String, String> {
    let (tx, rx) = oneshot::channel();
    to_daemon
        .send(Request { query, reply: tx })
        .await
        .map_err(|_| "the daemon is stopping".to_string())?;
    match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
        Ok(Ok(a)) => a,
        Ok(Err(_)) => Err("the daemon dropped the request (reloading?)".into()),
        Err(_) => Err("no answer within 30 s".into()),
    }
}

/// Client side: sends `words` to the daemon at `path`, returns its answer.
pub fn request(path: &Path, words: &[String]) -> Result<String, String> {
    let mut s = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("cannot reach the daemon at {}: {e}", path.display()))?;
    s.set_read_timeout(Some(ANSWER_TIMEOUT + REQUEST_TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.write_all(format!("{}\n", words.join(" ")).as_bytes())
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status)
        .map_err(|e| format!("reading the answer: {e}"))?;
    let mut body = String::new();
    r.read_to_string(&mut body)
        .map_err(|e| format!("reading the answer: {e}"))?;
    match status.trim_end().strip_prefix("ERR ") {
        Some(e) => Err(e.to_string()),
        None if status == "OK\n" => Ok(body),
        None => Err(format!("unexpected answer {:?}", status.trim_end())),
    }
}

/// `vrrpd ipvsadm|status|metrics ...`: the words after the program name. `--socket PATH`
/// (anywhere) names the socket; otherwise `-p PIDFILE`'s, else [`DEFAULT_SOCKET`]. Returns the
/// exit code.
pub fn client_main(args: &[String]) -> u8 {
    let mut socket = PathBuf::from(DEFAULT_SOCKET);
    let mut words = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--socket" => match it.next() {
                Some(p) => socket = PathBuf::from(p),
                None => {
                    eprintln!("vrrpd: --socket needs a path");
                    return 1;
                }
            },
            s if s.starts_with("--socket=") => socket = PathBuf::from(&s["--socket=".len()..]),
            _ => words.push(a.clone()),
        }
    }
    match request(&socket, &words) {
        Ok(body) => {
            print!("{body}");
            0
        }
        Err(e) => {
            eprintln!("vrrpd: {e}");
            1
        }
    }
}

/// Whether `word` (the first argument) starts client mode.
pub fn is_client_command(word: &str) -> bool {
    matches!(word, "ipvsadm" | "status" | "metrics")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request goes through the socket to the "daemon" and its answer comes back; a bad
    /// request gets ERR with the reason; the socket is 0600 and removed on drop.
    #[tokio::test]
    async fn requests_round_trip_and_errors_say_why() {
        let dir = std::env::temp_dir().join(format!("vrrpd-ctl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = socket_path(&dir.join("vrrpd.pid"));
        assert_eq!(path, dir.join("vrrpd.ctl"));
        let (tx, mut rx) = mpsc::channel::<Request>(4);
        let sock = ControlSocket::bind(&path, tx).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        tokio::spawn(async move {
            while let Some(r) = rx.recv().await {
                let _ = r.reply.send(Ok(format!("{:?}\n", r.query)));
            }
        });
        let p = path.clone();
        let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let (ok, bad) = tokio::task::spawn_blocking(move || {
            (
                request(&p, &words("status --json")),
                request(&p, &words("ipvsadm -A")),
            )
        })
        .await
        .unwrap();
        assert_eq!(ok, Ok("Status { json: true }\n".to_string()));
        assert!(bad.unwrap_err().contains("configuration"));
        // A second daemon does not steal a live socket.
        let (tx2, _rx2) = mpsc::channel::<Request>(1);
        assert!(ControlSocket::bind(&path, tx2).is_err());
        drop(sock);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
