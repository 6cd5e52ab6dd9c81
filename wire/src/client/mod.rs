//! The Spread 4 client <-> daemon protocol (TCP or Unix stream).
//!
//! * [`connect`]: the handshake (connect request, auth-method list, auth
//!   choice, accept or reject, private group name).
//! * [`header`]: the 48-byte message header, group-name lists, whole messages.
//! * [`membership`]: bodies of membership notices.
//! * [`names`]: 32-byte group names and private-name rules.
//! * [`records`]: the same protocol cut into records (our local `SOCK_SEQPACKET` path).
//!
//! Facts follow the 4.4.0 captures in `shared/spread4-wire/client`.

pub mod connect;
pub mod header;
pub mod membership;
pub mod names;
pub mod records;

pub use connect::*;
pub use header::*;
pub use membership::*;
pub use names::*;

/// Service and control bits of a message type word (`sp.h`).
pub mod service {
    pub const UNRELIABLE_MESS: u32 = 0x0000_0001;
    pub const RELIABLE_MESS: u32 = 0x0000_0002;
    pub const FIFO_MESS: u32 = 0x0000_0004;
    pub const CAUSAL_MESS: u32 = 0x0000_0008;
    pub const AGREED_MESS: u32 = 0x0000_0010;
    pub const SAFE_MESS: u32 = 0x0000_0020;
    pub const REGULAR_MESS: u32 = 0x0000_003f;
    pub const SELF_DISCARD: u32 = 0x0000_0040;
    pub const CAUSED_BY_JOIN: u32 = 0x0000_0100;
    pub const CAUSED_BY_LEAVE: u32 = 0x0000_0200;
    pub const CAUSED_BY_DISCONNECT: u32 = 0x0000_0400;
    pub const CAUSED_BY_NETWORK: u32 = 0x0000_0800;
    pub const REG_MEMB_MESS: u32 = 0x0000_1000;
    pub const TRANSITION_MESS: u32 = 0x0000_2000;
    pub const MEMBERSHIP_MESS: u32 = 0x0000_3f00;
    /// Daemon-internal bits that never reach a client.
    pub const RETRANSMIT_MESS: u32 = 0x0000_4000;
    pub const LATENCY_MESS: u32 = 0x0000_8000;
    /// Control requests a client sends.
    pub const JOIN_MESS: u32 = 0x0001_0000;
    pub const LEAVE_MESS: u32 = 0x0002_0000;
    pub const KILL_MESS: u32 = 0x0004_0000;
    pub const CONTROL_MESS: u32 = JOIN_MESS | LEAVE_MESS | KILL_MESS;
    /// Daemon-internal: group state exchange between daemons.
    pub const GROUPS_MESS: u32 = 0x0008_0000;
    pub const DUMMY_MESS: u32 = 0x0010_0000;
    pub const STATETRANS_MESS: u32 = 0x0020_0000;
    pub const REJECT_MESS: u32 = 0x0040_0000;
    /// A flag of `SP_receive`'s service argument; never on the wire.
    pub const DROP_RECV: u32 = 0x0100_0000;
    pub const ENDIAN_RESERVED: u32 = crate::endian::ENDIAN_MARKER;
}

/// Codes of the handshake and of the C library (`sp.h`).
pub mod code {
    pub const ACCEPT_SESSION: i32 = 1;
    pub const ILLEGAL_SPREAD: i32 = -1;
    pub const COULD_NOT_CONNECT: i32 = -2;
    pub const REJECT_QUOTA: i32 = -3;
    pub const REJECT_NO_NAME: i32 = -4;
    pub const REJECT_ILLEGAL_NAME: i32 = -5;
    pub const REJECT_NOT_UNIQUE: i32 = -6;
    pub const REJECT_VERSION: i32 = -7;
    pub const CONNECTION_CLOSED: i32 = -8;
    pub const REJECT_AUTH: i32 = -9;
    pub const ILLEGAL_SESSION: i32 = -11;
    pub const ILLEGAL_SERVICE: i32 = -12;
    pub const ILLEGAL_MESSAGE: i32 = -13;
    pub const ILLEGAL_GROUP: i32 = -14;
    pub const BUFFER_TOO_SHORT: i32 = -15;
    pub const GROUPS_TOO_SHORT: i32 = -16;
    pub const MESSAGE_TOO_LONG: i32 = -17;
    pub const NET_ERROR_ON_SESSION: i32 = -18;
    pub const SP_BUG: i32 = -19;
}

/// Size limits of the protocol.
pub mod limits {
    /// A group name field, NUL included.
    pub const MAX_GROUP_NAME: usize = 32;
    /// A client's private name.
    pub const MAX_PRIVATE_NAME: usize = 10;
    /// A daemon's name.
    pub const MAX_PROC_NAME: usize = 20;
    /// Destination groups of one message.
    pub const MAX_GROUPS_PER_MESSAGE: usize = 100;
    /// The message header.
    pub const MESSAGE_HEADER_LEN: usize = 48;
    /// Auth choice: 3 slots of 30 bytes.
    pub const MAX_AUTH_METHODS: usize = 3;
    pub const MAX_AUTH_NAME: usize = 30;
    pub const AUTH_CHOICE_LEN: usize = MAX_AUTH_METHODS * MAX_AUTH_NAME;
    /// Stock 4.4.0: 100 scatter elements of (1472 - 32) bytes.
    pub const DEFAULT_MAX_MESSAGE_BODY: usize = 100 * (1472 - 32);
    /// Scatter elements the stock C library accepts.
    pub const MAX_CLIENT_SCATTER_ELEMENTS: usize = 100;
}

pub use crate::error::{DecodeError, ErrorKind};
