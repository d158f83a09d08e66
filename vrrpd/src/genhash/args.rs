//! genhash's options, parsed as keepalived 2.2.7 parses them: GNU getopt_long (options and
//! operands in any order, `--` ends options, bundled short options, attached values, unique
//! prefixes of long names) and keepalived's own value checks and messages.

use std::net::IpAddr;
use std::time::Duration;

use checks::spec::HttpProtocol;

/// What to fetch and how to report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-s`: the server's address (an IP literal, as keepalived requires).
    pub server: IpAddr,
    /// `-p`.
    pub port: u16,
    /// `-u`: the request path (the last one given).
    pub url: String,
    /// `-S`: TLS (SSL_GET).
    pub ssl: bool,
    /// `-I`: send SNI (the virtualhost).
    pub sni: bool,
    /// `-V`: Host header (and SNI name with `-I`).
    pub virtualhost: Option<String>,
    /// `-v`: dump the response head, body and digest.
    pub verbose: bool,
    /// `-m`: SO_MARK on the socket (0 is none).
    pub fwmark: Option<u32>,
    /// `-P`.
    pub protocol: HttpProtocol,
    /// `-t`: bound on each step (connect, handshake, reads); none by default, as keepalived.
    pub timeout: Option<Duration>,
}

/// The arguments do not make a genhash command: print the messages (one a line), then the
/// usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub Vec<String>);

/// keepalived's usage text (to stderr): `invocation` is the program name as invoked, followed by
/// ` --genhash` unless it was run as `genhash`.
pub fn usage(invocation: &str) -> String {
    format!(
        "Usage: {invocation} COMMAND [OPTIONS]\n\
         Commands:\n   \
         -s server-address -p port -u url\n   \
         -S -s server-address -p port -u url\n   \
         -h\n\n\
         Options:\n\
         Either long or short options are allowed.\n   \
         --use-ssl         -S       Use SSL connection to remote server.\n   \
         --use-sni         -I       Use SNI during SSL handshake (uses virtualhost setting; see -V).\n   \
         --server          -s       Use the specified remote server address.\n   \
         --port            -p       Use the specified remote server port.\n   \
         --url             -u       Use the specified remote server url.\n   \
         --use-virtualhost -V       Use the specified virtualhost in GET query.\n   \
         --verbose         -v       Use verbose mode output.\n   \
         --help            -h       Display this short inlined help screen.\n   \
         --fwmark          -m       Use the specified FW mark.\n   \
         --protocol        -P       Use the specified HTTP protocol - '1.0', 1.0c', '1.1'.\n                                \
         1.0c means 1.0 with 'Connection: close'\n   \
         --timeout         -t       Timeout in seconds\n"
    )
}

/// Long name, short letter, takes a value.
const OPTIONS: &[(&str, char, bool)] = &[
    ("help", 'h', false),
    ("verbose", 'v', false),
    ("use-ssl", 'S', false),
    ("use-sni", 'I', false),
    ("server", 's', true),
    ("use-virtualhost", 'V', true),
    ("port", 'p', true),
    ("url", 'u', true),
    ("fwmark", 'm', true),
    ("protocol", 'P', true),
    ("timeout", 't', true),
];

/// An exact long name, else a unique prefix of one (getopt_long).
fn long_option(name: &str) -> Option<(&'static str, char, bool)> {
    if let Some(o) = OPTIONS.iter().find(|o| o.0 == name) {
        return Some(*o);
    }
    let mut matches = OPTIONS.iter().filter(|o| o.0.starts_with(name));
    match (matches.next(), matches.next()) {
        (Some(o), None) if !name.is_empty() => Some(*o),
        _ => None,
    }
}

/// Options as they are being collected.
#[derive(Default)]
struct Partial {
    server: Option<IpAddr>,
    port: Option<u16>,
    url: Option<String>,
    ssl: bool,
    sni: bool,
    virtualhost: Option<String>,
    verbose: bool,
    fwmark: Option<u32>,
    protocol: HttpProtocol,
    timeout: Option<Duration>,
}

fn bad(msg: String) -> UsageError {
    UsageError(vec![msg])
}

impl Partial {
    fn apply(&mut self, opt: char, value: &str) -> Result<(), UsageError> {
        match opt {
            'v' => self.verbose = true,
            'S' => self.ssl = true,
            'I' => self.sni = true,
            's' => {
                let ip = value
                    .parse()
                    .map_err(|_| bad(format!("server should be an IP, not {value}")))?;
                self.server = Some(ip);
            }
            'V' => self.virtualhost = Some(value.to_string()),
            'p' => {
                let port = c_strtoul(value.trim_start_matches(is_c_space))
                    .filter(|&p| (1..=65535).contains(&p))
                    .ok_or_else(|| bad(format!("invalid port number '{value}'")))?;
                self.port = Some(port as u16);
            }
            'u' => self.url = Some(value.to_string()),
            'm' => {
                let start = value.trim_start_matches([' ', '\t']);
                // strtoul of an empty string is 0 with nothing left over: keepalived takes it.
                let mark = if start.is_empty() {
                    Some(0)
                } else if start.starts_with('-') {
                    None
                } else {
                    c_strtoul(start)
                };
                let mark = mark.ok_or_else(|| bad(format!("invalid fwmark '{value}'")))?;
                // keepalived stores the unsigned long in an unsigned int.
                self.fwmark = Some(mark as u32).filter(|&m| m != 0);
            }
            'P' => {
                self.protocol = match value {
                    "1.0" => HttpProtocol::Http10,
                    "1.0c" | "1.0C" => HttpProtocol::Http10C,
                    "1.1" => HttpProtocol::Http11,
                    _ => return Err(bad(format!("invalid HTTP protocol version '{value}'"))),
                }
            }
            't' => {
                let start = value.trim_start_matches([' ', '\t']);
                let secs = (!start.starts_with('-'))
                    .then(|| c_strtoul(start))
                    .flatten()
                    .ok_or_else(|| bad(format!("invalid timeout '{value}'")))?;
                self.timeout = Some(Duration::from_secs(secs));
            }
            // -h is handled by the caller.
            _ => return Err(UsageError(Vec::new())),
        }
        Ok(())
    }
}

/// C's isspace.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// C's strtoul over the whole string (leading space, optional `+`, decimal digits, nothing
/// after; `-` is refused rather than wrapped). Saturates as strtoul does.
fn c_strtoul(s: &str) -> Option<u64> {
    let s = s.trim_start_matches(is_c_space);
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Parse the arguments after `-T`. As keepalived: an unknown option or `-h` is reported and
/// parsing goes on (the usage follows); a bad value stops at once; operands are refused, then
/// `-s`, `-p` and `-u` are required.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Options, UsageError> {
    let mut p = Partial::default();
    let mut operands: Vec<&str> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut help = false;
    let mut it = args.iter().map(AsRef::as_ref);
    while let Some(arg) = it.next() {
        if arg == "--" {
            operands.extend(it.by_ref());
            break;
        }
        // (letter, value) of each option in this word.
        let mut found: Vec<(char, &str)> = Vec::new();
        if let Some(long) = arg.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            match (long_option(name), attached) {
                (None, _) | (Some((_, _, false)), Some(_)) => {
                    unknown.push(format!("Unknown option {arg}"));
                }
                (Some((_, letter, false)), None) => found.push((letter, "")),
                (Some((_, letter, true)), Some(v)) => found.push((letter, v)),
                (Some((name, letter, true)), None) => {
                    let v = it
                        .next()
                        .ok_or_else(|| missing(&mut unknown, format!("--{name}")))?;
                    found.push((letter, v));
                }
            }
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (at, letter) in shorts.char_indices() {
                let Some(&(_, _, takes_value)) = OPTIONS.iter().find(|o| o.1 == letter) else {
                    unknown.push(format!("Unknown option -{letter}"));
                    continue;
                };
                if !takes_value {
                    found.push((letter, ""));
                    continue;
                }
                // The rest of the word is the value, else the next argument.
                let rest = &shorts[at + letter.len_utf8()..];
                let value = if rest.is_empty() {
                    it.next()
                        .ok_or_else(|| missing(&mut unknown, format!("-{letter}")))?
                } else {
                    rest
                };
                found.push((letter, value));
                break;
            }
        } else {
            operands.push(arg);
        }
        for (letter, value) in found {
            if letter == 'h' {
                help = true;
                continue;
            }
            p.apply(letter, value).map_err(|UsageError(mut m)| {
                unknown.append(&mut m);
                UsageError(std::mem::take(&mut unknown))
            })?;
        }
    }
    if help || !unknown.is_empty() {
        return Err(UsageError(unknown));
    }
    if !operands.is_empty() {
        return Err(bad(format!(
            "Unexpected argument(s): {}",
            operands.join(" ")
        )));
    }
    let (Some(server), Some(port), Some(url)) = (p.server, p.port, p.url) else {
        return Err(UsageError(Vec::new()));
    };
    Ok(Options {
        server,
        port,
        url,
        ssl: p.ssl,
        sni: p.sni,
        virtualhost: p.virtualhost,
        verbose: p.verbose,
        fwmark: p.fwmark,
        protocol: p.protocol,
        timeout: p.timeout,
    })
}

/// A value is missing (necessarily at the end): the messages so far and this one.
fn missing(reported: &mut Vec<String>, option: String) -> UsageError {
    reported.push(format!("Missing parameter for option {option}"));
    UsageError(std::mem::take(reported))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<S: AsRef<str> + std::fmt::Debug>(args: &[S]) -> Options {
        parse(args).unwrap_or_else(|e| panic!("{args:?}: {e:?}"))
    }

    /// The messages, one a line ("" for the usage alone).
    fn err<S: AsRef<str> + std::fmt::Debug>(args: &[S]) -> String {
        match parse(args) {
            Ok(o) => panic!("{args:?} parsed: {o:?}"),
            Err(UsageError(m)) => m.join("\n"),
        }
    }

    const BASE: [&str; 6] = ["-s", "192.0.2.10", "-p", "80", "-u", "/index.html"];

    /// The minimal command followed by `extra`.
    fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        BASE.iter().chain(extra).copied().collect()
    }

    #[test]
    fn minimal_command_and_defaults() {
        let o = ok(&BASE);
        assert_eq!(o.server, "192.0.2.10".parse::<IpAddr>().unwrap());
        assert_eq!((o.port, o.url.as_str()), (80, "/index.html"));
        assert!(!o.ssl && !o.sni && !o.verbose);
        assert_eq!(o.protocol, HttpProtocol::Http10);
        assert_eq!((o.timeout, o.fwmark, o.virtualhost), (None, None, None));
    }

    #[test]
    fn long_forms_prefixes_bundles_and_attached_values() {
        let o = ok(&[
            "--server=2001:db8::1",
            "--port",
            "443",
            "--url",
            "/a",
            "--protocol=1.1",
            "--timeout",
            "3",
            "--use-virtualhost=www.example.com",
            "--fwmark",
            "7",
            "--use-sni",
            "--verbose",
            "--use-ssl",
        ]);
        assert!(o.ssl && o.sni && o.verbose);
        assert_eq!(o.server, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(o.protocol, HttpProtocol::Http11);
        assert_eq!(o.timeout, Some(Duration::from_secs(3)));
        assert_eq!(o.fwmark, Some(7));
        assert_eq!(o.virtualhost.as_deref(), Some("www.example.com"));
        let o = ok(&[
            "-s192.0.2.1",
            "-p80",
            "-u/b",
            "-vS",
            "--ser",
            "192.0.2.2",
            "--verb",
        ]);
        assert!(o.verbose && o.ssl);
        assert_eq!(o.server, "192.0.2.2".parse::<IpAddr>().unwrap());
        assert_eq!(o.url, "/b");
        // The last -u wins; operand order does not matter before the check.
        assert_eq!(ok(&with(&["-u", "/c"])).url, "/c");
        assert_eq!(ok(&with(&["-P", "1.0C"])).protocol, HttpProtocol::Http10C);
        assert_eq!(ok(&with(&["-p", "+81"])).port, 81);
        assert_eq!(ok(&with(&["-p", " 82"])).port, 82);
        assert_eq!(
            ok(&with(&["-t", " 3"])).timeout,
            Some(Duration::from_secs(3))
        );
        assert_eq!(ok(&with(&["-t", "0"])).timeout, Some(Duration::ZERO));
        assert_eq!(ok(&with(&["-m", ""])).fwmark, None);
        assert_eq!(ok(&with(&["-m", " 3"])).fwmark, Some(3));
    }

    /// The messages keepalived 2.2.7 prints (before its usage) for the same arguments.
    #[test]
    fn keepalived_messages() {
        let cases: &[(&[&str], &str)] = &[
            (&["-s", "192.0.2.10", "-p", "80"], ""),
            (&["-h"], ""),
            (&[], ""),
            (&["-s"], "Missing parameter for option -s"),
            (&["-vp"], "Missing parameter for option -p"),
            (&["--port"], "Missing parameter for option --port"),
            (
                &["-s", "www.example.com"],
                "server should be an IP, not www.example.com",
            ),
            (
                &["-s", "192.0.2.10:81"],
                "server should be an IP, not 192.0.2.10:81",
            ),
            (
                &["-s", "[2001:db8::1]"],
                "server should be an IP, not [2001:db8::1]",
            ),
            (&["-p", "0"], "invalid port number '0'"),
            (&["-p", "65536"], "invalid port number '65536'"),
            (&["--port="], "invalid port number ''"),
            (&["-P", "2.0"], "invalid HTTP protocol version '2.0'"),
            (&["-P", "1.1k"], "invalid HTTP protocol version '1.1k'"),
            (&["-t", "abc"], "invalid timeout 'abc'"),
            (&["-t", ""], "invalid timeout ''"),
            (&["-t", "-1"], "invalid timeout '-1'"),
            (&["-m", "x"], "invalid fwmark 'x'"),
            (&["-Z"], "Unknown option -Z"),
            (&["-vZ"], "Unknown option -Z"),
            (&["-T"], "Unknown option -T"),
            (&["-H", "md5"], "Unknown option -H"),
            (&["--bogus"], "Unknown option --bogus"),
            (&["--use"], "Unknown option --use"),
            (&["--verbose=1"], "Unknown option --verbose=1"),
            (&["--genhash"], "Unknown option --genhash"),
        ];
        for (args, want) in cases {
            assert_eq!(err(args), *want, "{args:?}");
        }
        for (extra, want) in [
            (&["extra"][..], "Unexpected argument(s): extra"),
            (&["x", "y"][..], "Unexpected argument(s): x y"),
            (&["--", "-x"][..], "Unexpected argument(s): -x"),
            (&["-"][..], "Unexpected argument(s): -"),
        ] {
            assert_eq!(err(&with(extra)), want, "{extra:?}");
        }
        // Options are all checked before the operands; unknown options and -h are reported
        // and parsing goes on; a bad value stops it.
        assert_eq!(err(&with(&["x", "-p", "0"])), "invalid port number '0'");
        assert_eq!(err(&with(&["x", "-Z"])), "Unknown option -Z");
        assert_eq!(
            err(&["-Z", "-Y", "-s", "www", "-p", "0"]),
            "Unknown option -Z\nUnknown option -Y\nserver should be an IP, not www"
        );
        assert_eq!(
            err(&["-T", "-s", "1"]),
            "Unknown option -T\nserver should be an IP, not 1"
        );
        assert_eq!(
            err(&["-h", "-Z", "-p", "0"]),
            "Unknown option -Z\ninvalid port number '0'"
        );
        assert_eq!(err(&["-h", "-s", "www"]), "server should be an IP, not www");
        assert_eq!(
            err(&["--bogus", "--use", "-s", "192.0.2.1", "-p", "80", "-u", "/"]),
            "Unknown option --bogus\nUnknown option --use"
        );
        assert_eq!(
            err(&["-Z", "-p"]),
            "Unknown option -Z\nMissing parameter for option -p"
        );
    }

    #[test]
    fn usage_names_the_program() {
        let u = usage("/usr/sbin/vrrpd --genhash");
        assert!(u.starts_with("Usage: /usr/sbin/vrrpd --genhash COMMAND [OPTIONS]\n"));
        assert!(u.ends_with("   --timeout         -t       Timeout in seconds\n"));
        assert!(u.contains("\n   -h\n\nOptions:\n"));
    }
}
