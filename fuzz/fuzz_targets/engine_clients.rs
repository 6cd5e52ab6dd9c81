//! Client bytes into a whole daemon engine (alone in its configuration, as
//! the captures' "localhost" daemon): the handshake, framing, validation,
//! groups, delivery and the notices, on up to four connections.
//!
//! Input: records `[op][len lo][len hi][len bytes]`; `op` bits 0..1 pick the
//! connection, bits 2..3 what happens: 0 = bytes from the client, 1 = the
//! client connects (bit 4: over TCP from 127.0.0.1, else the Unix socket),
//! 2 = the client closes, 3 = `len` ms pass (no bytes). The shell's part is
//! done at once: output is "written" whole, closes are carried out. It must
//! never panic.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use spread_daemon::clock::Clock;
use spread_daemon::engine::{Engine, EngineConfig, Output};
use spread_daemon::session::Peer;

fuzz_target!(|data: &[u8]| {
    let base = Clock::new(Instant::now(), 1_795_417_800);
    let mut cfg = EngineConfig::new("localhost", Ipv4Addr::LOCALHOST);
    cfg.max_session_messages = 50;
    let mut e = Engine::new(cfg, base);
    let mut open = [false; 4];
    let mut at = Duration::ZERO;
    let mut rest = data;
    while rest.len() >= 3 {
        let op = rest[0];
        let len = u16::from_le_bytes([rest[1], rest[2]]);
        let kind = (op >> 2) & 3;
        let take = if kind == 0 { usize::from(len).min(rest.len() - 3) } else { 0 };
        let (bytes, tail) = rest[3..].split_at(take);
        rest = tail;
        let conn = usize::from(op & 3);
        match kind {
            0 => e.handle_client_data(conn + 1, bytes, Clock::after(base, at)),
            1 if !open[conn] => {
                open[conn] = true;
                let peer = if op & 16 != 0 { Peer::Tcp(Ipv4Addr::LOCALHOST) } else { Peer::Unix };
                e.handle_accept(conn + 1, peer, 10 + conn as i32, Clock::after(base, at));
            }
            2 if open[conn] => {
                open[conn] = false;
                e.handle_client_closed(conn + 1, Clock::after(base, at));
            }
            3 => {
                at += Duration::from_millis(u64::from(len));
                let now = Clock::after(base, at);
                if e.poll_timeout().is_some_and(|t| t <= now.mono) {
                    e.handle_timeout(now);
                }
            }
            _ => {}
        }
        shell(&mut e, &mut open, Clock::after(base, at));
    }
});

/// The shell's part: write everything, carry out closes.
fn shell(e: &mut Engine, open: &mut [bool; 4], now: Clock) {
    while let Some(out) = e.poll_output() {
        match out {
            Output::Wake(conn) => {
                let n: usize = e.output_chunks(conn).map(<[u8]>::len).sum();
                e.consume_output(conn, n);
                e.check_backlog(conn, now);
            }
            Output::Close { conn, .. } => {
                if let Some(o) = open.get_mut(conn.wrapping_sub(1)) {
                    *o = false;
                }
            }
        }
    }
}
