//! FORM1 and FORM2: agreeing on the new ring and on what each old ring must
//! recover before the change.

use super::reps;
use crate::clock::Clock;
use spread_wire::client::MembId;

use super::{insert_member, CommitSet, Membership, MembershipEvent, Rejected, State, Timer};
use crate::packet_store::PacketStore;
use crate::ring_conf::{ip, Channel, Destination};
use spread_wire::daemon::TokenHeader;
use spread_wire::daemon::{
    self as wire, bits, rep_kind, FormMiddle, FormToken, MembersInfo, Rep, RepsInfo, RingInfo,
};

/// Above the originator's highest sequence number: the EVS token's target.
const FORM_SEQ_MARGIN: i32 = 3333;
/// Most old rings one FORM token can describe.
const MAX_FORM_REPS: usize = 20;
/// Most holes one old ring may report.
const MAX_SEQ_GAP: usize = 1600;

/// A FORM2 this daemon accepted: the new ring and what its old ring must
/// recover. The ring delivers what the old ring can still deliver, then
/// hands it back to [`Membership::start_evs`].
#[derive(Debug)]
pub(crate) struct AcceptedForm2 {
    form: FormToken,
    /// My old ring's entry on the token.
    ring: usize,
    /// The id time this daemon stamped, if it was the first to read it.
    memb_time: i32,
    /// The new ring's id.
    new_id: MembId,
}

impl AcceptedForm2 {
    /// The sequence number the new ring's EVS step recovers up to.
    pub(crate) fn seq(&self) -> i32 {
        self.form.header.seq
    }
}

impl Membership {
    /// A FORM1 or FORM2 token. A FORM2 for this daemon is returned accepted
    /// (the new ring's members are then [`Membership::future_members`]).
    pub(crate) fn handle_form(
        &mut self,
        now: Clock,
        bytes: &[u8],
        store: &mut PacketStore,
    ) -> Result<Option<AcceptedForm2>, Rejected> {
        let form = wire::parse_form(bytes).map_err(|e| Rejected::MalformedForm(format!("{e:?}")))?;
        if form.header.kind & bits::FORM1 != 0 {
            match self.state {
                State::Op if self.membership.leader() != Some(self.site.my_id) => {
                    self.fill_form1(form, store)
                }
                State::Represented | State::Gather => self.fill_form1(form, store),
                _ => {}
            }
        } else if self.state == State::Form {
            return Ok(self.accept_form2(now, form, store));
        }
        Ok(None)
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
        if t <= self.last_time_used {
            t = self.last_time_used + 1;
        }
        self.last_time_used = t;
        t
    }

    /// My old ring's entry for a FORM token made from scratch.
    fn my_ring_info(&self, store: &PacketStore, holes_from: i32) -> RingInfo {
        let holes = store.holes_from(holes_from);
        let mut commit = vec![self.site.my_id];
        for id in &self.commit_set.members {
            insert_member(&mut commit, *id);
        }
        RingInfo {
            memb_id: self.membership_id,
            trans_time: 0,
            aru: store.aru,
            highest_seq: store.highest_seq,
            holes,
            commit,
            num_trans: 1,
        }
    }

    fn enter_form(&mut self) {
        self.disarm(Timer::Join);
        self.events.push_back(MembershipEvent::FormSent);
        self.token_alive = false;
        self.state = State::Form;
    }

    /// Potential representatives of other segments, in case this attempt fails.
    fn potential_from_reps(&self, reps: &[Rep]) -> Vec<Rep> {
        reps::potential_from_reps(&self.site.conf, self.site.my_seg, reps)
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
        form.header.transmitter = self.site.my_id;
        form.header.conf_hash = self.site.conf_hash;
        if let Some(to) = next_member.or(next_rep) {
            log::debug!("membership: FORM1 {:?} to {}", form.members, ip(to));
            self.ucast_token(to, wire::emit_form(&form), 2);
            return;
        }
        // End of the path: members in ring order, all pending.
        let mut ids = form.members.ids[..form.members.done].to_vec();
        ids.sort_by_key(|id| self.site.conf.pos(*id).map(|p| p.rank).unwrap_or(usize::MAX));
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
    pub(super) fn create_form1(&mut self, now: Clock, store: &PacketStore) {
        let memb_id = MembId {
            proc_id: self.site.my_id as i32,
            time: self.next_time(now),
        };
        self.form1_memb_id = memb_id;
        let header = TokenHeader {
            kind: bits::FORM1,
            proc_id: self.site.my_id,
            memb_id,
            seq: store.highest_seq.saturating_add(FORM_SEQ_MARGIN),
            ..Default::default()
        };
        if self.f_reps.first().map(|r| r.kind) == Some(rep_kind::RING) {
            self.f_members = self.membership.ids().to_vec();
        }
        let me = self.site.my_id;
        let f_reps = self.f_reps.clone();
        self.f_members
            .retain(|id| *id == me || !f_reps.iter().any(|r| r.proc_id == *id));
        // I am first: the others are pending.
        if let Some(i) = self.f_members.iter().position(|id| *id == me) {
            let m = self.f_members.remove(i);
            self.f_members.insert(0, m);
        }
        let mut reps = self.f_reps.clone();
        reps::sort_reps(&self.site.conf, &mut reps);
        self.f_reps = reps.clone();
        self.f_reps_index = 1;
        self.potential_reps = self.potential_from_reps(&reps);
        let ring = self.my_ring_info(store, store.my_aru + 1);
        let form = FormToken {
            header,
            members: MembersInfo {
                done: 1,
                ids: self.f_members.clone(),
            },
            middle: FormMiddle::Reps(RepsInfo { rep_index: 1, reps }),
            rings: vec![ring],
        };
        self.forward_form1(form);
        self.enter_form();
    }

    /// A FORM1 reached me: add myself (and what I represent) and pass it on.
    fn fill_form1(&mut self, mut form: FormToken, store: &PacketStore) {
        form.header.proc_id = self.site.my_id;
        let floor = store.highest_seq.saturating_add(FORM_SEQ_MARGIN);
        if form.header.seq < floor {
            form.header.seq = floor;
        }
        let FormMiddle::Reps(mut reps) = form.middle.clone() else {
            return;
        };
        match self.state {
            State::Op | State::Represented => {
                if form.members.ids.get(form.members.done) != Some(&self.site.my_id)
                    || form.members.pending() == 0
                {
                    return;
                }
                form.members.done += 1;
            }
            State::Gather => {
                let Some(rep) = reps.reps.get(reps.rep_index.max(0) as usize).copied() else {
                    return;
                };
                let alive = self.token_alive;
                if rep.proc_id != self.site.my_id
                    || (alive && rep.kind == rep_kind::SEG)
                    || (!alive && rep.kind == rep_kind::RING)
                    || form.members.pending() != 0
                {
                    return;
                }
                let me = self.site.my_id;
                let done: Vec<u32> = form.members.ids[..form.members.done].to_vec();
                let f_reps = self.f_reps.clone();
                self.f_members.retain(|id| {
                    !done.contains(id)
                        && (*id == me
                            || (!reps.reps.iter().any(|r| r.proc_id == *id)
                                && !f_reps.iter().any(|r| r.proc_id == *id)))
                });
                let mine: Vec<u32> = if rep.kind == rep_kind::SEG {
                    self.f_members.clone()
                } else {
                    self.membership.ids().to_vec()
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
        self.form1_memb_id = form.header.memb_id;
        self.potential_reps = self.potential_from_reps(&reps.reps);

        let my_id = self.membership_id;
        let mine = form
            .rings
            .iter()
            .position(|r| r.memb_id == my_id)
            .map(|i| form.rings.remove(i));
        match mine {
            None if form.rings.len() + 1 > MAX_FORM_REPS => {
                log::warn!(
                    "membership: FORM token full; {} stays out of this attempt",
                    ip(self.site.my_id)
                );
                if let Some(i) = form.members.ids.iter().position(|id| *id == self.site.my_id) {
                    form.members.ids.remove(i);
                    form.members.done = form.members.done.saturating_sub(1);
                }
            }
            None => {
                let ring = self.my_ring_info(store, store.last_discarded + 1);
                form.rings.push(ring);
            }
            Some(old) => {
                let mut holes: Vec<i32> = old.holes.iter().copied().filter(|s| !store.has(*s)).collect();
                if let Some(from) = old.highest_seq.checked_add(1) {
                    holes.extend(store.holes_in(from, store.highest_seq));
                }
                let mut set: Vec<u32> = Vec::new();
                for id in old.commit.iter().take(old.num_trans) {
                    insert_member(&mut set, *id);
                }
                insert_member(&mut set, self.site.my_id);
                let num_trans = set.len();
                for id in old.commit.iter().skip(old.num_trans) {
                    insert_member(&mut set, *id);
                }
                for id in &self.commit_set.members {
                    insert_member(&mut set, *id);
                }
                form.rings.push(RingInfo {
                    memb_id: my_id,
                    trans_time: 0,
                    aru: old.aru.max(store.aru),
                    highest_seq: old.highest_seq.max(store.highest_seq),
                    holes,
                    commit: set,
                    num_trans,
                });
            }
        }
        self.forward_form1(form);
        self.disarm(Timer::FormOrFail);
        self.disarm(Timer::ShiftToSeg);
        self.enter_form();
    }

    /// FORM2: the new ring is decided. Checks it, takes on the new ring's
    /// id and members, and makes the store adopt my old ring's agreed aru
    /// and highest sequence; [`Membership::start_evs`] follows once the ring
    /// delivered what the old ring still can.
    fn accept_form2(
        &mut self,
        now: Clock,
        mut form: FormToken,
        store: &mut PacketStore,
    ) -> Option<AcceptedForm2> {
        if form.header.memb_id != self.form1_memb_id {
            log::debug!("membership: FORM2 of another attempt dropped");
            return None;
        }
        let me = self.site.my_id;
        let m = &form.members;
        if m.pending() == 0 || m.ids.len() >= wire::MAX_PROCS_RING || m.ids[m.done] != me {
            log::warn!("membership: malformed FORM2 dropped");
            return None;
        }
        if form
            .rings
            .iter()
            .any(|r| r.num_trans < 1 || r.holes.len() > MAX_SEQ_GAP)
        {
            log::warn!("membership: FORM2 with malformed ring information dropped");
            return None;
        }
        let Some(ring) = form.rings.iter().position(|r| r.memb_id == self.membership_id) else {
            log::warn!("membership: my ring is not on the FORM2 token; dropped");
            return None;
        };
        if form.members.ids.iter().any(|id| !self.site.conf.knows(*id)) {
            log::warn!("membership: FORM2 names an unknown daemon; dropped");
            return None;
        }
        form.header.proc_id = me;
        form.members.done += 1;
        log::debug!("membership: reading FORM2 {:?}", form.members);
        let mut memb_time = 0;
        if form.members.done == 1 {
            memb_time = self.next_time(now);
            self.last_time_used += 1;
            form.middle = FormMiddle::NewId(MembId {
                proc_id: me as i32,
                time: self.last_time_used,
            });
        }
        let FormMiddle::NewId(new_id) = form.middle else {
            return None;
        };
        self.future_membership_id = new_id;
        self.future_membership = self.site.conf.ordered(form.members.ids.iter().copied());
        let mine = &form.rings[ring];
        store.adopt(mine.aru, mine.highest_seq);
        Some(AcceptedForm2 {
            form,
            ring,
            memb_time,
            new_id,
        })
    }

    /// Enters EVS on an accepted FORM2: marks the packets nobody will get,
    /// takes the FORM2's commit set, and passes the FORM2 on, or, as the
    /// new ring's last member, sends its first token. Returns whether it
    /// sent the first token.
    pub(crate) fn start_evs(&mut self, now: Clock, accepted: AcceptedForm2, store: &mut PacketStore) -> bool {
        let AcceptedForm2 {
            mut form,
            ring: ri,
            mut memb_time,
            new_id,
        } = accepted;
        let me = self.site.my_id;
        let my_ring = form.rings[ri].clone();
        for (seq, from) in store.mark_holes(&my_ring.holes) {
            log::warn!(
                "membership: dropping packet {} of departing daemon {} received after FORM1",
                seq,
                ip(from)
            );
        }
        self.future_commit_set = CommitSet {
            members: my_ring.commit.clone(),
            num_trans: my_ring.num_trans,
        };
        if my_ring.trans_time == 0 {
            if memb_time == 0 {
                memb_time = self.next_time(now);
            }
            form.rings[ri].trans_time = memb_time;
        }
        self.f_trans_memb_time = form.rings[ri].trans_time;

        form.header.transmitter = me;
        form.header.conf_hash = self.site.conf_hash;
        let next = self.future_membership.next_of(me).unwrap_or(me);
        let first_token = self.future_membership.last() == Some(me);
        let bytes = if !first_token {
            wire::emit_form(&form)
        } else {
            let first = TokenHeader {
                kind: 0,
                transmitter: me,
                proc_id: me,
                memb_id: new_id,
                seq: 0,
                aru: i32::MAX,
                aru_last_id: u32::MAX,
                flow_control: 0,
                rtr_len: 0,
                conf_hash: self.site.conf_hash,
            };
            wire::emit_token(&first, &[])
        };
        self.ucast_token(next, bytes, 2);
        self.token_alive = true;
        self.state = State::Evs;
        first_token
    }
}
