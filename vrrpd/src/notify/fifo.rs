//! Notify FIFOs (`notify_fifo`, `vrrp_notify_fifo`, `lvs_notify_fifo`) and the lines
//! keepalived writes to them:
//!
//! - VRRP: `INSTANCE "VI_1" MASTER 150` (`GROUP "G" BACKUP 0`), and the instance events
//!   `MASTER_RX_LOWER_PRI`, `MASTER_PRIORITY`, `BACKUP_PRIORITY` in place of the state;
//! - checker: `VS [192.0.2.100]:tcp:80 UP|DOWN` (the virtual server's quorum) and
//!   `RS [198.51.100.1]:tcp:80 [192.0.2.100]:tcp:80 UP|DOWN` (a real server).
//!
//! Each line is one `write` below `PIPE_BUF`, so lines of different writers sharing a FIFO
//! never interleave.

use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lbcore::spec::{Protocol, RealServerSpec, ServiceKey, ServiceSpec};
use tracing::{info, warn};

use crate::track::script::RunAs;

/// A VRRP line: `KIND "NAME" WORD PRIORITY` and a newline.
pub fn vrrp_line(kind: &str, name: &str, word: &str, priority: u8) -> String {
    format!("{kind} \"{name}\" {word} {priority}\n")
}

/// A virtual server's quorum line: `VS [192.0.2.100]:tcp:80 UP`.
pub fn vs_line(vs: &ServiceSpec, up: bool) -> String {
    format!("VS {} {}\n", vs_text(vs), up_down(up))
}

/// A real server's line: `RS [198.51.100.1]:tcp:80 [192.0.2.100]:tcp:80 DOWN`.
pub fn rs_line(vs: &ServiceSpec, rs: &RealServerSpec, up: bool) -> String {
    format!("RS {} {} {}\n", rs_text(vs, rs), vs_text(vs), up_down(up))
}

fn up_down(up: bool) -> &'static str {
    if up {
        "UP"
    } else {
        "DOWN"
    }
}

/// keepalived's `FMT_VS`: `[ADDR]:PROTO:PORT`, `FWM MARK`, or `[GROUP]:0` for a group.
pub fn vs_text(vs: &ServiceSpec) -> String {
    match &vs.key {
        ServiceKey::Addr { addr, port } => trio(*addr, proto(vs), port.unwrap_or(0)),
        ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
        ServiceKey::Group(g) => format!("[{g}]:0"),
    }
}

/// keepalived's `FMT_RS`: `[ADDR]:PROTO:PORT`, the port being the virtual server's when the
/// real server gives none (keepalived fills it in; 0 for a firewall mark).
pub fn rs_text(vs: &ServiceSpec, rs: &RealServerSpec) -> String {
    let port = match (&vs.key, rs.port) {
        (_, Some(p)) => p,
        (ServiceKey::Addr { port: Some(p), .. }, None) => *p,
        _ => 0,
    };
    trio(rs.addr, proto(vs), port)
}

/// The protocol word; a firewall-mark service has none (keepalived clears it).
fn proto(vs: &ServiceSpec) -> &'static str {
    match (&vs.key, vs.protocol) {
        (ServiceKey::Fwmark { .. }, _) => "none",
        (_, Protocol::Tcp) => "tcp",
        (_, Protocol::Udp) => "udp",
        (_, Protocol::Sctp) => "sctp",
    }
}

fn trio(addr: IpAddr, proto: &str, port: u16) -> String {
    format!("[{addr}]:{proto}:{port}")
}

/// A notify FIFO, shared by every writer (instances, groups, the checkers).
///
/// Created (mode 0644 less the umask, so 0600 under keepalived's default umask 0177; given
/// to its owner) if missing and opened read-write and non-blocking,
/// so opening never waits for (or fails without) a reader and a vanished reader is no SIGPIPE;
/// a full pipe loses the line with a warning rather than stalling the daemon.
#[derive(Debug)]
pub struct Fifo {
    path: PathBuf,
    file: Mutex<File>,
    /// We made it, so we remove it when done ([`Fifo::unlink`]).
    created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FifoError {
    #[error("creating FIFO {0}: {1}")]
    Create(PathBuf, nix::Error),
    #[error("{0} exists and is not a FIFO")]
    NotFifo(PathBuf),
    #[error("opening FIFO {0}: {1}")]
    Open(PathBuf, std::io::Error),
}

impl Fifo {
    /// Opens `path`, creating it first if missing; a FIFO we create goes to `owner`.
    pub fn open(path: &Path, owner: Option<RunAs>) -> Result<Self, FifoError> {
        use std::os::unix::fs::FileTypeExt;
        let created = match std::fs::symlink_metadata(path) {
            Ok(m) if !m.file_type().is_fifo() => return Err(FifoError::NotFifo(path.into())),
            Ok(_) => false,
            Err(_) => {
                // keepalived's mode: 0600 under its default umask (0177), 0644 with umask 0.
                nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644))
                    .map_err(|e| FifoError::Create(path.into(), e))?;
                true
            }
        };
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path);
        let file = match opened {
            Ok(f) => f,
            Err(e) => {
                if created {
                    let _ = std::fs::remove_file(path);
                }
                return Err(FifoError::Open(path.into(), e));
            }
        };
        if let (true, Some(o)) = (created, owner) {
            // keepalived gives the FIFO it creates to its user, so a reader running as that
            // user (the script user by default) may open it.
            let (uid, gid) = (
                nix::unistd::Uid::from_raw(o.uid),
                nix::unistd::Gid::from_raw(o.gid),
            );
            if let Err(e) = nix::unistd::fchown(&file, Some(uid), Some(gid)) {
                warn!(fifo = %path.display(), error = %e, "cannot give the notify FIFO to its user");
            }
        }
        info!(fifo = %path.display(), created, "notify FIFO open");
        Ok(Self {
            path: path.into(),
            file: Mutex::new(file),
            created,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one line in a single `write`.
    pub fn write_line(&self, line: &str) {
        // A writer that panicked holding it leaves the file as good as before.
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = f.write_all(line.as_bytes()) {
            warn!(fifo = %self.path.display(), error = %e, "notify FIFO write failed; line lost");
        }
    }

    /// Removes the FIFO if we created it. keepalived does so before closing, so that a reader
    /// reopening the FIFO in a loop ends instead of waiting for a writer that is gone.
    pub fn unlink(&self) {
        if self.created {
            if let Err(e) = std::fs::remove_file(&self.path) {
                warn!(fifo = %self.path.display(), error = %e, "cannot remove the notify FIFO");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbcore::spec::IpFamily;
    use std::io::Read;

    fn service(key: ServiceKey, protocol: Protocol, rs: &[(&str, Option<u16>)]) -> ServiceSpec {
        ServiceSpec {
            key,
            protocol,
            real_servers: rs
                .iter()
                .map(|(a, port)| RealServerSpec {
                    addr: a.parse().unwrap(),
                    port: *port,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn line_formats_as_keepalived() {
        assert_eq!(
            vrrp_line("INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", 150),
            "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 150\n"
        );
        let vs = service(
            ServiceKey::Addr {
                addr: "192.0.2.100".parse().unwrap(),
                port: Some(80),
            },
            Protocol::Tcp,
            &[("198.51.100.1", Some(8080)), ("198.51.100.2", None)],
        );
        assert_eq!(vs_line(&vs, false), "VS [192.0.2.100]:tcp:80 DOWN\n");
        assert_eq!(
            rs_line(&vs, &vs.real_servers[0], true),
            "RS [198.51.100.1]:tcp:8080 [192.0.2.100]:tcp:80 UP\n"
        );
        assert_eq!(
            rs_line(&vs, &vs.real_servers[1], false),
            "RS [198.51.100.2]:tcp:80 [192.0.2.100]:tcp:80 DOWN\n",
            "no port: the virtual server's"
        );
        let v6 = service(
            ServiceKey::Addr {
                addr: "2001:db8::100".parse().unwrap(),
                port: Some(53),
            },
            Protocol::Udp,
            &[("2001:db8::1", None)],
        );
        assert_eq!(
            rs_line(&v6, &v6.real_servers[0], true),
            "RS [2001:db8::1]:udp:53 [2001:db8::100]:udp:53 UP\n"
        );
        let fwm = service(
            ServiceKey::Fwmark {
                mark: 7,
                family: IpFamily::Inet,
            },
            Protocol::Tcp,
            &[("198.51.100.1", None)],
        );
        assert_eq!(vs_line(&fwm, true), "VS FWM 7 UP\n");
        assert_eq!(
            rs_line(&fwm, &fwm.real_servers[0], true),
            "RS [198.51.100.1]:none:0 FWM 7 UP\n"
        );
        let grp = service(
            ServiceKey::Group("web".into()),
            Protocol::Sctp,
            &[("198.51.100.1", Some(80))],
        );
        assert_eq!(vs_line(&grp, true), "VS [web]:0 UP\n");
        assert_eq!(
            rs_line(&grp, &grp.real_servers[0], false),
            "RS [198.51.100.1]:sctp:80 [web]:0 DOWN\n"
        );
    }

    #[test]
    fn created_fifos_are_removed_existing_ones_kept() {
        let dir = std::env::temp_dir().join(format!("vrrpd-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fifo");
        let fifo = Fifo::open(&path, None).unwrap();
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        fifo.write_line("a\n");
        fifo.write_line("b\n");
        let mut buf = String::new();
        reader.read_to_string(&mut buf).ok(); // EAGAIN once drained
        assert_eq!(buf, "a\nb\n");
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            // The umask this test process runs with, read without changing it.
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let umask = status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|m| u32::from_str_radix(m.trim(), 8).ok())
                .unwrap();
            assert_eq!(mode & 0o777, 0o644 & !umask);
        }
        // Reopened while it exists: not ours to remove.
        let again = Fifo::open(&path, None).unwrap();
        again.unlink();
        assert!(path.exists());
        fifo.unlink();
        assert!(!path.exists());
        // A regular file is refused and left alone.
        let plain = dir.join("plain");
        std::fs::write(&plain, "").unwrap();
        assert!(matches!(
            Fifo::open(&plain, None),
            Err(FifoError::NotFifo(_))
        ));
        assert!(plain.exists());
        std::fs::remove_dir_all(&dir).ok();
    }

    /// docs/SUPERVISION.md's row for the FIFOs: a writer that panics holding a FIFO (the lock
    /// is poisoned) leaves it usable for every later line.
    #[test]
    fn a_writer_panicking_with_the_fifo_leaves_it_usable() {
        let dir = std::env::temp_dir().join(format!("vrrpd-fifo-p-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fifo");
        let fifo = std::sync::Arc::new(Fifo::open(&path, None).unwrap());
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let held = fifo.clone();
        let r = std::thread::spawn(move || {
            let _f = held.file.lock().unwrap();
            panic!("a writer fails holding the FIFO");
        })
        .join();
        assert!(r.is_err());
        assert!(fifo.file.is_poisoned());
        fifo.write_line("INSTANCE \"VI_1\" MASTER 150\n");
        let mut buf = String::new();
        reader.read_to_string(&mut buf).ok(); // EAGAIN once drained
        assert_eq!(buf, "INSTANCE \"VI_1\" MASTER 150\n");
        fifo.unlink();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_created_fifo_goes_to_its_owner() {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root (chown)");
            return;
        }
        let Some(nobody) = crate::track::script::resolve_user("nobody", None) else {
            println!("skipped: no user nobody");
            return;
        };
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("vrrpd-fifo-own-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fifo");
        let fifo = Fifo::open(&path, Some(nobody)).unwrap();
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!((m.uid(), m.gid()), (nobody.uid, nobody.gid));
        fifo.unlink();
        std::fs::remove_dir_all(&dir).ok();
    }
}
