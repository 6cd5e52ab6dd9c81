//! Datagrams into a whole daemon engine with a ring: the engine is d2 of
//! the captures' configuration (d1..d3 = 10.99.0.1..3, their configuration
//! hash), so captured datagrams of the original reach the ring protocol,
//! the membership algorithm, the groups exchange and delivery.
//!
//! Input: records `[op][len lo][len hi][len bytes]`; `op` bit 0 is the port
//! (0 = segment/data, 1 = token), bits 1..7 advance the virtual clock by that
//! many 10 ms before the datagram (expired timers run first, as the shell
//! runs them). Whatever the engine sends is dropped, what it asks of the
//! shell is done at once. It must never panic.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use spread_daemon::clock::Clock;
use spread_daemon::engine::{Engine, EngineConfig};
use spread_daemon::ring::{Channel, RingParams, SegmentConf};

const IDS: [u32; 3] = [0x0a63_0001, 0x0a63_0002, 0x0a63_0003];
const CONF_HASH: u32 = 778_066_868;

fn engine(base: Clock) -> Engine {
    let mut cfg = EngineConfig::new("d2", Ipv4Addr::from(IDS[1]));
    cfg.daemon_rank = 1;
    cfg.daemon_names = (1..=3).map(|k| format!("d{k}").into_bytes()).collect();
    cfg.daemon_ids = IDS.iter().map(|&id| id as i32).collect();
    let seg = SegmentConf {
        bcast: 0x0a63_00ff,
        port: 4803,
        daemons: IDS.to_vec(),
    };
    Engine::with_ring(cfg, RingParams::new(IDS[1], vec![seg], CONF_HASH), base)
}

fuzz_target!(|data: &[u8]| {
    let base = Clock::new(Instant::now(), 1_795_417_800);
    let mut e = engine(base);
    let mut at = Duration::ZERO;
    let mut rest = data;
    while rest.len() >= 3 {
        let op = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let (bytes, tail) = rest[3..].split_at(len);
        rest = tail;
        at += Duration::from_millis(10 * u64::from(op >> 1));
        let now = Clock::after(base, at);
        if e.poll_timeout().is_some_and(|t| t <= now.mono) {
            e.handle_timeout(now);
        }
        let channel = if op & 1 == 0 { Channel::Data } else { Channel::Token };
        e.handle_datagram(channel, bytes, now);
        while e.poll_transmit().is_some() {}
        while e.poll_output().is_some() {}
    }
    // Let every timer the input armed run once more, a minute later.
    let now = Clock::after(base, at + Duration::from_secs(60));
    e.handle_timeout(now);
});
