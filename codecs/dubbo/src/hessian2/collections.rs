//! Maps and lists: read keeping their strings, skip everything else.

use std::ops::Range;

use super::reader::StrSpan;
use super::tag::{self, *};
use super::{Error, HString, MAX_DEPTH, Reader};

/// One entry of a map, as [`Reader::read_map`] hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry<'a> {
    /// The key, if it is a string.
    pub key: Option<HString<'a>>,
    /// The value, if both key and value are strings (other values are skipped).
    pub value: Option<HString<'a>>,
    /// The entry's bytes (key and value, and any class definition before them).
    pub raw: Range<usize>,
    /// Whether the entry adds to the stream's tables: a class definition, or a list, map
    /// or object (which later refs count, and whose types later type refs may name).
    /// Dropping or rewriting such an entry would change what later values refer to.
    pub adds_to_tables: bool,
}

/// One entry of a map, as [`Reader::read_map_spans`] hands it out (see [`MapEntry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpanEntry {
    /// The key, if it is a string.
    pub key: Option<StrSpan>,
    /// The value, if both key and value are strings.
    pub value: Option<StrSpan>,
    /// The entry's bytes.
    pub raw: Range<usize>,
    /// See [`MapEntry::adds_to_tables`].
    pub adds_to_tables: bool,
}

/// Where a map lay in the input, see [`Reader::read_map`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    /// The whole map, from its `H`/`M` to its `Z` included.
    pub span: Range<usize>,
    /// The bytes opening the map: `H`, or `M` and its type.
    pub open: Range<usize>,
}

// === impl Reader (maps and lists) ===

impl<'a> Reader<'a> {
    /// Reads a map (`H`, or `M` with a type) and hands each entry to `f`, in wire order.
    /// String keys and, for them, string values are read; everything else is skipped.
    /// Returns `None` for a null map.
    pub fn read_map(&mut self, mut f: impl FnMut(MapEntry<'a>)) -> Result<Option<MapInfo>, Error> {
        let buf = self.buf;
        let text = move |s: StrSpan| match s {
            StrSpan::Utf8(r) => HString::Borrowed {
                at: r.start,
                // Checked as UTF-8 by `read_map_spans`.
                text: buf
                    .get(r)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .unwrap_or_default(),
            },
            StrSpan::Decoded(s) => HString::Owned(s),
        };
        self.read_map_spans(|e| {
            f(MapEntry {
                key: e.key.map(text),
                value: e.value.map(text),
                raw: e.raw,
                adds_to_tables: e.adds_to_tables,
            })
        })
    }

    /// [`Reader::read_map`] handing out strings as [`StrSpan`]s: no UTF-8 check of
    /// ASCII keys and values, nothing borrowed as `&str` (see [`Reader::read_str_span`]).
    pub(crate) fn read_map_spans(
        &mut self,
        mut f: impl FnMut(SpanEntry),
    ) -> Result<Option<MapInfo>, Error> {
        // `peek` consumes any class definition in front, so the map starts here.
        let b = self.peek()?;
        let start = self.pos;
        match b {
            NULL => {
                self.pos += 1;
                return Ok(None);
            }
            MAP_UNTYPED => self.pos += 1,
            MAP_TYPED => {
                self.pos += 1;
                self.skip_type()?;
            }
            _ => return Err(self.unexpected("map")),
        }
        let open = start..self.pos;
        loop {
            let entry_start = self.pos;
            if self.peek_raw() == Some(END) {
                self.pos += 1;
                break;
            }
            let classes = self.classes.len();
            let kb = self.peek()?;
            let key = if tag::is_string(kb) {
                Some(self.str_span_here()?)
            } else {
                self.skip_within(MAX_DEPTH - 1)?;
                None
            };
            // Peeked even after a non-string key: it consumes (and records) a class
            // definition in front of the value, which pins the entry.
            let vb = self.peek()?;
            let value = if key.is_some() && tag::is_string(vb) {
                Some(self.str_span_here()?)
            } else {
                self.skip_within(MAX_DEPTH - 1)?;
                None
            };
            f(SpanEntry {
                key,
                value,
                raw: entry_start..self.pos,
                adds_to_tables: is_composite(kb)
                    || is_composite(vb)
                    || self.classes.len() != classes,
            });
        }
        Ok(Some(MapInfo {
            span: open.start..self.pos,
            open,
        }))
    }

    /// Reads a string if the next value is one, else skips the value; `None` then.
    fn string_or_skip(&mut self, depth: usize) -> Result<Option<HString<'a>>, Error> {
        if tag::is_string(self.peek()?) {
            self.read_string().map(Some)
        } else {
            self.skip_within(depth).map(|_| None)
        }
    }

    /// Reads a string if the next value is one, else skips the value (whatever it is)
    /// and returns `None`.
    pub fn read_string_or_skip(&mut self) -> Result<Option<HString<'a>>, Error> {
        self.string_or_skip(MAX_DEPTH)
    }

    /// Reads a map keeping only its string-to-string entries. `None` for a null map.
    pub fn read_string_map(&mut self) -> Result<Option<Vec<(HString<'a>, HString<'a>)>>, Error> {
        let mut out = Vec::new();
        let info = self.read_map(|e| {
            if let (Some(k), Some(v)) = (e.key, e.value) {
                out.push((k, v));
            }
        })?;
        Ok(info.map(|_| out))
    }

    /// Reads a list (any of the six forms) keeping only its string elements. `None` for
    /// a null list.
    pub fn read_string_list(&mut self) -> Result<Option<Vec<HString<'a>>>, Error> {
        let at = self.pos;
        let b = self.peek()?;
        let fixed_len = match b {
            NULL => {
                self.pos += 1;
                return Ok(None);
            }
            LIST_TYPED_VAR | LIST_UNTYPED_VAR => {
                self.pos += 1;
                if b == LIST_TYPED_VAR {
                    self.skip_type()?;
                }
                None
            }
            LIST_TYPED_FIXED | LIST_UNTYPED_FIXED => {
                self.pos += 1;
                if b == LIST_TYPED_FIXED {
                    self.skip_type()?;
                }
                let len_at = self.pos;
                let n = self.read_int()?;
                Some(usize::try_from(n).map_err(|_| Error::BadLength {
                    len: i64::from(n),
                    at: len_at,
                })?)
            }
            0x70..=0x77 => {
                self.pos += 1;
                self.skip_type()?;
                Some(usize::from(b - 0x70))
            }
            0x78..=0x7f => {
                self.pos += 1;
                Some(usize::from(b - 0x78))
            }
            _ => {
                return Err(Error::Unexpected {
                    expected: "list",
                    found: b,
                    at,
                });
            }
        };
        let mut out = Vec::new();
        match fixed_len {
            Some(n) => {
                if n > self.remaining() {
                    return Err(Error::Truncated { at: self.buf.len() });
                }
                for _ in 0..n {
                    if let Some(s) = self.string_or_skip(MAX_DEPTH - 1)? {
                        out.push(s);
                    }
                }
            }
            None => loop {
                if self.peek_raw() == Some(END) {
                    self.pos += 1;
                    break;
                }
                if let Some(s) = self.string_or_skip(MAX_DEPTH - 1)? {
                    out.push(s);
                }
            },
        }
        Ok(Some(out))
    }
}

/// Whether a value starting with `b` is a list, map or object (an entry of the ref table).
fn is_composite(b: u8) -> bool {
    matches!(
        b,
        MAP_UNTYPED
            | MAP_TYPED
            | OBJECT
            | LIST_TYPED_VAR
            | LIST_TYPED_FIXED
            | LIST_UNTYPED_VAR
            | LIST_UNTYPED_FIXED
            | 0x60..=0x7f
    )
}
