//! What an alert says: keepalived 2.2.7's subjects, bodies and headers, as pure functions.
//!
//! Measured against keepalived 2.2.7 with an SMTP sink (VRRP side) and taken from its
//! strings and source (checker side, which needs IPVS to run):
//!
//! ```text
//! Date: Wed, 02 Dec 2026 15:21:24 +0000
//! From: vrrp@example.com
//! Subject: [rid_a] VRRP Instance VI_51 - Entering MASTER state
//! X-Mailer: Keepalived
//! To: ops@example.com, noc@example.org
//!
//! => VRRP Instance is now owning VRRP VIPs <=
//! ```
//!
//! Lines end in CRLF; the body line is followed by an empty line before the final dot.

use crate::notify::NotifyState;

/// Something worth a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    /// A VRRP instance entered `state`.
    Instance { name: String, state: NotifyState },
    /// Every member of a sync group is in `state`.
    Group { name: String, state: NotifyState },
    /// A checker of real server `rs` (`[198.51.100.1]:tcp:80`) of virtual server `vs`
    /// changed; `up` is the real server's liveness after it, `body` the checker's words.
    RealServer {
        rs: String,
        vs: String,
        up: bool,
        body: String,
    },
    /// Virtual server `vs` gained (`up`) or lost its quorum; `body` from [`quorum_body`].
    VirtualServer { vs: String, up: bool, body: String },
}

fn up_down(up: bool) -> &'static str {
    if up {
        "UP"
    } else {
        "DOWN"
    }
}

/// keepalived's subject word and body for an instance or group state; `None` for a state it
/// sends no mail for.
fn vrrp_words(state: NotifyState, group: bool) -> Option<(&'static str, &'static str)> {
    Some(match (state, group) {
        (NotifyState::Master, false) => (
            "Entering MASTER state",
            "=> VRRP Instance is now owning VRRP VIPs <=",
        ),
        (NotifyState::Backup, false) => (
            "Entering BACKUP state",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        ),
        (NotifyState::Fault, false) => (
            "Entering FAULT state",
            "=> VRRP Instance is no longer owning VRRP VIPs <=",
        ),
        (NotifyState::Stop, false) => ("Stopping", "=> VRRP Instance stopping <="),
        (NotifyState::Master, true) => (
            "Entering MASTER state",
            "=> All VRRP group instances are now in MASTER state <=",
        ),
        (NotifyState::Backup, true) => (
            "Entering BACKUP state",
            "=> All VRRP group instances are now in BACKUP state <=",
        ),
        (NotifyState::Fault, true) => (
            "Entering FAULT state",
            "=> All VRRP group instances are now in FAULT state <=",
        ),
        (NotifyState::Stop, true) => (
            "Stopping",
            "=> All VRRP group instances are now stopping <=",
        ),
        (NotifyState::Deleted, _) => return None,
    })
}

impl Alert {
    /// `[ROUTER_ID] …`, as keepalived words each kind.
    pub fn subject(&self, router_id: &str) -> Option<String> {
        Some(match self {
            Alert::Instance { name, state } => {
                let (s, _) = vrrp_words(*state, false)?;
                format!("[{router_id}] VRRP Instance {name} - {s}")
            }
            Alert::Group { name, state } => {
                let (s, _) = vrrp_words(*state, true)?;
                format!("[{router_id}] VRRP Group {name} - {s}")
            }
            Alert::RealServer { rs, vs, up, .. } => format!(
                "[{router_id}] Realserver {rs} of virtual server {vs} - {}",
                up_down(*up)
            ),
            Alert::VirtualServer { vs, up, .. } => {
                format!("[{router_id}] Virtualserver {vs} - {}", up_down(*up))
            }
        })
    }

    /// The one body line.
    pub fn body(&self) -> Option<String> {
        match self {
            Alert::Instance { state, .. } => vrrp_words(*state, false).map(|w| w.1.to_string()),
            Alert::Group { state, .. } => vrrp_words(*state, true).map(|w| w.1.to_string()),
            Alert::RealServer { body, .. } | Alert::VirtualServer { body, .. } => {
                Some(body.clone())
            }
        }
    }
}

/// The body of a checker's transition, by checker keyword, as keepalived 2.2.7's checkers
/// word it (`reason`: why an SMTP_CHECK failed, which keepalived puts in its body). `None`
/// for checkers that send no mail (FILE_CHECK, BFD_CHECK).
pub fn checker_body(kind: &str, up: bool, reason: &str) -> Option<String> {
    let ok = if up { "succeed" } else { "failed" };
    Some(match kind {
        "TCP_CHECK" => format!("=> TCP CHECK {ok} on service <="),
        "UDP_CHECK" => format!("=> UDP CHECK {ok} on service <="),
        "PING_CHECK" | "ICMP_CHECK" => format!("=> ICMP CHECK {ok} on service <="),
        "DNS_CHECK" => format!("=> DNS_CHECK: {ok} on service <="),
        "MISC_CHECK" => format!("=> MISC CHECK {ok} on service <="),
        "HTTP_GET" | "SSL_GET" if up => "=> CHECK succeed on service <=".into(),
        "HTTP_GET" | "SSL_GET" => "=> CHECK failed on service : HTTP request failed <=".into(),
        "SMTP_CHECK" if up => "=> CHECK succeed on service <=".into(),
        "SMTP_CHECK" => format!("=> CHECK failed on service : {reason} <="),
        _ => return None,
    })
}

/// A virtual server's quorum body: `=> Lost quorum 2+0=2 <= 1 <=` — keepalived's format
/// (quorum, hysteresis, the threshold crossed, the live weight), `+` in both directions.
/// `init`: the state it started with rather than a change.
pub fn quorum_body(up: bool, init: bool, quorum: u32, hysteresis: u32, live: u64) -> String {
    let what = match (up, init) {
        (true, true) => "Starting with quorum up",
        (true, false) => "Gained quorum",
        (false, true) => "Starting with quorum down",
        (false, false) => "Lost quorum",
    };
    // Gaining crosses quorum + hysteresis, losing quorum - hysteresis (keepalived computes
    // the threshold from the state before the change; a start counts as "was down").
    let (q, h) = (i64::from(quorum), i64::from(hysteresis));
    let threshold = if up || init { q + h } else { q - h };
    format!("=> {what} {quorum}+{hysteresis}={threshold} <= {live} <=")
}

/// The message as keepalived sends it after `DATA` (without the final `.` line): its body
/// line is followed by an empty line (keepalived ends the data with `\r\n.\r\n`).
pub fn render(date: &str, from: &str, subject: &str, to: &[String], body: &str) -> String {
    format!(
        "Date: {date}\r\nFrom: {from}\r\nSubject: {subject}\r\nX-Mailer: Keepalived\r\nTo: {}\r\n\r\n{body}\r\n\r\n",
        to.join(", ")
    )
}

/// Broken-down local time, as `localtime_r` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    /// 0..=11.
    pub month: u32,
    pub day: u32,
    /// 0 = Sunday.
    pub weekday: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// Seconds east of UTC.
    pub utc_offset: i64,
}

/// RFC 5322 date as keepalived writes it (`%a, %d %b %Y %H:%M:%S %z`).
pub fn date(t: &LocalTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let sign = if t.utc_offset < 0 { '-' } else { '+' };
    let off = t.utc_offset.unsigned_abs() / 60;
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        DAYS[t.weekday as usize % 7],
        t.day,
        MONTHS[t.month as usize % 12],
        t.year,
        t.hour,
        t.minute,
        t.second,
        off / 60,
        off % 60
    )
}

/// The current local time.
pub fn now() -> LocalTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are valid for the
    // call, and localtime_r (unlike localtime) keeps no pointer to them.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    LocalTime {
        year: tm.tm_year + 1900,
        month: tm.tm_mon as u32,
        day: tm.tm_mday as u32,
        weekday: tm.tm_wday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        utc_offset: tm.tm_gmtoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message keepalived 2.2.7 sent to the lab's sink, byte for byte (the DATA part).
    #[test]
    fn vrrp_message_as_keepalived_sent_it() {
        let a = Alert::Instance {
            name: "VI_51".into(),
            state: NotifyState::Master,
        };
        let t = LocalTime {
            year: 2026,
            month: 11,
            day: 2,
            weekday: 3,
            hour: 15,
            minute: 21,
            second: 24,
            utc_offset: 0,
        };
        let msg = render(
            &date(&t),
            "vrrp@example.com",
            &a.subject("rid_a").unwrap(),
            &["ops@example.com".into(), "noc@example.org".into()],
            &a.body().unwrap(),
        );
        assert_eq!(
            msg,
            "Date: Wed, 02 Dec 2026 15:21:24 +0000\r\nFrom: vrrp@example.com\r\n\
             Subject: [rid_a] VRRP Instance VI_51 - Entering MASTER state\r\n\
             X-Mailer: Keepalived\r\nTo: ops@example.com, noc@example.org\r\n\r\n\
             => VRRP Instance is now owning VRRP VIPs <=\r\n\r\n"
        );
    }

    #[test]
    fn subjects_and_bodies() {
        let g = Alert::Group {
            name: "G1".into(),
            state: NotifyState::Backup,
        };
        assert_eq!(
            g.subject("vm").unwrap(),
            "[vm] VRRP Group G1 - Entering BACKUP state"
        );
        assert_eq!(
            g.body().unwrap(),
            "=> All VRRP group instances are now in BACKUP state <="
        );
        let f = Alert::Instance {
            name: "VI_1".into(),
            state: NotifyState::Fault,
        };
        assert_eq!(
            f.subject("R").unwrap(),
            "[R] VRRP Instance VI_1 - Entering FAULT state"
        );
        assert_eq!(
            f.body().unwrap(),
            "=> VRRP Instance is no longer owning VRRP VIPs <="
        );
        let d = Alert::Instance {
            name: "VI_1".into(),
            state: NotifyState::Deleted,
        };
        assert_eq!(d.subject("R"), None);
        let rs = Alert::RealServer {
            rs: "[198.51.100.1]:tcp:80".into(),
            vs: "[192.0.2.100]:tcp:80".into(),
            up: false,
            body: checker_body("TCP_CHECK", false, "").unwrap(),
        };
        assert_eq!(
            rs.subject("lb").unwrap(),
            "[lb] Realserver [198.51.100.1]:tcp:80 of virtual server [192.0.2.100]:tcp:80 - DOWN"
        );
        assert_eq!(rs.body().unwrap(), "=> TCP CHECK failed on service <=");
        let vs = Alert::VirtualServer {
            vs: "[192.0.2.100]:tcp:80".into(),
            up: true,
            body: quorum_body(true, false, 2, 1, 3),
        };
        assert_eq!(
            vs.subject("lb").unwrap(),
            "[lb] Virtualserver [192.0.2.100]:tcp:80 - UP"
        );
        assert_eq!(vs.body().unwrap(), "=> Gained quorum 2+1=3 <= 3 <=");
    }

    #[test]
    fn checker_bodies() {
        let b = |k, up| checker_body(k, up, "Connection timeout to server x");
        assert_eq!(
            b("TCP_CHECK", true).unwrap(),
            "=> TCP CHECK succeed on service <="
        );
        assert_eq!(
            b("UDP_CHECK", false).unwrap(),
            "=> UDP CHECK failed on service <="
        );
        assert_eq!(
            b("PING_CHECK", false).unwrap(),
            "=> ICMP CHECK failed on service <="
        );
        assert_eq!(
            b("DNS_CHECK", true).unwrap(),
            "=> DNS_CHECK: succeed on service <="
        );
        assert_eq!(
            b("MISC_CHECK", false).unwrap(),
            "=> MISC CHECK failed on service <="
        );
        assert_eq!(
            b("HTTP_GET", true).unwrap(),
            "=> CHECK succeed on service <="
        );
        assert_eq!(
            b("SSL_GET", false).unwrap(),
            "=> CHECK failed on service : HTTP request failed <="
        );
        assert_eq!(
            b("SMTP_CHECK", false).unwrap(),
            "=> CHECK failed on service : Connection timeout to server x <="
        );
        assert_eq!(b("FILE_CHECK", false), None);
    }

    #[test]
    fn quorum_bodies() {
        assert_eq!(
            quorum_body(false, false, 2, 1, 0),
            "=> Lost quorum 2+1=1 <= 0 <="
        );
        assert_eq!(
            quorum_body(true, false, 2, 0, 2),
            "=> Gained quorum 2+0=2 <= 2 <="
        );
        assert_eq!(
            quorum_body(false, true, 3, 1, 1),
            "=> Starting with quorum down 3+1=4 <= 1 <="
        );
    }

    #[test]
    fn dates() {
        let t = LocalTime {
            year: 2024,
            month: 0,
            day: 7,
            weekday: 0,
            hour: 3,
            minute: 4,
            second: 5,
            utc_offset: -(5 * 3600 + 30 * 60),
        };
        assert_eq!(date(&t), "Sun, 07 Jan 2024 03:04:05 -0530");
        let n = date(&now());
        assert_eq!(n.len(), "Sun, 07 Jan 2024 03:04:05 -0530".len(), "{n}");
    }
}
