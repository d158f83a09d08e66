//! `track_file`: the integer in a file, re-read whenever the file changes (inotify).
//!
//! The directory is watched rather than the file, so writers that replace the file
//! (write a temporary and rename it over) and files created later are seen too.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::sync::mpsc;
use tracing::debug;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("track_file {0}: no file name")]
    NoFileName(PathBuf),
    #[error("inotify on {dir}: {source}")]
    Inotify { dir: PathBuf, source: nix::Error },
    #[error("inotify: {0}")]
    Io(#[from] std::io::Error),
}

/// A `track_file` as the runtime needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub name: String,
    pub path: PathBuf,
    /// keepalived `init_file [VALUE] [overwrite]`: create the file with VALUE (default 0) if
    /// missing, or always with `overwrite`.
    pub init: Option<(i64, bool)>,
}

/// The value of a file's text like C's `scanf("%d")`: leading blanks, an optional sign, digits;
/// anything else after is ignored. No number (or an unreadable file) reads as 0.
pub fn parse_value(text: &str) -> i64 {
    let t = text.trim_start();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits: &str = &rest[..rest.bytes().take_while(u8::is_ascii_digit).count()];
    let v = digits.bytes().fold(0i64, |acc, d| {
        acc.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    if neg {
        -v
    } else {
        v
    }
}

/// Reads `path` now (0 when missing or not a number).
pub fn read_value(path: &Path) -> i64 {
    std::fs::read_to_string(path)
        .map(|t| parse_value(&t))
        .unwrap_or(0)
}

/// Applies `init_file`.
pub fn init_file(path: &Path, value: i64, overwrite: bool) -> std::io::Result<()> {
    if overwrite || !path.exists() {
        std::fs::write(path, format!("{value}\n"))?;
    }
    Ok(())
}

/// A value of a tracked file (sent first at start, then on every change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEvent {
    pub name: String,
    pub value: i64,
}

/// Watches `spec`: sends its value now and each time it changes; ends when `tx` closes.
pub async fn watch(spec: FileSpec, tx: mpsc::Sender<FileEvent>) -> Result<(), Error> {
    let file: OsString = spec
        .path
        .file_name()
        .ok_or_else(|| Error::NoFileName(spec.path.clone()))?
        .to_owned();
    let dir = match spec.path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Some((v, overwrite)) = spec.init {
        init_file(&spec.path, v, overwrite)?;
    }
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(|source| {
        Error::Inotify {
            dir: dir.clone(),
            source,
        }
    })?;
    // Completed writes only: IN_MODIFY / IN_CREATE would read a file truncated or created
    // but not yet written (a transient 0), as `echo 5 > file` does in two steps.
    let mask = AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_DELETE;
    ino.add_watch(&dir, mask).map_err(|source| Error::Inotify {
        dir: dir.clone(),
        source,
    })?;
    let afd = sysio::fd::Registered::new(ino, tokio::io::Interest::READABLE)?;
    let mut last = read_value(&spec.path);
    let send = |value| FileEvent {
        name: spec.name.clone(),
        value,
    };
    if tx.send(send(last)).await.is_err() {
        return Ok(());
    }
    loop {
        let mut guard = tokio::select! {
            g = afd.readable() => g?,
            _ = tx.closed() => return Ok(()),
        };
        let events = match guard.get_ref().read_events() {
            Ok(ev) => ev,
            Err(nix::errno::Errno::EAGAIN) => {
                guard.clear_ready();
                continue;
            }
            Err(source) => return Err(Error::Inotify { dir, source }),
        };
        if !events
            .iter()
            .any(|e| e.name.as_deref() == Some(file.as_os_str()))
        {
            continue;
        }
        // A panic here loses this change: the restarted watcher reads the file as it is.
        fault_inject::point("track-file");
        let v = read_value(&spec.path);
        debug!(file = %spec.path.display(), value = v, "track_file read");
        if v != last {
            last = v;
            if tx.send(send(v)).await.is_err() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_like_scanf_d() {
        for (t, v) in [
            ("0", 0),
            ("  42\n", 42),
            ("-7", -7),
            ("+5x", 5),
            ("12 34", 12),
            ("abc", 0),
            ("", 0),
            ("-", 0),
            ("99999999999999999999999", i64::MAX),
        ] {
            assert_eq!(parse_value(t), v, "{t:?}");
        }
    }

    async fn next(rx: &mut mpsc::Receiver<FileEvent>) -> i64 {
        tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .expect("event in time")
            .expect("open")
            .value
    }

    #[tokio::test]
    async fn reports_writes_renames_and_deletes() {
        let dir = std::env::temp_dir().join(format!("vrrpd-tf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("prio");
        let spec = FileSpec {
            name: "tf".into(),
            path: path.clone(),
            init: Some((3, false)),
        };
        let (tx, mut rx) = mpsc::channel(8);
        let task = tokio::spawn(watch(spec, tx));
        assert_eq!(next(&mut rx).await, 3, "init_file value first");
        std::fs::write(&path, "10\n").unwrap();
        assert_eq!(next(&mut rx).await, 10);
        // Replace by rename.
        let tmp = dir.join("prio.tmp");
        std::fs::write(&tmp, "-4").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(next(&mut rx).await, -4);
        // Unchanged value: no event; then delete reads 0.
        std::fs::write(&path, "-4").unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(next(&mut rx).await, 0);
        drop(rx);
        // Closing the receiver ends the watcher.
        let res = tokio::time::timeout(Duration::from_secs(2), task).await;
        assert!(matches!(res, Ok(Ok(Ok(())))));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn init_file_respects_overwrite() {
        let dir = std::env::temp_dir().join(format!("vrrpd-tfi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("v");
        init_file(&p, 5, false).unwrap();
        assert_eq!(read_value(&p), 5);
        init_file(&p, 6, false).unwrap();
        assert_eq!(read_value(&p), 5);
        init_file(&p, 6, true).unwrap();
        assert_eq!(read_value(&p), 6);
        std::fs::remove_dir_all(&dir).ok();
    }
}
