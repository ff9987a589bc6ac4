use crate::Frame;

/// Why bytes could not be decoded as a frame of a protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The first byte(s) do not identify a known version of the protocol.
    #[error("bad magic or protocol code {0:#04x}")]
    BadMagic(u8),
    /// A frame type or command code the protocol does not define.
    #[error("unknown frame type {0}")]
    UnknownType(u16),
    /// The frame announces more bytes than the configured maximum; nothing was buffered.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Announced frame length.
        len: u64,
        /// Configured maximum frame length.
        max: usize,
    },
    /// A length field is out of the protocol's range (for example negative).
    #[error("invalid length field {field}: {value}")]
    BadLength {
        /// Name of the field.
        field: &'static str,
        /// The value read.
        value: i64,
    },
    /// The frame's checksum does not match its bytes.
    #[error("checksum mismatch: frame says {expected:#010x}, bytes give {actual:#010x}")]
    Checksum {
        /// Checksum carried in the frame.
        expected: u32,
        /// Checksum of the bytes received.
        actual: u32,
    },
    /// A section inside the frame (header map, body) is malformed.
    #[error("malformed {section}: {reason}")]
    Malformed {
        /// Which part of the frame.
        section: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The frame cannot be encoded (for example a header map grew past its length field).
    #[error("cannot encode frame: {0}")]
    Encode(String),
}

/// The outcome of a failed [`crate::Codec::decode`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The stream is unusable: the connection must be closed.
    #[error("fatal decode error: {0}")]
    Fatal(CodecError),
    /// One frame was malformed but delimited and identified: its bytes were consumed,
    /// the connection stays usable, and `reply` (if any: never for oneway requests)
    /// must be sent back to the peer.
    #[error("rejected frame: {error}")]
    Rejected {
        /// What was wrong with the frame.
        error: CodecError,
        /// The protocol's error answer for the frame's sender.
        reply: Option<Box<dyn Frame>>,
    },
}

impl From<CodecError> for DecodeError {
    fn from(e: CodecError) -> Self {
        DecodeError::Fatal(e)
    }
}
