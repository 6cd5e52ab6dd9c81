//! The static daemon configuration as the engines see it, sets of daemons
//! kept in configuration order (which is also ring order), and where a
//! datagram goes in its terms.
//!
//! A leaf: the ring and membership both use it; it uses neither.

use std::collections::HashMap;

use crate::configuration::MembershipTimeouts;

/// One `Spread_Segment`: its broadcast address, port and daemons in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentConf {
    /// Broadcast (or multicast) address as a host-order IPv4 integer.
    pub bcast: u32,
    /// Data port; tokens use `port + 1`.
    pub port: u16,
    /// Daemon ids (host-order IPv4) in configuration order.
    pub daemons: Vec<u32>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct ProcPos {
    pub seg: usize,
    pub in_seg: usize,
    /// Position in the whole configuration (segment by segment).
    pub rank: usize,
}

/// Lookup tables over the configured daemons.
#[derive(Clone, Debug)]
pub(crate) struct Conf {
    pub segments: Vec<SegmentConf>,
    pos: HashMap<u32, ProcPos>,
}

impl Conf {
    pub fn new(segments: Vec<SegmentConf>) -> Conf {
        let mut pos = HashMap::new();
        let mut rank = 0;
        for (seg, s) in segments.iter().enumerate() {
            for (in_seg, id) in s.daemons.iter().enumerate() {
                pos.entry(*id).or_insert(ProcPos { seg, in_seg, rank });
                rank += 1;
            }
        }
        Conf { segments, pos }
    }

    pub fn pos(&self, id: u32) -> Option<ProcPos> {
        self.pos.get(&id).copied()
    }

    pub fn knows(&self, id: u32) -> bool {
        self.pos.contains_key(&id)
    }

    /// First configured daemon of segment `seg`.
    pub fn seg_leader(&self, seg: usize) -> Option<u32> {
        self.segments.get(seg).and_then(|s| s.daemons.first().copied())
    }

    /// A set of known ids sorted into configuration order, unknown ids dropped.
    pub fn ordered(&self, ids: impl IntoIterator<Item = u32>) -> Members {
        let mut v: Vec<u32> = ids.into_iter().filter(|id| self.knows(*id)).collect();
        v.sort_by_key(|id| self.pos[id].rank);
        v.dedup();
        Members(v)
    }

    /// Whether segments differ in their first two address bytes.
    pub fn wide_area(&self) -> bool {
        let firsts: Vec<u32> = self
            .segments
            .iter()
            .filter_map(|s| s.daemons.first())
            .map(|id| id & 0xffff_0000)
            .collect();
        firsts.windows(2).any(|w| w[0] != w[1])
    }
}

/// A set of daemons in configuration order: a ring membership.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Members(pub(crate) Vec<u32>);

impl Members {
    pub fn ids(&self) -> &[u32] {
        &self.0
    }
    pub fn contains(&self, id: u32) -> bool {
        self.0.contains(&id)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn leader(&self) -> Option<u32> {
        self.0.first().copied()
    }
    pub fn last(&self) -> Option<u32> {
        self.0.last().copied()
    }
    /// The member after `id` in ring order (wrapping).
    pub fn next_of(&self, id: u32) -> Option<u32> {
        let i = self.0.iter().position(|x| *x == id)?;
        Some(self.0[(i + 1) % self.0.len()])
    }
    /// The member before `id` in ring order (wrapping).
    pub fn previous_of(&self, id: u32) -> Option<u32> {
        let i = self.0.iter().position(|x| *x == id)?;
        Some(self.0[(i + self.0.len() - 1) % self.0.len()])
    }
    /// First member of segment `seg` in this set.
    pub(crate) fn first_in_segment(&self, conf: &Conf, seg: usize) -> Option<u32> {
        self.0
            .iter()
            .copied()
            .find(|id| conf.pos(*id).map(|p| p.seg) == Some(seg))
    }
}

/// Which port of a daemon a datagram is for (or arrived on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The segment port: data, ALIVE/JOIN/REFER/HURRY.
    Data,
    /// Segment port + 1: tokens.
    Token,
}

/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Destination {
    /// Broadcast to segment `index`'s address on its data port.
    Segment(usize),
    /// Unicast to a daemon's data or token port.
    Daemon { id: u32, channel: Channel },
}

/// A datagram the shell must send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: Destination,
    pub bytes: Vec<u8>,
}

/// This daemon in its configuration: what the ring and the membership
/// algorithm both read; only a reload replaces it.
#[derive(Clone, Debug)]
pub(crate) struct Site {
    /// This daemon's id (its IPv4 address as a host-order integer).
    pub my_id: u32,
    /// The segment this daemon is in.
    pub my_seg: usize,
    pub conf: Conf,
    /// Hash of the configuration; traffic with another value is dropped.
    pub conf_hash: u32,
    pub timeouts: MembershipTimeouts,
}

impl Site {
    pub fn new(my_id: u32, conf: Conf, conf_hash: u32, timeouts: MembershipTimeouts) -> Site {
        let my_seg = conf.pos(my_id).map(|p| p.seg).unwrap_or(0);
        Site {
            my_id,
            my_seg,
            conf,
            conf_hash,
            timeouts,
        }
    }

    /// The segment of daemon `id`.
    pub fn seg_of(&self, id: u32) -> Option<usize> {
        self.conf.pos(id).map(|p| p.seg)
    }

    /// Whether my segment has anyone else configured to hear broadcasts.
    pub fn bcast_needed(&self) -> bool {
        self.conf
            .segments
            .get(self.my_seg)
            .map(|s| s.daemons.len() > 1)
            .unwrap_or(false)
    }
}

/// Dotted form of a daemon id for logs.
pub(crate) fn ip(id: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(id)
}
