/// A request id as carried on the wire, widened to 64 bits. Its real width is the
/// protocol's [`IdWidth`].
pub type RequestId = u64;

/// How many bits a protocol's request id has on the wire. The proxy allocates upstream ids
/// in this space and wraps explicitly at its end (the MOSN request-id overflow bug is a
/// 64-bit counter silently truncated to 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdWidth {
    /// 32-bit ids (SOFA Bolt).
    U32,
    /// 64-bit ids (Dubbo).
    U64,
}

impl IdWidth {
    /// The largest id representable.
    pub fn max(self) -> RequestId {
        match self {
            IdWidth::U32 => u32::MAX as u64,
            IdWidth::U64 => u64::MAX,
        }
    }

    /// The id after `id`, wrapping to 0 past [`IdWidth::max`].
    pub fn next(self, id: RequestId) -> RequestId {
        if id >= self.max() { 0 } else { id + 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u32_wraps_to_zero() {
        assert_eq!(IdWidth::U32.next(u32::MAX as u64), 0);
        assert_eq!(IdWidth::U32.next(7), 8);
    }

    #[test]
    fn u64_wraps_to_zero() {
        assert_eq!(IdWidth::U64.next(u64::MAX), 0);
        assert_eq!(IdWidth::U64.next(u32::MAX as u64), u32::MAX as u64 + 1);
    }
}
