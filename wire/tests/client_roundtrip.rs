//! Property tests of the client codecs: every representation survives
//! encode -> decode, truncated encodings ask for more bytes, and no parser
//! panics on arbitrary input.

use std::collections::HashSet;

use proptest::collection::vec;
use proptest::prelude::*;
use spread_wire::client::*;
use spread_wire::endian::{ByteOrder, ENDIAN_MARKER};

fn order() -> impl Strategy<Value = ByteOrder> {
    prop_oneof![Just(ByteOrder::Little), Just(ByteOrder::Big)]
}

/// A byte the daemon allows in a private name.
fn legal_byte() -> impl Strategy<Value = u8> {
    36u8..=126
}

/// A version the daemon serves, patch 0 when it has no patch byte.
fn supported_version() -> impl Strategy<Value = Version> {
    prop_oneof![
        // Old libraries: 3.1 .. 3.14, no patch byte.
        (1i8..=14).prop_map(|minor| Version::new(3, minor, 0)),
        // 3.15 and later, with a patch byte.
        (15i8..=99, any::<i8>()).prop_map(|(minor, patch)| Version::new(3, minor, patch)),
        (4i8..=127, any::<i8>(), any::<i8>()).prop_map(|(major, minor, patch)| {
            let v = Version::new(major, minor, patch);
            if v.has_patch_byte() {
                v
            } else {
                Version::new(major, minor, 0)
            }
        }),
    ]
    .prop_filter("supported", |v| v.is_supported_client())
}

fn connect_request() -> impl Strategy<Value = ConnectRequest> {
    connect_request_named(0)
}

/// A request whose name has at least `min` bytes.
fn connect_request_named(min: usize) -> impl Strategy<Value = ConnectRequest> {
    (supported_version(), any::<u8>(), vec(legal_byte(), min..=10))
        .prop_map(|(version, flags, name)| ConnectRequest { version, flags, name })
}

/// A version below 3.1.0 (such versions never have a patch byte).
fn old_version() -> impl Strategy<Value = Version> {
    prop_oneof![
        (-128i8..=2, -128i8..=99).prop_map(|(major, minor)| Version::new(major, minor, 0)),
        (-128i8..=0).prop_map(|minor| Version::new(3, minor, 0)),
    ]
}

/// Any 32-byte field: a name, a NUL, then garbage (or no NUL at all).
fn raw_group_name() -> impl Strategy<Value = GroupName> {
    prop_oneof![
        (vec(1u8..=255, 0..=31), any::<[u8; 32]>()).prop_map(|(name, garbage)| {
            let mut raw = garbage;
            raw[..name.len()].copy_from_slice(&name);
            raw[name.len()] = 0;
            GroupName::from_raw(raw)
        }),
        vec(1u8..=255, 32).prop_map(|b| GroupName::from_raw(b.try_into().unwrap())),
    ]
}

/// A clean name the daemon could build.
fn clean_group_name() -> impl Strategy<Value = GroupName> {
    vec(legal_byte(), 1..=31).prop_map(|n| GroupName::new(&n).unwrap())
}

fn header() -> impl Strategy<Value = MessageHeader> {
    (
        any::<u32>(),
        raw_group_name(),
        any::<i32>(),
        any::<[u8; 4]>(),
        any::<i32>(),
    )
        .prop_map(|(t, sender, num_groups, hint, data_len)| MessageHeader {
            service_type: t & !ENDIAN_MARKER,
            sender,
            num_groups,
            hint,
            data_len,
        })
}

fn message() -> impl Strategy<Value = Message> {
    (header(), vec(raw_group_name(), 0..6), vec(any::<u8>(), 0..300)).prop_map(
        |(mut header, groups, body)| {
            header.num_groups = groups.len() as i32;
            header.data_len = body.len() as i32;
            Message { header, groups, body }
        },
    )
}

fn membership_body() -> impl Strategy<Value = MembershipBody> {
    (
        any::<(i32, i32, i32)>(),
        vec(vec(clean_group_name(), 0..4), 0..5),
        any::<usize>(),
    )
        .prop_map(|((proc_id, time, index), vs_sets, pick)| {
            let my_vs_set = if vs_sets.is_empty() {
                0
            } else {
                pick % vs_sets.len()
            };
            MembershipBody {
                group_id: GroupId {
                    memb_id: MembId { proc_id, time },
                    index,
                },
                vs_sets,
                my_vs_set,
            }
        })
}

/// Raw byte equality of names (`==` on GroupName ignores bytes after NUL).
fn raws(names: &[GroupName]) -> Vec<[u8; 32]> {
    names.iter().map(|n| *n.raw()).collect()
}

fn incomplete<T>(r: &Result<T, DecodeError>) -> bool {
    matches!(r, Err(e) if e.is_truncated())
}

/// A type word whose marker bits are all set or all clear re-encodes exactly.
fn marker_consistent(word: [u8; 4]) -> bool {
    let m = u32::from_le_bytes(word) & ENDIAN_MARKER;
    m == 0 || m == ENDIAN_MARKER
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    // ---- Handshake ----

    #[test]
    fn connect_request_round_trips(req in connect_request()) {
        let bytes = req.emit();
        let expected_len = if req.version.has_patch_byte() { 5 } else { 4 } + req.name.len();
        prop_assert_eq!(bytes.len(), expected_len);
        prop_assert_eq!(ConnectRequest::parse(&bytes), Ok((req.clone(), bytes.len())));
        // Cut anywhere before the name: the daemon closes without an answer.
        let head = expected_len - req.name.len();
        for cut in 0..head {
            let r = ConnectRequest::parse(&bytes[..cut]);
            prop_assert!(matches!(r, Err(ConnectRequestError::Truncated { .. })), "cut {}: {:?}", cut, r);
        }
        // A cut inside the name is a count mismatch: REJECT_ILLEGAL_NAME.
        for cut in head + 1..bytes.len() {
            let r = ConnectRequest::parse(&bytes[..cut]);
            let answer = r.clone().map_err(|e| e.reject_code());
            prop_assert_eq!(answer, Err(Some(code::REJECT_ILLEGAL_NAME as i8)));
        }
    }

    #[test]
    fn old_versions_are_refused(v in old_version(), tail in vec(any::<u8>(), 3)) {
        prop_assert!(!v.has_patch_byte() && !v.is_supported_client());
        let mut bytes = vec![v.major as u8, v.minor as u8];
        bytes.extend(tail);
        prop_assert_eq!(
            ConnectRequest::parse(&bytes),
            Err(ConnectRequestError::UnsupportedVersion(v))
        );
    }

    #[test]
    fn illegal_name_bytes_are_refused(req in connect_request_named(1), at in any::<usize>(),
                                      bad in prop_oneof![0u8..36, 127u8..=255]) {
        let mut req = req;
        let at = at % req.name.len();
        req.name[at] = bad;
        let r = ConnectRequest::parse(&req.emit());
        prop_assert!(matches!(r, Err(ConnectRequestError::IllegalNameByte(_))), "{:?}", r);
    }

    #[test]
    fn name_length_out_of_range_is_refused(req in connect_request(), len in prop_oneof![11u8..=255]) {
        let mut bytes = req.emit();
        let at = bytes.len() - req.name.len() - 1;
        bytes[at] = len;
        bytes.truncate(at + 1);
        bytes.extend(vec![b'a'; len as usize]);
        prop_assert_eq!(ConnectRequest::parse(&bytes), Err(ConnectRequestError::NameLength(len as i8)));
    }

    #[test]
    fn auth_method_list_round_trips(methods in vec("[!-~]{1,12}", 0..=6)) {
        let list = AuthMethodList { methods };
        let bytes = list.emit();
        prop_assert!(bytes.len() <= 91); // the library refuses longer lists
        prop_assert_eq!(bytes[0] as usize, bytes.len() - 1);
        prop_assert_eq!(AuthMethodList::parse(&bytes), Ok((list, bytes.len())));
        prop_assert!(incomplete(&AuthMethodList::parse(&bytes[..bytes.len() - 1])));
    }

    #[test]
    fn auth_list_longer_than_the_library_reads_is_refused(len in 91u8..=127, body in vec(33u8..=126, 127)) {
        let mut bytes = vec![len];
        bytes.extend(&body[..len as usize]);
        let r = AuthMethodList::parse(&bytes);
        prop_assert!(matches!(r, Err(DecodeError { kind: ErrorKind::BadValue { .. }, .. })), "{:?}", r);
    }

    #[test]
    fn auth_choice_round_trips(slots in any::<[[u8; 30]; 3]>()) {
        let c = AuthChoice { slots };
        let bytes = c.emit();
        prop_assert_eq!(bytes.len(), limits::AUTH_CHOICE_LEN);
        prop_assert_eq!(AuthChoice::parse(&bytes), Ok(c));
        prop_assert!(AuthChoice::parse(&bytes[..89]).is_err());
    }

    #[test]
    fn auth_choice_names_round_trip(names in vec("[!-~]{1,29}", 0..=3)) {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let c = AuthChoice::new(&refs);
        prop_assert_eq!(AuthChoice::parse(&c.emit()).unwrap().methods(), names);
    }

    #[test]
    fn session_accept_round_trips(v in any::<(i8, i8, i8)>(), name in vec(1u8..=255, 0..=31),
                                  patch in any::<bool>()) {
        let daemon_version = Version::new(v.0, v.1, if patch { v.2 } else { 0 });
        let reply = SessionReply::Accept {
            daemon_version,
            private_group: GroupName::new(&name).unwrap(),
        };
        let bytes = reply.emit(patch);
        prop_assert_eq!(bytes.len(), if patch { 5 } else { 4 } + name.len());
        prop_assert_eq!(bytes[0], 1);
        prop_assert_eq!(SessionReply::parse(&bytes, patch), Ok((reply, bytes.len())));
        for cut in 1..bytes.len() {
            prop_assert!(incomplete(&SessionReply::parse(&bytes[..cut], patch)));
        }
    }

    #[test]
    fn session_reject_round_trips(code in any::<i8>().prop_filter("not accept", |c| *c != 1),
                                  patch in any::<bool>()) {
        let reply = SessionReply::Reject(code);
        let bytes = reply.emit(patch);
        prop_assert_eq!(&bytes, &vec![code as u8]);
        prop_assert_eq!(SessionReply::parse(&bytes, patch), Ok((reply, 1)));
    }

    // ---- Messages ----

    #[test]
    fn header_round_trips_in_both_orders(h in header(), order in order()) {
        let bytes = h.emit(order);
        let (back, got_order) = MessageHeader::parse(&bytes).unwrap();
        prop_assert_eq!(got_order, order);
        prop_assert_eq!(back, h);
        prop_assert_eq!(back.sender.raw(), h.sender.raw());
        prop_assert_eq!(back.hint, h.hint); // raw, never swapped
        // The type word carries exactly this order's marker.
        let word = u32::from_le_bytes(bytes[..4].try_into().unwrap()) & ENDIAN_MARKER;
        prop_assert_eq!(word, if order == ByteOrder::Little { ENDIAN_MARKER } else { 0 });
        prop_assert_eq!(MessageHeader::parse(&bytes[..47]).unwrap_err().bytes_needed(), Some(48));
    }

    #[test]
    fn header_converts_between_orders(h in header()) {
        // What a daemon does with a foreign-order header: decode, emit natively.
        let be = h.emit(ByteOrder::Big);
        let le = h.emit(ByteOrder::Little);
        prop_assert_eq!(MessageHeader::parse(&be).unwrap().0, MessageHeader::parse(&le).unwrap().0);
        prop_assert_eq!(&be[4..36], &le[4..36]);
        prop_assert_eq!(&be[40..44], &le[40..44]);
    }

    #[test]
    fn hint_carries_mess_type(mess_type in any::<i16>(), order in order()) {
        let hint = hint_for(mess_type, order);
        prop_assert_eq!(mess_type_of_hint(hint), mess_type);
        prop_assert_eq!(ByteOrder::of_type_word(hint), order);
        prop_assert_eq!(u32::from_ne_bytes(hint) & !HINT_ALLOWED_BITS, 0);
    }

    #[test]
    fn message_round_trips_in_both_orders(m in message(), order in order(), tail in vec(any::<u8>(), 0..40)) {
        let bytes = m.emit(order);
        prop_assert_eq!(bytes.len(), m.encoded_len());
        let mut stream = bytes.clone();
        stream.extend(&tail); // the next message's bytes do not disturb this one
        let (back, got_order, used) = Message::parse(&stream).unwrap();
        prop_assert_eq!((got_order, used), (order, bytes.len()));
        prop_assert_eq!(raws(&back.groups), raws(&m.groups));
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.emit(order), bytes.clone());
        for cut in [0, 47, 48, bytes.len() - 1] {
            if cut < bytes.len() {
                let r = Message::parse(&bytes[..cut]);
                let needed = if cut < 48 { 48 } else { bytes.len() };
                prop_assert_eq!(r.unwrap_err().bytes_needed(), Some(needed));
            }
        }
    }

    #[test]
    fn reject_delivery_round_trips(m in message(), old in any::<u32>(), order in order()) {
        let r = RejectDelivery { message: m, old_type: old & !ENDIAN_MARKER };
        let bytes = r.emit(order);
        prop_assert_eq!(bytes.len(), r.message.encoded_len() + 4);
        let (back, got_order, used) = RejectDelivery::parse(&bytes).unwrap();
        prop_assert_eq!((got_order, used), (order, bytes.len()));
        prop_assert_eq!(back.emit(order), bytes.clone());
        prop_assert_eq!(back, r);
        prop_assert!(incomplete(&RejectDelivery::parse(&bytes[..bytes.len() - 1])));
    }

    #[test]
    fn membership_body_round_trips_in_both_orders(b in membership_body(), order in order()) {
        let bytes = b.emit(order);
        prop_assert_eq!(bytes.len(), b.encoded_len());
        prop_assert_eq!(MembershipBody::parse(&bytes, order), Ok(b.clone()));
        let off = order.read_u32(bytes[16..20].try_into().unwrap()) as usize;
        prop_assert_eq!(off, if b.vs_sets.is_empty() { 0 } else { b.vs_set_offset(b.my_vs_set) });
        // Read in the wrong order, it never panics (and rarely parses).
        let other = if order == ByteOrder::Little { ByteOrder::Big } else { ByteOrder::Little };
        let _ = MembershipBody::parse(&bytes, other);
        for cut in 0..bytes.len() {
            prop_assert!(incomplete(&MembershipBody::parse(&bytes[..cut], order)));
        }
        let gid = GroupId::parse(&bytes, order).unwrap();
        prop_assert_eq!(gid, b.group_id);
    }

    // ---- Names ----

    #[test]
    fn names_compare_up_to_nul(a in vec(1u8..=255, 0..=31), b in vec(1u8..=255, 0..=31),
                               g1 in any::<[u8; 32]>(), g2 in any::<[u8; 32]>()) {
        let field = |name: &[u8], garbage: [u8; 32]| {
            let mut raw = garbage;
            raw[..name.len()].copy_from_slice(name);
            raw[name.len()] = 0;
            GroupName::from_raw(raw)
        };
        let (a1, a2, b1) = (field(&a, g1), field(&a, g2), field(&b, g1));
        prop_assert_eq!(a1, a2);
        prop_assert_eq!(a1.cmp(&a2), std::cmp::Ordering::Equal);
        prop_assert_eq!(a1.as_bytes(), &a[..]);
        prop_assert_eq!(a1 == b1, a == b);
        prop_assert_eq!(a1.cmp(&b1), a.cmp(&b));
        let set: HashSet<GroupName> = [a1, a2].into_iter().collect();
        prop_assert_eq!(set.len(), 1);
        prop_assert_eq!(a1.clean(), GroupName::new(&a).unwrap());
        prop_assert_eq!(a1.clean().raw()[a.len()..].iter().all(|&x| x == 0), true);
        // The raw field is kept for byte-exact re-encoding.
        prop_assert_eq!(a1.raw(), &{ let mut r = g1; r[..a.len()].copy_from_slice(&a); r[a.len()] = 0; r });
    }

    #[test]
    fn private_group_splits(name in vec(legal_byte().prop_filter("no #", |b| *b != b'#'), 0..=10),
                            daemon in vec(legal_byte().prop_filter("no #", |b| *b != b'#'), 1..=19)) {
        let g = GroupName::private_group(&name, &daemon);
        prop_assert!(g.is_private());
        prop_assert_eq!(g.private_parts(), Some((&name[..], &daemon[..])));
    }

    // ---- Arbitrary bytes never panic ----

    #[test]
    fn parsers_never_panic(buf in vec(any::<u8>(), 0..600), n in any::<usize>(), patch in any::<bool>()) {
        if let Ok((req, used)) = ConnectRequest::parse(&buf) {
            prop_assert!(used <= buf.len());
            prop_assert_eq!(req.emit(), buf[..used].to_vec());
        }
        if let Ok((_, used)) = AuthMethodList::parse(&buf) {
            prop_assert!(used <= buf.len());
        }
        if let Ok(c) = AuthChoice::parse(&buf) {
            prop_assert_eq!(c.emit(), buf[..90].to_vec());
        }
        if let Ok((r, used)) = SessionReply::parse(&buf, patch) {
            prop_assert_eq!(r.emit(patch), buf[..used].to_vec());
        }
        if let Ok((h, order)) = MessageHeader::parse(&buf) {
            if marker_consistent(buf[..4].try_into().unwrap()) {
                prop_assert_eq!(h.emit(order).to_vec(), buf[..48].to_vec());
            }
            let _ = (h.mess_type(), h.raw_hint(), h.hint_order());
        }
        if let Ok((m, order, used)) = Message::parse(&buf) {
            prop_assert!(used <= buf.len());
            if marker_consistent(buf[..4].try_into().unwrap()) {
                prop_assert_eq!(m.emit(order), buf[..used].to_vec());
            }
        }
        if let Ok((r, order, used)) = RejectDelivery::parse(&buf) {
            prop_assert!(used <= buf.len());
            // The old-type word is written in the header's order, with its marker.
            let marker = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap()) & ENDIAN_MARKER;
            if marker_consistent(buf[..4].try_into().unwrap()) && marker(&buf[..4]) == marker(&buf[48..52]) {
                prop_assert_eq!(r.emit(order), buf[..used].to_vec());
            }
        }
        for order in [ByteOrder::Little, ByteOrder::Big] {
            if let Ok(b) = MembershipBody::parse(&buf, order) {
                let enc = b.emit(order);
                prop_assert!(enc.len() <= buf.len());
                let offset = order.read_u32(buf[16..20].try_into().unwrap());
                if !b.vs_sets.is_empty() || offset == 0 {
                    prop_assert_eq!(enc, buf[..b.encoded_len()].to_vec());
                }
            }
            let _ = GroupId::parse(&buf, order);
        }
        if let Ok(names) = parse_group_names(&buf, n % 40) {
            prop_assert_eq!(names.len(), n % 40);
        }
        let _ = parse_group_names(&buf, n);
    }

    /// Valid headers followed by random bytes reach deeper than pure noise.
    #[test]
    fn parsers_never_panic_after_a_plausible_header(h in header(), order in order(),
                                                    groups in 0i32..4, len in 0i32..200,
                                                    tail in vec(any::<u8>(), 0..400)) {
        let h = MessageHeader { num_groups: groups, data_len: len, ..h };
        let mut buf = h.emit(order).to_vec();
        buf.extend(&tail);
        match Message::parse(&buf) {
            Ok((m, _, used)) => {
                prop_assert_eq!(used, 48 + 32 * groups as usize + len as usize);
                prop_assert_eq!(m.emit(order), buf[..used].to_vec());
                let _ = MembershipBody::parse(&m.body, order);
            }
            Err(e) if e.is_truncated() => prop_assert!(e.bytes_needed().unwrap() > buf.len()),
            Err(e) => prop_assert!(false, "unexpected {}", e),
        }
        let _ = RejectDelivery::parse(&buf);
        let _ = MembershipBody::parse(&tail, order);
    }
}

/// Found by the `message` fuzz target: an old-type word whose marker differs
/// from the header's is read (marker removed) but re-encoded with the marker.
#[test]
fn reject_old_type_word_takes_the_header_marker() {
    let h = MessageHeader {
        service_type: service::REJECT_MESS,
        sender: GroupName::new(b"#a#b").unwrap(),
        num_groups: 0,
        hint: hint_for(0, ByteOrder::Little),
        data_len: 0,
    };
    let mut bytes = h.emit(ByteOrder::Little).to_vec();
    bytes.extend([0x10, 0, 0, 0]); // AGREED without the marker
    let (r, order, used) = RejectDelivery::parse(&bytes).unwrap();
    assert_eq!(
        (r.old_type, order, used),
        (service::AGREED_MESS, ByteOrder::Little, 52)
    );
    assert_eq!(&r.emit(order)[48..], &[0x90, 0, 0, 0x80]);
}

#[test]
fn old_library_without_patch_byte_round_trips_exhaustively() {
    // Every library version from 3.1 to 3.14 in both flag forms.
    for minor in 1..=14 {
        for flags in [0x00, 0x01, 0x10, 0x11] {
            let req = ConnectRequest {
                version: Version::new(3, minor, 0),
                flags,
                name: b"old".to_vec(),
            };
            let bytes = req.emit();
            assert_eq!(bytes.len(), 2 + 2 + 3, "3.{minor} sends no patch byte");
            assert_eq!(ConnectRequest::parse(&bytes), Ok((req.clone(), bytes.len())));
            assert_eq!(req.wants_membership(), flags & 1 == 1);
            assert_eq!(req.priority(), (flags >> 4) as i32);
        }
    }
    // 3.15 is the first with a patch byte.
    assert!(Version::new(3, 15, 0).has_patch_byte());
    assert!(!Version::new(3, 14, 99).has_patch_byte());
}
