//! Byte order as Spread marks it.
//!
//! Every header word is written in the writer's native order. Little-endian
//! writers set the marker bits `0x80000080` in the type word, big-endian
//! writers leave them clear. The mask reads the same under a 4-byte swap, so a
//! reader can test it before it knows the order.

/// The endian marker bits of a type word (`ENDIAN_RESERVED` in `sp.h`).
pub const ENDIAN_MARKER: u32 = 0x8000_0080;

/// The byte order a header was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    /// The order of this machine; what our daemon writes, like the original.
    #[cfg(target_endian = "little")]
    pub const NATIVE: ByteOrder = ByteOrder::Little;
    #[cfg(target_endian = "big")]
    pub const NATIVE: ByteOrder = ByteOrder::Big;

    /// The writer's order, judged from the raw bytes of a type word.
    ///
    /// Like the original, anything but the full little-endian marker counts as
    /// big-endian (a word with only one marker bit is garbage either way).
    pub fn of_type_word(raw: [u8; 4]) -> ByteOrder {
        if u32::from_le_bytes(raw) & ENDIAN_MARKER == ENDIAN_MARKER {
            ByteOrder::Little
        } else {
            ByteOrder::Big
        }
    }

    /// Marker bits a writer of this order puts in a type word.
    pub fn marker(self) -> u32 {
        match self {
            ByteOrder::Little => ENDIAN_MARKER,
            ByteOrder::Big => 0,
        }
    }

    pub fn read_u32(self, b: [u8; 4]) -> u32 {
        match self {
            ByteOrder::Little => u32::from_le_bytes(b),
            ByteOrder::Big => u32::from_be_bytes(b),
        }
    }

    pub fn read_u16(self, b: [u8; 2]) -> u16 {
        match self {
            ByteOrder::Little => u16::from_le_bytes(b),
            ByteOrder::Big => u16::from_be_bytes(b),
        }
    }

    pub fn u32_bytes(self, v: u32) -> [u8; 4] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }

    pub fn u16_bytes(self, v: u16) -> [u8; 2] {
        match self {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        }
    }

    /// Append a 32-bit word in this order.
    pub fn put_u32(self, out: &mut Vec<u8>, v: u32) {
        crate::codec::with_byteorder!(self, B => crate::codec::put_u32::<B>(out, v))
    }

    pub fn put_i32(self, out: &mut Vec<u8>, v: i32) {
        self.put_u32(out, v as u32);
    }

    pub fn put_u16(self, out: &mut Vec<u8>, v: u16) {
        crate::codec::with_byteorder!(self, B => crate::codec::put_u16::<B>(out, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_detection_matches_captures() {
        // AGREED from an x86 writer: 90 00 00 80.
        assert_eq!(ByteOrder::of_type_word([0x90, 0, 0, 0x80]), ByteOrder::Little);
        // The same from a big-endian writer: 00 00 00 10.
        assert_eq!(ByteOrder::of_type_word([0, 0, 0, 0x10]), ByteOrder::Big);
    }

    #[test]
    fn words_round_trip_in_both_orders() {
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let mut v = Vec::new();
            order.put_u32(&mut v, 0x1234_5678);
            order.put_u16(&mut v, 0xabcd);
            assert_eq!(order.read_u32(v[0..4].try_into().unwrap()), 0x1234_5678);
            assert_eq!(order.read_u16(v[4..6].try_into().unwrap()), 0xabcd);
        }
    }
}
