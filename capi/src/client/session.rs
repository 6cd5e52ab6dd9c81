//! Open sessions of this process and what can be done on them.
//!
//! Each session has a receive lock and a send lock, so one thread can wait
//! in a receive while others send on the same mailbox. The table lock is
//! held only to look sessions up, never across I/O.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use spread_wire::client::limits::{MAX_GROUP_NAME, MESSAGE_HEADER_LEN};
use spread_wire::client::names::is_legal_group_name;
use spread_wire::client::records;
use spread_wire::client::service::{
    JOIN_MESS, KILL_MESS, LEAVE_MESS, REGULAR_MESS, REG_MEMB_MESS, REJECT_MESS,
};
use spread_wire::client::{hint_for, GroupName, MessageHeader};
use spread_wire::endian::ByteOrder;

use super::connect::Accepted;
use super::membership::flip_membership_body;
use super::stream::{Stream, INLINE_SLICES};
use crate::error::SpError;

/// A mailbox: the session's socket descriptor.
pub type Mailbox = i32;

/// Sessions one process may hold (as the original library).
pub const MAX_SESSIONS: usize = 1024;
/// Largest record the record path sends from one gathered buffer (see
/// [`Session::send`]); larger ones go out as they are, in pieces.
const RECORD_SEND_INLINE: usize = 4096;

/// Largest body plus destination names a client may send (stock 4.4.0).
pub const MAX_MESSAGE_BODY_LEN: usize = spread_wire::client::limits::DEFAULT_MAX_MESSAGE_BODY;
/// Destinations per message the daemon accepts.
pub const MAX_GROUPS_PER_MESSAGE: usize = spread_wire::client::limits::MAX_GROUPS_PER_MESSAGE;

/// A 32-byte group name slot as programs lay them out.
pub type NameSlot = [u8; MAX_GROUP_NAME];

/// A header read from the socket whose message has not been consumed yet.
#[derive(Clone, Copy)]
struct PendingHeader {
    header: MessageHeader,
    order: ByteOrder,
    /// Record path: the header was only peeked; the whole one-record
    /// message is still queued.
    whole_in_socket: bool,
}

/// The receive side of a session, under its lock.
struct RecvState {
    pending: Option<PendingHeader>,
}

pub struct Session {
    stream: Stream,
    /// Clean padding (built by `GroupName::truncated`): sent as is.
    private_group: GroupName,
    /// Set when the socket failed: further calls get `NET_ERROR_ON_SESSION`.
    broken: AtomicBool,
    /// True while the table holds this session under its mailbox; cleared
    /// (under the table's write lock) when it is killed or replaced.
    registered: AtomicBool,
    recv: Mutex<RecvState>,
    /// Record path: a pending header was peeked (the socket still holds
    /// its 48 bytes, which `SP_poll` does not count, as on the stream).
    peeked: AtomicBool,
    send: Mutex<()>,
}

/// What a receive reports besides its return value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub service_type: u32,
    pub sender: NameSlot,
    pub num_groups: i32,
    pub mess_type: i16,
    pub endian_mismatch: i32,
}

/// The outcome of a receive: the return code and, when the program's output
/// arguments are to be written, their values.
pub type ReceiveOutcome = (i32, Option<Delivery>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The open sessions, indexed by mailbox (descriptors are small numbers,
/// handed out lowest first): a lookup is an index under a read lock, no hash.
struct Table {
    slots: Vec<Option<Arc<Session>>>,
    count: usize,
}

static TABLE: RwLock<Table> = RwLock::new(Table {
    slots: Vec::new(),
    count: 0,
});

fn read_table() -> RwLockReadGuard<'static, Table> {
    TABLE.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_table() -> RwLockWriteGuard<'static, Table> {
    TABLE.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn slot_index(mbox: Mailbox) -> Option<usize> {
    usize::try_from(mbox).ok()
}

impl Table {
    fn remove(&mut self, mbox: Mailbox) -> Option<Arc<Session>> {
        let removed = self.slots.get_mut(slot_index(mbox)?)?.take()?;
        removed.registered.store(false, Ordering::Release);
        self.count -= 1;
        Some(removed)
    }
}

/// Register an accepted session; returns its mailbox.
pub fn register(accepted: Accepted) -> Result<Mailbox, SpError> {
    let mbox = accepted.stream.raw_fd();
    let private_group = GroupName::truncated(&accepted.private_group);
    let session = Arc::new(Session {
        stream: accepted.stream,
        private_group,
        broken: AtomicBool::new(false),
        registered: AtomicBool::new(true),
        recv: Mutex::new(RecvState { pending: None }),
        peeked: AtomicBool::new(false),
        send: Mutex::new(()),
    });
    let Some(index) = slot_index(mbox) else {
        return Err(SpError::CouldNotConnect);
    };
    let mut t = write_table();
    if t.count >= MAX_SESSIONS {
        // Dropping the session closes its socket.
        return Err(SpError::RejectQuota);
    }
    if let Some(stale) = t.remove(mbox) {
        // The program closed a mailbox itself and the descriptor number came
        // back for this session: the stale entry must not close it again.
        log::warn!("mailbox {mbox} replaced a session closed behind the library's back");
        match Arc::try_unwrap(stale) {
            Ok(old) => old.stream.forget(),
            Err(shared) => std::mem::forget(shared),
        }
    }
    if t.slots.len() <= index {
        t.slots.resize(index + 1, None);
    }
    t.slots[index] = Some(session);
    t.count += 1;
    Ok(mbox)
}

/// Look a mailbox up.
pub fn lookup(mbox: Mailbox) -> Result<Arc<Session>, SpError> {
    let t = read_table();
    slot_index(mbox)
        .and_then(|i| t.slots.get(i))
        .and_then(Option::as_ref)
        .cloned()
        .ok_or(SpError::IllegalSession)
}

/// Forget a session and close its connection. A thread still blocked on it
/// wakes up; the descriptor is released when the last user lets go of it.
pub fn kill(mbox: Mailbox) -> bool {
    let removed = write_table().remove(mbox);
    match removed {
        Some(s) => {
            s.stream.shutdown();
            true
        }
        None => false,
    }
}

/// Number of open sessions.
pub fn count() -> usize {
    read_table().count
}

impl Session {
    pub fn mailbox(&self) -> Mailbox {
        self.stream.raw_fd()
    }

    pub fn private_group(&self) -> &GroupName {
        &self.private_group
    }

    fn check_usable(&self) -> Result<(), SpError> {
        if self.broken.load(Ordering::Acquire) {
            Err(SpError::NetErrorOnSession)
        } else {
            Ok(())
        }
    }

    /// Whether the table still holds this session (not killed meanwhile).
    fn still_registered(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    fn fail(&self) -> SpError {
        if self.still_registered() {
            self.broken.store(true, Ordering::Release);
        }
        SpError::ConnectionClosed
    }

    /// Send one message: `service_type` (a service or control type), the
    /// destination names as given, the body in pieces. Returns the body size.
    pub fn send(
        self: &Arc<Self>,
        service_type: u32,
        groups: &[NameSlot],
        mess_type: i16,
        body: &[&[u8]],
    ) -> Result<i32, SpError> {
        self.check_usable()?;
        let mess_len: usize = body.iter().map(|b| b.len()).sum();
        if mess_len + groups.len() * MAX_GROUP_NAME > MAX_MESSAGE_BODY_LEN {
            return Err(SpError::MessageTooLong);
        }
        let header = MessageHeader {
            service_type,
            sender: self.private_group,
            num_groups: groups.len() as i32,
            hint: hint_for(mess_type, ByteOrder::NATIVE),
            data_len: mess_len as i32,
        };
        let head = header.emit(ByteOrder::NATIVE);
        let total = MESSAGE_HEADER_LEN + groups.len() * MAX_GROUP_NAME + mess_len;
        // Header, names (one contiguous array), then the body's pieces: on
        // the stack unless the body comes in many pieces.
        let pieces = [&head[..], groups.as_flattened()]
            .into_iter()
            .chain(body.iter().copied());
        let _guard = lock(&self.send);
        let written = if self.stream.is_records() && total <= RECORD_SEND_INLINE {
            // A small record leaves from one buffer: gathering it costs less
            // than the kernel's walk over the pieces (see `write_all_one`).
            let mut buf = [MaybeUninit::<u8>::uninit(); RECORD_SEND_INLINE];
            let mut at = 0;
            for piece in pieces {
                // SAFETY: the pieces add up to `total` bytes, at most the
                // buffer's length, so each copy stays inside `buf`; source
                // and destination do not overlap (one is on this stack frame).
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        piece.as_ptr(),
                        buf.as_mut_ptr().add(at).cast::<u8>(),
                        piece.len(),
                    );
                }
                at += piece.len();
            }
            // SAFETY: the copies above initialised the first `total` bytes.
            let record = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), total) };
            self.stream.write_all_one(record)
        } else if let [one] = body {
            // The common case (SP_multicast): three slices, no loop.
            let mut slices = [
                IoSlice::new(&head),
                IoSlice::new(groups.as_flattened()),
                IoSlice::new(one),
            ];
            self.stream.write_all_slices(&mut slices, total)
        } else if body.len() + 2 <= INLINE_SLICES {
            let mut slices = [IoSlice::new(&[]); INLINE_SLICES];
            for (slot, piece) in slices.iter_mut().zip(pieces) {
                *slot = IoSlice::new(piece);
            }
            self.stream.write_all_slices(&mut slices[..body.len() + 2], total)
        } else {
            let mut slices: Vec<IoSlice<'_>> = pieces.map(IoSlice::new).collect();
            self.stream.write_all_slices(&mut slices, total)
        };
        match written {
            Ok(()) => Ok(mess_len as i32),
            Err(_) => Err(self.fail()),
        }
    }

    /// Join (`leave == false`) or leave a group: `SP_join` / `SP_leave`.
    /// The name must be a legal group name (else `ILLEGAL_GROUP`).
    pub fn group_control(self: &Arc<Self>, group: &[u8], leave: bool) -> Result<i32, SpError> {
        if !is_legal_group_name(group) {
            return Err(SpError::IllegalGroup);
        }
        let mut slot = [0u8; MAX_GROUP_NAME];
        slot[..group.len()].copy_from_slice(group);
        let kind = if leave { LEAVE_MESS } else { JOIN_MESS };
        self.send(kind, &[slot], 0, &[])
    }

    /// Bytes the daemon sent that are not read yet (`SP_poll`).
    pub fn pending_bytes(&self) -> Result<i32, SpError> {
        let n = self.stream.pending_bytes().map_err(|_| SpError::IllegalSession)?;
        if self.peeked.load(Ordering::Acquire) {
            Ok((n - MESSAGE_HEADER_LEN as i32).max(0))
        } else {
            Ok(n)
        }
    }

    /// The control message `SP_disconnect` sends before closing.
    pub fn send_kill(self: &Arc<Self>) {
        let own = *self.private_group.raw();
        let _ = self.send(KILL_MESS, &[own], 0, &[]);
    }

    /// Receive one message into the program's buffers.
    ///
    /// `max_groups` and the element sizes come from the program and are
    /// compared as the original does; `groups` holds `max(max_groups, 0)`
    /// slots. `drop` is the `DROP_RECV` flag.
    pub fn receive(
        self: &Arc<Self>,
        drop: bool,
        max_groups: i32,
        groups: &mut [NameSlot],
        body: &mut [&mut [u8]],
    ) -> ReceiveOutcome {
        if let Err(e) = self.check_usable() {
            return (e.code(), None);
        }
        let mut state = lock(&self.recv);
        if !self.still_registered() {
            return (SpError::IllegalSession.code(), None);
        }
        if let Err(e) = self.check_usable() {
            return (e.code(), None);
        }
        if self.stream.is_records() {
            return self.receive_records(&mut state, drop, max_groups, groups, body);
        }
        let pending = &mut state.pending;
        let PendingHeader { header, order, .. } = match *pending {
            Some(p) => p,
            None => {
                let mut raw = [0u8; MESSAGE_HEADER_LEN];
                if self.stream.read_exact(&mut raw).is_err() {
                    return (self.fail().code(), None);
                }
                match MessageHeader::parse(&raw) {
                    Ok((header, order)) => PendingHeader {
                        header,
                        order,
                        whole_in_socket: false,
                    },
                    Err(_) => return (SpError::Bug.code(), None),
                }
            }
        };
        let max_mess_len: i32 = body
            .iter()
            .map(|b| b.len() as i64)
            .sum::<i64>()
            .min(i32::MAX as i64) as i32;
        if header.num_groups < 0 || header.data_len < 0 {
            return (SpError::IllegalMessage.code(), None);
        }
        // Data or a reject: the header carries a mess_type.
        let regular_or_reject = header.service_type & (REGULAR_MESS | REJECT_MESS) != 0;

        let mut sender = [0u8; MAX_GROUP_NAME];
        let name = header.sender.as_bytes();
        sender[..name.len()].copy_from_slice(name);

        if !drop && (header.num_groups > max_groups || header.data_len > max_mess_len) {
            // Keep the header; the program may retry with larger buffers.
            *pending = Some(PendingHeader {
                header,
                order,
                whole_in_socket: false,
            });
            let short_groups = header.num_groups > max_groups;
            let d = Delivery {
                service_type: header.service_type,
                sender,
                num_groups: if short_groups { -header.num_groups } else { 0 },
                mess_type: if regular_or_reject { header.mess_type() } else { 0 },
                endian_mismatch: if header.data_len > max_mess_len {
                    -header.data_len
                } else {
                    0
                },
            };
            let code = if d.num_groups != 0 {
                SpError::GroupsTooShort
            } else {
                SpError::BufferTooShort
            };
            return (code.code(), Some(d));
        }
        // From here on the message is consumed, whatever happens.
        *pending = None;

        let mut old_type = None;
        if header.service_type & REJECT_MESS != 0 {
            let mut old = [0u8; 4];
            if self.stream.read_exact(&mut old).is_err() {
                return (self.fail().code(), None);
            }
            old_type = Some(old);
        }

        // Names into the program's array, then the body into its buffers,
        // in one vectored read; what does not fit is read and dropped.
        let want_groups = header.num_groups.min(max_groups).max(0) as usize;
        let short_groups = header.num_groups > max_groups;
        let want_body = header.data_len.min(max_mess_len).max(0) as usize;
        let short_body = header.data_len > max_mess_len;
        {
            let names = groups.as_flattened_mut();
            let names_len = (want_groups * MAX_GROUP_NAME).min(names.len());
            let (names, _) = names.split_at_mut(names_len);
            if short_groups {
                // The excess names come before the body: read in two steps.
                if self.stream.read_exact(names).is_err()
                    || self
                        .stream
                        .discard((header.num_groups as usize - want_groups) * MAX_GROUP_NAME)
                        .is_err()
                {
                    return (self.fail().code(), None);
                }
                if read_body(&self.stream, body, want_body, None).is_err() {
                    return (self.fail().code(), None);
                }
            } else if read_body(&self.stream, body, want_body, Some(names)).is_err() {
                return (self.fail().code(), None);
            }
        }
        if short_body && self.stream.discard(header.data_len as usize - want_body).is_err() {
            return (self.fail().code(), None);
        }

        self.finish(
            &header,
            order,
            old_type,
            (want_groups, short_groups),
            (want_body, short_body),
            groups,
            body,
        )
    }
}

/// What a one-`recvmsg` read of the record path produced.
enum InPlace {
    /// The whole message, delivered.
    Done(ReceiveOutcome),
    /// The header of a split message (consumed; the rest follows in records).
    Header(PendingHeader),
}

impl Session {
    /// [`Session::receive`] on the record path (see
    /// [`spread_wire::client::records`]). With buffers that hold any
    /// one-record message (100 names, 8,192 body bytes) a message is read
    /// with one `recvmsg`, names and body straight into the program's
    /// buffers; otherwise the header is peeked first, so a message the
    /// buffers cannot hold stays in the socket, unread, exactly as a
    /// stream's does after its header (and `select` still sees it).
    fn receive_records(
        &self,
        state: &mut RecvState,
        drop: bool,
        max_groups: i32,
        groups: &mut [NameSlot],
        body: &mut [&mut [u8]],
    ) -> ReceiveOutcome {
        let max_mess_len: i32 = body
            .iter()
            .map(|b| b.len() as i64)
            .sum::<i64>()
            .min(i32::MAX as i64) as i32;
        let roomy = max_groups >= records::SINGLE_MAX_GROUPS as i32
            && groups.len() >= records::SINGLE_MAX_GROUPS
            && max_mess_len as usize >= records::SINGLE_MAX_DATA;
        let pending = match state.pending.take() {
            Some(p) => p,
            None if roomy => match self.read_record_in_place(groups, body) {
                Ok(InPlace::Done(outcome)) => return outcome,
                Ok(InPlace::Header(p)) => p,
                Err(code) => return (code, None),
            },
            None => match self.peek_header() {
                Ok(p) => p,
                Err(code) => return (code, None),
            },
        };
        let header = pending.header;
        if header.num_groups < 0 || header.data_len < 0 {
            // Our daemon never sends such a header: the framing is lost.
            return (self.fail().code(), None);
        }
        let short_groups = header.num_groups > max_groups;
        let short_body = header.data_len > max_mess_len;
        if !drop && (short_groups || short_body) {
            // Keep the header; the program may retry with larger buffers.
            state.pending = Some(pending);
            self.peeked.store(pending.whole_in_socket, Ordering::Release);
            return too_short(&header, short_groups, short_body);
        }
        self.peeked.store(false, Ordering::Release);
        let payload = match self.read_payload(&pending) {
            Ok(p) => p,
            Err(code) => return (code, None),
        };
        let want_groups = header.num_groups.min(max_groups).max(0) as usize;
        let want_body = header.data_len.min(max_mess_len).max(0) as usize;
        let old_type = distribute(&payload, &header, want_groups, want_body, groups, body);
        self.finish(
            &header,
            pending.order,
            old_type,
            (want_groups, short_groups),
            (want_body, short_body),
            groups,
            body,
        )
    }

    /// One `recv` of the next record into a buffer on this stack frame,
    /// then the names and body copied where the program wants them: one
    /// buffer costs the kernel less than scattering the record over the
    /// program's pieces, and the copy is cheaper than the difference. The
    /// buffers hold any one-record message, so one never has to be left
    /// unread.
    fn read_record_in_place(&self, groups: &mut [NameSlot], body: &mut [&mut [u8]]) -> Result<InPlace, i32> {
        let mut buf = [MaybeUninit::<u8>::uninit(); records::SINGLE_MAX_RECORD];
        let Ok((n, truncated)) = self.stream.recv_record_uninit(&mut buf) else {
            return Err(self.fail().code());
        };
        if n < MESSAGE_HEADER_LEN || truncated {
            return Err(self.fail().code());
        }
        // SAFETY: the kernel initialised the first `n` bytes of `buf` (not
        // more than its length: the record was not cut).
        let record = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
        let Ok((header, order)) = MessageHeader::parse(record) else {
            return Err(SpError::Bug.code());
        };
        if !records::single_record(header.num_groups, header.data_len) {
            if n != MESSAGE_HEADER_LEN {
                return Err(self.fail().code());
            }
            return Ok(InPlace::Header(PendingHeader {
                header,
                order,
                whole_in_socket: false,
            }));
        }
        let reject = header.service_type & REJECT_MESS != 0;
        let num_groups = header.num_groups as usize;
        let data_len = header.data_len as usize;
        let extra = if reject { records::REJECT_OLD_TYPE_LEN } else { 0 };
        if n != MESSAGE_HEADER_LEN + extra + num_groups * MAX_GROUP_NAME + data_len {
            return Err(self.fail().code());
        }
        let old_type = distribute(
            &record[MESSAGE_HEADER_LEN..],
            &header,
            num_groups,
            data_len,
            groups,
            body,
        );
        Ok(InPlace::Done(self.finish(
            &header,
            order,
            old_type,
            (num_groups, false),
            (data_len, false),
            groups,
            body,
        )))
    }

    /// The next message's header, for buffers that may not hold it: peeked
    /// from a one-record message (which stays queued whole), read from a
    /// split one (its header is a record of its own).
    fn peek_header(&self) -> Result<PendingHeader, i32> {
        let mut head = [0u8; MESSAGE_HEADER_LEN];
        let peeked = self
            .stream
            .recv_record(&mut [IoSliceMut::new(&mut head)], libc::MSG_PEEK);
        let Ok((n, _)) = peeked else {
            return Err(self.fail().code());
        };
        if n < MESSAGE_HEADER_LEN {
            return Err(self.fail().code());
        }
        let Ok((header, order)) = MessageHeader::parse(&head) else {
            return Err(SpError::Bug.code());
        };
        if records::single_record(header.num_groups, header.data_len) {
            return Ok(PendingHeader {
                header,
                order,
                whole_in_socket: true,
            });
        }
        match self.stream.recv_record(&mut [IoSliceMut::new(&mut head)], 0) {
            Ok((MESSAGE_HEADER_LEN, false)) => Ok(PendingHeader {
                header,
                order,
                whole_in_socket: false,
            }),
            _ => Err(self.fail().code()),
        }
    }

    /// What follows the header of `pending`'s message (a reject's old type,
    /// names, body), read off the socket: the rest of its one record, or
    /// the records of a split message.
    fn read_payload(&self, pending: &PendingHeader) -> Result<Vec<u8>, i32> {
        let header = &pending.header;
        let extra = if header.service_type & REJECT_MESS != 0 {
            records::REJECT_OLD_TYPE_LEN
        } else {
            0
        };
        let rest = extra + header.num_groups as usize * MAX_GROUP_NAME + header.data_len as usize;
        let mut payload = vec![0u8; rest];
        if pending.whole_in_socket {
            let mut head = [0u8; MESSAGE_HEADER_LEN];
            let got = self.stream.recv_record(
                &mut [IoSliceMut::new(&mut head), IoSliceMut::new(&mut payload)],
                0,
            );
            return match got {
                Ok((n, false)) if n == MESSAGE_HEADER_LEN + rest => Ok(payload),
                _ => Err(self.fail().code()),
            };
        }
        let mut at = 0;
        while at < rest {
            let chunk = (rest - at).min(records::CHUNK);
            match self
                .stream
                .recv_record(&mut [IoSliceMut::new(&mut payload[at..at + chunk])], 0)
            {
                Ok((n, false)) if n == chunk => at += n,
                _ => return Err(self.fail().code()),
            }
        }
        Ok(payload)
    }

    /// The outcome of a consumed message, as [`Session::receive`] reports
    /// it: names and body are in the program's buffers.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        header: &MessageHeader,
        order: ByteOrder,
        old_type: Option<[u8; 4]>,
        (want_groups, short_groups): (usize, bool),
        (want_body, short_body): (usize, bool),
        groups: &mut [NameSlot],
        body: &mut [&mut [u8]],
    ) -> ReceiveOutcome {
        let regular_or_reject = header.service_type & (REGULAR_MESS | REJECT_MESS) != 0;
        let (mut mess_type, endian_mismatch) = if regular_or_reject {
            (
                header.mess_type(),
                i32::from(header.hint_order() != ByteOrder::NATIVE),
            )
        } else {
            (-1, 0)
        };
        let mut service_type = header.service_type;
        if let Some(old) = old_type {
            service_type = (order.read_u32(old) & !spread_wire::endian::ENDIAN_MARKER) | REJECT_MESS;
        }
        let mut sender = [0u8; MAX_GROUP_NAME];
        let name = header.sender.as_bytes();
        sender[..name.len()].copy_from_slice(name);
        let num_groups = if short_groups {
            -header.num_groups
        } else {
            header.num_groups
        };
        if header.service_type & REG_MEMB_MESS != 0 && !short_groups {
            if let Some(i) = groups[..want_groups]
                .iter()
                .position(|g| GroupName::from_raw(*g) == self.private_group)
            {
                mess_type = i as i16;
            }
        }
        if header.service_type & REG_MEMB_MESS != 0 && order != ByteOrder::NATIVE {
            flip_membership_body(body, want_body);
        }
        let d = Delivery {
            service_type,
            sender,
            num_groups,
            mess_type,
            endian_mismatch,
        };
        if short_body {
            (SpError::BufferTooShort.code(), Some(d))
        } else {
            (header.data_len, Some(d))
        }
    }
}

/// What a receive reports for a message its buffers cannot hold (the
/// message stays to be read again).
fn too_short(header: &MessageHeader, short_groups: bool, short_body: bool) -> ReceiveOutcome {
    let regular_or_reject = header.service_type & (REGULAR_MESS | REJECT_MESS) != 0;
    let mut sender = [0u8; MAX_GROUP_NAME];
    let name = header.sender.as_bytes();
    sender[..name.len()].copy_from_slice(name);
    let d = Delivery {
        service_type: header.service_type,
        sender,
        num_groups: if short_groups { -header.num_groups } else { 0 },
        mess_type: if regular_or_reject { header.mess_type() } else { 0 },
        endian_mismatch: if short_body { -header.data_len } else { 0 },
    };
    let code = if d.num_groups != 0 {
        SpError::GroupsTooShort
    } else {
        SpError::BufferTooShort
    };
    (code.code(), Some(d))
}

/// Puts a message's payload (a reject's old type, names, body) into the
/// program's buffers: the first `want_groups` names, the first `want_body`
/// body bytes across its pieces; the rest is dropped. Returns a reject's
/// old type.
fn distribute(
    payload: &[u8],
    header: &MessageHeader,
    want_groups: usize,
    want_body: usize,
    groups: &mut [NameSlot],
    body: &mut [&mut [u8]],
) -> Option<[u8; 4]> {
    let mut at = 0;
    let old_type = if header.service_type & REJECT_MESS != 0 {
        at = records::REJECT_OLD_TYPE_LEN;
        payload.first_chunk::<4>().copied()
    } else {
        None
    };
    for (slot, name) in groups
        .iter_mut()
        .zip(payload[at..].chunks_exact(MAX_GROUP_NAME))
        .take(want_groups)
    {
        slot.copy_from_slice(name);
    }
    at += header.num_groups.max(0) as usize * MAX_GROUP_NAME;
    let mut src = &payload[at..at + want_body];
    for piece in body.iter_mut() {
        if src.is_empty() {
            break;
        }
        let take = piece.len().min(src.len());
        piece[..take].copy_from_slice(&src[..take]);
        src = &src[take..];
    }
    old_type
}

/// Read `len` body bytes into the program's pieces, in order, preceded by
/// `names` if given: one `readv` in the usual case. `len` is at most the
/// pieces' total length.
fn read_body(
    stream: &Stream,
    body: &mut [&mut [u8]],
    len: usize,
    names: Option<&mut [u8]>,
) -> Result<(), super::stream::Closed> {
    let names = names.unwrap_or_default();
    if let [one] = body {
        // The common case (SP_receive): two slices, no loop.
        let take = one.len().min(len);
        let total = names.len() + take;
        let mut slices = [IoSliceMut::new(names), IoSliceMut::new(&mut one[..take])];
        return stream.read_exact_slices(&mut slices, total);
    }
    let inline = body.len() < INLINE_SLICES;
    let mut total = 0;
    let pieces = std::iter::once(names)
        .chain(body.iter_mut().scan(len, |left, piece| {
            if *left == 0 {
                return None;
            }
            let take = piece.len().min(*left);
            *left -= take;
            Some(&mut piece[..take])
        }))
        .inspect(|piece| total += piece.len());
    if inline {
        let mut slices: [IoSliceMut<'_>; INLINE_SLICES] = std::array::from_fn(|_| IoSliceMut::new(&mut []));
        for (slot, piece) in slices.iter_mut().zip(pieces) {
            *slot = IoSliceMut::new(piece);
        }
        stream.read_exact_slices(&mut slices[..], total)
    } else {
        let mut slices: Vec<IoSliceMut<'_>> = pieces.map(IoSliceMut::new).collect();
        stream.read_exact_slices(&mut slices, total)
    }
}
