//! A Hessian 2.0 reader and writer for the subset a proxy needs (`wire-formats.md` §2.6).
//!
//! The [`Reader`] reads strings, ints, longs, doubles, booleans, null, string maps and
//! string lists, and skips any other value while keeping the class-definition table
//! (field counts only), so object instances can be skipped too. It works over a borrowed
//! `&[u8]`, never panics, never reads past the end, allocates no more than the input
//! justifies (no capacity is reserved from a length field), limits nesting to
//! [`MAX_DEPTH`] and does work linear in the input: every value it steps over consumes at
//! least one byte.
//!
//! The [`writer`] functions write strings (in the form a Java `Hessian2Output` picks),
//! compact ints, null and untyped string maps.
//!
//! Nothing here knows about Dubbo.

mod collections;
mod error;
mod reader;
mod skip;
mod string;
pub mod writer;

pub(crate) use collections::SpanEntry;
pub use collections::{MapEntry, MapInfo};
pub use error::Error;
pub use reader::Reader;
pub(crate) use reader::StrSpan;
pub(crate) use skip::simple_value_end;
pub use string::HString;
pub(crate) use string::{ascii_string_at, one_chunk_string_at};

/// Deepest nesting of lists, maps and objects the reader accepts (Java's `readObject`
/// recurses; we stop here instead of overflowing a stack).
pub const MAX_DEPTH: usize = 64;

/// Bytecodes used by name (the Hessian 2.0 grammar). Ranges are matched inline.
pub(crate) mod tag {
    pub const BINARY_CHUNK: u8 = b'A';
    pub const BINARY_FINAL: u8 = b'B';
    pub const CLASS_DEF: u8 = b'C';
    pub const DOUBLE: u8 = b'D';
    pub const FALSE: u8 = b'F';
    pub const MAP_UNTYPED: u8 = b'H';
    pub const INT: u8 = b'I';
    pub const DATE_MS: u8 = 0x4a;
    pub const DATE_MIN: u8 = 0x4b;
    pub const LONG: u8 = b'L';
    pub const MAP_TYPED: u8 = b'M';
    pub const NULL: u8 = b'N';
    pub const OBJECT: u8 = b'O';
    pub const REF: u8 = b'Q';
    pub const STRING_CHUNK: u8 = b'R';
    pub const STRING_FINAL: u8 = b'S';
    pub const TRUE: u8 = b'T';
    pub const LIST_TYPED_VAR: u8 = b'U';
    pub const LIST_TYPED_FIXED: u8 = b'V';
    pub const LIST_UNTYPED_VAR: u8 = b'W';
    pub const LIST_UNTYPED_FIXED: u8 = b'X';
    pub const LONG_INT32: u8 = b'Y';
    pub const END: u8 = b'Z';
    pub const DOUBLE_ZERO: u8 = 0x5b;
    pub const DOUBLE_ONE: u8 = 0x5c;
    pub const DOUBLE_BYTE: u8 = 0x5d;
    pub const DOUBLE_SHORT: u8 = 0x5e;
    pub const DOUBLE_MILLS: u8 = 0x5f;

    /// Whether `b` starts a string (any form, chunked included).
    pub fn is_string(b: u8) -> bool {
        matches!(b, 0x00..=0x1f | 0x30..=0x33 | STRING_CHUNK | STRING_FINAL)
    }

    /// Whether `b` starts an int (any form).
    pub fn is_int(b: u8) -> bool {
        matches!(b, 0x80..=0xd7 | INT)
    }
}
