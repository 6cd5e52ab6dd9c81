//! Membership messages: ALIVE, JOIN, REFER packets and FORM1, FORM2 tokens.
//!
//! ALIVE body: the first part of a `members_info`, int16 num_members, int16
//! num_pending, then num_members int32 ids (the pending ids are not sent).
//! JOIN body: that, then the first part of a `reps_info`: int16 num_reps,
//! int16 rep_index, num_reps x {int32 proc_id, int16 type, int16 seg_index}.
//! REFER is a header only: `memb_id.proc_id` is the representative to
//! contact, `memb_id.time` its type.
//!
//! FORM1 body: a full `members_info` (516 bytes: counts and 128 slots), a
//! full `reps_info` (204 bytes: counts and 25 slots), then the rings.
//! FORM2 body: the full `members_info`, 8 bytes of new membership id, the
//! rings. Rings: int32 num_rings, then per ring a 28-byte `ring_info`
//! (memb_id 8, trans_time, aru, highest_seq, num_holes: int32; num_commit,
//! num_trans: int16) followed by num_holes int32 seqs and num_commit int32
//! ids, of which the first num_trans form the transitional set.
//!
//! Slots past the counts hold whatever the sender's buffers held; they mean
//! nothing, are not kept, and are written as zeros.
//!
//! The types are the engines' own shapes: a member list with the count of
//! those that already processed the token ([`MembersInfo::done`]), FORM1
//! and FORM2 as one [`FormToken`] whose middle part differs.

use super::packet::{split_datagram, PacketHeader};
use super::token::{split_token, TokenHeader};
use super::types::{
    DaemonId, PacketKind, TokenKind, HEADER_LEN, MAX_PROCS_RING, MAX_REPS, MEMBERS_INFO_LEN, REPS_INFO_LEN,
    REP_INFO_LEN, RING_INFO_LEN,
};
use super::{put_i16, put_memb_id, DecodeError};
use crate::client::MembId;
use crate::codec::{self, PResult};
use crate::endian::ByteOrder;

/// A `members_info`: the first `done` ids already processed the token
/// ("members"), the rest are still to visit ("pending").
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MembersInfo {
    pub done: usize,
    pub ids: Vec<DaemonId>,
}

impl MembersInfo {
    /// How many ids are still to visit.
    pub fn pending(&self) -> usize {
        self.ids.len().saturating_sub(self.done)
    }

    /// The ids that already processed the token.
    pub fn members(&self) -> &[DaemonId] {
        &self.ids[..self.done.min(self.ids.len())]
    }

    /// The ids still to visit.
    pub fn pending_ids(&self) -> &[DaemonId] {
        &self.ids[self.done.min(self.ids.len())..]
    }

    /// The part ALIVE and JOIN send: int16 num_members, int16 num_pending,
    /// the members' ids only. Read back, every id is "done".
    fn parse_sent(at: &[u8], o: ByteOrder) -> PResult<'_, MembersInfo> {
        let (i, n) = codec::count16(at, o, "members_info.num_members")?;
        let (i, _num_pending) = codec::i16(i, o, "members_info.num_pending")?;
        if n > MAX_PROCS_RING {
            return codec::bad(at, "members_info.num_members", "more than MAX_PROCS_RING");
        }
        let (i, ids) = codec::u32_vec(i, o, n, "members_info.members")?;
        Ok((i, MembersInfo { done: n, ids }))
    }

    fn sent_len(&self) -> usize {
        4 + 4 * self.members().len()
    }

    fn emit_sent(&self, order: ByteOrder, out: &mut Vec<u8>) {
        let members = self.members();
        put_i16(order, out, members.len() as i16);
        put_i16(order, out, self.pending() as i16);
        for &m in members {
            order.put_u32(out, m);
        }
    }

    /// The full 516-byte form of FORM tokens: counts, then 128 slots.
    fn parse_full(at: &[u8], o: ByteOrder) -> PResult<'_, MembersInfo> {
        let (i, m) = codec::count16(at, o, "members_info.num_members")?;
        let (i, p) = codec::count16(i, o, "members_info.num_pending")?;
        if m + p > MAX_PROCS_RING {
            return codec::bad(
                at,
                "members_info.num_members",
                "members and pending exceed MAX_PROCS_RING",
            );
        }
        let (i, ids) = codec::u32_vec(i, o, m + p, "members_info.members")?;
        let (i, _unused) = codec::take(i, 4 * (MAX_PROCS_RING - m - p), "members_info.members")?;
        Ok((i, MembersInfo { done: m, ids }))
    }

    fn emit_full(&self, order: ByteOrder, out: &mut Vec<u8>) {
        let ids = &self.ids[..self.ids.len().min(MAX_PROCS_RING)];
        let done = self.done.min(ids.len());
        put_i16(order, out, done as i16);
        put_i16(order, out, (ids.len() - done) as i16);
        for &id in ids {
            order.put_u32(out, id);
        }
        out.resize(out.len() + 4 * (MAX_PROCS_RING - ids.len()), 0);
    }
}

/// One representative (`rep_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rep {
    pub proc_id: DaemonId,
    /// [`super::types::rep_kind`]: POTENTIAL, SEG or RING.
    pub kind: i16,
    pub seg_index: i16,
}

impl Rep {
    fn parse(i: &[u8], o: ByteOrder) -> PResult<'_, Rep> {
        let (i, proc_id) = codec::u32(i, o, "rep_info.proc_id")?;
        let (i, kind) = codec::i16(i, o, "rep_info.type")?;
        let (i, seg_index) = codec::i16(i, o, "rep_info.seg_index")?;
        let rep = Rep {
            proc_id,
            kind,
            seg_index,
        };
        Ok((i, rep))
    }

    fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        order.put_u32(out, self.proc_id);
        put_i16(order, out, self.kind);
        put_i16(order, out, self.seg_index);
    }
}

/// A `reps_info`: the representatives and the next one to visit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RepsInfo {
    /// Not checked against the list (the original does not either).
    pub rep_index: i16,
    pub reps: Vec<Rep>,
}

impl RepsInfo {
    /// The representative at `rep_index`, if that is within the list.
    pub fn current(&self) -> Option<&Rep> {
        usize::try_from(self.rep_index)
            .ok()
            .and_then(|i| self.reps.get(i))
    }

    /// At most [`MAX_REPS`] are ever written.
    fn written(&self) -> &[Rep] {
        &self.reps[..self.reps.len().min(MAX_REPS)]
    }

    fn parse_head(at: &[u8], o: ByteOrder) -> PResult<'_, (usize, i16)> {
        let (i, n) = codec::count16(at, o, "reps_info.num_reps")?;
        let (i, rep_index) = codec::i16(i, o, "reps_info.rep_index")?;
        if n > MAX_REPS {
            return codec::bad(at, "reps_info.num_reps", "more than MAX_REPS");
        }
        Ok((i, (n, rep_index)))
    }

    /// The part JOIN sends: counts and the listed reps only.
    fn parse_sent(at: &[u8], o: ByteOrder) -> PResult<'_, RepsInfo> {
        let (i, (n, rep_index)) = Self::parse_head(at, o)?;
        let (i, ()) = codec::fits(i, at, n, REP_INFO_LEN, "reps_info.reps")?;
        let (i, reps) = nom::multi::count(|i| Rep::parse(i, o), n)(i)?;
        Ok((i, RepsInfo { rep_index, reps }))
    }

    fn sent_len(&self) -> usize {
        4 + REP_INFO_LEN * self.written().len()
    }

    fn emit_sent(&self, order: ByteOrder, out: &mut Vec<u8>) {
        let reps = self.written();
        put_i16(order, out, reps.len() as i16);
        put_i16(order, out, self.rep_index);
        for rep in reps {
            rep.emit_into(order, out);
        }
    }

    /// The full 204-byte form of FORM1: counts, then 25 slots.
    fn parse_full(at: &[u8], o: ByteOrder) -> PResult<'_, RepsInfo> {
        let (i, (n, rep_index)) = Self::parse_head(at, o)?;
        let (i, reps) = nom::multi::count(|i| Rep::parse(i, o), n)(i)?;
        let (i, _unused) = codec::take(i, REP_INFO_LEN * (MAX_REPS - n), "reps_info.reps")?;
        Ok((i, RepsInfo { rep_index, reps }))
    }

    fn emit_full(&self, order: ByteOrder, out: &mut Vec<u8>) {
        self.emit_sent(order, out);
        out.resize(out.len() + REP_INFO_LEN * (MAX_REPS - self.written().len()), 0);
    }
}

fn expect_packet_kind(
    header: &PacketHeader,
    kind: PacketKind,
    reason: &'static str,
) -> Result<(), DecodeError> {
    if header.packet_kind() == kind {
        Ok(())
    } else {
        Err(DecodeError::bad("type", 0, reason))
    }
}

/// The header with `data_len` set to the body's length; every other field
/// as given (a decoded packet re-encodes to itself).
fn packet_with_body(header: &PacketHeader, order: ByteOrder, body_len: usize) -> Vec<u8> {
    let h = PacketHeader {
        data_len: body_len as u16,
        ..*header
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    out.extend_from_slice(&h.emit(order));
    out
}

/// The body of an ALIVE ("I am here", `reps` None) or a JOIN (with the
/// representatives): the members gathered so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProbeBody {
    pub members: MembersInfo,
    pub reps: Option<RepsInfo>,
}

impl ProbeBody {
    /// Decode a whole ALIVE (`join` false) or JOIN datagram.
    pub fn parse(datagram: &[u8], join: bool) -> Result<(PacketHeader, ProbeBody, ByteOrder), DecodeError> {
        let (header, order, body) = split_datagram(datagram)?;
        let probe = if join {
            expect_packet_kind(&header, PacketKind::Join, "not a JOIN packet")?;
            codec::run_all(body, HEADER_LEN, "join body", |i| {
                let (i, members) = MembersInfo::parse_sent(i, order)?;
                let (i, reps) = RepsInfo::parse_sent(i, order)?;
                Ok((
                    i,
                    ProbeBody {
                        members,
                        reps: Some(reps),
                    },
                ))
            })?
        } else {
            expect_packet_kind(&header, PacketKind::Alive, "not an ALIVE packet")?;
            codec::run_all(body, HEADER_LEN, "alive body", |i| {
                let (i, members) = MembersInfo::parse_sent(i, order)?;
                Ok((i, ProbeBody { members, reps: None }))
            })?
        };
        Ok((header, probe, order))
    }

    /// Encode with `header` (its kind says ALIVE or JOIN) in `order`.
    pub fn emit(&self, header: &PacketHeader, order: ByteOrder) -> Vec<u8> {
        emit_probe_in(header, &self.members, self.reps.as_ref(), order)
    }
}

/// An ALIVE or JOIN datagram's body.
pub fn parse_probe(datagram: &[u8], join: bool) -> Result<ProbeBody, DecodeError> {
    Ok(ProbeBody::parse(datagram, join)?.1)
}

/// ALIVE (no reps) or JOIN in this machine's order: only the members that
/// are `done` are sent, with the count of the pending ones.
pub fn emit_probe(header: &PacketHeader, members: &MembersInfo, reps: Option<&RepsInfo>) -> Vec<u8> {
    emit_probe_in(header, members, reps, ByteOrder::NATIVE)
}

/// [`emit_probe`] in `order`.
pub fn emit_probe_in(
    header: &PacketHeader,
    members: &MembersInfo,
    reps: Option<&RepsInfo>,
    order: ByteOrder,
) -> Vec<u8> {
    let len = members.sent_len() + reps.map_or(0, RepsInfo::sent_len);
    let mut out = packet_with_body(header, order, len);
    members.emit_sent(order, &mut out);
    if let Some(r) = reps {
        r.emit_sent(order, &mut out);
    }
    out
}

/// What one old ring brings to a new membership (`ring_info` + lists).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RingInfo {
    pub memb_id: MembId,
    pub trans_time: i32,
    pub aru: i32,
    pub highest_seq: i32,
    /// Sequence numbers nobody of this ring has.
    pub holes: Vec<i32>,
    /// The commit set: daemons of the ring taking part; its first
    /// `num_trans` ids are the transitional set.
    pub commit: Vec<DaemonId>,
    pub num_trans: usize,
}

impl RingInfo {
    pub fn encoded_len(&self) -> usize {
        RING_INFO_LEN + 4 * (self.holes.len() + self.commit.len())
    }

    /// The transitional set.
    pub fn trans(&self) -> &[DaemonId] {
        &self.commit[..self.num_trans.min(self.commit.len())]
    }

    fn parse(i: &[u8], o: ByteOrder) -> PResult<'_, RingInfo> {
        let (i, memb_id) = codec::memb_id(i, o, "ring_info.memb_id")?;
        let (i, trans_time) = codec::i32(i, o, "ring_info.trans_time")?;
        let (i, aru) = codec::i32(i, o, "ring_info.aru")?;
        let (i, highest_seq) = codec::i32(i, o, "ring_info.highest_seq")?;
        let (i, num_holes) = codec::count32(i, o, "ring_info.num_holes")?;
        let commit_at = i;
        let (i, num_commit) = codec::count16(i, o, "ring_info.num_commit")?;
        let trans_at = i;
        let (i, num_trans) = codec::i16(i, o, "ring_info.num_trans")?;
        if num_trans < 0 || num_trans as usize > num_commit {
            return codec::bad(trans_at, "ring_info.num_trans", "outside 0..=num_commit");
        }
        let (i, ()) = codec::fits(
            i,
            commit_at,
            num_holes.saturating_add(num_commit),
            4,
            "ring_info.num_commit",
        )?;
        let (i, holes) = codec::i32_vec(i, o, num_holes, "ring_info.holes")?;
        let (i, commit) = codec::u32_vec(i, o, num_commit, "ring_info.commit")?;
        let ring = RingInfo {
            memb_id,
            trans_time,
            aru,
            highest_seq,
            holes,
            commit,
            num_trans: num_trans as usize,
        };
        Ok((i, ring))
    }

    fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        put_memb_id(order, out, self.memb_id);
        order.put_i32(out, self.trans_time);
        order.put_i32(out, self.aru);
        order.put_i32(out, self.highest_seq);
        order.put_i32(out, self.holes.len() as i32);
        put_i16(order, out, self.commit.len() as i16);
        put_i16(order, out, self.num_trans as i16);
        for &h in &self.holes {
            order.put_i32(out, h);
        }
        for &c in &self.commit {
            order.put_u32(out, c);
        }
    }
}

fn parse_rings(at: &[u8], o: ByteOrder) -> PResult<'_, Vec<RingInfo>> {
    let (i, n) = codec::count32(at, o, "num_rings")?;
    let (i, ()) = codec::fits(i, at, n, RING_INFO_LEN, "num_rings")?;
    nom::multi::count(|i| RingInfo::parse(i, o), n)(i)
}

/// FORM1 carries the representatives; FORM2 the new ring id in their place.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FormMiddle {
    Reps(RepsInfo),
    NewId(MembId),
}

/// A FORM1 (collects the description of the new ring) or FORM2 (installs
/// it) token; the header's kind says which, the middle part agrees.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FormToken {
    /// `rtr_len` is recomputed on emit.
    pub header: TokenHeader,
    pub members: MembersInfo,
    pub middle: FormMiddle,
    pub rings: Vec<RingInfo>,
}

impl FormToken {
    /// Decode a FORM1 or FORM2 datagram, by the type word's FORM bits.
    pub fn parse(buf: &[u8]) -> Result<(FormToken, ByteOrder), DecodeError> {
        let (header, order, body) = split_token(buf)?;
        let form1 = match header.token_kind() {
            TokenKind::Form1 => true,
            TokenKind::Form2 => false,
            TokenKind::Regular => return Err(DecodeError::bad("type", 0, "not a FORM token")),
        };
        let what = if form1 { "form1 body" } else { "form2 body" };
        let form = codec::run_all(body, HEADER_LEN, what, |i| {
            let (i, members) = MembersInfo::parse_full(i, order)?;
            let (i, middle) = if form1 {
                let (i, reps) = RepsInfo::parse_full(i, order)?;
                (i, FormMiddle::Reps(reps))
            } else {
                let (i, id) = codec::memb_id(i, order, "new_memb_id")?;
                (i, FormMiddle::NewId(id))
            };
            let (i, rings) = parse_rings(i, order)?;
            let form = FormToken {
                header,
                members,
                middle,
                rings,
            };
            Ok((i, form))
        })?;
        Ok((form, order))
    }

    pub fn body_len(&self) -> usize {
        let middle = match self.middle {
            FormMiddle::Reps(_) => REPS_INFO_LEN,
            FormMiddle::NewId(_) => 8,
        };
        MEMBERS_INFO_LEN + middle + 4 + self.rings.iter().map(RingInfo::encoded_len).sum::<usize>()
    }

    /// Encode in `order`; `rtr_len` follows the parts.
    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        let body_len = self.body_len();
        let header = TokenHeader {
            rtr_len: body_len as u16,
            ..self.header
        };
        let mut out = Vec::with_capacity(HEADER_LEN + body_len);
        out.extend_from_slice(&header.emit(order));
        self.members.emit_full(order, &mut out);
        match &self.middle {
            FormMiddle::Reps(r) => r.emit_full(order, &mut out),
            FormMiddle::NewId(id) => put_memb_id(order, &mut out, *id),
        }
        order.put_i32(&mut out, self.rings.len() as i32);
        for ring in &self.rings {
            ring.emit_into(order, &mut out);
        }
        out
    }
}

/// A FORM1 or FORM2 datagram.
pub fn parse_form(datagram: &[u8]) -> Result<FormToken, DecodeError> {
    Ok(FormToken::parse(datagram)?.0)
}

/// A FORM token in this machine's order.
pub fn emit_form(form: &FormToken) -> Vec<u8> {
    form.emit(ByteOrder::NATIVE)
}

/// The first 8 bytes of a full `reps_info` (num_reps, rep_index, first
/// rep's id) as a FORM2 keeps them until the future leader writes the new
/// id over them, read as a membership id in this machine's order.
pub fn reps_leftover_id(reps: &RepsInfo) -> MembId {
    let order = ByteOrder::NATIVE;
    let mut counts = [0u8; 4];
    counts[..2].copy_from_slice(&order.u16_bytes(reps.reps.len() as u16));
    counts[2..].copy_from_slice(&order.u16_bytes(reps.rep_index as u16));
    let first = reps.reps.first().map_or(0, |r| r.proc_id);
    MembId {
        proc_id: order.read_u32(counts) as i32,
        time: first as i32,
    }
}

/// Any datagram of the token port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyToken {
    Regular(super::token::Token),
    Form(FormToken),
}

impl AnyToken {
    /// Decode by the type word's FORM bits.
    pub fn parse(buf: &[u8]) -> Result<(AnyToken, ByteOrder), DecodeError> {
        let (header, _) = TokenHeader::parse(buf)?;
        Ok(match header.token_kind() {
            TokenKind::Regular => {
                let (t, o) = super::token::Token::parse(buf)?;
                (AnyToken::Regular(t), o)
            }
            TokenKind::Form1 | TokenKind::Form2 => {
                let (t, o) = FormToken::parse(buf)?;
                (AnyToken::Form(t), o)
            }
        })
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        match self {
            AnyToken::Regular(t) => t.emit(order),
            AnyToken::Form(t) => t.emit(order),
        }
    }
}

/// Any datagram of the packet port that this module or [`super::packet`]
/// decodes (monitor and reload packets are reported by kind only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyPacket {
    Data(super::packet::DataPacket),
    /// ALIVE or JOIN (the header's kind says which).
    Probe(PacketHeader, ProbeBody),
    /// REFER: `memb_id.proc_id` is the representative to contact,
    /// `memb_id.time` its type.
    Refer(PacketHeader),
    Hurry(PacketHeader),
    /// STATUS, PARTITION, FC, RELOAD or unknown types: header and raw body.
    Other(PacketHeader, Vec<u8>),
}

impl AnyPacket {
    pub fn parse(buf: &[u8]) -> Result<(AnyPacket, ByteOrder), DecodeError> {
        let (header, order, body) = split_datagram(buf)?;
        let header_only = || super::packet::parse_header_only(buf).map(|(h, _)| h);
        let packet = match header.packet_kind() {
            PacketKind::Data => AnyPacket::Data(super::packet::DataPacket::parse(buf)?.0),
            kind @ (PacketKind::Alive | PacketKind::Join) => {
                let (h, p, _) = ProbeBody::parse(buf, kind == PacketKind::Join)?;
                AnyPacket::Probe(h, p)
            }
            PacketKind::Refer => AnyPacket::Refer(header_only()?),
            PacketKind::Hurry => AnyPacket::Hurry(header_only()?),
            _ => AnyPacket::Other(header, body.to_vec()),
        };
        Ok((packet, order))
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        match self {
            AnyPacket::Data(p) => p.emit(order),
            AnyPacket::Probe(h, p) => p.emit(h, order),
            AnyPacket::Refer(h) | AnyPacket::Hurry(h) => super::packet::emit_header_only(h, order),
            AnyPacket::Other(h, body) => {
                let mut out = Vec::with_capacity(HEADER_LEN + body.len());
                out.extend_from_slice(
                    &PacketHeader {
                        data_len: body.len() as u16,
                        ..*h
                    }
                    .emit(order),
                );
                out.extend_from_slice(body);
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::bits::{FORM1, FORM2};
    use super::super::types::{bits, rep_kind};
    use super::*;
    use crate::error::ErrorKind;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// d01: ALIVE from d1 alone.
    const ALIVE: &str =
        "800100800100630a0100630a00000000000000000000000000000000b45b602e0800000000000000010000000100630a";
    /// d01: JOIN from d1 as SEG_REP.
    const JOIN: &str = "800200800100630a0100630a00000000000000000000000000000000b45b602e1400000000000000010000000100630a010000000100630a01000000";

    #[test]
    fn alive_of_d01() {
        let bytes = hex(ALIVE);
        let (h, p, order) = ProbeBody::parse(&bytes, false).unwrap();
        assert_eq!(h.kind, bits::ALIVE);
        assert_eq!(p.members.ids, vec![0x0a63_0001]);
        assert_eq!(p.members.done, 1);
        assert_eq!(p.emit(&h, order), bytes);
        let be = p.emit(&h, ByteOrder::Big);
        assert_eq!(ProbeBody::parse(&be, false).unwrap(), (h, p, ByteOrder::Big));
        // A count that runs past the datagram.
        let mut bad = bytes.clone();
        bad[40] = 2;
        assert!(parse_probe(&bad, false).is_err());
        assert!(parse_probe(&bytes, true).is_err(), "an ALIVE is no JOIN");
    }

    #[test]
    fn join_of_d01() {
        let bytes = hex(JOIN);
        let (h, p, order) = ProbeBody::parse(&bytes, true).unwrap();
        let reps = p.reps.as_ref().unwrap();
        assert_eq!(reps.reps.len(), 1);
        assert_eq!(reps.reps[0].kind, rep_kind::SEG);
        assert_eq!(reps.reps[0].proc_id, 0x0a63_0001);
        assert_eq!(p.emit(&h, order), bytes);
        assert_eq!(emit_probe(&h, &p.members, p.reps.as_ref()), bytes);
        assert!(parse_probe(&bytes, false).is_err());
        // Header fields a probe does not use come back as they were (found
        // by the daemon_packet fuzz target: a JOIN with fragment fields).
        let mut odd = bytes.clone();
        odd[36..38].copy_from_slice(&413i16.to_le_bytes());
        let (oh, op, _) = ProbeBody::parse(&odd, true).unwrap();
        assert_eq!(oh.frag_index, 413);
        assert_eq!(op.emit(&oh, order), odd);
        // Trailing byte after the reps (data_len adjusted).
        let mut long = bytes.clone();
        long.push(0);
        long[32] += 1;
        assert!(matches!(
            parse_probe(&long, true),
            Err(DecodeError {
                kind: ErrorKind::TrailingBytes,
                ..
            })
        ));
    }

    /// d01: FORM1 of d2 (SEG_REP) to d1 (RING_REP): 796 bytes, mostly the
    /// zero slots of the full members_info and reps_info.
    fn form1_of_d01() -> Vec<u8> {
        let mut v = hex("801000800200630a0200630a0200630afee6036b050d000000000000000000000000f402b45b602e");
        v.extend(hex("010000000200630a"));
        v.extend([0u8; 127 * 4]);
        v.extend(hex("020001000200630a010000000100630a02000000"));
        v.extend([0u8; 23 * 8]);
        v.extend(hex(
            "010000000200630affffffff0000000000000000000000000000000001000100",
        ));
        v.extend(hex("0200630a"));
        v
    }

    #[test]
    fn form1_of_d01_decodes() {
        let bytes = form1_of_d01();
        assert_eq!(bytes.len(), 796);
        let (t, order) = FormToken::parse(&bytes).unwrap();
        assert_eq!(t.header.rtr_len, 756);
        assert_eq!(t.header.seq, 3333);
        assert_eq!(t.header.memb_id.proc_id, 0x0a63_0002);
        assert_eq!(t.members.members(), &[0x0a63_0002]);
        assert!(t.members.pending_ids().is_empty());
        let FormMiddle::Reps(reps) = &t.middle else {
            panic!("a FORM1 carries reps")
        };
        assert_eq!(reps.reps.len(), 2);
        assert_eq!(
            reps.current().map(|r| (r.proc_id, r.kind)),
            Some((0x0a63_0001, rep_kind::RING))
        );
        assert_eq!(t.rings.len(), 1);
        assert_eq!(t.rings[0].memb_id.time, -1);
        assert_eq!(t.rings[0].trans(), &[0x0a63_0002]);
        assert_eq!(t.emit(order), bytes);
        assert_eq!(emit_form(&t), bytes);
        // A FORM1 cut anywhere fails with an error, never a panic.
        for cut in 0..bytes.len() {
            assert!(FormToken::parse(&bytes[..cut]).is_err());
        }
    }

    fn ring(id: DaemonId) -> RingInfo {
        RingInfo {
            memb_id: MembId {
                proc_id: id as i32,
                time: -1,
            },
            trans_time: 0,
            aru: 4,
            highest_seq: 7,
            holes: vec![5, 6],
            commit: vec![id, id + 1],
            num_trans: 1,
        }
    }

    #[test]
    fn form_tokens_round_trip_and_sizes() {
        let f1 = FormToken {
            header: TokenHeader {
                kind: FORM1,
                seq: 3333,
                ..Default::default()
            },
            members: MembersInfo {
                done: 1,
                ids: vec![1, 2, 3],
            },
            middle: FormMiddle::Reps(RepsInfo {
                rep_index: 1,
                reps: vec![
                    Rep {
                        proc_id: 1,
                        kind: rep_kind::SEG,
                        seg_index: 0,
                    },
                    Rep {
                        proc_id: 9,
                        kind: rep_kind::RING,
                        seg_index: 0,
                    },
                ],
            }),
            rings: vec![ring(1), ring(9)],
        };
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let bytes = f1.emit(order);
            assert_eq!(bytes.len(), 40 + 516 + 204 + 4 + 2 * (28 + 16));
            let (back, o) = FormToken::parse(&bytes).unwrap();
            assert_eq!(o, order);
            assert_eq!(back.header.rtr_len as usize, f1.body_len());
            assert_eq!(
                FormToken {
                    header: f1.header,
                    ..back.clone()
                },
                f1
            );
            let (any, _) = AnyToken::parse(&bytes).unwrap();
            assert_eq!(any, AnyToken::Form(back));
            assert_eq!(any.emit(order), bytes);
        }
        let f2 = FormToken {
            header: TokenHeader {
                kind: FORM2,
                ..Default::default()
            },
            members: MembersInfo {
                done: 0,
                ids: vec![1, 2],
            },
            middle: FormMiddle::NewId(MembId { proc_id: 1, time: 99 }),
            rings: vec![ring(1)],
        };
        let bytes = f2.emit(ByteOrder::Big);
        assert_eq!(bytes.len(), 40 + 516 + 8 + 4 + 28 + 16);
        let (back, _) = FormToken::parse(&bytes).unwrap();
        assert_eq!(back.members.pending_ids(), &[1, 2]);
        assert_eq!(back.rings[0].trans(), &[1]);
        assert_eq!(back.header.rtr_len as usize, f2.body_len());
        assert_eq!(
            (back.members, back.middle, back.rings),
            (f2.members, f2.middle, f2.rings)
        );
    }

    /// The engine's first FORM1 of a lone daemon: 796 bytes, as observed.
    #[test]
    fn form_round_trip_sizes() {
        let f = FormToken {
            header: TokenHeader {
                kind: FORM1,
                rtr_len: 756,
                ..Default::default()
            },
            members: MembersInfo {
                done: 1,
                ids: vec![7],
            },
            middle: FormMiddle::Reps(RepsInfo {
                rep_index: 1,
                reps: vec![Rep {
                    proc_id: 7,
                    kind: rep_kind::SEG,
                    seg_index: 0,
                }],
            }),
            rings: vec![RingInfo {
                memb_id: MembId { proc_id: 7, time: -1 },
                trans_time: 0,
                aru: 0,
                highest_seq: 0,
                holes: vec![],
                commit: vec![7],
                num_trans: 1,
            }],
        };
        let b = emit_form(&f);
        assert_eq!(b.len(), 796);
        assert_eq!(parse_form(&b).unwrap(), f);
    }

    #[test]
    fn form_token_checks() {
        let f2 = FormToken {
            header: TokenHeader {
                kind: FORM2,
                ..Default::default()
            },
            members: MembersInfo {
                done: 1,
                ids: vec![1, 2],
            },
            middle: FormMiddle::NewId(MembId::default()),
            rings: vec![ring(1)],
        };
        let good = f2.emit(ByteOrder::Little);
        assert!(parse_form(&good).is_ok());
        let rings_at = 40 + 516 + 8;
        // num_rings too large for the body
        let mut bad = good.clone();
        bad[rings_at] = 2;
        assert!(parse_form(&bad).is_err());
        // num_trans > num_commit
        let mut bad = good.clone();
        bad[rings_at + 4 + 26] = 3;
        assert!(matches!(
            parse_form(&bad),
            Err(DecodeError {
                field: "ring_info.num_trans",
                kind: ErrorKind::BadValue { .. },
                ..
            })
        ));
        // members + pending over 128
        let mut bad = good.clone();
        bad[42] = 0x80;
        assert!(parse_form(&bad).is_err());
        // negative num_holes
        let mut bad = good.clone();
        bad[rings_at + 4 + 20..rings_at + 4 + 24].copy_from_slice(&(-1i32).to_le_bytes());
        assert!(parse_form(&bad).is_err());
        // too short, and a regular token
        assert!(parse_form(&[0x80, 0x10, 0, 0x80]).is_err());
        let regular = super::super::token::emit_token(&TokenHeader::default(), &[]);
        assert!(parse_form(&regular).is_err());
    }

    #[test]
    fn leftover_id_is_the_reps_head() {
        let reps = RepsInfo {
            rep_index: 1,
            reps: vec![Rep {
                proc_id: 0x0a63_0002,
                kind: rep_kind::SEG,
                seg_index: 0,
            }],
        };
        let f1 = FormToken {
            header: TokenHeader {
                kind: FORM1,
                ..Default::default()
            },
            members: MembersInfo::default(),
            middle: FormMiddle::Reps(reps.clone()),
            rings: Vec::new(),
        };
        // The same 8 bytes, read back as a FORM2's new id.
        let b = emit_form(&f1);
        let at = 40 + 516;
        let id = reps_leftover_id(&reps);
        let mut want = Vec::new();
        put_memb_id(ByteOrder::NATIVE, &mut want, id);
        assert_eq!(&b[at..at + 8], &want[..]);
    }
}
