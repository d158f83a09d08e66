//! `vrrpd -T` (keepalived's genhash): GET one URL as HTTP_GET / SSL_GET do and print the MD5
//! of the body, for a checker's `digest`. Options, output and exit codes are keepalived
//! 2.2.7's. The exchange is the checker's own ([`HttpProbe::get`]) and so is the hash
//! ([`checks::probe::http::md5_hex`], which `digest` is compared with).

pub mod args;
pub mod render;

use std::io::Write;
use std::time::Instant;

use checks::probe::http::{FetchError, GetOptions, HttpProbe, Response};
use checks::spec::{Connect, HttpCheck, Target, UrlSpec};

use args::{Options, UsageError};
use render::Piece;

/// Exit status of a usage error; every fetch outcome exits 0, as keepalived's genhash.
const EXIT_USAGE: u8 = 1;

/// Run genhash with its own arguments (those after `-T`, or all of them when run as `genhash`);
/// `invocation` is how the usage names the command (`genhash`, `/usr/sbin/vrrpd --genhash`).
pub fn main<S: AsRef<str>>(invocation: &str, args: &[S]) -> u8 {
    let opts = match args::parse(args) {
        Ok(o) => o,
        Err(UsageError(messages)) => {
            for m in messages {
                eprintln!("{m}");
            }
            eprint!("{}", args::usage(invocation));
            return EXIT_USAGE;
        }
    };
    let probe = match prepare(&opts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Cannot initialize SSL context. ({e})");
            eprint!("{}", args::usage(invocation));
            return EXIT_USAGE;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return EXIT_USAGE;
        }
    };
    let started = Instant::now();
    let result = rt.block_on(fetch(&probe, &opts));
    let pieces = render::render(
        opts.verbose,
        opts.ssl,
        &opts.url,
        &result,
        started.elapsed(),
    );
    emit(&pieces);
    0
}

/// The checker genhash stands for: HTTP_GET (SSL_GET with `-S`) of the server.
fn prepare(opts: &Options) -> Result<HttpProbe, checks::probe::PrepareError> {
    let spec = HttpCheck {
        connect: Connect {
            fwmark: opts.fwmark,
            ..Default::default()
        },
        virtualhost: opts.virtualhost.clone(),
        http_protocol: opts.protocol,
        enable_sni: opts.sni,
        ..Default::default()
    };
    HttpProbe::new(&spec, &Target::new(opts.server, opts.port), opts.ssl)
}

async fn fetch(probe: &HttpProbe, opts: &Options) -> Result<Response, FetchError> {
    let url = UrlSpec {
        path: opts.url.clone(),
        ..Default::default()
    };
    let get = GetOptions {
        step_timeout: opts.timeout,
        capture_head: opts.verbose,
    };
    probe.get(&url, get).await
}

/// Write the pieces in order (stdout flushed before anything goes to stderr).
fn emit(pieces: &[Piece]) {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    for p in pieces {
        // Nothing useful to do when the terminal or pipe is gone.
        let _ = match p {
            Piece::Out(b) => out.write_all(b).and_then(|()| out.flush()),
            Piece::Err(b) => err.write_all(b),
        };
    }
}
