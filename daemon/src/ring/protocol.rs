//! The token protocol proper: data packets in, the regular token, answers to
//! retransmission requests, new packets out, delivery and discarding.

use super::{
    ip, monitor, Channel, DeliveryThreshold, Destination, PacketType, RingEngine, RingEvent, Slot, Stored,
    Timer, MAX_PACKETS_AHEAD,
};
use crate::clock::Clock;
use crate::membership::State;
use spread_wire::daemon::{self as wire, bits, Fragment, PacketHeader, RingRtr, TokenHeader};

/// `conf_hash` of the monitor program's packets.
const MONITOR_HASH: u32 = 1100;
/// Above this sequence number the ring is re-formed to start again at 0.
const MAX_WRAP_SEQUENCE_VALUE: i32 = 1 << 30;
/// Token rounds allowed to finish the EVS step of a membership change.
const MAX_EVS_ROUNDS: i32 = 500;
/// Up-queue key of single-packet RELIABLE messages (delivered out of order).
const RELIABLE_KEY: usize = usize::MAX;

/// Whether a data-port datagram is the monitor program's.
pub(crate) fn is_monitor_packet(bytes: &[u8]) -> bool {
    PacketHeader::parse(bytes).is_ok_and(|(h, _)| h.conf_hash == MONITOR_HASH)
}

impl RingEngine {
    fn hash_ok(&mut self, now: Clock, hash: u32, from: u32, allow_monitor: bool) -> bool {
        if hash == self.site().conf_hash || (allow_monitor && hash == MONITOR_HASH) {
            return true;
        }
        self.stats.dropped_conf_hash += 1;
        let mine = self.site().conf_hash;
        self.drop_datagram(now, format_args!(
            "from {} with configuration hash {hash} (mine is {mine}): the daemons' configuration files differ",
            ip(from)
        ));
        false
    }

    /// A datagram from the data port.
    pub(crate) fn handle_packet(&mut self, now: Clock, bytes: &[u8]) {
        let Ok((h, order)) = PacketHeader::parse(bytes) else {
            self.drop_datagram(now, format_args!("short packet of {} bytes", bytes.len()));
            return;
        };
        if !self.hash_ok(now, h.conf_hash, h.proc_id, true) {
            return;
        }
        if h.kind & bits::CONTROL != 0 || h.conf_hash == MONITOR_HASH {
            log::debug!("ring: monitor/control packet type {:#x} ignored", h.kind);
            return;
        }
        if h.transmitter == self.my_id() {
            return;
        }
        if self.partitioned_from(h.transmitter) {
            self.stats.dropped_by_partition += 1;
            return;
        }
        if bytes.len() != wire::HEADER_LEN + usize::from(h.data_len) {
            self.drop_datagram(
                now,
                format_args!("packet length {} != 40 + {}", bytes.len(), h.data_len),
            );
            return;
        }
        if h.kind & bits::ROUTED != 0 && self.site().bcast_needed() {
            // Forward into my segment, as the segment's entry point.
            let mut fwd = bytes.to_vec();
            let t = order.read_u32([fwd[0], fwd[1], fwd[2], fwd[3]]) & !bits::ROUTED;
            fwd[0..4].copy_from_slice(&order.u32_bytes(t));
            fwd[4..8].copy_from_slice(&order.u32_bytes(self.my_id()));
            self.send(Destination::Segment(self.site().my_seg), fwd);
        }
        let mut h = h;
        h.kind &= !bits::ROUTED;
        if h.kind & bits::MEMBERSHIP != 0 {
            let r = self.memb.handle_message(now, &h, bytes, &mut self.store);
            self.absorb_membership(now);
            self.membership_rejected(now, r);
        } else if h.kind & bits::HURRY != 0 {
            self.handle_hurry(now, h.proc_id);
        } else if h.kind & bits::REGULAR == 0 {
            self.drop_datagram(now, format_args!("unknown packet type {:#x}", h.kind));
        } else if h.memb_id != self.memb.membership_id() {
            self.memb.handle_foreign(now, &h, bytes, order);
            self.absorb_membership(now);
        } else {
            self.handle_data(now, h, bytes);
        }
    }

    fn handle_data(&mut self, now: Clock, h: PacketHeader, datagram: &[u8]) {
        if self.memb.token_alive() {
            self.arm(now, Timer::TokenLoss, self.site().timeouts.token);
            if self.i_am_leader() {
                self.arm(now, Timer::Hurry, self.site().timeouts.hurry);
            }
        }
        if h.seq <= self.store.last_discarded || self.store.packets.contains_key(&h.seq) {
            return;
        }
        if h.seq - self.store.last_discarded > MAX_PACKETS_AHEAD {
            log::warn!(
                "ring: packet {} from {} is too far ahead; dropped",
                h.seq,
                ip(h.transmitter)
            );
            return;
        }
        if !self.site().conf.knows(h.proc_id) {
            self.drop_datagram(
                now,
                format_args!("packet {} from unknown daemon {}", h.seq, ip(h.proc_id)),
            );
            return;
        }
        let (frags, whole) = wire::parse_data(datagram);
        if !whole {
            log::warn!(
                "ring: packet {} from {} has malformed fragments",
                h.seq,
                ip(h.transmitter)
            );
        }
        self.store.packets.insert(
            h.seq,
            Slot::Packet(Stored {
                header: h,
                frags,
                delivered: false,
            }),
        );
        self.stats.packets_received += 1;
        if h.proc_id != self.my_id() {
            self.reply_hold.others_packet();
        }
        if self.fc.params.accelerated_ring
            && h.token_round > self.received_token_rounds
            && h.transmitter == self.prev_proc
        {
            self.token_has_priority = true;
        }
        if self.store.highest_seq < h.seq {
            self.store.highest_seq = h.seq;
        }
        if h.seq == self.store.my_aru + 1 {
            self.advance_my_aru();
            self.deliver_agreed();
        } else {
            self.deliver_reliable(h.seq, 1);
        }
    }

    pub(crate) fn advance_my_aru(&mut self) {
        self.store.advance_my_aru();
    }

    /// A datagram from the token port.
    pub(crate) fn handle_token_datagram(&mut self, now: Clock, bytes: &[u8]) {
        let Ok((t, _)) = TokenHeader::parse(bytes) else {
            self.drop_datagram(now, format_args!("short token of {} bytes", bytes.len()));
            return;
        };
        if !self.hash_ok(now, t.conf_hash, t.proc_id, false) {
            return;
        }
        if self.partitioned_from(t.transmitter) {
            self.stats.dropped_by_partition += 1;
            return;
        }
        if t.kind & bits::FORM != 0 {
            self.handle_form(now, bytes);
            return;
        }
        self.handle_regular_token(now, t, bytes);
    }

    fn handle_regular_token(&mut self, now: Clock, mut token: TokenHeader, bytes: &[u8]) {
        if !self.memb.token_alive() {
            return; // veto: no ring is running here
        }
        if token.memb_id != self.memb.active_id() {
            return;
        }
        if Some(token.transmitter) != self.memb.active().previous_of(self.my_id()) {
            return;
        }
        if bytes.len() != wire::HEADER_LEN + usize::from(token.rtr_len) {
            self.drop_datagram(
                now,
                format_args!("token length {} != 40 + {}", bytes.len(), token.rtr_len),
            );
            return;
        }
        let Ok(rtrs) = wire::parse_rtr(bytes) else {
            self.drop_datagram(now, format_args!("token with malformed retransmission requests"));
            return;
        };
        let in_evs = self.memb.state() == State::Evs;
        if !in_evs && token.seq.saturating_sub(self.store.last_discarded) > MAX_PACKETS_AHEAD {
            log::warn!("ring: token seq {} is too far ahead; dropped", token.seq);
            return;
        }
        if !in_evs && token.seq > MAX_WRAP_SEQUENCE_VALUE {
            log::warn!(
                "ring: token seq {} near wrap; dropping it to re-form the ring",
                token.seq
            );
            return;
        }
        let arq = wire::arq(token.kind);
        let last_arq = wire::arq(self.last_token.kind);
        if self.i_am_leader() {
            if arq != last_arq {
                return; // a duplicate of a token already passed on
            }
            if self.memb.take_just_installed() {
                self.last_token.aru = 0;
            }
        } else if arq == last_arq {
            if wire::retrans(token.kind) > wire::retrans(self.last_token.kind) {
                // The leader fears the token is lost: pass mine on again.
                self.last_token.kind = wire::with_retrans(self.last_token.kind, wire::retrans(token.kind));
                self.token_hurry(now);
            }
            return;
        } else if arq != (last_arq + 1) % 16 {
            return; // outdated
        } else {
            if self.memb.take_just_installed() {
                self.last_token.aru = 0;
            }
            // The status record's token_hurry of a non-leader: new tokens
            // that the leader had to hurry.
            if wire::retrans(token.kind) > 0 {
                self.stats.token_hurries += 1;
            }
        }
        self.stats.tokens_handled += 1;
        let news = self.reply_hold.take_news();
        // The token's aru as it came (for `successor_stable`).
        let arrived = (token.aru, token.seq);
        if self.store.highest_seq < token.seq {
            self.store.highest_seq = token.seq;
        }
        self.received_token_rounds += 1;
        self.token_has_priority = false;

        let fc_in = token.flow_control;
        let (mut new_rtr, num_retrans, rtr_proc, rtr_seg) = self.answer_retrans(rtrs);
        let allowed = self.fc.allowed(
            i32::from(token.flow_control),
            in_evs,
            self.store.highest_seq,
            self.store.aru,
        );
        let num_sent = self.send_new_packets(allowed);
        token.flow_control = self
            .fc
            .update(i32::from(token.flow_control), num_retrans, num_sent)
            .clamp(-32768, 32767) as i16;

        self.advance_my_aru();
        let max_rtr_seq = if self.fc.params.accelerated_ring && !in_evs {
            self.last_token.seq
        } else {
            self.store.highest_seq
        };
        if self.store.my_aru < max_rtr_seq {
            let used: usize = new_rtr.iter().map(wire::rtr_len).sum();
            let room = wire::MAX_TOKEN_BODY.saturating_sub(used + 16) / 4;
            if room > 1 {
                let seqs: Vec<i32> = (self.store.my_aru + 1..=max_rtr_seq)
                    .filter(|s| !self.store.packets.contains_key(s))
                    .take(room)
                    .collect();
                new_rtr.push(RingRtr {
                    memb_id: self.memb.membership_id(),
                    proc_id: rtr_proc,
                    seg_index: rtr_seg,
                    seqs,
                });
            }
        }
        if in_evs && self.store.my_aru == self.store.highest_seq {
            self.store.my_aru = self.last_seq;
            self.memb.old_ring_recovered();
        }

        // The token's aru: lowered by whoever misses packets, raised by the
        // daemon that lowered it last, or by anyone once everything is in.
        if token.aru > self.store.my_aru
            || token.aru_last_id == self.my_id()
            || (token.aru == token.seq && !in_evs)
        {
            token.aru = self.store.my_aru;
            token.aru_last_id = self.my_id();
        }
        token.proc_id = self.my_id();
        if !in_evs {
            token.seq = self.store.highest_seq;
        }
        let leader = self.i_am_leader();
        if leader {
            token.kind = wire::with_retrans(wire::with_arq(token.kind, (arq + 1) % 16), 0);
        }
        token.transmitter = self.my_id();
        token.conf_hash = self.site().conf_hash;
        let bytes = wire::emit_token(&token, &new_rtr);
        token.rtr_len = (bytes.len() - wire::HEADER_LEN) as u16;
        self.held = None;
        self.disarm(Timer::ReplyHold);
        let idle_hold = leader && self.is_token_held();
        // Held for a local answer only when the answer could leave on it:
        // nothing of mine waits or is missing, nobody hurries the token.
        let reply_hold = !idle_hold
            && !in_evs
            && self.memb.state() == State::Op
            && num_sent == 0
            && wire::retrans(token.kind) == 0
            && self.down[self.active_down].messages.is_empty()
            && self.store.my_aru == self.store.highest_seq
            && self.reply_hold.wanted(news);
        if idle_hold || reply_hold {
            self.held = Some(super::HeldToken {
                token,
                fc_in: i32::from(fc_in),
                rtr: new_rtr,
                for_reply: reply_hold,
            });
            if reply_hold {
                self.stats.reply_holds += 1;
                self.arm(now, Timer::ReplyHold, self.reply_hold.limit);
            }
        } else {
            let copies = if wire::retrans(token.kind) > 1 { 3 } else { 1 };
            for _ in 0..copies {
                self.send_token_next(bytes.clone());
            }
        }
        self.token_rounds += 1;
        if leader {
            self.arm(now, Timer::Hurry, self.site().timeouts.hurry);
        }
        self.arm(now, Timer::TokenLoss, self.site().timeouts.token);
        self.flush_bcast();

        // Everyone has what the lower of the last two tokens says.
        let two_tokens = if token.aru > self.last_token.aru {
            self.last_token.aru
        } else {
            token.aru
        };
        // The idle hold counts by that rule alone, as the original's: the
        // others' stability comes from the same rotations.
        if self.store.highest_seq == two_tokens {
            self.token_counter += 1;
        } else {
            self.token_counter = 0;
        }
        if self.memb.state() == State::Op {
            self.op_visits = self.op_visits.saturating_add(1);
        } else {
            self.op_visits = 0;
        }
        self.store.aru = match self.successor_stable(arrived) {
            Some(t) => two_tokens.max(t).max(self.store.aru),
            None => two_tokens,
        };
        self.last_token = token;

        self.discard_packets(now);
        self.deliver_agreed();
        self.deliver_reliable(self.store.highest_seq - num_sent + 1, num_sent);

        if self.memb.state() == State::Evs && self.token_rounds > MAX_EVS_ROUNDS {
            log::error!("ring: too many token rounds in EVS; dropping the token");
            self.token_loss(now);
        }
    }

    /// What a ring of two or three daemons knows is everywhere beyond the
    /// lower-of-two-tokens rule, from the token as it arrived (`aru`,
    /// `seq`). Every daemon leaves the token's aru at most its own (it
    /// lowers a higher one to its own, and whoever sets it sets its own),
    /// and once lowered below a value the aru cannot rise past it within
    /// the rotation (only the daemon that lowered it, or anyone when it
    /// equals the token's seq, may raise it). So when I passed the token
    /// last with aru = seq = `y` and it comes back with an aru of at
    /// least `t > y`: my successor had everything up to `y`, my
    /// predecessor (the last to pass it) has `t`, and if the packets
    /// `y+1..=t` are all my successor's, sent on this rotation, my
    /// successor has them too; with my own aru `t` is everywhere. In a
    /// ring of two or three there is nobody else. A SAFE message is then
    /// delivered at its sender's predecessor on the visit right after the
    /// sender's, one rotation sooner, so a reply to the asker comes a
    /// rotation sooner (the others deliver when they did). Nothing on
    /// the wire changes: this is what the token rules of every daemon,
    /// the original's too, imply. Only in `OP` from the third visit of a
    /// configuration on (the first tokens still carry the EVS aru of the
    /// old ring).
    fn successor_stable(&self, (aru, seq): (i32, i32)) -> Option<i32> {
        if self.memb.state() != State::Op || self.op_visits < 3 {
            return None;
        }
        let me = self.my_id();
        let ring = self.memb.active();
        if !(2..=3).contains(&ring.ids().len()) {
            return None;
        }
        let mine = self.last_token;
        if mine.aru != mine.seq || aru > seq || aru <= mine.aru {
            return None;
        }
        let next = ring.next_of(me)?;
        let bound = aru.min(self.store.my_aru);
        let mut t = mine.seq;
        while t < bound {
            match self.store.packets.get(&(t + 1)) {
                Some(Slot::Packet(p)) if p.header.proc_id == next => t += 1,
                _ => break,
            }
        }
        (t > mine.seq).then_some(t)
    }

    /// Answers the requests for my ring; returns the requests of other rings,
    /// how many packets were sent, and how my own request should be answered
    /// (by unicast to me, or -1: to my segment or everyone).
    fn answer_retrans(&mut self, rtrs: Vec<RingRtr>) -> (Vec<RingRtr>, i32, i32, i16) {
        let mut keep = Vec::new();
        let mut num = 0;
        let mut proc_id = self.my_id() as i32;
        let mut seg = self.site().my_seg as i16;
        for r in rtrs {
            if r.memb_id != self.memb.membership_id() {
                keep.push(r);
                continue;
            }
            for seq in &r.seqs {
                let Some(Slot::Packet(p)) = self.store.packets.get(seq) else {
                    proc_id = -1;
                    if r.seg_index != self.site().my_seg as i16 {
                        seg = -1;
                    }
                    continue;
                };
                let (mut h, frags) = (p.header, p.frags.clone());
                h.transmitter = self.my_id();
                h.conf_hash = self.site().conf_hash;
                if r.proc_id != -1 {
                    let to = r.proc_id as u32;
                    if self.site().conf.knows(to) {
                        self.stats.retrans_unicast += 1;
                        self.send(
                            Destination::Daemon {
                                id: to,
                                channel: Channel::Data,
                            },
                            wire::emit_data(&h, &frags),
                        );
                    }
                } else if r.seg_index != -1 {
                    self.stats.retrans_segment += 1;
                    self.net_scast(r.seg_index as usize, &h, &frags);
                } else {
                    self.stats.retrans_broadcast += 1;
                    self.net_bcast(&h, &frags);
                }
                num += 1;
                self.stats.retransmissions_sent += 1;
            }
        }
        (keep, num, proc_id, seg)
    }

    /// `Net_scast` of a data packet to one segment.
    fn net_scast(&mut self, seg: usize, h: &PacketHeader, frags: &[Fragment]) {
        if seg == self.site().my_seg {
            if self.site().bcast_needed() {
                self.send(Destination::Segment(seg), wire::emit_data(h, frags));
            }
        } else if let Some(id) = self.net_members.first_in_segment(&self.site().conf, seg) {
            let mut routed = *h;
            routed.kind |= bits::ROUTED;
            self.send(
                Destination::Daemon {
                    id,
                    channel: Channel::Data,
                },
                wire::emit_data(&routed, frags),
            );
        }
    }

    /// Puts up to `allowed` new packets on the wire (or in the accelerated
    /// queue); returns how many were created.
    fn send_new_packets(&mut self, allowed: i32) -> i32 {
        let mut sent = 0;
        while sent < allowed {
            let q = &mut self.down[self.active_down];
            let Some(first) = q.messages.front() else {
                break;
            };
            let kind = first.packet_type;
            let mut frags: Vec<Fragment> = Vec::new();
            while let Some(msg) = q.messages.front_mut() {
                if !frags.is_empty() {
                    let next_len = msg.pieces.get(q.cur_piece).map(Vec::len).unwrap_or(0);
                    let used = (wire::packed_len(&frags) + 3) & !3;
                    if used + 4 + next_len > wire::BODY_LEN {
                        break;
                    }
                    let fa = |t: u32| t & (bits::FIFO | bits::AGREED) != 0;
                    if msg.packet_type != kind && !(fa(kind) && fa(msg.packet_type)) {
                        break;
                    }
                }
                let n = msg.pieces.len();
                // A message in one piece leaves the queue now: move it. The
                // pieces of a longer one stay (a new ring resends it from
                // its first piece).
                let piece = if n == 1 {
                    msg.pieces.get_mut(0).map(std::mem::take)
                } else {
                    msg.pieces.get(q.cur_piece).cloned()
                }
                .unwrap_or_default();
                q.cur_piece += 1;
                let index = if q.cur_piece < n {
                    q.cur_piece as i16
                } else {
                    q.messages.pop_front();
                    q.cur_piece = 0;
                    -(n as i16)
                };
                frags.push(Fragment { index, bytes: piece });
            }
            self.store.highest_seq += 1;
            let seq = self.store.highest_seq;
            let header = PacketHeader {
                kind,
                proc_id: self.my_id(),
                memb_id: self.memb.membership_id(),
                seq,
                ..Default::default()
            };
            self.store.packets.insert(
                seq,
                Slot::Packet(Stored {
                    header,
                    frags,
                    delivered: false,
                }),
            );
            self.queue_bcast(seq);
            self.stats.packets_sent += 1;
            sent += 1;
        }
        sent
    }

    fn queue_bcast(&mut self, seq: i32) {
        let accel = self.fc.params.accelerated_ring && self.memb.state() != State::Evs;
        let window = self.fc.params.accelerated_window.max(0) as usize;
        let len = self.pending_bcast.len();
        let n = if accel {
            (len + 1).saturating_sub(window).min(len)
        } else {
            len
        };
        for _ in 0..n {
            if let Some(p) = self.pending_bcast.pop_front() {
                self.bcast_stored(p.seq);
            }
        }
        if !accel || window == 0 {
            self.bcast_stored(seq);
        } else {
            self.pending_bcast.push_back(super::PendingBcast { seq });
        }
    }

    fn flush_bcast(&mut self) {
        while let Some(p) = self.pending_bcast.pop_front() {
            self.bcast_stored(p.seq);
        }
    }

    fn bcast_stored(&mut self, seq: i32) {
        let rounds = self.token_rounds;
        let Some(Slot::Packet(p)) = self.store.packets.get_mut(&seq) else {
            return;
        };
        p.header.token_round = rounds;
        // Lent to the send and put back (it stays for retransmission).
        let (h, frags) = (p.header, std::mem::take(&mut p.frags));
        self.net_bcast(&h, &frags);
        if let Some(Slot::Packet(p)) = self.store.packets.get_mut(&seq) {
            p.frags = frags;
        }
    }

    /// Hands a packet's messages up, completing multi-packet messages.
    /// The stored fragments stay for retransmission: each message is copied
    /// once, into its event (a whole one straight from its fragment).
    fn deliver_packet(&mut self, seq: i32) {
        self.hand_up(seq, false);
    }

    /// As [`Self::deliver_packet`] for a packet removed right after: its
    /// messages are moved up, not copied.
    fn deliver_packet_last(&mut self, seq: i32) {
        self.hand_up(seq, true);
    }

    fn hand_up(&mut self, seq: i32, last_use: bool) {
        let Some(Slot::Packet(p)) = self.store.packets.get_mut(&seq) else {
            return;
        };
        p.delivered = true;
        self.stats.packets_delivered += 1;
        let h = p.header;
        let Some(packet_type) = PacketType::of_bits(h.kind) else {
            return;
        };
        // Taken out for the hand-up (free) and put back unless `last_use`.
        let mut frags = std::mem::take(&mut p.frags);
        let piece = |f: &mut Fragment| {
            if last_use {
                std::mem::take(&mut f.bytes)
            } else {
                f.bytes.clone()
            }
        };
        let Some((first, rest)) = frags.split_first_mut() else {
            return;
        };
        let whole = if first.index == -1 && self.up.is_empty() {
            // A message in one piece and nothing being reassembled (the
            // common case): no lookups.
            Some(piece(first))
        } else {
            let key = if h.kind & bits::RELIABLE != 0 && first.index == -1 {
                RELIABLE_KEY
            } else {
                self.memb
                    .site
                    .conf
                    .pos(h.proc_id)
                    .map(|p| p.rank)
                    .unwrap_or(RELIABLE_KEY - 1)
            };
            let index = usize::from(first.index.unsigned_abs());
            let pending = self.up.get(&key).map_or(0, Vec::len);
            if pending + 1 != index {
                log::error!(
                    "ring: packet {} from {} carries piece {} but {} pieces are pending; dropping the message",
                    seq,
                    ip(h.proc_id),
                    first.index,
                    pending
                );
                self.up.remove(&key);
                None
            } else if first.index == -1 {
                Some(piece(first))
            } else {
                let parts = self.up.entry(key).or_default();
                parts.push(piece(first));
                if first.index < 0 {
                    self.up.remove(&key).map(|parts| parts.concat())
                } else {
                    None
                }
            }
        };
        if let Some(bytes) = whole {
            self.stats.messages_delivered += u64::from(monitor::is_client_data_message(&bytes));
            self.events.push_back(RingEvent::Deliver {
                packet_type,
                from: h.proc_id,
                bytes,
            });
        }
        for f in rest {
            self.stats.messages_delivered += u64::from(monitor::is_client_data_message(&f.bytes));
            self.events.push_back(RingEvent::Deliver {
                packet_type,
                from: h.proc_id,
                bytes: piece(f),
            });
        }
        if !last_use {
            if let Some(Slot::Packet(p)) = self.store.packets.get_mut(&seq) {
                p.frags = frags;
            }
        }
    }

    /// Single-packet RELIABLE messages go up as soon as they arrive.
    pub(crate) fn deliver_reliable(&mut self, start: i32, count: i32) {
        if self.memb.state() == State::Evs || self.threshold > DeliveryThreshold::Reliable || count <= 0 {
            return;
        }
        let end = start + count - 1;
        let start = start.max(self.store.last_delivered + 1);
        if end < start {
            return;
        }
        let seqs: Vec<i32> = self
            .store
            .packets
            .range(start..=end)
            .filter_map(|(s, slot)| match slot {
                Slot::Packet(p)
                    if !p.delivered
                        && p.header.kind & bits::RELIABLE != 0
                        && p.header.frag_index == -1
                        && p.frags.first().map(|f| f.index) == Some(-1) =>
                {
                    Some(*s)
                }
                _ => None,
            })
            .collect();
        for s in seqs {
            self.deliver_packet(s);
        }
    }

    /// Everything received in order up to the first SAFE packet goes up.
    pub(crate) fn deliver_agreed(&mut self) {
        if self.store.my_aru <= self.store.last_delivered
            || self.memb.state() == State::Evs
            || self.threshold > DeliveryThreshold::Agreed
        {
            return;
        }
        while self.store.last_delivered < self.store.my_aru {
            let s = self.store.last_delivered + 1;
            match self.store.packets.get(&s) {
                Some(Slot::Packet(p)) if !p.delivered => {
                    if p.header.kind & bits::SAFE != 0 {
                        return;
                    }
                    self.deliver_packet(s);
                }
                Some(Slot::Packet(_)) => {}
                _ => {
                    log::error!("ring: packet {} missing below my aru {}", s, self.store.my_aru);
                    return;
                }
            }
            self.store.last_delivered = s;
        }
    }

    /// Delivers and forgets what every member has; in EVS, once the new ring
    /// has everything, finishes the old configuration and installs the new.
    pub(crate) fn discard_packets(&mut self, now: Clock) {
        if self.store.aru <= self.store.last_discarded {
            return;
        }
        if self.memb.state() != State::Evs {
            let seqs: Vec<i32> = self
                .store
                .packets
                .range(self.store.last_discarded + 1..=self.store.aru)
                .map(|(s, _)| *s)
                .collect();
            if seqs.len() as i64 != i64::from(self.store.aru) - i64::from(self.store.last_discarded) {
                log::error!(
                    "ring: packets missing between {} and aru {}",
                    self.store.last_discarded + 1,
                    self.store.aru
                );
            }
            for s in seqs {
                if matches!(self.store.packets.get(&s), Some(Slot::Packet(p)) if !p.delivered) {
                    self.deliver_packet_last(s);
                }
                self.store.packets.remove(&s);
            }
            self.store.last_discarded = self.store.aru;
            if self.store.last_delivered < self.store.last_discarded {
                self.store.last_delivered = self.store.last_discarded;
            }
            return;
        }
        if self.store.aru != self.last_seq {
            return;
        }
        // Old configuration: in order up to the first hole or SAFE packet.
        let seqs: Vec<i32> = if self.store.last_discarded < self.store.highest_seq {
            self.store
                .packets
                .range(self.store.last_discarded + 1..=self.store.highest_seq)
                .map(|(s, _)| *s)
                .collect()
        } else {
            Vec::new()
        };
        let mut rest = seqs.as_slice();
        while let Some((&s, tail)) = rest.split_first() {
            if s != self.store.last_discarded + 1 {
                log::error!(
                    "ring: packet {} missing before the transitional configuration",
                    s - 1
                );
                break;
            }
            match self.store.packets.get(&s) {
                Some(Slot::Hole) => break,
                Some(Slot::Packet(p)) if p.header.kind & bits::SAFE != 0 => break,
                Some(Slot::Packet(p)) if !p.delivered => self.deliver_packet(s),
                _ => {}
            }
            self.store.packets.remove(&s);
            self.store.last_discarded = s;
            rest = tail;
        }
        self.memb.build_transitional();
        let (trans_id, trans) = self.memb.transitional_configuration();
        self.events.push_back(RingEvent::Transitional {
            memb_id: trans_id,
            members: trans.ids().to_vec(),
        });
        // Transitional configuration: the rest, but after a hole only what
        // members of the commit set sent.
        let mut found_hole = false;
        let mut expected = self.store.last_discarded + 1;
        for &s in rest {
            if s != expected {
                found_hole = true;
            }
            expected = s + 1;
            match self.store.packets.get(&s) {
                Some(Slot::Hole) => found_hole = true,
                Some(Slot::Packet(p))
                    if !p.delivered
                        && (!found_hole || self.memb.commit_members().contains(p.header.proc_id)) =>
                {
                    self.deliver_packet(s)
                }
                _ => {}
            }
        }
        self.store.packets.clear();
        let q = &mut self.down[self.active_down];
        if !q.messages.is_empty() {
            q.cur_piece = 0;
        }
        self.up.clear();
        self.memb.install_regular(now);
        self.stats.memberships_installed += 1;
        self.absorb_membership(now);
        self.after_install(now);
        self.events.push_back(RingEvent::Regular {
            memb_id: self.memb.membership_id(),
            members: self.memb.members().ids().to_vec(),
        });
        self.store.highest_seq = 0;
        self.store.my_aru = 0;
        self.store.aru = 0;
        self.op_visits = 0;
        self.store.last_discarded = 0;
        self.store.last_delivered = 0;
        self.token_counter = 0;
    }

    /// Whether the token rests at the leader: a working ring, every packet
    /// stable, and at least two quiet rotations.
    pub(crate) fn is_token_held(&self) -> bool {
        let s = self.memb.state();
        (s == State::Op || (s == State::Gather && self.memb.token_alive()))
            && wire::retrans(self.last_token.kind) <= 1
            && self.store.aru == self.store.highest_seq
            && self.token_counter > 1
    }

    /// A daemon wants to send while the token rests: wake the leader.
    pub(crate) fn ask_for_token(&mut self, now: Clock) {
        let Some(leader) = self.active_leader() else {
            return;
        };
        if leader == self.my_id() {
            self.handle_hurry(now, self.my_id());
        } else {
            let h = PacketHeader {
                kind: bits::HURRY,
                transmitter: self.my_id(),
                proc_id: self.my_id(),
                conf_hash: self.site().conf_hash,
                ..Default::default()
            };
            self.send(
                Destination::Daemon {
                    id: leader,
                    channel: Channel::Data,
                },
                h.emit_bare(),
            );
        }
    }

    fn handle_hurry(&mut self, now: Clock, from: u32) {
        if self.i_am_leader() && self.is_token_held() && self.memb.active().contains(from) {
            if from == self.my_id() && self.send_on_held_token(now) {
                return;
            }
            self.token_counter = 0;
            self.token_hurry(now);
        }
    }

    /// The leader holds a token it built on an idle ring and has not sent
    /// (RETRANS 0: nobody has seen it) when its own client's message
    /// comes: the visit that built it is done again as if the message had
    /// been queued then, so the new packets and the token leave now. The
    /// original sends the held token round the ring first, and the
    /// leader's message waits a whole rotation for it to come back. Since
    /// no other daemon has the held token, the ring cannot tell this from
    /// a message that arrived just before the token: the order, the
    /// token's fields and the wire are those of an ordinary visit.
    /// False (nothing done) if there is no such token or nothing to send.
    fn send_on_held_token(&mut self, now: Clock) -> bool {
        let Some(held) = self.held.take() else {
            return false;
        };
        if held.token != self.last_token
            || wire::retrans(held.token.kind) != 0
            || self.memb.state() != State::Op
            || self.store.my_aru != self.store.highest_seq
        {
            self.held = Some(held);
            return false;
        }
        let mut token = held.token;
        let allowed = self
            .fc
            .allowed(held.fc_in, false, self.store.highest_seq, self.store.aru);
        // The packets belong to the visit that built the token: its round.
        self.token_rounds -= 1;
        let num_sent = self.send_new_packets(allowed);
        self.token_rounds += 1;
        if num_sent == 0 {
            self.held = Some(held);
            return false;
        }
        // The visit's count with these packets (the retransmissions the
        // visit counted stay counted).
        token.flow_control = (i32::from(token.flow_control) + num_sent).clamp(-32768, 32767) as i16;
        self.fc.last_num_sent = num_sent;
        self.advance_my_aru();
        // The aru rule of the visit, with the token's seq as it arrived.
        if token.aru > self.store.my_aru || token.aru_last_id == self.my_id() || token.aru == token.seq {
            token.aru = self.store.my_aru;
            token.aru_last_id = self.my_id();
        }
        token.seq = self.store.highest_seq;
        let bytes = wire::emit_token(&token, &held.rtr);
        token.rtr_len = (bytes.len() - wire::HEADER_LEN) as u16;
        self.send_token_next(bytes);
        if self.i_am_leader() {
            self.arm(now, Timer::Hurry, self.site().timeouts.hurry);
        }
        self.arm(now, Timer::TokenLoss, self.site().timeouts.token);
        self.flush_bcast();
        // Someone wants to send: no hold until everyone had a turn.
        self.token_counter = 0;
        self.last_token = token;
        self.deliver_agreed();
        self.deliver_reliable(self.store.highest_seq - num_sent + 1, num_sent);
        true
    }

    /// Ends a hold for a local answer: `answered`, a local message came
    /// and leaves on the held token if it still can; otherwise (or when
    /// the hold ran out) the token leaves as it was built, as if the
    /// network had taken that much longer to carry it.
    pub(crate) fn end_reply_hold(&mut self, now: Clock, answered: bool) {
        if !self.is_reply_held() {
            return;
        }
        self.disarm(Timer::ReplyHold);
        if answered {
            self.reply_hold.answered();
            if self.send_on_held_token(now) {
                self.stats.reply_holds_answered += 1;
                return;
            }
        } else {
            self.reply_hold.missed();
        }
        let Some(held) = self.held.take() else {
            return;
        };
        if held.token == self.last_token {
            self.send_token_next(wire::emit_token(&held.token, &held.rtr));
        }
    }

    /// Whether a token is held for a local answer.
    pub(crate) fn is_reply_held(&self) -> bool {
        self.held.as_ref().is_some_and(|h| h.for_reply)
    }

    /// The ring is lost or re-forming: a token held for an answer is void.
    pub(crate) fn drop_reply_hold(&mut self) {
        if self.is_reply_held() {
            self.held = None;
            self.disarm(Timer::ReplyHold);
        }
    }

    /// Sends the last token again (at the leader: with RETRANS raised, and
    /// re-arms the hurry timer).
    pub(crate) fn token_hurry(&mut self, now: Clock) {
        self.last_token.rtr_len = 0;
        if self.i_am_leader() {
            self.stats.token_hurries += 1;
            let r = wire::retrans(self.last_token.kind).wrapping_add(1);
            self.last_token.kind = wire::with_retrans(self.last_token.kind, r);
            self.arm(now, Timer::Hurry, self.site().timeouts.hurry);
        }
        let mut t = self.last_token;
        t.transmitter = self.my_id();
        t.conf_hash = self.site().conf_hash;
        let bytes = wire::emit_token(&t, &[]);
        let mut copies = 1;
        if self.site().conf.wide_area() {
            let seg_last = self
                .memb
                .active()
                .ids()
                .iter()
                .copied()
                .rfind(|id| self.site().conf.pos(*id).map(|p| p.seg) == Some(self.site().my_seg));
            if seg_last == Some(self.my_id()) {
                copies += 1;
            }
        }
        if wire::retrans(self.last_token.kind) > 1 {
            copies += 2;
        }
        for _ in 0..copies {
            self.send_token_next(bytes.clone());
        }
    }
}
