//! Command line: keepalived(8) flags.
