//! The reply hold: a daemon that has just been handed other daemons'
//! packets and has nothing of its own to send keeps the token a moment,
//! so that a local client's answer leaves on this visit instead of a whole
//! rotation later.
//!
//! A request answered across a ring otherwise costs about two rotations:
//! the token passes the answering daemon right after the request, before
//! the client has read it, and the answer waits for the token to come
//! round again. Held, the answer leaves on the token that brought the
//! request (the visit is done again with the new packets, as the leader's
//! idle hold does). On the wire this is only a token that took a little
//! longer to pass on; the original never holds it.
//!
//! Most visits have nobody about to answer (a flood to readers), and a
//! hold that times out costs the whole ring that time. So each daemon
//! learns whether its clients answer: after [`MISSES_TO_BACK_OFF`] holds
//! in a row that end with no message, it holds only on every
//! [`PROBE_EVERY`]-th visit that would qualify, until a hold is answered.

use std::time::Duration;

#[cfg(test)]
use crate::configuration::DEFAULT_TOKEN_REPLY_HOLD as DEFAULT_REPLY_HOLD;

/// Unanswered holds in a row after which a daemon stops holding (but for
/// probes).
pub(crate) const MISSES_TO_BACK_OFF: u32 = 3;
/// Once backed off, one qualifying visit in this many is held again.
pub(crate) const PROBE_EVERY: u32 = 256;

#[derive(Clone, Debug)]
pub(crate) struct ReplyHold {
    /// Longest hold; zero turns holding off.
    pub limit: Duration,
    /// Holds in a row that ended with no local message.
    misses: u32,
    /// Qualifying visits since backing off (for the probes).
    qualifying: u32,
    /// Packets of other daemons came in since my last token visit.
    news: bool,
}

impl ReplyHold {
    pub fn new(limit: Duration) -> ReplyHold {
        ReplyHold {
            limit,
            misses: 0,
            qualifying: 0,
            news: false,
        }
    }

    /// A new packet of another daemon came in.
    pub fn others_packet(&mut self) {
        self.news = true;
    }

    /// At every token visit: whether packets of others came in since the
    /// last one (and forget it for the next).
    pub fn take_news(&mut self) -> bool {
        std::mem::take(&mut self.news)
    }

    /// Whether to hold a visit that could be held (`news` from
    /// [`ReplyHold::take_news`]).
    pub fn wanted(&mut self, news: bool) -> bool {
        if self.limit.is_zero() || !news {
            return false;
        }
        if self.misses < MISSES_TO_BACK_OFF {
            return true;
        }
        self.qualifying = self.qualifying.wrapping_add(1);
        self.qualifying.is_multiple_of(PROBE_EVERY)
    }

    /// A local message ended the hold.
    pub fn answered(&mut self) {
        self.misses = 0;
        self.qualifying = 0;
    }

    /// The hold ran out.
    pub fn missed(&mut self) {
        self.misses = self.misses.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_only_after_others_packets_and_backs_off_when_nobody_answers() {
        let mut h = ReplyHold::new(DEFAULT_REPLY_HOLD);
        assert!(!h.wanted(false), "nothing came in: nobody to answer");
        for _ in 0..MISSES_TO_BACK_OFF {
            assert!(h.wanted(true));
            h.missed();
        }
        let held: usize = (0..PROBE_EVERY * 4).filter(|_| h.wanted(true)).count();
        assert_eq!(held, 4, "backed off: one probe per {PROBE_EVERY} visits");
        h.answered();
        assert!(h.wanted(true), "an answered probe turns holding back on");
        assert!(!ReplyHold::new(Duration::ZERO).wanted(true), "zero: off");
    }

    #[test]
    fn news_is_taken_once_per_visit() {
        let mut h = ReplyHold::new(DEFAULT_REPLY_HOLD);
        h.others_packet();
        assert!(h.take_news());
        assert!(!h.take_news());
    }
}
