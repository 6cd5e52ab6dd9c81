//! The extensions file, `spread-rs.toml`: settings of spread-rs that Spread
//! 4.4 does not have.
//!
//! The original daemon stops on any keyword it does not know, so settings of
//! ours never go into `spread.conf` (one `spread.conf` must serve a ring that
//! mixes both daemons). They live in an optional file found next to the
//! `spread.conf` in use ([`EXTENSIONS_FILE_NAME`]) or named with
//! `--extensions FILE`.
//!
//! The file is TOML, of which it uses the simplest part: `Key = value` lines
//! at the top level, with `#` comments. A value is an integer (`200_000`
//! allowed), `true`/`false`, or a string in `"..."` or `'...'`. Anything else
//! (tables, arrays, floats, dates, duplicate or unknown keys) is an error
//! reported as `file:line:col: message`. Keys are spelled like spread.conf's
//! keywords, so a line moved out of an old spread.conf works unchanged.
//!
//! To add a setting, add one entry to the [`extensions!`] list at the end of
//! this file: its doc comment, key, field, type, default and optional check.

use std::fmt;
use std::path::{Path, PathBuf};

use super::defaults::{
    DEFAULT_MAX_MESSAGE_BODY, DEFAULT_MAX_SESSIONS, DEFAULT_TOKEN_REPLY_HOLD, MAX_MESSAGE_BODY_LIMIT,
    MAX_SESSIONS_LIMIT,
};
use super::ConfigError;

/// Name of the extensions file looked for next to spread.conf.
pub const EXTENSIONS_FILE_NAME: &str = "spread-rs.toml";

/// A value as written in the extensions file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Integer(i64),
    Bool(bool),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(n) => write!(f, "integer {n}"),
            Value::Bool(b) => write!(f, "boolean {b}"),
            Value::Text(s) => write!(f, "string {s:?}"),
        }
    }
}

/// A Rust type an extension setting can have.
pub trait SettingType: Sized {
    /// What the file must hold, for messages ("an integer").
    const EXPECTED: &'static str;
    fn from_value(value: &Value) -> Option<Self>;
}

impl SettingType for usize {
    const EXPECTED: &'static str = "a non-negative integer";
    fn from_value(value: &Value) -> Option<usize> {
        match value {
            Value::Integer(n) => usize::try_from(*n).ok(),
            _ => None,
        }
    }
}

impl SettingType for u32 {
    const EXPECTED: &'static str = "a non-negative integer below 2^32";
    fn from_value(value: &Value) -> Option<u32> {
        match value {
            Value::Integer(n) => u32::try_from(*n).ok(),
            _ => None,
        }
    }
}

impl SettingType for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_value(value: &Value) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl SettingType for String {
    const EXPECTED: &'static str = "a quoted string";
    fn from_value(value: &Value) -> Option<String> {
        match value {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// A check that an integer setting lies in `min..=max`.
pub fn between<T: PartialOrd + fmt::Display + Copy>(min: T, max: T) -> impl Fn(&T) -> Result<(), String> {
    move |v: &T| {
        if *v < min || *v > max {
            Err(format!("must be between {min} and {max}, not {v}"))
        } else {
            Ok(())
        }
    }
}

/// Declares the settings: the [`Extensions`] struct, its defaults and how
/// each key of the file is read into it.
macro_rules! extensions {
    ($( $(#[doc = $doc:literal])* $key:literal => $field:ident : $ty:ty = $default:expr $(, check $check:expr)? ;)*) => {
        /// spread-rs's own settings, from the extensions file (or, for
        /// compatibility, from an old spread.conf).
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Extensions {
            $( $(#[doc = $doc])* #[doc = concat!("\n\nKey `", $key, "`.")] pub $field: $ty, )*
        }

        impl Default for Extensions {
            fn default() -> Extensions {
                Extensions { $( $field: $default, )* }
            }
        }

        impl Extensions {
            /// Every key the file may hold, in declaration order.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// Store `value` under `key`; `Err` says what is wrong with it.
            fn set(&mut self, key: &str, value: &Value) -> Result<(), SetError> {
                match key {
                    $( $key => {
                        let parsed = <$ty as SettingType>::from_value(value).ok_or_else(|| {
                            SetError::Value(format!(
                                "{} must be {}, not {}", $key, <$ty as SettingType>::EXPECTED, value
                            ))
                        })?;
                        #[allow(unused_variables)] // replaced when the entry has a check
                        let check = |_: &$ty| -> Result<(), String> { Ok(()) };
                        $( let check = $check; )?
                        check(&parsed).map_err(|e| SetError::Value(format!("{} {e}", $key)))?;
                        self.$field = parsed;
                        Ok(())
                    } )*
                    _ => Err(SetError::UnknownKey),
                }
            }
        }
    };
}

enum SetError {
    UnknownKey,
    Value(String),
}

/// Where a setting of the extensions came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetAt {
    pub key: String,
    /// `file:line:col` of the setting.
    pub place: String,
}

impl Extensions {
    /// Whether `key` is an extension setting (used by the spread.conf parser
    /// to recognize lines of old files).
    pub fn is_key(key: &str) -> bool {
        Self::KEYS.contains(&key)
    }

    /// Apply one `key = value` read from spread.conf (the old place):
    /// integers only, as spread.conf has no other value type for them.
    pub(super) fn set_from_spread_conf(&mut self, key: &str, value: Value) -> Result<(), String> {
        match self.set(key, &value) {
            Ok(()) => Ok(()),
            Err(SetError::UnknownKey) => Err(format!("{key} is not an extension setting")),
            Err(SetError::Value(message)) => Err(message),
        }
    }

    /// Read an extensions file's text over these values: keys it sets
    /// replace them, the others stay. Returns the keys set, with their places.
    pub fn apply_file(&mut self, text: &str, file: &str) -> Result<Vec<SetAt>, ConfigError> {
        let mut set: Vec<SetAt> = Vec::new();
        for (index, raw_line) in text.split('\n').enumerate() {
            let line_no = index + 1;
            let err = |col: usize, message: String| ConfigError::Parse {
                file: file.to_owned(),
                line: line_no,
                col,
                message,
            };
            let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
            let Some(entry) = split_line(line).map_err(|(col, m)| err(col, m))? else {
                continue;
            };
            if let Some(first) = set.iter().find(|s| s.key == entry.key) {
                return Err(err(
                    entry.key_col,
                    format!("{} is set twice (first at {})", entry.key, first.place),
                ));
            }
            match self.set(&entry.key, &entry.value) {
                Ok(()) => {}
                Err(SetError::UnknownKey) => {
                    return Err(err(
                        entry.key_col,
                        format!(
                            "unknown key '{}' (known keys: {})",
                            entry.key,
                            Self::KEYS.join(", ")
                        ),
                    ))
                }
                Err(SetError::Value(message)) => return Err(err(entry.value_col, message)),
            }
            set.push(SetAt {
                place: format!("{file}:{line_no}:{}", entry.key_col),
                key: entry.key,
            });
        }
        Ok(set)
    }

    /// Parse an extensions file on top of the defaults.
    pub fn parse(text: &str, file: &str) -> Result<Extensions, ConfigError> {
        let mut ext = Extensions::default();
        ext.apply_file(text, file)?;
        Ok(ext)
    }

    /// The extensions file that goes with a configuration: `explicit` (from
    /// `--extensions`) when given, else [`EXTENSIONS_FILE_NAME`] in the
    /// directory of `spread_conf` if that file exists.
    pub fn locate(spread_conf: Option<&Path>, explicit: Option<&Path>) -> Option<PathBuf> {
        if let Some(path) = explicit {
            return Some(path.to_path_buf());
        }
        let candidate = Self::path_next_to(spread_conf?);
        candidate.is_file().then_some(candidate)
    }

    /// Where the extensions file of `spread_conf` is looked for.
    pub fn path_next_to(spread_conf: &Path) -> PathBuf {
        let dir = spread_conf.parent().filter(|d| !d.as_os_str().is_empty());
        dir.unwrap_or(Path::new(".")).join(EXTENSIONS_FILE_NAME)
    }
}

/// One `key = value` line.
struct Entry {
    key: String,
    key_col: usize,
    value: Value,
    value_col: usize,
}

/// Split a line into its setting; `None` for blank and comment lines.
/// Errors carry the 1-based column (in characters).
fn split_line(line: &str) -> Result<Option<Entry>, (usize, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = skip_blanks(&chars, 0);
    if i == chars.len() || chars[i] == '#' {
        return Ok(None);
    }
    if chars[i] == '[' {
        return Err((
            i + 1,
            "tables are not used in this file: write every setting as a top-level 'Key = value' line"
                .to_owned(),
        ));
    }
    let key_start = i;
    while i < chars.len() && is_bare_key_char(chars[i]) {
        i += 1;
    }
    if i == key_start {
        return Err((i + 1, format!("expected a setting name, found '{}'", chars[i])));
    }
    let key: String = chars[key_start..i].iter().collect();
    i = skip_blanks(&chars, i);
    if i == chars.len() || chars[i] != '=' {
        let found = chars
            .get(i)
            .map_or("the end of the line".to_owned(), |c| format!("'{c}'"));
        return Err((i + 1, format!("expected '=' after {key}, found {found}")));
    }
    i = skip_blanks(&chars, i + 1);
    let value_col = i + 1;
    let (value, end) = read_value(&chars, i)?;
    let rest = skip_blanks(&chars, end);
    if rest < chars.len() && chars[rest] != '#' {
        return Err((
            rest + 1,
            format!("unexpected '{}' after the value of {key}", chars[rest]),
        ));
    }
    Ok(Some(Entry {
        key,
        key_col: key_start + 1,
        value,
        value_col,
    }))
}

fn skip_blanks(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
        i += 1;
    }
    i
}

fn is_bare_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A value starting at `i`, and the index after it.
fn read_value(chars: &[char], i: usize) -> Result<(Value, usize), (usize, String)> {
    let Some(&first) = chars.get(i) else {
        return Err((i + 1, "expected a value after '='".to_owned()));
    };
    match first {
        '"' => read_basic_string(chars, i),
        '\'' => match chars[i + 1..].iter().position(|&c| c == '\'') {
            Some(len) => Ok((
                Value::Text(chars[i + 1..i + 1 + len].iter().collect()),
                i + len + 2,
            )),
            None => Err((i + 1, "string without its closing quote".to_owned())),
        },
        '[' | '{' => Err((
            i + 1,
            "arrays and inline tables are not used in this file".to_owned(),
        )),
        _ => {
            let mut end = i;
            while end < chars.len() && !matches!(chars[end], ' ' | '\t' | '#') {
                end += 1;
            }
            let word: String = chars[i..end].iter().collect();
            match word.as_str() {
                "true" => Ok((Value::Bool(true), end)),
                "false" => Ok((Value::Bool(false), end)),
                _ => parse_integer(&word).map(|n| (Value::Integer(n), end)).ok_or((
                    i + 1,
                    format!("'{word}' is not an integer, true, false or a quoted string"),
                )),
            }
        }
    }
}

/// A TOML decimal integer: optional sign, digits, single `_` between digits,
/// no leading zero.
fn parse_integer(word: &str) -> Option<i64> {
    let digits = word.strip_prefix(['+', '-']).unwrap_or(word);
    let well_formed = !digits.is_empty()
        && digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.ends_with(|c: char| c.is_ascii_digit())
        && !digits.contains("__")
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_')
        && !(digits.len() > 1 && digits.starts_with('0'));
    if !well_formed {
        return None;
    }
    let cleaned: String = word.chars().filter(|&c| c != '_').collect();
    cleaned.parse().ok()
}

fn read_basic_string(chars: &[char], start: usize) -> Result<(Value, usize), (usize, String)> {
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((Value::Text(out), i + 1)),
            '\\' => {
                let escaped = match chars.get(i + 1) {
                    Some('"') => '"',
                    Some('\\') => '\\',
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some('r') => '\r',
                    _ => {
                        return Err((
                            i + 1,
                            "unknown escape in a string (use \\\\, \\\", \\n, \\t or \\r)".to_owned(),
                        ))
                    }
                };
                out.push(escaped);
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err((start + 1, "string without its closing quote".to_owned()))
}

extensions! {
    /// Largest message body, in bytes, that clients may send. Never below
    /// the original's 144000 (raising it lets clients built with a patched
    /// limit send more).
    "MaxMessageBodyLength" => max_message_body: usize = DEFAULT_MAX_MESSAGE_BODY,
        check between(DEFAULT_MAX_MESSAGE_BODY, MAX_MESSAGE_BODY_LIMIT);
    /// Most client sessions this daemon serves at once; the next connection
    /// is refused with REJECT_QUOTA. The default is the original's 997
    /// (its select() table); more needs as many file descriptors, so the
    /// daemon raises its soft RLIMIT_NOFILE up to the hard one at start and
    /// lowers the limit (with a warning) when even that is too few.
    "MaxSessions" => max_sessions: usize = DEFAULT_MAX_SESSIONS,
        check between(1, MAX_SESSIONS_LIMIT);
    /// Whether a receiver that is still reading, but is half of
    /// MaxSessionMessages behind, makes the daemon stop reading its local
    /// senders until it is down to a quarter. `false` is the original's
    /// behaviour: such a receiver is cut once it is MaxSessionMessages
    /// behind. A receiver that reads nothing for a second never holds the
    /// senders back, either way.
    "ReceiverBackPressure" => receiver_back_pressure: bool = true;
    /// Longest time, in microseconds, a daemon keeps the token when other
    /// daemons' messages have just come in and it has nothing to send, so
    /// that a local client's answer leaves on this visit instead of a
    /// rotation later. It stops holding while its clients do not answer
    /// (a probe now and then). 0: never hold, as the original. Other
    /// daemons see only a token passed on a little later.
    "TokenReplyHold" => token_reply_hold: u32 = DEFAULT_TOKEN_REPLY_HOLD.as_micros() as u32, check between(0, 10_000);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(text: &str) -> String {
        Extensions::parse(text, "x.toml").unwrap_err().to_string()
    }

    #[test]
    fn reads_settings_comments_and_underscores() {
        let e = Extensions::parse("# ours\n\nMaxMessageBodyLength = 200_000 # bytes\r\n", "x.toml").unwrap();
        assert_eq!(e.max_message_body, 200_000);
        assert_eq!(e.max_sessions, 997, "the original's ceiling by default");
        let e = Extensions::parse("MaxSessions = 10_000", "x.toml").unwrap();
        assert_eq!(e.max_sessions, 10_000);
        assert!(err_of("MaxSessions = 0").contains("MaxSessions must be between 1 and 1000000"));
        assert!(e.receiver_back_pressure, "on unless switched off");
        let e = Extensions::parse("ReceiverBackPressure = false", "x.toml").unwrap();
        assert!(!e.receiver_back_pressure);
        assert!(err_of("ReceiverBackPressure = 0").contains("ReceiverBackPressure must be true or false"));
        assert_eq!(
            Extensions::parse("TokenReplyHold = 0", "x.toml")
                .unwrap()
                .token_reply_hold,
            0
        );
        assert!(err_of("TokenReplyHold = 20000").contains("TokenReplyHold must be between 0 and 10000"));
        assert_eq!(Extensions::parse("", "x.toml").unwrap(), Extensions::default());
    }

    #[test]
    fn errors_name_file_line_and_column() {
        assert_eq!(
            err_of("\nMaxSesions = 3\n"),
            "x.toml:2:1: unknown key 'MaxSesions' (known keys: MaxMessageBodyLength, MaxSessions, ReceiverBackPressure, TokenReplyHold)"
        );
        assert_eq!(
            err_of("MaxMessageBodyLength = 1000"),
            "x.toml:1:24: MaxMessageBodyLength must be between 144000 and 2147483647, not 1000"
        );
        assert_eq!(
            err_of("MaxMessageBodyLength = \"big\""),
            "x.toml:1:24: MaxMessageBodyLength must be a non-negative integer, not string \"big\""
        );
        assert_eq!(
            err_of("MaxMessageBodyLength = 200000\n  MaxMessageBodyLength = 300000"),
            "x.toml:2:3: MaxMessageBodyLength is set twice (first at x.toml:1:1)"
        );
        assert!(err_of("[daemon]").starts_with("x.toml:1:1: tables are not used"));
        assert!(err_of("MaxMessageBodyLength 5").starts_with("x.toml:1:22: expected '='"));
        assert!(err_of("MaxMessageBodyLength = 2.5").starts_with("x.toml:1:24: '2.5' is not an integer"));
        assert!(err_of("MaxMessageBodyLength = 200000 x").starts_with("x.toml:1:31: unexpected 'x'"));
        assert!(err_of("MaxMessageBodyLength = 0200000").contains("is not an integer"));
        assert!(err_of("K = \"open").contains("closing quote"));
    }

    #[test]
    fn strings_and_booleans() {
        let text = |line: &str| split_line(line).unwrap().unwrap().value;
        assert_eq!(text(r#"A = "a \"b\" # c""#), Value::Text("a \"b\" # c".into()));
        assert_eq!(text("A = 'C:\\x'"), Value::Text("C:\\x".into()));
        assert_eq!(text("A = true"), Value::Bool(true));
        assert_eq!(text("A = -5"), Value::Integer(-5));
        assert!(split_line("   # only a comment").unwrap().is_none());
    }

    #[test]
    fn located_next_to_spread_conf() {
        assert_eq!(
            Extensions::path_next_to(Path::new("/etc/spread/spread.conf")),
            PathBuf::from("/etc/spread/spread-rs.toml")
        );
        assert_eq!(
            Extensions::path_next_to(Path::new("spread.conf")),
            PathBuf::from("./spread-rs.toml")
        );
        let explicit = Path::new("/nowhere/x.toml");
        assert_eq!(
            Extensions::locate(Some(Path::new("/nowhere/spread.conf")), Some(explicit)),
            Some(explicit.to_path_buf())
        );
        assert_eq!(
            Extensions::locate(Some(Path::new("/nowhere/spread.conf")), None),
            None
        );
    }
}
