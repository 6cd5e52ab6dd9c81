//! Finding the others after a ring is lost: SEG, REPRESENTED and GATHER,
//! with ALIVE, JOIN and REFER messages, and the leader's lookup for daemons
//! outside its ring.

use std::time::Duration;

use spread_wire::client::MembId;
use spread_wire::endian::ByteOrder;

use super::{insert_member, reps, Membership, MembershipEvent, Rejected, State, Timer};
use crate::clock::Clock;
use crate::packet_store::PacketStore;
use crate::ring_conf::{ip, Channel, Destination, Members};
use spread_wire::daemon::{self as wire, bits, rep_kind, MembersInfo, PacketHeader, Rep, RepsInfo};

impl Membership {
    /// Representatives of the other segments to probe after losing a ring.
    pub(super) fn potential_from(&self, ring: &Members) -> Vec<Rep> {
        reps::potential_from_ring(&self.site.conf, self.site.my_seg, ring)
    }

    /// `Memb_token_loss`: the ring is gone (or never was); start over.
    pub(crate) fn token_loss(&mut self, now: Clock, store: &mut PacketStore) {
        match self.state {
            State::Op => {
                let ring = self.membership.clone();
                self.potential_reps = self.potential_from(&ring);
            }
            State::Seg | State::Represented => {
                log::error!("membership: token loss in state {:?}", self.state);
            }
            State::Gather => {
                let mut reps = Vec::new();
                for rep in self.f_reps.iter().skip(1).copied().collect::<Vec<_>>() {
                    reps::insert_rep(&self.site.conf, &mut reps, rep);
                }
                let ring = self.membership.clone();
                for rep in self.potential_from(&ring) {
                    reps::insert_rep(&self.site.conf, &mut reps, rep);
                }
                self.potential_reps = reps;
            }
            State::Form => {}
            State::Evs => {
                // `Backoff_membership`: a failed EVS attempt forgets its agreed holes.
                store.back_off();
                let ring = self.future_membership.clone();
                self.potential_reps = self.potential_from(&ring);
            }
        }
        log::warn!("membership: token lost in state {:?}", self.state);
        self.token_alive = false;
        self.just_installed = false;
        self.events.push_back(MembershipEvent::TokenLost);
        for t in [Timer::Join, Timer::FormOrFail, Timer::Lookup] {
            self.disarm(t);
        }
        self.membership = self.site.conf.ordered([self.site.my_id]);
        self.shift_to_seg(now);
    }

    pub(super) fn shift_to_op(&mut self) {
        self.state = State::Op;
    }

    pub(super) fn shift_to_seg(&mut self, now: Clock) {
        self.state = State::Seg;
        self.f_members = vec![self.site.my_id];
        self.arm(now, Timer::Alive, Duration::ZERO);
        self.arm(now, Timer::GatherOrRepresented, self.site.timeouts.seg);
    }

    pub(super) fn gather_or_represented(&mut self, now: Clock) {
        self.my_seg_rep = None;
        if reps::smallest_member(&self.site.conf, &self.f_members) == Some(self.site.my_id) {
            self.shift_to_gather(now);
        } else {
            self.shift_to_represented(now);
        }
    }

    pub(super) fn shift_to_gather(&mut self, now: Clock) {
        log::debug!("membership: GATHER (token alive: {})", self.token_alive);
        self.state = State::Gather;
        self.f_reps = vec![Rep {
            proc_id: self.site.my_id,
            kind: if self.token_alive {
                rep_kind::RING
            } else {
                rep_kind::SEG
            },
            seg_index: self.site.my_seg as i16,
        }];
        self.disarm(Timer::Alive);
        self.disarm(Timer::Lookup);
        self.arm(now, Timer::Join, Duration::ZERO);
        self.arm(now, Timer::FormOrFail, self.site.timeouts.gather);
    }

    pub(super) fn shift_to_represented(&mut self, now: Clock) {
        log::debug!("membership: REPRESENTED");
        self.state = State::Represented;
        self.disarm(Timer::Alive);
        self.disarm(Timer::GatherOrRepresented);
        self.arm(now, Timer::ShiftToSeg, self.site.timeouts.rep);
    }

    pub(super) fn form_or_fail(&mut self, now: Clock, store: &PacketStore) {
        let me = self.site.my_id;
        if reps::smallest_rep(&self.site.conf, &self.f_reps).map(|(id, _)| id) == Some(me) {
            if self.token_alive && self.f_reps.len() == 1 {
                self.disarm(Timer::Join);
                self.arm(now, Timer::Lookup, self.site.timeouts.lookup);
                self.shift_to_op();
            } else {
                self.create_form1(now, store);
            }
        } else if self.token_alive {
            log::debug!("membership: gather failed, back to OP");
            self.disarm(Timer::Join);
            self.arm(now, Timer::Lookup, self.site.timeouts.lookup);
            self.shift_to_op();
        } else {
            self.f_members = vec![me];
            let mut reps = Vec::new();
            for rep in self.f_reps.iter().skip(1).copied().collect::<Vec<_>>() {
                reps::insert_rep(&self.site.conf, &mut reps, rep);
            }
            self.potential_reps = reps;
            self.shift_to_gather(now);
        }
    }

    pub(super) fn probe_header(&self, kind: u32) -> PacketHeader {
        PacketHeader {
            kind,
            transmitter: self.site.my_id,
            proc_id: self.site.my_id,
            conf_hash: self.site.conf_hash,
            ..Default::default()
        }
    }

    /// `Net_scast` of a membership packet to my own segment.
    pub(super) fn scast_my_segment(&mut self, bytes: Vec<u8>) {
        if self.site.bcast_needed() {
            self.send(Destination::Segment(self.site.my_seg), bytes);
        }
    }

    pub(super) fn ucast_data(&mut self, id: u32, bytes: Vec<u8>) {
        if self.site.conf.knows(id) {
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
    pub(super) fn scast_alive(&mut self, now: Clock, repeat: bool) {
        let members = MembersInfo {
            done: self.f_members.len(),
            ids: self.f_members.clone(),
        };
        let bytes = wire::emit_probe(&self.probe_header(bits::ALIVE), &members, None);
        self.scast_my_segment(bytes);
        if repeat {
            self.arm(now, Timer::Alive, self.site.timeouts.alive);
        }
    }

    pub(super) fn join_bytes(&self) -> Vec<u8> {
        let members = MembersInfo {
            done: self.f_members.len(),
            ids: self.f_members.clone(),
        };
        let reps = RepsInfo {
            rep_index: self.f_reps_index,
            reps: self.f_reps.clone(),
        };
        wire::emit_probe(&self.probe_header(bits::JOIN), &members, Some(&reps))
    }

    pub(super) fn send_join(&mut self, now: Clock) {
        let bytes = self.join_bytes();
        if !self.token_alive {
            self.scast_my_segment(bytes.clone());
        }
        let targets: Vec<u32> = self.potential_reps.iter().map(|r| r.proc_id).collect();
        for id in targets {
            self.ucast_data(id, bytes.clone());
        }
        self.arm(now, Timer::Join, self.site.timeouts.join);
    }

    /// The leader's periodic probe for daemons outside the ring.
    pub(super) fn lookup_new_members(&mut self, now: Clock) {
        if self.state != State::Op {
            return;
        }
        self.potential_reps.clear();
        self.f_reps = vec![Rep {
            proc_id: self.site.my_id,
            kind: rep_kind::RING,
            seg_index: self.site.my_seg as i16,
        }];
        self.f_members.clear();
        let bytes = self.join_bytes();
        let mut num_missing = 0;
        if self.site.conf.segments.len() == 1 {
            self.scast_my_segment(bytes);
            num_missing += 1;
        } else {
            let all: Vec<u32> = self
                .site
                .conf
                .segments
                .iter()
                .flat_map(|s| s.daemons.clone())
                .collect();
            for id in all {
                if !self.reg_membership.contains(id) {
                    self.ucast_data(id, bytes.clone());
                    num_missing += 1;
                }
            }
        }
        if num_missing > 0 {
            self.shift_to_gather(now);
        }
    }

    /// An ALIVE, JOIN or REFER (the packet type says which).
    pub(crate) fn handle_message(
        &mut self,
        now: Clock,
        h: &PacketHeader,
        datagram: &[u8],
        store: &mut PacketStore,
    ) -> Result<(), Rejected> {
        if !self.site.conf.knows(h.proc_id) {
            return Err(Rejected::UnknownDaemon(h.proc_id));
        }
        if h.kind & bits::ALIVE != 0 {
            self.handle_alive(now, h.proc_id, store);
        } else if h.kind & bits::JOIN != 0 {
            match wire::parse_probe(datagram, true) {
                Ok(p) => self.handle_join(now, h.proc_id, &p.members, &p.reps.unwrap_or_default(), store),
                Err(e) => {
                    return Err(Rejected::MalformedJoin {
                        from: h.proc_id,
                        why: format!("{e:?}"),
                    })
                }
            }
        } else if h.kind & bits::REFER != 0 {
            self.handle_refer(h.memb_id);
        }
        Ok(())
    }

    /// A REFER names a representative to probe; only GATHER listens.
    pub(super) fn handle_refer(&mut self, referred: MembId) {
        if self.state != State::Gather {
            return;
        }
        let id = referred.proc_id as u32;
        let Some(pos) = self.site.conf.pos(id) else {
            log::debug!("membership: REFER to unknown daemon {}", ip(id));
            return;
        };
        let kind = referred.time as i16;
        if ![rep_kind::POTENTIAL, rep_kind::SEG, rep_kind::RING].contains(&kind) {
            return;
        }
        reps::insert_rep(
            &self.site.conf,
            &mut self.potential_reps,
            Rep {
                proc_id: id,
                kind,
                seg_index: pos.seg as i16,
            },
        );
    }

    pub(super) fn handle_alive(&mut self, now: Clock, from: u32, store: &mut PacketStore) {
        match self.state {
            State::Op => {
                if self.membership.contains(from) {
                    self.token_loss(now, store);
                    insert_member(&mut self.f_members, from);
                }
            }
            State::Seg => insert_member(&mut self.f_members, from),
            State::Represented => self.arm(now, Timer::ShiftToSeg, self.site.timeouts.rep),
            State::Gather => {
                if !self.token_alive {
                    insert_member(&mut self.f_members, from);
                } else if self.membership.contains(from) {
                    self.token_loss(now, store);
                    insert_member(&mut self.f_members, from);
                }
            }
            State::Form => {}
            State::Evs => {
                if self.future_membership.contains(from) {
                    self.token_loss(now, store);
                    insert_member(&mut self.f_members, from);
                }
            }
        }
    }

    pub(super) fn refer_bytes(&self, rep: u32, kind: i16) -> Vec<u8> {
        let mut h = self.probe_header(bits::REFER);
        h.memb_id = MembId {
            proc_id: rep as i32,
            time: i32::from(kind),
        };
        h.emit_bare()
    }

    pub(super) fn handle_join(
        &mut self,
        now: Clock,
        from: u32,
        members: &MembersInfo,
        reps: &RepsInfo,
        store: &mut PacketStore,
    ) {
        let Some(first_rep) = reps.reps.first().copied() else {
            log::debug!("membership: JOIN without representatives from {}", ip(from));
            return;
        };
        let (me, my_seg) = (self.site.my_id, self.site.my_seg);
        match self.state {
            State::Op => {
                if !self.membership.contains(from) {
                    if self.membership.leader() == Some(me) {
                        self.potential_reps = vec![first_rep];
                        self.f_members.clear();
                        self.shift_to_gather(now);
                    } else if first_rep.seg_index != my_seg as i16
                        || self.membership.first_in_segment(&self.site.conf, my_seg) == Some(me)
                    {
                        if let Some(leader) = self.membership.leader() {
                            let b = self.refer_bytes(leader, rep_kind::RING);
                            self.ucast_data(from, b);
                        }
                    }
                } else if self.site.conf.segments.len() > 1 {
                    self.token_loss(now, store);
                }
            }
            State::Seg => {
                if self.site.seg_of(from) == Some(my_seg) && first_rep.kind == rep_kind::SEG {
                    self.my_seg_rep = Some(from);
                    self.shift_to_represented(now);
                    let _ = members;
                    self.scast_alive(now, false);
                }
            }
            State::Represented => {
                if self.site.seg_of(from) == Some(my_seg) && first_rep.kind == rep_kind::SEG {
                    if self.my_seg_rep != Some(from) {
                        log::debug!("membership: my representative is now {}", ip(from));
                        self.my_seg_rep = Some(from);
                    }
                    self.arm(now, Timer::ShiftToSeg, self.site.timeouts.rep);
                    self.scast_alive(now, false);
                } else if let Some(rep) = self.my_seg_rep {
                    let b = self.refer_bytes(rep, rep_kind::SEG);
                    self.ucast_data(from, b);
                }
            }
            State::Gather => {
                reps::insert_rep(&self.site.conf, &mut self.f_reps, first_rep);
                for rep in &reps.reps {
                    reps::insert_rep(&self.site.conf, &mut self.potential_reps, *rep);
                }
                if reps::smallest_rep(&self.site.conf, &self.f_reps).map(|(id, _)| id)
                    == Some(first_rep.proc_id)
                {
                    self.arm(now, Timer::FormOrFail, self.site.timeouts.gather);
                }
            }
            State::Form => {}
            State::Evs => {
                if self.future_membership.contains(from) {
                    self.token_loss(now, store);
                    insert_member(&mut self.f_members, from);
                }
            }
        }
    }

    /// A data packet of another ring: someone is out there.
    pub(crate) fn handle_foreign(&mut self, now: Clock, h: &PacketHeader, raw: &[u8], order: ByteOrder) {
        let (me, my_seg) = (self.site.my_id, self.site.my_seg);
        if self.state != State::Op || !self.site.conf.knows(h.proc_id) {
            return;
        }
        if self.membership.leader() == Some(me) {
            self.lookup_new_members(now);
        } else if self.membership.first_in_segment(&self.site.conf, my_seg) == Some(me) && !self.foreign_found
        {
            self.foreign_found = true;
            if let Some(leader) = self.membership.leader() {
                let mut fwd = raw.to_vec();
                fwd[4..8].copy_from_slice(&order.u32_bytes(me));
                self.ucast_data(leader, fwd.clone());
                self.ucast_data(leader, fwd);
            }
        }
    }
}
