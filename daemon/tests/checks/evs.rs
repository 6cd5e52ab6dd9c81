//! The extended virtual synchrony (EVS) checker of the ring simulator
//! (`sim.rs`): what the ring and membership engines promise the groups
//! layer above them, one named check per guarantee, over the logs of every
//! daemon incarnation of a run.
//!
//! | Guarantee (check)              | Promise                                                                  | Broken on purpose in `checker_catches_violations` by |
//! |--------------------------------|--------------------------------------------------------------------------|------------------------------------------------------|
//! | `configuration_agreement`      | one configuration id names one member list at every daemon               | a stranger added to one daemon's copy of a shared ring |
//! | `installer_is_member`          | a daemon installs only configurations it belongs to                      | a ring without its installer appended to one log       |
//! | `transitional_within_regular`  | a transitional configuration is within the regular ones around it        | a transitional configuration with a stranger appended  |
//! | `no_duplicates`                | no message is delivered twice                                            | a RELIABLE delivery repeated                           |
//! | `payloads_intact`              | what is delivered is the bytes a daemon submitted                        | a delivery of corrupted bytes                          |
//! | `fifo_without_gaps`            | a sender's ordered messages come in order, without gaps, within a configuration | a message taken out of every log and of its sender's list |
//! | `virtual_synchrony`            | daemons that move together from a regular configuration to the same transitional one delivered the same ordered messages in it | a message only one of two such daemons delivered in the regular configuration (the other in the transitional one) |
//! | `transitional_delivery`        | daemons that also install the same next configuration delivered the same ordered messages in the old and transitional configurations together | a message delivered in the transitional configuration by only one of them |
//! | `agreed_total_order`           | ordered (FIFO, AGREED, SAFE) messages two daemons delivered are in the same relative order | two deliveries from different senders swapped at one daemon |
//! | `safe_stability`               | a SAFE message delivered in a regular configuration reaches every member of it that installed it and kept running | a SAFE message removed from one member of the final ring |
//! | `self_delivery`                | a daemon that keeps running delivers every message it submitted          | a submitted message that never comes back              |
//! | `one_ring_at_the_end`          | once the network heals and goes quiet, all running daemons share one operational ring | a daemon stopped after the run, unnoticed by the others |
//!
//! RELIABLE messages go up on receipt, so (as in the original) one daemon may
//! deliver in the regular configuration what another recovers for the
//! transitional one, or drops after a hole its departed sender left: the
//! configuration-wide checks compare ordered messages only.

use std::collections::{HashMap, HashSet};

use super::simnet::{self, Incarnation, MsgId, Rec, Sim};
use spread_daemon::ring::{MembId, PacketType};

/// A broken guarantee: the check that found it and what it saw.
#[derive(Clone, Debug)]
pub struct Violation {
    pub check: &'static str,
    pub what: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.check, self.what)
    }
}

type Check = fn(&Sim, &History) -> Vec<String>;

/// Every guarantee, by name, in the order they run.
pub const CHECKS: &[(&str, Check)] = &[
    ("configuration_agreement", configuration_agreement),
    ("installer_is_member", installer_is_member),
    ("transitional_within_regular", transitional_within_regular),
    ("no_duplicates", no_duplicates),
    ("payloads_intact", payloads_intact),
    ("fifo_without_gaps", fifo_without_gaps),
    ("virtual_synchrony", virtual_synchrony),
    ("transitional_delivery", transitional_delivery),
    ("agreed_total_order", agreed_total_order),
    ("safe_stability", safe_stability),
    ("self_delivery", self_delivery),
    ("one_ring_at_the_end", one_ring_at_the_end),
];

/// Runs every check; returns the violations found, each naming its check.
pub fn check(sim: &Sim) -> Vec<Violation> {
    let h = History::of(sim);
    CHECKS
        .iter()
        .flat_map(|(check, f)| f(sim, &h).into_iter().map(|what| Violation { check, what }))
        .collect()
}

/// One daemon incarnation's log cut at configuration changes.
pub struct Span {
    /// The regular configuration (None before the first one).
    pub reg: Option<MembId>,
    pub reg_msgs: Vec<(MsgId, PacketType)>,
    /// The transitional configuration that ended it, and what followed.
    pub trans: Option<MembId>,
    pub trans_msgs: Vec<(MsgId, PacketType)>,
    /// The regular configuration that came next.
    pub next: Option<MembId>,
}

/// What the checks share: each incarnation's spans and delivered messages.
pub struct History {
    pub spans: Vec<Vec<Span>>,
    pub delivered: Vec<HashSet<MsgId>>,
}

impl History {
    pub fn of(sim: &Sim) -> History {
        let incs = &sim.app.incarnations;
        History {
            spans: incs.iter().map(spans).collect(),
            delivered: incs
                .iter()
                .map(|inc| {
                    inc.log
                        .iter()
                        .filter_map(|r| match r {
                            Rec::Deliver { id, .. } => Some(*id),
                            _ => None,
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// Pairs of spans of two incarnations that went from one regular
    /// configuration to the same transitional one.
    fn moved_together(&self) -> impl Iterator<Item = (usize, usize, &Span, &Span)> {
        let all = &self.spans;
        (0..all.len()).flat_map(move |a| {
            (a + 1..all.len()).flat_map(move |b| {
                all[a].iter().flat_map(move |sa| {
                    all[b]
                        .iter()
                        .filter(move |sb| {
                            sa.reg.is_some() && sa.reg == sb.reg && sa.trans.is_some() && sa.trans == sb.trans
                        })
                        .map(move |sb| (a, b, sa, sb))
                })
            })
        })
    }
}

pub fn spans(inc: &Incarnation) -> Vec<Span> {
    let fresh = |reg| Span {
        reg,
        reg_msgs: vec![],
        trans: None,
        trans_msgs: vec![],
        next: None,
    };
    let mut out = vec![fresh(None)];
    for rec in &inc.log {
        let cur = out.last_mut().expect("one span at least");
        match rec {
            Rec::Deliver { id, ptype, .. } => {
                if cur.trans.is_some() {
                    cur.trans_msgs.push((*id, *ptype));
                } else {
                    cur.reg_msgs.push((*id, *ptype));
                }
            }
            Rec::Trans { id, .. } => cur.trans = Some(*id),
            Rec::Reg { id, .. } => {
                cur.next = Some(*id);
                out.push(fresh(Some(*id)));
            }
            Rec::Garbage => {}
        }
    }
    out
}

pub fn ordered(msgs: &[(MsgId, PacketType)]) -> Vec<MsgId> {
    msgs.iter()
        .filter(|(_, p)| *p != PacketType::Reliable)
        .map(|(m, _)| *m)
        .collect()
}

pub fn name(sim: &Sim, k: usize) -> String {
    let inc = &sim.app.incarnations[k];
    format!("d{}#{}", inc.node + 1, inc.number)
}

/// Configurations, regular and transitional, with the members each daemon
/// that installed them reported.
fn installs(inc: &Incarnation) -> impl Iterator<Item = (bool, &MembId, &Vec<u32>)> {
    inc.log.iter().filter_map(|rec| match rec {
        Rec::Reg { id, members } => Some((true, id, members)),
        Rec::Trans { id, members } => Some((false, id, members)),
        _ => None,
    })
}

/// Membership agreement: every daemon that installs a configuration id
/// (regular or transitional) reports the same members for it.
fn configuration_agreement(sim: &Sim, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    let mut confs: HashMap<(bool, MembId), (&Vec<u32>, usize)> = HashMap::new();
    for (k, inc) in sim.app.incarnations.iter().enumerate() {
        for (is_reg, id, members) in installs(inc) {
            match confs.get(&(is_reg, *id)) {
                Some((m, k2)) if *m != members => errs.push(format!(
                    "{:?} has members {:?} at {} but {:?} at {}",
                    id,
                    members,
                    name(sim, k),
                    m,
                    name(sim, *k2)
                )),
                Some(_) => {}
                None => {
                    confs.insert((is_reg, *id), (members, k));
                }
            }
        }
    }
    errs
}

/// Self inclusion: a daemon only installs configurations that list it.
fn installer_is_member(sim: &Sim, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for (k, inc) in sim.app.incarnations.iter().enumerate() {
        let me = simnet::node_id(inc.node);
        for (_, id, members) in installs(inc) {
            if !members.contains(&me) {
                errs.push(format!(
                    "{} installed {:?} without itself: {:?}",
                    name(sim, k),
                    id,
                    members
                ));
            }
        }
    }
    errs
}

/// Transitional configurations: the members of a transitional
/// configuration are within the regular configuration it ends and within
/// the regular configuration that follows it.
fn transitional_within_regular(sim: &Sim, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for (k, inc) in sim.app.incarnations.iter().enumerate() {
        let mut prev_reg: Option<&Vec<u32>> = None;
        let mut pending_trans: Option<&Vec<u32>> = None;
        for rec in &inc.log {
            match rec {
                Rec::Trans { members, .. } => {
                    if let Some(p) = prev_reg {
                        if members.iter().any(|m| !p.contains(m)) {
                            errs.push(format!(
                                "{}: transitional {:?} not within {:?}",
                                name(sim, k),
                                members,
                                p
                            ));
                        }
                    }
                    pending_trans = Some(members);
                }
                Rec::Reg { members, .. } => {
                    if let Some(t) = pending_trans.take() {
                        if t.iter().any(|m| !members.contains(m)) {
                            errs.push(format!(
                                "{}: transitional {:?} not within next {:?}",
                                name(sim, k),
                                t,
                                members
                            ));
                        }
                    }
                    prev_reg = Some(members);
                }
                _ => {}
            }
        }
    }
    errs
}

/// No duplication: a daemon delivers each message at most once.
fn no_duplicates(sim: &Sim, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for (k, inc) in sim.app.incarnations.iter().enumerate() {
        let mut seen = HashSet::new();
        for rec in &inc.log {
            if let Rec::Deliver { id, .. } = rec {
                if !seen.insert(*id) {
                    errs.push(format!("{} delivered {:?} twice", name(sim, k), id));
                }
            }
        }
    }
    errs
}

/// Integrity: every delivery is a message some daemon submitted, byte for
/// byte.
fn payloads_intact(sim: &Sim, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for (k, inc) in sim.app.incarnations.iter().enumerate() {
        for rec in &inc.log {
            if matches!(rec, Rec::Garbage) {
                errs.push(format!("{} delivered corrupted bytes", name(sim, k)));
            }
        }
    }
    errs
}

/// FIFO order: within one configuration (regular and transitional part) a
/// daemon delivers each sender's ordered messages in the order sent,
/// without gaps.
fn fifo_without_gaps(sim: &Sim, h: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for (k, spans) in h.spans.iter().enumerate() {
        for sp in spans {
            let mut last: HashMap<(u32, u32), u32> = HashMap::new();
            for m in ordered(&sp.reg_msgs).into_iter().chain(ordered(&sp.trans_msgs)) {
                if let Some(prev) = last.insert((m.origin, m.incarnation), m.counter) {
                    if m.counter != prev + 1 {
                        errs.push(format!(
                            "{} in {:?}: from d{}#{} message {} after {}",
                            name(sim, k),
                            sp.reg,
                            m.origin + 1,
                            m.incarnation,
                            m.counter,
                            prev
                        ));
                    }
                }
            }
        }
    }
    errs
}

fn only_in(a: &HashSet<MsgId>, b: &HashSet<MsgId>) -> Vec<MsgId> {
    let mut v: Vec<MsgId> = a.difference(b).copied().collect();
    v.sort();
    v
}

/// Virtual synchrony: daemons that move together from a regular
/// configuration to the same transitional configuration delivered the same
/// set of ordered messages in the regular configuration.
fn virtual_synchrony(sim: &Sim, h: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for (a, b, sa, sb) in h.moved_together() {
        let xa: HashSet<MsgId> = ordered(&sa.reg_msgs).into_iter().collect();
        let xb: HashSet<MsgId> = ordered(&sb.reg_msgs).into_iter().collect();
        if xa != xb {
            errs.push(format!(
                "{} and {} went from {:?} to {:?} with different ordered messages: {} vs {}; \
                 only first: {:?}, only second: {:?}",
                name(sim, a),
                name(sim, b),
                sa.reg,
                sa.trans,
                xa.len(),
                xb.len(),
                only_in(&xa, &xb),
                only_in(&xb, &xa),
            ));
        }
    }
    errs
}

/// Transitional delivery: daemons that move together from a regular
/// configuration through the same transitional configuration to the same
/// next regular one delivered the same set of ordered messages in the two
/// old configurations together.
fn transitional_delivery(sim: &Sim, h: &History) -> Vec<String> {
    let mut errs = Vec::new();
    let all = |s: &Span| -> HashSet<MsgId> {
        ordered(&s.reg_msgs)
            .into_iter()
            .chain(ordered(&s.trans_msgs))
            .collect()
    };
    for (a, b, sa, sb) in h.moved_together() {
        if sa.next.is_none() || sa.next != sb.next {
            continue;
        }
        let (xa, xb) = (all(sa), all(sb));
        if xa != xb {
            errs.push(format!(
                "{} and {} delivered differently in {:?} and transitional {:?}: {}+{} vs {}+{}; \
                 only first: {:?}, only second: {:?}",
                name(sim, a),
                name(sim, b),
                sa.reg,
                sa.trans,
                sa.reg_msgs.len(),
                sa.trans_msgs.len(),
                sb.reg_msgs.len(),
                sb.trans_msgs.len(),
                only_in(&xa, &xb),
                only_in(&xb, &xa),
            ));
        }
    }
    errs
}

/// AGREED total order: the ordered messages (FIFO, AGREED, SAFE) that two
/// daemons both delivered are in the same relative order at both.
fn agreed_total_order(sim: &Sim, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    let incs = &sim.app.incarnations;
    let order_lists: Vec<Vec<MsgId>> = incs
        .iter()
        .map(|inc| {
            inc.log
                .iter()
                .filter_map(|r| match r {
                    Rec::Deliver { id, ptype, .. } if *ptype != PacketType::Reliable => Some(*id),
                    _ => None,
                })
                .collect()
        })
        .collect();
    for a in 0..incs.len() {
        let pos: HashMap<MsgId, usize> = order_lists[a].iter().enumerate().map(|(i, m)| (*m, i)).collect();
        for (b, list) in order_lists.iter().enumerate().skip(a + 1) {
            let mut last = None;
            for m in list {
                if let Some(p) = pos.get(m) {
                    if last.is_some_and(|l| *p < l) {
                        errs.push(format!(
                            "{} and {} disagree on the order of {:?}",
                            name(sim, a),
                            name(sim, b),
                            m
                        ));
                        break;
                    }
                    last = Some(*p);
                }
            }
        }
    }
    errs
}

/// SAFE stability: a SAFE message delivered in a regular configuration is
/// delivered by every member that installed that configuration and kept
/// running.
fn safe_stability(sim: &Sim, h: &History) -> Vec<String> {
    let mut errs = Vec::new();
    let incs = &sim.app.incarnations;
    for (a, spa) in h.spans.iter().enumerate() {
        for sp in spa {
            let Some(reg) = sp.reg else { continue };
            for (m, p) in &sp.reg_msgs {
                if *p != PacketType::Safe {
                    continue;
                }
                for (b, spb) in h.spans.iter().enumerate() {
                    if b == a || !incs[b].alive || !spb.iter().any(|s| s.reg == Some(reg)) {
                        continue;
                    }
                    if !h.delivered[b].contains(m) {
                        errs.push(format!(
                            "SAFE {:?} delivered by {} in {:?} never reached {}",
                            m,
                            name(sim, a),
                            reg,
                            name(sim, b)
                        ));
                    }
                }
            }
        }
    }
    errs
}

/// Self delivery: a daemon that keeps running delivers every message it
/// submitted.
fn self_delivery(sim: &Sim, h: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for (k, inc) in sim.app.incarnations.iter().enumerate() {
        if !inc.alive {
            continue;
        }
        let missing: Vec<&MsgId> = inc
            .submitted
            .iter()
            .filter(|m| !h.delivered[k].contains(m))
            .collect();
        if !missing.is_empty() {
            errs.push(format!(
                "{} never delivered {} of its own messages, e.g. {:?}",
                name(sim, k),
                missing.len(),
                missing[0]
            ));
        }
    }
    errs
}

/// Liveness: once the network heals and goes quiet, every running daemon
/// is operational in one ring of all running daemons.
fn one_ring_at_the_end(sim: &Sim, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    let up: Vec<usize> = (0..sim.n).filter(|i| sim.is_up(*i)).collect();
    let want: Vec<u32> = up.iter().map(|i| simnet::node_id(*i)).collect();
    for i in &up {
        let e = sim.engine(*i).expect("running");
        let (id, members) = e.membership();
        if !e.is_operational() || members != want.as_slice() {
            errs.push(format!(
                "at the end d{} is {} in {:?} with {:?}, expected all of {:?}",
                i + 1,
                if e.is_operational() {
                    "operational"
                } else {
                    "not operational"
                },
                id,
                members,
                want
            ));
        }
    }
    errs
}
