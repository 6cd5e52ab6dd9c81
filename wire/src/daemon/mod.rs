//! The Spread 4 daemon <-> daemon protocol (UDP).
//!
//! * [`types`]: type-word bits, sizes and limits.
//! * [`packet`]: the 40-byte packet header, data packets with packed
//!   fragments, message splitting and packing (port `P`).
//! * [`token`]: the 40-byte token header and regular tokens with
//!   retransmission requests (port `P + 1`).
//! * [`membership`]: ALIVE, JOIN, REFER and HURRY packets, FORM1 and FORM2
//!   tokens.
//! * [`groups`]: the body of the GROUPS state-exchange message.
//!
//! Every integer is in the writer's native order; the writer's order is read
//! from the endian marker of the type word (see [`crate::endian`]). Parsers
//! take a whole datagram from the network, check every count and length
//! against what is there, and never panic. Emitters take the order to write
//! in and compute length fields from the parts they are given.
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

/// Why a daemon datagram could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The datagram ends inside `field`, which starts at `offset` and needs
    /// `needed` bytes.
    Truncated {
        field: &'static str,
        offset: usize,
        needed: usize,
    },
    /// A length field disagrees with the bytes present.
    LengthMismatch {
        field: &'static str,
        offset: usize,
        declared: usize,
        actual: usize,
    },
    /// A field holds a value the protocol does not allow.
    Invalid {
        field: &'static str,
        offset: usize,
        reason: &'static str,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated {
                field,
                offset,
                needed,
            } => write!(f, "truncated {field} at offset {offset}: {needed} bytes needed"),
            DecodeError::LengthMismatch {
                field,
                offset,
                declared,
                actual,
            } => write!(
                f,
                "{field} at offset {offset} declares {declared} bytes but {actual} are present"
            ),
            DecodeError::Invalid {
                field,
                offset,
                reason,
            } => write!(f, "invalid {field} at offset {offset}: {reason}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A bounds-checked reader over one datagram (or a part of it).
///
/// Offsets in errors are counted from the start of the buffer given to
/// [`Reader::new`] plus `base`, so errors point into the whole datagram.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    order: ByteOrder,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize, order: ByteOrder) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            base,
            order,
        }
    }

    /// Offset of the next byte within the datagram.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(DecodeError::Truncated {
                field,
                offset: self.offset(),
                needed: n,
            }),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.bytes(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(self.order.read_u32(self.array(field)?))
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        Ok(self.u32(field)? as i32)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(self.order.read_u16(self.array(field)?))
    }

    pub(crate) fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        Ok(self.u16(field)? as i16)
    }

    pub(crate) fn memb_id(&mut self, field: &'static str) -> Result<crate::client::MembId, DecodeError> {
        Ok(crate::client::MembId {
            proc_id: self.i32(field)?,
            time: self.i32(field)?,
        })
    }

    /// A count field that must be `>= 0`, returned with its offset.
    pub(crate) fn count16(&mut self, field: &'static str) -> Result<(usize, usize), DecodeError> {
        let at = self.offset();
        let v = self.i16(field)?;
        if v < 0 {
            return Err(DecodeError::Invalid {
                field,
                offset: at,
                reason: "negative count",
            });
        }
        Ok((v as usize, at))
    }

    pub(crate) fn count32(&mut self, field: &'static str) -> Result<(usize, usize), DecodeError> {
        let at = self.offset();
        let v = self.i32(field)?;
        if v < 0 {
            return Err(DecodeError::Invalid {
                field,
                offset: at,
                reason: "negative count",
            });
        }
        Ok((v as usize, at))
    }

    /// Check that `count` items of `item_len` bytes can still be present.
    pub(crate) fn check_fits(
        &self,
        count: usize,
        item_len: usize,
        field: &'static str,
        at: usize,
    ) -> Result<(), DecodeError> {
        match count.checked_mul(item_len) {
            Some(n) if n <= self.remaining() => Ok(()),
            _ => Err(DecodeError::Invalid {
                field,
                offset: at,
                reason: "count exceeds the bytes present",
            }),
        }
    }

    pub(crate) fn i32_vec(&mut self, count: usize, field: &'static str) -> Result<Vec<i32>, DecodeError> {
        let at = self.offset();
        self.check_fits(count, 4, field, at)?;
        (0..count).map(|_| self.i32(field)).collect()
    }

    /// Fail unless everything was consumed.
    pub(crate) fn finish(&self, field: &'static str) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Invalid {
                field,
                offset: self.offset(),
                reason: "trailing bytes",
            })
        }
    }
}

pub(crate) fn put_i16(order: ByteOrder, out: &mut Vec<u8>, v: i16) {
    order.put_u16(out, v as u16);
}

pub(crate) fn put_memb_id(order: ByteOrder, out: &mut Vec<u8>, m: crate::client::MembId) {
    order.put_i32(out, m.proc_id);
    order.put_i32(out, m.time);
}

/// A daemon id as an IPv4 address (ids are host-order IPv4 addresses).
pub fn ip_of(id: i32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(id as u32)
}

/// The daemon id of an IPv4 address.
pub fn id_of(ip: std::net::Ipv4Addr) -> i32 {
    u32::from(ip) as i32
}
