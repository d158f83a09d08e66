//! Deterministic simulator: many state machines on a virtual LAN with a virtual clock.
