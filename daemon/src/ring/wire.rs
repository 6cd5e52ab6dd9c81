//! The engine's view of the daemon datagrams, over the codecs of
//! [`spread_wire::daemon`].
//!
//! The engine works with daemon ids as `u32` (IPv4 host order) and a few
//! shapes of its own (a member list with its "done" count, FORM1/FORM2 as
//! one token with a middle part); this module converts at the boundary.
//! Parsing never panics; output is in this machine's byte order with the
//! endian marker, like the original.

use spread_wire::client::MembId;
use spread_wire::daemon as w;
use spread_wire::endian::ByteOrder;

pub(crate) mod bits {
    pub use spread_wire::daemon::type_bits::{
        AGREED_TYPE as AGREED, ALIVE_TYPE as ALIVE, CONTROL_TYPE as CONTROL, FIFO_TYPE as FIFO,
        FORM1_TYPE as FORM1, FORM2_TYPE as FORM2, FORM_TYPE as FORM, HURRY_TYPE as HURRY, JOIN_TYPE as JOIN,
        MEMBERSHIP_TYPE as MEMBERSHIP, REFER_TYPE as REFER, REGULAR_TYPE as REGULAR,
        RELIABLE_TYPE as RELIABLE, ROUTED_TYPE as ROUTED, SAFE_TYPE as SAFE,
    };
}

pub(crate) const HEADER_LEN: usize = w::PACKET_HEADER_LEN;
/// Bytes of fragments one data packet carries.
pub(crate) const BODY_LEN: usize = w::PACKET_BODY_LEN;
/// Largest token body (an IP datagram less IP, UDP and token headers).
pub(crate) const MAX_TOKEN_BODY: usize = w::MAX_TOKEN_BODY;
pub(crate) const MAX_PROCS_RING: usize = w::MAX_PROCS_RING;
pub(crate) const MAX_REPS: usize = w::MAX_REPS;

pub(crate) use w::{arq, retrans, with_arq, with_retrans};

const ORDER: ByteOrder = ByteOrder::NATIVE;

/// Why bytes could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Malformed(pub w::DecodeError);

impl From<w::DecodeError> for Malformed {
    fn from(e: w::DecodeError) -> Self {
        Malformed(e)
    }
}

fn id(x: i32) -> u32 {
    x as u32
}

fn wid(x: u32) -> i32 {
    x as i32
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
        let (h, o) = w::PacketHeader::parse(b)?;
        Ok((
            PacketHeader {
                kind: h.packet_type,
                transmitter: id(h.transmiter_id),
                proc_id: id(h.proc_id),
                memb_id: h.memb_id,
                seq: h.seq,
                token_round: h.token_round,
                conf_hash: h.conf_hash,
                data_len: h.data_len as u16,
                frag_index: h.first_frag.index,
                frag_len: h.first_frag.len,
            },
            o,
        ))
    }

    fn to_wire(self) -> w::PacketHeader {
        w::PacketHeader {
            packet_type: self.kind,
            transmiter_id: wid(self.transmitter),
            proc_id: wid(self.proc_id),
            memb_id: self.memb_id,
            seq: self.seq,
            token_round: self.token_round,
            conf_hash: self.conf_hash,
            data_len: self.data_len as i16,
            padding: [0; 2],
            first_frag: w::FragmentHeader {
                index: self.frag_index,
                len: self.frag_len,
            },
        }
    }

    /// A header-only datagram (HURRY, REFER).
    pub fn emit_bare(&self) -> Vec<u8> {
        w::emit_header_only(&self.to_wire(), ORDER)
    }
}

/// One piece of a message inside a data packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fragment {
    /// 1..n-1 for inner pieces, -n for the last piece of an n-piece message.
    pub index: i16,
    pub bytes: Vec<u8>,
}

/// The fragments of a whole data datagram, and whether they were well
/// formed (a malformed packet still takes its sequence number, like the
/// original keeps it, but delivers nothing).
pub(crate) fn parse_data(datagram: &[u8]) -> (Vec<Fragment>, bool) {
    match w::DataPacket::parse(datagram) {
        Ok((p, _)) => (
            p.fragments
                .into_iter()
                .map(|f| Fragment {
                    index: f.index,
                    bytes: f.data,
                })
                .collect(),
            true,
        ),
        Err(_) => (Vec::new(), false),
    }
}

/// Emits a data packet: header fields plus the fragments, packed with
/// 4-byte alignment before each packed fragment header.
pub(crate) fn emit_data(h: &PacketHeader, frags: &[Fragment]) -> Vec<u8> {
    w::DataPacket {
        header: h.to_wire(),
        fragments: frags
            .iter()
            .map(|f| w::Fragment::new(f.index, f.bytes.clone()))
            .collect(),
    }
    .emit(ORDER)
}

/// Body size `frags` would take in one packet.
pub(crate) fn packed_len(frags: &[Fragment]) -> usize {
    let mut n = 0;
    for (i, f) in frags.iter().enumerate() {
        if i > 0 {
            n += w::pad_len(n) + 4;
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

    fn from_wire(m: &w::MembersInfo) -> MembersInfo {
        let mut ids: Vec<u32> = m.members().iter().map(|x| id(*x)).collect();
        let done = ids.len();
        ids.extend(m.pending().iter().map(|x| id(*x)));
        MembersInfo { done, ids }
    }

    fn to_wire(&self) -> w::MembersInfo {
        let all: Vec<i32> = self.ids.iter().take(MAX_PROCS_RING).map(|x| wid(*x)).collect();
        let done = self.done.min(all.len());
        w::MembersInfo::new(&all[..done], &all[done..]).unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rep {
    pub proc_id: u32,
    pub kind: i16,
    pub seg_index: i16,
}

impl Rep {
    fn from_wire(r: &w::RepInfo) -> Rep {
        Rep {
            proc_id: id(r.proc_id),
            kind: r.rep_type,
            seg_index: r.seg_index,
        }
    }

    fn to_wire(self) -> w::RepInfo {
        w::RepInfo {
            proc_id: wid(self.proc_id),
            rep_type: self.kind,
            seg_index: self.seg_index,
        }
    }
}

pub(crate) mod rep_kind {
    pub use spread_wire::daemon::rep_type::{POTENTIAL_REP as POTENTIAL, RING_REP as RING, SEG_REP as SEG};
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RepsInfo {
    pub rep_index: i16,
    pub reps: Vec<Rep>,
}

impl RepsInfo {
    fn wire_reps(&self) -> Vec<w::RepInfo> {
        self.reps.iter().take(MAX_REPS).map(|r| r.to_wire()).collect()
    }
}

/// ALIVE (reps = None) or JOIN body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProbeBody {
    pub members: MembersInfo,
    pub reps: Option<RepsInfo>,
}

/// An ALIVE or JOIN datagram's body.
pub(crate) fn parse_probe(datagram: &[u8], join: bool) -> Result<ProbeBody, Malformed> {
    let members = |m: &w::MembersPart| MembersInfo {
        done: m.members.len(),
        ids: m.members.iter().map(|x| id(*x)).collect(),
    };
    if join {
        let (p, _) = w::JoinPacket::parse(datagram)?;
        Ok(ProbeBody {
            members: members(&p.members),
            reps: Some(RepsInfo {
                rep_index: p.reps.rep_index,
                reps: p.reps.reps.iter().map(Rep::from_wire).collect(),
            }),
        })
    } else {
        let (p, _) = w::AlivePacket::parse(datagram)?;
        Ok(ProbeBody {
            members: members(&p.members),
            reps: None,
        })
    }
}

/// ALIVE (no reps) or JOIN: the members gathered so far (all "done").
pub(crate) fn emit_probe(h: &PacketHeader, members: &MembersInfo, reps: Option<&RepsInfo>) -> Vec<u8> {
    let mut header = h.to_wire();
    header.first_frag = w::FragmentHeader::default();
    let part = w::MembersPart {
        num_pending: members.pending() as i16,
        members: members.ids[..members.done].iter().map(|x| wid(*x)).collect(),
    };
    match reps {
        None => w::AlivePacket {
            header,
            members: part,
        }
        .emit(ORDER),
        Some(r) => w::JoinPacket {
            header,
            members: part,
            reps: w::RepsPart {
                rep_index: r.rep_index,
                reps: r.wire_reps(),
            },
        }
        .emit(ORDER),
    }
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
        let (h, o) = w::TokenHeader::parse(b)?;
        Ok((TokenHeader::from_wire(&h), o))
    }

    fn from_wire(h: &w::TokenHeader) -> TokenHeader {
        TokenHeader {
            kind: h.token_type,
            transmitter: id(h.transmiter_id),
            proc_id: id(h.proc_id),
            memb_id: h.memb_id,
            seq: h.seq,
            aru: h.aru,
            aru_last_id: id(h.aru_last_id),
            flow_control: h.flow_control,
            rtr_len: h.rtr_len,
            conf_hash: h.conf_hash,
        }
    }

    fn to_wire(self) -> w::TokenHeader {
        w::TokenHeader {
            token_type: self.kind,
            transmiter_id: wid(self.transmitter),
            proc_id: wid(self.proc_id),
            memb_id: self.memb_id,
            seq: self.seq,
            aru: self.aru,
            aru_last_id: wid(self.aru_last_id),
            flow_control: self.flow_control,
            rtr_len: self.rtr_len,
            conf_hash: self.conf_hash,
        }
    }
}

pub(crate) use w::RingRtr;

/// Bytes one ring's requests take in a token.
pub(crate) fn rtr_len(r: &RingRtr) -> usize {
    r.encoded_len()
}

/// The retransmission requests of a whole regular token datagram.
pub(crate) fn parse_rtr(datagram: &[u8]) -> Result<Vec<RingRtr>, Malformed> {
    Ok(w::Token::parse(datagram)?.0.rtr)
}

pub(crate) fn emit_token(h: &TokenHeader, rtr: &[RingRtr]) -> Vec<u8> {
    w::Token {
        header: h.to_wire(),
        rtr: rtr.to_vec(),
    }
    .emit(ORDER)
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

impl RingInfo {
    fn from_wire(r: &w::RingInfo) -> RingInfo {
        RingInfo {
            memb_id: r.memb_id,
            trans_time: r.trans_time,
            aru: r.aru,
            highest_seq: r.highest_seq,
            holes: r.holes.clone(),
            commit: r.commit.iter().map(|x| id(*x)).collect(),
            num_trans: r.num_trans.max(0) as usize,
        }
    }

    fn to_wire(&self) -> w::RingInfo {
        w::RingInfo {
            memb_id: self.memb_id,
            trans_time: self.trans_time,
            aru: self.aru,
            highest_seq: self.highest_seq,
            holes: self.holes.clone(),
            commit: self.commit.iter().map(|x| wid(*x)).collect(),
            num_trans: self.num_trans as i16,
        }
    }
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
    let (h, _) = w::TokenHeader::parse(b)?;
    if h.token_type & bits::FORM1 != 0 {
        let (t, _) = w::Form1Token::parse(b)?;
        Ok(FormToken {
            header: TokenHeader::from_wire(&t.header),
            members: MembersInfo::from_wire(&t.members),
            middle: FormMiddle::Reps(RepsInfo {
                rep_index: t.reps.rep_index,
                reps: t.reps.reps().iter().map(Rep::from_wire).collect(),
            }),
            rings: t.rings.iter().map(RingInfo::from_wire).collect(),
        })
    } else {
        let (t, _) = w::Form2Token::parse(b)?;
        Ok(FormToken {
            header: TokenHeader::from_wire(&t.header),
            members: MembersInfo::from_wire(&t.members),
            middle: FormMiddle::NewId(t.new_memb_id),
            rings: t.rings.iter().map(RingInfo::from_wire).collect(),
        })
    }
}

pub(crate) fn emit_form(f: &FormToken) -> Vec<u8> {
    let header = f.header.to_wire();
    let members = f.members.to_wire();
    let rings = f.rings.iter().map(RingInfo::to_wire).collect();
    match &f.middle {
        FormMiddle::Reps(r) => w::Form1Token {
            header,
            members,
            reps: w::RepsInfo::new(r.rep_index, &r.wire_reps()).unwrap_or_default(),
            rings,
        }
        .emit(ORDER),
        FormMiddle::NewId(new_memb_id) => w::Form2Token {
            header,
            members,
            new_memb_id: *new_memb_id,
            rings,
        }
        .emit(ORDER),
    }
}

/// The first 8 bytes of a full `reps_info` (num_reps, rep_index, first
/// rep's id) as a FORM2 keeps them until the future leader writes the new
/// id over them.
pub(crate) fn reps_leftover_id(reps: &RepsInfo) -> MembId {
    let mut b = Vec::with_capacity(8);
    ORDER.put_u16(&mut b, reps.reps.len() as u16);
    ORDER.put_u16(&mut b, reps.rep_index as u16);
    let first = reps.reps.first().map(|r| r.proc_id).unwrap_or(0);
    MembId {
        proc_id: ORDER.read_u32([b[0], b[1], b[2], b[3]]) as i32,
        time: first as i32,
    }
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
        let (hh, _) = PacketHeader::parse(&b).unwrap();
        assert_eq!(hh.data_len, 276);
        let (got, whole) = parse_data(&b);
        assert!(whole);
        assert_eq!(got, frags);
    }

    #[test]
    fn form_round_trip_sizes() {
        let f = FormToken {
            header: TokenHeader {
                kind: bits::FORM1,
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
        // Observed: 796 bytes for one ring of one daemon.
        assert_eq!(b.len(), 796);
        assert_eq!(parse_form(&b).unwrap(), f);
    }

    #[test]
    fn truncated_inputs_are_rejected() {
        assert!(PacketHeader::parse(&[0x80, 0, 0]).is_err());
        assert!(parse_form(&[0x80, 0x10, 0, 0x80]).is_err());
        assert!(parse_rtr(&[0x80, 0, 0, 0x80, 1, 2, 3]).is_err());
        let (frags, whole) = parse_data(&[0x88, 0, 0, 0x80, 1, 2, 3]);
        assert!(frags.is_empty() && !whole);
    }

    /// Every datagram of the 4.4 captures, as (destination port, bytes).
    fn captured() -> Option<Vec<(u16, Vec<u8>)>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spread4-wire/daemon");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "captures missing under CI"
            );
            eprintln!("skipping: no captures at {}", dir.display());
            return None;
        };
        let mut names: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for path in names {
            let text = std::fs::read_to_string(&path).ok()?;
            for line in text.lines() {
                let field = |key: &str| -> Option<&str> {
                    let at = line.find(&format!("\"{key}\": \""))? + key.len() + 5;
                    Some(&line[at..at + line[at..].find('"')?])
                };
                let (Some(dst), Some(hex)) = (field("dst"), field("hex")) else {
                    continue;
                };
                let port: u16 = dst.rsplit(':').next()?.parse().ok()?;
                let bytes: Vec<u8> = (0..hex.len() / 2)
                    .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                    .collect();
                out.push((port, bytes));
            }
        }
        Some(out)
    }

    /// Decodes and re-encodes every captured datagram: the engine's packets
    /// are byte-identical to the original's (FORM tokens up to the unused
    /// slots of their fixed-size arrays, which the original leaves as stale
    /// memory).
    #[test]
    fn captured_datagrams_round_trip() {
        let Some(all) = captured() else { return };
        let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
        for (port, b) in &all {
            let (what, again) = if *port == 4804 {
                let (h, _) = TokenHeader::parse(b).unwrap();
                if h.kind & bits::FORM != 0 {
                    let f = parse_form(b).unwrap();
                    let again = emit_form(&f);
                    assert_eq!(again.len(), b.len());
                    // Same header, member lists, ring lists.
                    assert_eq!(parse_form(&again).unwrap(), f);
                    assert_eq!(again[..44], b[..44]);
                    let used = 44 + 4 * f.members.ids.len();
                    assert_eq!(again[..used], b[..used]);
                    let tail = 40 + 516 + if h.kind & bits::FORM1 != 0 { 204 } else { 8 };
                    assert_eq!(again[tail..], b[tail..]);
                    (
                        if h.kind & bits::FORM1 != 0 {
                            "form1"
                        } else {
                            "form2"
                        },
                        None,
                    )
                } else {
                    let rtr = parse_rtr(b).unwrap();
                    ("token", Some(emit_token(&h, &rtr)))
                }
            } else {
                let (h, _) = PacketHeader::parse(b).unwrap();
                if h.kind & (bits::ALIVE | bits::JOIN) != 0 {
                    let join = h.kind & bits::JOIN != 0;
                    let p = parse_probe(b, join).unwrap();
                    (
                        if join { "join" } else { "alive" },
                        Some(emit_probe(&h, &p.members, p.reps.as_ref())),
                    )
                } else if h.kind & (bits::HURRY | bits::REFER) != 0 {
                    ("hurry", Some(h.emit_bare()))
                } else {
                    let (frags, whole) = parse_data(b);
                    assert!(whole);
                    // Padding between packed fragments is stale memory in
                    // the original; compare with it zeroed.
                    let again = emit_data(&h, &frags);
                    let mut zeroed = b.clone();
                    let mut at = HEADER_LEN + frags[0].bytes.len();
                    for f in &frags[1..] {
                        let pad = (4 - at % 4) % 4;
                        zeroed[at..at + pad].iter_mut().for_each(|x| *x = 0);
                        at += pad + 4 + f.bytes.len();
                    }
                    assert_eq!(again, zeroed);
                    ("data", None)
                }
            };
            if let Some(again) = again {
                assert_eq!(&again, b, "{what} differs");
            }
            *kinds.entry(what).or_default() += 1;
        }
        eprintln!("round-tripped {kinds:?}");
        for k in ["alive", "join", "form1", "form2", "token", "data", "hurry"] {
            assert!(kinds.contains_key(k), "no {k} in the captures");
        }
    }
}
