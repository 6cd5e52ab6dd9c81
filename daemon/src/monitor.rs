//! The daemon side of the monitor protocol (spmonitor's STATUS, PARTITION,
//! terminate, FC and RELOAD), sans I/O.
//!
//! The shell hands every datagram of the segment port that
//! [`is_monitor_datagram`] recognises to [`MonitorEngine::handle`] instead of
//! the ring, and carries out the [`MonitorAction`] it returns. Acceptance
//! follows the original's order of checks (facts:
//! `shared/spread4-wire/monitor/README.md`):
//!
//! 1. `conf_hash` is this daemon's or the monitor hash (else the ring drops it);
//! 2. PARTITION: refused with the original's log line unless
//!    `DangerousMonitor = true`; then the monitor magic and a `proc_id` of
//!    the configuration are required;
//! 3. a command without the magic must come from a configured transmitter
//!    in this daemon's component; own packets are ignored;
//! 4. the body length must match `data_len`;
//! 5. STATUS is answered (magic and configured `proc_id`) to
//!    `(proc_id, seq)` of the query; FC needs `DangerousMonitor`, the magic and a
//!    configured `proc_id`; RELOAD is honoured as it comes (as the original).
//!
//! Deliberate differences, both stricter: PARTITION and FC must also come
//! from an address of the configuration (or this host's loopback), not only
//! name one in the header; a truncated PARTITION is refused (the original
//! reads the table from its receive buffer whatever the length). STATUS
//! replies beyond [`STATUS_REPLIES_PER_SECOND`] are not sent (a flood gets a
//! rate-limited log line; the original answers every one).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use spread_wire::daemon::bits::{
    CONTROL as CONTROL_TYPE, FC as FC_TYPE, PARTITION as PARTITION_TYPE, RELOAD as RELOAD_TYPE,
    STATUS as STATUS_TYPE,
};
use spread_wire::daemon::{DaemonId, PacketHeader, HEADER_LEN};
use spread_wire::endian::ByteOrder;
use spread_wire::monitor::{
    Command, CommandPacket, StatusExtension, StatusRecord, StatusReply, KEEP, MONITOR_HASH, MONITOR_MAGIC,
    TERMINATE,
};

/// A partition clears itself this long after the last PARTITION packet.
pub const PARTITION_TIMEOUT: Duration = Duration::from_secs(60);
/// STATUS replies sent per second at most; the rest are counted and logged.
pub const STATUS_REPLIES_PER_SECOND: u32 = 200;
/// At most one log line per kind of refused monitor packet in this window.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The release our daemon reports in STATUS replies (the original's 4.4.0).
pub const VERSION: (i16, i16, i16) = (4, 4, 0);

/// What the monitor engine needs to know about its daemon.
#[derive(Clone, Debug)]
pub struct MonitorConfig {
    pub my_id: u32,
    /// Daemon ids in configuration order (the monitor's table index).
    pub daemon_ids: Vec<u32>,
    /// Every interface address of every configured daemon.
    pub daemon_addrs: Vec<Ipv4Addr>,
    pub conf_hash: u32,
    /// `DangerousMonitor = true`: PARTITION, terminate and FC are honoured.
    pub dangerous: bool,
}

/// What the shell must do for a monitor packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MonitorAction {
    /// Send `datagram` to `to` from a socket other than the ring's.
    Reply { to: SocketAddrV4, datagram: Vec<u8> },
    /// Install (or with `None` remove) a partition: component per daemon id.
    SetPartition(Option<HashMap<u32, i16>>),
    /// The monitor told this daemon to exit.
    Terminate,
    /// Replace the flow-control settings that are `Some`.
    FlowControl {
        window: Option<i32>,
        personal_window: Option<i32>,
        accelerated_window: Option<i32>,
    },
    /// Re-read the configuration file (the reload machinery's entry point).
    Reload,
}

/// What a STATUS reply reports besides the engine's own counters.
#[derive(Clone, Debug, Default)]
pub struct StatusInputs {
    pub ring: crate::ring::RingStatus,
    pub ring_stats: crate::ring::RingStats,
    /// Group-layer state, 1 GOP .. 4 GGT.
    pub gstate: i32,
    pub num_sessions: usize,
    pub num_groups: usize,
    /// Regular memberships installed since start.
    pub membership_changes: u64,
    /// Our extension counters (shown only to monitors that ask).
    pub extra: Vec<(String, i64)>,
}

/// Counters of the monitor engine itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorStats {
    pub status_answered: u64,
    pub status_rate_limited: u64,
    pub refused: u64,
    pub partitions: u64,
    pub flow_controls: u64,
    pub reloads: u64,
}

/// At most [`LOG_BURST`] lines per [`LOG_INTERVAL`]; the rest are counted
/// and the count goes into the next line.
#[derive(Clone, Copy, Debug, Default)]
struct RateLog {
    window_start: Option<Instant>,
    lines: u32,
    unlogged: u64,
}

/// Lines of one kind per [`LOG_INTERVAL`] (a monitor sends each command
/// twice per daemon; the original logs every copy).
const LOG_BURST: u32 = 8;

impl RateLog {
    /// `Some(unlogged)` when a line may be written now.
    fn due(&mut self, now: Instant) -> Option<u64> {
        if self
            .window_start
            .is_none_or(|t| now.saturating_duration_since(t) >= LOG_INTERVAL)
        {
            self.window_start = Some(now);
            self.lines = 0;
        }
        if self.lines < LOG_BURST {
            self.lines += 1;
            Some(std::mem::take(&mut self.unlogged))
        } else {
            self.unlogged += 1;
            None
        }
    }
}

fn more(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more not logged)")
    }
}

pub struct MonitorEngine {
    cfg: MonitorConfig,
    started: Instant,
    partition_until: Option<Instant>,
    window_start: Option<Instant>,
    replies_in_window: u32,
    stats: MonitorStats,
    denied_log: RateLog,
    invalid_log: RateLog,
    flood_log: RateLog,
}

/// Whether a datagram of the segment port is a monitor command this engine
/// must see: a control type bit and the monitor hash or `own_hash`.
pub fn is_monitor_datagram(bytes: &[u8], own_hash: u32) -> bool {
    PacketHeader::parse(bytes).is_ok_and(|(h, _)| {
        h.kind & CONTROL_TYPE != 0 && (h.conf_hash == MONITOR_HASH || h.conf_hash == own_hash)
    })
}

fn ip(id: u32) -> Ipv4Addr {
    Ipv4Addr::from(id)
}

impl MonitorConfig {
    /// The monitor protocol of daemon `me` of `config`, whose packets carry
    /// `conf_hash`.
    pub fn from_configuration(
        config: &crate::configuration::Configuration,
        me: &crate::configuration::DaemonEntry,
        conf_hash: u32,
    ) -> MonitorConfig {
        MonitorConfig {
            my_id: u32::from(me.ip),
            daemon_ids: config.daemon_refs().map(|(_, d)| u32::from(d.ip)).collect(),
            daemon_addrs: config
                .daemon_refs()
                .flat_map(|(_, d)| d.interfaces.iter().map(|i| i.ip).chain([d.ip]))
                .collect(),
            conf_hash,
            dangerous: config.dangerous_monitor,
        }
    }
}

impl MonitorEngine {
    /// A reloaded configuration (daemon table, hash, DangerousMonitor).
    pub fn reconfigure(&mut self, cfg: MonitorConfig) {
        self.cfg = cfg;
    }

    /// The configuration hash this daemon's monitor packets may carry.
    pub fn conf_hash(&self) -> u32 {
        self.cfg.conf_hash
    }

    pub fn new(cfg: MonitorConfig, now: Instant) -> MonitorEngine {
        if cfg.dangerous {
            log::warn!("ENABLING Dangerous Monitor Commands! Make sure Spread network is secured");
        }
        MonitorEngine {
            cfg,
            started: now,
            partition_until: None,
            window_start: None,
            replies_in_window: 0,
            stats: MonitorStats::default(),
            denied_log: RateLog::default(),
            invalid_log: RateLog::default(),
            flood_log: RateLog::default(),
        }
    }

    pub fn stats(&self) -> MonitorStats {
        self.stats
    }

    /// When the partition in force clears itself.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.partition_until
    }

    /// The partition timer: past it the partition is removed.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<MonitorAction> {
        match self.partition_until {
            Some(t) if t <= now => {
                self.partition_until = None;
                log::info!(
                    "monitor: partition cleared {}s after the last command",
                    PARTITION_TIMEOUT.as_secs()
                );
                Some(MonitorAction::SetPartition(None))
            }
            _ => None,
        }
    }

    fn configured(&self, id: DaemonId) -> bool {
        self.cfg.daemon_ids.contains(&id)
    }

    fn sent_by_configured_host(&self, from: SocketAddr) -> bool {
        match from {
            SocketAddr::V4(a) => a.ip().is_loopback() || self.cfg.daemon_addrs.contains(a.ip()),
            SocketAddr::V6(_) => false,
        }
    }

    fn invalid(&mut self, now: Instant, from: SocketAddr, why: std::fmt::Arguments<'_>) {
        self.stats.refused += 1;
        match self.invalid_log.due(now) {
            Some(n) => log::warn!("monitor: refused a packet from {from}: {why}{}", more(n)),
            None => log::debug!("monitor: refused a packet from {from}: {why}"),
        }
    }

    /// One monitor datagram from `from`; `status` is asked for the daemon's
    /// counters only when a STATUS reply is due.
    pub fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        status: impl FnOnce() -> StatusInputs,
    ) -> Option<MonitorAction> {
        let Ok((h, _)) = PacketHeader::parse(bytes) else {
            self.invalid(
                now,
                from,
                format_args!("{} bytes, shorter than a header", bytes.len()),
            );
            return None;
        };
        let magic = h.memb_id.proc_id == MONITOR_MAGIC;
        if h.kind & PARTITION_TYPE != 0 {
            if !self.cfg.dangerous {
                self.stats.refused += 1;
                let who = ip(h.proc_id);
                if let Some(n) = self.denied_log.due(now) {
                    log::warn!(
                        "Net_recv: Request to set partition or kill daemons from ({who}) denied. Monitor in safe mode{}",
                        more(n)
                    );
                }
                return None;
            }
            if !magic || !self.configured(h.proc_id) || !self.sent_by_configured_host(from) {
                self.invalid(
                    now,
                    from,
                    format_args!("PARTITION from {} outside the configuration", ip(h.proc_id)),
                );
                return None;
            }
            return self.partition(now, from, bytes);
        }
        if !magic && (h.transmitter == 0 || !self.configured(h.transmitter)) {
            self.invalid(
                now,
                from,
                format_args!("In_my_component: unknown proc {}", ip(h.transmitter)),
            );
            return None;
        }
        if h.transmitter == self.cfg.my_id {
            return None;
        }
        let (pkt, _) = match CommandPacket::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                self.invalid(
                    now,
                    from,
                    format_args!(
                        "Net_recv: Received invalid packet - received bytes ({}) != expected length ({}): {e}",
                        bytes.len(),
                        HEADER_LEN as i64 + i64::from(h.data_len)
                    ),
                );
                return None;
            }
        };
        match pkt.command {
            Command::Status { .. } => {
                if !magic || !self.configured(h.proc_id) {
                    self.invalid(
                        now,
                        from,
                        format_args!("STATUS for {} outside the configuration", ip(h.proc_id)),
                    );
                    return None;
                }
                self.status_reply(now, &pkt, status())
            }
            Command::Partition(_) => None, // handled above
            Command::FlowControl(table) => {
                if !self.cfg.dangerous {
                    log::debug!(
                        "monitor: FC from {} ignored: DangerousMonitor is off",
                        ip(h.proc_id)
                    );
                    return None;
                }
                if !magic || !self.configured(h.proc_id) || !self.sent_by_configured_host(from) {
                    self.invalid(
                        now,
                        from,
                        format_args!("FC from {} outside the configuration", ip(h.proc_id)),
                    );
                    return None;
                }
                let n = self.cfg.daemon_ids.len();
                let me = self
                    .cfg
                    .daemon_ids
                    .iter()
                    .position(|&d| d == self.cfg.my_id)
                    .unwrap_or(n);
                let keep = |v: i16| (v != KEEP).then_some(i32::from(v));
                let row = table.0.get(me).copied().unwrap_or([KEEP, KEEP]);
                self.stats.flow_controls += 1;
                let action = MonitorAction::FlowControl {
                    window: table.window(n).and_then(keep),
                    personal_window: keep(row[0]),
                    accelerated_window: keep(row[1]),
                };
                log::info!("monitor: flow control from {}: {action:?}", ip(h.proc_id));
                Some(action)
            }
            Command::Reload { .. } => {
                // Stricter than the original (which reloads on a RELOAD from
                // anyone): a forged or mangled datagram from outside the
                // configuration must not re-form the ring.
                if !self.sent_by_configured_host(from) {
                    self.invalid(
                        now,
                        from,
                        format_args!("RELOAD from a host outside the configuration"),
                    );
                    return None;
                }
                self.stats.reloads += 1;
                log::info!("monitor: configuration reload requested by {}", ip(h.proc_id));
                Some(MonitorAction::Reload)
            }
        }
    }

    fn partition(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> Option<MonitorAction> {
        let table = match CommandPacket::parse(bytes) {
            Ok((
                CommandPacket {
                    command: Command::Partition(t),
                    ..
                },
                _,
            )) => t,
            Ok(_) => return None,
            Err(e) => {
                self.invalid(now, from, format_args!("PARTITION refused: {e}"));
                return None;
            }
        };
        let n = self.cfg.daemon_ids.len().min(table.0.len());
        let mine = self
            .cfg
            .daemon_ids
            .iter()
            .position(|&d| d == self.cfg.my_id)
            .and_then(|i| table.0.get(i).copied());
        self.stats.partitions += 1;
        if mine == Some(TERMINATE) {
            log::error!("Net_recv: Instructed to exit by monitor");
            return Some(MonitorAction::Terminate);
        }
        let components: HashMap<u32, i16> = self.cfg.daemon_ids[..n]
            .iter()
            .copied()
            .zip(table.0[..n].iter().copied())
            .collect();
        if components.values().all(|&c| c == 0) {
            self.partition_until = None;
            log::info!("Net_recv: Got monitor message, component 0 (partition removed)");
            return Some(MonitorAction::SetPartition(None));
        }
        self.partition_until = Some(now + PARTITION_TIMEOUT);
        log::info!("Net_recv: Got monitor message, component {}", mine.unwrap_or(0));
        Some(MonitorAction::SetPartition(Some(components)))
    }

    fn status_reply(
        &mut self,
        now: Instant,
        query: &CommandPacket,
        inputs: StatusInputs,
    ) -> Option<MonitorAction> {
        let window_over = self
            .window_start
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if window_over {
            self.window_start = Some(now);
            self.replies_in_window = 0;
        }
        if self.replies_in_window >= STATUS_REPLIES_PER_SECOND {
            self.stats.status_rate_limited += 1;
            if self.flood_log.due(now).is_some() {
                self.flood_log.lines = LOG_BURST; // one line per window is enough here
                log::warn!(
                    "monitor: more than {STATUS_REPLIES_PER_SECOND} STATUS requests a second; not answering the rest \
                     ({} unanswered in all)",
                    self.stats.status_rate_limited
                );
            }
            return None;
        }
        self.replies_in_window += 1;
        self.stats.status_answered += 1;
        let record = self.record(now, &inputs);
        let extension = query.wants_extension().then(|| {
            let mut counters = inputs.extra.clone();
            let s = inputs.ring_stats;
            let m = self.stats;
            for (k, v) in [
                ("dropped_datagrams", s.dropped_datagrams),
                ("dropped_conf_hash", s.dropped_conf_hash),
                ("dropped_by_partition", s.dropped_by_partition),
                ("monitor_refused", m.refused),
                ("monitor_status_rate_limited", m.status_rate_limited),
            ] {
                counters.push((k.to_string(), v as i64));
            }
            StatusExtension { counters }
        });
        let reply = StatusReply::new(self.cfg.my_id, record, extension);
        let to = SocketAddrV4::new(ip(query.monitor_id()), query.reply_port());
        Some(MonitorAction::Reply {
            to,
            datagram: reply.emit(ByteOrder::NATIVE),
        })
    }

    /// The 30-field record from the daemon's counters.
    pub fn record(&self, now: Instant, i: &StatusInputs) -> StatusRecord {
        let r = &i.ring;
        let s = &i.ring_stats;
        let c32 = |v: u64| v.min(i32::MAX as u64) as i32;
        let c16 = |v: u64| v.min(i16::MAX as u64) as i16;
        StatusRecord {
            sec: c32(now.saturating_duration_since(self.started).as_secs()),
            state: r.state,
            gstate: i.gstate,
            packet_sent: c32(s.packets_sent),
            packet_recv: c32(s.packets_received),
            packet_delivered: c32(s.packets_delivered),
            retrans: c32(s.retransmissions_sent),
            u_retrans: c32(s.retrans_unicast),
            s_retrans: c32(s.retrans_segment),
            b_retrans: c32(s.retrans_broadcast),
            aru: r.aru,
            my_aru: r.my_aru,
            highest_seq: r.highest_seq,
            token_hurry: c32(s.token_hurries),
            token_rounds: r.token_rounds,
            my_id: self.cfg.my_id as i32,
            leader_id: r.leader_id as i32,
            message_delivered: c32(s.messages_delivered),
            membership_changes: c16(i.membership_changes),
            num_procs: c16(r.num_procs as u64),
            num_segments: c16(r.num_segments as u64),
            window: r.window.clamp(i16::MIN.into(), i16::MAX.into()) as i16,
            personal_window: r.personal_window.clamp(i16::MIN.into(), i16::MAX.into()) as i16,
            accelerated_ring: i16::from(r.accelerated_ring),
            accelerated_window: r.accelerated_window.clamp(i16::MIN.into(), i16::MAX.into()) as i16,
            num_sessions: c16(i.num_sessions as u64),
            num_groups: c16(i.num_groups as u64),
            major_version: VERSION.0,
            minor_version: VERSION.1,
            patch_version: VERSION.2,
        }
    }
}

/// The daemon's counters for a STATUS reply.
pub fn status_inputs(engine: &crate::engine::Engine) -> StatusInputs {
    let (ring, ring_stats) = engine.status_counters();
    StatusInputs {
        ring,
        ring_stats,
        gstate: match engine.groups().state() {
            crate::groups::State::Op => 1,
            crate::groups::State::Trans => 2,
            crate::groups::State::Gather => 3,
            crate::groups::State::GatherTrans => 4,
        },
        num_sessions: engine.session_count(),
        num_groups: engine.groups().len(),
        membership_changes: ring_stats.memberships_installed,
        extra: vec![(
            "dropped_ring_messages".to_string(),
            engine.dropped_ring_messages() as i64,
        )],
    }
}

/// What the header's type says, for logs.
pub fn command_name(type_word: u32) -> &'static str {
    if type_word & STATUS_TYPE != 0 {
        "STATUS"
    } else if type_word & PARTITION_TYPE != 0 {
        "PARTITION"
    } else if type_word & FC_TYPE != 0 {
        "FC"
    } else if type_word & RELOAD_TYPE != 0 {
        "RELOAD"
    } else {
        "?"
    }
}

#[cfg(test)]
mod tests;
