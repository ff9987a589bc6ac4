//! The Bolt header map: SOFA RPC's `SimpleMapSerializer` (`wire-formats.md` §1.4).
//!
//! The section is a run of `(key, value)` strings, each an `i32` length then that many
//! bytes, ending exactly at headerLen. A negative length is null (Java's reader); a pair
//! with a null half is dropped but both halves are consumed, so parsing stays aligned
//! (MOSN loses alignment here). A string running past the section, or 1-3 stray bytes at
//! its end, is an error.

use bytes::{BufMut, Bytes, BytesMut};
use strait_codec_framework::CodecError;

use crate::types::MAX_SECTION_LEN;

/// Checks a header section without allocating: every length fits, nothing trails.
/// Returns the section's [`KeyLengths`].
pub(crate) fn validate(section: &[u8]) -> Result<KeyLengths, CodecError> {
    let mut pos = 0;
    let mut lengths = KeyLengths::NONE;
    // One pass, each length read once: this runs for every frame.
    while pos < section.len() {
        let (key, after_key) = string_at(section, pos).map_err(|r| malformed("key", pos, r))?;
        if let Some(n) = key {
            lengths.add(n);
        }
        let (_, after_value) =
            string_at(section, after_key).map_err(|r| malformed("value", after_key, r))?;
        pos = after_value;
    }
    Ok(lengths)
}

#[cold]
fn malformed(half: &str, pos: usize, reason: &str) -> CodecError {
    CodecError::Malformed {
        section: "header map",
        reason: format!("{half} at offset {pos}: {reason}"),
    }
}

/// The string at `pos`: its length (`None` = null) and the offset just past it.
fn string_at(section: &[u8], pos: usize) -> Result<(Option<usize>, usize), &'static str> {
    let (len, body) = read_len(section, pos).ok_or("length field truncated")?;
    match len {
        None => Ok((None, body)),
        Some(n) if n <= section.len() - body => Ok((Some(n), body + n)),
        Some(_) => Err("string runs past the end of the header map"),
    }
}

/// Which key lengths (mod 64) a header section holds, noted while it is validated: a
/// lookup of a key whose length is not among them (a trace header most requests lack)
/// answers "absent" without walking the pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyLengths(u64);

impl KeyLengths {
    /// No key.
    pub(crate) const NONE: KeyLengths = KeyLengths(0);

    fn add(&mut self, len: usize) {
        self.0 |= 1 << (len % 64);
    }

    /// Whether a key of `len` bytes may be present.
    pub(crate) fn may_hold(self, len: usize) -> bool {
        self.0 & (1 << (len % 64)) != 0
    }
}

/// The length at `pos` (`None` = null) and the offset of the string's bytes.
fn read_len(section: &[u8], pos: usize) -> Option<(Option<usize>, usize)> {
    let field: [u8; 4] = section.get(pos..pos.checked_add(4)?)?.try_into().ok()?;
    let len = i32::from_be_bytes(field);
    // A negative length is null, as in Java; usize::try_from fails exactly then.
    Some((usize::try_from(len).ok(), pos + 4))
}

/// Iterates over the pairs of a section already checked by [`validate`], in wire order,
/// as raw bytes. Pairs with a null half are skipped. Stops early, rather than panicking,
/// if the section turns out to be malformed anyway.
pub(crate) struct RawPairs<'a> {
    section: &'a [u8],
    pos: usize,
}

impl<'a> RawPairs<'a> {
    /// Pairs of `section`.
    pub(crate) fn new(section: &'a [u8]) -> Self {
        RawPairs { section, pos: 0 }
    }

    fn string(&mut self) -> Option<Option<&'a [u8]>> {
        let (len, body) = read_len(self.section, self.pos)?;
        match len {
            None => {
                self.pos = body;
                Some(None)
            }
            Some(n) => {
                let s = self.section.get(body..body.checked_add(n)?)?;
                self.pos = body + n;
                Some(Some(s))
            }
        }
    }
}

impl<'a> Iterator for RawPairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let key = self.string()?;
            let value = self.string()?;
            if let (Some(k), Some(v)) = (key, value) {
                return Some((k, v));
            }
        }
    }
}

/// The value of the last pair keyed `name` in a section already checked by
/// [`validate`] (pairs with a null half skipped, as [`RawPairs`] does), found in one
/// pass that reads only lengths until a key has `name`'s length: the proxy asks this
/// for every request it routes by a header. Stops early, rather than panicking, if the
/// section turns out to be malformed anyway.
#[inline(never)]
pub(crate) fn last_value<'a>(section: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut rest = section;
    let mut found = None;
    while let Some((key_len, tail)) = split_len(rest) {
        let (key, tail) = split_string(key_len, tail)?;
        let (value_len, tail) = split_len(tail)?;
        let (value, tail) = split_string(value_len, tail)?;
        if key == Some(name) && value.is_some() {
            found = value;
        }
        rest = tail;
    }
    found
}

/// A length field off the front of `bytes`, and what follows it.
#[inline(always)]
fn split_len(bytes: &[u8]) -> Option<(i32, &[u8])> {
    let (field, tail) = bytes.split_first_chunk::<4>()?;
    Some((i32::from_be_bytes(*field), tail))
}

/// A string of `len` bytes off the front of `bytes` (`None` for a negative, null,
/// length), and what follows it.
#[inline(always)]
fn split_string(len: i32, bytes: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    match usize::try_from(len) {
        Ok(n) => bytes.split_at_checked(n).map(|(s, tail)| (Some(s), tail)),
        Err(_) => Some((None, bytes)),
    }
}

/// Owned pairs as slices of the frame's bytes (zero-copy) or of new strings.
pub(crate) type OwnedPairs = Vec<(Bytes, Bytes)>;

/// Copies the pairs of a validated section as zero-copy slices of `raw`, where `section`
/// is `raw[start..]`-based: each pair is located by pointer offset into `raw`.
pub(crate) fn to_owned(raw: &Bytes, section: &[u8]) -> OwnedPairs {
    RawPairs::new(section)
        .map(|(k, v)| (raw.slice_ref(k), raw.slice_ref(v)))
        .collect()
}

/// Serialised size of `pairs`; errors if it exceeds the headerLen field's range.
pub(crate) fn encoded_len(pairs: &[(Bytes, Bytes)]) -> Result<u16, CodecError> {
    let len: usize = pairs.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    match u16::try_from(len) {
        Ok(n) if n <= MAX_SECTION_LEN => Ok(n),
        _ => Err(CodecError::Encode(format!(
            "header map of {len} bytes exceeds {MAX_SECTION_LEN}"
        ))),
    }
}

/// Appends `pairs` in `SimpleMapSerializer` form. The caller checked [`encoded_len`], so
/// every string is shorter than 0x7fff and its length fits an `i32`.
pub(crate) fn write(pairs: &[(Bytes, Bytes)], dst: &mut BytesMut) {
    for (k, v) in pairs {
        for s in [k, v] {
            dst.put_u32(s.len() as u32);
            dst.put_slice(s);
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn key_lengths_rule_out_absent_keys_only() {
        let mut sec = BytesMut::new();
        for (k, v) in [("service", "a"), ("sofa_head_method_name", "b")] {
            sec.put_i32(k.len() as i32);
            sec.put_slice(k.as_bytes());
            sec.put_i32(v.len() as i32);
            sec.put_slice(v.as_bytes());
        }
        let keys = validate(&sec).unwrap();
        assert!(keys.may_hold("service".len()));
        assert!(keys.may_hold("sofa_head_method_name".len()));
        assert!(!keys.may_hold("traceparent".len()));
        // Lengths are kept mod 64: a 71-byte key may be a 7-byte one.
        assert!(keys.may_hold(71));
        assert_eq!(validate(&[]).unwrap(), KeyLengths::NONE);
    }

    use super::*;

    fn s(bytes: &[u8]) -> Vec<u8> {
        let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn empty_section_is_valid() {
        assert!(validate(&[]).is_ok());
        assert_eq!(RawPairs::new(&[]).count(), 0);
    }

    #[test]
    fn null_value_drops_the_pair_but_stays_aligned() {
        let mut sec = s(b"a");
        sec.extend_from_slice(&[0xff; 4]);
        sec.extend(s(b"b"));
        sec.extend(s(b"c"));
        validate(&sec).expect("valid");
        let pairs: Vec<_> = RawPairs::new(&sec).collect();
        assert_eq!(pairs, vec![(&b"b"[..], &b"c"[..])]);
    }

    #[test]
    fn null_key_drops_the_pair() {
        let mut sec = vec![0xff; 4];
        sec.extend(s(b"v"));
        validate(&sec).expect("valid");
        assert_eq!(RawPairs::new(&sec).count(), 0);
    }

    #[test]
    fn last_value_is_the_last_non_null_pair_of_the_key() {
        let null = [0xffu8; 4];
        let mut sec = Vec::new();
        for (k, v) in [
            (Some(&b"service"[..]), Some(&b"first"[..])),
            (None, Some(&b"x"[..])),
            (Some(b"method"), Some(b"m")),
            (Some(b"service"), Some(b"second")),
            (Some(b"service"), None),
            (Some(b"servic"), Some(b"short")),
            (Some(b"services"), Some(b"long")),
            (Some(b""), Some(b"empty-key")),
        ] {
            sec.extend(k.map_or(null.to_vec(), s));
            sec.extend(v.map_or(null.to_vec(), s));
        }
        validate(&sec).expect("valid");
        for name in [
            &b"service"[..],
            b"method",
            b"servic",
            b"services",
            b"",
            b"absent",
        ] {
            let by_pairs = RawPairs::new(&sec)
                .filter(|(k, _)| *k == name)
                .last()
                .map(|(_, v)| v);
            assert_eq!(last_value(&sec, name), by_pairs, "{name:?}");
        }
        assert_eq!(last_value(&sec, b"service"), Some(&b"second"[..]));
        assert_eq!(last_value(&[], b"service"), None);
    }

    #[test]
    fn key_without_value_is_malformed() {
        assert!(validate(&s(b"k")).is_err());
    }

    #[test]
    fn overrun_and_trailing_bytes_are_malformed() {
        let mut sec = s(b"k");
        sec.extend_from_slice(&[0, 0, 0, 9, b'x']);
        assert!(validate(&sec).is_err());
        let mut sec = s(b"k");
        sec.extend(s(b"v"));
        sec.extend_from_slice(&[0, 0]);
        assert!(validate(&sec).is_err());
    }

    #[test]
    fn huge_length_does_not_overflow() {
        let sec = [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert!(validate(&sec).is_err());
    }

    #[test]
    fn write_then_read_back() {
        let pairs = vec![(Bytes::from_static(b"k"), Bytes::from_static("é".as_bytes()))];
        let n = encoded_len(&pairs).expect("fits");
        let mut dst = BytesMut::new();
        write(&pairs, &mut dst);
        assert_eq!(dst.len(), usize::from(n));
        validate(&dst).expect("valid");
        assert_eq!(
            RawPairs::new(&dst).next(),
            Some((&b"k"[..], "é".as_bytes()))
        );
    }

    #[test]
    fn oversized_map_is_an_encode_error() {
        let big = Bytes::from(vec![b'x'; 0x7fff]);
        assert!(encoded_len(&[(big, Bytes::new())]).is_err());
    }
}
