//! The local sequencer: where client messages get their place in the
//! total order (at once for a daemon alone, through the ring otherwise),
//! and the loop that hands what it ordered to delivery.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;

use log::info;

use crate::clock::Clock;
use crate::ring::{Outgoing, PacketType, RingEngine, RingEvent};
use crate::session::ClientMessage;

use super::delivery::ids;
use super::exchange::is_groups_message;
use super::Engine;

impl Engine {
    pub(super) fn submit(&mut self, msg: ClientMessage, now: Clock) {
        if self.exchanging {
            self.held.push_back(msg);
            return;
        }
        match &mut self.sequencer {
            Sequencer::Local(queue) => queue.push_back(msg),
            Sequencer::Ring(ring) => ring.submit(
                now,
                Outgoing {
                    packet_type: PacketType::for_service(msg.header.service_type),
                    // Unshared until delivery: moved, not copied.
                    bytes: Arc::try_unwrap(msg.bytes).unwrap_or_else(|shared| shared.as_ref().clone()),
                },
            ),
        }
    }

    /// Deliver what the sequencer has put in order.
    pub(super) fn run_sequencer(&mut self, now: Clock) {
        loop {
            let event = match &mut self.sequencer {
                Sequencer::Local(queue) => match queue.pop_front() {
                    Some(msg) => Sequenced::Local(msg),
                    None => return,
                },
                Sequencer::Ring(ring) => match ring.poll_event() {
                    Some(event) => Sequenced::Ring(event),
                    None => return,
                },
            };
            match event {
                Sequenced::Local(msg) => {
                    self.alone.count(&msg.bytes);
                    self.deliver(msg)
                }
                Sequenced::Ring(RingEvent::Deliver { bytes, from, .. }) => {
                    if is_groups_message(&bytes) {
                        self.deliver_groups_message(&bytes, from, now);
                    } else if let Some(msg) = self.message_from_ring(bytes, from) {
                        self.deliver(msg);
                    }
                }
                Sequenced::Ring(RingEvent::Transitional { memb_id, members }) => {
                    info!(target: "spread::membership", "transitional configuration {memb_id:?}: {}", ids(&members));
                    let members: Vec<i32> = members.iter().map(|&m| m as i32).collect();
                    let notices = self.groups.transitional(&members, memb_id);
                    self.render(notices);
                }
                Sequenced::Ring(RingEvent::Regular { memb_id, members }) => {
                    info!(target: "spread::membership", "Membership id is ({}, {}): {}",
                        Ipv4Addr::from(memb_id.proc_id as u32), memb_id.time, ids(&members));
                    self.memb_id = memb_id;
                    let members: Vec<i32> = members.iter().map(|&m| m as i32).collect();
                    let (notices, exchange) = self.groups.regular(&members, memb_id);
                    self.render(notices);
                    self.apply_exchange(exchange, now);
                }
            }
        }
    }
}

/// The sequencer: immediate for a daemon alone in its configuration,
/// the ring protocol otherwise.
pub(super) enum Sequencer {
    Local(VecDeque<ClientMessage>),
    Ring(Box<RingEngine>),
}

pub(super) enum Sequenced {
    Local(ClientMessage),
    Ring(RingEvent),
}
