//! The daemon: instance actors that drive the state machines.
