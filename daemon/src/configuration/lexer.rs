//! Tokens of a spread.conf file.
//!
//! The original splits its input with a longest-match scanner. The rules that
//! matter for compatibility, and that this lexer keeps:
//!
//! * `{` and `}` always stand alone; whitespace and `#` (comment to the end of
//!   the line) separate words.
//! * A word is any other run of characters. It is classified only as a whole:
//!   `=` alone is the equals sign, `Window` alone is a keyword, but
//!   `Window=16` is one (unknown) word, exactly as the original reads it.
//! * A word of four dotted 1-3 digit groups, optionally followed by `:` and a
//!   1-5 digit port, is an IPv4 address; a word of digits is a number.
//! * A word starting with `!` yields a separate `!` token (used by
//!   `DebugFlags`), then the rest is scanned again.
//! * `"..."` and `'...'` quote a string (which may hold spaces, `#` and braces)
//!   unless an unquoted word starting at the same place would be longer, as
//!   in the original (`"a"b` is the plain word `"a"b`).
//!
//! Keywords are case-sensitive; booleans are not (see the parser).

use std::net::Ipv4Addr;

/// 1-based line and column (in characters) of a token's first character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    Open,
    Close,
    Equals,
    Bang,
    /// An unquoted word that is not an address or number (keywords included).
    Word(String),
    /// A quoted string, without its quotes.
    Quoted(String),
    /// An address, with the port when one was written (`0` kept as written).
    Ip(Ipv4Addr, Option<u32>),
    Number(u64),
}

impl Tok {
    /// How the token looked in the file, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Open => "'{'".into(),
            Tok::Close => "'}'".into(),
            Tok::Equals => "'='".into(),
            Tok::Bang => "'!'".into(),
            Tok::Word(w) => format!("'{w}'"),
            Tok::Quoted(s) => format!("quoted string \"{s}\""),
            Tok::Ip(ip, Some(port)) => format!("address {ip}:{port}"),
            Tok::Ip(ip, None) => format!("address {ip}"),
            Tok::Number(n) => format!("number {n}"),
        }
    }

    /// The text of a token usable as a plain string value.
    pub fn text(&self) -> Option<String> {
        match self {
            Tok::Word(w) | Tok::Quoted(w) => Some(w.clone()),
            Tok::Ip(ip, Some(port)) => Some(format!("{ip}:{port}")),
            Tok::Ip(ip, None) => Some(ip.to_string()),
            Tok::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

/// A lexical error: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    pub pos: Pos,
    pub message: String,
}

fn is_word_char(c: char) -> bool {
    !matches!(c, ' ' | '\t' | '\r' | '\n' | '#' | '{' | '}')
}

/// A position in the input, kept in step with line and column.
struct Cursor {
    chars: Vec<char>,
    i: usize,
    pos: Pos,
}

impl Cursor {
    /// Move to `end`, counting lines and columns on the way.
    fn skip_to(&mut self, end: usize) {
        for &c in &self.chars[self.i..end] {
            if c == '\n' {
                self.pos = Pos {
                    line: self.pos.line + 1,
                    col: 1,
                };
            } else {
                self.pos.col += 1;
            }
        }
        self.i = end;
    }

    /// Index of the first char from `from` on that satisfies `stop`, or the end.
    fn find(&self, from: usize, stop: impl Fn(char) -> bool) -> usize {
        self.chars[from..]
            .iter()
            .position(|&c| stop(c))
            .map_or(self.chars.len(), |n| from + n)
    }
}

/// Split `text` into tokens.
pub fn tokenize(text: &str) -> Result<Vec<Token>, LexError> {
    let mut cur = Cursor {
        chars: text.chars().collect(),
        i: 0,
        pos: Pos { line: 1, col: 1 },
    };
    let mut tokens = Vec::new();
    while let Some(&c) = cur.chars.get(cur.i) {
        let (i, pos) = (cur.i, cur.pos);
        let single = |tok| Some(Token { tok, pos });
        let (token, end) = match c {
            ' ' | '\t' | '\r' | '\n' => (None, i + 1),
            '#' => (None, cur.find(i, |c| c == '\n')),
            '{' => (single(Tok::Open), i + 1),
            '}' => (single(Tok::Close), i + 1),
            '!' if cur.chars.get(i + 1).is_some_and(|&n| n != '\n') => (single(Tok::Bang), i + 1),
            _ => {
                let word_end = cur.find(i, |c| !is_word_char(c));
                let quote_end = match c {
                    '"' | '\'' if i + 1 < cur.chars.len() => {
                        Some(cur.find(i + 1, |q| q == c) + 1).filter(|&e| e <= cur.chars.len())
                    }
                    _ => None,
                };
                match quote_end {
                    // The longer match wins; on a tie the quoted string does.
                    Some(end) if end >= word_end => (
                        single(Tok::Quoted(cur.chars[i + 1..end - 1].iter().collect())),
                        end,
                    ),
                    _ => {
                        let word: String = cur.chars[i..word_end].iter().collect();
                        let tok = classify(&word).map_err(|message| LexError { pos, message })?;
                        (single(tok), word_end)
                    }
                }
            }
        };
        tokens.extend(token);
        cur.skip_to(end);
    }
    Ok(tokens)
}

/// Classify a whole word: `=`, address, number, or plain word.
fn classify(word: &str) -> Result<Tok, String> {
    if word == "=" {
        return Ok(Tok::Equals);
    }
    if let Some(ip) = parse_address(word)? {
        return Ok(ip);
    }
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
        return word
            .parse()
            .map(Tok::Number)
            .map_err(|_| format!("number '{word}' is too large"));
    }
    Ok(Tok::Word(word.to_owned()))
}

fn digits(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// `a.b.c.d` or `a.b.c.d:port` with the digit counts the original accepts.
/// `Ok(None)`: not shaped like an address (so it is a plain word).
fn parse_address(word: &str) -> Result<Option<Tok>, String> {
    let (addr, port) = match word.split_once(':') {
        Some((a, p)) if digits(p, 5) => (a, Some(p)),
        Some(_) => return Ok(None),
        None => (word, None),
    };
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4 || !parts.iter().all(|p| digits(p, 3)) {
        return Ok(None);
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(&parts) {
        // At most three digits, so this parse cannot fail; only the range can.
        let v: u32 = p.parse().unwrap_or(u32::MAX);
        *o = u8::try_from(v).map_err(|_| format!("invalid IP address '{addr}' ({v} is not 0-255)"))?;
    }
    let port = port.map(|p| p.parse::<u32>().unwrap_or(u32::MAX));
    Ok(Some(Tok::Ip(Ipv4Addr::from(octets), port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.into())
    }

    #[test]
    fn words_braces_and_comments() {
        assert_eq!(
            toks("Spread_Segment 1.2.3.255:4803{ a 1.2.3.4 }# x { y\nWindow = 5"),
            vec![
                w("Spread_Segment"),
                Tok::Ip(Ipv4Addr::new(1, 2, 3, 255), Some(4803)),
                Tok::Open,
                w("a"),
                Tok::Ip(Ipv4Addr::new(1, 2, 3, 4), None),
                Tok::Close,
                w("Window"),
                Tok::Equals,
                Tok::Number(5),
            ]
        );
    }

    #[test]
    fn equals_glued_to_a_word_is_part_of_it() {
        assert_eq!(toks("Window=5"), vec![w("Window=5")]);
        assert_eq!(toks("Window =5"), vec![w("Window"), w("=5")]);
    }

    #[test]
    fn bang_splits_off() {
        assert_eq!(
            toks("{ ALL !DEBUG ! EXIT }"),
            vec![
                Tok::Open,
                w("ALL"),
                Tok::Bang,
                w("DEBUG"),
                Tok::Bang,
                w("EXIT"),
                Tok::Close
            ]
        );
        // A lone '!' at the end of a line is a plain word, as in the original.
        assert_eq!(toks("!\n"), vec![w("!")]);
        assert_eq!(toks("a!b"), vec![w("a!b")]);
    }

    #[test]
    fn quotes() {
        assert_eq!(
            toks("\"a b # {c}\" 'x\"y'"),
            vec![Tok::Quoted("a b # {c}".into()), Tok::Quoted("x\"y".into())]
        );
        assert_eq!(toks("\"a\"b"), vec![w("\"a\"b")]);
        assert_eq!(toks("\"\""), vec![Tok::Quoted(String::new())]);
        // Unterminated: a plain word up to the next separator.
        assert_eq!(toks("\"abc def"), vec![w("\"abc"), w("def")]);
    }

    #[test]
    fn positions_are_one_based_and_count_newlines_inside_quotes() {
        let t = tokenize("a\n  'x\ny' b\n\tc").unwrap();
        let pos: Vec<(usize, usize)> = t.iter().map(|t| (t.pos.line, t.pos.col)).collect();
        assert_eq!(pos, vec![(1, 1), (2, 3), (3, 4), (4, 2)]);
    }

    #[test]
    fn addresses_and_numbers() {
        assert_eq!(
            toks("10.0.0.1:0"),
            vec![Tok::Ip(Ipv4Addr::new(10, 0, 0, 1), Some(0))]
        );
        assert_eq!(toks("1.2.3"), vec![w("1.2.3")]);
        assert_eq!(toks("1.2.3.4.5"), vec![w("1.2.3.4.5")]);
        assert_eq!(toks("1.2.3.4:123456"), vec![w("1.2.3.4:123456")]);
        assert_eq!(toks("1.2.3.0004"), vec![w("1.2.3.0004")]);
        assert_eq!(toks("0012"), vec![Tok::Number(12)]);
        assert_eq!(toks("-3"), vec![w("-3")]);
        let e = tokenize("x\n 1.2.256.4").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, col: 2 });
        assert!(e.message.contains("256"), "{}", e.message);
        assert!(tokenize("99999999999999999999999").is_err());
    }

    #[test]
    fn non_ascii_columns_count_characters() {
        let t = tokenize("é x").unwrap();
        assert_eq!(t[1].pos, Pos { line: 1, col: 3 });
    }
}
