//! Eight bytes at a time without `unsafe`: the scan and the text checks skip the common
//! bytes a word at a time and look at single bytes only where something may be found.
//!
//! Each test sets the high bit of the bytes it flags. Only a byte after a true match can be
//! flagged falsely (a borrow carries upwards), so the lowest flag is always exact.

const ONES: u64 = u64::from_ne_bytes([1; 8]);
const HIGHS: u64 = ONES * 0x80;

/// The eight bytes of `b` from `i`, the first in the lowest byte, if there are eight.
#[inline]
pub(crate) fn word(b: &[u8], i: usize) -> Option<u64> {
    let chunk = b.get(i..i.checked_add(8)?)?;
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(chunk);
    Some(u64::from_le_bytes(bytes))
}

/// Flags the bytes below `n` (at most 0x80).
#[inline]
pub(crate) fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS
}

/// Flags the bytes equal to `byte`.
#[inline]
pub(crate) fn equal(word: u64, byte: u8) -> u64 {
    below(word ^ (ONES * u64::from(byte)), 1)
}

/// Flags the bytes that are not ASCII.
#[inline]
pub(crate) fn non_ascii(word: u64) -> u64 {
    word & HIGHS
}

/// The index in the word of the first flagged byte (8 when there is none).
#[inline]
pub(crate) fn first(flags: u64) -> usize {
    (flags.trailing_zeros() / 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_flag_is_exact() {
        // Every position and every byte value, next to bytes that provoke borrows.
        for pos in 0..8 {
            for byte in 0..=255u8 {
                for fill in [0x00u8, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x5c, 0x7f, 0x80, 0xff] {
                    let mut bytes = [fill; 8];
                    bytes[pos] = byte;
                    let w = word(&bytes, 0).unwrap();
                    let expect =
                        |hit: &dyn Fn(u8) -> bool| bytes.iter().position(|&b| hit(b)).unwrap_or(8);
                    assert_eq!(first(below(w, 0x20)), expect(&|b| b < 0x20));
                    assert_eq!(first(equal(w, b'"')), expect(&|b| b == b'"'));
                    assert_eq!(first(equal(w, 0x7f)), expect(&|b| b == 0x7f));
                    assert_eq!(first(non_ascii(w)), expect(&|b| b >= 0x80));
                }
            }
        }
        assert_eq!(word(b"1234567", 0), None);
        assert_eq!(word(b"12345678", 1), None);
        assert_eq!(word(b"12345678", usize::MAX), None);
    }
}
