//! The helpers every codec of this crate is written with.
//!
//! Parsers are nom parsers over the borrowed input (`&[u8]` in, the rest and
//! a value out, nothing copied that the value does not own). Each field
//! parser here takes the field's name, so a failure says which field broke;
//! nom hands a failure the input that was left, and [`run`] turns that into
//! the offset from the start of the unit. Writers put words with byteorder in
//! the order the caller names.

use nom::error::{ErrorKind as NomErrorKind, ParseError};

use crate::client::MembId;
use crate::endian::ByteOrder;
use crate::error::{DecodeError, ErrorKind};

/// Call `f` with the byteorder type of `order`, so a writer is compiled
/// once per order with no test of the order per word.
macro_rules! with_byteorder {
    ($order:expr, $b:ident => $body:expr) => {
        match $order {
            $crate::endian::ByteOrder::Little => {
                type $b = byteorder::LittleEndian;
                $body
            }
            $crate::endian::ByteOrder::Big => {
                type $b = byteorder::BigEndian;
                $body
            }
        }
    };
}
pub(crate) use with_byteorder;

/// A parse failure before its offset is known: the field, how many bytes of
/// the unit were left where it starts, and what was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    field: &'static str,
    left: usize,
    kind: ErrorKind,
}

impl<'a> ParseError<&'a [u8]> for Failure {
    fn from_error_kind(input: &'a [u8], _: NomErrorKind) -> Self {
        Failure {
            field: "input",
            left: input.len(),
            kind: ErrorKind::BadValue {
                reason: "unexpected bytes",
            },
        }
    }

    fn append(_: &'a [u8], _: NomErrorKind, other: Self) -> Self {
        other
    }
}

/// What the parsers of this crate return.
pub(crate) type PResult<'a, T> = nom::IResult<&'a [u8], T, Failure>;

/// Fail at the start of `at` (the input where `field` begins).
pub(crate) fn fail<'a, T>(at: &'a [u8], field: &'static str, kind: ErrorKind) -> PResult<'a, T> {
    Err(nom::Err::Error(Failure {
        field,
        left: at.len(),
        kind,
    }))
}

/// `field`, which begins at `at`, holds a value the protocol does not allow.
pub(crate) fn bad<'a, T>(at: &'a [u8], field: &'static str, reason: &'static str) -> PResult<'a, T> {
    fail(at, field, ErrorKind::BadValue { reason })
}

/// Run `parser` over the whole of `unit`; offsets in the error count from
/// its start plus `base` (where the unit sits inside a larger one).
pub(crate) fn run<'a, T>(
    unit: &'a [u8],
    base: usize,
    parser: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
) -> Result<(&'a [u8], T), DecodeError> {
    parser(unit).map_err(|e| match e {
        nom::Err::Error(f) | nom::Err::Failure(f) => {
            DecodeError::new(f.field, base + unit.len().saturating_sub(f.left), f.kind)
        }
        // Only streaming nom parsers say this; none is used here.
        nom::Err::Incomplete(_) => DecodeError::truncated("input", base + unit.len(), 1),
    })
}

/// Like [`run`], and the unit must be consumed to its end.
pub(crate) fn run_all<'a, T>(
    unit: &'a [u8],
    base: usize,
    field: &'static str,
    parser: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
) -> Result<T, DecodeError> {
    let (rest, value) = run(unit, base, parser)?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(DecodeError::new(
            field,
            base + unit.len() - rest.len(),
            ErrorKind::TrailingBytes,
        ))
    }
}

/// A plain nom parser, its failure renamed to `field` needing `size` bytes.
///
#[inline(always)]
fn named<'a, O>(
    i: &'a [u8],
    field: &'static str,
    size: usize,
    mut p: impl FnMut(&'a [u8]) -> nom::IResult<&'a [u8], O, nom::error::Error<&'a [u8]>>,
) -> PResult<'a, O> {
    p(i).map_err(|_| {
        nom::Err::Error(Failure {
            field,
            left: i.len(),
            kind: ErrorKind::Truncated { needed: size },
        })
    })
}

/// `n` bytes, borrowed.
#[inline]
pub(crate) fn take<'a>(i: &'a [u8], n: usize, field: &'static str) -> PResult<'a, &'a [u8]> {
    named(i, field, n, nom::bytes::complete::take(n))
}

#[inline]
pub(crate) fn array<'a, const N: usize>(i: &'a [u8], field: &'static str) -> PResult<'a, [u8; N]> {
    let (i, s) = take(i, N, field)?;
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    Ok((i, a))
}

pub(crate) fn u8<'a>(i: &'a [u8], field: &'static str) -> PResult<'a, u8> {
    named(i, field, 1, nom::number::complete::u8)
}

// Numbers are nom's `take` of their width and a conversion by order: nom's
// own number parsers (`u32(Endianness)`) return a function pointer and add
// a byte loop, three to four times the instructions on the hot headers.

#[inline]
pub(crate) fn u16<'a>(i: &'a [u8], o: ByteOrder, field: &'static str) -> PResult<'a, u16> {
    with_byteorder!(o, B => typed::u16::<B>(i, field))
}

#[inline]
pub(crate) fn i16<'a>(i: &'a [u8], o: ByteOrder, field: &'static str) -> PResult<'a, i16> {
    with_byteorder!(o, B => typed::i16::<B>(i, field))
}

#[inline]
pub(crate) fn u32<'a>(i: &'a [u8], o: ByteOrder, field: &'static str) -> PResult<'a, u32> {
    with_byteorder!(o, B => typed::u32::<B>(i, field))
}

#[inline]
pub(crate) fn i32<'a>(i: &'a [u8], o: ByteOrder, field: &'static str) -> PResult<'a, i32> {
    with_byteorder!(o, B => typed::i32::<B>(i, field))
}

pub(crate) fn memb_id<'a>(i: &'a [u8], o: ByteOrder, field: &'static str) -> PResult<'a, MembId> {
    let (i, proc_id) = i32(i, o, field)?;
    let (i, time) = i32(i, o, field)?;
    Ok((i, MembId { proc_id, time }))
}

/// The number parsers with the order as a type: a hot parser dispatches on
/// the order once ([`with_byteorder`]) and then reads words without a test.
pub(crate) mod typed {
    use super::{take, PResult};
    use byteorder::ByteOrder;

    #[inline]
    pub(crate) fn u16<'a, B: ByteOrder>(i: &'a [u8], field: &'static str) -> PResult<'a, u16> {
        let (i, b) = take(i, 2, field)?;
        Ok((i, B::read_u16(b)))
    }

    #[inline]
    pub(crate) fn i16<'a, B: ByteOrder>(i: &'a [u8], field: &'static str) -> PResult<'a, i16> {
        let (i, b) = take(i, 2, field)?;
        Ok((i, B::read_i16(b)))
    }

    #[inline]
    pub(crate) fn u32<'a, B: ByteOrder>(i: &'a [u8], field: &'static str) -> PResult<'a, u32> {
        let (i, b) = take(i, 4, field)?;
        Ok((i, B::read_u32(b)))
    }

    #[inline]
    pub(crate) fn i32<'a, B: ByteOrder>(i: &'a [u8], field: &'static str) -> PResult<'a, i32> {
        let (i, b) = take(i, 4, field)?;
        Ok((i, B::read_i32(b)))
    }
}

/// A 16-bit count that must be `>= 0`.
pub(crate) fn count16<'a>(i: &'a [u8], o: ByteOrder, field: &'static str) -> PResult<'a, usize> {
    match i16(i, o, field)? {
        (_, v) if v < 0 => bad(i, field, "negative count"),
        (rest, v) => Ok((rest, v as usize)),
    }
}

/// A 32-bit count that must be `>= 0`.
pub(crate) fn count32<'a>(i: &'a [u8], o: ByteOrder, field: &'static str) -> PResult<'a, usize> {
    match i32(i, o, field)? {
        (_, v) if v < 0 => bad(i, field, "negative count"),
        (rest, v) => Ok((rest, v as usize)),
    }
}

/// Check, before allocating, that `count` items of `item_len` bytes can
/// still be in `rest`; a failure points at the count field (`count_at`).
pub(crate) fn fits<'a>(
    rest: &'a [u8],
    count_at: &'a [u8],
    count: usize,
    item_len: usize,
    field: &'static str,
) -> PResult<'a, ()> {
    match count.checked_mul(item_len) {
        Some(n) if n <= rest.len() => Ok((rest, ())),
        _ => bad(count_at, field, "count exceeds the bytes present"),
    }
}

/// `count` int32s (the count already checked with [`fits`]).
pub(crate) fn i32_vec<'a>(
    i: &'a [u8],
    o: ByteOrder,
    count: usize,
    field: &'static str,
) -> PResult<'a, Vec<i32>> {
    let (_, ()) = fits(i, i, count, 4, field)?;
    nom::multi::count(|i| i32(i, o, field), count)(i)
}

/// `count` uint32s (daemon ids), checked against the bytes present first.
pub(crate) fn u32_vec<'a>(
    i: &'a [u8],
    o: ByteOrder,
    count: usize,
    field: &'static str,
) -> PResult<'a, Vec<u32>> {
    let (_, ()) = fits(i, i, count, 4, field)?;
    nom::multi::count(|i| u32(i, o, field), count)(i)
}

/// A writer of fixed-size fields into a buffer sized for them.
pub(crate) struct Fixed<'a, B> {
    buf: &'a mut [u8],
    pos: usize,
    order: std::marker::PhantomData<B>,
}

impl<'a, B: byteorder::ByteOrder> Fixed<'a, B> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Fixed<'a, B> {
        Fixed {
            buf,
            pos: 0,
            order: std::marker::PhantomData,
        }
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        B::write_u32(&mut self.buf[self.pos..self.pos + 4], v);
        self.pos += 4;
        self
    }

    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        B::write_i32(&mut self.buf[self.pos..self.pos + 4], v);
        self.pos += 4;
        self
    }

    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        B::write_u16(&mut self.buf[self.pos..self.pos + 2], v);
        self.pos += 2;
        self
    }

    pub(crate) fn i16(&mut self, v: i16) -> &mut Self {
        B::write_i16(&mut self.buf[self.pos..self.pos + 2], v);
        self.pos += 2;
        self
    }

    pub(crate) fn memb_id(&mut self, m: MembId) -> &mut Self {
        self.i32(m.proc_id).i32(m.time)
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
        self
    }
}

/// Append one word in `B`'s order.
pub(crate) fn put_u32<B: byteorder::ByteOrder>(out: &mut Vec<u8>, v: u32) {
    let mut b = [0u8; 4];
    B::write_u32(&mut b, v);
    out.extend_from_slice(&b);
}

pub(crate) fn put_u16<B: byteorder::ByteOrder>(out: &mut Vec<u8>, v: u16) {
    let mut b = [0u8; 2];
    B::write_u16(&mut b, v);
    out.extend_from_slice(&b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_field_and_its_offset() {
        let unit = [1u8, 0, 0, 0, 0xff, 0xff, 7];
        let o = ByteOrder::Little;
        let e = run(&unit, 40, |i| {
            let (i, _) = u32(i, o, "first")?;
            count16(i, o, "second")
        })
        .unwrap_err();
        assert_eq!(e, DecodeError::bad("second", 44, "negative count"));
        let e = run(&unit, 0, |i| {
            let (i, _) = take(i, 6, "head")?;
            u32(i, o, "tail")
        })
        .unwrap_err();
        assert_eq!(e, DecodeError::truncated("tail", 6, 4));
        assert_eq!(e.bytes_needed(), Some(10));
        let e = run_all(&unit, 0, "body", |i| u32(i, o, "w")).unwrap_err();
        assert_eq!(e, DecodeError::new("body", 4, ErrorKind::TrailingBytes));
    }

    #[test]
    fn counts_are_checked_before_allocating() {
        let unit = [0xffu8, 0xff, 0xff, 0x7f];
        let e = run(&unit, 0, |i| {
            let (rest, n) = count32(i, ByteOrder::Little, "n")?;
            let (rest, ()) = fits(rest, i, n, 4, "n")?;
            i32_vec(rest, ByteOrder::Little, n, "v")
        })
        .unwrap_err();
        assert_eq!(e, DecodeError::bad("n", 0, "count exceeds the bytes present"));
    }

    #[test]
    fn fixed_writer_in_both_orders() {
        let mut a = [0u8; 6];
        with_byteorder!(ByteOrder::Big, B => { Fixed::<B>::new(&mut a).u32(0x0102_0304).i16(-2); });
        assert_eq!(a, [1, 2, 3, 4, 0xff, 0xfe]);
        with_byteorder!(ByteOrder::Little, B => { Fixed::<B>::new(&mut a).u32(0x0102_0304).i16(-2); });
        assert_eq!(a, [4, 3, 2, 1, 0xfe, 0xff]);
    }
}
