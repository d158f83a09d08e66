//! An instance's `auth_type AH` (VRRPv2, IPv4), as keepalived 2.2.7 runs it: each advert
//! leaves whole, inside an AH header with the next sequence number and an HMAC-MD5-96 ICV;
//! each one received is checked (ICV, SPI, sequence) before the advert decoder sees it. The
//! bytes are `vrp_proto::packet::ah`'s; this keeps the per-instance counters.

use std::net::{IpAddr, Ipv4Addr};

use vrrp_proto::packet::ah::{self, AhSequence};
use vrrp_proto::packet::{Advert, DropReason, RxMeta};

/// The AH state of one instance.
#[derive(Debug)]
pub(super) struct AhSession {
    key: [u8; 8],
    /// Unicast adverts leave the TTL out of the ICV (a router may lower it).
    unicast: bool,
    seq: AhSequence,
    /// The IPv4 identification of our adverts: never 0, which the kernel would replace after
    /// the ICV was computed over it.
    ip_id: u16,
}

impl AhSession {
    pub(super) fn new(key: [u8; 8], unicast: bool) -> Self {
        Self {
            key,
            unicast,
            seq: AhSequence::default(),
            ip_id: 0,
        }
    }

    /// Takes up the counter of the instance this one replaces on a reload: keepalived keeps
    /// it, so the peer's replay check goes on accepting our adverts.
    pub(super) fn continue_from(&mut self, seq: AhSequence) {
        self.seq = seq;
    }

    /// Checks a received IPv4 packet (see [`crate::net::Proto::Ah`]): its ICV and SPI with our
    /// key, then its sequence number against everything seen or sent. Returns the IP facts,
    /// the advert bytes and the sequence number.
    pub(super) fn open<'p>(
        &mut self,
        packet: &'p [u8],
    ) -> Result<(RxMeta, &'p [u8], u32), DropReason> {
        let (meta, header, advert) = ah::open_ipv4(packet, &self.key, self.unicast)?;
        self.seq.accept(header.seq)?;
        Ok((meta, advert, header.seq))
    }

    /// As Master, an advert of lower priority was heard: our next ones carry on from its
    /// number, so that sender accepts them (keepalived's "Syncing seq_num").
    pub(super) fn heard_lower(&mut self, seq: u32) {
        self.seq.follow(seq);
    }

    /// The instance became Master: a counter that ran out starts again.
    pub(super) fn became_master(&mut self) {
        self.seq.on_master();
    }

    /// The packets of one advert, one per destination: one sequence number and one IP
    /// identification for all of them, as keepalived sends it.
    pub(super) fn seal(
        &mut self,
        advert: &Advert,
        src: IpAddr,
        ttl: u8,
        dsts: &[IpAddr],
    ) -> Vec<Vec<u8>> {
        let IpAddr::V4(src) = src else {
            // Refused at load: AH is IPv4 only.
            return Vec::new();
        };
        let seq = self.seq.next_to_send();
        self.ip_id = self.ip_id.wrapping_add(1).max(1);
        dsts.iter()
            .filter_map(|d| match d {
                IpAddr::V4(d) => Some(*d),
                IpAddr::V6(_) => None,
            })
            .map(|dst: Ipv4Addr| {
                ah::build_ipv4(
                    advert,
                    src,
                    dst,
                    ttl,
                    self.ip_id,
                    seq,
                    &self.key,
                    self.unicast,
                )
            })
            .collect()
    }

    /// The counter, handed to the instance a reload starts in this one's place.
    pub(super) fn sequence(&self) -> AhSequence {
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrrp_proto::packet::{Auth, Version};

    fn advert(priority: u8) -> Advert {
        Advert {
            version: Version::V2,
            vrid: 9,
            priority,
            max_adver_int: 100,
            addrs: vec!["192.0.2.9".parse().unwrap()],
            auth: Auth::Ah(*b"k3y\0\0\0\0\0"),
        }
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    const GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));

    #[test]
    fn a_backup_accepts_each_advert_once_and_a_takeover_continues_the_count() {
        let key = *b"k3y\0\0\0\0\0";
        let (mut master, mut backup) = (AhSession::new(key, false), AhSession::new(key, false));
        for n in 1..=3 {
            let p = master.seal(&advert(150), A, 255, &[GROUP]).remove(0);
            let (meta, _, seq) = backup.open(&p).expect("accepted");
            assert_eq!((meta.src, seq), (A, n));
            assert_eq!(backup.open(&p), Err(DropReason::AhReplay), "a replay");
        }
        // The Backup takes over: its first advert is newer than the old Master's last.
        let p = backup.seal(&advert(100), B, 255, &[GROUP]).remove(0);
        assert_eq!(master.open(&p).expect("accepted").2, 4);
        // The old Master hears that lower priority and follows its count.
        master.heard_lower(4);
        let p = master.seal(&advert(150), A, 255, &[GROUP]).remove(0);
        assert_eq!(backup.open(&p).expect("accepted").2, 6);
        // A reload hands the counter on: no replay for the peer.
        let mut reloaded = AhSession::new(key, false);
        reloaded.continue_from(master.sequence());
        let p = reloaded.seal(&advert(150), A, 255, &[GROUP]).remove(0);
        assert!(backup.open(&p).is_ok());
    }

    #[test]
    fn one_number_per_advert_for_every_unicast_peer_and_the_wrong_key_fails() {
        let mut s = AhSession::new(*b"k3y\0\0\0\0\0", true);
        let ps = s.seal(&advert(150), A, 64, &[B, GROUP]);
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0][24..28], ps[1][24..28], "one sequence number");
        assert_eq!(ps[0][4..6], ps[1][4..6], "one IP identification");
        assert_ne!(ps[0][4..6], [0, 0]);
        let mut other = AhSession::new(*b"other\0\0\0", true);
        assert_eq!(other.open(&ps[0]), Err(DropReason::AuthFailure));
    }
}
