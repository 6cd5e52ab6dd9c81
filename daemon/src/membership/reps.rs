//! Representatives and their order: `Insert_rep`, `Smallest_rep`,
//! `Sort_reps` and the smallest member, functions of the configuration only
//! (the membership algorithm's pure part).

use crate::ring_conf::{ip, Conf, Members};
use spread_wire::daemon::{self as wire, rep_kind, Rep};

/// `Insert_rep`: adds or upgrades a representative, one per segment for
/// potential ones.
pub(crate) fn insert_rep(conf: &Conf, reps: &mut Vec<Rep>, rep: Rep) -> bool {
    let Some(pos) = conf.pos(rep.proc_id) else {
        return false;
    };
    let seg = pos.seg as i16;
    match rep.kind {
        rep_kind::POTENTIAL => {
            if reps.iter().any(|r| r.seg_index == seg) {
                return false;
            }
        }
        rep_kind::SEG => {
            for r in reps.iter_mut().filter(|r| r.seg_index == seg) {
                if r.kind == rep_kind::POTENTIAL {
                    r.kind = rep_kind::SEG;
                    r.proc_id = rep.proc_id;
                    return true;
                } else if r.kind == rep_kind::SEG && r.proc_id == rep.proc_id {
                    return false;
                } else if r.kind == rep_kind::RING && r.proc_id == rep.proc_id {
                    r.kind = rep_kind::SEG;
                    return true;
                }
            }
        }
        rep_kind::RING => {
            for r in reps.iter_mut().filter(|r| r.seg_index == seg) {
                if r.kind == rep_kind::POTENTIAL {
                    r.kind = rep_kind::RING;
                    r.proc_id = rep.proc_id;
                    return true;
                } else if r.kind == rep_kind::SEG && r.proc_id == rep.proc_id {
                    r.kind = rep_kind::RING;
                    return true;
                } else if r.kind == rep_kind::RING && r.proc_id == rep.proc_id {
                    return false;
                }
            }
        }
        _ => return false,
    }
    if reps.len() >= wire::MAX_REPS {
        log::warn!(
            "membership: too many representatives; ignoring {}",
            ip(rep.proc_id)
        );
        return false;
    }
    reps.push(rep);
    true
}

/// The daemon first in configuration order.
pub(crate) fn smallest_member(conf: &Conf, ids: &[u32]) -> Option<u32> {
    ids.iter()
        .copied()
        .filter(|id| conf.knows(*id))
        .min_by_key(|id| conf.pos(*id).map(|p| p.rank))
}

/// `Smallest_rep`: segment representatives before ring representatives,
/// then by segment, then ring reps by position in segment. Returns the id
/// and its index.
pub(crate) fn smallest_rep(conf: &Conf, reps: &[Rep]) -> Option<(u32, usize)> {
    let mut cur = 0;
    let first = reps.first()?;
    let _ = first;
    for i in 1..reps.len() {
        let (c, r) = (reps[cur], reps[i]);
        if c.kind == rep_kind::SEG {
            if r.kind == rep_kind::SEG && r.seg_index < c.seg_index {
                cur = i;
            }
        } else if c.kind == rep_kind::RING {
            if r.kind == rep_kind::RING {
                let in_seg = |id: u32| conf.pos(id).map(|p| p.in_seg).unwrap_or(usize::MAX);
                if r.seg_index < c.seg_index
                    || (r.seg_index == c.seg_index && in_seg(r.proc_id) < in_seg(c.proc_id))
                {
                    cur = i;
                }
            } else if r.kind == rep_kind::SEG {
                cur = i;
            }
        }
    }
    Some((reps[cur].proc_id, cur))
}

/// `Sort_reps`: repeated smallest with swap-remove, like the original, so
/// ties end up in the same order.
pub(crate) fn sort_reps(conf: &Conf, reps: &mut Vec<Rep>) {
    let mut tmp = reps.clone();
    let mut out = Vec::with_capacity(tmp.len());
    while let Some((_, i)) = smallest_rep(conf, &tmp) {
        out.push(tmp.swap_remove(i));
    }
    *reps = out;
}

/// Representatives of the other segments to probe after losing `ring`:
/// per segment but `my_seg`, the ring's first daemon there, else the
/// segment's first configured daemon.
pub(crate) fn potential_from_ring(conf: &Conf, my_seg: usize, ring: &Members) -> Vec<Rep> {
    let mut reps = Vec::new();
    for seg in 0..conf.segments.len() {
        if seg == my_seg {
            continue;
        }
        let Some(id) = ring.first_in_segment(conf, seg).or_else(|| conf.seg_leader(seg)) else {
            continue;
        };
        insert_rep(
            conf,
            &mut reps,
            Rep {
                proc_id: id,
                kind: rep_kind::POTENTIAL,
                seg_index: seg as i16,
            },
        );
    }
    reps
}

/// The representatives of `reps` outside `my_seg`, as potential ones (to
/// probe again if a FORM attempt fails).
pub(crate) fn potential_from_reps(conf: &Conf, my_seg: usize, reps: &[Rep]) -> Vec<Rep> {
    let mut out = Vec::new();
    for r in reps {
        if r.seg_index != my_seg as i16 {
            insert_rep(
                conf,
                &mut out,
                Rep {
                    kind: rep_kind::POTENTIAL,
                    ..*r
                },
            );
        }
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ring_conf::SegmentConf;

    /// Segment 0: d1..d3 (ids 1..3); segment 1: ids 11 and 12 (the
    /// membership tests use it too).
    pub(in crate::membership) fn conf() -> Conf {
        Conf::new(vec![
            SegmentConf {
                bcast: 0xff,
                port: 4803,
                daemons: vec![1, 2, 3],
            },
            SegmentConf {
                bcast: 0x1ff,
                port: 4803,
                daemons: vec![11, 12],
            },
        ])
    }

    fn rep(proc_id: u32, kind: i16, seg_index: i16) -> Rep {
        Rep {
            proc_id,
            kind,
            seg_index,
        }
    }

    #[test]
    fn one_potential_rep_per_segment_and_upgrades_in_place() {
        let c = conf();
        let mut reps = Vec::new();
        assert!(insert_rep(&c, &mut reps, rep(11, rep_kind::POTENTIAL, 1)));
        assert!(!insert_rep(&c, &mut reps, rep(12, rep_kind::POTENTIAL, 1)));
        // A segment representative replaces the potential one of its segment.
        assert!(insert_rep(&c, &mut reps, rep(12, rep_kind::SEG, 1)));
        assert_eq!(reps, [rep(12, rep_kind::SEG, 1)]);
        assert!(!insert_rep(&c, &mut reps, rep(12, rep_kind::SEG, 1)));
        // The same daemon as a ring representative: upgraded, not added.
        assert!(insert_rep(&c, &mut reps, rep(12, rep_kind::RING, 1)));
        assert_eq!(reps, [rep(12, rep_kind::RING, 1)]);
        // Unknown daemons and kinds are refused.
        assert!(!insert_rep(&c, &mut reps, rep(99, rep_kind::SEG, 0)));
        assert!(!insert_rep(&c, &mut reps, rep(2, 77, 0)));
        assert_eq!(reps.len(), 1);
    }

    #[test]
    fn segment_reps_come_before_ring_reps_then_by_segment_and_place() {
        let c = conf();
        let mut reps = vec![
            rep(12, rep_kind::RING, 1),
            rep(3, rep_kind::RING, 0),
            rep(11, rep_kind::SEG, 1),
            rep(2, rep_kind::RING, 0),
        ];
        assert_eq!(smallest_rep(&c, &reps), Some((11, 2)));
        sort_reps(&c, &mut reps);
        let order: Vec<u32> = reps.iter().map(|r| r.proc_id).collect();
        assert_eq!(order, [11, 2, 3, 12]);
        assert_eq!(smallest_rep(&c, &[]), None);
    }

    #[test]
    fn the_smallest_member_is_first_in_configuration_order() {
        let c = conf();
        assert_eq!(smallest_member(&c, &[12, 3, 2]), Some(2));
        assert_eq!(smallest_member(&c, &[99, 11]), Some(11));
        assert_eq!(smallest_member(&c, &[99]), None);
    }

    #[test]
    fn potential_reps_are_one_per_other_segment() {
        let c = conf();
        // A ring of d2 and d12: segment 1's rep is the ring's d12, not d11.
        let ring = c.ordered([2, 12]);
        let reps = potential_from_ring(&c, 0, &ring);
        assert_eq!(reps, [rep(12, rep_kind::POTENTIAL, 1)]);
        // A ring without segment 1: its first configured daemon.
        let reps = potential_from_ring(&c, 0, &c.ordered([2]));
        assert_eq!(reps, [rep(11, rep_kind::POTENTIAL, 1)]);
        // From segment 1, segment 0's rep.
        let reps = potential_from_ring(&c, 1, &ring);
        assert_eq!(reps, [rep(2, rep_kind::POTENTIAL, 0)]);

        let gathered = [
            rep(1, rep_kind::SEG, 0),
            rep(12, rep_kind::RING, 1),
            rep(11, rep_kind::SEG, 1),
        ];
        // Mine dropped, segment 1's kept once and made potential.
        assert_eq!(
            potential_from_reps(&c, 0, &gathered),
            [rep(12, rep_kind::POTENTIAL, 1)]
        );
    }
}
