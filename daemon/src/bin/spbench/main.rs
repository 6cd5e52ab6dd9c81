//! `spbench`: a flooder-style benchmark for any Spread 4 daemon.
//!
//! Throughput: one client joins a group and sends AGREED messages to it,
//! receiving its own copies; printed as messages/s and MB/s for each size.
//! Latency: two clients bounce a 100-byte message between their private
//! groups; printed as round-trip p50/p99.
//!
//! ```text
//! spbench --daemon 4803@127.0.0.1 [--count 20000] [--rounds 2000]
//! spbench --spawn target/release/spread      # start our daemon on a free port
//! spbench --spawn target/release/spread --sessions 10000   # many sessions
//! spbench --ring 3,8,16     # rings in namespaces: ours vs the original (root)
//! ```

#![deny(unsafe_code)]

mod legs;
mod notices;
mod ring;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use spread_wire::client::service::{AGREED_MESS, CAUSED_BY_JOIN, JOIN_MESS, LEAVE_MESS, SAFE_MESS};
use spread_wire::client::{
    hint_for, AuthChoice, AuthMethodList, ConnectRequest, GroupName, MessageHeader, SessionReply,
};
use spread_wire::endian::ByteOrder;

#[derive(Parser)]
#[command(about = "Throughput and latency of a Spread 4 daemon")]
struct Args {
    /// Daemon to test: <port>@<host>.
    #[arg(long, default_value = "4803@127.0.0.1")]
    daemon: String,
    /// Start this daemon binary on a free loopback port instead.
    #[arg(long)]
    spawn: Option<String>,
    /// Messages per size in the throughput test (100 KB messages: a tenth).
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    /// Round trips in the latency test.
    #[arg(long, default_value_t = 2_000)]
    rounds: usize,
    /// Messages in flight before the sender waits for its own copies.
    #[arg(long, default_value_t = 200)]
    window: u64,
    /// Receivers on other daemons (<port>@<host>, repeatable); the
    /// latency test then bounces between the sender and the first one.
    #[arg(long = "receiver")]
    receivers: Vec<String>,
    /// Service of the throughput test: agreed or safe.
    #[arg(long, default_value = "agreed", value_parser = ["agreed", "safe"])]
    service: String,
    /// Run the group benchmarks instead: join latency with 1, 100 and
    /// `--members` members (spread over the daemon and the receivers),
    /// notice size per member, one client joining 10,000 groups.
    #[arg(long)]
    groups: bool,
    /// Largest group of the join benchmark.
    #[arg(long, default_value_t = 990)]
    members: usize,
    /// Run the session benchmark instead: this many sessions on one
    /// daemon (time to connect them, RSS per session, join latency and
    /// notice size with all of them in one group). With --spawn the
    /// daemon gets `MaxSessions` = this + 10 in its spread-rs.toml.
    #[arg(long)]
    sessions: Option<usize>,
    /// Message sizes to test.
    #[arg(long, value_delimiter = ',', default_values_t = [100usize, 1_000, 10_000, 100_000])]
    sizes: Vec<usize>,
    /// Run the notice benchmark instead: this many notified sessions on
    /// one daemon join groups of --notice-group members (time per join
    /// notice, join latency, RSS). With --spawn the daemon gets
    /// `MaxSessions` = this + 10 in its spread-rs.toml.
    #[arg(long)]
    notices: Option<usize>,
    /// Members per group of the notice benchmark.
    #[arg(long, default_value_t = 100)]
    notice_group: usize,
    /// Run the ring benchmark instead (root): rings of these many daemons,
    /// each in its own network namespace, for every --side; 1 KB AGREED
    /// and SAFE throughput, round trips, a SIGKILL and the new view, the
    /// UDP floors; one table side by side.
    #[arg(long, value_delimiter = ',')]
    ring: Vec<usize>,
    /// A daemon binary of the ring benchmark, as NAME=PATH (repeatable).
    /// Default: ours=<spread next to spbench> and, when installed,
    /// original=/opt/spread-ref/sbin/spread.
    #[arg(long = "side")]
    sides: Vec<String>,
    /// Ring benchmark: runs per size and side (alternating which side
    /// goes first); medians are printed.
    #[arg(long, default_value_t = 1)]
    pairs: usize,
    /// Ring benchmark: receivers (each on its own daemon, d1 sends).
    #[arg(long, default_value_t = 2)]
    ring_receivers: usize,
    /// Ring benchmark: skip the UDP floors.
    #[arg(long)]
    no_floor: bool,
    /// Ring benchmark: a line appended to every daemon's spread.conf
    /// (repeatable; both sides read the same file, so only the original's
    /// grammar), e.g. "AcceleratedRing = true".
    #[arg(long = "conf-line")]
    conf_lines: Vec<String>,
    /// Only the round trip: `--rounds` pings of each `--sizes` with `--service`
    /// between the daemon and the first receiver (p50, p90, p99, max).
    #[arg(long)]
    round_trip_only: bool,
    #[arg(long, hide = true)]
    floor_role: Option<String>,
    #[arg(long, hide = true, default_value = "")]
    floor_addr: String,
    #[arg(long, hide = true, default_value_t = 1.0)]
    floor_secs: f64,
}

/// Numbers the benchmark's sessions and groups, so that a run never meets
/// a session of the previous one that the daemon has not closed yet.
static RUN: AtomicU64 = AtomicU64::new(0);

struct Client {
    stream: TcpStream,
    private_group: GroupName,
}

impl Client {
    fn connect(addr: &str, name: &str) -> std::io::Result<Client> {
        Client::connect_with(addr, name, true)
    }

    fn connect_with(addr: &str, name: &str, membership: bool) -> std::io::Result<Client> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.write_all(&ConnectRequest::new(name.as_bytes(), membership, 0).emit())?;
        let mut len = [0u8; 1];
        stream.read_exact(&mut len)?;
        if (len[0] as i8) < 0 {
            return Err(std::io::Error::other(format!(
                "connect rejected: {}",
                len[0] as i8
            )));
        }
        let mut list = vec![0u8; len[0] as usize];
        stream.read_exact(&mut list)?;
        let mut unit = len.to_vec();
        unit.extend_from_slice(&list);
        AuthMethodList::parse(&unit).map_err(|e| std::io::Error::other(e.to_string()))?;
        stream.write_all(&AuthChoice::new(&["NULL"]).emit())?;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head)?;
        let mut reply = head.to_vec();
        let mut name_bytes = vec![0u8; head[4] as usize];
        stream.read_exact(&mut name_bytes)?;
        reply.extend_from_slice(&name_bytes);
        match SessionReply::parse(&reply, true) {
            Ok((SessionReply::Accept { private_group, .. }, _)) => Ok(Client {
                stream,
                private_group,
            }),
            Ok((SessionReply::Reject(code), _)) => Err(std::io::Error::other(format!("rejected: {code}"))),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }

    fn encode(&self, service: u32, groups: &[GroupName], body: &[u8]) -> Vec<u8> {
        spread_wire::client::Message {
            header: MessageHeader {
                service_type: service,
                sender: self.private_group,
                num_groups: groups.len() as i32,
                hint: hint_for(0, ByteOrder::NATIVE),
                data_len: body.len() as i32,
            },
            groups: groups.to_vec(),
            body: body.to_vec(),
        }
        .emit(ByteOrder::NATIVE)
    }

    fn join(&mut self, group: GroupName) -> std::io::Result<()> {
        let bytes = self.encode(JOIN_MESS, &[group], &[]);
        self.stream.write_all(&bytes)
    }

    fn leave(&mut self, group: GroupName) -> std::io::Result<()> {
        let bytes = self.encode(LEAVE_MESS, &[group], &[]);
        self.stream.write_all(&bytes)
    }
}

/// Read one message; returns (service type, body length).
fn read_message(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<(u32, usize)> {
    let mut head = [0u8; 48];
    stream.read_exact(&mut head)?;
    let (h, _) = MessageHeader::parse(&head).map_err(|e| std::io::Error::other(e.to_string()))?;
    let rest = h.num_groups.max(0) as usize * 32 + h.data_len.max(0) as usize;
    buf.resize(rest, 0);
    stream.read_exact(buf)?;
    Ok((h.service_type, h.data_len.max(0) as usize))
}

/// Addresses given as `<port>@<host>` (or a bare port on 127.0.0.1).
fn parse_addr(spec: &str) -> String {
    match spec.split_once('@') {
        Some((port, host)) => format!("{host}:{port}"),
        None => format!("127.0.0.1:{spec}"),
    }
}

/// One sender multicasts `count` messages to a group its own copies flow
/// back from; the rate is taken when every receiver has all of them.
/// Receivers: extra clients (on other daemons); none = the sender alone.
fn throughput(
    addr: &str,
    receivers: &[String],
    service: u32,
    size: usize,
    count: usize,
    window: u64,
) -> std::io::Result<(f64, f64)> {
    let tag = format!(
        "{}{}",
        RUN.fetch_add(1, Ordering::Relaxed) % 100,
        std::process::id() % 1000
    );
    let group = GroupName::new(format!("bench{tag}").as_bytes()).expect("short name");
    let mut client = Client::connect(addr, &format!("tp{tag}").chars().take(10).collect::<String>())?;
    let mut others = Vec::new();
    for (i, r) in receivers.iter().enumerate() {
        let mut c = Client::connect(r, &format!("rx{i}{tag}").chars().take(10).collect::<String>())?;
        c.join(group)?;
        others.push(c);
    }
    client.join(group)?;
    let mut reader = client.stream.try_clone()?;
    let mut buf = Vec::new();
    // Wait for the view that holds every receiver (join notices: members
    // as names, then a 56-byte body).
    loop {
        read_message(&mut reader, &mut buf)?;
        if buf.len().saturating_sub(56) / 32 > others.len() {
            break;
        }
    }
    let received = Arc::new(AtomicU64::new(0));
    let seen = received.clone();
    // The sender sleeps while its window is full (a spinning sender takes
    // a core from the daemons it measures); each own copy wakes it.
    let sending = std::thread::current();
    let own = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = Vec::new();
        let mut n = 0;
        while n < count {
            let (t, _) = read_message(&mut reader, &mut buf)?;
            if t & 0x3f != 0 {
                n += 1;
                seen.fetch_add(1, Ordering::Release);
                sending.unpark();
            }
        }
        sending.unpark();
        Ok(())
    });
    let remote: Vec<_> = others
        .into_iter()
        .map(|c| {
            let mut stream = c.stream;
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut buf = Vec::new();
                let mut n = 0;
                while n < count {
                    let (t, _) = read_message(&mut stream, &mut buf)?;
                    if t & 0x3f != 0 {
                        n += 1;
                    }
                }
                Ok(())
            })
        })
        .collect();
    let message = client.encode(service, &[group], &vec![0xabu8; size]);
    let start = Instant::now();
    for sent in 0..count as u64 {
        while sent - received.load(Ordering::Acquire) >= window {
            if own.is_finished() {
                break;
            }
            std::thread::park();
        }
        client.stream.write_all(&message)?;
    }
    own.join().expect("receiver thread")?;
    for r in remote {
        r.join().expect("receiver thread")?;
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = count as f64 / secs;
    Ok((rate, rate * size as f64 / 1e6))
}

/// Round trips of `size`-byte messages of `service` between a client of
/// `addr` and one of `peer` (private groups); p50 and p99.
fn latency(
    addr: &str,
    peer: &str,
    rounds: usize,
    service: u32,
    size: usize,
) -> std::io::Result<(Duration, Duration)> {
    let samples = latency_samples(addr, peer, rounds, service, size)?;
    Ok((samples[samples.len() / 2], samples[samples.len() * 99 / 100]))
}

/// The sorted round trips of [`latency`].
fn latency_samples(
    addr: &str,
    peer: &str,
    rounds: usize,
    service: u32,
    size: usize,
) -> std::io::Result<Vec<Duration>> {
    let run = RUN.fetch_add(1, Ordering::Relaxed) % 1000;
    // The pid too: a run right after another process's must not reuse
    // a private name whose session the daemon has not dropped yet.
    let tag = std::process::id() % 10_000;
    let mut a = Client::connect(addr, &format!("la{tag}-{run}"))?;
    let mut b = Client::connect(peer, &format!("lb{tag}-{run}"))?;
    let (a_name, b_name) = (a.private_group, b.private_group);
    let ping = a.encode(service, &[b_name], &vec![7u8; size]);
    let pong = b.encode(service, &[a_name], &vec![8u8; size]);
    let mut b_stream = b.stream.try_clone()?;
    // Only the pings and pongs (of `size` bytes) count: a stray notice (the original
    // daemon has sent a reused descriptor an old session's notice) must not
    // put a second ping in flight.
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = Vec::new();
        let mut n = 0;
        while n < rounds {
            if read_message(&mut b_stream, &mut buf)?.1 != size {
                continue;
            }
            b.stream.write_all(&pong)?;
            n += 1;
        }
        Ok(())
    });
    let mut samples = Vec::with_capacity(rounds);
    let mut buf = Vec::new();
    let mut reader = a.stream.try_clone()?;
    for _ in 0..rounds {
        let t = Instant::now();
        a.stream.write_all(&ping)?;
        while read_message(&mut reader, &mut buf)?.1 != size {}
        samples.push(t.elapsed());
    }
    echo.join().expect("echo thread")?;
    samples.sort();
    Ok(samples)
}

/// Join latency of one more member with `size` members in the group:
/// median of 20 join/leave rounds; also the notice's bytes per member.
fn join_latency(daemons: &[String], size: usize) -> std::io::Result<(Duration, f64)> {
    let group = GroupName::new(format!("jb{size}-{}", std::process::id() % 1000).as_bytes()).expect("short");
    let mut members = Vec::new();
    for i in 0..size.saturating_sub(1) {
        let addr = &daemons[i % daemons.len()];
        let mut c = Client::connect_with(addr, &format!("s{}x{i}", size % 10_000), false)?;
        c.join(group)?;
        members.push(c);
    }
    let mut probe = Client::connect(&daemons[0], &format!("probe{}", size % 10_000))?;
    let mut buf = Vec::new();
    // Let the members' joins land: the first view that includes the probe
    // lists everybody once its own join is ordered after theirs.
    probe.join(group)?;
    loop {
        read_message(&mut probe.stream, &mut buf)?;
        if buf.len().saturating_sub(56) / 32 >= size {
            break;
        }
    }
    let mut samples = Vec::new();
    let mut per_member = 0.0;
    for _ in 0..20 {
        probe.leave(group)?;
        read_message(&mut probe.stream, &mut buf)?; // self-leave
        let t = Instant::now();
        probe.join(group)?;
        loop {
            let (service, _) = read_message(&mut probe.stream, &mut buf)?;
            if service & CAUSED_BY_JOIN != 0 {
                break;
            }
        }
        samples.push(t.elapsed());
        per_member = (48 + buf.len()) as f64 / size as f64;
    }
    samples.sort();
    drop(members);
    Ok((samples[samples.len() / 2], per_member))
}

/// One client joins `n` groups; the time until its last join notice.
fn join_many(addr: &str, n: usize) -> std::io::Result<Duration> {
    let mut c = Client::connect(addr, "many")?;
    let mut reader = c.stream.try_clone()?;
    let t = Instant::now();
    let joiner = std::thread::spawn(move || -> std::io::Result<()> {
        for i in 0..n {
            c.join(GroupName::new(format!("many-{i}").as_bytes()).expect("short"))?;
        }
        // Keep the session open until the reader is done.
        std::thread::sleep(Duration::from_secs(1));
        Ok(())
    });
    let mut buf = Vec::new();
    for _ in 0..n {
        read_message(&mut reader, &mut buf)?;
    }
    let elapsed = t.elapsed();
    joiner.join().expect("joiner")?;
    Ok(elapsed)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn group_benchmarks(daemons: &[String], largest: usize, pid: Option<u32>) -> std::io::Result<()> {
    println!("join latency (median of 20 joins of one more member):");
    for size in [1, 100, largest] {
        let (lat, per_member) = join_latency(daemons, size)?;
        println!(
            "  {size:>5} members: {:>8.2} ms, notice {per_member:.1} bytes per member",
            lat.as_secs_f64() * 1e3
        );
    }
    let before = pid.and_then(rss_kib);
    let t = join_many(&daemons[0], 10_000)?;
    let after = pid.and_then(rss_kib);
    print!("one client joins 10,000 groups: {:.0} ms", t.as_secs_f64() * 1e3);
    match (before, after) {
        (Some(b), Some(a)) => println!(", daemon RSS {b} KiB -> {a} KiB"),
        _ => println!(" (daemon memory: run with --spawn to measure)"),
    }
    Ok(())
}

/// The soft limit on this process's open files (from /proc/self/limits).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Members of one group in the session benchmark (a daemon admits about
/// 3,100 local members per group, as many as one notice can name).
const SESSIONS_PER_GROUP: usize = 1000;

/// `n` quiet sessions (no membership notices) on one daemon: connect time,
/// RSS per session; they join groups of [`SESSIONS_PER_GROUP`], then a
/// notified probe joins and leaves the first 10 times (join latency with
/// all `n` sessions on the daemon, notice size).
fn session_benchmark(addr: &str, n: usize, pid: Option<u32>) -> std::io::Result<()> {
    if let Some(limit) = open_files_limit().filter(|&l| l < n as u64 + 50) {
        return Err(std::io::Error::other(format!(
            "{n} sessions need about {} open files, this process may open {limit} (ulimit -n)",
            n + 50
        )));
    }
    let rss = || pid.and_then(rss_kib);
    let kib = |v: Option<u64>| v.map_or("?".to_string(), |v| format!("{v} KiB"));
    let rss_idle = rss();
    let group_of = |i: usize| {
        GroupName::new(format!("sess-{}-{}", std::process::id() % 100_000, i / SESSIONS_PER_GROUP).as_bytes())
            .expect("short")
    };
    let group = group_of(0);
    let first_group = n.min(SESSIONS_PER_GROUP);
    let t = Instant::now();
    let mut sessions = Vec::with_capacity(n);
    for i in 0..n {
        sessions.push(Client::connect_with(addr, &format!("q{i}"), false)?);
    }
    let connect = t.elapsed();
    let rss_connected = rss();
    let t = Instant::now();
    for (i, c) in sessions.iter_mut().enumerate().rev() {
        c.join(group_of(i))?;
    }
    // The probe's first view lists the first group's members once its
    // join is ordered after theirs (they joined last).
    let mut probe = Client::connect(addr, "sprobe")?;
    let mut buf = Vec::new();
    probe.join(group)?;
    loop {
        read_message(&mut probe.stream, &mut buf)?;
        if buf.len().saturating_sub(56) / 32 > first_group {
            break;
        }
    }
    let joined = t.elapsed();
    let rss_joined = rss();
    let mut samples = Vec::new();
    let mut notice_bytes = 0;
    for _ in 0..10 {
        probe.leave(group)?;
        read_message(&mut probe.stream, &mut buf)?; // self-leave
        let t = Instant::now();
        probe.join(group)?;
        loop {
            let (service, _) = read_message(&mut probe.stream, &mut buf)?;
            if service & CAUSED_BY_JOIN != 0 {
                break;
            }
        }
        samples.push(t.elapsed());
        notice_bytes = 48 + buf.len();
    }
    samples.sort();
    let per = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2} KiB", a.saturating_sub(b) as f64 / n as f64),
        _ => "?".to_string(),
    };
    println!("{n} sessions on one daemon ({addr}):");
    println!(
        "  connect all: {:.0} ms ({:.0} us per session)",
        connect.as_secs_f64() * 1e3,
        us(connect) / n as f64
    );
    println!(
        "  all join groups of {SESSIONS_PER_GROUP} (until a probe sees its group full): {:.0} ms",
        joined.as_secs_f64() * 1e3
    );
    println!(
        "  join latency of one more member of a group of {first_group} (median / max of 10): \
         {:.2} ms / {:.2} ms, notice {notice_bytes} bytes",
        samples[samples.len() / 2].as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "  daemon RSS: idle {}, with the sessions {} ({} per session), in the groups {} ({} per member)",
        kib(rss_idle),
        kib(rss_connected),
        per(rss_connected, rss_idle),
        kib(rss_joined),
        per(rss_joined, rss_connected)
    );
    Ok(())
}

struct Spawned(std::process::Child, u16);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(format!("/tmp/{}", self.1));
        // and our daemon's record socket beside it (a SIGKILL leaves it)
        let _ = std::fs::remove_file(format!("/tmp/{}.seq", self.1));
    }
}

fn spawn(binary: &str, extensions: &str) -> std::io::Result<(Spawned, String)> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let dir = std::env::temp_dir().join(format!("spbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("spread.conf");
    std::fs::write(
        &conf,
        // Started as root, the original chroots and changes user (to
        // "spread" by default): keep both daemons root, in /tmp.
        format!(
            "Spread_Segment 127.0.0.255:{port} {{\n  localhost 127.0.0.1\n}}\n\
             DaemonUser = root\nDaemonGroup = root\nRuntimeDir = /tmp\n"
        ),
    )?;
    std::fs::write(dir.join("spread-rs.toml"), extensions)?;
    let child = std::process::Command::new(binary)
        .args(["-n", "localhost", "-c"])
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let guard = Spawned(child, port);
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(&addr).is_err() {
        if Instant::now() > deadline {
            return Err(std::io::Error::other("spawned daemon did not listen within 5 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((guard, addr))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(role) = &args.floor_role {
        return ring::floor_role(role, &args.floor_addr, args.floor_secs, args.rounds);
    }
    if !args.ring.is_empty() {
        return ring_benchmark(&args);
    }
    let (_guard, addr) = match &args.spawn {
        Some(binary) => match spawn(
            binary,
            &args
                .sessions
                .or(args.notices)
                .map(|n| format!("MaxSessions = {}\n", n + 10)) // for spread-rs.toml
                .unwrap_or_default(),
        ) {
            Ok((g, a)) => (Some(g), a),
            Err(e) => {
                eprintln!("spbench: {e}");
                return std::process::ExitCode::from(1);
            }
        },
        None => (None, parse_addr(&args.daemon)),
    };
    let receivers: Vec<String> = args.receivers.iter().map(|r| parse_addr(r)).collect();
    if let Some(n) = args.notices {
        let pid = _guard.as_ref().map(|g| g.0.id());
        return match notices::run(&addr, n, args.notice_group, pid) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("spbench: notice benchmark failed: {e}");
                std::process::ExitCode::from(1)
            }
        };
    }
    if let Some(n) = args.sessions {
        let pid = _guard.as_ref().map(|g| g.0.id());
        return match session_benchmark(&addr, n, pid) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("spbench: session benchmark failed: {e}");
                std::process::ExitCode::from(1)
            }
        };
    }
    if args.groups {
        let mut daemons = vec![addr.clone()];
        daemons.extend(receivers.iter().cloned());
        let pid = _guard.as_ref().map(|g| g.0.id());
        return match group_benchmarks(&daemons, args.members, pid) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("spbench: group benchmark failed: {e}");
                std::process::ExitCode::from(1)
            }
        };
    }
    let service = if args.service == "safe" {
        SAFE_MESS
    } else {
        AGREED_MESS
    };
    if args.round_trip_only {
        let peer = receivers.first().cloned().unwrap_or_else(|| addr.clone());
        for &size in &args.sizes {
            match latency_samples(&addr, &peer, args.rounds, service, size) {
                Ok(s) => {
                    let q = |f: f64| us(s[((s.len() as f64 * f) as usize).min(s.len() - 1)]);
                    println!(
                        "round trip {size} B {}: p50 {:.1} p90 {:.1} p99 {:.1} max {:.1} us",
                        args.service,
                        q(0.5),
                        q(0.9),
                        q(0.99),
                        q(1.0)
                    );
                }
                Err(e) => {
                    eprintln!("spbench: latency failed: {e}");
                    return std::process::ExitCode::from(1);
                }
            }
        }
        return std::process::ExitCode::SUCCESS;
    }
    println!(
        "spbench against {addr}, {} service, receivers: {}",
        args.service,
        if receivers.is_empty() {
            "the sender itself".to_string()
        } else {
            receivers.join(" ")
        }
    );
    println!("{:>10} {:>12} {:>10}", "size", "msgs/s", "MB/s");
    for &size in &args.sizes {
        let count = if size >= 100_000 {
            (args.count / 10).max(1)
        } else {
            args.count
        };
        match throughput(&addr, &receivers, service, size, count, args.window) {
            Ok((rate, mbps)) => println!("{size:>10} {rate:>12.0} {mbps:>10.1}"),
            Err(e) => {
                eprintln!("spbench: throughput at {size} bytes failed: {e}");
                return std::process::ExitCode::from(1);
            }
        }
    }
    let peer = receivers.first().cloned().unwrap_or_else(|| addr.clone());
    match latency(&addr, &peer, args.rounds, AGREED_MESS, 100) {
        Ok((p50, p99)) => println!(
            "round trip (100 B, AGREED): p50 {:.1} us, p99 {:.1} us",
            us(p50),
            us(p99)
        ),
        Err(e) => {
            eprintln!("spbench: latency failed: {e}");
            return std::process::ExitCode::from(1);
        }
    }
    std::process::ExitCode::SUCCESS
}

fn ring_benchmark(args: &Args) -> std::process::ExitCode {
    let mut sides = Vec::new();
    for spec in &args.sides {
        match spec.split_once('=') {
            Some((name, path)) if !name.is_empty() => sides.push((name.to_string(), path.into())),
            _ => {
                eprintln!("spbench: --side wants NAME=PATH, not {spec:?}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    if sides.is_empty() {
        let ours = std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.join("spread")))
            .unwrap_or_else(|| "target/release/spread".into());
        sides.push(("ours".to_string(), ours));
        let original = std::path::PathBuf::from("/opt/spread-ref/sbin/spread");
        if original.exists() {
            sides.push(("original".to_string(), original));
        }
    }
    ring::run(&ring::Options {
        sizes: args.ring.clone(),
        sides,
        pairs: args.pairs.max(1),
        receivers: args.ring_receivers,
        count: args.count,
        rounds: args.rounds,
        window: args.window,
        floor: !args.no_floor,
        conf_lines: args.conf_lines.clone(),
    })
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
