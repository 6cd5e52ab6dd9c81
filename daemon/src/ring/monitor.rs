//! What the monitor protocol needs from the ring: a status view, the
//! monitor's partition filter and run-time flow-control changes.

use std::collections::HashMap;

use super::RingEngine;
use crate::membership::State;
use spread_wire::client::service::{GROUPS_MESS, JOIN_MESS, KILL_MESS, LEAVE_MESS, REGULAR_MESS};
use spread_wire::client::MessageHeader;

/// The ring's part of a STATUS reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStatus {
    /// Membership state as the status record numbers it (1 OP .. 6 EVS).
    pub state: i32,
    pub aru: i32,
    pub my_aru: i32,
    pub highest_seq: i32,
    pub token_rounds: i32,
    pub leader_id: u32,
    pub num_procs: usize,
    pub num_segments: usize,
    pub window: i32,
    pub personal_window: i32,
    pub accelerated_ring: bool,
    pub accelerated_window: i32,
}

/// Whether a message the ring delivers is a client data message (what the
/// status record's `message_delivered` counts: not JOIN/LEAVE/KILL, not the
/// daemons' GROUPS exchange).
pub(crate) fn is_client_data_message(bytes: &[u8]) -> bool {
    MessageHeader::parse(bytes).is_ok_and(|(h, _)| {
        h.service_type & REGULAR_MESS != 0
            && h.service_type & (JOIN_MESS | LEAVE_MESS | KILL_MESS | GROUPS_MESS) == 0
    })
}

impl RingEngine {
    /// The counters and settings a STATUS reply shows.
    pub fn status(&self) -> RingStatus {
        let members = &self.memb.members();
        let mut segments: Vec<usize> = members
            .ids()
            .iter()
            .filter_map(|id| self.site().conf.pos(*id).map(|p| p.seg))
            .collect();
        segments.sort_unstable();
        segments.dedup();
        RingStatus {
            state: match self.memb.state() {
                State::Op => 1,
                State::Seg => 2,
                State::Represented => 3,
                State::Gather => 4,
                State::Form => 5,
                State::Evs => 6,
            },
            aru: self.store.aru,
            my_aru: self.store.my_aru,
            highest_seq: self.store.highest_seq,
            token_rounds: self.token_rounds,
            leader_id: self.memb.membership_id().proc_id as u32,
            num_procs: members.len(),
            num_segments: segments.len(),
            window: self.fc.params.window,
            personal_window: self.fc.params.personal_window,
            accelerated_ring: self.fc.params.accelerated_ring,
            accelerated_window: self.fc.params.accelerated_window,
        }
    }

    /// This daemon's configuration hash (monitor packets may carry it).
    pub fn conf_hash(&self) -> u32 {
        self.site().conf_hash
    }

    /// Installs the monitor's partition (component per daemon id), or
    /// removes it with `None`. Daemons of another component are ignored on
    /// receive, data and token alike; sending is unchanged (as the original).
    pub fn set_partition(&mut self, components: Option<HashMap<u32, i16>>) {
        if self.reload_singleton {
            log::warn!("monitor partition refused: a reload's singleton partition is in force");
            return;
        }
        self.partition = components.filter(|c| c.values().any(|&v| v != 0));
    }

    pub fn partition(&self) -> Option<&HashMap<u32, i16>> {
        self.partition.as_ref()
    }

    /// Whether the partition in force hides `transmitter` from this daemon.
    pub(crate) fn partitioned_from(&self, transmitter: u32) -> bool {
        if self.reload_singleton {
            return transmitter != self.my_id();
        }
        let Some(p) = &self.partition else { return false };
        let component = |id: u32| p.get(&id).copied().unwrap_or(0);
        component(transmitter) != component(self.my_id())
    }

    /// The monitor's FC command: each value given replaces the setting
    /// (no validation, as the original).
    pub fn set_flow_control(&mut self, window: Option<i32>, personal: Option<i32>, accelerated: Option<i32>) {
        if let Some(w) = window {
            self.fc.params.window = w;
        }
        if let Some(p) = personal {
            self.fc.params.personal_window = p;
        }
        if let Some(a) = accelerated {
            self.fc.params.accelerated_window = a;
        }
    }
}
