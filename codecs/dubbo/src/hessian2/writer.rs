//! Writing the few Hessian 2.0 values a proxy produces: strings, ints, null and untyped
//! string maps, in the forms Java's `Hessian2Output` picks.

use bytes::BufMut;

use super::tag::*;

/// Longest chunk of a chunked string, in UTF-16 units.
pub const MAX_CHUNK_UNITS: usize = 0x8000;

/// Writes a null (`N`).
pub fn write_null(out: &mut impl BufMut) {
    out.put_u8(NULL);
}

/// Writes an int in its most compact form: 1 byte for -16..=47, 2 for -2048..=2047,
/// 3 for -262144..=262143, else `I` and 4 bytes.
pub fn write_int(out: &mut impl BufMut, v: i32) {
    match v {
        -16..=47 => out.put_u8((0x90 + v) as u8),
        -2048..=2047 => {
            out.put_u8((0xc8 + (v >> 8)) as u8);
            out.put_u8(v as u8);
        }
        -262_144..=262_143 => {
            out.put_u8((0xd4 + (v >> 16)) as u8);
            out.put_u8((v >> 8) as u8);
            out.put_u8(v as u8);
        }
        _ => {
            out.put_u8(INT);
            out.put_i32(v);
        }
    }
}

/// Writes a string. The length counts UTF-16 units: up to 31 takes the short form, up
/// to 1023 the medium form (`0x30`), longer strings go in `R` chunks of 0x8000 units
/// ended by a final chunk in the shortest form. A chunk never ends between the two halves
/// of a surrogate pair.
///
/// Characters outside the BMP are written as Java writes them, each surrogate half as its
/// own 3-byte sequence: Java's `Hessian2Input` rejects 4-byte UTF-8 lead bytes.
pub fn write_string(out: &mut impl BufMut, s: &str) {
    let mut rest = s;
    loop {
        let (chunk, units) = split_units(rest, MAX_CHUNK_UNITS);
        rest = rest.get(chunk.len()..).unwrap_or_default();
        if rest.is_empty() {
            write_final_chunk(out, chunk, units);
            return;
        }
        out.put_u8(STRING_CHUNK);
        // units <= MAX_CHUNK_UNITS = 0x8000 fits u16.
        out.put_u16(units as u16);
        put_java_utf8(out, chunk);
    }
}

/// The longest prefix of `s` holding at most `max` UTF-16 units (a pair is never split),
/// and its unit count.
fn split_units(s: &str, max: usize) -> (&str, usize) {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        let n = c.len_utf16();
        if units + n > max {
            return (s.get(..i).unwrap_or_default(), units);
        }
        units += n;
    }
    (s, units)
}

fn write_final_chunk(out: &mut impl BufMut, chunk: &str, units: usize) {
    if units <= 31 {
        out.put_u8(units as u8);
    } else if units <= 1023 {
        out.put_u8(0x30 + (units >> 8) as u8);
        out.put_u8(units as u8);
    } else {
        out.put_u8(STRING_FINAL);
        out.put_u16(units as u16);
    }
    put_java_utf8(out, chunk);
}

/// UTF-8, except that a character outside the BMP is written as two 3-byte sequences
/// (one per surrogate half), as Java does.
fn put_java_utf8(out: &mut impl BufMut, s: &str) {
    if s.is_ascii() || !s.chars().any(|c| c.len_utf16() == 2) {
        out.put_slice(s.as_bytes());
        return;
    }
    for c in s.chars() {
        if c.len_utf16() == 1 {
            let mut buf = [0u8; 4];
            out.put_slice(c.encode_utf8(&mut buf).as_bytes());
        } else {
            let mut pair = [0u16; 2];
            for unit in c.encode_utf16(&mut pair).iter() {
                let u = u32::from(*unit);
                out.put_u8(0xe0 | (u >> 12) as u8);
                out.put_u8(0x80 | ((u >> 6) & 0x3f) as u8);
                out.put_u8(0x80 | (u & 0x3f) as u8);
            }
        }
    }
}

/// Writes an untyped map (`H` … `Z`) of string keys and values, in the order given.
pub fn write_string_map<'s>(
    out: &mut impl BufMut,
    entries: impl IntoIterator<Item = (&'s str, &'s str)>,
) {
    out.put_u8(MAP_UNTYPED);
    for (k, v) in entries {
        write_string(out, k);
        write_string(out, v);
    }
    out.put_u8(END);
}
