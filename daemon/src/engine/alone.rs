//! A daemon alone in its configuration orders client messages at once,
//! without a ring. The monitor still asks it for the counters a ring keeps
//! and may change its flow-control windows; the original runs its ring
//! protocol with itself alone, so its STATUS shows them: this keeps the
//! same counts for the local order.

use spread_wire::daemon::PACKET_BODY_LEN;

use crate::ring::{is_client_data_message, FlowParams, RingStats, RingStatus};

use super::sequencer::Sequencer;
use super::Engine;

/// What the local order counted, and the windows the monitor sees.
#[derive(Clone, Debug, Default)]
pub(super) struct AloneCounters {
    /// Packets the ring would have carried: a message of more than one
    /// packet body counts as its fragments, joins and leaves included
    /// (the original's `packet_sent`, `packet_delivered`, sequence marks).
    packets: u64,
    /// Client data messages delivered (the original's `message_delivered`).
    messages_delivered: u64,
    flow: FlowParams,
}

impl AloneCounters {
    pub(super) fn count(&mut self, message: &[u8]) {
        self.packets += message.len().div_ceil(PACKET_BODY_LEN).max(1) as u64;
        self.messages_delivered += u64::from(is_client_data_message(message));
    }
}

impl Engine {
    /// The flow-control windows a daemon alone reports (the configuration's;
    /// without a ring they limit nothing).
    pub fn set_alone_flow(&mut self, flow: FlowParams) {
        self.alone.flow = flow;
    }

    /// The monitor's FC command: the ring's windows, or those a daemon
    /// alone reports. `None` leaves a window as it is.
    pub fn set_flow_control(&mut self, window: Option<i32>, personal: Option<i32>, accelerated: Option<i32>) {
        if let Some(ring) = self.ring_mut() {
            ring.set_flow_control(window, personal, accelerated);
            return;
        }
        let flow = &mut self.alone.flow;
        for (value, setting) in [
            (window, &mut flow.window),
            (personal, &mut flow.personal_window),
            (accelerated, &mut flow.accelerated_window),
        ] {
            if let Some(v) = value {
                *setting = v;
            }
        }
    }

    /// A STATUS reply's ring counters: the ring's, or for a daemon alone
    /// what the original's one-daemon ring shows (operational, itself the
    /// leader of 1 daemon in 1 segment, one membership installed, every
    /// packet its own, sequence marks at the packets ordered). Token rounds
    /// and hurries stay 0: no token goes round.
    pub fn status_counters(&self) -> (RingStatus, RingStats) {
        if let Sequencer::Ring(ring) = &self.sequencer {
            return (ring.status(), ring.stats());
        }
        let a = &self.alone;
        let seq = a.packets.min(i32::MAX as u64) as i32;
        let status = RingStatus {
            state: 1,
            aru: seq,
            my_aru: seq,
            highest_seq: seq,
            token_rounds: 0,
            leader_id: u32::from(self.cfg.daemon_ip),
            num_procs: 1,
            num_segments: 1,
            window: a.flow.window,
            personal_window: a.flow.personal_window,
            accelerated_ring: a.flow.accelerated_ring,
            accelerated_window: a.flow.accelerated_window,
        };
        let stats = RingStats {
            packets_sent: a.packets,
            packets_delivered: a.packets,
            messages_delivered: a.messages_delivered,
            memberships_installed: 1,
            ..RingStats::default()
        };
        (status, stats)
    }
}
