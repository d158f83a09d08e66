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
    kind: Kind,
    name: String,
    no_faults: bool,
    last: Option<NotifyState>,
}

impl StateMail {
    /// `no_faults`: `no_email_faults`.
    pub fn new(mailer: Mailer, kind: Kind, name: &str, no_faults: bool) -> Self {
        Self {
            mailer,
            kind,
            name: name.to_string(),
            no_faults,
            last: None,
        }
    }

    /// The instance (group) entered `state`.
    pub fn transition(&mut self, state: NotifyState) {
        match state {
            // keepalived 2.2.7 exits before its "Stopping" mail leaves.
            NotifyState::Stop | NotifyState::Deleted => return,
            NotifyState::Fault if self.no_faults => return,
            _ if self.last == Some(state) => return,
            _ => {}
        }
        self.last = Some(state);
        let name = self.name.clone();
        self.mailer.send(&match self.kind {
            Kind::Instance => Alert::Instance { name, state },
            Kind::Group => Alert::Group { name, state },
        });
    }
}
