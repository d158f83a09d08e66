//! Sans-IO liveness of a virtual server's real servers, driven by checker [`Event`]s:
//! keepalived's rule that a real server is alive only while every one of its checkers is up,
//! and its weight is the last one a checker reported (`misc_dynamic`, FILE_CHECK).
//!
//! What a dead server means for the pool (removal or `inhibit_on_failure`), `quorum`,
//! `hysteresis` and `sorry_server` belong to the balancer's service table
//! (`lbcore::service::Controller`), which this feeds.

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
    /// Indices (as given to the scheduler) of this server's checkers. None: always alive.
    pub checkers: Vec<usize>,
    /// Its checkers start down (`alpha`).
    pub alpha: bool,
}

/// A change of one real server (by its index in the pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Every checker is up again; the server's weight.
    Up(usize, u32),
    /// A checker failed.
    Down(usize),
    /// A live server's weight changed.
    Weight(usize, u32),
}

#[derive(Debug, Clone)]
struct Member {
    failed: Vec<usize>,
    weight: u32,
}

/// Live state of the real servers of one virtual server.
#[derive(Debug, Clone)]
pub struct Pool {
    servers: Vec<RealServer>,
    members: Vec<Member>,
}

impl Pool {
    /// Initial state: servers alive unless `alpha` (and they have checkers).
    pub fn new(servers: Vec<RealServer>) -> Self {
        let members = servers
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
        Self { servers, members }
    }

    /// Whether real server `idx` is alive.
    pub fn alive(&self, idx: usize) -> bool {
        self.members.get(idx).is_some_and(|m| m.failed.is_empty())
    }

    /// Liveness of every real server, in order.
    pub fn alive_all(&self) -> Vec<bool> {
        (0..self.members.len()).map(|i| self.alive(i)).collect()
    }

    /// The index of the real server a checker belongs to.
    pub fn server_of(&self, checker: usize) -> Option<usize> {
        self.servers
            .iter()
            .position(|rs| rs.checkers.contains(&checker))
    }

    /// Applies a checker event; returns what changed for its server.
    pub fn on_event(&mut self, ev: &Event) -> Option<Action> {
        let idx = self.server_of(ev.checker)?;
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
        match (was_alive, m.failed.is_empty()) {
            (true, false) => Some(Action::Down(idx)),
            (false, true) => Some(Action::Up(idx, m.weight)),
            (true, true) if ev.change == Change::Weight => Some(Action::Weight(idx, m.weight)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(n: u8, checkers: Vec<usize>) -> RealServer {
        RealServer {
            target: Target::new(format!("192.0.2.{n}").parse().unwrap(), 80),
            weight: 1,
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

    #[test]
    fn server_alive_only_when_all_its_checkers_are_up() {
        let mut p = Pool::new(vec![rs(1, vec![0, 1]), rs(2, vec![2])]);
        assert_eq!(p.alive_all(), vec![true, true]);
        assert_eq!(p.on_event(&ev(0, Change::Down, 1)), Some(Action::Down(0)));
        assert_eq!(p.on_event(&ev(1, Change::Down, 1)), None, "already down");
        assert_eq!(
            p.on_event(&ev(0, Change::Up, 1)),
            None,
            "checker 1 still down"
        );
        assert!(!p.alive(0));
        assert_eq!(p.on_event(&ev(1, Change::Up, 1)), Some(Action::Up(0, 1)));
        assert_eq!(p.on_event(&ev(9, Change::Down, 1)), None, "not ours");
    }

    #[test]
    fn alpha_starts_down_and_dynamic_weights_follow_the_checker() {
        let mut alpha = rs(1, vec![0]);
        alpha.alpha = true;
        let mut p = Pool::new(vec![alpha, rs(2, vec![1]), rs(3, vec![])]);
        assert_eq!(p.alive_all(), vec![false, true, true], "no checkers: alive");
        assert_eq!(p.on_event(&ev(0, Change::Up, 1)), Some(Action::Up(0, 1)));
        assert_eq!(
            p.on_event(&ev(1, Change::Weight, 5)),
            Some(Action::Weight(1, 5))
        );
        assert_eq!(p.on_event(&ev(1, Change::Down, 5)), Some(Action::Down(1)));
        assert_eq!(p.on_event(&ev(1, Change::Up, 7)), Some(Action::Up(1, 7)));
    }
}
