//! `vrrp_sync_group`: keepalived's all-or-nothing rules, as a pure function.
//!
//! keepalived keeps the members of a group in step: if one member goes FAULT every member is
//! forced to FAULT; if one goes BACKUP (and none is FAULT) every member goes BACKUP; members
//! are MASTER only together — a member whose own machine wants MASTER is held back until every
//! other member wants MASTER too. [`decide`] maps the states each member's machine *wants*
//! to the state each member must *take*.

use vrrp_proto::fsm::State;

/// What the group imposes, from the members' own states (in member order).
///
/// - any FAULT → every member FAULT;
/// - else any BACKUP (or INIT) → every member BACKUP;
/// - else (all MASTER) → every member MASTER.
///
/// An empty group imposes nothing (`None`).
pub fn decide(wanted: &[State]) -> Option<State> {
    if wanted.is_empty() {
        return None;
    }
    Some(if wanted.contains(&State::Fault) {
        State::Fault
    } else if wanted.iter().any(|s| *s != State::Master) {
        State::Backup
    } else {
        State::Master
    })
}

/// Which members must be moved, and to what: `(member index, target)` for each member whose
/// current state differs from the group's decision.
pub fn moves(current: &[State]) -> Vec<(usize, State)> {
    let Some(target) = decide(current) else {
        return Vec::new();
    };
    current
        .iter()
        .enumerate()
        .filter(|(_, s)| **s != target)
        .map(|(i, _)| (i, target))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use State::{Backup as B, Fault as F, Initialize as I, Master as M};

    #[test]
    fn table() {
        assert_eq!(decide(&[]), None);
        assert_eq!(decide(&[M]), Some(M));
        assert_eq!(decide(&[M, M, M]), Some(M));
        assert_eq!(decide(&[M, B]), Some(B));
        assert_eq!(decide(&[M, I]), Some(B));
        assert_eq!(decide(&[M, B, F]), Some(F));
        assert_eq!(decide(&[F, F]), Some(F));
        assert_eq!(moves(&[M, B, M]), vec![(0, B), (2, B)]);
        assert_eq!(moves(&[M, M]), vec![]);
        assert_eq!(moves(&[B, F]), vec![(0, F)]);
    }

    fn state() -> impl Strategy<Value = State> {
        prop_oneof![Just(I), Just(B), Just(M), Just(F)]
    }

    proptest! {
        /// After applying the moves every member is in the same state; MASTER only if all
        /// wanted MASTER; FAULT iff one wanted FAULT; and applying again moves nothing.
        #[test]
        fn all_or_nothing(wanted in proptest::collection::vec(state(), 1..6)) {
            let mut now = wanted.clone();
            for (i, s) in moves(&wanted) {
                now[i] = s;
            }
            prop_assert!(now.windows(2).all(|w| w[0] == w[1]));
            prop_assert_eq!(now[0] == M, wanted.iter().all(|s| *s == M));
            prop_assert_eq!(now[0] == F, wanted.contains(&F));
            prop_assert!(moves(&now).is_empty());
        }
    }
}
