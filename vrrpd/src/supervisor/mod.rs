//! The supervisor: vrrpd's parent process, which runs the daemon in a child and hands over for
//! it when it dies.
//!
//! keepalived's parent respawns a dead VRRP child, but whatever the child held stays: the
//! addresses remain on the host and the peer waits a whole Master_Down_Interval before it takes
//! over, so both hosts answer for the VIP meanwhile. Here the child tells its parent, before it
//! adds an address as Master, the exact bytes that give the instance away — priority-0 adverts
//! and rtnetlink removals ([`wire`]) — and the parent, which holds the sockets to send them
//! ([`release`]), replays them the moment the child is gone, however it died (SIGKILL, the OOM
//! killer, an abort, a panic). The peer then takes over after its Skew_Time, as after a
//! graceful stop, and the dead node no longer holds the VIP. The child is then started again,
//! as Backup, counted, with keepalived's backoff (at once after a minute of good running, else
//! 1, 2, 4 … 60 s).
//!
//! The parent is the process keepalived users expect: `-n` keeps it in the foreground, `-p`
//! names it (the child writes `-r`), systemd sees it as MAINPID (it relays the child's sd_notify
//! states, watchdog pings included, since systemd only takes them from the main process), and
//! it forwards SIGHUP, SIGUSR1, SIGUSR2, the JSON and STATS_CLEAR signals to the child;
//! SIGTERM / SIGINT stop the child gracefully (it releases everything) and then the parent. It is single-threaded,
//! allocates nothing once started but to store recipes, and does nothing clever: it must never
//! be the thing that fails.

pub mod link;
mod release;
pub mod systemd;
pub mod wire;

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{recv, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use tracing::{error, info, warn};

use systemd::SystemdNotify;
use wire::Message;

pub use release::Fired;

/// keepalived's permanent errors: a child that exits with one is not started again.
const EXIT_FATAL: i32 = crate::process::exit::FATAL as i32;
const EXIT_CONFIG: i32 = crate::process::exit::CONFIG as i32;

/// How long a child may take to release and exit after SIGTERM before the parent releases for
/// it and kills it (its own bound on releasing is 3 s; a stalled checker side adds up to 3 s).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A child that ran this long is started again at once.
const GOOD_RUN: Duration = Duration::from_secs(60);

/// Longest wait before a restart.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);

/// How the parent runs.
pub struct Options {
    /// `-R`: a dead child is released for, not started again; the parent exits.
    pub dont_respawn: bool,
    /// systemd's notification socket (taken from the environment at start).
    pub systemd: SystemdNotify,
    /// systemd's watchdog interval (`WATCHDOG_USEC`, when meant for us).
    pub watchdog: Option<Duration>,
}

/// What a child starts with.
#[derive(Debug, Clone, Default)]
pub struct ChildStart {
    /// How many children died before this one (0: the first).
    pub restarts: u32,
    /// How the previous child ended.
    pub last_exit: Option<String>,
    /// Ping systemd's watchdog this often (half of `WatchdogSec`).
    pub watchdog: Option<Duration>,
}

/// Runs `child` in a child process, again each time it dies, until told to stop; returns the
/// parent's exit code. The first child gets `first` (what `main` already loaded), later ones
/// `None`. Must be called before any thread exists (it forks).
pub fn run<T>(opts: Options, first: T, mut child: impl FnMut(ChildStart, Option<T>) -> u8) -> u8 {
    let signals = match Signals::block() {
        Ok(s) => s,
        Err(e) => {
            error!("supervisor: cannot watch signals ({e}); running without one");
            return child(ChildStart::default(), Some(first));
        }
    };
    let mut parent = Parent {
        releaser: release::Releaser::open(),
        signals,
        recipes: BTreeMap::new(),
        buf: Vec::new(),
        opts,
        restarts: 0,
        next_delay: Duration::ZERO,
    };
    let mut first = Some(first);
    let mut last_exit = None;
    loop {
        let start = ChildStart {
            restarts: parent.restarts,
            last_exit: last_exit.take(),
            watchdog: parent.opts.watchdog.map(|w| w / 2),
        };
        let Some(mut running) = parent.spawn(|| child(start, first.take())) else {
            return EXIT_FATAL as u8;
        };
        // Ours to drop: the child has its own copy. The heap and the code the loading used go
        // too: the parent keeps only recipes and runs only its small loop from now on.
        first = None;
        sysio::release_free_memory();
        sysio::release_code_pages();
        let end = parent.watch(&mut running);
        let fired = parent.release();
        if fired.instances > 0 {
            warn!(
                "supervisor: VRRP child {} is gone; released {} instance(s) for it: {} priority-0 advert(s), {} removal(s){}",
                running.pid,
                fired.instances,
                fired.adverts,
                fired.removals,
                if fired.failed > 0 { format!(", {} failed", fired.failed) } else { String::new() }
            );
        }
        // Gone but not yet reaped (seen by its link closing): reap it now.
        let end = End {
            status: end.status.unwrap_or_else(|| parent.wait(&mut running)),
            stop: end.stop,
        };
        let status = describe(&end.status);
        let code = match end.status {
            // Stopped by the signal we forwarded before its handlers were in place: the stop
            // it was, and the release is done.
            WaitStatus::Signaled(_, Signal::SIGTERM | Signal::SIGINT, _) if end.stop => 0,
            ref s => exit_code(s),
        };
        if end.stop {
            info!("supervisor: VRRP child {} {status}; stopping", running.pid);
            return code;
        }
        if let WaitStatus::Exited(_, c @ (EXIT_FATAL | EXIT_CONFIG)) = end.status {
            error!(
                "VRRP child process({}) exited with permanent error {}. Terminating",
                running.pid,
                if c == EXIT_CONFIG { "CONFIG" } else { "FATAL" }
            );
            return c as u8;
        }
        if parent.opts.dont_respawn {
            error!(
                "VRRP child process({}) {status}: Exiting (--dont-respawn)",
                running.pid
            );
            return if code == 0 { 1 } else { code };
        }
        error!("VRRP child process({}) {status}: Respawning", running.pid);
        parent.restarts += 1;
        last_exit = Some(status);
        let delay = parent.restart_delay(running.started.elapsed());
        if !delay.is_zero() {
            info!(
                "Restart of VRRP process delayed {} seconds to limit respawn rate",
                delay.as_secs()
            );
            if parent.wait_restart(delay) {
                info!("supervisor: stopping");
                return 0;
            }
        }
    }
}

/// The parent's state.
struct Parent {
    releaser: release::Releaser,
    signals: Signals,
    /// Instance name → release recipe, for the instances the child holds as Master.
    recipes: BTreeMap<String, Vec<u8>>,
    /// The child's messages are read here; it grows to the largest one (recipes are small), so
    /// the parent does not keep a resident [`wire::MAX_MESSAGE`] buffer, nor hand it to every
    /// child it forks.
    buf: Vec<u8>,
    opts: Options,
    restarts: u32,
    next_delay: Duration,
}

/// A running child.
struct Running {
    pid: Pid,
    link: OwnedFd,
    started: Instant,
    /// The child pings systemd's watchdog itself (the parent stops doing it for it).
    pinging: bool,
}

/// How a child's run ended.
struct End<S = Option<WaitStatus>> {
    /// `None`: gone (its link closed) but not yet reaped.
    status: S,
    /// The parent was told to stop.
    stop: bool,
}

impl Parent {
    /// Forks a child that runs `body` and exits with its code.
    fn spawn(&mut self, body: impl FnOnce() -> u8) -> Option<Running> {
        let (ours, theirs) = match socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        ) {
            Ok(p) => p,
            Err(e) => {
                error!("supervisor: cannot make the child's link: {e}");
                return None;
            }
        };
        let parent_pid = nix::unistd::getpid();
        // SAFETY: the parent is single-threaded (it is made before any thread, and never
        // starts one), so the child may run any code: no lock is held by a thread that does not
        // exist in it.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                // What only the parent uses (no exec: descriptors must be closed by hand).
                drop(ours);
                for fd in self.releaser.fds().chain([self.signals.fd.as_raw_fd()]) {
                    // SAFETY: these descriptors belong to the parent's objects, which the
                    // child never uses or drops (it exits below without returning).
                    unsafe { libc::close(fd) };
                }
                // As keepalived's children: the parent gone, we stop gracefully (releasing).
                // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
                if nix::unistd::getppid() != parent_pid {
                    std::process::exit(0);
                }
                if let Err(e) = self.signals.unblock() {
                    warn!("cannot unblock signals in the child: {e}");
                }
                link::install(highest_fd(theirs));
                let code = body();
                std::process::exit(i32::from(code));
            }
            Ok(ForkResult::Parent { child }) => {
                drop(theirs);
                info!("Starting VRRP child process, pid={child}");
                Some(Running {
                    pid: child,
                    link: ours,
                    started: Instant::now(),
                    pinging: false,
                })
            }
            Err(e) => {
                error!("VRRP child process: fork error({e})");
                None
            }
        }
    }

    /// Serves a running child until it is gone: its messages, the signals to forward, the
    /// watchdog; stops it when told to.
    fn watch(&mut self, child: &mut Running) -> End {
        let mut stop_deadline: Option<Instant> = None;
        let mut next_ping = Instant::now();
        loop {
            let now = Instant::now();
            let mut deadline = stop_deadline;
            if let (Some(w), false) = (self.opts.watchdog, child.pinging) {
                if now >= next_ping {
                    self.opts.systemd.send("WATCHDOG=1");
                    next_ping = now + w / 2;
                }
                deadline = Some(deadline.map_or(next_ping, |d| d.min(next_ping)));
            }
            if stop_deadline.is_some_and(|d| now >= d) {
                warn!(
                    "supervisor: VRRP child {} did not stop within {STOP_GRACE:?}; releasing for it and killing it",
                    child.pid
                );
                return End {
                    status: Some(self.kill(child)),
                    stop: true,
                };
            }
            let timeout = deadline.map_or(PollTimeout::NONE, |d| {
                let ms = d.saturating_duration_since(now).as_millis() + 1;
                PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::NONE)
            });
            let (sig_ready, link_ready) = {
                let mut fds = [
                    PollFd::new(self.signals.fd.as_fd(), PollFlags::POLLIN),
                    PollFd::new(child.link.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        error!("supervisor: poll failed: {e}");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]))
            };
            if link_ready && self.read_link(child) {
                // Its last descriptor closed: no thread of it is left (they share the table),
                // though the kernel may still be tearing the rest down (closing a packet
                // socket waits for an RCU grace period) before SIGCHLD. Hand over now.
                return End {
                    status: None,
                    stop: stop_deadline.is_some(),
                };
            }
            if !sig_ready {
                continue;
            }
            while let Some(sig) = self.signals.next() {
                match sig {
                    libc::SIGCHLD => {
                        if let Some(status) = self.reap(child) {
                            return End {
                                status: Some(status),
                                stop: stop_deadline.is_some(),
                            };
                        }
                    }
                    libc::SIGTERM | libc::SIGINT => {
                        if stop_deadline.is_none() {
                            info!("supervisor: {}: stopping the VRRP child", signal_name(sig));
                            stop_deadline = Some(Instant::now() + STOP_GRACE);
                        }
                        forward(child.pid, sig);
                    }
                    libc::SIGABRT => {
                        // systemd's WatchdogSignal: the child stopped pinging from its VRRP
                        // thread. It is stuck: take over for it, and let systemd restart us.
                        error!(
                            "supervisor: SIGABRT (watchdog): the VRRP child {} is stuck; releasing for it and killing it",
                            child.pid
                        );
                        self.kill(child);
                        return End {
                            status: Some(WaitStatus::Exited(child.pid, 1)),
                            stop: true,
                        };
                    }
                    s => forward(child.pid, s),
                }
            }
        }
    }

    /// Reads every queued message of the child's link; true once it is closed (the child is
    /// gone).
    fn read_link(&mut self, child: &mut Running) -> bool {
        let fd = child.link.as_raw_fd();
        loop {
            // The next message's length first (it stays queued), then the message.
            let n = match recv(
                fd,
                &mut [],
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
            ) {
                Ok(0) => return true,
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return false,
                Err(_) => return true,
                Ok(n) => n,
            };
            if n > wire::MAX_MESSAGE {
                let _ = recv(fd, &mut [], MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC);
                error!("supervisor: a {n}-byte message from the child is too large; ignored");
                continue;
            }
            if self.buf.len() < n {
                self.buf.resize(n, 0);
            }
            let n = match recv(fd, &mut self.buf[..n], MsgFlags::MSG_DONTWAIT) {
                Ok(0) => return true,
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return false,
                Err(_) => return true,
                Ok(n) => n,
            };
            match Message::decode(&self.buf[..n]) {
                Some(Message::Master { name, recipe }) => match self.recipes.get_mut(name) {
                    Some(r) => {
                        r.clear();
                        r.extend_from_slice(recipe);
                    }
                    None => {
                        self.recipes.insert(name.to_string(), recipe.to_vec());
                    }
                },
                Some(Message::Released { name }) => {
                    self.recipes.remove(name);
                }
                Some(Message::Notify(state)) => {
                    if state.lines().any(|l| l == "WATCHDOG=1") {
                        child.pinging = true;
                    }
                    self.opts.systemd.send(state);
                }
                None => warn!("supervisor: malformed message from the child ignored"),
            }
        }
    }

    /// The child's status once it has exited (its last messages read first).
    fn reap(&mut self, child: &mut Running) -> Option<WaitStatus> {
        match waitpid(child.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => None,
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                self.read_link(child);
                Some(s)
            }
            Ok(_) => None,
            Err(e) => {
                error!("supervisor: waiting for the VRRP child failed: {e}");
                self.read_link(child);
                Some(WaitStatus::Exited(child.pid, 1))
            }
        }
    }

    /// SIGKILLs the child and reaps it.
    fn kill(&mut self, child: &mut Running) -> WaitStatus {
        let _ = kill(child.pid, Signal::SIGKILL);
        self.wait(child)
    }

    /// Reaps the child, waiting as long as it takes (it is gone or going).
    fn wait(&mut self, child: &mut Running) -> WaitStatus {
        loop {
            match waitpid(child.pid, None) {
                Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                    self.read_link(child);
                    return s;
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => {
                    self.read_link(child);
                    return WaitStatus::Signaled(child.pid, Signal::SIGKILL, false);
                }
            }
        }
    }

    /// Replays the recipes of every instance the child held, and forgets them.
    fn release(&mut self) -> Fired {
        if self.recipes.is_empty() {
            return Fired::default();
        }
        let fired = self.releaser.fire(self.recipes.values().map(Vec::as_slice));
        self.recipes.clear();
        fired
    }

    fn restart_delay(&mut self, ran: Duration) -> Duration {
        restart_delay(&mut self.next_delay, ran)
    }

    /// Waits `delay` before a restart; true when told to stop meanwhile.
    fn wait_restart(&mut self, delay: Duration) -> bool {
        let end = Instant::now() + delay;
        loop {
            let now = Instant::now();
            if now >= end {
                return false;
            }
            if self.opts.watchdog.is_some() {
                // No child to ping for us: we are alive, and restarting it.
                self.opts.systemd.send("WATCHDOG=1");
            }
            let left = (end - now).min(self.opts.watchdog.map_or(Duration::MAX, |w| w / 2));
            let ms = left.as_millis().min(60_000) as i32 + 1;
            let mut fds = [PollFd::new(self.signals.fd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::NONE),
            );
            while let Some(sig) = self.signals.next() {
                match sig {
                    libc::SIGTERM | libc::SIGINT | libc::SIGABRT => return true,
                    libc::SIGCHLD => {}
                    s => info!(
                        "supervisor: {} ignored while the VRRP child restarts",
                        signal_name(s)
                    ),
                }
            }
        }
    }
}

/// Moves the child's end of the link to the highest descriptor it is likely to have, so that
/// the parent sees it close first when the child dies: a dying process's descriptors are
/// released last-numbered first, after its memory (and a packet socket's release waits for an
/// RCU grace period, 10 ms or more each), so a low-numbered link would close last.
fn highest_fd(fd: OwnedFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    let mut lim = libc::rlimit {
        rlim_cur: 1024,
        rlim_max: 1024,
    };
    // SAFETY: getrlimit fills the struct we own.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let soft = lim.rlim_cur;
    // Not the top of a huge limit: the descriptor table grows to hold it.
    let target = soft.clamp(64, 4096) as i32 - 1;
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor (or -1) that nothing else owns.
    let high = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, target) };
    if high < 0 {
        return fd;
    }
    // SAFETY: `high` is the new descriptor made above.
    unsafe { OwnedFd::from_raw_fd(high) }
}

/// keepalived's respawn rate limit (`calc_restart_delay`): a child that ran a minute is
/// started again at once; otherwise after `next` (0 the first time), which then doubles from
/// 1 s up to a minute.
fn restart_delay(next: &mut Duration, ran: Duration) -> Duration {
    if ran >= GOOD_RUN {
        *next = Duration::ZERO;
        return Duration::ZERO;
    }
    let delay = *next;
    *next = if delay.is_zero() {
        Duration::from_secs(1)
    } else {
        (delay * 2).min(MAX_RESTART_DELAY)
    };
    delay
}

fn forward(pid: Pid, sig: i32) {
    // SAFETY: kill(2) with a signal number; no memory is involved.
    if unsafe { libc::kill(pid.as_raw(), sig) } != 0 {
        warn!(
            "supervisor: cannot forward {} to the VRRP child: {}",
            signal_name(sig),
            std::io::Error::last_os_error()
        );
    }
}

/// How a child ended, in words.
fn describe(s: &WaitStatus) -> String {
    match s {
        WaitStatus::Exited(_, 0) => "exited".into(),
        WaitStatus::Exited(_, c) => format!("exited with status {c}"),
        WaitStatus::Signaled(_, sig, core) => format!(
            "was killed by {sig}{}",
            if *core { " (core dumped)" } else { "" }
        ),
        other => format!("ended ({other:?})"),
    }
}

/// The parent's exit code for a child's end.
fn exit_code(s: &WaitStatus) -> u8 {
    match s {
        WaitStatus::Exited(_, c) => u8::try_from(*c).unwrap_or(1),
        _ => 1,
    }
}

fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_string())
}

/// The signals the parent handles, blocked and read from a signalfd (no handler, no
/// async-signal-safety to get wrong).
struct Signals {
    fd: OwnedFd,
    set: libc::sigset_t,
}

impl Signals {
    /// The control signals keepalived's parent takes (the dump ones included), SIGCHLD, and
    /// SIGABRT (systemd's watchdog signal).
    fn set() -> Vec<i32> {
        let mut set = vec![
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGCHLD,
            libc::SIGABRT,
        ];
        set.extend(crate::process::dump_signals());
        set
    }

    fn block() -> std::io::Result<Self> {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before any use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t we own; the signal numbers are valid.
        unsafe {
            libc::sigemptyset(&mut set);
            for s in Self::set() {
                libc::sigaddset(&mut set, s);
            }
        }
        // SAFETY: `set` is initialised; blocking signals changes no memory of ours.
        if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: -1 asks for a new descriptor; `set` is initialised.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(Self { fd, set })
    }

    /// In a child: the signals get their default handling back (the daemon installs its own).
    fn unblock(&self) -> std::io::Result<()> {
        // SAFETY: `set` is initialised; unblocking signals changes no memory of ours.
        if unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &self.set, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// The next pending signal, if any.
    fn next(&self) -> Option<i32> {
        // SAFETY: signalfd_siginfo is plain data, filled by read(2) below.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: the buffer is `size` bytes of writable memory we own.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        (n == size as isize).then_some(info.ssi_signo as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respawns_are_rate_limited_as_keepalived() {
        let quick = Duration::from_secs(5);
        let mut next = Duration::ZERO;
        let delays: Vec<u64> = (0..9)
            .map(|_| restart_delay(&mut next, quick).as_secs())
            .collect();
        assert_eq!(delays, [0, 1, 2, 4, 8, 16, 32, 60, 60]);
        // A minute of good running: at once again, and the next quick one too.
        assert_eq!(restart_delay(&mut next, GOOD_RUN), Duration::ZERO);
        assert_eq!(restart_delay(&mut next, quick), Duration::ZERO);
        assert_eq!(restart_delay(&mut next, quick), Duration::from_secs(1));
    }

    #[test]
    fn exits_in_words() {
        let pid = Pid::from_raw(7);
        assert_eq!(
            describe(&WaitStatus::Exited(pid, 70)),
            "exited with status 70"
        );
        assert_eq!(
            describe(&WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            "was killed by SIGKILL"
        );
        assert_eq!(exit_code(&WaitStatus::Exited(pid, 4)), 4);
        assert_eq!(
            exit_code(&WaitStatus::Signaled(pid, Signal::SIGABRT, true)),
            1
        );
    }
}
