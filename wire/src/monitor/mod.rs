//! The Spread 4 monitor protocol (spmonitor <-> daemons, UDP).
//!
//! A monitor sends commands to each daemon's segment port: a 40-byte packet
//! header (see [`crate::daemon::PacketHeader`]) in the monitor's order, then
//! a body that depends on the type word:
//!
//! ```text
//! STATUS     0x01000000  no body (a daemon answers a body of any length)
//! PARTITION  0x02000000  int16[128]: component per configuration index, -1 = exit
//! FC         0x04000000  int16[128][2]: (personal, accelerated) window per
//!                        configuration index; row N (N = daemons) .0 = Window;
//!                        -1 = keep
//! RELOAD     0x08000000  no body
//! ```
//!
//! Command headers carry the monitor magic `15051963` in `memb_id.proc_id`,
//! the monitor's identity in `proc_id`, its reply port in `seq` and the
//! monitor hash 1100 in `conf_hash`. A daemon answers STATUS with a 136-byte
//! datagram: a header whose only set fields are the type word, `proc_id` (the
//! daemon) and `data_len` 96, then the 30-field [`StatusRecord`] in the
//! daemon's order, sent to `(proc_id, seq)` of the query.
//!
//! Facts: `shared/spread4-wire/monitor/README.md` (captures of 4.4.0).
//!
//! Extension (ours, not the original's): a query whose `token_round` holds
//! [`EXTENSION_REQUEST`] asks for [`StatusExtension`] counters after the
//! record. The original daemon ignores `token_round` in a query and the
//! original spmonitor reads only the first 136 bytes of a reply, and a query
//! without the request gets the original's exact 136 bytes.

use crate::client::MembId;
use crate::codec::{self, PResult};
use crate::daemon::bits::{
    FC as FC_TYPE, PARTITION as PARTITION_TYPE, RELOAD as RELOAD_TYPE, STATUS as STATUS_TYPE,
};
use crate::daemon::{put_i16, DaemonId, DecodeError, PacketHeader, HEADER_LEN};
use crate::endian::ByteOrder;

/// `memb_id.proc_id` of every monitor command.
pub const MONITOR_MAGIC: i32 = 15_051_963;
/// `conf_hash` of every monitor command; daemons accept it besides their own.
pub const MONITOR_HASH: u32 = 1100;
/// The original spmonitor's default reply port (`-p`).
pub const DEFAULT_MONITOR_PORT: u16 = 6543;
/// Entries of the partition table and rows of the flow-control table.
pub const MAX_PROCS_RING: usize = 128;
/// Bytes of a PARTITION body.
pub const PARTITION_BODY_LEN: usize = 2 * MAX_PROCS_RING;
/// Bytes of an FC body.
pub const FC_BODY_LEN: usize = 4 * MAX_PROCS_RING;
/// Bytes of the status record.
pub const STATUS_BODY_LEN: usize = 96;
/// Partition entry that tells a daemon to exit.
pub const TERMINATE: i16 = -1;
/// Flow-control value that leaves the daemon's setting unchanged.
pub const KEEP: i16 = -1;
/// `token_round` value of a STATUS query that asks for [`StatusExtension`]
/// ("SPRX").
pub const EXTENSION_REQUEST: i32 = 0x5350_5258;
/// First word of a status extension after the record ("SPRX").
const EXTENSION_TAG: u32 = 0x5350_5258;

const COMMAND_TYPES: u32 = STATUS_TYPE | PARTITION_TYPE | FC_TYPE | RELOAD_TYPE;

/// What a monitor command asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// STATUS query; `body` is whatever followed the header (normally none).
    Status { body: Vec<u8> },
    /// PARTITION: component per configuration index; [`TERMINATE`] = exit.
    Partition(Box<PartitionTable>),
    /// FC: flow-control windows.
    FlowControl(Box<FcTable>),
    /// RELOAD: re-read the configuration; `body` normally empty.
    Reload { body: Vec<u8> },
}

impl Command {
    /// The type bit of this command.
    pub fn type_bit(&self) -> u32 {
        match self {
            Command::Status { .. } => STATUS_TYPE,
            Command::Partition(_) => PARTITION_TYPE,
            Command::FlowControl(_) => FC_TYPE,
            Command::Reload { .. } => RELOAD_TYPE,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Command::Status { .. } => "STATUS",
            Command::Partition(_) => "PARTITION",
            Command::FlowControl(_) => "FC",
            Command::Reload { .. } => "RELOAD",
        }
    }
}

/// The partition table: entry i is the component of configuration index i.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionTable(pub [i16; MAX_PROCS_RING]);

impl PartitionTable {
    /// No partition (all zero): what "cancel" sends.
    pub const NONE: PartitionTable = PartitionTable([0; MAX_PROCS_RING]);

    /// A table from the first entries; the rest are 0.
    pub fn from_entries(entries: &[i16]) -> PartitionTable {
        let mut t = [0i16; MAX_PROCS_RING];
        for (slot, &v) in t.iter_mut().zip(entries) {
            *slot = v;
        }
        PartitionTable(t)
    }

    pub fn is_none(&self) -> bool {
        self.0.iter().all(|&v| v == 0)
    }
}

/// The flow-control table: row i = (personal, accelerated) of configuration
/// index i; row N (N = daemons in the monitor's file) .0 = Window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FcTable(pub [[i16; 2]; MAX_PROCS_RING]);

impl FcTable {
    /// All values [`KEEP`].
    pub const KEEP_ALL: FcTable = FcTable([[KEEP, KEEP]; MAX_PROCS_RING]);

    /// The Window a daemon applies from a table made for `num_procs` daemons.
    pub fn window(&self, num_procs: usize) -> Option<i16> {
        self.0.get(num_procs).map(|row| row[0])
    }
}

/// A monitor command datagram: header (monitor magic etc.) and command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandPacket {
    pub header: PacketHeader,
    pub command: Command,
}

impl CommandPacket {
    /// A command as the original spmonitor builds it: zeroed header with the
    /// magic, `monitor_id`, the reply port and the monitor hash.
    pub fn new(monitor_id: DaemonId, reply_port: u16, command: Command) -> CommandPacket {
        let data_len = match &command {
            Command::Status { body } | Command::Reload { body } => body.len(),
            Command::Partition(_) => PARTITION_BODY_LEN,
            Command::FlowControl(_) => FC_BODY_LEN,
        } as u16;
        CommandPacket {
            header: PacketHeader {
                kind: command.type_bit(),
                proc_id: monitor_id,
                memb_id: MembId {
                    proc_id: MONITOR_MAGIC,
                    time: 0,
                },
                seq: i32::from(reply_port),
                conf_hash: MONITOR_HASH,
                data_len,
                ..PacketHeader::default()
            },
            command,
        }
    }

    /// Whether the header carries the monitor magic.
    pub fn has_magic(&self) -> bool {
        self.header.memb_id.proc_id == MONITOR_MAGIC
    }

    /// The identity of the monitor (replies go to this host).
    pub fn monitor_id(&self) -> DaemonId {
        self.header.proc_id
    }

    /// UDP port a STATUS reply goes to (the low 16 bits of `seq`, like the
    /// original's conversion into a port).
    pub fn reply_port(&self) -> u16 {
        self.header.seq as u16
    }

    /// Whether a STATUS query asks for our [`StatusExtension`].
    pub fn wants_extension(&self) -> bool {
        self.header.token_round == EXTENSION_REQUEST
    }

    /// Decode a command datagram. The body length must equal `data_len` and
    /// PARTITION / FC bodies must be whole tables. Of several type bits the
    /// first in the order STATUS, PARTITION, FC, RELOAD wins, as the
    /// original's dispatch.
    pub fn parse(buf: &[u8]) -> Result<(CommandPacket, ByteOrder), DecodeError> {
        let (header, order, body) = crate::daemon::split_datagram(buf)?;
        let t = header.kind;
        let command = if t & STATUS_TYPE != 0 {
            Command::Status { body: body.to_vec() }
        } else if t & PARTITION_TYPE != 0 {
            Command::Partition(Box::new(parse_partition(body, order)?))
        } else if t & FC_TYPE != 0 {
            Command::FlowControl(Box::new(parse_fc(body, order)?))
        } else if t & RELOAD_TYPE != 0 {
            Command::Reload { body: body.to_vec() }
        } else {
            return Err(DecodeError::bad("type", 0, "not a monitor command"));
        };
        Ok((CommandPacket { header, command }, order))
    }

    /// Encode in `order`; `data_len` follows the body, other header fields
    /// are written as they are.
    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        let mut body = Vec::new();
        match &self.command {
            Command::Status { body: b } | Command::Reload { body: b } => body.extend_from_slice(b),
            Command::Partition(t) => {
                for &v in &t.0 {
                    put_i16(order, &mut body, v);
                }
            }
            Command::FlowControl(t) => {
                for row in &t.0 {
                    put_i16(order, &mut body, row[0]);
                    put_i16(order, &mut body, row[1]);
                }
            }
        }
        let header = PacketHeader {
            kind: (self.header.kind & !COMMAND_TYPES) | self.command.type_bit(),
            data_len: body.len() as u16,
            ..self.header
        };
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&header.emit(order));
        out.extend_from_slice(&body);
        out
    }
}

fn parse_partition(body: &[u8], order: ByteOrder) -> Result<PartitionTable, DecodeError> {
    codec::run_all(body, HEADER_LEN, "partition_table", |mut i| {
        let mut t = [0i16; MAX_PROCS_RING];
        for slot in t.iter_mut() {
            (i, *slot) = codec::i16(i, order, "partition_entry")?;
        }
        Ok((i, PartitionTable(t)))
    })
}

fn parse_fc(body: &[u8], order: ByteOrder) -> Result<FcTable, DecodeError> {
    codec::run_all(body, HEADER_LEN, "fc_table", |mut i| {
        let mut t = [[0i16; 2]; MAX_PROCS_RING];
        for row in t.iter_mut() {
            (i, row[0]) = codec::i16(i, order, "fc_personal_window")?;
            (i, row[1]) = codec::i16(i, order, "fc_accelerated_window")?;
        }
        Ok((i, FcTable(t)))
    })
}

/// The original's 30-field status record (`status.h`), host values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusRecord {
    pub sec: i32,
    pub state: i32,
    pub gstate: i32,
    pub packet_sent: i32,
    pub packet_recv: i32,
    pub packet_delivered: i32,
    pub retrans: i32,
    pub u_retrans: i32,
    pub s_retrans: i32,
    pub b_retrans: i32,
    pub aru: i32,
    pub my_aru: i32,
    pub highest_seq: i32,
    pub token_hurry: i32,
    pub token_rounds: i32,
    pub my_id: i32,
    pub leader_id: i32,
    pub message_delivered: i32,
    pub membership_changes: i16,
    pub num_procs: i16,
    pub num_segments: i16,
    pub window: i16,
    pub personal_window: i16,
    pub accelerated_ring: i16,
    pub accelerated_window: i16,
    pub num_sessions: i16,
    pub num_groups: i16,
    pub major_version: i16,
    pub minor_version: i16,
    pub patch_version: i16,
}

/// Membership states as the record names them.
pub mod state {
    pub const OP: i32 = 1;
    pub const SEG: i32 = 2;
    pub const REPRESENTED: i32 = 3;
    pub const GATHER: i32 = 4;
    pub const FORM: i32 = 5;
    pub const EVS: i32 = 6;
}

/// Group-layer states as the record names them.
pub mod gstate {
    pub const GOP: i32 = 1;
    pub const GTRANS: i32 = 2;
    pub const GGATHER: i32 = 3;
    pub const GGT: i32 = 4;
}

macro_rules! status_fields {
    ($m:ident) => {
        $m!(i32: sec, state, gstate, packet_sent, packet_recv, packet_delivered, retrans, u_retrans,
            s_retrans, b_retrans, aru, my_aru, highest_seq, token_hurry, token_rounds, my_id,
            leader_id, message_delivered;
            i16: membership_changes, num_procs, num_segments, window, personal_window,
            accelerated_ring, accelerated_window, num_sessions, num_groups, major_version,
            minor_version, patch_version)
    };
}

impl StatusRecord {
    /// Every field by its name in `status.h`, in record order, widened.
    pub fn fields(&self) -> Vec<(&'static str, i64)> {
        macro_rules! list {
            (i32: $($a:ident),*; i16: $($b:ident),*) => {
                vec![$((stringify!($a), i64::from(self.$a)),)* $((stringify!($b), i64::from(self.$b)),)*]
            };
        }
        status_fields!(list)
    }

    /// Decode the 96-byte record; `base` is its offset in the datagram.
    fn parse(mut i: &[u8], o: ByteOrder) -> PResult<'_, StatusRecord> {
        let mut s = StatusRecord::default();
        macro_rules! read {
            (i32: $($a:ident),*; i16: $($b:ident),*) => {
                $((i, s.$a) = codec::i32(i, o, stringify!($a))?;)*
                $((i, s.$b) = codec::i16(i, o, stringify!($b))?;)*
            };
        }
        status_fields!(read);
        Ok((i, s))
    }

    fn write(&self, order: ByteOrder, out: &mut Vec<u8>) {
        macro_rules! write {
            (i32: $($a:ident),*; i16: $($b:ident),*) => {
                $(order.put_i32(out, self.$a);)*
                $(put_i16(order, out, self.$b);)*
            };
        }
        status_fields!(write);
    }
}

/// Counters our daemon reports besides the original record, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusExtension {
    pub counters: Vec<(String, i64)>,
}

impl StatusExtension {
    fn parse(at: &[u8], o: ByteOrder) -> PResult<'_, StatusExtension> {
        let (i, tag) = codec::u32(at, o, "extension_tag")?;
        if tag != EXTENSION_TAG {
            return codec::bad(at, "extension_tag", "not a spread-rs status extension");
        }
        let (mut i, count) = codec::count16(i, o, "extension_count")?;
        let mut counters = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            let (rest, len) = codec::u8(i, "extension_name_len")?;
            let name_at = rest;
            let (rest, name) = codec::take(rest, usize::from(len), "extension_name")?;
            let Ok(name) = std::str::from_utf8(name) else {
                return codec::bad(name_at, "extension_name", "not UTF-8");
            };
            let (rest, hi) = codec::u32(rest, o, "extension_value")?;
            let (rest, lo) = codec::u32(rest, o, "extension_value")?;
            counters.push((name.to_string(), ((u64::from(hi) << 32) | u64::from(lo)) as i64));
            i = rest;
        }
        Ok((i, StatusExtension { counters }))
    }

    fn write(&self, order: ByteOrder, out: &mut Vec<u8>) {
        order.put_u32(out, EXTENSION_TAG);
        let counters = &self.counters[..self.counters.len().min(i16::MAX as usize)];
        put_i16(order, out, counters.len() as i16);
        for (name, value) in counters {
            let name = &name.as_bytes()[..name.len().min(255)];
            out.push(name.len() as u8);
            out.extend_from_slice(name);
            let v = *value as u64;
            order.put_u32(out, (v >> 32) as u32);
            order.put_u32(out, v as u32);
        }
    }
}

/// A STATUS reply datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusReply {
    pub header: PacketHeader,
    pub status: StatusRecord,
    /// Our extension, present only when the query asked for it.
    pub extension: Option<StatusExtension>,
}

impl StatusReply {
    /// A reply as the original daemon builds it: only type, proc_id and
    /// data_len set in the header.
    pub fn new(daemon_id: DaemonId, status: StatusRecord, extension: Option<StatusExtension>) -> StatusReply {
        let mut reply = StatusReply {
            header: PacketHeader {
                kind: STATUS_TYPE,
                proc_id: daemon_id,
                ..PacketHeader::default()
            },
            status,
            extension,
        };
        reply.header.data_len = (reply.emit(ByteOrder::NATIVE).len() - HEADER_LEN) as u16;
        reply
    }

    /// Decode a reply. Like the original spmonitor, bytes after the record
    /// are not required; unlike it, they are read as our extension when they
    /// carry its tag (and must then be well formed). `data_len` must match.
    pub fn parse(buf: &[u8]) -> Result<(StatusReply, ByteOrder), DecodeError> {
        let (header, order, body) = crate::daemon::split_datagram(buf)?;
        if header.kind & STATUS_TYPE == 0 {
            return Err(DecodeError::bad("type", 0, "not a STATUS reply"));
        }
        let (rest, status) = codec::run(body, HEADER_LEN, |i| StatusRecord::parse(i, order))?;
        let extension = if rest.is_empty() {
            None
        } else {
            let at = HEADER_LEN + body.len() - rest.len();
            Some(codec::run_all(rest, at, "status_extension", |i| {
                StatusExtension::parse(i, order)
            })?)
        };
        Ok((
            StatusReply {
                header,
                status,
                extension,
            },
            order,
        ))
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        let mut body = Vec::with_capacity(STATUS_BODY_LEN);
        self.status.write(order, &mut body);
        if let Some(ext) = &self.extension {
            ext.write(order, &mut body);
        }
        let header = PacketHeader {
            data_len: body.len() as u16,
            ..self.header
        };
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&header.emit(order));
        out.extend_from_slice(&body);
        out
    }
}

#[cfg(test)]
mod tests;
