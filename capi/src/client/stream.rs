//! The connection's socket, read and written in place.
//!
//! The socket stays blocking (its descriptor is the mailbox programs select
//! on). Reads go straight into the caller's memory; nothing is buffered in
//! the library, so `FIONREAD` on the mailbox tells what is really pending.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The socket of one session.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// The peer closed the connection or the socket failed.
#[derive(Debug)]
pub struct Closed;

fn transient(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock)
}

impl Stream {
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    fn read_once(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }

    fn read_vectored_once(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read_vectored(bufs),
            Stream::Unix(s) => (&*s).read_vectored(bufs),
        }
    }

    fn write_once(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Unix(s) => (&*s).write(buf),
        }
    }

    fn write_vectored_once(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write_vectored(bufs),
            Stream::Unix(s) => (&*s).write_vectored(bufs),
        }
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }

    /// Let go of the descriptor without closing it (it was closed elsewhere).
    pub fn forget(self) {
        let _ = match self {
            Stream::Tcp(s) => s.into_raw_fd(),
            Stream::Unix(s) => s.into_raw_fd(),
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
    pub fn read_exact(&self, buf: &mut [u8]) -> Result<(), Closed> {
        let mut done = 0;
        while done < buf.len() {
            done += self.read_retrying(&mut buf[done..])?;
        }
        Ok(())
    }

    /// Fill every slice completely, in order, with as few calls as possible.
    pub fn read_exact_vectored(&self, bufs: &mut [&mut [u8]]) -> Result<(), Closed> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Ok(());
        }
        let got = {
            let mut slices: Vec<IoSliceMut<'_>> = bufs
                .iter_mut()
                .filter(|b| !b.is_empty())
                .map(|b| IoSliceMut::new(b))
                .collect();
            loop {
                match self.read_vectored_once(&mut slices) {
                    Ok(0) => return Err(Closed),
                    Ok(n) => break n,
                    Err(e) if transient(&e) => std::thread::yield_now(),
                    Err(_) => return Err(Closed),
                }
            }
        };
        // A short read: finish slice by slice from where it stopped.
        let mut skip = got;
        for b in bufs.iter_mut() {
            if skip >= b.len() {
                skip -= b.len();
                continue;
            }
            self.read_exact(&mut b[skip..])?;
            skip = 0;
        }
        Ok(())
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
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Ok(());
        }
        let sent = {
            let slices: Vec<IoSlice<'_>> = bufs
                .iter()
                .filter(|b| !b.is_empty())
                .map(|b| IoSlice::new(b))
                .collect();
            loop {
                match self.write_vectored_once(&slices) {
                    Ok(0) => return Err(Closed),
                    Ok(n) => break n,
                    Err(e) if transient(&e) => std::thread::yield_now(),
                    Err(_) => return Err(Closed),
                }
            }
        };
        let mut skip = sent;
        for b in bufs {
            if skip >= b.len() {
                skip -= b.len();
                continue;
            }
            let mut rest = &b[skip..];
            skip = 0;
            while !rest.is_empty() {
                match self.write_once(rest) {
                    Ok(0) => return Err(Closed),
                    Ok(n) => rest = &rest[n..],
                    Err(e) if transient(&e) => std::thread::yield_now(),
                    Err(_) => return Err(Closed),
                }
            }
        }
        Ok(())
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
