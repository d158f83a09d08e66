//! TCP_CHECK: a full connect (the half-open variant is not implemented yet).

use std::net::SocketAddr;

use crate::health::Outcome;
use crate::probe::{net, PrepareError};
use crate::spec::{Connect, Target, TcpCheck};

/// A prepared TCP_CHECK.
pub struct TcpProbe {
    connect: Connect,
    dest: SocketAddr,
}

impl TcpProbe {
    /// Prepare; `half_open` is refused until implemented.
    pub fn new(spec: &TcpCheck, target: &Target) -> Result<Self, PrepareError> {
        if spec.half_open {
            return Err(PrepareError::Unsupported("TCP_CHECK half_open"));
        }
        Ok(Self {
            connect: spec.connect.clone(),
            dest: spec.connect.destination(target, 0),
        })
    }

    /// Connect and close.
    pub async fn run(&self) -> Outcome {
        match net::connect(&self.connect, self.dest).await {
            Ok(_) => Outcome::up(format!("connected to {}", self.dest)),
            Err(e) => Outcome::down(format!("connect {}: {e}", self.dest)),
        }
    }
}
