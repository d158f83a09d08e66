//! Socket setup shared by the TCP-based probes: `bindto`, `bind_port`, `bind_if`, `fwmark`.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpSocket, TcpStream};

use crate::spec::Connect;

/// Connect to `dest` honouring the connection options.
pub async fn connect(opts: &Connect, dest: SocketAddr) -> io::Result<TcpStream> {
    let sock = if dest.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(dev) = &opts.bind_if {
        sock.bind_device(Some(dev.as_bytes()))?;
    }
    if let Some(mark) = opts.fwmark {
        socket2::SockRef::from(&sock).set_mark(mark)?;
    }
    if let Some(src) = opts.source(&dest) {
        sock.set_reuseaddr(true)?;
        sock.bind(src)?;
    }
    sock.connect(dest).await
}
