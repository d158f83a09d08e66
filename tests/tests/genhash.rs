//! `vrrpd -T` (genhash) against `keepalived -T` 2.2.7: both run in a client namespace against
//! nginx in a web namespace (HTTP, HTTPS with a generated certificate, a name-based virtual
//! host, a 404, a large file, IPv6) and against failures (refused, not TLS, silent server,
//! unreachable, usage errors). They must print the same digest, the same messages and exit
//! with the same status. Then a vrrpd HTTP_GET / SSL_GET checker given the digests vrrpd
//! printed finds the server up, and one given a wrong digest finds it down.

use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use lab::e2e;
use lab::lb::in_netns;
use lab::{require_root, Daemon, Host, Lab, LabChild};
use nix::sys::signal::Signal;

const WEB: &str = "192.0.2.20";
const WEB6: &str = "2001:db8::20";
const VHOST: &str = "www.example.com";
/// A port where the web host accepts connections but never answers.
const SILENT_PORT: u16 = 8081;

fn nginx_conf(d: &Path) -> String {
    let d = d.display();
    format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/nginx.err;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  \
           fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n  \
           default_type text/plain;\n  \
           server {{\n    listen 80 default_server;\n    listen [::]:80 default_server;\n    \
             listen 8080 default_server;\n    listen 443 ssl default_server;\n    \
             ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n    \
             root {d}/www;\n  }}\n  \
           server {{\n    listen 80;\n    listen 443 ssl;\n    server_name {VHOST};\n    \
             ssl_certificate {d}/vcert.pem;\n    ssl_certificate_key {d}/vkey.pem;\n    \
             root {d}/vhost;\n  }}\n}}\n"
    )
}

/// nginx on the web host with its pages and certificates.
fn start_web(web: &Host) -> LabChild {
    let d = &web.dir;
    for (dir, file, text) in [
        ("www", "index.html", "the default site\n".to_string()),
        ("vhost", "index.html", format!("the virtual host {VHOST}\n")),
        // Several reads' worth, so that the digest is fed in pieces.
        (
            "www",
            "big.txt",
            (0..20_000).map(|i| format!("line {i}\n")).collect(),
        ),
    ] {
        std::fs::create_dir_all(d.join(dir)).unwrap();
        std::fs::write(d.join(dir).join(file), text).unwrap();
    }
    for (prefix, names) in [("", vec![WEB.to_string()]), ("v", vec![VHOST.to_string()])] {
        let ck = rcgen::generate_simple_self_signed(names).unwrap();
        std::fs::write(d.join(format!("{prefix}cert.pem")), ck.cert.pem()).unwrap();
        std::fs::write(
            d.join(format!("{prefix}key.pem")),
            ck.key_pair.serialize_pem(),
        )
        .unwrap();
    }
    let conf = d.join("nginx.conf");
    std::fs::write(&conf, nginx_conf(d)).unwrap();
    let (conf, prefix) = (conf.display().to_string(), d.display().to_string());
    web.spawn(
        "nginx",
        &["-p", prefix.as_str(), "-c", conf.as_str()],
        Some(&d.join("nginx.log")),
    )
    .expect("nginx")
}

fn serving(client: &Host, port: u16) -> bool {
    e2e::serving(client, WEB, port)
}

fn md5_of(path: &Path) -> String {
    let out = std::process::Command::new("md5sum")
        .arg(path)
        .output()
        .expect("md5sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// What one genhash run printed, the program name in the usage made neutral.
#[derive(Debug, PartialEq)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn genhash(client: &Host, bin: &str, args: &[&str]) -> Run {
    let mut full = vec!["-T"];
    full.extend_from_slice(args);
    // Bounded even if something hangs: every case here ends within a few seconds.
    let mut cmd = vec!["20", bin];
    cmd.extend_from_slice(&full);
    let o: Output = client.exec("timeout", &cmd).expect("run genhash");
    let neutral = |b: &[u8]| String::from_utf8_lossy(b).replace(bin, "PROG");
    Run {
        code: o.status.code(),
        stdout: neutral(&o.stdout),
        stderr: neutral(&o.stderr),
    }
}

/// The verbose output from the body dump on (the head holds nginx's Date), the response
/// time made neutral.
fn from_body_on(verbose: &str) -> String {
    let start = verbose
        .find("-----------------------[        HTML Buffer        ]")
        .unwrap_or_else(|| panic!("no body dump in {verbose}"));
    let tail = &verbose[start..];
    match tail.rfind(" = ") {
        Some(i) if tail.ends_with(" usecs\n") => format!("{}= N usecs\n", &tail[..i + 1]),
        _ => panic!("no response time in {tail}"),
    }
}

#[test]
fn genhash_matches_keepalived_and_feeds_the_checker() {
    require_root!();
    if !e2e::available(&[Daemon::Vrrpd, Daemon::Keepalived]) {
        eprintln!("skipped: needs vrrpd and keepalived");
        return;
    }
    if std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("skipped: needs nginx");
        return;
    }
    let lab = Lab::builder()
        .host("web", &format!("{WEB}/24"), &format!("{WEB6}/64"))
        .host("client", "192.0.2.50/24", "2001:db8::50/64")
        .build()
        .unwrap();
    let (web, client) = (lab.host("web").clone(), lab.host("client").clone());
    let _nginx = start_web(&web);
    // Accepts (the kernel completes the handshake) and never answers.
    let _silent = in_netns(&web, || TcpListener::bind((WEB, SILENT_PORT)))
        .unwrap()
        .unwrap();
    assert!(
        lab::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            [80, 443, 8080].iter().all(|&p| serving(&client, p))
        }),
        "nginx did not start: {}",
        std::fs::read_to_string(web.dir.join("nginx.err")).unwrap_or_default()
    );
    let vrrpd = Daemon::Vrrpd.binary().unwrap().display().to_string();
    let keepalived = Daemon::Keepalived.binary().unwrap().display().to_string();
    let default_md5 = md5_of(&web.dir.join("www/index.html"));
    let vhost_md5 = md5_of(&web.dir.join("vhost/index.html"));
    let big_md5 = md5_of(&web.dir.join("www/big.txt"));

    let base = ["-s", WEB, "-p", "80", "-u", "/index.html"];
    let tls = ["-S", "-s", WEB, "-p", "443", "-u", "/index.html"];
    let with = |first: &[&'static str], more: &[&'static str]| -> Vec<&'static str> {
        first.iter().chain(more).copied().collect()
    };
    // (arguments, what vrrpd must print on stdout; None: whatever keepalived prints).
    let cases: Vec<(Vec<&str>, Option<String>)> = vec![
        (base.to_vec(), Some(format!("{default_md5}\n"))),
        (with(&base, &["-V", VHOST]), Some(format!("{vhost_md5}\n"))),
        (
            with(&base, &["--use-virtualhost", VHOST, "-P", "1.1"]),
            Some(format!("{vhost_md5}\n")),
        ),
        (
            with(&base, &["-P", "1.0c", "-t", "5"]),
            Some(format!("{default_md5}\n")),
        ),
        (tls.to_vec(), Some(format!("{default_md5}\n"))),
        (
            with(&tls, &["-I", "-V", VHOST]),
            Some(format!("{vhost_md5}\n")),
        ),
        (
            vec!["-s", WEB6, "-p", "80", "-u", "/index.html"],
            Some(format!("{default_md5}\n")),
        ),
        (
            vec!["-s", WEB, "-p", "80", "-u", "/big.txt", "-P", "1.1"],
            Some(format!("{big_md5}\n")),
        ),
        // nginx's own 404 page: a digest all the same, exit 0.
        (vec!["-s", WEB, "-p", "80", "-u", "/missing.html"], None),
        (
            vec!["-s", WEB, "-p", "81", "-u", "/index.html"],
            Some("Connection failed\n".into()),
        ),
        (
            vec!["-S", "-s", WEB, "-p", "80", "-u", "/index.html"],
            Some("SSL handshake/communication error connecting to\n".into()),
        ),
        (
            vec!["-s", WEB, "-p", "8081", "-u", "/index.html", "-t", "1"],
            Some("Timeout WEB read\n".into()),
        ),
        (
            vec!["-s", "198.51.100.1", "-p", "80", "-u", "/index.html"],
            Some("HTTP_CHECK - network unreachable\n".into()),
        ),
        (
            vec!["-s", VHOST, "-p", "80", "-u", "/"],
            Some(String::new()),
        ),
        (with(&base, &["extra"]), Some(String::new())),
        (vec!["-h"], Some(String::new())),
    ];
    let mut report = String::new();
    for (args, want) in &cases {
        let theirs = genhash(&client, &keepalived, args);
        let ours = genhash(&client, &vrrpd, args);
        report.push_str(&format!(
            "{args:?}: exit {:?}, stdout {:?}\n",
            ours.code, ours.stdout
        ));
        assert_eq!(ours, theirs, "vrrpd vs keepalived -T {args:?}");
        if let Some(w) = want {
            assert_eq!(&ours.stdout, w, "{args:?}");
        }
    }
    eprint!("{report}");
    let missing = genhash(
        &client,
        &vrrpd,
        &["-s", WEB, "-p", "80", "-u", "/missing.html"],
    );
    assert!(
        missing.stdout.len() == 33 && missing.stdout != format!("{default_md5}\n"),
        "{missing:?}"
    );

    // Verbose: same sections, same body and digest dumps.
    for args in [with(&base, &["-v"]), with(&tls, &["-v", "-I", "-V", VHOST])] {
        let theirs = genhash(&client, &keepalived, &args);
        let ours = genhash(&client, &vrrpd, &args);
        assert_eq!((ours.code, theirs.code), (Some(0), Some(0)));
        assert!(
            ours.stdout
                .starts_with("-----------------------[    HTTP Header Buffer    ]"),
            "{}",
            ours.stdout
        );
        assert!(ours.stdout.contains("[ HTTP Header Ascii Buffer ]"));
        assert_eq!(
            from_body_on(&ours.stdout),
            from_body_on(&theirs.stdout),
            "{args:?}"
        );
    }

    // The digests vrrpd printed, in a checker: up; a wrong one: down.
    let plain = genhash(&client, &vrrpd, &base).stdout.trim().to_string();
    let ssl = genhash(&client, &vrrpd, &tls).stdout.trim().to_string();
    let conf = format!(
        "global_defs {{\n    router_id genhash\n}}\n\
         virtual_server 192.0.2.100 80 {{\n    delay_loop 1\n    protocol TCP\n    \
           real_server {WEB} 80 {{\n        alpha\n        HTTP_GET {{\n            \
             url {{\n                path /index.html\n                digest {plain}\n            }}\n            \
             connect_timeout 2\n        }}\n    }}\n}}\n\
         virtual_server 192.0.2.100 8080 {{\n    delay_loop 1\n    protocol TCP\n    \
           real_server {WEB} 8080 {{\n        alpha\n        HTTP_GET {{\n            \
             url {{\n                path /index.html\n                digest {vhost_md5}\n            }}\n            \
             connect_timeout 2\n        }}\n    }}\n}}\n\
         virtual_server 192.0.2.100 443 {{\n    delay_loop 1\n    protocol TCP\n    \
           real_server {WEB} 443 {{\n        alpha\n        SSL_GET {{\n            \
             url {{\n                path /index.html\n                digest {ssl}\n            }}\n            \
             connect_timeout 2\n        }}\n    }}\n}}\n"
    );
    let daemon = Daemon::Vrrpd.start(&client, &conf).unwrap();
    // Signals only once it handles them (SIGUSR1 would otherwise end it).
    assert!(
        lab::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            daemon.log_text().contains("vrrpd started")
        }),
        "{}",
        daemon.log_text()
    );
    let checker = |dump: &str, id: &str| -> String {
        dump.split(" Checker = ")
            .find(|b| b.contains(id))
            .unwrap_or_default()
            .to_string()
    };
    let mut dump = String::new();
    let settled = lab::wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
        dump = e2e::signal_dump(&daemon, Signal::SIGUSR1).unwrap_or_default();
        checker(&dump, &format!("HTTP_GET {WEB}:80\n")).contains("State = UP")
            && checker(&dump, &format!("SSL_GET {WEB}:443\n")).contains("State = UP")
            && checker(&dump, &format!("HTTP_GET {WEB}:8080\n")).contains("Last verdict = failure")
    });
    assert!(settled, "{dump}\n{}", daemon.log_text());
    eprint!(
        "{}",
        dump.split("------< Health checkers >------\n")
            .nth(1)
            .unwrap_or(&dump)
    );
    let wrong = checker(&dump, &format!("HTTP_GET {WEB}:8080\n"));
    assert!(
        wrong.contains("State = DOWN") && wrong.contains("digest"),
        "{wrong}"
    );
}
