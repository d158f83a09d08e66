//! A standalone balancer for manual experiments, run inside the balancer's
//! namespace (`ip netns exec NS`):
//!
//! ```sh
//! lbd --iface eth0 --workers 2 --spec services.json [--seconds 30]
//! ```
//!
//! `services.json` is a JSON array of `lbcore::spec::ServiceSpec`, e.g.
//! `[{"key":{"addr":{"addr":"192.0.2.100","port":80}},"scheduler":"rr",
//!    "forwarding":"dr","real_servers":[{"addr":"192.0.2.11"}]}]`.
//! Prints the counters as one JSON line per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lbcore::dataplane::{Dataplane, DataplaneConfig};
use lbcore::persist::PersistTable;
use lbcore::service::{Controller, SharedTable};
use lbcore::spec::ServiceSpec;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = DataplaneConfig {
        ifaces: Vec::new(),
        ..Default::default()
    };
    let (mut spec, mut seconds) = (None, 0u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--iface" => cfg.ifaces.push(val()?),
            "--workers" => cfg.workers = val()?.parse()?,
            "--spec" => spec = Some(val()?),
            "--seconds" => seconds = val()?.parse()?,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    if cfg.ifaces.is_empty() {
        cfg.ifaces.push("eth0".into());
    }
    let specs: Vec<ServiceSpec> = serde_json::from_str(&std::fs::read_to_string(
        spec.ok_or("--spec FILE is required")?,
    )?)?;
    let (c, _) = Controller::new(specs, vec![])?;
    let table = Arc::new(SharedTable::new(c.table()));
    let dp = Dataplane::start(cfg, table, Arc::new(PersistTable::new(1 << 16)))?;
    if !dp.wait_resolved(Duration::from_secs(5)) {
        eprintln!(
            "lbd: some real servers have no next hop yet: {:?}",
            dp.hops()
        );
    }
    let start = Instant::now();
    while seconds == 0 || start.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        println!("{}", serde_json::to_string(&dp.counters())?);
    }
    dp.stop();
    Ok(())
}
