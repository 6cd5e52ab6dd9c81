//! spmonitor's interactive menu: status on/off per daemon, define / send /
//! review / cancel a partition, define / send / review flow control,
//! terminate daemons, reload the configuration, exit.
//!
//! The prompts, the status block and the review tables are the original's
//! (scripts answer and parse them); the menu listing is in our words. The
//! menu talks to the daemons only through [`Link`], so it can be driven
//! against any transport (the UDP one in the binary, a recorder in tests).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use spread_daemon::configuration::Configuration;

use crate::input::Input;
use crate::scan::{scan_int, words};
use spread_wire::endian::ByteOrder;
use spread_wire::monitor::{
    Command, CommandPacket, FcTable, PartitionTable, StatusRecord, StatusReply, MAX_PROCS_RING,
};

/// How the menu reaches the daemons.
pub trait Link {
    /// Send one datagram to a daemon's `ip:port`.
    fn send(&mut self, to: SocketAddrV4, datagram: &[u8]);
}

/// A partition is re-sent this often while it is in force (the daemons
/// clear one by themselves 60 s after the last copy).
pub const PARTITION_RESEND: Duration = Duration::from_secs(25);

/// `fgets` size of every line the menu reads.
const LINE: usize = 70;

pub const MENU: &str = "
----- spmonitor commands -----
\t0   status reports on or off: daemon names, all or none; empty line ends
\t1   define a partition: a component number for each daemon
\t2   send the partition (again every 25 s while in force)
\t3   show the partition in force
\t4   cancel the partition
\t5   define flow control: Window, then each daemon's windows (empty: keep)
\t6   send the flow control
\t7   show the flow control last sent
\t8   terminate daemons: daemon names, all or none; empty line ends
\tr   make every daemon reload its configuration, and reload ours
\t9   exit (q too)

Monitor> ";

/// One daemon of the configuration, in configuration order.
#[derive(Clone, Debug)]
struct Daemon {
    name: String,
    ip: Ipv4Addr,
    port: u16,
    /// Where the segment boundaries are, for the tables' blank lines.
    segment: usize,
}

fn daemons_of(conf: &Configuration) -> Vec<Daemon> {
    conf.daemon_refs()
        .map(|(r, d)| Daemon {
            name: d.name.clone(),
            ip: d.ip,
            port: conf.daemon_port(r),
            segment: r.segment,
        })
        .collect()
}

/// What the menu does next for the caller's loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// Exit with this status.
    Exit(i32),
}

pub struct Monitor<L: Link> {
    link: L,
    conf_path: PathBuf,
    conf: Configuration,
    daemons: Vec<Daemon>,
    /// Our identity (replies go to `my_id:my_port`).
    my_id: u32,
    my_port: u16,
    status_period: Duration,
    status_wanted: Vec<bool>,
    next_status: Option<Instant>,
    partition: [i16; MAX_PROCS_RING],
    work_partition: [i16; MAX_PROCS_RING],
    next_partition: Option<Instant>,
    fc: [[i16; 2]; MAX_PROCS_RING],
    work_fc: [[i16; 2]; MAX_PROCS_RING],
    /// The last status record printed (the deltas are against it).
    last: StatusRecord,
    out: Vec<u8>,
    /// Write prompts to standard output before waiting for an answer.
    pub interactive: bool,
}

impl<L: Link> Monitor<L> {
    pub fn new(
        link: L,
        conf_path: PathBuf,
        conf: Configuration,
        my_id: u32,
        my_port: u16,
        status_period: Duration,
    ) -> Self {
        let daemons = daemons_of(&conf);
        let n = daemons.len();
        Monitor {
            link,
            conf_path,
            conf,
            daemons,
            my_id,
            my_port,
            status_period,
            status_wanted: vec![false; n],
            next_status: None,
            partition: [0; MAX_PROCS_RING],
            work_partition: [0; MAX_PROCS_RING],
            next_partition: None,
            fc: [[0; 2]; MAX_PROCS_RING],
            work_fc: [[0; 2]; MAX_PROCS_RING],
            last: StatusRecord::default(),
            out: Vec::new(),
            interactive: false,
        }
    }

    pub fn link(&self) -> &L {
        &self.link
    }

    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    fn say(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    /// Text printed since the last call.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Write what is pending to standard output.
    pub fn flush_stdout(&mut self) {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(&self.out);
        let _ = o.flush();
        self.out.clear();
    }

    pub fn start(&mut self) {
        self.say(MENU);
    }

    /// When a timer is due next.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.next_status, self.next_partition) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Run the timers that are due at `now`.
    pub fn run_timers(&mut self, now: Instant) {
        if self.next_status.is_some_and(|t| t <= now) {
            self.send_status_query(now);
        }
        if self.next_partition.is_some_and(|t| t <= now) {
            self.send_partition(now);
        }
    }

    fn send_to_all(&mut self, cmd: &Command, copies: usize, only: impl Fn(usize) -> bool) {
        let datagram = self.encode(cmd.clone());
        for i in 0..self.daemons.len() {
            if only(i) {
                let to = SocketAddrV4::new(self.daemons[i].ip, self.daemons[i].port);
                for _ in 0..copies {
                    self.link.send(to, &datagram);
                }
            }
        }
    }

    /// A command as the original sends it: from our identity, replies to
    /// our port, in this host's byte order.
    fn encode(&self, cmd: Command) -> Vec<u8> {
        CommandPacket::new(self.my_id, self.my_port, cmd).emit(ByteOrder::NATIVE)
    }

    fn send_status_query(&mut self, now: Instant) {
        self.say("Monitor: send status query\n");
        let wanted = self.status_wanted.clone();
        self.send_to_all(&Command::Status { body: Vec::new() }, 1, |i| wanted[i]);
        self.next_status = Some(now + self.status_period);
    }

    fn send_partition(&mut self, now: Instant) {
        self.say("Monitor: send partition\n");
        self.send_to_all(
            &Command::Partition(Box::new(PartitionTable(self.partition))),
            2,
            |_| true,
        );
        self.next_partition = Some(now + PARTITION_RESEND);
    }

    fn prompt(&mut self) {
        self.say("\nMonitor> ");
    }

    /// A line for a sub-prompt; at end of input the monitor says goodbye.
    fn line(&mut self, input: &mut Input) -> Result<Vec<u8>, Next> {
        self.flush_if_interactive();
        match input.fgets(LINE) {
            Some(l) => Ok(l),
            None => {
                self.say("Bye.\n");
                Err(Next::Exit(0))
            }
        }
    }

    fn flush_if_interactive(&mut self) {
        // Prompts must be visible before we wait for the answer.
        if self.interactive {
            self.flush_stdout();
        }
    }

    /// Handle one command line (and the answers it asks for).
    pub fn command(&mut self, input: &mut Input, now: Instant) -> Next {
        match self.command_inner(input, now) {
            Ok(()) => Next::Continue,
            Err(next) => next,
        }
    }

    fn command_inner(&mut self, input: &mut Input, now: Instant) -> Result<(), Next> {
        let Some(command) = input.fgets(LINE) else {
            self.say("Bye.\n");
            return Err(Next::Exit(0));
        };
        let n = self.daemons.len();
        match command[0] {
            b'0' => {
                self.activate_status(input, now)?;
                self.prompt();
            }
            b'1' => {
                self.define_partition(input)?;
                let p = self.work_partition;
                self.print_partition(&p);
            }
            b'2' => {
                self.partition = self.work_partition;
                self.send_partition(now);
                self.prompt();
            }
            b'3' => {
                let p = self.partition;
                self.print_partition(&p);
            }
            b'4' => {
                self.partition = [0; MAX_PROCS_RING];
                self.work_partition = [0; MAX_PROCS_RING];
                self.send_partition(now);
                self.next_partition = None;
                self.prompt();
            }
            b'5' => {
                self.define_flow_control(input)?;
                let f = self.work_fc;
                self.print_flow_control(&f);
            }
            b'6' => {
                self.fc[..=n].copy_from_slice(&self.work_fc[..=n]);
                self.say("Monitor: send flow control params\n");
                self.send_to_all(&Command::FlowControl(Box::new(FcTable(self.fc))), 2, |_| true);
                self.prompt();
            }
            b'7' => {
                let f = self.fc;
                self.print_flow_control(&f);
            }
            b'8' => {
                self.terminate(input)?;
                self.prompt();
            }
            b'r' => {
                self.reload(now);
                self.say("Reload Membership. \n");
            }
            b'9' | b'q' => {
                self.say("Bye.\n");
                return Err(Next::Exit(0));
            }
            _ => {
                self.say("\nUnknown commnad\n");
                self.say(MENU);
            }
        }
        Ok(())
    }

    /// Names until an empty line: `all`, `none` or daemon names; `mark`
    /// sets the chosen ones.
    fn choose_daemons(
        &mut self,
        input: &mut Input,
        prompt: &str,
        chosen: &mut [bool],
        all_value: bool,
    ) -> Result<(), Next> {
        loop {
            let line = loop {
                self.say(prompt);
                let line = self.line(input)?;
                if words(&line).next().is_some() || line[0] == b'\n' {
                    break line;
                }
                self.say("Please enter a legal proc name, none, or all\n");
            };
            if line[0] == b'\n' {
                return Ok(());
            }
            let name = words(&line).next().unwrap_or_default();
            match name {
                b"all" => chosen.iter_mut().for_each(|c| *c = all_value),
                b"none" => chosen.iter_mut().for_each(|c| *c = !all_value),
                _ => match self.daemons.iter().position(|d| d.name.as_bytes() == name) {
                    Some(i) => chosen[i] = all_value,
                    None => self.say("Please! enter a legal proc name, none, or all\n"),
                },
            }
        }
    }

    fn activate_status(&mut self, input: &mut Input, now: Instant) -> Result<(), Next> {
        self.say("\n=============\nActivate Status\n-------------\n\n");
        let mut wanted = std::mem::take(&mut self.status_wanted);
        let r = self.choose_daemons(input, "\tEnter Proc Name: ", &mut wanted, true);
        self.status_wanted = wanted;
        r?;
        self.next_status = None;
        if self.status_wanted.iter().any(|&w| w) {
            self.send_status_query(now);
        }
        Ok(())
    }

    // The daemon list and the table share the configuration index.
    #[allow(clippy::needless_range_loop)]
    fn terminate(&mut self, input: &mut Input) -> Result<(), Next> {
        let mut kill = vec![false; self.daemons.len()];
        self.choose_daemons(input, "\tEnter Proc Name to Terminate: ", &mut kill, true)?;
        let mut table = self.partition;
        for (i, k) in kill.iter().enumerate() {
            if *k {
                table[i] = -1;
            }
        }
        let datagram = self.encode(Command::Partition(Box::new(PartitionTable(table))));
        for i in 0..self.daemons.len() {
            if kill[i] {
                let d = self.daemons[i].clone();
                self.say(&format!("Monitor: Terminating {}\n", d.name));
                let to = SocketAddrV4::new(d.ip, d.port);
                self.link.send(to, &datagram);
                self.link.send(to, &datagram);
            }
        }
        Ok(())
    }

    /// Ask until the answer is a number; `empty_keeps`: an empty answer
    /// means -1 ("keep").
    fn ask_number(&mut self, input: &mut Input, prompt: &str, empty_keeps: bool) -> Result<i16, Next> {
        loop {
            self.say(prompt);
            let line = self.line(input)?;
            if let Some(v) = scan_int(&line) {
                return Ok(v as i16);
            }
            if empty_keeps && words(&line).next().is_none() {
                return Ok(-1);
            }
            self.say("Please enter a number\n");
        }
    }

    fn define_partition(&mut self, input: &mut Input) -> Result<(), Next> {
        self.say("\n=============\nDefine Partition\n-------------\n\n");
        for i in 0..self.daemons.len() {
            let prompt = format!("\t{}\t", self.daemons[i].name);
            self.work_partition[i] = self.ask_number(input, &prompt, false)?;
            if self.segment_ends(i) {
                self.say("\n");
            }
        }
        Ok(())
    }

    fn segment_ends(&self, i: usize) -> bool {
        self.daemons
            .get(i + 1)
            .is_none_or(|next| next.segment != self.daemons[i].segment)
    }

    // The daemon list and the table share the configuration index.
    #[allow(clippy::needless_range_loop)]
    fn print_partition(&mut self, p: &[i16; MAX_PROCS_RING]) {
        self.say("\n=============\nPartition Map:\n-------------\n\n");
        for i in 0..self.daemons.len() {
            let line = format!("\t{}\t{}\n", self.daemons[i].name, p[i]);
            self.say(&line);
            if self.segment_ends(i) {
                self.say("\n");
            }
        }
        self.prompt();
    }

    /// Whether this monitor's own file turns the accelerated ring on (only
    /// then it asks for accelerated windows).
    fn accelerated(&self) -> bool {
        self.conf.flow.accelerated_ring_set && self.conf.flow.accelerated_ring
    }

    fn define_flow_control(&mut self, input: &mut Input) -> Result<(), Next> {
        self.say("\n===================\nDefine Flow Control\n-------------------\n\n");
        let n = self.daemons.len();
        self.work_fc[n][0] = self.ask_number(input, "    Window size: ", true)?;
        self.say("\n");
        for i in 0..n {
            let name = self.daemons[i].name.clone();
            self.work_fc[i][0] = self.ask_number(input, &format!("\t{name} personal window\t"), true)?;
            if self.accelerated() {
                self.work_fc[i][1] =
                    self.ask_number(input, &format!("\t{name} accelerated window\t"), true)?;
            }
            if self.segment_ends(i) {
                self.say("\n");
            }
        }
        Ok(())
    }

    // The daemon list and the table share the configuration index.
    #[allow(clippy::needless_range_loop)]
    fn print_flow_control(&mut self, f: &[[i16; 2]; MAX_PROCS_RING]) {
        let n = self.daemons.len();
        self.say("\n========================\nFlow Control Parameters:\n------------------------\n\n");
        self.say(&format!("Window size:  {}\n\n", f[n][0]));
        for i in 0..n {
            let name = self.daemons[i].name.clone();
            self.say(&format!("\t{name} personal window\t{}\n", f[i][0]));
            if self.accelerated() {
                self.say(&format!("\t{name} accelerated window\t{}\n", f[i][1]));
            }
            if self.segment_ends(i) {
                self.say("\n");
            }
        }
        self.prompt();
    }

    fn reload(&mut self, _now: Instant) {
        self.say(&format!("Old configuration hash is: {}\n", self.conf.hash()));
        self.say("Monitor: send conf reload command\n");
        self.send_to_all(&Command::Reload { body: Vec::new() }, 1, |_| true);
        match Configuration::load(&self.conf_path) {
            Ok(conf) => {
                self.daemons = daemons_of(&conf);
                self.conf = conf;
            }
            // The original exits; we keep the configuration we have.
            Err(e) => self.say(&format!("spmonitor: {e}; keeping the previous configuration\n")),
        }
        self.partition = [0; MAX_PROCS_RING];
        self.work_partition = [0; MAX_PROCS_RING];
        self.fc = [[0; 2]; MAX_PROCS_RING];
        self.work_fc = [[0; 2]; MAX_PROCS_RING];
        self.status_wanted = vec![false; self.daemons.len()];
        self.next_partition = None;
        self.next_status = None;
        self.say(&format!("New configuration hash is: {}\n", self.conf.hash()));
        self.say("All Status, Partition, FC, etc commands are reset by configuration reload!\n");
    }

    fn name_of(&self, id: i32) -> Option<&str> {
        let ip = Ipv4Addr::from(id as u32);
        self.daemons.iter().find(|d| d.ip == ip).map(|d| d.name.as_str())
    }

    /// A datagram on the reply port: print a status block. Other datagrams
    /// are ignored.
    pub fn report(&mut self, datagram: &[u8]) {
        let Ok((StatusReply { status: s, .. }, _)) = StatusReply::parse(datagram) else {
            return;
        };
        let last = std::mem::replace(&mut self.last, s);
        self.say("\n============================\n");
        let Some(name) = self.name_of(s.my_id).map(str::to_owned) else {
            self.say("Report_message: Skiping illegal status \n==================================\n");
            return;
        };
        let leader = match self.name_of(s.leader_id) {
            Some(l) => l.to_owned(),
            None => s.leader_id.to_string(),
        };
        let protocol = if s.accelerated_ring == 0 {
            "regular protocol"
        } else {
            "accelerated protocol"
        };
        let text = format!(
            "Status at {name} V{:2}.{:02}.{:2} (state {}, gstate {}) after {} seconds :\n\
             Membership  :  {}  procs in {} segments, leader is {leader}, {protocol}\n\
             rounds   : {:7}\ttok_hurry : {:7}\tmemb change: {:7}\n\
             sent pack: {:7}\trecv pack : {:7}\tretrans    : {:7}\n\
             u retrans: {:7}\ts retrans : {:7}\tb retrans  : {:7}\n\
             My_aru   : {:7}\tAru       : {:7}\tHighest seq: {:7}\n\
             Sessions : {:7}\tGroups    : {:7}\tWindow     : {:7}\n\
             Deliver M: {:7}\tDeliver Pk: {:7}\tP/A Window : {:7}/{}\n\
             Delta Mes: {:7}\tDelta Pk  : {:7}\tDelta sec  : {:7}\n\
             ==================================\n",
            s.major_version,
            s.minor_version,
            s.patch_version,
            s.state,
            s.gstate,
            s.sec,
            s.num_procs,
            s.num_segments,
            s.token_rounds,
            s.token_hurry,
            s.membership_changes,
            s.packet_sent,
            s.packet_recv,
            s.retrans,
            s.u_retrans,
            s.s_retrans,
            s.b_retrans,
            s.my_aru,
            s.aru,
            s.highest_seq,
            s.num_sessions,
            s.num_groups,
            s.window,
            s.message_delivered,
            s.packet_delivered,
            s.personal_window,
            s.accelerated_window,
            s.message_delivered.wrapping_sub(last.message_delivered),
            s.aru.wrapping_sub(last.aru),
            s.sec.wrapping_sub(last.sec),
        );
        self.say(&text);
        self.prompt();
    }
}
