//! Fault points: named places in the daemon where a test can make a component panic or stall,
//! to check that the failure is handled as docs/SUPERVISION.md promises; and
//! [`panic_message`], which the supervisors catching such failures share.
//!
//! Without the `enabled` feature [`point`] is an empty inline function: release builds carry
//! no hook. With it, a test arms a point by writing a file named after it into the directory
//! `$VRRPD_FAULTS` names: `panic` makes the next pass through the point panic, `stall MS`
//! blocks the thread there for MS milliseconds. The file is removed when the point fires, so
//! each arming fires once. Points look at most every [`CHECK_EVERY`], so hot loops pay little.

use std::time::Duration;

/// How often a point looks for its file (per thread).
pub const CHECK_EVERY: Duration = Duration::from_millis(10);

/// The environment variable naming the directory of armed points.
pub const ENV: &str = "VRRPD_FAULTS";

/// What an armed point does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Panic,
    Stall(Duration),
}

impl Fault {
    /// The contents of an arming file.
    pub fn parse(text: &str) -> Option<Self> {
        let mut w = text.split_whitespace();
        match (w.next()?, w.next()) {
            ("panic", None) => Some(Fault::Panic),
            ("stall", Some(ms)) => ms
                .parse()
                .ok()
                .map(|ms| Fault::Stall(Duration::from_millis(ms))),
            _ => None,
        }
    }
}

/// A caught panic's message (its payload, when it is text): what every supervisor that
/// catches one logs and counts. Always compiled: the supervisors are.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Whether fault points are compiled in.
pub const fn enabled() -> bool {
    cfg!(feature = "enabled")
}

/// A fault point named `name`: does nothing unless armed (and compiled in).
#[inline(always)]
pub fn point(name: &'static str) {
    #[cfg(feature = "enabled")]
    armed::fire(name);
    #[cfg(not(feature = "enabled"))]
    let _ = name;
}

#[cfg(feature = "enabled")]
mod armed {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::OnceLock;
    use std::time::Instant;

    use super::{Fault, CHECK_EVERY, ENV};

    fn dir() -> Option<&'static PathBuf> {
        static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
        DIR.get_or_init(|| std::env::var_os(ENV).map(PathBuf::from))
            .as_ref()
    }

    thread_local! {
        static LAST: RefCell<HashMap<&'static str, Instant>> = RefCell::new(HashMap::new());
    }

    pub(crate) fn fire(name: &'static str) {
        let Some(dir) = dir() else { return };
        let now = Instant::now();
        let due = LAST.with(|l| {
            let mut l = l.borrow_mut();
            match l.get(name) {
                Some(t) if now.duration_since(*t) < CHECK_EVERY => false,
                _ => {
                    l.insert(name, now);
                    true
                }
            }
        });
        if !due {
            return;
        }
        let path = dir.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        // Consumed first: whatever the fault does next, it fires once.
        if std::fs::remove_file(&path).is_err() {
            return;
        }
        match Fault::parse(&text) {
            Some(Fault::Panic) => panic!("injected fault: panic at {name}"),
            Some(Fault::Stall(d)) => {
                eprintln!("injected fault: {name} stalls for {d:?}");
                std::thread::sleep(d);
            }
            None => eprintln!("injected fault: {name}: cannot read {text:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arming_files_parse() {
        assert_eq!(Fault::parse("panic\n"), Some(Fault::Panic));
        assert_eq!(
            Fault::parse("stall 1500"),
            Some(Fault::Stall(Duration::from_millis(1500)))
        );
        assert_eq!(Fault::parse("stall"), None);
        assert_eq!(Fault::parse("panic now"), None);
        assert_eq!(Fault::parse(""), None);
    }

    #[cfg(feature = "enabled")]
    #[test]
    fn an_armed_point_fires_once() {
        let dir = std::env::temp_dir().join(format!("fault-inject-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::env::set_var(ENV, &dir);
        point("unit-test");
        std::fs::write(dir.join("unit-test"), "panic").unwrap();
        std::thread::sleep(CHECK_EVERY);
        let r = std::panic::catch_unwind(|| point("unit-test"));
        assert!(r.is_err(), "armed point did not panic");
        std::thread::sleep(CHECK_EVERY);
        point("unit-test");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[cfg(not(feature = "enabled"))]
    #[test]
    fn without_the_feature_nothing_fires() {
        assert!(!enabled());
        point("anything");
    }
}
