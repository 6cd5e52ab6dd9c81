//! The local record path: the same session protocol over a Unix
//! `SOCK_SEQPACKET` socket beside the stream socket (`/tmp/<port>.seq`),
//! spoken only between spread-rs's own library and daemon. The original
//! library and every other binding keep using the stream socket, whose
//! bytes do not change.
//!
//! The bytes are those of the stream protocol, cut into records:
//!
//! * client to daemon: the connect request is one record, the 90-byte auth
//!   choice one record, and each message one record (header, names, body);
//! * daemon to client: the auth-method list (or a one-byte reject code) is
//!   one record, the accept reply (accept byte, version, name length, name;
//!   or a one-byte reject code) one record; a message with at most
//!   [`SINGLE_MAX_GROUPS`] names and at most [`SINGLE_MAX_DATA`] body bytes
//!   is one record, any other message is its 48-byte header as one record
//!   followed by the rest (the 4-byte old type of a reject, names, body) in
//!   records of [`CHUNK`] bytes, the last one shorter.
//!
//! The split lets a receiver whose buffers hold any single record read a
//! message with one `recvmsg`, while a larger one is seen by its header
//! first and can be left in the socket, unread, when the buffers are too
//! short (as the stream protocol allows).

use super::limits::{MAX_GROUPS_PER_MESSAGE, MESSAGE_HEADER_LEN};

/// What the record socket's path adds to the stream socket's.
pub const PATH_SUFFIX: &str = ".seq";
/// Most names of a message sent as one record.
pub const SINGLE_MAX_GROUPS: usize = MAX_GROUPS_PER_MESSAGE;
/// Most body bytes of a message sent as one record.
pub const SINGLE_MAX_DATA: usize = 8192;
/// Bytes of each record that carries the rest of a split message.
pub const CHUNK: usize = 64 * 1024;
/// Bytes a reject carries between its header and its names.
pub const REJECT_OLD_TYPE_LEN: usize = 4;
/// The largest single record: header, a reject's old type, names, body.
pub const SINGLE_MAX_RECORD: usize =
    MESSAGE_HEADER_LEN + REJECT_OLD_TYPE_LEN + SINGLE_MAX_GROUPS * 32 + SINGLE_MAX_DATA;

/// Whether a message with these header fields travels as one record.
pub fn single_record(num_groups: i32, data_len: i32) -> bool {
    (0..=SINGLE_MAX_GROUPS as i32).contains(&num_groups) && (0..=SINGLE_MAX_DATA as i32).contains(&data_len)
}

/// The record socket's path for the stream socket at `stream_path`.
pub fn record_path(stream_path: &std::path::Path) -> std::path::PathBuf {
    let mut p = stream_path.as_os_str().to_owned();
    p.push(PATH_SUFFIX);
    p.into()
}

/// Length of the record of a queued message (`len` bytes in all) that
/// starts `written` bytes into it, for the header fields given.
pub fn next_record_len(num_groups: i32, data_len: i32, len: usize, written: usize) -> usize {
    if written >= len {
        0
    } else if single_record(num_groups, data_len) {
        len - written
    } else if written == 0 {
        MESSAGE_HEADER_LEN.min(len)
    } else {
        (len - written).min(CHUNK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_messages_are_one_record_and_large_ones_header_then_chunks() {
        assert!(single_record(0, 0));
        assert!(single_record(100, 8192));
        assert!(!single_record(101, 0));
        assert!(!single_record(1, 8193));
        assert!(!single_record(-1, 0));
        let len = 48 + 32 + 100;
        assert_eq!(next_record_len(1, 100, len, 0), len);
        assert_eq!(next_record_len(1, 100, len, len), 0);
        let len = 48 + 32 + 144_000 - 32;
        let mut at = 0;
        let mut records = Vec::new();
        while at < len {
            let r = next_record_len(1, 144_000 - 32, len, at);
            records.push(r);
            at += r;
        }
        assert_eq!(records, vec![48, CHUNK, CHUNK, 144_000 - 2 * CHUNK]);
        assert_eq!(
            record_path(std::path::Path::new("/tmp/4803")),
            std::path::PathBuf::from("/tmp/4803.seq")
        );
    }
}
