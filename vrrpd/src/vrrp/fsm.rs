//! The VRRP state machine (RFC 5798 §6) with keepalived's behaviours, sans-IO.
//!
//! Time comes in as an argument (`now`: time since an arbitrary epoch, microsecond precision);
//! the machine never touches a socket, a clock or a thread. The driver feeds [`Input`]s, executes
//! the [`Action`]s pushed to `out` in order, and wakes the machine at [`Instance::poll_timeout`].

use std::net::IpAddr;
use std::time::Duration;

use super::packet::{Advert, Auth, Version};

/// RFC 5798 state (keepalived's FAULT arrives with trackers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

/// Static configuration of one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub vrid: u8,
    pub version: Version,
    /// Base priority 1..=255 (255: address owner).
    pub priority: u8,
    /// Advertisement interval in centiseconds.
    pub advert_int: u16,
    pub preempt: bool,
    /// Delay before a Backup preempts a lower-priority Master (keepalived `preempt_delay`).
    pub preempt_delay: Duration,
    /// `state MASTER` in keepalived.conf: start as Master (only immediately for priority 255).
    pub start_master: bool,
    /// The primary address adverts are sent from; breaks equal-priority ties.
    pub primary_addr: IpAddr,
    /// The virtual addresses carried in adverts.
    pub vips: Vec<IpAddr>,
    pub auth: Auth,
}

/// Inputs to the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The instance starts (interface up, config loaded).
    Startup,
    /// A validated advert for our VRID from `src`.
    Advert { src: IpAddr, advert: Advert },
    /// The deadline from `poll_timeout` passed.
    Timeout,
    /// Graceful stop: a Master sends priority 0 and releases its addresses.
    Shutdown,
}

/// Why the driver should announce the addresses at layer 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// Just became Master: the `garp_master_*` schedule.
    BecameMaster,
    /// A Master heard a lower-priority advert (split brain healing): `garp_lower_prio_*`.
    LowerPriorityHeard,
}

/// Outputs, executed by the driver in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Transmit this advert (to the multicast group or the unicast peers).
    Send(Advert),
    /// The machine entered this state.
    Transition { from: State, to: State },
    /// Add the virtual addresses (and routes/rules) to the interface.
    AddVips,
    /// Remove the virtual addresses.
    RemoveVips,
    /// Announce the addresses (gratuitous ARP / unsolicited NA).
    Announce(Announce),
}
