//! The groups state exchange after a daemon membership change: switching
//! the ring's queues and threshold, sending and receiving GROUPS messages.

use std::net::Ipv4Addr;

use log::warn;
use spread_wire::client::limits::MESSAGE_HEADER_LEN;
use spread_wire::client::service::*;
use spread_wire::client::MessageHeader;
use spread_wire::endian::ByteOrder;

use crate::clock::Clock;
use crate::groups::Exchange;
use crate::ring::{DeliveryThreshold, DownQueue, Outgoing, PacketType};
use spread_wire::daemon::{groups_message_header, synced_set_size_of, GroupsBody};

use super::{Engine, Sequencer};

impl Engine {
    /// Switch message flow for the groups state exchange.
    pub(super) fn apply_exchange(&mut self, exchange: Exchange, now: Clock) {
        let Sequencer::Ring(ring) = &mut self.sequencer else {
            return;
        };
        match exchange {
            Exchange::None => {}
            Exchange::Start {
                bodies,
                synced_set_size,
            } => {
                ring.set_down_queue(DownQueue::Groups);
                ring.set_delivery_threshold(DeliveryThreshold::Agreed);
                self.exchanging = true;
                let n = bodies.len();
                for (i, body) in bodies.into_iter().enumerate() {
                    let last = i + 1 == n;
                    let encoded = body.emit(ByteOrder::NATIVE);
                    let header = groups_message_header(
                        &self.cfg.daemon_name,
                        synced_set_size,
                        last,
                        encoded.len(),
                        ByteOrder::NATIVE,
                    );
                    let mut bytes = Vec::with_capacity(MESSAGE_HEADER_LEN + encoded.len());
                    header.emit_into(ByteOrder::NATIVE, &mut bytes);
                    bytes.extend_from_slice(&encoded);
                    let packet_type = if last {
                        PacketType::Agreed
                    } else {
                        PacketType::Reliable
                    };
                    ring.submit(now, Outgoing { packet_type, bytes });
                }
            }
            Exchange::Done => {
                ring.set_down_queue(DownQueue::Normal);
                ring.set_delivery_threshold(DeliveryThreshold::Reliable);
                self.exchanging = false;
                while let Some(msg) = self.held.pop_front() {
                    self.submit(msg, now);
                }
            }
        }
    }

    pub(super) fn deliver_groups_message(&mut self, bytes: &[u8], from: u32, now: Clock) {
        let Ok((header, order)) = MessageHeader::parse(bytes) else {
            return;
        };
        let body = match GroupsBody::parse(&bytes[MESSAGE_HEADER_LEN..], order) {
            Ok(body) => body,
            Err(e) => {
                warn!(target: "spread::groups", "bad GROUPS message from {}: {e}", Ipv4Addr::from(from));
                return;
            }
        };
        let sender = header.sender.as_bytes();
        let rank = self
            .cfg
            .daemon_names
            .iter()
            .position(|n| n.as_slice() == sender)
            .map(|r| r as u32);
        let size = synced_set_size_of(&header.sender, order);
        let last = header.service_type & AGREED_MESS != 0;
        let (notices, exchange) = self.groups.groups_message(rank, body, size, last);
        self.render(notices);
        self.apply_exchange(exchange, now);
    }
}

/// Whether delivered message bytes are a daemons' GROUPS message.
pub(super) fn is_groups_message(bytes: &[u8]) -> bool {
    MessageHeader::parse(bytes).is_ok_and(|(h, _)| h.service_type & GROUPS_MESS != 0)
}
