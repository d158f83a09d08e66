//! Socket setup shared by the TCP-based probes: `bindto`, `bind_port`, `bind_if`, `fwmark`.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};
use tokio::net::{TcpSocket, TcpStream};

use crate::spec::Connect;

/// A non-blocking TCP socket for `dest` with the connection options applied, not yet connected.
pub fn socket(opts: &Connect, dest: SocketAddr) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(dest), Type::STREAM.nonblocking(), None)?;
    if let Some(dev) = &opts.bind_if {
        sock.bind_device(Some(dev.as_bytes()))?;
    }
    if let Some(mark) = opts.fwmark {
        sock.set_mark(mark)?;
    }
    if let Some(src) = opts.source(&dest) {
        sock.set_reuse_address(true)?;
        sock.bind(&src.into())?;
    }
    Ok(sock)
}

/// Connect to `dest` honouring the connection options.
pub async fn connect(opts: &Connect, dest: SocketAddr) -> io::Result<TcpStream> {
    let sock = TcpSocket::from_std_stream(socket(opts, dest)?.into());
    sock.connect(dest).await
}
