//! The ring engine alone: one daemon whose datagrams to itself loop back.

use std::time::{Duration, Instant};

use super::{Channel, Destination, Outgoing, PacketType, RingEngine, RingParams, SegmentConf};
use crate::clock::Clock;

const ME: u32 = 0x7f00_0001;

/// A one-daemon ring on a virtual clock; what it sends to itself arrives
/// at once, what it broadcasts nobody hears.
struct Alone {
    engine: RingEngine,
    base: Clock,
    /// Virtual time of the engine's last event.
    last_event: Duration,
}

impl Alone {
    fn new() -> Alone {
        let seg = SegmentConf {
            bcast: 0x7fff_ffff,
            port: 4803,
            daemons: vec![ME],
        };
        let base = Clock::new(Instant::now(), 1_700_000_000);
        Alone {
            engine: RingEngine::new(RingParams::new(ME, vec![seg], 1), base),
            base,
            last_event: Duration::ZERO,
        }
    }

    fn clock(&self, at: Duration) -> Clock {
        Clock::after(self.base, at)
    }

    fn loop_back(&mut self, at: Duration) {
        while let Some(tx) = self.engine.poll_transmit() {
            if let Destination::Daemon { id: ME, channel } = tx.to {
                self.engine.handle_datagram(channel, &tx.bytes, self.clock(at));
            }
        }
        while self.engine.poll_event().is_some() {}
    }

    /// Runs the engine's timers (and what they send) up to `end`.
    fn run_until(&mut self, end: Duration) {
        while let Some(due) = self.engine.poll_timeout() {
            let at = due.saturating_duration_since(self.base.mono);
            if at > end {
                break;
            }
            self.engine.handle_timeout(self.clock(at));
            self.last_event = at;
            self.loop_back(at);
        }
    }
}

/// On an idle ring the leader holds the token; a message submitted then
/// sends it again, and the next retransmission is due a hurry period after
/// the submit, not after the ring's last event.
#[test]
fn submit_on_an_idle_ring_arms_the_hurry_timer_from_the_submit_time() {
    let mut ring = Alone::new();
    ring.run_until(Duration::from_secs(30));
    assert!(ring.engine.is_operational(), "the one-daemon ring formed");
    let hurry = ring.engine.to.hurry;
    // Between two events: 80% of a hurry period after the last one.
    let submit_at = ring.last_event + hurry * 4 / 5;
    assert!(ring.engine.is_token_held(), "the ring is idle");
    ring.engine.submit(
        ring.clock(submit_at),
        Outgoing {
            packet_type: PacketType::Agreed,
            bytes: vec![7; 100],
        },
    );
    let tokens: Vec<_> = std::iter::from_fn(|| ring.engine.poll_transmit())
        .filter(|tx| {
            matches!(
                tx.to,
                Destination::Daemon {
                    channel: Channel::Token,
                    ..
                }
            )
        })
        .collect();
    assert!(!tokens.is_empty(), "the submit sent the held token on");
    // That token is lost: the leader's next move is the hurry timer.
    let next = ring.engine.poll_timeout().expect("timers armed");
    assert_eq!(
        next.saturating_duration_since(ring.base.mono),
        submit_at + hurry,
        "hurry timer from the submit time (last event at {:?})",
        ring.last_event
    );
}
