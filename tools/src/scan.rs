//! Reading words and numbers out of a command line as C's `sscanf` does
//! (`%s`, `%d`, `%u`), so the tools accept the same input as the original.

/// C's `isspace` in the "C" locale.
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The bytes of a C string: everything before the first NUL.
pub fn c_str(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(i) => &bytes[..i],
        None => bytes,
    }
}

/// The whitespace-separated words of `s` (what repeated `%s` reads).
pub fn words(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    c_str(s).split(|&b| is_space(b)).filter(|w| !w.is_empty())
}

/// Optional blanks and sign, then decimal digits: (negative, magnitude
/// saturated at `u64::MAX`, overflowed), or `None` without digits.
fn leading_number(s: &[u8]) -> Option<(bool, u64, bool)> {
    let s = c_str(s);
    let start = s.iter().position(|&b| !is_space(b))?;
    let mut s = &s[start..];
    let mut negative = false;
    if let Some((&sign, rest)) = s.split_first() {
        if sign == b'+' || sign == b'-' {
            negative = sign == b'-';
            s = rest;
        }
    }
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut overflow = false;
    let mut value: u64 = 0;
    for &d in &s[..digits] {
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
        {
            Some(v) => value = v,
            None => {
                overflow = true;
                value = u64::MAX;
            }
        }
    }
    Some((negative, value, overflow))
}

/// `sscanf(s, "%d", &v)` on a 64-bit glibc: `None` if no number starts
/// the string; out-of-range values end up as `strtol` leaves them.
pub fn scan_int(s: &[u8]) -> Option<i32> {
    let (negative, magnitude, overflow) = leading_number(s)?;
    let long: i64 = if overflow || magnitude > i64::MAX as u64 {
        if negative {
            i64::MIN
        } else {
            i64::MAX
        }
    } else if negative {
        -(magnitude as i64)
    } else {
        magnitude as i64
    };
    Some(long as i32)
}

/// `sscanf(s, "%u", &v)` on a 64-bit glibc (a minus sign wraps around).
pub fn scan_unsigned(s: &[u8]) -> Option<u32> {
    let (negative, magnitude, overflow) = leading_number(s)?;
    let long = if overflow {
        u64::MAX
    } else if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    Some(long as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_stop_at_nul_and_blanks() {
        let w: Vec<&[u8]> = words(b" g1\tg2  g3\n\0g4").collect();
        assert_eq!(w, [&b"g1"[..], b"g2", b"g3"]);
        assert_eq!(words(b"\n").count(), 0);
    }

    #[test]
    fn numbers_as_sscanf_reads_them() {
        assert_eq!(scan_int(b" 42x"), Some(42));
        assert_eq!(scan_int(b"-7"), Some(-7));
        assert_eq!(scan_int(b"x1"), None);
        assert_eq!(scan_int(b""), None);
        assert_eq!(scan_unsigned(b"100\n"), Some(100));
        assert_eq!(scan_unsigned(b"-1"), Some(u32::MAX));
        assert_eq!(scan_unsigned(b"99999999999999999999999"), Some(u32::MAX));
        assert_eq!(scan_unsigned(b"+"), None);
    }
}
