//! `spmonitor`: watch and steer the daemons of a configuration over the
//! monitor protocol, the tool of the same name of Spread 4.4.
//!
//! `spmonitor [-c <file>] [-n <daemon name>] [-p <port>] [-t <seconds>]`:
//! reads the daemon list from the configuration (with the daemon's own
//! parser), identifies itself as the daemon of this host (or `-n`), takes
//! status replies on UDP port `-p` (default 6543) and runs the menu on
//! standard input (see `spread_tools::monitor::menu`).

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::exit;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use spread_daemon::configuration::Configuration;
use spread_tools::input::Input;
use spread_tools::monitor::menu::{Link, Monitor, Next};
use spread_tools::monitor::probe;

const REPLIES: Token = Token(0);
const STDIN: Token = Token(1);

const USAGE: &str = "\
Usage: spmonitor [-c <file>] [-n <daemon name>] [-p <port>] [-t <seconds>]
\t-c <file>         the configuration whose daemons to watch (default: spread.conf,
\t                  then where the daemon looks for it)
\t-n <daemon name>  act as this daemon of the configuration (default: the one
\t                  with an address of this host); status replies go to its address
\t-p <port>         UDP port for the status replies (default: 6543)
\t-t <seconds>      seconds between status queries while status is on (default: 10)
\t--status          (spread-rs) ask every daemon once, print the answers and exit:
\t                  status 0 only when every configured daemon answered
\t--json            (spread-rs, with --status) print them as one JSON object
\t--wait <seconds>  (spread-rs, with --status) how long to wait for answers (default: 5)
";

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        println!("{problem}\n");
    }
    print!("{USAGE}");
    exit(1);
}

struct Args {
    config: PathBuf,
    name: Option<String>,
    port: u16,
    period: u64,
    /// `--status`: one query round instead of the menu (our extension).
    status: bool,
    json: bool,
    wait: u64,
}

/// Flags come in pairs, each named exactly as the original names it.
fn parse_args() -> Args {
    let mut a = Args {
        config: PathBuf::from("spread.conf"),
        name: None,
        port: 6543,
        period: 10,
        status: false,
        json: false,
        wait: 5,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "--status" | "--json" => {
                a.status |= argv[i] == "--status";
                a.json |= argv[i] == "--json";
                i += 1;
                continue;
            }
            "--wait" => {
                match argv.get(i + 1).and_then(|v| v.parse::<u64>().ok()) {
                    Some(w) if w > 0 => a.wait = w,
                    _ => usage("--wait needs a positive number of seconds"),
                }
                i += 2;
                continue;
            }
            _ => {}
        }
        let Some(value) = argv.get(i + 1) else {
            usage(&format!("Unknown or missing parameter: {}", argv[i]))
        };
        match argv[i].as_str() {
            "-p" => match value.parse::<u16>() {
                Ok(p) => a.port = p,
                Err(_) => usage(&format!("Port number must be in range [0, 65536): {value}")),
            },
            "-n" => a.name = Some(value.clone()),
            "-t" => match value.parse::<u64>() {
                Ok(t) if t > 0 => a.period = t,
                _ => usage(&format!(
                    "Status query timeout must be a positive integer: {value}"
                )),
            },
            "-c" => a.config = PathBuf::from(value),
            other => usage(&format!("Unknown parameter: {other}")),
        }
        i += 2;
    }
    a
}

/// Commands go out from one unbound socket, like the original's.
struct UdpLink(UdpSocket);

impl Link for UdpLink {
    fn send(&mut self, to: SocketAddrV4, datagram: &[u8]) {
        if let Err(e) = self.0.send_to(datagram, to) {
            eprintln!("spmonitor: sending to {to} failed: {e}");
        }
    }
}

/// Whether `ip` is an address of this host (a socket can be bound to it).
fn is_local(ip: Ipv4Addr) -> bool {
    UdpSocket::bind((ip, 0)).is_ok()
}

fn reply_socket(port: u16) -> std::io::Result<mio::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // As the original: other monitors may share the port.
    s.set_reuse_address(true)?;
    s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    s.set_nonblocking(true)?;
    Ok(mio::net::UdpSocket::from_std(s.into()))
}

/// `--status`: one round of queries; 0 when every daemon answered, else 2.
fn status_round(args: &Args, conf: &Configuration, my_id: u32, sender: &UdpSocket) -> i32 {
    let bind = || -> std::io::Result<UdpSocket> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, args.port)).into())?;
        Ok(s.into())
    };
    let replies = match bind() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("spmonitor: cannot receive on UDP port {}: {e}", args.port);
            return 1;
        }
    };
    let probed = probe::probe(
        conf,
        my_id,
        args.port,
        sender,
        &replies,
        Duration::from_secs(args.wait),
    );
    if args.json {
        println!("{}", probe::to_json(conf, &probed));
    } else {
        print!("{}", probe::to_text(conf, &probed));
    }
    if probed.iter().all(|p| p.reply.is_some()) {
        0
    } else {
        2
    }
}

fn main() {
    let args = parse_args();
    let path = match Configuration::locate(Some(&args.config)) {
        Ok(p) => p,
        Err(e) => {
            println!("spmonitor: {e}");
            exit(1);
        }
    };
    let conf = match Configuration::load(&path) {
        Ok(c) => c,
        Err(e) => {
            println!("spmonitor: {e}");
            exit(1);
        }
    };
    if args.json {
        eprintln!("spmonitor: using configuration {}", path.display());
    } else {
        println!("spmonitor: using configuration {}", path.display());
    }
    let me = match &args.name {
        Some(name) => conf
            .daemons()
            .map(|(_, d)| d)
            .find(|d| &d.name == name)
            .map(|d| d.ip),
        None => conf.daemons().map(|(_, d)| d.ip).find(|ip| is_local(*ip)),
    };
    let Some(my_ip) = me else {
        println!(
            "spmonitor: {} is not a daemon of {}; name one with -n",
            args.name.as_deref().unwrap_or("no address of this host"),
            path.display()
        );
        exit(1);
    };
    let sender = match UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) {
        Ok(s) => s,
        Err(e) => {
            println!("spmonitor: cannot open a UDP socket: {e}");
            exit(1);
        }
    };
    if args.status {
        exit(status_round(&args, &conf, u32::from(my_ip), &sender));
    }
    let mut replies = match reply_socket(args.port) {
        Ok(s) => s,
        Err(e) => {
            println!("spmonitor: cannot receive on UDP port {}: {e}", args.port);
            exit(1);
        }
    };
    let setup = || -> std::io::Result<(Poll, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), STDIN)?);
        Ok((poll, waker))
    };
    let (mut poll, waker) = match setup() {
        Ok(x) => x,
        Err(e) => {
            println!("spmonitor: cannot wait for input: {e}");
            exit(1);
        }
    };
    if let Err(e) = poll
        .registry()
        .register(&mut replies, REPLIES, Interest::READABLE)
    {
        println!("spmonitor: cannot wait for replies: {e}");
        exit(1);
    }
    let thread_waker = waker.clone();
    let mut input = Input::from_stdin(Arc::new(move || {
        let _ = thread_waker.wake();
    }));
    let mut monitor = Monitor::new(
        UdpLink(sender),
        path,
        conf,
        u32::from(my_ip),
        args.port,
        Duration::from_secs(args.period),
    );
    monitor.interactive = true;
    monitor.start();
    monitor.flush_stdout();

    let mut events = Events::with_capacity(8);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let now = Instant::now();
        monitor.run_timers(now);
        // Replies first, as the original serves its socket before the keyboard.
        loop {
            match replies.recv_from(&mut buf) {
                Ok((n, _)) => monitor.report(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        monitor.flush_stdout();
        if input.line_ready(70) {
            let next = monitor.command(&mut input, now);
            monitor.flush_stdout();
            if let Next::Exit(code) = next {
                exit(code);
            }
            continue;
        }
        let timeout = monitor
            .next_deadline()
            .map(|t| t.saturating_duration_since(Instant::now()));
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                println!("spmonitor: waiting failed: {e}");
                exit(1);
            }
        }
    }
}
