//! The HTTP_GET checker's response handling, as a real server's bytes reach it: hyper's HTTP/1
//! client (status line, headers, chunked and length-framed bodies, 1xx), the head tap genhash
//! dumps, the bounded body read, then the verdict (status ranges, MD5 digest, regex with
//! offsets). The first input byte sets how the reply is split across reads (the head tap must
//! find a blank line that straddles two reads); the rest is what the server sends.
//!
//! Beyond "no panic and no hang": a captured head is a prefix of what was sent and ends at its
//! blank line, a body never exceeds `MAX_BODY`, a catch-all status rule accepts whatever status
//! hyper accepted, and every failure reason names its URL.

#![no_main]

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::task::{Context, Poll};

use checks::probe::http::{judge, CompiledUrl, GetOptions, HttpProbe, MAX_BODY};
use checks::spec::{HttpCheck, StatusRange, Target, UrlSpec};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The server's side of the connection: the scripted reply in reads of at most `chunk`
/// bytes, then end of stream; whatever the client writes is accepted and dropped.
/// (Owned: hyper's connection task needs a `'static` stream.)
struct Scripted {
    reply: Vec<u8>,
    at: usize,
    chunk: usize,
}

impl AsyncRead for Scripted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let at = self.at;
        let n = (self.reply.len() - at).min(self.chunk).min(buf.remaining());
        buf.put_slice(&self.reply[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Scripted {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    probe: HttpProbe,
    /// Verdict rules exercised on every response.
    urls: Vec<CompiledUrl>,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let target = Target::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)), 80);
    let probe = HttpProbe::new(&HttpCheck::default(), &target, false).expect("probe");
    let url = |f: &dyn Fn(&mut UrlSpec)| {
        let mut s = UrlSpec::default();
        f(&mut s);
        CompiledUrl::new(s).expect("url")
    };
    let urls = vec![
        url(&|_| {}),
        url(&|u| u.status_code = vec![StatusRange { lo: 100, hi: 999 }]),
        url(&|u| u.digest = Some("d41d8cd98f00b204e9800998ecf8427e".into())),
        url(&|u| {
            u.regex = Some("(?i)ok|up".into());
            u.regex_min_offset = Some(2);
            u.regex_max_offset = Some(40);
        }),
        url(&|u| {
            u.regex = Some("^$".into());
            u.regex_no_match = true;
        }),
    ];
    Fixture { rt, probe, urls }
}

thread_local! {
    static FIXTURE: Fixture = fixture();
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, reply)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split % 64) + 1;
    FIXTURE.with(|fx| {
        let io = Scripted {
            reply: reply.to_vec(),
            at: 0,
            chunk,
        };
        let opts = GetOptions {
            step_timeout: None,
            capture_head: true,
        };
        let got = fx
            .rt
            .block_on(fx.probe.exchange(io, &UrlSpec::default(), opts));
        let resp = match got {
            Ok(r) => r,
            Err(e) => {
                let _ = (e.to_string(), e.is_no_response());
                return;
            }
        };
        assert!((100..1000).contains(&resp.status), "status {}", resp.status);
        assert!(resp.body.len() <= MAX_BODY);
        if let Some(head) = &resp.head {
            assert!(reply.starts_with(head), "head is not what the server sent");
            assert!(
                head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"),
                "head does not end at its blank line"
            );
        }
        for u in &fx.urls {
            let verdict = judge(u, resp.status, &resp.body);
            if let Err(reason) = &verdict {
                assert!(reason.starts_with(&u.spec.path), "{reason}");
            }
        }
        // The catch-all status range accepts whatever hyper accepted.
        assert!(judge(&fx.urls[1], resp.status, &resp.body).is_ok());
    });
});
