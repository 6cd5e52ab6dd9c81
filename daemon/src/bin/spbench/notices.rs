//! `spbench --spawn DAEMON --notices 10000`: the cost of membership
//! notices with that many notified sessions on one daemon.
//!
//! All sessions ask for membership notices and join groups of
//! `--notice-group` members (session i joins group i / M). Phase 1: every
//! session joins; each join sends a notice to every member of its group,
//! N (M + 1) / 2 notices in all; printed: the time until every notice
//! arrived, per notice and per join. Phase 2: one more notified session
//! joins and leaves the first group 10 times; printed: the time until all
//! M + 1 members have the join notice (median / max). The daemon's RSS is
//! printed idle, with the sessions, and after the joins (--spawn). All
//! sessions are read by one thread through epoll, as fast as they come.
//!
//! The original serves at most ~997 sessions per daemon (FD_SETSIZE):
//! compare with `--notices 990` on both; ours goes past it with
//! `MaxSessions` (spbench --spawn writes it into spread-rs.toml).

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use spread_wire::client::service::{CAUSED_BY_JOIN, REG_MEMB_MESS};
use spread_wire::client::{GroupName, MessageHeader};

use super::{rss_kib, Client};

/// A notified session read through epoll; counts the notices it got.
struct Session {
    stream: mio::net::TcpStream,
    buf: Vec<u8>,
    joins: u64,
}

impl Session {
    /// Reads what is there; returns the join notices completed.
    fn read_ready(&mut self, scratch: &mut [u8]) -> std::io::Result<u64> {
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return Err(std::io::Error::other("the daemon closed a session")),
                Ok(n) => self.buf.extend_from_slice(&scratch[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut at = 0;
        let mut joins = 0;
        while self.buf.len() - at >= 48 {
            let (h, _) = MessageHeader::parse(&self.buf[at..at + 48])
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let len = 48 + h.num_groups.max(0) as usize * 32 + h.data_len.max(0) as usize;
            if self.buf.len() - at < len {
                break;
            }
            if h.service_type & REG_MEMB_MESS != 0 && h.service_type & CAUSED_BY_JOIN != 0 {
                joins += 1;
            }
            at += len;
        }
        self.buf.drain(..at);
        self.joins += joins;
        Ok(joins)
    }
}

/// Reads every session until `total` join notices arrived in all (since
/// the counters were last read), or fails after `within`.
fn read_until(
    poll: &mut Poll,
    sessions: &mut [Session],
    total: u64,
    within: Duration,
) -> std::io::Result<()> {
    let deadline = Instant::now() + within;
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 256 * 1024];
    let mut got = 0;
    // Edge-triggered, and each read drains its session: data that was
    // there at registration or is left from before raises an event too.
    while got < total {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::other(format!(
                "{got} of {total} join notices within {within:?}"
            )));
        }
        poll.poll(&mut events, Some(left))?;
        for e in events.iter() {
            got += sessions[e.token().0].read_ready(&mut scratch)?;
        }
    }
    Ok(())
}

/// Writes a whole small message to a non-blocking session.
fn send(stream: &mut mio::net::TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(100));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn run(addr: &str, n: usize, group_size: usize, pid: Option<u32>) -> std::io::Result<()> {
    if let Some(limit) = super::open_files_limit().filter(|&l| l < n as u64 + 50) {
        return Err(std::io::Error::other(format!(
            "{n} sessions need about {} open files, this process may open {limit} (ulimit -n)",
            n + 50
        )));
    }
    let m = group_size.clamp(1, n);
    let rss = || pid.and_then(rss_kib);
    let kib = |v: Option<u64>| v.map_or("?".to_string(), |v| format!("{v} KiB"));
    let rss_idle = rss();
    let tag = std::process::id() % 100_000;
    let group_of = |i: usize| GroupName::new(format!("nt{tag}-{}", i / m).as_bytes()).expect("short");

    let t = Instant::now();
    let mut poll = Poll::new()?;
    let mut sessions = Vec::with_capacity(n);
    let mut joins = Vec::with_capacity(n);
    for i in 0..n {
        let c = Client::connect(addr, &format!("n{i}"))?;
        joins.push(c.encode(spread_wire::client::service::JOIN_MESS, &[group_of(i)], &[]));
        c.stream.set_nonblocking(true)?;
        let mut stream = mio::net::TcpStream::from_std(c.stream);
        poll.registry()
            .register(&mut stream, Token(i), Interest::READABLE)?;
        sessions.push(Session {
            stream,
            buf: Vec::new(),
            joins: 0,
        });
    }
    let connect = t.elapsed();
    let rss_connected = rss();

    // Phase 1: everyone joins; N (M + 1) / 2 notices (a last, smaller group
    // of r members gets r (r + 1) / 2).
    let full = (n / m) as u64;
    let rest = (n % m) as u64;
    let m64 = m as u64;
    let expected = full * m64 * (m64 + 1) / 2 + rest * (rest + 1) / 2;
    let t = Instant::now();
    for (session, join) in sessions.iter_mut().zip(&joins) {
        send(&mut session.stream, join)?;
    }
    read_until(&mut poll, &mut sessions, expected, Duration::from_secs(600))?;
    let joined = t.elapsed();
    let rss_joined = rss();

    // Phase 2: one more member of the first group, 10 times.
    let probe = Client::connect(addr, "nprobe")?;
    let join = probe.encode(spread_wire::client::service::JOIN_MESS, &[group_of(0)], &[]);
    let leave = probe.encode(spread_wire::client::service::LEAVE_MESS, &[group_of(0)], &[]);
    probe.stream.set_nonblocking(true)?;
    let mut stream = mio::net::TcpStream::from_std(probe.stream);
    poll.registry()
        .register(&mut stream, Token(n), Interest::READABLE)?;
    sessions.push(Session {
        stream,
        buf: Vec::new(),
        joins: 0,
    });
    let first = m.min(n) as u64;
    let mut samples = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        send(&mut sessions[n].stream, &join)?;
        read_until(&mut poll, &mut sessions, first + 1, Duration::from_secs(60))?;
        samples.push(t.elapsed());
        send(&mut sessions[n].stream, &leave)?;
        // The members' leave notices (not join notices) are read with the
        // next round's events.
        std::thread::sleep(Duration::from_millis(20));
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let per = |a: Option<u64>, b: Option<u64>, k: usize| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2} KiB", a.saturating_sub(b) as f64 / k as f64),
        _ => "?".to_string(),
    };
    println!("{n} notified sessions on one daemon ({addr}), groups of {m}:");
    println!(
        "  connect all: {:.0} ms ({:.0} us per session)",
        ms(connect),
        connect.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "  all join: {expected} join notices in {:.0} ms: {:.2} us per notice, {:.1} us per join",
        ms(joined),
        joined.as_secs_f64() * 1e6 / expected as f64,
        joined.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "  one more member of a group of {first}: all {} notified in {:.2} ms median, {:.2} ms max (10 joins)",
        first + 1,
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1])
    );
    println!(
        "  daemon RSS: idle {}, with the sessions {} ({} per session), after the joins {} ({} per member)",
        kib(rss_idle),
        kib(rss_connected),
        per(rss_connected, rss_idle, n),
        kib(rss_joined),
        per(rss_joined, rss_connected, n)
    );
    Ok(())
}
