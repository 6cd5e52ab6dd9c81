//! The client codecs against the golden captures of the original 4.4.0.
//!
//! Every unit of every `shared/spread4-wire/client/c*.jsonl` is decoded with
//! our codecs, compared with the capture's own decoding (`fields`) and
//! re-encoded to the same bytes. Each (connection, direction) stream is
//! reassembled from its units and parsed sequentially as a peer would read
//! it, so the framing comes from our decoders, not from the capture's unit
//! boundaries; the units must then tile the decoded items exactly.
//!
//! Without the captures the test prints a skip message and passes, except
//! when `CI=true`. A few byte vectors that need no capture are at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use spread_wire::client::service::*;
use spread_wire::client::*;
use spread_wire::endian::ByteOrder;

const CAPTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/spread4-wire/client");

fn hex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 2, 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        write!(s, "{x:02x}").unwrap();
    }
    s
}

/// The capture directory, or `None` (after a skip message) when it is absent.
fn captures() -> Option<PathBuf> {
    let dir = Path::new(CAPTURE_DIR);
    if dir.is_dir() {
        return Some(dir.to_path_buf());
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("capture directory {CAPTURE_DIR} is missing and CI=true");
    }
    eprintln!("SKIP: capture directory {CAPTURE_DIR} not found; golden client tests skipped");
    None
}

/// What a unit is, as the capture labels it (its note) or as we decode it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    ConnectRequest,
    ConnectRequestRejected,
    IncompleteConnect,
    AuthList,
    AuthChoice,
    AcceptByte,
    AcceptVersion,
    AcceptName,
    RejectCode,
    HeaderC2d,
    HeaderD2c,
    GroupNames,
    RejectOldType,
    MessageBody,
    MembershipBody,
}

/// The kind a capture's note gives a unit.
fn labelled_kind(dir: &str, note: &str) -> Kind {
    let n = note;
    if n.starts_with("connect request with name length") {
        Kind::ConnectRequestRejected
    } else if n.starts_with("connect request") {
        if n.contains("REJECT_VERSION") {
            Kind::ConnectRequestRejected
        } else {
            Kind::ConnectRequest
        }
    } else if n.starts_with("incomplete unit") {
        Kind::IncompleteConnect
    } else if n.starts_with("allowed auth methods") {
        Kind::AuthList
    } else if n.starts_with("auth method choice") {
        Kind::AuthChoice
    } else if n.starts_with("accept byte") {
        Kind::AcceptByte
    } else if n.starts_with("daemon version bytes") {
        Kind::AcceptVersion
    } else if n.starts_with("private group name") {
        Kind::AcceptName
    } else if n.starts_with("reject code") || n.starts_with("session answer") {
        Kind::RejectCode
    } else if n.starts_with("message header") || n.starts_with("INVALID message header") {
        if dir == "c2d" {
            Kind::HeaderC2d
        } else {
            Kind::HeaderD2c
        }
    } else if n.starts_with("group names") || n.starts_with("membership: member list") {
        Kind::GroupNames
    } else if n.contains("old type") || n.contains("old-type") || n.contains("old_type") {
        Kind::RejectOldType
    } else if n.starts_with("membership body") {
        Kind::MembershipBody
    } else if n.starts_with("message body") {
        Kind::MessageBody
    } else {
        panic!("unknown unit kind in capture: {note:?}")
    }
}

struct Unit {
    line: usize,
    bytes: Vec<u8>,
    note: String,
    fields: Value,
    labelled: Kind,
    /// Filled by the decoder.
    decoded: Option<Kind>,
}

/// One direction of one connection: its units in order, and their bytes joined.
#[derive(Default)]
struct Stream {
    units: Vec<Unit>,
}

impl Stream {
    fn bytes_from(&self, first_unit: usize) -> Vec<u8> {
        self.units[first_unit..]
            .iter()
            .flat_map(|u| u.bytes.iter().copied())
            .collect()
    }
}

/// Assigns decoded items to the units that carry them.
struct Cursor {
    unit: usize,
}

impl Cursor {
    /// The decoded item is `len` bytes: it must span whole units from the
    /// current one; they get `kinds` in turn (the last kind repeats).
    /// Returns the index range of the units spanned.
    fn take(&mut self, s: &mut Stream, len: usize, kinds: &[Kind], ctx: &str) -> std::ops::Range<usize> {
        let start = self.unit;
        let mut got = 0;
        let mut i = 0;
        while got < len {
            let u = s
                .units
                .get_mut(self.unit)
                .unwrap_or_else(|| panic!("{ctx}: item of {len} bytes runs past the last unit"));
            got += u.bytes.len();
            assert!(
                u.decoded.is_none(),
                "{ctx}: unit at line {} decoded twice",
                u.line
            );
            u.decoded = Some(kinds[i.min(kinds.len() - 1)]);
            i += 1;
            self.unit += 1;
        }
        assert_eq!(got, len, "{ctx}: decoded item does not end on a unit boundary");
        start..self.unit
    }
}

fn field<'a>(v: &'a Value, name: &str, ctx: &str) -> &'a Value {
    v.get(name)
        .unwrap_or_else(|| panic!("{ctx}: capture field {name:?} missing"))
}

fn int(v: &Value, name: &str, ctx: &str) -> i64 {
    field(v, name, ctx)
        .as_i64()
        .unwrap_or_else(|| panic!("{ctx}: field {name:?} is not an integer"))
}

fn text<'a>(v: &'a Value, name: &str, ctx: &str) -> &'a str {
    field(v, name, ctx)
        .as_str()
        .unwrap_or_else(|| panic!("{ctx}: field {name:?} is not a string"))
}

fn ints(v: &Value, name: &str, ctx: &str) -> Vec<i64> {
    field(v, name, ctx)
        .as_array()
        .unwrap_or_else(|| panic!("{ctx}: field {name:?} is not an array"))
        .iter()
        .map(|x| x.as_i64().expect("integer element"))
        .collect()
}

fn strings(v: &Value, name: &str, ctx: &str) -> Vec<String> {
    field(v, name, ctx)
        .as_array()
        .unwrap_or_else(|| panic!("{ctx}: field {name:?} is not an array"))
        .iter()
        .map(|x| x.as_str().expect("string element").to_string())
        .collect()
}

fn name_str(g: &GroupName) -> String {
    String::from_utf8(g.as_bytes().to_vec()).expect("capture names are ASCII")
}

/// What the c2d side's handshake decided, for the d2c side.
#[derive(Clone, Copy, Debug)]
enum Handshake {
    /// No complete connect request: the daemon answers nothing.
    Silent,
    /// The request itself is refused with this code.
    Refused(i8),
    /// A valid request from a library of this version.
    Valid(Version),
}

#[derive(Default)]
struct Stats {
    units: usize,
    per_kind: BTreeMap<Kind, usize>,
    labelled: BTreeMap<Kind, usize>,
    messages_c2d: usize,
    messages_d2c: usize,
    truncated_messages: usize,
    membership_regular: usize,
    membership_transitional: usize,
    self_leaves: usize,
    membership_notices: usize,
    dirty_names: usize,
    big_endian_headers: usize,
    foreign_order_hints: usize,
    old_libraries: usize,
}

fn check_connect_request(u: &Unit, ctx: &str) -> (Handshake, Kind) {
    let f = &u.fields;
    let parsed = ConnectRequest::parse(&u.bytes);
    if let Err(ConnectRequestError::Truncated { .. }) = parsed {
        return (Handshake::Silent, Kind::IncompleteConnect);
    }
    let lib = ints(f, "lib_version", ctx);
    match parsed {
        Ok((req, used)) => {
            assert_eq!(used, u.bytes.len(), "{ctx}: request bytes left over");
            let v = req.version;
            if lib.len() == 2 {
                assert!(
                    !v.has_patch_byte(),
                    "{ctx}: capture has no patch byte but we read one"
                );
                assert_eq!(
                    [v.major as i64, v.minor as i64],
                    [lib[0], lib[1]],
                    "{ctx}: version"
                );
            } else {
                assert!(
                    v.has_patch_byte(),
                    "{ctx}: capture has a patch byte but we read none"
                );
                assert_eq!(
                    [v.major as i64, v.minor as i64, v.patch as i64],
                    lib[..],
                    "{ctx}: version"
                );
            }
            assert_eq!(req.flags as i64, int(f, "flags", ctx), "{ctx}: flags");
            assert_eq!(
                req.wants_membership() as i64,
                int(f, "group_membership", ctx),
                "{ctx}: membership"
            );
            assert_eq!(req.priority() as i64, int(f, "priority", ctx), "{ctx}: priority");
            assert_eq!(req.name.len() as i64, int(f, "name_len", ctx), "{ctx}: name_len");
            if !req.name.is_empty() {
                assert_eq!(req.name, text(f, "name", ctx).as_bytes(), "{ctx}: name");
            }
            assert_eq!(req.emit(), u.bytes, "{ctx}: connect request does not re-encode");
            (Handshake::Valid(v), Kind::ConnectRequest)
        }
        Err(e) => {
            let code = e
                .reject_code()
                .unwrap_or_else(|| panic!("{ctx}: {e} has no reject code"));
            let kind = match &e {
                ConnectRequestError::UnsupportedVersion(v) => {
                    let ours: Vec<i64> = if v.has_patch_byte() {
                        vec![v.major as i64, v.minor as i64, v.patch as i64]
                    } else {
                        vec![v.major as i64, v.minor as i64]
                    };
                    assert_eq!(ours, lib, "{ctx}: version of a refused request");
                    Kind::ConnectRequestRejected
                }
                ConnectRequestError::NameLength(n) => {
                    assert_eq!(*n as i64, int(f, "name_len", ctx), "{ctx}: name length");
                    // Version and flags as the capture read them.
                    let head = if lib.len() == 3 { 3 } else { 2 };
                    let got: Vec<i64> = u.bytes[..head].iter().map(|&b| b as i8 as i64).collect();
                    assert_eq!(got, lib, "{ctx}: version bytes");
                    assert_eq!(u.bytes[head] as i64, int(f, "flags", ctx), "{ctx}: flags");
                    Kind::ConnectRequestRejected
                }
                // The library sent a well-formed request with a name the daemon refuses.
                ConnectRequestError::IllegalNameByte(_) | ConnectRequestError::NameCount { .. } => {
                    assert_eq!(
                        u.bytes[u.bytes.len() - int(f, "name_len", ctx) as usize..],
                        *text(f, "name", ctx).as_bytes(),
                        "{ctx}: refused name"
                    );
                    Kind::ConnectRequest
                }
                ConnectRequestError::Truncated { .. } => unreachable!("handled above"),
            };
            (Handshake::Refused(code), kind)
        }
    }
}

fn check_header(h: &MessageHeader, order: ByteOrder, raw: &[u8], f: &Value, ctx: &str, stats: &mut Stats) {
    let endian = match order {
        ByteOrder::Little => "little",
        ByteOrder::Big => "big",
    };
    assert_eq!(endian, text(f, "endian", ctx), "{ctx}: byte order");
    if order == ByteOrder::Big {
        stats.big_endian_headers += 1;
    }
    let raw_type = h.service_type | order.marker();
    assert_eq!(format!("0x{raw_type:08x}"), text(f, "type", ctx), "{ctx}: type");
    assert_eq!(
        h.sender.as_bytes(),
        text(f, "sender", ctx).as_bytes(),
        "{ctx}: sender"
    );
    assert_eq!(
        h.num_groups as i64,
        int(f, "num_groups", ctx),
        "{ctx}: num_groups"
    );
    assert_eq!(h.data_len as i64, int(f, "data_len", ctx), "{ctx}: data_len");
    // The capture shows the hint read in its own order (its own marker).
    let hint_order = h.hint_order();
    let hint = hint_order.read_u32(h.hint);
    assert_eq!(format!("0x{hint:08x}"), text(f, "hint", ctx), "{ctx}: hint");
    if hint_order != order {
        stats.foreign_order_hints += 1;
    }
    assert_eq!(h.mess_type() as i64, int(f, "mess_type", ctx), "{ctx}: mess_type");
    // A hint built for this mess_type in its own order is the raw hint, when
    // it carries no bits outside the allowed ones.
    if h.raw_hint() & !HINT_ALLOWED_BITS == 0
        && (hint & 0x8000_0080 == 0 || hint & 0x8000_0080 == 0x8000_0080)
    {
        assert_eq!(hint_for(h.mess_type(), hint_order), h.hint, "{ctx}: hint_for");
    }
    assert_eq!(
        &h.emit(order)[..],
        &raw[..MessageHeader::LEN],
        "{ctx}: header does not re-encode"
    );
    assert_eq!(
        &h.emit(order)[..],
        &to_bytes_of_header(h, order)[..],
        "{ctx}: emit and emit_into differ"
    );
}

/// `MessageHeader::emit` and `emit_into` agree.
fn to_bytes_of_header(h: &MessageHeader, order: ByteOrder) -> Vec<u8> {
    let mut v = Vec::new();
    h.emit_into(order, &mut v);
    v
}

fn check_names(names: &[GroupName], u: &Unit, ctx: &str, stats: &mut Stats) {
    let want = strings(&u.fields, "groups", ctx);
    let got: Vec<String> = names.iter().map(name_str).collect();
    assert_eq!(got, want, "{ctx}: group names");
    let dirty: BTreeSet<usize> = u
        .fields
        .get("nonzero_bytes_after_nul")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|x| x.as_u64().expect("index") as usize).collect())
        .unwrap_or_default();
    for (i, n) in names.iter().enumerate() {
        let len = n.as_bytes().len();
        let has_garbage = n.raw()[len..].iter().any(|&b| b != 0);
        assert_eq!(
            has_garbage,
            dirty.contains(&i),
            "{ctx}: garbage after NUL of name {i}"
        );
        if has_garbage {
            stats.dirty_names += 1;
            // Equal to the clean name, but not byte-identical.
            let clean = GroupName::new(n.as_bytes()).expect("legal name");
            assert_eq!(
                *n, clean,
                "{ctx}: dirty name must compare equal to its clean form"
            );
            assert_ne!(n.raw(), clean.raw(), "{ctx}: raw field must keep the garbage");
        }
    }
    let mut out = Vec::new();
    emit_group_names(names, &mut out);
    assert_eq!(out, u.bytes, "{ctx}: group names do not re-encode");
}

fn check_membership_body(body: &[u8], order: ByteOrder, u: &Unit, ctx: &str) {
    let f = &u.fields;
    let m = MembershipBody::parse(body, order).unwrap_or_else(|e| panic!("{ctx}: membership body: {e}"));
    let gid = ints(f, "group_id", ctx);
    assert_eq!(
        vec![
            m.group_id.memb_id.proc_id as i64,
            m.group_id.memb_id.time as i64,
            m.group_id.index as i64
        ],
        gid,
        "{ctx}: group_id"
    );
    assert_eq!(
        m.vs_sets.len() as i64,
        int(f, "num_vs_sets", ctx),
        "{ctx}: num_vs_sets"
    );
    assert_eq!(
        m.vs_set_offset(m.my_vs_set) as i64,
        int(f, "local_vs_set_offset", ctx),
        "{ctx}: my vs set offset"
    );
    let sets = field(f, "vs_sets", ctx).as_array().expect("vs_sets array");
    assert_eq!(sets.len(), m.vs_sets.len(), "{ctx}: vs set count");
    for (i, (ours, theirs)) in m.vs_sets.iter().zip(sets).enumerate() {
        assert_eq!(
            m.vs_set_offset(i) as i64,
            int(theirs, "offset", ctx),
            "{ctx}: offset of set {i}"
        );
        assert_eq!(
            ours.len() as i64,
            int(theirs, "count", ctx),
            "{ctx}: count of set {i}"
        );
        let names: Vec<String> = ours.iter().map(name_str).collect();
        assert_eq!(
            names,
            strings(theirs, "members", ctx),
            "{ctx}: members of set {i}"
        );
    }
    assert_eq!(m.encoded_len(), body.len(), "{ctx}: membership encoded_len");
    assert_eq!(m.emit(order), body, "{ctx}: membership body does not re-encode");
}

/// A membership notice, rebuilt from its meaning alone (group, cause,
/// members, vs sets or id) as the daemon builds it, must be the original's
/// bytes.
fn check_membership_notice(m: &Message, order: ByteOrder, raw: &[u8], ctx: &str, stats: &mut Stats) {
    let t = m.header.service_type;
    let notice = if t & REG_MEMB_MESS != 0 {
        let body =
            MembershipBody::parse(&m.body, order).unwrap_or_else(|e| panic!("{ctx}: membership body: {e}"));
        MembershipNotice::Regular {
            cause: t & !REG_MEMB_MESS,
            group: m.header.sender,
            members: m.groups.clone(),
            body,
        }
    } else if t & TRANSITION_MESS != 0 {
        MembershipNotice::Transitional {
            group: m.header.sender,
            id: GroupId::parse(&m.body, order).unwrap_or_else(|e| panic!("{ctx}: group id: {e}")),
        }
    } else if t & MEMBERSHIP_MESS == CAUSED_BY_LEAVE {
        MembershipNotice::SelfLeave {
            group: m.header.sender,
        }
    } else {
        return;
    };
    assert_eq!(notice.service_type(), t, "{ctx}: notice service type");
    assert_eq!(notice.encoded_len(), raw.len(), "{ctx}: notice encoded_len");
    assert_eq!(
        to_hex(&notice.emit(order)),
        to_hex(raw),
        "{ctx}: membership notice does not re-encode byte-exact"
    );
    stats.membership_notices += 1;
}

/// The client -> daemon stream: request, auth choice, messages.
fn walk_c2d(s: &mut Stream, ctx: &str, stats: &mut Stats) -> Handshake {
    if s.units.is_empty() {
        return Handshake::Silent;
    }
    let mut cur = Cursor { unit: 0 };
    // The library writes the request in one send and then waits, so the
    // daemon reads exactly the first unit.
    let req_ctx = format!("{ctx} line {}", s.units[0].line);
    let (hs, kind) = check_connect_request(&s.units[0], &req_ctx);
    let n = s.units[0].bytes.len();
    cur.take(s, n, &[kind], &req_ctx);
    let Handshake::Valid(version) = hs else {
        assert_eq!(
            cur.unit,
            s.units.len(),
            "{ctx}: bytes after a refused connect request"
        );
        return hs;
    };
    if !version.does_auth_exchange() {
        stats.old_libraries += 1;
    }
    let mut pos = cur.unit;
    if version.does_auth_exchange() && pos < s.units.len() {
        let bytes = s.bytes_from(pos);
        let c = AuthChoice::parse(&bytes).unwrap_or_else(|e| panic!("{ctx}: auth choice: {e}"));
        let u = &s.units[pos];
        let uctx = format!("{ctx} line {}", u.line);
        let want: Vec<String> = strings(&u.fields, "methods", &uctx)
            .into_iter()
            .filter(|m| !m.is_empty())
            .collect();
        assert_eq!(c.methods(), want, "{uctx}: auth methods");
        let enc = c.emit();
        assert_eq!(enc, bytes[..enc.len()], "{uctx}: auth choice does not re-encode");
        cur.take(s, enc.len(), &[Kind::AuthChoice], &uctx);
        pos = cur.unit;
    }
    walk_messages(s, &mut cur, pos, false, ctx, stats);
    hs
}

/// The daemon -> client stream: auth list, accept or reject, messages.
fn walk_d2c(s: &mut Stream, hs: Handshake, ctx: &str, stats: &mut Stats) {
    let mut cur = Cursor { unit: 0 };
    let bytes = s.bytes_from(0);
    let version = match hs {
        Handshake::Silent => {
            assert!(s.units.is_empty(), "{ctx}: daemon answered an incomplete request");
            return;
        }
        Handshake::Refused(code) => {
            let (r, used) = SessionReply::parse(&bytes, true).unwrap_or_else(|e| panic!("{ctx}: reply: {e}"));
            assert_eq!(
                r,
                SessionReply::Reject(code),
                "{ctx}: reject code of a refused request"
            );
            assert_eq!(
                int(&s.units[0].fields, "code", ctx),
                code as i64,
                "{ctx}: capture code"
            );
            assert_eq!(r.emit(true), bytes[..used], "{ctx}: reject does not re-encode");
            cur.take(s, used, &[Kind::RejectCode], ctx);
            assert_eq!(cur.unit, s.units.len(), "{ctx}: bytes after a reject");
            return;
        }
        Handshake::Valid(v) => v,
    };
    let mut at = 0;
    if version.does_auth_exchange() {
        let uctx = format!("{ctx} line {}", s.units[0].line);
        match AuthMethodList::parse(&bytes) {
            Ok((list, used)) => {
                let f = &s.units[0].fields;
                assert_eq!(used as i64 - 1, int(f, "len", &uctx), "{uctx}: auth list length");
                let joined: String = list.methods.iter().map(|m| format!("{m} ")).collect();
                assert_eq!(joined, text(f, "list", &uctx), "{uctx}: auth list");
                assert_eq!(list.emit(), bytes[..used], "{uctx}: auth list does not re-encode");
                cur.take(s, used, &[Kind::AuthList], &uctx);
                at = used;
            }
            Err(DecodeError {
                kind: ErrorKind::BadValue { .. },
                ..
            }) => {} // a reject code in its place
            Err(e) => panic!("{uctx}: auth list: {e}"),
        }
    }
    if cur.unit == s.units.len() {
        return;
    }
    let uctx = format!("{ctx} line {}", s.units[cur.unit].line);
    let patch = version.expects_patch_in_accept();
    let (reply, used) =
        SessionReply::parse(&bytes[at..], patch).unwrap_or_else(|e| panic!("{uctx}: session reply: {e}"));
    assert_eq!(
        reply.emit(patch),
        bytes[at..at + used],
        "{uctx}: session reply does not re-encode"
    );
    match &reply {
        SessionReply::Reject(code) => {
            assert_eq!(
                int(&s.units[cur.unit].fields, "code", &uctx),
                *code as i64,
                "{uctx}: code"
            );
            cur.take(s, used, &[Kind::RejectCode], &uctx);
            assert_eq!(cur.unit, s.units.len(), "{ctx}: bytes after a reject");
        }
        SessionReply::Accept {
            daemon_version,
            private_group,
        } => {
            let r = cur.take(
                s,
                used,
                &[Kind::AcceptByte, Kind::AcceptVersion, Kind::AcceptName],
                &uctx,
            );
            assert_eq!(r.len(), 3, "{uctx}: the capture splits an accept in 3 units");
            let units = &s.units[r];
            assert_eq!(int(&units[0].fields, "code", &uctx), 1, "{uctx}: accept code");
            let dv = ints(&units[1].fields, "daemon_version", &uctx);
            let ours: Vec<i64> = if patch {
                vec![
                    daemon_version.major as i64,
                    daemon_version.minor as i64,
                    daemon_version.patch as i64,
                ]
            } else {
                vec![daemon_version.major as i64, daemon_version.minor as i64]
            };
            assert_eq!(ours, dv, "{uctx}: daemon version");
            let f = &units[2].fields;
            assert_eq!(
                private_group.as_bytes().len() as i64,
                int(f, "len", &uctx),
                "{uctx}: name length"
            );
            assert_eq!(
                name_str(private_group),
                text(f, "private_group", &uctx),
                "{uctx}: private group"
            );
            let (_, daemon) = private_group.private_parts().expect("#name#daemon");
            assert!(!daemon.is_empty(), "{uctx}: daemon name");
            let pos = cur.unit;
            walk_messages(s, &mut cur, pos, true, ctx, stats);
        }
    }
}

/// Messages from unit `first` on, parsed sequentially from the joined bytes.
fn walk_messages(s: &mut Stream, cur: &mut Cursor, first: usize, d2c: bool, ctx: &str, stats: &mut Stats) {
    let bytes = s.bytes_from(first);
    let mut at = 0;
    while at < bytes.len() {
        let uctx = format!("{ctx} line {}", s.units[cur.unit].line);
        let rest = &bytes[at..];
        let header_kind = if d2c { Kind::HeaderD2c } else { Kind::HeaderC2d };
        let (h, order) = MessageHeader::parse(rest).unwrap_or_else(|e| panic!("{uctx}: header: {e}"));
        check_header(&h, order, rest, &s.units[cur.unit].fields, &uctx, stats);
        let is_reject = d2c && h.service_type & REJECT_MESS != 0;
        let parsed = if is_reject {
            RejectDelivery::parse(rest).map(|(r, o, n)| (r.message, Some(r.old_type), o, n))
        } else {
            Message::parse(rest).map(|(m, o, n)| (m, None, o, n))
        };
        let (m, old_type, order2, used) = match parsed {
            Ok(x) => x,
            Err(e) if e.is_truncated() => {
                // The peer closed mid-message (c21: the daemon drops the
                // session on a bad header). Only the header units remain.
                let hdr = cur.take(s, MessageHeader::LEN, &[header_kind], &uctx);
                assert_eq!(hdr.len(), 1, "{uctx}: header is one unit");
                let left = rest.len() - MessageHeader::LEN;
                if left > 0 {
                    let r = cur.take(s, left, &[Kind::GroupNames], &uctx);
                    assert!(
                        r.end == s.units.len(),
                        "{uctx}: truncated message is not the last"
                    );
                }
                assert_eq!(cur.unit, s.units.len(), "{uctx}: units after a truncated message");
                stats.truncated_messages += 1;
                return;
            }
            Err(e) => panic!("{uctx}: message: {e}"),
        };
        assert_eq!(order, order2, "{uctx}: order");
        assert_eq!(m.header, h, "{uctx}: Message header differs from MessageHeader");
        let reenc = match old_type {
            Some(t) => RejectDelivery {
                message: m.clone(),
                old_type: t,
            }
            .emit(order),
            None => m.emit(order),
        };
        assert_eq!(
            reenc,
            rest[..used],
            "{uctx}: message does not re-encode byte-exact"
        );
        if old_type.is_none() {
            assert_eq!(m.encoded_len(), used, "{uctx}: encoded_len");
        }
        if d2c && old_type.is_none() {
            check_membership_notice(&m, order, &rest[..used], &uctx, stats);
        }
        // Now the units: header, [old type], [names], [body].
        let r = cur.take(s, MessageHeader::LEN, &[header_kind], &uctx);
        assert_eq!(r.len(), 1, "{uctx}: header is one unit");
        if old_type.is_some() {
            cur.take(s, 4, &[Kind::RejectOldType], &uctx);
        }
        if !m.groups.is_empty() {
            let r = cur.take(s, m.groups.len() * 32, &[Kind::GroupNames], &uctx);
            assert_eq!(r.len(), 1, "{uctx}: names are one unit");
            let u = &s.units[r.start];
            check_names(&m.groups, u, &format!("{ctx} line {}", u.line), stats);
        }
        let membership = d2c && h.service_type & (REG_MEMB_MESS | TRANSITION_MESS) != 0;
        if !m.body.is_empty() {
            let kind = if membership {
                Kind::MembershipBody
            } else {
                Kind::MessageBody
            };
            let r = cur.take(s, m.body.len(), &[kind], &uctx);
            assert_eq!(r.len(), 1, "{uctx}: body is one unit");
            let u = &s.units[r.start];
            let bctx = format!("{ctx} line {}", u.line);
            assert_eq!(u.bytes, m.body, "{bctx}: body");
            if membership && h.service_type & REG_MEMB_MESS != 0 {
                check_membership_body(&m.body, order, u, &bctx);
                stats.membership_regular += 1;
            } else if membership {
                let gid = GroupId::parse(&m.body, order).expect("transitional group id");
                assert_eq!(
                    m.body.len(),
                    GroupId::LEN,
                    "{bctx}: transitional body is a group id"
                );
                let mut out = Vec::new();
                gid.emit_into(order, &mut out);
                assert_eq!(out, m.body, "{bctx}: group id does not re-encode");
                stats.membership_transitional += 1;
            } else {
                assert_eq!(
                    m.body.len() as i64,
                    int(&u.fields, "len", &bctx),
                    "{bctx}: body length"
                );
            }
        } else if d2c && h.service_type & MEMBERSHIP_MESS == CAUSED_BY_LEAVE {
            // Self-leave: CAUSED_BY_LEAVE alone, no names, no body.
            assert!(m.groups.is_empty(), "{uctx}: self-leave carries no names");
            stats.self_leaves += 1;
        }
        if d2c {
            stats.messages_d2c += 1;
        } else {
            stats.messages_c2d += 1;
        }
        at += used;
    }
}

fn load(path: &Path) -> BTreeMap<(u64, String), Stream> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut streams: BTreeMap<(u64, String), Stream> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
        let Some(hexs) = v.get("hex").and_then(Value::as_str) else {
            continue; // the header record and open/eof/close/error events
        };
        let conn = v["conn"].as_u64().expect("conn");
        let dir = v["dir"].as_str().expect("dir").to_string();
        let note = v["note"].as_str().unwrap_or_default().to_string();
        let labelled = labelled_kind(&dir, &note);
        streams.entry((conn, dir)).or_default().units.push(Unit {
            line: i + 1,
            bytes: hex(hexs),
            note,
            fields: v.get("fields").cloned().unwrap_or(Value::Null),
            labelled,
            decoded: None,
        });
    }
    streams
}

#[test]
fn every_capture_unit_decodes_and_re_encodes() {
    let Some(dir) = captures() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read capture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with('c') && n.ends_with(".jsonl")
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 27,
        "expected the 27 client scenarios, found {}",
        files.len()
    );

    let mut stats = Stats::default();
    for path in &files {
        let fname = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut streams = load(path);
        let conns: BTreeSet<u64> = streams.keys().map(|(c, _)| *c).collect();
        for conn in conns {
            let ctx = format!("{fname} conn {conn}");
            let mut c2d = streams.remove(&(conn, "c2d".to_string())).unwrap_or_default();
            let mut d2c = streams.remove(&(conn, "d2c".to_string())).unwrap_or_default();
            let hs = walk_c2d(&mut c2d, &format!("{ctx} c2d"), &mut stats);
            walk_d2c(&mut d2c, hs, &format!("{ctx} d2c"), &mut stats);
            for u in c2d.units.iter().chain(&d2c.units) {
                let decoded = u.decoded.unwrap_or_else(|| {
                    panic!(
                        "{fname} line {}: unit not decoded ({}; {} bytes {}...)",
                        u.line,
                        u.note,
                        u.bytes.len(),
                        to_hex(&u.bytes[..u.bytes.len().min(20)])
                    )
                });
                assert_eq!(
                    decoded, u.labelled,
                    "{fname} line {}: we decode a {decoded:?}, the capture says {:?} ({})",
                    u.line, u.labelled, u.note
                );
                stats.units += 1;
                *stats.per_kind.entry(decoded).or_default() += 1;
                *stats.labelled.entry(u.labelled).or_default() += 1;
            }
        }
    }

    println!("client golden: {} files, {} units", files.len(), stats.units);
    for (k, n) in &stats.per_kind {
        println!("  {k:?}: {n}");
    }
    println!(
        "  messages c2d {} d2c {} (truncated {}), regular memberships {}, transitional {}, self-leaves {}, notices rebuilt {}",
        stats.messages_c2d,
        stats.messages_d2c,
        stats.truncated_messages,
        stats.membership_regular,
        stats.membership_transitional,
        stats.self_leaves,
        stats.membership_notices
    );
    println!(
        "  dirty names {}, big-endian headers {}, foreign-order hints {}, old libraries {}",
        stats.dirty_names, stats.big_endian_headers, stats.foreign_order_hints, stats.old_libraries
    );
    assert_eq!(
        stats.per_kind, stats.labelled,
        "decoded kinds differ from the capture's labels"
    );
    for (k, n) in &stats.per_kind {
        assert!(*n > 0, "no unit of kind {k:?}");
    }
    // What the scenario list promises must actually have been exercised.
    for k in [
        Kind::ConnectRequest,
        Kind::ConnectRequestRejected,
        Kind::IncompleteConnect,
        Kind::AuthList,
        Kind::AuthChoice,
        Kind::AcceptByte,
        Kind::AcceptVersion,
        Kind::AcceptName,
        Kind::RejectCode,
        Kind::HeaderC2d,
        Kind::HeaderD2c,
        Kind::GroupNames,
        Kind::MessageBody,
        Kind::MembershipBody,
    ] {
        assert!(
            stats.per_kind.get(&k).copied().unwrap_or(0) > 0,
            "no {k:?} decoded"
        );
    }
    assert!(stats.self_leaves > 0, "no self-leave (c10)");
    assert_eq!(
        stats.membership_notices,
        stats.membership_regular + stats.membership_transitional + stats.self_leaves,
        "a membership notice was not rebuilt"
    );
    assert!(stats.dirty_names > 0, "no name with garbage after NUL");
    assert!(stats.big_endian_headers > 0, "no big-endian header (c27)");
    assert!(stats.foreign_order_hints > 0, "no foreign-order hint (c27)");
    assert!(stats.old_libraries > 0, "no old library (c23)");
    assert!(stats.truncated_messages > 0, "no truncated message (c21)");
}

// ---- Byte vectors kept in the repository (no capture needed) ----

/// c01: the whole handshake of "alice", membership on.
#[test]
fn vector_handshake_c01() {
    let req = hex("0404000105616c696365");
    let (r, n) = ConnectRequest::parse(&req).unwrap();
    assert_eq!((r.name.as_slice(), r.flags, n), (&b"alice"[..], 1, req.len()));
    assert_eq!(r.emit(), req);
    let list = hex("054e554c4c20");
    assert_eq!(
        AuthMethodList::parse(&list).unwrap().0.methods,
        vec!["NULL".to_string()]
    );
    let mut choice = b"NULL".to_vec();
    choice.resize(90, 0);
    assert_eq!(AuthChoice::new(&["NULL"]).emit(), choice);
    let accept = hex("0104040010") // code, 4.4.0, length 16
        .into_iter()
        .chain(b"#alice#localhost".iter().copied())
        .collect::<Vec<u8>>();
    let (reply, n) = SessionReply::parse(&accept, true).unwrap();
    assert_eq!(n, accept.len());
    assert_eq!(
        reply,
        SessionReply::Accept {
            daemon_version: Version::new(4, 4, 0),
            private_group: GroupName::new(b"#alice#localhost").unwrap()
        }
    );
    assert_eq!(reply.emit(true), accept);
}

/// c23 conn 1: a 3.14 library: no patch byte either way, no auth exchange.
#[test]
fn vector_old_library_c23() {
    let req = hex("030e0103616161");
    let (r, _) = ConnectRequest::parse(&req).unwrap();
    assert!(!r.version.does_auth_exchange() && !r.version.expects_patch_in_accept());
    let accept = hex("0104040e23616161236c6f63616c686f7374");
    let (reply, n) = SessionReply::parse(&accept, false).unwrap();
    assert_eq!(n, accept.len());
    assert_eq!(reply.emit(false), accept);
}

/// c20/c05: refusals of the daemon, with the byte it answers.
#[test]
fn vector_refused_requests() {
    let cases: [(&str, i8); 4] = [
        ("474554202f20485454502f312e300d0a0d0a", -5), // "GET / HTTP/1.0"
        ("0000000000", -7),
        ("040400018041", -5),
        ("040400010f6162636465666768696a6b6c6d6e6f", -5),
    ];
    for (h, code) in cases {
        let e = ConnectRequest::parse(&hex(h)).unwrap_err();
        assert_eq!(e.reject_code(), Some(code), "{h}: {e}");
    }
    assert_eq!(
        ConnectRequest::parse(&hex("0404")).unwrap_err().reject_code(),
        None
    );
}

/// c27: a big-endian JOIN and AGREED from a big-endian library, and the
/// daemon's little-endian delivery with the hint left in big-endian order.
#[test]
fn vector_big_endian_c27() {
    let join = hex(
        "0001000023626967656e64236c6f63616c686f7374000000000000000000000000000000000000010000000000000000",
    );
    let (h, order) = MessageHeader::parse(&join).unwrap();
    assert_eq!(
        (order, h.service_type, h.num_groups),
        (ByteOrder::Big, JOIN_MESS, 1)
    );
    assert_eq!(h.emit(order).to_vec(), join);
    let sent = hex(
        "0000001023626967656e64236c6f63616c686f7374000000000000000000000000000000000000010001020000000005",
    );
    let (h, order) = MessageHeader::parse(&sent).unwrap();
    assert_eq!(
        (order, h.service_type, h.mess_type(), h.data_len),
        (ByteOrder::Big, AGREED_MESS, 258, 5)
    );
    let delivered = hex(
        "9000008023626967656e64236c6f63616c686f7374000000000000000000000000000000010000000001020005000000",
    );
    let (d, dorder) = MessageHeader::parse(&delivered).unwrap();
    assert_eq!(dorder, ByteOrder::Little);
    // The daemon converts type/num_groups/data_len and passes the hint through.
    assert_eq!(d, h);
    assert_eq!(d.hint_order(), ByteOrder::Big);
    assert_eq!(h.emit(ByteOrder::Little).to_vec(), delivered);
}

/// c01: the KILL's name keeps its stack garbage and still equals the clean name.
#[test]
fn vector_dirty_kill_name_c01() {
    let mut msg = hex(
        "8000048023616c696365236c6f63616c686f737400000000000000000000000000000000010000008000008000000000",
    );
    msg.extend(hex(
        "23616c696365236c6f63616c686f737400b77789127f00003e866289127f0000",
    ));
    let (m, order, n) = Message::parse(&msg).unwrap();
    assert_eq!(n, msg.len());
    assert_eq!(m.header.service_type, KILL_MESS);
    assert_eq!(m.groups[0], m.header.sender);
    assert_ne!(m.groups[0].raw(), m.header.sender.raw());
    assert_eq!(m.emit(order), msg);
}

/// A transitional membership as the ring captures (d07) show its body, and
/// a NETWORK membership with two vs sets where the receiver is in the second.
#[test]
fn vector_transitional_and_network_memberships() {
    let g = GroupName::new(b"g").unwrap();
    let trans_body = hex("0100630a19e7036b02000000");
    let gid = GroupId::parse(&trans_body, ByteOrder::Little).unwrap();
    assert_eq!((gid.memb_id.proc_id, gid.index), (0x0a63_0001, 2));
    let trans = Message {
        header: MessageHeader {
            service_type: TRANSITION_MESS,
            sender: g,
            num_groups: 0,
            hint: hint_for(0, ByteOrder::Little),
            data_len: 12,
        },
        groups: vec![],
        body: trans_body.clone(),
    };
    let bytes = trans.emit(ByteOrder::Little);
    assert_eq!(&bytes[..4], &[0x80, 0x20, 0x00, 0x80]);
    assert_eq!(bytes.len(), 48 + 12);
    assert_eq!(Message::parse(&bytes).unwrap().0, trans);

    let alice = GroupName::new(b"#alice#d1").unwrap();
    let dave = GroupName::new(b"#dave#d3").unwrap();
    let mut body = hex("0100630a34e7036b01000000" /* group id */);
    body.extend(hex("02000000" /* sets */));
    body.extend(hex("24000000" /* dave's set at 4 + 32 */));
    body.extend(hex("01000000"));
    body.extend(alice.raw());
    body.extend(hex("01000000"));
    body.extend(dave.raw());
    assert_eq!(body.len(), 92);
    let m = MembershipBody::parse(&body, ByteOrder::Little).unwrap();
    assert_eq!(m.vs_sets, vec![vec![alice], vec![dave]]);
    assert_eq!(m.my_vs_set, 1);
    assert_eq!(m.emit(ByteOrder::Little), body);
    // The same notice as alice receives it: offset 0.
    let mut for_alice = body.clone();
    for_alice[16] = 0;
    assert_eq!(
        MembershipBody::parse(&for_alice, ByteOrder::Little)
            .unwrap()
            .my_vs_set,
        0
    );
    // An offset that points inside a set is refused.
    let mut bad = body.clone();
    bad[16] = 8;
    assert!(MembershipBody::parse(&bad, ByteOrder::Little).is_err());
}

/// A reject delivery: the old-type word sits between header and names and
/// is counted by neither num_groups nor data_len.
#[test]
fn vector_reject_delivery() {
    let me = GroupName::new(b"#alice#localhost").unwrap();
    let header = MessageHeader {
        service_type: REJECT_MESS,
        sender: me,
        num_groups: 2,
        hint: hint_for(5, ByteOrder::Little),
        data_len: 3,
    };
    let groups = [GroupName::new(b"g1").unwrap(), me];
    let bytes = emit_reject(&header, AGREED_MESS, &groups, b"abc", ByteOrder::Little);
    assert_eq!(bytes.len(), 48 + 4 + 64 + 3);
    assert_eq!(&bytes[48..52], &[0x90, 0, 0, 0x80]);
    let (r, order, used) = RejectDelivery::parse(&bytes).unwrap();
    assert_eq!((order, used), (ByteOrder::Little, bytes.len()));
    assert_eq!(r.old_type, AGREED_MESS);
    assert_eq!(r.message.groups, groups);
    assert_eq!(r.message.body, b"abc");
    assert_eq!(r.emit(ByteOrder::Little), bytes);
    // Read as a plain message it would be misframed by the 4 bytes.
    let (plain, _, _) = Message::parse(&bytes).unwrap();
    assert_ne!(plain.groups, groups);
    assert!(matches!(
        RejectDelivery::parse(&bytes[..bytes.len() - 1]),
        Err(e) if e.bytes_needed() == Some(bytes.len())
    ));
}

// ---- Seed corpus for the fuzz targets ----

/// Writes capture units as seeds to `fuzz/corpus/<target>/` (one file per
/// distinct input, named by a hash of its bytes). Run with
/// `cargo test -p spread-wire --test client_golden -- --ignored build_fuzz_corpus`.
/// Seeds longer than 4 KiB are left out so that libFuzzer keeps short inputs.
#[test]
#[ignore = "writes fuzz/corpus; run on demand"]
fn build_fuzz_corpus() {
    let Some(dir) = captures() else { return };
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut seeds: BTreeMap<&'static str, BTreeSet<Vec<u8>>> = BTreeMap::new();
    let mut add = |target: &'static str, bytes: Vec<u8>| {
        if bytes.len() <= 4096 {
            seeds.entry(target).or_default().insert(bytes);
        }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read capture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    for path in &files {
        for ((_, _), s) in load(path) {
            let units = &s.units;
            let mut i = 0;
            while i < units.len() {
                let u = &units[i];
                match u.labelled {
                    Kind::ConnectRequest | Kind::ConnectRequestRejected | Kind::IncompleteConnect => {
                        add("connect_request", u.bytes.clone())
                    }
                    Kind::AuthList => add("auth_method_list", u.bytes.clone()),
                    Kind::AuthChoice => add("auth_choice", u.bytes.clone()),
                    Kind::RejectCode => {
                        add("auth_method_list", u.bytes.clone());
                        add("session_reply", [&[1u8][..], &u.bytes].concat());
                    }
                    Kind::AcceptByte if i + 2 < units.len() => {
                        let patch = units[i + 1].bytes.len() == 3;
                        let mut seed = vec![patch as u8];
                        for v in &units[i..i + 3] {
                            seed.extend(&v.bytes);
                        }
                        add("session_reply", seed);
                    }
                    Kind::HeaderC2d | Kind::HeaderD2c => {
                        add("message_header", u.bytes.clone());
                        let mut whole = u.bytes.clone();
                        let mut j = i + 1;
                        while j < units.len()
                            && !matches!(units[j].labelled, Kind::HeaderC2d | Kind::HeaderD2c)
                        {
                            whole.extend(&units[j].bytes);
                            j += 1;
                        }
                        add("message", whole);
                    }
                    Kind::MembershipBody => {
                        add("membership_body", [&[0u8][..], &u.bytes].concat());
                        // The same notice from a big-endian daemon.
                        if let Ok(m) = MembershipBody::parse(&u.bytes, ByteOrder::Little) {
                            add("membership_body", [vec![1u8], m.emit(ByteOrder::Big)].concat());
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            // Whole message streams, as a peer reads them.
            let first = units
                .iter()
                .position(|u| matches!(u.labelled, Kind::HeaderC2d | Kind::HeaderD2c));
            if let Some(first) = first {
                add("message", s.bytes_from(first));
            }
        }
    }
    let mut total = 0;
    for (target, set) in &seeds {
        let d = out.join(target);
        std::fs::create_dir_all(&d).expect("create corpus dir");
        for seed in set {
            // FNV-1a: a stable name per distinct seed.
            let h = seed.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            });
            std::fs::write(d.join(format!("capture-{h:016x}")), seed).expect("write seed");
        }
        println!("{target}: {} seeds", set.len());
        total += set.len();
    }
    assert!(seeds.len() == 7 && total > 0, "every target gets seeds");
}
