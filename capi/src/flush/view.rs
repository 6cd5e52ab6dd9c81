//! The view agreement of one flush group, without I/O.
//!
//! A [`Group`] is fed what the daemon delivers for its group (regular and
//! transitional memberships, flush oks, flush receipts, data) and what the
//! program does (flush), and answers with [`Action`]s: messages to show the
//! program and control messages to send to the group.
//!
//! How a view is agreed:
//!
//! 1. The daemon's membership of the group changes. Every member queues the
//!    change (keyed by the daemon's group id); a member in a settled view
//!    is shown a *flush request* and enters `Authorize`.
//! 2. The program flushes: the member multicasts a *flush ok* naming the
//!    change and enters `Agree`. A member that has not been shown a view yet
//!    (still joining) does so by itself.
//! 3. When flush oks from every member of the change arrived, the member
//!    installs it as its new view (shows the program a regular membership),
//!    enters `Verify`, and multicasts a *flush received*. Once every member's
//!    flush received arrived the group is `Steady` again.
//!
//! Changes that arrive while one is being agreed are queued; a change whose
//! member left before it sent its flush ok can never complete and is folded
//! into the next one, shown as caused by the network. Messages are shown only
//! if their sender is in the receiver's current view; a FIFO (or weaker)
//! message sent from a view that the receiver has not installed yet is held
//! back until it has.

use std::collections::{HashMap, HashSet, VecDeque};

use spread_wire::client::service::{
    CAUSED_BY_JOIN, CAUSED_BY_NETWORK, FIFO_MESS, REG_MEMB_MESS, RELIABLE_MESS, TRANSITION_MESS,
    UNRELIABLE_MESS,
};
use spread_wire::client::GroupName;

use spread_wire::client::GroupId;
use spread_wire::flush::{self as wire, FLUSH_REQ_MESS};

/// Error codes of `fl.h`.
pub mod code {
    pub const ILLEGAL_PARAM: i32 = -24;
    pub const WOULD_BLOCK: i32 = -25;
    pub const ILLEGAL_MESSAGE_TYPE: i32 = -26;
    pub const ILLEGAL_STATE: i32 = -27;
    pub const ILLEGAL_RECEIVERS: i32 = -28;
}

/// A changed membership is held at most this many daemon memberships while
/// its own membership message has not arrived (only flush oks did).
pub const FLOK_AGE_LIMIT: u32 = 200;

/// The program's membership of the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinState {
    /// Joined at the daemon, not yet shown a view.
    Joining,
    /// Shown a view that includes it: may send, flush and leave.
    Joined,
    /// Asked to leave.
    Leaving,
}

/// Where the view agreement of the group stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewState {
    /// A view is installed everywhere.
    Steady,
    /// A change is known; waiting for the program to flush.
    Authorize,
    /// Flushed; collecting the members' flush oks.
    Agree,
    /// Installed a view; waiting for the others to confirm theirs.
    Verify,
}

/// A message as the program receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub service_type: u32,
    pub sender: GroupName,
    pub groups: Vec<GroupName>,
    pub mess_type: i16,
    pub endian_mismatch: i32,
    pub body: Vec<u8>,
}

impl Message {
    /// A signal carrying only a service type and the group's name.
    pub fn signal(service_type: u32, group: GroupName) -> Message {
        Message {
            service_type,
            sender: group,
            groups: Vec::new(),
            mess_type: 0,
            endian_mismatch: 0,
            body: Vec::new(),
        }
    }
}

/// A control message for the group (sent FIFO to the group's name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    FlushOk(GroupId),
    FlushRecv(GroupId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Deliver(Message),
    Send(Control),
    /// Return this code to the receiving program.
    Fail(i32),
}

/// A regular membership of the group as the daemon delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonMembership {
    pub gid: GroupId,
    pub service_type: u32,
    /// All members, in the daemon's order.
    pub members: Vec<GroupName>,
    pub my_index: i16,
    /// Join, leave or disconnect: the member that changed.
    pub changed: Option<GroupName>,
    /// Network: the members that came with the receiver.
    pub my_vs_set: Vec<GroupName>,
}

#[derive(Clone, Debug)]
struct View {
    gid: GroupId,
    memb_type: u32,
    /// A transitional signal was already shown (or must not be) in this view.
    in_trans: bool,
    names: Vec<GroupName>,
    /// Members still present.
    curr: HashSet<GroupName>,
    my_index: i16,
}

impl View {
    fn empty(gid: GroupId) -> View {
        View {
            gid,
            memb_type: 0,
            in_trans: false,
            names: Vec::new(),
            curr: HashSet::new(),
            my_index: -1,
        }
    }

    fn fill(&mut self, memb_type: u32, names: Vec<GroupName>, my_index: i16) {
        self.memb_type = memb_type;
        self.curr = names.iter().copied().collect();
        self.names = names;
        self.my_index = my_index;
    }

    fn has_member(&self, n: &GroupName) -> bool {
        self.names.contains(n)
    }
}

/// A daemon membership change not yet installed.
#[derive(Clone, Debug)]
struct Change {
    view: View,
    memb_recvd: bool,
    age: u32,
    delta: Option<GroupName>,
    floks: HashSet<GroupName>,
}

impl Change {
    fn new(gid: GroupId) -> Change {
        Change {
            view: View::empty(gid),
            memb_recvd: false,
            age: 0,
            delta: None,
            floks: HashSet::new(),
        }
    }

    fn complete(&self) -> bool {
        self.memb_recvd && self.view.names.iter().all(|n| self.floks.contains(n))
    }
}

/// The latest daemon view: the installed one, or the newest queued change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DaemonView {
    Installed,
    Queued(GroupId),
}

/// One group of one connection.
#[derive(Debug)]
pub struct Group {
    name: GroupName,
    pub join: JoinState,
    pub state: ViewState,
    curr_change: Option<GroupId>,
    daemon_view: DaemonView,
    view: View,
    flush_recvs: usize,
    held_back: Vec<Message>,
    queue: VecDeque<GroupId>,
    pending: HashMap<GroupId, Change>,
}

impl Group {
    /// A group the connection `me` joined and has not been shown a view of.
    pub fn new(name: GroupName, me: GroupName) -> Group {
        let mut view = View::empty(GroupId::default());
        view.fill(0, vec![me.clean()], 0);
        // No transitional signal before the first view.
        view.in_trans = true;
        Group {
            name: name.clean(),
            join: JoinState::Joining,
            // The first change is agreed to without asking the program.
            state: ViewState::Agree,
            curr_change: None,
            daemon_view: DaemonView::Installed,
            view,
            flush_recvs: 0,
            held_back: Vec::new(),
            queue: VecDeque::new(),
            pending: HashMap::new(),
        }
    }

    pub fn name(&self) -> &GroupName {
        &self.name
    }

    /// Id of the installed view.
    pub fn view_id(&self) -> GroupId {
        self.view.gid
    }

    /// Members of the installed view.
    pub fn view_members(&self) -> &[GroupName] {
        &self.view.names
    }

    /// Whether `n` was a member of the installed view.
    pub fn in_view(&self, n: &GroupName) -> bool {
        self.view.has_member(n)
    }

    /// Whether a message of `service_type` sent now must carry the view id.
    pub fn is_vulnerable(&self, service_type: u32) -> bool {
        matches!(self.state, ViewState::Authorize | ViewState::Verify)
            && service_type & (UNRELIABLE_MESS | RELIABLE_MESS | FIFO_MESS) != 0
    }

    fn daemon_view_mut(&mut self) -> &mut View {
        match self.daemon_view {
            DaemonView::Queued(gid) => match self.pending.get_mut(&gid) {
                Some(c) => &mut c.view,
                None => &mut self.view,
            },
            DaemonView::Installed => &mut self.view,
        }
    }

    fn daemon_view(&self) -> &View {
        match self.daemon_view {
            DaemonView::Queued(gid) => self.pending.get(&gid).map_or(&self.view, |c| &c.view),
            DaemonView::Installed => &self.view,
        }
    }

    /// The program flushes. Returns the flush ok to send.
    pub fn flush(&mut self) -> Result<Control, i32> {
        if self.join == JoinState::Leaving {
            return Err(spread_wire::client::code::ILLEGAL_GROUP);
        }
        if self.state != ViewState::Authorize {
            return Err(code::ILLEGAL_STATE);
        }
        let gid = self.curr_change.ok_or(code::ILLEGAL_STATE)?;
        self.state = ViewState::Agree;
        Ok(Control::FlushOk(gid))
    }

    /// The program asks to leave; false if it may not.
    pub fn start_leave(&mut self) -> bool {
        if self.join == JoinState::Joined {
            self.join = JoinState::Leaving;
            true
        } else {
            false
        }
    }

    /// A regular membership of the group from the daemon.
    pub fn on_membership(&mut self, m: DaemonMembership) -> Vec<Action> {
        let mut out = Vec::new();
        if self.pending.get(&m.gid).is_some_and(|c| c.memb_recvd) {
            log::warn!(
                "flush group {}: membership {:?} delivered twice",
                self.name,
                m.gid
            );
            return out;
        }
        // Who left since the previous daemon view.
        let (delta, leavers): (Option<GroupName>, Vec<GroupName>) = if m.service_type & CAUSED_BY_NETWORK == 0
        {
            let d = m.changed.map(|n| n.clean()).unwrap_or(GroupName::EMPTY);
            let leavers = if m.service_type & CAUSED_BY_JOIN == 0 {
                vec![d]
            } else {
                Vec::new()
            };
            (Some(d), leavers)
        } else {
            let came: HashSet<GroupName> = m.my_vs_set.iter().map(GroupName::clean).collect();
            let prev = self.daemon_view();
            let leavers = prev.names.iter().filter(|n| !came.contains(n)).copied().collect();
            (None, leavers)
        };
        let change = self.pending.entry(m.gid).or_insert_with(|| Change::new(m.gid));
        change.memb_recvd = true;
        change.delta = delta;
        let members = m.members.iter().map(GroupName::clean).collect();
        change.view.fill(m.service_type, members, m.my_index);

        let mut shrunk = false;
        for l in &leavers {
            shrunk |= self.view.curr.remove(l);
        }
        self.age_pending();
        let next = self.fold_changes(&leavers, m.gid);
        self.queue.push_back(m.gid);
        self.daemon_view = DaemonView::Queued(m.gid);

        if self.curr_change != Some(next) {
            // Held-back messages came from members of a change that will
            // not be installed.
            self.held_back.clear();
            self.next_change(&mut out);
        }
        if shrunk && !self.view.in_trans {
            self.view.in_trans = true;
            out.push(Action::Deliver(Message::signal(TRANSITION_MESS, self.name)));
        }
        out
    }

    /// A transitional membership of the group from the daemon.
    pub fn on_transitional(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        self.daemon_view_mut().in_trans = true;
        if !self.view.in_trans {
            self.view.in_trans = true;
            out.push(Action::Deliver(Message::signal(TRANSITION_MESS, self.name)));
        }
        out
    }

    /// A flush ok from `sender` for the change `gid`.
    pub fn on_flush_ok(&mut self, sender: GroupName, gid: GroupId) -> Vec<Action> {
        let mut out = Vec::new();
        let change = self.pending.entry(gid).or_insert_with(|| Change::new(gid));
        change.floks.insert(sender.clean());
        let complete = change.complete();
        if self.state == ViewState::Agree && self.curr_change == Some(gid) && complete {
            self.install(gid, &mut out);
        }
        out
    }

    /// A flush received for view `gid`.
    pub fn on_flush_recv(&mut self, gid: GroupId) {
        match self.state {
            ViewState::Verify if gid == self.view.gid => {
                self.flush_recvs += 1;
                if self.flush_recvs >= self.view.names.len() {
                    self.state = ViewState::Steady;
                }
            }
            ViewState::Agree if Some(gid) == self.curr_change => self.flush_recvs += 1,
            _ => {}
        }
    }

    /// A program's message for the group.
    pub fn on_data(&mut self, msg: Message, vulnerable: Option<GroupId>) -> Vec<Action> {
        let sender = msg.sender.clean();
        if self.state == ViewState::Agree && vulnerable.is_some() && vulnerable == self.curr_change {
            let next = vulnerable.and_then(|g| self.pending.get(&g));
            if next.is_some_and(|c| c.view.curr.contains(&sender)) {
                self.held_back.push(msg);
            } else {
                log::warn!(
                    "flush group {}: message from {} for the next view, of which it is not a member",
                    self.name,
                    sender
                );
            }
            return Vec::new();
        }
        if self.view.curr.contains(&sender) {
            vec![Action::Deliver(msg)]
        } else {
            log::debug!(
                "flush group {}: dropped a message from non-member {}",
                self.name,
                sender
            );
            Vec::new()
        }
    }

    fn next_change(&mut self, out: &mut Vec<Action>) {
        self.curr_change = self.queue.front().copied();
        self.flush_recvs = 0;
        match self.state {
            ViewState::Steady | ViewState::Verify => {
                self.state = ViewState::Authorize;
                out.push(Action::Deliver(Message::signal(FLUSH_REQ_MESS, self.name)));
            }
            ViewState::Authorize => {}
            ViewState::Agree => {
                // Already agreed to change: agree to the next one too.
                self.state = ViewState::Authorize;
                match self.flush() {
                    Ok(c) => out.push(Action::Send(c)),
                    Err(e) => out.push(Action::Fail(e)),
                }
            }
        }
    }

    fn install(&mut self, gid: GroupId, out: &mut Vec<Action>) {
        let Some(change) = self.pending.remove(&gid) else {
            return;
        };
        let old = std::mem::replace(&mut self.view, change.view);
        let new = &self.view;
        // The body: view id, then a set of members: the one that changed, or
        // those of the previous view that came along.
        let vs: Vec<GroupName> = if new.memb_type & CAUSED_BY_NETWORK == 0 {
            vec![change.delta.unwrap_or(GroupName::EMPTY)]
        } else {
            old.names
                .iter()
                .filter(|n| old.curr.contains(n))
                .copied()
                .collect()
        };
        let body = wire::view_body(new.gid, &vs);
        out.push(Action::Deliver(Message {
            service_type: new.memb_type,
            sender: self.name,
            groups: new.names.clone(),
            mess_type: new.my_index,
            endian_mismatch: 0,
            body,
        }));
        self.state = ViewState::Verify;
        if self.join == JoinState::Joining {
            self.join = JoinState::Joined;
        }
        if self.queue.front() == Some(&gid) {
            self.queue.pop_front();
        } else {
            self.queue.retain(|g| *g != gid);
        }
        self.curr_change = None;
        if self.daemon_view == DaemonView::Queued(gid) {
            self.daemon_view = DaemonView::Installed;
        }
        if self.queue.is_empty() {
            out.push(Action::Send(Control::FlushRecv(self.view.gid)));
        } else {
            self.next_change(out);
        }
        if self.view.curr.len() < self.view.names.len() && !self.view.in_trans {
            // Members of the new view already left.
            self.view.in_trans = true;
            out.push(Action::Deliver(Message::signal(TRANSITION_MESS, self.name)));
        }
        out.extend(self.held_back.drain(..).map(Action::Deliver));
    }

    /// Forget a change known only from flush oks once it is clearly one this
    /// member will never be part of.
    fn age_pending(&mut self) {
        let mut oldest: Option<(u32, GroupId)> = None;
        for (gid, c) in self.pending.iter_mut() {
            if !c.memb_recvd {
                c.age += 1;
                if c.age > FLOK_AGE_LIMIT && oldest.is_none_or(|(a, _)| c.age > a) {
                    oldest = Some((c.age, *gid));
                }
            }
        }
        if let Some((_, gid)) = oldest {
            self.pending.remove(&gid);
        }
    }

    /// Drop queued changes that can no longer complete (a member left before
    /// its flush ok); the change after them (or `newest`) is then shown as
    /// caused by the network. Returns the change to work on.
    fn fold_changes(&mut self, leavers: &[GroupName], newest: GroupId) -> GroupId {
        if !self.queue.is_empty() && !leavers.is_empty() {
            let mut folding = false;
            let mut kept = VecDeque::with_capacity(self.queue.len());
            for gid in std::mem::take(&mut self.queue) {
                let Some(c) = self.pending.get_mut(&gid) else {
                    continue;
                };
                let dead = leavers
                    .iter()
                    .any(|l| c.view.curr.contains(l) && !c.floks.contains(l));
                if dead {
                    self.pending.remove(&gid);
                    folding = true;
                    continue;
                }
                for l in leavers {
                    c.view.curr.remove(l);
                }
                if folding {
                    c.view.memb_type = REG_MEMB_MESS | CAUSED_BY_NETWORK;
                    folding = false;
                }
                kept.push_back(gid);
            }
            self.queue = kept;
            if folding {
                if let Some(c) = self.pending.get_mut(&newest) {
                    c.view.memb_type = REG_MEMB_MESS | CAUSED_BY_NETWORK;
                }
            }
        }
        self.queue.front().copied().unwrap_or(newest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spread_wire::client::service::{CAUSED_BY_DISCONNECT, CAUSED_BY_LEAVE};

    fn n(s: &str) -> GroupName {
        GroupName::new(s.as_bytes()).unwrap()
    }

    fn memb(idx: i32, cause: u32, members: &[&str], me: &str, changed: &str) -> DaemonMembership {
        let members: Vec<GroupName> = members.iter().map(|s| n(s)).collect();
        let my_index = members.iter().position(|m| *m == n(me)).unwrap() as i16;
        DaemonMembership {
            gid: GroupId::from_words([1, 100, idx]),
            service_type: REG_MEMB_MESS | cause,
            members: members.clone(),
            my_index,
            changed: (cause & CAUSED_BY_NETWORK == 0).then(|| n(changed)),
            my_vs_set: if cause & CAUSED_BY_NETWORK != 0 {
                members
            } else {
                Vec::new()
            },
        }
    }

    fn delivered(actions: &[Action]) -> Vec<u32> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Deliver(m) => Some(m.service_type),
                _ => None,
            })
            .collect()
    }

    fn sent(actions: &[Action]) -> Vec<Control> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    /// A group with `me` installed in the view [a, b] (index 2 of the daemon).
    fn steady(me: &str) -> Group {
        let mut g = Group::new(n("g"), n(me));
        let a = g.on_membership(memb(2, CAUSED_BY_JOIN, &["#a#h", "#b#h"], me, "#b#h"));
        assert_eq!(sent(&a), vec![Control::FlushOk(GroupId::from_words([1, 100, 2]))]);
        assert!(delivered(&a).is_empty());
        g.on_flush_ok(n("#a#h"), GroupId::from_words([1, 100, 2]));
        let a = g.on_flush_ok(n("#b#h"), GroupId::from_words([1, 100, 2]));
        assert_eq!(delivered(&a), vec![REG_MEMB_MESS | CAUSED_BY_JOIN]);
        assert_eq!(
            sent(&a),
            vec![Control::FlushRecv(GroupId::from_words([1, 100, 2]))]
        );
        assert_eq!(g.join, JoinState::Joined);
        assert_eq!(g.state, ViewState::Verify);
        g.on_flush_recv(GroupId::from_words([1, 100, 2]));
        g.on_flush_recv(GroupId::from_words([1, 100, 2]));
        assert_eq!(g.state, ViewState::Steady);
        g
    }

    #[test]
    fn joiner_agrees_by_itself_and_installs_when_all_agreed() {
        let g = steady("#b#h");
        assert_eq!(g.view_members(), &[n("#a#h"), n("#b#h")]);
        assert_eq!(g.view_id(), GroupId::from_words([1, 100, 2]));
    }

    #[test]
    fn installed_view_body_names_the_joiner() {
        let mut g = Group::new(n("g"), n("#b#h"));
        g.on_membership(memb(2, CAUSED_BY_JOIN, &["#a#h", "#b#h"], "#b#h", "#b#h"));
        g.on_flush_ok(n("#a#h"), GroupId::from_words([1, 100, 2]));
        let a = g.on_flush_ok(n("#b#h"), GroupId::from_words([1, 100, 2]));
        let Action::Deliver(m) = &a[0] else {
            panic!("{a:?}")
        };
        assert_eq!(m.sender, n("g"));
        assert_eq!(m.mess_type, 1);
        assert_eq!(m.groups, vec![n("#a#h"), n("#b#h")]);
        assert_eq!(m.body.len(), 12 + 4 + 32);
        assert_eq!(&m.body[..12], &GroupId::from_words([1, 100, 2]).to_native());
        assert_eq!(&m.body[12..16], &1i32.to_ne_bytes());
        assert_eq!(&m.body[16..20], b"#b#h");
    }

    #[test]
    fn member_is_asked_then_flushes_once() {
        let mut g = steady("#a#h");
        let a = g.on_membership(memb(3, CAUSED_BY_JOIN, &["#a#h", "#b#h", "#c#h"], "#a#h", "#c#h"));
        assert_eq!(delivered(&a), vec![FLUSH_REQ_MESS]);
        assert!(sent(&a).is_empty());
        assert_eq!(g.state, ViewState::Authorize);
        assert!(g.is_vulnerable(FIFO_MESS));
        assert!(!g.is_vulnerable(0x10));
        assert_eq!(g.flush(), Ok(Control::FlushOk(GroupId::from_words([1, 100, 3]))));
        assert_eq!(g.flush(), Err(code::ILLEGAL_STATE));
        for m in ["#a#h", "#b#h"] {
            assert!(g.on_flush_ok(n(m), GroupId::from_words([1, 100, 3])).is_empty());
        }
        let a = g.on_flush_ok(n("#c#h"), GroupId::from_words([1, 100, 3]));
        assert_eq!(delivered(&a), vec![REG_MEMB_MESS | CAUSED_BY_JOIN]);
        assert_eq!(g.view_members().len(), 3);
    }

    #[test]
    fn data_only_from_view_members_and_vulnerable_held_back() {
        let mut g = steady("#a#h");
        let msg = |from: &str| Message {
            service_type: FIFO_MESS,
            sender: n(from),
            groups: vec![n("g")],
            mess_type: 7,
            endian_mismatch: 0,
            body: b"x".to_vec(),
        };
        assert_eq!(g.on_data(msg("#b#h"), None).len(), 1);
        assert!(g.on_data(msg("#z#h"), None).is_empty());
        g.on_membership(memb(3, CAUSED_BY_JOIN, &["#a#h", "#b#h", "#c#h"], "#a#h", "#c#h"));
        g.flush().unwrap();
        // b already installed view 3 and sent FIFO in it: held back.
        assert!(g
            .on_data(msg("#b#h"), Some(GroupId::from_words([1, 100, 3])))
            .is_empty());
        // A vulnerable message of the old view is shown now.
        assert_eq!(
            g.on_data(msg("#b#h"), Some(GroupId::from_words([1, 100, 2])))
                .len(),
            1
        );
        g.on_flush_ok(n("#a#h"), GroupId::from_words([1, 100, 3]));
        g.on_flush_ok(n("#b#h"), GroupId::from_words([1, 100, 3]));
        let a = g.on_flush_ok(n("#c#h"), GroupId::from_words([1, 100, 3]));
        assert_eq!(delivered(&a), vec![REG_MEMB_MESS | CAUSED_BY_JOIN, FIFO_MESS]);
    }

    #[test]
    fn disconnect_shows_request_then_transitional() {
        let mut g = steady("#a#h");
        let a = g.on_membership(memb(3, CAUSED_BY_DISCONNECT, &["#a#h"], "#a#h", "#b#h"));
        assert_eq!(delivered(&a), vec![FLUSH_REQ_MESS, TRANSITION_MESS]);
        g.flush().unwrap();
        let a = g.on_flush_ok(n("#a#h"), GroupId::from_words([1, 100, 3]));
        let Action::Deliver(m) = &a[0] else { panic!() };
        assert_eq!(m.service_type, REG_MEMB_MESS | CAUSED_BY_DISCONNECT);
        assert_eq!(&m.body[16..20], b"#b#h");
    }

    #[test]
    fn change_whose_member_left_unflushed_folds_into_network() {
        // a, b, c installed; d joins (change 4); before d's flush ok, b leaves (change 5).
        let mut g = Group::new(n("g"), n("#a#h"));
        g.on_membership(memb(3, CAUSED_BY_JOIN, &["#a#h", "#b#h", "#c#h"], "#a#h", "#a#h"));
        for m in ["#a#h", "#b#h", "#c#h"] {
            g.on_flush_ok(n(m), GroupId::from_words([1, 100, 3]));
        }
        assert_eq!(g.join, JoinState::Joined);
        g.on_membership(memb(
            4,
            CAUSED_BY_JOIN,
            &["#a#h", "#b#h", "#c#h", "#d#h"],
            "#a#h",
            "#d#h",
        ));
        g.flush().unwrap();
        g.on_flush_ok(n("#a#h"), GroupId::from_words([1, 100, 4]));
        g.on_flush_ok(n("#c#h"), GroupId::from_words([1, 100, 4]));
        g.on_flush_ok(n("#d#h"), GroupId::from_words([1, 100, 4]));
        // b leaves without having agreed to 4: 4 can never complete.
        let a = g.on_membership(memb(
            5,
            CAUSED_BY_LEAVE,
            &["#a#h", "#c#h", "#d#h"],
            "#a#h",
            "#b#h",
        ));
        // Already agreed: agrees to 5 at once; the view shrank: transitional.
        assert_eq!(sent(&a), vec![Control::FlushOk(GroupId::from_words([1, 100, 5]))]);
        assert_eq!(delivered(&a), vec![TRANSITION_MESS]);
        for m in ["#a#h", "#c#h"] {
            assert!(g.on_flush_ok(n(m), GroupId::from_words([1, 100, 5])).is_empty());
        }
        let a = g.on_flush_ok(n("#d#h"), GroupId::from_words([1, 100, 5]));
        let Action::Deliver(m) = &a[0] else { panic!() };
        assert_eq!(m.service_type, REG_MEMB_MESS | CAUSED_BY_NETWORK);
        // The vs set: members of the old view that are still there.
        assert_eq!(&m.body[12..16], &2i32.to_ne_bytes());
        assert_eq!(GroupName::truncated(&m.body[16..48]), n("#a#h"));
        assert_eq!(GroupName::truncated(&m.body[48..80]), n("#c#h"));
    }

    #[test]
    fn change_whose_leaver_had_agreed_is_installed_then_shrinks() {
        let mut g = steady("#a#h");
        g.on_membership(memb(3, CAUSED_BY_JOIN, &["#a#h", "#b#h", "#c#h"], "#a#h", "#c#h"));
        g.flush().unwrap();
        g.on_flush_ok(n("#b#h"), GroupId::from_words([1, 100, 3]));
        g.on_flush_ok(n("#a#h"), GroupId::from_words([1, 100, 3]));
        let a = g.on_membership(memb(4, CAUSED_BY_DISCONNECT, &["#a#h", "#c#h"], "#a#h", "#b#h"));
        assert_eq!(delivered(&a), vec![TRANSITION_MESS]);
        let a = g.on_flush_ok(n("#c#h"), GroupId::from_words([1, 100, 3]));
        // View 3 installed (with b, already gone): the program is asked
        // about the next change and told the view shrank.
        assert_eq!(
            delivered(&a),
            vec![REG_MEMB_MESS | CAUSED_BY_JOIN, FLUSH_REQ_MESS, TRANSITION_MESS]
        );
        assert!(sent(&a).is_empty());
        assert_eq!(g.state, ViewState::Authorize);
        assert_eq!(g.flush(), Ok(Control::FlushOk(GroupId::from_words([1, 100, 4]))));
        g.on_flush_ok(n("#a#h"), GroupId::from_words([1, 100, 4]));
        let a = g.on_flush_ok(n("#c#h"), GroupId::from_words([1, 100, 4]));
        assert_eq!(delivered(&a), vec![REG_MEMB_MESS | CAUSED_BY_DISCONNECT]);
    }

    #[test]
    fn leaving_member_may_not_flush() {
        let mut g = steady("#a#h");
        assert!(g.start_leave());
        assert!(!g.start_leave());
        g.on_membership(memb(3, CAUSED_BY_JOIN, &["#a#h", "#b#h", "#c#h"], "#a#h", "#c#h"));
        assert_eq!(g.flush(), Err(spread_wire::client::code::ILLEGAL_GROUP));
    }

    #[test]
    fn transitional_from_daemon_is_silent_in_a_settled_view() {
        let mut g = steady("#a#h");
        assert!(g.on_transitional().is_empty());
        let mut m = memb(3, CAUSED_BY_NETWORK, &["#a#h"], "#a#h", "");
        m.my_vs_set = vec![n("#a#h")];
        let a = g.on_membership(m);
        assert_eq!(delivered(&a), vec![FLUSH_REQ_MESS]);
    }
}
