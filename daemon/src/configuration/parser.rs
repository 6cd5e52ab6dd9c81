//! Recursive-descent parser from tokens to a [`Configuration`].

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use super::defaults::*;
use super::extensions::{Extensions, Value};
use super::lexer::{tokenize, Pos, Tok, Token};
use super::{
    debug_flags, ConfigError, Configuration, DaemonEntry, EventPriority, Interface, InterfaceKinds,
    LinkProtocol, PortReuse, Segment,
};

/// What the parser does with an extension setting written in spread.conf
/// (where files from before the extensions file have it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ExtensionLines {
    /// Use it and warn that it belongs in the extensions file.
    AcceptWithWarning,
    /// Refuse it: only the original's grammar is allowed.
    Refuse,
}

/// The keywords of the original's grammar.
const KEYWORDS: &[&str] = &[
    "Spread_Segment",
    "EventLogFile",
    "EventTimeStamp",
    "EventPreciseTimeStamp",
    "EventPriority",
    "DebugFlags",
    "DangerousMonitor",
    "SocketPortReuse",
    "DebugInitialSequence",
    "RuntimeDir",
    "DaemonUser",
    "DaemonGroup",
    "RequiredAuthMethods",
    "AllowedAuthMethods",
    "AccessControlPolicy",
    "MaxSessionMessages",
    "LinkProtocol",
    "Hop",
    "TcpHop",
    "RouteMatrix",
    "Window",
    "PersonalWindow",
    "AcceleratedRing",
    "AcceleratedWindow",
    "TokenTimeout",
    "HurryTimeout",
    "AliveTimeout",
    "JoinTimeout",
    "RepTimeout",
    "SegTimeout",
    "GatherTimeout",
    "FormTimeout",
    "LookupTimeout",
];

const TIMEOUT_KEYWORDS: [&str; 9] = [
    "TokenTimeout",
    "HurryTimeout",
    "AliveTimeout",
    "JoinTimeout",
    "RepTimeout",
    "SegTimeout",
    "GatherTimeout",
    "FormTimeout",
    "LookupTimeout",
];

const PRIORITIES: &[(&str, EventPriority)] = &[
    ("pDEBUG", EventPriority::Debug),
    ("DEBUG", EventPriority::Debug),
    ("INFO", EventPriority::Info),
    ("WARNING", EventPriority::Warning),
    ("ERROR", EventPriority::Error),
    ("CRITICAL", EventPriority::Critical),
    ("FATAL", EventPriority::Fatal),
];

fn bool_word(w: &str) -> Option<bool> {
    match w.to_ascii_lowercase().as_str() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

fn port_reuse_word(w: &str) -> Option<PortReuse> {
    match w.to_ascii_lowercase().as_str() {
        "on" => Some(PortReuse::On),
        "off" => Some(PortReuse::Off),
        "auto" => Some(PortReuse::Auto),
        _ => None,
    }
}

fn interface_kind(w: &str) -> Option<InterfaceKinds> {
    match w {
        "D" => Some(InterfaceKinds::DAEMON),
        "C" => Some(InterfaceKinds::CLIENT),
        "M" => Some(InterfaceKinds::MONITOR),
        _ => None,
    }
}

/// Words the original's scanner turns into something other than a plain
/// string, so they cannot name a daemon unless quoted.
fn is_reserved(w: &str) -> bool {
    KEYWORDS.contains(&w)
        || bool_word(w).is_some()
        || port_reuse_word(w).is_some()
        || interface_kind(w).is_some()
        || debug_flags::NAMES.iter().any(|(n, _)| *n == w)
        || PRIORITIES.iter().any(|(n, _)| *n == w)
}

/// The daemons parsed so far: earlier segments, then the current one.
fn known_daemons<'b>(conf: &'b Configuration, current: &'b Segment) -> impl Iterator<Item = &'b DaemonEntry> {
    conf.daemons().map(|(_, d)| d).chain(&current.daemons)
}

/// Where each setting that later checks refer to was made.
#[derive(Default)]
struct Seen {
    window: Option<Pos>,
    personal_window: Option<Pos>,
    accelerated_ring: Option<Pos>,
    accelerated_window: Option<Pos>,
    timeouts: [Option<(u64, Pos)>; 9],
    timestamp: bool,
    timestamp_format: Option<String>,
    auth_configured: bool,
    segments: Vec<Pos>,
}

struct Parser<'a> {
    toks: Vec<Token>,
    next: usize,
    eof: Pos,
    file: &'a str,
    resolve: &'a dyn Fn(&str) -> Option<Ipv4Addr>,
    extension_lines: ExtensionLines,
    conf: Configuration,
    seen: Seen,
}

type Result<T> = std::result::Result<T, ConfigError>;

pub(super) fn parse(
    text: &str,
    file: &str,
    resolve: &dyn Fn(&str) -> Option<Ipv4Addr>,
    extension_lines: ExtensionLines,
) -> Result<Configuration> {
    let toks = tokenize(text).map_err(|e| error(file, e.pos, e.message))?;
    let last_line = text.rsplit('\n').next().unwrap_or("");
    let eof = Pos {
        line: text.matches('\n').count() + 1,
        col: last_line.chars().count() + 1,
    };
    let mut p = Parser {
        toks,
        next: 0,
        eof,
        file,
        resolve,
        extension_lines,
        conf: blank(file),
        seen: Seen::default(),
    };
    while p.next < p.toks.len() {
        p.statement()?;
    }
    p.finish()
}

fn error(file: &str, pos: Pos, message: String) -> ConfigError {
    ConfigError::Parse {
        file: file.to_owned(),
        line: pos.line,
        col: pos.col,
        message,
    }
}

fn blank(file: &str) -> Configuration {
    Configuration {
        segments: Vec::new(),
        runtime_dir: None,
        daemon_user: None,
        daemon_group: None,
        required_auth_methods: Vec::new(),
        allowed_auth_methods: vec!["NULL".to_owned()],
        access_control_policy: None,
        max_session_messages: DEFAULT_MAX_SESSION_MESSAGES,
        extensions: Extensions::default(),
        extensions_file: None,
        extension_keys_in_spread_conf: Vec::new(),
        warnings: Vec::new(),
        event_log_file: None,
        event_timestamp: None,
        event_precise_timestamp: false,
        event_priority: EventPriority::Info,
        debug_flags: debug_flags::DEFAULT,
        dangerous_monitor: false,
        socket_port_reuse: PortReuse::Auto,
        debug_initial_sequence: false,
        link_protocol: None,
        route_matrix: Vec::new(),
        flow: FlowControl::default(),
        timeouts: MembershipTimeouts::LAN,
        timeouts_from_file: false,
        source: file.to_owned(),
    }
}

impl Parser<'_> {
    fn err(&self, pos: Pos, message: impl Into<String>) -> ConfigError {
        error(self.file, pos, message.into())
    }

    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.next)
    }

    /// The next token, or an error naming what was expected.
    fn take(&mut self, expected: &str) -> Result<Token> {
        match self.toks.get(self.next) {
            Some(t) => {
                self.next += 1;
                Ok(t.clone())
            }
            None => Err(self.err(self.eof, format!("unexpected end of file, expected {expected}"))),
        }
    }

    fn unexpected(&self, t: &Token, expected: &str) -> ConfigError {
        self.err(t.pos, format!("expected {expected}, found {}", t.tok.describe()))
    }

    fn expect_equals(&mut self, key: &str) -> Result<()> {
        let t = self.take(&format!("'=' after {key}"))?;
        match t.tok {
            Tok::Equals => Ok(()),
            _ => Err(self.unexpected(&t, &format!("'=' after {key}"))),
        }
    }

    fn expect_open(&mut self, after: &str) -> Result<()> {
        let t = self.take(&format!("'{{' after {after}"))?;
        match t.tok {
            Tok::Open => Ok(()),
            _ => Err(self.unexpected(&t, &format!("'{{' after {after}"))),
        }
    }

    /// `= <word>` and the word.
    fn word_value(&mut self, key: &str, expected: &str) -> Result<(String, Pos)> {
        self.expect_equals(key)?;
        let t = self.take(expected)?;
        match &t.tok {
            Tok::Word(w) => Ok((w.clone(), t.pos)),
            _ => Err(self.unexpected(&t, expected)),
        }
    }

    /// `= <string>`: a quoted string or any single word.
    fn string_value(&mut self, key: &str) -> Result<(String, Pos)> {
        self.expect_equals(key)?;
        let t = self.take(&format!("a value for {key}"))?;
        match t.tok.text() {
            Some(s) => Ok((s, t.pos)),
            None => Err(self.unexpected(&t, &format!("a value for {key}"))),
        }
    }

    /// `= <number>` within `range`.
    fn number_value(&mut self, key: &str, range: RangeInclusive<u64>) -> Result<(u64, Pos)> {
        self.expect_equals(key)?;
        let t = self.take(&format!("a number for {key}"))?;
        match t.tok {
            Tok::Number(n) if range.contains(&n) => Ok((n, t.pos)),
            Tok::Number(n) => Err(self.err(
                t.pos,
                format!(
                    "{key} must be between {} and {}, not {n}",
                    range.start(),
                    range.end()
                ),
            )),
            _ => Err(self.unexpected(&t, &format!("a number for {key}"))),
        }
    }

    fn bool_value(&mut self, key: &str) -> Result<bool> {
        let expected = "true, false, yes or no";
        let (w, pos) = self.word_value(key, expected)?;
        bool_word(&w).ok_or_else(|| self.err(pos, format!("expected {expected}, found '{w}'")))
    }

    fn statement(&mut self) -> Result<()> {
        let t = self.take("a keyword")?;
        let key = match &t.tok {
            Tok::Word(w) => w.clone(),
            _ => return Err(self.unexpected(&t, "a keyword")),
        };
        let max_ms = i32::MAX as u64;
        match key.as_str() {
            "Spread_Segment" => self.segment(t.pos)?,
            "RouteMatrix" => self.route_matrix()?,
            "EventLogFile" => {
                let (path, _) = self.string_value(&key)?;
                self.conf.event_log_file = Some(PathBuf::from(path));
            }
            "EventTimeStamp" => {
                if matches!(self.peek(), Some(Token { tok: Tok::Equals, .. })) {
                    let (format, pos) = self.string_value(&key)?;
                    if format.len() > MAX_TIMESTAMP_FORMAT {
                        let msg = format!("timestamp format is longer than {MAX_TIMESTAMP_FORMAT} bytes");
                        return Err(self.err(pos, msg));
                    }
                    self.seen.timestamp_format = Some(format);
                }
                self.seen.timestamp = true;
            }
            "EventPreciseTimeStamp" => {
                self.seen.timestamp = true;
                self.conf.event_precise_timestamp = true;
            }
            "EventPriority" => {
                let expected = "pDEBUG, INFO, WARNING, ERROR, CRITICAL or FATAL";
                let (w, pos) = self.word_value(&key, expected)?;
                let found = PRIORITIES.iter().find(|(n, _)| *n == w);
                let &(_, priority) =
                    found.ok_or_else(|| self.err(pos, format!("expected {expected}, found '{w}'")))?;
                self.conf.event_priority = priority;
            }
            "DebugFlags" => self.debug_flags()?,
            "DangerousMonitor" => self.conf.dangerous_monitor = self.bool_value(&key)?,
            "SocketPortReuse" => {
                let expected = "on, off or auto";
                let (w, pos) = self.word_value(&key, expected)?;
                self.conf.socket_port_reuse = port_reuse_word(&w)
                    .ok_or_else(|| self.err(pos, format!("expected {expected}, found '{w}'")))?;
            }
            "DebugInitialSequence" => self.conf.debug_initial_sequence = true,
            // Like the original, an empty value leaves the setting alone.
            "RuntimeDir" => {
                let (dir, _) = self.string_value(&key)?;
                if !dir.is_empty() {
                    self.conf.runtime_dir = Some(PathBuf::from(dir));
                }
            }
            "DaemonUser" | "DaemonGroup" => {
                let (name, pos) = self.string_value(&key)?;
                if name.len() > MAX_USER_LEN {
                    return Err(self.err(pos, format!("{key} is longer than {MAX_USER_LEN} bytes")));
                }
                if !name.is_empty() {
                    *(if key == "DaemonUser" {
                        &mut self.conf.daemon_user
                    } else {
                        &mut self.conf.daemon_group
                    }) = Some(name);
                }
            }
            "AllowedAuthMethods" | "RequiredAuthMethods" => {
                let (list, _) = self.string_value(&key)?;
                if !self.seen.auth_configured {
                    // Naming any method withdraws the default NULL method.
                    self.conf.allowed_auth_methods.clear();
                    self.seen.auth_configured = true;
                }
                let target = if key == "AllowedAuthMethods" {
                    &mut self.conf.allowed_auth_methods
                } else {
                    &mut self.conf.required_auth_methods
                };
                for method in list.split_whitespace() {
                    if !target.iter().any(|m| m == method) {
                        target.push(method.to_owned());
                    }
                }
            }
            "AccessControlPolicy" => {
                let (policy, pos) = self.string_value(&key)?;
                if !KNOWN_ACCESS_POLICIES.contains(&policy.as_str()) {
                    let known = KNOWN_ACCESS_POLICIES.join(", ");
                    return Err(self.err(
                        pos,
                        format!("unknown access control policy '{policy}' (known: {known})"),
                    ));
                }
                self.conf.access_control_policy = Some(policy);
            }
            "MaxSessionMessages" => {
                self.conf.max_session_messages = self.number_value(&key, 0..=i32::MAX as u64)?.0 as usize;
            }
            _ if Extensions::is_key(&key) => self.extension_line(&key, t.pos)?,
            "LinkProtocol" => {
                let (w, pos) = self.word_value(&key, "Hop or TcpHop")?;
                self.conf.link_protocol = Some(match w.as_str() {
                    "Hop" => LinkProtocol::Hop,
                    "TcpHop" => LinkProtocol::TcpHop,
                    _ => return Err(self.err(pos, format!("expected Hop or TcpHop, found '{w}'"))),
                });
            }
            "Window" => {
                let (n, pos) = self.number_value(&key, 1..=MAX_WINDOW as u64)?;
                self.conf.flow.window = n as u32;
                self.seen.window = Some(pos);
            }
            "PersonalWindow" => {
                let (n, pos) = self.number_value(&key, 1..=MAX_WINDOW as u64)?;
                self.conf.flow.personal_window = n as u32;
                self.seen.personal_window = Some(pos);
            }
            "AcceleratedWindow" => {
                let (n, pos) = self.number_value(&key, 0..=MAX_WINDOW as u64)?;
                self.conf.flow.accelerated_window = n as u32;
                self.seen.accelerated_window = Some(pos);
            }
            "AcceleratedRing" => {
                self.conf.flow.accelerated_ring = self.bool_value(&key)?;
                self.conf.flow.accelerated_ring_set = true;
                self.seen.accelerated_ring = Some(t.pos);
            }
            _ => match TIMEOUT_KEYWORDS.iter().position(|k| *k == key) {
                Some(i) => {
                    let (ms, pos) = self.number_value(&key, 1..=max_ms)?;
                    self.seen.timeouts[i] = Some((ms, pos));
                }
                None => {
                    let mut msg = format!("unknown keyword '{key}'");
                    if key.contains('=') {
                        msg.push_str(" (put spaces around '=')");
                    }
                    return Err(self.err(t.pos, msg));
                }
            },
        }
        Ok(())
    }

    /// `<extension key> = <number>` in spread.conf, from before the
    /// extensions file: used (with a warning) or refused.
    fn extension_line(&mut self, key: &str, pos: Pos) -> Result<()> {
        let new_place = super::extensions::Extensions::path_next_to(std::path::Path::new(self.file));
        if self.extension_lines == ExtensionLines::Refuse {
            let msg = format!(
                "{key} is a spread-rs extension, not part of the Spread 4.4 grammar (the original daemon \
                 refuses it); it belongs in the extensions file {}",
                new_place.display()
            );
            return Err(self.err(pos, msg));
        }
        let (n, value_pos) = self.number_value(key, 0..=i64::MAX as u64)?;
        self.conf
            .extensions
            .set_from_spread_conf(key, Value::Integer(n as i64))
            .map_err(|m| self.err(value_pos, m))?;
        self.conf.extension_keys_in_spread_conf.push(key.to_owned());
        self.conf.warnings.push(format!(
            "{}:{}:{}: {key} is a spread-rs extension that Spread 4.4 daemons refuse; move this line \
             unchanged to {} (spread.conf should hold only the original grammar)",
            self.file,
            pos.line,
            pos.col,
            new_place.display()
        ));
        Ok(())
    }

    /// `DebugFlags = { NAME !NAME ... }`: names add their bits, `!` removes
    /// them, starting from nothing.
    fn debug_flags(&mut self) -> Result<()> {
        self.expect_equals("DebugFlags")?;
        self.expect_open("DebugFlags =")?;
        let mut mask = debug_flags::NONE;
        loop {
            let t = self.take("a debug flag or '}'")?;
            let (negate, t) = match t.tok {
                Tok::Close => break,
                Tok::Bang => (true, self.take("a debug flag after '!'")?),
                _ => (false, t),
            };
            let bit = match &t.tok {
                Tok::Word(w) => debug_flags::NAMES.iter().find(|(n, _)| n == w).map(|&(_, b)| b),
                _ => None,
            };
            let bit = bit.ok_or_else(|| self.unexpected(&t, "a debug flag name (such as PRINT or EXIT)"))?;
            if negate {
                mask &= !bit;
            } else {
                mask |= bit;
            }
        }
        self.conf.debug_flags = mask;
        Ok(())
    }

    /// `RouteMatrix { <costs of one row on one line> ... }`. Read for
    /// compatibility; Spread 4.4 does not route by it.
    fn route_matrix(&mut self) -> Result<()> {
        self.expect_open("RouteMatrix")?;
        let segments = self.conf.segments.len();
        let mut rows: Vec<(Pos, Vec<u64>)> = Vec::new();
        loop {
            let t = self.take("a row of link costs or '}'")?;
            match t.tok {
                Tok::Close => break,
                Tok::Number(n) => match rows.last_mut() {
                    Some((pos, row)) if pos.line == t.pos.line => row.push(n),
                    _ => rows.push((t.pos, vec![n])),
                },
                _ => return Err(self.unexpected(&t, "a row of link costs or '}'")),
            }
        }
        if rows.len() > MAX_SEGMENTS {
            return Err(self.err(
                rows[MAX_SEGMENTS].0,
                format!("more than {MAX_SEGMENTS} rows in RouteMatrix"),
            ));
        }
        self.conf.route_matrix.clear();
        for (pos, row) in rows {
            if row.len() < segments {
                let msg = format!(
                    "route matrix row has {} costs, expected one per segment ({segments})",
                    row.len()
                );
                return Err(self.err(pos, msg));
            }
            if row.len() > MAX_SEGMENTS {
                let msg = format!("route matrix row has more than {MAX_SEGMENTS} costs");
                return Err(self.err(pos, msg));
            }
            if row.iter().any(|&c| c > 100) {
                log::warn!(
                    "{}:{}: route costs above 100 are taken as 100",
                    self.file,
                    pos.line
                );
            }
            self.conf
                .route_matrix
                .push(row.iter().take(segments).map(|&c| c.min(100) as u8).collect());
        }
        Ok(())
    }

    /// `Spread_Segment <address>[:port] { <daemon> ... }`.
    fn segment(&mut self, keyword: Pos) -> Result<()> {
        if self.conf.segments.len() >= MAX_SEGMENTS {
            return Err(self.err(keyword, format!("too many segments (at most {MAX_SEGMENTS})")));
        }
        let t = self.take("the segment's broadcast address")?;
        let (address, port) = match t.tok {
            Tok::Ip(ip, port) => (ip, port),
            _ => return Err(self.unexpected(&t, "the segment's broadcast address (a.b.c.d or a.b.c.d:port)")),
        };
        let port = match port {
            None | Some(0) => DEFAULT_PORT,
            Some(p) if p < u16::MAX as u32 => p as u16,
            Some(p) => {
                let msg = format!("port {p} is out of range (1-65534: the token uses the port after it)");
                return Err(self.err(t.pos, msg));
            }
        };
        self.expect_open("the segment address")?;
        let mut segment = Segment {
            address,
            port,
            daemons: Vec::new(),
        };
        loop {
            let t = self.take("a daemon name or '}'")?;
            let name = match &t.tok {
                Tok::Close => break,
                Tok::Word(w) if is_reserved(w) => {
                    let msg =
                        format!("'{w}' is a reserved word and cannot name a daemon (quote it to use it)");
                    return Err(self.err(t.pos, msg));
                }
                Tok::Word(w) | Tok::Quoted(w) => w.clone(),
                _ => return Err(self.unexpected(&t, "a daemon name or '}'")),
            };
            let daemon = self.daemon(name, t.pos, &segment)?;
            segment.daemons.push(daemon);
        }
        if segment.daemons.is_empty() {
            return Err(self.err(keyword, "segment has no daemons"));
        }
        self.conf.segments.push(segment);
        self.seen.segments.push(keyword);
        Ok(())
    }

    /// A daemon entry after its name: `[address] [{ interfaces }]`.
    fn daemon(&mut self, name: String, pos: Pos, segment: &Segment) -> Result<DaemonEntry> {
        if name.is_empty() {
            return Err(self.err(pos, "empty daemon name"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(self.err(
                pos,
                format!("daemon name '{name}' is longer than {MAX_NAME_LEN} bytes"),
            ));
        }
        if let Some(other) = known_daemons(&self.conf, segment).find(|d| d.name == name) {
            return Err(self.err(
                pos,
                format!("daemon name '{name}' is used twice (also {})", other.ip),
            ));
        }
        if known_daemons(&self.conf, segment).count() >= MAX_DAEMONS {
            return Err(self.err(pos, format!("too many daemons (at most {MAX_DAEMONS})")));
        }
        if segment.daemons.len() >= MAX_DAEMONS_PER_SEGMENT {
            let msg = format!("too many daemons in one segment (at most {MAX_DAEMONS_PER_SEGMENT})");
            return Err(self.err(pos, msg));
        }
        // A port after a daemon's or interface's address is accepted and, as
        // in the original, ignored: daemons use their segment's port.
        let ip = match self.peek() {
            Some(Token {
                tok: Tok::Ip(ip, _), ..
            }) => {
                let ip = *ip;
                self.next += 1;
                Some(ip)
            }
            _ => None,
        };
        let interfaces = match self.peek() {
            Some(Token { tok: Tok::Open, .. }) => {
                self.next += 1;
                Some(self.interfaces(pos)?)
            }
            _ => None,
        };
        let ip = match ip {
            Some(ip) => ip,
            None => (self.resolve)(&name).ok_or_else(|| {
                self.err(
                    pos,
                    format!("cannot resolve daemon name '{name}'; write its address after it"),
                )
            })?,
        };
        if let Some(other) = known_daemons(&self.conf, segment).find(|d| d.ip == ip) {
            return Err(self.err(
                pos,
                format!("address {ip} of daemon '{name}' is also daemon '{}'", other.name),
            ));
        }
        let interfaces = interfaces.unwrap_or_else(|| {
            vec![Interface {
                ip,
                kinds: InterfaceKinds::ALL | InterfaceKinds::ANY,
            }]
        });
        Ok(DaemonEntry { name, ip, interfaces })
    }

    /// The inside of an interface block, up to and including its `}`.
    fn interfaces(&mut self, daemon: Pos) -> Result<Vec<Interface>> {
        let mut list = Vec::new();
        loop {
            let mut kinds = InterfaceKinds::default();
            let expected = "an interface address, D, C, M or '}'";
            let t = loop {
                let t = self.take(expected)?;
                match &t.tok {
                    Tok::Word(w) => match interface_kind(w) {
                        Some(k) => kinds = kinds | k,
                        None => return Err(self.unexpected(&t, expected)),
                    },
                    _ => break t,
                }
            };
            match t.tok {
                Tok::Close if kinds.is_empty() => break,
                Tok::Ip(ip, _) => {
                    if list.len() >= MAX_INTERFACES {
                        let msg = format!("too many interfaces (at most {MAX_INTERFACES})");
                        return Err(self.err(t.pos, msg));
                    }
                    let kinds = if kinds.is_empty() {
                        InterfaceKinds::ALL
                    } else {
                        kinds
                    };
                    list.push(Interface { ip, kinds });
                }
                _ => return Err(self.unexpected(&t, "an interface address")),
            }
        }
        if list.is_empty() {
            return Err(self.err(daemon, "interface block without any interface address"));
        }
        Ok(list)
    }

    /// Whole-file checks and the defaults that depend on the segments.
    fn finish(mut self) -> Result<Configuration> {
        let conf = &mut self.conf;
        let Some(first) = conf.segments.first() else {
            return Err(error(
                self.file,
                self.eof,
                "no Spread_Segment in the configuration".into(),
            ));
        };
        let loopback = first.address.is_loopback();
        if let Some(i) = conf
            .segments
            .iter()
            .position(|s| s.address.is_loopback() != loopback)
        {
            let msg = "loopback (127.x) segments cannot be mixed with other segments";
            return Err(error(self.file, self.seen.segments[i], msg.into()));
        }

        let given: Vec<usize> = (0..9).filter(|&i| self.seen.timeouts[i].is_some()).collect();
        let wide_area = conf.is_wide_area();
        match given.len() {
            0 => conf.timeouts = MembershipTimeouts::defaults(wide_area),
            9 => {
                let ms = |i: usize| Duration::from_millis(self.seen.timeouts[i].map_or(0, |(ms, _)| ms));
                conf.timeouts = MembershipTimeouts {
                    token: ms(0),
                    hurry: ms(1),
                    alive: ms(2),
                    join: ms(3),
                    rep: ms(4),
                    seg: ms(5),
                    gather: ms(6),
                    form: ms(7),
                    lookup: ms(8),
                };
                conf.timeouts_from_file = true;
            }
            _ => {
                let missing: Vec<&str> = (0..9)
                    .filter(|i| !given.contains(i))
                    .map(|i| TIMEOUT_KEYWORDS[i])
                    .collect();
                let pos = given
                    .iter()
                    .filter_map(|&i| self.seen.timeouts[i].map(|(_, p)| p))
                    .min_by_key(|p| (p.line, p.col));
                let msg = format!(
                    "membership timeouts must be given all or none; missing {}",
                    missing.join(", ")
                );
                return Err(error(self.file, pos.unwrap_or(self.eof), msg));
            }
        }

        let flow = &mut conf.flow;
        if flow.personal_window > flow.window {
            let pos = self.seen.personal_window.or(self.seen.window).unwrap_or(self.eof);
            let msg = format!(
                "PersonalWindow ({}) is larger than Window ({})",
                flow.personal_window, flow.window
            );
            return Err(error(self.file, pos, msg));
        }
        if flow.accelerated_ring_set
            && flow.accelerated_ring
            && flow.accelerated_window > flow.personal_window
        {
            let pos = self
                .seen
                .accelerated_window
                .or(self.seen.accelerated_ring)
                .unwrap_or(self.eof);
            let msg = format!(
                "AcceleratedWindow ({}) is larger than PersonalWindow ({})",
                flow.accelerated_window, flow.personal_window
            );
            return Err(error(self.file, pos, msg));
        }
        if !flow.accelerated_ring_set {
            flow.accelerated_ring = !wide_area;
        }

        if self.seen.timestamp {
            let format = self.seen.timestamp_format.take();
            conf.event_timestamp = Some(format.unwrap_or_else(|| DEFAULT_TIMESTAMP_FORMAT.to_owned()));
        }

        if conf.hash_text().len() >= MAX_HASH_TEXT {
            let pos = self.seen.segments.last().copied().unwrap_or(self.eof);
            let msg =
                format!("the segments are too large to hash (the original keeps {MAX_HASH_TEXT} bytes)");
            return Err(error(self.file, pos, msg));
        }
        Ok(self.conf)
    }
}
