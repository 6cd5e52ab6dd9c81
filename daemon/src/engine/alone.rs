//! A daemon alone in its configuration orders client messages at once,
//! without a ring. The monitor still asks it for the counters a ring keeps
//! and may change its flow-control windows; the original runs its ring
//! protocol with itself alone, so its STATUS shows them: this keeps the
//! same counts for the local order.

use spread_wire::daemon::BODY_LEN as PACKET_BODY_LEN;

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
    pub(super) flow: FlowParams,
    /// Memberships installed after the first: the original's one-daemon
    /// ring forms a new membership with itself on every reload.
    pub(super) reloads: u64,
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
    /// leader of 1 daemon in 1 segment, one membership installed and one
    /// more per reload, every
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
            memberships_installed: 1 + a.reloads,
            ..RingStats::default()
        };
        (status, stats)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Instant;

    use spread_wire::client::service::{AGREED_MESS, JOIN_MESS};
    use spread_wire::client::{hint_for, GroupName, MessageHeader};
    use spread_wire::endian::ByteOrder;

    use super::*;
    use crate::clock::Clock;
    use crate::engine::EngineConfig;

    fn message(service_type: u32, body: usize) -> Vec<u8> {
        let header = MessageHeader {
            service_type,
            sender: GroupName::new(b"#alice#solo").unwrap(),
            num_groups: 0,
            hint: hint_for(0, ByteOrder::NATIVE),
            data_len: body as i32,
        };
        let mut bytes = header.emit(ByteOrder::NATIVE).to_vec();
        bytes.resize(bytes.len() + body, 0);
        bytes
    }

    #[test]
    fn a_daemon_alone_reports_the_one_daemon_ring_of_the_original() {
        let mut e = Engine::new(
            EngineConfig::new("solo", Ipv4Addr::new(127, 0, 0, 1)),
            Clock::new(Instant::now(), 1_795_417_800),
        );
        e.set_alone_flow(FlowParams::default());
        let (s, st) = e.status_counters();
        assert_eq!(
            (s.state, s.leader_id, s.num_procs, s.num_segments),
            (1, 0x7f00_0001, 1, 1)
        );
        assert_eq!((s.window, s.personal_window), (160, 20));
        assert_eq!(
            (st.memberships_installed, st.packets_sent, st.messages_delivered),
            (1, 0, 0)
        );

        // A join (not a client message), one small message, one of three packets.
        e.alone.count(&message(JOIN_MESS, 20));
        e.alone.count(&message(AGREED_MESS, 10));
        e.alone.count(&message(AGREED_MESS, 2 * PACKET_BODY_LEN));
        let (s, st) = e.status_counters();
        assert_eq!(
            (st.packets_sent, st.packets_delivered, st.messages_delivered),
            (5, 5, 2)
        );
        assert_eq!((s.aru, s.my_aru, s.highest_seq, s.token_rounds), (5, 5, 5, 0));

        // FC: a window given changes, one not given stays.
        e.set_flow_control(Some(80), None, Some(3));
        let (s, _) = e.status_counters();
        assert_eq!((s.window, s.personal_window, s.accelerated_window), (80, 20, 3));

        // A reload puts the file's windows back and counts a membership.
        let cfg = EngineConfig::new("solo", Ipv4Addr::new(127, 0, 0, 1));
        let params = crate::ring::RingParams::new(0x7f00_0001, vec![], 1);
        e.reload(
            Clock::new(Instant::now(), 1_795_417_801),
            cfg,
            Some(params),
            false,
        );
        let (s, st) = e.status_counters();
        assert_eq!((s.window, s.personal_window, s.accelerated_window), (160, 20, 15));
        assert_eq!(st.memberships_installed, 2);
    }
}
