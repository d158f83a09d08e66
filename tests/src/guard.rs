//! Process-wide registry of what the lab created (namespaces, process groups), so an
//! interrupt can still clean up: Drop does not run when SIGINT kills the process.

use std::process::{Command, Stdio};
use std::sync::Mutex;

use nix::sys::signal::{killpg, SigSet, Signal};
use nix::unistd::Pid;

static NAMESPACES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static DIRS: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());

pub(crate) fn register_dir(dir: &std::path::Path) {
    DIRS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(dir.to_path_buf());
}

pub(crate) fn unregister_dir(dir: &std::path::Path) {
    DIRS.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|d| d != dir);
}

pub(crate) fn register_netns(name: &str) {
    NAMESPACES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(name.to_string());
}

pub(crate) fn unregister_netns(name: &str) {
    NAMESPACES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|n| n != name);
}

pub(crate) fn register_group(pgid: i32) {
    GROUPS.lock().unwrap_or_else(|e| e.into_inner()).push(pgid);
}

pub(crate) fn unregister_group(pgid: i32) {
    GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|g| *g != pgid);
}

/// Kill every registered process group and delete every registered namespace.
pub fn cleanup_all() {
    let groups: Vec<i32> = std::mem::take(&mut *GROUPS.lock().unwrap_or_else(|e| e.into_inner()));
    for g in groups {
        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
    }
    let names: Vec<String> =
        std::mem::take(&mut *NAMESPACES.lock().unwrap_or_else(|e| e.into_inner()));
    for n in names {
        let _ = Command::new("ip")
            .args(["netns", "del", &n])
            .stderr(Stdio::null())
            .status();
    }
    for d in std::mem::take(&mut *DIRS.lock().unwrap_or_else(|e| e.into_inner())) {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Block SIGINT/SIGTERM in this (main) thread and every thread spawned later, and handle them
/// on a dedicated thread: clean up everything registered, then exit 130.
/// Call first thing in `main`, before other threads exist.
pub fn install_signal_guard() -> nix::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block()?;
    std::thread::Builder::new()
        .name("lab-signal-guard".into())
        .spawn(move || {
            if let Ok(sig) = set.wait() {
                eprintln!("\ninterrupted ({sig}): cleaning up the lab");
                cleanup_all();
                std::process::exit(130);
            }
        })
        .map_err(|_| nix::Error::EAGAIN)?;
    Ok(())
}
