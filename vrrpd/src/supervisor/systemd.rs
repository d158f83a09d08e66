//! The process's contract with systemd: readiness and reload states (sd_notify(3)) and the
//! watchdog interval (sd_watchdog_enabled(3)). A supervised child speaks through its parent.

/// systemd's readiness protocol (sd_notify(3)) for a `Type=notify` unit, as keepalived's:
/// `READY=1` once the configuration runs, `RELOADING=1` then `READY=1` around a reload,
/// `STOPPING=1` when releasing. Does nothing outside systemd (no `$NOTIFY_SOCKET`).
/// In a supervised child, the states go to the parent, which relays them: systemd takes them
/// from the main process only ([`super`]).
#[derive(Debug, Default)]
pub struct SystemdNotify {
    addr: Option<std::os::unix::net::SocketAddr>,
    relay: bool,
}

impl SystemdNotify {
    /// Takes `$NOTIFY_SOCKET` out of the environment, so the scripts we run cannot speak to
    /// systemd in our name. Call it before any other thread starts.
    pub fn from_env() -> Self {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Self::default();
        };
        std::env::remove_var("NOTIFY_SOCKET");
        Self::to(&path)
    }

    /// Notifies the socket `path` names (`@name`: an abstract socket).
    pub fn to(path: &std::ffi::OsStr) -> Self {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::ffi::OsStrExt;
        let addr = match path.as_bytes().split_first() {
            Some((b'@', name)) => std::os::unix::net::SocketAddr::from_abstract_name(name),
            _ => std::os::unix::net::SocketAddr::from_pathname(path),
        };
        match addr {
            Ok(a) => Self {
                addr: Some(a),
                relay: false,
            },
            Err(e) => {
                tracing::warn!(error = %e, "NOTIFY_SOCKET {path:?} unusable; not notifying systemd");
                Self::default()
            }
        }
    }

    /// A supervised child's: through its parent.
    pub fn via_supervisor() -> Self {
        Self {
            addr: None,
            relay: true,
        }
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines); a failure is logged, never fatal.
    pub fn send(&self, state: &str) {
        if self.relay {
            super::link::notify(state);
            return;
        }
        let Some(addr) = &self.addr else { return };
        let sent = std::os::unix::net::UnixDatagram::unbound()
            .and_then(|s| s.send_to_addr(state.as_bytes(), addr));
        if let Err(e) = sent {
            tracing::warn!(error = %e, "notifying systemd failed");
        }
    }
}

/// systemd's watchdog interval for this process (sd_watchdog_enabled(3)): `WATCHDOG_USEC`,
/// unless `WATCHDOG_PID` names another process. Both are taken out of the environment so the
/// scripts we run do not see them. Call it before any other thread starts.
pub fn watchdog_from_env() -> Option<std::time::Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    std::env::remove_var("WATCHDOG_USEC");
    std::env::remove_var("WATCHDOG_PID");
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    Some(std::time::Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_notify_reaches_path_and_abstract_sockets() {
        use std::os::linux::net::SocketAddrExt;
        let dir = std::env::temp_dir().join(format!("vrrpd-sdn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        SystemdNotify::to(path.as_os_str()).send("READY=1");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("vrrpd-sdn-{}", std::process::id());
        let abs = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = std::os::unix::net::UnixDatagram::bind_addr(&abs).unwrap();
        SystemdNotify::to(std::ffi::OsStr::new(&format!("@{name}"))).send("STOPPING=1");
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        // Outside systemd: nothing to do, nothing fails.
        SystemdNotify::default().send("READY=1");
        std::fs::remove_dir_all(&dir).ok();
    }
}
