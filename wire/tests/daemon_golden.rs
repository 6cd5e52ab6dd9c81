//! Every datagram captured between three C Spread 4.4.0 daemons
//! (`shared/spread4-wire/daemon/*.jsonl`): decode by kind, compare with the
//! capture's own field decoding, re-encode byte for byte, and round-trip
//! through big-endian.
//!
//! Byte for byte means: every byte that carries a value. The original leaves
//! two kinds of bytes as whatever its buffers held: the alignment fill
//! before a packed fragment and the slots past the counts of a FORM token's
//! fixed-size member and representative arrays. We write those as zeros, so
//! the capture is compared with exactly those bytes zeroed
//! ([`unused_zeroed`]); everything else must be identical.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use spread_wire::client::{parse_group_names, GroupName, MembId, MessageHeader};
use spread_wire::daemon::*;
use spread_wire::endian::{ByteOrder, ENDIAN_MARKER};

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/spread4-wire/daemon");

fn capture_files() -> Option<Vec<PathBuf>> {
    let dir = Path::new(CAPTURES);
    if !dir.is_dir() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("captures missing at {CAPTURES} (CI=true)");
        }
        println!("SKIP: captures not found at {CAPTURES}");
        return None;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read capture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .jsonl captures in {CAPTURES}");
    Some(files)
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// A daemon id or plain integer as the capture writes it.
fn id(v: &Value) -> i32 {
    did(v) as i32
}

/// A daemon id as the capture writes it (an address, or -1 as a number).
fn did(v: &Value) -> DaemonId {
    match v {
        Value::String(s) => u32::from(s.parse::<Ipv4Addr>().unwrap_or_else(|_| panic!("bad ip {s}"))),
        Value::Number(n) => n.as_i64().expect("integer") as u32,
        other => panic!("not an id: {other}"),
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn memb(v: &Value) -> MembId {
    MembId {
        proc_id: id(&v[0]),
        time: id(&v[1]),
    }
}

fn ids(v: &Value) -> Vec<i32> {
    v.as_array().expect("array").iter().map(id).collect()
}

fn dids(v: &Value) -> Vec<DaemonId> {
    v.as_array().expect("array").iter().map(did).collect()
}

fn type_word(v: &Value) -> u32 {
    let s = v.as_str().expect("type string");
    u32::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex type")
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("names")
        .iter()
        .map(|n| n.as_str().expect("name").to_string())
        .collect()
}

fn name_strings(g: &[GroupName]) -> Vec<String> {
    g.iter().map(|n| n.to_string_lossy()).collect()
}

struct Ctx<'a> {
    file: &'a str,
    line: usize,
}

impl Ctx<'_> {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

fn check_packet_header(h: &PacketHeader, f: &Value, order: ByteOrder, cx: &Ctx) {
    let at = cx.at();
    assert_eq!(
        f["endian"],
        if order == ByteOrder::Little {
            "little"
        } else {
            "big"
        },
        "{at}"
    );
    assert_eq!(h.kind | order.marker(), type_word(&f["type"]), "{at} type");
    assert_eq!(h.transmitter, did(&f["transmiter_id"]), "{at}");
    assert_eq!(h.proc_id, did(&f["proc_id"]), "{at}");
    assert_eq!(h.memb_id, memb(&f["memb_id"]), "{at}");
    assert_eq!(i64::from(h.seq), int(&f["seq"]), "{at}");
    assert_eq!(i64::from(h.token_round), int(&f["token_round"]), "{at}");
    assert_eq!(i64::from(h.conf_hash), int(&f["conf_hash"]), "{at}");
    assert_eq!(i64::from(h.data_len), int(&f["data_len"]), "{at}");
}

fn check_token_header(h: &TokenHeader, f: &Value, order: ByteOrder, cx: &Ctx) {
    let at = cx.at();
    assert_eq!(
        f["endian"],
        if order == ByteOrder::Little {
            "little"
        } else {
            "big"
        },
        "{at}"
    );
    assert_eq!(h.kind | order.marker(), type_word(&f["type"]), "{at} type");
    assert_eq!(h.transmitter, did(&f["transmiter_id"]), "{at}");
    assert_eq!(h.proc_id, did(&f["proc_id"]), "{at}");
    assert_eq!(h.memb_id, memb(&f["memb_id"]), "{at}");
    assert_eq!(i64::from(h.seq), int(&f["seq"]), "{at}");
    assert_eq!(i64::from(h.aru), int(&f["aru"]), "{at}");
    assert_eq!(h.aru_last_id, did(&f["aru_last_id"]), "{at}");
    assert_eq!(i64::from(h.flow_control), int(&f["flow_control"]), "{at}");
    assert_eq!(i64::from(h.rtr_len), int(&f["rtr_len"]), "{at}");
    assert_eq!(i64::from(h.conf_hash), int(&f["conf_hash"]), "{at}");
}

/// ALIVE and JOIN send the members only (every one "done") and a pending
/// count, which the original always sends as 0 (and the re-encode checks).
fn check_members_part(m: &MembersInfo, f: &Value, cx: &Ctx) {
    let at = cx.at();
    assert_eq!(m.done, m.ids.len(), "{at}");
    assert_eq!(m.ids.len() as i64, int(&f["num_members"]), "{at}");
    assert_eq!(0, int(&f["num_pending"]), "{at}");
    assert_eq!(m.ids, dids(&f["members"]), "{at}");
}

fn rep_type_name(t: i16) -> &'static str {
    match t {
        rep_kind::POTENTIAL => "POTENTIAL_REP",
        rep_kind::SEG => "SEG_REP",
        rep_kind::RING => "RING_REP",
        _ => "?",
    }
}

fn check_reps(reps: &RepsInfo, f: &Value, cx: &Ctx) {
    let at = cx.at();
    assert_eq!(reps.reps.len() as i64, int(&f["num_reps"]), "{at}");
    assert_eq!(i64::from(reps.rep_index), int(&f["rep_index"]), "{at}");
    let want = f["reps"].as_array().expect("reps");
    assert_eq!(reps.reps.len(), want.len(), "{at}");
    for (r, w) in reps.reps.iter().zip(want) {
        assert_eq!(r.proc_id, did(&w["proc_id"]), "{at}");
        assert_eq!(rep_type_name(r.kind), w["type"].as_str().expect("type"), "{at}");
        assert_eq!(i64::from(r.seg_index), int(&w["seg_index"]), "{at}");
    }
}

fn check_members_info(m: &MembersInfo, f: &Value, cx: &Ctx) {
    let at = cx.at();
    assert_eq!(m.done as i64, int(&f["num_members"]), "{at}");
    assert_eq!(m.pending() as i64, int(&f["num_pending"]), "{at}");
    assert_eq!(m.members(), &dids(&f["members"])[..], "{at}");
    assert_eq!(m.pending_ids(), &dids(&f["pending"])[..], "{at}");
}

fn check_rings(rings: &[RingInfo], f: &Value, cx: &Ctx) {
    let at = cx.at();
    assert_eq!(rings.len() as i64, int(&f["num_rings"]), "{at}");
    let want = f["rings"].as_array().expect("rings");
    assert_eq!(rings.len(), want.len(), "{at}");
    for (r, w) in rings.iter().zip(want) {
        assert_eq!(r.memb_id, memb(&w["memb_id"]), "{at}");
        assert_eq!(i64::from(r.trans_time), int(&w["trans_time"]), "{at}");
        assert_eq!(i64::from(r.aru), int(&w["aru"]), "{at}");
        assert_eq!(i64::from(r.highest_seq), int(&w["highest_seq"]), "{at}");
        assert_eq!(r.holes.len() as i64, int(&w["num_holes"]), "{at}");
        assert_eq!(r.holes, ids(&w["holes"]), "{at}");
        assert_eq!(r.commit.len() as i64, int(&w["num_commit"]), "{at}");
        assert_eq!(r.num_trans as i64, int(&w["num_trans"]), "{at}");
        assert_eq!(r.trans(), &dids(&w["trans_procs"])[..], "{at}");
        assert_eq!(
            &r.commit[r.trans().len()..],
            &dids(&w["commit_only_procs"])[..],
            "{at}"
        );
    }
}

/// Check one data fragment's embedded message; returns whether it was a
/// GROUPS message (decoded, compared and re-encoded).
fn check_fragment(frag: &Fragment, f: &Value, cx: &Ctx) -> bool {
    let at = cx.at();
    assert_eq!(i64::from(frag.index), int(&f["fragment_index"]), "{at}");
    assert_eq!(frag.bytes.len() as i64, int(&f["fragment_len"]), "{at}");
    let Some(mh) = f.get("message_header") else {
        return false;
    };
    let (h, order) = MessageHeader::parse(&frag.bytes).expect("message header");
    assert_eq!(h.service_type | order.marker(), type_word(&mh["type"]), "{at}");
    assert_eq!(
        h.sender.to_string_lossy(),
        mh["sender"].as_str().expect("sender"),
        "{at}"
    );
    assert_eq!(i64::from(h.num_groups), int(&mh["num_groups"]), "{at}");
    assert_eq!(i64::from(h.mess_type()), int(&mh["mess_type"]), "{at}");
    assert_eq!(i64::from(h.data_len), int(&mh["data_len"]), "{at}");
    if frag.index != -1 {
        return false;
    }
    // A whole message: header, names, body fill the fragment exactly.
    let groups = parse_group_names(&frag.bytes[48..], h.num_groups as usize).expect("names");
    assert_eq!(name_strings(&groups), names(&f["groups"]), "{at}");
    let body_at = 48 + 32 * groups.len();
    let body = &frag.bytes[body_at..];
    assert_eq!(body.len() as i64, i64::from(h.data_len), "{at}");
    let Some(gb) = f.get("groups_body") else {
        return false;
    };
    assert!(
        h.service_type & spread_wire::client::service::GROUPS_MESS != 0,
        "{at}"
    );
    assert_eq!(
        i64::from(synced_set_size_of(&h.sender, order)),
        int(&mh["synced_set_size_in_sender_field"]),
        "{at}"
    );
    let parsed = GroupsBody::parse(body, order).unwrap_or_else(|e| panic!("{at}: groups body: {e}"));
    assert_eq!(parsed.memb_id, memb(&gb["memb_id"]), "{at}");
    match int(&gb["first_message_flag"]) {
        1 => assert_eq!(
            parsed.synced_set.as_deref(),
            Some(&ids(&gb["synced_set"])[..]),
            "{at}"
        ),
        _ => assert!(parsed.synced_set.is_none(), "{at}"),
    }
    let want = gb["groups"].as_array().expect("groups");
    assert_eq!(parsed.groups.len(), want.len(), "{at}");
    for (g, w) in parsed.groups.iter().zip(want) {
        assert_eq!(
            g.name.to_string_lossy(),
            w["group"].as_str().expect("group"),
            "{at}"
        );
        assert_eq!(g.group_id.memb_id.proc_id, id(&w["group_id"][0]), "{at}");
        assert_eq!(g.group_id.memb_id.time, id(&w["group_id"][1]), "{at}");
        assert_eq!(g.group_id.index, id(&w["group_id"][2]), "{at}");
        assert_eq!(i64::from(g.changed), int(&w["changed"]), "{at}");
        let wd = w["daemons"].as_array().expect("daemons");
        assert_eq!(g.daemons.len(), wd.len(), "{at}");
        for (d, w) in g.daemons.iter().zip(wd) {
            assert_eq!(d.proc_id, id(&w["proc_id"]), "{at}");
            assert_eq!(d.memb_id, memb(&w["memb_id"]), "{at}");
            assert_eq!(name_strings(&d.members), names(&w["members"]), "{at}");
        }
    }
    assert_eq!(parsed.emit(order), body, "{at}: groups body re-encode");
    assert_eq!(parsed.encoded_len(), body.len(), "{at}");
    // The header is what our builder would produce for this daemon.
    let rebuilt = groups_message_header(
        h.sender.as_bytes(),
        synced_set_size_of(&h.sender, order),
        h.service_type & spread_wire::client::service::AGREED_MESS != 0,
        body.len(),
        order,
    );
    assert_eq!(rebuilt.emit(order), h.emit(order), "{at}: groups header rebuild");
    let be = parsed.emit(ByteOrder::Big);
    assert_eq!(
        GroupsBody::parse(&be, ByteOrder::Big).expect("be groups"),
        parsed,
        "{at}"
    );
    true
}

#[derive(Default)]
struct Counts(BTreeMap<&'static str, usize>);

impl Counts {
    fn add(&mut self, k: &'static str) {
        *self.0.entry(k).or_default() += 1;
    }
}

fn kind_of(kind: &str) -> &'static str {
    for (prefix, k) in [
        ("data packet", "data"),
        ("ALIVE", "alive"),
        ("JOIN", "join"),
        ("HURRY", "hurry"),
        ("REFER", "refer"),
        ("regular token", "token"),
        ("FORM1 token", "form1"),
        ("FORM2 token", "form2"),
    ] {
        if kind.starts_with(prefix) {
            return k;
        }
    }
    panic!("unknown capture kind {kind:?}")
}

/// Emit in big-endian, check the marker, decode again.
fn be_round_trip<T: PartialEq + std::fmt::Debug>(
    v: &T,
    emit: impl Fn(&T, ByteOrder) -> Vec<u8>,
    parse: impl Fn(&[u8]) -> T,
    le_len: usize,
    cx: &Ctx,
) {
    let be = emit(v, ByteOrder::Big);
    assert_eq!(be.len(), le_len, "{}", cx.at());
    assert_eq!(
        ByteOrder::of_type_word([be[0], be[1], be[2], be[3]]),
        ByteOrder::Big
    );
    assert_eq!(&parse(&be), v, "{}: big-endian round trip", cx.at());
    assert_eq!(emit(&parse(&be), ByteOrder::Little), emit(v, ByteOrder::Little));
}

/// `bytes` with the bytes the original leaves as stale memory set to zero:
/// the alignment fill before each packed fragment of a data packet, and
/// the slots past the counts of a FORM token's `members_info` (128 slots of
/// 4 bytes) and a FORM1's `reps_info` (25 slots of 8 bytes). Counts are read
/// little-endian, as all captures are.
fn unused_zeroed(bytes: &[u8], to_token_port: bool) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let i16_at = |b: &[u8], at: usize| i16::from_le_bytes([b[at], b[at + 1]]).max(0) as usize;
    let word = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if to_token_port {
        if word & bits::FORM == 0 {
            return b;
        }
        let used = 44 + 4 * (i16_at(&b, 40) + i16_at(&b, 42)).min(MAX_PROCS_RING);
        b[used..40 + MEMBERS_INFO_LEN].fill(0);
        if word & bits::FORM1 != 0 {
            let reps_at = 40 + MEMBERS_INFO_LEN;
            let used = reps_at + 4 + REP_INFO_LEN * i16_at(&b, reps_at).min(MAX_REPS);
            b[used..reps_at + REPS_INFO_LEN].fill(0);
        }
    } else if PacketKind::of(word) == PacketKind::Data {
        let body_end = b.len();
        let mut at = HEADER_LEN + i16_at(&b, 38);
        while at < body_end {
            let pad = pad_len(at - HEADER_LEN);
            b[at..at + pad].fill(0);
            at += pad + FRAGMENT_HEADER_LEN + i16_at(&b, at + pad + 2);
        }
    }
    b
}

#[test]
fn every_captured_datagram_decodes_and_reencodes() {
    let Some(files) = capture_files() else { return };
    let mut counts = Counts::default();
    let mut kinds_present = BTreeMap::<&'static str, usize>::new();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).expect("read capture");
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let cx = Ctx {
                file: &file,
                line: n + 1,
            };
            let at = cx.at();
            let rec: Value = serde_json::from_str(line).expect("json");
            let bytes = hex(rec["hex"].as_str().expect("hex"));
            assert_eq!(bytes.len() as i64, int(&rec["len"]), "{at}");
            let f = &rec["fields"];
            let kind = kind_of(rec["kind"].as_str().expect("kind"));
            *kinds_present.entry(kind).or_default() += 1;
            let to_token_port = rec["dst"].as_str().expect("dst").ends_with(":4804");
            assert_eq!(to_token_port, matches!(kind, "token" | "form1" | "form2"), "{at}");
            let raw = bytes;
            let bytes = unused_zeroed(&raw, to_token_port);
            if bytes != raw {
                counts.add("stale bytes zeroed");
            }
            if to_token_port {
                let (any, order) = AnyToken::parse(&raw).unwrap_or_else(|e| panic!("{at}: {e}"));
                assert_eq!(any.emit(order), bytes, "{at}: AnyToken re-encode");
            } else {
                let (any, order) = AnyPacket::parse(&raw).unwrap_or_else(|e| panic!("{at}: {e}"));
                assert_eq!(any.emit(order), bytes, "{at}: AnyPacket re-encode");
            }
            match kind {
                "data" => {
                    let (p, order) = DataPacket::parse(&raw).unwrap_or_else(|e| panic!("{at}: {e}"));
                    assert_eq!(DataPacket::parse(&bytes).unwrap(), (p.clone(), order), "{at}");
                    check_packet_header(&p.header, f, order, &cx);
                    assert_eq!(
                        i64::from(p.header.frag_index),
                        int(&f["first_frag_header"]["fragment_index"])
                    );
                    assert_eq!(
                        i64::from(p.header.frag_len),
                        int(&f["first_frag_header"]["fragment_len"])
                    );
                    let (frags, whole) = parse_data(&raw);
                    assert!(whole, "{at}");
                    assert_eq!(frags, p.fragments, "{at}");
                    let want = f["fragments"].as_array().expect("fragments");
                    assert_eq!(p.fragments.len(), want.len(), "{at}");
                    for (frag, w) in p.fragments.iter().zip(want) {
                        if check_fragment(frag, w, &cx) {
                            counts.add("groups");
                        }
                    }
                    assert_eq!(p.emit(order), bytes, "{at}: re-encode");
                    be_round_trip(
                        &p,
                        DataPacket::emit,
                        |b| DataPacket::parse(b).expect("be").0,
                        bytes.len(),
                        &cx,
                    );
                }
                "alive" | "join" => {
                    let join = kind == "join";
                    let (h, p, order) =
                        ProbeBody::parse(&bytes, join).unwrap_or_else(|e| panic!("{at}: {e}"));
                    check_packet_header(&h, f, order, &cx);
                    check_members_part(&p.members, &f["members_info"], &cx);
                    assert_eq!(p.reps.is_some(), join, "{at}");
                    if let Some(reps) = &p.reps {
                        check_reps(reps, &f["reps_info"], &cx);
                    }
                    assert_eq!(parse_probe(&bytes, join).as_ref(), Ok(&p), "{at}");
                    assert_eq!(p.emit(&h, order), bytes, "{at}: re-encode");
                    assert_eq!(
                        emit_probe_in(&h, &p.members, p.reps.as_ref(), order),
                        bytes,
                        "{at}"
                    );
                    be_round_trip(
                        &(h, p),
                        |(h, p), o| p.emit(h, o),
                        |b| {
                            let (h, p, _) = ProbeBody::parse(b, join).expect("be");
                            (h, p)
                        },
                        bytes.len(),
                        &cx,
                    );
                }
                "hurry" | "refer" => {
                    let (h, order) = parse_header_only(&bytes).unwrap_or_else(|e| panic!("{at}: {e}"));
                    check_packet_header(&h, f, order, &cx);
                    let want = if kind == "hurry" {
                        PacketKind::Hurry
                    } else {
                        PacketKind::Refer
                    };
                    assert_eq!(h.packet_kind(), want, "{at}");
                    assert_eq!(emit_header_only(&h, order), bytes, "{at}: re-encode");
                    be_round_trip(
                        &h,
                        emit_header_only,
                        |b| parse_header_only(b).expect("be").0,
                        bytes.len(),
                        &cx,
                    );
                }
                "token" => {
                    let (t, order) = Token::parse(&bytes).unwrap_or_else(|e| panic!("{at}: {e}"));
                    check_token_header(&t.header, f, order, &cx);
                    assert_eq!(t.body_len() as i64, int(&f["rtr_len"]), "{at}");
                    assert_eq!(t.emit(order), bytes, "{at}: re-encode");
                    assert_eq!(parse_rtr(&bytes).as_ref(), Ok(&t.rtr), "{at}");
                    assert_eq!(emit_token_in(&t.header, &t.rtr, order), bytes, "{at}");
                    be_round_trip(
                        &t,
                        Token::emit,
                        |b| Token::parse(b).expect("be").0,
                        bytes.len(),
                        &cx,
                    );
                }
                "form1" | "form2" => {
                    let (t, order) = FormToken::parse(&raw).unwrap_or_else(|e| panic!("{at}: {e}"));
                    assert_eq!(parse_form(&bytes).as_ref(), Ok(&t), "{at}");
                    check_token_header(&t.header, f, order, &cx);
                    check_members_info(&t.members, &f["members_info"], &cx);
                    match (&t.middle, kind) {
                        (FormMiddle::Reps(reps), "form1") => check_reps(reps, &f["reps_info"], &cx),
                        (FormMiddle::NewId(id), "form2") => {
                            assert_eq!(*id, memb(&f["new_memb_id"]), "{at}")
                        }
                        (m, k) => panic!("{at}: {k} decoded with {m:?}"),
                    }
                    check_rings(&t.rings, &f["rings"], &cx);
                    assert_eq!(t.emit(order), bytes, "{at}: re-encode");
                    assert_eq!(emit_form(&t), bytes, "{at}: re-encode");
                    be_round_trip(
                        &t,
                        FormToken::emit,
                        |b| FormToken::parse(b).expect("be").0,
                        bytes.len(),
                        &cx,
                    );
                }
                _ => unreachable!(),
            }
            counts.add(kind);
        }
    }
    println!("daemon captures checked ({} files):", files.len());
    for (k, n) in &counts.0 {
        println!("  {k:>6}: {n}");
    }
    for (k, n) in &kinds_present {
        assert!(
            *n > 0 && counts.0.get(k).copied().unwrap_or(0) == *n,
            "kind {k} not fully checked"
        );
    }
    for k in [
        "data", "alive", "join", "hurry", "token", "form1", "form2", "groups",
    ] {
        assert!(
            counts.0.get(k).copied().unwrap_or(0) > 0,
            "no {k} datagram checked"
        );
    }
}

/// The index rule and packing seen in d04: a 5000-byte AGREED message in four
/// packets, and three small messages packed into one.
#[test]
fn d04_fragmentation_and_packing_match_our_splitter_and_packer() {
    let Some(files) = capture_files() else { return };
    let path = files
        .iter()
        .find(|p| p.to_string_lossy().contains("d04_agreed_safe_fragmented"))
        .expect("d04 capture");
    let text = std::fs::read_to_string(path).expect("read");
    let mut pieces = Vec::new();
    let mut packed = None;
    for line in text.lines() {
        let rec: Value = serde_json::from_str(line).expect("json");
        if !rec["kind"].as_str().unwrap_or("").starts_with("data packet") {
            continue;
        }
        let (p, _) = DataPacket::parse(&hex(rec["hex"].as_str().unwrap())).expect("data");
        if (7..=10).contains(&p.header.seq) {
            pieces.push(p.fragments[0].clone());
        }
        if p.fragments.len() == 3 {
            packed = Some(p);
        }
    }
    // Reassemble the big message and cut it again with our splitter.
    let whole: Vec<u8> = pieces.iter().flat_map(|f| f.bytes.iter().copied()).collect();
    assert_eq!(whole.len(), 48 + 32 + 5000);
    let ours = split_message(&whole).expect("split");
    assert_eq!(ours.len(), pieces.len());
    for (a, b) in ours.iter().zip(&pieces) {
        assert_eq!((a.index, a.data), (b.index, &b.bytes[..]));
    }
    // Rebuild the packed packet from its three messages.
    let packed = packed.expect("packed packet");
    let f = &packed.fragments;
    let mut b = PacketBuilder::new(
        bits::AGREED,
        Piece {
            index: -1,
            data: &f[0].bytes,
        },
    )
    .expect("builder");
    assert!(b.try_append(bits::AGREED, &f[1].bytes));
    assert!(b.try_append(bits::FIFO, &f[2].bytes));
    let ours = b.finish(packed.header);
    assert_eq!(ours, packed);
    assert_eq!(ours.emit(ByteOrder::Little).len(), 316);
    assert_eq!(ENDIAN_MARKER, 0x8000_0080);
}

/// Writes distinct capture datagrams as seeds to `fuzz/corpus/daemon_*`
/// (one file per seed, named by an FNV-1a hash; tokens that differ only in
/// counters are kept once per type word and length). Run on demand:
/// `cargo test -p spread-wire --test daemon_golden -- --ignored build_daemon_fuzz_corpus`.
#[test]
#[ignore = "writes fuzz/corpus; run on demand"]
fn build_daemon_fuzz_corpus() {
    let Some(files) = capture_files() else { return };
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut seeds: BTreeMap<(&'static str, Vec<u8>, usize), Vec<u8>> = BTreeMap::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read capture");
        for line in text.lines() {
            let rec: Value = serde_json::from_str(line).expect("json");
            let bytes = hex(rec["hex"].as_str().expect("hex"));
            let token = rec["dst"].as_str().expect("dst").ends_with(":4804");
            let target = if token { "daemon_token" } else { "daemon_packet" };
            // One seed per type word and length; the big-endian twin too.
            let key = |t: &'static str, b: &[u8]| (t, b[..4].to_vec(), b.len());
            let be = if token {
                AnyToken::parse(&bytes).expect("token").0.emit(ByteOrder::Big)
            } else {
                AnyPacket::parse(&bytes).expect("packet").0.emit(ByteOrder::Big)
            };
            seeds.entry(key(target, &bytes)).or_insert(bytes.clone());
            seeds.entry(key(target, &be)).or_insert(be);
            if let Ok((p, _)) = DataPacket::parse(&bytes) {
                for f in p.fragments.iter().filter(|f| f.index == -1) {
                    let Ok((h, order)) = MessageHeader::parse(&f.bytes) else {
                        continue;
                    };
                    if h.service_type & spread_wire::client::service::GROUPS_MESS == 0 {
                        continue;
                    }
                    let body = f.bytes[48..].to_vec();
                    let be = GroupsBody::parse(&body, order)
                        .expect("groups")
                        .emit(ByteOrder::Big);
                    let le_seed = [&[0u8][..], &body].concat();
                    let be_seed = [&[1u8][..], &be].concat();
                    seeds
                        .entry(("daemon_groups", le_seed.clone(), 0))
                        .or_insert(le_seed);
                    seeds
                        .entry(("daemon_groups", be_seed.clone(), 0))
                        .or_insert(be_seed);
                }
            }
        }
    }
    let mut total = 0;
    for ((target, _, _), seed) in &seeds {
        let d = out.join(target);
        std::fs::create_dir_all(&d).expect("create corpus dir");
        let h = seed.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        std::fs::write(d.join(format!("capture-{h:016x}")), seed).expect("write seed");
        total += 1;
    }
    println!("wrote {total} daemon seeds under {}", out.display());
}
