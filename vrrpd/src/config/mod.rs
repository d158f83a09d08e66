//! Configuration: keepalived.conf (lexer → keyword tree → typed model) and the model itself.
//!
//! keepalived syntax stays in this module; the rest of the daemon sees only [`model`].

pub mod model;
