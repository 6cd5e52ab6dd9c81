//! Deadlines of one engine: one per kind; re-arming replaces it (like the
//! original's event queue, where queueing an event again moves it).
//!
//! The ring and the membership algorithm each own a [`Timers`] of their own
//! kinds ([`RingTimer`], [`MembershipTimer`]); the ring runs both, earliest
//! first.

use std::marker::PhantomData;
use std::time::Instant;

/// A set of timer kinds one [`Timers`] holds.
pub(crate) trait TimerKind: Copy + Eq + std::fmt::Debug + 'static {
    const ALL: &'static [Self];
}

/// The ring protocol's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RingTimer {
    /// No token for too long: the membership algorithm starts over.
    TokenLoss,
    /// The leader re-sends an idle ring's token.
    Hurry,
    /// A postponed configuration reload, run once the ring is operational.
    Reload,
    /// The longest a token is held for a local answer.
    ReplyHold,
}

impl TimerKind for RingTimer {
    const ALL: &'static [Self] = &[
        RingTimer::TokenLoss,
        RingTimer::Hurry,
        RingTimer::Reload,
        RingTimer::ReplyHold,
    ];
}

/// The membership algorithm's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MembershipTimer {
    Alive,
    Join,
    FormOrFail,
    GatherOrRepresented,
    ShiftToSeg,
    Lookup,
}

impl TimerKind for MembershipTimer {
    const ALL: &'static [Self] = &[
        MembershipTimer::Alive,
        MembershipTimer::Join,
        MembershipTimer::FormOrFail,
        MembershipTimer::GatherOrRepresented,
        MembershipTimer::ShiftToSeg,
        MembershipTimer::Lookup,
    ];
}

const MAX_KINDS: usize = 8;

/// When a timer is due, and its place in arming order (ties between equal
/// deadlines go to the one armed first).
pub(crate) type Due = (Instant, u64);

#[derive(Clone, Debug)]
pub(crate) struct Timers<K> {
    due: [Option<Due>; MAX_KINDS],
    counter: u64,
    kinds: PhantomData<K>,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            due: [None; MAX_KINDS],
            counter: 0,
            kinds: PhantomData,
        }
    }
}

impl<K: TimerKind> Timers<K> {
    fn slot(t: K) -> usize {
        K::ALL.iter().position(|x| *x == t).unwrap_or(0)
    }

    pub fn set(&mut self, t: K, at: Instant) {
        self.counter += 1;
        self.due[Self::slot(t)] = Some((at, self.counter));
    }

    pub fn clear(&mut self, t: K) {
        self.due[Self::slot(t)] = None;
    }

    #[cfg(test)]
    pub fn is_set(&self, t: K) -> bool {
        self.due[Self::slot(t)].is_some()
    }

    pub fn next(&self) -> Option<Instant> {
        self.due.iter().flatten().map(|(at, _)| *at).min()
    }

    /// The earliest timer due at `now`, with its deadline, not removed.
    pub fn peek_due(&self, now: Instant) -> Option<(K, Due)> {
        self.due
            .iter()
            .enumerate()
            .take(K::ALL.len())
            .filter_map(|(i, d)| d.map(|d| (K::ALL[i], d)))
            .filter(|(_, (at, _))| *at <= now)
            .min_by_key(|(_, d)| *d)
    }

    /// The earliest timer due at `now`, removed.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let (t, _) = self.peek_due(now)?;
        self.clear(t);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_earliest_due_timer_comes_first_and_ties_go_to_the_first_armed() {
        let t0 = Instant::now();
        let mut ts = Timers::<MembershipTimer>::default();
        ts.set(MembershipTimer::Join, t0 + Duration::from_millis(5));
        ts.set(MembershipTimer::Alive, t0 + Duration::from_millis(5));
        ts.set(MembershipTimer::Lookup, t0 + Duration::from_millis(1));
        ts.set(MembershipTimer::ShiftToSeg, t0 + Duration::from_secs(9));
        let now = t0 + Duration::from_millis(5);
        assert_eq!(ts.pop_due(now), Some(MembershipTimer::Lookup));
        assert_eq!(ts.pop_due(now), Some(MembershipTimer::Join));
        assert_eq!(ts.pop_due(now), Some(MembershipTimer::Alive));
        assert_eq!(ts.pop_due(now), None);
        assert!(ts.is_set(MembershipTimer::ShiftToSeg));
        // Re-arming moves a timer instead of adding a second one.
        ts.set(MembershipTimer::ShiftToSeg, t0);
        assert_eq!(ts.next(), Some(t0));
        assert_eq!(ts.pop_due(now), Some(MembershipTimer::ShiftToSeg));
        assert_eq!(ts.next(), None);
    }
}
