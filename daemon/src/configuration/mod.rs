//! The daemon's configuration file (`spread.conf`).
//!
//! [`Configuration::parse`] reads the whole Spread 4.4 file format (segments,
//! daemons, interface blocks, logging, security, flow control and membership
//! timeouts). Every error is reported as `file:line:col: message`.
//!
//! spread.conf holds only the original's grammar, so one file serves a ring
//! that mixes C and Rust daemons. Settings of spread-rs live in the optional
//! extensions file ([`extensions`], `spread-rs.toml` next to spread.conf),
//! read by [`Configuration::read_extensions`]. An old spread.conf that still
//! has an extension line is read with a warning naming the new place
//! ([`Configuration::warnings`]); [`Configuration::check_original_grammar`]
//! refuses such lines.
//!
//! [`Configuration::hash`] gives the value that must match between daemons of
//! one ring, computed exactly as the original does.
//!
//! Where this parser deliberately differs from the original:
//!
//! * More lenient: a number may be followed by blanks on its line (the
//!   original's scanner then sees a route-matrix row and reports a syntax
//!   error); `EventPriority = DEBUG` is accepted besides `pDEBUG`; string
//!   settings take any single word, numbers and addresses included.
//! * Stricter, where the original misbehaves later: two daemons with one
//!   address, segments without daemons (the original crashes), empty daemon
//!   names, port 65535 (the token needs the next port), windows above 32767
//!   (16-bit in the protocol), timestamp formats over 39 bytes (truncated by
//!   the original), partial membership timeouts and inconsistent windows (the
//!   original exits at start-up; here they are parse errors with a position).
//! * Files must be UTF-8.

mod defaults;
pub mod extensions;
mod hash;
mod lexer;
mod parser;

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::BitOr;
use std::path::{Path, PathBuf};

pub use defaults::*;
pub use extensions::{Extensions, EXTENSIONS_FILE_NAME};
pub use hash::conf_hash;

/// What an interface of a daemon is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct InterfaceKinds(u8);

impl InterfaceKinds {
    pub const MONITOR: InterfaceKinds = InterfaceKinds(0x1);
    pub const CLIENT: InterfaceKinds = InterfaceKinds(0x2);
    pub const DAEMON: InterfaceKinds = InterfaceKinds(0x4);
    /// The implicit interface of a daemon without an interface block: the
    /// daemon binds to any address for every purpose.
    pub const ANY: InterfaceKinds = InterfaceKinds(0x8);
    /// Daemon, client and monitor traffic (an interface written without a
    /// letter).
    pub const ALL: InterfaceKinds = InterfaceKinds(0x7);

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn contains(self, other: InterfaceKinds) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether this interface carries daemon-to-daemon traffic.
    pub const fn serves_daemons(self) -> bool {
        self.0 & (Self::DAEMON.0 | Self::ANY.0) != 0
    }

    /// Whether clients may connect on this interface.
    pub const fn serves_clients(self) -> bool {
        self.0 & (Self::CLIENT.0 | Self::ANY.0) != 0
    }

    /// Whether monitor commands are accepted on this interface.
    pub const fn serves_monitor(self) -> bool {
        self.0 & (Self::MONITOR.0 | Self::ANY.0) != 0
    }
}

impl BitOr for InterfaceKinds {
    type Output = InterfaceKinds;
    fn bitor(self, rhs: InterfaceKinds) -> InterfaceKinds {
        InterfaceKinds(self.0 | rhs.0)
    }
}

/// One address of a daemon and what it serves. With [`InterfaceKinds::ANY`]
/// the daemon binds the wildcard address rather than `ip`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub ip: Ipv4Addr,
    pub kinds: InterfaceKinds,
}

/// A daemon of the configuration. Its identity on the wire is `ip`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonEntry {
    pub name: String,
    pub ip: Ipv4Addr,
    /// Never empty: a daemon without an interface block has one implicit
    /// interface (its own address, all kinds plus ANY).
    pub interfaces: Vec<Interface>,
}

/// A broadcast (or multicast) domain and the daemons in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Where the segment's daemons send their broadcasts.
    pub address: Ipv4Addr,
    /// Daemon traffic port; the token uses `port + 1`.
    pub port: u16,
    pub daemons: Vec<DaemonEntry>,
}

/// A daemon's place in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DaemonRef {
    pub segment: usize,
    pub index: usize,
}

/// Lowest priority of events that are logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventPriority {
    Debug = 1,
    Info = 2,
    Warning = 3,
    Error = 4,
    Critical = 5,
    Fatal = 6,
}

/// Handling of `SO_REUSEADDR` on the daemon's listening sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PortReuse {
    /// Decided by the daemon (the original's default).
    #[default]
    Auto,
    On,
    Off,
}

/// `LinkProtocol` values: read for compatibility, unused by Spread 4.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkProtocol {
    Hop,
    TcpHop,
}

/// Bits of `DebugFlags`, i.e. which event categories are logged.
pub mod debug_flags {
    pub const DEBUG: u32 = 0x0000_0001;
    pub const EXIT: u32 = 0x0000_0002;
    pub const PRINT: u32 = 0x0000_0004;
    pub const DATA_LINK: u32 = 0x0000_0010;
    pub const NETWORK: u32 = 0x0000_0020;
    pub const PROTOCOL: u32 = 0x0000_0040;
    pub const SESSION: u32 = 0x0000_0080;
    pub const CONFIGURATION: u32 = 0x0000_0100;
    pub const MEMBERSHIP: u32 = 0x0000_0200;
    pub const FLOW_CONTROL: u32 = 0x0000_0400;
    pub const STATUS: u32 = 0x0000_0800;
    pub const EVENTS: u32 = 0x0000_1000;
    pub const GROUPS: u32 = 0x0000_2000;
    pub const MEMORY: u32 = 0x0001_0000;
    pub const SKIPLIST: u32 = 0x0020_0000;
    pub const ACM: u32 = 0x0040_0000;
    pub const SECURITY: u32 = 0x0080_0000;
    pub const ALL: u32 = 0xffff_ffff;
    pub const NONE: u32 = 0;

    /// The names the file may use, with their bits.
    pub const NAMES: &[(&str, u32)] = &[
        ("DEBUG", DEBUG),
        ("EXIT", EXIT),
        ("PRINT", PRINT),
        ("DATA_LINK", DATA_LINK),
        ("NETWORK", NETWORK),
        ("PROTOCOL", PROTOCOL),
        ("SESSION", SESSION),
        ("CONFIGURATION", CONFIGURATION),
        ("MEMBERSHIP", MEMBERSHIP),
        ("FLOW_CONTROL", FLOW_CONTROL),
        ("STATUS", STATUS),
        ("EVENTS", EVENTS),
        ("GROUPS", GROUPS),
        ("MEMORY", MEMORY),
        ("SKIPLIST", SKIPLIST),
        ("ACM", ACM),
        ("SECURITY", SECURITY),
        ("ALL", ALL),
        ("NONE", NONE),
    ];

    /// What is logged before (and unless) the file sets `DebugFlags`.
    pub const DEFAULT: u32 = CONFIGURATION;
}

/// A parsed spread.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configuration {
    /// Segments in file order; the ring order is segment by segment, daemon by
    /// daemon.
    pub segments: Vec<Segment>,
    pub runtime_dir: Option<PathBuf>,
    pub daemon_user: Option<String>,
    pub daemon_group: Option<String>,
    pub required_auth_methods: Vec<String>,
    /// `["NULL"]` unless the file names auth methods: then only those.
    pub allowed_auth_methods: Vec<String>,
    pub access_control_policy: Option<String>,
    /// Messages queued for one client before the daemon disconnects it.
    pub max_session_messages: usize,
    /// spread-rs's own settings (from the extensions file).
    pub extensions: Extensions,
    /// The extensions file that was read, if any.
    pub extensions_file: Option<PathBuf>,
    /// Extension settings found in spread.conf itself (old files).
    pub extension_keys_in_spread_conf: Vec<String>,
    /// Things worth a warning in the log once logging is set up (e.g. an
    /// extension setting still in spread.conf), each with its place.
    pub warnings: Vec<String>,
    /// Log file as written (`%h`/`%H` stand for the host name, see
    /// [`Configuration::event_log_path`]); `None` logs to standard output.
    pub event_log_file: Option<PathBuf>,
    /// strftime format of the timestamp put before log lines; `None` = no
    /// timestamps.
    pub event_timestamp: Option<String>,
    /// Timestamps with microseconds (the logger appends ` %s`-style
    /// fractional seconds like the original).
    pub event_precise_timestamp: bool,
    pub event_priority: EventPriority,
    /// Mask of [`debug_flags`].
    pub debug_flags: u32,
    /// Whether monitors may partition the network and change flow control.
    pub dangerous_monitor: bool,
    pub socket_port_reuse: PortReuse,
    /// Start sequence numbers near their wrap point (a debugging aid).
    pub debug_initial_sequence: bool,
    pub link_protocol: Option<LinkProtocol>,
    /// `RouteMatrix` rows (costs 0-100), read for compatibility only.
    pub route_matrix: Vec<Vec<u8>>,
    pub flow: FlowControl,
    pub timeouts: MembershipTimeouts,
    /// Whether `timeouts` came from the file rather than the defaults.
    pub timeouts_from_file: bool,
    /// Name of the file this came from, for messages.
    pub source: String,
}

/// What went wrong reading a configuration or finding a daemon in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Bad content, with its 1-based position.
    Parse {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// The file could not be read.
    Io { file: String, message: String },
    /// No configuration file at any of these places.
    NotFound { tried: Vec<PathBuf> },
    /// The configuration has no daemon for this host or name.
    NoSuchDaemon { file: String, message: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Parse {
                file,
                line,
                col,
                message,
            } => write!(f, "{file}:{line}:{col}: {message}"),
            ConfigError::Io { file, message } => write!(f, "{file}: {message}"),
            ConfigError::NotFound { tried } => {
                write!(f, "no configuration file found (tried")?;
                for (i, p) in tried.iter().enumerate() {
                    write!(f, "{}{}", if i == 0 { " " } else { ", " }, p.display())?;
                }
                write!(f, ")")
            }
            ConfigError::NoSuchDaemon { file, message } => write!(f, "{file}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The configuration used when none is given: one daemon, `localhost`, on the
/// loopback segment at the default port.
pub const EMBEDDED_DEFAULT_TEXT: &str = "Spread_Segment 127.0.0.255:4803 {\n\tlocalhost 127.0.0.1\n}\n";

impl Configuration {
    /// Parse a configuration. Daemons written without an address are looked up
    /// with the system resolver.
    pub fn parse(text: &str, file_name: &str) -> Result<Configuration, ConfigError> {
        Self::parse_with_resolver(text, file_name, &system_resolver)
    }

    /// Parse, resolving daemons written without an address with `resolve`.
    pub fn parse_with_resolver(
        text: &str,
        file_name: &str,
        resolve: &dyn Fn(&str) -> Option<Ipv4Addr>,
    ) -> Result<Configuration, ConfigError> {
        parser::parse(
            text,
            file_name,
            resolve,
            parser::ExtensionLines::AcceptWithWarning,
        )
    }

    /// Check that `text` is a configuration the original daemon reads: valid,
    /// and without spread-rs extension lines. Host names are not looked up
    /// (each stands for a distinct documentation address).
    pub fn check_original_grammar(text: &str, file_name: &str) -> Result<(), ConfigError> {
        let names = std::cell::RefCell::new(Vec::<String>::new());
        let resolve = |name: &str| {
            let mut names = names.borrow_mut();
            let index = names.iter().position(|n| n == name).unwrap_or_else(|| {
                names.push(name.to_owned());
                names.len() - 1
            });
            Some(Ipv4Addr::new(192, 0, 2, (index % 250) as u8 + 1))
        };
        parser::parse(text, file_name, &resolve, parser::ExtensionLines::Refuse).map(|_| ())
    }

    /// Read the extensions file that goes with this configuration: `explicit`
    /// (from `--extensions`; it must exist), else [`EXTENSIONS_FILE_NAME`]
    /// next to `spread_conf` when there is one. Its settings replace those of
    /// an old spread.conf (with a warning when both set one).
    pub fn read_extensions(
        &mut self,
        spread_conf: Option<&Path>,
        explicit: Option<&Path>,
    ) -> Result<(), ConfigError> {
        let Some(path) = Extensions::locate(spread_conf, explicit) else {
            return Ok(());
        };
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Io {
            file: file.clone(),
            message: format!("cannot read the extensions file: {e}"),
        })?;
        for set in self.extensions.apply_file(&text, &file)? {
            if self.extension_keys_in_spread_conf.contains(&set.key) {
                self.warnings.push(format!(
                    "{}: {} is also set in {}; the extensions file's value is used",
                    set.place, set.key, self.source
                ));
            }
        }
        self.extensions_file = Some(path);
        Ok(())
    }

    /// [`Configuration::load`] followed by [`Configuration::read_extensions`].
    pub fn load_with_extensions(
        path: &Path,
        explicit_extensions: Option<&Path>,
    ) -> Result<Configuration, ConfigError> {
        let mut conf = Self::load(path)?;
        conf.read_extensions(Some(path), explicit_extensions)?;
        Ok(conf)
    }

    /// Read and parse a file.
    pub fn load(path: &Path) -> Result<Configuration, ConfigError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ConfigError::Io {
            file: file.clone(),
            message: e.to_string(),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| ConfigError::Io {
            file: file.clone(),
            message: format!("not UTF-8 text: {e}"),
        })?;
        Self::parse(&text, &file)
    }

    /// The configuration of [`EMBEDDED_DEFAULT_TEXT`].
    pub fn embedded_default() -> Configuration {
        let resolve = |_: &str| None;
        match Self::parse_with_resolver(EMBEDDED_DEFAULT_TEXT, "<embedded default>", &resolve) {
            Ok(conf) => conf,
            // The text is a constant that the tests parse.
            Err(e) => unreachable!("embedded default configuration: {e}"),
        }
    }

    /// Where the original looks for spread.conf when it is given no `-c`, in
    /// order: the working directory, then its build's configuration directory
    /// ([`ETC_DIR`]).
    pub fn search_paths() -> Vec<PathBuf> {
        vec![
            PathBuf::from("./spread.conf"),
            Path::new(ETC_DIR).join("spread.conf"),
        ]
    }

    /// The file the original would read: `explicit` (from `-c`) if it exists,
    /// else the first of [`Configuration::search_paths`] that exists. Like the
    /// original this falls back to the search paths even when an explicit
    /// file is missing; the caller may prefer to refuse that.
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
        let tried: Vec<PathBuf> = explicit
            .map(Path::to_path_buf)
            .into_iter()
            .chain(Self::search_paths())
            .collect();
        tried
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or(ConfigError::NotFound { tried })
    }

    /// The exact text the configuration hash is computed over.
    pub fn hash_text(&self) -> String {
        hash::text(self)
    }

    /// The configuration hash carried by every daemon packet and token.
    pub fn hash(&self) -> u32 {
        conf_hash(self.hash_text().as_bytes())
    }

    /// The hash a daemon carries after a reload of this file. The original
    /// applies its LAN default (accelerated ring on when every daemon shares
    /// the first two address bytes) after the first read, into the variable
    /// the hash reads, and a reload does not reset it: without an
    /// `AcceleratedRing` line the hash of a LAN configuration changes at
    /// the first reload although the file did not (the captures' hash flip).
    pub fn hash_after_reload(&self) -> u32 {
        conf_hash(hash::text_with(self, self.accelerated_after_reload()).as_bytes())
    }

    /// The effective AcceleratedRing after a reload (see
    /// [`Configuration::hash_after_reload`]).
    pub fn accelerated_after_reload(&self) -> bool {
        if self.flow.accelerated_ring_set {
            return self.flow.accelerated_ring;
        }
        // The membership layer's test: the first daemon of every segment.
        let mut prefixes = self.segments.iter().filter_map(|s| s.daemons.first()).map(|d| {
            let o = d.ip.octets();
            (o[0], o[1])
        });
        let first = prefixes.next();
        prefixes.all(|p| Some(p) == first)
    }

    /// All daemons in configuration (= ring) order, with their segment index.
    pub fn daemons(&self) -> impl Iterator<Item = (usize, &DaemonEntry)> + '_ {
        self.segments
            .iter()
            .enumerate()
            .flat_map(|(s, seg)| seg.daemons.iter().map(move |d| (s, d)))
    }

    /// All daemons with their [`DaemonRef`].
    pub fn daemon_refs(&self) -> impl Iterator<Item = (DaemonRef, &DaemonEntry)> + '_ {
        self.segments.iter().enumerate().flat_map(|(segment, seg)| {
            seg.daemons
                .iter()
                .enumerate()
                .map(move |(index, d)| (DaemonRef { segment, index }, d))
        })
    }

    pub fn num_daemons(&self) -> usize {
        self.segments.iter().map(|s| s.daemons.len()).sum()
    }

    /// The daemon at `d`; `None` for a reference from another configuration.
    pub fn daemon(&self, d: DaemonRef) -> Option<&DaemonEntry> {
        self.segments.get(d.segment)?.daemons.get(d.index)
    }

    /// The daemon whose identity is `ip`.
    pub fn daemon_by_ip(&self, ip: Ipv4Addr) -> Option<DaemonRef> {
        self.daemon_refs().find(|(_, d)| d.ip == ip).map(|(r, _)| r)
    }

    /// This host's daemon, as the original picks it: by name when one is given
    /// (`-n`), else the first daemon (in configuration order) with an
    /// interface on the first of `host_addrs` that has one.
    pub fn find_daemon(&self, name: Option<&str>, host_addrs: &[Ipv4Addr]) -> Result<DaemonRef, ConfigError> {
        let fail = |message: String| ConfigError::NoSuchDaemon {
            file: self.source.clone(),
            message,
        };
        match name {
            Some(name) if name.len() > MAX_NAME_LEN => Err(fail(format!(
                "daemon name '{name}' is longer than {MAX_NAME_LEN} bytes"
            ))),
            Some(name) => self
                .daemon_refs()
                .find(|(_, d)| d.name == name)
                .map(|(r, _)| r)
                .ok_or_else(|| fail(format!("no daemon named '{name}' in the configuration"))),
            None => host_addrs
                .iter()
                .find_map(|addr| {
                    self.daemon_refs()
                        .find(|(_, d)| d.interfaces.iter().any(|i| i.ip == *addr))
                        .map(|(r, _)| r)
                })
                .ok_or_else(|| {
                    let addrs: Vec<String> = host_addrs.iter().map(Ipv4Addr::to_string).collect();
                    fail(format!(
                        "none of this host's addresses ({}) belongs to a daemon in the configuration; \
                         name the daemon with -n",
                        if addrs.is_empty() {
                            "none found".to_owned()
                        } else {
                            addrs.join(", ")
                        }
                    ))
                }),
        }
    }

    /// The daemon port of `d` (its segment's port); the default port for a
    /// reference from another configuration.
    pub fn daemon_port(&self, d: DaemonRef) -> u16 {
        self.segments.get(d.segment).map_or(DEFAULT_PORT, |s| s.port)
    }

    /// Whether the segments' first daemons are spread over more than one /16
    /// network (the original's test for a wide-area network).
    pub fn is_wide_area(&self) -> bool {
        let mut firsts = self
            .segments
            .iter()
            .filter_map(|s| s.daemons.first())
            .map(|d| u32::from(d.ip) >> 16);
        match firsts.next() {
            Some(reference) => firsts.any(|net| net != reference),
            None => false,
        }
    }

    /// The log file with `%h` / `%H` replaced by `host_name`.
    pub fn event_log_path(&self, host_name: &str) -> Option<PathBuf> {
        let raw = self.event_log_file.as_ref()?.to_string_lossy().into_owned();
        Some(PathBuf::from(
            raw.replace("%h", host_name).replace("%H", host_name),
        ))
    }

    /// Runtime directory in effect.
    pub fn runtime_dir_or_default(&self) -> &Path {
        self.runtime_dir
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_RUNTIME_DIR))
    }

    /// User the daemon runs as when started as root.
    pub fn daemon_user_or_default(&self) -> &str {
        self.daemon_user.as_deref().unwrap_or(DEFAULT_USER)
    }

    /// Group the daemon runs as when started as root.
    pub fn daemon_group_or_default(&self) -> &str {
        self.daemon_group.as_deref().unwrap_or(DEFAULT_GROUP)
    }
}

/// First IPv4 address of `name` from the system resolver.
fn system_resolver(name: &str) -> Option<Ipv4Addr> {
    use std::net::{SocketAddr, ToSocketAddrs};
    (name, 0u16).to_socket_addrs().ok()?.find_map(|a| match a {
        SocketAddr::V4(v4) => Some(*v4.ip()),
        SocketAddr::V6(_) => None,
    })
}
