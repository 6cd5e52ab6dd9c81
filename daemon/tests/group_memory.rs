//! Heap bytes the group table holds per group, counted by a global
//! allocator: one member in many groups (the benchmark's `d` figure) and
//! many members in one group. The bounds are about half the original's
//! +9.2 MB per 10,000 groups, so a regression to a fat representation fails.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use spread_daemon::groups::{Groups, Member};
use spread_wire::client::{GroupName, MembId};

/// Bytes in use, each allocation rounded as glibc's malloc rounds a chunk
/// (size + 8, to 16, at least 32), so the figure tracks RSS.
static IN_USE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

fn chunk(size: usize) -> isize {
    (size + 8).div_ceil(16).max(2) as isize * 16
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        IN_USE.fetch_add(chunk(layout.size()), Ordering::Relaxed);
        // SAFETY: same layout as asked.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(chunk(layout.size()), Ordering::Relaxed);
        // SAFETY: ptr came from alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        IN_USE.fetch_add(chunk(new_size) - chunk(layout.size()), Ordering::Relaxed);
        // SAFETY: ptr came from alloc with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn name(s: &str) -> GroupName {
    GroupName::new(s.as_bytes()).unwrap()
}

fn table() -> Groups {
    Groups::new(vec![1], 0, MembId { proc_id: 1, time: 1 })
}

/// Bytes per group of one member in `n` groups named as spbench names them.
fn bytes_per_group(n: usize) -> f64 {
    let before = IN_USE.load(Ordering::Relaxed);
    let mut groups = table();
    let me = Member {
        daemon_rank: 0,
        name: name("#sc#d1"),
    };
    for i in 0..n {
        drop(groups.join(name(&format!("sg{i:06}")), me));
    }
    let used = IN_USE.load(Ordering::Relaxed) - before;
    assert_eq!(groups.len(), n);
    drop(groups);
    used as f64 / n as f64
}

#[test]
fn one_member_in_many_groups() {
    for n in [10_000, 100_000] {
        let per = bytes_per_group(n);
        println!("{n} groups: {per:.0} B per group");
        assert!(per <= 400.0, "{n} groups: {per:.0} B per group");
    }
}
