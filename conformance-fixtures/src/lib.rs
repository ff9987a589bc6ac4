//! Golden frames captured from real encoders, with their expected fields.
//!
//! The frames live in `data/` as one line of lowercase hex each (see `data/README.md` for
//! how they were produced). They are compiled in with `include_str!`, so tests, fuzz seed
//! corpora and benchmarks never depend on the working directory.
//!
//! [`bolt`] and [`dubbo`] hold the expected decoded fields of every Bolt and Dubbo
//! fixture. [`kit`] is the conformance check any codec runs on its frames in one call.
#![forbid(unsafe_code)]

pub mod bolt;
pub mod dubbo;
mod files;
pub mod kit;

pub use files::FILES;

/// The fixtures README (provenance of every file).
pub const README: &str = include_str!("../data/README.md");

/// `versions.json`: the exact library versions the fixtures were produced with.
pub const VERSIONS_JSON: &str = include_str!("../data/versions.json");

/// The bytes of the fixture `name` (with or without the `.hex` suffix).
///
/// # Panics
///
/// If no fixture has that name, or its text is not valid hex. Both are programming errors
/// in a test; the crate's own tests decode every fixture.
pub fn hex(name: &str) -> Vec<u8> {
    let stem = name.strip_suffix(".hex").unwrap_or(name);
    let text = FILES
        .iter()
        .find(|(n, _)| *n == stem)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no fixture named {name:?}"));
    decode_hex(text).unwrap_or_else(|e| panic!("fixture {name:?}: {e}"))
}

/// Every fixture whose name starts with `prefix` (`""` for all), sorted by name, as
/// `(name without .hex, bytes)`.
pub fn all(prefix: &str) -> Vec<(&'static str, Vec<u8>)> {
    FILES
        .iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, _)| (*n, hex(n)))
        .collect()
}

/// Decodes hex text (surrounding whitespace ignored, either case) into bytes.
pub fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.trim().as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
            _ => Err(format!("invalid hex digit near offset {}", i * 2)),
        })
        .collect()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_decodes() {
        assert_eq!(FILES.len(), 31);
        for (name, _) in FILES {
            assert!(!hex(name).is_empty(), "{name}");
        }
    }

    /// The table in `files.rs` is kept by hand: a `data/*.hex` file missing from it would
    /// never be tested, and a name without its file would not compile. Compare both ways.
    #[test]
    fn table_lists_every_hex_file_in_data() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("directory entry").file_name())
            .filter_map(|name| name.to_str()?.strip_suffix(".hex").map(str::to_string))
            .collect();
        on_disk.sort();
        let listed: Vec<String> = FILES.iter().map(|(name, _)| name.to_string()).collect();
        assert_eq!(
            listed, on_disk,
            "conformance-fixtures/src/files.rs must list exactly the data/*.hex files"
        );
    }

    #[test]
    fn names_are_sorted_and_unique() {
        assert!(FILES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn prefix_selects() {
        assert_eq!(all("bolt_").len(), 16);
        assert_eq!(all("suite_").len(), 2);
        assert_eq!(all("dubbo_").len(), 13);
        assert_eq!(hex("bolt_v1_heartbeat.hex"), hex("bolt_v1_heartbeat"));
    }

    #[test]
    fn hex_decoding_rejects_garbage() {
        assert_eq!(decode_hex("0aFf\n"), Ok(vec![0x0a, 0xff]));
        assert!(decode_hex("abc").is_err());
        assert!(decode_hex("zz").is_err());
    }

    #[test]
    fn metadata_files_are_included() {
        assert!(README.contains("Protocol fixtures"));
        assert!(VERSIONS_JSON.contains("sofa-bolt-node"));
    }
}
