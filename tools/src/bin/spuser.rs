//! `spuser`: an interactive Spread client, the tool of the same name of
//! Spread 4.4 on spread-rs's own client.
//!
//! Same flags (`-u`, `-s`, `-r`, `-n`, `-p`), same one-letter commands and
//! the same text for each event it prints (connection, messages, membership
//! notices, errors, prompts), since scripts drive it through its standard
//! input and read its standard output. Like the original built without a
//! password module, `-n` and `-p` are accepted and have no effect.
//!
//! Messages are printed as they arrive (the daemon's messages are served
//! before the next command line, as in the original's event loop) unless
//! `d` turned that off.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::exit;
use std::sync::Arc;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use spread::SpError;
use spread_tools::input::Input;
use spread_tools::mailbox::{self, name_slot, Mailbox};
use spread_tools::messages::{is_membership, is_regular, is_reject, service_word};
use spread_tools::scan::{c_str, scan_unsigned, words};
use spread_wire::client::code::{BUFFER_TOO_SHORT, GROUPS_TOO_SHORT};
use spread_wire::client::connect::Version;
use spread_wire::client::limits::MAX_GROUP_NAME;
use spread_wire::client::service::*;

/// Largest message this tool sends or receives.
const MAX_MESSLEN: usize = 102_400;
/// Room for vs sets and members when printing a network notice.
const MAX_VSSETS: i32 = 10;
const MAX_MEMBERS: usize = 100;
/// `fgets` sizes of the command line and of the lines that follow it.
const COMMAND_LINE: usize = 130;
const TEXT_LINE: usize = 200;
/// Messages of one `b` burst.
const BURST: usize = 10;

const MAILBOX: Token = Token(0);
const STDIN: Token = Token(1);

const USAGE: &str = "\
Usage: spuser [-u <name>] [-s <daemon>] [-r] [-n <user> -p <password>]
\t-u <name>      private name of this session on its daemon (default: user)
\t-s <daemon>    <port> (the daemon's Unix socket /tmp/<port> on this host) or
\t               <port>@<host> (TCP); default: 4803
\t-r             let the daemon pick a random private name
\t-n, -p         user and password for password authentication (accepted and
\t               ignored: like a stock build, this spuser has no PWORD method)
";

const MENU: &str = "
----- spuser commands -----
\tj <group>        join <group>
\tl <group>        leave <group>
\ts <group> ...    send the next line (SAFE) to up to 10 groups
\tm <group> ...    send the next lines (SAFE), up to an empty line
\tb [<group>]      send 10 messages (FIFO) of a size asked for next
\tr                receive one message (waits for it)
\tp                bytes waiting from the daemon
\te                print messages as they arrive (the default)
\td                leave messages waiting until r
\tq                quit
";

struct Args {
    user: Vec<u8>,
    spread_name: Vec<u8>,
}

fn usage() -> ! {
    print!("{USAGE}");
    let _ = std::io::stdout().flush();
    exit(0);
}

/// The flags as the original reads them: each is recognised by its first
/// two characters; an unknown one, or one missing its value, prints usage.
fn parse_args() -> Args {
    let mut args = Args {
        user: b"user".to_vec(),
        spread_name: b"4803".to_vec(),
    };
    let argv: Vec<Vec<u8>> = std::env::args_os()
        .skip(1)
        .map(|a| a.as_bytes().to_vec())
        .collect();
    let mut i = 0;
    while i < argv.len() {
        let flag = argv[i].get(..2).unwrap_or(&argv[i]);
        let value = argv.get(i + 1);
        match flag {
            b"-u" | b"-s" | b"-n" | b"-p" => {
                let Some(v) = value else { usage() };
                match flag {
                    b"-u" => args.user = v.clone(),
                    b"-s" => args.spread_name = v.clone(),
                    _ => {}
                }
                i += 1;
            }
            b"-r" => args.user.clear(),
            _ => usage(),
        }
        i += 1;
    }
    args
}

struct User {
    mbox: Mailbox,
    /// The receive buffer; like the original's it keeps its contents
    /// between messages (a reject is printed up to the first NUL in it).
    mess: Vec<u8>,
    /// The burst buffer.
    burst: Vec<u8>,
    groups: Vec<[u8; MAX_GROUP_NAME]>,
    num_sent: i32,
    previous_len: u32,
    /// Print messages as they arrive (`e` / `d`).
    reading: bool,
    quitting: bool,
    input: Input,
    /// Kept open for as long as the input thread may signal it.
    _waker: Arc<Waker>,
    out: Vec<u8>,
}

impl User {
    fn say(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn flush(&mut self) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&self.out);
        let _ = stdout.flush();
        self.out.clear();
    }

    fn sp_error(&mut self, code: i32) {
        let line = format!("{}\n", SpError::from_code(code));
        self.say(line.as_bytes());
    }

    fn bye(&mut self) -> ! {
        self.quitting = true;
        self.say(b"\nBye.\n");
        self.flush();
        self.mbox.disconnect();
        exit(0);
    }

    fn read_message(&mut self) {
        let mut r = self
            .mbox
            .receive(0, &mut self.groups[..MAX_MEMBERS], &mut self.mess[..MAX_MESSLEN]);
        self.say(b"\n============================\n");
        if r.ret == GROUPS_TOO_SHORT || r.ret == BUFFER_TOO_SHORT {
            self.say(b"\n========Buffers or Groups too Short=======\n");
            r = self.mbox.receive(
                DROP_RECV,
                &mut self.groups[..MAX_MEMBERS],
                &mut self.mess[..MAX_MESSLEN],
            );
        }
        let delivery = match (r.ret, r.delivery) {
            (ret, Some(d)) if ret >= 0 => d,
            (ret, _) => {
                if !self.quitting {
                    self.sp_error(ret.min(-1));
                    self.say(b"\n============================\n");
                    self.say(b"\nBye.\n");
                }
                self.flush();
                exit(0);
            }
        };
        let ret = r.ret;
        let st = delivery.service_type;
        let sender = c_str(&delivery.sender).to_vec();
        let num_groups = delivery.num_groups;
        let mut line = Vec::new();
        if is_regular(st) {
            self.mess[ret as usize] = 0;
            let _ = write!(line, "received {} message from ", service_word(st));
            line.extend_from_slice(&sender);
            let _ = write!(
                line,
                ", of type {}, (endian {}) to {} groups \n({} bytes): ",
                delivery.mess_type, delivery.endian_mismatch, num_groups, ret
            );
            line.extend_from_slice(c_str(&self.mess));
            line.push(b'\n');
        } else if is_membership(st) {
            self.membership(st, &sender, num_groups, delivery.mess_type);
        } else if is_reject(st) {
            line.extend_from_slice(b"REJECTED message from ");
            line.extend_from_slice(&sender);
            let _ = write!(
                line,
                ", of servicetype 0x{:x} messtype {}, (endian {}) to {} groups \n({} bytes): ",
                st, delivery.mess_type, delivery.endian_mismatch, num_groups, ret
            );
            line.extend_from_slice(c_str(&self.mess));
            line.push(b'\n');
        } else {
            let _ = writeln!(
                line,
                "received message of unknown message type 0x{st:x} with ret {ret}"
            );
        }
        self.say(&line);
        self.say(b"\nUser> ");
        self.flush();
    }

    fn fatal(&mut self, what: &str, code: i32) -> ! {
        self.say(what.as_bytes());
        self.sp_error(code);
        self.flush();
        exit(1);
    }

    fn membership(&mut self, st: u32, group: &[u8], num_groups: i32, mess_type: i16) {
        let info = match mailbox::memb_info(&self.mess, st) {
            Ok(i) => i,
            Err(e) => self.fatal("BUG: membership message does not have valid body\n", e.code()),
        };
        let mut out = Vec::new();
        if st & REG_MEMB_MESS != 0 {
            out.extend_from_slice(b"Received REGULAR membership for group ");
            out.extend_from_slice(group);
            let _ = writeln!(out, " with {num_groups} members, where I am member {mess_type}:");
            for g in &self.groups[..num_groups.max(0) as usize] {
                out.push(b'\t');
                out.extend_from_slice(c_str(g));
                out.push(b'\n');
            }
            let [a, b, c] = info.gid.words();
            let _ = writeln!(out, "grp id is {a} {b} {c}");
            let changed = info.changed_member.unwrap_or([0; MAX_GROUP_NAME]);
            let cause = if st & CAUSED_BY_JOIN != 0 {
                Some("JOIN")
            } else if st & CAUSED_BY_LEAVE != 0 {
                Some("LEAVE")
            } else if st & CAUSED_BY_DISCONNECT != 0 {
                Some("DISCONNECT")
            } else {
                None
            };
            if let Some(cause) = cause {
                let _ = write!(out, "Due to the {cause} of ");
                out.extend_from_slice(c_str(&changed));
                out.push(b'\n');
            } else if st & CAUSED_BY_NETWORK != 0 {
                let _ = writeln!(out, "Due to NETWORK change with {} VS sets", info.num_vs_sets);
                self.say(&out);
                out.clear();
                self.vs_sets();
            }
        } else if st & TRANSITION_MESS != 0 {
            out.extend_from_slice(b"received TRANSITIONAL membership for group ");
            out.extend_from_slice(group);
            out.push(b'\n');
        } else if st & CAUSED_BY_LEAVE != 0 {
            out.extend_from_slice(b"received membership message that left group ");
            out.extend_from_slice(group);
            out.push(b'\n');
        } else {
            let _ = writeln!(out, "received incorrecty membership message of type 0x{st:x}");
        }
        self.say(&out);
    }

    fn vs_sets(&mut self) {
        let (sets, mine) = match mailbox::vs_sets(&self.mess, MAX_VSSETS) {
            Ok(s) => s,
            Err(e) => {
                let what = format!(
                    "BUG: membership message has more then {MAX_VSSETS} vs sets. Recompile with larger MAX_VSSETS\n"
                );
                self.fatal(&what, e.code())
            }
        };
        for (i, set) in sets.iter().enumerate() {
            let local = if mine == Some(i as u32) { "LOCAL" } else { "OTHER" };
            let line = format!("{local} VS set {i} has {} members:\n", set.num_members);
            self.say(line.as_bytes());
            let members = match mailbox::vs_set_members(&self.mess, set, MAX_MEMBERS as i32) {
                Ok(m) => m,
                Err(e) => {
                    let what = format!(
                        "VS Set has more then {MAX_MEMBERS} members. Recompile with larger MAX_MEMBERS\n"
                    );
                    self.fatal(&what, e.code())
                }
            };
            for m in members {
                self.say(b"\t");
                self.say(c_str(&m));
                self.say(b"\n");
            }
        }
    }

    fn next_line(&mut self, size: usize) -> Vec<u8> {
        self.flush();
        match self.input.fgets(size) {
            Some(l) => l,
            None => self.bye(),
        }
    }

    /// The destinations of `s` and `m`: up to 10 words.
    fn destinations(args: &[u8]) -> Vec<[u8; MAX_GROUP_NAME]> {
        words(args).take(10).map(name_slot).collect()
    }

    fn send_or_quit(&mut self, service: u32, groups: &[[u8; MAX_GROUP_NAME]], mess_type: i16, body: &[u8]) {
        if let Err(e) = self.mbox.multicast(service, groups, mess_type, body) {
            self.sp_error(e.code());
            self.bye();
        }
    }

    fn user_command(&mut self) {
        let Some(command) = self.input.fgets(COMMAND_LINE) else {
            self.bye()
        };
        let args = c_str(command.get(2..).unwrap_or_default()).to_vec();
        let first_word = words(&args).next().map(<[u8]>::to_vec);
        match command[0] {
            b'j' | b'l' => match first_word {
                None => self.say(b" invalid group \n"),
                Some(group) => {
                    let r = if command[0] == b'j' {
                        self.mbox.join(&group)
                    } else {
                        self.mbox.leave(&group)
                    };
                    if let Err(e) = r {
                        self.sp_error(e.code());
                    }
                }
            },
            b's' | b'm' => {
                let groups = Self::destinations(&args);
                if groups.is_empty() {
                    self.say(b" invalid group \n");
                } else {
                    self.say(b"enter message: ");
                    let body = if command[0] == b's' {
                        c_str(&self.next_line(TEXT_LINE)).to_vec()
                    } else {
                        let mut body = Vec::new();
                        while body.len() < MAX_MESSLEN {
                            let line = self.next_line(TEXT_LINE);
                            if line[0] == b'\n' {
                                break;
                            }
                            body.extend_from_slice(c_str(&line));
                        }
                        body.truncate(MAX_MESSLEN);
                        body
                    };
                    self.send_or_quit(SAFE_MESS, &groups, 1, &body);
                    self.num_sent += 1;
                }
            }
            b'b' => {
                let group = first_word.unwrap_or_else(|| b"dummy_group_name".to_vec());
                self.say(b"enter size of each message: ");
                let line = self.next_line(TEXT_LINE);
                let len = scan_unsigned(&line).unwrap_or(self.previous_len);
                let len = len.min(MAX_MESSLEN as u32);
                self.previous_len = len;
                let line = format!("sending {BURST} messages of {len} bytes\n");
                self.say(line.as_bytes());
                let dest = [name_slot(&group)];
                for i in 0..BURST {
                    self.num_sent += 1;
                    let text = format!("mess num {} \0", self.num_sent);
                    self.burst[..text.len()].copy_from_slice(text.as_bytes());
                    let body = self.burst[..len as usize].to_vec();
                    self.send_or_quit(FIFO_MESS, &dest, 2, &body);
                    let line = format!("sent message {} (total {})\n", i + 1, self.num_sent);
                    self.say(line.as_bytes());
                }
            }
            b'r' => self.read_message(),
            b'p' => {
                let n = self.mbox.poll().unwrap_or_else(|e| e.code());
                let line = format!("Polling sais: {n}\n");
                self.say(line.as_bytes());
            }
            b'e' => self.reading = true,
            b'd' => self.reading = false,
            b'q' => self.bye(),
            _ => {
                self.say(b"\nUnknown commnad\n");
                self.say(MENU.as_bytes());
            }
        }
        self.say(b"\nUser> ");
        self.flush();
    }

    /// Serve the daemon's messages first, then one command line; wait for
    /// either when there is neither.
    fn run(&mut self, poll: &mut Poll) -> std::io::Result<()> {
        let fd = self.mbox.raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), MAILBOX, Interest::READABLE)?;
        let mut events = Events::with_capacity(8);
        let mut hung_up = false;
        loop {
            if self.reading && (hung_up || self.mbox.poll().map_or(true, |n| n > 0)) {
                self.read_message();
                continue;
            }
            let ready = self.input.line_ready(COMMAND_LINE);
            if ready {
                self.user_command();
                continue;
            }
            match poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                if ev.token() == MAILBOX && (ev.is_read_closed() || ev.is_error()) {
                    hung_up = true;
                }
            }
        }
    }
}

fn main() {
    let args = parse_args();
    let v = Version::SPREAD_4_4_0;
    let mut out = format!("Spread library version is {}.{}.{}\n", v.major, v.minor, v.patch).into_bytes();
    let mbox = match Mailbox::connect(&args.spread_name, &args.user, true, Some(Duration::from_secs(5))) {
        Ok(m) => m,
        Err(e) => {
            out.extend_from_slice(format!("{e}\n\nBye.\n").as_bytes());
            let _ = std::io::stdout().write_all(&out);
            exit(0);
        }
    };
    out.extend_from_slice(b"User: connected to ");
    out.extend_from_slice(&args.spread_name);
    out.extend_from_slice(b" with private group ");
    out.extend_from_slice(mbox.private_group());
    out.push(b'\n');
    out.extend_from_slice(MENU.as_bytes());
    out.extend_from_slice(b"\nUser> ");

    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("spuser: cannot wait for input: {e}");
            exit(1);
        }
    };
    let waker = match Waker::new(poll.registry(), STDIN) {
        Ok(w) => Arc::new(w),
        Err(e) => {
            eprintln!("spuser: cannot wait for input: {e}");
            exit(1);
        }
    };
    let thread_waker = waker.clone();
    let input = Input::from_stdin(Arc::new(move || {
        let _ = thread_waker.wake();
    }));
    let mut user = User {
        mbox,
        mess: vec![0; MAX_MESSLEN + 1],
        burst: vec![0; MAX_MESSLEN],
        groups: vec![[0; MAX_GROUP_NAME]; MAX_MEMBERS],
        num_sent: 0,
        previous_len: 0,
        reading: true,
        quitting: false,
        input,
        _waker: waker,
        out,
    };
    user.flush();
    if let Err(e) = user.run(&mut poll) {
        eprintln!("spuser: waiting for input failed: {e}");
        exit(1);
    }
}
