//! Standard input as the original tools read it: lines as `fgets` returns
//! them (at most `size - 1` bytes, the newline kept), read on a thread so
//! the main loop can wait for the daemon and the keyboard at once.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::sync::Arc;

enum Chunk {
    Data(Vec<u8>),
    End,
}

/// Bytes of standard input, fed by a reader thread.
pub struct Input {
    rx: Receiver<Chunk>,
    buf: VecDeque<u8>,
    eof: bool,
}

impl Input {
    /// Start reading standard input; `wake` is called after each chunk
    /// (and at end of input) so a waiting main loop notices it. The caller
    /// keeps what `wake` signals alive: the thread drops its copy when
    /// input ends, and closing a waker before its event is seen loses it.
    pub fn from_stdin(wake: Arc<dyn Fn() + Send + Sync>) -> Input {
        Input::spawn(std::io::stdin(), wake)
    }

    /// Read `source` on a thread of its own.
    pub fn spawn<R: Read + Send + 'static>(mut source: R, wake: Arc<dyn Fn() + Send + Sync>) -> Input {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut chunk = vec![0u8; 4096];
            loop {
                match source.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(Chunk::Data(chunk[..n].to_vec())).is_err() {
                            return;
                        }
                        wake();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = tx.send(Chunk::End);
            wake();
        });
        Input {
            rx,
            buf: VecDeque::new(),
            eof: false,
        }
    }

    fn take(&mut self, chunk: Chunk) {
        match chunk {
            Chunk::Data(d) => self.buf.extend(d),
            Chunk::End => self.eof = true,
        }
    }

    fn absorb(&mut self) {
        while !self.eof {
            match self.rx.try_recv() {
                Ok(c) => self.take(c),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => self.eof = true,
            }
        }
    }

    /// Whether `fgets(size)` would return without waiting.
    pub fn line_ready(&mut self, size: usize) -> bool {
        self.absorb();
        self.eof || self.buf.len() >= size.saturating_sub(1) || self.buf.contains(&b'\n')
    }

    /// `fgets(buf, size, stdin)`: the next line with its newline, cut at
    /// `size - 1` bytes; `None` at end of input. Waits for input.
    pub fn fgets(&mut self, size: usize) -> Option<Vec<u8>> {
        let limit = size.saturating_sub(1).max(1);
        loop {
            self.absorb();
            let newline = self.buf.iter().take(limit).position(|&b| b == b'\n');
            let n = match newline {
                Some(i) => Some(i + 1),
                None if self.buf.len() >= limit => Some(limit),
                None if self.eof && !self.buf.is_empty() => Some(self.buf.len()),
                None if self.eof => return None,
                None => None,
            };
            if let Some(n) = n {
                return Some(self.buf.drain(..n).collect());
            }
            match self.rx.recv() {
                Ok(c) => self.take(c),
                Err(_) => self.eof = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(text: &'static [u8]) -> Input {
        Input::spawn(text, Arc::new(|| {}))
    }

    #[test]
    fn lines_as_fgets_returns_them() {
        let mut i = input(b"j g1\nabcdefgh\nlast");
        assert_eq!(i.fgets(130).unwrap(), b"j g1\n");
        assert_eq!(i.fgets(4).unwrap(), b"abc");
        assert_eq!(i.fgets(130).unwrap(), b"defgh\n");
        assert_eq!(i.fgets(130).unwrap(), b"last");
        assert!(i.line_ready(130));
        assert_eq!(i.fgets(130), None);
    }
}
