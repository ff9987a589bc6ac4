//! Skipping any value without recursion: an explicit stack of open containers, at most
//! [`MAX_DEPTH`] deep, and a loop in which every step consumes at least one byte, so the
//! work is linear in the input whatever it holds.

use super::tag::{self, *};
use super::{Error, MAX_DEPTH, Reader};

/// Where the common argument at `pos` ends: an all-ASCII one-chunk string, an int, a
/// long, a double, a boolean or a null, wholly in `buf` (the sizes are those
/// [`Reader::skip_value`] steps over). `None` for any other value (the general skipper
/// handles it, and reports errors) and for a truncated one.
#[inline]
pub(crate) fn simple_value_end(buf: &[u8], pos: usize) -> Option<usize> {
    let b = *buf.get(pos)?;
    let len = match b {
        0x00..=0x1f | 0x30..=0x33 | STRING_FINAL => {
            return super::ascii_string_at(buf, pos).map(|r| r.end);
        }
        0x80..=0xbf | 0xd8..=0xef | NULL | TRUE | FALSE | DOUBLE_ZERO | DOUBLE_ONE => 1,
        0xc0..=0xcf | 0xf0..=0xff | DOUBLE_BYTE => 2,
        0xd0..=0xd7 | 0x38..=0x3f | DOUBLE_SHORT => 3,
        INT | LONG_INT32 | DATE_MIN | DOUBLE_MILLS => 5,
        LONG | DATE_MS | DOUBLE => 9,
        _ => return None,
    };
    let end = pos.checked_add(len)?;
    (end <= buf.len()).then_some(end)
}

/// What an open container still expects.
#[derive(Debug, Clone, Copy)]
enum Open {
    /// This many more values (fixed-length lists, object fields).
    Count(usize),
    /// Values until `Z` (variable-length lists).
    UntilEnd,
    /// Keys and values until `Z`; `mid_pair` after a key.
    Map { mid_pair: bool },
}

impl Reader<'_> {
    /// Skips one value, allowing `max_depth` levels of nesting (capped at [`MAX_DEPTH`]).
    pub(super) fn skip_within(&mut self, max_depth: usize) -> Result<(), Error> {
        let max_depth = max_depth.min(MAX_DEPTH);
        // Most values are scalars (an argument string or int, an attachment value): skip
        // them before setting up the container stack.
        let at = self.pos;
        let Some(first) = self.skip_head()? else {
            return Ok(());
        };
        if max_depth == 0 {
            return Err(Error::TooDeep { max: MAX_DEPTH, at });
        }
        let mut stack = [Open::Count(0); MAX_DEPTH];
        if let Some(slot) = stack.first_mut() {
            *slot = first;
        }
        let mut depth = 1usize;
        loop {
            // Close the containers that are complete; count the value about to be read.
            while let Some(top) = depth.checked_sub(1).and_then(|i| stack.get_mut(i)) {
                let closes = match top {
                    Open::Count(0) => true,
                    Open::Count(n) => {
                        *n -= 1;
                        false
                    }
                    Open::UntilEnd => self.peek_raw() == Some(END),
                    Open::Map { mid_pair } => {
                        if !*mid_pair && self.peek_raw() == Some(END) {
                            true
                        } else {
                            *mid_pair = !*mid_pair;
                            false
                        }
                    }
                };
                if !closes {
                    break;
                }
                if !matches!(top, Open::Count(_)) {
                    self.pos += 1; // the `Z`
                }
                depth -= 1;
                if depth == 0 {
                    return Ok(());
                }
            }

            let at = self.pos;
            let opened = self.skip_head()?;
            if let Some(open) = opened {
                if depth >= max_depth {
                    return Err(Error::TooDeep { max: MAX_DEPTH, at });
                }
                // In bounds: depth < max_depth <= MAX_DEPTH.
                if let Some(slot) = stack.get_mut(depth) {
                    *slot = open;
                }
                depth += 1;
            } else if depth == 0 {
                return Ok(());
            }
        }
    }

    /// Consumes the head of one value (and any class definitions before it). Scalars are
    /// consumed whole; a container's head is consumed and what it still holds returned.
    fn skip_head(&mut self) -> Result<Option<Open>, Error> {
        let b = self.peek()?;
        let at = self.pos;
        if tag::is_string(b) {
            self.skip_string()?;
            return Ok(None);
        }
        self.pos += 1;
        let fixed = |n: usize, r: &mut Self| r.take(n).map(|_| None);
        match b {
            // Scalars: skip their fixed-size payload.
            0x80..=0xbf | 0xd8..=0xef | NULL | TRUE | FALSE | DOUBLE_ZERO | DOUBLE_ONE => Ok(None),
            0xc0..=0xcf | 0xf0..=0xff | DOUBLE_BYTE => fixed(1, self),
            0xd0..=0xd7 | 0x38..=0x3f | DOUBLE_SHORT => fixed(2, self),
            INT | LONG_INT32 | DATE_MIN | DOUBLE_MILLS => fixed(4, self),
            LONG | DATE_MS | DOUBLE => fixed(8, self),
            0x20..=0x2f => fixed(usize::from(b - 0x20), self),
            0x34..=0x37 => {
                let lo = self.byte()?;
                fixed((usize::from(b - 0x34) << 8) | usize::from(lo), self)
            }
            BINARY_CHUNK | BINARY_FINAL => {
                self.pos = at;
                self.skip_binary().map(|_| None)
            }
            REF => self.read_int().map(|_| None),
            // Containers.
            MAP_UNTYPED => Ok(Some(Open::Map { mid_pair: false })),
            MAP_TYPED => {
                self.skip_type()?;
                Ok(Some(Open::Map { mid_pair: false }))
            }
            LIST_UNTYPED_VAR => Ok(Some(Open::UntilEnd)),
            LIST_TYPED_VAR => {
                self.skip_type()?;
                Ok(Some(Open::UntilEnd))
            }
            LIST_TYPED_FIXED | LIST_UNTYPED_FIXED => {
                if b == LIST_TYPED_FIXED {
                    self.skip_type()?;
                }
                self.count().map(|n| Some(Open::Count(n)))
            }
            0x70..=0x77 => {
                self.skip_type()?;
                Ok(Some(Open::Count(usize::from(b - 0x70))))
            }
            0x78..=0x7f => Ok(Some(Open::Count(usize::from(b - 0x78)))),
            OBJECT => {
                let index_at = self.pos;
                let index = self.read_int()?;
                self.instance(i64::from(index), index_at)
            }
            0x60..=0x6f => self.instance(i64::from(b - 0x60), at),
            END => Err(Error::StrayEnd { at }),
            0x40 | 0x45 | 0x47 | 0x50 => Err(Error::Reserved { byte: b, at }),
            // Only `C` is left, and `peek` consumed every class definition.
            found => Err(Error::Unexpected {
                expected: "value",
                found,
                at,
            }),
        }
    }

    /// A non-negative length for a fixed list, no larger than the bytes left (every
    /// element takes at least one).
    fn count(&mut self) -> Result<usize, Error> {
        let at = self.pos;
        let n = self.read_int()?;
        let n = usize::try_from(n).map_err(|_| Error::BadLength {
            len: i64::from(n),
            at,
        })?;
        if n > self.remaining() {
            return Err(Error::Truncated { at: self.buf.len() });
        }
        Ok(n)
    }

    /// The fields an instance of class `index` holds.
    fn instance(&mut self, index: i64, at: usize) -> Result<Option<Open>, Error> {
        let fields = usize::try_from(index)
            .ok()
            .and_then(|i| self.classes.get(i).copied())
            .ok_or(Error::UndefinedClass { index, at })?;
        Ok(Some(Open::Count(fields)))
    }

    /// Skips binary data: short/medium forms or `A` chunks ended by a final chunk.
    fn skip_binary(&mut self) -> Result<(), Error> {
        loop {
            let at = self.pos;
            let b = self.byte()?;
            let (len, last) = match b {
                0x20..=0x2f => (usize::from(b - 0x20), true),
                0x34..=0x37 => (
                    (usize::from(b - 0x34) << 8) | usize::from(self.byte()?),
                    true,
                ),
                BINARY_CHUNK | BINARY_FINAL => {
                    let [hi, lo] = [self.byte()?, self.byte()?];
                    (usize::from(u16::from_be_bytes([hi, lo])), b == BINARY_FINAL)
                }
                found => {
                    return Err(Error::Unexpected {
                        expected: "binary chunk",
                        found,
                        at,
                    });
                }
            };
            self.take(len)?;
            if last {
                return Ok(());
            }
        }
    }
}
