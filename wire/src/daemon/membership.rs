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
//! Slots past the counts hold whatever the sender's buffers held; the full
//! slot arrays are kept so a token re-encodes byte for byte.

use super::packet::{split_datagram, PacketHeader};
use super::token::{split_token, TokenHeader};
use super::types::{
    PacketKind, TokenKind, MAX_PROCS_RING, MAX_REPS, MEMBERS_INFO_LEN, PACKET_HEADER_LEN, REPS_INFO_LEN,
    REP_INFO_LEN, RING_INFO_LEN, TOKEN_HEADER_LEN,
};
use super::{put_i16, put_memb_id, DecodeError};
use crate::client::MembId;
use crate::codec::{self, PResult};
use crate::endian::ByteOrder;

/// One representative (`rep_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RepInfo {
    pub proc_id: i32,
    /// [`super::types::rep_type`]: POTENTIAL_REP, SEG_REP or RING_REP.
    pub rep_type: i16,
    pub seg_index: i16,
}

impl RepInfo {
    fn parse(i: &[u8], o: ByteOrder) -> PResult<'_, RepInfo> {
        let (i, proc_id) = codec::i32(i, o, "rep_info.proc_id")?;
        let (i, rep_type) = codec::i16(i, o, "rep_info.type")?;
        let (i, seg_index) = codec::i16(i, o, "rep_info.seg_index")?;
        let rep = RepInfo {
            proc_id,
            rep_type,
            seg_index,
        };
        Ok((i, rep))
    }

    fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        order.put_i32(out, self.proc_id);
        put_i16(order, out, self.rep_type);
        put_i16(order, out, self.seg_index);
    }
}

/// The members part of ALIVE and JOIN: the gathered ids.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MembersPart {
    /// Sent, but the pending ids themselves are not.
    pub num_pending: i16,
    pub members: Vec<i32>,
}

impl MembersPart {
    pub fn encoded_len(&self) -> usize {
        4 + 4 * self.members.len()
    }

    fn parse(at: &[u8], o: ByteOrder) -> PResult<'_, MembersPart> {
        let (i, n) = codec::count16(at, o, "members_info.num_members")?;
        let (i, num_pending) = codec::i16(i, o, "members_info.num_pending")?;
        if n > MAX_PROCS_RING {
            return codec::bad(at, "members_info.num_members", "more than MAX_PROCS_RING");
        }
        let (i, members) = codec::i32_vec(i, o, n, "members_info.members")?;
        Ok((i, MembersPart { num_pending, members }))
    }

    fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        put_i16(order, out, self.members.len() as i16);
        put_i16(order, out, self.num_pending);
        for &m in &self.members {
            order.put_i32(out, m);
        }
    }
}

/// The reps part of JOIN.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RepsPart {
    pub rep_index: i16,
    pub reps: Vec<RepInfo>,
}

impl RepsPart {
    pub fn encoded_len(&self) -> usize {
        4 + REP_INFO_LEN * self.reps.len()
    }

    fn parse(at: &[u8], o: ByteOrder) -> PResult<'_, RepsPart> {
        let (i, n) = codec::count16(at, o, "reps_info.num_reps")?;
        let (i, rep_index) = codec::i16(i, o, "reps_info.rep_index")?;
        if n > MAX_REPS {
            return codec::bad(at, "reps_info.num_reps", "more than MAX_REPS");
        }
        let (i, ()) = codec::fits(i, at, n, REP_INFO_LEN, "reps_info.reps")?;
        let (i, reps) = nom::multi::count(|i| RepInfo::parse(i, o), n)(i)?;
        Ok((i, RepsPart { rep_index, reps }))
    }

    fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        put_i16(order, out, self.reps.len() as i16);
        put_i16(order, out, self.rep_index);
        for rep in &self.reps {
            rep.emit_into(order, out);
        }
    }
}

fn expect_packet_kind(
    header: &PacketHeader,
    kind: PacketKind,
    reason: &'static str,
) -> Result<(), DecodeError> {
    if header.kind() == kind {
        Ok(())
    } else {
        Err(DecodeError::bad("type", 0, reason))
    }
}

fn packet_with_body(header: &PacketHeader, order: ByteOrder, body_len: usize) -> Vec<u8> {
    let h = PacketHeader {
        data_len: body_len as i16,
        ..*header
    };
    let mut out = Vec::with_capacity(PACKET_HEADER_LEN + body_len);
    h.emit_into(order, &mut out);
    out
}

/// ALIVE: "I am here", with the members gathered so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlivePacket {
    /// `data_len` is recomputed by [`AlivePacket::emit`].
    pub header: PacketHeader,
    pub members: MembersPart,
}

impl AlivePacket {
    pub fn parse(buf: &[u8]) -> Result<(AlivePacket, ByteOrder), DecodeError> {
        let (header, order, body) = split_datagram(buf)?;
        expect_packet_kind(&header, PacketKind::Alive, "not an ALIVE packet")?;
        let members = codec::run_all(body, PACKET_HEADER_LEN, "alive body", |i| {
            MembersPart::parse(i, order)
        })?;
        Ok((AlivePacket { header, members }, order))
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        let mut out = packet_with_body(&self.header, order, self.members.encoded_len());
        self.members.emit_into(order, &mut out);
        out
    }
}

/// JOIN: gathered members and representatives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinPacket {
    /// `data_len` is recomputed by [`JoinPacket::emit`].
    pub header: PacketHeader,
    pub members: MembersPart,
    pub reps: RepsPart,
}

impl JoinPacket {
    pub fn parse(buf: &[u8]) -> Result<(JoinPacket, ByteOrder), DecodeError> {
        let (header, order, body) = split_datagram(buf)?;
        expect_packet_kind(&header, PacketKind::Join, "not a JOIN packet")?;
        let (members, reps) = codec::run_all(body, PACKET_HEADER_LEN, "join body", |i| {
            let (i, members) = MembersPart::parse(i, order)?;
            let (i, reps) = RepsPart::parse(i, order)?;
            Ok((i, (members, reps)))
        })?;
        Ok((
            JoinPacket {
                header,
                members,
                reps,
            },
            order,
        ))
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        let len = self.members.encoded_len() + self.reps.encoded_len();
        let mut out = packet_with_body(&self.header, order, len);
        self.members.emit_into(order, &mut out);
        self.reps.emit_into(order, &mut out);
        out
    }
}

/// REFER: go and talk to this representative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReferPacket {
    pub header: PacketHeader,
}

impl ReferPacket {
    pub fn parse(buf: &[u8]) -> Result<(ReferPacket, ByteOrder), DecodeError> {
        let (header, order) = super::packet::parse_header_only(buf)?;
        expect_packet_kind(&header, PacketKind::Refer, "not a REFER packet")?;
        Ok((ReferPacket { header }, order))
    }

    /// The representative to contact.
    pub fn rep(&self) -> i32 {
        self.header.memb_id.proc_id
    }

    /// Its type (SEG_REP or RING_REP).
    pub fn rep_type(&self) -> i32 {
        self.header.memb_id.time
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        super::packet::emit_header_only(&self.header, order)
    }
}

/// A full `members_info`: processed members first, then pending ones.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MembersInfo {
    pub num_members: i16,
    pub num_pending: i16,
    /// All 128 slots as sent; only the first num_members + num_pending count.
    pub slots: [i32; MAX_PROCS_RING],
}

impl Default for MembersInfo {
    fn default() -> Self {
        MembersInfo {
            num_members: 0,
            num_pending: 0,
            slots: [0; MAX_PROCS_RING],
        }
    }
}

impl std::fmt::Debug for MembersInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MembersInfo")
            .field("members", &self.members())
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl MembersInfo {
    /// Clean slots from the processed and pending ids; `None` if they do not fit.
    pub fn new(members: &[i32], pending: &[i32]) -> Option<MembersInfo> {
        if members.len() + pending.len() > MAX_PROCS_RING {
            return None;
        }
        let mut info = MembersInfo {
            num_members: members.len() as i16,
            num_pending: pending.len() as i16,
            ..Default::default()
        };
        info.slots[..members.len()].copy_from_slice(members);
        info.slots[members.len()..members.len() + pending.len()].copy_from_slice(pending);
        Some(info)
    }

    fn counts(&self) -> (usize, usize) {
        let m = (self.num_members.max(0) as usize).min(MAX_PROCS_RING);
        let p = (self.num_pending.max(0) as usize).min(MAX_PROCS_RING - m);
        (m, p)
    }

    /// Members that already processed the token.
    pub fn members(&self) -> &[i32] {
        let (m, _) = self.counts();
        &self.slots[..m]
    }

    /// Members still to visit.
    pub fn pending(&self) -> &[i32] {
        let (m, p) = self.counts();
        &self.slots[m..m + p]
    }

    /// Processed then pending.
    pub fn all(&self) -> &[i32] {
        let (m, p) = self.counts();
        &self.slots[..m + p]
    }

    fn parse(at: &[u8], o: ByteOrder) -> PResult<'_, MembersInfo> {
        let (i, m) = codec::count16(at, o, "members_info.num_members")?;
        let (mut i, p) = codec::count16(i, o, "members_info.num_pending")?;
        if m + p > MAX_PROCS_RING {
            return codec::bad(
                at,
                "members_info.num_members",
                "members and pending exceed MAX_PROCS_RING",
            );
        }
        let mut slots = [0i32; MAX_PROCS_RING];
        for s in slots.iter_mut() {
            (i, *s) = codec::i32(i, o, "members_info.members")?;
        }
        let info = MembersInfo {
            num_members: m as i16,
            num_pending: p as i16,
            slots,
        };
        Ok((i, info))
    }

    fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        put_i16(order, out, self.num_members);
        put_i16(order, out, self.num_pending);
        for &s in &self.slots {
            order.put_i32(out, s);
        }
    }
}

/// A full `reps_info`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RepsInfo {
    pub num_reps: i16,
    /// The next representative to visit (not checked against num_reps).
    pub rep_index: i16,
    /// All 25 slots as sent; only the first num_reps count.
    pub slots: [RepInfo; MAX_REPS],
}

impl Default for RepsInfo {
    fn default() -> Self {
        RepsInfo {
            num_reps: 0,
            rep_index: 0,
            slots: [RepInfo::default(); MAX_REPS],
        }
    }
}

impl std::fmt::Debug for RepsInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepsInfo")
            .field("rep_index", &self.rep_index)
            .field("reps", &self.reps())
            .finish_non_exhaustive()
    }
}

impl RepsInfo {
    /// Clean slots from a list; `None` if it does not fit.
    pub fn new(rep_index: i16, reps: &[RepInfo]) -> Option<RepsInfo> {
        if reps.len() > MAX_REPS {
            return None;
        }
        let mut info = RepsInfo {
            num_reps: reps.len() as i16,
            rep_index,
            ..Default::default()
        };
        info.slots[..reps.len()].copy_from_slice(reps);
        Some(info)
    }

    pub fn reps(&self) -> &[RepInfo] {
        &self.slots[..(self.num_reps.max(0) as usize).min(MAX_REPS)]
    }

    /// The representative at `rep_index`, if that is within the list.
    pub fn current(&self) -> Option<&RepInfo> {
        usize::try_from(self.rep_index)
            .ok()
            .and_then(|i| self.reps().get(i))
    }

    fn parse(at: &[u8], o: ByteOrder) -> PResult<'_, RepsInfo> {
        let (i, n) = codec::count16(at, o, "reps_info.num_reps")?;
        let (mut i, rep_index) = codec::i16(i, o, "reps_info.rep_index")?;
        if n > MAX_REPS {
            return codec::bad(at, "reps_info.num_reps", "more than MAX_REPS");
        }
        let mut slots = [RepInfo::default(); MAX_REPS];
        for s in slots.iter_mut() {
            (i, *s) = RepInfo::parse(i, o)?;
        }
        let info = RepsInfo {
            num_reps: n as i16,
            rep_index,
            slots,
        };
        Ok((i, info))
    }

    fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        put_i16(order, out, self.num_reps);
        put_i16(order, out, self.rep_index);
        for s in &self.slots {
            s.emit_into(order, out);
        }
    }
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
    /// Daemons of the ring taking part; the first `num_trans` are the
    /// transitional set.
    pub commit: Vec<i32>,
    pub num_trans: i16,
}

impl RingInfo {
    pub fn encoded_len(&self) -> usize {
        RING_INFO_LEN + 4 * (self.holes.len() + self.commit.len())
    }

    /// The transitional set.
    pub fn trans(&self) -> &[i32] {
        let n = (self.num_trans.max(0) as usize).min(self.commit.len());
        &self.commit[..n]
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
        let (i, commit) = codec::i32_vec(i, o, num_commit, "ring_info.commit")?;
        let ring = RingInfo {
            memb_id,
            trans_time,
            aru,
            highest_seq,
            holes,
            commit,
            num_trans,
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
        put_i16(order, out, self.num_trans);
        for &h in &self.holes {
            order.put_i32(out, h);
        }
        for &c in &self.commit {
            order.put_i32(out, c);
        }
    }
}

fn parse_rings(at: &[u8], o: ByteOrder) -> PResult<'_, Vec<RingInfo>> {
    let (i, n) = codec::count32(at, o, "num_rings")?;
    let (i, ()) = codec::fits(i, at, n, RING_INFO_LEN, "num_rings")?;
    nom::multi::count(|i| RingInfo::parse(i, o), n)(i)
}

fn rings_len(rings: &[RingInfo]) -> usize {
    4 + rings.iter().map(RingInfo::encoded_len).sum::<usize>()
}

fn emit_rings(rings: &[RingInfo], order: ByteOrder, out: &mut Vec<u8>) {
    order.put_i32(out, rings.len() as i32);
    for ring in rings {
        ring.emit_into(order, out);
    }
}

fn expect_token_kind(header: &TokenHeader, kind: TokenKind, reason: &'static str) -> Result<(), DecodeError> {
    if header.kind() == kind {
        Ok(())
    } else {
        Err(DecodeError::bad("type", 0, reason))
    }
}

fn token_with_body(header: &TokenHeader, order: ByteOrder, body_len: usize) -> Vec<u8> {
    let h = TokenHeader {
        rtr_len: body_len as u16,
        ..*header
    };
    let mut out = Vec::with_capacity(TOKEN_HEADER_LEN + body_len);
    h.emit_into(order, &mut out);
    out
}

/// FORM1: collects the description of the new ring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form1Token {
    /// `rtr_len` is recomputed by [`Form1Token::emit`].
    pub header: TokenHeader,
    pub members: MembersInfo,
    pub reps: RepsInfo,
    pub rings: Vec<RingInfo>,
}

impl Form1Token {
    pub fn parse(buf: &[u8]) -> Result<(Form1Token, ByteOrder), DecodeError> {
        let (header, order, body) = split_token(buf)?;
        expect_token_kind(&header, TokenKind::Form1, "not a FORM1 token")?;
        let (members, reps, rings) = codec::run_all(body, TOKEN_HEADER_LEN, "form1 body", |i| {
            let (i, members) = MembersInfo::parse(i, order)?;
            let (i, reps) = RepsInfo::parse(i, order)?;
            let (i, rings) = parse_rings(i, order)?;
            Ok((i, (members, reps, rings)))
        })?;
        Ok((
            Form1Token {
                header,
                members,
                reps,
                rings,
            },
            order,
        ))
    }

    pub fn body_len(&self) -> usize {
        MEMBERS_INFO_LEN + REPS_INFO_LEN + rings_len(&self.rings)
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        let mut out = token_with_body(&self.header, order, self.body_len());
        self.members.emit_into(order, &mut out);
        self.reps.emit_into(order, &mut out);
        emit_rings(&self.rings, order, &mut out);
        out
    }
}

/// FORM2: installs the new ring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Form2Token {
    /// `rtr_len` is recomputed by [`Form2Token::emit`].
    pub header: TokenHeader,
    pub members: MembersInfo,
    /// Written by the first member that processes the token.
    pub new_memb_id: MembId,
    pub rings: Vec<RingInfo>,
}

impl Form2Token {
    pub fn parse(buf: &[u8]) -> Result<(Form2Token, ByteOrder), DecodeError> {
        let (header, order, body) = split_token(buf)?;
        expect_token_kind(&header, TokenKind::Form2, "not a FORM2 token")?;
        let (members, new_memb_id, rings) = codec::run_all(body, TOKEN_HEADER_LEN, "form2 body", |i| {
            let (i, members) = MembersInfo::parse(i, order)?;
            let (i, new_memb_id) = codec::memb_id(i, order, "new_memb_id")?;
            let (i, rings) = parse_rings(i, order)?;
            Ok((i, (members, new_memb_id, rings)))
        })?;
        Ok((
            Form2Token {
                header,
                members,
                new_memb_id,
                rings,
            },
            order,
        ))
    }

    pub fn body_len(&self) -> usize {
        MEMBERS_INFO_LEN + 8 + rings_len(&self.rings)
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        let mut out = token_with_body(&self.header, order, self.body_len());
        self.members.emit_into(order, &mut out);
        put_memb_id(order, &mut out, self.new_memb_id);
        emit_rings(&self.rings, order, &mut out);
        out
    }
}

/// Any datagram of the token port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyToken {
    Regular(super::token::Token),
    Form1(Form1Token),
    Form2(Form2Token),
}

impl AnyToken {
    /// Decode by the type word's FORM bits.
    pub fn parse(buf: &[u8]) -> Result<(AnyToken, ByteOrder), DecodeError> {
        let (header, _) = TokenHeader::parse(buf)?;
        Ok(match header.kind() {
            TokenKind::Regular => {
                let (t, o) = super::token::Token::parse(buf)?;
                (AnyToken::Regular(t), o)
            }
            TokenKind::Form1 => {
                let (t, o) = Form1Token::parse(buf)?;
                (AnyToken::Form1(t), o)
            }
            TokenKind::Form2 => {
                let (t, o) = Form2Token::parse(buf)?;
                (AnyToken::Form2(t), o)
            }
        })
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        match self {
            AnyToken::Regular(t) => t.emit(order),
            AnyToken::Form1(t) => t.emit(order),
            AnyToken::Form2(t) => t.emit(order),
        }
    }
}

/// Any datagram of the packet port that this module or [`super::packet`]
/// decodes (monitor and reload packets are reported by kind only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyPacket {
    Data(super::packet::DataPacket),
    Alive(AlivePacket),
    Join(JoinPacket),
    Refer(ReferPacket),
    Hurry(PacketHeader),
    /// STATUS, PARTITION, FC, RELOAD or unknown types: header and raw body.
    Other(PacketHeader, Vec<u8>),
}

impl AnyPacket {
    pub fn parse(buf: &[u8]) -> Result<(AnyPacket, ByteOrder), DecodeError> {
        let (header, order, body) = split_datagram(buf)?;
        Ok(match header.kind() {
            PacketKind::Data => (AnyPacket::Data(super::packet::DataPacket::parse(buf)?.0), order),
            PacketKind::Alive => (AnyPacket::Alive(AlivePacket::parse(buf)?.0), order),
            PacketKind::Join => (AnyPacket::Join(JoinPacket::parse(buf)?.0), order),
            PacketKind::Refer => (AnyPacket::Refer(ReferPacket::parse(buf)?.0), order),
            PacketKind::Hurry => (AnyPacket::Hurry(super::packet::parse_header_only(buf)?.0), order),
            _ => (AnyPacket::Other(header, body.to_vec()), order),
        })
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        match self {
            AnyPacket::Data(p) => p.emit(order),
            AnyPacket::Alive(p) => p.emit(order),
            AnyPacket::Join(p) => p.emit(order),
            AnyPacket::Refer(p) => p.emit(order),
            AnyPacket::Hurry(h) => super::packet::emit_header_only(h, order),
            AnyPacket::Other(h, body) => {
                let mut out = packet_with_body(h, order, body.len());
                out.extend_from_slice(body);
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::rep_type::*;
    use super::super::types::type_bits::*;
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
        let (p, order) = AlivePacket::parse(&bytes).unwrap();
        assert_eq!(p.header.packet_type, ALIVE_TYPE);
        assert_eq!(p.members.members, vec![0x0a63_0001]);
        assert_eq!(p.emit(order), bytes);
        let be = p.emit(ByteOrder::Big);
        assert_eq!(AlivePacket::parse(&be).unwrap(), (p, ByteOrder::Big));
        // A count that runs past the datagram.
        let mut bad = bytes.clone();
        bad[40] = 2;
        assert!(AlivePacket::parse(&bad).is_err());
    }

    #[test]
    fn join_of_d01() {
        let bytes = hex(JOIN);
        let (p, order) = JoinPacket::parse(&bytes).unwrap();
        assert_eq!(p.reps.reps.len(), 1);
        assert_eq!(p.reps.reps[0].rep_type, SEG_REP);
        assert_eq!(p.reps.reps[0].proc_id, 0x0a63_0001);
        assert_eq!(p.emit(order), bytes);
        assert!(AlivePacket::parse(&bytes).is_err());
        // Trailing byte after the reps (data_len adjusted).
        let mut long = bytes.clone();
        long.push(0);
        long[32] += 1;
        assert!(matches!(
            JoinPacket::parse(&long),
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
        let (t, order) = Form1Token::parse(&bytes).unwrap();
        assert_eq!(t.header.rtr_len, 756);
        assert_eq!(t.header.seq, 3333);
        assert_eq!(t.header.memb_id.proc_id, 0x0a63_0002);
        assert_eq!(t.members.members(), &[0x0a63_0002]);
        assert!(t.members.pending().is_empty());
        assert_eq!(t.reps.reps().len(), 2);
        assert_eq!(
            t.reps.current().map(|r| (r.proc_id, r.rep_type)),
            Some((0x0a63_0001, RING_REP))
        );
        assert_eq!(t.rings.len(), 1);
        assert_eq!(t.rings[0].memb_id.time, -1);
        assert_eq!(t.rings[0].trans(), &[0x0a63_0002]);
        assert_eq!(t.emit(order), bytes);
        // A FORM1 cut anywhere fails with an error, never a panic.
        for cut in 0..bytes.len() {
            assert!(Form1Token::parse(&bytes[..cut]).is_err());
        }
    }

    fn ring(id: i32) -> RingInfo {
        RingInfo {
            memb_id: MembId {
                proc_id: id,
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
        let f1 = Form1Token {
            header: TokenHeader {
                token_type: FORM1_TYPE,
                seq: 3333,
                ..Default::default()
            },
            members: MembersInfo::new(&[1], &[2, 3]).unwrap(),
            reps: RepsInfo::new(
                1,
                &[
                    RepInfo {
                        proc_id: 1,
                        rep_type: SEG_REP,
                        seg_index: 0,
                    },
                    RepInfo {
                        proc_id: 9,
                        rep_type: RING_REP,
                        seg_index: 0,
                    },
                ],
            )
            .unwrap(),
            rings: vec![ring(1), ring(9)],
        };
        assert_eq!(f1.reps.current().unwrap().proc_id, 9);
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let bytes = f1.emit(order);
            assert_eq!(bytes.len(), 40 + 516 + 204 + 4 + 2 * (28 + 16));
            let (back, o) = Form1Token::parse(&bytes).unwrap();
            assert_eq!(o, order);
            assert_eq!(back.header.rtr_len as usize, f1.body_len());
            assert_eq!(
                (back.members, back.reps, &back.rings),
                (f1.members, f1.reps, &f1.rings)
            );
            assert!(Form2Token::parse(&bytes).is_err());
            let (any, _) = AnyToken::parse(&bytes).unwrap();
            assert_eq!(any.emit(order), bytes);
        }
        let f2 = Form2Token {
            header: TokenHeader {
                token_type: FORM2_TYPE,
                ..Default::default()
            },
            members: MembersInfo::new(&[], &[1, 2]).unwrap(),
            new_memb_id: MembId { proc_id: 1, time: 99 },
            rings: vec![ring(1)],
        };
        let bytes = f2.emit(ByteOrder::Big);
        assert_eq!(bytes.len(), 40 + 516 + 8 + 4 + 28 + 16);
        let (back, _) = Form2Token::parse(&bytes).unwrap();
        assert_eq!(back.members.pending(), &[1, 2]);
        assert_eq!(back.rings[0].trans(), &[1]);
        assert_eq!(back.header.rtr_len as usize, f2.body_len());
        assert_eq!(
            (back.members, back.new_memb_id, &back.rings),
            (f2.members, f2.new_memb_id, &f2.rings)
        );
    }

    #[test]
    fn form_token_checks() {
        let f2 = Form2Token {
            header: TokenHeader {
                token_type: FORM2_TYPE,
                ..Default::default()
            },
            members: MembersInfo::new(&[1], &[2]).unwrap(),
            new_memb_id: MembId::default(),
            rings: vec![ring(1)],
        };
        let good = f2.emit(ByteOrder::Little);
        let rings_at = 40 + 516 + 8;
        // num_rings too large for the body
        let mut bad = good.clone();
        bad[rings_at] = 2;
        assert!(Form2Token::parse(&bad).is_err());
        // num_trans > num_commit
        let mut bad = good.clone();
        bad[rings_at + 4 + 26] = 3;
        assert!(matches!(
            Form2Token::parse(&bad),
            Err(DecodeError {
                field: "ring_info.num_trans",
                kind: ErrorKind::BadValue { .. },
                ..
            })
        ));
        // members + pending over 128
        let mut bad = good.clone();
        bad[42] = 0x80;
        assert!(Form2Token::parse(&bad).is_err());
        // negative num_holes
        let mut bad = good.clone();
        bad[rings_at + 4 + 20..rings_at + 4 + 24].copy_from_slice(&(-1i32).to_le_bytes());
        assert!(Form2Token::parse(&bad).is_err());
    }
}
