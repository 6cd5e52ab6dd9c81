//! Property tests: every repr round-trips in both byte orders, decoding is
//! canonical (a decoded datagram re-encodes to bytes of the same length that
//! decode to the same value, and our own datagrams re-encode to themselves),
//! and no input makes a parser panic.

use proptest::prelude::*;

use super::bits::*;
use super::*;
use crate::client::{GroupId, GroupName, MembId};
use crate::endian::{ByteOrder, ENDIAN_MARKER};

fn order() -> impl Strategy<Value = ByteOrder> {
    prop_oneof![Just(ByteOrder::Little), Just(ByteOrder::Big)]
}

fn memb_id() -> impl Strategy<Value = MembId> {
    (any::<i32>(), any::<i32>()).prop_map(|(proc_id, time)| MembId { proc_id, time })
}

fn packet_header(kind: impl Strategy<Value = u32>) -> impl Strategy<Value = PacketHeader> {
    (
        kind,
        (any::<u32>(), any::<u32>(), memb_id()),
        (any::<i32>(), any::<i32>(), any::<u32>()),
        (any::<i16>(), any::<i16>()),
    )
        .prop_map(
            |(
                kind,
                (transmitter, proc_id, memb_id),
                (seq, token_round, conf_hash),
                (frag_index, frag_len),
            )| {
                PacketHeader {
                    kind,
                    transmitter,
                    proc_id,
                    memb_id,
                    seq,
                    token_round,
                    conf_hash,
                    data_len: 0,
                    frag_index,
                    frag_len,
                }
            },
        )
}

fn token_header(kind: impl Strategy<Value = u32>) -> impl Strategy<Value = TokenHeader> {
    (
        kind,
        (any::<u32>(), any::<u32>(), memb_id()),
        (any::<i32>(), any::<i32>(), any::<u32>()),
        (any::<i16>(), any::<u32>()),
    )
        .prop_map(
            |(kind, (transmitter, proc_id, memb_id), (seq, aru, aru_last_id), (flow_control, conf_hash))| {
                TokenHeader {
                    kind,
                    transmitter,
                    proc_id,
                    memb_id,
                    seq,
                    aru,
                    aru_last_id,
                    flow_control,
                    rtr_len: 0,
                    conf_hash,
                }
            },
        )
}

fn data_type() -> impl Strategy<Value = u32> {
    prop::sample::select(vec![RELIABLE, UNRELIABLE, FIFO, AGREED, SAFE, AGREED | ROUTED])
}

fn fragment() -> impl Strategy<Value = Fragment> {
    (
        any::<i16>().prop_filter("non-zero index", |&i| i != 0),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(index, bytes)| Fragment { index, bytes })
}

fn rep() -> impl Strategy<Value = Rep> {
    (any::<u32>(), any::<i16>(), any::<i16>()).prop_map(|(proc_id, kind, seg_index)| Rep {
        proc_id,
        kind,
        seg_index,
    })
}

fn members_info() -> impl Strategy<Value = MembersInfo> {
    prop::collection::vec(any::<u32>(), 0..=MAX_PROCS_RING)
        .prop_flat_map(|ids| (0..=ids.len(), Just(ids)))
        .prop_map(|(done, ids)| MembersInfo { done, ids })
}

fn reps_info() -> impl Strategy<Value = RepsInfo> {
    (any::<i16>(), prop::collection::vec(rep(), 0..=MAX_REPS))
        .prop_map(|(rep_index, reps)| RepsInfo { rep_index, reps })
}

fn ring() -> impl Strategy<Value = RingInfo> {
    (
        memb_id(),
        (any::<i32>(), any::<i32>(), any::<i32>()),
        prop::collection::vec(any::<i32>(), 0..6),
        prop::collection::vec(any::<u32>(), 0..6),
    )
        .prop_flat_map(|(memb_id, nums, holes, commit)| {
            let n = commit.len();
            (Just((memb_id, nums, holes, commit)), 0..=n)
        })
        .prop_map(
            |((memb_id, (trans_time, aru, highest_seq), holes, commit), num_trans)| RingInfo {
                memb_id,
                trans_time,
                aru,
                highest_seq,
                holes,
                commit,
                num_trans,
            },
        )
}

fn group_name() -> impl Strategy<Value = GroupName> {
    any::<[u8; 32]>().prop_map(GroupName::from_raw)
}

fn groups_body() -> impl Strategy<Value = GroupsBody> {
    let daemon = (memb_id(), any::<i32>(), prop::collection::vec(group_name(), 0..3)).prop_map(
        |(memb_id, proc_id, members)| DaemonMembers {
            proc_id,
            memb_id,
            members,
        },
    );
    let group = (
        group_name(),
        memb_id(),
        any::<i32>(),
        any::<u16>(),
        prop::collection::vec(daemon, 0..3),
    )
        .prop_map(|(name, memb_id, index, changed, daemons)| GroupState {
            name,
            group_id: GroupId { memb_id, index },
            changed,
            daemons,
        });
    (
        memb_id(),
        prop::option::of(prop::collection::vec(any::<i32>(), 0..6)),
        prop::collection::vec(group, 0..4),
    )
        .prop_map(|(memb_id, synced_set, groups)| GroupsBody {
            memb_id,
            synced_set,
            groups,
        })
}

fn other(o: ByteOrder) -> ByteOrder {
    match o {
        ByteOrder::Little => ByteOrder::Big,
        ByteOrder::Big => ByteOrder::Little,
    }
}

/// Decoding is canonical: a decoded datagram re-encodes to as many bytes,
/// which decode to the same value and re-encode to themselves. (Bytes that
/// carry nothing, such as alignment fill and unused slots, come back as
/// zeros; the type word's partial marker bits are normalised.)
fn assert_canonical<T: PartialEq + std::fmt::Debug>(
    input: &[u8],
    value: &T,
    emit: impl Fn(&T) -> Vec<u8>,
    parse: impl Fn(&[u8]) -> Option<T>,
) {
    let again = emit(value);
    assert_eq!(input.len(), again.len());
    let back = parse(&again).expect("a re-encoding decodes");
    assert_eq!(&back, value);
    assert_eq!(emit(&back), again);
    let strip = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & !ENDIAN_MARKER;
    assert_eq!(strip(input), strip(&again));
}

fn check_any(input: &[u8]) {
    if let Ok((p, o)) = AnyPacket::parse(input) {
        assert_canonical(
            input,
            &p,
            |p| p.emit(o),
            |b| AnyPacket::parse(b).ok().map(|x| x.0),
        );
    }
    if let Ok((t, o)) = AnyToken::parse(input) {
        assert_canonical(input, &t, |t| t.emit(o), |b| AnyToken::parse(b).ok().map(|x| x.0));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn data_packet_round_trip(
        header in packet_header(data_type()),
        frags in prop::collection::vec(fragment(), 1..6),
        o in order(),
    ) {
        let p = DataPacket { header, fragments: frags };
        let bytes = p.emit(o);
        prop_assert_eq!(bytes.len(), HEADER_LEN + p.body_len());
        prop_assert_eq!(&emit_data_in(&p.header, &p.fragments, o), &bytes);
        let (q, o2) = DataPacket::parse(&bytes).unwrap();
        prop_assert_eq!(o2, o);
        prop_assert_eq!(&q.fragments, &p.fragments);
        prop_assert_eq!(q.header.seq, p.header.seq);
        prop_assert_eq!(q.emit(o), bytes);
        let swapped = q.emit(other(o));
        prop_assert_eq!(DataPacket::parse(&swapped).unwrap(), (q, other(o)));
    }

    #[test]
    fn packer_output_always_parses(
        first in prop::collection::vec(any::<u8>(), 1..1432),
        rest in prop::collection::vec((data_type(), prop::collection::vec(any::<u8>(), 1..400)), 0..8),
        t in data_type(),
        o in order(),
    ) {
        let mut b = PacketBuilder::new(t, Piece { index: -1, data: &first }).unwrap();
        let mut taken = vec![first.clone()];
        for (ty, m) in &rest {
            let fits = b.can_append(*ty, m.len());
            prop_assert_eq!(b.try_append(*ty, m), fits);
            if fits {
                taken.push(m.clone());
            }
            prop_assert!(b.body_len() <= BODY_LEN);
        }
        let p = b.finish(PacketHeader::default());
        prop_assert_eq!(packed_len(&p.fragments), p.body_len());
        let bytes = p.emit(o);
        prop_assert!(bytes.len() <= MAX_PACKET_SIZE);
        let (q, _) = DataPacket::parse(&bytes).unwrap();
        let got: Vec<Vec<u8>> = q.fragments.into_iter().map(|f| f.bytes).collect();
        prop_assert_eq!(got, taken);
    }

    #[test]
    fn split_then_join_is_identity(msg in prop::collection::vec(any::<u8>(), 1..6000)) {
        let pieces = split_message(&msg).unwrap();
        let n = pieces.len();
        prop_assert_eq!(n, msg.len().div_ceil(BODY_LEN));
        for (i, p) in pieces.iter().enumerate() {
            prop_assert!(!p.data.is_empty() && p.data.len() <= BODY_LEN);
            let want = if i + 1 == n { -(n as i16) } else { (i + 1) as i16 };
            prop_assert_eq!(p.index, want);
        }
        let joined: Vec<u8> = pieces.iter().flat_map(|p| p.data.iter().copied()).collect();
        prop_assert_eq!(&joined, &msg);
        let mut r = Reassembler::new();
        let mut out = None;
        for p in &pieces {
            prop_assert!(out.is_none());
            out = r.push(p.index, p.data).unwrap();
        }
        prop_assert_eq!(out, Some(msg));
    }

    #[test]
    fn token_round_trip(
        t in any::<u32>(),
        header in token_header(Just(0)),
        rtr in prop::collection::vec(
            (memb_id(), any::<i32>(), any::<i16>(), prop::collection::vec(any::<i32>(), 0..10))
                .prop_map(|(memb_id, proc_id, seg_index, seqs)| RingRtr { memb_id, proc_id, seg_index, seqs }),
            0..4),
        o in order(),
    ) {
        let header = TokenHeader { kind: t & !FORM & !ENDIAN_MARKER, ..header };
        let tok = Token { header, rtr };
        let bytes = tok.emit(o);
        prop_assert_eq!(&emit_token_in(&tok.header, &tok.rtr, o), &bytes);
        let (back, o2) = Token::parse(&bytes).unwrap();
        prop_assert_eq!(o2, o);
        prop_assert_eq!(&back.rtr, &tok.rtr);
        prop_assert_eq!(back.header.arq(), arq(t));
        prop_assert_eq!(back.header.retrans(), retrans(t));
        prop_assert_eq!(back.emit(o), bytes);
        prop_assert_eq!(Token::parse(&back.emit(other(o))).unwrap(), (back, other(o)));
    }

    #[test]
    fn alive_and_join_round_trip(
        header in packet_header(Just(0)),
        members in members_info(),
        reps in reps_info(),
        o in order(),
    ) {
        // Only the "done" members are sent; they come back all done.
        let sent = MembersInfo { done: members.done, ids: members.ids[..members.done].to_vec() };
        let alive_h = PacketHeader { kind: ALIVE, ..header };
        let bytes = emit_probe_in(&alive_h, &members, None, o);
        let (h, a, _) = ProbeBody::parse(&bytes, false).unwrap();
        prop_assert_eq!(h.kind, ALIVE);
        prop_assert_eq!(&a.members, &sent);
        prop_assert_eq!(&a.reps, &None);
        prop_assert_eq!(ProbeBody::parse(&a.emit(&h, other(o)), false).unwrap(), (h, a, other(o)));

        let join_h = PacketHeader { kind: JOIN, ..header };
        let bytes = emit_probe_in(&join_h, &members, Some(&reps), o);
        let (h, j, _) = ProbeBody::parse(&bytes, true).unwrap();
        prop_assert_eq!((&j.members, j.reps.as_ref()), (&sent, Some(&reps)));
        prop_assert_eq!(j.emit(&h, o), emit_probe_in(&join_h, &sent, Some(&reps), o));
        prop_assert_eq!(ProbeBody::parse(&j.emit(&h, other(o)), true).unwrap(), (h, j, other(o)));
    }

    #[test]
    fn form_tokens_round_trip(
        header in token_header(Just(0)),
        members in members_info(),
        reps in reps_info(),
        new_memb_id in memb_id(),
        rings in prop::collection::vec(ring(), 0..4),
        o in order(),
    ) {
        for (kind, middle) in [(FORM1, FormMiddle::Reps(reps)), (FORM2, FormMiddle::NewId(new_memb_id))] {
            let f = FormToken { header: TokenHeader { kind, ..header }, members: members.clone(), middle, rings: rings.clone() };
            let bytes = f.emit(o);
            prop_assert_eq!(bytes.len(), HEADER_LEN + f.body_len());
            let (g, _) = FormToken::parse(&bytes).unwrap();
            prop_assert_eq!((&g.members, &g.middle, &g.rings), (&f.members, &f.middle, &f.rings));
            prop_assert_eq!(g.emit(o), bytes);
            prop_assert_eq!(FormToken::parse(&g.emit(other(o))).unwrap(), (g, other(o)));
        }
    }

    #[test]
    fn groups_body_round_trip(body in groups_body(), o in order()) {
        let bytes = body.emit(o);
        prop_assert_eq!(bytes.len(), body.encoded_len());
        let back = GroupsBody::parse(&bytes, o).unwrap();
        prop_assert_eq!(&back, &body);
        prop_assert_eq!(back.emit(o), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1600)) {
        check_any(&bytes);
        for o in [ByteOrder::Little, ByteOrder::Big] {
            if let Ok(g) = GroupsBody::parse(&bytes, o) {
                prop_assert_eq!(g.emit(o), bytes.clone());
            }
        }
    }

    /// Valid datagrams with one byte changed or the tail cut: decoding
    /// either fails with an error or is canonical.
    #[test]
    fn mutated_datagrams_fail_cleanly_or_decode_canonically(
        members in members_info(),
        reps in reps_info(),
        rings in prop::collection::vec(ring(), 0..3),
        body in groups_body(),
        frags in prop::collection::vec(fragment(), 1..4),
        pos in any::<prop::sample::Index>(),
        val in any::<u8>(),
        cut in any::<prop::sample::Index>(),
        o in order(),
    ) {
        let form = |kind, middle| FormToken {
            header: TokenHeader { kind, ..Default::default() },
            members: members.clone(),
            middle,
            rings: rings.clone(),
        };
        let datagrams = [
            form(FORM1, FormMiddle::Reps(reps)).emit(o),
            form(FORM2, FormMiddle::NewId(MembId::default())).emit(o),
            emit_data_in(&PacketHeader { kind: AGREED, ..Default::default() }, &frags, o),
        ];
        for d in datagrams {
            let mut m = d.clone();
            let i = pos.index(m.len());
            m[i] = val;
            check_any(&m);
            check_any(&d[..cut.index(d.len())]);
        }
        let g = body.emit(o);
        let mut m = g.clone();
        let i = pos.index(m.len());
        m[i] = val;
        if let Ok(back) = GroupsBody::parse(&m, o) {
            prop_assert_eq!(back.emit(o), m);
        }
        let _ = GroupsBody::parse(&g[..cut.index(g.len())], o);
    }
}
