//! Packets on the segment port: the 40-byte header and data packets.
//!
//! ```text
//! 0   type            type bits + endian marker
//! 4   transmiter_id   daemon that put it on the wire
//! 8   proc_id         originating daemon
//! 12  memb_id         ring id {proc_id, time}
//! 20  seq             ring-wide packet sequence number
//! 24  token_round     sender's token-round counter
//! 28  conf_hash       configuration hash
//! 32  data_len        int16: bytes after the header
//! 34  padding         2 bytes, never converted
//! 36  first fragment  int16 index, int16 len
//! 40  body            data_len bytes
//! ```
//!
//! A data packet body holds the first fragment at offset 0; every further
//! fragment follows after padding to a 4-byte boundary (counted from the body
//! start) and its own 4-byte `{index, len}` header. The padding bytes are
//! whatever the sender's buffer held; they are kept for exact re-encoding.
//!
//! A message of n pieces carries indexes 1, 2, .., n-1 and `-n` on its last
//! piece; a one-piece message carries -1.

use super::types::{
    packable_together, strip_marker, PacketKind, FRAGMENT_HEADER_LEN, MAX_MESSAGE_PIECES, PACKET_BODY_LEN,
    PACKET_HEADER_LEN,
};
use super::{put_i16, DecodeError};
use crate::client::MembId;
use crate::codec::{self, run, typed, with_byteorder, Fixed, PResult};
use crate::endian::ByteOrder;

/// Index and length of one fragment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragmentHeader {
    pub index: i16,
    pub len: i16,
}

/// The 40-byte packet header, integers in host values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PacketHeader {
    /// Type bits, endian marker removed.
    pub packet_type: u32,
    pub transmiter_id: i32,
    pub proc_id: i32,
    pub memb_id: MembId,
    pub seq: i32,
    pub token_round: i32,
    pub conf_hash: u32,
    /// Body bytes; emitters of whole packets compute it.
    pub data_len: i16,
    /// Two bytes the original never converts; kept raw.
    pub padding: [u8; 2],
    /// The first fragment's header (data packets; zero elsewhere).
    pub first_frag: FragmentHeader,
}

impl PacketHeader {
    pub const LEN: usize = PACKET_HEADER_LEN;

    /// Decode the first 40 bytes; also returns the writer's order.
    pub fn parse(buf: &[u8]) -> Result<(PacketHeader, ByteOrder), DecodeError> {
        // One length check for the whole header, then fields by name.
        let head = buf
            .get(..Self::LEN)
            .ok_or(DecodeError::truncated("packet_header", 0, Self::LEN))?;
        let order = ByteOrder::of_type_word([head[0], head[1], head[2], head[3]]);
        let (_, header) = with_byteorder!(order, B => run(head, 0, Self::fields::<B>))?;
        Ok((header, order))
    }

    fn fields<B: byteorder::ByteOrder>(i: &[u8]) -> PResult<'_, PacketHeader> {
        let (i, packet_type) = typed::u32::<B>(i, "type")?;
        let (i, transmiter_id) = typed::i32::<B>(i, "transmiter_id")?;
        let (i, proc_id) = typed::i32::<B>(i, "proc_id")?;
        let (i, memb_id) = typed::memb_id::<B>(i, "memb_id")?;
        let (i, seq) = typed::i32::<B>(i, "seq")?;
        let (i, token_round) = typed::i32::<B>(i, "token_round")?;
        let (i, conf_hash) = typed::u32::<B>(i, "conf_hash")?;
        let (i, data_len) = typed::i16::<B>(i, "data_len")?;
        let (i, padding) = codec::array(i, "padding")?;
        let (i, index) = typed::i16::<B>(i, "fragment_index")?;
        let (i, len) = typed::i16::<B>(i, "fragment_len")?;
        let header = PacketHeader {
            packet_type: strip_marker(packet_type),
            transmiter_id,
            proc_id,
            memb_id,
            seq,
            token_round,
            conf_hash,
            data_len,
            padding,
            first_frag: FragmentHeader { index, len },
        };
        Ok((i, header))
    }

    /// Encode in `order`, setting that order's marker in the type word.
    pub fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.emit(order));
    }

    pub fn emit(&self, order: ByteOrder) -> [u8; PACKET_HEADER_LEN] {
        let mut a = [0u8; PACKET_HEADER_LEN];
        with_byteorder!(order, B => {
            Fixed::<B>::new(&mut a)
                .u32(strip_marker(self.packet_type) | order.marker())
                .i32(self.transmiter_id)
                .i32(self.proc_id)
                .memb_id(self.memb_id)
                .i32(self.seq)
                .i32(self.token_round)
                .u32(self.conf_hash)
                .i16(self.data_len)
                .bytes(&self.padding)
                .i16(self.first_frag.index)
                .i16(self.first_frag.len);
        });
        a
    }

    pub fn kind(&self) -> PacketKind {
        PacketKind::of(self.packet_type)
    }
}

/// Split a datagram into header, order and body, checking that `data_len`
/// matches the bytes after the header exactly (as receivers require).
pub fn split_datagram(buf: &[u8]) -> Result<(PacketHeader, ByteOrder, &[u8]), DecodeError> {
    let (header, order) = PacketHeader::parse(buf)?;
    if header.data_len < 0 {
        return Err(DecodeError::bad("data_len", 32, "negative"));
    }
    let body = &buf[PACKET_HEADER_LEN..];
    if body.len() != header.data_len as usize {
        return Err(DecodeError::mismatch(
            "data_len",
            32,
            header.data_len as usize,
            body.len(),
        ));
    }
    Ok((header, order, body))
}

/// Decode a packet that is a header only (HURRY, REFER): `data_len` must be 0.
pub fn parse_header_only(buf: &[u8]) -> Result<(PacketHeader, ByteOrder), DecodeError> {
    let (header, order, _) = split_datagram(buf)?;
    if header.data_len != 0 {
        return Err(DecodeError::bad("data_len", 32, "header-only packet with a body"));
    }
    Ok((header, order))
}

/// Encode a header-only packet (`data_len` forced to 0).
pub fn emit_header_only(header: &PacketHeader, order: ByteOrder) -> Vec<u8> {
    let h = PacketHeader {
        data_len: 0,
        ..*header
    };
    h.emit(order).to_vec()
}

/// One fragment of a data packet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// 1..n-1 for non-final pieces, -n for the last of n, -1 for a whole message.
    pub index: i16,
    pub data: Vec<u8>,
    /// Fill of the alignment padding before this fragment's header (only
    /// the bytes needed are used; the first fragment has none).
    pub pad: [u8; 3],
}

impl Fragment {
    pub fn new(index: i16, data: Vec<u8>) -> Fragment {
        Fragment {
            index,
            data,
            pad: [0; 3],
        }
    }

    /// Whether this is the last piece of its message.
    pub fn is_last(&self) -> bool {
        self.index < 0
    }
}

/// Padding that aligns `len` body bytes to 4.
pub fn pad_len(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// A data packet: header and fragments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataPacket {
    /// `data_len` and `first_frag` are recomputed by [`DataPacket::emit`].
    pub header: PacketHeader,
    pub fragments: Vec<Fragment>,
}

impl DataPacket {
    /// Decode a whole datagram whose type is a data (regular) type.
    pub fn parse(buf: &[u8]) -> Result<(DataPacket, ByteOrder), DecodeError> {
        let (header, order, body) = split_datagram(buf)?;
        if header.kind() != PacketKind::Data {
            return Err(DecodeError::bad("type", 0, "not a data packet"));
        }
        let fragments = parse_fragments(header.first_frag, body, order)?;
        Ok((DataPacket { header, fragments }, order))
    }

    /// Bytes of the body as it will be emitted.
    pub fn body_len(&self) -> usize {
        let mut len = 0;
        for (i, f) in self.fragments.iter().enumerate() {
            if i > 0 {
                len += pad_len(len) + FRAGMENT_HEADER_LEN;
            }
            len += f.data.len();
        }
        len
    }

    /// Encode in `order`. `data_len` and the first fragment header come from
    /// the fragments. The caller keeps the body within [`PACKET_BODY_LEN`]
    /// (use [`PacketBuilder`]); larger lengths do not fit the int16 fields.
    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        let mut header = self.header;
        header.data_len = self.body_len() as i16;
        if let Some(first) = self.fragments.first() {
            header.first_frag = FragmentHeader {
                index: first.index,
                len: first.data.len() as i16,
            };
        }
        let mut out = Vec::with_capacity(PACKET_HEADER_LEN + self.body_len());
        header.emit_into(order, &mut out);
        let mut body_len = 0usize;
        for (i, f) in self.fragments.iter().enumerate() {
            if i > 0 {
                let pad = pad_len(body_len);
                out.extend_from_slice(&f.pad[..pad]);
                put_i16(order, &mut out, f.index);
                put_i16(order, &mut out, f.data.len() as i16);
                body_len += pad + FRAGMENT_HEADER_LEN;
            }
            out.extend_from_slice(&f.data);
            body_len += f.data.len();
        }
        out
    }
}

/// Walk the fragments of a data packet body (which starts at offset 40).
fn parse_fragments(
    first: FragmentHeader,
    body: &[u8],
    order: ByteOrder,
) -> Result<Vec<Fragment>, DecodeError> {
    if first.index == 0 {
        return Err(DecodeError::bad("fragment_index", 36, "zero"));
    }
    if first.len < 0 {
        return Err(DecodeError::bad("fragment_len", 38, "negative"));
    }
    if first.len as usize == body.len() {
        // One fragment fills the body: the common full packet.
        return Ok(vec![Fragment::new(first.index, body.to_vec())]);
    }
    let (_, fragments) = with_byteorder!(order, B => run(body, PACKET_HEADER_LEN, |i| {
        let (mut i, data) = codec::take(i, first.len as usize, "fragment")?;
        let mut fragments = vec![Fragment::new(first.index, data.to_vec())];
        while !i.is_empty() {
            let (rest, fragment) = packed_fragment::<B>(i, body.len() - i.len())?;
            fragments.push(fragment);
            i = rest;
        }
        Ok((i, fragments))
    }))?;
    Ok(fragments)
}

/// A non-first fragment: padding to a 4-byte boundary (`used` body bytes
/// so far), its `{index, len}` header, its data.
#[inline(always)]
fn packed_fragment<B: byteorder::ByteOrder>(i: &[u8], used: usize) -> PResult<'_, Fragment> {
    let pad_at = i;
    let (i, pad_bytes) = codec::take(i, pad_len(used), "fragment padding")?;
    let mut pad = [0u8; 3];
    pad[..pad_bytes.len()].copy_from_slice(pad_bytes);
    if i.len() < FRAGMENT_HEADER_LEN {
        return codec::bad(pad_at, "fragment_header", "fragments exceed data_len");
    }
    // A checked view of the 4-byte header: its length was just checked.
    let (head, rest) = i.split_at(FRAGMENT_HEADER_LEN);
    let index = B::read_i16(&head[0..2]);
    if index == 0 {
        return codec::bad(i, "fragment_index", "zero");
    }
    let len = B::read_i16(&head[2..4]);
    if len < 0 {
        return codec::bad(&i[2..], "fragment_len", "negative");
    }
    let i = rest;
    let (i, data) = codec::take(i, len as usize, "fragment")?;
    Ok((
        i,
        Fragment {
            index,
            data: data.to_vec(),
            pad,
        },
    ))
}

/// One piece of a message cut for sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece<'a> {
    pub index: i16,
    pub data: &'a [u8],
}

/// The fragment index of piece `i` (0-based) of a message of `n` pieces.
pub fn piece_index(i: usize, n: usize) -> i16 {
    if i + 1 >= n {
        -(n as i16)
    } else {
        (i + 1) as i16
    }
}

/// How many pieces a message of `len` bytes (header and names included)
/// is cut into.
pub fn piece_count(len: usize) -> usize {
    len.div_ceil(PACKET_BODY_LEN)
}

/// Cut a whole message (48-byte header, names, body) into pieces of at
/// most [`PACKET_BODY_LEN`] bytes with their fragment indexes. `None` for an
/// empty message or one of more than [`MAX_MESSAGE_PIECES`] pieces.
pub fn split_message(message: &[u8]) -> Option<Vec<Piece<'_>>> {
    let n = piece_count(message.len());
    if n == 0 || n > MAX_MESSAGE_PIECES {
        return None;
    }
    Some(
        message
            .chunks(PACKET_BODY_LEN)
            .enumerate()
            .map(|(i, data)| Piece {
                index: piece_index(i, n),
                data,
            })
            .collect(),
    )
}

/// A fragment that does not continue the message being reassembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentOrderError {
    /// The piece number (1-based) that was due.
    pub expected: usize,
    pub got_index: i16,
}

impl std::fmt::Display for FragmentOrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fragment index {} does not continue a message at piece {}",
            self.got_index, self.expected
        )
    }
}

impl std::error::Error for FragmentOrderError {}

/// Joins the pieces of one sender's messages, fed in that sender's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reassembler {
    buf: Vec<u8>,
    pieces: usize,
}

impl Reassembler {
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// Whether a message is partly assembled.
    pub fn in_progress(&self) -> bool {
        self.pieces > 0
    }

    /// Add the next piece; returns the whole message on its last piece. A
    /// piece out of order drops what was assembled and is an error.
    pub fn push(&mut self, index: i16, data: &[u8]) -> Result<Option<Vec<u8>>, FragmentOrderError> {
        let expected = self.pieces + 1;
        let number = usize::from(index.unsigned_abs());
        if index == 0 || number != expected {
            self.buf.clear();
            self.pieces = 0;
            return Err(FragmentOrderError {
                expected,
                got_index: index,
            });
        }
        self.buf.extend_from_slice(data);
        if index < 0 {
            self.pieces = 0;
            Ok(Some(std::mem::take(&mut self.buf)))
        } else {
            self.pieces = expected;
            Ok(None)
        }
    }
}

/// Builds one data packet the way the original fills it: a first piece,
/// then whole small messages appended while they fit and are compatible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketBuilder {
    packet_type: u32,
    fragments: Vec<Fragment>,
    body_len: usize,
}

impl PacketBuilder {
    /// Start a packet of `packet_type` with its first piece; `None` if the
    /// piece is larger than a packet body.
    pub fn new(packet_type: u32, first: Piece<'_>) -> Option<PacketBuilder> {
        if first.data.len() > PACKET_BODY_LEN {
            return None;
        }
        Some(PacketBuilder {
            packet_type: strip_marker(packet_type),
            fragments: vec![Fragment::new(first.index, first.data.to_vec())],
            body_len: first.data.len(),
        })
    }

    pub fn packet_type(&self) -> u32 {
        self.packet_type
    }

    pub fn body_len(&self) -> usize {
        self.body_len
    }

    /// Room left for the data of one more packed fragment.
    pub fn available(&self) -> usize {
        PACKET_BODY_LEN.saturating_sub(self.body_len + pad_len(self.body_len) + FRAGMENT_HEADER_LEN)
    }

    /// Whether a whole message of `len` bytes sent as `packet_type` may be
    /// appended. Only the last fragment may end a message that continues in
    /// another packet, so appending after a non-final piece is refused.
    pub fn can_append(&self, packet_type: u32, len: usize) -> bool {
        let open_message = self.fragments.last().is_some_and(|f| !f.is_last());
        !open_message && len <= self.available() && packable_together(self.packet_type, packet_type)
    }

    /// Append a whole one-piece message (index -1) if it may be packed.
    /// Returns false, changing nothing, if it may not.
    pub fn try_append(&mut self, packet_type: u32, message: &[u8]) -> bool {
        if !self.can_append(packet_type, message.len()) {
            return false;
        }
        self.body_len += pad_len(self.body_len) + FRAGMENT_HEADER_LEN + message.len();
        self.fragments.push(Fragment::new(-1, message.to_vec()));
        true
    }

    pub fn fragments(&self) -> &[Fragment] {
        &self.fragments
    }

    /// The finished packet; `header.packet_type` is set to the first piece's
    /// type, `data_len` and `first_frag` follow the fragments.
    pub fn finish(self, header: PacketHeader) -> DataPacket {
        let first = self.fragments.first().map(|f| FragmentHeader {
            index: f.index,
            len: f.data.len() as i16,
        });
        DataPacket {
            header: PacketHeader {
                packet_type: self.packet_type,
                data_len: self.body_len as i16,
                first_frag: first.unwrap_or_default(),
                ..header
            },
            fragments: self.fragments,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::type_bits::*;
    use super::*;
    use crate::error::ErrorKind;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// d03: HURRY from 10.99.0.3 to the leader.
    const HURRY: &str = "c00000800300630a0300630a00000000000000000000000000000000b45b602e0000000000000000";

    /// d03: JOIN_MESS of #alice#d1 for `g`, one AGREED packet.
    const JOIN_MESS_PACKET: &str =
        "880000800100630a0100630a0100630a02e7036b0300000019000000b45b602e50000000ffff5000\
8000018023616c69636523643100000000000000000000000000000000000000000000000100000080000080000000006700\
000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn hurry_header_only() {
        let bytes = hex(HURRY);
        let (h, order) = parse_header_only(&bytes).unwrap();
        assert_eq!(order, ByteOrder::Little);
        assert_eq!(h.kind(), PacketKind::Hurry);
        assert_eq!(h.packet_type, HURRY_TYPE);
        assert_eq!(h.proc_id, 0x0a63_0003);
        assert_eq!(h.conf_hash, 778_066_868);
        assert_eq!(emit_header_only(&h, order), bytes);
        let be = emit_header_only(&h, ByteOrder::Big);
        assert_eq!(&be[..4], &[0, 0, 0, 0x40]);
        assert_eq!(parse_header_only(&be).unwrap(), (h, ByteOrder::Big));
    }

    #[test]
    fn join_mess_packet() {
        let bytes = hex(JOIN_MESS_PACKET);
        let (p, order) = DataPacket::parse(&bytes).unwrap();
        assert_eq!(p.header.packet_type, AGREED_TYPE);
        assert_eq!(p.header.seq, 3);
        assert_eq!(p.header.token_round, 25);
        assert_eq!(p.fragments.len(), 1);
        assert_eq!(p.fragments[0].index, -1);
        assert_eq!(p.fragments[0].data.len(), 80);
        assert_eq!(p.emit(order), bytes);
    }

    #[test]
    fn length_checks() {
        let bytes = hex(JOIN_MESS_PACKET);
        assert!(matches!(
            DataPacket::parse(&bytes[..bytes.len() - 1]),
            Err(DecodeError {
                kind: ErrorKind::LengthMismatch { .. },
                ..
            })
        ));
        assert!(matches!(
            DataPacket::parse(&bytes[..39]),
            Err(DecodeError {
                kind: ErrorKind::Truncated { .. },
                ..
            })
        ));
        // first fragment longer than the body
        let mut bad = bytes.clone();
        bad[38] = 0x51;
        assert!(DataPacket::parse(&bad).is_err());
        // a first fragment shorter than the body leaves 79 - 76 bytes: too few for a header
        let mut short = bytes.clone();
        short[38] = 76;
        assert!(matches!(
            DataPacket::parse(&short),
            Err(DecodeError {
                kind: ErrorKind::BadValue { .. },
                ..
            })
        ));
    }

    #[test]
    fn split_index_rule() {
        let msg = vec![7u8; 5080];
        let pieces = split_message(&msg).unwrap();
        let got: Vec<(i16, usize)> = pieces.iter().map(|p| (p.index, p.data.len())).collect();
        assert_eq!(got, vec![(1, 1432), (2, 1432), (3, 1432), (-4, 784)]);
        let one = split_message(&msg[..100]).unwrap();
        assert_eq!((one[0].index, one.len()), (-1, 1));
        let exact = split_message(&msg[..2864]).unwrap();
        assert_eq!(exact.iter().map(|p| p.index).collect::<Vec<_>>(), vec![1, -2]);
        assert!(split_message(&[]).is_none());
        assert!(split_message(&vec![0u8; 100 * 1432 + 1]).is_none());
        assert_eq!(split_message(&vec![0u8; 100 * 1432]).unwrap().len(), 100);
    }

    #[test]
    fn reassembly_follows_the_index_rule() {
        let msg: Vec<u8> = (0..5080u32).map(|i| i as u8).collect();
        let mut r = Reassembler::new();
        let pieces = split_message(&msg).unwrap();
        for p in &pieces[..3] {
            assert_eq!(r.push(p.index, p.data), Ok(None));
        }
        assert!(r.in_progress());
        assert_eq!(r.push(pieces[3].index, pieces[3].data), Ok(Some(msg.clone())));
        assert!(!r.in_progress());
        assert_eq!(r.push(-1, b"one"), Ok(Some(b"one".to_vec())));
        assert!(r.push(2, b"x").is_err());
        assert!(r.push(0, b"x").is_err());
        assert_eq!(r.push(1, b"a"), Ok(None));
        assert_eq!(
            r.push(-3, b"c"),
            Err(FragmentOrderError {
                expected: 2,
                got_index: -3
            })
        );
        assert!(!r.in_progress());
    }

    #[test]
    fn packer_follows_compatibility_and_room() {
        let m = vec![1u8; 87];
        let mut b = PacketBuilder::new(AGREED_TYPE, Piece { index: -1, data: &m }).unwrap();
        assert!(b.try_append(AGREED_TYPE, &m));
        assert!(b.try_append(FIFO_TYPE, &[2u8; 92]));
        assert!(!b.try_append(SAFE_TYPE, &m));
        assert_eq!(b.body_len(), 87 + 1 + 4 + 87 + 1 + 4 + 92);
        let p = b.finish(PacketHeader::default());
        assert_eq!(p.header.packet_type, AGREED_TYPE);
        assert_eq!(p.header.data_len, 276);
        let bytes = p.emit(ByteOrder::Big);
        assert_eq!(bytes.len(), 40 + 276);
        assert_eq!(DataPacket::parse(&bytes).unwrap(), (p, ByteOrder::Big));

        // Room: a body of 1424 leaves 1432 - 1424 - 0 - 4 = 4 bytes.
        let big = vec![0u8; 1424];
        let mut b = PacketBuilder::new(
            SAFE_TYPE,
            Piece {
                index: -1,
                data: &big,
            },
        )
        .unwrap();
        assert_eq!(b.available(), 4);
        assert!(!b.try_append(SAFE_TYPE, &[0u8; 5]));
        assert!(b.try_append(SAFE_TYPE, &[0u8; 4]));
        assert_eq!(b.body_len(), 1432);
        assert_eq!(b.available(), 0);

        // Never after a piece of an unfinished message.
        let mut b = PacketBuilder::new(AGREED_TYPE, Piece { index: 1, data: &m }).unwrap();
        assert!(!b.try_append(AGREED_TYPE, &m));
        assert!(PacketBuilder::new(
            AGREED_TYPE,
            Piece {
                index: 1,
                data: &[0u8; 1433]
            }
        )
        .is_none());
    }
}
