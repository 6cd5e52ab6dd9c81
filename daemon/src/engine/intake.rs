//! Back-pressure on local senders: when to stop reading client sockets.
//!
//! Two queues grow when local senders outrun the daemon:
//! * the queue toward the ring (messages submitted, not yet sent; during a
//!   groups exchange, the messages held for after it). The original stops
//!   reading its clients while its down queue holds 500 messages or more
//!   and reads again below that; so does this engine.
//! * the queues to local receivers. The original has no back-pressure
//!   here: a receiver more than `MaxSessionMessages` behind is cut, even one
//!   that is reading, only slower than the sender writes. This engine also
//!   stops reading while a receiver that is consuming is more than half the
//!   cut behind, and reads again once it is down to a quarter, so a live
//!   reader slows the senders down instead of being cut.
//!
//! A receiver that consumed nothing for [`STALL`] exerts no back-pressure
//! (it could stall every sender forever); it is judged by the cut alone,
//! as in the original.
//!
//! The engine only decides ([`Engine::reading_paused`]); the shell stops
//! and resumes reading.

use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::fasthash::FastMap;
use crate::session::ConnId;

use super::{Engine, Sequencer};

/// Messages on the way to the ring at which local senders are paused
/// (the original's `WATER_MARK`).
pub const RING_WATER_MARK: usize = 500;

/// A receiver that consumed nothing for this long no longer holds the
/// senders back.
pub const STALL: Duration = Duration::from_secs(1);

/// A receiver with many messages queued.
#[derive(Clone, Copy, Debug)]
struct Heavy {
    /// When it crossed the high-water mark or last consumed something.
    since: Instant,
    /// It consumed nothing for [`STALL`] since then.
    stalled: bool,
}

/// The receivers that hold the senders back, or might.
#[derive(Debug, Default)]
pub(super) struct Intake {
    heavy: FastMap<ConnId, Heavy>,
}

impl Intake {
    /// The receiver `conn` has `queued` messages after a write to its
    /// socket; `progressed` if that write consumed something.
    fn judge(
        &mut self,
        conn: ConnId,
        queued: usize,
        progressed: bool,
        high: usize,
        low: usize,
        now: Instant,
    ) {
        match self.heavy.get_mut(&conn) {
            Some(_) if queued <= low => {
                self.heavy.remove(&conn);
            }
            Some(h) if progressed => {
                *h = Heavy {
                    since: now,
                    stalled: false,
                };
            }
            Some(_) => {}
            None if queued >= high => {
                self.heavy.insert(
                    conn,
                    Heavy {
                        since: now,
                        stalled: false,
                    },
                );
            }
            None => {}
        }
    }

    fn forget(&mut self, conn: ConnId) {
        self.heavy.remove(&conn);
    }

    /// A receiver that is consuming is far behind.
    fn holds_back(&self, now: Instant) -> bool {
        self.heavy.values().any(|h| !h.stalled && now < h.since + STALL)
    }

    /// Marks the receivers that consumed nothing for [`STALL`].
    fn expire(&mut self, now: Instant) {
        for h in self.heavy.values_mut() {
            if !h.stalled && now >= h.since + STALL {
                h.stalled = true;
            }
        }
    }

    /// When the next receiver that holds the senders back stalls.
    fn next_stall(&self) -> Option<Instant> {
        self.heavy
            .values()
            .filter(|h| !h.stalled)
            .map(|h| h.since + STALL)
            .min()
    }
}

impl Engine {
    /// Queued messages at which a consuming receiver pauses the senders.
    pub(super) fn intake_high_water(&self) -> usize {
        (self.cfg.max_session_messages / 2).max(1)
    }

    /// Queued messages at which it stops doing so.
    fn intake_low_water(&self) -> usize {
        self.cfg.max_session_messages / 4
    }

    /// Client messages on their way to the ring, or held for after the
    /// groups exchange.
    pub fn messages_toward_ring(&self) -> usize {
        let ring = match &self.sequencer {
            Sequencer::Ring(ring) => ring.queued_messages(),
            Sequencer::Local(queue) => queue.len(),
        };
        ring + self.held.len()
    }

    /// Whether the shell should stop reading client sockets now: the queue
    /// toward the ring is at its water mark, or a receiver that is still
    /// consuming is half the cut behind. When this turns false the shell
    /// must read the sockets it left unread (their readiness was reported
    /// once, edge-triggered).
    pub fn reading_paused(&self, now: Clock) -> bool {
        self.messages_toward_ring() >= RING_WATER_MARK || self.intake.holds_back(now.mono)
    }

    /// Whether the shell may read from `conn` now: a session in its
    /// handshake is always read (its connect request has a deadline, and it
    /// sends nothing to receivers), an operational one not while reading is
    /// paused.
    pub fn may_read(&self, conn: ConnId, now: Clock) -> bool {
        !self.sessions.get(&conn).is_some_and(|s| s.is_operational()) || !self.reading_paused(now)
    }

    /// Judges a receiver after the shell wrote what its socket took.
    pub(super) fn judge_intake(&mut self, conn: ConnId, now: Clock) {
        if !self.cfg.receiver_back_pressure {
            return;
        }
        let Some(session) = self.sessions.get_mut(&conn) else {
            self.intake.forget(conn);
            return;
        };
        let progressed = session.take_progress();
        let queued = session.queued_messages();
        let (high, low) = (self.intake_high_water(), self.intake_low_water());
        self.intake.judge(conn, queued, progressed, high, low, now.mono);
    }

    pub(super) fn forget_all_intake(&mut self) {
        self.intake.heavy.clear();
    }

    pub(super) fn forget_intake(&mut self, conn: ConnId) {
        self.intake.forget(conn);
    }

    pub(super) fn expire_intake(&mut self, now: Clock) {
        self.intake.expire(now.mono);
    }

    pub(super) fn next_intake_deadline(&self) -> Option<Instant> {
        self.intake.next_stall()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receiver_holds_back_from_high_water_down_to_low_water() {
        let t0 = Instant::now();
        let mut intake = Intake::default();
        intake.judge(1, 499, true, 500, 250, t0);
        assert!(!intake.holds_back(t0));
        intake.judge(1, 500, false, 500, 250, t0);
        assert!(intake.holds_back(t0));
        intake.judge(1, 251, true, 500, 250, t0);
        assert!(intake.holds_back(t0), "hysteresis: still above low water");
        intake.judge(1, 250, true, 500, 250, t0);
        assert!(!intake.holds_back(t0));
        assert_eq!(intake.next_stall(), None);
    }

    #[test]
    fn a_receiver_that_consumes_nothing_for_a_second_stops_holding_back() {
        let t0 = Instant::now();
        let mut intake = Intake::default();
        intake.judge(1, 600, false, 500, 250, t0);
        assert_eq!(intake.next_stall(), Some(t0 + STALL));
        // Written to without progress: the clock keeps running.
        intake.judge(1, 700, false, 500, 250, t0 + STALL / 2);
        assert!(intake.holds_back(t0 + STALL / 2));
        assert!(!intake.holds_back(t0 + STALL));
        intake.expire(t0 + STALL);
        assert_eq!(intake.next_stall(), None, "no timer for a stalled receiver");
        // It reads again: it holds back again, for another STALL.
        intake.judge(1, 650, true, 500, 250, t0 + 3 * STALL);
        assert!(intake.holds_back(t0 + 3 * STALL));
        assert_eq!(intake.next_stall(), Some(t0 + 4 * STALL));
        intake.forget(1);
        assert!(!intake.holds_back(t0 + 3 * STALL));
    }
}
