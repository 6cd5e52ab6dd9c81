//! The 48-byte message header and what follows it.
//!
//! ```text
//! 0   type        service/control bits + endian marker   (writer's order)
//! 4   sender      32-byte name: sender's private group, or the group name
//! 36  num_groups  number of 32-byte names after the header
//! 40  hint        (mess_type << 8) & 0x00ffff00 + the writer's marker: never swapped
//! 44  data_len    body bytes after the names
//! ```

use super::limits::{MAX_GROUP_NAME, MESSAGE_HEADER_LEN};
use super::names::GroupName;
use super::DecodeError;
use crate::codec::{self, run, with_byteorder, Fixed};
use crate::endian::{ByteOrder, ENDIAN_MARKER};

/// Bits a raw hint may carry: the marker and the 16-bit mess_type.
pub const HINT_ALLOWED_BITS: u32 = 0x80ff_ff80;

/// A message header, with integer fields in host values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Fields in wire order and laid out as declared: the compiler then moves
// neighbouring fields as one word when it reads or writes the header
// (callgrind, codec_bench: fewer instructions for every header case).
#[repr(C)]
pub struct MessageHeader {
    /// Service and control bits, endian marker removed.
    pub service_type: u32,
    pub sender: GroupName,
    pub num_groups: i32,
    /// The hint bytes exactly as the original writer wrote them.
    pub hint: [u8; 4],
    pub data_len: i32,
}

impl MessageHeader {
    pub const LEN: usize = MESSAGE_HEADER_LEN;

    /// Decode and convert to host values; also returns the writer's order.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<(MessageHeader, ByteOrder), DecodeError> {
        // A checked view: one length check for the whole fixed layout, then
        // fields by position (no field can fail on its own).
        let Some(head) = buf.first_chunk::<MESSAGE_HEADER_LEN>() else {
            return Err(DecodeError::truncated("message_header", 0, MESSAGE_HEADER_LEN));
        };
        let order = ByteOrder::of_type_word([head[0], head[1], head[2], head[3]]);
        Ok((with_byteorder!(order, B => Self::view::<B>(head)), order))
    }

    #[inline(always)]
    fn view<B: byteorder::ByteOrder>(h: &[u8; MESSAGE_HEADER_LEN]) -> MessageHeader {
        let mut sender = [0u8; MAX_GROUP_NAME];
        sender.copy_from_slice(&h[4..36]);
        let mut hint = [0u8; 4];
        // Raw: the hint carries its own writer's marker and is never swapped.
        hint.copy_from_slice(&h[40..44]);
        MessageHeader {
            service_type: B::read_u32(&h[0..4]) & !ENDIAN_MARKER,
            sender: GroupName::from_raw(sender),
            num_groups: B::read_i32(&h[36..40]),
            hint,
            data_len: B::read_i32(&h[44..48]),
        }
    }

    /// Encode in `order`, setting that order's marker in the type word.
    pub fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.emit(order));
    }

    #[inline]
    pub fn emit(&self, order: ByteOrder) -> [u8; MESSAGE_HEADER_LEN] {
        let mut a = [0u8; MESSAGE_HEADER_LEN];
        with_byteorder!(order, B => {
            Fixed::<B>::new(&mut a)
                .u32((self.service_type & !ENDIAN_MARKER) | order.marker())
                .bytes(self.sender.raw())
                .i32(self.num_groups)
                .bytes(&self.hint)
                .i32(self.data_len);
        });
        a
    }

    /// The hint as a raw host word, as the daemon validates it.
    pub fn raw_hint(&self) -> u32 {
        u32::from_ne_bytes(self.hint)
    }

    /// The application's 16-bit message type, read in the hint's own order.
    pub fn mess_type(&self) -> i16 {
        mess_type_of_hint(self.hint)
    }

    /// Whether the hint was written in another order than `reader`.
    pub fn hint_order(&self) -> ByteOrder {
        ByteOrder::of_type_word(self.hint)
    }
}

/// The hint word a writer of `order` puts for `mess_type`.
pub fn hint_for(mess_type: i16, order: ByteOrder) -> [u8; 4] {
    let v = (((mess_type as u16 as u32) << 8) & 0x00ff_ff00) | order.marker();
    order.u32_bytes(v)
}

/// The 16-bit message type carried by a hint.
pub fn mess_type_of_hint(hint: [u8; 4]) -> i16 {
    let order = ByteOrder::of_type_word(hint);
    ((order.read_u32(hint) >> 8) & 0xffff) as u16 as i16
}

/// Decode `count` group names.
pub fn parse_group_names(buf: &[u8], count: usize) -> Result<Vec<GroupName>, DecodeError> {
    let needed = count
        .checked_mul(MAX_GROUP_NAME)
        .ok_or(DecodeError::bad("num_groups", 0, "too large"))?;
    if buf.len() < needed {
        return Err(DecodeError::truncated("group names", 0, needed));
    }
    Ok(names_view(&buf[..needed]))
}

/// A checked view: names of a region whose length was checked.
fn names_view(names: &[u8]) -> Vec<GroupName> {
    names
        .chunks_exact(MAX_GROUP_NAME)
        .map(|c| GroupName::from_raw(c.try_into().expect("32-byte chunk")))
        .collect()
}

pub fn emit_group_names(names: &[GroupName], out: &mut Vec<u8>) {
    for n in names {
        out.extend_from_slice(n.raw());
    }
}

/// A whole message: header, destination or member names, body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub header: MessageHeader,
    pub groups: Vec<GroupName>,
    pub body: Vec<u8>,
}

impl Message {
    /// Decode one whole message; returns it, the writer's order and bytes used.
    pub fn parse(buf: &[u8]) -> Result<(Message, ByteOrder, usize), DecodeError> {
        Message::parse_after_gap(buf, 0)
    }

    /// Decode a message whose names start `gap` bytes after the header.
    fn parse_after_gap(buf: &[u8], gap: usize) -> Result<(Message, ByteOrder, usize), DecodeError> {
        let (header, order) = MessageHeader::parse(buf)?;
        if header.num_groups < 0 {
            return Err(DecodeError::bad("num_groups", 36, "negative"));
        }
        if header.data_len < 0 {
            return Err(DecodeError::bad("data_len", 44, "negative"));
        }
        let names_at = MESSAGE_HEADER_LEN + gap;
        // Checked: on a 32-bit target the announced lengths can overflow.
        let names_len = (header.num_groups as usize)
            .checked_mul(MAX_GROUP_NAME)
            .ok_or(DecodeError::bad("num_groups", 36, "too large"))?;
        let total = names_len
            .checked_add(names_at)
            .and_then(|n| n.checked_add(header.data_len as usize))
            .ok_or(DecodeError::bad("data_len", 44, "message length overflows"))?;
        // The whole message is checked at once: a stream reader waits for `total`.
        let Some(rest) = buf.get(names_at..total) else {
            return Err(DecodeError::truncated("message", 0, total));
        };
        let (names, body) = rest.split_at(names_len);
        let message = Message {
            header,
            groups: names_view(names),
            body: body.to_vec(),
        };
        Ok((message, order, total))
    }

    pub fn encoded_len(&self) -> usize {
        MESSAGE_HEADER_LEN + self.groups.len() * MAX_GROUP_NAME + self.body.len()
    }

    /// Encode in `order`; `num_groups` and `data_len` are taken from the parts.
    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        let header = MessageHeader {
            num_groups: self.groups.len() as i32,
            data_len: self.body.len() as i32,
            ..self.header
        };
        header.emit_into(order, &mut out);
        emit_group_names(&self.groups, &mut out);
        out.extend_from_slice(&self.body);
        out
    }
}

/// A reject delivery: the header (type REJECT_MESS [| SELF_DISCARD]), a word
/// with the refused message's type, the names (sender's private group
/// appended), the body.
pub fn emit_reject(
    header: &MessageHeader,
    old_type: u32,
    groups: &[GroupName],
    body: &[u8],
    order: ByteOrder,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(MESSAGE_HEADER_LEN + 4 + groups.len() * MAX_GROUP_NAME + body.len());
    header.emit_into(order, &mut out);
    order.put_u32(&mut out, old_type | order.marker());
    emit_group_names(groups, &mut out);
    out.extend_from_slice(body);
    out
}

/// A reject delivery as a client reads it (the inverse of [`emit_reject`]).
///
/// `num_groups` and `data_len` do not count the old-type word; it sits
/// between the header and the names. Only a daemon -> client stream carries
/// this layout: a daemon must not apply it to what a client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectDelivery {
    /// The header, `type` = REJECT_MESS [| SELF_DISCARD].
    pub message: Message,
    /// The refused message's type, endian marker removed.
    pub old_type: u32,
}

impl RejectDelivery {
    /// Decode one reject delivery; returns it, the writer's order and bytes used.
    pub fn parse(buf: &[u8]) -> Result<(RejectDelivery, ByteOrder, usize), DecodeError> {
        let (_, order) = MessageHeader::parse(buf)?;
        let (_, old_type) = run(&buf[MESSAGE_HEADER_LEN..], MESSAGE_HEADER_LEN, |i| {
            codec::u32(i, order, "old_type")
        })?;
        let old_type = old_type & !ENDIAN_MARKER;
        let (message, _, used) = Message::parse_after_gap(buf, 4)?;
        Ok((RejectDelivery { message, old_type }, order, used))
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        let header = MessageHeader {
            num_groups: self.message.groups.len() as i32,
            data_len: self.message.body.len() as i32,
            ..self.message.header
        };
        emit_reject(
            &header,
            self.old_type,
            &self.message.groups,
            &self.message.body,
            order,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::service::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn join_notice_of_c09() {
        let mut bytes = hex("80110080");
        bytes.extend_from_slice(GroupName::new(b"g1").unwrap().raw());
        bytes.extend_from_slice(&hex("02000000800000803800000000"));
        let (h, order) = MessageHeader::parse(&bytes).unwrap();
        assert_eq!(order, ByteOrder::Little);
        assert_eq!(h.service_type, REG_MEMB_MESS | CAUSED_BY_JOIN);
        assert_eq!(h.num_groups, 2);
        assert_eq!(h.data_len, 56);
        assert_eq!(h.mess_type(), 0);
        assert_eq!(&h.emit(ByteOrder::Little)[..], &bytes[..48]);
    }

    #[test]
    fn hint_carries_signed_mess_type() {
        assert_eq!(hint_for(-2, ByteOrder::Little), [0x80, 0xfe, 0xff, 0x80]);
        assert_eq!(hint_for(0x1234, ByteOrder::Little), [0x80, 0x34, 0x12, 0x80]);
        assert_eq!(mess_type_of_hint([0x80, 0xfe, 0xff, 0x80]), -2);
        // A big-endian writer's hint for 258, as c27 shows it.
        assert_eq!(hint_for(258, ByteOrder::Big), [0x00, 0x01, 0x02, 0x00]);
        assert_eq!(mess_type_of_hint([0x00, 0x01, 0x02, 0x00]), 258);
    }

    #[test]
    fn big_endian_header_converts() {
        let h = MessageHeader {
            service_type: AGREED_MESS,
            sender: GroupName::new(b"#b#d").unwrap(),
            num_groups: 1,
            hint: hint_for(7, ByteOrder::Big),
            data_len: 5,
        };
        let be = h.emit(ByteOrder::Big);
        assert_eq!(&be[..4], &[0, 0, 0, 0x10]);
        assert_eq!(MessageHeader::parse(&be).unwrap(), (h, ByteOrder::Big));
    }

    #[test]
    fn message_round_trip() {
        let m = Message {
            header: MessageHeader {
                service_type: SAFE_MESS,
                sender: GroupName::new(b"#a#b").unwrap(),
                num_groups: 2,
                hint: hint_for(1, ByteOrder::Little),
                data_len: 3,
            },
            groups: vec![GroupName::new(b"g1").unwrap(), GroupName::new(b"g2").unwrap()],
            body: b"abc".to_vec(),
        };
        let bytes = m.emit(ByteOrder::Little);
        assert_eq!(
            Message::parse(&bytes).unwrap(),
            (m, ByteOrder::Little, bytes.len())
        );
        assert!(matches!(
            Message::parse(&bytes[..100]),
            Err(e) if e.bytes_needed() == Some(bytes.len())
        ));
    }
}
