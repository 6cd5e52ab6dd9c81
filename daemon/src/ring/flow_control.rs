//! Flow control: how many new packets a daemon may send on a token visit.
//!
//! The token's `flow_control` field counts the packets (new and
//! retransmitted) sent during the last rotation; each daemon replaces its own
//! contribution from the previous rotation with this one's.

use super::FlowParams;

/// Most packets between the ring's aru and its highest sequence number.
pub(crate) const MAX_SEQ_GAP: i32 = 1600;

#[derive(Clone, Debug)]
pub(crate) struct FlowControl {
    pub params: FlowParams,
    pub last_num_retrans: i32,
    pub last_num_sent: i32,
}

impl FlowControl {
    pub fn new(params: FlowParams) -> Self {
        FlowControl {
            params,
            last_num_retrans: 0,
            last_num_sent: 0,
        }
    }

    /// A new ring: no contribution to the token's count yet.
    pub fn new_configuration(&mut self) {
        self.last_num_retrans = 0;
        self.last_num_sent = 0;
    }

    /// New packets allowed on this visit, given the token's count.
    pub fn allowed(&self, token_fc: i32, in_evs: bool, highest_seq: i32, aru: i32) -> i32 {
        if in_evs || highest_seq > aru.saturating_add(MAX_SEQ_GAP) {
            return 0;
        }
        let w = self.params.window;
        let pw = self.params.personal_window;
        (w + pw - token_fc).max(0).min(w).min(pw)
    }

    /// The token's new count after this visit.
    pub fn update(&mut self, token_fc: i32, num_retrans: i32, num_sent: i32) -> i32 {
        let v = token_fc - self.last_num_retrans - self.last_num_sent + num_retrans + num_sent;
        self.last_num_retrans = num_retrans;
        self.last_num_sent = num_sent;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_window_caps_an_idle_ring() {
        let fc = FlowControl::new(FlowParams::default());
        assert_eq!(fc.allowed(0, false, 0, 0), 20);
        // Ring already sent 150 this rotation: 160 + 20 - 150 = 30 -> capped to 20.
        assert_eq!(fc.allowed(150, false, 0, 0), 20);
        assert_eq!(fc.allowed(170, false, 0, 0), 10);
        assert_eq!(fc.allowed(200, false, 0, 0), 0);
        assert_eq!(fc.allowed(0, true, 0, 0), 0);
        assert_eq!(fc.allowed(0, false, 1601, 0), 0);
    }

    #[test]
    fn token_count_replaces_own_previous_share() {
        let mut fc = FlowControl::new(FlowParams::default());
        assert_eq!(fc.update(10, 2, 5), 17);
        assert_eq!(fc.update(17, 0, 1), 11);
    }
}
