//! Client sessions: the handshake, framing of client messages, and the
//! queue of bytes waiting to be written to the client.
//!
//! A session is fed the bytes its socket produced and answers with what it
//! decoded; it never touches the socket itself.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use spread_wire::client::limits::{
    AUTH_CHOICE_LEN, MAX_GROUPS_PER_MESSAGE, MAX_GROUP_NAME, MESSAGE_HEADER_LEN,
};
use spread_wire::client::records;
use spread_wire::client::service::*;
use spread_wire::client::{ConnectRequest, GroupName, MessageHeader, Version, HINT_ALLOWED_BITS};
use spread_wire::endian::ByteOrder;

/// Bytes shared by every receiver of a message (built once, never copied).
pub type Bytes = Arc<Vec<u8>>;

/// Message buffers whose receivers have all written them, kept for the
/// next messages: a client message then costs no allocation (an `Arc` and
/// its vector would be two, and a 1 KB message misses malloc's fast path).
/// One read can bring hundreds of messages, so the pool is bounded by the
/// room it keeps (256 KiB) rather than by a small count; buffers above
/// 4 KiB are not kept.
#[derive(Default)]
pub struct BufferPool {
    spare: Vec<Bytes>,
    /// Capacity of the buffers in `spare`.
    kept: usize,
}

impl BufferPool {
    const MAX_KEPT: usize = 256 * 1024;
    const MAX_CAPACITY: usize = 4096;

    /// An empty buffer with room for `len` bytes, owned by the caller alone.
    pub fn take(&mut self, len: usize) -> Bytes {
        // Pooled buffers are unshared (`recycle` keeps only those); one that
        // is not would be dropped here rather than reused.
        while let Some(mut bytes) = self.spare.pop() {
            if let Some(v) = Arc::get_mut(&mut bytes) {
                self.kept = self.kept.saturating_sub(v.capacity());
                v.clear();
                v.reserve_exact(len);
                return bytes;
            }
        }
        Arc::new(Vec::with_capacity(len))
    }

    /// Keep `bytes` if this was its last holder, it is small and there is room.
    pub fn recycle(&mut self, mut bytes: Bytes) {
        if let Some(v) = Arc::get_mut(&mut bytes) {
            let capacity = v.capacity();
            if capacity <= Self::MAX_CAPACITY && self.kept + capacity <= Self::MAX_KEPT {
                self.kept += capacity;
                self.spare.push(bytes);
            }
        }
    }
}

/// Identifies a client connection; chosen by the I/O shell.
pub type ConnId = usize;

/// Where a client connected from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Tcp(Ipv4Addr),
    Unix,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted; the connect request must arrive in one piece within 1 s.
    AwaitConnect { deadline: Instant },
    /// Auth methods offered; waiting for the client's 90-byte choice.
    AwaitAuth,
    /// Handshake done: client messages flow.
    Operational,
    /// Dropped: the shell will close the socket.
    Closed,
}

/// A complete message read from an operational client, already converted
/// to the daemon's byte order: `bytes` = header + names + body, exactly as
/// it will be delivered to receivers.
#[derive(Clone, Debug)]
pub struct ClientMessage {
    pub header: MessageHeader,
    pub bytes: Bytes,
}

impl ClientMessage {
    pub fn groups(&self) -> impl Iterator<Item = GroupName> + '_ {
        let n = self.header.num_groups.max(0) as usize;
        self.bytes[MESSAGE_HEADER_LEN..MESSAGE_HEADER_LEN + n * MAX_GROUP_NAME]
            .chunks_exact(MAX_GROUP_NAME)
            .map(|c| GroupName::from_raw(c.try_into().expect("32-byte chunk")))
    }

    pub fn first_group(&self) -> Option<GroupName> {
        self.groups().next()
    }
}

/// Why a client's message header is refused (the session is then dropped
/// without an answer, as the original does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    ServiceBits(u32),
    SenderName(GroupName),
    NotThisDaemon(GroupName),
    NotThisSession(GroupName),
    NumGroups(i32),
    /// A join or leave without a group.
    NoGroup,
    Hint(u32),
    DataLen(i32),
    TooLarge {
        data_len: i32,
        num_groups: i32,
        max: usize,
    },
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::ServiceBits(t) => write!(f, "illegal service type 0x{t:08x}"),
            HeaderError::SenderName(n) => write!(f, "sender field {n:?} is not a private group name"),
            HeaderError::NotThisDaemon(n) => write!(f, "sender {n:?} names another daemon"),
            HeaderError::NotThisSession(n) => write!(f, "sender {n:?} names another session"),
            HeaderError::NumGroups(n) => write!(f, "num_groups {n} outside 0..=100"),
            HeaderError::NoGroup => write!(f, "join or leave without a group"),
            HeaderError::Hint(h) => write!(f, "hint 0x{h:08x} has bits outside 0x80ffff80"),
            HeaderError::DataLen(n) => write!(f, "data_len {n} is negative or too large"),
            HeaderError::TooLarge {
                data_len,
                num_groups,
                max,
            } => write!(
                f,
                "data_len {data_len} + 32 x {num_groups} groups exceeds {} bytes",
                max - MESSAGE_HEADER_LEN
            ),
        }
    }
}

/// Check a client's header (already in host values) as the daemon must.
pub fn validate_header(
    header: &MessageHeader,
    session_name: &[u8],
    daemon_name: &[u8],
    max_body: usize,
) -> Result<(), HeaderError> {
    check_service(header.service_type, false)?;
    check_sender(header, daemon_name, Some(session_name))?;
    check_lengths(header, max_body)
}

/// Check the header of a client message that another daemon put on the
/// ring (`daemon_name`: that daemon's name in the configuration), as
/// strictly as one from a local client: a peer's message reaches every
/// session and group here. Two differences, both what the original's
/// daemons send: a join, leave or disconnect may carry one service bit too
/// (its disconnect is `KILL_MESS | SAFE_MESS`), and the body is bounded by
/// what arrived, not by this daemon's limit. A join or leave must name its
/// group.
pub fn validate_ring_header(header: &MessageHeader, daemon_name: &[u8]) -> Result<(), HeaderError> {
    check_service(header.service_type, true)?;
    check_sender(header, daemon_name, None)?;
    check_lengths(header, usize::MAX)?;
    if header.service_type & (JOIN_MESS | LEAVE_MESS) != 0 && header.num_groups < 1 {
        return Err(HeaderError::NoGroup);
    }
    Ok(())
}

/// Exactly one service or control bit (a control bit and one service bit
/// with `control_may_carry_service`), none of the daemons' own bits.
fn check_service(t: u32, control_may_carry_service: bool) -> Result<(), HeaderError> {
    let service_bits = (t & REGULAR_MESS).count_ones();
    let control_bits = (t & CONTROL_MESS).count_ones();
    let legal = match (service_bits, control_bits) {
        (1, 0) | (0, 1) => true,
        (1, 1) => control_may_carry_service,
        _ => false,
    };
    if !legal {
        return Err(HeaderError::ServiceBits(t));
    }
    // Stricter than the original, which passes every other bit on: bits only
    // daemons may set (membership causes, GROUPS_MESS, REJECT_MESS and the
    // internal markers) could corrupt other daemons' or clients' state. No
    // client library sets them; other unknown bits (e.g. the Flush library's
    // subgroup-cast bit) pass through as in the original.
    const DAEMON_ONLY: u32 = MEMBERSHIP_MESS
        | GROUPS_MESS
        | REJECT_MESS
        | RETRANSMIT_MESS
        | LATENCY_MESS
        | DUMMY_MESS
        | STATETRANS_MESS
        | DROP_RECV;
    if t & DAEMON_ONLY != 0 {
        return Err(HeaderError::ServiceBits(t));
    }
    Ok(())
}

/// The sender is a private group name of `daemon_name` (and of the session
/// `session_name`, when given).
fn check_sender(
    header: &MessageHeader,
    daemon_name: &[u8],
    session_name: Option<&[u8]>,
) -> Result<(), HeaderError> {
    // The original cuts the field at 31 bytes before splitting it.
    let sender = header.sender.clean();
    let legal = |s: &[u8]| s.iter().all(|&b| (36..=126).contains(&b));
    let (private, daemon) = sender.private_parts().ok_or(HeaderError::SenderName(sender))?;
    if private.is_empty()
        || private.len() > 10
        || daemon.is_empty()
        || daemon.len() >= 20
        || !legal(private)
        || !legal(daemon)
    {
        return Err(HeaderError::SenderName(sender));
    }
    if daemon != daemon_name {
        return Err(HeaderError::NotThisDaemon(sender));
    }
    if session_name.is_some_and(|s| private != s) {
        return Err(HeaderError::NotThisSession(sender));
    }
    Ok(())
}

/// Group count, hint bits and sizes.
fn check_lengths(header: &MessageHeader, max_body: usize) -> Result<(), HeaderError> {
    if !(0..=MAX_GROUPS_PER_MESSAGE as i32).contains(&header.num_groups) {
        return Err(HeaderError::NumGroups(header.num_groups));
    }
    if header.raw_hint() & !HINT_ALLOWED_BITS != 0 {
        return Err(HeaderError::Hint(header.raw_hint()));
    }
    if header.data_len < 0 || header.data_len as usize > max_body {
        return Err(HeaderError::DataLen(header.data_len));
    }
    let total = header.data_len as usize + MAX_GROUP_NAME * header.num_groups as usize;
    if total > max_body - MESSAGE_HEADER_LEN {
        return Err(HeaderError::TooLarge {
            data_len: header.data_len,
            num_groups: header.num_groups,
            max: max_body,
        });
    }
    Ok(())
}

/// Received bytes with a read cursor, so consuming a message does not
/// shift the rest of the buffer.
#[derive(Default)]
struct InputBuffer {
    data: Vec<u8>,
    start: usize,
}

impl InputBuffer {
    fn bytes(&self) -> &[u8] {
        &self.data[self.start..]
    }

    fn len(&self) -> usize {
        self.data.len() - self.start
    }

    fn extend(&mut self, bytes: &[u8]) {
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        } else if self.start >= 64 * 1024 {
            self.data.drain(..self.start);
            self.start = 0;
        }
        self.data.extend_from_slice(bytes);
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }
}

/// Cuts client messages out of the bytes a session received.
#[derive(Default)]
struct Framer {
    /// The header of a message whose names and body are still arriving.
    reading: Option<(MessageHeader, usize)>,
    /// The last sender field that passed the sender check (the same
    /// field passes again: the check reads only it and the names).
    accepted_sender: Option<[u8; MAX_GROUP_NAME]>,
}

impl Framer {
    /// The message at the start of `input` and its length in `input`.
    fn next(
        &mut self,
        input: &[u8],
        session_name: &[u8],
        daemon_name: &[u8],
        max_body: usize,
        pool: &mut BufferPool,
    ) -> Result<Option<(ClientMessage, usize)>, HeaderError> {
        if self.reading.is_none() {
            if input.len() < MESSAGE_HEADER_LEN {
                return Ok(None);
            }
            let (header, _order) = MessageHeader::parse(input).expect("48 bytes are present");
            // The sender check depends only on the field, this session's
            // name and the daemon's: a field already accepted passes again.
            check_service(header.service_type, false)?;
            if self.accepted_sender != Some(*header.sender.raw()) {
                check_sender(&header, daemon_name, Some(session_name))?;
                self.accepted_sender = Some(*header.sender.raw());
            }
            check_lengths(&header, max_body)?;
            let rest = header.num_groups as usize * MAX_GROUP_NAME + header.data_len as usize;
            self.reading = Some((header, rest));
        }
        let (header, rest) = self.reading.expect("set above");
        let total = MESSAGE_HEADER_LEN + rest;
        if input.len() < total {
            return Ok(None);
        }
        self.reading = None;
        let mut bytes = pool.take(total);
        let buffer = Arc::get_mut(&mut bytes).expect("a taken buffer is unshared");
        header.emit_into(ByteOrder::NATIVE, buffer);
        buffer.extend_from_slice(&input[MESSAGE_HEADER_LEN..total]);
        Ok(Some((ClientMessage { header, bytes }, total)))
    }
}

/// Bytes queued for the client, shared between all receivers of a message.
struct Pending {
    bytes: Bytes,
    written: usize,
    /// A message's `num_groups` and `data_len`, which decide how it is cut
    /// into records on the record path; `None` for a handshake unit (one
    /// record whatever its length).
    fields: Option<(i32, i32)>,
}

/// Length of the record of a unit of `len` bytes that starts `written`
/// bytes into it, on the record path.
fn next_record_len(fields: Option<(i32, i32)>, len: usize, written: usize) -> usize {
    match fields {
        None => len - written,
        Some((num_groups, data_len)) => records::next_record_len(num_groups, data_len, len, written),
    }
}

/// One client connection.
pub struct Session {
    pub conn: ConnId,
    pub peer: Peer,
    /// The socket's descriptor number (the original puts it in invented names).
    pub fd: i32,
    /// The engine moves it on through its connect deadlines, which must
    /// see a session leave [`Phase::AwaitConnect`].
    pub phase: Phase,
    pub version: Version,
    pub wants_membership: bool,
    pub priority: i32,
    /// The private name; empty until the connect request is accepted.
    pub name: Vec<u8>,
    pub private_group: GroupName,
    /// Bytes received and not yet consumed.
    input: InputBuffer,
    framer: Framer,
    out: VecDeque<Pending>,
    /// Output was consumed since the last [`Session::take_progress`].
    progressed: bool,
    /// Stamp of the last delivery queued here, so a message reaches a
    /// session once however many of its groups the session is in.
    pub last_delivery: u64,
}

impl Session {
    pub fn new(conn: ConnId, peer: Peer, fd: i32, now: Instant) -> Session {
        Session {
            conn,
            peer,
            fd,
            phase: Phase::AwaitConnect {
                deadline: now + std::time::Duration::from_secs(1),
            },
            version: Version::SPREAD_4_4_0,
            wants_membership: false,
            priority: 0,
            name: Vec::new(),
            private_group: GroupName::EMPTY,
            input: InputBuffer::default(),
            framer: Framer::default(),
            out: VecDeque::new(),
            progressed: false,
            last_delivery: 0,
        }
    }

    pub fn is_operational(&self) -> bool {
        self.phase == Phase::Operational
    }

    pub fn receive(&mut self, bytes: &[u8]) {
        self.input.extend(bytes);
    }

    pub fn input_len(&self) -> usize {
        self.input.len()
    }

    /// Decode the connect request from what has arrived.
    pub fn take_connect_request(
        &mut self,
    ) -> Result<ConnectRequest, spread_wire::client::ConnectRequestError> {
        let result = ConnectRequest::parse(self.input.bytes());
        if let Ok((_, used)) = &result {
            self.input.consume(*used);
        }
        result.map(|(req, _)| req)
    }

    /// The auth choice: one read of 90 bytes; `None` if fewer arrived.
    pub fn take_auth_choice(&mut self) -> Option<spread_wire::client::AuthChoice> {
        if self.input.len() < AUTH_CHOICE_LEN {
            return None;
        }
        let choice = spread_wire::client::AuthChoice::parse(&self.input.bytes()[..AUTH_CHOICE_LEN]).ok();
        self.input.consume(AUTH_CHOICE_LEN);
        choice
    }

    /// The next complete client message, if one has arrived.
    ///
    /// The header is validated as soon as it is whole, so a bad header is
    /// refused before its announced body is awaited.
    pub fn next_message(
        &mut self,
        daemon_name: &[u8],
        max_body: usize,
        pool: &mut BufferPool,
    ) -> Result<Option<ClientMessage>, HeaderError> {
        let framed = self
            .framer
            .next(self.input.bytes(), &self.name, daemon_name, max_body, pool)?;
        Ok(framed.map(|(msg, used)| {
            self.input.consume(used);
            msg
        }))
    }

    /// [`Session::next_message`] from bytes just read, when nothing is
    /// buffered: messages are framed straight out of the shell's read
    /// buffer, and `fresh` is advanced past each. What is left once this
    /// returns `Ok(None)` must be kept with [`Session::receive`].
    pub fn next_message_in(
        &mut self,
        fresh: &mut &[u8],
        daemon_name: &[u8],
        max_body: usize,
        pool: &mut BufferPool,
    ) -> Result<Option<ClientMessage>, HeaderError> {
        debug_assert_eq!(self.input.len(), 0, "buffered bytes come first");
        let framed = self.framer.next(fresh, &self.name, daemon_name, max_body, pool)?;
        Ok(framed.map(|(msg, used)| {
            *fresh = &fresh[used..];
            msg
        }))
    }

    /// Queue a message (header, names, body) for the client.
    pub fn queue(&mut self, bytes: Bytes) {
        let fields = MessageHeader::parse(&bytes).map_or((0, 0), |(h, _)| (h.num_groups, h.data_len));
        self.out.push_back(Pending {
            bytes,
            written: 0,
            fields: Some(fields),
        });
    }

    /// Queue a handshake unit (auth-method list, accept reply): one record
    /// on the record path.
    pub fn queue_unit(&mut self, bytes: Bytes) {
        self.out.push_back(Pending {
            bytes,
            written: 0,
            fields: None,
        });
    }

    /// Messages queued and not yet fully written.
    pub fn queued_messages(&self) -> usize {
        self.out.len()
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Unwritten bytes, oldest first, for a vectored write.
    pub fn output_chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.out.iter().map(|p| &p.bytes[p.written..])
    }

    /// The next records of the record path, oldest first (see
    /// [`spread_wire::client::records`]); each is consumed with
    /// [`Session::consume_output`] of its length.
    pub fn output_records(&self) -> impl Iterator<Item = &[u8]> {
        // A split message yields its header, then its chunks, before the
        // next message: the chunks of one unit follow one another.
        self.out.iter().flat_map(|p| {
            let mut at = p.written;
            std::iter::from_fn(move || {
                let n = next_record_len(p.fields, p.bytes.len(), at);
                (n > 0).then(|| {
                    let r = &p.bytes[at..at + n];
                    at += n;
                    r
                })
            })
        })
    }

    /// `n` bytes were written to the socket; buffers written in full go
    /// back to `pool`.
    pub fn consume_output(&mut self, mut n: usize, pool: &mut BufferPool) {
        self.progressed |= n > 0;
        while n > 0 {
            let Some(front) = self.out.front_mut() else { return };
            let left = front.bytes.len() - front.written;
            if n >= left {
                n -= left;
                if let Some(done) = self.out.pop_front() {
                    pool.recycle(done.bytes);
                }
            } else {
                front.written += n;
                n = 0;
            }
        }
    }

    /// Whether output was consumed since the last call.
    pub fn take_progress(&mut self) -> bool {
        std::mem::take(&mut self.progressed)
    }

    pub fn drop_output(&mut self) {
        self.out.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spread_wire::client::hint_for;

    fn header(t: u32, sender: &str, num_groups: i32, data_len: i32) -> MessageHeader {
        MessageHeader {
            service_type: t,
            sender: GroupName::new(sender.as_bytes()).unwrap(),
            num_groups,
            hint: hint_for(0, ByteOrder::Little),
            data_len,
        }
    }

    const MAX: usize = 144_000;

    #[test]
    fn header_rules_of_c21() {
        let ok = |h: MessageHeader| validate_header(&h, b"mallory", b"localhost", MAX);
        assert_eq!(ok(header(AGREED_MESS, "#mallory#localhost", 1, 10)), Ok(()));
        assert_eq!(
            ok(header(AGREED_MESS | SELF_DISCARD, "#mallory#localhost", 1, 10)),
            Ok(())
        );
        assert!(ok(header(AGREED_MESS | SAFE_MESS, "#mallory#localhost", 1, 0)).is_err());
        assert!(ok(header(JOIN_MESS | AGREED_MESS, "#mallory#localhost", 1, 0)).is_err());
        assert!(ok(header(0, "#mallory#localhost", 1, 0)).is_err());
        assert!(ok(header(AGREED_MESS | GROUPS_MESS, "#mallory#localhost", 1, 0)).is_err());
        assert!(ok(header(AGREED_MESS, "#alice#localhost", 1, 0)).is_err());
        assert!(ok(header(AGREED_MESS, "#mallory#other", 1, 0)).is_err());
        assert!(ok(header(AGREED_MESS, "mallory", 1, 0)).is_err());
        assert!(ok(header(AGREED_MESS, "#mallory#localhost", 101, 0)).is_err());
        assert!(ok(header(AGREED_MESS, "#mallory#localhost", -1, 0)).is_err());
        assert!(ok(header(AGREED_MESS, "#mallory#localhost", 0, 144_001)).is_err());
        assert!(ok(header(AGREED_MESS, "#mallory#localhost", 1, 143_921)).is_err());
        assert_eq!(ok(header(AGREED_MESS, "#mallory#localhost", 1, 143_920)), Ok(()));
        let mut h = header(AGREED_MESS, "#mallory#localhost", 1, 0);
        h.hint = 0x8100_0080u32.to_le_bytes();
        assert!(ok(h).is_err());
    }

    /// A peer's messages: any session of the daemon that sent them; a
    /// control request may carry a service bit (the original's disconnect
    /// is KILL | SAFE); a join or leave must name a group.
    #[test]
    fn ring_headers_are_checked_like_local_ones() {
        let ok = |h: MessageHeader| validate_ring_header(&h, b"d2");
        assert_eq!(ok(header(AGREED_MESS, "#bob#d2", 1, 10)), Ok(()));
        assert_eq!(ok(header(KILL_MESS | SAFE_MESS, "#bob#d2", 0, 0)), Ok(()));
        assert_eq!(ok(header(JOIN_MESS, "#carol#d2", 1, 0)), Ok(()));
        assert_eq!(ok(header(JOIN_MESS, "#bob#d2", 0, 0)), Err(HeaderError::NoGroup));
        assert_eq!(ok(header(LEAVE_MESS, "#bob#d2", 0, 0)), Err(HeaderError::NoGroup));
        assert!(ok(header(JOIN_MESS | LEAVE_MESS, "#bob#d2", 1, 0)).is_err());
        assert!(ok(header(AGREED_MESS | SAFE_MESS, "#bob#d2", 1, 0)).is_err());
        assert!(ok(header(AGREED_MESS | REJECT_MESS, "#bob#d2", 1, 0)).is_err());
        assert!(ok(header(AGREED_MESS, "#bob#d1", 1, 0)).is_err());
        assert!(ok(header(AGREED_MESS, "bob", 1, 0)).is_err());
        assert!(ok(header(AGREED_MESS, "#bob#d2", 101, 0)).is_err());
        assert!(ok(header(AGREED_MESS, "#bob#d2", 1, -1)).is_err());
        // Bodies beyond this daemon's own limit are the sender's business.
        assert_eq!(ok(header(AGREED_MESS, "#bob#d2", 1, 1_000_000)), Ok(()));
    }

    #[test]
    fn messages_are_framed_across_reads() {
        let now = Instant::now();
        let mut s = Session::new(1, Peer::Unix, 7, now);
        s.name = b"a".to_vec();
        let mut pool = BufferPool::default();
        let msg = spread_wire::client::Message {
            header: header(FIFO_MESS, "#a#d", 1, 3),
            groups: vec![GroupName::new(b"g").unwrap()],
            body: b"xyz".to_vec(),
        }
        .emit(ByteOrder::Big);
        s.receive(&msg[..50]);
        assert!(s.next_message(b"d", MAX, &mut pool).unwrap().is_none());
        s.receive(&msg[50..]);
        let m = s.next_message(b"d", MAX, &mut pool).unwrap().unwrap();
        assert_eq!(m.header.service_type, FIFO_MESS);
        assert_eq!(
            &m.bytes[..4],
            &ByteOrder::NATIVE.u32_bytes(FIFO_MESS | ByteOrder::NATIVE.marker())
        );
        assert_eq!(m.first_group(), GroupName::new(b"g"));
        assert_eq!(&m.bytes[m.bytes.len() - 3..], b"xyz");
        assert_eq!(s.input_len(), 0);
    }

    /// The sender check is skipped only for the field it already passed:
    /// another session's name after a good message is still refused.
    #[test]
    fn an_accepted_sender_does_not_admit_another() {
        let mut s = Session::new(1, Peer::Unix, 7, Instant::now());
        s.name = b"a".to_vec();
        let mut pool = BufferPool::default();
        let msg = |sender: &str| {
            spread_wire::client::Message {
                header: header(AGREED_MESS, sender, 1, 1),
                groups: vec![GroupName::new(b"g").unwrap()],
                body: b"x".to_vec(),
            }
            .emit(ByteOrder::Little)
        };
        for _ in 0..2 {
            s.receive(&msg("#a#d"));
            assert!(s.next_message(b"d", MAX, &mut pool).unwrap().is_some());
        }
        s.receive(&msg("#b#d"));
        assert_eq!(
            s.next_message(b"d", MAX, &mut pool).unwrap_err(),
            HeaderError::NotThisSession(GroupName::new(b"#b#d").unwrap())
        );
    }

    #[test]
    fn output_is_consumed_in_order() {
        let mut s = Session::new(1, Peer::Unix, 7, Instant::now());
        s.queue(Arc::new(b"abc".to_vec()));
        s.queue(Arc::new(b"de".to_vec()));
        let mut pool = BufferPool::default();
        s.consume_output(2, &mut pool);
        assert_eq!(s.output_chunks().collect::<Vec<_>>(), vec![&b"c"[..], &b"de"[..]]);
        s.consume_output(2, &mut pool);
        assert_eq!(s.queued_messages(), 1);
        s.consume_output(1, &mut pool);
        assert!(!s.has_output());
    }

    /// A written buffer is reused for the next message, which then holds
    /// exactly its own bytes; a buffer still shared is not taken back.
    #[test]
    fn written_buffers_are_reused() {
        let mut s = Session::new(1, Peer::Unix, 7, Instant::now());
        s.name = b"a".to_vec();
        let mut pool = BufferPool::default();
        let msg = |body: &[u8]| {
            spread_wire::client::Message {
                header: header(AGREED_MESS, "#a#d", 1, body.len() as i32),
                groups: vec![GroupName::new(b"g").unwrap()],
                body: body.to_vec(),
            }
            .emit(ByteOrder::Little)
        };
        s.receive(&msg(b"a long first body"));
        let first = s.next_message(b"d", MAX, &mut pool).unwrap().unwrap();
        let held = first.bytes.clone();
        s.queue(first.bytes);
        s.consume_output(held.len(), &mut pool);
        assert!(pool.spare.is_empty(), "still held elsewhere");
        drop(held);
        s.receive(&msg(b"a long first body"));
        let again = s.next_message(b"d", MAX, &mut pool).unwrap().unwrap();
        s.queue(again.bytes);
        s.consume_output(MESSAGE_HEADER_LEN + 32 + 17, &mut pool);
        assert_eq!(pool.spare.len(), 1);
        let reused = Arc::as_ptr(&pool.spare[0]);
        s.receive(&msg(b"xy"));
        let m = s.next_message(b"d", MAX, &mut pool).unwrap().unwrap();
        assert_eq!(Arc::as_ptr(&m.bytes), reused);
        assert_eq!(m.bytes.len(), MESSAGE_HEADER_LEN + 32 + 2);
        assert_eq!(&m.bytes[m.bytes.len() - 2..], b"xy");
        assert_eq!(m.first_group(), GroupName::new(b"g"));
    }

    /// Messages framed straight from a read: whole ones come out, the
    /// incomplete rest is kept and completed by the next read.
    #[test]
    fn messages_are_framed_from_fresh_bytes() {
        let mut s = Session::new(1, Peer::Unix, 7, Instant::now());
        s.name = b"a".to_vec();
        let mut pool = BufferPool::default();
        let one = spread_wire::client::Message {
            header: header(AGREED_MESS, "#a#d", 1, 3),
            groups: vec![GroupName::new(b"g").unwrap()],
            body: b"xyz".to_vec(),
        }
        .emit(ByteOrder::Big);
        let mut read = one.clone();
        read.extend_from_slice(&one[..60]);
        let mut fresh = &read[..];
        let m = s
            .next_message_in(&mut fresh, b"d", MAX, &mut pool)
            .unwrap()
            .unwrap();
        assert_eq!(&m.bytes[m.bytes.len() - 3..], b"xyz");
        assert_eq!(m.bytes.len(), one.len());
        assert!(s
            .next_message_in(&mut fresh, b"d", MAX, &mut pool)
            .unwrap()
            .is_none());
        assert_eq!(fresh.len(), 60);
        s.receive(fresh);
        s.receive(&one[60..]);
        let m = s.next_message(b"d", MAX, &mut pool).unwrap().unwrap();
        assert_eq!(&m.bytes[m.bytes.len() - 3..], b"xyz");
        assert_eq!(s.input_len(), 0);
    }
}
