//! The connection handshake.
//!
//! ```text
//! client -> daemon  connect request: major minor [patch] flags len name
//! daemon -> client  auth-method list: len "NULL "          (libraries >= 3.16)
//! client -> daemon  auth choice: 3 x 30 bytes, NUL padded   (libraries >= 3.16)
//! daemon -> client  1 major minor [patch] len "#name#daemon"
//!                   or one negative reject byte, then close
//! ```
//!
//! The decoders follow how the 4.4 daemon reads each unit, so a daemon built
//! on them rejects exactly what the original rejects.

use super::limits::{AUTH_CHOICE_LEN, MAX_AUTH_METHODS, MAX_AUTH_NAME, MAX_PRIVATE_NAME};
use super::names::{is_legal_name_byte, GroupName};
use super::DecodeError;
use crate::codec::{self, run};

/// A library or daemon version. The bytes are signed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: i8,
    pub minor: i8,
    pub patch: i8,
}

impl Version {
    /// What this implementation announces: the 4.4.0 protocol.
    pub const SPREAD_4_4_0: Version = Version {
        major: 4,
        minor: 4,
        patch: 0,
    };

    pub fn new(major: i8, minor: i8, patch: i8) -> Version {
        Version { major, minor, patch }
    }

    /// `major*10000 + minor*100 + patch`, the original's comparison key.
    pub fn number(self) -> i32 {
        self.major as i32 * 10000 + self.minor as i32 * 100 + self.patch as i32
    }

    /// Libraries after 3.14 send (and receive) a patch byte.
    pub fn has_patch_byte(self) -> bool {
        self.major as i32 * 10000 + self.minor as i32 * 100 > 31400
    }

    /// The daemon serves libraries from 3.1.0 on.
    pub fn is_supported_client(self) -> bool {
        self.number() >= 30100
    }

    /// Libraries from 3.16.0 on take part in the auth exchange.
    pub fn does_auth_exchange(self) -> bool {
        self.number() >= 31600
    }

    /// Libraries from 3.15.0 on expect a patch byte in the accept.
    pub fn expects_patch_in_accept(self) -> bool {
        self.number() >= 31500
    }
}

/// The client's connect request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    pub version: Version,
    /// Bit 0: the session wants membership messages; `flags / 16`: priority.
    pub flags: u8,
    /// The private name; empty asks the daemon to invent one.
    pub name: Vec<u8>,
}

/// Why a connect request is refused, and what the daemon answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectRequestError {
    /// The request did not arrive whole: the daemon closes without an answer.
    Truncated { needed: usize, got: usize },
    /// Older than 3.1.0: answer `REJECT_VERSION`.
    UnsupportedVersion(Version),
    /// Length byte outside 0..=10 (read as signed): `REJECT_ILLEGAL_NAME`.
    NameLength(i8),
    /// The name read has another length than announced: `REJECT_ILLEGAL_NAME`.
    NameCount { announced: usize, received: usize },
    /// A name byte outside `'$'..='~'`: `REJECT_ILLEGAL_NAME`.
    IllegalNameByte(u8),
}

impl ConnectRequestError {
    /// The reject byte the daemon sends, or `None` to close silently.
    pub fn reject_code(&self) -> Option<i8> {
        use super::code::*;
        match self {
            ConnectRequestError::Truncated { .. } => None,
            ConnectRequestError::UnsupportedVersion(_) => Some(REJECT_VERSION as i8),
            ConnectRequestError::NameLength(_)
            | ConnectRequestError::NameCount { .. }
            | ConnectRequestError::IllegalNameByte(_) => Some(REJECT_ILLEGAL_NAME as i8),
        }
    }
}

impl std::fmt::Display for ConnectRequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectRequestError::Truncated { needed, got } => {
                write!(f, "connect request truncated: {got} of at least {needed} bytes")
            }
            ConnectRequestError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "library version {}.{}.{} is not supported",
                    v.major, v.minor, v.patch
                )
            }
            ConnectRequestError::NameLength(n) => write!(f, "private name length {n} is out of 0..=10"),
            ConnectRequestError::NameCount { announced, received } => {
                write!(
                    f,
                    "private name announced {announced} bytes but {received} arrived"
                )
            }
            ConnectRequestError::IllegalNameByte(b) => write!(f, "private name has illegal byte 0x{b:02x}"),
        }
    }
}

impl std::error::Error for ConnectRequestError {}

impl ConnectRequest {
    pub fn new(name: &[u8], membership: bool, priority: u8) -> ConnectRequest {
        ConnectRequest {
            version: Version::SPREAD_4_4_0,
            flags: (membership as u8) | ((priority.min(1)) << 4),
            name: name.to_vec(),
        }
    }

    pub fn wants_membership(&self) -> bool {
        // The daemon tests `(signed char) flags % 2 == 1`: a negative byte never qualifies.
        (self.flags as i8) % 2 == 1
    }

    pub fn priority(&self) -> i32 {
        (self.flags as i8) as i32 / 16
    }

    /// Encode as the library sends it (one write).
    pub fn emit(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + self.name.len());
        out.push(self.version.major as u8);
        out.push(self.version.minor as u8);
        if self.version.has_patch_byte() {
            out.push(self.version.patch as u8);
        }
        out.push(self.flags);
        out.push(self.name.len() as u8);
        out.extend_from_slice(&self.name);
        out
    }

    /// Decode a request as the daemon reads it from what has arrived.
    ///
    /// The name is taken from at most 10 of the bytes present, and must
    /// match the announced length exactly; returns the request and the number
    /// of bytes consumed (the rest belongs to the next unit).
    pub fn parse(buf: &[u8]) -> Result<(ConnectRequest, usize), ConnectRequestError> {
        let truncated = |needed| ConnectRequestError::Truncated {
            needed,
            got: buf.len(),
        };
        if buf.len() < 2 {
            return Err(truncated(2));
        }
        let mut version = Version::new(buf[0] as i8, buf[1] as i8, 0);
        let mut pos = 2;
        if version.has_patch_byte() {
            let patch = *buf.get(pos).ok_or_else(|| truncated(3))?;
            version.patch = patch as i8;
            pos += 1;
        }
        if !version.is_supported_client() {
            return Err(ConnectRequestError::UnsupportedVersion(version));
        }
        if buf.len() < pos + 2 {
            return Err(truncated(pos + 2));
        }
        let flags = buf[pos];
        let len = buf[pos + 1] as i8;
        pos += 2;
        if !(0..=MAX_PRIVATE_NAME as i8).contains(&len) {
            return Err(ConnectRequestError::NameLength(len));
        }
        let announced = len as usize;
        let mut name = Vec::new();
        if announced > 0 {
            let available = &buf[pos..];
            let received = available.len().min(MAX_PRIVATE_NAME);
            if received != announced {
                return Err(ConnectRequestError::NameCount { announced, received });
            }
            name.extend_from_slice(&available[..received]);
            pos += received;
            if let Some(&bad) = name.iter().find(|&&b| !is_legal_name_byte(b)) {
                return Err(ConnectRequestError::IllegalNameByte(bad));
            }
        }
        Ok((ConnectRequest { version, flags, name }, pos))
    }
}

/// The daemon's list of allowed auth methods: a length byte and the names,
/// each followed by a space (`"NULL "`), no NUL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthMethodList {
    pub methods: Vec<String>,
}

impl AuthMethodList {
    pub fn emit(&self) -> Vec<u8> {
        let mut text = String::new();
        for m in &self.methods {
            text.push_str(m);
            text.push(' ');
        }
        let bytes = text.as_bytes();
        let len = bytes.len().min(255);
        let mut out = Vec::with_capacity(1 + len);
        out.push(len as u8);
        out.extend_from_slice(&bytes[..len]);
        out
    }

    /// Decode; returns the list and bytes consumed.
    pub fn parse(buf: &[u8]) -> Result<(AuthMethodList, usize), DecodeError> {
        let (_, body) = run(buf, 0, |at| {
            let (i, len) = codec::u8(at, "auth list length")?;
            if (len as i8) < 0 {
                // A negative first byte is a reject code, not a list length.
                return codec::bad(at, "auth list length", "reject code");
            }
            if len as usize > AUTH_CHOICE_LEN {
                // The library refuses (and closes) a list longer than 3 x 30 bytes.
                return codec::bad(at, "auth list length", "longer than 90 bytes");
            }
            codec::take(i, len as usize, "auth list")
        })?;
        let len = body.len();
        let methods = body
            .split(|&b| b == b' ')
            .filter(|m| !m.is_empty())
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect();
        Ok((AuthMethodList { methods }, 1 + len))
    }
}

/// The client's choice of auth methods: 3 slots of 30 NUL-padded bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthChoice {
    /// Raw slots, for byte-exact re-encoding.
    pub slots: [[u8; MAX_AUTH_NAME]; MAX_AUTH_METHODS],
}

impl AuthChoice {
    pub fn new(methods: &[&str]) -> AuthChoice {
        let mut slots = [[0u8; MAX_AUTH_NAME]; MAX_AUTH_METHODS];
        for (slot, m) in slots.iter_mut().zip(methods) {
            let n = m.len().min(MAX_AUTH_NAME - 1);
            slot[..n].copy_from_slice(&m.as_bytes()[..n]);
        }
        AuthChoice { slots }
    }

    /// The method names chosen (non-empty slots, up to their NUL).
    pub fn methods(&self) -> Vec<String> {
        self.slots
            .iter()
            .map(|s| {
                let len = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                String::from_utf8_lossy(&s[..len]).into_owned()
            })
            .filter(|m| !m.is_empty())
            .collect()
    }

    pub fn emit(&self) -> Vec<u8> {
        self.slots.concat()
    }

    pub fn parse(buf: &[u8]) -> Result<AuthChoice, DecodeError> {
        let (_, slots) = run(buf, 0, |i| {
            let (i, a) = codec::array(i, "auth choice")?;
            let (i, b) = codec::array(i, "auth choice")?;
            let (i, c) = codec::array(i, "auth choice")?;
            Ok((i, [a, b, c]))
        })
        .map_err(|_| DecodeError::truncated("auth choice", 0, AUTH_CHOICE_LEN))?;
        Ok(AuthChoice { slots })
    }
}

/// The daemon's answer that ends the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionReply {
    /// `ACCEPT_SESSION`, the daemon version, the private group name.
    Accept {
        daemon_version: Version,
        private_group: GroupName,
    },
    /// A negative code, sent alone; the daemon then closes.
    Reject(i8),
}

impl SessionReply {
    /// Encode; `patch_byte` = the client's library expects one (>= 3.15).
    pub fn emit(&self, patch_byte: bool) -> Vec<u8> {
        match self {
            SessionReply::Reject(code) => vec![*code as u8],
            SessionReply::Accept {
                daemon_version,
                private_group,
            } => {
                let name = private_group.as_bytes();
                let mut out = Vec::with_capacity(5 + name.len());
                out.push(super::code::ACCEPT_SESSION as u8);
                out.push(daemon_version.major as u8);
                out.push(daemon_version.minor as u8);
                if patch_byte {
                    out.push(daemon_version.patch as u8);
                }
                out.push(name.len() as u8);
                out.extend_from_slice(name);
                out
            }
        }
    }

    /// Decode as a library of the given patch-byte generation reads it.
    pub fn parse(buf: &[u8], patch_byte: bool) -> Result<(SessionReply, usize), DecodeError> {
        let (_, first) = run(buf, 0, |i| codec::u8(i, "reply code"))?;
        if first as i8 as i32 != super::code::ACCEPT_SESSION {
            return Ok((SessionReply::Reject(first as i8), 1));
        }
        let head = if patch_byte { 5 } else { 4 };
        if buf.len() < head {
            return Err(DecodeError::truncated("accept", 0, head));
        }
        let daemon_version = Version::new(
            buf[1] as i8,
            buf[2] as i8,
            if patch_byte { buf[3] as i8 } else { 0 },
        );
        let len = buf[head - 1] as usize;
        let (_, name) = run(&buf[head..], head, |i| codec::take(i, len, "private group name"))?;
        let private_group = GroupName::new(name).ok_or(DecodeError::bad(
            "private group name",
            head,
            "longer than 31 bytes or contains NUL",
        ))?;
        Ok((
            SessionReply::Accept {
                daemon_version,
                private_group,
            },
            head + len,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_of_c01() {
        let bytes = [0x04, 0x04, 0x00, 0x01, 0x05, b'a', b'l', b'i', b'c', b'e'];
        let (req, used) = ConnectRequest::parse(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(req.name, b"alice");
        assert!(req.wants_membership());
        assert_eq!(req.emit(), bytes);
    }

    #[test]
    fn old_library_has_no_patch_byte() {
        let bytes = [0x03, 0x0e, 0x01, 0x03, b'a', b'a', b'a'];
        let (req, _) = ConnectRequest::parse(&bytes).unwrap();
        assert_eq!(req.version, Version::new(3, 14, 0));
        assert!(!req.version.does_auth_exchange());
        assert!(!req.version.expects_patch_in_accept());
        assert_eq!(req.emit(), bytes);
    }

    #[test]
    fn rejects_like_the_daemon() {
        assert_eq!(
            ConnectRequest::parse(&[0, 0, 0, 0, 0]),
            Err(ConnectRequestError::UnsupportedVersion(Version::new(0, 0, 0)))
        );
        assert!(matches!(
            ConnectRequest::parse(b"GET / HTTP/1.0"),
            Err(ConnectRequestError::NameLength(47))
        ));
        assert!(matches!(
            ConnectRequest::parse(&[4, 4]),
            Err(ConnectRequestError::Truncated { .. })
        ));
        let mut long = vec![4, 4, 0, 1, 15];
        long.extend_from_slice(b"abcdefghijklmno");
        assert_eq!(
            ConnectRequest::parse(&long),
            Err(ConnectRequestError::NameLength(15))
        );
        let bad = [4, 4, 0, 1, 8, b'b', b'a', b'd', b'#', b'n', b'a', b'm', b'e'];
        assert_eq!(
            ConnectRequest::parse(&bad),
            Err(ConnectRequestError::IllegalNameByte(b'#'))
        );
        let extra = [4, 4, 0, 1, 2, b'a', b'b', b'c'];
        assert_eq!(
            ConnectRequest::parse(&extra),
            Err(ConnectRequestError::NameCount {
                announced: 2,
                received: 3
            })
        );
    }

    #[test]
    fn accept_round_trip() {
        let reply = SessionReply::Accept {
            daemon_version: Version::SPREAD_4_4_0,
            private_group: GroupName::new(b"#alice#localhost").unwrap(),
        };
        let bytes = reply.emit(true);
        assert_eq!(&bytes[..5], &[1, 4, 4, 0, 16]);
        assert_eq!(SessionReply::parse(&bytes, true).unwrap(), (reply, bytes.len()));
    }

    #[test]
    fn auth_units() {
        let list = AuthMethodList {
            methods: vec!["NULL".into()],
        };
        assert_eq!(list.emit(), b"\x05NULL ");
        assert_eq!(AuthMethodList::parse(b"\x05NULL ").unwrap().0, list);
        let choice = AuthChoice::new(&["NULL"]);
        let bytes = choice.emit();
        assert_eq!(bytes.len(), 90);
        assert_eq!(
            AuthChoice::parse(&bytes).unwrap().methods(),
            vec!["NULL".to_string()]
        );
    }
}
