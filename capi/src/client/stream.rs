//! The connection's socket, read and written in place.
//!
//! The socket stays blocking (its descriptor is the mailbox programs select
//! on). Reads go straight into the caller's memory; nothing is buffered in
//! the library, so `FIONREAD` on the mailbox tells what is really pending.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Slices a vectored call gathers on the stack before it needs the heap
/// (header, names and a body in a few pieces).
pub const INLINE_SLICES: usize = 8;

/// The socket of one session.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// Our daemon's record path (`SOCK_SEQPACKET`, see
    /// [`spread_wire::client::records`]): one record per unit.
    Records(socket2::Socket),
}

/// The peer closed the connection or the socket failed.
#[derive(Debug)]
pub struct Closed;

/// Slices one `readv`/`writev` takes at most (Linux's `UIO_MAXIOV`).
const MAX_IOVECS: usize = 1024;

fn syscall_result(n: libc::ssize_t) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn transient(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock)
}

impl Stream {
    #[inline]
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Records(s) => s.as_raw_fd(),
        }
    }

    /// Whether this is the record path.
    #[inline]
    pub fn is_records(&self) -> bool {
        matches!(self, Stream::Records(_))
    }

    /// recvmsg(2) of one record into `slices` (`flags`: `MSG_PEEK` to leave
    /// it queued). Returns the record's length and whether it was longer
    /// than the slices (the rest is lost unless peeking). Retries
    /// interrupted calls and, like the other reads, a socket the program
    /// made non-blocking. The end of the session is `Closed`.
    pub fn recv_record(
        &self,
        slices: &mut [IoSliceMut<'_>],
        flags: libc::c_int,
    ) -> Result<(usize, bool), Closed> {
        let n = self.read_one_record(|| {
            // SAFETY: msghdr is a plain C struct for which zero bytes are
            // valid (no name, no control data).
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = slices.as_mut_ptr().cast::<libc::iovec>();
            msg.msg_iovlen = slices.len().min(MAX_IOVECS) as _;
            // SAFETY: `IoSliceMut` is ABI-compatible with `iovec` on Unix
            // (as documented); each describes writable memory it borrows for
            // this call, and `msg` names no other memory.
            unsafe { libc::recvmsg(self.raw_fd(), &mut msg, flags | libc::MSG_TRUNC) }
        })?;
        let got = slices.iter().map(|s| s.len()).sum::<usize>();
        Ok((n, n > got))
    }

    /// recv(2) of one record into `buf`, which need not be initialised
    /// (one buffer: no message header or iovec array for the kernel to
    /// copy in). Returns the record's length, of which the first
    /// `min(len, buf.len())` bytes of `buf` are now initialised, and whether
    /// it was longer than `buf` (the rest is lost). Retries as
    /// [`Stream::recv_record`] does; the end of the session is `Closed`.
    pub fn recv_record_uninit(&self, buf: &mut [MaybeUninit<u8>]) -> Result<(usize, bool), Closed> {
        let n = self.read_one_record(|| {
            // SAFETY: `buf` is writable memory of `buf.len()` bytes borrowed
            // for this call (the kernel only writes it, so it may be
            // uninitialised); the descriptor is this stream's open socket.
            unsafe { libc::recv(self.raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) }
        })?;
        Ok((n, n > buf.len()))
    }

    /// `read` (one record-reading system call) until it gives a record's
    /// length: retried when interrupted or on a socket the program made
    /// non-blocking; the end of the session is `Closed`.
    #[inline]
    fn read_one_record(&self, mut read: impl FnMut() -> libc::ssize_t) -> Result<usize, Closed> {
        loop {
            match syscall_result(read()) {
                // No unit of the protocol is empty: 0 is the end.
                Ok(0) => return Err(Closed),
                Ok(n) => return Ok(n),
                Err(e) if transient(&e) => std::thread::yield_now(),
                // A daemon that closed with unread bytes of ours leaves this
                // error in front of what it sent last; the read clears it.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                Err(e) => {
                    log::debug!("read failed on mailbox {}: {e}", self.raw_fd());
                    return Err(Closed);
                }
            }
        }
    }

    /// One record of at most `buf.len()` bytes before `deadline` (`None`:
    /// no limit), for the handshake: its length (a longer one is an error).
    pub fn recv_record_until(&self, buf: &mut [u8], deadline: Option<Instant>) -> Result<usize, Closed> {
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Closed);
            }
            self.set_read_timeout(Some(left)).map_err(|_| Closed)?;
        }
        let result = loop {
            // SAFETY: `buf` is writable for its length; the descriptor is
            // this stream's open socket.
            let n = unsafe { libc::recv(self.raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) };
            match syscall_result(n) {
                Ok(0) => break Err(Closed),
                Ok(n) if n > buf.len() => break Err(Closed),
                Ok(n) => break Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && deadline.is_none() => {}
                Err(_) => break Err(Closed),
            }
        };
        if deadline.is_some() {
            self.set_read_timeout(None).map_err(|_| Closed)?;
        }
        result
    }

    // The three calls of every message go straight to the system: the
    // standard library's wrappers cost as much as the rest of a receive.

    #[inline]
    fn read_once(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is writable for `buf.len()` bytes; the descriptor is
        // this stream's open socket.
        let n = unsafe { libc::read(self.raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        syscall_result(n)
    }

    #[inline]
    fn read_vectored_once(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let count = bufs.len().min(MAX_IOVECS) as libc::c_int;
        // SAFETY: `IoSliceMut` is ABI-compatible with `iovec` on Unix (as
        // documented); each describes writable memory it borrows for this call.
        let n = unsafe { libc::readv(self.raw_fd(), bufs.as_mut_ptr().cast::<libc::iovec>(), count) };
        syscall_result(n)
    }

    #[inline]
    fn write_vectored_once(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let count = bufs.len().min(MAX_IOVECS) as libc::c_int;
        // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix (as
        // documented); each describes readable memory it borrows for this call.
        let n = unsafe { libc::writev(self.raw_fd(), bufs.as_ptr().cast::<libc::iovec>(), count) };
        syscall_result(n)
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Records(s) => s.set_read_timeout(t),
        }
    }

    /// Let go of the descriptor without closing it (it was closed elsewhere).
    pub fn forget(self) {
        let _ = match self {
            Stream::Tcp(s) => s.into_raw_fd(),
            Stream::Unix(s) => s.into_raw_fd(),
            Stream::Records(s) => s.into_raw_fd(),
        };
    }

    /// Bytes waiting to be read (the `FIONREAD` ioctl).
    pub fn pending_bytes(&self) -> io::Result<i32> {
        let mut pending: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer, which points
        // at `pending`; the descriptor is this stream's open socket.
        let r = unsafe { libc::ioctl(self.raw_fd(), libc::FIONREAD, &mut pending as *mut libc::c_int) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(pending)
        }
    }

    /// Stop both directions: a thread blocked in a read wakes up with EOF.
    pub fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Records(s) => s.shutdown(Shutdown::Both),
        };
    }

    /// One read of at most `buf.len()` bytes; retries interrupted calls
    /// (and, like the original, a socket the program made non-blocking).
    fn read_retrying(&self, buf: &mut [u8]) -> Result<usize, Closed> {
        loop {
            match self.read_once(buf) {
                Ok(0) => return Err(Closed),
                Ok(n) => return Ok(n),
                Err(e) if transient(&e) => std::thread::yield_now(),
                Err(e) => {
                    log::debug!("read failed on mailbox {}: {e}", self.raw_fd());
                    return Err(Closed);
                }
            }
        }
    }

    /// Fill `buf` completely.
    #[inline]
    pub fn read_exact(&self, buf: &mut [u8]) -> Result<(), Closed> {
        if buf.is_empty() {
            return Ok(());
        }
        // One read is the usual case.
        match self.read_once(buf) {
            Ok(n) if n == buf.len() => Ok(()),
            first => self.finish_read(buf, first),
        }
    }

    /// The rest of `read_exact` after a first call that did not fill `buf`.
    #[inline(never)]
    fn finish_read(&self, buf: &mut [u8], mut result: io::Result<usize>) -> Result<(), Closed> {
        let mut done = 0;
        loop {
            match result {
                Ok(0) => return Err(Closed),
                Ok(n) => {
                    done += n;
                    if done >= buf.len() {
                        return Ok(());
                    }
                }
                Err(e) if transient(&e) => std::thread::yield_now(),
                Err(e) => {
                    log::debug!("read failed on mailbox {}: {e}", self.raw_fd());
                    return Err(Closed);
                }
            }
            result = self.read_once(&mut buf[done..]);
        }
    }

    /// Fill every slice completely, in order, with as few calls as possible.
    pub fn read_exact_vectored(&self, bufs: &mut [&mut [u8]]) -> Result<(), Closed> {
        let total = bufs.iter().map(|b| b.len()).sum();
        if bufs.len() <= INLINE_SLICES {
            let mut slices: [IoSliceMut<'_>; INLINE_SLICES] =
                std::array::from_fn(|_| IoSliceMut::new(&mut []));
            for (slot, b) in slices.iter_mut().zip(bufs.iter_mut()) {
                *slot = IoSliceMut::new(b);
            }
            self.read_exact_slices(&mut slices[..], total)
        } else {
            let mut slices: Vec<IoSliceMut<'_>> = bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            self.read_exact_slices(&mut slices, total)
        }
    }

    /// Fill every slice completely, in order: one `readv` in the usual case,
    /// more after a short read. Empty slices are allowed; `total` is the
    /// sum of their lengths.
    #[inline]
    pub fn read_exact_slices(&self, slices: &mut [IoSliceMut<'_>], total: usize) -> Result<(), Closed> {
        debug_assert_eq!(total, slices.iter().map(|s| s.len()).sum::<usize>());
        if total == 0 {
            return Ok(());
        }
        match self.read_vectored_once(slices) {
            Ok(n) if n == total => Ok(()),
            first => self.finish_read_slices(slices, total, first),
        }
    }

    /// The rest of `read_exact_slices` after a first call that did not
    /// move everything.
    #[inline(never)]
    fn finish_read_slices(
        &self,
        mut slices: &mut [IoSliceMut<'_>],
        mut total: usize,
        mut result: io::Result<usize>,
    ) -> Result<(), Closed> {
        loop {
            match result {
                // Some slice is not full yet, so 0 means EOF.
                Ok(0) => return Err(Closed),
                Ok(n) if n >= total => return Ok(()),
                Ok(n) => {
                    total -= n;
                    IoSliceMut::advance_slices(&mut slices, n);
                }
                Err(e) if transient(&e) => std::thread::yield_now(),
                Err(e) => {
                    log::debug!("read failed on mailbox {}: {e}", self.raw_fd());
                    return Err(Closed);
                }
            }
            result = self.read_vectored_once(slices);
        }
    }

    /// Read and drop `n` bytes.
    pub fn discard(&self, mut n: usize) -> Result<(), Closed> {
        let mut sink = [0u8; 10240];
        while n > 0 {
            let want = n.min(sink.len());
            n -= self.read_retrying(&mut sink[..want])?;
        }
        Ok(())
    }

    /// Write every slice completely, in order, with as few calls as possible.
    pub fn write_all_vectored(&self, bufs: &[&[u8]]) -> Result<(), Closed> {
        let total = bufs.iter().map(|b| b.len()).sum();
        if bufs.len() <= INLINE_SLICES {
            let mut slices = [IoSlice::new(&[]); INLINE_SLICES];
            for (slot, b) in slices.iter_mut().zip(bufs) {
                *slot = IoSlice::new(b);
            }
            self.write_all_slices(&mut slices[..], total)
        } else {
            let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
            self.write_all_slices(&mut slices, total)
        }
    }

    /// Write every slice completely, in order: one `writev` in the usual
    /// case, more after a short write. Empty slices are allowed; `total` is
    /// the sum of their lengths.
    #[inline]
    pub fn write_all_slices(&self, slices: &mut [IoSlice<'_>], total: usize) -> Result<(), Closed> {
        debug_assert_eq!(total, slices.iter().map(|s| s.len()).sum::<usize>());
        if total == 0 {
            return Ok(());
        }
        match self.write_vectored_once(slices) {
            Ok(n) if n == total => Ok(()),
            first => self.finish_write_slices(slices, total, first),
        }
    }

    /// Write all of `buf`: one write(2) in the usual case (one buffer: no
    /// iovec array for the kernel to copy in), more after a short write.
    #[inline]
    pub fn write_all_one(&self, buf: &[u8]) -> Result<(), Closed> {
        if buf.is_empty() {
            return Ok(());
        }
        // SAFETY: `buf` is readable for `buf.len()` bytes; the descriptor is
        // this stream's open socket.
        let n = unsafe { libc::write(self.raw_fd(), buf.as_ptr().cast(), buf.len()) };
        match syscall_result(n) {
            Ok(n) if n == buf.len() => Ok(()),
            first => self.finish_write_slices(&mut [IoSlice::new(buf)], buf.len(), first),
        }
    }

    /// The rest of `write_all_slices` after a first call that did not move
    /// everything.
    #[inline(never)]
    fn finish_write_slices(
        &self,
        mut slices: &mut [IoSlice<'_>],
        mut total: usize,
        mut result: io::Result<usize>,
    ) -> Result<(), Closed> {
        loop {
            match result {
                Ok(0) => return Err(Closed),
                Ok(n) if n >= total => return Ok(()),
                Ok(n) => {
                    total -= n;
                    IoSlice::advance_slices(&mut slices, n);
                }
                Err(e) if transient(&e) => std::thread::yield_now(),
                Err(e) => {
                    log::debug!("write failed on mailbox {}: {e}", self.raw_fd());
                    return Err(Closed);
                }
            }
            result = self.write_vectored_once(slices);
        }
    }

    /// Read exactly `buf.len()` bytes before `deadline` (`None`: no limit).
    /// Used during the handshake only.
    pub fn read_exact_until(&self, buf: &mut [u8], deadline: Option<Instant>) -> Result<(), Closed> {
        let mut done = 0;
        while done < buf.len() {
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Closed);
                }
                self.set_read_timeout(Some(left)).map_err(|_| Closed)?;
            }
            match self.read_once(&mut buf[done..]) {
                Ok(0) => return Err(Closed),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && deadline.is_none() => {}
                Err(_) => return Err(Closed),
            }
        }
        if deadline.is_some() {
            self.set_read_timeout(None).map_err(|_| Closed)?;
        }
        Ok(())
    }

    /// Send all of `buf` (handshake units).
    pub fn write_all(&self, buf: &[u8]) -> Result<(), Closed> {
        self.write_all_vectored(&[buf])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::thread;

    fn pair() -> (Stream, UnixStream) {
        let (a, b) = UnixStream::pair().expect("socketpair");
        (Stream::Unix(a), b)
    }

    /// A message arriving a few bytes at a time fills the slices in order
    /// (empty ones included) and not one byte more is taken off the socket.
    #[test]
    fn vectored_read_completes_short_reads_and_reads_no_further() {
        let (ours, mut peer) = pair();
        let writer = thread::spawn(move || {
            for chunk in (0u8..=30).collect::<Vec<_>>().chunks(4) {
                peer.write_all(chunk).expect("write");
                thread::sleep(Duration::from_millis(2));
            }
            peer
        });
        let (mut a, mut b, mut c) = ([0u8; 7], [0u8; 0], [0u8; 23]);
        let mut bufs: [&mut [u8]; 4] = [&mut [], &mut a, &mut b, &mut c];
        ours.read_exact_vectored(&mut bufs).expect("read");
        let _peer = writer.join().expect("writer");
        assert_eq!(a, [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(c.to_vec(), (7u8..30).collect::<Vec<_>>());
        assert_eq!(ours.pending_bytes().expect("FIONREAD"), 1, "byte 30 stays unread");
    }

    /// A header arriving a byte or two at a time is read whole, and only it.
    #[test]
    fn read_exact_completes_short_reads_and_reads_no_further() {
        let (ours, mut peer) = pair();
        let writer = thread::spawn(move || {
            for chunk in (0u8..50).collect::<Vec<_>>().chunks(3) {
                peer.write_all(chunk).expect("write");
                thread::sleep(Duration::from_millis(1));
            }
            peer
        });
        let mut head = [0u8; 48];
        ours.read_exact(&mut head).expect("read");
        let _peer = writer.join().expect("writer");
        assert_eq!(head.to_vec(), (0u8..48).collect::<Vec<_>>());
        assert_eq!(
            ours.pending_bytes().expect("FIONREAD"),
            2,
            "bytes 48 and 49 stay unread"
        );
        ours.read_exact(&mut []).expect("nothing to read");
        assert_eq!(ours.pending_bytes().expect("FIONREAD"), 2);
    }

    /// More pieces than fit on the stack take the heap path, same result.
    #[test]
    fn many_pieces_round_trip() {
        let (ours, mut peer) = pair();
        let data: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
        let pieces: Vec<&[u8]> = data.chunks(9).collect();
        assert!(pieces.len() > INLINE_SLICES);
        ours.write_all_vectored(&pieces).expect("write");
        let mut got = vec![0u8; data.len()];
        peer.read_exact(&mut got).expect("read");
        assert_eq!(got, data);

        peer.write_all(&data).expect("write back");
        let mut back = vec![0u8; data.len()];
        let mut bufs: Vec<&mut [u8]> = back.chunks_mut(5).collect();
        ours.read_exact_vectored(&mut bufs).expect("read back");
        assert_eq!(back, data);
    }

    /// A socket the program made non-blocking takes a big write in several
    /// short `writev`s; every byte arrives once, in order.
    #[test]
    fn short_writes_resume_where_they_stopped() {
        let (ours, mut peer) = pair();
        if let Stream::Unix(s) = &ours {
            s.set_nonblocking(true).expect("non-blocking");
        }
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).expect("read");
            got
        });
        let third = data.len() / 3;
        let pieces = [
            &data[..third],
            &[][..],
            &data[third..2 * third],
            &data[2 * third..],
        ];
        ours.write_all_vectored(&pieces).expect("write");
        ours.shutdown();
        assert!(reader.join().expect("reader") == data);
    }

    #[test]
    fn nothing_to_move_is_no_call_and_no_eof() {
        let (ours, peer) = pair();
        drop(peer);
        ours.write_all_vectored(&[&[], &[]]).expect("empty write");
        ours.read_exact_vectored(&mut [&mut [], &mut []])
            .expect("empty read");
        assert!(ours.read_exact_vectored(&mut [&mut [0u8; 1]]).is_err(), "EOF");
    }
}
