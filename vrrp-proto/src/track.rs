//! Trackers' effect on an instance, as pure values: each tracked object (a `vrrp_script`, an
//! interface, a `track_file`, a `vrrp_track_process`, a virtual server's quorum) reports a
//! status; [`Weight`] turns status and the per-use weight into a [`Contribution`] (a priority
//! delta or a fault) exactly as keepalived.conf(5) describes, and [`TrackSet`] folds every
//! contribution of one instance into its [`Effective`] priority and fault flag.

/// Weight bounds of `vrrp_script` and `track_interface` (keepalived: -253..253).
pub const MAX_WEIGHT: i32 = 253;

/// How one tracked object affects the instance that tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contribution {
    /// Add this to the base priority (may be negative or zero).
    Delta(i32),
    /// The instance must be in FAULT.
    Fault,
}

/// A per-use weight: `weight W [reverse]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Weight {
    pub weight: i32,
    pub reverse: bool,
}

impl Weight {
    pub fn new(weight: i32, reverse: bool) -> Self {
        Self { weight, reverse }
    }

    /// An up/down object (script, interface): keepalived.conf(5) `track_interface`/`vrrp_script`.
    ///
    /// - weight 0: down is FAULT (with `reverse`: up is FAULT);
    /// - positive: `+weight` while up; negative: `weight` (a decrease) while down;
    /// - `reverse` turns the direction round: a positive weight *decreases* the priority while
    ///   up, a negative one *increases* it while down.
    pub fn binary(self, up: bool) -> Contribution {
        let w = self.weight.clamp(-MAX_WEIGHT, MAX_WEIGHT);
        if w == 0 {
            return if up != self.reverse {
                Contribution::Delta(0)
            } else {
                Contribution::Fault
            };
        }
        let applies = if w > 0 { up } else { !up };
        let d = if applies { w } else { 0 };
        Contribution::Delta(if self.reverse { -d } else { d })
    }

    /// A `track_file` value (keepalived.conf(5) "Track files"):
    ///
    /// - weight 0: a non-zero value is FAULT, zero is OK (`reverse`: the other way round);
    /// - otherwise `value × weight` (`reverse`: `× -weight`); below -253 is FAULT, and the
    ///   delta is capped at ±253 (the priority is clamped to 1..254 anyway).
    pub fn file(self, value: i64) -> Contribution {
        if self.weight == 0 {
            return if (value == 0) != self.reverse {
                Contribution::Delta(0)
            } else {
                Contribution::Fault
            };
        }
        let w = i64::from(if self.reverse {
            -self.weight
        } else {
            self.weight
        });
        let r = value.saturating_mul(w);
        if r < -i64::from(MAX_WEIGHT) {
            Contribution::Fault
        } else {
            Contribution::Delta(r.min(i64::from(MAX_WEIGHT)) as i32)
        }
    }
}

/// An instance's priority and fault flag after its trackers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    pub priority: u8,
    pub fault: bool,
}

/// Effective priority = base + Σ deltas, clamped to 1..254; an owner (255) is never moved.
pub fn effective_priority(base: u8, deltas: impl IntoIterator<Item = i32>) -> u8 {
    if base == 255 {
        return 255;
    }
    let sum: i64 = deltas.into_iter().map(i64::from).sum();
    (i64::from(base) + sum).clamp(1, 254) as u8
}

/// Identity of one tracked object within an instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrackKey {
    Script(String),
    Interface(u32),
    File(String),
    /// A `vrrp_track_process`'s quorum, by name.
    Process(String),
    /// A tracked virtual server's quorum (`track_virtual_server`), by its keepalived name.
    VirtualServer(String),
    /// The instance's source address: FAULT while its interface has none (or the configured
    /// `unicast_src_ip` / `mcast_src_ip` is not local), as keepalived does.
    Source,
}

/// Every contribution to one instance; unknown objects count as "no effect" until reported.
/// A sorted vector: an instance tracks a handful of objects, and each costs a few bytes.
#[derive(Debug, Clone)]
pub struct TrackSet {
    base: u8,
    contributions: Vec<(TrackKey, Contribution)>,
}

impl TrackSet {
    pub fn new(base: u8) -> Self {
        Self {
            base,
            contributions: Vec::new(),
        }
    }

    /// The current result.
    pub fn effective(&self) -> Effective {
        let fault = self
            .contributions
            .iter()
            .any(|(_, c)| *c == Contribution::Fault);
        let deltas = self.contributions.iter().filter_map(|(_, c)| match c {
            Contribution::Delta(d) => Some(*d),
            Contribution::Fault => None,
        });
        Effective {
            priority: effective_priority(self.base, deltas),
            fault,
        }
    }

    /// Records `key`'s contribution; returns the new result if it changed.
    pub fn set(&mut self, key: TrackKey, c: Contribution) -> Option<Effective> {
        let before = self.effective();
        match self.contributions.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.contributions[i].1 = c,
            Err(i) => self.contributions.insert(i, (key, c)),
        }
        let after = self.effective();
        (after != before).then_some(after)
    }

    /// Every tracked object's current contribution, for the status dumps.
    pub fn contributions(&self) -> impl Iterator<Item = (&TrackKey, &Contribution)> {
        self.contributions.iter().map(|(k, c)| (k, c))
    }

    /// Forgets `key` (the object is no longer tracked); returns the new result if it changed.
    pub fn remove(&mut self, key: &TrackKey) -> Option<Effective> {
        let before = self.effective();
        self.contributions.retain(|(k, _)| k != key);
        let after = self.effective();
        (after != before).then_some(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Contribution::{Delta, Fault};

    #[test]
    fn binary_weights_table() {
        // (weight, reverse, up, expected)
        let cases = [
            (0, false, true, Delta(0)),
            (0, false, false, Fault),
            (0, true, true, Fault),
            (0, true, false, Delta(0)),
            (20, false, true, Delta(20)),
            (20, false, false, Delta(0)),
            (-20, false, true, Delta(0)),
            (-20, false, false, Delta(-20)),
            (20, true, true, Delta(-20)),
            (20, true, false, Delta(0)),
            (-20, true, true, Delta(0)),
            (-20, true, false, Delta(20)),
            (400, false, true, Delta(253)),
            (-400, false, false, Delta(-253)),
        ];
        for (w, rev, up, want) in cases {
            assert_eq!(Weight::new(w, rev).binary(up), want, "{w} {rev} {up}");
        }
    }

    #[test]
    fn file_weights_table() {
        let cases = [
            (0, false, 0, Delta(0)),
            (0, false, 5, Fault),
            (0, false, -1, Fault),
            (0, true, 0, Fault),
            (0, true, 3, Delta(0)),
            (1, false, 10, Delta(10)),
            (1, false, -10, Delta(-10)),
            (10, false, 3, Delta(30)),
            (-10, false, 3, Delta(-30)),
            (10, true, 3, Delta(-30)),
            (1, false, -253, Delta(-253)),
            (1, false, -254, Fault),
            (254, false, -1, Fault),
            (1, false, 1000, Delta(253)),
            (2, false, i64::MIN, Fault),
        ];
        for (w, rev, v, want) in cases {
            assert_eq!(Weight::new(w, rev).file(v), want, "{w} {rev} {v}");
        }
    }

    #[test]
    fn effective_priority_clamps_and_spares_the_owner() {
        assert_eq!(effective_priority(100, [20, -5]), 115);
        assert_eq!(effective_priority(100, [-200]), 1);
        assert_eq!(effective_priority(100, [200, 200]), 254);
        assert_eq!(effective_priority(1, []), 1);
        assert_eq!(effective_priority(255, [-100]), 255);
        assert_eq!(effective_priority(254, [-253, -253, -253]), 1);
    }

    #[test]
    fn track_set_folds_and_reports_changes_only() {
        let mut t = TrackSet::new(100);
        let eff = |priority, fault| Some(Effective { priority, fault });
        assert_eq!(t.set(TrackKey::Script("chk".into()), Delta(0)), None);
        assert_eq!(
            t.set(TrackKey::Script("chk".into()), Delta(-30)),
            eff(70, false)
        );
        assert_eq!(t.set(TrackKey::Interface(3), Delta(10)), eff(80, false));
        assert_eq!(t.set(TrackKey::File("f".into()), Fault), eff(80, true));
        assert_eq!(t.set(TrackKey::Script("chk".into()), Delta(-30)), None);
        assert_eq!(t.set(TrackKey::File("f".into()), Delta(0)), eff(80, false));
        assert_eq!(t.remove(&TrackKey::Interface(3)), eff(70, false));
        assert_eq!(
            t.effective(),
            Effective {
                priority: 70,
                fault: false
            }
        );
        // Owner: priority untouched, faults still count.
        let mut o = TrackSet::new(255);
        assert_eq!(o.set(TrackKey::Interface(1), Delta(-50)), None);
        assert_eq!(o.set(TrackKey::Interface(2), Fault), eff(255, true));
    }
}
