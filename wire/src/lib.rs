//! Pure codecs of the Spread 4 wire protocols.
//!
//! `client`: the client <-> daemon TCP protocol (handshake, message header,
//! group names, membership bodies). `daemon`: the daemon <-> daemon UDP
//! protocol (packets, tokens, membership messages).
//!
//! No I/O, no clocks, no allocation beyond what an owned representation needs.
//! Parsers take untrusted bytes and never panic.

#![forbid(unsafe_code)]

pub mod client;
pub mod daemon;
pub mod endian;
pub mod monitor;
