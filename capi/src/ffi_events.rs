//! The event loop of `sp_events.h`: timers and descriptor callbacks.
//!
//! One loop per process, as in the original. Callbacks run without any lock
//! held, so they may queue, attach, detach or exit freely. The only
//! `unsafe` here is the `poll(2)` call.

#![allow(non_camel_case_types)]

use std::ffi::{c_int, c_long, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A time or duration (`sp_time`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct sp_time {
    pub sec: c_long,
    pub usec: c_long,
}

pub const NUM_PRIORITY: usize = 3;
pub const LOW_PRIORITY: c_int = 0;
pub const NUM_FDTYPES: usize = 3;
pub const READ_FD: c_int = 0;
pub const WRITE_FD: c_int = 1;
pub const EXCEPT_FD: c_int = 2;
pub const MAX_FD_EVENTS: usize = 2000;

/// A timer callback.
pub type time_func = Option<extern "C" fn(c_int, *mut c_void)>;
/// A descriptor callback: `(fd, code, data)`.
pub type fd_func = Option<extern "C" fn(c_int, c_int, *mut c_void)>;

/// The longest the loop sleeps with nothing to do.
const LONG_TIMEOUT: Duration = Duration::from_secs(10000);

#[derive(Clone, Copy)]
struct Timer {
    at: Duration,
    func: extern "C" fn(c_int, *mut c_void),
    code: c_int,
    /// The program's pointer, kept as an address.
    data: usize,
}

impl Timer {
    fn same(&self, func: extern "C" fn(c_int, *mut c_void), code: c_int, data: usize) -> bool {
        self.func as usize == func as usize && self.code == code && self.data == data
    }
}

#[derive(Clone, Copy)]
struct FdEvent {
    fd: c_int,
    fd_type: c_int,
    func: extern "C" fn(c_int, c_int, *mut c_void),
    code: c_int,
    data: usize,
    active: bool,
}

#[derive(Default)]
struct Loop {
    /// Pending timers, earliest first (equal times keep their queue order).
    timers: Vec<Timer>,
    fds: [Vec<FdEvent>; NUM_PRIORITY],
    threshold: usize,
    round_robin: usize,
}

static EXIT: AtomicBool = AtomicBool::new(false);

fn state() -> MutexGuard<'static, Loop> {
    static LOOP: OnceLock<Mutex<Loop>> = OnceLock::new();
    LOOP.get_or_init(|| Mutex::new(Loop::default()))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Monotonic time since the library first looked at the clock.
fn monotonic() -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

fn duration_of(t: sp_time) -> Duration {
    let micros = i128::from(t.sec) * 1_000_000 + i128::from(t.usec);
    Duration::from_micros(micros.clamp(0, u64::MAX as i128) as u64)
}

fn fd_type_ok(fd_type: c_int) -> bool {
    (0..NUM_FDTYPES as c_int).contains(&fd_type)
}

/// Reset the loop: no timers, no descriptors, threshold LOW. Returns 0.
#[no_mangle]
pub extern "C" fn E_init() -> c_int {
    *state() = Loop::default();
    EXIT.store(false, Ordering::SeqCst);
    monotonic();
    0
}

/// Wall-clock time now.
#[no_mangle]
pub extern "C" fn E_get_time() -> sp_time {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    sp_time {
        sec: now.as_secs() as c_long,
        usec: now.subsec_micros() as c_long,
    }
}

/// `t - delta_t`.
#[no_mangle]
pub extern "C" fn E_sub_time(t: sp_time, delta_t: sp_time) -> sp_time {
    let mut r = sp_time {
        sec: t.sec - delta_t.sec,
        usec: t.usec - delta_t.usec,
    };
    if r.usec < 0 {
        r.usec += 1_000_000;
        r.sec -= 1;
    }
    r
}

/// `t + delta_t`.
#[no_mangle]
pub extern "C" fn E_add_time(t: sp_time, delta_t: sp_time) -> sp_time {
    let mut r = sp_time {
        sec: t.sec + delta_t.sec,
        usec: t.usec + delta_t.usec,
    };
    if r.usec > 1_000_000 {
        r.usec -= 1_000_000;
        r.sec += 1;
    }
    r
}

/// 1 if `t1` is later than `t2`, -1 if earlier, 0 if equal.
#[no_mangle]
pub extern "C" fn E_compare_time(t1: sp_time, t2: sp_time) -> c_int {
    match (t1.sec, t1.usec).cmp(&(t2.sec, t2.usec)) {
        std::cmp::Ordering::Greater => 1,
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
    }
}

/// Call `func(code, data)` once, `delta_time` from now. An entry with the
/// same function, code and data is replaced. Returns 0 (-1 if `func` is NULL).
#[no_mangle]
pub extern "C" fn E_queue(func: time_func, code: c_int, data: *mut c_void, delta_time: sp_time) -> c_int {
    let Some(func) = func else { return -1 };
    let data = data as usize;
    let at = monotonic() + duration_of(delta_time);
    let mut s = state();
    s.timers.retain(|t| !t.same(func, code, data));
    let pos = s.timers.partition_point(|t| t.at <= at);
    s.timers.insert(pos, Timer { at, func, code, data });
    0
}

/// Cancel a pending timer. 0 if one was removed, -1 if none matched.
#[no_mangle]
pub extern "C" fn E_dequeue(func: time_func, code: c_int, data: *mut c_void) -> c_int {
    let Some(func) = func else { return -1 };
    let mut s = state();
    match s.timers.iter().position(|t| t.same(func, code, data as usize)) {
        Some(i) => {
            s.timers.remove(i);
            0
        }
        None => -1,
    }
}

/// 1 if a timer with this function, code and data is pending, else 0.
/// (Exported by the original, not declared in `sp_events.h`.)
#[no_mangle]
pub extern "C" fn E_in_queue(func: time_func, code: c_int, data: *mut c_void) -> c_int {
    let Some(func) = func else { return 0 };
    c_int::from(state().timers.iter().any(|t| t.same(func, code, data as usize)))
}

/// Sleep for `t`.
#[no_mangle]
pub extern "C" fn E_delay(t: sp_time) {
    std::thread::sleep(duration_of(t));
}

/// Watch `fd` for `fd_type` readiness and call `func(fd, code, data)`.
/// 0 when added, 1 when an existing entry was replaced, -1 on bad arguments.
#[no_mangle]
pub extern "C" fn E_attach_fd(
    fd: c_int,
    fd_type: c_int,
    func: fd_func,
    code: c_int,
    data: *mut c_void,
    priority: c_int,
) -> c_int {
    let Some(func) = func else { return -1 };
    if !(0..NUM_PRIORITY as c_int).contains(&priority) || !fd_type_ok(fd_type) || fd < 0 {
        return -1;
    }
    let mut s = state();
    let q = &mut s.fds[priority as usize];
    if let Some(e) = q.iter_mut().find(|e| e.fd == fd && e.fd_type == fd_type) {
        e.func = func;
        e.code = code;
        e.data = data as usize;
        e.active = true;
        return 1;
    }
    if q.len() >= MAX_FD_EVENTS {
        return -1;
    }
    q.push(FdEvent {
        fd,
        fd_type,
        func,
        code,
        data: data as usize,
        active: true,
    });
    0
}

/// Stop watching `fd` for `fd_type`. 0, or -1 if it was not watched.
#[no_mangle]
pub extern "C" fn E_detach_fd(fd: c_int, fd_type: c_int) -> c_int {
    if !fd_type_ok(fd_type) {
        return -1;
    }
    let mut s = state();
    let mut found = false;
    for q in s.fds.iter_mut() {
        if let Some(i) = q.iter().position(|e| e.fd == fd && e.fd_type == fd_type) {
            q.swap_remove(i);
            found = true;
        }
    }
    if found {
        0
    } else {
        -1
    }
}

/// Stop watching `fd` for `fd_type` at one priority. 0, or -1 if it was not.
/// (Exported by the original, not declared in `sp_events.h`.)
#[no_mangle]
pub extern "C" fn E_detach_fd_priority(fd: c_int, fd_type: c_int, priority: c_int) -> c_int {
    if !fd_type_ok(fd_type) || !(0..NUM_PRIORITY as c_int).contains(&priority) {
        return -1;
    }
    let mut s = state();
    let q = &mut s.fds[priority as usize];
    match q.iter().position(|e| e.fd == fd && e.fd_type == fd_type) {
        Some(i) => {
            q.swap_remove(i);
            0
        }
        None => -1,
    }
}

fn set_active(fd: c_int, fd_type: c_int, active: bool) -> c_int {
    if !fd_type_ok(fd_type) {
        return -1;
    }
    let mut s = state();
    let mut found = false;
    for q in s.fds.iter_mut() {
        if let Some(e) = q.iter_mut().find(|e| e.fd == fd && e.fd_type == fd_type) {
            e.active = active;
            found = true;
        }
    }
    if found {
        0
    } else {
        -1
    }
}

/// Resume watching an attached descriptor. 0, or -1 if not attached.
#[no_mangle]
pub extern "C" fn E_activate_fd(fd: c_int, fd_type: c_int) -> c_int {
    set_active(fd, fd_type, true)
}

/// Pause watching an attached descriptor. 0, or -1 if not attached.
#[no_mangle]
pub extern "C" fn E_deactivate_fd(fd: c_int, fd_type: c_int) -> c_int {
    set_active(fd, fd_type, false)
}

/// Watch only descriptors of at least this priority; returns it (-1 if invalid).
#[no_mangle]
pub extern "C" fn E_set_active_threshold(priority: c_int) -> c_int {
    if !(0..NUM_PRIORITY as c_int).contains(&priority) {
        return -1;
    }
    state().threshold = priority as usize;
    priority
}

/// Active descriptors attached at this priority (-1 if invalid).
#[no_mangle]
pub extern "C" fn E_num_active(priority: c_int) -> c_int {
    if !(0..NUM_PRIORITY as c_int).contains(&priority) {
        return -1;
    }
    state().fds[priority as usize].iter().filter(|e| e.active).count() as c_int
}

/// Make `E_handle_events` return after the callback that is running.
#[no_mangle]
pub extern "C" fn E_exit_events() {
    EXIT.store(true, Ordering::SeqCst);
}

/// `E_exit_events` for signal handlers (only an atomic store either way).
/// (Exported by the original, not declared in `sp_events.h`.)
#[no_mangle]
pub extern "C" fn E_exit_events_async_safe() {
    EXIT.store(true, Ordering::SeqCst);
}

fn poll_events(fd_type: c_int) -> libc::c_short {
    match fd_type {
        READ_FD => libc::POLLIN,
        WRITE_FD => libc::POLLOUT,
        _ => libc::POLLPRI,
    }
}

/// Which watched entries are ready, waiting at most `timeout`.
fn wait_ready(watched: &[FdEvent], timeout: Duration) -> Vec<bool> {
    let mut fds: Vec<libc::pollfd> = watched
        .iter()
        .map(|e| libc::pollfd {
            fd: e.fd,
            events: poll_events(e.fd_type),
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().min(c_int::MAX as u128) as c_int;
    // Round up so a sub-millisecond timer does not spin.
    let ms = if Duration::from_millis(ms as u64) < timeout {
        ms.saturating_add(1)
    } else {
        ms
    };
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures that
    // lives across the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return vec![false; watched.len()];
    }
    fds.iter()
        .zip(watched)
        .map(|(p, e)| {
            let want = poll_events(e.fd_type)
                | if e.fd_type == READ_FD {
                    libc::POLLHUP | libc::POLLERR
                } else {
                    0
                };
            p.revents & (want | libc::POLLNVAL) != 0 && p.revents & libc::POLLNVAL == 0
        })
        .collect()
}

/// Whether this entry is still attached and active (a callback may have changed it).
fn still_watched(e: &FdEvent, priority: usize) -> bool {
    state().fds[priority]
        .iter()
        .any(|x| x.fd == e.fd && x.fd_type == e.fd_type && x.active && x.func as usize == e.func as usize)
}

/// Run the loop until `E_exit_events` is called.
///
/// Each round: due timers (after the first round), then one wait on the
/// watched descriptors; ready descriptors of the highest non-low priority
/// are all served, otherwise one low-priority one, round robin.
#[no_mangle]
pub extern "C" fn E_handle_events() {
    EXIT.store(false, Ordering::SeqCst);
    let mut first = true;
    while !EXIT.load(Ordering::SeqCst) {
        // Timers that are due.
        let mut timeout = LONG_TIMEOUT;
        loop {
            let due = {
                let mut s = state();
                match s.timers.first() {
                    Some(t) if !first && t.at <= monotonic() => Some(s.timers.remove(0)),
                    Some(t) => {
                        timeout = t.at.saturating_sub(monotonic());
                        None
                    }
                    None => None,
                }
            };
            match due {
                Some(t) => {
                    (t.func)(t.code, t.data as *mut c_void);
                    if EXIT.load(Ordering::SeqCst) {
                        return;
                    }
                }
                None => break,
            }
        }

        // Descriptors.
        let (watched, prio_of): (Vec<FdEvent>, Vec<usize>) = {
            let s = state();
            s.fds
                .iter()
                .enumerate()
                .skip(s.threshold)
                .flat_map(|(p, q)| q.iter().filter(|e| e.active).map(move |e| (*e, p)))
                .unzip()
        };
        let mut ready = wait_ready(&watched, Duration::ZERO);
        if !ready.iter().any(|&r| r) {
            ready = wait_ready(&watched, timeout);
        }

        let mut treated = false;
        for p in (1..NUM_PRIORITY).rev() {
            for (i, e) in watched.iter().enumerate() {
                if prio_of[i] == p && ready[i] && still_watched(e, p) {
                    (e.func)(e.fd, e.code, e.data as *mut c_void);
                    treated = true;
                    if EXIT.load(Ordering::SeqCst) {
                        return;
                    }
                }
            }
            if treated {
                break;
            }
        }
        if !treated {
            first = false;
        }

        // One low-priority descriptor, round robin.
        let low: Vec<usize> = (0..watched.len()).filter(|&i| prio_of[i] == 0).collect();
        if !low.is_empty() && state().threshold == LOW_PRIORITY as usize {
            let start = state().round_robin;
            for k in 0..low.len() {
                let i = low[(start + k) % low.len()];
                if ready[i] && still_watched(&watched[i], 0) {
                    state().round_robin = (start + k + 1) % low.len();
                    let e = watched[i];
                    (e.func)(e.fd, e.code, e.data as *mut c_void);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_arithmetic() {
        let a = sp_time {
            sec: 5,
            usec: 900_000,
        };
        let b = sp_time {
            sec: 1,
            usec: 200_000,
        };
        assert_eq!(
            E_add_time(a, b),
            sp_time {
                sec: 7,
                usec: 100_000
            }
        );
        assert_eq!(
            E_sub_time(b, a),
            sp_time {
                sec: -5,
                usec: 300_000
            }
        );
        assert_eq!(E_compare_time(a, b), 1);
        assert_eq!(E_compare_time(b, a), -1);
        assert_eq!(E_compare_time(a, a), 0);
    }
}
