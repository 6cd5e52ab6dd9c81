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
//! The engine methods are on [`crate::ring::RingEngine`]; this module holds the
//! membership state and the membership half of the engine.

mod form;
mod reps;

use crate::clock::Clock;
use spread_wire::client::MembId;
use spread_wire::endian::ByteOrder;

use crate::ring::wire::{self, bits, rep_kind, MembersInfo, PacketHeader, Rep, RepsInfo};
use crate::ring::{DeliveryThreshold, RingEngine};
use crate::ring_conf::{ip, Channel, Conf, Destination, Members};
use crate::timers::Timer;

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

pub(crate) struct MembershipState {
    pub state: State,
    pub token_alive: bool,
    pub membership: Members,
    pub membership_id: MembId,
    pub future_membership: Members,
    pub future_membership_id: MembId,
    pub form1_memb_id: MembId,
    pub trans_memb_id: MembId,
    pub f_trans_memb_time: i32,
    pub last_time_used: i32,
    pub my_seg_rep: Option<u32>,
    pub foreign_found: bool,
    /// Daemons gathered (`F_members`).
    pub f_members: Vec<u32>,
    /// Representatives gathered (`F_reps`); mine first.
    pub f_reps: Vec<Rep>,
    /// `rep_index` of `F_reps` as JOINs show it: 0 until this daemon first
    /// sends a FORM1, then 1 (the original keeps the stale value).
    pub f_reps_index: i16,
    /// Representatives to send JOINs to.
    pub potential_reps: Vec<Rep>,
    pub commit_set: CommitSet,
    pub future_commit_set: CommitSet,
    pub just_installed: bool,
    pub trans_membership: Members,
    pub commit_membership: Members,
    pub reg_membership: Members,
}

impl MembershipState {
    pub(crate) fn new(my_id: u32, me: Members) -> MembershipState {
        MembershipState {
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
}

impl MembershipState {
    /// A REFER names a representative to probe; only GATHER listens.
    pub(crate) fn handle_refer(&mut self, conf: &Conf, referred: MembId) {
        if self.state != State::Gather {
            return;
        }
        let id = referred.proc_id as u32;
        let Some(pos) = conf.pos(id) else {
            log::debug!("membership: REFER to unknown daemon {}", ip(id));
            return;
        };
        let kind = referred.time as i16;
        if ![rep_kind::POTENTIAL, rep_kind::SEG, rep_kind::RING].contains(&kind) {
            return;
        }
        reps::insert_rep(
            conf,
            &mut self.potential_reps,
            Rep {
                proc_id: id,
                kind,
                seg_index: pos.seg as i16,
            },
        );
    }

    /// Builds the transitional and commit configurations from the commit
    /// set: the first `num_trans` are the transitional one, led (in its id)
    /// by its first daemon in configuration order.
    pub(crate) fn transitional(&mut self, conf: &Conf, my_id: u32) {
        let cs = &self.commit_set;
        let trans = conf.ordered(cs.members.iter().take(cs.num_trans).copied());
        let commit = conf.ordered(cs.members.iter().copied());
        self.trans_memb_id = MembId {
            proc_id: trans.leader().unwrap_or(my_id) as i32,
            time: self.f_trans_memb_time,
        };
        self.trans_membership = trans;
        self.commit_membership = commit;
    }
}

impl RingEngine {
    pub(crate) fn memb_init(&mut self, now: Clock) {
        self.memb.state = State::Op;
        self.memb_token_loss(now);
    }

    fn seg_of(&self, id: u32) -> Option<usize> {
        self.conf.pos(id).map(|p| p.seg)
    }

    /// Representatives of the other segments to probe after losing a ring.
    fn potential_from(&self, ring: &Members) -> Vec<Rep> {
        reps::potential_from_ring(&self.conf, self.my_seg, ring)
    }

    /// `Memb_token_loss`: the ring is gone (or never was); start over.
    pub(crate) fn memb_token_loss(&mut self, now: Clock) {
        match self.memb.state {
            State::Op => {
                let ring = self.memb.membership.clone();
                self.memb.potential_reps = self.potential_from(&ring);
            }
            State::Seg | State::Represented => {
                log::error!("membership: token loss in state {:?}", self.memb.state);
            }
            State::Gather => {
                let mut reps = Vec::new();
                for rep in self.memb.f_reps.iter().skip(1).copied().collect::<Vec<_>>() {
                    reps::insert_rep(&self.conf, &mut reps, rep);
                }
                let ring = self.memb.membership.clone();
                for rep in self.potential_from(&ring) {
                    reps::insert_rep(&self.conf, &mut reps, rep);
                }
                self.memb.potential_reps = reps;
            }
            State::Form => {}
            State::Evs => {
                self.backoff_membership();
                let ring = self.memb.future_membership.clone();
                self.memb.potential_reps = self.potential_from(&ring);
            }
        }
        log::warn!("membership: token lost in state {:?}", self.memb.state);
        self.memb.token_alive = false;
        self.threshold = DeliveryThreshold::Blocked;
        self.memb.just_installed = false;
        for t in [
            Timer::TokenLoss,
            Timer::Join,
            Timer::FormOrFail,
            Timer::Hurry,
            Timer::Lookup,
        ] {
            self.disarm(t);
        }
        self.last_token.kind = 0;
        self.last_token.seq = 0;
        self.last_token.aru = 0;
        self.memb.membership = self.conf.ordered([self.my_id]);
        self.shift_to_seg(now);
    }

    fn shift_to_op(&mut self) {
        self.memb.state = State::Op;
    }

    pub(crate) fn shift_to_seg(&mut self, now: Clock) {
        self.memb.state = State::Seg;
        self.memb.f_members = vec![self.my_id];
        self.arm(now, Timer::Alive, std::time::Duration::ZERO);
        self.arm(now, Timer::GatherOrRepresented, self.to.seg);
    }

    pub(crate) fn gather_or_represented(&mut self, now: Clock) {
        self.memb.my_seg_rep = None;
        if reps::smallest_member(&self.conf, &self.memb.f_members) == Some(self.my_id) {
            self.shift_to_gather(now);
        } else {
            self.shift_to_represented(now);
        }
    }

    fn shift_to_gather(&mut self, now: Clock) {
        log::debug!("membership: GATHER (token alive: {})", self.memb.token_alive);
        self.memb.state = State::Gather;
        self.memb.f_reps = vec![Rep {
            proc_id: self.my_id,
            kind: if self.memb.token_alive {
                rep_kind::RING
            } else {
                rep_kind::SEG
            },
            seg_index: self.my_seg as i16,
        }];
        self.disarm(Timer::Alive);
        self.disarm(Timer::Lookup);
        self.arm(now, Timer::Join, std::time::Duration::ZERO);
        self.arm(now, Timer::FormOrFail, self.to.gather);
    }

    fn shift_to_represented(&mut self, now: Clock) {
        log::debug!("membership: REPRESENTED");
        self.memb.state = State::Represented;
        self.disarm(Timer::Alive);
        self.disarm(Timer::GatherOrRepresented);
        self.arm(now, Timer::ShiftToSeg, self.to.rep);
    }

    pub(crate) fn form_or_fail(&mut self, now: Clock) {
        if reps::smallest_rep(&self.conf, &self.memb.f_reps).map(|(id, _)| id) == Some(self.my_id) {
            if self.memb.token_alive && self.memb.f_reps.len() == 1 {
                self.disarm(Timer::Join);
                self.arm(now, Timer::Lookup, self.to.lookup);
                self.shift_to_op();
            } else {
                self.create_form1(now);
            }
        } else if self.memb.token_alive {
            log::debug!("membership: gather failed, back to OP");
            self.disarm(Timer::Join);
            self.arm(now, Timer::Lookup, self.to.lookup);
            self.shift_to_op();
        } else {
            self.memb.f_members = vec![self.my_id];
            let mut reps = Vec::new();
            for rep in self.memb.f_reps.iter().skip(1).copied().collect::<Vec<_>>() {
                reps::insert_rep(&self.conf, &mut reps, rep);
            }
            self.memb.potential_reps = reps;
            self.shift_to_gather(now);
        }
    }

    fn probe_header(&self, kind: u32) -> PacketHeader {
        PacketHeader {
            kind,
            transmitter: self.my_id,
            proc_id: self.my_id,
            conf_hash: self.conf_hash,
            ..Default::default()
        }
    }

    /// `Net_scast` of a membership packet to my own segment.
    fn scast_my_segment(&mut self, bytes: Vec<u8>) {
        if self.bcast_needed() {
            self.send(Destination::Segment(self.my_seg), bytes);
        }
    }

    fn ucast_data(&mut self, id: u32, bytes: Vec<u8>) {
        if self.conf.knows(id) {
            self.send(
                Destination::Daemon {
                    id,
                    channel: Channel::Data,
                },
                bytes,
            );
        }
    }

    /// Broadcasts ALIVE with the daemons gathered so far; `repeat` re-arms.
    pub(crate) fn scast_alive(&mut self, now: Clock, repeat: bool) {
        let members = MembersInfo {
            done: self.memb.f_members.len(),
            ids: self.memb.f_members.clone(),
        };
        let bytes = wire::emit_probe(&self.probe_header(bits::ALIVE), &members, None);
        self.scast_my_segment(bytes);
        if repeat {
            self.arm(now, Timer::Alive, self.to.alive);
        }
    }

    fn join_bytes(&self) -> Vec<u8> {
        let members = MembersInfo {
            done: self.memb.f_members.len(),
            ids: self.memb.f_members.clone(),
        };
        let reps = RepsInfo {
            rep_index: self.memb.f_reps_index,
            reps: self.memb.f_reps.clone(),
        };
        wire::emit_probe(&self.probe_header(bits::JOIN), &members, Some(&reps))
    }

    pub(crate) fn send_join(&mut self, now: Clock) {
        let bytes = self.join_bytes();
        if !self.memb.token_alive {
            self.scast_my_segment(bytes.clone());
        }
        let targets: Vec<u32> = self.memb.potential_reps.iter().map(|r| r.proc_id).collect();
        for id in targets {
            self.ucast_data(id, bytes.clone());
        }
        self.arm(now, Timer::Join, self.to.join);
    }

    /// The leader's periodic probe for daemons outside the ring.
    pub(crate) fn memb_lookup_new_members(&mut self, now: Clock) {
        if self.memb.state != State::Op {
            return;
        }
        self.memb.potential_reps.clear();
        self.memb.f_reps = vec![Rep {
            proc_id: self.my_id,
            kind: rep_kind::RING,
            seg_index: self.my_seg as i16,
        }];
        self.memb.f_members.clear();
        let bytes = self.join_bytes();
        let mut num_missing = 0;
        if self.conf.segments.len() == 1 {
            self.scast_my_segment(bytes);
            num_missing += 1;
        } else {
            let all: Vec<u32> = self
                .conf
                .segments
                .iter()
                .flat_map(|s| s.daemons.clone())
                .collect();
            for id in all {
                if !self.memb.reg_membership.contains(id) {
                    self.ucast_data(id, bytes.clone());
                    num_missing += 1;
                }
            }
        }
        if num_missing > 0 {
            self.shift_to_gather(now);
        }
    }

    pub(crate) fn memb_handle_message(&mut self, now: Clock, h: &PacketHeader, datagram: &[u8]) {
        if !self.conf.knows(h.proc_id) {
            self.drop_datagram(
                now,
                format_args!("membership message from unknown daemon {}", ip(h.proc_id)),
            );
            return;
        }
        if h.kind & bits::ALIVE != 0 {
            self.handle_alive(now, h.proc_id);
        } else if h.kind & bits::JOIN != 0 {
            match wire::parse_probe(datagram, true) {
                Ok(p) => self.handle_join(now, h.proc_id, &p.members, &p.reps.unwrap_or_default()),
                Err(e) => {
                    self.drop_datagram(now, format_args!("malformed JOIN from {}: {e:?}", ip(h.proc_id)))
                }
            }
        } else if h.kind & bits::REFER != 0 {
            self.memb.handle_refer(&self.conf, h.memb_id);
        }
    }

    fn handle_alive(&mut self, now: Clock, from: u32) {
        match self.memb.state {
            State::Op => {
                if self.memb.membership.contains(from) {
                    self.memb_token_loss(now);
                    insert_member(&mut self.memb.f_members, from);
                }
            }
            State::Seg => insert_member(&mut self.memb.f_members, from),
            State::Represented => self.arm(now, Timer::ShiftToSeg, self.to.rep),
            State::Gather => {
                if !self.memb.token_alive {
                    insert_member(&mut self.memb.f_members, from);
                } else if self.memb.membership.contains(from) {
                    self.memb_token_loss(now);
                    insert_member(&mut self.memb.f_members, from);
                }
            }
            State::Form => {}
            State::Evs => {
                if self.memb.future_membership.contains(from) {
                    self.memb_token_loss(now);
                    insert_member(&mut self.memb.f_members, from);
                }
            }
        }
    }

    fn refer_bytes(&self, rep: u32, kind: i16) -> Vec<u8> {
        let mut h = self.probe_header(bits::REFER);
        h.memb_id = MembId {
            proc_id: rep as i32,
            time: i32::from(kind),
        };
        h.emit_bare()
    }

    fn handle_join(&mut self, now: Clock, from: u32, members: &MembersInfo, reps: &RepsInfo) {
        let Some(first_rep) = reps.reps.first().copied() else {
            log::debug!("membership: JOIN without representatives from {}", ip(from));
            return;
        };
        match self.memb.state {
            State::Op => {
                if !self.memb.membership.contains(from) {
                    if self.memb.membership.leader() == Some(self.my_id) {
                        self.memb.potential_reps = vec![first_rep];
                        self.memb.f_members.clear();
                        self.shift_to_gather(now);
                    } else if first_rep.seg_index != self.my_seg as i16
                        || self.memb.membership.first_in_segment(&self.conf, self.my_seg) == Some(self.my_id)
                    {
                        if let Some(leader) = self.memb.membership.leader() {
                            let b = self.refer_bytes(leader, rep_kind::RING);
                            self.ucast_data(from, b);
                        }
                    }
                } else if self.conf.segments.len() > 1 {
                    self.memb_token_loss(now);
                }
            }
            State::Seg => {
                if self.seg_of(from) == Some(self.my_seg) && first_rep.kind == rep_kind::SEG {
                    self.memb.my_seg_rep = Some(from);
                    self.shift_to_represented(now);
                    let _ = members;
                    self.scast_alive(now, false);
                }
            }
            State::Represented => {
                if self.seg_of(from) == Some(self.my_seg) && first_rep.kind == rep_kind::SEG {
                    if self.memb.my_seg_rep != Some(from) {
                        log::debug!("membership: my representative is now {}", ip(from));
                        self.memb.my_seg_rep = Some(from);
                    }
                    self.arm(now, Timer::ShiftToSeg, self.to.rep);
                    self.scast_alive(now, false);
                } else if let Some(rep) = self.memb.my_seg_rep {
                    let b = self.refer_bytes(rep, rep_kind::SEG);
                    self.ucast_data(from, b);
                }
            }
            State::Gather => {
                let mut f_reps = std::mem::take(&mut self.memb.f_reps);
                reps::insert_rep(&self.conf, &mut f_reps, first_rep);
                self.memb.f_reps = f_reps;
                let mut pot = std::mem::take(&mut self.memb.potential_reps);
                for rep in &reps.reps {
                    reps::insert_rep(&self.conf, &mut pot, *rep);
                }
                self.memb.potential_reps = pot;
                if reps::smallest_rep(&self.conf, &self.memb.f_reps).map(|(id, _)| id)
                    == Some(first_rep.proc_id)
                {
                    self.arm(now, Timer::FormOrFail, self.to.gather);
                }
            }
            State::Form => {}
            State::Evs => {
                if self.memb.future_membership.contains(from) {
                    self.memb_token_loss(now);
                    insert_member(&mut self.memb.f_members, from);
                }
            }
        }
    }

    /// A data packet of another ring: someone is out there.
    pub(crate) fn memb_handle_foreign(&mut self, now: Clock, h: &PacketHeader, raw: &[u8], order: ByteOrder) {
        if self.memb.state != State::Op || !self.conf.knows(h.proc_id) {
            return;
        }
        if self.memb.membership.leader() == Some(self.my_id) {
            self.memb_lookup_new_members(now);
        } else if self.memb.membership.first_in_segment(&self.conf, self.my_seg) == Some(self.my_id)
            && !self.memb.foreign_found
        {
            self.memb.foreign_found = true;
            if let Some(leader) = self.memb.membership.leader() {
                let mut fwd = raw.to_vec();
                fwd[4..8].copy_from_slice(&order.u32_bytes(self.my_id));
                self.ucast_data(leader, fwd.clone());
                self.ucast_data(leader, fwd);
            }
        }
    }

    /// `Backoff_membership`: a failed EVS attempt forgets its agreed holes.
    pub(crate) fn backoff_membership(&mut self) {
        self.store.back_off();
    }

    /// Builds the transitional and commit configurations from the commit set.
    pub(crate) fn memb_transitional(&mut self) {
        self.memb.transitional(&self.conf, self.my_id);
    }

    /// Installs the future membership as the regular one.
    pub(crate) fn memb_regular(&mut self, now: Clock) {
        self.memb.just_installed = true;
        self.memb.membership = self.memb.future_membership.clone();
        self.memb.membership_id = self.memb.future_membership_id;
        self.memb.reg_membership = self.memb.membership.clone();
        self.memb.commit_set = CommitSet::me(self.my_id);
        self.memb.foreign_found = false;
        self.stats.memberships_installed += 1;
        if self.memb.membership.leader() == Some(self.my_id) {
            self.arm(now, Timer::Lookup, self.to.lookup);
        }
        log::info!(
            "membership: id is ({}, {}); members {:?}",
            ip(self.memb.membership_id.proc_id as u32),
            self.memb.membership_id.time,
            self.memb
                .membership
                .ids()
                .iter()
                .map(|id| ip(*id))
                .collect::<Vec<_>>()
        );
        self.shift_to_op();
        self.after_install(now);
    }
}

/// Adds `id` unless present (`Insert_member`).
pub(crate) fn insert_member(list: &mut Vec<u32>, id: u32) {
    if !list.contains(&id) && list.len() < wire::MAX_PROCS_RING {
        list.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring_conf::SegmentConf;

    /// Segment 0: ids 1..3; segment 1: ids 11 and 12.
    fn conf() -> Conf {
        Conf::new(vec![
            SegmentConf {
                bcast: 0xff,
                port: 4803,
                daemons: vec![1, 2, 3],
            },
            SegmentConf {
                bcast: 0x1ff,
                port: 4803,
                daemons: vec![11, 12],
            },
        ])
    }

    fn refer(id: u32, kind: i16) -> MembId {
        MembId {
            proc_id: id as i32,
            time: i32::from(kind),
        }
    }

    #[test]
    fn only_gather_takes_a_refer_of_a_known_daemon_and_kind() {
        let c = conf();
        let mut m = MembershipState::new(1, c.ordered([1]));
        m.handle_refer(&c, refer(11, rep_kind::SEG));
        assert!(m.potential_reps.is_empty(), "OP ignores REFER");

        m.state = State::Gather;
        m.handle_refer(&c, refer(99, rep_kind::SEG));
        m.handle_refer(&c, refer(12, 7));
        assert!(m.potential_reps.is_empty(), "unknown daemon or kind ignored");

        m.handle_refer(&c, refer(12, rep_kind::POTENTIAL));
        m.handle_refer(&c, refer(11, rep_kind::SEG));
        let reps: Vec<_> = m
            .potential_reps
            .iter()
            .map(|r| (r.proc_id, r.kind, r.seg_index))
            .collect();
        // The SEG referral replaces segment 1's potential representative.
        assert_eq!(reps, [(11, rep_kind::SEG, 1)]);
    }

    #[test]
    fn transitional_is_the_commit_sets_head_in_configuration_order() {
        let c = conf();
        let mut m = MembershipState::new(3, c.ordered([3]));
        m.commit_set = CommitSet {
            members: vec![3, 2, 12, 1],
            num_trans: 2,
        };
        m.f_trans_memb_time = 42;
        m.transitional(&c, 3);
        assert_eq!(m.trans_membership.ids(), [2, 3]);
        assert_eq!(m.commit_membership.ids(), [1, 2, 3, 12]);
        assert_eq!(m.trans_memb_id, MembId { proc_id: 2, time: 42 });

        // An empty commit set: the transitional id falls back to me.
        m.commit_set = CommitSet::default();
        m.transitional(&c, 3);
        assert_eq!(m.trans_memb_id.proc_id, 3);
        assert!(m.trans_membership.ids().is_empty());
    }
}
