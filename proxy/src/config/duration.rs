//! Durations as written in the config: `250ms`, `3s`, `1m`, `1h`, `500us`.

use std::time::Duration;

/// Parses a duration with a unit suffix; a bare number is refused so that `3` never
/// silently means milliseconds to one reader and seconds to another.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?} has no unit (use ms, s, m or h, e.g. \"250ms\")"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a number followed by a unit"))?;
    let seconds = match unit {
        "us" => value / 1_000_000.0,
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use us, ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// `d` as the config writes it, in the largest unit that keeps it exact (`15s`,
/// `250ms`, `500us`): what [`parse`] reads back as `d`, for `/config_dump`.
pub fn format(d: Duration) -> String {
    let us = d.as_micros();
    if us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us.is_multiple_of(1000) {
        format!("{}ms", us / 1000)
    } else {
        format!("{us}us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_durations_parse_back() {
        for d in [
            0,
            1,
            999,
            1000,
            250_000,
            1_500_000,
            15_000_000,
            3_600_000_000,
        ] {
            let d = Duration::from_micros(d);
            assert_eq!(parse(&format(d)), Ok(d), "{}", format(d));
        }
        assert_eq!(format(Duration::from_secs(15)), "15s");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn units() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("500us"), Ok(Duration::from_micros(500)));
    }

    #[test]
    fn rejects_missing_or_unknown_unit() {
        assert!(parse("3").unwrap_err().contains("no unit"));
        assert!(parse("3d").unwrap_err().contains("unknown unit"));
        assert!(parse("ms").is_err());
    }
}
