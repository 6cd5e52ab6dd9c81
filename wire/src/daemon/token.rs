//! Tokens on the token port: the 40-byte header and regular tokens.
//!
//! ```text
//! 0   type            0, FORM1 or FORM2, + ARQ (bits 16-19), RETRANS (20-23), marker
//! 4   transmiter_id   sender of this hop
//! 8   proc_id         daemon that last processed it
//! 12  memb_id         ring id (FORM tokens: originator id + time)
//! 20  seq             highest sequence number assigned in the ring
//! 24  aru             all-received-up-to
//! 28  aru_last_id     daemon that last set aru
//! 32  flow_control    int16: packets broadcast in the last rotation
//! 34  rtr_len         int16: body bytes after the header
//! 36  conf_hash
//! 40  body            retransmission requests (regular token)
//! ```
//!
//! A retransmission request (`ring_rtr`): memb_id 8, proc_id 4, int16
//! seg_index, int16 num_seq, then num_seq int32 sequence numbers.

use super::types::{
    arq, retrans, strip_marker, with_arq, with_retrans, DaemonId, TokenKind, HEADER_LEN, RING_RTR_LEN,
};
use super::{put_i16, put_memb_id, DecodeError};
use crate::client::MembId;
use crate::codec::{self, with_byteorder, Fixed, PResult};
use crate::endian::ByteOrder;

/// The 40-byte token header, integers in host values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
// Fields in wire order and laid out as declared: the compiler then moves
// neighbouring fields as one word when it reads or writes the header
// (callgrind, codec_bench: fewer instructions for every header case).
#[repr(C)]
pub struct TokenHeader {
    /// Type bits with the ARQ and RETRANS counters, endian marker removed.
    pub kind: u32,
    /// Sender of this hop (`transmiter_id`).
    pub transmitter: DaemonId,
    /// Daemon that last processed it.
    pub proc_id: DaemonId,
    pub memb_id: MembId,
    pub seq: i32,
    pub aru: i32,
    /// Daemon that last set `aru` (all ones on a new ring's first token).
    pub aru_last_id: DaemonId,
    pub flow_control: i16,
    /// Body bytes, read as unsigned (a FORM token may exceed 32767 bytes);
    /// emitters of whole tokens compute it.
    pub rtr_len: u16,
    pub conf_hash: u32,
}

impl TokenHeader {
    pub const LEN: usize = HEADER_LEN;

    /// Decode the first 40 bytes; also returns the writer's order.
    pub fn parse(buf: &[u8]) -> Result<(TokenHeader, ByteOrder), DecodeError> {
        let head = buf
            .get(..Self::LEN)
            .ok_or(DecodeError::truncated("token_header", 0, Self::LEN))?;
        let order = ByteOrder::of_type_word([head[0], head[1], head[2], head[3]]);
        let (_, header) = with_byteorder!(order, B => codec::run(head, 0, Self::fields::<B>))?;
        Ok((header, order))
    }

    fn fields<B: byteorder::ByteOrder>(i: &[u8]) -> PResult<'_, TokenHeader> {
        use crate::codec::typed;
        let (i, kind) = typed::u32::<B>(i, "type")?;
        let (i, transmitter) = typed::u32::<B>(i, "transmiter_id")?;
        let (i, proc_id) = typed::u32::<B>(i, "proc_id")?;
        let (i, mp) = typed::i32::<B>(i, "memb_id")?;
        let (i, mt) = typed::i32::<B>(i, "memb_id")?;
        let (i, seq) = typed::i32::<B>(i, "seq")?;
        let (i, aru) = typed::i32::<B>(i, "aru")?;
        let (i, aru_last_id) = typed::u32::<B>(i, "aru_last_id")?;
        let (i, flow_control) = typed::i16::<B>(i, "flow_control")?;
        let (i, rtr_len) = typed::u16::<B>(i, "rtr_len")?;
        let (i, conf_hash) = typed::u32::<B>(i, "conf_hash")?;
        let header = TokenHeader {
            kind: strip_marker(kind),
            transmitter,
            proc_id,
            memb_id: MembId {
                proc_id: mp,
                time: mt,
            },
            seq,
            aru,
            aru_last_id,
            flow_control,
            rtr_len,
            conf_hash,
        };
        Ok((i, header))
    }

    /// Append the encoding in `order` to `out`.
    pub fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.emit(order));
    }

    pub fn emit(&self, order: ByteOrder) -> [u8; HEADER_LEN] {
        let mut a = [0u8; HEADER_LEN];
        with_byteorder!(order, B => {
            Fixed::<B>::new(&mut a)
                .u32(strip_marker(self.kind) | order.marker())
                .u32(self.transmitter)
                .u32(self.proc_id)
                .memb_id(self.memb_id)
                .i32(self.seq)
                .i32(self.aru)
                .u32(self.aru_last_id)
                .i16(self.flow_control)
                .u16(self.rtr_len)
                .u32(self.conf_hash);
        });
        a
    }

    /// How a receiver dispatches it.
    pub fn token_kind(&self) -> TokenKind {
        TokenKind::of(self.kind)
    }

    pub fn arq(&self) -> u8 {
        arq(self.kind)
    }

    pub fn set_arq(&mut self, v: u8) {
        self.kind = with_arq(self.kind, v);
    }

    pub fn retrans(&self) -> u8 {
        retrans(self.kind)
    }

    pub fn set_retrans(&mut self, v: u8) {
        self.kind = with_retrans(self.kind, v);
    }
}

/// Split a token datagram into header, order and body, checking that
/// `rtr_len` matches the bytes after the header.
pub fn split_token(buf: &[u8]) -> Result<(TokenHeader, ByteOrder, &[u8]), DecodeError> {
    let (header, order) = TokenHeader::parse(buf)?;
    let body = &buf[HEADER_LEN..];
    if body.len() != header.rtr_len as usize {
        return Err(DecodeError::mismatch(
            "rtr_len",
            34,
            header.rtr_len as usize,
            body.len(),
        ));
    }
    Ok((header, order, body))
}

/// One retransmission request of a regular token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RingRtr {
    /// The ring whose packets are requested.
    pub memb_id: MembId,
    /// Daemon that asks.
    pub proc_id: i32,
    pub seg_index: i16,
    pub seqs: Vec<i32>,
}

impl RingRtr {
    fn parse(i: &[u8], o: ByteOrder) -> PResult<'_, RingRtr> {
        let (i, memb_id) = codec::memb_id(i, o, "ring_rtr.memb_id")?;
        let (i, proc_id) = codec::i32(i, o, "ring_rtr.proc_id")?;
        let (i, seg_index) = codec::i16(i, o, "ring_rtr.seg_index")?;
        let (i, num_seq) = codec::count16(i, o, "ring_rtr.num_seq")?;
        let (i, seqs) = codec::i32_vec(i, o, num_seq, "ring_rtr.seqs")?;
        let r = RingRtr {
            memb_id,
            proc_id,
            seg_index,
            seqs,
        };
        Ok((i, r))
    }

    pub fn encoded_len(&self) -> usize {
        RING_RTR_LEN + 4 * self.seqs.len()
    }

    pub fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        put_memb_id(order, out, self.memb_id);
        order.put_i32(out, self.proc_id);
        put_i16(order, out, self.seg_index);
        put_i16(order, out, self.seqs.len() as i16);
        for &s in &self.seqs {
            order.put_i32(out, s);
        }
    }
}

/// A regular token: header and retransmission requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Token {
    /// `rtr_len` is recomputed by [`Token::emit`].
    pub header: TokenHeader,
    pub rtr: Vec<RingRtr>,
}

impl Token {
    /// Decode a regular token datagram.
    pub fn parse(buf: &[u8]) -> Result<(Token, ByteOrder), DecodeError> {
        let (header, order, body) = split_token(buf)?;
        if header.token_kind() != TokenKind::Regular {
            return Err(DecodeError::bad("type", 0, "not a regular token"));
        }
        if body.is_empty() {
            // Most tokens ask for nothing.
            return Ok((
                Token {
                    header,
                    rtr: Vec::new(),
                },
                order,
            ));
        }
        let rtr = codec::run_all(body, HEADER_LEN, "ring_rtr", |mut i| {
            let mut rtr = Vec::new();
            while !i.is_empty() {
                let (rest, r) = RingRtr::parse(i, order)?;
                rtr.push(r);
                i = rest;
            }
            Ok((i, rtr))
        })?;
        Ok((Token { header, rtr }, order))
    }

    pub fn body_len(&self) -> usize {
        self.rtr.iter().map(RingRtr::encoded_len).sum()
    }

    /// Encode in `order` (see [`emit_token_in`]).
    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        emit_token_in(&self.header, &self.rtr, order)
    }
}

/// Bytes one ring's requests take in a token.
pub fn rtr_len(r: &RingRtr) -> usize {
    r.encoded_len()
}

/// The retransmission requests of a whole regular token datagram.
pub fn parse_rtr(datagram: &[u8]) -> Result<Vec<RingRtr>, DecodeError> {
    Ok(Token::parse(datagram)?.0.rtr)
}

/// A regular token in this machine's order (see [`emit_token_in`]).
pub fn emit_token(header: &TokenHeader, rtr: &[RingRtr]) -> Vec<u8> {
    emit_token_in(header, rtr, ByteOrder::NATIVE)
}

/// Encode a regular token in `order`; `rtr_len` follows the requests. The
/// caller keeps the body within [`MAX_TOKEN_BODY`](super::types::MAX_TOKEN_BODY).
#[inline(always)]
pub fn emit_token_in(header: &TokenHeader, rtr: &[RingRtr], order: ByteOrder) -> Vec<u8> {
    let body_len: usize = rtr.iter().map(RingRtr::encoded_len).sum();
    let header = TokenHeader {
        rtr_len: body_len as u16,
        ..*header
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    header.emit_into(order, &mut out);
    for r in rtr {
        r.emit_into(order, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// d01: the first regular token of a new ring (aru 0x7fffffff, aru_last_id -1).
    const FIRST_TOKEN: &str =
        "800000800200630a0200630a0100630affe6036b00000000ffffff7fffffffff00000000b45b602e";
    /// d07: idle token held by the leader, ARQ 8, RETRANS 1.
    const IDLE_TOKEN: &str =
        "800018800100630a0100630a0100630a1fe7036b03000000030000000100630a00000000b45b602e";

    #[test]
    fn first_token_of_a_ring() {
        let bytes = hex(FIRST_TOKEN);
        let (t, order) = Token::parse(&bytes).unwrap();
        assert_eq!(order, ByteOrder::Little);
        assert_eq!(t.header.kind, 0);
        assert_eq!(t.header.aru, i32::MAX);
        assert_eq!(t.header.aru_last_id, u32::MAX);
        assert_eq!(t.header.memb_id.proc_id, 0x0a63_0001);
        assert!(t.rtr.is_empty());
        assert_eq!(t.emit(order), bytes);
    }

    #[test]
    fn counters_of_idle_token() {
        let bytes = hex(IDLE_TOKEN);
        let (mut t, order) = Token::parse(&bytes).unwrap();
        assert_eq!((t.header.arq(), t.header.retrans()), (8, 1));
        assert_eq!(t.header.seq, 3);
        t.header.set_arq(9);
        t.header.set_retrans(0);
        assert_eq!(&t.emit(order)[..4], &[0x80, 0x00, 0x09, 0x80]);
    }

    #[test]
    fn rtr_round_trip_and_checks() {
        let t = Token {
            header: TokenHeader {
                kind: 0x0003_0000,
                seq: 20,
                ..Default::default()
            },
            rtr: vec![
                RingRtr {
                    memb_id: MembId { proc_id: 1, time: 2 },
                    proc_id: 3,
                    seg_index: 0,
                    seqs: vec![5, 6, 9],
                },
                RingRtr::default(),
            ],
        };
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let bytes = t.emit(order);
            assert_eq!(bytes.len(), 40 + 28 + 16);
            let (back, o) = Token::parse(&bytes).unwrap();
            assert_eq!(o, order);
            assert_eq!(back.rtr, t.rtr);
            assert_eq!(back.header.rtr_len, 44);
            // num_seq beyond the body
            let mut bad = bytes.clone();
            let at = 40 + 14;
            bad[at..at + 2].copy_from_slice(&order.u16_bytes(100));
            assert!(Token::parse(&bad).is_err());
            // rtr_len disagreeing with the datagram
            assert!(matches!(
                Token::parse(&bytes[..bytes.len() - 4]),
                Err(DecodeError {
                    kind: ErrorKind::LengthMismatch { .. },
                    ..
                })
            ));
        }
    }

    #[test]
    fn truncated_tokens_are_rejected() {
        assert!(TokenHeader::parse(&[0x80, 0, 0]).is_err());
        assert!(parse_rtr(&[0x80, 0, 0, 0x80, 1, 2, 3]).is_err());
        let bytes = hex(FIRST_TOKEN);
        assert_eq!(parse_rtr(&bytes), Ok(Vec::new()));
        let (h, _) = TokenHeader::parse(&bytes).unwrap();
        assert_eq!(emit_token(&h, &[]), bytes);
    }
}
