//! Client-level checks of Spread's delivery guarantees over real daemons:
//! what each receiving session got, in which view, and whether all of them
//! together keep the rules.
//!
//! Messages carry `(sender, seq, service)` in their body. The checks:
//! * no duplicates at a receiver, FIFO per sender (seq strictly rising);
//! * one order: any two receivers deliver the messages they share in the
//!   same relative order;
//! * same view: a message two receivers deliver is delivered in the same
//!   regular view (the last regular notice before it) by both;
//! * SAFE, as a client can see it: a SAFE message delivered in the regular
//!   part of view V (before V's transitional notice) was stable in V, so
//!   every receiver that installed V delivers it in V, regular or
//!   transitional part. A SAFE message delivered early (before a member of
//!   V had it) shows as one that member never delivers in V, e.g. when that
//!   member was frozen before it arrived and a new view formed without it.
//!   A receiver whose daemon died in V (its connection closed while V was
//!   its last view) is exempt in V: EVS promises SAFE delivery to every
//!   member of the view *that does not fail*, and the messages a killed
//!   daemon had not yet handed to its clients die with it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use spread_wire::client::service::*;

use super::{Client, RecvError};

/// Total-order services the tests send.
pub const SERVICES: [u32; 2] = [AGREED_MESS, SAFE_MESS];

/// The body of message `seq` of `sender`, padded to `len` bytes.
pub fn body(sender: u32, seq: u32, safe: bool, len: usize) -> Vec<u8> {
    let mut b = format!("m {sender} {seq} {}", if safe { 'S' } else { 'A' }).into_bytes();
    b.push(b'|');
    while b.len() < len {
        b.push(b'.');
    }
    b
}

/// `(sender, seq, safe)` of a body made by [`body`].
pub fn parse_body(b: &[u8]) -> Option<(u32, u32, bool)> {
    let end = b.iter().position(|&c| c == b'|')?;
    let s = std::str::from_utf8(&b[..end]).ok()?;
    let mut it = s.split(' ');
    (it.next()? == "m").then_some(())?;
    let sender = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    let safe = it.next()? == "S";
    Some((sender, seq, safe))
}

#[derive(Clone, Debug)]
pub struct Delivery {
    pub sender: u32,
    pub seq: u32,
    pub safe: bool,
    /// Whether the service type said SAFE (must match the body).
    pub service_safe: bool,
    /// Index into [`Log::views`] of the regular view it was delivered in.
    pub view: usize,
    /// Delivered after that view's transitional notice.
    pub transitional: bool,
    pub at: Instant,
}

/// What one receiving session saw.
#[derive(Clone, Debug, Default)]
pub struct Log {
    pub name: String,
    pub deliveries: Vec<Delivery>,
    /// Regular views: (group id as text, cause, members).
    pub views: Vec<(String, u32, Vec<String>)>,
    /// Transitional notices seen (one per left view, at most).
    pub transitions: usize,
    /// How the session ended: `None` while it was still open at the end.
    pub ended: Option<String>,
    /// The daemon closed the connection (it was killed): the session
    /// failed in its last view.
    pub closed: bool,
}

impl Log {
    pub fn got(&self) -> HashSet<(u32, u32)> {
        self.deliveries.iter().map(|d| (d.sender, d.seq)).collect()
    }

    /// Views whose cause was a network change.
    pub fn network_views(&self) -> usize {
        self.views.iter().filter(|v| v.1 & CAUSED_BY_NETWORK != 0).count()
    }
}

/// Receives on `client` until `done` says so, the session ends, or
/// `within` passes. `current` is the regular view notice `client` got
/// last (the view the first messages are delivered in).
pub fn receive(
    mut client: Client,
    name: &str,
    current: &super::Received,
    within: Duration,
    done: impl Fn(&Log) -> bool,
) -> Log {
    let deadline = Instant::now() + within;
    let mut log = Log {
        name: name.to_string(),
        views: vec![(
            format!("{:?}", current.membership().group_id),
            current.service_type() & CAUSED_BY_MASK,
            current.groups(),
        )],
        ..Log::default()
    };
    let mut transitional = false;
    while !done(&log) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            log.ended = Some("deadline".into());
            break;
        }
        // One call per message: a timeout inside a message would lose the
        // part already read.
        match client.recv_within(left) {
            Ok(r) => {
                let st = r.service_type();
                if st & TRANSITION_MESS != 0 {
                    transitional = true;
                    log.transitions += 1;
                } else if st & REG_MEMB_MESS != 0 {
                    let id = format!("{:?}", r.membership().group_id);
                    log.views.push((id, st & CAUSED_BY_MASK, r.groups()));
                    transitional = false;
                } else if let Some((sender, seq, safe)) = parse_body(r.body()) {
                    log.deliveries.push(Delivery {
                        sender,
                        seq,
                        safe,
                        service_safe: st & SAFE_MESS != 0,
                        view: log.views.len() - 1,
                        transitional,
                        at: Instant::now(),
                    });
                }
            }
            Err(e) => {
                log.closed = matches!(e, RecvError::Closed { .. });
                let last = log.deliveries.last().map(|d| (d.sender, d.seq));
                let mut more = vec![0u8; 256];
                let n = client
                    .conn
                    .read_exact_by(&mut more, Instant::now() + Duration::from_millis(200))
                    .map(|_| 256)
                    .unwrap_or_else(|e| match e {
                        RecvError::Timeout { got } | RecvError::Closed { got } => got,
                        _ => 0,
                    });
                log.ended = Some(format!(
                    "{e:?} after {last:?} (view notice {}); next bytes: {}",
                    super::hex(&current.raw),
                    super::hex(&more[..n])
                ));
                break;
            }
        }
    }
    log
}

const CAUSED_BY_MASK: u32 = CAUSED_BY_JOIN | CAUSED_BY_LEAVE | CAUSED_BY_DISCONNECT | CAUSED_BY_NETWORK;

/// Every rule of the module's doc over `logs`; the error names the first
/// broken one.
pub fn check(logs: &[Log]) -> Result<(), String> {
    for log in logs {
        let mut seen = HashSet::new();
        let mut last: HashMap<u32, u32> = HashMap::new();
        for d in &log.deliveries {
            if !seen.insert((d.sender, d.seq)) {
                return Err(format!("{}: duplicate {}:{}", log.name, d.sender, d.seq));
            }
            if d.safe != d.service_safe {
                return Err(format!(
                    "{}: {}:{} came with the wrong service",
                    log.name, d.sender, d.seq
                ));
            }
            if let Some(&prev) = last.get(&d.sender) {
                if d.seq <= prev {
                    return Err(format!(
                        "{}: FIFO broken for sender {}: {} after {}",
                        log.name, d.sender, d.seq, prev
                    ));
                }
            }
            last.insert(d.sender, d.seq);
        }
    }
    // One order and same view, pairwise.
    for (i, a) in logs.iter().enumerate() {
        for b in &logs[i + 1..] {
            let in_b: HashMap<(u32, u32), &Delivery> =
                b.deliveries.iter().map(|d| ((d.sender, d.seq), d)).collect();
            let in_a: HashSet<(u32, u32)> = a.got();
            let order_a: Vec<(u32, u32)> = a
                .deliveries
                .iter()
                .map(|d| (d.sender, d.seq))
                .filter(|k| in_b.contains_key(k))
                .collect();
            let order_b: Vec<(u32, u32)> = b
                .deliveries
                .iter()
                .map(|d| (d.sender, d.seq))
                .filter(|k| in_a.contains(k))
                .collect();
            if let Some(k) = order_a.iter().zip(&order_b).position(|(x, y)| x != y) {
                return Err(format!(
                    "{} and {} disagree on the order at shared message {k}: {:?} vs {:?}",
                    a.name, b.name, order_a[k], order_b[k]
                ));
            }
            for d in &a.deliveries {
                if let Some(e) = in_b.get(&(d.sender, d.seq)) {
                    let va = &a.views[d.view].0;
                    let vb = &b.views[e.view].0;
                    if va != vb {
                        return Err(format!(
                            "{}:{} delivered in view {va} at {} but in {vb} at {}",
                            d.sender, d.seq, a.name, b.name
                        ));
                    }
                }
            }
        }
    }
    // SAFE: stable in its view.
    for a in logs {
        for d in a.deliveries.iter().filter(|d| d.safe && !d.transitional) {
            let view = &a.views[d.view].0;
            for b in logs {
                let installed = b.views.iter().any(|v| &v.0 == view);
                let failed_in_view = b.closed && b.views.last().is_some_and(|v| &v.0 == view);
                if installed
                    && !failed_in_view
                    && !b
                        .deliveries
                        .iter()
                        .any(|e| (e.sender, e.seq) == (d.sender, d.seq))
                {
                    return Err(format!(
                        "SAFE {}:{} delivered by {} in the regular part of view {view}, never by {} which installed it",
                        d.sender, d.seq, a.name, b.name
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Panics with the first broken rule.
pub fn assert_ok(logs: &[Log]) {
    if let Err(e) = check(logs) {
        panic!("delivery guarantees broken: {e}");
    }
}
