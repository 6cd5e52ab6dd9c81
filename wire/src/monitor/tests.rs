use super::*;
use crate::error::ErrorKind;

#[test]
fn status_query_as_the_original_sends_it() {
    // m01: STATUS query from 10.99.0.1, reply port 6543, little-endian.
    let id = crate::daemon::id_of("10.99.0.1".parse().unwrap());
    let q = CommandPacket::new(id, 6543, Command::Status { body: vec![] });
    let bytes = q.emit(ByteOrder::Little);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "80000081000000000100630abbace500000000008f190000000000004c0400000000000000000000"
    );
    let (back, order) = CommandPacket::parse(&bytes).unwrap();
    assert_eq!(order, ByteOrder::Little);
    assert_eq!(back, q);
    assert!(back.has_magic());
    assert_eq!(back.reply_port(), 6543);
}

#[test]
fn truncated_partition_names_the_entry_and_offset() {
    let q = CommandPacket::new(
        1,
        6543,
        Command::Partition(Box::new(PartitionTable::from_entries(&[0, 0, 1]))),
    );
    let mut bytes = q.emit(ByteOrder::Big);
    bytes.truncate(40 + 10);
    // Keep data_len consistent with the shorter body to reach the table parser.
    bytes[32..34].copy_from_slice(&10i16.to_be_bytes());
    let err = CommandPacket::parse(&bytes).unwrap_err();
    assert_eq!(
        err,
        DecodeError {
            field: "partition_entry",
            offset: 50,
            kind: ErrorKind::Truncated { needed: 2 }
        }
    );
}

#[test]
fn length_mismatch_is_refused() {
    let q = CommandPacket::new(1, 6543, Command::Status { body: vec![] });
    let mut bytes = q.emit(ByteOrder::Little);
    bytes[32] = 4; // data_len 4, no body (m08 case 7)
    assert!(matches!(
        CommandPacket::parse(&bytes),
        Err(DecodeError {
            field: "data_len",
            kind: ErrorKind::LengthMismatch { .. },
            ..
        })
    ));
}

#[test]
fn status_reply_extension_round_trips_and_is_optional() {
    let status = StatusRecord {
        sec: 11,
        num_procs: 3,
        major_version: 4,
        minor_version: 4,
        ..StatusRecord::default()
    };
    let plain = StatusReply::new(7, status, None);
    let bytes = plain.emit(ByteOrder::Little);
    assert_eq!(bytes.len(), 136);
    assert_eq!(StatusReply::parse(&bytes).unwrap().0, plain);
    let ext = StatusReply::new(
        7,
        status,
        Some(StatusExtension {
            counters: vec![("dropped_foreign_datagrams".into(), 5), ("big".into(), -2)],
        }),
    );
    for order in [ByteOrder::Little, ByteOrder::Big] {
        let bytes = ext.emit(order);
        let (back, o) = StatusReply::parse(&bytes).unwrap();
        assert_eq!((back, o), (ext.clone(), order));
        // The first 136 bytes are what the original spmonitor reads: the
        // record is intact there.
        assert_eq!(
            &bytes[40..136],
            &StatusReply::new(7, status, None).emit(order)[40..136]
        );
    }
}

#[test]
fn fc_window_row_follows_the_daemon_count() {
    let mut t = FcTable::KEEP_ALL;
    t.0[3] = [80, 0];
    assert_eq!(t.window(3), Some(80));
    assert_eq!(t.window(128), None);
}
