//! Prints how many Maglev slots move when one of N servers leaves:
//! `cargo run -p lbcore --release --example maglev_disruption`.

use std::net::{IpAddr, Ipv4Addr};

use lbcore::pool::RealServer;
use lbcore::sched::{Maglev, MAGLEV_TABLE_SIZE};

fn main() {
    println!(
        "{:>3} {:>9} {:>9} {:>12}",
        "N", "moved", "1/N", "others_moved"
    );
    for n in [3usize, 5, 10, 20, 50] {
        let p: Vec<RealServer> = (0..n)
            .map(|i| {
                RealServer::new(
                    IpAddr::V4(Ipv4Addr::new(198, 51, 100, i as u8 + 1)),
                    Some(8080),
                    1,
                )
            })
            .collect();
        let before = Maglev::new(&p, MAGLEV_TABLE_SIZE, false, false);
        let mut q = p.clone();
        let gone = q.remove(n / 2).id;
        let after = Maglev::new(&q, MAGLEV_TABLE_SIZE, false, false);
        let (mut moved, mut others) = (0, 0);
        for k in 0..MAGLEV_TABLE_SIZE {
            let (b, a) = (
                p[before.table()[k] as usize].id,
                q[after.table()[k] as usize].id,
            );
            if a != b {
                moved += 1;
                others += usize::from(b != gone);
            }
        }
        let m = MAGLEV_TABLE_SIZE as f64;
        println!(
            "{n:>3} {:>9.4} {:>9.4} {:>12.4}",
            moved as f64 / m,
            1.0 / n as f64,
            others as f64 / m
        );
    }
}
