//! The one decode error of this crate: which field, at which byte offset,
//! and what was wrong with it.

/// Why bytes could not be decoded: the field, the offset of its first byte
/// (counted from the start of the unit given to the parser: a datagram, a
/// client message, a body) and the [kind](ErrorKind) of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeError {
    pub field: &'static str,
    pub offset: usize,
    pub kind: ErrorKind,
}

/// What was wrong with a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The bytes end inside the field, which needs `needed` bytes from its
    /// offset. On a stream this means "read more", see
    /// [`DecodeError::bytes_needed`].
    Truncated { needed: usize },
    /// A length or count field disagrees with the bytes present.
    LengthMismatch { declared: usize, actual: usize },
    /// The field holds a value the protocol does not allow.
    BadValue { reason: &'static str },
    /// Bytes follow the last field of a unit that must end there.
    TrailingBytes,
}

impl DecodeError {
    pub(crate) const fn new(field: &'static str, offset: usize, kind: ErrorKind) -> DecodeError {
        DecodeError { field, offset, kind }
    }

    pub(crate) const fn truncated(field: &'static str, offset: usize, needed: usize) -> DecodeError {
        DecodeError::new(field, offset, ErrorKind::Truncated { needed })
    }

    pub(crate) const fn bad(field: &'static str, offset: usize, reason: &'static str) -> DecodeError {
        DecodeError::new(field, offset, ErrorKind::BadValue { reason })
    }

    pub(crate) const fn mismatch(
        field: &'static str,
        offset: usize,
        declared: usize,
        actual: usize,
    ) -> DecodeError {
        DecodeError::new(field, offset, ErrorKind::LengthMismatch { declared, actual })
    }

    /// For a truncation: how many bytes the unit needs in all (`offset +
    /// needed`), which is what a stream reader waits for. `None` for any
    /// other failure, where more bytes would not help.
    pub fn bytes_needed(&self) -> Option<usize> {
        match self.kind {
            ErrorKind::Truncated { needed } => Some(self.offset.saturating_add(needed)),
            _ => None,
        }
    }

    pub fn is_truncated(&self) -> bool {
        matches!(self.kind, ErrorKind::Truncated { .. })
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let DecodeError { field, offset, kind } = self;
        match kind {
            ErrorKind::Truncated { needed } => {
                write!(f, "truncated {field} at offset {offset}: {needed} bytes needed")
            }
            ErrorKind::LengthMismatch { declared, actual } => write!(
                f,
                "{field} at offset {offset} declares {declared} bytes but {actual} are present"
            ),
            ErrorKind::BadValue { reason } => write!(f, "invalid {field} at offset {offset}: {reason}"),
            ErrorKind::TrailingBytes => write!(f, "trailing bytes after {field} at offset {offset}"),
        }
    }
}

impl std::error::Error for DecodeError {}
