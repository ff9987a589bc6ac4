//! Reading one parameter out of a raw query string, with percent-decoding.
//!
//! Only routes with `query_parameters` conditions call this, and it borrows everything it
//! can: a name or value without `%` is compared and returned in place.

use std::borrow::Cow;

/// Percent-decodes `s`. Only `%` followed by two hex digits is decoded (as Envoy does
/// since 1.23); any other `%` is kept as written, and so is `+` (it is not a space: that
/// is an HTML-form convention, not a URI one). Borrows when there is nothing to decode.
/// Decoded bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let Some(first) = bytes.iter().position(|&b| b == b'%') else {
        return Cow::Borrowed(s);
    };
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        let decoded = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => hex(hi).zip(hex(lo)).map(|(h, l)| (h << 4) | l),
            _ => None,
        };
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(decoded) => Cow::Owned(decoded),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The value of the first parameter named `name` in `query` (the raw query string,
/// without `?`), or `None` if there is none. Names and values are percent-decoded before
/// they are compared and returned; a parameter written without `=` has the value `""`;
/// empty segments (`a=1&&b=2`) are skipped; a repeated parameter yields its first value.
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    query
        .split('&')
        .filter(|segment| !segment.is_empty())
        .find_map(|segment| {
            let (raw_name, raw_value) = segment.split_once('=').unwrap_or((segment, ""));
            (percent_decode(raw_name) == name).then(|| percent_decode(raw_value))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_borrows_when_it_can_and_keeps_bad_escapes() {
        assert!(matches!(
            percent_decode("plain+text"),
            Cow::Borrowed("plain+text")
        ));
        assert_eq!(percent_decode("a%20b%2Fc%2f"), "a b/c/");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%E2%82%AC"), "€");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
    }

    #[test]
    fn first_occurrence_wins_and_bare_names_are_empty() {
        let q = "a=1&b&&a=2&c%20d=e%26f&=x";
        assert_eq!(query_param(q, "a").as_deref(), Some("1"));
        assert_eq!(query_param(q, "b").as_deref(), Some(""));
        assert_eq!(query_param(q, "c d").as_deref(), Some("e&f"));
        assert_eq!(query_param(q, "").as_deref(), Some("x"));
        assert_eq!(query_param(q, "z"), None);
        assert_eq!(query_param("", "a"), None);
    }
}
