//! Pure codecs of the Spread 4 wire protocols.
//!
//! `client`: the client <-> daemon TCP protocol (handshake, message header,
//! group names, membership bodies). `daemon`: the daemon <-> daemon UDP
//! protocol (packets, tokens, membership messages). `flush`: the trailers
//! and reserved types the Flush layer adds to ordinary client messages.
//!
//! No I/O, no clocks, no allocation beyond what an owned representation needs.
//!
//! # One idiom for every codec
//! * **Parsers of untrusted bytes are nom parsers** over the borrowed input
//!   (zero-copy: a value copies only what it owns), built from the field
//!   parsers of `codec`, each of which names its field. Every failure is one
//!   [`DecodeError`]: the field, the byte offset where it starts in the unit
//!   (datagram, message, body), and an [`ErrorKind`] (truncated, length
//!   mismatch, bad value, trailing bytes). Counts are checked against the
//!   bytes present before anything is allocated; parsers never panic.
//! * **Checked views where they read better**: a fixed layout whose length
//!   was checked once (the 48-byte message header, the 40-byte packet
//!   header, group names) is read by position, as smoltcp's
//!   `Packet::new_checked` does: no field of it can fail on its own.
//! * **Writers use byteorder** and always take the order to write in; length
//!   and count fields are computed from the parts, never trusted from the
//!   caller. Fixed headers are written into arrays without allocating.
//! * **Byte order is explicit**: Spread writes native order and marks it in
//!   the type word ([`endian`]); parsers read the marker, return the order
//!   they found, and accept both.

#![forbid(unsafe_code)]

pub mod client;
mod codec;
pub mod daemon;
pub mod endian;
pub mod error;
pub mod flush;
pub mod monitor;

pub use error::{DecodeError, ErrorKind};
