//! Protocol detection with the "stronger" checks of `wire-formats.md` §4.
//!
//! MOSN claims any stream starting 0x01 or 0x02; we also check the type, `ver1` and
//! command-code bytes as far as the prefix has them, so garbage and other protocols are
//! refused early.

use strait_codec_framework::Detect;

use crate::types::*;

/// Whether a connection starting with `prefix` speaks Bolt (v1 or v2).
pub fn detect(prefix: &[u8]) -> Detect {
    let Some(&proto) = prefix.first() else {
        return Detect::NeedMore;
    };
    let type_off = match proto {
        PROTO_V1 => 1,
        PROTO_V2 => {
            match prefix.get(1) {
                None => return Detect::NeedMore,
                Some(&v) if v != VER1_1 && v != VER1_2 => return Detect::NoMatch,
                Some(_) => {}
            }
            2
        }
        _ => return Detect::NoMatch,
    };
    match prefix.get(type_off) {
        None => return Detect::NeedMore,
        Some(t) if !matches!(*t, TYPE_RESPONSE | TYPE_REQUEST | TYPE_ONEWAY) => {
            return Detect::NoMatch;
        }
        Some(_) => {}
    }
    // cmdcode is a u16 in {0, 1, 2}: check whichever of its bytes have arrived.
    let cmd = &prefix[type_off + 1..prefix.len().min(type_off + 3)];
    let cmd_ok = match cmd {
        [] => true,
        [hi] => *hi == 0,
        [hi, lo, ..] => *hi == 0 && *lo <= 2,
    };
    if cmd_ok {
        Detect::Match
    } else {
        Detect::NoMatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_needs_more() {
        assert_eq!(detect(&[]), Detect::NeedMore);
    }

    #[test]
    fn v1() {
        assert_eq!(detect(&[1]), Detect::NeedMore);
        assert_eq!(detect(&[1, 1]), Detect::Match);
        assert_eq!(detect(&[1, 1, 0, 1]), Detect::Match);
        assert_eq!(detect(&[1, 0, 0, 2, 1]), Detect::Match);
        assert_eq!(detect(&[1, 3]), Detect::NoMatch);
        assert_eq!(detect(&[1, 1, 1]), Detect::NoMatch);
        assert_eq!(detect(&[1, 1, 0, 7]), Detect::NoMatch);
        assert_eq!(detect(&[1, 1, 0, 100]), Detect::NoMatch);
    }

    #[test]
    fn v2() {
        assert_eq!(detect(&[2]), Detect::NeedMore);
        assert_eq!(detect(&[2, 1]), Detect::NeedMore);
        assert_eq!(detect(&[2, 1, 1, 0, 1]), Detect::Match);
        assert_eq!(detect(&[2, 2, 0]), Detect::Match);
        assert_eq!(detect(&[2, 0]), Detect::NoMatch);
        assert_eq!(detect(&[2, 3]), Detect::NoMatch);
        assert_eq!(detect(&[2, 1, 3]), Detect::NoMatch);
        assert_eq!(detect(&[2, 1, 1, 0, 9]), Detect::NoMatch);
    }

    #[test]
    fn others() {
        assert_eq!(detect(&[0xda, 0xbb]), Detect::NoMatch);
        assert_eq!(detect(b"GET / HTTP/1.1"), Detect::NoMatch);
        assert_eq!(detect(&[0x16, 3, 1]), Detect::NoMatch);
        assert_eq!(detect(&[0xff, 0, 0, 0]), Detect::NoMatch);
        assert_eq!(detect(&[0x0d]), Detect::NoMatch);
    }
}
