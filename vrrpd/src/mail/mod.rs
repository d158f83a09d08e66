//! Email alerts (`smtp_alert`), as keepalived 2.2.7 sends them.
//!
//! - [`message`]: what a mail says (subjects, bodies, headers), pure functions;
//! - [`smtp`]: the SMTP dialogue keepalived speaks (`HELO`, no TLS), sans-IO;
//! - [`Mailer`]: one task per running configuration delivering queued alerts one at a time
//!   over a fresh connection each, every step bounded by `smtp_connect_timeout`. Queueing
//!   never waits: the VRRP actors and the checkers hand an alert over and go on; a full
//!   queue drops it (counted), a failed delivery is logged and counted, never fatal.
//!
//! Which events mail, measured with keepalived 2.2.7 against an SMTP sink:
//! - an instance entering MASTER, BACKUP (also at start-up) or FAULT, once per state
//!   ([`StateMail`] skips a state mailed last; `no_email_faults` skips FAULT);
//! - a sync group whose members all reached a state;
//! - keepalived also starts a "Stopping" mail at shutdown but exits before sending it (the
//!   sink sees a connection and nothing else), so vrrpd sends none;
//! - checkers (keepalived's checker needs IPVS, so from its source and strings): a checker
//!   going down or up mails its real server (`no_checker_emails`: only when the real server
//!   itself changes), a virtual server gaining or losing its quorum mails the virtual server.

pub mod message;
mod sender;
pub mod smtp;

pub use message::Alert;
pub use sender::{MailStats, Mailer, Settings};

use crate::notify::{Kind, NotifyState};

/// The alerts of one instance or sync group: one mail per state entered, as keepalived's
/// `last_email_state`.
pub struct StateMail {
    mailer: Mailer,
    rule: StateRule,
}

/// Which states mail (sans-IO half of [`StateMail`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRule {
    kind: Kind,
    name: String,
    no_faults: bool,
    last: Option<NotifyState>,
}

impl StateRule {
    /// `no_faults`: `no_email_faults`.
    pub fn new(kind: Kind, name: &str, no_faults: bool) -> Self {
        Self {
            kind,
            name: name.to_string(),
            no_faults,
            last: None,
        }
    }

    /// The alert for entering `state`, if it mails.
    pub fn on_state(&mut self, state: NotifyState) -> Option<Alert> {
        match state {
            // keepalived 2.2.7 exits before its "Stopping" mail leaves.
            NotifyState::Stop | NotifyState::Deleted => return None,
            NotifyState::Fault if self.no_faults => return None,
            _ if self.last == Some(state) => return None,
            _ => {}
        }
        self.last = Some(state);
        let name = self.name.clone();
        Some(match self.kind {
            Kind::Instance => Alert::Instance { name, state },
            Kind::Group => Alert::Group { name, state },
        })
    }
}

impl StateMail {
    /// `no_faults`: `no_email_faults`.
    pub fn new(mailer: Mailer, kind: Kind, name: &str, no_faults: bool) -> Self {
        Self {
            mailer,
            rule: StateRule::new(kind, name, no_faults),
        }
    }

    /// The instance (group) entered `state`.
    pub fn transition(&mut self, state: NotifyState) {
        if let Some(a) = self.rule.on_state(state) {
            self.mailer.send(&a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(rule: &mut StateRule, seq: &[NotifyState]) -> Vec<String> {
        seq.iter()
            .filter_map(|s| rule.on_state(*s))
            .filter_map(|a| a.subject("R"))
            .collect()
    }

    /// As measured with keepalived 2.2.7: with `no_email_faults`, BACKUP → FAULT → BACKUP
    /// mails the first BACKUP only (the second is the state mailed last); no mail on STOP.
    #[test]
    fn one_mail_per_state_entered() {
        use NotifyState::*;
        let mut r = StateRule::new(Kind::Instance, "VI_1", true);
        assert_eq!(
            states(&mut r, &[Backup, Fault, Backup, Master, Stop]),
            [
                "[R] VRRP Instance VI_1 - Entering BACKUP state",
                "[R] VRRP Instance VI_1 - Entering MASTER state",
            ]
        );
        let mut r = StateRule::new(Kind::Group, "G", false);
        assert_eq!(
            states(&mut r, &[Backup, Master, Fault, Backup, Stop]),
            [
                "[R] VRRP Group G - Entering BACKUP state",
                "[R] VRRP Group G - Entering MASTER state",
                "[R] VRRP Group G - Entering FAULT state",
                "[R] VRRP Group G - Entering BACKUP state",
            ]
        );
    }
}
