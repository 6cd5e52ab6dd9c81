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

impl PartialEq for GroupName {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for GroupName {}

impl PartialOrd for GroupName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for GroupName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
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
