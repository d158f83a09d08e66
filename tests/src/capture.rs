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

    /// Packets tshark flags as malformed or with an incorrect checksum.
    pub fn count_malformed(&mut self) -> Result<usize> {
        Ok(count_malformed_in(&self.tshark_decode()?))
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

/// Count malformed-packet markers and incorrect-checksum expert infos in `tshark -V` text.
pub fn count_malformed_in(decoded: &str) -> usize {
    decoded
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("malformed packet")
                || l.contains("_ws.malformed")
                || l.contains("checksum status: bad")
                || (l.contains("checksum") && l.contains("incorrect"))
        })
        .count()
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn malformed_markers_are_counted() {
        let text = "Frame 1\n    Checksum: 0x1234 [correct]\n[Malformed Packet: VRRP]\n    \
                    [Expert Info (Error/Checksum): Bad checksum [should be 0x1]]\n\
                    Checksum: 0xbeef incorrect, should be 0x1\n";
        assert_eq!(super::count_malformed_in(text), 2);
    }
}
