/// Bounds a codec enforces before it allocates or buffers anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted, in bytes, fixed header included.
    pub max_frame_size: usize,
}

impl Limits {
    /// The default maximum frame size: 16 MiB.
    pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: Self::DEFAULT_MAX_FRAME_SIZE,
        }
    }
}
