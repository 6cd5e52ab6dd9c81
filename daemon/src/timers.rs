//! The engine's timers: one deadline per kind; re-arming replaces it (like the
//! original's event queue, where queueing an event again moves it).

use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Timer {
    TokenLoss,
    Hurry,
    Alive,
    Join,
    FormOrFail,
    GatherOrRepresented,
    ShiftToSeg,
    Lookup,
    /// A postponed configuration reload, run once the ring is operational.
    Reload,
}

const ALL: [Timer; 9] = [
    Timer::TokenLoss,
    Timer::Hurry,
    Timer::Alive,
    Timer::Join,
    Timer::FormOrFail,
    Timer::GatherOrRepresented,
    Timer::ShiftToSeg,
    Timer::Lookup,
    Timer::Reload,
];

#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    due: [Option<(Instant, u64)>; 9],
    /// Arming order breaks ties between equal deadlines.
    counter: u64,
}

impl Timers {
    fn slot(t: Timer) -> usize {
        ALL.iter().position(|x| *x == t).unwrap_or(0)
    }

    pub fn set(&mut self, t: Timer, at: Instant) {
        self.counter += 1;
        self.due[Self::slot(t)] = Some((at, self.counter));
    }

    pub fn clear(&mut self, t: Timer) {
        self.due[Self::slot(t)] = None;
    }

    pub fn next(&self) -> Option<Instant> {
        self.due.iter().flatten().map(|(at, _)| *at).min()
    }

    /// The earliest timer due at `now`, removed.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let (i, _) = self
            .due
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.map(|d| (i, d)))
            .filter(|(_, (at, _))| *at <= now)
            .min_by_key(|(_, d)| *d)?;
        self.due[i] = None;
        Some(ALL[i])
    }
}
