//! Protocol detection: the two magic bytes, as Dubbo's own `DubboDetector` checks them.

use strait_codec_framework::Detect;

use crate::types::MAGIC;

/// Whether a connection starting with `prefix` speaks Dubbo: `da bb` matches, a lone
/// `da` (or nothing yet) needs more bytes, anything else does not match (§6.3 A3, A7).
pub fn detect(prefix: &[u8]) -> Detect {
    match prefix {
        [] | [0xda] => Detect::NeedMore,
        [a, b, ..] if [*a, *b] == MAGIC => Detect::Match,
        _ => Detect::NoMatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic() {
        assert_eq!(detect(&[]), Detect::NeedMore);
        assert_eq!(detect(&[0xda]), Detect::NeedMore);
        assert_eq!(detect(&[0xda, 0xbb]), Detect::Match);
        assert_eq!(detect(&[0xda, 0xbb, 0xc2]), Detect::Match);
        assert_eq!(detect(&[0xda, 0xbc]), Detect::NoMatch);
        assert_eq!(detect(&[0xbb]), Detect::NoMatch);
        assert_eq!(detect(&[1, 1, 0, 1]), Detect::NoMatch);
        assert_eq!(detect(&[0xff, 0, 0, 0, 0, 0, 0, 0]), Detect::NoMatch);
    }
}
