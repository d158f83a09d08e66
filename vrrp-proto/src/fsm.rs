//! The VRRP state machine (RFC 5798 §6) with keepalived's behaviours, sans-IO.
//!
//! Time comes in as an argument (`now`: time since an arbitrary epoch, microsecond precision);
//! the machine never touches a socket, a clock or a thread. The driver feeds [`Input`]s, executes
//! the [`Action`]s pushed to `out` in order, and wakes the machine at [`Instance::poll_timeout`].

use std::net::IpAddr;
use std::time::Duration;

use super::packet::{Advert, Auth, Version};

/// RFC 5798 state plus keepalived's FAULT (interface down or a failing weight-0 tracker).
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
    /// keepalived `lower_prio_no_advert`: a Master hearing a lower priority does not answer
    /// with an immediate advert (it still announces).
    pub lower_prio_no_advert: bool,
    /// A Master that hears a better one sends one advert at its own priority before stepping
    /// down (see [`Instance`]): keepalived's `higher_prio_send_advert`, on by default here so
    /// that a split brain heals in either order; off under `strict_mode` (RFC packets only,
    /// as keepalived resets `higher_prio_send_advert` there).
    pub answer_before_stepping_down: bool,
    /// keepalived `down_timer_adverts` (default 3, the RFCs' value): Master_Down_Interval is
    /// this many Master_Adver_Intervals plus Skew_Time.
    pub down_timer_adverts: u8,
    /// keepalived `skip_check_adv_addr`: a Backup does not check the address list of adverts
    /// from the Master it already follows (see [`Instance::check_addresses`]).
    pub skip_check_adv_addr: bool,
}

/// Inputs to the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The instance starts (interface up, config loaded).
    Startup,
    /// The instance starts again after a configuration reload, in the role it had: a Master
    /// stays Master (its addresses are still in place; it adverts and announces at once), any
    /// other state starts as [`Input::Startup`] does.
    Resume { master: bool },
    /// A validated advert for our VRID from `src`.
    Advert { src: IpAddr, advert: Advert },
    /// The deadline from `poll_timeout` passed.
    Timeout,
    /// Graceful stop: a Master sends priority 0 and releases its addresses.
    Shutdown,
    /// A fault (interface down, a failing weight-0 tracker): keepalived's FAULT state. A Master
    /// sends a priority-0 advert and releases its addresses; nothing is sent while in FAULT.
    Fault,
    /// Every fault is gone: leave FAULT for Backup (normal down timer), or Master at once for
    /// the address owner (priority 255). Ignored in any other state.
    FaultCleared,
    /// Sync group: another member became Master, so a Backup follows at once (keepalived's
    /// `vrrp_sync_master`). Ignored in any other state.
    SyncMaster,
    /// Sync group: another member fell back to Backup, so a Master follows (keepalived's
    /// `vrrp_sync_backup`): release the addresses, Backup with a fresh down timer, no advert
    /// (the peer's group is taking over). Ignored in any other state.
    SyncBackup,
    /// Someone else deleted a tracked address, route or rule of a Master. keepalived 2.2.7
    /// (measured): a priority-0 advert, everything released, Backup with the down timer at
    /// Skew_Time, as if it had heard that advert itself; without a better peer it is Master
    /// again a Skew_Time later with everything reinstated. Ignored in any other state.
    Lost,
    /// Sync group: our down timer fired but not every other member is ready for Master
    /// (keepalived's `vrrp_sync_can_goto_master`): stay Backup and re-arm the down timer.
    SyncHold,
}

/// Why an advert for our VRID is not ours to follow: its address list differs from ours.
///
/// RFC 3768 §7.1 and RFC 5798 §7.1 let a receiver check the list and, when it differs, say the
/// receiver MUST drop the packet unless it comes from the address owner (priority 255).
/// keepalived 2.2.7 (`vrrp_check_packet`) checks every advert and drops a mismatch whatever its
/// priority, 255 and 0 included, counting it as an Address List error; so do we. An owner
/// with other addresses is another router misconfigured with our VRID, not ours to follow:
/// following it would hand our addresses to nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressListError {
    /// The advert carries `got` addresses where we have `want` (checked first, as keepalived:
    /// "received an unexpected ip number count").
    #[error("advert carries {got} addresses, we have {want}")]
    Count { got: usize, want: usize },
    /// One of our addresses is not in the advert (the first such, as keepalived logs it).
    #[error("address {0} not present in the advert")]
    Missing(IpAddr),
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

/// Centiseconds to a [`Duration`].
fn cs(centis: u16) -> Duration {
    Duration::from_millis(u64::from(centis) * 10)
}

/// Skew_Time for `priority`, exact to the nanosecond.
///
/// - v3 (RFC 5798 §6.1): `((256 - Priority) * Master_Adver_Interval) / 256`.
/// - v2 (RFC 3768 §6.1): `(256 - Priority) / 256` seconds, whatever the advert interval; keepalived's
///   `VRRP_TIMER_SKEW` does the same for v2.
///
/// keepalived floors to whole microseconds; we keep nanoseconds so e.g. v3, 10 cs, priority 100
/// gives exactly 60.9375 ms (keepalived: 60.937 ms). The difference is below a microsecond.
pub fn skew_time(version: Version, priority: u8, master_adver_int_cs: u16) -> Duration {
    let weight = 256 - u64::from(priority);
    let unit_ns = match version {
        Version::V3 => u64::from(master_adver_int_cs) * 10_000_000,
        Version::V2 => 1_000_000_000,
    };
    Duration::from_nanos(weight * unit_ns / 256)
}

/// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time (RFC 5798 §6.1).
pub fn master_down_interval(version: Version, priority: u8, master_adver_int_cs: u16) -> Duration {
    down_interval(3, version, priority, master_adver_int_cs)
}

/// Master_Down_Interval with keepalived's `down_timer_adverts` in place of the RFCs' 3.
fn down_interval(adverts: u8, version: Version, priority: u8, adver_int_cs: u16) -> Duration {
    u32::from(adverts) * cs(adver_int_cs) + skew_time(version, priority, adver_int_cs)
}

/// One VRRP instance (one VRID on one interface), as a pure state machine.
///
/// Behaviour beyond the RFC, after keepalived 2.x (`vrrp.c`, `vrrp_scheduler.c`):
/// - **Startup.** Priority 255 (address owner) becomes Master at once (§6.4.1). Every other
///   instance enters Backup with Master_Down_Timer = Master_Down_Interval, *including* one
///   configured `state MASTER` (`start_master`): keepalived 2.x only fast-tracks `state MASTER`
///   for the owner (`vrrp_init_state`), so a priority < 255 `state MASTER` instance takes over
///   after the down interval unless it hears a Master with higher (or equal) priority first.
/// - **preempt_delay.** A preempt timer is armed at startup (`startup + preempt_delay`). While it
///   runs, a Backup treats lower-priority adverts like higher ones (it resets its down timer), so
///   it does not preempt. An advert with priority >= ours clears the timer; the next
///   lower-priority advert re-arms it (`now + preempt_delay`). Once it has expired, lower-priority
///   adverts are ignored and the down timer takes us to Master.
/// - **Master hears a lower priority** (split brain healing): it announces (GARP) and, unless
///   `lower_prio_no_advert`, sends an advert at once so the other side steps down quickly. The
///   advert timer is not reset (keepalived's `vrrp_state_master_rx`).
/// - **Timers in v2.** Master_Adver_Interval stays the configured interval (v2 adverts carry it
///   but it must match ours); Skew_Time is `(256 - Priority) / 256` s as in RFC 3768.
#[derive(Debug, Clone)]
pub struct Instance {
    cfg: Config,
    state: State,
    /// Effective priority (base plus tracker deltas, computed by the caller).
    priority: u8,
    /// Master_Adver_Interval in centiseconds (learned from v3 adverts in Backup).
    master_adver_int: u16,
    /// Source address of the Master we last accepted (ours while Master).
    master_addr: Option<IpAddr>,
    /// Adver_Timer (Master) or Master_Down_Timer (Backup) deadline.
    deadline: Option<Duration>,
    /// keepalived's `preempt_time`: until then a Backup does not preempt.
    preempt_time: Option<Duration>,
}

impl Instance {
    pub fn new(cfg: Config) -> Self {
        Self {
            priority: cfg.priority,
            master_adver_int: cfg.advert_int,
            state: State::Initialize,
            master_addr: None,
            deadline: None,
            preempt_time: None,
            cfg,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The source address became known (an instance waits in FAULT until its interface has
    /// one): it breaks priority ties from now on.
    pub fn set_primary_addr(&mut self, addr: IpAddr) {
        self.cfg.primary_addr = addr;
    }

    /// Effective priority, as carried in our adverts.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// Master_Adver_Interval in centiseconds.
    pub fn master_adver_int(&self) -> u16 {
        self.master_adver_int
    }

    /// Skew_Time with the current priority and Master_Adver_Interval.
    pub fn skew_time(&self) -> Duration {
        skew_time(self.cfg.version, self.priority, self.master_adver_int)
    }

    /// Master_Down_Interval with the current priority and Master_Adver_Interval.
    pub fn master_down_interval(&self) -> Duration {
        down_interval(
            self.cfg.down_timer_adverts,
            self.cfg.version,
            self.priority,
            self.master_adver_int,
        )
    }

    /// The current Master as far as we know (ourselves while Master).
    pub fn master_addr(&self) -> Option<IpAddr> {
        self.master_addr
    }

    /// Absolute deadline of the running timer, on the same clock as `now`.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.deadline
    }

    /// The receive check on an advert's address list (see [`AddressListError`]): the driver
    /// calls it to count and log a mismatch, and [`Self::handle`] discards such an advert
    /// whoever feeds it. Nothing is allocated: it runs for every advert.
    ///
    /// As keepalived 2.2.7: a Master checks every advert; a Backup with `skip_check_adv_addr`
    /// skips adverts from the Master it follows (the source address it last accepted).
    pub fn check_addresses(&self, src: IpAddr, advert: &Advert) -> Result<(), AddressListError> {
        if self.cfg.skip_check_adv_addr
            && self.state == State::Backup
            && self.master_addr == Some(src)
        {
            return Ok(());
        }
        let ours = &self.cfg.vips;
        if advert.addrs.len() != ours.len() {
            return Err(AddressListError::Count {
                got: advert.addrs.len(),
                want: ours.len(),
            });
        }
        match ours.iter().find(|a| !advert.addrs.contains(a)) {
            Some(a) => Err(AddressListError::Missing(*a)),
            None => Ok(()),
        }
    }

    /// Feed one input; the resulting actions are appended to `out`, to be executed in order.
    pub fn handle(&mut self, now: Duration, input: Input, out: &mut Vec<Action>) {
        match (self.state, input) {
            // Another router's list on our VRID: dropped before any state looks at it.
            (State::Backup | State::Master, Input::Advert { src, ref advert })
                if self.check_addresses(src, advert).is_err() => {}
            (State::Initialize, Input::Startup) => self.startup(now, out),
            (State::Initialize, Input::Resume { master: true }) => self.become_master(now, out),
            (State::Initialize, Input::Resume { master: false }) => self.startup(now, out),
            (State::Backup, Input::Advert { src, advert }) => self.backup_rx(now, src, &advert),
            (State::Master, Input::Advert { src, advert }) => {
                self.master_rx(now, src, &advert, out)
            }
            // Early wakes (before the deadline) fall through to the no-op arm.
            (State::Backup, Input::Timeout) if self.timer_due(now) => {
                // §6.4.2: "If the Master_Down_Timer fires" -> Master.
                self.become_master(now, out);
            }
            (State::Master, Input::Timeout) if self.timer_due(now) => {
                // §6.4.3: "If the Adver_Timer fires": send an ADVERTISEMENT, reset the timer.
                out.push(Action::Send(self.advert(self.priority)));
                self.deadline = Some(now + cs(self.cfg.advert_int));
            }
            (State::Master, Input::Shutdown) => {
                // §6.4.3: "If a Shutdown event is received": send priority 0, release, Initialize.
                out.push(Action::Send(self.advert(0)));
                out.push(Action::RemoveVips);
                self.enter(State::Initialize, out);
            }
            (State::Backup | State::Fault, Input::Shutdown) => {
                // §6.4.2: Backup just cancels its timer and goes to Initialize.
                self.enter(State::Initialize, out);
            }
            (State::Master, Input::Fault) => {
                // keepalived (`down_instance` -> `vrrp_state_leave_master` with advF): tell the
                // others with priority 0 so a Backup takes over after Skew_Time, release.
                // keepalived 2.2.7 sends that advert twice, back to back (captured in
                // tests/tests/fault_reference.rs); so do we, so one lost frame costs nothing.
                out.push(Action::Send(self.advert(0)));
                out.push(Action::Send(self.advert(0)));
                out.push(Action::RemoveVips);
                self.enter_fault(out);
            }
            (State::Initialize | State::Backup, Input::Fault) => self.enter_fault(out),
            (State::Fault, Input::FaultCleared) => {
                // keepalived `try_up_instance`: the owner goes Master, everyone else Backup
                // with a fresh Master_Down_Timer (the preempt delay is armed again too).
                self.startup(now, out);
            }
            (State::Backup, Input::SyncMaster) => self.become_master(now, out),
            (State::Master, Input::SyncBackup) => {
                out.push(Action::RemoveVips);
                self.master_addr = None;
                self.master_adver_int = self.cfg.advert_int;
                self.arm_down_timer(now);
                self.enter(State::Backup, out);
            }
            (State::Backup, Input::SyncHold) => self.arm_down_timer(now),
            (State::Master, Input::Lost) => {
                out.push(Action::Send(self.advert(0)));
                out.push(Action::RemoveVips);
                self.master_addr = None;
                self.master_adver_int = self.cfg.advert_int;
                self.deadline = Some(now + self.skew_time());
                self.enter(State::Backup, out);
            }
            // Not started, already started, or an advert/timer while Initialize/Fault: nothing.
            _ => {}
        }
    }

    /// Change the effective priority (base plus tracker deltas, computed by the caller; 0 is
    /// taken as 1, 0 being reserved for "releasing").
    ///
    /// keepalived semantics (measured on 2.2.7, `tests/tests/priority_reference.rs`):
    /// - A Master keeps its role and carries the new value in its next adverts (no immediate
    ///   advert); a Backup that now outranks it (with preempt) takes over as below, and the
    ///   Master steps down on hearing it.
    /// - A Backup restarts its Master_Down_Timer from now with the new Skew_Time (Skew_Time
    ///   depends on the priority). If it now outranks the Master (with preempt) it discards
    ///   the Master's adverts ("received lower priority advert - discarding"), so it takes over
    ///   one Master_Down_Interval after the change: keepalived measured 315–324 ms for
    ///   100 → 200 at 100 ms adverts (MDI 321.9 ms), not at the next advert.
    pub fn set_priority(&mut self, now: Duration, prio: u8, _out: &mut Vec<Action>) {
        let prio = prio.max(1);
        if prio == self.priority {
            return;
        }
        self.priority = prio;
        if self.state == State::Backup {
            self.arm_down_timer(now);
        }
    }

    /// §6.4.1 Initialize: "If the Startup event is received".
    fn startup(&mut self, now: Duration, out: &mut Vec<Action>) {
        self.master_adver_int = self.cfg.advert_int;
        if self.priority == 255 {
            // "If the Priority = 255 (i.e., the router owns the IPvX address(es) ...)" -> Master.
            self.become_master(now, out);
            return;
        }
        // "else ... Set Master_Adver_Interval to Advertisement_Interval, Set the
        // Master_Down_Timer to Master_Down_Interval, Transition to the {Backup} state".
        // keepalived arms the preempt delay at startup.
        if !self.cfg.preempt_delay.is_zero() {
            self.preempt_time = Some(now + self.cfg.preempt_delay);
        }
        self.master_addr = None;
        self.arm_down_timer(now);
        self.enter(State::Backup, out);
    }

    /// §6.4.2 Backup: "If an ADVERTISEMENT is received".
    fn backup_rx(&mut self, now: Duration, src: IpAddr, adv: &Advert) {
        if adv.priority == 0 {
            // "If the Priority in the ADVERTISEMENT is zero, then: Set the Master_Down_Timer to
            // Skew_Time".
            self.deadline = Some(now + self.skew_time());
            return;
        }
        // keepalived: with a preempt delay, an unarmed or still running timer also holds us back.
        let delaying =
            !self.cfg.preempt_delay.is_zero() && self.preempt_time.is_none_or(|t| t > now);
        if !self.cfg.preempt || adv.priority >= self.priority || delaying {
            // "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT is greater than
            // or equal to the local Priority, then: Set Master_Adver_Interval to Adver Interval
            // contained in the ADVERTISEMENT; Recompute the Skew_Time; Recompute the
            // Master_Down_Interval; Reset the Master_Down_Timer to Master_Down_Interval".
            // keepalived extends this to a running (or unarmed) preempt delay.
            if self.cfg.version == Version::V3 {
                self.master_adver_int = adv.max_adver_int;
            }
            self.arm_down_timer(now);
            self.master_addr = Some(src);
            if !self.cfg.preempt_delay.is_zero() {
                if adv.priority >= self.priority {
                    self.preempt_time = None;
                } else if self.preempt_time.is_none() {
                    self.preempt_time = Some(now + self.cfg.preempt_delay);
                }
            }
        }
        // "else (Priority less than local Priority and Preempt_Mode True): Discard the
        // ADVERTISEMENT" -- the running down timer will make us Master.
    }

    /// §6.4.3 Master: "If an ADVERTISEMENT is received".
    fn master_rx(&mut self, now: Duration, src: IpAddr, adv: &Advert, out: &mut Vec<Action>) {
        if adv.priority == 0 {
            // "If the Priority in the ADVERTISEMENT is zero, then: Send an ADVERTISEMENT; Reset
            // the Adver_Timer to Advertisement_Interval".
            out.push(Action::Send(self.advert(self.priority)));
            self.deadline = Some(now + cs(self.cfg.advert_int));
            return;
        }
        // "If the Priority in the ADVERTISEMENT is greater than the local Priority, or the
        // Priority is equal and the primary IPvX Address of the sender is greater than the local
        // primary IPvX Address (compared as unsigned integers in network byte order)".
        let sender_wins = adv.priority > self.priority
            || (adv.priority == self.priority && src > self.cfg.primary_addr);
        if sender_wins {
            // "Cancel Adver_Timer; Set Master_Adver_Interval to Adver Interval contained in the
            // ADVERTISEMENT; Recompute the Skew_Time; Recompute the Master_Down_Interval; Set
            // Master_Down_Timer to Master_Down_Interval; Transition to the {Backup} state".
            if self.cfg.version == Version::V3 {
                self.master_adver_int = adv.max_adver_int;
            }
            // Not in the RFC (keepalived's `higher_prio_send_advert`, on by default here): one
            // advert at our own priority on the way out. After a split brain the LAN's
            // neighbour caches point at whichever Master announced last, maybe us; the winner
            // has no reason to announce again unless it hears a lower priority, and if its
            // advert reached us before any of ours reached it, it never would: the clients
            // would stay on our MAC until their entries expire. This advert makes it announce
            // (`garp_lower_prio_*`, keepalived's too), whichever side heard the other first.
            // When the winner has just become Master it costs one advert and one burst.
            if self.cfg.answer_before_stepping_down {
                out.push(Action::Send(self.advert(self.priority)));
            }
            self.arm_down_timer(now);
            self.master_addr = Some(src);
            out.push(Action::RemoveVips);
            self.enter(State::Backup, out);
        } else if src != self.cfg.primary_addr {
            // "else: Discard ADVERTISEMENT". keepalived also re-announces and (by default)
            // answers at once so a lower-priority Master (split brain) steps down quickly.
            out.push(Action::Announce(Announce::LowerPriorityHeard));
            if !self.cfg.lower_prio_no_advert {
                out.push(Action::Send(self.advert(self.priority)));
            }
        }
    }

    /// §6.4.1 / §6.4.2 "Transition to the {Master} state": send an ADVERTISEMENT, announce the
    /// addresses, set the Adver_Timer.
    fn become_master(&mut self, now: Duration, out: &mut Vec<Action>) {
        out.push(Action::Send(self.advert(self.priority)));
        out.push(Action::AddVips);
        out.push(Action::Announce(Announce::BecameMaster));
        self.master_adver_int = self.cfg.advert_int;
        self.master_addr = Some(self.cfg.primary_addr);
        self.deadline = Some(now + cs(self.cfg.advert_int));
        self.enter(State::Master, out);
    }

    /// Master_Down_Timer = Master_Down_Interval from `now`.
    fn arm_down_timer(&mut self, now: Duration) {
        self.deadline = Some(now + self.master_down_interval());
    }

    /// FAULT: no timers, no Master known; the caller released the addresses if it held them.
    fn enter_fault(&mut self, out: &mut Vec<Action>) {
        self.deadline = None;
        self.master_addr = None;
        self.enter(State::Fault, out);
    }

    fn timer_due(&self, now: Duration) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }

    fn enter(&mut self, to: State, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        if to == State::Initialize {
            self.deadline = None;
            self.master_addr = None;
            self.preempt_time = None;
        }
        if from != to {
            out.push(Action::Transition { from, to });
        }
    }

    /// The advert that gives the instance away (priority 0, §6.4.3 Shutdown), for whoever
    /// must send it when this machine no longer can: the daemon's supervisor.
    pub fn release_advert(&self) -> Advert {
        self.advert(0)
    }

    fn advert(&self, priority: u8) -> Advert {
        Advert {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            max_adver_int: self.cfg.advert_int,
            addrs: self.cfg.vips.clone(),
            auth: match self.cfg.version {
                Version::V2 => self.cfg.auth,
                Version::V3 => Auth::None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    const LOWER_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 5));
    const HIGHER_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20));
    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
    fn ns(v: u64) -> Duration {
        Duration::from_nanos(v)
    }

    fn cfg() -> Config {
        Config {
            vrid: 51,
            version: Version::V3,
            priority: 100,
            advert_int: 10,
            preempt: true,
            preempt_delay: Duration::ZERO,
            start_master: false,
            primary_addr: ME,
            vips: vec![VIP],
            auth: Auth::None,
            lower_prio_no_advert: false,
            answer_before_stepping_down: true,
            down_timer_adverts: 3,
            skip_check_adv_addr: false,
        }
    }

    fn adv(cfg: &Config, priority: u8, max_adver_int: u16) -> Advert {
        Advert {
            version: cfg.version,
            vrid: cfg.vrid,
            priority,
            max_adver_int,
            addrs: cfg.vips.clone(),
            auth: Auth::None,
        }
    }

    fn rx(cfg: &Config, src: IpAddr, priority: u8) -> Input {
        Input::Advert {
            src,
            advert: adv(cfg, priority, cfg.advert_int),
        }
    }

    fn run(i: &mut Instance, now: Duration, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        i.handle(now, input, &mut out);
        out
    }

    fn backup(cfg: Config) -> Instance {
        let mut i = Instance::new(cfg);
        run(&mut i, Duration::ZERO, Input::Startup);
        assert_eq!(i.state(), State::Backup);
        i
    }

    /// Master since t = 360.9375 ms (its down timer fired), next advert due 100 ms later.
    fn master(cfg: Config) -> Instance {
        let mut i = backup(cfg);
        run(&mut i, ns(360_937_500), Input::Timeout);
        assert_eq!(i.state(), State::Master);
        i
    }

    fn send(i: &Instance, priority: u8) -> Action {
        Action::Send(i.advert(priority))
    }

    fn tr(from: State, to: State) -> Action {
        Action::Transition { from, to }
    }

    #[test]
    fn timer_formulas_in_microseconds() {
        // v3, 0.1 s, priority 100: 156 * 100 ms / 256 = 60.9375 ms; 3 * 100 ms + skew.
        assert_eq!(skew_time(Version::V3, 100, 10), ns(60_937_500));
        assert_eq!(master_down_interval(Version::V3, 100, 10), ns(360_937_500));
        // v3, 1 s, priority 255: 1/256 s.
        assert_eq!(skew_time(Version::V3, 255, 100), ns(3_906_250));
        // v2 skew is (256 - P) / 256 seconds whatever the interval (RFC 3768, keepalived).
        assert_eq!(skew_time(Version::V2, 100, 300), ns(609_375_000));
        assert_eq!(
            master_down_interval(Version::V2, 100, 300),
            ns(9_609_375_000)
        );
        assert_eq!(
            master_down_interval(Version::V2, 100, 100),
            ns(3_609_375_000)
        );
    }

    #[test]
    fn initialize_startup_goes_backup_with_exact_down_timer() {
        let mut i = Instance::new(cfg());
        assert_eq!(i.poll_timeout(), None);
        let out = run(&mut i, ms(5), Input::Startup);
        assert_eq!(out, vec![tr(State::Initialize, State::Backup)]);
        assert_eq!(i.poll_timeout(), Some(ms(5) + ns(360_937_500)));
        assert_eq!(i.master_down_interval(), ns(360_937_500));
        assert_eq!(i.skew_time(), ns(60_937_500));
        assert_eq!(i.master_addr(), None);
    }

    #[test]
    fn resume_after_reload_keeps_the_role() {
        // A Master adverts at once and keeps its addresses (adding them again is a no-op).
        let mut m = Instance::new(cfg());
        let out = run(&mut m, ms(5), Input::Resume { master: true });
        assert_eq!(
            out,
            vec![
                send(&m, 100),
                Action::AddVips,
                Action::Announce(Announce::BecameMaster),
                tr(State::Initialize, State::Master)
            ]
        );
        assert_eq!(m.poll_timeout(), Some(ms(105)));
        // Anything else starts as Backup with a full down timer.
        let mut b = Instance::new(cfg());
        let out = run(&mut b, ms(5), Input::Resume { master: false });
        assert_eq!(out, vec![tr(State::Initialize, State::Backup)]);
        assert_eq!(b.poll_timeout(), Some(ms(5) + ns(360_937_500)));
        // Only from Initialize.
        assert!(run(&mut b, ms(6), Input::Resume { master: true }).is_empty());
        assert_eq!(b.state(), State::Backup);
    }

    #[test]
    fn initialize_owner_goes_master_at_once() {
        let mut i = Instance::new(Config {
            priority: 255,
            ..cfg()
        });
        let out = run(&mut i, ms(5), Input::Startup);
        assert_eq!(
            out,
            vec![
                send(&i, 255),
                Action::AddVips,
                Action::Announce(Announce::BecameMaster),
                tr(State::Initialize, State::Master)
            ]
        );
        assert_eq!(i.poll_timeout(), Some(ms(105)));
        assert_eq!(i.master_addr(), Some(ME));
    }

    #[test]
    fn initialize_state_master_below_255_starts_backup_like_keepalived() {
        let mut i = Instance::new(Config {
            start_master: true,
            ..cfg()
        });
        let out = run(&mut i, Duration::ZERO, Input::Startup);
        assert_eq!(out, vec![tr(State::Initialize, State::Backup)]);
        assert_eq!(i.poll_timeout(), Some(ns(360_937_500)));
    }

    #[test]
    fn initialize_ignores_everything_but_startup() {
        let c = cfg();
        for input in [
            rx(&c, HIGHER_ADDR, 200),
            rx(&c, LOWER_ADDR, 0),
            Input::Timeout,
            Input::Shutdown,
        ] {
            let mut i = Instance::new(c.clone());
            assert!(run(&mut i, ms(1), input).is_empty());
            assert_eq!(i.state(), State::Initialize);
            assert_eq!(i.poll_timeout(), None);
        }
    }

    #[test]
    fn startup_twice_is_ignored() {
        let mut i = backup(cfg());
        assert!(run(&mut i, ms(50), Input::Startup).is_empty());
        assert_eq!(i.poll_timeout(), Some(ns(360_937_500)));
    }

    /// Backup × advert: (sender priority, sender address, expected deadline after rx at 50 ms).
    #[test]
    fn backup_advert_table() {
        let c = cfg();
        let now = ms(50);
        let reset = Some(now + ns(360_937_500));
        let untouched = Some(ns(360_937_500));
        let cases: [(u8, IpAddr, Option<Duration>, Option<IpAddr>); 6] = [
            (200, LOWER_ADDR, reset, Some(LOWER_ADDR)), // higher priority: reset
            (100, LOWER_ADDR, reset, Some(LOWER_ADDR)), // equal priority (any address): reset
            (100, HIGHER_ADDR, reset, Some(HIGHER_ADDR)),
            (99, HIGHER_ADDR, untouched, None), // lower + preempt: discarded
            (1, LOWER_ADDR, untouched, None),
            (0, HIGHER_ADDR, Some(now + ns(60_937_500)), None), // priority 0: Skew_Time
        ];
        for (prio, src, deadline, master) in cases {
            let mut i = backup(c.clone());
            assert!(
                run(&mut i, now, rx(&c, src, prio)).is_empty(),
                "prio {prio}"
            );
            assert_eq!(i.state(), State::Backup);
            assert_eq!(i.poll_timeout(), deadline, "prio {prio}");
            assert_eq!(i.master_addr(), master, "prio {prio}");
        }
    }

    #[test]
    fn backup_nopreempt_accepts_lower_priority() {
        let c = Config {
            preempt: false,
            ..cfg()
        };
        let mut i = backup(c.clone());
        assert!(run(&mut i, ms(50), rx(&c, LOWER_ADDR, 1)).is_empty());
        assert_eq!(i.poll_timeout(), Some(ms(50) + ns(360_937_500)));
    }

    #[test]
    fn backup_learns_master_adver_int_from_v3_only() {
        let c = cfg();
        let mut i = backup(c.clone());
        let input = Input::Advert {
            src: HIGHER_ADDR,
            advert: adv(&c, 200, 100),
        };
        run(&mut i, ms(50), input.clone());
        assert_eq!(i.master_adver_int(), 100);
        // 3 s + 156/256 s
        assert_eq!(i.poll_timeout(), Some(ms(50) + ns(3_609_375_000)));

        let c2 = Config {
            version: Version::V2,
            advert_int: 100,
            ..cfg()
        };
        let mut i = backup(c2.clone());
        let input = Input::Advert {
            src: HIGHER_ADDR,
            advert: Advert {
                version: Version::V2,
                ..adv(&c2, 200, 300)
            },
        };
        run(&mut i, ms(50), input);
        assert_eq!(i.master_adver_int(), 100);
        assert_eq!(i.poll_timeout(), Some(ms(50) + ns(3_609_375_000)));
    }

    #[test]
    fn backup_timeout_table() {
        // Early wake: nothing.
        let mut i = backup(cfg());
        assert!(run(&mut i, ns(360_937_499), Input::Timeout).is_empty());
        assert_eq!(i.state(), State::Backup);
        // Due: Master.
        let t = ns(360_937_500);
        let out = run(&mut i, t, Input::Timeout);
        assert_eq!(
            out,
            vec![
                send(&i, 100),
                Action::AddVips,
                Action::Announce(Announce::BecameMaster),
                tr(State::Backup, State::Master)
            ]
        );
        assert_eq!(i.poll_timeout(), Some(t + ms(100)));
        assert_eq!(i.master_addr(), Some(ME));
    }

    #[test]
    fn backup_shutdown_goes_initialize_silently() {
        let mut i = backup(cfg());
        let out = run(&mut i, ms(10), Input::Shutdown);
        assert_eq!(out, vec![tr(State::Backup, State::Initialize)]);
        assert_eq!(i.poll_timeout(), None);
    }

    /// An advert on our VRID with another address list, as another cluster misconfigured with
    /// our VRID sends them (or a crafted one): whatever its priority, the owner's 255 and 0
    /// included, neither a Master nor a Backup follows it (keepalived 2.2.7 drops them all).
    #[test]
    fn adverts_with_another_address_list_are_dropped_at_any_priority() {
        let c = cfg();
        let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200));
        let lists: [(Vec<IpAddr>, AddressListError); 4] = [
            (vec![other], AddressListError::Missing(VIP)),
            (vec![], AddressListError::Count { got: 0, want: 1 }),
            (
                vec![VIP, other],
                AddressListError::Count { got: 2, want: 1 },
            ),
            (
                vec![other, other],
                AddressListError::Count { got: 2, want: 1 },
            ),
        ];
        for (addrs, err) in lists {
            for prio in [0, 50, 100, 120, 200, 255] {
                let advert = Advert {
                    addrs: addrs.clone(),
                    ..adv(&c, prio, 10)
                };
                let input = || Input::Advert {
                    src: HIGHER_ADDR,
                    advert: advert.clone(),
                };
                let mut m = master(c.clone());
                let due = m.poll_timeout();
                assert_eq!(m.check_addresses(HIGHER_ADDR, &advert), Err(err));
                assert!(run(&mut m, ms(400), input()).is_empty(), "{prio} {addrs:?}");
                assert_eq!((m.state(), m.poll_timeout()), (State::Master, due));
                let mut b = backup(c.clone());
                let due = b.poll_timeout();
                assert!(run(&mut b, ms(10), input()).is_empty());
                assert_eq!((b.state(), b.poll_timeout()), (State::Backup, due));
                assert_eq!(b.master_addr(), None);
            }
        }
        // Our list in another order is ours.
        let two = Config {
            vips: vec![VIP, HIGHER_ADDR],
            ..cfg()
        };
        let mut b = backup(two.clone());
        let advert = Advert {
            addrs: vec![HIGHER_ADDR, VIP],
            ..adv(&two, 200, 10)
        };
        assert_eq!(b.check_addresses(LOWER_ADDR, &advert), Ok(()));
        run(
            &mut b,
            ms(10),
            Input::Advert {
                src: LOWER_ADDR,
                advert,
            },
        );
        assert_eq!(b.master_addr(), Some(LOWER_ADDR));
    }

    /// `skip_check_adv_addr`: a Backup takes the Master it follows at its word, but checks
    /// anyone else; a Master checks everyone.
    #[test]
    fn skip_check_adv_addr_trusts_only_the_followed_master() {
        let c = Config {
            skip_check_adv_addr: true,
            ..cfg()
        };
        let wrong = |prio| Advert {
            addrs: vec![HIGHER_ADDR],
            ..adv(&c, prio, 10)
        };
        let mut b = backup(c.clone());
        // Nobody followed yet: checked.
        assert!(b.check_addresses(HIGHER_ADDR, &wrong(200)).is_err());
        run(&mut b, ms(10), rx(&c, HIGHER_ADDR, 200));
        assert_eq!(b.master_addr(), Some(HIGHER_ADDR));
        assert_eq!(b.check_addresses(HIGHER_ADDR, &wrong(200)), Ok(()));
        let before = b.poll_timeout();
        run(
            &mut b,
            ms(50),
            Input::Advert {
                src: HIGHER_ADDR,
                advert: wrong(200),
            },
        );
        assert!(
            b.poll_timeout() > before,
            "followed: the down timer restarts"
        );
        assert!(b.check_addresses(LOWER_ADDR, &wrong(200)).is_err());
        // A Master checks the advert of the Master it would follow, too.
        let mut m = master(c.clone());
        assert!(m.check_addresses(HIGHER_ADDR, &wrong(200)).is_err());
        assert!(run(
            &mut m,
            ms(400),
            Input::Advert {
                src: HIGHER_ADDR,
                advert: wrong(200)
            }
        )
        .is_empty());
        assert_eq!(m.state(), State::Master);
    }

    #[test]
    fn master_timeout_sends_and_rearms() {
        let mut i = master(cfg());
        let due = ns(460_937_500);
        assert_eq!(i.poll_timeout(), Some(due));
        assert!(run(&mut i, due - ns(1), Input::Timeout).is_empty());
        assert_eq!(run(&mut i, due, Input::Timeout), vec![send(&i, 100)]);
        assert_eq!(i.poll_timeout(), Some(due + ms(100)));
        assert_eq!(i.state(), State::Master);
    }

    /// A Master that hears a better one answers once at its own priority before stepping
    /// down, so that a winner whose advert arrived first still hears a lower priority and
    /// announces (split-brain heal in either order).
    #[test]
    fn master_answers_a_better_one_once_before_stepping_down() {
        let c = cfg();
        // (The loser's side, the answer then the step down, is in master_advert_table.)
        for (prio, src) in [(200, LOWER_ADDR), (100, HIGHER_ADDR)] {
            let mut i = master(c.clone());
            let out = run(&mut i, ms(400), rx(&c, src, prio));
            // The winner, hearing it, announces and answers.
            let mut w = master(Config {
                priority: prio,
                primary_addr: src,
                ..c.clone()
            });
            let Action::Send(answer) = &out[0] else {
                unreachable!()
            };
            let heard = Input::Advert {
                src: ME,
                advert: answer.clone(),
            };
            assert_eq!(
                run(&mut w, ms(401), heard),
                vec![
                    Action::Announce(Announce::LowerPriorityHeard),
                    send(&w, prio)
                ]
            );
        }
        // strict_mode: RFC packets only.
        let strict = Config {
            answer_before_stepping_down: false,
            ..c.clone()
        };
        let mut i = master(strict.clone());
        assert_eq!(
            run(&mut i, ms(400), rx(&strict, LOWER_ADDR, 200)),
            vec![Action::RemoveVips, tr(State::Master, State::Backup)]
        );
    }

    #[test]
    fn down_timer_adverts_replaces_the_three_intervals() {
        let c = Config {
            down_timer_adverts: 5,
            ..cfg()
        };
        let i = backup(c);
        // 5 × 100 ms + Skew_Time(100) = 500 ms + 60.9375 ms.
        assert_eq!(i.master_down_interval(), ns(560_937_500));
        assert_eq!(
            master_down_interval(Version::V3, 100, 10) + ms(200),
            i.master_down_interval()
        );
    }

    #[test]
    fn master_advert_table() {
        let c = cfg();
        let now = ms(400);
        let due = Some(ns(460_937_500));
        let lower =
            |i: &Instance| vec![Action::Announce(Announce::LowerPriorityHeard), send(i, 100)];
        // Higher priority, or equal priority with a higher address: Backup, timer = MDI.
        for (prio, src) in [(101, LOWER_ADDR), (100, HIGHER_ADDR)] {
            let mut i = master(c.clone());
            let out = run(&mut i, now, rx(&c, src, prio));
            assert_eq!(
                out,
                vec![
                    send(&i, 100),
                    Action::RemoveVips,
                    tr(State::Master, State::Backup)
                ]
            );
            assert_eq!(i.state(), State::Backup);
            assert_eq!(i.master_addr(), Some(src));
            let mdi = master_down_interval(Version::V3, 100, 10);
            assert_eq!(i.poll_timeout(), Some(now + mdi));
        }
        // Lower priority, or equal priority with a lower address: stay, announce, answer.
        for (prio, src) in [(99, HIGHER_ADDR), (100, LOWER_ADDR)] {
            let mut i = master(c.clone());
            let out = run(&mut i, now, rx(&c, src, prio));
            assert_eq!(out, lower(&i));
            assert_eq!(i.state(), State::Master);
            assert_eq!(i.poll_timeout(), due, "advert timer not reset");
        }
        // lower_prio_no_advert: only announce.
        let c2 = Config {
            lower_prio_no_advert: true,
            ..cfg()
        };
        let mut i = master(c2.clone());
        let out = run(&mut i, now, rx(&c2, HIGHER_ADDR, 50));
        assert_eq!(out, vec![Action::Announce(Announce::LowerPriorityHeard)]);
        // Priority 0: send at once and reset the advert timer.
        let mut i = master(c.clone());
        let out = run(&mut i, now, rx(&c, HIGHER_ADDR, 0));
        assert_eq!(out, vec![send(&i, 100)]);
        assert_eq!(i.poll_timeout(), Some(now + ms(100)));
        assert_eq!(i.state(), State::Master);
    }

    #[test]
    fn master_learns_interval_when_stepping_down_v3() {
        let c = cfg();
        let mut i = master(c.clone());
        let input = Input::Advert {
            src: HIGHER_ADDR,
            advert: adv(&c, 200, 100),
        };
        run(&mut i, ms(400), input);
        assert_eq!(i.master_adver_int(), 100);
        assert_eq!(i.poll_timeout(), Some(ms(400) + ns(3_609_375_000)));
    }

    #[test]
    fn master_shutdown_releases_with_priority_zero() {
        let mut i = master(cfg());
        let out = run(&mut i, ms(400), Input::Shutdown);
        assert_eq!(
            out,
            vec![
                send(&i, 0),
                Action::RemoveVips,
                tr(State::Master, State::Initialize)
            ]
        );
        assert_eq!(i.poll_timeout(), None);
        assert_eq!(i.state(), State::Initialize);
        // Restartable.
        let out = run(&mut i, ms(500), Input::Startup);
        assert_eq!(out, vec![tr(State::Initialize, State::Backup)]);
    }

    #[test]
    fn preempt_delay_holds_back_then_preempts() {
        let c = Config {
            preempt_delay: ms(1000),
            ..cfg()
        };
        let mut i = backup(c.clone());
        // During the startup delay a lower-priority advert resets the down timer.
        run(&mut i, ms(300), rx(&c, LOWER_ADDR, 50));
        assert_eq!(i.poll_timeout(), Some(ms(300) + ns(360_937_500)));
        run(&mut i, ms(900), rx(&c, LOWER_ADDR, 50));
        assert_eq!(i.poll_timeout(), Some(ms(900) + ns(360_937_500)));
        // After it, a lower-priority advert is discarded: the timer keeps running.
        run(&mut i, ms(1100), rx(&c, LOWER_ADDR, 50));
        run(&mut i, ms(1200), rx(&c, LOWER_ADDR, 50));
        assert_eq!(i.poll_timeout(), Some(ms(900) + ns(360_937_500)));
        // A higher advert clears the delay; the next lower one re-arms it from then.
        run(&mut i, ms(1250), rx(&c, HIGHER_ADDR, 150));
        run(&mut i, ms(1300), rx(&c, LOWER_ADDR, 50));
        assert_eq!(i.poll_timeout(), Some(ms(1300) + ns(360_937_500)));
        for t in [1600, 1900, 2200] {
            run(&mut i, ms(t), rx(&c, LOWER_ADDR, 50));
        }
        run(&mut i, ms(2299), rx(&c, LOWER_ADDR, 50));
        assert_eq!(i.poll_timeout(), Some(ms(2299) + ns(360_937_500)));
        run(&mut i, ms(2301), rx(&c, LOWER_ADDR, 50));
        assert_eq!(
            i.poll_timeout(),
            Some(ms(2299) + ns(360_937_500)),
            "delay over: discarded"
        );
    }

    #[test]
    fn set_priority_changes_adverts_and_skew() {
        let c = cfg();
        let mut i = master(c.clone());
        let mut out = Vec::new();
        i.set_priority(ms(400), 150, &mut out);
        assert!(out.is_empty());
        assert_eq!(i.priority(), 150);
        let due = i.poll_timeout().unwrap();
        assert_eq!(run(&mut i, due, Input::Timeout), vec![send(&i, 150)]);
        // A Backup raised above the Master's priority stops accepting its adverts.
        let mut b = backup(c.clone());
        b.set_priority(ms(10), 120, &mut out);
        assert!(out.is_empty());
        // The down timer restarts from the change with the new skew: 300 + 53.125 ms.
        assert_eq!(b.skew_time(), ns(53_125_000)); // 136 * 100 ms / 256
        assert_eq!(b.poll_timeout(), Some(ms(10) + ns(353_125_000)));
        run(&mut b, ms(50), rx(&c, LOWER_ADDR, 110));
        assert_eq!(
            b.poll_timeout(),
            Some(ms(10) + ns(353_125_000)),
            "discarded"
        );
        // ... and it takes over when the timer fires.
        run(&mut b, ms(10) + ns(353_125_000), Input::Timeout);
        assert_eq!(b.state(), State::Master);
        // Lowered below the Master: its adverts are accepted again, with the new skew.
        let mut b = backup(c.clone());
        b.set_priority(ms(10), 50, &mut out);
        assert_eq!(b.poll_timeout(), Some(ms(10) + ns(380_468_750))); // 206/256 * 100 ms
        run(&mut b, ms(50), rx(&c, LOWER_ADDR, 60));
        assert_eq!(b.poll_timeout(), Some(ms(50) + ns(380_468_750)));
        // An unchanged priority leaves the timer alone; 0 is taken as 1.
        let mut b = backup(c.clone());
        b.set_priority(ms(340), 100, &mut out);
        assert_eq!(b.poll_timeout(), Some(ns(360_937_500)));
        b.set_priority(ms(340), 0, &mut out);
        assert_eq!(b.priority(), 1);
    }

    #[test]
    fn master_lowered_keeps_role_and_is_preempted_by_the_backup() {
        let c = cfg();
        let mut m = master(c.clone());
        let mut out = Vec::new();
        m.set_priority(ms(400), 50, &mut out);
        assert!(out.is_empty(), "no immediate advert");
        assert_eq!(m.state(), State::Master);
        let due = m.poll_timeout().unwrap();
        assert_eq!(run(&mut m, due, Input::Timeout), vec![send(&m, 50)]);
        // The peer (priority 80 > 50) takes over; its advert makes us step down (answering
        // once at our priority).
        let out = run(&mut m, due + ms(1), rx(&c, HIGHER_ADDR, 80));
        assert_eq!(
            out,
            vec![
                send(&m, 50),
                Action::RemoveVips,
                tr(State::Master, State::Backup)
            ]
        );
    }

    #[test]
    fn master_fault_sends_priority_zero_and_releases() {
        let mut m = master(cfg());
        let out = run(&mut m, ms(400), Input::Fault);
        assert_eq!(
            out,
            vec![
                send(&m, 0),
                send(&m, 0),
                Action::RemoveVips,
                tr(State::Master, State::Fault)
            ]
        );
        assert_eq!(m.state(), State::Fault);
        assert_eq!(m.poll_timeout(), None);
        assert_eq!(m.master_addr(), None);
    }

    #[test]
    fn master_that_lost_a_tracked_object_steps_down_and_takes_it_back_after_skew_time() {
        let c = cfg();
        let mut m = master(c.clone());
        let out = run(&mut m, ms(400), Input::Lost);
        assert_eq!(
            out,
            vec![
                send(&m, 0),
                Action::RemoveVips,
                tr(State::Master, State::Backup)
            ]
        );
        assert_eq!(m.master_addr(), None);
        let due = m.poll_timeout().unwrap();
        assert_eq!(due, ms(400) + m.skew_time());
        let out = run(&mut m, due, Input::Timeout);
        assert_eq!(m.state(), State::Master);
        assert!(out.contains(&Action::AddVips), "{out:?}");
        // A better peer heard in between keeps it Backup.
        let mut m = master(c.clone());
        run(&mut m, ms(400), Input::Lost);
        assert!(run(&mut m, ms(401), rx(&c, HIGHER_ADDR, 200)).is_empty());
        assert!(m.poll_timeout().unwrap() > ms(401) + m.skew_time());
        // Anywhere but Master it means nothing.
        let mut b = backup(c);
        let before = b.poll_timeout();
        assert!(run(&mut b, ms(10), Input::Lost).is_empty());
        assert_eq!((b.state(), b.poll_timeout()), (State::Backup, before));
    }

    #[test]
    fn fault_is_silent_and_deaf_until_cleared() {
        let c = cfg();
        for start in [Instance::new(c.clone()), backup(c.clone())] {
            let mut i = start;
            let from = i.state();
            assert_eq!(
                run(&mut i, ms(50), Input::Fault),
                vec![tr(from, State::Fault)]
            );
            assert_eq!(i.poll_timeout(), None);
            for input in [
                rx(&c, HIGHER_ADDR, 200),
                rx(&c, LOWER_ADDR, 0),
                rx(&c, LOWER_ADDR, 50),
                Input::Timeout,
                Input::Startup,
                Input::Fault,
            ] {
                assert!(run(&mut i, ms(60), input).is_empty());
                assert_eq!(i.state(), State::Fault);
                assert_eq!(i.poll_timeout(), None);
            }
            // Cleared: Backup with a full down timer from now.
            let out = run(&mut i, ms(1000), Input::FaultCleared);
            assert_eq!(out, vec![tr(State::Fault, State::Backup)]);
            assert_eq!(i.poll_timeout(), Some(ms(1000) + ns(360_937_500)));
        }
        // FaultCleared outside FAULT is ignored.
        let mut b = backup(c.clone());
        assert!(run(&mut b, ms(5), Input::FaultCleared).is_empty());
        let mut m = master(c);
        assert!(run(&mut m, ms(400), Input::FaultCleared).is_empty());
        // Shutdown from FAULT goes to Initialize without a word.
        let mut f = backup(cfg());
        run(&mut f, ms(5), Input::Fault);
        assert_eq!(
            run(&mut f, ms(6), Input::Shutdown),
            vec![tr(State::Fault, State::Initialize)]
        );
    }

    #[test]
    fn sync_group_inputs() {
        // A Backup follows a member to Master at once.
        let mut b = backup(cfg());
        let out = run(&mut b, ms(50), Input::SyncMaster);
        assert_eq!(out[0], send(&b, 100));
        assert!(out.contains(&Action::AddVips));
        assert_eq!(out.last(), Some(&tr(State::Backup, State::Master)));
        // A Master follows a member to Backup: release, no advert, fresh down timer.
        let mut m = master(cfg());
        assert_eq!(
            run(&mut m, ms(400), Input::SyncBackup),
            vec![Action::RemoveVips, tr(State::Master, State::Backup)]
        );
        assert_eq!(m.poll_timeout(), Some(ms(400) + ns(360_937_500)));
        // Held: the down timer starts again, still Backup.
        let mut h = backup(cfg());
        assert!(run(&mut h, ms(370), Input::SyncHold).is_empty());
        assert_eq!(h.state(), State::Backup);
        assert_eq!(h.poll_timeout(), Some(ms(370) + ns(360_937_500)));
        // Ignored elsewhere.
        let mut f = backup(cfg());
        run(&mut f, ms(5), Input::Fault);
        for input in [Input::SyncMaster, Input::SyncBackup, Input::SyncHold] {
            assert!(run(&mut f, ms(6), input).is_empty());
        }
        let mut m = master(cfg());
        assert!(run(&mut m, ms(400), Input::SyncMaster).is_empty());
        assert!(run(&mut m, ms(400), Input::SyncHold).is_empty());
        let mut b = backup(cfg());
        assert!(run(&mut b, ms(60), Input::SyncBackup).is_empty());
    }

    #[test]
    fn owner_leaving_fault_goes_master_at_once() {
        let mut i = Instance::new(Config {
            priority: 255,
            ..cfg()
        });
        run(&mut i, ms(0), Input::Startup);
        assert_eq!(i.state(), State::Master);
        run(&mut i, ms(10), Input::Fault);
        let out = run(&mut i, ms(20), Input::FaultCleared);
        assert_eq!(
            out,
            vec![
                send(&i, 255),
                Action::AddVips,
                Action::Announce(Announce::BecameMaster),
                tr(State::Fault, State::Master)
            ]
        );
        assert_eq!(i.poll_timeout(), Some(ms(120)));
    }

    #[test]
    fn v2_adverts_carry_auth_v3_never() {
        let pass = Auth::Pass(*b"secret\0\0");
        let i = Instance::new(Config {
            version: Version::V2,
            auth: pass,
            advert_int: 100,
            ..cfg()
        });
        assert_eq!(i.advert(7).auth, pass);
        let i = Instance::new(Config {
            auth: pass,
            ..cfg()
        });
        assert_eq!(i.advert(7).auth, Auth::None);
        assert_eq!(i.advert(7).max_adver_int, 10);
        assert_eq!(i.advert(7).addrs, vec![VIP]);
    }
}
