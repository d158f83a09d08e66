//! TCP_CHECK: a full connect (see [`super::halfopen`] for `half_open`).

use std::net::SocketAddr;

use crate::health::Outcome;
use crate::probe::net;
use crate::spec::{Connect, Target, TcpCheck};

/// A prepared TCP_CHECK.
pub struct TcpProbe {
    connect: Connect,
    dest: SocketAddr,
}

impl TcpProbe {
    /// Prepare.
    pub fn new(spec: &TcpCheck, target: &Target) -> Self {
        Self {
            connect: spec.connect.clone(),
            dest: spec.connect.destination(target, 0),
        }
    }

    /// Connect and close.
    pub async fn run(&self) -> Outcome {
        match net::connect(&self.connect, self.dest).await {
            Ok(_) => Outcome::up(format!("connected to {}", self.dest)),
            Err(e) => Outcome::down(format!("connect {}: {e}", self.dest)),
        }
    }
}
