//! Spread's daemon membership: finding the other daemons and agreeing on a
//! new ring with extended virtual synchrony (EVS).
//!
//! States (`OP`, `SEG`, `REPRESENTED`, `GATHER`, `FORM`, `EVS`) and their
//! messages follow the 4.4 algorithm so that mixed rings agree:
//!
//! * a daemon that loses its token broadcasts ALIVE in its segment (`SEG`);
//!   the smallest daemon of the segment becomes its representative and
//!   gathers with JOIN messages (`GATHER`), the others are `REPRESENTED`;
//! * the smallest representative sends a FORM1 token through every gathered
//!   daemon and representative; the last one turns it into a FORM2 with the
//!   members sorted, which every member reads (`FORM` -> `EVS`);
//! * in `EVS` the new ring's token recovers the old rings' missing packets;
//!   then each daemon delivers what it can in its old configuration, the
//!   transitional configuration (the old members that came along), what is
//!   left, and the new regular configuration.
//!
//! [`Membership`] owns the algorithm's state and timers. It reads the packet
//! store through the operations it needs (holes, adopting an agreed aru and
//! highest sequence, backing off) and otherwise only answers: datagrams to
//! send ([`Membership::poll_transmit`]) and what the ring must do
//! ([`MembershipEvent`]). It never calls the ring: the ring owns it, feeds it
//! membership datagrams, FORM tokens and token loss, and runs its timers.

mod form;
mod gather;
mod reps;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use spread_wire::client::MembId;

pub(crate) use form::AcceptedForm2;

use crate::packet_store::PacketStore;
use crate::ring_conf::{ip, Destination, Members, Site, Transmit};
use crate::timers::{Due, MembershipTimer as Timer, Timers};
use spread_wire::daemon::{self as wire, Rep};

/// Where the membership algorithm is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// A ring is installed and working.
    Op,
    /// Token lost: announcing myself in my segment.
    Seg,
    /// Another daemon of my segment gathers for me.
    Represented,
    /// Collecting representatives with JOIN messages.
    Gather,
    /// A FORM1 token is going round.
    Form,
    /// The new ring's token recovers the old rings' packets.
    Evs,
}

/// What the ring must do for the membership algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MembershipEvent {
    /// The ring is gone: stop delivering, forget the last token and stop
    /// waiting for the next one.
    TokenLost,
    /// A FORM token left this daemon: stop delivering and wait at most the
    /// FORM timeout for the new ring's token.
    FormSent,
}

/// Why a membership datagram was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rejected {
    UnknownDaemon(u32),
    MalformedJoin { from: u32, why: String },
    MalformedForm(String),
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::UnknownDaemon(id) => write!(f, "membership message from unknown daemon {}", ip(*id)),
            Rejected::MalformedJoin { from, why } => write!(f, "malformed JOIN from {}: {why}", ip(*from)),
            Rejected::MalformedForm(why) => write!(f, "malformed FORM token: {why}"),
        }
    }
}

/// Commit set: the daemons whose old-ring packets will be delivered; the
/// first `num_trans` form the transitional configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CommitSet {
    pub members: Vec<u32>,
    pub num_trans: usize,
}

impl CommitSet {
    pub fn me(id: u32) -> CommitSet {
        CommitSet {
            members: vec![id],
            num_trans: 1,
        }
    }
}

/// One daemon's membership algorithm.
pub(crate) struct Membership {
    /// This daemon and its configuration (the ring reads it from here).
    pub(crate) site: Site,
    timers: Timers<Timer>,
    out: VecDeque<Transmit>,
    events: VecDeque<MembershipEvent>,

    state: State,
    token_alive: bool,
    membership: Members,
    membership_id: MembId,
    future_membership: Members,
    future_membership_id: MembId,
    form1_memb_id: MembId,
    trans_memb_id: MembId,
    f_trans_memb_time: i32,
    last_time_used: i32,
    my_seg_rep: Option<u32>,
    foreign_found: bool,
    /// Daemons gathered (`F_members`).
    f_members: Vec<u32>,
    /// Representatives gathered (`F_reps`); mine first.
    f_reps: Vec<Rep>,
    /// `rep_index` of `F_reps` as JOINs show it: 0 until this daemon first
    /// sends a FORM1, then 1 (the original keeps the stale value).
    f_reps_index: i16,
    /// Representatives to send JOINs to.
    potential_reps: Vec<Rep>,
    commit_set: CommitSet,
    future_commit_set: CommitSet,
    just_installed: bool,
    trans_membership: Members,
    commit_membership: Members,
    reg_membership: Members,
}

impl Membership {
    /// A daemon that has just started: alone, in OP with no token, so the
    /// caller's first [`Membership::token_loss`] starts the search.
    fn new(site: Site) -> Membership {
        let my_id = site.my_id;
        let me = site.conf.ordered([my_id]);
        Membership {
            site,
            timers: Timers::default(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            state: State::Op,
            token_alive: false,
            membership: me.clone(),
            membership_id: MembId {
                proc_id: my_id as i32,
                time: -1,
            },
            future_membership: me.clone(),
            future_membership_id: MembId::default(),
            form1_memb_id: MembId::default(),
            trans_memb_id: MembId::default(),
            f_trans_memb_time: 0,
            last_time_used: -1,
            my_seg_rep: None,
            foreign_found: false,
            f_members: vec![my_id],
            f_reps: Vec::new(),
            f_reps_index: 0,
            potential_reps: Vec::new(),
            commit_set: CommitSet::me(my_id),
            future_commit_set: CommitSet::me(my_id),
            just_installed: false,
            trans_membership: me.clone(),
            commit_membership: me.clone(),
            reg_membership: me,
        }
    }

    /// A daemon that has just started: it declares token loss at once and
    /// looks for the others.
    pub(crate) fn start(site: Site, now: Clock, store: &mut PacketStore) -> Membership {
        let mut m = Membership::new(site);
        m.token_loss(now, store);
        m
    }

    // --- what the ring reads ---

    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// Whether this daemon takes part in a ring whose token circulates.
    pub(crate) fn token_alive(&self) -> bool {
        self.token_alive
    }

    /// The regular membership.
    pub(crate) fn members(&self) -> &Members {
        &self.membership
    }

    pub(crate) fn membership_id(&self) -> MembId {
        self.membership_id
    }

    /// The ring the token belongs to: the future one while in EVS.
    pub(crate) fn active(&self) -> &Members {
        if self.state == State::Evs {
            &self.future_membership
        } else {
            &self.membership
        }
    }

    pub(crate) fn active_id(&self) -> MembId {
        if self.state == State::Evs {
            self.future_membership_id
        } else {
            self.membership_id
        }
    }

    /// The ring a FORM2 decided (where tokens go from EVS on).
    pub(crate) fn future_members(&self) -> &Members {
        &self.future_membership
    }

    /// The transitional configuration last built and its id.
    pub(crate) fn transitional_configuration(&self) -> (MembId, &Members) {
        (self.trans_memb_id, &self.trans_membership)
    }

    /// Every daemon whose old-ring packets are delivered in this change.
    pub(crate) fn commit_members(&self) -> &Members {
        &self.commit_membership
    }

    // --- what the ring tells it ---

    /// The first token of a newly installed ring passed here: true once.
    pub(crate) fn take_just_installed(&mut self) -> bool {
        std::mem::take(&mut self.just_installed)
    }

    /// In EVS this daemon has every packet of its old ring: the commit set
    /// the FORM2 carried is now the one delivery follows.
    pub(crate) fn old_ring_recovered(&mut self) {
        self.commit_set = self.future_commit_set.clone();
    }

    /// Adopts a re-read configuration and starts over (Dynamic
    /// Configuration).
    pub(crate) fn reconfigure(&mut self, now: Clock, site: Site, store: &mut PacketStore) {
        self.site = site;
        self.token_loss(now, store);
    }

    /// A reload's singleton ring is in: look for the others now.
    pub(crate) fn look_up_now(&mut self, now: Clock) {
        self.arm(now, Timer::Lookup, Duration::ZERO);
    }

    // --- the sans-IO surface ---

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<MembershipEvent> {
        self.events.pop_front()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The earliest of its timers due at `now`, not yet run.
    pub(crate) fn next_due(&self, now: Instant) -> Option<Due> {
        self.timers.peek_due(now).map(|(_, due)| due)
    }

    /// Runs the earliest of its timers due at `now`, if any.
    pub(crate) fn handle_timeout(&mut self, now: Clock, store: &PacketStore) -> bool {
        let Some(t) = self.timers.pop_due(now.mono) else {
            return false;
        };
        match t {
            Timer::Alive => self.scast_alive(now, true),
            Timer::Join => self.send_join(now),
            Timer::FormOrFail => self.form_or_fail(now, store),
            Timer::GatherOrRepresented => self.gather_or_represented(now),
            Timer::ShiftToSeg => self.shift_to_seg(now),
            Timer::Lookup => self.lookup_new_members(now),
        }
        true
    }

    fn arm(&mut self, now: Clock, t: Timer, after: Duration) {
        self.timers.set(t, now.mono + after);
    }

    fn disarm(&mut self, t: Timer) {
        self.timers.clear(t);
    }

    fn send(&mut self, to: Destination, bytes: Vec<u8>) {
        self.out.push_back(Transmit { to, bytes });
    }

    /// Builds the transitional and commit configurations from the commit
    /// set: the first `num_trans` are the transitional one, led (in its id)
    /// by its first daemon in configuration order.
    pub(crate) fn build_transitional(&mut self) {
        let conf = &self.site.conf;
        let cs = &self.commit_set;
        let trans = conf.ordered(cs.members.iter().take(cs.num_trans).copied());
        let commit = conf.ordered(cs.members.iter().copied());
        self.trans_memb_id = MembId {
            proc_id: trans.leader().unwrap_or(self.site.my_id) as i32,
            time: self.f_trans_memb_time,
        };
        self.trans_membership = trans;
        self.commit_membership = commit;
    }

    /// Installs the future membership as the regular one.
    pub(crate) fn install_regular(&mut self, now: Clock) {
        self.just_installed = true;
        self.membership = self.future_membership.clone();
        self.membership_id = self.future_membership_id;
        self.reg_membership = self.membership.clone();
        self.commit_set = CommitSet::me(self.site.my_id);
        self.foreign_found = false;
        if self.membership.leader() == Some(self.site.my_id) {
            self.arm(now, Timer::Lookup, self.site.timeouts.lookup);
        }
        log::info!(
            "membership: id is ({}, {}); members {:?}",
            ip(self.membership_id.proc_id as u32),
            self.membership_id.time,
            self.membership.ids().iter().map(|id| ip(*id)).collect::<Vec<_>>()
        );
        self.shift_to_op();
    }
}

/// Adds `id` unless present (`Insert_member`).
pub(crate) fn insert_member(list: &mut Vec<u32>, id: u32) {
    if !list.contains(&id) && list.len() < wire::MAX_PROCS_RING {
        list.push(id);
    }
}

#[cfg(test)]
mod tests;
