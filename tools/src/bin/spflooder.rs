//! `spflooder`: floods a group with messages and reports progress, the
//! tool of the same name of Spread 4.4 on spread-rs's own client.
//!
//! Same flags (`-u`, `-m`, `-n`, `-b`, `-s`, `-ro`, `-wo`) and the same
//! output. It sends `-m` messages of `-b` bytes to the group `flooder`
//! (RELIABLE), keeping at most 200 in flight by waiting for its own; with
//! `-n N` it first waits until N members joined `flooder`, then sends FIFO
//! and paces itself by the slowest of the other senders. `-ro` only
//! receives `-m` messages, `-wo` only sends (without joining).

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::exit;

use spread::SpError;
use spread_tools::mailbox::{name_slot, Mailbox};
use spread_tools::messages::{is_membership, is_regular, is_reject, service_word};
use spread_tools::scan::{c_str, scan_int};
use spread_wire::client::code::{BUFFER_TOO_SHORT, GROUPS_TOO_SHORT};
use spread_wire::client::limits::MAX_GROUP_NAME;
use spread_wire::client::service::*;

/// Largest message (the `-b` limit).
const MAX_MESSLEN: usize = 100_000;
/// Most members `-n` may wait for, and room for names in a notice.
const MAX_MEMBERS: usize = 100;
/// Messages a sender may have in flight before it waits.
const WINDOW: i32 = 200;
const GROUP: &[u8] = b"flooder";

const USAGE: &str = "\
Usage: spflooder
	[-u <name>] [-m <messages>] [-n <members>] [-b <bytes>] [-s <daemon>] [-ro | -wo]
\t-u <name>       private name of this session (default: flooder)
\t-m <messages>   how many messages to send (default: 10000)
\t-n <members>    wait for this many members of group flooder, then send FIFO
\t                paced by the slowest of them (default: 0, RELIABLE)
\t-b <bytes>      bytes per message, 0 to 100000 (default: 1000)
\t-s <daemon>     <port> or <port>@<host> (default: 4803)
\t-ro             only receive (the -m messages of other flooders)
\t-wo             only send, without joining the group
";

struct Args {
    user: Vec<u8>,
    spread_name: Vec<u8>,
    num_bytes: i32,
    num_messages: i32,
    num_members: i32,
    read_only: bool,
    write_only: bool,
}

fn usage() -> ! {
    print!("{USAGE}");
    let _ = std::io::stdout().flush();
    exit(1);
}

/// The flags as the original reads them: recognised by their first two
/// characters (three for `-ro` and `-wo`); numbers read as `%d` reads
/// them (a value that is not a number leaves the default).
fn parse_args() -> Args {
    let mut a = Args {
        user: b"flooder".to_vec(),
        spread_name: b"4803".to_vec(),
        num_bytes: 1000,
        num_messages: 10000,
        num_members: 0,
        read_only: false,
        write_only: false,
    };
    let argv: Vec<Vec<u8>> = std::env::args_os()
        .skip(1)
        .map(|a| a.as_bytes().to_vec())
        .collect();
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        let two = arg.get(..2).unwrap_or(arg);
        let three = arg.get(..3).unwrap_or(arg);
        if matches!(two, b"-u" | b"-b" | b"-m" | b"-n" | b"-s") {
            let Some(v) = argv.get(i + 1) else { usage() };
            match two {
                b"-u" => a.user = v.clone(),
                b"-s" => a.spread_name = v.clone(),
                b"-b" => a.num_bytes = scan_int(v).unwrap_or(a.num_bytes),
                b"-m" => a.num_messages = scan_int(v).unwrap_or(a.num_messages),
                _ => a.num_members = scan_int(v).unwrap_or(a.num_members),
            }
            i += 1;
        } else if three == b"-ro" {
            a.read_only = true;
            a.write_only = false;
        } else if three == b"-wo" {
            a.write_only = true;
            a.read_only = false;
        } else {
            usage();
        }
        i += 1;
    }
    if a.num_members > MAX_MEMBERS as i32 {
        println!("Too many members. The max is {MAX_MEMBERS}");
        usage();
    }
    if !(0..=MAX_MESSLEN as i32).contains(&a.num_bytes) || a.num_members < 0 {
        // The original would overrun its buffers; refuse instead.
        usage();
    }
    a
}

struct Flooder {
    mbox: Mailbox,
    recv_mess: Vec<u8>,
    groups: Vec<[u8; MAX_GROUP_NAME]>,
    out: std::io::StdoutLock<'static>,
}

struct Got {
    ret: i32,
    service_type: u32,
    sender: Vec<u8>,
    num_groups: i32,
    mess_type: i16,
    endian_mismatch: i32,
}

impl Flooder {
    fn say(&mut self, bytes: &[u8]) {
        let _ = self.out.write_all(bytes);
    }

    fn fail(&mut self, code: i32) -> ! {
        let line = format!("{}\n", SpError::from_code(code));
        self.say(line.as_bytes());
        let _ = self.out.flush();
        exit(1);
    }

    fn receive(&mut self, service_type: u32) -> Got {
        let r = self
            .mbox
            .receive(service_type, &mut self.groups, &mut self.recv_mess);
        let d = r.delivery.unwrap_or_default();
        Got {
            ret: r.ret,
            service_type: d.service_type,
            sender: c_str(&d.sender).to_vec(),
            num_groups: d.num_groups,
            mess_type: d.mess_type,
            endian_mismatch: d.endian_mismatch,
        }
    }

    /// Receive and print until `members` are in the group; the index of
    /// this member in the last notice.
    fn wait_for_members(&mut self, members: i32) -> i16 {
        let mut joined = 0;
        let mut my_index = 0;
        while joined < members {
            let g = self.receive(0);
            if g.ret == GROUPS_TOO_SHORT || g.ret == BUFFER_TOO_SHORT {
                self.say(b"\n========Buffers or Groups too Short=======\n");
                self.say(b"Should NOT happen in wait for members! Program quitting\n");
                let _ = self.out.flush();
                exit(1);
            }
            if g.ret < 0 {
                // The original would go on printing the failed receive.
                self.fail(g.ret);
            }
            let st = g.service_type;
            let mut line = Vec::new();
            if is_regular(st) {
                let _ = write!(line, "received {} ", service_word(st));
                line.extend_from_slice(b"message during wait for members, from ");
                line.extend_from_slice(&g.sender);
                let _ = write!(
                    line,
                    ", of type {}, (endian {}) to {} groups \n({} bytes): ",
                    g.mess_type, g.endian_mismatch, g.num_groups, g.ret
                );
                line.extend_from_slice(c_str(&self.recv_mess));
                line.push(b'\n');
            } else if is_membership(st) {
                if st & REG_MEMB_MESS != 0 {
                    line.extend_from_slice(b"Received REGULAR membership for group ");
                    line.extend_from_slice(&g.sender);
                    let _ = writeln!(
                        line,
                        " with {} members, where I am member {}:",
                        g.num_groups, g.mess_type
                    );
                    for m in &self.groups[..g.num_groups.max(0) as usize] {
                        line.push(b'\t');
                        line.extend_from_slice(c_str(m));
                        line.push(b'\n');
                    }
                    joined = g.num_groups;
                } else if st & TRANSITION_MESS != 0 {
                    line.extend_from_slice(b"received TRANSITIONAL membership for group ");
                    line.extend_from_slice(&g.sender);
                    line.push(b'\n');
                } else if st & CAUSED_BY_LEAVE != 0 {
                    line.extend_from_slice(b"received membership message that left group ");
                    line.extend_from_slice(&g.sender);
                    line.push(b'\n');
                } else {
                    let _ = writeln!(line, "received incorrecty membership message of type 0x{st:x}");
                }
            } else if is_reject(st) {
                line.extend_from_slice(b"REJECTED message from ");
                line.extend_from_slice(&g.sender);
                let _ = write!(
                    line,
                    ", of servicetype 0x{:x} messtype {}, (endian {}) to {} groups \n({} bytes): ",
                    st, g.mess_type, g.endian_mismatch, g.num_groups, g.ret
                );
                line.extend_from_slice(c_str(&self.recv_mess));
                line.push(b'\n');
            } else {
                let _ = writeln!(
                    line,
                    "received message of unknown message type 0x{st:x} with ret {}",
                    g.ret
                );
            }
            self.say(&line);
            my_index = g.mess_type;
        }
        my_index
    }
}

fn main() {
    let a = parse_args();
    let mut out = std::io::stdout().lock();
    let spread_name = String::from_utf8_lossy(&a.spread_name).into_owned();
    let with_members = a.num_members > 0;
    if with_members {
        let _ = writeln!(out, "flooder: connecting to {spread_name} with group membership");
    } else {
        let _ = writeln!(out, "flooder: connecting to {spread_name}");
    }
    let mbox = match Mailbox::connect(&a.spread_name, &a.user, with_members, None) {
        Ok(m) => m,
        Err(e) => {
            let _ = writeln!(out, "{e}");
            let _ = out.flush();
            exit(1);
        }
    };
    let mut f = Flooder {
        mbox,
        recv_mess: vec![0; MAX_MESSLEN],
        groups: vec![[0; MAX_GROUP_NAME]; MAX_MEMBERS],
        out,
    };
    let (m, b) = (a.num_messages, a.num_bytes);
    if a.read_only {
        f.say(b"flooder: Only receiving messages\n");
        let _ = f.mbox.join(GROUP);
    } else if a.write_only {
        let line =
            format!("flooder: starting  multicast of {m} messages, {b} bytes each (self discarding).\n");
        f.say(line.as_bytes());
    } else {
        let _ = f.mbox.join(GROUP);
        let line = format!("flooder: starting  multicast of {m} messages, {b} bytes each.\n");
        f.say(line.as_bytes());
    }

    let mut mess = vec![0u8; MAX_MESSLEN];
    if with_members {
        let my_index = i32::from(f.wait_for_members(a.num_members));
        mess[..4].copy_from_slice(&my_index.to_ne_bytes());
    }
    let dest = [name_slot(GROUP)];
    let mut ret = 0;
    let mut send_counter = 0;
    let mut recv_counters = [0i32; MAX_MEMBERS];
    let mut lowest = 0;
    let private_group = f.mbox.private_group().to_vec();
    for i in 1..=m {
        if !a.read_only {
            let service = if with_members { FIFO_MESS } else { RELIABLE_MESS };
            ret = match f.mbox.multicast(service, &dest, 0, &mess[..b as usize]) {
                Ok(n) => n,
                Err(e) => f.fail(e.code()),
            };
            if with_members {
                send_counter += 1;
            }
            if ret != b {
                let line = format!("sent a different message {b} -> {ret}\n");
                f.say(line.as_bytes());
            }
        }
        if a.read_only || (i > WINDOW && !a.write_only) {
            loop {
                let mut g = f.receive(0);
                if g.ret == GROUPS_TOO_SHORT || g.ret == BUFFER_TOO_SHORT {
                    f.say(b"\n========Buffers or Groups too Short=======\n");
                    g = f.receive(DROP_RECV);
                }
                if g.ret < 0 {
                    f.fail(g.ret);
                }
                ret = g.ret;
                let not_done = if with_members {
                    let sender_index =
                        i32::from_ne_bytes([f.recv_mess[0], f.recv_mess[1], f.recv_mess[2], f.recv_mess[3]]);
                    // Only data messages of flooders carry an index.
                    if let Some(c) = usize::try_from(sender_index)
                        .ok()
                        .filter(|_| is_regular(g.service_type))
                        .and_then(|k| recv_counters.get_mut(k))
                    {
                        *c += 1;
                        if *c == lowest + 1 {
                            lowest = recv_counters[..a.num_members as usize]
                                .iter()
                                .copied()
                                .filter(|&n| n != 0)
                                .min()
                                .unwrap_or(0);
                        }
                    }
                    lowest < send_counter - WINDOW && !a.read_only
                } else {
                    g.sender != private_group && !a.read_only
                };
                if !not_done {
                    break;
                }
            }
        }
        if i % 1000 == 0 {
            let line = format!("flooder: completed {i:6} messages of {ret} bytes\n");
            f.say(line.as_bytes());
        }
    }
    let line = format!("flooder: completed multicast of {m} messages, {b} bytes each.\n");
    f.say(line.as_bytes());
    let _ = f.out.flush();
}
