//! Sans-IO membership of one virtual server, driven by checker [`Event`]s: keepalived's rules
//! for real-server liveness (every checker up), `inhibit_on_failure`, `quorum` with
//! `hysteresis`, and `sorry_server`. Its outputs feed the balancer and VRRP tracking.

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::health::Change;
use crate::spec::Target;

/// One `real_server` of the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServer {
    /// Address and port.
    pub target: Target,
    /// `weight` (default 1).
    pub weight: u32,
    /// `inhibit_on_failure`: keep a dead server with weight 0 instead of removing it.
    pub inhibit_on_failure: bool,
    /// Indices (as given to the scheduler) of this server's checkers. None: always alive.
    pub checkers: Vec<usize>,
    /// Starts down (`alpha`).
    pub alpha: bool,
}

/// A `virtual_server`'s membership rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    /// `quorum`: minimum total weight of live servers (default 1).
    pub quorum: u64,
    /// `hysteresis`: quorum is gained at `quorum + hysteresis`, lost below `quorum - hysteresis`.
    pub hysteresis: u64,
    /// `sorry_server`: put in the pool while quorum is lost.
    pub sorry_server: Option<Target>,
    /// The real servers.
    pub real_servers: Vec<RealServer>,
}

/// What the consumer must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Put a server in the pool (or set its weight) — `notify_up` runs for real servers.
    Up(Target, u32),
    /// A server failed: removed, or kept at weight 0 with `inhibit_on_failure` — `notify_down`.
    Down {
        /// The server.
        target: Target,
        /// Kept in the pool at weight 0.
        inhibited: bool,
    },
    /// A live server's weight changed (misc_dynamic, FILE_CHECK).
    Weight(Target, u32),
    /// Quorum gained (`quorum_up`); also the sorry server leaves.
    QuorumUp,
    /// Quorum lost (`quorum_down`); also the sorry server enters.
    QuorumDown,
}

#[derive(Debug, Clone)]
struct Member {
    failed: Vec<usize>,
    weight: u32,
}

/// Live membership state.
#[derive(Debug, Clone)]
pub struct Pool {
    spec: PoolSpec,
    members: Vec<Member>,
    quorum_up: bool,
}

impl Pool {
    /// Initial state: servers alive unless `alpha`; quorum judged on that.
    pub fn new(spec: PoolSpec) -> Self {
        let members = spec
            .real_servers
            .iter()
            .map(|rs| Member {
                failed: if rs.alpha {
                    rs.checkers.clone()
                } else {
                    Vec::new()
                },
                weight: rs.weight,
            })
            .collect();
        let mut pool = Self {
            spec,
            members,
            quorum_up: false,
        };
        pool.quorum_up = pool.live_weight() >= pool.spec.quorum;
        pool
    }

    /// Whether the virtual server has quorum.
    pub fn quorum_up(&self) -> bool {
        self.quorum_up
    }

    /// Total weight of live servers.
    pub fn live_weight(&self) -> u64 {
        self.members
            .iter()
            .filter(|m| m.failed.is_empty())
            .map(|m| u64::from(m.weight))
            .sum()
    }

    /// Apply a checker event; returns what changed.
    pub fn on_event(&mut self, ev: &Event) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(idx) = self
            .spec
            .real_servers
            .iter()
            .position(|rs| rs.checkers.contains(&ev.checker))
        else {
            return out;
        };
        let rs = &self.spec.real_servers[idx];
        let m = &mut self.members[idx];
        let was_alive = m.failed.is_empty();
        match ev.change {
            Change::Down => {
                if !m.failed.contains(&ev.checker) {
                    m.failed.push(ev.checker);
                }
            }
            Change::Up | Change::Weight => {
                m.failed.retain(|c| *c != ev.checker);
                m.weight = ev.weight;
            }
        }
        let alive = m.failed.is_empty();
        match (was_alive, alive) {
            (true, false) => out.push(Action::Down {
                target: rs.target.clone(),
                inhibited: rs.inhibit_on_failure,
            }),
            (false, true) => out.push(Action::Up(rs.target.clone(), m.weight)),
            (true, true) if ev.change == Change::Weight => {
                out.push(Action::Weight(rs.target.clone(), m.weight))
            }
            _ => {}
        }
        let total = self.live_weight();
        let (q, h) = (self.spec.quorum, self.spec.hysteresis);
        if self.quorum_up && total < q.saturating_sub(h) {
            self.quorum_up = false;
            out.push(Action::QuorumDown);
        } else if !self.quorum_up && total >= q + h {
            self.quorum_up = true;
            out.push(Action::QuorumUp);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(n: u8, checkers: Vec<usize>) -> RealServer {
        RealServer {
            target: Target::new(format!("192.0.2.{n}").parse().unwrap(), 80),
            weight: 1,
            inhibit_on_failure: n == 2,
            checkers,
            alpha: false,
        }
    }

    fn ev(checker: usize, change: Change, weight: u32) -> Event {
        Event {
            checker,
            target: Target::new("192.0.2.1".parse().unwrap(), 80),
            kind: "TCP_CHECK".into(),
            change,
            up: change != Change::Down,
            weight,
            reason: String::new(),
            latency: None,
        }
    }

    fn pool() -> Pool {
        Pool::new(PoolSpec {
            quorum: 2,
            hysteresis: 0,
            sorry_server: None,
            real_servers: vec![rs(1, vec![0, 1]), rs(2, vec![2]), rs(3, vec![3])],
        })
    }

    #[test]
    fn server_alive_only_when_all_its_checkers_are_up() {
        let mut p = pool();
        assert!(p.quorum_up());
        let a = p.on_event(&ev(0, Change::Down, 1));
        assert!(matches!(
            &a[0],
            Action::Down {
                inhibited: false,
                ..
            }
        ));
        assert!(
            p.on_event(&ev(1, Change::Down, 1)).is_empty(),
            "already down"
        );
        assert!(
            p.on_event(&ev(0, Change::Up, 1)).is_empty(),
            "checker 1 still down"
        );
        assert!(matches!(
            p.on_event(&ev(1, Change::Up, 1))[0],
            Action::Up(_, 1)
        ));
    }

    #[test]
    fn quorum_lost_and_regained_with_inhibit() {
        let mut p = pool();
        let a = p.on_event(&ev(2, Change::Down, 1));
        assert_eq!(
            a[0],
            Action::Down {
                target: rs(2, vec![]).target,
                inhibited: true
            }
        );
        assert!(p.quorum_up(), "2 of 3 live: weight 2 = quorum");
        let a = p.on_event(&ev(3, Change::Down, 1));
        assert_eq!(a.last(), Some(&Action::QuorumDown));
        let a = p.on_event(&ev(3, Change::Up, 1));
        assert_eq!(a.last(), Some(&Action::QuorumUp));
    }

    #[test]
    fn hysteresis_and_dynamic_weight() {
        let mut p = Pool::new(PoolSpec {
            quorum: 3,
            hysteresis: 1,
            sorry_server: None,
            real_servers: vec![rs(1, vec![0]), rs(3, vec![1]), rs(4, vec![2])],
        });
        assert!(p.quorum_up());
        p.on_event(&ev(0, Change::Down, 1));
        assert!(p.quorum_up(), "2 is not below 3 - 1");
        assert_eq!(
            p.on_event(&ev(1, Change::Down, 1)),
            vec![
                Action::Down {
                    target: rs(3, vec![]).target,
                    inhibited: false
                },
                Action::QuorumDown
            ]
        );
        let a = p.on_event(&ev(2, Change::Weight, 5));
        assert_eq!(
            a,
            vec![Action::Weight(rs(4, vec![]).target, 5), Action::QuorumUp],
            "5 >= 3 + 1"
        );
    }
}
