//! Segment-port datagrams into a daemon's monitor engine and its engine,
//! the way the shell routes them: monitor commands (a control type bit and
//! the monitor's or the daemon's hash) to the monitor engine, whose STATUS
//! reads the engine's counters and whose PARTITION and FC change the
//! engine; everything else to the engine. The configuration is the
//! captures' (d1..d3 = 10.99.0.1..3, their hash); the monitor of the
//! captures runs next to d1.
//!
//! Input: one flag byte (bit 0: DangerousMonitor; bit 1: d1 alone in its
//! configuration, so no ring, else d2 of the ring of three), then records
//! `[op][len lo][len hi][len bytes]`: `op` bit 0 sends from an address
//! outside the configuration (else from d1's), bits 1..7 advance the
//! virtual clock by that many 10 ms before the datagram (expired timers of
//! both engines run first). It must never panic; every STATUS reply must
//! parse and name this daemon; an FC must show in the counters STATUS reads.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use spread_daemon::clock::Clock;
use spread_daemon::engine::{Engine, EngineConfig};
use spread_daemon::monitor::{
    is_monitor_datagram, status_inputs, MonitorAction, MonitorConfig, MonitorEngine,
};
use spread_daemon::ring::{Channel, RingParams, SegmentConf};
use spread_wire::monitor::StatusReply;

const IDS: [u32; 3] = [0x0a63_0001, 0x0a63_0002, 0x0a63_0003];
const CONF_HASH: u32 = 778_066_868;

fn engines(alone: bool, dangerous: bool, base: Clock) -> (Engine, MonitorEngine, u32) {
    let (me, ids): (u32, Vec<u32>) = if alone {
        (IDS[0], vec![IDS[0]])
    } else {
        (IDS[1], IDS.to_vec())
    };
    let mut cfg = EngineConfig::new(if alone { "d1" } else { "d2" }, Ipv4Addr::from(me));
    cfg.daemon_rank = ids.iter().position(|&i| i == me).unwrap_or(0) as u32;
    cfg.daemon_names = ids
        .iter()
        .map(|&i| format!("d{}", i & 0xff).into_bytes())
        .collect();
    cfg.daemon_ids = ids.iter().map(|&id| id as i32).collect();
    let engine = if alone {
        Engine::new(cfg, base)
    } else {
        let seg = SegmentConf {
            bcast: 0x0a63_00ff,
            port: 4803,
            daemons: ids.clone(),
        };
        Engine::with_ring(cfg, RingParams::new(me, vec![seg], CONF_HASH), base)
    };
    let monitor = MonitorEngine::new(
        MonitorConfig {
            my_id: me,
            daemon_ids: ids.clone(),
            daemon_addrs: ids.iter().map(|&i| Ipv4Addr::from(i)).collect(),
            conf_hash: CONF_HASH,
            dangerous,
        },
        base.mono,
    );
    (engine, monitor, me)
}

/// What the shell does with a monitor action; false: the daemon exits.
fn apply(engine: &mut Engine, me: u32, action: MonitorAction) -> bool {
    match action {
        MonitorAction::Reply { datagram, .. } => {
            let (reply, _) = StatusReply::parse(&datagram).expect("our STATUS reply parses");
            assert_eq!(reply.status.my_id as u32, me);
            assert!(reply.status.num_procs >= 1);
        }
        MonitorAction::SetPartition(components) => {
            if let Some(ring) = engine.ring_mut() {
                ring.set_partition(components);
            }
        }
        MonitorAction::FlowControl {
            window,
            personal_window,
            accelerated_window,
        } => {
            engine.set_flow_control(window, personal_window, accelerated_window);
            let (status, _) = engine.status_counters();
            for (asked, now) in [
                (window, status.window),
                (personal_window, status.personal_window),
                (accelerated_window, status.accelerated_window),
            ] {
                if let Some(w) = asked {
                    assert_eq!(w, now);
                }
            }
        }
        MonitorAction::Terminate => return false,
        MonitorAction::Reload => {}
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let base = Clock::new(Instant::now(), 1_795_417_800);
    let (mut engine, mut monitor, me) = engines(flags & 2 != 0, flags & 1 != 0, base);
    let own_hash = engine.ring().map_or(CONF_HASH, |r| r.conf_hash());
    let mut at = Duration::ZERO;
    while rest.len() >= 3 {
        let op = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let (bytes, tail) = rest[3..].split_at(len);
        rest = tail;
        at += Duration::from_millis(10 * u64::from(op >> 1));
        let now = Clock::after(base, at);
        if engine.poll_timeout().is_some_and(|t| t <= now.mono) {
            engine.handle_timeout(now);
        }
        if let Some(action) = monitor.handle_timeout(now.mono) {
            if !apply(&mut engine, me, action) {
                return;
            }
        }
        let from: SocketAddr = if op & 1 == 0 {
            (Ipv4Addr::from(IDS[0]), 58934).into()
        } else {
            (Ipv4Addr::new(10, 1, 2, 3), 4803).into()
        };
        if is_monitor_datagram(bytes, own_hash) {
            let action = monitor.handle(now.mono, from, bytes, || status_inputs(&engine));
            if let Some(action) = action {
                if !apply(&mut engine, me, action) {
                    return;
                }
            }
        } else {
            engine.handle_datagram_from(Channel::Data, from, bytes, now);
        }
        while engine.poll_transmit().is_some() {}
        while engine.poll_output().is_some() {}
    }
    // The partition timer and the engine's, a minute later.
    let now = Clock::after(base, at + Duration::from_secs(60));
    engine.handle_timeout(now);
    if let Some(action) = monitor.handle_timeout(now.mono) {
        apply(&mut engine, me, action);
    }
});
