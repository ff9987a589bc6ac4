/// Why a Hessian value could not be read. Every variant carries the offset (from the start
/// of the reader's input) where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ends inside a value.
    #[error("input ends inside a value (offset {at})")]
    Truncated {
        /// Offset of the first missing byte.
        at: usize,
    },
    /// A bytecode the grammar reserves (0x40, 0x45, 0x47, 0x50).
    #[error("reserved bytecode {byte:#04x} at offset {at}")]
    Reserved {
        /// The byte.
        byte: u8,
        /// Its offset.
        at: usize,
    },
    /// An end marker `Z` where no list or map is open, or in the middle of a map entry.
    #[error("stray end marker 'Z' at offset {at}")]
    StrayEnd {
        /// Its offset.
        at: usize,
    },
    /// A value of another type than the one asked for.
    #[error("expected {expected}, found bytecode {found:#04x} at offset {at}")]
    Unexpected {
        /// What the caller asked for.
        expected: &'static str,
        /// The bytecode found instead.
        found: u8,
        /// Its offset.
        at: usize,
    },
    /// A string whose UTF-8 has a lead byte Hessian does not allow, or whose last
    /// character is a 4-byte sequence (2 UTF-16 units) where only one unit is left.
    #[error("invalid UTF-8 in a string at offset {at}")]
    BadUtf8 {
        /// Offset of the offending byte.
        at: usize,
    },
    /// An object instance refers to a class definition that was never given.
    #[error("object refers to undefined class definition {index} at offset {at}")]
    UndefinedClass {
        /// The class index.
        index: i64,
        /// Offset of the instance.
        at: usize,
    },
    /// A length or count that is negative.
    #[error("negative length {len} at offset {at}")]
    BadLength {
        /// The value read.
        len: i64,
        /// Its offset.
        at: usize,
    },
    /// Lists, maps and objects nested deeper than [`super::MAX_DEPTH`].
    #[error("values nested deeper than {max} at offset {at}")]
    TooDeep {
        /// The limit.
        max: usize,
        /// Offset of the value that went too deep.
        at: usize,
    },
}
