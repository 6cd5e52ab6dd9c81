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
    packable_together, strip_marker, DaemonId, PacketKind, BODY_LEN, FRAGMENT_HEADER_LEN, HEADER_LEN,
    MAX_MESSAGE_PIECES,
};
use super::DecodeError;
use crate::client::MembId;
use crate::codec::{self, run, with_byteorder, Fixed, PResult};
use crate::endian::ByteOrder;

/// The 40-byte header of everything sent to the packet port, integers in
/// host values. The two padding bytes are written as zero (the original
/// never converts them; every capture has them zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
// Fields in wire order and laid out as declared: the compiler then moves
// neighbouring fields as one word when it reads or writes the header
// (callgrind, codec_bench: fewer instructions for every header case).
#[repr(C)]
pub struct PacketHeader {
    /// Type bits, endian marker removed.
    pub kind: u32,
    /// Daemon that put it on the wire (`transmiter_id`).
    pub transmitter: DaemonId,
    /// Originating daemon.
    pub proc_id: DaemonId,
    pub memb_id: MembId,
    pub seq: i32,
    pub token_round: i32,
    pub conf_hash: u32,
    /// Body bytes; emitters of whole packets compute it. Read as unsigned:
    /// receivers compare it with the datagram's length.
    pub data_len: u16,
    /// The first fragment's index and length (data packets; zero elsewhere).
    pub frag_index: i16,
    pub frag_len: i16,
}

impl PacketHeader {
    pub const LEN: usize = HEADER_LEN;

    /// Decode the first 40 bytes; also returns the writer's order. The
    /// caller checks `data_len` against the datagram (or uses
    /// [`split_datagram`]).
    pub fn parse(buf: &[u8]) -> Result<(PacketHeader, ByteOrder), DecodeError> {
        // A checked view: one length check for the whole fixed layout, then
        // fields by position (no field can fail on its own).
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::truncated("packet_header", 0, HEADER_LEN));
        };
        let order = ByteOrder::of_type_word([head[0], head[1], head[2], head[3]]);
        Ok((with_byteorder!(order, B => Self::view::<B>(head)), order))
    }

    #[inline]
    fn view<B: byteorder::ByteOrder>(h: &[u8; HEADER_LEN]) -> PacketHeader {
        PacketHeader {
            kind: strip_marker(B::read_u32(&h[0..4])),
            transmitter: B::read_u32(&h[4..8]),
            proc_id: B::read_u32(&h[8..12]),
            memb_id: MembId {
                proc_id: B::read_i32(&h[12..16]),
                time: B::read_i32(&h[16..20]),
            },
            seq: B::read_i32(&h[20..24]),
            token_round: B::read_i32(&h[24..28]),
            conf_hash: B::read_u32(&h[28..32]),
            data_len: B::read_u16(&h[32..34]),
            // 34..36: padding, never converted.
            frag_index: B::read_i16(&h[36..38]),
            frag_len: B::read_i16(&h[38..40]),
        }
    }

    /// Append the encoding in `order` to `out`.
    pub fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.emit(order));
    }

    /// Encode in `order`, setting that order's marker in the type word.
    pub fn emit(&self, order: ByteOrder) -> [u8; HEADER_LEN] {
        let mut a = [0u8; HEADER_LEN];
        with_byteorder!(order, B => {
            Fixed::<B>::new(&mut a)
                .u32(strip_marker(self.kind) | order.marker())
                .u32(self.transmitter)
                .u32(self.proc_id)
                .memb_id(self.memb_id)
                .i32(self.seq)
                .i32(self.token_round)
                .u32(self.conf_hash)
                .bytes(&Self::tail::<B>(self.data_len, self.frag_index, self.frag_len));
        });
        a
    }

    /// The last 8 bytes: data_len, 2 bytes of zero padding (never converted),
    /// the first fragment's index and length; built apart, they go out as
    /// one word.
    #[inline(always)]
    fn tail<B: byteorder::ByteOrder>(data_len: u16, index: i16, len: i16) -> [u8; 8] {
        let mut t = [0u8; 8];
        B::write_u16(&mut t[0..2], data_len);
        B::write_i16(&mut t[4..6], index);
        B::write_i16(&mut t[6..8], len);
        t
    }

    /// A header-only datagram (HURRY, REFER) in this machine's order;
    /// `data_len` is written as 0.
    pub fn emit_bare(&self) -> Vec<u8> {
        emit_header_only(self, ByteOrder::NATIVE)
    }

    /// How a receiver dispatches it.
    pub fn packet_kind(&self) -> PacketKind {
        PacketKind::of(self.kind)
    }
}

/// Split a datagram into header, order and body, checking that `data_len`
/// matches the bytes after the header exactly (as receivers require).
#[inline(never)]
pub fn split_datagram(buf: &[u8]) -> Result<(PacketHeader, ByteOrder, &[u8]), DecodeError> {
    let (header, order) = PacketHeader::parse(buf)?;
    let body = &buf[HEADER_LEN..];
    if body.len() != usize::from(header.data_len) {
        return Err(DecodeError::mismatch(
            "data_len",
            32,
            usize::from(header.data_len),
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

/// One piece of a message inside a data packet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// 1..n-1 for inner pieces, -n for the last piece of an n-piece message
    /// (-1 for a whole message).
    pub index: i16,
    pub bytes: Vec<u8>,
}

impl Fragment {
    /// Whether this is the last piece of its message.
    pub fn is_last(&self) -> bool {
        self.index < 0
    }
}

/// Padding that aligns `len` body bytes to 4.
pub fn pad_len(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Body size `frags` take in one packet: the first fragment at offset 0,
/// each further one after padding to 4 and its own 4-byte header.
pub fn packed_len(frags: &[Fragment]) -> usize {
    let mut n = 0;
    for (i, f) in frags.iter().enumerate() {
        if i > 0 {
            n += pad_len(n) + FRAGMENT_HEADER_LEN;
        }
        n += f.bytes.len();
    }
    n
}

/// A data packet: header and fragments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataPacket {
    /// `data_len`, `frag_index` and `frag_len` are recomputed on emit.
    pub header: PacketHeader,
    pub fragments: Vec<Fragment>,
}

impl DataPacket {
    /// Decode a whole datagram whose type is a data (regular) type.
    pub fn parse(buf: &[u8]) -> Result<(DataPacket, ByteOrder), DecodeError> {
        let (header, order, body) = split_datagram(buf)?;
        if header.packet_kind() != PacketKind::Data {
            return Err(DecodeError::bad("type", 0, "not a data packet"));
        }
        let fragments = parse_fragments(&header, body, order)?;
        Ok((DataPacket { header, fragments }, order))
    }

    /// Bytes of the body as it will be emitted.
    pub fn body_len(&self) -> usize {
        packed_len(&self.fragments)
    }

    /// Encode in `order` (see [`emit_data_in`]).
    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        emit_data_in(&self.header, &self.fragments, order)
    }
}

/// The fragments of a whole data datagram, and whether they were well
/// formed (a malformed packet still takes its sequence number, like the
/// original keeps it, but delivers nothing).
pub fn parse_data(datagram: &[u8]) -> (Vec<Fragment>, bool) {
    match DataPacket::parse(datagram) {
        Ok((p, _)) => (p.fragments, true),
        Err(_) => (Vec::new(), false),
    }
}

/// A data packet in this machine's order (see [`emit_data_in`]).
pub fn emit_data(header: &PacketHeader, frags: &[Fragment]) -> Vec<u8> {
    emit_data_in(header, frags, ByteOrder::NATIVE)
}

/// Encode a data packet: `header` with `data_len` and the first fragment's
/// header taken from `frags`, then the fragments packed with zero padding to
/// 4 bytes before each packed fragment header. The caller keeps the body
/// within [`BODY_LEN`] (use [`PacketBuilder`]); larger lengths do not fit
/// the int16 fields.
#[inline(always)]
pub fn emit_data_in(header: &PacketHeader, frags: &[Fragment], order: ByteOrder) -> Vec<u8> {
    let body_len = packed_len(frags);
    let (frag_index, frag_len) = frags.first().map_or((header.frag_index, header.frag_len), |f| {
        (f.index, f.bytes.len() as i16)
    });
    let h = PacketHeader {
        data_len: body_len as u16,
        frag_index,
        frag_len,
        ..*header
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    h.emit_into(order, &mut out);
    let mut used = 0usize;
    for (i, f) in frags.iter().enumerate() {
        if i > 0 {
            let pad = pad_len(used);
            out.extend_from_slice(&[0u8; 3][..pad]);
            with_byteorder!(order, B => {
                codec::put_u16::<B>(&mut out, f.index as u16);
                codec::put_u16::<B>(&mut out, f.bytes.len() as u16);
            });
            used += pad + FRAGMENT_HEADER_LEN;
        }
        out.extend_from_slice(&f.bytes);
        used += f.bytes.len();
    }
    out
}

/// Walk the fragments of a data packet body (which starts at offset 40).
fn parse_fragments(
    header: &PacketHeader,
    body: &[u8],
    order: ByteOrder,
) -> Result<Vec<Fragment>, DecodeError> {
    if header.frag_index == 0 {
        return Err(DecodeError::bad("fragment_index", 36, "zero"));
    }
    if header.frag_len < 0 {
        return Err(DecodeError::bad("fragment_len", 38, "negative"));
    }
    let first_len = header.frag_len as usize;
    if first_len == body.len() {
        // One fragment fills the body: the common full packet.
        return Ok(vec![Fragment {
            index: header.frag_index,
            bytes: body.to_vec(),
        }]);
    }
    let (_, fragments) = with_byteorder!(order, B => run(body, HEADER_LEN, |i| {
        let (mut i, bytes) = codec::take(i, first_len, "fragment")?;
        let mut fragments = vec![Fragment { index: header.frag_index, bytes: bytes.to_vec() }];
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
/// so far; its fill is the sender's leftover memory and is not kept), its
/// `{index, len}` header, its data.
#[inline(always)]
fn packed_fragment<B: byteorder::ByteOrder>(i: &[u8], used: usize) -> PResult<'_, Fragment> {
    let pad_at = i;
    let (i, _fill) = codec::take(i, pad_len(used), "fragment padding")?;
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
    let (i, data) = codec::take(rest, len as usize, "fragment")?;
    Ok((
        i,
        Fragment {
            index,
            bytes: data.to_vec(),
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
    len.div_ceil(BODY_LEN)
}

/// Cut a whole message (48-byte header, names, body) into pieces of at
/// most [`BODY_LEN`] bytes with their fragment indexes. `None` for an
/// empty message or one of more than [`MAX_MESSAGE_PIECES`] pieces.
pub fn split_message(message: &[u8]) -> Option<Vec<Piece<'_>>> {
    let n = piece_count(message.len());
    if n == 0 || n > MAX_MESSAGE_PIECES {
        return None;
    }
    Some(
        message
            .chunks(BODY_LEN)
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
        if first.data.len() > BODY_LEN {
            return None;
        }
        Some(PacketBuilder {
            packet_type: strip_marker(packet_type),
            fragments: vec![Fragment {
                index: first.index,
                bytes: first.data.to_vec(),
            }],
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
        BODY_LEN.saturating_sub(self.body_len + pad_len(self.body_len) + FRAGMENT_HEADER_LEN)
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
        self.fragments.push(Fragment {
            index: -1,
            bytes: message.to_vec(),
        });
        true
    }

    pub fn fragments(&self) -> &[Fragment] {
        &self.fragments
    }

    /// The finished packet; `header.kind` is set to the first piece's
    /// type, `data_len` and the first fragment's header follow the fragments.
    pub fn finish(self, header: PacketHeader) -> DataPacket {
        let (frag_index, frag_len) = self
            .fragments
            .first()
            .map_or((0, 0), |f| (f.index, f.bytes.len() as i16));
        DataPacket {
            header: PacketHeader {
                kind: self.packet_type,
                data_len: self.body_len as u16,
                frag_index,
                frag_len,
                ..header
            },
            fragments: self.fragments,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::bits::{self, AGREED, FIFO, SAFE};
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
        assert_eq!(h.packet_kind(), PacketKind::Hurry);
        assert_eq!(h.kind, bits::HURRY);
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
        assert_eq!(p.header.kind, AGREED);
        assert_eq!(p.header.seq, 3);
        assert_eq!(p.header.token_round, 25);
        assert_eq!(p.fragments.len(), 1);
        assert_eq!(p.fragments[0].index, -1);
        assert_eq!(p.fragments[0].bytes.len(), 80);
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
        let mut b = PacketBuilder::new(AGREED, Piece { index: -1, data: &m }).unwrap();
        assert!(b.try_append(AGREED, &m));
        assert!(b.try_append(FIFO, &[2u8; 92]));
        assert!(!b.try_append(SAFE, &m));
        assert_eq!(b.body_len(), 87 + 1 + 4 + 87 + 1 + 4 + 92);
        let p = b.finish(PacketHeader::default());
        assert_eq!(p.header.kind, AGREED);
        assert_eq!(p.header.data_len, 276);
        let bytes = p.emit(ByteOrder::Big);
        assert_eq!(bytes.len(), 40 + 276);
        assert_eq!(DataPacket::parse(&bytes).unwrap(), (p, ByteOrder::Big));

        // Room: a body of 1424 leaves 1432 - 1424 - 0 - 4 = 4 bytes.
        let big = vec![0u8; 1424];
        let mut b = PacketBuilder::new(
            SAFE,
            Piece {
                index: -1,
                data: &big,
            },
        )
        .unwrap();
        assert_eq!(b.available(), 4);
        assert!(!b.try_append(SAFE, &[0u8; 5]));
        assert!(b.try_append(SAFE, &[0u8; 4]));
        assert_eq!(b.body_len(), 1432);
        assert_eq!(b.available(), 0);

        // Never after a piece of an unfinished message.
        let mut b = PacketBuilder::new(AGREED, Piece { index: 1, data: &m }).unwrap();
        assert!(!b.try_append(AGREED, &m));
        assert!(PacketBuilder::new(
            AGREED,
            Piece {
                index: 1,
                data: &[0u8; 1433]
            }
        )
        .is_none());
    }

    #[test]
    fn fragments_pack_and_unpack() {
        let h = PacketHeader {
            kind: AGREED,
            seq: 11,
            ..Default::default()
        };
        let frag = |fill: u8, len: usize| Fragment {
            index: -1,
            bytes: vec![fill; len],
        };
        let frags = vec![frag(1, 87), frag(2, 87), frag(3, 92)];
        let b = emit_data(&h, &frags);
        // Observed in d04: 316-byte packet for these sizes.
        assert_eq!(b.len(), 316);
        assert_eq!(packed_len(&frags), 276);
        let (hh, _) = PacketHeader::parse(&b).unwrap();
        assert_eq!((hh.data_len, hh.frag_index, hh.frag_len), (276, -1, 87));
        let (got, whole) = parse_data(&b);
        assert!(whole);
        assert_eq!(got, frags);
        assert_eq!(emit_data_in(&h, &frags, ByteOrder::Big).len(), 316);
    }

    #[test]
    fn truncated_and_malformed_data_are_rejected() {
        assert!(PacketHeader::parse(&[0x80, 0, 0]).is_err());
        let (frags, whole) = parse_data(&[0x88, 0, 0, 0x80, 1, 2, 3]);
        assert!(frags.is_empty() && !whole);
        let (frags, whole) = parse_data(&hex(HURRY));
        assert!(frags.is_empty() && !whole, "a HURRY is no data packet");
    }
}
