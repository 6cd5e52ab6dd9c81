//! The packet store: the data packets a daemon holds until they are stable
//! everywhere, and the ring's marks in that sequence (`Aru`, `My_aru`,
//! `Highest_seq`, last discarded and delivered). The ring protocol fills and
//! drains it; the membership algorithm only asks it for holes, makes it adopt
//! a ring's agreed aru and highest sequence, and backs a failed attempt off.

//!
//! A leaf: it knows packets and sequence numbers, not who sends them.

use std::collections::BTreeMap;

use spread_wire::daemon::{Fragment, PacketHeader};

/// Packets the original can hold between its last discarded one and the
/// newest (`MAX_PACKETS_IN_STRUCT`); anything further ahead is garbage.
pub(crate) const MAX_PACKETS_AHEAD: i32 = 8192;

/// A data packet the daemon holds until it is stable everywhere.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub header: PacketHeader,
    pub frags: Vec<Fragment>,
    pub delivered: bool,
}

#[derive(Clone, Debug)]
pub(crate) enum Slot {
    Packet(Stored),
    /// A packet the new membership agreed nobody will get.
    Hole,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct PacketStore {
    pub packets: BTreeMap<i32, Slot>,
    /// Everyone has every packet up to here (`Aru`).
    pub aru: i32,
    /// I have every packet up to here (`My_aru`).
    pub my_aru: i32,
    pub highest_seq: i32,
    pub last_discarded: i32,
    pub last_delivered: i32,
}

impl PacketStore {
    pub fn has(&self, seq: i32) -> bool {
        self.packets.contains_key(&seq)
    }

    /// Sequence numbers from `from` up to the highest one seen that this
    /// daemon does not hold.
    pub fn holes_from(&self, from: i32) -> Vec<i32> {
        self.holes_in(from, self.highest_seq)
    }

    /// Sequence numbers in `from..=to` this daemon does not hold.
    pub fn holes_in(&self, from: i32, to: i32) -> Vec<i32> {
        if from > to {
            return Vec::new();
        }
        (from..=to).filter(|s| !self.has(*s)).collect()
    }

    /// Raises my aru over the packets that arrived in order.
    pub fn advance_my_aru(&mut self) {
        while self.my_aru < self.highest_seq && self.has(self.my_aru + 1) {
            self.my_aru += 1;
        }
    }

    /// Takes on the aru and highest sequence the new ring agreed for my old
    /// ring (bounded like the original's store: a sane ring has
    /// last_discarded <= aru <= highest_seq).
    pub fn adopt(&mut self, aru: i32, highest_seq: i32) {
        let ahead = self.last_discarded.saturating_add(MAX_PACKETS_AHEAD);
        self.highest_seq = highest_seq.clamp(self.last_discarded, ahead);
        self.aru = aru.clamp(self.last_discarded, self.highest_seq);
    }

    /// Marks the packets the new ring agreed nobody will get; returns the
    /// (sequence, sender) of packets that arrived anyway and are dropped.
    pub fn mark_holes(&mut self, holes: &[i32]) -> Vec<(i32, u32)> {
        let mut dropped = Vec::new();
        for &hole in holes {
            if let Some(Slot::Packet(p)) = self.packets.get(&hole) {
                dropped.push((hole, p.header.proc_id));
            }
            self.packets.insert(hole, Slot::Hole);
        }
        dropped
    }

    /// `Backoff_membership`: a failed EVS attempt forgets its agreed holes.
    pub fn back_off(&mut self) {
        let holes: Vec<i32> = self
            .packets
            .range(self.last_discarded.saturating_add(1)..)
            .filter(|(_, s)| matches!(s, Slot::Hole))
            .map(|(k, _)| *k)
            .collect();
        for k in holes {
            self.packets.remove(&k);
        }
        self.aru = self.last_discarded;
        self.my_aru = self.last_discarded;
        self.advance_my_aru();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(seqs: &[i32]) -> PacketStore {
        let mut s = PacketStore::default();
        for &seq in seqs {
            let header = PacketHeader {
                seq,
                proc_id: 7,
                ..Default::default()
            };
            s.packets.insert(
                seq,
                Slot::Packet(Stored {
                    header,
                    frags: Vec::new(),
                    delivered: false,
                }),
            );
            s.highest_seq = s.highest_seq.max(seq);
        }
        s
    }

    #[test]
    fn holes_and_my_aru() {
        let mut s = store_with(&[1, 2, 4, 6]);
        assert_eq!(s.holes_from(1), [3, 5]);
        assert_eq!(s.holes_in(5, 8), [5, 7, 8]);
        assert!(s.holes_in(9, 8).is_empty());
        s.advance_my_aru();
        assert_eq!(s.my_aru, 2);
    }

    #[test]
    fn adopt_is_bounded_and_back_off_forgets_agreed_holes() {
        let mut s = store_with(&[1, 2, 4]);
        s.last_discarded = 1;
        s.adopt(i32::MAX, i32::MAX);
        assert_eq!(s.highest_seq, 1 + MAX_PACKETS_AHEAD);
        assert_eq!(s.aru, s.highest_seq);
        s.adopt(-5, 3);
        assert_eq!((s.aru, s.highest_seq), (1, 3));
        // 3 is agreed lost; 4 came from a departing daemon and goes too.
        assert_eq!(s.mark_holes(&[3, 4]), [(4, 7)]);
        assert!(matches!(s.packets.get(&3), Some(Slot::Hole)));
        s.back_off();
        assert!(!s.has(3) && !s.has(4));
        assert_eq!((s.aru, s.my_aru), (1, 2));
    }
}
