//! Flush connections: the groups of one mailbox, the queue of messages for
//! the program, and the calls that drive them over a client session.
//!
//! Locking follows the original's rules: one thread at a time receives on a
//! connection (the receive lock); the connection's state has its own lock,
//! never held while blocked on the socket, so other threads can send and
//! flush while a receiver waits. A control message is sent with the state
//! lock held, so state and traffic stay in step.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use spread_wire::client::code::{BUFFER_TOO_SHORT, GROUPS_TOO_SHORT};
use spread_wire::client::code::{CONNECTION_CLOSED, ILLEGAL_GROUP, ILLEGAL_MESSAGE, ILLEGAL_SESSION};
use spread_wire::client::limits::MAX_GROUP_NAME;
use spread_wire::client::service::{
    CAUSED_BY_LEAVE, CAUSED_BY_NETWORK, DROP_RECV, ENDIAN_RESERVED, FIFO_MESS, MEMBERSHIP_MESS, REGULAR_MESS,
    REG_MEMB_MESS, REJECT_MESS, TRANSITION_MESS,
};
use spread_wire::client::GroupName;

use super::view::{code, Action, Control, DaemonMembership, Group, Message};
use crate::client::membership::{self, BodyBytes, Pieces};
use crate::client::session::{self, Mailbox, NameSlot, Session, MAX_GROUPS_PER_MESSAGE};
use spread_wire::flush::{
    self as wire, Decoded, DONT_BLOCK, FLUSH_OK_MESS, FLUSH_RECV_MESS, FLUSH_REQ_MESS, SUBGROUP_CAST,
};

/// Scatter elements a flush program may use (one is kept for the trailer).
pub const FL_MAX_SCATTER_ELEMENTS: usize = crate::ffi_sp::MAX_CLIENT_SCATTER_ELEMENTS - 1;

/// Bytes `FL_poll` counts for a queued message besides its names and body
/// (the size of the original's record of a buffered message on LP64).
const QUEUED_OVERHEAD: usize = 88;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A whole message as the daemon delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub service_type: u32,
    pub sender: GroupName,
    pub groups: Vec<GroupName>,
    pub mess_type: i16,
    pub endian_mismatch: i32,
    pub body: Vec<u8>,
}

/// What a connection must do after taking in a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Send(GroupName, Control),
    Fail(i32),
}

/// The state of one connection, without I/O.
#[derive(Debug)]
pub struct ConnState {
    me: GroupName,
    groups: HashMap<GroupName, Group>,
    queue: VecDeque<Message>,
    bytes_queued: usize,
}

fn queued_size(m: &Message) -> usize {
    QUEUED_OVERHEAD + m.groups.len() * MAX_GROUP_NAME + m.body.len()
}

/// Regular membership facts from a (host-order) membership body.
fn daemon_membership(r: &Received) -> Option<DaemonMembership> {
    let pieces = [&r.body[..]];
    let body = Pieces(&pieces);
    let info = membership::memb_info(&body, r.service_type).ok()?;
    if r.body.len() < membership::FIRST_VS_SET_OFFSET {
        return None;
    }
    let set = info.my_vs_set;
    let start = set.members_offset as usize;
    let len = (set.num_members as usize).checked_mul(MAX_GROUP_NAME)?;
    let my_vs_set = if r.service_type & CAUSED_BY_NETWORK != 0 {
        let names = r.body.get(start..start.checked_add(len)?)?;
        names
            .chunks_exact(MAX_GROUP_NAME)
            .map(GroupName::truncated)
            .collect()
    } else {
        Vec::new()
    };
    let mut gid = [0u8; 12];
    body.read(membership::GID_OFFSET, &mut gid);
    Some(DaemonMembership {
        gid: wire::gid_from_bytes(gid, false),
        service_type: r.service_type,
        members: r.groups.clone(),
        my_index: r.mess_type,
        changed: info.changed_member.map(|n| GroupName::truncated(&n)),
        my_vs_set,
    })
}

impl ConnState {
    pub fn new(me: GroupName) -> ConnState {
        ConnState {
            me: me.clean(),
            groups: HashMap::new(),
            queue: VecDeque::new(),
            bytes_queued: 0,
        }
    }

    pub fn group(&self, name: &GroupName) -> Option<&Group> {
        self.groups.get(name)
    }

    pub fn group_mut(&mut self, name: &GroupName) -> Option<&mut Group> {
        self.groups.get_mut(name)
    }

    /// Messages waiting for the program.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn bytes_queued(&self) -> usize {
        self.bytes_queued
    }

    pub fn front(&self) -> Option<&Message> {
        self.queue.front()
    }

    pub fn pop(&mut self) -> Option<Message> {
        let m = self.queue.pop_front()?;
        self.bytes_queued -= queued_size(&m);
        Some(m)
    }

    fn deliver(&mut self, m: Message) {
        self.bytes_queued += queued_size(&m);
        self.queue.push_back(m);
    }

    fn apply(&mut self, group: GroupName, actions: Vec<Action>, effects: &mut Vec<Effect>) {
        for a in actions {
            match a {
                Action::Deliver(m) => self.deliver(m),
                Action::Send(c) => effects.push(Effect::Send(group, c)),
                Action::Fail(e) => effects.push(Effect::Fail(e)),
            }
        }
    }

    /// Take in one message from the daemon.
    pub fn on_message(&mut self, r: Received) -> Vec<Effect> {
        let mut effects = Vec::new();
        let t = r.service_type;
        if t & REGULAR_MESS != 0 && t & REJECT_MESS == 0 {
            let swapped = r.endian_mismatch != 0;
            let inc = match wire::decode(t, r.mess_type, swapped, &r.groups, &r.body) {
                Ok(i) => i,
                Err(e) => {
                    log::warn!("flush: dropped a message from {}: {e}", r.sender);
                    return effects;
                }
            };
            let sender = r.sender.clean();
            if let Some(g) = self.groups.get_mut(&inc.group) {
                let actions = match inc.kind {
                    Decoded::FlushOk(gid) => g.on_flush_ok(sender, gid),
                    Decoded::FlushRecv(gid) => {
                        g.on_flush_recv(gid);
                        Vec::new()
                    }
                    Decoded::Data {
                        mess_type,
                        vulnerable,
                    } => {
                        let mut body = r.body;
                        body.truncate(inc.body_len);
                        let msg = Message {
                            service_type: t,
                            sender,
                            groups: inc.groups,
                            mess_type,
                            endian_mismatch: r.endian_mismatch,
                            body,
                        };
                        g.on_data(msg, vulnerable)
                    }
                };
                self.apply(inc.group, actions, &mut effects);
            } else if inc.group == self.me {
                if let Decoded::Data { mess_type, .. } = inc.kind {
                    let mut body = r.body;
                    body.truncate(inc.body_len);
                    self.deliver(Message {
                        service_type: t,
                        sender,
                        groups: inc.groups,
                        mess_type,
                        endian_mismatch: r.endian_mismatch,
                        body,
                    });
                }
            } else {
                log::warn!(
                    "flush: a message from {sender} for group {}, of which we are no member",
                    inc.group
                );
            }
        } else if t & MEMBERSHIP_MESS != 0 && t & REJECT_MESS == 0 {
            let name = r.sender.clean();
            if t & REG_MEMB_MESS != 0 {
                let Some(m) = daemon_membership(&r) else {
                    log::warn!("flush: malformed membership of group {name}");
                    return effects;
                };
                let me = self.me;
                let g = self.groups.entry(name).or_insert_with(|| Group::new(name, me));
                let actions = g.on_membership(m);
                self.apply(name, actions, &mut effects);
            } else if t & TRANSITION_MESS != 0 {
                if let Some(g) = self.groups.get_mut(&name) {
                    let actions = g.on_transitional();
                    self.apply(name, actions, &mut effects);
                }
            } else if t & CAUSED_BY_LEAVE != 0 {
                // We left: the group is gone; the program sees the daemon's message.
                self.groups.remove(&name);
                self.deliver(Message {
                    service_type: t,
                    sender: name,
                    groups: r.groups,
                    mess_type: r.mess_type,
                    endian_mismatch: r.endian_mismatch,
                    body: r.body,
                });
            } else {
                log::warn!("flush: unexpected membership 0x{t:x} for group {name}");
            }
        } else {
            log::warn!("flush: unexpected message of service 0x{t:x} from {}", r.sender);
        }
        effects
    }
}

/// One flush connection.
pub struct FlConn {
    pub mbox: Mailbox,
    session: Arc<Session>,
    /// Serializes receivers; holds the buffers a receive reads into.
    recv: Mutex<RecvBuffers>,
    state: Mutex<ConnState>,
    disconnecting: AtomicBool,
}

struct RecvBuffers {
    groups: Vec<NameSlot>,
    body: Vec<u8>,
}

fn table() -> &'static Mutex<HashMap<Mailbox, Arc<FlConn>>> {
    static TABLE: OnceLock<Mutex<HashMap<Mailbox, Arc<FlConn>>>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Make the session on `mbox` a flush connection.
pub fn register(mbox: Mailbox) -> Result<(), i32> {
    let session = session::lookup(mbox).map_err(|e| e.code())?;
    let me = *session.private_group();
    let conn = Arc::new(FlConn {
        mbox,
        session,
        recv: Mutex::new(RecvBuffers {
            groups: vec![[0u8; MAX_GROUP_NAME]; 16],
            body: vec![0u8; 4096],
        }),
        state: Mutex::new(ConnState::new(me)),
        disconnecting: AtomicBool::new(false),
    });
    lock(table()).insert(mbox, conn);
    Ok(())
}

pub fn lookup(mbox: Mailbox) -> Result<Arc<FlConn>, i32> {
    let c = lock(table()).get(&mbox).cloned().ok_or(ILLEGAL_SESSION)?;
    if c.disconnecting.load(Ordering::Acquire) {
        return Err(ILLEGAL_SESSION);
    }
    Ok(c)
}

/// Forget the connection (the caller closes the session). Threads still
/// inside a call on it finish with `ILLEGAL_SESSION` or the session's error.
pub fn unregister(mbox: Mailbox) -> Option<Arc<FlConn>> {
    let c = lock(table()).remove(&mbox)?;
    c.disconnecting.store(true, Ordering::Release);
    Some(c)
}

/// Whether a code means the connection is dead (the original then
/// disconnects the mailbox).
pub fn is_fatal(code: i32) -> bool {
    code == CONNECTION_CLOSED || code == ILLEGAL_SESSION
}

fn is_private_name(name: &[u8]) -> bool {
    name.iter()
        .take(MAX_GROUP_NAME)
        .take_while(|&&b| b != 0)
        .any(|&b| b == b'#')
}

/// A user's group name as this layer keys it; `None` if it cannot be one.
pub fn key_of(name: &[u8]) -> Option<GroupName> {
    GroupName::new(name).filter(|g| !g.is_empty())
}

/// Service bits `sp.h` keeps for the daemon (`RESERVED`).
const RESERVED: u32 = 0x003f_c000;

/// Service bits a program may not send with.
const ILLEGAL_SEND_BITS: u32 = FLUSH_REQ_MESS | MEMBERSHIP_MESS | ENDIAN_RESERVED | RESERVED;

/// The receivers of a unicast or subgroupcast.
pub enum Receivers<'a> {
    All,
    Some(i32, &'a [NameSlot]),
}

impl FlConn {
    fn state(&self) -> MutexGuard<'_, ConnState> {
        lock(&self.state)
    }

    fn send_control(&self, group: &GroupName, c: Control) -> Result<(), i32> {
        let (t, gid) = match c {
            Control::FlushOk(g) => (FLUSH_OK_MESS, g),
            Control::FlushRecv(g) => (FLUSH_RECV_MESS, g),
        };
        let body = gid.to_native();
        self.session
            .send(FIFO_MESS, &[*group.clean().raw()], t, &[&body])
            .map(|_| ())
            .map_err(|e| e.code())
    }

    /// `SP_join` on the session, refused for a group already involved with.
    pub fn join(&self, name: &[u8]) -> i32 {
        let st = self.state();
        if key_of(name).is_some_and(|k| st.group(&k).is_some()) {
            return ILLEGAL_GROUP;
        }
        if !spread_wire::client::names::is_legal_group_name(name) {
            return ILLEGAL_GROUP;
        }
        let slot = *GroupName::truncated(name).raw();
        match self
            .session
            .send(spread_wire::client::service::JOIN_MESS, &[slot], 0, &[])
        {
            Ok(_) => 0,
            Err(e) => e.code(),
        }
    }

    /// `SP_leave`, only for a group the program is a full member of.
    pub fn leave(&self, name: &[u8]) -> i32 {
        let mut st = self.state();
        let Some(g) = key_of(name).and_then(|k| st.group_mut(&k)) else {
            return ILLEGAL_GROUP;
        };
        if !g.start_leave() {
            return ILLEGAL_GROUP;
        }
        let slot = *g.name().raw();
        match self
            .session
            .send(spread_wire::client::service::LEAVE_MESS, &[slot], 0, &[])
        {
            Ok(_) => 0,
            Err(e) => e.code(),
        }
    }

    /// The program flushes `name`.
    pub fn flush(&self, name: &[u8]) -> i32 {
        let mut st = self.state();
        let Some(g) = key_of(name).and_then(|k| st.group_mut(&k)) else {
            return ILLEGAL_GROUP;
        };
        let group = *g.name();
        match g.flush() {
            Ok(c) => match self.send_control(&group, c) {
                Ok(()) => 0,
                Err(e) => e,
            },
            Err(e) => e,
        }
    }

    /// Send a program's message; returns the body size sent or an error.
    pub fn send(
        &self,
        service_type: u32,
        group: Option<&[u8]>,
        receivers: Receivers<'_>,
        mess_type: i16,
        body: Option<&[&[u8]]>,
    ) -> i32 {
        let st = self.state();
        if let Receivers::Some(n, _) = receivers {
            if n < 0 {
                return code::ILLEGAL_PARAM;
            }
        }
        if service_type & ILLEGAL_SEND_BITS != 0 {
            return spread_wire::client::code::ILLEGAL_SERVICE;
        }
        if mess_type < wire::FL_MIN_LEGAL_MESS_TYPE {
            return code::ILLEGAL_MESSAGE_TYPE;
        }
        let Some(body) = body.filter(|b| b.len() <= FL_MAX_SCATTER_ELEMENTS) else {
            return ILLEGAL_MESSAGE;
        };
        let Some(grp) = group else {
            return ILLEGAL_GROUP;
        };
        let private = is_private_name(grp);
        let target = if private {
            None
        } else {
            match key_of(grp).and_then(|k| st.group(&k)) {
                Some(g) if g.join == super::view::JoinState::Joined => Some(g),
                _ => return ILLEGAL_GROUP,
            }
        };
        if target.is_some_and(|g| g.state == super::view::ViewState::Agree) {
            return code::ILLEGAL_STATE;
        }
        let dest = GroupName::truncated(grp);
        let vulnerable = target
            .filter(|g| g.is_vulnerable(service_type))
            .map(|g| g.view_id());
        let (service, dests, subgroup_of): (u32, Vec<NameSlot>, Option<&GroupName>) = match receivers {
            Receivers::All => (service_type & !SUBGROUP_CAST, vec![*dest.raw()], None),
            Receivers::Some(_, names) => {
                let legal = names.iter().all(|r| {
                    let r = GroupName::from_raw(*r);
                    match target {
                        Some(g) => g.in_view(&r.clean()),
                        None => r == dest,
                    }
                });
                if !legal {
                    return code::ILLEGAL_RECEIVERS;
                }
                (service_type | SUBGROUP_CAST, names.to_vec(), Some(&dest))
            }
        };
        if service & REGULAR_MESS == 0 || service & REJECT_MESS != 0 {
            return spread_wire::client::code::ILLEGAL_SERVICE;
        }
        if dests.len() > MAX_GROUPS_PER_MESSAGE {
            return ILLEGAL_GROUP;
        }
        let (sent_type, trailer) = wire::data_trailer(mess_type, vulnerable, subgroup_of);
        let mut pieces: Vec<&[u8]> = body.to_vec();
        pieces.push(&trailer);
        match self.session.send(service, &dests, sent_type, &pieces) {
            Ok(n) => n - trailer.len() as i32,
            Err(e) => e.code(),
        }
    }

    pub fn more_msgs(&self) -> i32 {
        self.state().queued() as i32
    }

    pub fn poll(&self) -> i32 {
        let queued = self.state().bytes_queued() as i32;
        queued.saturating_add(crate::ffi_sp::SP_poll(self.mbox))
    }

    /// Read one whole message from the daemon into owned buffers.
    fn read_message(&self, bufs: &mut RecvBuffers) -> Result<Received, i32> {
        for _ in 0..4 {
            let mut pieces = [&mut bufs.body[..]];
            let max_groups = bufs.groups.len() as i32;
            let (ret, d) = self
                .session
                .receive(false, max_groups, &mut bufs.groups, &mut pieces);
            if ret == GROUPS_TOO_SHORT || ret == BUFFER_TOO_SHORT {
                let d = d.ok_or(ret)?;
                if d.num_groups < 0 {
                    bufs.groups
                        .resize((-d.num_groups) as usize, [0u8; MAX_GROUP_NAME]);
                }
                if d.endian_mismatch < 0 {
                    bufs.body.resize((-d.endian_mismatch) as usize, 0);
                }
                continue;
            }
            if ret < 0 {
                return Err(ret);
            }
            let d = d.ok_or(spread_wire::client::code::SP_BUG)?;
            let n = d.num_groups.max(0) as usize;
            return Ok(Received {
                service_type: d.service_type,
                sender: GroupName::from_raw(d.sender).clean(),
                groups: bufs.groups[..n]
                    .iter()
                    .map(|g| GroupName::from_raw(*g).clean())
                    .collect(),
                mess_type: d.mess_type,
                endian_mismatch: d.endian_mismatch,
                body: bufs.body[..ret as usize].to_vec(),
            });
        }
        Err(spread_wire::client::code::SP_BUG)
    }

    /// Receive one message for the program into `out`.
    pub fn receive(&self, flags: u32, out: &mut UserBuffers<'_>) -> i32 {
        let mut bufs = lock(&self.recv);
        loop {
            if self.disconnecting.load(Ordering::Acquire) {
                return ILLEGAL_SESSION;
            }
            {
                let mut st = self.state();
                if let Some(front) = st.front() {
                    let (ret, consumed) = out.fill(front, flags);
                    if consumed {
                        st.pop();
                    }
                    if ret >= 0 {
                        out.more = Some(st.queued() as i32);
                    }
                    return ret;
                }
            }
            if flags & DONT_BLOCK != 0 && crate::ffi_sp::SP_poll(self.mbox) == 0 {
                return code::WOULD_BLOCK;
            }
            let r = match self.read_message(&mut bufs) {
                Ok(r) => r,
                Err(e) => return e,
            };
            let mut st = self.state();
            if self.disconnecting.load(Ordering::Acquire) {
                return ILLEGAL_SESSION;
            }
            let mut failure = None;
            for e in st.on_message(r) {
                match e {
                    Effect::Send(g, c) => {
                        if let Err(code) = self.send_control(&g, c) {
                            failure.get_or_insert(code);
                        }
                    }
                    Effect::Fail(code) => {
                        failure.get_or_insert(code);
                    }
                }
            }
            if let Some(code) = failure {
                return code;
            }
        }
    }
}

/// The program's receive buffers and what a receive reports back. Each
/// `Option` output is written to the program only when set.
pub struct UserBuffers<'a> {
    pub max_groups: i32,
    pub groups: &'a mut [NameSlot],
    pub body: Vec<&'a mut [u8]>,
    pub service_type: Option<u32>,
    pub sender: Option<NameSlot>,
    pub num_groups: Option<i32>,
    pub mess_type: Option<i16>,
    pub endian_mismatch: Option<i32>,
    pub more: Option<i32>,
}

impl<'a> UserBuffers<'a> {
    pub fn new(max_groups: i32, groups: &'a mut [NameSlot], body: Vec<&'a mut [u8]>) -> UserBuffers<'a> {
        UserBuffers {
            max_groups,
            groups,
            body,
            service_type: None,
            sender: None,
            num_groups: None,
            mess_type: None,
            endian_mismatch: None,
            more: None,
        }
    }

    fn copy_groups(&mut self, names: &[GroupName], subgroup: bool) {
        let room = self.groups.len().min(self.max_groups.max(0) as usize);
        for (slot, n) in self.groups[..room].iter_mut().zip(names) {
            *slot = *n.raw();
        }
        if subgroup && names.len() > room && room > 0 {
            // The group itself stays visible in the last slot.
            if let Some(last) = names.last() {
                self.groups[room - 1] = *last.raw();
            }
        }
    }

    /// Copy `m` in. Returns the call's result and whether the message was
    /// consumed (it stays queued when it does not fit and the program did
    /// not ask to drop what does not fit).
    pub fn fill(&mut self, m: &Message, flags: u32) -> (i32, bool) {
        let mut copied = 0;
        let mut rest = &m.body[..];
        for piece in self.body.iter_mut() {
            let n = piece.len().min(rest.len());
            piece[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            copied += n;
        }
        let body_fits = copied == m.body.len();
        let groups_fit = m.groups.len() as i64 <= i64::from(self.max_groups);
        self.service_type = Some(m.service_type);
        self.mess_type = Some(m.mess_type);
        let n = m.groups.len() as i32;
        if body_fits && groups_fit {
            self.num_groups = Some(n);
            self.sender = Some(*m.sender.raw());
            self.copy_groups(&m.groups, false);
            self.endian_mismatch = Some(m.endian_mismatch);
            return (m.body.len() as i32, true);
        }
        if flags & DROP_RECV == 0 {
            let mut ret = 0;
            if !body_fits {
                ret = BUFFER_TOO_SHORT;
                self.endian_mismatch = Some(-(m.body.len() as i32));
            } else {
                self.endian_mismatch = Some(0);
            }
            if !groups_fit {
                ret = GROUPS_TOO_SHORT;
                self.num_groups = Some(-n);
            } else {
                self.num_groups = Some(0);
            }
            return (ret, false);
        }
        let mut ret = BUFFER_TOO_SHORT;
        if !groups_fit {
            ret = GROUPS_TOO_SHORT;
            self.num_groups = Some(-n);
        } else {
            self.num_groups = Some(n);
        }
        self.sender = Some(*m.sender.raw());
        self.copy_groups(&m.groups, m.service_type & SUBGROUP_CAST != 0);
        self.endian_mismatch = Some(m.endian_mismatch);
        (ret, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spread_wire::client::service::{AGREED_MESS, CAUSED_BY_JOIN};
    use spread_wire::client::GroupId;

    fn n(s: &str) -> GroupName {
        GroupName::new(s.as_bytes()).unwrap()
    }

    fn reg_memb(gid: [i32; 3], members: &[&str], me: usize, changed: &str) -> Received {
        let mut body = GroupId::from_words(gid).to_native().to_vec();
        body.extend_from_slice(&1u32.to_ne_bytes());
        body.extend_from_slice(&0u32.to_ne_bytes());
        body.extend_from_slice(&1u32.to_ne_bytes());
        body.extend_from_slice(n(changed).raw());
        Received {
            service_type: REG_MEMB_MESS | CAUSED_BY_JOIN,
            sender: n("g"),
            groups: members.iter().map(|s| n(s)).collect(),
            mess_type: me as i16,
            endian_mismatch: 0,
            body,
        }
    }

    fn flok(from: &str, gid: [i32; 3]) -> Received {
        Received {
            service_type: FIFO_MESS,
            sender: n(from),
            groups: vec![n("g")],
            mess_type: FLUSH_OK_MESS,
            endian_mismatch: 0,
            body: GroupId::from_words(gid).to_native().to_vec(),
        }
    }

    #[test]
    fn join_agree_install_through_messages() {
        let mut c = ConnState::new(n("#b#h"));
        let e = c.on_message(reg_memb([1, 2, 3], &["#a#h", "#b#h"], 1, "#b#h"));
        assert_eq!(
            e,
            vec![Effect::Send(
                n("g"),
                Control::FlushOk(GroupId::from_words([1, 2, 3]))
            )]
        );
        assert!(c.on_message(flok("#a#h", [1, 2, 3])).is_empty());
        // Data from a before b's view is installed: not shown.
        let data = Received {
            service_type: AGREED_MESS,
            sender: n("#a#h"),
            groups: vec![n("g")],
            mess_type: 5,
            endian_mismatch: 0,
            body: b"early".to_vec(),
        };
        c.on_message(data.clone());
        assert_eq!(c.queued(), 0);
        let e = c.on_message(flok("#b#h", [1, 2, 3]));
        assert_eq!(
            e,
            vec![Effect::Send(
                n("g"),
                Control::FlushRecv(GroupId::from_words([1, 2, 3]))
            )]
        );
        assert_eq!(c.queued(), 1);
        assert_eq!(c.bytes_queued(), 88 + 64 + 48);
        c.on_message(data);
        assert_eq!(c.queued(), 2);
        let view = c.pop().unwrap();
        assert_eq!(view.service_type, REG_MEMB_MESS | CAUSED_BY_JOIN);
        assert_eq!(view.mess_type, 1);
        let m = c.pop().unwrap();
        assert_eq!((m.mess_type, &m.body[..]), (5, &b"early"[..]));
        assert_eq!(c.bytes_queued(), 0);
    }

    #[test]
    fn private_messages_pass_and_strangers_do_not() {
        let mut c = ConnState::new(n("#b#h"));
        let mut r = Received {
            service_type: AGREED_MESS,
            sender: n("#a#h"),
            groups: vec![n("#b#h")],
            mess_type: 1,
            endian_mismatch: 0,
            body: b"hi".to_vec(),
        };
        c.on_message(r.clone());
        assert_eq!(c.queued(), 1);
        r.groups = vec![n("other")];
        c.on_message(r);
        assert_eq!(c.queued(), 1);
    }

    #[test]
    fn fill_reports_short_buffers_like_the_original() {
        let m = Message {
            service_type: AGREED_MESS | SUBGROUP_CAST,
            sender: n("#a#h"),
            groups: vec![n("#b#h"), n("#c#h"), n("g")],
            mess_type: 3,
            endian_mismatch: 0,
            body: vec![7; 10],
        };
        let mut groups = [[0u8; 32]; 2];
        let mut body = [0u8; 4];
        let mut u = UserBuffers::new(2, &mut groups, vec![&mut body[..]]);
        assert_eq!(u.fill(&m, 0), (GROUPS_TOO_SHORT, false));
        assert_eq!((u.num_groups, u.endian_mismatch), (Some(-3), Some(-10)));
        assert_eq!(u.sender, None);
        assert_eq!(u.fill(&m, DROP_RECV), (GROUPS_TOO_SHORT, true));
        assert_eq!(u.num_groups, Some(-3));
        drop(u);
        assert_eq!(GroupName::from_raw(groups[0]), n("#b#h"));
        assert_eq!(GroupName::from_raw(groups[1]), n("g"));
        let mut groups = [[0u8; 32]; 3];
        let mut body = [0u8; 10];
        let mut u = UserBuffers::new(3, &mut groups, vec![&mut body[..]]);
        assert_eq!(u.fill(&m, 0), (10, true));
        assert_eq!(u.num_groups, Some(3));
    }
}
