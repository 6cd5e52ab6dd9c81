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
    let hurry = ring.engine.site().timeouts.hurry;
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

/// The leader holds the idle ring's token, built but not sent; its own
/// client's message leaves on that token at once (the token carries the
/// new packet and the message is delivered), instead of the token going
/// round the ring once before the message can leave.
#[test]
fn a_message_at_the_leader_leaves_on_the_held_token_at_once() {
    let mut ring = Alone::new();
    ring.run_until(Duration::from_secs(30));
    // Just after a rotation: the leader holds a token nobody has seen.
    let at = ring.last_event + Duration::from_millis(1);
    let held = ring.engine.held.clone().expect("the leader holds a token");
    assert_eq!(spread_wire::daemon::retrans(held.token.kind), 0, "not sent yet");
    assert!(ring.engine.is_token_held());
    // As the groups layer does once the ring is installed.
    ring.engine
        .set_delivery_threshold(super::DeliveryThreshold::Reliable);
    while ring.engine.poll_event().is_some() {}
    ring.engine.submit(
        ring.clock(at),
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
    assert_eq!(tokens.len(), 1, "one token");
    let (t, _) = spread_wire::daemon::TokenHeader::parse(&tokens[0].bytes).expect("a token");
    assert_eq!(t.seq, held.token.seq + 1, "the token carries the new packet");
    assert_eq!(
        spread_wire::daemon::arq(t.kind),
        spread_wire::daemon::arq(held.token.kind)
    );
    assert_eq!(spread_wire::daemon::retrans(t.kind), 0);
    assert_eq!(t.aru, t.seq, "the leader has its own packet");
    assert!(
        matches!(ring.engine.poll_event(), Some(super::RingEvent::Deliver { .. })),
        "the message is delivered at once (AGREED, in order)"
    );
    assert!(ring.engine.held.is_none());
    // The ring goes on: the token comes back and everything is stable.
    ring.engine
        .handle_datagram(Channel::Token, &tokens[0].bytes, ring.clock(at));
    ring.loop_back(at);
    ring.run_until(at + Duration::from_secs(5));
    assert!(ring.engine.is_operational());
    assert_eq!(ring.engine.stats().memberships_installed, 1, "no re-forming");
}

fn reloaded_params(hash: u32) -> RingParams {
    let seg = SegmentConf {
        bcast: 0x7fff_ffff,
        port: 4803,
        daemons: vec![ME, ME + 1],
    };
    RingParams::new(ME, vec![seg], hash)
}

/// A reload in OP adopts the new daemon set and hash at once and declares
/// token loss: the ALIVE of the new configuration leaves in the same turn,
/// and the engine forms a ring again (alone here: nobody answers).
#[test]
fn a_reload_in_op_adopts_the_configuration_and_declares_token_loss() {
    let mut ring = Alone::new();
    ring.run_until(Duration::from_secs(30));
    assert!(ring.engine.is_operational());
    let at = ring.last_event + Duration::from_millis(10);
    assert!(ring.engine.reload(ring.clock(at), reloaded_params(42), false));
    assert_eq!(ring.engine.conf_hash(), 42);
    assert!(ring.engine.site().conf.knows(ME + 1), "the added daemon is known");
    assert!(!ring.engine.is_operational(), "token loss declared");
    ring.engine.handle_timeout(ring.clock(at));
    let alive = std::iter::from_fn(|| ring.engine.poll_transmit())
        .find(|tx| matches!(tx.to, Destination::Segment(0)))
        .expect("an ALIVE broadcast in the same turn");
    let (h, _) = spread_wire::daemon::PacketHeader::parse(&alive.bytes).expect("a daemon packet");
    assert_eq!(h.conf_hash, 42, "the new hash on the wire");
    ring.run_until(at + Duration::from_secs(30));
    assert!(ring.engine.is_operational(), "the ring re-formed");
}

/// During a membership change the reload waits until the ring is in OP,
/// then runs (a second membership change), as the original.
#[test]
fn a_reload_during_a_membership_change_runs_once_the_ring_is_operational() {
    let mut ring = Alone::new();
    // Just after start the daemon is gathering, not in OP.
    ring.run_until(Duration::from_millis(1));
    assert!(!ring.engine.is_operational());
    assert!(!ring
        .engine
        .reload(ring.clock(Duration::from_millis(2)), reloaded_params(43), false));
    assert_eq!(ring.engine.conf_hash(), 1, "postponed");
    let before = ring.engine.stats().memberships_installed;
    ring.run_until(Duration::from_secs(60));
    assert_eq!(ring.engine.conf_hash(), 43, "ran once operational");
    assert!(ring.engine.is_operational());
    assert!(
        ring.engine.stats().memberships_installed >= before + 2,
        "a second ring was formed"
    );
}

/// A reload's singleton partition: the daemon ignores every other daemon
/// until its singleton ring is installed, then lifts it and looks for them.
#[test]
fn a_singleton_reload_partition_is_lifted_when_the_singleton_ring_is_installed() {
    let mut ring = Alone::new();
    ring.run_until(Duration::from_secs(30));
    let at = ring.last_event + Duration::from_millis(10);
    ring.engine.reload(ring.clock(at), reloaded_params(44), true);
    assert!(ring.engine.reload_partitioned());
    assert!(ring.engine.partitioned_from(ME + 1));
    assert!(!ring.engine.partitioned_from(ME));
    ring.run_until(at + Duration::from_secs(30));
    assert!(ring.engine.is_operational());
    assert!(
        !ring.engine.reload_partitioned(),
        "lifted at the singleton ring's install"
    );
    assert!(!ring.engine.partitioned_from(ME + 1));
}
