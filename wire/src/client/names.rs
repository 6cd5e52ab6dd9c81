//! Group names: fixed 32-byte, NUL-padded fields.

use super::limits::{MAX_GROUP_NAME, MAX_PRIVATE_NAME};

/// A 32-byte group-name field as it travels.
///
/// Bytes after the first NUL are not always zero on the wire (the C library
/// copies names into uninitialised buffers), so equality and ordering look
/// only at the bytes up to the first NUL. The raw field is kept for
/// byte-exact re-encoding.
#[derive(Clone, Copy)]
pub struct GroupName {
    raw: [u8; MAX_GROUP_NAME],
}

impl GroupName {
    pub const EMPTY: GroupName = GroupName {
        raw: [0; MAX_GROUP_NAME],
    };

    /// The field exactly as read.
    pub fn from_raw(raw: [u8; MAX_GROUP_NAME]) -> GroupName {
        GroupName { raw }
    }

    /// A clean field from a name; `None` if it does not fit (31 bytes max).
    pub fn new(name: &[u8]) -> Option<GroupName> {
        if name.len() >= MAX_GROUP_NAME || name.contains(&0) {
            return None;
        }
        let mut raw = [0u8; MAX_GROUP_NAME];
        raw[..name.len()].copy_from_slice(name);
        Some(GroupName { raw })
    }

    /// A clean field from a name, cut at 31 bytes (daemon-built names).
    pub fn truncated(name: &[u8]) -> GroupName {
        let len = name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(name.len())
            .min(MAX_GROUP_NAME - 1);
        let mut raw = [0u8; MAX_GROUP_NAME];
        raw[..len].copy_from_slice(&name[..len]);
        GroupName { raw }
    }

    pub fn raw(&self) -> &[u8; MAX_GROUP_NAME] {
        &self.raw
    }

    /// The name: bytes up to the first NUL.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw[..self.name_len()]
    }

    /// Bytes before the first NUL, found 8 at a time (names are hashed and
    /// compared for every message a daemon routes).
    #[inline]
    fn name_len(&self) -> usize {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        for (i, chunk) in self.raw.chunks_exact(8).enumerate() {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            // Flags every zero byte (and possibly bytes above one): the
            // lowest flag is the first zero byte.
            let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
            if zeros != 0 {
                return i * 8 + (zeros.trailing_zeros() / 8) as usize;
            }
        }
        MAX_GROUP_NAME
    }

    /// Word `i` of the field (8 bytes, little-endian) with the bytes after
    /// the first NUL cleared, and whether the name ends in it: names are
    /// compared a word at a time, without finding their lengths first.
    #[inline]
    fn name_word(&self, i: usize) -> (u64, bool) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        let word = u64::from_le_bytes(self.raw[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros == 0 {
            return (word, false);
        }
        // The lowest flag is bit 7 of the first zero byte: keep the bytes
        // up to it.
        let first = zeros.trailing_zeros();
        let keep = if first >= 63 {
            u64::MAX
        } else {
            (1u64 << (first + 1)) - 1
        };
        (word & keep, true)
    }

    /// The same name with clean padding.
    pub fn clean(&self) -> GroupName {
        GroupName::truncated(self.as_bytes())
    }

    pub fn is_empty(&self) -> bool {
        self.raw[0] == 0
    }

    /// `#name#daemon`: the name of a session's private group.
    pub fn is_private(&self) -> bool {
        self.raw[0] == b'#'
    }

    /// Split `#private#daemon` into its two names.
    pub fn private_parts(&self) -> Option<(&[u8], &[u8])> {
        let name = self.as_bytes();
        let rest = name.strip_prefix(b"#")?;
        let sep = rest.iter().position(|&b| b == b'#')?;
        Some((&rest[..sep], &rest[sep + 1..]))
    }

    /// The private group of session `private_name` at daemon `daemon_name`.
    pub fn private_group(private_name: &[u8], daemon_name: &[u8]) -> GroupName {
        let mut name = Vec::with_capacity(MAX_GROUP_NAME);
        name.push(b'#');
        name.extend_from_slice(private_name);
        name.push(b'#');
        name.extend_from_slice(daemon_name);
        GroupName::truncated(&name)
    }

    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

/// Equal and ordered as [`GroupName::as_bytes`] are (bytes after the NUL
/// do not count), a word at a time.
impl PartialEq for GroupName {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        for i in 0..MAX_GROUP_NAME / 8 {
            let (a, ends) = self.name_word(i);
            if a != other.name_word(i).0 {
                return false;
            }
            if ends {
                return true;
            }
        }
        true
    }
}
impl Eq for GroupName {}

impl PartialOrd for GroupName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for GroupName {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        for i in 0..MAX_GROUP_NAME / 8 {
            let (a, ends) = self.name_word(i);
            let b = other.name_word(i).0;
            if a != b {
                // Cleared bytes sort first, as a shorter name does.
                return a.swap_bytes().cmp(&b.swap_bytes());
            }
            if ends {
                return std::cmp::Ordering::Equal;
            }
        }
        std::cmp::Ordering::Equal
    }
}

impl std::hash::Hash for GroupName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl std::fmt::Debug for GroupName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

impl std::fmt::Display for GroupName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

/// A byte allowed in a private name or group name: `'$'..='~'`.
pub fn is_legal_name_byte(b: u8) -> bool {
    (36..=126).contains(&b)
}

/// The daemon's rule for a private name (length already checked <= 10).
pub fn is_legal_private_name(name: &[u8]) -> bool {
    name.len() <= MAX_PRIVATE_NAME && name.iter().all(|&b| is_legal_name_byte(b))
}

/// The C library's rule for a group name given to join/leave.
pub fn is_legal_group_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() < MAX_GROUP_NAME && name.iter().all(|&b| is_legal_name_byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-wise search finds the first NUL at every position, with
    /// any bytes (0x01, 0x80, 0xff) before and after it.
    #[test]
    fn name_length_is_the_first_nul() {
        for fill in [0x01u8, 0x80, 0xff, b'a'] {
            for len in 0..=MAX_GROUP_NAME {
                let mut raw = [fill; MAX_GROUP_NAME];
                if len < MAX_GROUP_NAME {
                    raw[len] = 0;
                }
                let name = GroupName::from_raw(raw);
                let expected = raw.iter().position(|&b| b == 0).unwrap_or(MAX_GROUP_NAME);
                assert_eq!(name.as_bytes().len(), expected, "fill {fill:#x} len {len}");
            }
        }
    }

    /// Word-wise equality and order agree with comparing the names'
    /// bytes, over names of every length, bytes 0x01/0x80/0xff and garbage
    /// after the NUL.
    #[test]
    fn word_wise_comparison_matches_the_bytes() {
        let mut names = Vec::new();
        for len in 0..=MAX_GROUP_NAME {
            for (fill, garbage) in [
                (b'a', 0u8),
                (b'a', 0xff),
                (0x01, b'b'),
                (0x80, 0x7f),
                (0xff, 0x01),
            ] {
                let mut raw = [garbage; MAX_GROUP_NAME];
                raw[..len].fill(fill);
                if len < MAX_GROUP_NAME {
                    raw[len] = 0;
                }
                names.push(GroupName::from_raw(raw));
                if len > 0 {
                    // One byte different, at the end and at the start.
                    let mut last = raw;
                    last[len - 1] = fill.wrapping_add(1).max(1);
                    names.push(GroupName::from_raw(last));
                    let mut first = raw;
                    first[0] = fill.wrapping_sub(1).max(1);
                    names.push(GroupName::from_raw(first));
                }
            }
        }
        for a in &names {
            for b in &names {
                assert_eq!(a == b, a.as_bytes() == b.as_bytes(), "{a:?} == {b:?}");
                assert_eq!(a.cmp(b), a.as_bytes().cmp(b.as_bytes()), "{a:?} cmp {b:?}");
            }
        }
    }

    #[test]
    fn names_compare_up_to_nul() {
        let mut raw = [0xAAu8; 32];
        raw[..5].copy_from_slice(b"#a#b\0");
        let dirty = GroupName::from_raw(raw);
        assert_eq!(dirty, GroupName::new(b"#a#b").unwrap());
        assert_eq!(dirty.clean().raw()[5..], [0u8; 27]);
        assert_eq!(dirty.private_parts(), Some((&b"a"[..], &b"b"[..])));
    }

    #[test]
    fn private_group_is_built_like_the_original() {
        let g = GroupName::private_group(b"alice", b"localhost");
        assert_eq!(g.as_bytes(), b"#alice#localhost");
        assert!(g.is_private());
    }

    #[test]
    fn legal_bytes() {
        assert!(is_legal_private_name(b"a~b"));
        assert!(!is_legal_private_name(b"bad#name"));
        assert!(!is_legal_group_name(b""));
        assert!(!is_legal_group_name(&[b'a'; 32]));
        assert!(is_legal_group_name(&[b'a'; 31]));
    }
}
