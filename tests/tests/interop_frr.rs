//! Interop with a foreign router: FRRouting's VRRP (frr 8.4 as Debian ships it), an
//! implementation written apart from keepalived, with its own habits (adverts sent from the
//! virtual MAC through a macvlan, protodown while Backup, millisecond timers). For VRRPv3 over
//! IPv4 and IPv6 and VRRPv2 over IPv4, each way round: the election agrees at start and stays
//! put, a crash of the Master hands over to the other implementation within its
//! Master_Down_Interval, the returning higher priority preempts, and the client's neighbour
//! entry follows every move (FRR's node speaks for the virtual addresses from the virtual MAC
//! alone: `arp_ignore 1`, `arp_announce 2` on its parent interface, as FRR deployments set).

use std::time::Duration;

use lab::e2e::{self, node, VIP4, VIP6};
use lab::frr::{Frr, FrrRouter};
use lab::wait::wait_until;
use lab::{require_root, Daemon, Lab};

#[derive(Clone, Copy, Debug)]
struct Case {
    version: u8,
    advert_ms: u32,
    v6: bool,
}

const V3_IPV4: Case = Case {
    version: 3,
    advert_ms: 100,
    v6: false,
};
const V3_IPV6: Case = Case {
    version: 3,
    advert_ms: 100,
    v6: true,
};
const V2_IPV4: Case = Case {
    version: 2,
    advert_ms: 1000,
    v6: false,
};

impl Case {
    fn vip(self) -> &'static str {
        if self.v6 {
            VIP6
        } else {
            VIP4
        }
    }

    fn advert(self) -> Duration {
        Duration::from_millis(self.advert_ms.into())
    }

    /// Master_Down_Interval at the lowest priority here, with room for process start-up and
    /// scheduling on a loaded machine.
    fn takeover_bound(self) -> Duration {
        self.advert() * 4 + Duration::from_secs(2)
    }

    fn frr(self, priority: u8) -> FrrRouter {
        FrrRouter {
            vrid: 51,
            version: self.version,
            priority,
            advert_ms: self.advert_ms,
            vips: vec![self.vip().to_string()],
        }
    }

    fn vrrpd(self, id: &str, priority: u8) -> lab::NodeConf {
        node(
            id,
            priority,
            self.version,
            f64::from(self.advert_ms) / 1000.0,
            self.vip(),
        )
    }
}

fn ready() -> bool {
    if !Frr::available() {
        eprintln!("skipped: FRR's vrrpd not installed (frr package)");
        return false;
    }
    e2e::available(&[Daemon::Vrrpd])
}

/// FRR (200) on a is Master, vrrpd (100) on b its Backup; FRR crashes, vrrpd takes over; FRR
/// comes back and preempts.
fn frr_master(case: Case) {
    let lab = Lab::builder().build().unwrap();
    let (a, b, client) = (
        lab.host("a").clone(),
        lab.host("b").clone(),
        lab.host("client").clone(),
    );
    let vip = e2e::addr(case.vip());
    let router = case.frr(200);
    let mut frr = Frr::start(&a, router.clone()).unwrap();
    frr.wait_status("Master", Duration::from_secs(5)).unwrap();
    let ours = Daemon::Vrrpd
        .start(&b, &case.vrrpd("b", 100).render())
        .unwrap();
    assert!(
        ours.wait_log("Entering BACKUP STATE", Duration::from_secs(5)),
        "{case:?}: vrrpd did not start as Backup\n{}",
        ours.log_text()
    );
    assert!(
        b.never_holds(vip, case.advert() * 5),
        "{case:?}: vrrpd took the VIP from FRR's Master\n{}",
        ours.log_text()
    );
    assert_eq!(frr.status().as_deref(), Some("Master"), "{case:?}");
    e2e::reach(&client, vip, Duration::from_secs(5)).unwrap();
    assert_eq!(client.neigh(vip), Some(router.vmac()), "{case:?}");

    frr.kill_vrrpd();
    assert!(
        b.gets_addr(vip, case.takeover_bound()),
        "{case:?}: vrrpd did not take over from a crashed FRR\n{}",
        ours.log_text()
    );
    e2e::wait_neigh(&client, vip, &b.mac().unwrap(), Duration::from_secs(3)).unwrap();

    frr.start_vrrpd().unwrap();
    frr.wait_status("Master", case.takeover_bound()).unwrap();
    assert!(
        wait_until(case.takeover_bound(), Duration::from_millis(10), || !b
            .has_addr(vip)),
        "{case:?}: vrrpd kept the VIP after FRR preempted\n{}",
        ours.log_text()
    );
    assert!(
        ours.log_text()
            .contains("(VI_51) Entering BACKUP STATE (from MASTER)"),
        "{}",
        ours.log_text()
    );
    e2e::wait_neigh(&client, vip, &router.vmac(), Duration::from_secs(3)).unwrap();
}

/// vrrpd (200) on a is Master, FRR (100) on b its Backup; vrrpd's node crashes (daemon killed,
/// cable cut), FRR takes over; vrrpd comes back and preempts.
fn vrrpd_master(case: Case) {
    let lab = Lab::builder().build().unwrap();
    let (a, b, client) = (
        lab.host("a").clone(),
        lab.host("b").clone(),
        lab.host("client").clone(),
    );
    let vip = e2e::addr(case.vip());
    let conf = case.vrrpd("a", 200);
    let mut ours = Daemon::Vrrpd.start(&a, &conf.render()).unwrap();
    assert!(
        a.gets_addr(vip, Duration::from_secs(5)),
        "{case:?}: vrrpd alone did not become Master\n{}",
        ours.log_text()
    );
    let router = case.frr(100);
    let frr = Frr::start(&b, router.clone()).unwrap();
    frr.wait_status("Backup", Duration::from_secs(5)).unwrap();
    // FRR stays Backup: sampled over five intervals.
    let left = wait_until(case.advert() * 5, Duration::from_millis(10), || {
        frr.status().as_deref() != Some("Backup")
    });
    assert!(!left, "{case:?}: FRR left Backup\n{}", frr.log_text());
    assert!(a.has_addr(vip), "{case:?}\n{}", ours.log_text());
    e2e::reach(&client, vip, Duration::from_secs(5)).unwrap();
    assert_eq!(client.neigh(vip), Some(a.mac().unwrap()), "{case:?}");

    e2e::crash(&mut ours, &a).unwrap();
    frr.wait_status("Master", case.takeover_bound()).unwrap();
    e2e::wait_neigh(&client, vip, &router.vmac(), Duration::from_secs(3)).unwrap();

    let ours = e2e::restart(Daemon::Vrrpd, &a, &conf).unwrap();
    frr.wait_status("Backup", case.takeover_bound()).unwrap();
    assert!(
        a.gets_addr(vip, Duration::from_secs(3)),
        "{case:?}: vrrpd did not take its VIP back\n{}",
        ours.log_text()
    );
    e2e::wait_neigh(&client, vip, &a.mac().unwrap(), Duration::from_secs(3)).unwrap();
}

/// One test per role and case, each skipped with its reason where FRR or vrrpd is missing.
macro_rules! cases {
    ($($name:ident: $run:ident($case:expr);)*) => {$(
        #[test]
        fn $name() {
            require_root!();
            if ready() {
                $run($case);
            }
        }
    )*};
}

cases! {
    frr_master_vrrpd_backup_v3_ipv4: frr_master(V3_IPV4);
    frr_master_vrrpd_backup_v3_ipv6: frr_master(V3_IPV6);
    frr_master_vrrpd_backup_v2: frr_master(V2_IPV4);
    vrrpd_master_frr_backup_v3_ipv4: vrrpd_master(V3_IPV4);
    vrrpd_master_frr_backup_v3_ipv6: vrrpd_master(V3_IPV6);
    vrrpd_master_frr_backup_v2: vrrpd_master(V2_IPV4);
}

/// RFC 5798 §6.4.2: a v3 Backup times the Master by the interval in the Master's adverts, not
/// by its own. FRR is Master at 1 s, vrrpd Backup configured at 0.1 s: once it has heard FRR,
/// vrrpd stays Backup (its own interval would make it take over within 0.4 s), and after FRR crashes it waits
/// 3 × 1 s + Skew_Time from FRR's last advert (2.6–3.6 s after the kill), then adverts at its
/// own 0.1 s.
#[test]
fn v3_backup_times_the_master_by_its_interval() {
    require_root!();
    if !ready() {
        return;
    }
    let lab = Lab::builder().build().unwrap();
    let (a, b) = (lab.host("a").clone(), lab.host("b").clone());
    let vip = e2e::addr(VIP4);
    let mut frr = Frr::start(
        &a,
        FrrRouter {
            advert_ms: 1000,
            ..V3_IPV4.frr(200)
        },
    )
    .unwrap();
    frr.wait_status("Master", Duration::from_secs(5)).unwrap();
    let ours = Daemon::Vrrpd
        .start(&b, &V3_IPV4.vrrpd("b", 100).render())
        .unwrap();
    // Until FRR's first advert, vrrpd times by its own interval (RFC 5798 §6.4.1) and may take
    // over for a moment: FRR's next advert (priority 200) sends it back to Backup.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        b.never_holds(vip, Duration::from_secs(3)),
        "vrrpd did not follow the Master's 1 s interval\n{}",
        ours.log_text()
    );
    frr.kill_vrrpd();
    let killed = std::time::Instant::now();
    assert!(
        b.gets_addr(vip, Duration::from_secs(6)),
        "vrrpd did not take over\n{}",
        ours.log_text()
    );
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_millis(2500),
        "vrrpd took over {took:?} after the kill: it timed FRR by its own interval\n{}",
        ours.log_text()
    );
}
