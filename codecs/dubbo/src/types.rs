//! Dubbo 2 wire constants and the 16-byte header (`wire-formats.md` §2.1, §2.2, §2.5).

/// The two magic bytes every frame starts with.
pub const MAGIC: [u8; 2] = [0xda, 0xbb];
/// Length of the fixed header.
pub const HEADER_LEN: usize = 16;
/// Offset of the 8-byte request id.
pub const ID_OFFSET: usize = 4;
/// Offset of the 4-byte body length.
pub const LEN_OFFSET: usize = 12;

/// Flag bit: the frame is a request.
pub const FLAG_REQUEST: u8 = 0x80;
/// Flag bit: the request expects a response.
pub const FLAG_TWO_WAY: u8 = 0x40;
/// Flag bit: an event (heartbeat, read-only notice).
pub const FLAG_EVENT: u8 = 0x20;
/// Flag bits holding the serialization id.
pub const SERIALIZATION_MASK: u8 = 0x1f;
/// Serialization id of Hessian 2, the only one whose bodies the proxy reads.
pub const HESSIAN2: u8 = 2;

/// Body of a hessian2 heartbeat (request and reply): the encoding of null.
pub const HEARTBEAT_BODY: [u8; 1] = [0x4e];
/// Body of Java's READONLY_EVENT (a provider shutting down): the string "R".
pub const READONLY_EVENT_BODY: [u8; 2] = [0x01, b'R'];
/// The Dubbo protocol version Java writes first in every request body.
pub const DEFAULT_DUBBO_VERSION: &str = "2.0.2";

/// Result flag of a response: an exception follows.
pub const RESPONSE_WITH_EXCEPTION: i32 = 0;
/// Result flag: a value follows.
pub const RESPONSE_VALUE: i32 = 1;
/// Result flag: nothing follows (null result).
pub const RESPONSE_NULL_VALUE: i32 = 2;
/// Result flag: an exception, then an attachments map.
pub const RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS: i32 = 3;
/// Result flag: a value, then an attachments map.
pub const RESPONSE_VALUE_WITH_ATTACHMENTS: i32 = 4;
/// Result flag: only an attachments map.
pub const RESPONSE_NULL_VALUE_WITH_ATTACHMENTS: i32 = 5;

/// The fixed header of one frame, as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub flag: u8,
    pub status: u8,
    /// The id as it is in the raw bytes.
    pub request_id: u64,
    pub body_len: u32,
}

impl Head {
    /// Reads the header fields of `b` (at least 16 bytes; the caller checked the magic).
    pub fn read(b: &[u8]) -> Option<Head> {
        let id: [u8; 8] = b.get(ID_OFFSET..ID_OFFSET + 8)?.try_into().ok()?;
        let len: [u8; 4] = b.get(LEN_OFFSET..HEADER_LEN)?.try_into().ok()?;
        Some(Head {
            flag: *b.get(2)?,
            status: *b.get(3)?,
            request_id: u64::from_be_bytes(id),
            // May be "negative": the decoder rejects that before using it.
            body_len: u32::from_be_bytes(len),
        })
    }

    pub fn is_request(&self) -> bool {
        self.flag & FLAG_REQUEST != 0
    }

    pub fn is_two_way(&self) -> bool {
        self.flag & FLAG_TWO_WAY != 0
    }

    pub fn is_event(&self) -> bool {
        self.flag & FLAG_EVENT != 0
    }

    pub fn serialization(&self) -> u8 {
        self.flag & SERIALIZATION_MASK
    }

    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.body_len as usize
    }
}

/// Writes a 16-byte header.
pub(crate) fn put_header(dst: &mut bytes::BytesMut, flag: u8, status: u8, id: u64, len: u32) {
    use bytes::BufMut;
    dst.put_slice(&MAGIC);
    dst.put_u8(flag);
    dst.put_u8(status);
    dst.put_u64(id);
    dst.put_u32(len);
}
