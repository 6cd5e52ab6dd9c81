//! Where a daemon is: the `spread_name` argument of `SP_connect`.
//!
//! Forms: `NULL` or `""` (the default port, over the Unix socket), `"4803"`
//! (Unix socket `/tmp/4803` on this host), `"4803@host"` (TCP to the first
//! IPv4 address of `host`).

use std::net::{SocketAddrV4, ToSocketAddrs};
use std::path::PathBuf;

use crate::error::SpError;

/// The default daemon port.
pub const DEFAULT_SPREAD_PORT: u16 = 4803;
/// Directory of the daemons' Unix sockets.
pub const UNIX_SOCKET_DIR: &str = "/tmp";
/// Longest accepted spread name: a 64-byte host name, `@` and 5 digits.
const MAX_SPREAD_NAME: usize = 64 + 6;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DaemonAddress {
    Unix(PathBuf),
    Tcp(SocketAddrV4),
}

impl DaemonAddress {
    /// Parse a spread name; host names are resolved here.
    pub fn parse(spread_name: Option<&[u8]>) -> Result<DaemonAddress, SpError> {
        let name = match spread_name {
            None | Some(b"") => return Ok(Self::unix(DEFAULT_SPREAD_PORT)),
            Some(n) => n,
        };
        if name.len() > MAX_SPREAD_NAME {
            return Err(SpError::IllegalSpread);
        }
        let (port, rest) = parse_port(name).ok_or(SpError::IllegalSpread)?;
        let rest = trim_start(rest);
        if rest.is_empty() {
            return Ok(Self::unix(port));
        }
        // The host is the next whitespace-free word, which must start with '@'.
        let word_end = rest
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let host = rest[..word_end]
            .strip_prefix(b"@")
            .ok_or(SpError::IllegalSpread)?;
        let host = std::str::from_utf8(host).map_err(|_| SpError::IllegalSpread)?;
        if host.is_empty() {
            return Err(SpError::IllegalSpread);
        }
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|_| SpError::IllegalSpread)?
            .find_map(|a| match a {
                std::net::SocketAddr::V4(v4) => Some(v4),
                std::net::SocketAddr::V6(_) => None,
            })
            .ok_or(SpError::IllegalSpread)?;
        Ok(DaemonAddress::Tcp(addr))
    }

    fn unix(port: u16) -> DaemonAddress {
        DaemonAddress::Unix(PathBuf::from(format!("{UNIX_SOCKET_DIR}/{port}")))
    }
}

fn trim_start(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    &s[start..]
}

/// A port number as C's `%hu` reads it: optional blanks and sign, decimal
/// digits, the value taken modulo 2^16. Returns the port and what follows.
fn parse_port(s: &[u8]) -> Option<(u16, &[u8])> {
    let mut s = trim_start(s);
    let mut negative = false;
    if let Some((&sign, rest)) = s.split_first() {
        if sign == b'+' || sign == b'-' {
            negative = sign == b'-';
            s = rest;
        }
    }
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let value = s[..digits].iter().fold(0u16, |acc, &d| {
        acc.wrapping_mul(10).wrapping_add(u16::from(d - b'0'))
    });
    let value = if negative { value.wrapping_neg() } else { value };
    Some((value, &s[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn forms() {
        assert_eq!(
            DaemonAddress::parse(None),
            Ok(DaemonAddress::Unix("/tmp/4803".into()))
        );
        assert_eq!(
            DaemonAddress::parse(Some(b"")),
            Ok(DaemonAddress::Unix("/tmp/4803".into()))
        );
        assert_eq!(
            DaemonAddress::parse(Some(b"24803")),
            Ok(DaemonAddress::Unix("/tmp/24803".into()))
        );
        assert_eq!(
            DaemonAddress::parse(Some(b"4803@127.0.0.1")),
            Ok(DaemonAddress::Tcp(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4803)))
        );
        assert_eq!(
            DaemonAddress::parse(Some(b"4803@localhost")),
            Ok(DaemonAddress::Tcp(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4803)))
        );
    }

    #[test]
    fn illegal_names() {
        for bad in [&b"abc"[..], b"@localhost", b"4803x", b"4803@", &[b'1'; 80][..]] {
            assert_eq!(
                DaemonAddress::parse(Some(bad)),
                Err(SpError::IllegalSpread),
                "{bad:?}"
            );
        }
    }
}
