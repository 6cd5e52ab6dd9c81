//! Link impairments for namespace tests:
//!
//! * loss: iptables `statistic` matches dropping a share of the daemons'
//!   UDP datagrams as they arrive (each receiver loses independently, so a
//!   broadcast can reach one daemon and not another);
//! * delay, reorder, duplication of the daemons' outgoing UDP datagrams
//!   ([`Shaper`]): `netem` where the kernel has it (probed once per test
//!   process, [`netem_available`]), under an `htb` class that only the ring
//!   ports are filtered into; on kernels without `netem` (this project's
//!   build machine), an NFQUEUE served by [`Impairer`], a thread of the
//!   test process that entered the namespace. It holds each packet for the
//!   delay (verdicts may be given in any order, which reorders), lets the
//!   reorder share go at once, and sends a copy of the duplicate share
//!   through a raw socket marked so it is not queued again.
//!   `SPREAD_IMPAIRER=nfqueue` picks the NFQUEUE path even with `netem`.
//!
//! The NFQUEUE side speaks nfnetlink directly (a few fixed message layouts
//! from `linux/netfilter/nfnetlink_queue.h`): no extra crate for a test
//! helper. `--queue-bypass` lets packets pass if the impairer has gone.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::netns::Net;

/// The mark of the impairer's own copies (skipped by the queue rule).
const COPY_MARK: u32 = 0x5f;

const NETLINK_NETFILTER: i32 = 12;
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_PACKET: u8 = 2;
const NF_ACCEPT: u32 = 1;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;

/// What the impairer does to each queued packet.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Base delay and the +- jitter around it (uniform).
    pub delay: Duration,
    pub jitter: Duration,
    /// Share of packets let through at once, ahead of delayed ones.
    pub reorder: f64,
    /// Share of packets sent twice.
    pub duplicate: f64,
}

/// Counters of one impairer (for the test's report).
#[derive(Default, Debug)]
pub struct ImpairStats {
    pub queued: AtomicU64,
    pub reordered: AtomicU64,
    pub duplicated: AtomicU64,
}

/// An NFQUEUE impairer serving queue 0 of one namespace; stops on drop.
pub struct Impairer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub stats: Arc<ImpairStats>,
}

/// A small xorshift generator: seeded, no crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

fn nlmsg(kind: u16, flags: u16, seq: u32, queue: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    // nfgenmsg: family AF_INET, version 0, res_id = queue (big-endian).
    m.extend_from_slice(&[libc::AF_INET as u8, 0]);
    m.extend_from_slice(&queue.to_be_bytes());
    for (t, v) in attrs {
        let len = 4 + v.len();
        m.extend_from_slice(&(len as u16).to_ne_bytes());
        m.extend_from_slice(&t.to_ne_bytes());
        m.extend_from_slice(v);
        while !m.len().is_multiple_of(4) {
            m.push(0);
        }
    }
    let total = m.len() as u32;
    m[0..4].copy_from_slice(&total.to_ne_bytes());
    m[4..6].copy_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | kind).to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

fn send_nl(fd: &OwnedFd, msg: &[u8]) -> std::io::Result<()> {
    // SAFETY: `msg` is a valid buffer for its length; fd is an open netlink
    // socket we own; a zeroed sockaddr_nl addresses the kernel.
    let n = unsafe {
        let mut to: libc::sockaddr_nl = std::mem::zeroed();
        to.nl_family = libc::AF_NETLINK as u16;
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&to as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Enters the network namespace `ns` on the calling thread only.
pub fn enter_netns(ns: &str) -> std::io::Result<()> {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}"))?;
    // SAFETY: setns(2) on an open namespace file; CLONE_NEWNET moves only
    // this thread's network namespace.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn socket(domain: i32, kind: i32, proto: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; a non-negative result is
    // a fresh descriptor we take ownership of.
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2) and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_int_opt(fd: &OwnedFd, level: i32, name: i32, value: i32) -> std::io::Result<()> {
    // SAFETY: setsockopt(2) with a pointer to a live c_int of the right size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as u32,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The netlink socket bound to queue 0, in the current thread's namespace.
fn open_queue() -> std::io::Result<OwnedFd> {
    let fd = socket(libc::AF_NETLINK, libc::SOCK_RAW, NETLINK_NETFILTER)?;
    let _ = set_int_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 8 << 20);
    let mut bind_cmd = [0u8; 4];
    bind_cmd[0] = NFQNL_CFG_CMD_BIND;
    bind_cmd[2..4].copy_from_slice(&(libc::AF_INET as u16).to_be_bytes());
    let mut params = [0u8; 5];
    params[0..4].copy_from_slice(&0xffffu32.to_be_bytes());
    params[4] = NFQNL_COPY_PACKET;
    let maxlen = 10_000u32.to_be_bytes();
    for (i, attrs) in [
        vec![(NFQA_CFG_CMD, &bind_cmd[..])],
        vec![
            (NFQA_CFG_PARAMS, &params[..]),
            (NFQA_CFG_QUEUE_MAXLEN, &maxlen[..]),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        send_nl(
            &fd,
            &nlmsg(
                NFQNL_MSG_CONFIG,
                NLM_F_REQUEST | NLM_F_ACK,
                i as u32 + 1,
                0,
                &attrs,
            ),
        )?;
        let mut buf = [0u8; 256];
        // SAFETY: recv(2) into a live buffer of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 20 {
            return Err(std::io::Error::last_os_error());
        }
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        let errno = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        if kind == NLMSG_ERROR && errno != 0 {
            return Err(std::io::Error::from_raw_os_error(-errno));
        }
    }
    Ok(fd)
}

/// (packet id, payload) of every packet message in one netlink read.
fn parse_packets(buf: &[u8], out: &mut Vec<(u32, Vec<u8>)>) {
    let mut off = 0;
    while off + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
        if len < 16 || off + len > buf.len() {
            return;
        }
        if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
            let mut id = None;
            let mut payload = Vec::new();
            let mut a = off + 20;
            while a + 4 <= off + len {
                let alen = u16::from_ne_bytes([buf[a], buf[a + 1]]) as usize;
                let atype = u16::from_ne_bytes([buf[a + 2], buf[a + 3]]) & 0x3fff;
                if alen < 4 || a + alen > off + len {
                    break;
                }
                let v = &buf[a + 4..a + alen];
                if atype == NFQA_PACKET_HDR && v.len() >= 4 {
                    id = Some(u32::from_be_bytes(v[0..4].try_into().unwrap()));
                } else if atype == NFQA_PAYLOAD {
                    payload = v.to_vec();
                }
                a += (alen + 3) & !3;
            }
            if let Some(id) = id {
                out.push((id, payload));
            }
        }
        off += (len + 3) & !3;
    }
}

fn verdict(fd: &OwnedFd, id: u32) {
    let mut v = [0u8; 8];
    v[0..4].copy_from_slice(&NF_ACCEPT.to_be_bytes());
    v[4..8].copy_from_slice(&id.to_be_bytes());
    let _ = send_nl(
        fd,
        &nlmsg(NFQNL_MSG_VERDICT, NLM_F_REQUEST, 0, 0, &[(NFQA_VERDICT_HDR, &v)]),
    );
}

/// Sends a copy of the IPv4 packet `ip` through the raw socket, without
/// its UDP checksum (it may be a partial one left for offload; zero means
/// "none" for UDP over IPv4).
fn send_copy(raw: &OwnedFd, ip: &[u8]) {
    if ip.len() < 28 || ip[0] >> 4 != 4 {
        return;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let mut copy = ip.to_vec();
    if ip[9] == libc::IPPROTO_UDP as u8 && copy.len() >= ihl + 8 {
        copy[ihl + 6] = 0;
        copy[ihl + 7] = 0;
    }
    // SAFETY: sendto(2) from a live buffer to a sockaddr_in built here.
    unsafe {
        let mut to: libc::sockaddr_in = std::mem::zeroed();
        to.sin_family = libc::AF_INET as u16;
        to.sin_addr.s_addr = u32::from_ne_bytes([ip[16], ip[17], ip[18], ip[19]]);
        libc::sendto(
            raw.as_raw_fd(),
            copy.as_ptr().cast(),
            copy.len(),
            0,
            (&to as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        );
    }
}

/// Why an [`Impairer`] cannot run in namespace `i` of `net` (no nfnetlink
/// queue support, or no NFQUEUE target in iptables), or `None` if it can.
pub fn nfqueue_unavailable(net: &Net, i: usize) -> Option<String> {
    let ns = net.ns(i);
    let opened = std::thread::spawn(move || enter_netns(&ns).and_then(|()| open_queue()).map(drop))
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("probe thread panicked")));
    if let Err(e) = opened {
        return Some(format!("cannot open an NFQUEUE socket: {e}"));
    }
    let ns = net.ns(i);
    let rule = [
        "OUTPUT",
        "-p",
        "udp",
        "--dport",
        "9",
        "-j",
        "NFQUEUE",
        "--queue-num",
        "0",
        "--queue-bypass",
    ];
    let iptables = |op: &str| {
        let mut args = vec!["ip", "netns", "exec", &ns, "iptables", "-w", "5", op];
        args.extend_from_slice(&rule);
        super::netns::run(&args)
    };
    if !iptables("-A") {
        return Some("iptables has no NFQUEUE target (xt_NFQUEUE)".to_owned());
    }
    iptables("-D");
    None
}

impl Impairer {
    /// Queues the daemons' outgoing datagrams (UDP ports `port` and
    /// `port + 1`) of namespace `i` to a new impairer thread.
    pub fn start(net: &Net, i: usize, port: u16, shape: Shape, seed: u64) -> Impairer {
        let ns = net.ns(i);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ImpairStats::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let stop = stop.clone();
            let stats = stats.clone();
            std::thread::spawn(move || {
                let setup = (|| {
                    enter_netns(&ns)?;
                    let q = open_queue()?;
                    let raw = socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW)?;
                    set_int_opt(&raw, libc::SOL_SOCKET, libc::SO_MARK, COPY_MARK as i32)?;
                    set_int_opt(&raw, libc::SOL_SOCKET, libc::SO_BROADCAST, 1)?;
                    Ok::<_, std::io::Error>((q, raw))
                })();
                let (q, raw) = match setup {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                serve(&q, &raw, shape, seed, &stop, &stats);
            })
        };
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => {}
            other => panic!("impairer in {}: {other:?}", net.ns(i)),
        }
        let ports = format!("{}:{}", port, port + 1);
        let mark = format!("{COPY_MARK}");
        net.iptables(
            i,
            &[
                "-A",
                "OUTPUT",
                "-p",
                "udp",
                "--dport",
                &ports,
                "-m",
                "mark",
                "!",
                "--mark",
                &mark,
                "-j",
                "NFQUEUE",
                "--queue-num",
                "0",
                "--queue-bypass",
            ],
        );
        Impairer {
            stop,
            thread: Some(thread),
            stats,
        }
    }
}

fn serve(q: &OwnedFd, raw: &OwnedFd, shape: Shape, seed: u64, stop: &AtomicBool, stats: &ImpairStats) {
    let mut rng = Rng::new(seed);
    let mut held: BinaryHeap<Reverse<(Instant, u32)>> = BinaryHeap::new();
    let mut buf = vec![0u8; 1 << 17];
    let mut packets = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while let Some(Reverse((at, id))) = held.peek().copied() {
            if at > now {
                break;
            }
            held.pop();
            verdict(q, id);
        }
        let wait_ms = held
            .peek()
            .map(|Reverse((at, _))| at.saturating_duration_since(now).as_micros().div_ceil(1000) as i32)
            .unwrap_or(50)
            .clamp(0, 50);
        let mut pfd = libc::pollfd {
            fd: q.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one live pollfd.
        if unsafe { libc::poll(&mut pfd, 1, wait_ms) } <= 0 {
            continue;
        }
        loop {
            // SAFETY: recv(2) into a live buffer of its length, non-blocking.
            let n = unsafe {
                libc::recv(
                    q.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                break;
            }
            packets.clear();
            parse_packets(&buf[..n as usize], &mut packets);
            for (id, payload) in packets.drain(..) {
                stats.queued.fetch_add(1, Ordering::Relaxed);
                if rng.unit() < shape.duplicate {
                    stats.duplicated.fetch_add(1, Ordering::Relaxed);
                    send_copy(raw, &payload);
                }
                if rng.unit() < shape.reorder {
                    stats.reordered.fetch_add(1, Ordering::Relaxed);
                    verdict(q, id);
                    continue;
                }
                let spread = shape.jitter.as_micros() as u64 * 2;
                let micros =
                    shape.delay.as_micros() as u64 - shape.jitter.as_micros() as u64 + rng.below(spread + 1);
                held.push(Reverse((Instant::now() + Duration::from_micros(micros), id)));
            }
        }
    }
    for Reverse((_, id)) in held.drain() {
        verdict(q, id);
    }
}

impl Drop for Impairer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Each daemon in `which` loses `share` of the ring datagrams it receives
/// (optionally only those from `from`).
pub fn add_loss(net: &Net, i: usize, port: u16, share: f64, from: Option<usize>) {
    let ports = format!("{}:{}", port, port + 1);
    let p = format!("{share}");
    let src = from.map(|f| net.ip(f).to_string());
    let mut args = vec!["-A", "INPUT", "-p", "udp", "--dport", &ports];
    if let Some(src) = &src {
        args.extend_from_slice(&["-s", src]);
    }
    args.extend_from_slice(&[
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        &p,
        "-j",
        "DROP",
    ]);
    net.iptables(i, &args);
}

/// The namespaces' segment link (see [`Net::create`]).
const SEGMENT_LINK: &str = "eth0";

/// `netem`'s parameters for `shape`: the delay with its uniform jitter,
/// the share sent at once (ahead of the delayed ones), the share sent twice.
pub fn netem_params(shape: &Shape) -> Vec<String> {
    let percent = |share: f64| format!("{}%", share * 100.0);
    vec![
        "netem".into(),
        "delay".into(),
        format!("{}us", shape.delay.as_micros()),
        format!("{}us", shape.jitter.as_micros()),
        "reorder".into(),
        percent(shape.reorder),
        "duplicate".into(),
        percent(shape.duplicate),
    ]
}

/// The `tc` commands (arguments after `tc`) that send the UDP datagrams
/// to `port` and `port + 1` leaving `dev` through the qdisc `leaf` and
/// everything else (clients' TCP, other datagrams) past it: an `htb` root
/// whose default class is not shaped, a class for the ring's ports with
/// `leaf` under it, and one `u32` filter per port.
pub fn ring_port_shaping(dev: &str, port: u16, leaf: &[String]) -> Vec<Vec<String>> {
    let words = |line: &str| line.split_whitespace().map(String::from).collect::<Vec<_>>();
    // A rate far above the ring's, so htb itself shapes nothing; the
    // quantum set to keep the kernel from warning about its default.
    let class = "htb rate 10gbit quantum 60000";
    let mut commands = vec![
        words(&format!("qdisc add dev {dev} root handle 1: htb default 1")),
        words(&format!("class add dev {dev} parent 1: classid 1:1 {class}")),
        words(&format!("class add dev {dev} parent 1: classid 1:2 {class}")),
    ];
    let mut leaf_command = words(&format!("qdisc add dev {dev} parent 1:2 handle 20:"));
    leaf_command.extend_from_slice(leaf);
    commands.push(leaf_command);
    for p in [port, port + 1] {
        commands.push(words(&format!(
            "filter add dev {dev} parent 1: protocol ip prio 1 u32 match ip protocol 17 0xff match ip dport {p} 0xffff flowid 1:2"
        )));
    }
    commands
}

/// Runs `tc ARGS` in namespace `ns`: `Ok`, or what tc said.
fn tc(ns: &str, args: &[String]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "tc"])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run tc: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
}

/// Applies [`ring_port_shaping`] with `leaf` to `dev` in namespace `ns`
/// (panics if tc refuses any step); [`remove_shaping`] undoes it.
pub fn add_ring_port_shaping(ns: &str, dev: &str, port: u16, leaf: &[String]) {
    for args in ring_port_shaping(dev, port, leaf) {
        if let Err(e) = tc(ns, &args) {
            panic!("tc {} in {ns}: {e}", args.join(" "));
        }
    }
}

pub fn remove_shaping(ns: &str, dev: &str) {
    let _ = tc(ns, &["qdisc", "del", "dev", dev, "root"].map(String::from));
}

/// What tc's answer to adding a `netem` qdisc says about the kernel: `Ok`
/// if it took it, otherwise why not.
pub fn netem_verdict(added: Result<(), String>) -> Result<(), String> {
    match added {
        Ok(()) => Ok(()),
        Err(said) if said.contains("qdisc kind is unknown") => {
            Err(format!("the kernel has no netem qdisc (tc: {said})"))
        }
        Err(said) if said.is_empty() => Err("tc refused netem without a word".to_owned()),
        Err(said) => Err(format!("tc refused netem: {said}")),
    }
}

/// Whether this kernel has `netem`, probed once per test process: a
/// `netem` qdisc on the loopback of namespace `i`, removed at once.
pub fn netem_available(net: &Net, i: usize) -> Result<(), String> {
    static PROBED: OnceLock<Result<(), String>> = OnceLock::new();
    PROBED
        .get_or_init(|| {
            let ns = net.ns(i);
            let verdict = netem_verdict(tc(
                &ns,
                &"qdisc add dev lo root netem delay 1ms"
                    .split(' ')
                    .map(String::from)
                    .collect::<Vec<_>>(),
            ));
            if verdict.is_ok() {
                remove_shaping(&ns, "lo");
            }
            verdict
        })
        .clone()
}

/// `SPREAD_IMPAIRER=nfqueue`: the NFQUEUE path even where netem is.
fn nfqueue_forced() -> bool {
    std::env::var("SPREAD_IMPAIRER").is_ok_and(|v| v == "nfqueue")
}

/// Why neither netem nor the NFQUEUE impairer can shape links in namespace
/// `i` of `net`, or `None` if one can.
pub fn shaping_unavailable(net: &Net, i: usize) -> Option<String> {
    let netem = if nfqueue_forced() {
        Err("SPREAD_IMPAIRER=nfqueue".to_owned())
    } else {
        netem_available(net, i)
    };
    let no_netem = netem.err()?;
    let no_queue = nfqueue_unavailable(net, i)?;
    Some(format!("{no_netem}; and {no_queue}"))
}

/// Delay, reorder and duplication of the daemons' outgoing datagrams in
/// one namespace: `netem` where the kernel has it, the NFQUEUE impairer
/// otherwise. Undone on drop.
pub enum Shaper {
    Netem { ns: String },
    Queue(Impairer),
}

impl Shaper {
    /// Shapes the datagrams to UDP ports `port` and `port + 1` leaving
    /// namespace `i` (`seed` seeds the NFQUEUE impairer; netem draws its own).
    pub fn start(net: &Net, i: usize, port: u16, shape: Shape, seed: u64) -> Shaper {
        if !nfqueue_forced() && netem_available(net, i).is_ok() {
            let ns = net.ns(i);
            add_ring_port_shaping(&ns, SEGMENT_LINK, port, &netem_params(&shape));
            return Shaper::Netem { ns };
        }
        Shaper::Queue(Impairer::start(net, i, port, shape, seed))
    }

    /// Which path shapes, with the impairer's counters.
    pub fn report(&self) -> String {
        match self {
            Shaper::Netem { ns } => format!("netem in {ns}"),
            Shaper::Queue(impairer) => format!("NFQUEUE {:?}", impairer.stats),
        }
    }
}

impl Drop for Shaper {
    fn drop(&mut self) {
        if let Shaper::Netem { ns } = self {
            remove_shaping(ns, SEGMENT_LINK);
        }
    }
}
