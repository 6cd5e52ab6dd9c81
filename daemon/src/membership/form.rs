//! FORM1 and FORM2: agreeing on the new ring and on what each old ring must
//! recover before the change.

use super::reps;
use crate::clock::Clock;
use spread_wire::client::MembId;

use super::{insert_member, CommitSet, State};
use crate::ring::wire::TokenHeader;
use crate::ring::wire::{self, bits, rep_kind, FormMiddle, FormToken, MembersInfo, Rep, RepsInfo, RingInfo};
use crate::ring::{DeliveryThreshold, RingEngine};
use crate::ring_conf::{ip, Channel, Destination};
use crate::timers::Timer;

/// Above the originator's highest sequence number: the EVS token's target.
const FORM_SEQ_MARGIN: i32 = 3333;
/// Most old rings one FORM token can describe.
const MAX_FORM_REPS: usize = 20;
/// Most holes one old ring may report.
const MAX_SEQ_GAP: usize = 1600;

impl RingEngine {
    pub(crate) fn memb_handle_form(&mut self, now: Clock, bytes: &[u8]) {
        let form = match wire::parse_form(bytes) {
            Ok(f) => f,
            Err(e) => {
                self.drop_datagram(now, format_args!("malformed FORM token: {e:?}"));
                return;
            }
        };
        if form.header.kind & bits::FORM1 != 0 {
            match self.memb.state {
                State::Op if self.memb.membership.leader() != Some(self.my_id) => self.fill_form1(now, form),
                State::Represented | State::Gather => self.fill_form1(now, form),
                _ => {}
            }
        } else if self.memb.state == State::Form {
            self.read_form2(now, form);
        }
    }

    fn ucast_token(&mut self, to: u32, bytes: Vec<u8>, copies: usize) {
        for _ in 0..copies {
            self.send(
                Destination::Daemon {
                    id: to,
                    channel: Channel::Token,
                },
                bytes.clone(),
            );
        }
    }

    /// A fresh Unix time for an id, strictly after the last one used.
    fn next_time(&mut self, now: Clock) -> i32 {
        let mut t = now.unix_secs as i32;
        if t <= self.memb.last_time_used {
            t = self.memb.last_time_used + 1;
        }
        self.memb.last_time_used = t;
        t
    }

    /// My old ring's entry for a FORM token made from scratch.
    fn my_ring_info(&self, holes_from: i32) -> RingInfo {
        let holes = self.store.holes_from(holes_from);
        let mut commit = vec![self.my_id];
        for id in &self.memb.commit_set.members {
            insert_member(&mut commit, *id);
        }
        RingInfo {
            memb_id: self.memb.membership_id,
            trans_time: 0,
            aru: self.store.aru,
            highest_seq: self.store.highest_seq,
            holes,
            commit,
            num_trans: 1,
        }
    }

    fn enter_form(&mut self, now: Clock) {
        self.disarm(Timer::Join);
        self.arm(now, Timer::TokenLoss, self.to.form);
        self.disarm(Timer::Hurry);
        self.memb.token_alive = false;
        self.threshold = DeliveryThreshold::Blocked;
        self.memb.state = State::Form;
    }

    /// Potential representatives of other segments, in case this attempt fails.
    fn potential_from_reps(&self, reps: &[Rep]) -> Vec<Rep> {
        reps::potential_from_reps(&self.conf, self.my_seg, reps)
    }

    /// Where a FORM1 goes next; converts it to FORM2 at the end of the path.
    fn forward_form1(&mut self, mut form: FormToken) {
        let (next_member, next_rep) = match &form.middle {
            FormMiddle::Reps(reps) => (
                (form.members.pending() > 0).then(|| form.members.ids[form.members.done]),
                reps.reps.get(reps.rep_index.max(0) as usize).map(|r| r.proc_id),
            ),
            FormMiddle::NewId(_) => (None, None),
        };
        form.header.transmitter = self.my_id;
        form.header.conf_hash = self.conf_hash;
        if let Some(to) = next_member.or(next_rep) {
            log::debug!("membership: FORM1 {:?} to {}", form.members, ip(to));
            self.ucast_token(to, wire::emit_form(&form), 2);
            return;
        }
        // End of the path: members in ring order, all pending.
        let mut ids = form.members.ids[..form.members.done].to_vec();
        ids.sort_by_key(|id| self.conf.pos(*id).map(|p| p.rank).unwrap_or(usize::MAX));
        form.members = MembersInfo { done: 0, ids };
        let leftover = match &form.middle {
            FormMiddle::Reps(r) => wire::reps_leftover_id(r),
            FormMiddle::NewId(id) => *id,
        };
        form.middle = FormMiddle::NewId(leftover);
        form.header.kind = bits::FORM2;
        if let Some(&first) = form.members.ids.first() {
            log::debug!("membership: FORM2 {:?} to {}", form.members.ids, ip(first));
            self.ucast_token(first, wire::emit_form(&form), 2);
        }
    }

    /// The smallest representative starts the FORM1 token.
    pub(crate) fn create_form1(&mut self, now: Clock) {
        let memb_id = MembId {
            proc_id: self.my_id as i32,
            time: self.next_time(now),
        };
        self.memb.form1_memb_id = memb_id;
        let header = TokenHeader {
            kind: bits::FORM1,
            proc_id: self.my_id,
            memb_id,
            seq: self.store.highest_seq.saturating_add(FORM_SEQ_MARGIN),
            ..Default::default()
        };
        if self.memb.f_reps.first().map(|r| r.kind) == Some(rep_kind::RING) {
            self.memb.f_members = self.memb.membership.ids().to_vec();
        }
        let me = self.my_id;
        let f_reps = self.memb.f_reps.clone();
        self.memb
            .f_members
            .retain(|id| *id == me || !f_reps.iter().any(|r| r.proc_id == *id));
        // I am first: the others are pending.
        if let Some(i) = self.memb.f_members.iter().position(|id| *id == me) {
            let m = self.memb.f_members.remove(i);
            self.memb.f_members.insert(0, m);
        }
        let mut reps = self.memb.f_reps.clone();
        reps::sort_reps(&self.conf, &mut reps);
        self.memb.f_reps = reps.clone();
        self.memb.f_reps_index = 1;
        self.memb.potential_reps = self.potential_from_reps(&reps);
        let ring = self.my_ring_info(self.store.my_aru + 1);
        let form = FormToken {
            header,
            members: MembersInfo {
                done: 1,
                ids: self.memb.f_members.clone(),
            },
            middle: FormMiddle::Reps(RepsInfo { rep_index: 1, reps }),
            rings: vec![ring],
        };
        self.forward_form1(form);
        self.enter_form(now);
    }

    /// A FORM1 reached me: add myself (and what I represent) and pass it on.
    fn fill_form1(&mut self, now: Clock, mut form: FormToken) {
        form.header.proc_id = self.my_id;
        let floor = self.store.highest_seq.saturating_add(FORM_SEQ_MARGIN);
        if form.header.seq < floor {
            form.header.seq = floor;
        }
        let FormMiddle::Reps(mut reps) = form.middle.clone() else {
            return;
        };
        match self.memb.state {
            State::Op | State::Represented => {
                if form.members.ids.get(form.members.done) != Some(&self.my_id) || form.members.pending() == 0
                {
                    return;
                }
                form.members.done += 1;
            }
            State::Gather => {
                let Some(rep) = reps.reps.get(reps.rep_index.max(0) as usize).copied() else {
                    return;
                };
                let alive = self.memb.token_alive;
                if rep.proc_id != self.my_id
                    || (alive && rep.kind == rep_kind::SEG)
                    || (!alive && rep.kind == rep_kind::RING)
                    || form.members.pending() != 0
                {
                    return;
                }
                let me = self.my_id;
                let done: Vec<u32> = form.members.ids[..form.members.done].to_vec();
                let f_reps = self.memb.f_reps.clone();
                self.memb.f_members.retain(|id| {
                    !done.contains(id)
                        && (*id == me
                            || (!reps.reps.iter().any(|r| r.proc_id == *id)
                                && !f_reps.iter().any(|r| r.proc_id == *id)))
                });
                let mine: Vec<u32> = if rep.kind == rep_kind::SEG {
                    self.memb.f_members.clone()
                } else {
                    self.memb.membership.ids().to_vec()
                };
                let room = wire::MAX_PROCS_RING.saturating_sub(form.members.ids.len() + 1);
                if room == 0 || mine.first() != Some(&me) {
                    return;
                }
                form.members.ids.extend(mine.into_iter().take(room));
                form.members.done += 1;
                reps.rep_index += 1;
                form.middle = FormMiddle::Reps(reps.clone());
            }
            _ => return,
        }
        self.memb.form1_memb_id = form.header.memb_id;
        self.memb.potential_reps = self.potential_from_reps(&reps.reps);

        let my_id = self.memb.membership_id;
        let mine = form
            .rings
            .iter()
            .position(|r| r.memb_id == my_id)
            .map(|i| form.rings.remove(i));
        match mine {
            None if form.rings.len() + 1 > MAX_FORM_REPS => {
                log::warn!(
                    "membership: FORM token full; {} stays out of this attempt",
                    ip(self.my_id)
                );
                if let Some(i) = form.members.ids.iter().position(|id| *id == self.my_id) {
                    form.members.ids.remove(i);
                    form.members.done = form.members.done.saturating_sub(1);
                }
            }
            None => {
                let ring = self.my_ring_info(self.store.last_discarded + 1);
                form.rings.push(ring);
            }
            Some(old) => {
                let mut holes: Vec<i32> = old
                    .holes
                    .iter()
                    .copied()
                    .filter(|s| !self.store.has(*s))
                    .collect();
                if let Some(from) = old.highest_seq.checked_add(1) {
                    holes.extend(self.store.holes_in(from, self.store.highest_seq));
                }
                let mut set: Vec<u32> = Vec::new();
                for id in old.commit.iter().take(old.num_trans) {
                    insert_member(&mut set, *id);
                }
                insert_member(&mut set, self.my_id);
                let num_trans = set.len();
                for id in old.commit.iter().skip(old.num_trans) {
                    insert_member(&mut set, *id);
                }
                for id in &self.memb.commit_set.members {
                    insert_member(&mut set, *id);
                }
                form.rings.push(RingInfo {
                    memb_id: my_id,
                    trans_time: 0,
                    aru: old.aru.max(self.store.aru),
                    highest_seq: old.highest_seq.max(self.store.highest_seq),
                    holes,
                    commit: set,
                    num_trans,
                });
            }
        }
        self.forward_form1(form);
        self.disarm(Timer::FormOrFail);
        self.disarm(Timer::ShiftToSeg);
        self.enter_form(now);
    }

    /// FORM2: the new ring is decided; prepare EVS.
    fn read_form2(&mut self, now: Clock, mut form: FormToken) {
        if form.header.memb_id != self.memb.form1_memb_id {
            log::debug!("membership: FORM2 of another attempt dropped");
            return;
        }
        let m = &form.members;
        if m.pending() == 0 || m.ids.len() >= wire::MAX_PROCS_RING || m.ids[m.done] != self.my_id {
            log::warn!("membership: malformed FORM2 dropped");
            return;
        }
        if form
            .rings
            .iter()
            .any(|r| r.num_trans < 1 || r.holes.len() > MAX_SEQ_GAP)
        {
            log::warn!("membership: FORM2 with malformed ring information dropped");
            return;
        }
        let Some(ri) = form
            .rings
            .iter()
            .position(|r| r.memb_id == self.memb.membership_id)
        else {
            log::warn!("membership: my ring is not on the FORM2 token; dropped");
            return;
        };
        if form.members.ids.iter().any(|id| !self.conf.knows(*id)) {
            log::warn!("membership: FORM2 names an unknown daemon; dropped");
            return;
        }
        form.header.proc_id = self.my_id;
        form.members.done += 1;
        self.last_seq = form.header.seq;
        log::debug!("membership: reading FORM2 {:?}", form.members);
        let mut memb_time = 0;
        if form.members.done == 1 {
            memb_time = self.next_time(now);
            self.memb.last_time_used += 1;
            form.middle = FormMiddle::NewId(MembId {
                proc_id: self.my_id as i32,
                time: self.memb.last_time_used,
            });
        }
        let FormMiddle::NewId(new_id) = form.middle else {
            return;
        };
        self.memb.future_membership_id = new_id;
        self.memb.future_membership = self.conf.ordered(form.members.ids.iter().copied());
        self.net_members = self.memb.future_membership.clone();
        self.prev_proc = self.net_members.previous_of(self.my_id).unwrap_or(self.my_id);
        self.fc.new_configuration();

        let my_ring = form.rings[ri].clone();
        self.store.adopt(my_ring.aru, my_ring.highest_seq);
        // Still in FORM: delivers the old ring's packets up to its aru.
        self.discard_packets(now);
        for (seq, from) in self.store.mark_holes(&my_ring.holes) {
            log::warn!(
                "membership: dropping packet {} of departing daemon {} received after FORM1",
                seq,
                ip(from)
            );
        }
        self.memb.future_commit_set = CommitSet {
            members: my_ring.commit.clone(),
            num_trans: my_ring.num_trans,
        };
        if my_ring.trans_time == 0 {
            if memb_time == 0 {
                memb_time = self.next_time(now);
            }
            form.rings[ri].trans_time = memb_time;
        }
        self.memb.f_trans_memb_time = form.rings[ri].trans_time;

        form.header.transmitter = self.my_id;
        form.header.conf_hash = self.conf_hash;
        if self.memb.future_membership.last() != Some(self.my_id) {
            let bytes = wire::emit_form(&form);
            self.send_token_next(bytes.clone());
            self.send_token_next(bytes);
            self.token_rounds = 0;
        } else {
            let first = TokenHeader {
                kind: 0,
                transmitter: self.my_id,
                proc_id: self.my_id,
                memb_id: new_id,
                seq: 0,
                aru: i32::MAX,
                aru_last_id: u32::MAX,
                flow_control: 0,
                rtr_len: 0,
                conf_hash: self.conf_hash,
            };
            let bytes = wire::emit_token(&first, &[]);
            self.send_token_next(bytes.clone());
            self.send_token_next(bytes);
            self.token_rounds = 1;
        }
        self.memb.token_alive = true;
        self.arm(now, Timer::TokenLoss, self.to.token);
        self.received_token_rounds = 0;
        self.last_token = TokenHeader::default();
        self.store.aru = 0;
        self.memb.state = State::Evs;
    }
}
