//! Limits and default values, as the original daemon has them.

use std::time::Duration;

/// Port of a segment written without one.
pub const DEFAULT_PORT: u16 = 4803;
/// Longest daemon name in bytes (the original's 20-byte field keeps a NUL).
pub const MAX_NAME_LEN: usize = 19;
pub const MAX_SEGMENTS: usize = 20;
pub const MAX_DAEMONS_PER_SEGMENT: usize = 128;
pub const MAX_DAEMONS: usize = 128;
pub const MAX_INTERFACES: usize = 10;
/// Room the original keeps for the text the configuration hash is taken over.
pub const MAX_HASH_TEXT: usize = 20000;
/// Version the hash text names (major.minor only).
pub const VERSION_MAJOR: u32 = 4;
pub const VERSION_MINOR: u32 = 4;

/// Longest reply hold of the token (extensions file `TokenReplyHold`): a
/// local client's turnaround (the daemon writes, the client wakes, reads,
/// answers, the daemon wakes) takes some tens of microseconds on one host.
pub const DEFAULT_TOKEN_REPLY_HOLD: std::time::Duration = std::time::Duration::from_micros(100);

pub const DEFAULT_MAX_SESSION_MESSAGES: usize = 1000;
/// Largest client message body the original accepts: 100 packets of
/// 1472 - 32 bytes each.
pub const DEFAULT_MAX_MESSAGE_BODY: usize = 144_000;
/// Sessions one daemon serves by default: the original's ceiling (its event
/// table holds 2000 descriptors, of which it keeps 5 and two per session).
pub const DEFAULT_MAX_SESSIONS: usize = (2000 - 5) / 2;
/// Highest `MaxSessions` accepted (each session needs a descriptor).
pub const MAX_SESSIONS_LIMIT: usize = 1_000_000;
/// Our ceiling for `MaxMessageBodyLength` (message lengths travel as int32).
pub const MAX_MESSAGE_BODY_LIMIT: usize = i32::MAX as usize;

pub const DEFAULT_WINDOW: u32 = 160;
pub const DEFAULT_PERSONAL_WINDOW: u32 = 20;
pub const DEFAULT_ACCELERATED_WINDOW: u32 = 15;
/// Window sizes are 16-bit signed in the flow-control code and on the wire.
pub const MAX_WINDOW: u32 = i16::MAX as u32;

/// Used when the configuration does not set them.
pub const DEFAULT_RUNTIME_DIR: &str = "/var/run/spread";
pub const DEFAULT_USER: &str = "spread";
pub const DEFAULT_GROUP: &str = "spread";
/// Longest `DaemonUser` / `DaemonGroup` value accepted.
pub const MAX_USER_LEN: usize = 32;
/// Format of `EventTimeStamp` given without one (strftime syntax).
pub const DEFAULT_TIMESTAMP_FORMAT: &str = "%m/%d/%y %H:%M:%S";
/// Longest timestamp format the original keeps.
pub const MAX_TIMESTAMP_FORMAT: usize = 39;
/// The only access control policy the original ships.
pub const KNOWN_ACCESS_POLICIES: &[&str] = &["PERMIT"];
/// Where the original looks for spread.conf after the working directory.
/// Its build's `sysconfdir`; override at build time with `SPREAD_ETCDIR`.
pub const ETC_DIR: &str = match option_env!("SPREAD_ETCDIR") {
    Some(dir) => dir,
    None => "/usr/local/etc",
};

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The nine membership timers.
///
/// The file gives them in milliseconds and must give all nine or none; without
/// them the daemon uses [`MembershipTimeouts::LAN`], or
/// [`MembershipTimeouts::WIDE_AREA`] when the first daemons of the segments
/// are not all in one /16 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MembershipTimeouts {
    pub token: Duration,
    pub hurry: Duration,
    pub alive: Duration,
    pub join: Duration,
    pub rep: Duration,
    pub seg: Duration,
    pub gather: Duration,
    pub form: Duration,
    pub lookup: Duration,
}

impl MembershipTimeouts {
    pub const LAN: MembershipTimeouts = MembershipTimeouts {
        token: ms(1250),
        hurry: ms(500),
        alive: ms(250),
        join: ms(250),
        rep: ms(625),
        seg: ms(500),
        gather: ms(1250),
        form: ms(1250),
        lookup: ms(30_000),
    };

    pub const WIDE_AREA: MembershipTimeouts = MembershipTimeouts {
        token: ms(5000),
        hurry: ms(1500),
        alive: ms(250),
        join: ms(250),
        rep: ms(1250),
        seg: ms(500),
        gather: ms(2500),
        form: ms(2500),
        lookup: ms(45_000),
    };

    /// The defaults for a network of this kind.
    pub fn defaults(wide_area: bool) -> MembershipTimeouts {
        if wide_area {
            Self::WIDE_AREA
        } else {
            Self::LAN
        }
    }
}

/// Flow-control settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowControl {
    /// Packets the whole ring may send per token rotation.
    pub window: u32,
    /// Packets one daemon may send per token visit.
    pub personal_window: u32,
    /// Whether the accelerated ring protocol is used: the file's value, or
    /// else on for a LAN and off for a wide-area configuration.
    pub accelerated_ring: bool,
    /// Whether the file set `AcceleratedRing` (only then it enters the hash).
    pub accelerated_ring_set: bool,
    /// Packets a daemon may send after passing the token on.
    pub accelerated_window: u32,
}

impl Default for FlowControl {
    fn default() -> Self {
        FlowControl {
            window: DEFAULT_WINDOW,
            personal_window: DEFAULT_PERSONAL_WINDOW,
            accelerated_ring: false,
            accelerated_ring_set: false,
            accelerated_window: DEFAULT_ACCELERATED_WINDOW,
        }
    }
}
