//! Test servers (hyper HTTP, rustls TLS) on loopback listeners the tests open themselves, and
//! event helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use checks::spec::{resolve, CheckSpec, ProbeSpec, Resolved, Target, TimerOverrides};
use checks::{Change, Event};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// What the server answers, and what it saw.
#[derive(Default)]
pub(crate) struct Behaviour {
    pub status: u16,
    pub body: String,
    pub last_host: Option<String>,
    pub last_sni: Option<String>,
    pub requests: u64,
}

/// An HTTP (or HTTPS) server whose listener can be closed and reopened on the same port.
pub(crate) struct Server {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<Behaviour>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    pub(crate) async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(Behaviour {
            status: 200,
            body: "hello\n".into(),
            ..Default::default()
        }));
        let mut s = Self {
            addr,
            state,
            tls,
            task: None,
        };
        s.task = Some(tokio::spawn(serve(
            listener,
            s.state.clone(),
            s.tls.clone(),
        )));
        s
    }

    pub(crate) fn set(&self, status: u16, body: &str) {
        let mut st = self.state.lock().unwrap();
        st.status = status;
        st.body = body.into();
    }

    /// Close the listener: new connections are refused.
    pub(crate) fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Reopen the listener on the same address.
    pub(crate) async fn restart(&mut self) {
        self.stop();
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("rebind {}: {e}", self.addr),
            }
        };
        self.task = Some(tokio::spawn(serve(
            listener,
            self.state.clone(),
            self.tls.clone(),
        )));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(
    listener: TcpListener,
    state: Arc<Mutex<Behaviour>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc_state = state.clone();
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let state = svc_state.clone();
                async move {
                    let mut st = state.lock().unwrap();
                    st.requests += 1;
                    st.last_host = req
                        .headers()
                        .get(hyper::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .map(String::from);
                    let resp = hyper::Response::builder()
                        .status(st.status)
                        .body(Full::new(Bytes::from(st.body.clone())))
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            match tls {
                None => {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                }
                Some(acceptor) => {
                    let Ok(tls_stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    state.lock().unwrap().last_sni =
                        tls_stream.get_ref().1.server_name().map(String::from);
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls_stream), svc)
                        .await;
                }
            }
        });
    }
}

/// A self-signed certificate for `localhost`/127.0.0.1 and a TLS acceptor serving it.
pub(crate) struct Cert {
    pub cert_pem: String,
    pub key_pem: String,
}

pub(crate) fn generate_cert() -> Cert {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    Cert {
        cert_pem: ck.cert.pem(),
        key_pem: ck.key_pair.serialize_pem(),
    }
}

pub(crate) fn acceptor(cert: &Cert) -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Fast timers for tests: delay_loop 0.2 s, retry 1, delay_before_retry 0.2 s,
/// connect_timeout 0.5 s, no warmup.
pub(crate) fn fast_timers() -> TimerOverrides {
    TimerOverrides {
        delay_loop: Some(Duration::from_millis(200)),
        retry: Some(1),
        delay_before_retry: Some(Duration::from_millis(200)),
        connect_timeout: Some(Duration::from_millis(500)),
        warmup: Some(Duration::ZERO),
        ..Default::default()
    }
}

pub(crate) fn resolved(addr: SocketAddr, probe: ProbeSpec) -> Resolved {
    resolve(
        &fast_timers(),
        &TimerOverrides::default(),
        &CheckSpec::new(probe),
        Target::new(addr.ip(), addr.port()),
        1,
    )
}

/// The bound: delay_loop × (retry + 1) + connect_timeout, plus a tolerance for a
/// loaded 2-core machine.
pub(crate) fn bound(r: &Resolved) -> Duration {
    let t = &r.timers;
    t.delay_loop * (t.retry + 1) + t.connect_timeout + Duration::from_millis(400)
}

/// Wait for the next event with `change`, skipping others; returns it and the time waited.
pub(crate) async fn expect(
    rx: &mut UnboundedReceiver<Event>,
    change: Change,
    within: Duration,
) -> (Event, Duration) {
    let t0 = Instant::now();
    loop {
        let left = within
            .checked_sub(t0.elapsed())
            .unwrap_or_else(|| panic!("no {change:?} event within {within:?}"));
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(e)) if e.change == change => return (e, t0.elapsed()),
            Ok(Some(_)) => continue,
            Ok(None) => panic!("event channel closed"),
            Err(_) => panic!("no {change:?} event within {within:?}"),
        }
    }
}

/// Assert no event arrives for `d`.
pub(crate) async fn quiet(rx: &mut UnboundedReceiver<Event>, d: Duration) {
    if let Ok(Some(e)) = tokio::time::timeout(d, rx.recv()).await {
        panic!("unexpected event {e:?}");
    }
}
