//! rtnetlink: virtual addresses and link state.
