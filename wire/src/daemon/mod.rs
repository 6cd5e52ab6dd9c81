//! The Spread 4 daemon <-> daemon protocol (UDP).
//!
//! * [`types`]: type-word bits, sizes and limits.
//! * [`packet`]: the 40-byte packet header, data packets with packed
//!   fragments, message splitting and packing (port `P`).
//! * [`token`]: the 40-byte token header and regular tokens with
//!   retransmission requests (port `P + 1`).
//! * [`membership`]: ALIVE and JOIN bodies, FORM1 and FORM2 tokens (REFER
//!   and HURRY are headers only).
//! * [`groups`]: the body of the GROUPS state-exchange message.
//!
//! Every integer is in the writer's native order; the writer's order is read
//! from the endian marker of the type word (see [`crate::endian`]). Parsers
//! take a whole datagram from the network, check every count and length
//! against what is there, and never panic. Emitters take the order to write
//! in and compute length fields from the parts they are given.
//!
//! The types are the shapes the daemon's ring and membership engines work
//! with (daemon ids as [`DaemonId`], member lists with their "done" count);
//! the engines import them from here and nothing converts. The `parse_*` /
//! `emit_*` free functions are the engines' entry points (whole datagrams,
//! this machine's byte order); the `*_in` variants and the `parse` / `emit`
//! methods take or return the order.
//!
//! Facts follow the 4.4.0 captures in `shared/spread4-wire/daemon`.
//! Deliberately not here: any protocol decision (what to send when); that is
//! the daemon's ring and membership engines.

pub mod groups;
pub mod membership;
pub mod packet;
pub mod token;
pub mod types;

#[cfg(test)]
mod proptests;

pub use groups::*;
pub use membership::*;
pub use packet::*;
pub use token::*;
pub use types::*;

use crate::endian::ByteOrder;

pub use crate::error::{DecodeError, ErrorKind};

pub(crate) fn put_i16(order: ByteOrder, out: &mut Vec<u8>, v: i16) {
    order.put_u16(out, v as u16);
}

pub(crate) fn put_memb_id(order: ByteOrder, out: &mut Vec<u8>, m: crate::client::MembId) {
    order.put_i32(out, m.proc_id);
    order.put_i32(out, m.time);
}

/// A daemon id as an IPv4 address (ids are host-order IPv4 addresses).
pub fn ip_of(id: DaemonId) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(id)
}

/// The daemon id of an IPv4 address.
pub fn id_of(ip: std::net::Ipv4Addr) -> DaemonId {
    u32::from(ip)
}
