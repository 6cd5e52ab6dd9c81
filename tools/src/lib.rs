//! The Spread 4.4 command-line tools (`spuser`, `spflooder`, `spmonitor`),
//! built on spread-rs's own Rust client core (the `spread` library of
//! `capi/`, used as a Rust crate, not through its C ABI).
//!
//! The tools print what the original tools print for the same events:
//! scripts parse that text. This library holds what the binaries share:
//! reading standard input the way C's `fgets` and `sscanf` see it
//! ([`input`], [`scan`]) and a small session type over the client core
//! ([`mailbox`]). It does not reimplement the protocol.

pub mod input;
pub mod mailbox;
pub mod messages;
pub mod monitor;
pub mod scan;
