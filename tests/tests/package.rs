//! The Debian package as a user gets it: installed with `dpkg -i`, its programs, man pages and
//! completions used from the installed paths, the daemon started in lab namespaces from the
//! installed unit's command line and sandbox and failing over, then `dpkg -r` and `dpkg -P`
//! leaving nothing behind (keepalived's genhash given back).
//!
//! Runs when `VRRPD_DEB` names the package (scripts/test.sh builds it with
//! scripts/package.sh); it installs into the machine itself, so it refuses to run where a vrrpd
//! package is already installed.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use lab::unit::Unit;
use lab::wait::wait_until;
use lab::{require_root, Lab};

const UNIT: &str = "/lib/systemd/system/vrrpd.service";
const EXAMPLES: &str = "/usr/share/doc/vrrpd/examples";
const VIP: &str = "192.0.2.100";

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// dpkg, waiting (bounded) while another package manager holds its lock.
fn dpkg(args: &[&str]) -> Output {
    for _ in 0..120 {
        let o = run("dpkg", args);
        if o.status.success() || !text(&o).contains("lock") {
            return o;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("dpkg {args:?}: the dpkg lock stayed taken for 60 s");
}

fn status() -> String {
    text(&run("dpkg-query", &["-W", "-f=${Status}", "vrrpd"]))
}

/// What other packages' files the package touches look like (keepalived's genhash).
#[derive(Debug, PartialEq, Eq)]
struct Shared {
    diversions: String,
    genhash: Option<PathBuf>,
    genhash_man: bool,
}

impl Shared {
    fn now() -> Self {
        Self {
            diversions: text(&run("dpkg-divert", &["--list", "*genhash*"])),
            genhash: std::fs::read_link("/usr/bin/genhash").ok(),
            genhash_man: Path::new("/usr/share/man/man1/genhash.1.gz").exists(),
        }
    }
}

/// Purges the package if a failed assertion leaves it installed.
struct PurgeOnDrop;
impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        if !status().contains("not-installed") && !status().is_empty() {
            let _ = dpkg(&["-P", "vrrpd"]);
        }
    }
}

/// Paths under the places a package writes that name vrrpd.
fn traces() -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    for dir in [
        "/etc",
        "/lib/systemd",
        "/usr/lib/systemd",
        "/var/lib/systemd",
        "/usr/sbin",
        "/usr/bin",
        "/usr/share/man",
        "/usr/share/doc",
        "/usr/share/bash-completion",
        "/usr/share/zsh",
        "/usr/share/fish",
        "/var/lib/dpkg/info",
    ] {
        walk(Path::new(dir), &mut found);
    }
    found
}

fn walk(dir: &Path, found: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_name().to_string_lossy().contains("vrrpd") {
            found.insert(path.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&path, found);
        }
    }
}

#[test]
fn package_installs_runs_and_purges() {
    require_root!("dpkg and network namespaces");
    let Some(deb) = std::env::var_os("VRRPD_DEB") else {
        eprintln!(
            "skipped: VRRPD_DEB is not set (scripts/test.sh builds the package with \
             scripts/package.sh and sets it)"
        );
        return;
    };
    let deb = deb.to_string_lossy().into_owned();
    assert!(Path::new(&deb).is_file(), "VRRPD_DEB={deb}: no such file");
    assert!(
        !status().contains("installed") || status().contains("not-installed"),
        "a vrrpd package is installed already ({}): not touching it",
        status()
    );
    let before = Shared::now();
    let traces_before = traces();
    // The package's files that are not there yet (keepalived's genhash is, for one).
    let files: Vec<PathBuf> = text(&run("dpkg-deb", &["-c", &deb]))
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| PathBuf::from(p.trim_start_matches('.')))
        .filter(|p| p.symlink_metadata().is_err())
        .collect();
    assert!(files.iter().any(|f| f == Path::new("/usr/sbin/vrrpd")));
    let _purge = PurgeOnDrop;

    let o = dpkg(&["-i", &deb]);
    assert!(o.status.success(), "dpkg -i: {}", text(&o));

    installed_programs(&before);
    installed_docs();
    installed_unit_fails_over();

    let o = dpkg(&["-r", "vrrpd"]);
    assert!(o.status.success(), "dpkg -r: {}", text(&o));
    assert!(!Path::new("/usr/sbin/vrrpd").exists());
    assert!(
        Path::new("/etc/default/vrrpd").exists(),
        "remove keeps the conffile"
    );
    assert!(status().contains("config-files"), "{}", status());
    assert_eq!(
        Shared::now(),
        before,
        "remove gives keepalived's genhash back"
    );

    let o = dpkg(&["-P", "vrrpd"]);
    assert!(o.status.success(), "dpkg -P: {}", text(&o));
    assert!(!status().contains("config-files"), "{}", status());
    for f in &files {
        assert!(
            f.symlink_metadata().is_err(),
            "{} left after purge",
            f.display()
        );
    }
    let left: Vec<_> = traces().difference(&traces_before).cloned().collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    assert_eq!(Shared::now(), before);
}

/// The programs from their installed paths: the daemon's version, genhash as a link; no
/// fault points (vrrpd's `fault-injection` feature is for the tests' builds only).
fn installed_programs(before: &Shared) {
    let o = run("/usr/sbin/vrrpd", &["--version"]);
    assert!(o.status.success());
    // What only an armed fault point says: present in the tests' build, absent from the package.
    let marker = b"injected fault: panic at";
    let has_marker = |p: &Path| {
        std::fs::read(p)
            .unwrap()
            .windows(marker.len())
            .any(|w| w == marker)
    };
    if let Ok(test_build) = lab::Daemon::Vrrpd.binary() {
        assert!(has_marker(&test_build), "{}", test_build.display());
    }
    assert!(
        !has_marker(Path::new("/usr/sbin/vrrpd")),
        "the package's vrrpd has fault points"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text(&o).contains(&format!("vrrpd v{version}")),
        "{}",
        text(&o)
    );
    let pkg = text(&run("dpkg-query", &["-W", "-f=${Version}", "vrrpd"]));
    assert!(
        pkg.starts_with(&format!("{version}-")),
        "debian/changelog says {pkg}, the workspace {version}"
    );
    // keepalived's genhash is kept aside while vrrpd's answers.
    let o = run("/usr/bin/genhash", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("Usage: /usr/bin/genhash COMMAND [OPTIONS]"),
        "{}",
        text(&o)
    );
    if before.genhash.is_some() {
        assert!(Path::new("/usr/bin/genhash.keepalived").exists());
        assert!(Path::new("/usr/share/man/man1/genhash.keepalived.1.gz").exists());
    }
}

/// man pages and completions where man and bash find them.
fn installed_docs() {
    let man = |args: &[&str]| {
        let o = Command::new("man")
            .args(args)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        assert!(o.status.success(), "man {args:?}: {}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(stderr.is_empty(), "man {args:?} warns: {stderr}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let page = man(&["--warnings", "vrrpd"]);
    assert!(page.contains("EXIT STATUS") && page.contains("--use-file"));
    let page = man(&["--warnings", "5", "vrrpd.conf"]);
    assert!(page.contains("KEYWORD STATUS") && page.contains("vrrp_instance"));
    let page = man(&["--warnings", "1", "genhash"]);
    assert!(page.contains("vrrpd"), "genhash(1) is vrrpd's");

    // bash loads the completion on demand, as for an interactive shell (the loader returns
    // 124, "try again", once it has loaded one).
    let o = run(
        "bash",
        &[
            "-c",
            "source /usr/share/bash-completion/bash_completion && \
             { _completion_loader vrrpd; test $? = 124; } && \
             f=$(complete -p vrrpd | sed -E 's/.*-F ([^ ]+).*/\\1/') && \
             COMP_WORDS=(vrrpd --use-fi) COMP_CWORD=1 COMP_LINE='vrrpd --use-fi' COMP_POINT=14 && \
             $f vrrpd --use-fi vrrpd && echo \"${COMPREPLY[@]}\"",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("--use-file"),
        "{}",
        text(&o)
    );
}

/// `vrrpd -t` on the installed examples and a failover of the installed daemon, both in lab
/// namespaces (their interface is eth0, as the examples say).
fn installed_unit_fails_over() {
    let lab = Lab::builder().build().unwrap();
    let (a, b, client) = (lab.host("a"), lab.host("b"), lab.host("client"));
    for example in ["keepalived.conf", "keepalived-a.conf", "keepalived-b.conf"] {
        let file = format!("{EXAMPLES}/{example}");
        let o = a.exec("/usr/sbin/vrrpd", &["-t", "-f", &file]).unwrap();
        assert!(o.status.success(), "vrrpd -t {file}: {}", text(&o));
    }
    let unit = Unit::read(Path::new(UNIT)).unwrap();
    let argv = unit.exec_start().unwrap();
    assert_eq!(argv[0], "/usr/sbin/vrrpd");
    let conf = |n: &str| PathBuf::from(format!("{EXAMPLES}/keepalived-{n}.conf"));
    let mut da = unit.start_in(a, &conf("a"), None, &[]).unwrap();
    let _db = unit.start_in(b, &conf("b"), None, &[]).unwrap();
    let vip: IpAddr = VIP.parse().unwrap();
    let holds = |h: &lab::Host| {
        wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            h.has_addr(vip)
        })
    };
    assert!(holds(a), "a never became Master:\n{}", da.log_text());
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || client.ping(vip)
    ));
    da.child.kill_hard();
    let _ = a.link_down();
    assert!(holds(b), "b never took over");
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || client.ping(vip)
    ));
}
