//! Hessian strings: lengths count UTF-16 units, the bytes are (Java's) UTF-8.

use std::ops::Range;

use super::Error;

/// A string read by [`super::Reader`].
///
/// A one-chunk string that is valid UTF-8 is borrowed from the input, with its offset, so
/// a caller can remember it as a range and allocate nothing. Chunked strings and strings
/// a Java writer encoded its own way (each surrogate half as a 3-byte sequence, which is
/// not valid UTF-8) are decoded into an owned `String`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HString<'a> {
    /// The bytes of the input at `at..at + text.len()`.
    Borrowed {
        /// Offset of the first byte of the text in the reader's input.
        at: usize,
        /// The text.
        text: &'a str,
    },
    /// Decoded text.
    Owned(String),
}

impl HString<'_> {
    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            HString::Borrowed { text, .. } => text,
            HString::Owned(s) => s,
        }
    }

    /// Where the text lies in the input, if it is borrowed.
    pub fn range(&self) -> Option<Range<usize>> {
        match self {
            HString::Borrowed { at, text } => Some(*at..*at + text.len()),
            HString::Owned(_) => None,
        }
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        match self {
            HString::Borrowed { text, .. } => text.to_string(),
            HString::Owned(s) => s,
        }
    }
}

impl std::fmt::Display for HString<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The common string at `pos`: one chunk (short, medium or `S` form), all ASCII, wholly
/// in `buf`. Returns the range of its text (ending where the next value starts), or
/// `None` for any other string, any other value, or a truncated one.
#[inline]
pub(crate) fn ascii_string_at(buf: &[u8], pos: usize) -> Option<Range<usize>> {
    let text = one_chunk_string_at(buf, pos)?;
    // ASCII: one byte per UTF-16 unit, so `units` bytes are the whole string.
    buf.get(text.clone())?.is_ascii().then_some(text)
}

/// [`ascii_string_at`] without the ASCII check, for bytes that passed it before: the
/// range of a one-chunk string's text, its length in units taken as bytes.
#[inline]
pub(crate) fn one_chunk_string_at(buf: &[u8], pos: usize) -> Option<Range<usize>> {
    let b = *buf.get(pos)?;
    let (start, units) = match b {
        0x00..=0x1f => (pos + 1, usize::from(b)),
        0x30..=0x33 => (
            pos + 2,
            (usize::from(b - 0x30) << 8) | usize::from(*buf.get(pos + 1)?),
        ),
        super::tag::STRING_FINAL => (
            pos + 3,
            usize::from(u16::from_be_bytes([*buf.get(pos + 1)?, *buf.get(pos + 2)?])),
        ),
        _ => return None,
    };
    let end = start.checked_add(units)?;
    (end <= buf.len()).then_some(start..end)
}

/// Walks `units` UTF-16 units of UTF-8 starting at `pos`; returns the offset after them.
///
/// Lead bytes as Java's `Hessian2Input` accepts them: `< 0x80` one byte, `0xc0-0xdf`
/// two, `0xe0-0xef` three; leniently also `0xf0-0xf7` four bytes, counted as two units.
/// Continuation bytes are not checked here (Java does not either); text that is not valid
/// UTF-8 is decoded with [`decode_java_utf8`].
pub(crate) fn scan_units(buf: &[u8], mut pos: usize, units: usize) -> Result<usize, Error> {
    let mut left = units;
    while left > 0 {
        let rest = buf.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            return Err(Error::Truncated { at: pos });
        }
        // Fast path: a run of ASCII, one unit per byte. Most strings (service names,
        // attachment keys and values) are all ASCII: one word-at-a-time check decides.
        let window = rest.get(..left.min(rest.len())).unwrap_or_default();
        let ascii = if window.is_ascii() {
            window.len()
        } else {
            window
                .iter()
                .position(|b| *b >= 0x80)
                .unwrap_or(window.len())
        };
        pos += ascii;
        left -= ascii;
        if left == 0 {
            break;
        }
        let Some(&lead) = buf.get(pos) else {
            return Err(Error::Truncated { at: pos });
        };
        let (len, n) = match lead {
            0xc0..=0xdf => (2, 1),
            0xe0..=0xef => (3, 1),
            0xf0..=0xf7 => (4, 2),
            _ => return Err(Error::BadUtf8 { at: pos }),
        };
        if n > left {
            return Err(Error::BadUtf8 { at: pos });
        }
        if buf.len() - pos < len {
            return Err(Error::Truncated { at: buf.len() });
        }
        pos += len;
        left -= n;
    }
    Ok(pos)
}

/// Decodes text the way Java's `Hessian2Input` does (one UTF-16 unit per 1-3 byte
/// sequence, so surrogate halves encoded separately pair up again; a 4-byte sequence
/// gives a pair), replacing what UTF-16 cannot hold with U+FFFD.
pub(crate) fn decode_java_utf8(bytes: &[u8]) -> String {
    let mut units: Vec<u16> = Vec::with_capacity(bytes.len());
    let cont = |i: usize| u32::from(bytes.get(i).copied().unwrap_or(0) & 0x3f);
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let b = u32::from(b);
        let (cp, len) = match b {
            0x00..=0x7f => (b, 1),
            0xc0..=0xdf => (((b & 0x1f) << 6) | cont(i + 1), 2),
            0xe0..=0xef => (((b & 0x0f) << 12) | (cont(i + 1) << 6) | cont(i + 2), 3),
            0xf0..=0xf7 => (
                ((b & 0x07) << 18) | (cont(i + 1) << 12) | (cont(i + 2) << 6) | cont(i + 3),
                4,
            ),
            _ => (0xfffd, 1),
        };
        if len == 4 {
            let c = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
            let mut pair = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut pair));
        } else {
            // Below 0x10000 by construction (at most 16 bits from a 3-byte sequence).
            units.push(cp as u16);
        }
        i += len;
    }
    String::from_utf16_lossy(&units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_multibyte_units() {
        assert_eq!(scan_units(b"hello", 0, 5), Ok(5));
        assert_eq!(scan_units(b"hello", 1, 3), Ok(4));
        // "é" is 2 bytes, 1 unit; "€" 3 bytes, 1 unit; U+1F600 4 bytes, 2 units.
        assert_eq!(scan_units("é€".as_bytes(), 0, 2), Ok(5));
        assert_eq!(scan_units("a😀b".as_bytes(), 0, 4), Ok(6));
        assert_eq!(
            scan_units("😀".as_bytes(), 0, 1),
            Err(Error::BadUtf8 { at: 0 })
        );
        assert_eq!(scan_units(b"ab", 0, 3), Err(Error::Truncated { at: 2 }));
        assert_eq!(
            scan_units(&[0xe2, 0x82], 0, 1),
            Err(Error::Truncated { at: 2 })
        );
        assert_eq!(scan_units(&[0x80], 0, 1), Err(Error::BadUtf8 { at: 0 }));
        assert_eq!(
            scan_units(&[0xf8, 0, 0, 0], 0, 1),
            Err(Error::BadUtf8 { at: 0 })
        );
        assert_eq!(scan_units(b"", 0, 0), Ok(0));
    }

    #[test]
    fn java_surrogate_halves_pair_up() {
        // U+1F600 as Java writes it: the halves D83D and DE00, 3 bytes each.
        let cesu = [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80];
        assert_eq!(scan_units(&cesu, 0, 2), Ok(6));
        assert_eq!(decode_java_utf8(&cesu), "😀");
        // A lone half becomes U+FFFD.
        assert_eq!(decode_java_utf8(&cesu[..3]), "\u{fffd}");
        assert_eq!(decode_java_utf8("a😀é".as_bytes()), "a😀é");
    }
}
