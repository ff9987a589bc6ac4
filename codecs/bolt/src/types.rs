//! Wire constants and the fixed-header layout of Bolt v1 and v2 (`wire-formats.md` §1).

/// Protocol byte of Bolt v1.
pub const PROTO_V1: u8 = 0x01;
/// Protocol byte of Bolt v2.
pub const PROTO_V2: u8 = 0x02;

/// v2 `ver1` byte meaning "v1 semantics" (never a CRC).
pub const VER1_1: u8 = 1;
/// v2 `ver1` byte under which switch bit 0 turns the CRC trailer on.
pub const VER1_2: u8 = 2;

/// Type byte of a response (and heartbeat ack).
pub const TYPE_RESPONSE: u8 = 0x00;
/// Type byte of a two-way request (and heartbeat).
pub const TYPE_REQUEST: u8 = 0x01;
/// Type byte of a oneway request.
pub const TYPE_ONEWAY: u8 = 0x02;

/// Command code of a heartbeat and its ack.
pub const CMD_HEARTBEAT: u16 = 0;
/// Command code of an RPC request.
pub const CMD_REQUEST: u16 = 1;
/// Command code of an RPC response.
pub const CMD_RESPONSE: u16 = 2;

/// The command version byte (`ver2`) every known implementation writes.
pub const CMD_VERSION: u8 = 1;
/// Serializer id of Hessian2, the Java default.
pub const CODEC_HESSIAN2: u8 = 1;
/// Switch bit 0: CRC on (only meaningful with ver1 = 2).
pub const SWITCH_CRC: u8 = 0x01;
/// Largest switch value Java accepts (`ProtocolSwitch.toBitSet` rejects the rest).
pub const MAX_SWITCH: u8 = 0x7f;
/// Largest class-name or header-map length (Java reads them as signed shorts).
pub const MAX_SECTION_LEN: u16 = 0x7fff;
/// Largest content length (Java reads it as a signed int).
pub const MAX_CONTENT_LEN: u32 = i32::MAX as u32;
/// Size of the v2 CRC-32 trailer.
pub const CRC_LEN: usize = 4;
/// Timeout field value meaning "no timeout" (Java heartbeat default).
pub const NO_TIMEOUT: i32 = -1;

/// Where the fields of a fixed header are, given the protocol byte and whether the frame
/// is a request (a request has a 4-byte timeout where a response has a 2-byte status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// [`PROTO_V1`] or [`PROTO_V2`].
    pub version: u8,
    /// Type byte is a request or oneway (not a response).
    pub request: bool,
}

impl Layout {
    /// Offset of the type byte: v2 has `ver1` before it. The protocol byte is that
    /// offset (1 or 2), which keeps every offset below free of branches (a layout is
    /// only made for those two versions).
    pub const fn type_off(version: u8) -> usize {
        version as usize
    }

    /// Offset of the 2-byte command code.
    pub const fn cmd_off(self) -> usize {
        Self::type_off(self.version) + 1
    }

    /// Offset of the 4-byte request id (5 in v1, 6 in v2).
    pub const fn id_off(self) -> usize {
        Self::type_off(self.version) + 4
    }

    /// Offset of the serializer id.
    pub const fn codec_off(self) -> usize {
        Self::type_off(self.version) + 8
    }

    /// Offset of the v2 switch byte (only meaningful for v2).
    pub const fn switch_off(self) -> usize {
        self.codec_off() + 1
    }

    /// Offset of the timeout (request) or status (response) field.
    pub const fn tail_off(self) -> usize {
        // v2's switch byte is the one more byte.
        self.codec_off() + self.version as usize
    }

    /// Offset of classLen; headerLen follows at +2 and contentLen at +4.
    pub const fn lens_off(self) -> usize {
        self.tail_off() + 2 + 2 * self.request as usize
    }

    /// Length of the fixed header (22/20 in v1, 24/22 in v2).
    pub const fn fixed_len(self) -> usize {
        self.lens_off() + 8
    }
}

/// Reads a big-endian u16 at `off`; the caller has checked the length.
#[inline]
pub(crate) fn be_u16(b: &[u8], off: usize) -> u16 {
    // One bounds check for the word, not one per byte.
    let mut word = [0; 2];
    word.copy_from_slice(&b[off..off + 2]);
    u16::from_be_bytes(word)
}

/// Reads a big-endian u32 at `off`; the caller has checked the length.
#[inline]
pub(crate) fn be_u32(b: &[u8], off: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&b[off..off + 4]);
    u32::from_be_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_the_spec() {
        let v1q = Layout {
            version: PROTO_V1,
            request: true,
        };
        let v1r = Layout {
            version: PROTO_V1,
            request: false,
        };
        let v2q = Layout {
            version: PROTO_V2,
            request: true,
        };
        let v2r = Layout {
            version: PROTO_V2,
            request: false,
        };
        assert_eq!(
            (
                v1q.id_off(),
                v1q.tail_off(),
                v1q.lens_off(),
                v1q.fixed_len()
            ),
            (5, 10, 14, 22)
        );
        assert_eq!(
            (v1r.tail_off(), v1r.lens_off(), v1r.fixed_len()),
            (10, 12, 20)
        );
        assert_eq!(
            (
                v2q.id_off(),
                v2q.switch_off(),
                v2q.tail_off(),
                v2q.lens_off(),
                v2q.fixed_len()
            ),
            (6, 11, 12, 16, 24)
        );
        assert_eq!(
            (v2r.tail_off(), v2r.lens_off(), v2r.fixed_len()),
            (12, 14, 22)
        );
    }
}
