//! tcpdump captures inside a lab namespace, decoded afterwards with tshark.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::lab::{run, Host};
use crate::process::LabChild;
use crate::wait::wait_until;

/// One VRRP advert from a capture.
#[derive(Debug, Clone, PartialEq)]
pub struct PcapAdvert {
    /// Seconds since the epoch.
    pub time: f64,
    pub src: IpAddr,
    pub vrid: u8,
    pub priority: u8,
}

/// A running (or stopped) capture writing a pcap file.
pub struct Capture {
    child: Option<LabChild>,
    pub file: PathBuf,
}

impl Capture {
    /// Capture on `host`'s lab interface with an optional BPF `filter` (e.g. `"vrrp or arp"`).
    /// Returns once tcpdump has opened the interface (bounded wait).
    pub fn start(host: &Host, name: &str, filter: &str) -> Result<Self> {
        let file = host.dir.join(format!("{name}.pcap"));
        let log = host.dir.join(format!("{name}.tcpdump.log"));
        let _ = std::fs::remove_file(&file);
        let f = file.to_string_lossy().into_owned();
        // --immediate-mode: without it libpcap hands packets over only once a buffer block fills
        // or ~1 s passes, so a capture stopped right after the traffic would be empty.
        let mut args = vec!["-i", &host.ifname, "--immediate-mode", "-U", "-n", "-w", &f];
        if !filter.is_empty() {
            args.push(filter);
        }
        let child = host.spawn("tcpdump", &args, Some(&log))?;
        let up = wait_until(Duration::from_secs(5), Duration::from_millis(5), || {
            std::fs::read_to_string(&log)
                .map(|t| t.contains("listening on"))
                .unwrap_or(false)
        });
        if !up {
            return Err(LabError::Timeout(
                Duration::from_secs(5),
                format!(
                    "tcpdump on {}: {}",
                    host.name,
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            ));
        }
        Ok(Self {
            child: Some(child),
            file,
        })
    }

    /// Stop tcpdump (SIGTERM, bounded); the pcap stays for decoding.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.stop(Duration::from_secs(2));
        }
    }

    pub fn path(&self) -> &Path {
        &self.file
    }

    /// `tshark -r FILE -V` (full decode, stops the capture first).
    pub fn tshark_decode(&mut self) -> Result<String> {
        self.stop();
        let f = self.file.to_string_lossy().into_owned();
        let out = run("tshark", &["-n", "-r", &f, "-V"])?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `tshark -r FILE -T fields -e F...` rows (tab-separated columns).
    pub fn tshark_fields(&mut self, filter: &str, fields: &[&str]) -> Result<Vec<Vec<String>>> {
        self.stop();
        let f = self.file.to_string_lossy().into_owned();
        let mut args: Vec<&str> = vec!["-n", "-r", &f, "-T", "fields"];
        if !filter.is_empty() {
            args.extend(["-Y", filter]);
        }
        for e in fields {
            args.extend(["-e", e]);
        }
        let out = run("tshark", &args)?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect())
    }

    /// Frames tshark flags as malformed or with a bad IP / VRRP checksum (stops the capture).
    pub fn count_malformed(&mut self) -> Result<usize> {
        self.stop();
        count_malformed_file(&self.file)
    }

    /// VRRP adverts in capture order.
    pub fn vrrp_adverts(&mut self) -> Result<Vec<PcapAdvert>> {
        let rows = self.tshark_fields(
            "vrrp",
            &[
                "frame.time_epoch",
                "ip.src",
                "ipv6.src",
                "vrrp.virt_rtr_id",
                "vrrp.prio",
            ],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let src = if r.get(1)?.is_empty() {
                    r.get(2)?
                } else {
                    r.get(1)?
                };
                Some(PcapAdvert {
                    time: r.first()?.parse().ok()?,
                    src: src.parse().ok()?,
                    vrid: r.get(3)?.parse().ok()?,
                    priority: r.get(4)?.parse().ok()?,
                })
            })
            .collect())
    }
}

/// tshark display filter for frames that do not decode cleanly. VRRP checksums are always
/// verified by the dissector; IPv4 header checksums only with `ip.check_checksum` on.
pub const MALFORMED_FILTER: &str = "_ws.malformed || _ws.expert.severity == \"Error\" \
     || vrrp.checksum.status == \"Bad\" || ip.checksum.status == \"Bad\"";

/// Number of frames in the pcap `file` matching [`MALFORMED_FILTER`].
pub fn count_malformed_file(file: &Path) -> Result<usize> {
    let f = file.to_string_lossy().into_owned();
    let out = run(
        "tshark",
        &[
            "-n",
            "-r",
            &f,
            "-o",
            "ip.check_checksum:TRUE",
            "-Y",
            MALFORMED_FILTER,
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    )?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count())
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 checksum.
    fn csum(b: &[u8]) -> u16 {
        let mut s: u32 = b
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    /// An Ethernet frame with a VRRPv2 advert from 192.0.2.1 for VIP 192.0.2.100.
    fn frame(bad_vrrp: bool, bad_ip: bool) -> Vec<u8> {
        let mut vrrp = vec![0x21, 51, 150, 1, 0, 1, 0, 0, 192, 0, 2, 100];
        vrrp.extend([0u8; 8]);
        let c = csum(&vrrp) ^ if bad_vrrp { 0x1111 } else { 0 };
        vrrp[6..8].copy_from_slice(&c.to_be_bytes());
        let len = (20 + vrrp.len()) as u16;
        let mut ip = vec![0x45, 0xc0, 0, 0, 0, 0, 0, 0, 255, 112, 0, 0];
        ip[2..4].copy_from_slice(&len.to_be_bytes());
        ip.extend([192, 0, 2, 1, 224, 0, 0, 18]);
        let c = csum(&ip) ^ if bad_ip { 0x00ff } else { 0 };
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut f = vec![1, 0, 0x5e, 0, 0, 0x12, 0, 0, 0x5e, 0, 1, 51, 0x08, 0x00];
        f.extend(ip);
        f.extend(vrrp);
        f
    }

    fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
        out.extend(2u16.to_le_bytes());
        out.extend(4u16.to_le_bytes());
        for v in [0u32, 0, 65_535, 1] {
            out.extend(v.to_le_bytes());
        }
        for (i, f) in frames.iter().enumerate() {
            for v in [i as u32 + 1, 0, f.len() as u32, f.len() as u32] {
                out.extend(v.to_le_bytes());
            }
            out.extend(f);
        }
        out
    }

    /// The detector really catches a corrupted VRRP checksum and a corrupted IP header
    /// checksum, and passes the intact advert.
    #[test]
    fn detects_bad_vrrp_and_ip_checksums() {
        if crate::daemon::on_path("tshark").is_none() {
            eprintln!("skipped: tshark not installed");
            return;
        }
        let dir = std::env::temp_dir().join(format!("vrrp-cap-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            ("good", vec![frame(false, false)], 0),
            ("badvrrp", vec![frame(false, false), frame(true, false)], 1),
            ("badip", vec![frame(false, true), frame(false, false)], 1),
            ("both", vec![frame(true, false), frame(false, true)], 2),
        ];
        for (name, frames, want) in cases {
            let p = dir.join(format!("{name}.pcap"));
            std::fs::write(&p, pcap(&frames)).unwrap();
            assert_eq!(count_malformed_file(&p).unwrap(), want, "{name}");
        }
        // A truncated advert is malformed, too.
        let mut short = frame(false, false);
        short.truncate(14 + 20 + 3);
        let p = dir.join("short.pcap");
        std::fs::write(&p, pcap(&[short])).unwrap();
        assert_eq!(count_malformed_file(&p).unwrap(), 1, "truncated");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
