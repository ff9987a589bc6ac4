//! [`Reader`]: typed reads over a borrowed Hessian 2.0 stream.

use std::ops::Range;

use super::string::{ascii_string_at, decode_java_utf8, scan_units};
use super::tag::{self, *};
use super::{Error, HString, MAX_DEPTH};

/// Where a string read by [`Reader::read_str_span`] lies, or its decoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StrSpan {
    /// One chunk of valid UTF-8 at this range of the input.
    Utf8(Range<usize>),
    /// A chunked or Java-encoded (surrogate halves apart) string, decoded.
    Decoded(String),
}

impl StrSpan {
    /// The string's bytes; `buf` must be the reader's input.
    pub(crate) fn bytes<'b>(&'b self, buf: &'b [u8]) -> &'b [u8] {
        match self {
            StrSpan::Utf8(r) => buf.get(r.clone()).unwrap_or_default(),
            StrSpan::Decoded(s) => s.as_bytes(),
        }
    }
}

/// Reads Hessian 2.0 values one after another from `&[u8]`.
///
/// One reader is one Hessian stream: class definitions seen while reading or skipping are
/// remembered (as field counts) for later object instances, as Java's `Hessian2Input`
/// does until it is reset. Errors leave the position unspecified; stop reading then.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
    /// Field count of every class definition, in order of appearance. Each definition
    /// consumed at least 3 bytes, so this never outgrows the input.
    pub(super) classes: Vec<usize>,
}

// === impl Reader ===

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`, with an empty class table.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            classes: Vec::new(),
        }
    }

    /// Offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Whether every byte has been read.
    pub fn is_at_end(&self) -> bool {
        self.remaining() == 0
    }

    /// The field counts of the class definitions seen so far, in order.
    pub fn class_field_counts(&self) -> &[usize] {
        &self.classes
    }

    pub(super) fn byte(&mut self) -> Result<u8, Error> {
        let b = self
            .buf
            .get(self.pos)
            .copied()
            .ok_or(Error::Truncated { at: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(Error::Truncated { at: self.buf.len() })?;
        let bytes = self.buf.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(super) fn peek_raw(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// The bytecode of the next value, without consuming it. Class definitions in front
    /// of the value are consumed (and recorded) first: they are not values themselves.
    pub fn peek(&mut self) -> Result<u8, Error> {
        loop {
            let b = self.peek_raw().ok_or(Error::Truncated { at: self.pos })?;
            if b != CLASS_DEF {
                return Ok(b);
            }
            self.pos += 1;
            self.class_def()?;
        }
    }

    /// Whether the next value is null (`N`).
    pub fn next_is_null(&mut self) -> Result<bool, Error> {
        Ok(self.peek()? == NULL)
    }

    pub(super) fn unexpected(&self, expected: &'static str) -> Error {
        match self.peek_raw() {
            Some(found) => Error::Unexpected {
                expected,
                found,
                at: self.pos,
            },
            None => Error::Truncated { at: self.pos },
        }
    }

    /// Reads a null.
    pub fn read_null(&mut self) -> Result<(), Error> {
        if self.peek()? != NULL {
            return Err(self.unexpected("null"));
        }
        self.pos += 1;
        Ok(())
    }

    /// Reads a boolean (`T` or `F`).
    pub fn read_bool(&mut self) -> Result<bool, Error> {
        let v = match self.peek()? {
            TRUE => true,
            FALSE => false,
            _ => return Err(self.unexpected("boolean")),
        };
        self.pos += 1;
        Ok(v)
    }

    /// Reads an int in any of its four forms.
    pub fn read_int(&mut self) -> Result<i32, Error> {
        let b = self.peek()?;
        if !tag::is_int(b) {
            return Err(self.unexpected("int"));
        }
        self.pos += 1;
        let b = i32::from(b);
        Ok(match b {
            0x80..=0xbf => b - 0x90,
            0xc0..=0xcf => ((b - 0xc8) << 8) | i32::from(self.byte()?),
            0xd0..=0xd7 => {
                let [b1, b0] = self.array()?;
                ((b - 0xd4) << 16) | (i32::from(b1) << 8) | i32::from(b0)
            }
            // 'I': the only other int bytecode (checked above).
            _ => i32::from_be_bytes(self.array()?),
        })
    }

    /// Reads a long in any of its five forms, or an int (Java's `readLong` widens).
    pub fn read_long(&mut self) -> Result<i64, Error> {
        let b = self.peek()?;
        if tag::is_int(b) {
            return self.read_int().map(i64::from);
        }
        let v = i64::from(b);
        let value = match b {
            0xd8..=0xef => {
                self.pos += 1;
                v - 0xe0
            }
            0xf0..=0xff => {
                self.pos += 1;
                ((v - 0xf8) << 8) | i64::from(self.byte()?)
            }
            0x38..=0x3f => {
                self.pos += 1;
                let [b1, b0] = self.array()?;
                ((v - 0x3c) << 16) | (i64::from(b1) << 8) | i64::from(b0)
            }
            LONG_INT32 => {
                self.pos += 1;
                i64::from(i32::from_be_bytes(self.array()?))
            }
            LONG => {
                self.pos += 1;
                i64::from_be_bytes(self.array()?)
            }
            _ => return Err(self.unexpected("long")),
        };
        Ok(value)
    }

    /// Reads a double in any of its six forms.
    pub fn read_double(&mut self) -> Result<f64, Error> {
        let value = match self.peek()? {
            DOUBLE_ZERO => {
                self.pos += 1;
                0.0
            }
            DOUBLE_ONE => {
                self.pos += 1;
                1.0
            }
            DOUBLE_BYTE => {
                self.pos += 1;
                f64::from(i8::from_be_bytes(self.array()?))
            }
            DOUBLE_SHORT => {
                self.pos += 1;
                f64::from(i16::from_be_bytes(self.array()?))
            }
            DOUBLE_MILLS => {
                self.pos += 1;
                f64::from(i32::from_be_bytes(self.array()?)) / 1000.0
            }
            DOUBLE => {
                self.pos += 1;
                f64::from_be_bytes(self.array()?)
            }
            _ => return Err(self.unexpected("double")),
        };
        Ok(value)
    }

    /// Reads one chunk header at the current position: `(units, is_final)`.
    fn string_chunk_header(&mut self) -> Result<(usize, bool), Error> {
        let at = self.pos;
        let b = self.byte()?;
        Ok(match b {
            0x00..=0x1f => (usize::from(b), true),
            0x30..=0x33 => (
                (usize::from(b - 0x30) << 8) | usize::from(self.byte()?),
                true,
            ),
            STRING_FINAL | STRING_CHUNK => (
                usize::from(u16::from_be_bytes(self.array()?)),
                b == STRING_FINAL,
            ),
            found => {
                return Err(Error::Unexpected {
                    expected: "string",
                    found,
                    at,
                });
            }
        })
    }

    /// Reads one chunk: its byte range and whether it was the last.
    fn string_chunk(&mut self) -> Result<(Range<usize>, bool), Error> {
        let (units, last) = self.string_chunk_header()?;
        let start = self.pos;
        self.pos = scan_units(self.buf, start, units)?;
        Ok((start..self.pos, last))
    }

    /// Skips a string (all chunks) without allocating.
    pub(super) fn skip_string(&mut self) -> Result<(), Error> {
        if self.ascii_str_fast().is_some() {
            return Ok(());
        }
        while !self.string_chunk()?.1 {}
        Ok(())
    }

    /// Reads a string like [`Reader::read_string`] but hands out where a one-chunk string
    /// lies instead of a `&str`, so the common all-ASCII string is never run through a
    /// UTF-8 check here (the scan that finds its end already proves it ASCII): the proxy
    /// reads a dozen strings per request and returns two or three of them.
    pub(crate) fn read_str_span(&mut self) -> Result<StrSpan, Error> {
        if let Some(r) = self.ascii_str_fast() {
            return Ok(StrSpan::Utf8(r));
        }
        // A class definition in front is rare: only then take the looping `peek`.
        let b = match self.peek_raw() {
            Some(b) if b != CLASS_DEF => b,
            _ => self.peek()?,
        };
        if !tag::is_string(b) {
            return Err(self.unexpected("string"));
        }
        self.str_span_here()
    }

    /// The common string: one chunk, all ASCII, wholly in the input. Consumes it and
    /// returns its range; otherwise consumes nothing and returns `None`, and the general
    /// path takes over (and reports any error).
    #[inline]
    pub(super) fn ascii_str_fast(&mut self) -> Option<Range<usize>> {
        let r = ascii_string_at(self.buf, self.pos)?;
        self.pos = r.end;
        Some(r)
    }

    /// [`Reader::read_str_span`] once the next byte is known to start a string.
    pub(super) fn str_span_here(&mut self) -> Result<StrSpan, Error> {
        if let Some(r) = self.ascii_str_fast() {
            return Ok(StrSpan::Utf8(r));
        }
        let at = self.pos;
        let (units, last) = self.string_chunk_header()?;
        let start = self.pos;
        let end = scan_units(self.buf, start, units)?;
        self.pos = end;
        if !last {
            // Chunked (rare): join and decode the chunks from the start.
            self.pos = at;
            return self
                .read_string()
                .map(|s| StrSpan::Decoded(s.into_string()));
        }
        // Every non-ASCII character takes more bytes than UTF-16 units (2 for 1, 3 for
        // 1, 4 for 2), so as many bytes as units means all ASCII, hence valid UTF-8.
        if end - start == units {
            return Ok(StrSpan::Utf8(start..end));
        }
        let bytes = self.buf.get(start..end).unwrap_or_default();
        Ok(if std::str::from_utf8(bytes).is_ok() {
            StrSpan::Utf8(start..end)
        } else {
            StrSpan::Decoded(decode_java_utf8(bytes))
        })
    }

    /// [`Reader::read_str_span`], or `None` for a null.
    pub(crate) fn read_str_span_or_null(&mut self) -> Result<Option<StrSpan>, Error> {
        if self.next_is_null()? {
            self.pos += 1;
            return Ok(None);
        }
        self.read_str_span().map(Some)
    }

    /// Reads a string in any form (short, medium, `S`, chunked `R`…`S`). Its length
    /// counts UTF-16 units.
    pub fn read_string(&mut self) -> Result<HString<'a>, Error> {
        if !tag::is_string(self.peek()?) {
            return Err(self.unexpected("string"));
        }
        let (first, last) = self.string_chunk()?;
        let buf = self.buf;
        let first_bytes = buf.get(first.clone()).unwrap_or_default();
        if last {
            return Ok(match std::str::from_utf8(first_bytes) {
                Ok(text) => HString::Borrowed {
                    at: first.start,
                    text,
                },
                Err(_) => HString::Owned(decode_java_utf8(first_bytes)),
            });
        }
        // Chunked: join the chunks' bytes (already scanned, so bounded by the input).
        let mut bytes = first_bytes.to_vec();
        loop {
            let (range, last) = self.string_chunk()?;
            bytes.extend_from_slice(buf.get(range).unwrap_or_default());
            if last {
                break;
            }
        }
        Ok(HString::Owned(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => decode_java_utf8(e.as_bytes()),
        }))
    }

    /// Reads a string or a null (`None`).
    pub fn read_string_or_null(&mut self) -> Result<Option<HString<'a>>, Error> {
        if self.next_is_null()? {
            self.pos += 1;
            return Ok(None);
        }
        self.read_string().map(Some)
    }

    /// Skips a list/map type: a string, or an int indexing the type table.
    pub(super) fn skip_type(&mut self) -> Result<(), Error> {
        let b = self.peek_raw().ok_or(Error::Truncated { at: self.pos })?;
        if tag::is_string(b) {
            self.skip_string()
        } else if tag::is_int(b) {
            self.read_int().map(drop)
        } else {
            Err(self.unexpected("type name or type reference"))
        }
    }

    /// Reads a class definition (after its `C`): name, field count, field names.
    pub(super) fn class_def(&mut self) -> Result<(), Error> {
        self.skip_string()?;
        let at = self.pos;
        let n = self.read_int()?;
        let n = usize::try_from(n).map_err(|_| Error::BadLength {
            len: i64::from(n),
            at,
        })?;
        // Every field name takes at least one byte: fail early on an absurd count.
        if n > self.remaining() {
            return Err(Error::Truncated { at: self.buf.len() });
        }
        for _ in 0..n {
            self.skip_string()?;
        }
        self.classes.push(n);
        Ok(())
    }

    /// Skips one value of any type (see `wire-formats.md` §2.6), recording class
    /// definitions on the way.
    pub fn skip_value(&mut self) -> Result<(), Error> {
        self.skip_within(MAX_DEPTH)
    }
}
