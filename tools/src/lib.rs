//! The Spread 4.4 command-line tools (`spuser`, `spflooder`, `spmonitor`),
//! built on spread-rs's own Rust client core (the `spread` library of
//! `capi/`, used as a Rust crate, not through its C ABI).
//!
//! The tools print what the original tools print for the same events:
//! scripts parse that text. This library holds what the binaries share:
//! reading standard input the way C's `fgets` and `sscanf` see it
//! ([`input`], [`scan`]), a small session type over the client core
//! ([`mailbox`]), what a service type announces ([`messages`]) and
//! spmonitor's menu ([`monitor`], on the codecs of `spread_wire::monitor`).
//! It does not reimplement either protocol.

pub mod input;
pub mod mailbox;
pub mod messages;
pub mod monitor;
pub mod scan;
