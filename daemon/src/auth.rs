//! Client authentication: the NULL and IP methods.
//!
//! A session is authorized when every method it asked for is allowed and
//! every method it asked for, plus every required one, accepts it.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::session::Peer;

/// The methods this daemon implements.
pub const KNOWN_METHODS: [&str; 2] = ["NULL", "IP"];

/// Who may connect under the IP method: networks, plus the special
/// `unix` (Unix-socket clients) and `local` (127.0.0.0/8 over TCP) rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpAccessList {
    /// (network address, prefix length); Unix-socket clients count as 0.0.0.0/32.
    rules: Vec<(u32, u8)>,
}

#[derive(Debug)]
pub struct AccessFileError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for AccessFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

impl std::error::Error for AccessFileError {}

impl IpAccessList {
    /// Parse a `spread.access_ip` file: one rule per line, `#` comments.
    pub fn parse(text: &str, path: &Path) -> Result<IpAccessList, AccessFileError> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with("unix") {
                rules.push((0, 32));
                continue;
            }
            if line.starts_with("local") {
                rules.push((127 << 24, 8));
                continue;
            }
            let err = |message: String| AccessFileError {
                path: path.to_owned(),
                line: i + 1,
                message,
            };
            let (addr, prefix) = match line.split_once('/') {
                Some((a, p)) => (
                    a,
                    p.trim()
                        .parse::<u8>()
                        .map_err(|_| err(format!("bad prefix in {line:?}")))?,
                ),
                None => (line, 32),
            };
            let addr: Ipv4Addr = addr
                .trim()
                .parse()
                .map_err(|_| err(format!("not an address: {line:?}")))?;
            if prefix > 32 {
                return Err(err(format!("prefix {prefix} is longer than 32")));
            }
            rules.push((u32::from(addr), prefix));
        }
        Ok(IpAccessList { rules })
    }

    /// Load the first of `spread.access_ip` in `dir`, `./`, `/etc/`.
    pub fn load_default(dir: Option<&Path>) -> Option<Result<IpAccessList, AccessFileError>> {
        let mut candidates = Vec::new();
        if let Some(d) = dir {
            candidates.push(d.join("spread.access_ip"));
        }
        candidates.push(PathBuf::from("./spread.access_ip"));
        candidates.push(PathBuf::from("/etc/spread.access_ip"));
        let path = candidates.into_iter().find(|p| p.is_file())?;
        Some(match std::fs::read_to_string(&path) {
            Ok(text) => IpAccessList::parse(&text, &path),
            Err(e) => Err(AccessFileError {
                path,
                line: 0,
                message: e.to_string(),
            }),
        })
    }

    pub fn allows(&self, peer: Peer) -> bool {
        let ip = match peer {
            Peer::Unix => 0,
            Peer::Tcp(ip) => u32::from(ip),
        };
        self.rules.iter().any(|&(net, prefix)| {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix as u32)
            };
            ip & mask == net & mask
        })
    }
}

/// The daemon's authentication settings.
#[derive(Clone, Debug)]
pub struct AuthPolicy {
    pub allowed: Vec<String>,
    pub required: Vec<String>,
    /// `None`: no access file was found, so the IP method admits nobody.
    pub ip_access: Option<IpAccessList>,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            allowed: vec!["NULL".into()],
            required: Vec::new(),
            ip_access: None,
        }
    }
}

/// Why a session was denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthDenied {
    NoMethods,
    NotAllowed(String),
    Refused(String),
}

impl std::fmt::Display for AuthDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthDenied::NoMethods => write!(f, "no usable auth method requested or allowed"),
            AuthDenied::NotAllowed(m) => write!(f, "auth method {m:?} is not allowed"),
            AuthDenied::Refused(m) => write!(f, "auth method {m} refused the client"),
        }
    }
}

impl AuthPolicy {
    pub fn is_allowed(&self, method: &str) -> bool {
        self.allowed.iter().any(|m| m == method)
    }

    /// The list the daemon offers clients.
    pub fn offered(&self) -> Vec<String> {
        self.allowed.clone()
    }

    fn check(&self, method: &str, peer: Peer) -> bool {
        match method {
            "NULL" => true,
            "IP" => self.ip_access.as_ref().is_some_and(|list| list.allows(peer)),
            _ => false,
        }
    }

    /// Authorize a client that asked for `requested` methods.
    pub fn authorize(&self, requested: &[String], peer: Peer) -> Result<(), AuthDenied> {
        if let Some(bad) = requested.iter().find(|m| !self.is_allowed(m)) {
            return Err(AuthDenied::NotAllowed(bad.clone()));
        }
        let mut methods: Vec<&str> = requested.iter().map(String::as_str).collect();
        for r in &self.required {
            if !methods.contains(&r.as_str()) {
                methods.push(r);
            }
        }
        if methods.is_empty() {
            return Err(AuthDenied::NoMethods);
        }
        match methods.iter().find(|m| !self.check(m, peer)) {
            Some(m) => Err(AuthDenied::Refused(m.to_string())),
            None => Ok(()),
        }
    }

    /// Libraries older than 3.16 skip the exchange: IP if allowed, else NULL.
    pub fn authorize_old_library(&self, peer: Peer) -> Result<(), AuthDenied> {
        if self.is_allowed("IP") {
            return if self.check("IP", peer) {
                Ok(())
            } else {
                Err(AuthDenied::Refused("IP".into()))
            };
        }
        if self.is_allowed("NULL") {
            Ok(())
        } else {
            Err(AuthDenied::NoMethods)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_file_rules() {
        let list =
            IpAccessList::parse("# c\nunix\nlocal\n192.168.1.0/24\n10.0.0.7\n", Path::new("f")).unwrap();
        assert!(list.allows(Peer::Unix));
        assert!(list.allows(Peer::Tcp(Ipv4Addr::new(127, 0, 0, 2))));
        assert!(list.allows(Peer::Tcp(Ipv4Addr::new(192, 168, 1, 200))));
        assert!(list.allows(Peer::Tcp(Ipv4Addr::new(10, 0, 0, 7))));
        assert!(!list.allows(Peer::Tcp(Ipv4Addr::new(10, 0, 0, 8))));
        let err = IpAccessList::parse("300.1.1.1\n", Path::new("f")).unwrap_err();
        assert_eq!(err.to_string(), "f:1: not an address: \"300.1.1.1\"");
    }

    #[test]
    fn required_methods_are_added() {
        let policy = AuthPolicy {
            allowed: vec!["NULL".into(), "IP".into()],
            required: vec!["IP".into()],
            ip_access: Some(IpAccessList::parse("local\n", Path::new("f")).unwrap()),
        };
        assert_eq!(
            policy.authorize(&["NULL".into()], Peer::Tcp(Ipv4Addr::LOCALHOST)),
            Ok(())
        );
        assert_eq!(
            policy.authorize(&["NULL".into()], Peer::Unix),
            Err(AuthDenied::Refused("IP".into()))
        );
        assert_eq!(
            policy.authorize(&["FOO".into()], Peer::Unix),
            Err(AuthDenied::NotAllowed("FOO".into()))
        );
        assert_eq!(
            AuthPolicy::default().authorize(&[], Peer::Unix),
            Err(AuthDenied::NoMethods)
        );
    }
}
