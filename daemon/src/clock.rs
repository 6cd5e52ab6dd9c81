//! Time as a value.
//!
//! No engine reads a clock: the I/O shell reads both clocks once per event
//! ([`crate::os::read_clock`]) and passes the one [`Clock`] into every
//! handler that can arm a timer, so every deadline is computed from the time
//! of the event that set it (and a simulator can run on virtual time).

use std::time::{Duration, Instant};

/// The time of one event: the monotonic clock for deadlines, the wall clock
/// (seconds since the Unix epoch) for the ids the protocol stamps with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    pub mono: Instant,
    pub unix_secs: u32,
}

impl Clock {
    pub fn new(mono: Instant, unix_secs: u32) -> Clock {
        Clock { mono, unix_secs }
    }

    /// The same clock `d` later (whole seconds carried into the wall clock
    /// from `base`, the moment both readings were taken together).
    pub fn after(base: Clock, d: Duration) -> Clock {
        Clock {
            mono: base.mono + d,
            unix_secs: base.unix_secs.wrapping_add(d.as_secs() as u32),
        }
    }
}
