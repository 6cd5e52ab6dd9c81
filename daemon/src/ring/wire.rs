//! The engine's view of the daemon datagrams: owned representations and
//! their byte layouts (both orders on input, native order on output).
//!
//! Interim: these codecs stand in until `spread_wire::daemon` (packet, token,
//! membership bodies) is complete; the layouts follow the same facts
//! (`shared/spread4-wire/daemon/README.md`). Parsing never panics: every
//! count is checked against the bytes present.

use spread_wire::client::MembId;
use spread_wire::endian::{ByteOrder, ENDIAN_MARKER};

pub(crate) mod bits {
    pub const RELIABLE: u32 = 0x0000_0002;
    pub const FIFO: u32 = 0x0000_0004;
    pub const AGREED: u32 = 0x0000_0008;
    pub const SAFE: u32 = 0x0000_0010;
    pub const REGULAR: u32 = 0x0000_001f;
    pub const ROUTED: u32 = 0x0000_0020;
    pub const HURRY: u32 = 0x0000_0040;
    pub const ALIVE: u32 = 0x0000_0100;
    pub const JOIN: u32 = 0x0000_0200;
    pub const REFER: u32 = 0x0000_0400;
    pub const MEMBERSHIP: u32 = 0x0000_0700;
    pub const FORM1: u32 = 0x0000_1000;
    pub const FORM2: u32 = 0x0000_2000;
    pub const FORM: u32 = 0x0000_3000;
    pub const CONTROL: u32 = 0x0f00_0000;
    pub const ARQ_MASK: u32 = 0x000f_0000;
    pub const RETRANS_MASK: u32 = 0x00f0_0000;
}

pub(crate) const HEADER_LEN: usize = 40;
pub(crate) const MAX_PACKET: usize = 1472;
/// Bytes of fragments one data packet carries.
pub(crate) const BODY_LEN: usize = MAX_PACKET - HEADER_LEN;
/// Largest token body (an IP datagram less IP, UDP and token headers).
pub(crate) const MAX_TOKEN_BODY: usize = 65535 - 20 - 8 - HEADER_LEN;
pub(crate) const MAX_PROCS_RING: usize = 128;
pub(crate) const MAX_REPS: usize = 25;
const MEMBERS_INFO_LEN: usize = 4 + 4 * MAX_PROCS_RING;
const REPS_INFO_LEN: usize = 4 + 8 * MAX_REPS;
const RING_INFO_LEN: usize = 28;
const RING_RTR_LEN: usize = 16;

pub(crate) fn arq(t: u32) -> u8 {
    ((t & bits::ARQ_MASK) >> 16) as u8
}
pub(crate) fn with_arq(t: u32, v: u8) -> u32 {
    (t & !bits::ARQ_MASK) | ((u32::from(v) << 16) & bits::ARQ_MASK)
}
pub(crate) fn retrans(t: u32) -> u8 {
    ((t & bits::RETRANS_MASK) >> 20) as u8
}
pub(crate) fn with_retrans(t: u32, v: u8) -> u32 {
    (t & !bits::RETRANS_MASK) | ((u32::from(v) << 20) & bits::RETRANS_MASK)
}

/// Why bytes could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Malformed(pub &'static str);

struct Rd<'a> {
    b: &'a [u8],
    pos: usize,
    o: ByteOrder,
}

impl<'a> Rd<'a> {
    fn new(b: &'a [u8], o: ByteOrder) -> Self {
        Rd { b, pos: 0, o }
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(Malformed(what))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        let s = self.take(4, what)?;
        Ok(self.o.read_u32([s[0], s[1], s[2], s[3]]))
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, Malformed> {
        Ok(self.u32(what)? as i32)
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        let s = self.take(2, what)?;
        Ok(self.o.read_u16([s[0], s[1]]))
    }
    fn i16(&mut self, what: &'static str) -> Result<i16, Malformed> {
        Ok(self.u16(what)? as i16)
    }
    fn count16(&mut self, what: &'static str) -> Result<usize, Malformed> {
        let v = self.i16(what)?;
        usize::try_from(v).map_err(|_| Malformed(what))
    }
    fn memb_id(&mut self, what: &'static str) -> Result<MembId, Malformed> {
        Ok(MembId {
            proc_id: self.i32(what)?,
            time: self.i32(what)?,
        })
    }
    fn rest(&self) -> usize {
        self.b.len() - self.pos
    }
}

struct Wr {
    out: Vec<u8>,
    o: ByteOrder,
}

impl Wr {
    fn new(cap: usize) -> Self {
        Wr {
            out: Vec::with_capacity(cap),
            o: ByteOrder::NATIVE,
        }
    }
    fn u32(&mut self, v: u32) {
        self.o.put_u32(&mut self.out, v);
    }
    fn i32(&mut self, v: i32) {
        self.o.put_i32(&mut self.out, v);
    }
    fn u16(&mut self, v: u16) {
        self.o.put_u16(&mut self.out, v);
    }
    fn i16(&mut self, v: i16) {
        self.u16(v as u16);
    }
    fn memb_id(&mut self, m: MembId) {
        self.i32(m.proc_id);
        self.i32(m.time);
    }
    fn type_word(&mut self, t: u32) {
        self.u32(t | ByteOrder::NATIVE.marker());
    }
}

fn order_of(b: &[u8]) -> Result<ByteOrder, Malformed> {
    if b.len() < 4 {
        return Err(Malformed("type"));
    }
    Ok(ByteOrder::of_type_word([b[0], b[1], b[2], b[3]]))
}

/// The 40-byte header of everything sent to the packet port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PacketHeader {
    /// Type bits without the endian marker.
    pub kind: u32,
    pub transmitter: u32,
    pub proc_id: u32,
    pub memb_id: MembId,
    pub seq: i32,
    pub token_round: i32,
    pub conf_hash: u32,
    pub data_len: u16,
    pub frag_index: i16,
    pub frag_len: i16,
}

impl PacketHeader {
    /// Reads the header; the caller checks `data_len` against the datagram.
    pub fn parse(b: &[u8]) -> Result<(PacketHeader, ByteOrder), Malformed> {
        let o = order_of(b)?;
        let mut r = Rd::new(b, o);
        let kind = r.u32("type")? & !ENDIAN_MARKER;
        let h = PacketHeader {
            kind,
            transmitter: r.u32("transmiter_id")?,
            proc_id: r.u32("proc_id")?,
            memb_id: r.memb_id("memb_id")?,
            seq: r.i32("seq")?,
            token_round: r.i32("token_round")?,
            conf_hash: r.u32("conf_hash")?,
            data_len: r.u16("data_len")?,
            frag_index: {
                r.u16("padding")?;
                r.i16("fragment_index")?
            },
            frag_len: r.i16("fragment_len")?,
        };
        Ok((h, o))
    }

    fn write(&self, w: &mut Wr) {
        w.type_word(self.kind);
        w.u32(self.transmitter);
        w.u32(self.proc_id);
        w.memb_id(self.memb_id);
        w.i32(self.seq);
        w.i32(self.token_round);
        w.u32(self.conf_hash);
        w.u16(self.data_len);
        w.u16(0);
        w.i16(self.frag_index);
        w.i16(self.frag_len);
    }

    /// A header-only datagram (HURRY, REFER).
    pub fn emit_bare(&self) -> Vec<u8> {
        let mut w = Wr::new(HEADER_LEN);
        let mut h = *self;
        h.data_len = 0;
        h.write(&mut w);
        w.out
    }
}

/// One piece of a message inside a data packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fragment {
    /// 1..n-1 for inner pieces, -n for the last piece of an n-piece message.
    pub index: i16,
    pub bytes: Vec<u8>,
}

/// Splits a data packet body into its fragments (the first one's header is in
/// the packet header). Returns what could be read and whether all bytes were
/// accounted for.
pub(crate) fn parse_fragments(h: &PacketHeader, body: &[u8], o: ByteOrder) -> (Vec<Fragment>, bool) {
    let mut frags = Vec::new();
    let first = usize::try_from(h.frag_len).unwrap_or(usize::MAX);
    if first > body.len() {
        return (frags, false);
    }
    frags.push(Fragment {
        index: h.frag_index,
        bytes: body[..first].to_vec(),
    });
    let mut at = first;
    while at < body.len() {
        at = (at + 3) & !3;
        let mut r = Rd::new(body.get(at..).unwrap_or(&[]), o);
        let (Ok(index), Ok(len)) = (r.i16("fragment_index"), r.i16("fragment_len")) else {
            return (frags, false);
        };
        let Ok(len) = usize::try_from(len) else {
            return (frags, false);
        };
        at += 4;
        let Some(bytes) = body.get(at..at + len) else {
            return (frags, false);
        };
        frags.push(Fragment {
            index,
            bytes: bytes.to_vec(),
        });
        at += len;
    }
    (frags, at == body.len())
}

/// Emits a data packet: header fields plus the fragments, packed with
/// 4-byte alignment before each packed fragment header.
pub(crate) fn emit_data(h: &PacketHeader, frags: &[Fragment]) -> Vec<u8> {
    let mut body = Wr::new(BODY_LEN);
    for (i, f) in frags.iter().enumerate() {
        if i > 0 {
            while body.out.len() % 4 != 0 {
                body.out.push(0);
            }
            body.i16(f.index);
            body.i16(f.bytes.len() as i16);
        }
        body.out.extend_from_slice(&f.bytes);
    }
    let mut hh = *h;
    hh.data_len = body.out.len() as u16;
    if let Some(f) = frags.first() {
        hh.frag_index = f.index;
        hh.frag_len = f.bytes.len() as i16;
    }
    let mut w = Wr::new(HEADER_LEN + body.out.len());
    hh.write(&mut w);
    w.out.extend_from_slice(&body.out);
    w.out
}

/// Body size `frags` would take in one packet.
pub(crate) fn packed_len(frags: &[Fragment]) -> usize {
    let mut n = 0;
    for (i, f) in frags.iter().enumerate() {
        if i > 0 {
            n = ((n + 3) & !3) + 4;
        }
        n += f.bytes.len();
    }
    n
}

/// `members_info`: the first `done` ids are "members", the rest "pending".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MembersInfo {
    pub done: usize,
    pub ids: Vec<u32>,
}

impl MembersInfo {
    pub fn pending(&self) -> usize {
        self.ids.len() - self.done
    }
    fn parse(r: &mut Rd<'_>, full: bool) -> Result<Self, Malformed> {
        let start = r.pos;
        let done = r.count16("num_members")?;
        let pending = r.count16("num_pending")?;
        let n = done + pending;
        if n > MAX_PROCS_RING || n * 4 > r.rest() {
            return Err(Malformed("members"));
        }
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(r.u32("members")?);
        }
        if full {
            r.pos = start;
            r.take(MEMBERS_INFO_LEN, "members_info")?;
        }
        Ok(MembersInfo { done, ids })
    }
    /// ALIVE/JOIN form: counts, then `done` ids only (num_pending written as given).
    fn write_short(&self, w: &mut Wr) {
        w.i16(self.done as i16);
        w.i16(self.pending() as i16);
        for id in &self.ids[..self.done] {
            w.u32(*id);
        }
    }
    fn write_full(&self, w: &mut Wr) {
        w.i16(self.done as i16);
        w.i16(self.pending() as i16);
        for i in 0..MAX_PROCS_RING {
            w.u32(self.ids.get(i).copied().unwrap_or(0));
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rep {
    pub proc_id: u32,
    pub kind: i16,
    pub seg_index: i16,
}

pub(crate) mod rep_kind {
    pub const POTENTIAL: i16 = 0;
    pub const SEG: i16 = 1;
    pub const RING: i16 = 2;
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RepsInfo {
    pub rep_index: i16,
    pub reps: Vec<Rep>,
}

impl RepsInfo {
    fn parse(r: &mut Rd<'_>, full: bool) -> Result<Self, Malformed> {
        let start = r.pos;
        let n = r.count16("num_reps")?;
        let rep_index = r.i16("rep_index")?;
        if n > MAX_REPS || n * 8 > r.rest() {
            return Err(Malformed("reps"));
        }
        let mut reps = Vec::with_capacity(n);
        for _ in 0..n {
            reps.push(Rep {
                proc_id: r.u32("rep proc_id")?,
                kind: r.i16("rep type")?,
                seg_index: r.i16("rep seg_index")?,
            });
        }
        if full {
            r.pos = start;
            r.take(REPS_INFO_LEN, "reps_info")?;
        }
        Ok(RepsInfo { rep_index, reps })
    }
    fn write(&self, w: &mut Wr, full: bool) {
        w.i16(self.reps.len() as i16);
        w.i16(self.rep_index);
        for rep in &self.reps {
            w.u32(rep.proc_id);
            w.i16(rep.kind);
            w.i16(rep.seg_index);
        }
        if full {
            for _ in self.reps.len()..MAX_REPS {
                w.out.extend_from_slice(&[0; 8]);
            }
        }
    }
}

/// ALIVE (reps = None) or JOIN body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProbeBody {
    pub members: MembersInfo,
    pub reps: Option<RepsInfo>,
}

pub(crate) fn parse_probe(body: &[u8], o: ByteOrder, join: bool) -> Result<ProbeBody, Malformed> {
    let mut r = Rd::new(body, o);
    let done = r.count16("num_members")?;
    let pending = r.count16("num_pending")?;
    if done > MAX_PROCS_RING || done * 4 > r.rest() {
        return Err(Malformed("members"));
    }
    let mut ids = Vec::with_capacity(done);
    for _ in 0..done {
        ids.push(r.u32("members")?);
    }
    let _ = pending;
    let members = MembersInfo { done, ids };
    let reps = if join {
        Some(RepsInfo::parse(&mut r, false)?)
    } else {
        None
    };
    Ok(ProbeBody { members, reps })
}

pub(crate) fn emit_probe(h: &PacketHeader, members: &MembersInfo, reps: Option<&RepsInfo>) -> Vec<u8> {
    let mut body = Wr::new(256);
    members.write_short(&mut body);
    if let Some(reps) = reps {
        reps.write(&mut body, false);
    }
    let mut hh = *h;
    hh.data_len = body.out.len() as u16;
    hh.frag_index = 0;
    hh.frag_len = 0;
    let mut w = Wr::new(HEADER_LEN + body.out.len());
    hh.write(&mut w);
    w.out.extend_from_slice(&body.out);
    w.out
}

/// The 40-byte token header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TokenHeader {
    pub kind: u32,
    pub transmitter: u32,
    pub proc_id: u32,
    pub memb_id: MembId,
    pub seq: i32,
    pub aru: i32,
    pub aru_last_id: u32,
    pub flow_control: i16,
    pub rtr_len: u16,
    pub conf_hash: u32,
}

impl TokenHeader {
    pub fn parse(b: &[u8]) -> Result<(TokenHeader, ByteOrder), Malformed> {
        let o = order_of(b)?;
        let mut r = Rd::new(b, o);
        Ok((
            TokenHeader {
                kind: r.u32("type")? & !ENDIAN_MARKER,
                transmitter: r.u32("transmiter_id")?,
                proc_id: r.u32("proc_id")?,
                memb_id: r.memb_id("memb_id")?,
                seq: r.i32("seq")?,
                aru: r.i32("aru")?,
                aru_last_id: r.u32("aru_last_id")?,
                flow_control: r.i16("flow_control")?,
                rtr_len: r.u16("rtr_len")?,
                conf_hash: r.u32("conf_hash")?,
            },
            o,
        ))
    }
    fn write(&self, w: &mut Wr, body_len: usize) {
        w.type_word(self.kind);
        w.u32(self.transmitter);
        w.u32(self.proc_id);
        w.memb_id(self.memb_id);
        w.i32(self.seq);
        w.i32(self.aru);
        w.u32(self.aru_last_id);
        w.i16(self.flow_control);
        w.u16(body_len as u16);
        w.u32(self.conf_hash);
    }
}

/// One ring's retransmission requests inside a regular token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RingRtr {
    pub memb_id: MembId,
    /// Who asks (-1 when answers must be broadcast).
    pub proc_id: i32,
    pub seg_index: i16,
    pub seqs: Vec<i32>,
}

impl RingRtr {
    pub fn wire_len(&self) -> usize {
        RING_RTR_LEN + 4 * self.seqs.len()
    }
}

pub(crate) fn parse_rtr(body: &[u8], o: ByteOrder) -> Result<Vec<RingRtr>, Malformed> {
    let mut r = Rd::new(body, o);
    let mut out = Vec::new();
    while r.rest() > 0 {
        let memb_id = r.memb_id("rtr memb_id")?;
        let proc_id = r.i32("rtr proc_id")?;
        let seg_index = r.i16("rtr seg_index")?;
        let n = r.count16("rtr num_seq")?;
        if n * 4 > r.rest() {
            return Err(Malformed("rtr seqs"));
        }
        let mut seqs = Vec::with_capacity(n);
        for _ in 0..n {
            seqs.push(r.i32("rtr seq")?);
        }
        out.push(RingRtr {
            memb_id,
            proc_id,
            seg_index,
            seqs,
        });
    }
    Ok(out)
}

pub(crate) fn emit_token(h: &TokenHeader, rtr: &[RingRtr]) -> Vec<u8> {
    let mut body = Wr::new(64);
    for x in rtr {
        body.memb_id(x.memb_id);
        body.i32(x.proc_id);
        body.i16(x.seg_index);
        body.i16(x.seqs.len() as i16);
        for s in &x.seqs {
            body.i32(*s);
        }
    }
    let mut w = Wr::new(HEADER_LEN + body.out.len());
    h.write(&mut w, body.out.len());
    w.out.extend_from_slice(&body.out);
    w.out
}

/// Per old ring entry of a FORM token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RingInfo {
    pub memb_id: MembId,
    pub trans_time: i32,
    pub aru: i32,
    pub highest_seq: i32,
    pub holes: Vec<i32>,
    /// The commit set; its first `num_trans` ids are the transitional set.
    pub commit: Vec<u32>,
    pub num_trans: usize,
}

/// FORM1 carries the representatives; FORM2 the new ring id in their place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FormMiddle {
    Reps(RepsInfo),
    NewId(MembId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FormToken {
    pub header: TokenHeader,
    pub members: MembersInfo,
    pub middle: FormMiddle,
    pub rings: Vec<RingInfo>,
}

pub(crate) fn parse_form(b: &[u8]) -> Result<FormToken, Malformed> {
    let (header, o) = TokenHeader::parse(b)?;
    let body = &b[HEADER_LEN..];
    if body.len() != usize::from(header.rtr_len) {
        return Err(Malformed("rtr_len"));
    }
    let mut r = Rd::new(body, o);
    let members = MembersInfo::parse(&mut r, true)?;
    let middle = if header.kind & bits::FORM1 != 0 {
        FormMiddle::Reps(RepsInfo::parse(&mut r, true)?)
    } else {
        FormMiddle::NewId(r.memb_id("new memb_id")?)
    };
    let n = r.i32("num_rings")?;
    let n = usize::try_from(n).map_err(|_| Malformed("num_rings"))?;
    if n * RING_INFO_LEN > r.rest() {
        return Err(Malformed("num_rings"));
    }
    let mut rings = Vec::with_capacity(n);
    for _ in 0..n {
        let memb_id = r.memb_id("ring memb_id")?;
        let trans_time = r.i32("trans_time")?;
        let aru = r.i32("aru")?;
        let highest_seq = r.i32("highest_seq")?;
        let holes_n = usize::try_from(r.i32("num_holes")?).map_err(|_| Malformed("num_holes"))?;
        let commit_n = r.count16("num_commit")?;
        let num_trans = r.count16("num_trans")?;
        if num_trans > commit_n || (holes_n + commit_n) * 4 > r.rest() {
            return Err(Malformed("ring lists"));
        }
        let mut holes = Vec::with_capacity(holes_n);
        for _ in 0..holes_n {
            holes.push(r.i32("hole")?);
        }
        let mut commit = Vec::with_capacity(commit_n);
        for _ in 0..commit_n {
            commit.push(r.u32("commit")?);
        }
        rings.push(RingInfo {
            memb_id,
            trans_time,
            aru,
            highest_seq,
            holes,
            commit,
            num_trans,
        });
    }
    Ok(FormToken {
        header,
        members,
        middle,
        rings,
    })
}

pub(crate) fn emit_form(f: &FormToken) -> Vec<u8> {
    let mut body = Wr::new(1024);
    f.members.write_full(&mut body);
    match &f.middle {
        FormMiddle::Reps(reps) => reps.write(&mut body, true),
        FormMiddle::NewId(id) => body.memb_id(*id),
    }
    body.i32(f.rings.len() as i32);
    for ring in &f.rings {
        body.memb_id(ring.memb_id);
        body.i32(ring.trans_time);
        body.i32(ring.aru);
        body.i32(ring.highest_seq);
        body.i32(ring.holes.len() as i32);
        body.i16(ring.commit.len() as i16);
        body.i16(ring.num_trans as i16);
        for h in &ring.holes {
            body.i32(*h);
        }
        for c in &ring.commit {
            body.u32(*c);
        }
    }
    let mut w = Wr::new(HEADER_LEN + body.out.len());
    f.header.write(&mut w, body.out.len());
    w.out.extend_from_slice(&body.out);
    w.out
}

/// The first 8 bytes of a full `reps_info` as a FORM2 keeps them until the
/// future leader writes the new id over them.
pub(crate) fn reps_leftover_id(reps: &RepsInfo) -> MembId {
    let mut w = Wr::new(REPS_INFO_LEN);
    reps.write(&mut w, true);
    let mut r = Rd::new(&w.out, ByteOrder::NATIVE);
    r.memb_id("leftover").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_pack_and_unpack() {
        let h = PacketHeader {
            kind: bits::AGREED,
            seq: 11,
            ..Default::default()
        };
        let frags = vec![
            Fragment {
                index: -1,
                bytes: vec![1; 87],
            },
            Fragment {
                index: -1,
                bytes: vec![2; 87],
            },
            Fragment {
                index: -1,
                bytes: vec![3; 92],
            },
        ];
        let b = emit_data(&h, &frags);
        // Observed in d04: 316-byte packet for these sizes.
        assert_eq!(b.len(), 316);
        assert_eq!(packed_len(&frags), 276);
        let (hh, o) = PacketHeader::parse(&b).unwrap();
        assert_eq!(hh.data_len, 276);
        let (got, whole) = parse_fragments(&hh, &b[HEADER_LEN..], o);
        assert!(whole);
        assert_eq!(got, frags);
    }

    #[test]
    fn form_round_trip_sizes() {
        let f = FormToken {
            header: TokenHeader {
                kind: bits::FORM1,
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
        // Observed: 796 bytes for one ring of one daemon.
        assert_eq!(b.len(), 796);
        assert_eq!(parse_form(&b).unwrap(), f);
    }

    #[test]
    fn truncated_inputs_are_rejected() {
        assert!(PacketHeader::parse(&[0x80, 0, 0]).is_err());
        assert!(parse_form(&[0x80, 0x10, 0, 0x80]).is_err());
        assert!(parse_rtr(&[1, 2, 3], ByteOrder::Little).is_err());
    }
}
