//! The daemon's calls into the operating system that need `unsafe`: the
//! clocks and a short timer, the host's interfaces and name, signals, privilege drop, and
//! removing the Unix socket by directory descriptor. Everything else in the
//! daemon crate is safe code (`deny(unsafe_code)` in lib.rs); each block here
//! states the contract it relies on.
#![allow(unsafe_code)]

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Instant;

use crate::clock::Clock;

/// Write end of the signal pipe, for the signal handler.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // The signal's number, so the shell tells SIGHUP from the others.
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; `fd` is the pipe's write end,
        // which stays open for the life of the process, and `byte` is a valid
        // one-byte buffer on this stack frame.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// Turns SIGINT, SIGTERM and SIGHUP into a byte (the signal number) on the
/// pipe `write_end` (which must stay open for the life of the process), and
/// ignores SIGPIPE.
pub fn notify_signals_to(write_end: RawFd) {
    SIGNAL_PIPE.store(write_end, Ordering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs a handler that only calls write(2) on a pipe;
        // `on_signal` has the C signature signal(2) expects.
        unsafe {
            libc::signal(sig, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
    }
    // SAFETY: ignoring SIGPIPE makes writes to closed sockets return EPIPE
    // instead of killing the daemon; no handler code runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// A timer of microsecond precision, for deadlines nearer than the
/// millisecond timeout of `epoll_wait` can express (the token's reply
/// hold lasts about 100 us; rounded up to a millisecond, a hold that runs
/// out would cost the ring ten times that). A `timerfd` on the monotonic
/// clock, which is the clock of `Instant` on Linux.
pub struct ShortTimer {
    fd: std::os::fd::OwnedFd,
    armed: Option<Instant>,
}

impl ShortTimer {
    pub fn new() -> io::Result<ShortTimer> {
        // SAFETY: timerfd_create takes no pointers; a non-negative result
        // is a new descriptor that nothing else owns.
        let fd =
            unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(ShortTimer { fd, armed: None })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Readable at `at`, `wait` from now (the caller has just read the
    /// clock; zero: at once); a no-op if already so armed.
    pub fn arm(&mut self, at: Instant, wait: std::time::Duration) -> io::Result<()> {
        if self.armed == Some(at) {
            return Ok(());
        }
        // Zero would disarm the timer: at least a nanosecond.
        let wait = wait.max(std::time::Duration::from_nanos(1));
        self.set(libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        })?;
        self.armed = Some(at);
        Ok(())
    }

    /// No wake-up for a deadline that went away.
    pub fn disarm(&mut self) -> io::Result<()> {
        if self.armed.take().is_some() {
            self.set(libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            })?;
        }
        Ok(())
    }

    /// After it fired: reads the expiry count so it is no longer readable.
    pub fn clear(&mut self) {
        self.armed = None;
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into `count`, a valid 8-byte buffer;
        // the descriptor is non-blocking (EAGAIN if it did not fire).
        unsafe {
            libc::read(self.fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len());
        }
    }

    fn set(&self, value: libc::timespec) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: `spec` is a valid itimerspec on this stack frame; a null
        // old-value pointer is allowed.
        if unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The hang-up signal's number (a reload request).
pub const SIGHUP: u8 = libc::SIGHUP as u8;

/// Removes `name` from the open directory `dir` (works after a chroot).
pub fn unlink_at(dir: &std::fs::File, name: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: `dir` is an open directory descriptor borrowed for the call
    // and `name` a valid NUL-terminated file name inside it.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The one place the daemon reads the clocks: the monotonic clock for
/// deadlines and the wall clock (seconds since the Unix epoch, which ring
/// membership ids carry), read together once per event.
pub fn read_clock() -> Clock {
    let unix_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    Clock::new(Instant::now(), unix_secs)
}

/// The IPv4 addresses of this host's interfaces (to find our own entry in
/// the configuration when no `-n` is given).
pub fn host_ipv4_addrs() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list it allocates; we
    // free it with freeifaddrs below and read it only in between.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return out;
    }
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a non-null node of the list getifaddrs returned,
        // valid until freeifaddrs; ifa_addr is null or points at a sockaddr
        // whose family says how to read it.
        unsafe {
            let ifa = &*cursor;
            if !ifa.ifa_addr.is_null() && (*ifa.ifa_addr).sa_family as i32 == libc::AF_INET {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                out.push(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
            }
            cursor = ifa.ifa_next;
        }
    }
    // SAFETY: `list` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    out
}

/// Give up root as the original does: chroot into the runtime directory,
/// then take on the configured group and user.
pub fn drop_privileges(
    user: &str,
    group: &str,
    runtime_dir: &std::path::Path,
    unix_sockets: &[&std::path::Path],
) -> Result<(), String> {
    use std::ffi::CString;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let c_user = CString::new(user).map_err(|_| format!("bad user name {user:?}"))?;
    let c_group = CString::new(group).map_err(|_| format!("bad group name {group:?}"))?;
    // SAFETY: both arguments are valid NUL-terminated strings; the returned
    // records are read at once, before any other call could overwrite them.
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(c_user.as_ptr());
        let gr = libc::getgrnam(c_group.as_ptr());
        if pw.is_null() || gr.is_null() {
            return Err(format!("no such user/group {user}/{group}"));
        }
        ((*pw).pw_uid, (*gr).gr_gid)
    };
    for path in unix_sockets {
        let _ = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
    }
    let dir = CString::new(runtime_dir.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("bad runtime directory {}", runtime_dir.display()))?;
    // SAFETY: plain system calls on valid NUL-terminated paths and ids.
    unsafe {
        if libc::chdir(dir.as_ptr()) != 0 || libc::chroot(dir.as_ptr()) != 0 {
            return Err(format!(
                "chroot to {} failed: {}",
                runtime_dir.display(),
                io::Error::last_os_error()
            ));
        }
        if libc::setgroups(1, &gid) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
            return Err(format!(
                "privilege drop to {user}/{group} failed: {}",
                io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// This host's name (`%h` in EventLogFile).
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return String::from("localhost");
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// The process's limit on open descriptors (RLIMIT_NOFILE) after making sure
/// it is at least `wanted` where the hard limit allows: a soft limit below
/// `wanted` is raised to `min(wanted, hard)`. Returns `(soft, hard)` as they
/// are afterwards; an error when the limit cannot be read or raised.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
pub fn raise_open_files_limit(wanted: u64) -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the valid struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (soft, hard) = (limit.rlim_cur as u64, limit.rlim_max as u64);
    if soft >= wanted {
        return Ok((soft, hard));
    }
    let raised = libc::rlimit {
        rlim_cur: wanted.min(hard) as libc::rlim_t,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads the valid struct we pass; lowering nothing and
    // raising the soft limit at most to the hard one needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((raised.rlim_cur as u64, hard))
}

/// Releases the process's mappings of file pages it has only read (code and
/// read-only data of the executable and its libraries) once start-up is over.
///
/// The kernel maps up to 16 neighbouring pages on every fault of a file
/// page, so argument and configuration parsing, logger set-up and the
/// dynamic linker leave most of the text resident although the event loop
/// never runs it again. Dropping those page-table entries (`MADV_DONTNEED`)
/// costs nothing to correctness: the pages are clean copies of the files, and
/// the next use maps them again from the page cache. Only mappings without a
/// private copy of any page (`Anonymous: 0 kB` in smaps) and without write
/// permission are touched, so no written byte (relocations, RELRO) is lost.
pub struct StartupPages {
    smaps: Option<std::fs::File>,
}

impl StartupPages {
    /// Opens `/proc/self/smaps` now, while it is reachable (a chroot may
    /// hide /proc later); without /proc, [`StartupPages::release`] does nothing.
    pub fn open() -> StartupPages {
        StartupPages {
            smaps: std::fs::File::open("/proc/self/smaps").ok(),
        }
    }

    /// Drops the page-table entries of every clean, read-only file mapping;
    /// returns how many kB were resident in them.
    pub fn release(&self) -> u64 {
        use std::io::{Read, Seek};
        let Some(mut smaps) = self.smaps.as_ref() else {
            return 0;
        };
        let mut text = String::new();
        if smaps.rewind().is_err() || smaps.read_to_string(&mut text).is_err() {
            return 0;
        }
        let mut released_kb = 0;
        for (start, end, rss_kb) in clean_read_only_file_mappings(&text) {
            // SAFETY: [start, end) is a whole mapping of this process that is
            // private, not writable and holds no anonymous (copied) page, so
            // every page is an unmodified copy of its file: dropping the
            // entries only makes the next access fault it in again. Nothing
            // unmaps or remaps memory between reading smaps and this call
            // (the daemon is single-threaded here).
            if unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) } == 0 {
                released_kb += rss_kb;
            }
        }
        released_kb
    }
}

/// `(start, end, Rss kB)` of the private, non-writable mappings of a named
/// file with no anonymous page, from the text of /proc/PID/smaps.
fn clean_read_only_file_mappings(smaps: &str) -> Vec<(usize, usize, u64)> {
    struct Mapping {
        start: usize,
        end: usize,
        eligible: bool,
        rss_kb: u64,
        anonymous_kb: Option<u64>,
    }
    let mut found = Vec::new();
    let mut current: Option<Mapping> = None;
    let mut finish = |m: Option<Mapping>| {
        if let Some(m) = m {
            if m.eligible && m.anonymous_kb == Some(0) && m.rss_kb > 0 {
                found.push((m.start, m.end, m.rss_kb));
            }
        }
    };
    for line in smaps.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) {
                finish(current.take());
                let perms = fields.next().unwrap_or("");
                let path = fields.nth(3).unwrap_or("");
                current = Some(Mapping {
                    start,
                    end,
                    eligible: perms.len() == 4
                        && perms.starts_with('r')
                        && &perms[1..2] == "-"
                        && perms.ends_with('p')
                        && path.starts_with('/'),
                    rss_kb: 0,
                    anonymous_kb: None,
                });
                continue;
            }
        }
        let value = fields.next().and_then(|v| v.parse::<u64>().ok());
        if let (Some(m), Some(v)) = (current.as_mut(), value) {
            match first {
                "Rss:" => m.rss_kb = v,
                "Anonymous:" => m.anonymous_kb = Some(v),
                _ => {}
            }
        }
    }
    finish(current.take());
    found
}

/// The address, iovec and header arrays of one sendmmsg/recvmmsg call: header
/// `i` names address `i` and the one buffer of iovec `i`.
struct DatagramHeaders<const N: usize> {
    addrs: [libc::sockaddr_in; N],
    iovs: [libc::iovec; N],
    msgs: [libc::mmsghdr; N],
}

impl<const N: usize> DatagramHeaders<N> {
    fn new() -> Self {
        DatagramHeaders {
            // SAFETY: sockaddr_in, iovec and mmsghdr are plain C structs for
            // which all-zero bytes are a valid value.
            addrs: unsafe { std::mem::zeroed() },
            // SAFETY: as above.
            iovs: unsafe { std::mem::zeroed() },
            // SAFETY: as above.
            msgs: unsafe { std::mem::zeroed() },
        }
    }

    /// Points the first `n` headers at their address and iovec and returns
    /// the first header, for the system call; `self` must not move until then.
    fn linked(&mut self, n: usize) -> *mut libc::mmsghdr {
        for i in 0..n.min(N) {
            let hdr = &mut self.msgs[i].msg_hdr;
            hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            hdr.msg_iov = &mut self.iovs[i];
            hdr.msg_iovlen = 1;
        }
        self.msgs.as_mut_ptr()
    }
}

/// Datagrams one [`send_datagrams`] call hands to the kernel at most.
pub const SEND_BATCH: usize = 32;

/// sendmmsg(2): sends `datagrams` (at most [`SEND_BATCH`]; the rest are not
/// looked at) from the UDP socket `fd` in order, in one system call.
/// Returns how many the kernel took; an error is the first datagram's (the
/// caller skips it and sends the rest again).
pub fn send_datagrams(fd: RawFd, datagrams: &[(std::net::SocketAddrV4, &[u8])]) -> io::Result<usize> {
    let n = datagrams.len().min(SEND_BATCH);
    if n == 0 {
        return Ok(0);
    }
    let mut headers = DatagramHeaders::<SEND_BATCH>::new();
    let DatagramHeaders { addrs, iovs, .. } = &mut headers;
    for (i, (to, bytes)) in datagrams[..n].iter().enumerate() {
        addrs[i].sin_family = libc::AF_INET as libc::sa_family_t;
        addrs[i].sin_port = to.port().to_be();
        addrs[i].sin_addr.s_addr = u32::from_ne_bytes(to.ip().octets());
        iovs[i].iov_base = bytes.as_ptr() as *mut libc::c_void;
        iovs[i].iov_len = bytes.len();
    }
    let msgs = headers.linked(n);
    // SAFETY: the first `n` headers from `msgs` are initialised, their
    // name and iovec pointers point into `headers` (not moved since), and each
    // iovec into a `bytes` slice borrowed for the call; the kernel only
    // reads the buffers and writes each header's `msg_len`.
    unsafe { send_prepared(fd, msgs, n, libc::MSG_DONTWAIT) }
}

/// recvmmsg(2) into `n` prepared headers without waiting, again when a
/// signal interrupts it.
///
/// # Safety
/// `msgs` points to `n` initialised headers whose iovecs name distinct
/// writable buffers that stay valid and unmoved for the call.
unsafe fn recv_prepared(fd: RawFd, msgs: *mut libc::mmsghdr, n: usize) -> io::Result<usize> {
    loop {
        // SAFETY: the caller's contract above.
        let got = unsafe {
            libc::recvmmsg(
                fd,
                msgs,
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if got >= 0 {
            return Ok(got as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// sendmmsg(2) of `n` prepared headers, again when a signal interrupts it.
///
/// # Safety
/// `msgs` points to `n` initialised headers whose names, iovecs and
/// buffers stay valid and unmoved for the call.
unsafe fn send_prepared(
    fd: RawFd,
    msgs: *mut libc::mmsghdr,
    n: usize,
    flags: libc::c_int,
) -> io::Result<usize> {
    loop {
        // SAFETY: the caller's contract above.
        let sent = unsafe { libc::sendmmsg(fd, msgs, n as libc::c_uint, flags) };
        if sent >= 0 {
            return Ok(sent as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Records one [`send_records`] call hands to the kernel at most.
pub const RECORD_SEND_BATCH: usize = 64;

/// sendmmsg(2) on a connected `SOCK_SEQPACKET` socket: each slice of
/// `records` (at most [`RECORD_SEND_BATCH`]) is one record, in order, in one
/// system call. Returns how many the kernel took (WouldBlock: none, the
/// socket is full). A lone record goes with send(2), which spares the
/// kernel the message header and iovec it would copy in (a reply in a
/// round trip is one).
pub fn send_records(fd: RawFd, records: &[&[u8]]) -> io::Result<usize> {
    let n = records.len().min(RECORD_SEND_BATCH);
    if n == 0 {
        return Ok(0);
    }
    if let [one] = records {
        return send_one_record(fd, one);
    }
    // Only the first `n` entries are written and handed to the kernel.
    let mut iovs = [std::mem::MaybeUninit::<libc::iovec>::uninit(); RECORD_SEND_BATCH];
    let mut msgs = [std::mem::MaybeUninit::<libc::mmsghdr>::uninit(); RECORD_SEND_BATCH];
    for ((r, iov), m) in records[..n].iter().zip(iovs.iter_mut()).zip(msgs.iter_mut()) {
        let iov = iov.write(libc::iovec {
            iov_base: r.as_ptr() as *mut libc::c_void,
            iov_len: r.len(),
        });
        // SAFETY: mmsghdr is a plain C struct for which all-zero bytes are
        // a valid value (no name, no control data).
        let mut hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        hdr.msg_hdr.msg_iov = iov;
        hdr.msg_hdr.msg_iovlen = 1;
        m.write(hdr);
    }
    // SAFETY: the first `n` headers are initialised (written above), each
    // naming one iovec of `iovs` (not moved since) that points into a
    // slice of `records` borrowed for the call; the kernel only reads the
    // buffers and writes each header's `msg_len`, and looks at no entry
    // past the first `n`.
    unsafe {
        send_prepared(
            fd,
            msgs.as_mut_ptr().cast::<libc::mmsghdr>(),
            n,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    }
}

/// send(2) of one record without waiting, again when a signal interrupts
/// it: `Ok(1)` once the kernel took it (a record goes whole or not at all).
fn send_one_record(fd: RawFd, record: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `record` is readable for its length, borrowed for the
        // call; the kernel only reads it.
        let sent = unsafe {
            libc::send(
                fd,
                record.as_ptr().cast(),
                record.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if sent >= 0 {
            return Ok(1);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Records one [`recv_records`] call takes at most.
pub const RECORD_RECV_BATCH: usize = 8;

/// One record read by [`recv_records`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordLen {
    /// Bytes of the record in its slot (0: the peer closed its side).
    pub len: usize,
    /// The record was longer than its slot and was cut.
    pub truncated: bool,
}

/// recvmmsg(2) without waiting on a connected `SOCK_SEQPACKET` socket:
/// fills up to [`RECORD_RECV_BATCH`] slots of `buf` (`slot` bytes each) with
/// the records queued, one per slot. Returns how many came (WouldBlock:
/// none). The end of stream reads as a record of length 0.
pub fn recv_records(
    fd: RawFd,
    buf: &mut [u8],
    slot: usize,
    lens: &mut [RecordLen; RECORD_RECV_BATCH],
) -> io::Result<usize> {
    let n = (buf.len() / slot.max(1)).min(RECORD_RECV_BATCH);
    // SAFETY: iovec and mmsghdr are plain C structs for which all-zero
    // bytes are a valid value.
    let mut iovs: [libc::iovec; RECORD_RECV_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; RECORD_RECV_BATCH] = unsafe { std::mem::zeroed() };
    for (i, chunk) in buf.chunks_exact_mut(slot).take(n).enumerate() {
        iovs[i].iov_base = chunk.as_mut_ptr().cast();
        iovs[i].iov_len = chunk.len();
    }
    for (m, iov) in msgs.iter_mut().zip(iovs.iter_mut()).take(n) {
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the first `n` headers are initialised, each naming one
    // iovec of `iovs` (not moved since) that points into a distinct
    // `slot`-byte chunk of `buf`, borrowed mutably for the call; the
    // kernel writes at most those lengths.
    let got = unsafe { recv_prepared(fd, msgs.as_mut_ptr(), n)? };
    for (l, m) in lens.iter_mut().zip(&msgs).take(got) {
        *l = RecordLen {
            len: (m.msg_len as usize).min(slot),
            truncated: m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        };
    }
    Ok(got)
}

/// Datagrams one [`recv_datagrams`] call takes at most.
pub const RECV_BATCH: usize = 8;

/// recvmmsg(2) without waiting: fills up to [`RECV_BATCH`] slots of `buf`
/// (`slot` bytes each) with the datagrams queued on the UDP socket `fd`;
/// each datagram's length and sender go to `lens` and `froms`. Returns how
/// many came (WouldBlock: none). A datagram longer than a slot is cut
/// (its length is the slot's; the parser rejects it).
pub fn recv_datagrams(
    fd: RawFd,
    buf: &mut [u8],
    slot: usize,
    lens: &mut [usize; RECV_BATCH],
    froms: &mut [std::net::SocketAddrV4; RECV_BATCH],
) -> io::Result<usize> {
    let n = (buf.len() / slot.max(1)).min(RECV_BATCH);
    let mut headers = DatagramHeaders::<RECV_BATCH>::new();
    let DatagramHeaders { iovs, .. } = &mut headers;
    for (i, chunk) in buf.chunks_exact_mut(slot).take(n).enumerate() {
        iovs[i].iov_base = chunk.as_mut_ptr().cast();
        iovs[i].iov_len = chunk.len();
    }
    let msgs = headers.linked(n);
    // SAFETY: the first `n` headers from `msgs` are initialised, their
    // name and iovec pointers point into `headers` (not moved since), each iovec
    // into a distinct `slot`-byte chunk of `buf`, borrowed mutably for
    // the call; the kernel writes at most those lengths.
    let got = unsafe { recv_prepared(fd, msgs, n)? };
    for i in 0..got {
        let DatagramHeaders { addrs, msgs, .. } = &headers;
        lens[i] = (msgs[i].msg_len as usize).min(slot);
        froms[i] = std::net::SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(addrs[i].sin_addr.s_addr)),
            u16::from_be(addrs[i].sin_port),
        );
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::{clean_read_only_file_mappings, ShortTimer};
    use std::time::{Duration, Instant};

    /// Whether the timer's descriptor becomes readable within `within`.
    fn fires(timer: &ShortTimer, within: Duration) -> bool {
        let mut poll = mio::Poll::new().unwrap();
        let fd = timer.raw_fd();
        poll.registry()
            .register(
                &mut mio::unix::SourceFd(&fd),
                mio::Token(0),
                mio::Interest::READABLE,
            )
            .unwrap();
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(within)).unwrap();
        !events.is_empty()
    }

    #[test]
    fn the_short_timer_fires_once_armed_and_not_once_disarmed_or_cleared() {
        let mut t = ShortTimer::new().unwrap();
        let arm_in = |t: &mut ShortTimer, wait: Duration| t.arm(Instant::now() + wait, wait).unwrap();
        arm_in(&mut t, Duration::from_micros(200));
        assert!(fires(&t, Duration::from_secs(5)));
        t.clear();
        assert!(!fires(&t, Duration::from_millis(20)), "cleared: not readable");
        arm_in(&mut t, Duration::from_millis(30));
        t.disarm().unwrap();
        assert!(!fires(&t, Duration::from_millis(100)), "disarmed");
        t.arm(Instant::now() - Duration::from_millis(1), Duration::ZERO)
            .unwrap();
        assert!(fires(&t, Duration::from_secs(5)), "a past deadline fires at once");
    }

    #[test]
    fn only_clean_read_only_file_mappings_are_released() {
        let smaps = "\
5555e000-5556f000 r--p 00000000 08:01 123 /usr/sbin/spread
Rss:                  64 kB
Anonymous:             0 kB
5556f000-5558f000 r-xp 00011000 08:01 123 /usr/sbin/spread
Rss:                 128 kB
Anonymous:             0 kB
5558f000-55590000 r--p 00031000 08:01 123 /usr/sbin/spread
Rss:                   4 kB
Anonymous:             4 kB
55590000-55591000 rw-p 00032000 08:01 123 /usr/sbin/spread
Rss:                   4 kB
Anonymous:             4 kB
55591000-55592000 rw-p 00000000 00:00 0 [heap]
Rss:                   4 kB
Anonymous:             4 kB
7ff00000-7ff10000 r-xp 00000000 00:00 0 [vdso]
Rss:                   4 kB
Anonymous:             0 kB
7ff10000-7ff20000 r-xs 00000000 08:01 9 /dev/shm/x
Rss:                   4 kB
Anonymous:             0 kB
7ff20000-7ff30000 r-xp 00000000 08:01 10 /lib/libc.so.6
Rss:                   0 kB
Anonymous:             0 kB
";
        assert_eq!(
            clean_read_only_file_mappings(smaps),
            vec![(0x5555e000, 0x5556f000, 64), (0x5556f000, 0x5558f000, 128)]
        );
    }

    #[test]
    fn a_mapping_without_an_anonymous_line_is_kept() {
        let smaps = "5555e000-5556f000 r-xp 00000000 08:01 123 /usr/sbin/spread\nRss: 64 kB\n";
        assert!(clean_read_only_file_mappings(smaps).is_empty());
    }
}
