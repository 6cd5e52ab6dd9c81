//! Every monitor datagram in the 4.4.0 monitor captures
//! (`shared/spread4-wire/monitor/*.jsonl`): decode, compare with the
//! capture's own field decoding, re-encode byte for byte, and round-trip
//! through the other byte order. Plus the small vectors in
//! `tests/vectors/monitor.txt`, which need no captures.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use spread_wire::daemon::{DecodeError, ErrorKind};
use spread_wire::endian::ByteOrder;
use spread_wire::monitor::*;

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/spread4-wire/monitor");
const VECTORS: &str = include_str!("vectors/monitor.txt");

fn capture_dir() -> PathBuf {
    // A worktree sits one level deeper than the main checkout; let it point
    // at the captures explicitly.
    match std::env::var_os("SPREAD4_WIRE_DIR") {
        Some(d) => Path::new(&d).join("monitor"),
        None => PathBuf::from(CAPTURES),
    }
}

fn capture_files() -> Option<Vec<PathBuf>> {
    let dir = capture_dir();
    if !dir.is_dir() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("captures missing at {} (CI=true)", dir.display());
        }
        println!("SKIP: captures not found at {}", dir.display());
        return None;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read capture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .jsonl captures in {}", dir.display());
    Some(files)
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn id(v: &Value) -> i32 {
    match v {
        Value::String(s) => u32::from(s.parse::<Ipv4Addr>().unwrap_or_else(|_| panic!("bad ip {s}"))) as i32,
        Value::Number(n) => n.as_i64().expect("integer") as i32,
        other => panic!("not an id: {other}"),
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn other(order: ByteOrder) -> ByteOrder {
    match order {
        ByteOrder::Little => ByteOrder::Big,
        ByteOrder::Big => ByteOrder::Little,
    }
}

fn check_header(h: &spread_wire::daemon::PacketHeader, f: &Value, what: &str) {
    assert_eq!(
        h.transmitter as i32,
        id(&f["transmiter_id"]),
        "{what}: transmiter_id"
    );
    assert_eq!(h.proc_id as i32, id(&f["proc_id"]), "{what}: proc_id");
    assert_eq!(h.memb_id.proc_id, id(&f["memb_id"][0]), "{what}: memb_id.proc_id");
    assert_eq!(
        i64::from(h.memb_id.time),
        int(&f["memb_id"][1]),
        "{what}: memb_id.time"
    );
    assert_eq!(i64::from(h.seq), int(&f["seq"]), "{what}: seq");
    assert_eq!(
        i64::from(h.token_round),
        int(&f["token_round"]),
        "{what}: token_round"
    );
    assert_eq!(i64::from(h.conf_hash), int(&f["conf_hash"]), "{what}: conf_hash");
    assert_eq!(i64::from(h.data_len), int(&f["data_len"]), "{what}: data_len");
}

/// Decode one captured command, check it against the capture, re-encode.
fn check_command(bytes: &[u8], f: &Value, what: &str) {
    let (pkt, order) = match CommandPacket::parse(bytes) {
        Ok(x) => x,
        Err(e) => {
            // The one malformed query rawmon.py sent on purpose (m08 case 7):
            // data_len 4 with no body. The original daemon refuses it too.
            assert_eq!(bytes.len(), 40, "{what}: {e}");
            assert_eq!(int(&f["data_len"]), 4, "{what}: {e}");
            assert!(
                matches!(
                    e,
                    DecodeError {
                        kind: ErrorKind::LengthMismatch { .. },
                        ..
                    }
                ),
                "{what}: {e}"
            );
            return;
        }
    };
    let want_order = if f["endian"] == "little" {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    assert_eq!(order, want_order, "{what}: order");
    check_header(&pkt.header, f, what);
    let m = &f["monitor"];
    assert_eq!(pkt.has_magic(), m["magic_ok"].as_bool().unwrap(), "{what}: magic");
    assert_eq!(
        i64::from(pkt.reply_port()),
        int(&m["reply_port"]),
        "{what}: reply port"
    );
    assert_eq!(
        pkt.monitor_id() as i32,
        id(&m["monitor_id"]),
        "{what}: monitor id"
    );
    let names = f["type_names"].as_str().unwrap();
    match &pkt.command {
        Command::Status { .. } => assert!(names.starts_with("STATUS"), "{what}"),
        Command::Reload { body } => {
            assert!(names.starts_with("RELOAD"), "{what}");
            assert!(body.is_empty(), "{what}");
        }
        Command::Partition(t) => {
            assert!(names.starts_with("PARTITION"), "{what}");
            let listed = m["partition_by_conf_index"].as_array().unwrap();
            for (i, v) in listed.iter().enumerate() {
                assert_eq!(i64::from(t.0[i]), int(v), "{what}: partition[{i}]");
            }
            let nonzero = m["nonzero"].as_object().unwrap();
            for (i, &v) in t.0.iter().enumerate() {
                let want = nonzero.get(&i.to_string()).map(int).unwrap_or(0);
                assert_eq!(i64::from(v), want, "{what}: partition[{i}]");
            }
        }
        Command::FlowControl(t) => {
            assert!(names.starts_with("FC"), "{what}");
            let nonzero = m["nonzero_rows"].as_object().unwrap();
            for (i, row) in t.0.iter().enumerate() {
                let want = nonzero
                    .get(&i.to_string())
                    .map(|r| [int(&r[0]), int(&r[1])])
                    .unwrap_or([0, 0]);
                assert_eq!([i64::from(row[0]), i64::from(row[1])], want, "{what}: fc row {i}");
            }
        }
    }
    assert_eq!(pkt.emit(order), bytes, "{what}: re-encode");
    let flipped = pkt.emit(other(order));
    assert_ne!(flipped, bytes, "{what}: the other order differs");
    let (back, o2) = CommandPacket::parse(&flipped).unwrap();
    assert_eq!((back, o2), (pkt.clone(), other(order)), "{what}: other order");
}

fn check_reply(bytes: &[u8], f: &Value, what: &str) {
    let (reply, order) = StatusReply::parse(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    check_header(&reply.header, f, what);
    assert!(
        reply.extension.is_none(),
        "{what}: the original sends no extension"
    );
    let s = &f["status"];
    let fields = reply.status.fields();
    assert_eq!(fields.len(), 30);
    for (name, value) in fields {
        let want = match name {
            "my_id" | "leader_id" => i64::from(id(&s[name])),
            _ => int(&s[name]),
        };
        assert_eq!(value, want, "{what}: status.{name}");
    }
    assert_eq!(reply.emit(order), bytes, "{what}: re-encode");
    let flipped = reply.emit(other(order));
    let (back, o2) = StatusReply::parse(&flipped).unwrap();
    assert_eq!((back, o2), (reply, other(order)), "{what}: other order");
}

#[test]
fn every_captured_monitor_packet() {
    let Some(files) = capture_files() else { return };
    let (mut commands, mut replies) = (0, 0);
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for (n, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            let rec: Value = serde_json::from_str(line).unwrap();
            let kind = rec["kind"].as_str().unwrap();
            let what = format!("{name}:{}: {kind}", n + 1);
            let bytes = hex(rec["hex"].as_str().unwrap());
            assert_eq!(bytes.len() as i64, int(&rec["len"]), "{what}");
            if kind.starts_with("STATUS reply") {
                check_reply(&bytes, &rec["fields"], &what);
                replies += 1;
            } else if ["STATUS query", "PARTITION", "FC", "RELOAD"]
                .iter()
                .any(|k| kind.starts_with(k))
            {
                check_command(&bytes, &rec["fields"], &what);
                commands += 1;
            }
        }
    }
    // 57 + 1 + 1 queries, 34 partitions, 18 FC, 19 reloads; 54 replies.
    assert_eq!((commands, replies), (130, 54));
}

/// `name hex` lines; names tell what must happen.
#[test]
fn vectors_in_the_repo() {
    let mut seen = 0;
    for line in VECTORS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (name, h) = line.split_once(' ').unwrap();
        let bytes = hex(h.trim());
        seen += 1;
        if name.starts_with("reply") {
            let (r, order) = StatusReply::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.emit(order), bytes, "{name}");
            assert_eq!(r.status.major_version, 4, "{name}");
        } else if name.starts_with("bad") {
            assert!(CommandPacket::parse(&bytes).is_err(), "{name} must be refused");
            assert!(
                StatusReply::parse(&bytes).is_err() || name.contains("query"),
                "{name}"
            );
        } else {
            let (c, order) = CommandPacket::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(c.emit(order), bytes, "{name}");
            assert!(c.has_magic(), "{name}");
            let want = name.split('_').next().unwrap();
            assert_eq!(c.command.name().to_lowercase(), want, "{name}");
        }
    }
    assert!(seen >= 8);
}
