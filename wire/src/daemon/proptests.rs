//! Property tests: every repr round-trips in both byte orders, decoding is
//! exact (a decoded datagram re-encodes to the same bytes), and no input
//! makes a parser panic.

use proptest::prelude::*;

use super::type_bits::*;
use super::*;
use crate::client::{GroupId, GroupName, MembId};
use crate::endian::{ByteOrder, ENDIAN_MARKER};

fn order() -> impl Strategy<Value = ByteOrder> {
    prop_oneof![Just(ByteOrder::Little), Just(ByteOrder::Big)]
}

fn memb_id() -> impl Strategy<Value = MembId> {
    (any::<i32>(), any::<i32>()).prop_map(|(proc_id, time)| MembId { proc_id, time })
}

fn packet_header(packet_type: impl Strategy<Value = u32>) -> impl Strategy<Value = PacketHeader> {
    (
        packet_type,
        (any::<i32>(), any::<i32>(), memb_id()),
        (any::<i32>(), any::<i32>(), any::<u32>()),
        (any::<[u8; 2]>(), any::<i16>(), any::<i16>()),
    )
        .prop_map(
            |(
                packet_type,
                (transmiter_id, proc_id, memb_id),
                (seq, token_round, conf_hash),
                (padding, i, l),
            )| {
                PacketHeader {
                    packet_type,
                    transmiter_id,
                    proc_id,
                    memb_id,
                    seq,
                    token_round,
                    conf_hash,
                    data_len: 0,
                    padding,
                    first_frag: FragmentHeader { index: i, len: l },
                }
            },
        )
}

fn token_header(token_type: impl Strategy<Value = u32>) -> impl Strategy<Value = TokenHeader> {
    (
        token_type,
        (any::<i32>(), any::<i32>(), memb_id()),
        (any::<i32>(), any::<i32>(), any::<i32>()),
        (any::<i16>(), any::<u32>()),
    )
        .prop_map(
            |(
                token_type,
                (transmiter_id, proc_id, memb_id),
                (seq, aru, aru_last_id),
                (flow_control, conf_hash),
            )| {
                TokenHeader {
                    token_type,
                    transmiter_id,
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
    prop::sample::select(vec![
        RELIABLE_TYPE,
        UNRELIABLE_TYPE,
        FIFO_TYPE,
        AGREED_TYPE,
        SAFE_TYPE,
        AGREED_TYPE | ROUTED_TYPE,
    ])
}

fn fragment() -> impl Strategy<Value = Fragment> {
    (
        any::<i16>().prop_filter("non-zero index", |&i| i != 0),
        prop::collection::vec(any::<u8>(), 0..200),
        any::<[u8; 3]>(),
    )
        .prop_map(|(index, data, pad)| Fragment { index, data, pad })
}

fn rep() -> impl Strategy<Value = RepInfo> {
    (any::<i32>(), any::<i16>(), any::<i16>()).prop_map(|(proc_id, rep_type, seg_index)| RepInfo {
        proc_id,
        rep_type,
        seg_index,
    })
}

fn members_info() -> impl Strategy<Value = MembersInfo> {
    (
        0usize..=MAX_PROCS_RING,
        prop::collection::vec(any::<i32>(), MAX_PROCS_RING),
    )
        .prop_flat_map(|(total, slots)| (Just(total), 0..=total, Just(slots)))
        .prop_map(|(total, m, slots)| {
            let mut info = MembersInfo {
                num_members: m as i16,
                num_pending: (total - m) as i16,
                ..Default::default()
            };
            info.slots.copy_from_slice(&slots);
            info
        })
}

fn reps_info() -> impl Strategy<Value = RepsInfo> {
    (
        0usize..=MAX_REPS,
        any::<i16>(),
        prop::collection::vec(rep(), MAX_REPS),
    )
        .prop_map(|(n, rep_index, slots)| {
            let mut info = RepsInfo {
                num_reps: n as i16,
                rep_index,
                ..Default::default()
            };
            info.slots.copy_from_slice(&slots);
            info
        })
}

fn ring() -> impl Strategy<Value = RingInfo> {
    (
        memb_id(),
        (any::<i32>(), any::<i32>(), any::<i32>()),
        prop::collection::vec(any::<i32>(), 0..6),
        prop::collection::vec(any::<i32>(), 0..6),
    )
        .prop_flat_map(|(memb_id, nums, holes, commit)| {
            let n = commit.len() as i16;
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

/// Decoding is exact: a decoded datagram re-encodes to its own bytes (the
/// type word only up to partial marker bits, which carry no information).
fn assert_exact(input: &[u8], reencoded: &[u8]) {
    assert_eq!(input.len(), reencoded.len());
    assert_eq!(&input[4..], &reencoded[4..]);
    // The marker mask reads the same in both orders.
    let strip = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & !ENDIAN_MARKER;
    assert_eq!(strip(input), strip(reencoded));
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
        prop_assert_eq!(bytes.len(), PACKET_HEADER_LEN + p.body_len());
        let (q, o2) = DataPacket::parse(&bytes).unwrap();
        prop_assert_eq!(o2, o);
        prop_assert_eq!(q.fragments.len(), p.fragments.len());
        for (a, b) in q.fragments.iter().zip(&p.fragments) {
            prop_assert_eq!((a.index, &a.data), (b.index, &b.data));
        }
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
            prop_assert!(b.body_len() <= PACKET_BODY_LEN);
        }
        let p = b.finish(PacketHeader::default());
        let bytes = p.emit(o);
        prop_assert!(bytes.len() <= MAX_PACKET_SIZE);
        let (q, _) = DataPacket::parse(&bytes).unwrap();
        let got: Vec<Vec<u8>> = q.fragments.into_iter().map(|f| f.data).collect();
        prop_assert_eq!(got, taken);
    }

    #[test]
    fn split_then_join_is_identity(msg in prop::collection::vec(any::<u8>(), 1..6000)) {
        let pieces = split_message(&msg).unwrap();
        let n = pieces.len();
        prop_assert_eq!(n, msg.len().div_ceil(PACKET_BODY_LEN));
        for (i, p) in pieces.iter().enumerate() {
            prop_assert!(!p.data.is_empty() && p.data.len() <= PACKET_BODY_LEN);
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
        let header = TokenHeader { token_type: t & !FORM_TYPE & !ENDIAN_MARKER, ..header };
        let tok = Token { header, rtr };
        let bytes = tok.emit(o);
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
        members in prop::collection::vec(any::<i32>(), 0..=MAX_PROCS_RING),
        num_pending in any::<i16>(),
        reps in prop::collection::vec(rep(), 0..=MAX_REPS),
        rep_index in any::<i16>(),
        o in order(),
    ) {
        let members = MembersPart { num_pending, members };
        let alive = AlivePacket { header: PacketHeader { packet_type: ALIVE_TYPE, ..header }, members: members.clone() };
        let bytes = alive.emit(o);
        let (a, _) = AlivePacket::parse(&bytes).unwrap();
        prop_assert_eq!(&a.members, &members);
        prop_assert_eq!(a.emit(o), bytes);
        prop_assert_eq!(AlivePacket::parse(&a.emit(other(o))).unwrap(), (a, other(o)));

        let join = JoinPacket {
            header: PacketHeader { packet_type: JOIN_TYPE, ..header },
            members,
            reps: RepsPart { rep_index, reps },
        };
        let bytes = join.emit(o);
        let (j, _) = JoinPacket::parse(&bytes).unwrap();
        prop_assert_eq!((&j.members, &j.reps), (&join.members, &join.reps));
        prop_assert_eq!(j.emit(o), bytes);
        prop_assert_eq!(JoinPacket::parse(&j.emit(other(o))).unwrap(), (j, other(o)));
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
        let f1 = Form1Token { header: TokenHeader { token_type: FORM1_TYPE, ..header }, members, reps, rings: rings.clone() };
        let bytes = f1.emit(o);
        prop_assert_eq!(bytes.len(), TOKEN_HEADER_LEN + f1.body_len());
        let (g1, _) = Form1Token::parse(&bytes).unwrap();
        prop_assert_eq!((&g1.members, &g1.reps, &g1.rings), (&f1.members, &f1.reps, &f1.rings));
        prop_assert_eq!(g1.emit(o), bytes);
        prop_assert_eq!(Form1Token::parse(&g1.emit(other(o))).unwrap(), (g1, other(o)));

        let f2 = Form2Token { header: TokenHeader { token_type: FORM2_TYPE, ..header }, members, new_memb_id, rings };
        let bytes = f2.emit(o);
        let (g2, _) = Form2Token::parse(&bytes).unwrap();
        prop_assert_eq!((&g2.members, g2.new_memb_id, &g2.rings), (&f2.members, f2.new_memb_id, &f2.rings));
        prop_assert_eq!(g2.emit(o), bytes);
        prop_assert_eq!(Form2Token::parse(&g2.emit(other(o))).unwrap(), (g2, other(o)));
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
        if let Ok((p, o)) = AnyPacket::parse(&bytes) {
            assert_exact(&bytes, &p.emit(o));
        }
        if let Ok((t, o)) = AnyToken::parse(&bytes) {
            assert_exact(&bytes, &t.emit(o));
        }
        for o in [ByteOrder::Little, ByteOrder::Big] {
            if let Ok(g) = GroupsBody::parse(&bytes, o) {
                prop_assert_eq!(g.emit(o), bytes.clone());
            }
        }
    }

    /// Valid datagrams with one byte changed or the tail cut: decoding
    /// either fails with an error or is exact.
    #[test]
    fn mutated_datagrams_fail_cleanly_or_decode_exactly(
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
        let datagrams = [
            Form1Token { header: TokenHeader { token_type: FORM1_TYPE, ..Default::default() }, members, reps, rings: rings.clone() }.emit(o),
            Form2Token { header: TokenHeader { token_type: FORM2_TYPE, ..Default::default() }, members, new_memb_id: MembId::default(), rings }.emit(o),
            DataPacket { header: PacketHeader { packet_type: AGREED_TYPE, ..Default::default() }, fragments: frags }.emit(o),
        ];
        for d in datagrams {
            let mut m = d.clone();
            let i = pos.index(m.len());
            m[i] = val;
            for input in [&m[..], &d[..cut.index(d.len())]] {
                if let Ok((t, o)) = AnyToken::parse(input) {
                    assert_exact(input, &t.emit(o));
                }
                if let Ok((p, o)) = AnyPacket::parse(input) {
                    assert_exact(input, &p.emit(o));
                }
            }
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
